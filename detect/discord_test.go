package detect_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/emberwatch/emberwatch/detect"
)

// naiveDiscord is Discord written the slow, obvious way: block means from
// the whole series kept, every run searched without stopping early.
func naiveDiscord(p detect.DiscordParams, vals []float64) []float64 {
	out := make([]float64, len(vals))
	var blocks []float64
	var sum float64
	filled := 0
	record, scored := 0.0, false
	for i, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		sum += v
		filled++
		if filled < p.Block {
			continue
		}
		blocks = append(blocks, sum/float64(filled))
		sum, filled = 0, 0
		n, m := len(blocks), p.Length
		lo, hi := slices.Min(blocks), slices.Max(blocks)
		if n < p.Warmup || lo == hi {
			continue
		}
		best := math.Inf(1)
		for j := max(0, n-m-p.History); j+m <= n-m; j++ {
			s := 0.0
			for k := range m {
				e := blocks[n-m+k] - blocks[j+k]
				s += float64(e * e)
			}
			best = min(best, s)
		}
		dist := math.Sqrt(best/float64(m)) / (hi - lo)
		switch {
		case !scored:
		case record > 0:
			out[i] = dist / record / (dist/record + 1)
		case dist > 0:
			out[i] = 1
		}
		record = max(record*(1-p.Decay), dist)
		scored = true
	}
	return out
}

// TestDiscordMatchesNaive checks the incremental search (the trimmed
// buffer, the early stop) against naiveDiscord on random series with
// repeated values and skipped ones.
func TestDiscordMatchesNaive(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		length := rapid.IntRange(1, 4).Draw(t, "length")
		p := detect.DiscordParams{
			Block:   rapid.IntRange(1, 4).Draw(t, "block"),
			Length:  length,
			History: rapid.IntRange(length, 12).Draw(t, "history"),
			Decay:   rapid.SampledFrom([]float64{0, 0.01, 0.5}).Draw(t, "decay"),
			Warmup:  rapid.IntRange(2*length, 3*length+2).Draw(t, "warmup"),
		}
		point := rapid.OneOf(
			rapid.SampledFrom([]float64{0, 1, 3.5, -4, math.NaN(), math.Inf(1)}),
			rapid.Float64Range(-10, 10),
		)
		vals := rapid.SliceOfN(point, 30, 400).Draw(t, "series")
		d := detect.NewDiscord(p)
		want := naiveDiscord(p, vals)
		for i, v := range vals {
			if got := d.Observe(time.Time{}, v); got != want[i] {
				t.Fatalf("point %d (%v): score %v, naive %v", i, v, got, want[i])
			}
		}
	})
}

// dailyStream is days of 5-minute temperatures that swing ±5° a day,
// with noise; on the day numbered dull (from 0) they swing ±1°.
func dailyStream(seed uint64, days, dull int) []float64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	const perDay = 288
	vals := make([]float64, days*perDay)
	for i := range vals {
		amp := 5.0
		if i/perDay == dull {
			amp = 1
		}
		vals[i] = 20 + amp*math.Sin(2*math.Pi*float64(i)/perDay) + 0.5*rng.NormFloat64()
	}
	return vals
}

// TestDiscordFindsADullDay runs the NAB defaults on a month of 5-minute
// temperatures where one day hardly warms: no value is out of range, so
// only the day's shape gives it away. It must score above every normal
// point after the first week, and above the default threshold.
func TestDiscordFindsADullDay(t *testing.T) {
	p := detect.DefaultPointParams()
	th, err := detect.PointThreshold("discord", p)
	if err != nil {
		t.Fatal(err)
	}
	const perDay, dull = 288, 24
	for seed := uint64(1); seed <= 5; seed++ {
		got := observeAll(t, "discord", p, dailyStream(seed, 30, dull))
		normal := slices.Max(got[7*perDay : dull*perDay])
		anomalous := slices.Max(got[dull*perDay : (dull+1)*perDay])
		if anomalous <= normal || anomalous < th {
			t.Errorf("seed %d: the dull day scores %.4f, normal points up to %.4f, threshold %.2f", seed, anomalous, normal, th)
		}
	}
}

// TestDiscordFirstDifference checks that a series that has repeated
// exactly scores 1 at the first block that differs, and that a lone
// point scores nothing until its block completes.
func TestDiscordFirstDifference(t *testing.T) {
	p := detect.DiscordParams{Block: 4, Length: 3, History: 50, Decay: 0.01, Warmup: 6}
	d := detect.NewDiscord(p)
	cycle := []float64{1, 1, 1, 1, 5, 5, 5, 5, 3, 3, 3, 3}
	var scores []float64
	for range 10 {
		for _, v := range cycle {
			scores = append(scores, d.Observe(time.Time{}, v))
		}
	}
	if m := slices.Max(scores); m != 0 {
		t.Fatalf("an exactly repeating series scored %v", m)
	}
	for i, v := range []float64{1, 1, 1, 9} {
		s := d.Observe(time.Time{}, v)
		if want := map[bool]float64{true: 1, false: 0}[i == 3]; s != want {
			t.Fatalf("point %d of the changed block scored %v, want %v", i, s, want)
		}
	}
}
