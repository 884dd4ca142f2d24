package windowing_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/windowing"
)

// t0 is the start of every hand-written timeline: a whole hour, so it is
// aligned to any hop of a minute or less.
var t0 = time.Date(2026, 7, 15, 6, 0, 0, 0, time.UTC)

// win is the part of a Features a hand-written timeline checks, with times as
// offsets from t0.
type win struct {
	Series      string
	Start, End  time.Duration
	Count       int
	Sum         float64
	First, Last float64
}

func winOf(f emberwatch.Features) win {
	return win{
		Series: f.Series,
		Start:  f.Start.Sub(t0), End: f.End.Sub(t0),
		Count: f.Count, Sum: f.Sum, First: f.First, Last: f.Last,
	}
}

func winsOf(fs []emberwatch.Features) []win {
	var ws []win
	for _, f := range fs {
		ws = append(ws, winOf(f))
	}
	return ws
}

// step is one reading of a timeline and what Add must answer to it.
type step struct {
	series string // default "x"
	at     time.Duration
	value  float64
	err    error
	emit   []win
}

func TestWindowerTimeline(t *testing.T) {
	minute := []windowing.Config{{Series: "*", Size: time.Minute, Hop: time.Minute}}
	late10 := []windowing.Config{{Series: "*", Size: time.Minute, Hop: time.Minute, Lateness: 10 * time.Second}}
	sliding := []windowing.Config{{Series: "*", Size: 2 * time.Minute, Hop: time.Minute}}
	s := time.Second

	tests := []struct {
		name    string
		specs   []windowing.Config
		steps   []step
		flush   []win
		noFlush bool // skip Flush; stats are the counts before it
		stats   windowing.Stats
	}{
		{
			name:  "in order without lateness a window closes at the first reading at its end",
			specs: minute,
			steps: []step{
				{at: 0, value: 1},
				{at: 30 * s, value: 2},
				{at: 59*s + 999*time.Millisecond, value: 3},
				{at: 60 * s, value: 4, emit: []win{{"x", 0, 60 * s, 3, 6, 1, 3}}},
			},
			flush: []win{{"x", 60 * s, 120 * s, 1, 4, 4, 4}},
			stats: windowing.Stats{Accepted: 4, Emitted: 2},
		},
		{
			name:  "lateness holds a window open until max time minus lateness reaches its end",
			specs: late10,
			steps: []step{
				{at: 0, value: 1},
				{at: 60 * s, value: 2},
				{at: 69 * s, value: 3},
				{at: 70 * s, value: 4, emit: []win{{"x", 0, 60 * s, 1, 1, 1, 1}}},
			},
			flush: []win{{"x", 60 * s, 120 * s, 3, 9, 2, 4}},
			stats: windowing.Stats{Accepted: 4, Emitted: 2},
		},
		{
			name:  "a late but allowed reading lands in its window and is ordered by event time",
			specs: late10,
			steps: []step{
				{at: 10 * s, value: 1},
				{at: 30 * s, value: 2},
				{at: 65 * s, value: 3},
				{at: 58 * s, value: 4}, // 7s behind max time: allowed
				{at: 55 * s, value: 5}, // exactly at the watermark: allowed
				{at: 70 * s, value: 6, emit: []win{{"x", 0, 60 * s, 4, 12, 1, 4}}},
			},
			flush: []win{{"x", 60 * s, 120 * s, 2, 9, 3, 6}},
			stats: windowing.Stats{Accepted: 6, Emitted: 2},
		},
		{
			name:  "a reading exactly at the watermark is accepted",
			specs: late10,
			steps: []step{
				{at: 0, value: 1},
				{at: 70 * s, value: 2, emit: []win{{"x", 0, 60 * s, 1, 1, 1, 1}}},
				{at: 60 * s, value: 3}, // watermark is 60s: not late, lands in [60s,120s)
			},
			flush: []win{{"x", 60 * s, 120 * s, 2, 5, 3, 2}},
			stats: windowing.Stats{Accepted: 3, Emitted: 2},
		},
		{
			// Lateness is judged by window, as in Flink: 54s is 11s behind the
			// latest reading, but its window [0,60s) has not been emitted.
			name:  "a reading is late once its window has been emitted",
			specs: late10,
			steps: []step{
				{at: 0, value: 1},
				{at: 65 * s, value: 2},
				{at: 54 * s, value: 3},
				{at: 70 * s, value: 4, emit: []win{{"x", 0, 60 * s, 2, 4, 1, 3}}},
				{at: 59 * s, value: 5, err: windowing.ErrLate}, // window [0,60s) is emitted
				{at: 60 * s, value: 6},
			},
			flush: []win{{"x", 60 * s, 120 * s, 3, 12, 6, 4}},
			stats: windowing.Stats{Accepted: 5, Late: 1, Emitted: 2},
		},
		{
			name:  "a rejected late reading does not advance time",
			specs: minute,
			steps: []step{
				{at: 0, value: 1},
				{at: 60 * s, value: 2, emit: []win{{"x", 0, 60 * s, 1, 1, 1, 1}}},
				{at: 30 * s, value: 3, err: windowing.ErrLate},
				{at: 61 * s, value: 4},
			},
			flush: []win{{"x", 60 * s, 120 * s, 2, 6, 2, 4}},
			stats: windowing.Stats{Accepted: 3, Late: 1, Emitted: 2},
		},
		{
			name:  "NaN and infinities are rejected without touching the window",
			specs: minute,
			steps: []step{
				{at: 0, value: 1},
				{at: 600 * s, value: math.NaN(), err: windowing.ErrInvalidValue},
				{at: 600 * s, value: math.Inf(1), err: windowing.ErrInvalidValue},
				{at: 600 * s, value: math.Inf(-1), err: windowing.ErrInvalidValue},
				{at: 30 * s, value: 2}, // the invalid readings did not move the watermark
			},
			flush: []win{{"x", 0, 60 * s, 2, 3, 1, 2}},
			stats: windowing.Stats{Accepted: 2, Invalid: 3, Emitted: 1},
		},
		{
			name:  "a series no spec matches is rejected",
			specs: []windowing.Config{{Series: "temp*", Size: time.Minute, Hop: time.Minute}},
			steps: []step{
				{series: "humidity", at: 0, value: 1, err: windowing.ErrNoWindow},
				{series: "temperature", at: 0, value: 2},
				{series: "humidity", at: 60 * s, value: 3, err: windowing.ErrNoWindow},
			},
			flush: []win{{"temperature", 0, 60 * s, 1, 2, 2, 2}},
			stats: windowing.Stats{Accepted: 1, NoWindow: 2, Emitted: 1},
		},
		{
			name: "the first matching spec wins",
			specs: []windowing.Config{
				{Series: "temp*", Size: time.Minute, Hop: time.Minute},
				{Series: "*", Size: 2 * time.Minute, Hop: 2 * time.Minute},
				{Series: "temperature", Size: 4 * time.Minute, Hop: 4 * time.Minute},
			},
			steps: []step{
				{series: "temperature", at: 0, value: 1},
				{series: "humidity", at: 0, value: 2},
				{series: "temperature", at: 60 * s, value: 3, emit: []win{{"temperature", 0, 60 * s, 1, 1, 1, 1}}},
				{series: "humidity", at: 60 * s, value: 4},
				{series: "humidity", at: 120 * s, value: 5, emit: []win{{"humidity", 0, 120 * s, 2, 6, 2, 4}}},
			},
			// Flush goes through the series in the order they first appeared.
			flush: []win{
				{"temperature", 60 * s, 120 * s, 1, 3, 3, 3},
				{"humidity", 120 * s, 240 * s, 1, 5, 5, 5},
			},
			stats: windowing.Stats{Accepted: 5, Emitted: 4},
		},
		{
			name:  "series keep separate watermarks",
			specs: minute,
			steps: []step{
				{series: "a", at: 0, value: 1},
				{series: "b", at: 0, value: 2},
				{series: "a", at: 300 * s, value: 3, emit: []win{{"a", 0, 60 * s, 1, 1, 1, 1}}},
				{series: "b", at: 30 * s, value: 4}, // a's time does not make b late
			},
			flush: []win{
				{"a", 300 * s, 360 * s, 1, 3, 3, 3},
				{"b", 0, 60 * s, 2, 6, 2, 4},
			},
			stats: windowing.Stats{Accepted: 4, Emitted: 3},
		},
		{
			name:  "empty windows are skipped",
			specs: minute,
			steps: []step{
				{at: 0, value: 1},
				{at: 300 * s, value: 2, emit: []win{{"x", 0, 60 * s, 1, 1, 1, 1}}},
				{at: 360 * s, value: 3, emit: []win{{"x", 300 * s, 360 * s, 1, 2, 2, 2}}},
			},
			flush: []win{{"x", 360 * s, 420 * s, 1, 3, 3, 3}},
			stats: windowing.Stats{Accepted: 3, Emitted: 3},
		},
		{
			name:  "sliding windows share readings",
			specs: sliding,
			steps: []step{
				{at: 0, value: 1},
				{at: 61 * s, value: 2, emit: []win{{"x", -60 * s, 60 * s, 1, 1, 1, 1}}},
				{at: 125 * s, value: 4, emit: []win{{"x", 0, 120 * s, 2, 3, 1, 2}}},
				{at: 180 * s, value: 8, emit: []win{{"x", 60 * s, 180 * s, 2, 6, 2, 4}}},
			},
			// What Flush owes sliding windows is TestFlushEmitsEveryWindowWithData's.
			noFlush: true,
			stats:   windowing.Stats{Accepted: 4, Emitted: 3},
		},
		{
			name:  "equal times order first and last by value, whatever the arrival order",
			specs: minute,
			steps: []step{
				{at: 10 * s, value: 2},
				{at: 10 * s, value: 3},
				{at: 10 * s, value: 1},
			},
			flush: []win{{"x", 0, 60 * s, 3, 6, 1, 3}},
			stats: windowing.Stats{Accepted: 3, Emitted: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := windowing.New(tt.specs)
			for i, st := range tt.steps {
				series := st.series
				if series == "" {
					series = "x"
				}
				r := emberwatch.Reading{Series: series, Time: t0.Add(st.at), Value: st.value}
				got, err := w.Add(r, nil)
				if !errors.Is(err, st.err) {
					t.Fatalf("step %d: Add(%s at %s, %v) error = %v, want %v", i, series, st.at, st.value, err, st.err)
				}
				if !slices.Equal(winsOf(got), st.emit) {
					t.Fatalf("step %d: Add(%s at %s, %v) emitted\n%+v\nwant\n%+v", i, series, st.at, st.value, winsOf(got), st.emit)
				}
			}
			if !tt.noFlush {
				if got := winsOf(w.Flush(nil)); !slices.Equal(got, tt.flush) {
					t.Errorf("Flush emitted\n%+v\nwant\n%+v", got, tt.flush)
				}
			}
			if got := w.Stats(); got != tt.stats {
				t.Errorf("Stats = %+v, want %+v", got, tt.stats)
			}
		})
	}
}

