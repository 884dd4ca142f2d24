package detect_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch/detect"
)

// pointStart is the time of the first point of every synthetic stream.
var pointStart = time.Date(2026, 7, 15, 0, 0, 0, 0, time.UTC)

const (
	pointLen       = 1400 // points in a synthetic stream
	pointChange    = 1000 // where the anomaly starts
	pointSettled   = 600  // every detector has warmed up by here
	pointPeriod    = 50   // of the daily-like cycle
	pointAmplitude = 5
)

// pointStream returns a periodic signal with Gaussian noise (σ = 0.5) and,
// from pointChange on, the named anomaly: a single spike of +30, a level
// shift of +15, or noise fifteen times as wide.
func pointStream(seed uint64, anomaly string) []float64 {
	rng := rand.New(rand.NewPCG(seed, 0xbeef))
	vals := make([]float64, pointLen)
	for i := range vals {
		v := 20 + pointAmplitude*math.Sin(2*math.Pi*float64(i)/pointPeriod)
		vals[i] = plant(anomaly, i, pointChange, v, 0.5*rng.NormFloat64())
	}
	return vals
}

func observeAll(t testing.TB, name string, p detect.PointParams, vals []float64) []float64 {
	t.Helper()
	d, err := detect.NewPointDetector(name, p)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(vals))
	for i, v := range vals {
		out[i] = d.Observe(pointStart.Add(time.Duration(i)*time.Minute), v)
		if !(out[i] >= 0 && out[i] <= 1) {
			t.Fatalf("%s: point %d: score %v outside [0,1]", name, i, out[i])
		}
	}
	return out
}

// pointDetectors are the detectors each synthetic test runs, with the
// points after the change within which each kind of anomaly must reach
// its highest score (0: not tested). Change detectors need a few points to
// accumulate a shift. The likelihood averages the last ten raw scores and
// so, by design, barely moves for a lone spike (NAB's numenta detector
// leaves spikes to its spatial rule, as the ensemble leaves them to
// "spatial"); it is tested on the lasting anomalies. So is "seasonal",
// which scores a smoothed residual: here, with a 50-minute cycle that no
// daily or weekly model fits, a lone spike is diluted by the cycle's own
// residuals (seasonal_test.go plants one where the daily model fits).
// "discord" compares shapes of blocks, and its defaults (blocks of 36
// points, eight to a day of 5-minute points) would give it fewer blocks
// than this stream's warm-up; it runs scaled to the stream's 50-point
// cycle (ten blocks of 5) and scores only the point that completes a
// block, so it gets two blocks.
var pointDetectors = []struct {
	name                   string
	spike, shift, variance int
	params                 func(*detect.PointParams) // changes from the defaults, or nil
}{
	{"gaussian", 1, 1, 10, nil},
	{"robust_z", 1, 1, 10, nil},
	{"ewma", 1, 1, 10, nil},
	{"cusum", 1, 5, 10, nil},
	{"page_hinkley", 1, 5, 10, nil},
	{"hst", 1, 1, 10, nil},
	{"cad_ose", 1, 1, 10, nil},
	{"spatial", 1, 1, 10, nil},
	{"seasonal", 0, 5, 20, nil},
	{"discord", 10, 10, 10, scaleDiscord},
	{"likelihood:gaussian", 0, 10, 20, nil},
	{"ensemble", 1, 1, 10, nil},
}

// scaleDiscord sets discord's blocks to the synthetic streams' cycle.
func scaleDiscord(p *detect.PointParams) {
	p.Discord.Block = pointPeriod / 10
	p.Discord.History = 200
}

func TestPointDetectorsScoreAnomaliesAboveNormalPoints(t *testing.T) {
	for _, d := range pointDetectors {
		p := detect.DefaultPointParams()
		if d.params != nil {
			d.params(&p)
		}
		for _, anomaly := range []string{"spike", "level shift", "variance change"} {
			span := map[string]int{"spike": d.spike, "level shift": d.shift, "variance change": d.variance}[anomaly]
			if span == 0 {
				continue
			}
			t.Run(d.name+"/"+anomaly, func(t *testing.T) {
				t.Parallel()
				for seed := uint64(1); seed <= 5; seed++ {
					got := observeAll(t, d.name, p, pointStream(seed, anomaly))
					normal := slices.Max(got[pointSettled:pointChange])
					anomalous := slices.Max(got[pointChange : pointChange+span])
					if anomalous <= normal {
						t.Errorf("seed %d: the %s scores %.6f within %d points, not above the highest normal score %.6f",
							seed, anomaly, anomalous, span, normal)
					}
				}
			})
		}
	}
}

