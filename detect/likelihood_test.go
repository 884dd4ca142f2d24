package detect

import (
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestLikelihoodFitMatchesNaive checks the running sums Likelihood fits
// its distribution from against naiveLikelihoodFit, which adds up the
// window again as nupic does, after every re-estimation of random streams:
// raw scores in [0, 1], and values in runs at levels up to ±1e8 that are
// flat or noisy, so that the shifts must move and the flat-metric rule
// must still see a flat run after a jump.
func TestLikelihoodFitMatchesNaive(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := LikelihoodParams{
			LearningPeriod:     rapid.IntRange(0, 40).Draw(t, "learning"),
			EstimationSamples:  rapid.IntRange(1, 40).Draw(t, "estimation"),
			ReestimationPeriod: rapid.IntRange(1, 30).Draw(t, "reestimation"),
			AveragingWindow:    rapid.IntRange(1, 10).Draw(t, "averaging"),
		}
		p.HistoricWindow = rapid.IntRange(p.AveragingWindow, 120).Draw(t, "historic")
		var raw, vals []float64
		for range rapid.IntRange(1, 5).Draw(t, "runs") {
			n := rapid.IntRange(1, 150).Draw(t, "length")
			level := rapid.SampledFrom([]float64{0, 1, -4321.5, 1e8, -1e8 + 0.1}).Draw(t, "level")
			noise := rapid.SampledFrom([]float64{0, 1e-3, 0.5}).Draw(t, "noise")
			score := rapid.Float64Range(0, 1).Draw(t, "score")
			scoreNoise := rapid.Float64Range(0, 1).Draw(t, "scoreNoise")
			for range n {
				vals = append(vals, level+noise*rapid.Float64Range(-1, 1).Draw(t, "v"))
				raw = append(raw, score+scoreNoise*(rapid.Float64Range(0, 1).Draw(t, "s")-score))
			}
		}

		d := NewLikelihood(&replayRaw{scores: raw}, p, Hints{})
		for i, v := range vals {
			refit := i >= p.LearningPeriod+p.EstimationSamples && (i == p.LearningPeriod+p.EstimationSamples || i%p.ReestimationPeriod == 0)
			d.Observe(time.Unix(int64(i), 0), v)
			if !refit {
				continue
			}
			mean, stdev, nearFlat := naiveLikelihoodFit(raw[:i], vals[:i], p)
			if nearFlat {
				continue // the flat-metric rule is at its threshold: either answer will do
			}
			if !closeTo(d.mean, mean) || !closeTo(d.stdev, stdev) {
				t.Fatalf("point %d: fitted mean %.17g, stdev %.17g; adding up again gives %.17g, %.17g", i, d.mean, d.stdev, mean, stdev)
			}
		}
	})
}

// TestLikelihoodTailCache checks that reusing the last tail probability
// changes no score: streams of raw scores in runs, some constant, so that
// averages repeat within and across re-estimations, scored with the cache
// and with it emptied before every point.
func TestLikelihoodTailCache(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := LikelihoodParams{
			LearningPeriod:     rapid.IntRange(0, 20).Draw(t, "learning"),
			EstimationSamples:  rapid.IntRange(1, 20).Draw(t, "estimation"),
			ReestimationPeriod: rapid.IntRange(1, 15).Draw(t, "reestimation"),
			AveragingWindow:    rapid.IntRange(1, 5).Draw(t, "averaging"),
		}
		p.HistoricWindow = rapid.IntRange(p.AveragingWindow, 60).Draw(t, "historic")
		var raw []float64
		for range rapid.IntRange(1, 8).Draw(t, "runs") {
			score := rapid.SampledFrom([]float64{0, 1, 0.25}).Draw(t, "score")
			noisy := rapid.Bool().Draw(t, "noisy")
			for range rapid.IntRange(1, 40).Draw(t, "length") {
				s := score
				if noisy {
					s = rapid.Float64Range(0, 1).Draw(t, "s")
				}
				raw = append(raw, s)
			}
		}
		cached := NewLikelihood(&replayRaw{scores: raw}, p, Hints{})
		fresh := NewLikelihood(&replayRaw{scores: raw}, p, Hints{})
		for i := range raw {
			ts := time.Unix(int64(i), 0)
			v := float64(i % 7)
			fresh.tailOK = false
			if got, want := cached.Observe(ts, v), fresh.Observe(ts, v); got != want {
				t.Fatalf("point %d: %v with the cache, %v without", i, got, want)
			}
		}
	})
}

func closeTo(got, want float64) bool { return math.Abs(got-want) <= 1e-12+1e-9*math.Abs(want) }

// naiveLikelihoodFit is nupic's estimateAnomalyLikelihoods over the last
// HistoricWindow of raw scores and values seen before a point, in two
// passes: the distribution's mean and standard deviation, and whether the
// values' variance is within a millionth of the flat-metric threshold.
func naiveLikelihoodFit(raw, vals []float64, p LikelihoodParams) (mean, stdev float64, nearFlat bool) {
	end := len(raw)
	start := max(0, end-p.HistoricWindow)
	from := max(start, p.LearningPeriod)
	if from >= end {
		return 0.5, 1e3, false
	}
	var avgs []float64
	for k := from; k < end; k++ {
		total := 0.0
		first := max(start, k-p.AveragingWindow+1)
		for _, s := range raw[first : k+1] {
			total += s
		}
		avgs = append(avgs, total/float64(k+1-first))
	}
	am, av := twoPass(avgs)
	_, vv := twoPass(vals[from:end])
	nearFlat = math.Abs(vv-flatValueVariance) <= 1e-6*flatValueVariance
	if vv < flatValueVariance {
		return 0.5, 1e3, nearFlat
	}
	return max(am, 0.03), math.Sqrt(max(av, minLikelihoodVariance)), nearFlat
}

// twoPass returns the mean and population variance of xs.
func twoPass(xs []float64) (mean, variance float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		variance += (x - mean) * (x - mean)
	}
	return mean, variance / float64(len(xs))
}

// replayRaw is a PointDetector that returns prepared raw scores.
type replayRaw struct {
	scores []float64
	i      int
}

func (r *replayRaw) Observe(time.Time, float64) float64 {
	s := r.scores[r.i]
	r.i++
	return s
}
