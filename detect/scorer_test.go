package detect_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/detect"
)

// t0 is the end of the first window in every synthetic stream.
var t0 = time.Date(2026, 7, 15, 6, 1, 0, 0, time.UTC)

// windows turns values into the mean feature of consecutive one-minute
// windows of series x.
func windows(vals []float64) []emberwatch.Features {
	fs := make([]emberwatch.Features, len(vals))
	for i, v := range vals {
		end := t0.Add(time.Duration(i) * time.Minute)
		fs[i] = emberwatch.Features{Series: "x", Start: end.Add(-time.Minute), End: end, Count: 1, Sum: v, Mean: v, Min: v, Max: v, First: v, Last: v}
	}
	return fs
}

// detectorConfig returns a normalised, valid config of type typ for series
// x, changed by set.
func detectorConfig(t testing.TB, typ string, set func(*detect.DetectorConfig)) detect.DetectorConfig {
	t.Helper()
	c := detect.DetectorConfig{Series: "x", Type: typ}
	if set != nil {
		set(&c)
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatalf("config %+v: %v", c, err)
	}
	return c
}

type scored struct {
	score    float64
	expected [2]float64
	ok       bool
}

func scoreAll(cfg detect.DetectorConfig, fs []emberwatch.Features) []scored {
	s := detect.NewScorer(cfg)
	out := make([]scored, len(fs))
	for i := range fs {
		out[i].score, out[i].expected, out[i].ok = s.Score(&fs[i])
	}
	return out
}

// anomalyAt is where the synthetic streams change: after the default warm-up
// of 30 windows and 60 normal ones.
const anomalyAt = 90

// synthetic returns 120 values of N(20, 1) with an anomaly from anomalyAt on.
func synthetic(seed uint64, anomaly string) []float64 {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	vals := make([]float64, 120)
	for i := range vals {
		noise := rng.NormFloat64()
		vals[i] = 20 + noise
		if i < anomalyAt {
			continue
		}
		switch anomaly {
		case "spike":
			if i == anomalyAt {
				vals[i] += 15
			}
		case "level shift":
			vals[i] += 8
		case "variance change":
			vals[i] = 20 + 15*noise
		}
	}
	return vals
}

var scorerTypes = []string{detect.TypeRobustZ, detect.TypeEWMA}

func TestScorerAnomalyOutscoresNormalHistory(t *testing.T) {
	tests := []struct {
		anomaly string
		// span is how many windows from anomalyAt on may carry the
		// anomaly's highest score: a variance change shows in some
		// windows only.
		span int
	}{
		{"spike", 1},
		{"level shift", 1},
		{"variance change", 5},
	}
	for _, typ := range scorerTypes {
		for _, tt := range tests {
			t.Run(typ+"/"+tt.anomaly, func(t *testing.T) {
				for seed := uint64(1); seed <= 20; seed++ {
					got := scoreAll(detectorConfig(t, typ, nil), windows(synthetic(seed, tt.anomaly)))
					var normal float64
					for _, s := range got[:anomalyAt] {
						normal = max(normal, s.score)
					}
					var anomalous float64
					for _, s := range got[anomalyAt : anomalyAt+tt.span] {
						anomalous = max(anomalous, s.score)
					}
					if anomalous <= normal {
						t.Errorf("seed %d: anomaly scores %.4f, not above the highest normal score %.4f", seed, anomalous, normal)
					}
				}
			})
		}
	}
}

func TestScorerSpikeReachesDefaultThreshold(t *testing.T) {
	for _, typ := range scorerTypes {
		t.Run(typ, func(t *testing.T) {
			cfg := detectorConfig(t, typ, nil)
			for seed := uint64(1); seed <= 20; seed++ {
				got := scoreAll(cfg, windows(synthetic(seed, "spike")))
				if s := got[anomalyAt]; s.score < cfg.Threshold {
					t.Errorf("seed %d: a 15-sigma spike scores %.4f, below the default threshold %v", seed, s.score, cfg.Threshold)
				}
				for i, s := range got[cfg.Warmup:anomalyAt] {
					if s.score >= cfg.Threshold {
						t.Errorf("seed %d: normal window %d scores %.4f, at or above the threshold", seed, cfg.Warmup+i, s.score)
					}
				}
			}
		})
	}
}

