package detect_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch/detect"
)

const (
	seasonalStep    = 30 * time.Minute
	seasonalLen     = 2400 // 50 days
	seasonalChange  = 2000
	seasonalSettled = 1100 // the weekly model forecasts after two weeks (672 points)
)

// seasonalStream returns a series sampled every 30 minutes with a daily
// cycle whose amplitude is smaller at weekends, Gaussian noise (σ = 0.5)
// and, from seasonalChange on, the named anomaly: a spike of +30, a level
// shift of +15, noise fifteen times as wide, or "missing day": a weekday
// that looks like a weekend for a day.
func seasonalStream(seed uint64, anomaly string) ([]time.Time, []float64) {
	rng := rand.New(rand.NewPCG(seed, 0xfeed))
	start := time.Date(2026, 7, 6, 0, 0, 0, 0, time.UTC) // a Monday
	ts := make([]time.Time, seasonalLen)
	vals := make([]float64, seasonalLen)
	for i := range vals {
		ts[i] = start.Add(time.Duration(i) * seasonalStep)
		weekday := ts[i].Weekday()
		amp := 10.0
		if weekday == time.Saturday || weekday == time.Sunday {
			amp = 2
		}
		if anomaly == "missing day" && i >= seasonalChange && i < seasonalChange+48 {
			amp = 2
		}
		hour := float64(ts[i].Hour()) + float64(ts[i].Minute())/60
		v := 20 + amp*math.Sin(2*math.Pi*hour/24)
		vals[i] = plant(anomaly, i, seasonalChange, v, 0.5*rng.NormFloat64())
	}
	return ts, vals
}

func observeSeasonal(t *testing.T, p detect.PointParams, ts []time.Time, vals []float64) []float64 {
	t.Helper()
	d, err := detect.NewPointDetector("seasonal", p)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(vals))
	for i, v := range vals {
		out[i] = d.Observe(ts[i], v)
		if !(out[i] >= 0 && out[i] <= 1) {
			t.Fatalf("point %d: score %v outside [0,1]", i, out[i])
		}
	}
	return out
}

// TestSeasonalScoresAnomaliesAboveNormalPoints plants each anomaly in a
// stream with a daily and a weekly pattern: after warm-up it must
// outscore every normal point within span points of its start. The
// "missing day" is the case the detector is for: every value of it lies
// within the normal range, and only the weekly pattern says it is wrong
// (a weekday shaped like a Sunday, as on a public holiday).
func TestSeasonalScoresAnomaliesAboveNormalPoints(t *testing.T) {
	p := detect.DefaultPointParams()
	for _, c := range []struct {
		anomaly string
		span    int
	}{{"spike", 1}, {"level shift", 5}, {"variance change", 20}, {"missing day", 24}} {
		t.Run(c.anomaly, func(t *testing.T) {
			t.Parallel()
			for seed := uint64(1); seed <= 5; seed++ {
				ts, vals := seasonalStream(seed, c.anomaly)
				got := observeSeasonal(t, p, ts, vals)
				normal := slices.Max(got[seasonalSettled:seasonalChange])
				anomalous := slices.Max(got[seasonalChange : seasonalChange+c.span])
				if anomalous <= normal {
					t.Errorf("seed %d: the %s scores %.6f within %d points, not above the highest normal score %.6f",
						seed, c.anomaly, anomalous, c.span, normal)
				}
			}
		})
	}
}

// TestSeasonalNeedsTheWeeklyModel checks that the missing day is found by
// the seasonal models and not by chance: with only the daily period (no
// weekly one) the weekday-shaped-as-Sunday is less unusual than with it.
func TestSeasonalNeedsTheWeeklyModel(t *testing.T) {
	ts, vals := seasonalStream(1, "missing day")
	p := detect.DefaultPointParams()
	with := observeSeasonal(t, p, ts, vals)
	p.Seasonal.Periods = []time.Duration{24 * time.Hour}
	without := observeSeasonal(t, p, ts, vals)
	w := slices.Max(with[seasonalChange : seasonalChange+48])
	wo := slices.Max(without[seasonalChange : seasonalChange+48])
	if w <= wo {
		t.Errorf("missing day scores %.6f with the weekly period, %.6f without: want higher with", w, wo)
	}
}

func TestSeasonalIsDeterministic(t *testing.T) {
	p := detect.DefaultPointParams()
	ts, vals := seasonalStream(3, "level shift")
	a, b := observeSeasonal(t, p, ts, vals), observeSeasonal(t, p, ts, vals)
	if !slices.Equal(a, b) {
		t.Fatal("two runs over the same points scored differently")
	}
	if slices.Max(a) == 0 {
		t.Fatal("every point scored 0")
	}
}

// TestSeasonalHandlesIrregularAndFlatSeries covers a constant series
// (no spread: the resolution floor must keep scores finite and below 1)
// and repeated timestamps (no interval to learn from).
func TestSeasonalHandlesIrregularAndFlatSeries(t *testing.T) {
	p := detect.DefaultPointParams()
	ts := make([]time.Time, 500)
	flat := make([]float64, 500)
	for i := range ts {
		ts[i] = pointStart.Add(time.Duration(i/3) * time.Hour)
		flat[i] = 7
	}
	flat[400] = 8
	got := observeSeasonal(t, p, ts, flat)
	if got[400] <= slices.Max(got[200:400]) || got[400] >= 1 {
		t.Errorf("step on a flat series scores %v (normal up to %v), want above and below 1", got[400], slices.Max(got[200:400]))
	}
}