func TestPointDetectorsAreDeterministic(t *testing.T) {
	p := detect.DefaultPointParams()
	vals := pointStream(3, "level shift")
	for _, name := range append(detect.PointDetectorNames(), "likelihood:hst") {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, b := observeAll(t, name, p, vals), observeAll(t, name, p, vals)
			if !slices.Equal(a, b) {
				t.Fatal("two runs over the same points scored differently")
			}
			if slices.Max(a) == 0 {
				t.Fatal("every point scored 0")
			}
		})
	}
}

// TestPointDetectorsWithHints runs every detector with the hints NAB's
// runner gives, to cover those paths.
func TestPointDetectorsWithHints(t *testing.T) {
	vals := pointStream(4, "spike")
	p := detect.DefaultPointParams()
	p.Hints = detect.Hints{Min: slices.Min(vals), Max: slices.Max(vals), HasRange: true, Learn: 210}
	for _, name := range append(detect.PointDetectorNames(), "likelihood:cad_ose") {
		t.Run(name, func(t *testing.T) {
			got := observeAll(t, name, p, vals)
			if normal := slices.Max(got[pointSettled:pointChange]); got[pointChange] <= normal && name != "likelihood:cad_ose" && name != "seasonal" && name != "discord" {
				t.Errorf("spike scores %.6f, not above %.6f", got[pointChange], normal)
			}
		})
	}
}

func TestNewPointDetectorRejectsUnknownNames(t *testing.T) {
	p := detect.DefaultPointParams()
	for _, name := range []string{"", "crystal_ball", "likelihood:", "likelihood:crystal_ball"} {
		_, err := detect.NewPointDetector(name, p)
		if !errors.Is(err, detect.ErrUnknownPointDetector) {
			t.Errorf("%q: err = %v, want ErrUnknownPointDetector", name, err)
		} else if !strings.Contains(err.Error(), "cad_ose") {
			t.Errorf("%q: error does not list the known detectors: %v", name, err)
		}
	}
	p.Ensemble.Members = []string{"gaussian", "ensemble"}
	if _, err := detect.NewPointDetector("ensemble", p); err == nil {
		t.Error("an ensemble inside an ensemble was accepted")
	}
}

func TestPointParamsValidate(t *testing.T) {
	tests := []struct {
		field string
		set   func(*detect.PointParams)
	}{
		{"threshold", func(p *detect.PointParams) { p.Threshold = 1 }},
		{"hints.max", func(p *detect.PointParams) { p.Hints = detect.Hints{Min: 2, Max: 1, HasRange: true} }},
		{"gaussian.window", func(p *detect.PointParams) { p.Gaussian.Window = 1 }},
		{"robust_z.warmup", func(p *detect.PointParams) { p.RobustZ.Warmup = 0 }},
		{"ewma.alpha", func(p *detect.PointParams) { p.EWMA.Alpha = 0 }},
		{"cusum.limit", func(p *detect.PointParams) { p.CUSUM.Limit = 0 }},
		{"page_hinkley.lambda", func(p *detect.PointParams) { p.PageHinkley.Lambda = -1 }},
		{"hst.depth", func(p *detect.PointParams) { p.HST.Depth = 40 }},
		{"cad.bits", func(p *detect.PointParams) { p.CAD.Bits = 0 }},
		{"seasonal.max_bins", func(p *detect.PointParams) { p.Seasonal.MaxBins = 1 }},
		{"seasonal.periods[0]", func(p *detect.PointParams) { p.Seasonal.Periods = []time.Duration{0} }},
		{"discord.block", func(p *detect.PointParams) { p.Discord.Block = 0 }},
		{"discord.history", func(p *detect.PointParams) { p.Discord.History = p.Discord.Length - 1 }},
		{"discord.decay", func(p *detect.PointParams) { p.Discord.Decay = 1 }},
		{"discord.warmup", func(p *detect.PointParams) { p.Discord.Warmup = 2*p.Discord.Length - 1 }},
		{"likelihood.historic_window", func(p *detect.PointParams) { p.Likelihood.HistoricWindow = 1 }},
		{"ensemble.combine", func(p *detect.PointParams) { p.Ensemble.Combine = "median" }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			p := detect.DefaultPointParams()
			tt.set(&p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.field+":") {
				t.Errorf("err = %v, want one naming %s", err, tt.field)
			}
		})
	}
	if err := detect.DefaultPointParams().Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

