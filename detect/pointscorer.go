package detect

import "github.com/emberwatch/emberwatch"

// PointScorer runs a PointDetector in the alert lifecycle: each window's
// feature is one point of the series the detector sees, stamped with the
// window's end. With tumbling windows as wide as the sampling interval,
// that is the series itself; with wider ones, a resampled series, as the
// NAB corpus's series are. This is how the detectors measured in
// docs/DETECTION.md score a device's own series.
//
// A point detector forecasts no range, so the expected range reported with
// a score is that of the values seen before it: it tells the operator
// whether the value is new in level, or new only in its context.
type PointScorer struct {
	d       PointDetector
	feature string
	lo, hi  float64
	n       int
}

// NewPointScorer wraps d, scoring the named feature of each window.
func NewPointScorer(d PointDetector, feature string) *PointScorer {
	return &PointScorer{d: d, feature: feature}
}

// Score implements Scorer. It is not ready until a value has been seen,
// there being no range to report before then.
func (s *PointScorer) Score(f *emberwatch.Features) (float64, [2]float64, bool) {
	v, _ := f.Value(s.feature)
	score := s.d.Observe(f.End, v)
	expected := [2]float64{s.lo, s.hi}
	ready := s.n > 0
	if s.n == 0 {
		s.lo, s.hi = v, v
	}
	s.lo, s.hi = min(s.lo, v), max(s.hi, v)
	s.n++
	return score, expected, ready
}

// Explain implements Explainer with the point detector's explanation, if
// it gives one.
func (s *PointScorer) Explain() string {
	if x, ok := s.d.(Explainer); ok {
		return x.Explain()
	}
	return ""
}

var (
	_ Scorer    = (*PointScorer)(nil)
	_ Explainer = (*PointScorer)(nil)
)
