package detect

import (
	"math"
	"time"
)

// LikelihoodParams configures Likelihood; the defaults are nupic's.
type LikelihoodParams struct {
	// LearningPeriod is how many leading raw scores are left out of the
	// distribution, while the inner detector settles (learningPeriod).
	LearningPeriod int
	// EstimationSamples is how many raw scores after LearningPeriod are
	// collected before the first estimate; until then the score is 0.
	EstimationSamples int
	// HistoricWindow is how many recent raw scores the distribution is
	// estimated from (historicWindowSize).
	HistoricWindow int
	// ReestimationPeriod is how often, in points, the distribution is
	// estimated again.
	ReestimationPeriod int
	// AveragingWindow is how many raw scores are averaged before their
	// tail probability is taken.
	AveragingWindow int
}

// Likelihood turns another detector's raw scores into how unlikely their
// recent average is, the post-processing that lifted Numenta's HTM
// detector on NAB. It ports nupic's anomaly_likelihood.py (class
// AnomalyLikelihood, https://github.com/numenta/nupic-legacy, file
// src/nupic/algorithms/anomaly_likelihood.py) as NAB's numenta detector
// configures it: the raw scores of the last HistoricWindow points, less
// the first LearningPeriod, are averaged over AveragingWindow and fitted
// with a normal distribution (mean at least 0.03, variance at least
// 0.0003; a metric whose own values are flat, variance below 1.5e-5, gets
// a distribution that finds nothing unusual), re-fitted every
// ReestimationPeriod points. Each point's likelihood is the two-sided
// tail probability of the average of the latest AveragingWindow raw
// scores; a likelihood below 1e-5 that follows another is raised to 1e-3,
// so that only the onset of an unusual run stands out. The score is
// LikelihoodScore of the likelihood: 0.8333 at 1e-5, growing without
// saturating where nupic's log scale rounds to 1.
//
// With Hints.Learn (NAB's probationary length) the learning period is
// half of it and the estimation samples the rest, as NAB sets them. Each
// point costs O(1) amortised plus the inner detector: a re-fit is
// O(AveragingWindow²), not O(HistoricWindow) (see windowSums); memory is
// O(HistoricWindow).
type Likelihood struct {
	inner PointDetector
	p     LikelihoodParams

	iteration int       // points observed; the next point's position
	scores    []float64 // ring of the last HistoricWindow raw scores,
	values    []float64 // of the values scored,
	avgs      []float64 // and of the moving averages of raw scores at each
	next      int       // slot of position iteration in the rings

	// avgSums and valueSums hold the moving averages and the values of
	// the positions the distribution is fitted to: the last
	// HistoricWindow, from LearningPeriod on.
	avgSums, valueSums windowSums

	haveDist    bool
	mean, stdev float64
	avg         ring // moving average of raw scores
	avgLen      int
	total       float64
	histL       []float64 // last AveragingWindow unfiltered likelihoods

	// The last lnTail worked out, of x under mean and stdev: after a
	// detector's high score its averages stay put (CAD OSE scores 0 while it
	// rests), so on NAB two thirds of lnTail's calls repeat the one before.
	tailX, tailMean, tailStdev, tail float64
	tailOK                           bool
}

// NewLikelihood wraps inner; p must be valid.
func NewLikelihood(inner PointDetector, p LikelihoodParams, h Hints) *Likelihood {
	if h.Learn > 0 {
		p.LearningPeriod = h.Learn / 2
		p.EstimationSamples = max(1, h.Learn-p.LearningPeriod)
		p.HistoricWindow = max(p.HistoricWindow, p.EstimationSamples)
	}
	return &Likelihood{
		inner:  inner,
		p:      p,
		scores: make([]float64, p.HistoricWindow),
		values: make([]float64, p.HistoricWindow),
		avgs:   make([]float64, p.HistoricWindow),
		avg:    newRing(p.AveragingWindow),
	}
}

// Thresholds of nupic's _filterLikelihoods, computed as it computes them,
// and their logarithms.
var (
	redLikelihood    = 1.0 - 0.99999
	yellowLikelihood = 1.0 - 0.999
	lnRed, lnYellow  = math.Log(redLikelihood), math.Log(yellowLikelihood)
)

