package detect

import (
	"math"
	"slices"

	"github.com/emberwatch/emberwatch"
)

// Scorer scores one series' windows. Score is called once per window in event
// time order; it returns the anomaly score in [0,1], the range of the scored
// value it considered normal, and ok=false while it is still warming up.
// A learned model satisfies Scorer to take part in the alert lifecycle.
type Scorer interface {
	Score(f *emberwatch.Features) (score float64, expected [2]float64, ok bool)
}

// Explainer is implemented by a Scorer or PointDetector that can say more
// about its last score than the engine knows, such as which member of an
// ensemble gave it. The engine adds it to the alert's message.
type Explainer interface {
	Explain() string
}

// score maps a deviation of z spreads to [0,1): 0 for none, 0.5 at one
// spread, 0.9 at nine. It never saturates, so one threshold can separate any
// two deviations.
func score(z float64) float64 {
	z = math.Abs(z)
	if math.IsNaN(z) {
		return 0
	}
	if math.IsInf(z, 0) {
		return math.Nextafter(1, 0)
	}
	// z/(z+1) rounds to 1 beyond z ≈ 1e16; stay inside [0,1).
	return min(z/(z+1), math.Nextafter(1, 0))
}

// deviationAt is the inverse of score: the deviation, in spreads, whose
// score is s.
func deviationAt(s float64) float64 { return s / (1 - s) }

// RobustZ scores a feature by its distance from the median of the last
// History windows, in units of the scaled median absolute deviation. The
// median and MAD ignore the outliers they are looking for, so a spike does not
// mask the one after it. Values that score at or above the threshold are
// kept out of the history, so a long anomaly does not become its own
// baseline, unless History of them come in a row: then the level has
// shifted for good and is learnt. Each Score costs O(History log History).
type RobustZ struct {
	cfg     DetectorConfig
	ring    []float64
	next    int
	filled  int
	skipped int
	scratch []float64
}

// NewRobustZ returns a robust z-score detector; cfg must be normalised.
func NewRobustZ(cfg DetectorConfig) *RobustZ {
	return &RobustZ{cfg: cfg, ring: make([]float64, cfg.History), scratch: make([]float64, 0, cfg.History)}
}

// Score implements Scorer.
func (d *RobustZ) Score(f *emberwatch.Features) (float64, [2]float64, bool) {
	v, _ := f.Value(d.cfg.Feature)
	if d.filled < d.cfg.Warmup {
		d.push(v)
		return 0, [2]float64{}, false
	}
	hist := append(d.scratch[:0], d.ring[:d.filled]...)
	med := median(hist)
	for i, x := range hist {
		hist[i] = math.Abs(x - med)
	}
	spread := math.Max(1.4826*median(hist), d.cfg.MinSpread)
	z := zscore(v, med, spread)
	k := float64(deviationAt(d.cfg.Threshold) * spread)
	sc := score(z)
	switch {
	case sc < d.cfg.Threshold:
		d.skipped = 0
		d.push(v)
	case d.skipped >= d.cfg.History:
		d.push(v) // the level has shifted for good: learn it
	default:
		d.skipped++
	}
	return sc, [2]float64{med - k, med + k}, true
}

func (d *RobustZ) push(v float64) {
	d.ring[d.next] = v
	d.next = (d.next + 1) % len(d.ring)
	d.filled = min(d.filled+1, len(d.ring))
}

// median sorts xs in place and returns its median.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// zscore is the deviation of v from center in spreads. A zero spread (a
// perfectly flat history) makes any change infinitely surprising.
func zscore(v, center, spread float64) float64 {
	d := v - center
	if spread > 0 {
		return d / spread
	}
	if d == 0 {
		return 0
	}
	return math.Inf(1)
}

// EWMA is an exponentially weighted moving average control chart: the score
// is the distance of the feature from its EWMA, in units of its exponentially
// weighted standard deviation. O(1) per window.
type EWMA struct {
	cfg      DetectorConfig
	mean     float64
	variance float64
	n        int
}

// NewEWMA returns an EWMA chart; cfg must be normalised.
func NewEWMA(cfg DetectorConfig) *EWMA { return &EWMA{cfg: cfg} }

// Score implements Scorer.
func (d *EWMA) Score(f *emberwatch.Features) (float64, [2]float64, bool) {
	v, _ := f.Value(d.cfg.Feature)
	if d.n == 0 {
		d.mean, d.n = v, 1
		return 0, [2]float64{}, false
	}
	spread := math.Max(math.Sqrt(d.variance), d.cfg.MinSpread)
	z := zscore(v, d.mean, spread)
	k := float64(deviationAt(d.cfg.Threshold) * spread)
	expected := [2]float64{d.mean - k, d.mean + k}
	ready := d.n >= d.cfg.Warmup
	a := d.cfg.Alpha
	diff := v - d.mean
	d.mean += float64(a * diff)
	d.variance = (1 - a) * (d.variance + float64(a*diff*diff))
	d.n++
	if !ready {
		return 0, [2]float64{}, false
	}
	return score(z), expected, true
}

// NewScorer builds the detector that cfg names; cfg must have passed Validate.
func NewScorer(cfg DetectorConfig) Scorer {
	switch cfg.Type {
	case TypeEWMA:
		return NewEWMA(cfg)
	case TypePoint:
		d, err := NewPointDetector(cfg.Point, DefaultPointParams())
		if err != nil {
			panic("detect: NewScorer: " + err.Error() + " (the config was not validated)")
		}
		return NewPointScorer(d, cfg.Feature)
	}
	return NewRobustZ(cfg)
}

var (
	_ Scorer = (*RobustZ)(nil)
	_ Scorer = (*EWMA)(nil)
)
