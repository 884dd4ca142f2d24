package detect

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// PointDetector scores a stream one raw point at a time, without windowing:
// Observe is called once per point in time order and returns the point's
// anomaly score in [0,1], higher meaning more anomalous. A detector keeps
// one series' state; it is deterministic (the same points give the same
// scores), never looks ahead, holds bounded memory and takes time only from
// its arguments. Scores are not rounded or saturated, so that one threshold
// can separate any two of them; a detector still learning returns 0. A
// PointDetector is not safe for concurrent use.
//
// A learned model (from the learn package) can take part in evaluation and
// ensembles by satisfying PointDetector; nothing here needs to import it.
type PointDetector interface {
	Observe(t time.Time, v float64) float64
}

// ErrUnknownPointDetector is returned by NewPointDetector and
// PointThreshold for a name that no detector is registered under.
var ErrUnknownPointDetector = errors.New("detect: unknown point detector")

// LikelihoodPrefix before a detector's name wraps it in anomaly-likelihood
// post-processing: "likelihood:cad_ose".
const LikelihoodPrefix = "likelihood:"

// Hints are facts about a whole series that a batch runner knows before
// the first point and a live agent does not. NAB's runner hands every one
// of its detectors the file's minimum, maximum and probationary length
// (nab/detectors/base.py); giving them here reproduces that setting, at
// the price of a look-ahead. The zero value gives nothing away: detectors
// then estimate their range online and learn for their own default period.
type Hints struct {
	// Min and Max bound the series' values when HasRange is set.
	Min, Max float64
	HasRange bool
	// Learn is how many leading points a detector may spend learning
	// before its scores matter (NAB: 15 % of the file); 0 means each
	// detector's own default.
	Learn int
}

// PointParams parameterises the point detectors: each reads its own
// section and the shared Hints. DefaultPointParams holds the values
// measured in docs/DETECTION.md; one PointParams serves every series.
type PointParams struct {
	// Threshold overrides the configured threshold of the detector being
	// built; 0 keeps its default (PointThreshold).
	Threshold float64
	Hints     Hints

	Gaussian    GaussianParams
	RobustZ     RobustZParams
	EWMA        EWMAParams
	CUSUM       CUSUMParams
	PageHinkley PageHinkleyParams
	HST         HSTParams
	CAD         CADParams
	Spatial     SpatialParams
	Seasonal    SeasonalParams
	Discord     DiscordParams
	Likelihood  LikelihoodParams
	Ensemble    EnsembleParams
}

// DefaultPointParams returns the parameters every point detector uses
// unless told otherwise.
func DefaultPointParams() PointParams {
	return PointParams{
		Gaussian:    GaussianParams{Window: 2000, Warmup: 100},
		RobustZ:     RobustZParams{Window: 500, Warmup: 100},
		EWMA:        EWMAParams{Alpha: 0.05, Warmup: 100},
		CUSUM:       CUSUMParams{LevelAlpha: 0.3, SpreadAlpha: 0.01, Drift: 1, Limit: 8, Warmup: 100},
		PageHinkley: PageHinkleyParams{LevelAlpha: 0.3, SpreadAlpha: 0.01, Delta: 0.5, Lambda: 10, Warmup: 100},
		HST:         HSTParams{Trees: 25, Depth: 10, Window: 1000, Shingle: 2, Seed: 1},
		CAD: CADParams{
			Bits: 3, BaseThreshold: 0.75, RestPeriod: 60, MaxLeftSemiContexts: 7,
			MaxActiveNeurons: 15, Learn: 150, History: 2000, Tolerance: 0.2, MaxContexts: 1 << 20,
		},
		Spatial: SpatialParams{Tolerance: 0.05, Warmup: 150},
		Seasonal: SeasonalParams{
			Periods: []time.Duration{24 * time.Hour, 7 * 24 * time.Hour}, MaxBins: 2016,
			LevelAlpha: 0.01, SeasonAlpha: 0.3, SpreadAlpha: 0.01, SmoothAlpha: 0.1, Clip: 3, Warmup: 150,
		},
		Discord: DiscordParams{Block: 36, Length: 6, History: 2000, Decay: 0.01, Warmup: 18},
		Likelihood: LikelihoodParams{
			LearningPeriod: 288, EstimationSamples: 100, HistoricWindow: 8640,
			ReestimationPeriod: 100, AveragingWindow: 10,
		},
		Ensemble: EnsembleParams{Members: []string{"cad_ose", "spatial", "seasonal", "discord"}, Combine: CombineMax},
	}
}