// Observe implements PointDetector.
func (d *Likelihood) Observe(t time.Time, v float64) float64 {
	raw := d.inner.Observe(t, v)
	scoring := d.iteration >= d.p.LearningPeriod+d.p.EstimationSamples
	if scoring && (!d.haveDist || d.iteration%d.p.ReestimationPeriod == 0) {
		d.estimate()
	}
	avg := d.average(raw)
	s := 0.0
	if scoring {
		lnL := d.lnTail(avg)
		prev := d.histL[len(d.histL)-1]
		if len(d.histL) == d.p.AveragingWindow {
			copy(d.histL, d.histL[1:])
			d.histL = d.histL[:len(d.histL)-1]
		}
		d.histL = append(d.histL, lnL)
		if lnL <= lnRed && prev <= lnRed {
			lnL = lnYellow
		}
		s = LikelihoodScore(lnL)
	}

	// Position iteration enters the window; the one HistoricWindow before
	// it, in the same slot, leaves.
	if left := d.iteration - len(d.scores); left >= d.p.LearningPeriod {
		d.avgSums.remove(d.avgs[d.next])
		d.valueSums.remove(d.values[d.next])
	}
	d.scores[d.next], d.values[d.next], d.avgs[d.next] = raw, v, avg
	if d.iteration >= d.p.LearningPeriod {
		d.avgSums.add(avg)
		d.valueSums.add(v)
	}
	d.next = (d.next + 1) % len(d.scores)
	d.iteration++
	return s
}

// average is nupic's MovingAverage.compute: it adds raw to the moving
// window and returns the window's mean.
func (d *Likelihood) average(raw float64) float64 {
	if d.avgLen == len(d.avg.buf) {
		d.total -= d.avg.buf[d.avg.next]
	} else {
		d.avgLen++
	}
	d.avg.push(raw)
	d.total += raw
	return d.total / float64(d.avgLen)
}

// lnTail is nupic's tailProbability in logarithms: the probability of an
// average at least as far from the mean as x, on the side x lies.
func (d *Likelihood) lnTail(x float64) float64 {
	if d.tailOK && x == d.tailX && d.mean == d.tailMean && d.stdev == d.tailStdev {
		return d.tail
	}
	d.tailX, d.tailMean, d.tailStdev, d.tailOK = x, d.mean, d.stdev, true
	if x < d.mean {
		x = 2*d.mean - x
	}
	z := (x - d.mean) / d.stdev
	// nupic takes 0.5·erfc(z/1.4142); lnGaussianTail(y) is ln 0.5·erfc(y/√2).
	d.tail = lnGaussianTail(z / 1.4142 * math.Sqrt2)
	return d.tail
}

// Floors of estimateNormal's variance and of the values' variance below
// which estimateAnomalyLikelihoods calls a metric flat.
const (
	minLikelihoodVariance = 0.0003
	flatValueVariance     = 1.5e-5
)

// estimate is estimateAnomalyLikelihoods over the historic window, with
// AnomalyLikelihood's choice of records to skip: it fits the averages of
// positions max(start, LearningPeriod) up to the current one, start being
// the window's first. nupic restarts the moving average at the window's
// first record, so where the window has slid (start > 0) its first
// AveragingWindow−1 averages are of fewer scores than the running ones
// held in avgSums; those few are swapped in a copy of the sums. It costs
// O(AveragingWindow²), or O(HistoricWindow) when a shift is moved.
func (d *Likelihood) estimate() {
	end := d.iteration
	start := max(0, end-len(d.scores))
	d.avgSums.recentre(d.avgs, d.next, minLikelihoodVariance)
	d.valueSums.recentre(d.values, d.next, flatValueVariance)

	as := d.avgSums
	if start > 0 {
		for k := max(start, d.p.LearningPeriod); k < min(start+d.p.AveragingWindow-1, end); k++ {
			as.remove(d.avgs[d.slot(k)])
			as.add(d.windowAverage(start, k))
		}
	}
	if as.n == 0 {
		d.mean, d.stdev = 0.5, 1e3 // nullDistribution
	} else {
		mean, variance := as.meanVariance()
		d.mean = max(mean, 0.03)
		d.stdev = math.Sqrt(max(variance, minLikelihoodVariance))
		if _, vv := d.valueSums.meanVariance(); vv < flatValueVariance {
			d.mean, d.stdev = 0.5, 1e3
		}
	}
	d.haveDist = true

	d.histL = d.histL[:0]
	for k := max(start, end-d.p.AveragingWindow); k < end; k++ {
		d.histL = append(d.histL, d.lnTail(d.windowAverage(start, k)))
	}
	// nupic carries on from the moving average's total over the window;
	// adding it up again keeps the running total from drifting.
	d.total = 0
	for _, x := range d.avg.buf[:d.avgLen] {
		d.total += x
	}
}