func TestScorerIsDeterministic(t *testing.T) {
	for _, typ := range scorerTypes {
		for _, anomaly := range []string{"spike", "level shift", "variance change"} {
			t.Run(typ+"/"+anomaly, func(t *testing.T) {
				cfg := detectorConfig(t, typ, nil)
				fs := windows(synthetic(3, anomaly))
				a, b := scoreAll(cfg, fs), scoreAll(cfg, fs)
				for i := range a {
					if a[i] != b[i] {
						t.Fatalf("window %d: first run %+v, second run %+v", i, a[i], b[i])
					}
				}
			})
		}
	}
}

func TestScorerRangeAndWarmup(t *testing.T) {
	for _, typ := range scorerTypes {
		for _, warmup := range []int{1, 5, 30} {
			for _, anomaly := range []string{"spike", "level shift", "variance change"} {
				t.Run(fmt.Sprintf("%s/warmup %d/%s", typ, warmup, anomaly), func(t *testing.T) {
					cfg := detectorConfig(t, typ, func(c *detect.DetectorConfig) { c.Warmup = warmup })
					for i, s := range scoreAll(cfg, windows(synthetic(5, anomaly))) {
						if ok := i >= warmup; s.ok != ok {
							t.Fatalf("warmup %d, window %d: ok = %v, want %v", warmup, i, s.ok, ok)
						}
						if !(s.score >= 0 && s.score < 1) {
							t.Fatalf("warmup %d, window %d: score %v outside [0,1)", warmup, i, s.score)
						}
						if !s.ok && s.score != 0 {
							t.Fatalf("warmup %d, window %d: score %v while warming up, want 0", warmup, i, s.score)
						}
					}
				})
			}
		}
	}
}

// TestScorerExpectedRangeMatchesThreshold: a value strictly inside the
// expected range scores below the threshold, one strictly outside at or
// above it.
func TestScorerExpectedRangeMatchesThreshold(t *testing.T) {
	for _, typ := range scorerTypes {
		t.Run(typ, func(t *testing.T) {
			cfg := detectorConfig(t, typ, nil)
			for _, anomaly := range []string{"spike", "level shift", "variance change"} {
				fs := windows(synthetic(9, anomaly))
				for i, s := range scoreAll(cfg, fs) {
					if !s.ok {
						continue
					}
					v, lo, hi := fs[i].Mean, s.expected[0], s.expected[1]
					if lo > hi {
						t.Fatalf("%s window %d: expected range [%v, %v] is reversed", anomaly, i, lo, hi)
					}
					if inside := v > lo && v < hi; inside && s.score >= cfg.Threshold {
						t.Errorf("%s window %d: %v inside [%v, %v] scores %v >= threshold", anomaly, i, v, lo, hi, s.score)
					}
					if outside := v < lo || v > hi; outside && s.score < cfg.Threshold {
						t.Errorf("%s window %d: %v outside [%v, %v] scores %v < threshold", anomaly, i, v, lo, hi, s.score)
					}
				}
			}
		})
	}
}

func TestScorerScoresTheConfiguredFeature(t *testing.T) {
	for _, typ := range scorerTypes {
		t.Run(typ, func(t *testing.T) {
			cfg := detectorConfig(t, typ, func(c *detect.DetectorConfig) { c.Feature = "max"; c.Warmup = 10 })
			vals := synthetic(4, "")
			fs := windows(vals)
			for i := range fs {
				fs[i].Mean = 1e6 * float64(i%2) // wild, but not the scored feature
			}
			fs[60].Max += 12
			got := scoreAll(cfg, fs)
			for i, s := range got[10:60] {
				if s.score >= got[60].score {
					t.Errorf("window %d scores %v, not below the spike in max (%v)", 10+i, s.score, got[60].score)
				}
			}
		})
	}
}

