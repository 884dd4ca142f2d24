package detect

import (
	"math"
	"slices"
	"time"
)

// SeasonalParams configures Seasonal.
type SeasonalParams struct {
	// Periods are the candidate seasons, besides none. Each is used only
	// where the series' sampling interval gives it at least 4 phases.
	Periods []time.Duration
	// MaxBins caps the phases a period is divided into: phases are the
	// sampling interval wide, or Period/MaxBins where that is wider.
	MaxBins int
	// LevelAlpha smooths the level of every model (Holt-Winters α).
	LevelAlpha float64
	// SeasonAlpha smooths each phase's offset from the level (γ).
	SeasonAlpha float64
	// SpreadAlpha smooths the residuals' spread, and the errors by which
	// the best model is chosen.
	SpreadAlpha float64
	// SmoothAlpha smooths the standardised residuals into the sustained
	// deviation scored beside the point's own.
	SmoothAlpha float64
	// Clip is how many spreads a residual may move a model's state: a
	// larger one is winsorised (Gelper, Fried and Croux 2010).
	Clip float64
	// Warmup is how many points the level-only model learns its spread
	// from before the detector scores.
	Warmup int
}

// Seasonal scores a point by how far it lies from a seasonal forecast,
// for anomalies that are a change of a daily or weekly pattern rather
// than a value never seen: a quiet weekday, a missing daily peak, a day
// shifted. It runs, side by side, additive Holt-Winters models (level
// plus one offset per phase of a period) for each candidate period (by
// default a day and a week, read from the timestamps) and a level-only
// model, each in the robust form of Gelper, Fried and Croux (2010):
// residuals beyond Clip spreads are winsorised before they update the
// level, the phase and the spread, so an anomaly does not become the
// forecast. A model takes part once it has seen a whole period twice;
// the one with the smallest running squared error forecasts.
//
// Its residual, in units of the residuals' own exponentially weighted
// standard deviation, is the point deviation z₁; an EWMA of those
// standardised residuals, in units of its own running deviation, is the
// sustained deviation z₂, which picks up a change too small for any one
// point to stand out. The score is z/(z+1) for the larger of |z₁|, |z₂|:
// standardising each by its own history is what lets one threshold
// serve series of any scale. The sampling interval is the median of the
// first 15 intervals. O(models) per point; memory is MaxBins values per
// period.
type Seasonal struct {
	p       SeasonalParams
	n       int
	last    time.Time
	deltas  []float64 // first intervals, in seconds
	models  []seasonModel
	quantum float64 // smallest nonzero change between successive values
	prev    float64
}

// seasonModel is one additive Holt-Winters model in robust form.
type seasonModel struct {
	period  int64 // seconds; 0 for level only
	width   int64 // seconds per phase
	offset  []float64
	seen    []bool
	start   int64 // first time, Unix seconds
	n       int
	level   float64
	spread  float64 // EW mean square residual
	mse     float64 // EW mean square residual, for choosing the model
	smooth  float64 // EWMA of standardised residuals
	smoothV float64 // EW mean square of smooth
	peak    float64 // decaying maximum of |smooth| standardised
}

// NewSeasonal returns a seasonal forecast-residual detector; p must be
// valid.
func NewSeasonal(p SeasonalParams) *Seasonal {
	return &Seasonal{p: p, models: []seasonModel{{}}}
}

// Observe implements PointDetector.
func (d *Seasonal) Observe(t time.Time, v float64) float64 {
	if d.n > 0 && len(d.deltas) < 15 {
		if dt := t.Sub(d.last).Seconds(); dt > 0 {
			d.deltas = append(d.deltas, dt)
			if len(d.deltas) == 15 {
				d.addSeasons(t.Unix())
			}
		}
	}
	d.last = t
	if d.n > 0 {
		if dv := math.Abs(v - d.prev); dv > 0 && (d.quantum == 0 || dv < d.quantum) {
			d.quantum = dv
		}
	}
	d.prev = v
	d.n++
	best := -1
	for i := range d.models {
		m := &d.models[i]
		if m.ready(d.p, t.Unix()) && (best < 0 || m.mse < d.models[best].mse) {
			best = i
		}
	}
	s := 0.0
	for i := range d.models {
		z2 := d.models[i].observe(d.p, t.Unix(), v, d.quantum)
		if i == best {
			s = d.models[i].onset(d.p, z2)
		}
	}
	return s
}