// pointKind is one registered detector.
type pointKind struct {
	doc string
	// threshold is the default configured threshold: the score at which
	// an operator would alert without tuning.
	threshold float64
	build     func(p PointParams) (PointDetector, error)
}

func wrap[T PointDetector](f func(PointParams) T) func(PointParams) (PointDetector, error) {
	return func(p PointParams) (PointDetector, error) { return f(p), nil }
}

// pointKinds is the registry of point detectors by name. It is built once
// and never changed.
var pointKinds = map[string]pointKind{
	"gaussian": {"Gaussian tail probability of the point against a sliding window's mean and standard deviation",
		0.8, wrap(func(p PointParams) *GaussianTail { return NewGaussianTail(p.Gaussian) })},
	"robust_z": {"distance from a sliding window's median relative to the window's farthest point from it (Hampel z over the window's largest)",
		0.6, wrap(func(p PointParams) *RobustZPoint { return NewRobustZPoint(p.RobustZ) })},
	"ewma": {"EWMA control chart: distance from the EWMA in exponentially weighted standard deviations",
		0.9, wrap(func(p PointParams) *EWMAChart { return NewEWMAChart(p.EWMA) })},
	"cusum": {"two-sided CUSUM of standardised one-step forecast residuals (Page 1954)",
		0.5, wrap(func(p PointParams) *CUSUM { return NewCUSUM(p.CUSUM) })},
	"page_hinkley": {"two-sided Page-Hinkley test of the magnitudes of standardised one-step forecast residuals",
		0.5, wrap(func(p PointParams) *PageHinkley { return NewPageHinkley(p.PageHinkley) })},
	"hst": {"Half-Space Trees over a shingle of recent values, with online range estimation (Tan, Ting and Liu 2011)",
		0.6, wrap(func(p PointParams) *HalfSpaceTrees { return NewHalfSpaceTrees(p.HST, p.Hints) })},
	"cad_ose": {"Contextual Anomaly Detector, open-source edition: NAB's contextOSE ported to Go",
		0.75, wrap(func(p PointParams) *CADOSE { return NewCADOSE(p.CAD, p.Hints) })},
	"spatial": {"spatial novelty: a value beyond the range seen so far by more than a tolerance (NAB's numenta detector)",
		0.5, wrap(func(p PointParams) *SpatialNovelty { return NewSpatialNovelty(p.Spatial) })},
	"seasonal": {"onset of a sustained deviation from a robust Holt-Winters forecast under the best of a daily, a weekly and no season",
		0.95, wrap(func(p PointParams) *Seasonal { return NewSeasonal(p.Seasonal) })},
	"discord": {"distance of the last Length blocks' shape from the nearest shape seen before, against the decaying record (an online time-series discord)",
		0.55, wrap(func(p PointParams) *Discord { return NewDiscord(p.Discord) })},
	"ensemble": {"the maximum (or mean) of its members' calibrated scores",
		0.5, nil}, // built by newPoint: its members come from this registry
}

// likelihoodThreshold is the configured threshold of a likelihood-wrapped
// detector: a tail probability of 1e-5 (see LikelihoodScore).
var likelihoodThreshold = LikelihoodScore(math.Log(1e-5))

