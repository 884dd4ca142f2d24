package detect

import (
	"math"
	"time"
)

// residuals turns points into standardised one-step forecast residuals:
// the forecast is an EWMA of the points (smoothing LevelAlpha), and the
// residual is measured in units of the residuals' own exponentially
// weighted standard deviation (smoothing SpreadAlpha), learnt over a
// warm-up first. Change detectors on these residuals see a shift, a
// spike or a change of variance as a run of large residuals, while a
// level that moves smoothly, like a daily cycle, leaves them small.
type residuals struct {
	levelAlpha, spreadAlpha float64
	warmup                  int
	n                       int
	level                   float64
	w                       welford // residuals during the warm-up
	varnc                   float64
}

// next returns v's standardised residual and ok=false during the warm-up,
// then folds v in.
func (r *residuals) next(v float64) (z float64, ok bool) {
	if r.n == 0 {
		r.level, r.n = v, 1
		return 0, false
	}
	e := v - r.level
	if ok = r.n > r.warmup; ok {
		z = e / spreadFloor(math.Sqrt(r.varnc), r.level)
		r.varnc = (1 - r.spreadAlpha) * (r.varnc + float64(r.spreadAlpha*e*e))
	} else {
		r.w.add(e)
		r.varnc = r.w.m2/float64(r.w.n) + float64(r.w.mean*r.w.mean) // mean square
	}
	r.level += float64(r.levelAlpha * e)
	r.n++
	return z, ok
}

// CUSUMParams configures CUSUM.
type CUSUMParams struct {
	// LevelAlpha is the smoothing factor of the forecast level.
	LevelAlpha float64
	// SpreadAlpha is the smoothing factor of the residuals' spread.
	SpreadAlpha float64
	// Drift is the allowance k, in standard deviations, that a residual
	// must exceed to accumulate.
	Drift float64
	// Limit is the decision interval h in standard deviations: a sum
	// reaching it is an alarm and scores 0.5.
	Limit float64
	// Warmup is how many points the residual spread is learnt from before
	// scoring.
	Warmup int
}

// CUSUM is Page's two-sided cumulative sum test (E. S. Page, "Continuous
// inspection schemes", Biometrika 1954) on standardised one-step forecast
// residuals (see residuals): S⁺ = max(0, S⁺ + z − k) and
// S⁻ = max(0, S⁻ − z − k). The score is max(S⁺, S⁻)/h mapped as x/(x+1),
// so the alarm level h scores 0.5; an alarm restarts both sums, as a
// chart is reset after an out-of-control signal. O(1) per point.
type CUSUM struct {
	p        CUSUMParams
	res      residuals
	pos, neg float64
}

// NewCUSUM returns a CUSUM detector; p must be valid.
func NewCUSUM(p CUSUMParams) *CUSUM {
	return &CUSUM{p: p, res: residuals{levelAlpha: p.LevelAlpha, spreadAlpha: p.SpreadAlpha, warmup: p.Warmup}}
}

// Observe implements PointDetector.
func (d *CUSUM) Observe(_ time.Time, v float64) float64 {
	z, ok := d.res.next(v)
	if !ok {
		return 0
	}
	d.pos = max(0, d.pos+z-d.p.Drift)
	d.neg = max(0, d.neg-z-d.p.Drift)
	s := max(d.pos, d.neg) / d.p.Limit
	if s >= 1 {
		d.pos, d.neg = 0, 0
	}
	return score(s)
}

// PageHinkleyParams configures PageHinkley.
type PageHinkleyParams struct {
	// LevelAlpha is the smoothing factor of the forecast level.
	LevelAlpha float64
	// SpreadAlpha is the smoothing factor of the residuals' spread.
	SpreadAlpha float64
	// Delta is the magnitude of change, in standard deviations, that is
	// tolerated.
	Delta float64
	// Lambda is the alarm threshold in standard deviations: a statistic
	// reaching it scores 0.5.
	Lambda float64
	// Warmup is how many points the residual spread is learnt from before
	// scoring.
	Warmup int
}

// PageHinkley is the two-sided Page-Hinkley test (Page 1954; D. V.
// Hinkley, "Inference about the change-point from cumulative sum tests",
// Biometrika 1971) on the magnitudes of standardised one-step forecast
// residuals (see residuals). With a the mean of the magnitudes since the
// last alarm, m = Σ(|z| − a − δ) and its running minimum M detect a rise
// (m − M), the mirror sums a fall. The score is the larger statistic over
// λ, mapped as x/(x+1); an alarm restarts the test. Testing |z| rather
// than z catches a change of variance as well as of level. O(1) per
// point.
type PageHinkley struct {
	p             PageHinkleyParams
	res           residuals
	n             int
	mean          float64
	up, upMin     float64
	down, downMax float64
}

// NewPageHinkley returns a Page-Hinkley detector; p must be valid.
func NewPageHinkley(p PageHinkleyParams) *PageHinkley {
	return &PageHinkley{p: p, res: residuals{levelAlpha: p.LevelAlpha, spreadAlpha: p.SpreadAlpha, warmup: p.Warmup}}
}

// Observe implements PointDetector.
func (d *PageHinkley) Observe(_ time.Time, v float64) float64 {
	z, ok := d.res.next(v)
	if !ok {
		return 0
	}
	x := math.Abs(z)
	d.n++
	d.mean += (x - d.mean) / float64(d.n)
	d.up += x - d.mean - d.p.Delta
	d.upMin = min(d.upMin, d.up)
	d.down += x - d.mean + d.p.Delta
	d.downMax = max(d.downMax, d.down)
	s := max(d.up-d.upMin, d.downMax-d.down) / d.p.Lambda
	if s >= 1 {
		d.n, d.mean, d.up, d.upMin, d.down, d.downMax = 0, 0, 0, 0, 0, 0
	}
	return score(s)
}

var (
	_ PointDetector = (*CUSUM)(nil)
	_ PointDetector = (*PageHinkley)(nil)
)