// addSeasons adds a model for each candidate period that the sampling
// interval divides into at least 4 phases.
func (d *Seasonal) addSeasons(now int64) {
	sorted := slices.Clone(d.deltas)
	slices.Sort(sorted)
	dt := sorted[len(sorted)/2]
	for _, per := range d.p.Periods {
		period := int64(per / time.Second)
		if float64(period) < 4*dt {
			continue
		}
		width := max(int64(math.Ceil(dt)), (period+int64(d.p.MaxBins)-1)/int64(d.p.MaxBins))
		bins := (period + width - 1) / width
		lm := d.models[0]
		d.models = append(d.models, seasonModel{
			period: period, width: width, start: now,
			offset: make([]float64, bins), seen: make([]bool, bins),
			level: lm.level, spread: lm.spread, mse: lm.spread,
		})
	}
}

// onset scores the sustained deviation z2: z/(z+1) of |z2| where it
// rises above the decaying peak of those before it (the onset of a
// change, or its growth), and half that where it does not, so that a
// change that lasts alerts once rather than on every point of it while
// every score stays distinct. The peak decays by SpreadAlpha a point.
func (m *seasonModel) onset(p SeasonalParams, z2 float64) float64 {
	a := math.Abs(z2)
	s := score(a)
	if a <= m.peak {
		s *= 0.5
	}
	m.peak = max(m.peak*(1-p.SpreadAlpha), a)
	return s
}

// ready reports whether m may forecast: the level-only model after the
// warm-up, a seasonal one after two whole periods.
func (m *seasonModel) ready(p SeasonalParams, now int64) bool {
	if m.period == 0 {
		return m.n > p.Warmup
	}
	return now-m.start >= 2*m.period
}

// observe returns v's sustained deviation under m, then folds v in. The
// residual's spread is floored at quantum, the series' resolution. Each
// product added to a sum is converted to float64, which rounds it and so
// keeps the compiler from fusing a multiply-add (arm64, GOAMD64=v3): the
// scores are the same bits on every platform, as NAB measured them.
func (m *seasonModel) observe(p SeasonalParams, now int64, v, quantum float64) (z2 float64) {
	if m.n == 0 && m.period == 0 {
		m.level, m.n = v, 1
		return 0
	}
	bin := -1
	off := 0.0
	if m.period != 0 {
		bin = int(((now%m.period + m.period) % m.period) / m.width)
		if m.seen[bin] {
			off = m.offset[bin]
		}
	}
	r := v - m.level - off
	sd := spreadFloor(max(math.Sqrt(m.spread), quantum), m.level)
	if m.n >= p.Warmup || m.period != 0 {
		z1 := r / sd
		if math.IsInf(z1, 0) || math.IsNaN(z1) {
			z1 = 0
		}
		m.smooth += float64(p.SmoothAlpha * (z1 - m.smooth))
		z2 = m.smooth / math.Sqrt(max(m.smoothV, p.SmoothAlpha/(2-p.SmoothAlpha)))
		m.smoothV = (1 - p.SpreadAlpha) * (m.smoothV + float64(p.SpreadAlpha*m.smooth*m.smooth))
	}
	// Winsorise before learning from the point.
	rc := r
	if m.n >= p.Warmup || m.period != 0 {
		lim := p.Clip * sd
		rc = max(-lim, min(lim, r))
	}
	if m.period == 0 && m.n < p.Warmup {
		// Learn the spread plainly while warming up.
		m.spread += (float64(r*r) - m.spread) / float64(m.n)
	} else {
		m.spread = (1 - p.SpreadAlpha) * (m.spread + float64(p.SpreadAlpha*rc*rc))
	}
	m.mse = (1 - p.SpreadAlpha) * (m.mse + float64(p.SpreadAlpha*r*r))
	clean := m.level + off + rc
	if bin >= 0 && !m.seen[bin] {
		m.seen[bin] = true
		m.offset[bin] = v - m.level
		clean = v
	}
	newLevel := m.level + float64(p.LevelAlpha*(clean-off-m.level))
	if bin >= 0 {
		m.offset[bin] += float64(p.SeasonAlpha * (clean - newLevel - m.offset[bin]))
	}
	m.level = newLevel
	m.n++
	return z2
}

var _ PointDetector = (*Seasonal)(nil)
