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
// point costs O(1) amortised plus the inner detector; memory is
// O(HistoricWindow).
type Likelihood struct {
	inner PointDetector
	p     LikelihoodParams

	iteration int
	scores    []float64 // ring of the last HistoricWindow raw scores
	values    []float64 // and of the values scored
	next      int
	filled    int

	haveDist    bool
	mean, stdev float64
	avg         ring // moving average of raw scores
	avgLen      int
	total       float64
	histL       []float64 // last AveragingWindow unfiltered likelihoods
	avgs        []float64 // scratch for estimate
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
		avg:    newRing(p.AveragingWindow),
	}
}

// Thresholds of nupic's _filterLikelihoods, computed as it computes them.
var (
	redLikelihood    = 1.0 - 0.99999
	yellowLikelihood = 1.0 - 0.999
)

// Observe implements PointDetector.
func (d *Likelihood) Observe(t time.Time, v float64) float64 {
	raw := d.inner.Observe(t, v)
	s := 0.0
	if d.iteration >= d.p.LearningPeriod+d.p.EstimationSamples {
		if !d.haveDist || d.iteration%d.p.ReestimationPeriod == 0 {
			d.estimate()
		}
		avg := d.average(raw)
		lnL := d.lnTail(avg)
		prev := d.histL[len(d.histL)-1]
		if len(d.histL) == d.p.AveragingWindow {
			copy(d.histL, d.histL[1:])
			d.histL = d.histL[:len(d.histL)-1]
		}
		d.histL = append(d.histL, lnL)
		red := math.Log(redLikelihood)
		if lnL <= red && prev <= red {
			lnL = math.Log(yellowLikelihood)
		}
		s = LikelihoodScore(lnL)
	}
	d.scores[d.next], d.values[d.next] = raw, v
	d.next = (d.next + 1) % len(d.scores)
	d.filled = min(d.filled+1, len(d.scores))
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
	if x < d.mean {
		x = 2*d.mean - x
	}
	z := (x - d.mean) / d.stdev
	// nupic takes 0.5·erfc(z/1.4142); lnGaussianTail(y) is ln 0.5·erfc(y/√2).
	return lnGaussianTail(z / 1.4142 * math.Sqrt2)
}

// estimate is estimateAnomalyLikelihoods over the historic window, with
// AnomalyLikelihood's choice of records to skip.
func (d *Likelihood) estimate() {
	n := d.filled
	shifted := max(0, d.iteration-len(d.scores))
	skip := min(d.iteration, max(0, d.p.LearningPeriod-shifted))
	start := (d.next - n + len(d.scores)) % len(d.scores)
	at := func(i int) int { return (start + i) % len(d.scores) }

	// The moving average restarts at the window's first record.
	d.avg = newRing(d.p.AveragingWindow)
	d.avgLen, d.total = 0, 0
	var sw, vw welford
	avgs := d.avgs[:0]
	for i := range n {
		a := d.average(d.scores[at(i)])
		avgs = append(avgs, a)
		if i >= skip {
			sw.add(a)
			vw.add(d.values[at(i)])
		}
	}
	if n <= skip {
		d.mean, d.stdev = 0.5, 1e3 // nullDistribution
	} else {
		d.mean = max(sw.mean, 0.03)
		d.stdev = math.Sqrt(max(sw.m2/float64(sw.n), 0.0003))
		if vw.m2/float64(vw.n) < 1.5e-5 {
			d.mean, d.stdev = 0.5, 1e3
		}
	}
	d.haveDist = true
	d.avgs = avgs
	d.histL = d.histL[:0]
	for _, a := range avgs[max(0, len(avgs)-d.p.AveragingWindow):] {
		d.histL = append(d.histL, d.lnTail(a))
	}
}

var _ PointDetector = (*Likelihood)(nil)
