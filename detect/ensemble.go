package detect

import (
	"fmt"
	"time"
)

// SpatialParams configures SpatialNovelty.
type SpatialParams struct {
	// Tolerance is how far beyond the range seen so far, as a fraction of
	// that range, a value must lie to be novel.
	Tolerance float64
	// Warmup is how many points are seen before scoring.
	Warmup int
}

// SpatialNovelty flags values beyond the range seen so far: the "spatial
// anomaly" rule that NAB's numenta detector applies on top of its
// likelihood (nab/detectors/numenta/numenta_detector.py,
// SPATIAL_TOLERANCE = 0.05), which, in NAB's words, accounts for the
// labellers' bias towards values larger than any seen before. A value
// more than Tolerance·(max − min) beyond [min, max] scores
// 0.5 + 0.5·e/(1+e), e being its excess in ranges; any other value 0.
// O(1) per point.
type SpatialNovelty struct {
	p      SpatialParams
	lo, hi float64
	n      int
}

// NewSpatialNovelty returns a spatial novelty detector; p must be valid.
func NewSpatialNovelty(p SpatialParams) *SpatialNovelty { return &SpatialNovelty{p: p} }

// Observe implements PointDetector.
func (d *SpatialNovelty) Observe(_ time.Time, v float64) float64 {
	s := 0.0
	if d.n > 0 && d.hi > d.lo {
		w := d.hi - d.lo
		tol := float64(w * d.p.Tolerance) // rounded: no fused multiply-add, as in Seasonal
		excess := max(v-(d.hi+tol), (d.lo-tol)-v) / w
		if excess > 0 && d.n >= d.p.Warmup {
			s = 0.5 + float64(0.5*score(excess))
		}
	}
	if d.n == 0 {
		d.lo, d.hi = v, v
	}
	d.lo, d.hi = min(d.lo, v), max(d.hi, v)
	d.n++
	return s
}

// Ways an Ensemble combines its members.
const (
	CombineMax  = "max"
	CombineMean = "mean"
)

// EnsembleParams configures Ensemble.
type EnsembleParams struct {
	// Members names the combined detectors (any name NewPointDetector
	// takes but "ensemble").
	Members []string
	// Combine is CombineMax or CombineMean.
	Combine string
}

// Ensemble runs several detectors on the same points and combines their
// scores. Each member's score is first calibrated so that its configured
// threshold maps to 0.5 (piecewise linearly: [0, t] onto [0, 0.5] and
// [t, 1] onto [0.5, 1]); the ensemble scores the maximum or the mean of
// the calibrated scores, and its own threshold is 0.5, so that with max
// it fires when any member would. It costs the sum of its members.
type Ensemble struct {
	members    []PointDetector
	names      []string
	thresholds []float64
	mean       bool
	lead       int // the member with the highest calibrated score last time
}

// NewEnsemble builds the members p.Ensemble names, each with fresh state.
func NewEnsemble(p PointParams) (*Ensemble, error) {
	e := &Ensemble{mean: p.Ensemble.Combine == CombineMean}
	q := p
	q.Threshold = 0
	for i, name := range p.Ensemble.Members {
		d, err := newPoint(name, q, 1)
		if err != nil {
			return nil, fmt.Errorf("ensemble.members[%d]: %w", i, err)
		}
		t, err := PointThreshold(name, q)
		if err != nil {
			return nil, fmt.Errorf("ensemble.members[%d]: %w", i, err)
		}
		e.members = append(e.members, d)
		e.names = append(e.names, name)
		e.thresholds = append(e.thresholds, t)
	}
	return e, nil
}

// Observe implements PointDetector.
func (e *Ensemble) Observe(t time.Time, v float64) float64 {
	out, top := 0.0, 0.0
	for i, m := range e.members {
		s := calibrate(m.Observe(t, v), e.thresholds[i])
		if i == 0 || s > top {
			top, e.lead = s, i
		}
		if e.mean {
			out += s / float64(len(e.members))
		} else {
			out = max(out, s)
		}
	}
	return out
}

// Explain names the member whose calibrated score was highest at the last
// point (the first of those that tie): with max, the one the score is.
func (e *Ensemble) Explain() string { return "led by " + e.names[e.lead] }

// recycle implements recycler for the members.
func (e *Ensemble) recycle() {
	for _, m := range e.members {
		Recycle(m)
	}
}

// calibrate maps s in [0,1] so that threshold t lands on 0.5, keeping
// order.
func calibrate(s, t float64) float64 {
	if s < t {
		return 0.5 * s / t
	}
	return 0.5 + 0.5*(s-t)/(1-t)
}

var (
	_ PointDetector = (*SpatialNovelty)(nil)
	_ PointDetector = (*Ensemble)(nil)
	_ Explainer     = (*Ensemble)(nil)
)