// PointDetectorNames lists the registered detectors, sorted. Any of them
// may also be named with LikelihoodPrefix.
func PointDetectorNames() []string {
	names := make([]string, 0, len(pointKinds))
	for n := range pointKinds {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// PointDetectorDoc returns a one-line description of the named detector.
func PointDetectorDoc(name string) string {
	if inner, ok := strings.CutPrefix(name, LikelihoodPrefix); ok {
		return "anomaly likelihood of " + inner + "'s scores"
	}
	return pointKinds[name].doc
}

// NewPointDetector builds the named detector with fresh state. The name
// is one of PointDetectorNames, optionally prefixed by LikelihoodPrefix.
// It returns an error wrapping ErrUnknownPointDetector for any other name,
// or the error of p.Validate.
func NewPointDetector(name string, p PointParams) (PointDetector, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return newPoint(name, p, 0)
}

// Recycle hands the memory d holds back to the package for detectors
// built later to reuse; d must not be used again. Scoring many series
// one after another, as `agent eval nab` does, then spares most of the
// allocation and garbage collection that fresh detectors cost, and the
// scores are the same. A detector that is not recycled is collected as
// usual.
func Recycle(d PointDetector) {
	if r, ok := d.(recycler); ok {
		r.recycle()
	}
}

// recycler is a detector with memory worth recycling.
type recycler interface{ recycle() }

func newPoint(name string, p PointParams, depth int) (PointDetector, error) {
	if depth > 4 {
		return nil, fmt.Errorf("point detector %q: nested too deeply", name)
	}
	if inner, ok := strings.CutPrefix(name, LikelihoodPrefix); ok {
		d, err := newPoint(inner, p, depth+1)
		if err != nil {
			return nil, err
		}
		return NewLikelihood(d, p.Likelihood, p.Hints), nil
	}
	k, ok := pointKinds[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %s, each optionally prefixed by %q)",
			ErrUnknownPointDetector, name, strings.Join(PointDetectorNames(), ", "), LikelihoodPrefix)
	}
	if name == "ensemble" {
		if depth > 0 {
			return nil, fmt.Errorf("point detector %q: an ensemble cannot contain an ensemble", name)
		}
		return NewEnsemble(p)
	}
	return k.build(p)
}

// PointThreshold returns the configured threshold of the named detector:
// p.Threshold when set, else the detector's default.
func PointThreshold(name string, p PointParams) (float64, error) {
	if p.Threshold != 0 {
		return p.Threshold, nil
	}
	if _, ok := strings.CutPrefix(name, LikelihoodPrefix); ok {
		if _, err := PointThreshold(strings.TrimPrefix(name, LikelihoodPrefix), PointParams{}); err != nil {
			return 0, err
		}
		return likelihoodThreshold, nil
	}
	k, ok := pointKinds[name]
	if !ok {
		return 0, fmt.Errorf("%w %q (known: %s)", ErrUnknownPointDetector, name, strings.Join(PointDetectorNames(), ", "))
	}
	return k.threshold, nil
}

