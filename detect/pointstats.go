package detect

import (
	"math"
	"slices"
	"time"
)

// GaussianParams configures GaussianTail.
type GaussianParams struct {
	// Window is how many past points the mean and deviation cover.
	Window int
	// Warmup is how many points are seen before scoring.
	Warmup int
}

// GaussianTail scores a point by the two-sided Gaussian tail probability
// of its deviation from the mean of the last Window points, in units of
// their standard deviation: the idea of NAB's windowedGaussian detector,
// with a sliding window instead of a hopping one. The probability p is
// reported as LikelihoodScore(ln p), so that 3σ scores 0.72 and 5σ 0.86.
// O(1) per point (a rolling mean and sum of squares, re-summed exactly once
// per Window points to stop drift); memory is the window.
type GaussianTail struct {
	p    GaussianParams
	ring ring
	w    welford
}

// NewGaussianTail returns a Gaussian tail detector; p must be valid.
func NewGaussianTail(p GaussianParams) *GaussianTail {
	return &GaussianTail{p: p, ring: newRing(p.Window)}
}

// Observe implements PointDetector.
func (d *GaussianTail) Observe(_ time.Time, v float64) float64 {
	s := 0.0
	if d.w.n >= d.p.Warmup {
		z := (v - d.w.mean) / spreadFloor(d.w.std(), d.w.mean)
		s = LikelihoodScore(math.Ln2 + lnGaussianTail(math.Abs(z)))
	}
	if old, full := d.ring.push(v); full {
		d.w.remove(old)
	}
	d.w.add(v)
	if d.ring.next == 0 && d.ring.full {
		d.w.reset(d.ring.buf)
	}
	return s
}

// RobustZParams configures RobustZPoint.
type RobustZParams struct {
	// Window is how many past points the median and MAD cover.
	Window int
	// Warmup is how many points are seen before scoring.
	Warmup int
}

// RobustZPoint scores a point by its distance from the median of the last
// Window points, relative to the largest such distance in the window: with
// Hampel's robust z-score z(u) = |u − median|/(1.4826·MAD), the score is
// r/(1+r) for r = z(v)/max z(u) over the window u, which is the same as
// |v − median| over the window's farthest point from the median (the MAD
// cancels). A point as far out as the window's most extreme scores 0.5; a
// point twice as far 0.67. Dividing by the window's own extreme rather
// than by the MAD alone is what makes one threshold serve every series:
// the MAD ignores the tail, so on heavy-tailed or mostly constant series
// (MAD ≈ 0) ordinary points had z in the thousands and scored within 1e-6
// of 1, above the anomalies of well-behaved series. The window is kept
// sorted: each point costs two binary searches and an O(Window) memmove;
// the median and the extremes are then read in O(1).
type RobustZPoint struct {
	p      RobustZParams
	ring   ring
	sorted []float64
}

// NewRobustZPoint returns a robust z-score detector; p must be valid.
func NewRobustZPoint(p RobustZParams) *RobustZPoint {
	return &RobustZPoint{p: p, ring: newRing(p.Window), sorted: make([]float64, 0, p.Window)}
}

// Observe implements PointDetector.
func (d *RobustZPoint) Observe(_ time.Time, v float64) float64 {
	s := 0.0
	if n := len(d.sorted); n >= d.p.Warmup {
		med := d.sorted[n/2]
		if n%2 == 0 {
			med = (d.sorted[n/2-1] + d.sorted[n/2]) / 2
		}
		farthest := max(d.sorted[n-1]-med, med-d.sorted[0])
		s = score((v - med) / spreadFloor(farthest, med))
	}
	if old, full := d.ring.push(v); full {
		i, _ := slices.BinarySearch(d.sorted, old)
		d.sorted = slices.Delete(d.sorted, i, i+1)
	}
	i, _ := slices.BinarySearch(d.sorted, v)
	d.sorted = slices.Insert(d.sorted, i, v)
	return s
}

// EWMAParams configures EWMAChart.
type EWMAParams struct {
	// Alpha is the smoothing factor in (0,1].
	Alpha float64
	// Warmup is how many points are seen before scoring.
	Warmup int
}

// EWMAChart is an exponentially weighted moving average control chart on
// raw points: the score is the distance of the point from the EWMA of the
// points before it, in units of their exponentially weighted standard
// deviation, mapped to [0,1) as z/(z+1). O(1) per point.
type EWMAChart struct {
	p        EWMAParams
	mean     float64
	variance float64
	n        int
}

// NewEWMAChart returns an EWMA chart; p must be valid.
func NewEWMAChart(p EWMAParams) *EWMAChart { return &EWMAChart{p: p} }

// Observe implements PointDetector.
func (d *EWMAChart) Observe(_ time.Time, v float64) float64 {
	if d.n == 0 {
		d.mean, d.n = v, 1
		return 0
	}
	s := 0.0
	if d.n >= d.p.Warmup {
		s = score((v - d.mean) / spreadFloor(math.Sqrt(d.variance), d.mean))
	}
	d.mean, d.variance = ewmaStep(d.mean, d.variance, v, d.p.Alpha)
	d.n++
	return s
}

// ewmaStep folds v into an exponentially weighted mean and variance.
func ewmaStep(mean, variance, v, alpha float64) (float64, float64) {
	diff := v - mean
	return mean + float64(alpha*diff), (1 - alpha) * (variance + float64(alpha*diff*diff))
}

// ring is a fixed-size circular buffer of the latest values.
type ring struct {
	buf  []float64
	next int
	full bool
}

func newRing(n int) ring { return ring{buf: make([]float64, n)} }

// push stores v and returns the value it displaced, if the ring was full.
func (r *ring) push(v float64) (old float64, full bool) {
	old, full = r.buf[r.next], r.full
	r.buf[r.next] = v
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
	return old, full
}

// welford keeps the mean and sum of squared deviations of a multiset that
// values join and leave.
type welford struct {
	n        int
	mean, m2 float64
}

func (w *welford) add(v float64) {
	w.n++
	d := v - w.mean
	w.mean += d / float64(w.n)
	w.m2 += float64(d * (v - w.mean))
}

func (w *welford) remove(v float64) {
	if w.n <= 1 {
		*w = welford{}
		return
	}
	w.n--
	d := v - w.mean
	w.mean -= d / float64(w.n)
	w.m2 = max(0, w.m2-float64(d*(v-w.mean)))
}

// reset recomputes the statistics of vs exactly, discarding rounding
// drift.
func (w *welford) reset(vs []float64) {
	*w = welford{}
	for _, v := range vs {
		w.add(v)
	}
}

// std is the population standard deviation.
func (w *welford) std() float64 {
	if w.n < 2 {
		return 0
	}
	return math.Sqrt(w.m2 / float64(w.n))
}

var (
	_ PointDetector = (*GaussianTail)(nil)
	_ PointDetector = (*RobustZPoint)(nil)
	_ PointDetector = (*EWMAChart)(nil)
)