// flatRobustZ is a robust z-score over a history of zeros with a spread
// floor of 1, so a value v scores exactly |v|/(|v|+1) as long as zeros are the
// majority of the history.
func flatRobustZ(t testing.TB) detect.Scorer {
	cfg := detectorConfig(t, detect.TypeRobustZ, func(c *detect.DetectorConfig) {
		c.History, c.Warmup, c.MinSpread = 20, 20, 1
	})
	s := detect.NewScorer(cfg)
	for _, f := range windows(make([]float64, 20)) {
		if _, _, ok := s.Score(&f); ok {
			t.Fatal("scored during warm-up")
		}
	}
	return s
}

func TestRobustZScoreScale(t *testing.T) {
	tests := []struct {
		v, want float64
	}{
		{0, 0},
		{1, 0.5},
		{-1, 0.5},
		{3, 0.75},
		{9, 0.9},
		{-99, 0.99},
	}
	for _, tt := range tests {
		s := flatRobustZ(t)
		f := windows([]float64{tt.v})[0]
		got, expected, ok := s.Score(&f)
		if !ok {
			t.Fatalf("Score(%v): not ok after warm-up", tt.v)
		}
		if math.Abs(got-tt.want) > 1e-15 {
			t.Errorf("Score(%v) = %v, want %v", tt.v, got, tt.want)
		}
		// The default threshold 0.9 is a deviation of 9 spreads.
		if math.Abs(expected[0]+9) > 1e-12 || math.Abs(expected[1]-9) > 1e-12 {
			t.Errorf("Score(%v) expected range %v, want [-9, 9]", tt.v, expected)
		}
	}
}

func TestRobustZFlatHistoryWithoutSpreadFloor(t *testing.T) {
	cfg := detectorConfig(t, detect.TypeRobustZ, func(c *detect.DetectorConfig) { c.History, c.Warmup = 10, 10 })
	s := detect.NewScorer(cfg)
	for _, f := range windows(make([]float64, 10)) {
		s.Score(&f)
	}
	for _, tt := range []struct {
		v    float64
		want float64
	}{
		{0, 0},
		{1e-9, math.Nextafter(1, 0)},
		{-5, math.Nextafter(1, 0)},
	} {
		f := windows([]float64{tt.v})[0]
		if got, _, _ := s.Score(&f); got != tt.want {
			t.Errorf("Score(%v) over a flat history = %v, want %v", tt.v, got, tt.want)
		}
	}
}

// TestRobustZSpikeDoesNotMaskTheNext: spikes are kept out of the history,
// so a run of equal spikes (shorter than History) scores the same
// throughout.
func TestRobustZSpikeDoesNotMaskTheNext(t *testing.T) {
	cfg := detectorConfig(t, detect.TypeRobustZ, nil)
	vals := synthetic(2, "")
	for i := anomalyAt; i < anomalyAt+25; i++ {
		vals[i] = 40
	}
	got := scoreAll(cfg, windows(vals))
	if got[anomalyAt].score < cfg.Threshold {
		t.Fatalf("spike scores %v, want at or above %v", got[anomalyAt].score, cfg.Threshold)
	}
	for i := anomalyAt + 1; i < anomalyAt+25; i++ {
		if got[i] != got[anomalyAt] {
			t.Fatalf("spike %d of a run scores %+v, the first %+v; want the same", i-anomalyAt+1, got[i], got[anomalyAt])
		}
	}
}

func TestRobustZUsesMedianAndScaledMAD(t *testing.T) {
	tests := []struct {
		name    string
		history []float64
		median  float64
		mad     float64
	}{
		// Deviations 1.5 0.5 0.5 7.5: MAD is the mean of the middle two.
		{"even history", []float64{3, 1, 10, 2}, 2.5, 1},
		// Deviations 2 1 0 1 97.
		{"odd history", []float64{4, 100, 1, 3, 2}, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := len(tt.history)
			cfg := detectorConfig(t, detect.TypeRobustZ, func(c *detect.DetectorConfig) { c.History, c.Warmup = n, n })
			spread := 1.4826 * tt.mad
			// One spread above the median scores 0.5.
			got := scoreAll(cfg, windows(append(slices.Clone(tt.history), tt.median+spread)))[n]
			if math.Abs(got.score-0.5) > 1e-12 {
				t.Errorf("score = %v, want 0.5", got.score)
			}
			lo, hi := tt.median-9*spread, tt.median+9*spread
			if math.Abs(got.expected[0]-lo) > 1e-9 || math.Abs(got.expected[1]-hi) > 1e-9 {
				t.Errorf("expected = %v, want [%v, %v]", got.expected, lo, hi)
			}
		})
	}
}