func TestPointThresholds(t *testing.T) {
	p := detect.DefaultPointParams()
	for _, name := range append(detect.PointDetectorNames(), "likelihood:ewma") {
		th, err := detect.PointThreshold(name, p)
		if err != nil || !(th > 0 && th < 1) {
			t.Errorf("%s: threshold %v, %v", name, th, err)
		}
	}
	p.Threshold = 0.42
	if th, _ := detect.PointThreshold("ewma", p); th != 0.42 {
		t.Errorf("override: threshold %v, want 0.42", th)
	}
}

func TestLikelihoodScore(t *testing.T) {
	prev := -1.0
	for _, p := range []float64{1, 0.5, 1e-3, 1e-5, 1e-9, 1e-300} {
		s := detect.LikelihoodScore(math.Log(p))
		if !(s > prev && s < 1) {
			t.Errorf("LikelihoodScore(ln %g) = %v, want above %v and below 1", p, s, prev)
		}
		prev = s
	}
	// Far beyond float64's smallest probability it still orders.
	if a, b := detect.LikelihoodScore(-1e5), detect.LikelihoodScore(-2e5); !(a < b && b < 1) {
		t.Errorf("ln p = -1e5 → %v, -2e5 → %v: not ordered below 1", a, b)
	}
}

// TestCADOSELearnsWhenLearnFillsHistory covers a learning period as long
// as the history kept: the detector must still leave it.
func TestCADOSELearnsWhenLearnFillsHistory(t *testing.T) {
	p := detect.DefaultPointParams()
	p.CAD.Learn, p.CAD.History = 200, 200
	got := observeAll(t, "cad_ose", p, pointStream(1, "spike"))
	if slices.Max(got[200:]) == 0 {
		t.Fatal("every point after the learning period scored 0")
	}
}

// TestRobustZOnMostlyConstantSeries covers the case that broke robust_z
// on NAB: a series that sits on one value more than half the time (MAD
// 0) with ordinary excursions. The excursions must not score near 1, and a
// spike far beyond them must outscore them all.
func TestRobustZOnMostlyConstantSeries(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 0xbeef))
	vals := make([]float64, pointLen)
	for i := range vals {
		vals[i] = 10
		if rng.IntN(5) == 0 {
			vals[i] += float64(1 + rng.IntN(3)) // excursions of 1..3
		}
	}
	vals[pointChange] = 30
	got := observeAll(t, "robust_z", detect.DefaultPointParams(), vals)
	normal := slices.Max(got[pointSettled:pointChange])
	if normal > 0.6 {
		t.Errorf("ordinary excursions score up to %.6f, above the configured threshold", normal)
	}
	if got[pointChange] <= normal {
		t.Errorf("spike scores %.6f, not above the highest normal score %.6f", got[pointChange], normal)
	}
}

// TestConfiguredThresholdsAreReachable checks that a planted spike
// reaches each detector's configured threshold: a threshold above every
// score the detector can give (hst's was 0.9) alerts on nothing.
func TestConfiguredThresholdsAreReachable(t *testing.T) {
	p := detect.DefaultPointParams()
	// hst sees a shingle of two values, so a lone spike is isolated in one
	// dimension only; a shift isolates both.
	for _, c := range []struct{ name, anomaly string }{
		{"gaussian", "spike"}, {"robust_z", "spike"}, {"ewma", "spike"}, {"spatial", "spike"},
		{"ensemble", "spike"}, {"hst", "level shift"},
	} {
		th, err := detect.PointThreshold(c.name, p)
		if err != nil {
			t.Fatal(err)
		}
		for seed := uint64(1); seed <= 5; seed++ {
			got := observeAll(t, c.name, p, pointStream(seed, c.anomaly))
			if m := slices.Max(got[pointChange : pointChange+2]); m < th {
				t.Errorf("%s, seed %d: the %s scores %.6f, below the configured threshold %v", c.name, seed, c.anomaly, m, th)
			}
		}
	}
}

// plant returns point i of a test stream, value v plus noise, with anomaly
// ("spike", "level shift" or "variance change") planted from point change on.
func plant(anomaly string, i, change int, v, noise float64) float64 {
	if i >= change {
		switch anomaly {
		case "spike":
			if i == change {
				v += 30
			}
		case "level shift":
			v += 15
		case "variance change":
			noise *= 15
		}
	}
	return v + noise
}