// slot is the ring slot of position k, one of the last HistoricWindow.
func (d *Likelihood) slot(k int) int { return k % len(d.scores) }

// windowAverage is the moving average at position k as nupic computes it
// over a window starting at position start: the running one, unless k is
// within AveragingWindow−1 of a start that has slid.
func (d *Likelihood) windowAverage(start, k int) float64 {
	if start == 0 || k >= start+d.p.AveragingWindow-1 {
		return d.avgs[d.slot(k)]
	}
	total := 0.0
	for j := start; j <= k; j++ {
		total += d.scores[d.slot(j)]
	}
	return total / float64(k-start+1)
}

// windowSums is the count, sum and sum of squares of a sliding set of
// numbers, so that their mean and variance cost O(1) however many there
// are. Kept plainly, Σx² − (Σx)²/n loses to cancellation all the digits
// the variance has below those of the mean: for a metric near 1e8 with
// variance 1e-5 there are none left, and the flat-metric test reads
// noise. So each number is taken less a shift k near the mean, and the
// sums are compensated (Neumaier), so that adding a number and later
// removing it leaves about one rounding behind, not a rounding of the
// largest sum between. When the mean wanders far from k compared with the
// spread (recentre), the sums are added up again around the new mean.
type windowSums struct {
	n      int
	k      float64 // the shift
	s1, c1 float64 // Σ(x−k) and its compensation
	s2, c2 float64 // Σ(x−k)² and its compensation
}

// add puts x in the set; the first number in an empty set becomes the
// shift.
func (s *windowSums) add(x float64) {
	if s.n == 0 {
		*s = windowSums{k: x}
	}
	s.n++
	s.accumulate(x-s.k, 1)
}

// remove takes out x, which add put in.
func (s *windowSums) remove(x float64) {
	s.n--
	s.accumulate(x-s.k, -1)
}

// accumulate adds d, a number less the shift, to the sums (sign 1) or
// takes it out (sign −1).
func (s *windowSums) accumulate(d, sign float64) {
	s.s1, s.c1 = neumaierAdd(s.s1, s.c1, float64(sign*d))
	s.s2, s.c2 = neumaierAdd(s.s2, s.c2, float64(sign*(d*d)))
}

// meanVariance returns the mean and the population variance; the set
// must not be empty.
func (s *windowSums) meanVariance() (mean, variance float64) {
	n := float64(s.n)
	m := (s.s1 + s.c1) / n
	return s.k + m, max(0, (s.s2+s.c2)/n-float64(m*m))
}

// recentre adds the sums up again around their mean when the mean has
// moved so far from the shift that rounding (mean−k)² could cost the
// variance, or floor if larger, more than about ten digits. xs is the
// ring the set's numbers are kept in, the newest at the slot before next.
// It costs O(1), or O(n) when it adds up again: for a window that slides
// over a steady metric, once.
func (s *windowSums) recentre(xs []float64, next int, floor float64) {
	if s.n == 0 {
		return
	}
	mean, variance := s.meanVariance()
	if m := mean - s.k; m*m <= 1e6*max(variance, floor) {
		return
	}
	*s = windowSums{n: s.n, k: mean}
	for i := range s.n {
		s.accumulate(xs[(next-s.n+i+len(xs))%len(xs)]-s.k, 1)
	}
}

// neumaierAdd adds x to sum with compensation c, Neumaier's variant of
// Kahan summation; sum+c is the compensated total.
func neumaierAdd(sum, c, x float64) (float64, float64) {
	t := sum + x
	if math.Abs(sum) >= math.Abs(x) {
		c += (sum - t) + x
	} else {
		c += (x - t) + sum
	}
	return t, c
}

// recycle implements recycler for the detector it wraps.
func (d *Likelihood) recycle() { Recycle(d.inner) }

var _ PointDetector = (*Likelihood)(nil)