// Validate checks p; errors name the field.
func (p PointParams) Validate() error {
	var errs []error
	check := func(ok bool, field string, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
		}
	}
	check(p.Threshold == 0 || (p.Threshold > 0 && p.Threshold < 1), "threshold", "must be in (0,1), got %v", p.Threshold)
	check(!p.Hints.HasRange || p.Hints.Min <= p.Hints.Max, "hints.max", "must be >= hints.min")
	check(p.Hints.Learn >= 0, "hints.learn", "must be >= 0, got %d", p.Hints.Learn)
	check(p.Gaussian.Window >= 2, "gaussian.window", "must be >= 2, got %d", p.Gaussian.Window)
	check(p.Gaussian.Warmup >= 2, "gaussian.warmup", "must be >= 2, got %d", p.Gaussian.Warmup)
	check(p.RobustZ.Window >= 3, "robust_z.window", "must be >= 3, got %d", p.RobustZ.Window)
	check(p.RobustZ.Warmup >= 3, "robust_z.warmup", "must be >= 3, got %d", p.RobustZ.Warmup)
	check(p.EWMA.Alpha > 0 && p.EWMA.Alpha <= 1, "ewma.alpha", "must be in (0,1], got %v", p.EWMA.Alpha)
	check(p.CUSUM.LevelAlpha > 0 && p.CUSUM.LevelAlpha <= 1, "cusum.level_alpha", "must be in (0,1], got %v", p.CUSUM.LevelAlpha)
	check(p.CUSUM.SpreadAlpha > 0 && p.CUSUM.SpreadAlpha <= 1, "cusum.spread_alpha", "must be in (0,1], got %v", p.CUSUM.SpreadAlpha)
	check(p.CUSUM.Warmup >= 2, "cusum.warmup", "must be >= 2, got %d", p.CUSUM.Warmup)
	check(p.CUSUM.Drift >= 0, "cusum.drift", "must be >= 0, got %v", p.CUSUM.Drift)
	check(p.CUSUM.Limit > 0, "cusum.limit", "must be > 0, got %v", p.CUSUM.Limit)
	check(p.PageHinkley.LevelAlpha > 0 && p.PageHinkley.LevelAlpha <= 1, "page_hinkley.level_alpha", "must be in (0,1], got %v", p.PageHinkley.LevelAlpha)
	check(p.PageHinkley.SpreadAlpha > 0 && p.PageHinkley.SpreadAlpha <= 1, "page_hinkley.spread_alpha", "must be in (0,1], got %v", p.PageHinkley.SpreadAlpha)
	check(p.PageHinkley.Warmup >= 2, "page_hinkley.warmup", "must be >= 2, got %d", p.PageHinkley.Warmup)
	check(p.PageHinkley.Delta >= 0, "page_hinkley.delta", "must be >= 0, got %v", p.PageHinkley.Delta)
	check(p.PageHinkley.Lambda > 0, "page_hinkley.lambda", "must be > 0, got %v", p.PageHinkley.Lambda)
	check(p.HST.Trees >= 1, "hst.trees", "must be >= 1, got %d", p.HST.Trees)
	check(p.HST.Depth >= 1 && p.HST.Depth <= 24, "hst.depth", "must be in [1,24], got %d", p.HST.Depth)
	check(p.HST.Window >= 2, "hst.window", "must be >= 2, got %d", p.HST.Window)
	check(p.HST.Shingle >= 1 && p.HST.Shingle <= 16, "hst.shingle", "must be in [1,16], got %d", p.HST.Shingle)
	check(p.CAD.Bits >= 1 && p.CAD.Bits <= 16, "cad.bits", "must be in [1,16], got %d", p.CAD.Bits)
	check(p.CAD.BaseThreshold > 0, "cad.base_threshold", "must be > 0, got %v", p.CAD.BaseThreshold)
	check(p.CAD.RestPeriod >= 0, "cad.rest_period", "must be >= 0, got %d", p.CAD.RestPeriod)
	check(p.CAD.MaxLeftSemiContexts >= 1, "cad.max_left_semi_contexts", "must be >= 1, got %d", p.CAD.MaxLeftSemiContexts)
	check(p.CAD.MaxActiveNeurons >= 1, "cad.max_active_neurons", "must be >= 1, got %d", p.CAD.MaxActiveNeurons)
	check(p.CAD.Learn >= 2, "cad.learn", "must be >= 2, got %d", p.CAD.Learn)
	check(p.CAD.History >= 0, "cad.history", "must be >= 0, got %d", p.CAD.History)
	check(p.CAD.Tolerance >= 0, "cad.tolerance", "must be >= 0, got %v", p.CAD.Tolerance)
	check(p.CAD.MaxContexts >= 1, "cad.max_contexts", "must be >= 1, got %d", p.CAD.MaxContexts)
	check(p.Spatial.Tolerance >= 0, "spatial.tolerance", "must be >= 0, got %v", p.Spatial.Tolerance)
	check(p.Spatial.Warmup >= 1, "spatial.warmup", "must be >= 1, got %d", p.Spatial.Warmup)
	sp := p.Seasonal
	for i, per := range sp.Periods {
		check(per >= time.Second, fmt.Sprintf("seasonal.periods[%d]", i), "must be >= 1s, got %v", per)
	}
	check(sp.MaxBins >= 4 && sp.MaxBins <= 1<<16, "seasonal.max_bins", "must be in [4,65536], got %d", sp.MaxBins)
	check(sp.LevelAlpha > 0 && sp.LevelAlpha <= 1, "seasonal.level_alpha", "must be in (0,1], got %v", sp.LevelAlpha)
	check(sp.SeasonAlpha > 0 && sp.SeasonAlpha <= 1, "seasonal.season_alpha", "must be in (0,1], got %v", sp.SeasonAlpha)
	check(sp.SpreadAlpha > 0 && sp.SpreadAlpha < 1, "seasonal.spread_alpha", "must be in (0,1), got %v", sp.SpreadAlpha)
	check(sp.SmoothAlpha > 0 && sp.SmoothAlpha <= 1, "seasonal.smooth_alpha", "must be in (0,1], got %v", sp.SmoothAlpha)
	check(sp.Clip > 0, "seasonal.clip", "must be > 0, got %v", sp.Clip)
	check(sp.Warmup >= 2, "seasonal.warmup", "must be >= 2, got %d", sp.Warmup)
	dc := p.Discord
	check(dc.Block >= 1, "discord.block", "must be >= 1, got %d", dc.Block)
	check(dc.Length >= 1, "discord.length", "must be >= 1, got %d", dc.Length)
	check(dc.History >= dc.Length && dc.History <= 1<<20, "discord.history", "must be in [length (%d), 1048576], got %d", dc.Length, dc.History)
	check(dc.Decay >= 0 && dc.Decay < 1, "discord.decay", "must be in [0,1), got %v", dc.Decay)
	check(dc.Warmup >= 2*dc.Length, "discord.warmup", "must be >= 2·length (%d), got %d", 2*dc.Length, dc.Warmup)
	l := p.Likelihood
	check(l.LearningPeriod >= 0, "likelihood.learning_period", "must be >= 0, got %d", l.LearningPeriod)
	check(l.EstimationSamples >= 1, "likelihood.estimation_samples", "must be >= 1, got %d", l.EstimationSamples)
	check(l.HistoricWindow >= l.EstimationSamples, "likelihood.historic_window", "must be >= estimation_samples, got %d", l.HistoricWindow)
	check(l.ReestimationPeriod >= 1, "likelihood.reestimation_period", "must be >= 1, got %d", l.ReestimationPeriod)
	check(l.AveragingWindow >= 1, "likelihood.averaging_window", "must be >= 1, got %d", l.AveragingWindow)
	check(len(p.Ensemble.Members) > 0, "ensemble.members", "must name at least one detector")
	check(p.Ensemble.Combine == CombineMax || p.Ensemble.Combine == CombineMean, "ensemble.combine",
		"must be %q or %q, got %q", CombineMax, CombineMean, p.Ensemble.Combine)
	return errors.Join(errs...)
}