func TestEWMAChart(t *testing.T) {
	cfg := detectorConfig(t, detect.TypeEWMA, func(c *detect.DetectorConfig) { c.Alpha, c.Warmup = 0.5, 2 })
	// After 0 and 2: mean 1, variance 0.5*(0 + 0.5*2*2) = 1.
	got := scoreAll(cfg, windows([]float64{0, 2, 3, 1}))
	if got[0].ok || got[1].ok {
		t.Fatalf("scored during warm-up: %+v", got[:2])
	}
	if s := got[2]; !s.ok || math.Abs(s.score-2.0/3) > 1e-15 || math.Abs(s.expected[0]+8) > 1e-12 || math.Abs(s.expected[1]-10) > 1e-12 {
		t.Errorf("third window = %+v, want score 2/3 (two spreads) and expected [-8, 10]", s)
	}
	// Then mean 2, variance 0.5*(1 + 0.5*2*2) = 1.5: 1 is 1/sqrt(1.5) spreads off.
	z := 1 / math.Sqrt(1.5)
	if s := got[3]; math.Abs(s.score-z/(z+1)) > 1e-15 {
		t.Errorf("fourth window scores %v, want %v", s.score, z/(z+1))
	}
}

// TestRobustZLearnsShiftedLevel: once History windows in a row score at or
// above the threshold, "the level has shifted for good and is learnt", so
// scores fall back below the threshold soon after, not after History times
// History/2 windows.
func TestRobustZLearnsShiftedLevel(t *testing.T) {
	const history = 10
	cfg := detectorConfig(t, detect.TypeRobustZ, func(c *detect.DetectorConfig) { c.History, c.Warmup = history, history })
	rng := rand.New(rand.NewPCG(8, 8))
	vals := make([]float64, 200)
	for i := range vals {
		vals[i] = rng.NormFloat64()
		if i >= 2*history {
			vals[i] += 50
		}
	}
	got := scoreAll(cfg, windows(vals))
	if s := got[2*history]; s.score < cfg.Threshold {
		t.Fatalf("first shifted window scores %v, want at or above %v", s.score, cfg.Threshold)
	}
	// History windows to decide that the level moved, then the history
	// needs a majority of the new level for its median to follow.
	learnt := 2*history + history + history/2 + 1
	for i := learnt; i < len(got); i++ {
		if got[i].score >= cfg.Threshold {
			first := learnt
			for first < len(got) && got[first].score >= cfg.Threshold {
				first++
			}
			t.Fatalf("window %d, %d windows after a level shift, still scores %.4f (expected %v); the shift is first learnt at window %d",
				i, i-2*history, got[i].score, got[i].expected, first)
		}
	}
}

// TestScoreStaysBelowOne: score maps deviations to [0,1) and "never
// saturates"; a huge deviation over a tiny but non-zero spread must still
// score below 1.
func TestScoreStaysBelowOne(t *testing.T) {
	tests := []struct {
		name    string
		typ     string
		history []float64
	}{
		{"robust z over a tiny spread", detect.TypeRobustZ, []float64{0, 1e-20, 2e-20, 3e-20}},
		{"ewma over a tiny spread", detect.TypeEWMA, []float64{0, 1e-20, 0, 1e-20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := detectorConfig(t, tt.typ, func(c *detect.DetectorConfig) { c.History, c.Warmup = len(tt.history), len(tt.history) })
			fs := windows(append(tt.history, 1))
			got := scoreAll(cfg, fs)
			last := got[len(got)-1]
			if !last.ok {
				t.Fatal("not scoring after warm-up")
			}
			if !(last.score < 1) {
				t.Errorf("a deviation of 1 over a spread near 1e-20 scores %v, want < 1", last.score)
			}
		})
	}
}