func TestWindowerAddAppendsToDst(t *testing.T) {
	w := windowing.New([]windowing.Config{{Series: "*", Size: time.Minute, Hop: time.Minute}})
	keep := emberwatch.Features{Series: "keep"}
	dst := []emberwatch.Features{keep}
	dst, err := w.Add(emberwatch.Reading{Series: "x", Time: t0, Value: 1}, dst)
	if err != nil {
		t.Fatal(err)
	}
	dst, err = w.Add(emberwatch.Reading{Series: "x", Time: t0.Add(time.Minute), Value: 2}, dst)
	if err != nil {
		t.Fatal(err)
	}
	dst, err = w.Add(emberwatch.Reading{Series: "x", Time: t0, Value: math.NaN()}, dst)
	if !errors.Is(err, windowing.ErrInvalidValue) {
		t.Fatalf("Add(NaN) error = %v, want ErrInvalidValue", err)
	}
	dst = w.Flush(dst)
	if len(dst) != 3 || dst[0].Series != "keep" || !dst[1].End.Equal(t0.Add(time.Minute)) || !dst[2].End.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("dst = %+v, want the kept element followed by the windows ending at +1m and +2m", winsOf(dst))
	}
}

func TestWindowerFlushTwiceEmitsNothingNew(t *testing.T) {
	w := windowing.New([]windowing.Config{{Series: "*", Size: time.Minute, Hop: time.Minute, Lateness: time.Minute}})
	for _, at := range []time.Duration{0, 30 * time.Second, 90 * time.Second} {
		if _, err := w.Add(emberwatch.Reading{Series: "x", Time: t0.Add(at), Value: 1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.Flush(nil); len(got) != 2 {
		t.Fatalf("first Flush emitted %d windows, want 2: %+v", len(got), winsOf(got))
	}
	if got := w.Flush(nil); len(got) != 0 {
		t.Fatalf("second Flush emitted %+v, want nothing", winsOf(got))
	}
}

// TestFlushEmitsEveryWindowWithData checks the promise that after Flush every
// window holding an accepted reading has been emitted once, including the
// trailing windows of a sliding spec and the windows a late reading at the
// start of a stream falls into.
func TestFlushEmitsEveryWindowWithData(t *testing.T) {
	s := time.Second
	tests := []struct {
		name  string
		spec  windowing.Config
		steps []step
		want  []win // everything emitted by Add and Flush together
	}{
		{
			name:  "tumbling",
			spec:  windowing.Config{Series: "*", Size: time.Minute, Hop: time.Minute},
			steps: []step{{at: 10 * s, value: 1}, {at: 70 * s, value: 2}},
			want:  []win{{"x", 0, 60 * s, 1, 1, 1, 1}, {"x", 60 * s, 120 * s, 1, 2, 2, 2}},
		},
		{
			name:  "sliding windows after the latest reading",
			spec:  windowing.Config{Series: "*", Size: 3 * time.Minute, Hop: time.Minute},
			steps: []step{{at: 10 * s, value: 1}},
			want: []win{
				{"x", -120 * s, 60 * s, 1, 1, 1, 1},
				{"x", -60 * s, 120 * s, 1, 1, 1, 1},
				{"x", 0, 180 * s, 1, 1, 1, 1},
			},
		},
		{
			name: "sliding window before the first reading that holds a late one",
			spec: windowing.Config{Series: "*", Size: 2 * time.Minute, Hop: time.Minute, Lateness: time.Minute},
			steps: []step{
				{at: 90 * s, value: 1},
				{at: 45 * s, value: 2}, // within lateness and accepted
			},
			want: []win{
				{"x", -60 * s, 60 * s, 1, 2, 2, 2},
				{"x", 0, 120 * s, 2, 3, 2, 1},
				{"x", 60 * s, 180 * s, 1, 1, 1, 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := windowing.New([]windowing.Config{tt.spec})
			var got []emberwatch.Features
			for i, st := range tt.steps {
				var err error
				got, err = w.Add(emberwatch.Reading{Series: "x", Time: t0.Add(st.at), Value: st.value}, got)
				if err != nil {
					t.Fatalf("step %d: Add at %s: %v", i, st.at, err)
				}
			}
			got = w.Flush(got)
			if !slices.Equal(winsOf(got), tt.want) {
				t.Errorf("emitted\n%+v\nwant\n%+v", winsOf(got), tt.want)
			}
		})
	}
}

// TestLateReadingAtStreamStart: a reading within the allowed lateness of the
// first reading must be accepted even when it falls in an earlier window,
// or a recording shuffled within the lateness bound loses readings that the
// same recording in order keeps.
func TestLateReadingAtStreamStart(t *testing.T) {
	w := windowing.New([]windowing.Config{{Series: "*", Size: time.Minute, Hop: time.Minute, Lateness: 30 * time.Second}})
	if _, err := w.Add(emberwatch.Reading{Series: "x", Time: t0.Add(65 * time.Second), Value: 2}, nil); err != nil {
		t.Fatal(err)
	}
	// 15s behind the latest reading, well within the 30s lateness.
	if _, err := w.Add(emberwatch.Reading{Series: "x", Time: t0.Add(50 * time.Second), Value: 1}, nil); err != nil {
		t.Fatalf("Add 15s behind max time with 30s lateness: %v, want it accepted into [0s,60s)", err)
	}
	want := []win{{"x", 0, time.Minute, 1, 1, 1, 1}, {"x", time.Minute, 2 * time.Minute, 1, 2, 2, 2}}
	if got := winsOf(w.Flush(nil)); !slices.Equal(got, want) {
		t.Errorf("Flush emitted\n%+v\nwant\n%+v", got, want)
	}
}

// TestWindowerVarianceFarFromZero feeds values around 1e9 whose spread is
// small: the textbook sum-of-squares formula loses every digit here (its
// rounding error is about 1e18 * 2^-52, some hundred times the variance),
// so a 1e-6 relative tolerance separates a stable computation from it.
func TestWindowerVarianceFarFromZero(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, noise := range []float64{10, 1, 0.1} {
		w := windowing.New([]windowing.Config{{Series: "*", Size: time.Hour, Hop: time.Hour}})
		var vs []float64
		for i := range 1000 {
			v := 1e9 + noise*rng.NormFloat64()
			vs = append(vs, v)
			if _, err := w.Add(emberwatch.Reading{Series: "x", Time: t0.Add(time.Duration(i) * time.Second), Value: v}, nil); err != nil {
				t.Fatal(err)
			}
		}
		fs := w.Flush(nil)
		if len(fs) != 1 {
			t.Fatalf("noise %g: Flush emitted %d windows, want 1", noise, len(fs))
		}
		mean, variance := twoPass(vs)
		f := fs[0]
		if rel := math.Abs(f.Variance-variance) / variance; rel > 1e-6 {
			t.Errorf("noise %g: Variance = %.12g, two-pass %.12g (relative error %.2g)", noise, f.Variance, variance, rel)
		}
		if rel := math.Abs(f.Stddev-math.Sqrt(variance)) / math.Sqrt(variance); rel > 1e-6 {
			t.Errorf("noise %g: Stddev = %.12g, two-pass %.12g", noise, f.Stddev, math.Sqrt(variance))
		}
		if math.Abs(f.Mean-mean) > 1e-12*mean {
			t.Errorf("noise %g: Mean = %.12g, two-pass %.12g", noise, f.Mean, mean)
		}
	}
}

// twoPass returns the mean and the sample variance of vs, computed the
// numerically safe way.
func twoPass(vs []float64) (mean, variance float64) {
	for _, v := range vs {
		mean += v
	}
	mean /= float64(len(vs))
	var c, ss float64
	for _, v := range vs {
		d := v - mean
		ss += d * d
		c += d
	}
	if len(vs) < 2 {
		return mean, 0
	}
	// The compensation term corrects for the rounding of mean.
	return mean, (ss - c*c/float64(len(vs))) / float64(len(vs)-1)
}

func TestReplayShuffledWithinLatenessGivesSameFeatures(t *testing.T) {
	tests := []struct {
		name string
		spec windowing.Config
	}{
		{"tumbling", windowing.Config{Series: "*", Size: time.Minute, Hop: time.Minute, Lateness: 30 * time.Second}},
		{"sliding", windowing.Config{Series: "*", Size: 10 * time.Minute, Hop: time.Minute, Lateness: 45 * time.Second}},
		{"lateness longer than the window", windowing.Config{Series: "*", Size: time.Minute, Hop: 30 * time.Second, Lateness: 5 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 11))
			rec := recording(rng, []string{"humidity", "temperature"}, 2*time.Hour)
			inOrder := feed(t, tt.spec, rec)

			// Delay every reading by up to the lateness and replay in
			// arrival order, the earliest reading of each series first.
			shuffled := shuffleWithin(rng, rec, tt.spec.Lateness, true)
			got := feed(t, tt.spec, shuffled)
			if len(got) != len(inOrder) {
				t.Fatalf("shuffled replay emitted %d windows, in order %d", len(got), len(inOrder))
			}
			// Flush emits series by name and Add by arrival: compare per series.
			for _, series := range []string{"humidity", "temperature"} {
				a, b := ofSeries(inOrder, series), ofSeries(got, series)
				if !slices.EqualFunc(a, b, featuresEqual) {
					for i := range min(len(a), len(b)) {
						if !featuresEqual(a[i], b[i]) {
							t.Fatalf("%s window %d differs:\nin order %+v\nshuffled %+v", series, i, a[i], b[i])
						}
					}
					t.Fatalf("%s: %d windows in order, %d shuffled", series, len(a), len(b))
				}
			}
		})
	}
}

// recording returns readings of each series roughly every 10s (with jitter
// and distinct times) over d, in event time order.
func recording(rng *rand.Rand, series []string, d time.Duration) []emberwatch.Reading {
	var rec []emberwatch.Reading
	for i := time.Duration(0); i < d; i += 10 * time.Second {
		for j, s := range series {
			jitter := time.Duration(rng.Int64N(int64(4*time.Second))) + time.Duration(j)*time.Millisecond
			rec = append(rec, emberwatch.Reading{Series: s, Time: t0.Add(i + jitter), Value: 20 + 5*math.Sin(float64(i)/1e12) + rng.NormFloat64()})
		}
	}
	slices.SortStableFunc(rec, func(a, b emberwatch.Reading) int { return a.Time.Compare(b.Time) })
	return rec
}

func feed(t *testing.T, spec windowing.Config, rs []emberwatch.Reading) []emberwatch.Features {
	t.Helper()
	w := windowing.New([]windowing.Config{spec})
	var out []emberwatch.Features
	for _, r := range rs {
		var err error
		if out, err = w.Add(r, out); err != nil {
			t.Fatalf("Add(%+v): %v", r, err)
		}
	}
	return w.Flush(out)
}

func ofSeries(fs []emberwatch.Features, series string) []emberwatch.Features {
	var out []emberwatch.Features
	for _, f := range fs {
		if f.Series == series {
			out = append(out, f)
		}
	}
	return out
}

func featuresEqual(a, b emberwatch.Features) bool {
	return a.Series == b.Series && a.Start.Equal(b.Start) && a.End.Equal(b.End) &&
		a.Count == b.Count && a.Sum == b.Sum && a.Mean == b.Mean && a.Min == b.Min && a.Max == b.Max &&
		a.Variance == b.Variance && a.Stddev == b.Stddev && a.First == b.First && a.Last == b.Last &&
		a.Delta == b.Delta && a.Rate == b.Rate
}

// BenchmarkWindowerAdd feeds one series a reading every 10s through 10m
// windows sliding by 1m.
func BenchmarkWindowerAdd(b *testing.B) {
	w := windowing.New([]windowing.Config{{Series: "*", Size: 10 * time.Minute, Hop: time.Minute}})
	dst := make([]emberwatch.Features, 0, 4)
	r := emberwatch.Reading{Series: "temperature", Time: t0}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Time = r.Time.Add(10 * time.Second)
		r.Value = float64(i % 17)
		i++
		var err error
		if dst, err = w.Add(r, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOfflineGapReplayMatchesLive: readings buffered during an outage and
// delivered hours later, with their original timestamps, give exactly the
// windows they would have given live.
func TestOfflineGapReplayMatchesLive(t *testing.T) {
	spec := []windowing.Config{{Series: "*", Size: 10 * time.Minute, Hop: time.Minute, Lateness: 30 * time.Second,
		Aggregates: []string{"count", "sum", "mean", "min", "max", "variance", "ewma", "median", "p90"}}}
	var rs []emberwatch.Reading
	for i := range 720 { // two hours at 10 s
		rs = append(rs, emberwatch.Reading{Series: "temperature", Time: t0.Add(time.Duration(i) * 10 * time.Second), Value: 20 + float64(i%37)/10})
	}
	live := windowing.New(spec)
	var want []emberwatch.Features
	for _, r := range rs {
		want, _ = live.AddAt(r, r.Time, want)
	}
	want = live.Flush(want)

	// The second hour is held back and delivered in a burst three hours
	// later, as an outbox on the device would after an outage.
	gap := windowing.New(spec)
	var got []emberwatch.Features
	for i, r := range rs {
		arrival := r.Time
		if i >= 360 {
			arrival = t0.Add(5 * time.Hour).Add(time.Duration(i) * time.Millisecond)
		}
		var err error
		if got, err = gap.AddAt(r, arrival, got); err != nil {
			t.Fatalf("reading %d: %v", i, err)
		}
	}
	got = gap.Flush(got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after the gap: %d windows, live: %d; they differ", len(got), len(want))
	}
}