// LikelihoodScore maps the natural logarithm of a probability to a score
// in [0,1): 0 for certainty, growing with the number of decimal digits of
// surprise d = −log10 p as d/(d+1) (0.5 at p = 0.1, 0.8333 at 1e-5, 0.9 at
// 1e-9). It takes the logarithm so that probabilities far below the
// smallest float64 still order correctly, and it never reaches 1.
func LikelihoodScore(lnP float64) float64 {
	if math.IsNaN(lnP) {
		return 0
	}
	return score(-lnP / math.Ln10)
}

// lnGaussianTail returns ln P(Z ≥ z) for a standard normal Z, accurate far
// into the tail where the probability itself underflows.
func lnGaussianTail(z float64) float64 {
	if math.IsNaN(z) {
		return 0
	}
	x := z / math.Sqrt2
	if x < 25 {
		return math.Log(0.5 * math.Erfc(x))
	}
	if math.IsInf(x, 1) {
		return math.Inf(-1)
	}
	// erfc(x) ≈ e^{−x²}/(x√π)·(1 − 1/(2x²) + 3/(4x⁴)) for large x.
	x2 := float64(x * x)
	return -x2 - math.Log(x*math.Sqrt(math.Pi)) + math.Log1p(-1/(2*x2)+3/(4*x2*x2)) + math.Log(0.5)
}

// spreadFloor keeps deviations finite on a perfectly flat history: a
// change from a constant is measured against a spread of 1e-9 of the
// level (or 1e-9), huge but ordered.
func spreadFloor(spread, level float64) float64 {
	return max(spread, 1e-9*max(math.Abs(level), 1))
}
