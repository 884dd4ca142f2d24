package windowing_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/windowing"
)

// The benchmarks behind docs/BENCHMARKS.md. Each reports readings/s (per
// core: the windower runs on one goroutine) besides ns/op and allocs/op.

var allAggregates = []string{"count", "sum", "mean", "min", "max", "variance", "stddev",
	"first", "last", "delta", "rate", "ewma"}

func benchOneSeries(b *testing.B, aggregates []string) {
	w := windowing.New([]windowing.Config{{Series: "*", Size: 10 * time.Minute, Hop: time.Minute,
		Lateness: 30 * time.Second, Aggregates: aggregates}})
	dst := make([]emberwatch.Features, 0, 4)
	r := emberwatch.Reading{Series: "temperature", Time: t0}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Time = r.Time.Add(time.Second)
		r.Value = 20 + float64(i%17)*0.1
		i++
		var err error
		if dst, err = w.Add(r, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "readings/s")
}

// BenchmarkOneSeries: 1 Hz readings into a 10-minute window hopping every
// minute (600 readings a window), every O(1) aggregate.
func BenchmarkOneSeries(b *testing.B) { benchOneSeries(b, allAggregates) }

// BenchmarkOneSeriesQuantiles adds median, MAD and three quantiles, which
// sort the window's 600 values at every hop.
func BenchmarkOneSeriesQuantiles(b *testing.B) {
	benchOneSeries(b, append(allAggregates[:len(allAggregates):len(allAggregates)], "median", "mad", "p50", "p90", "p99"))
}

func benchManySeries(b *testing.B, n int, aggregates []string) {
	w := windowing.New([]windowing.Config{{Series: "*", Size: time.Minute, Hop: 10 * time.Second, Aggregates: aggregates}})
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("station-%05d/temperature", i)
	}
	dst := make([]emberwatch.Features, 0, 16)
	t := t0
	r := emberwatch.Reading{}
	// Warm up past the first windows, so that what is measured is the
	// steady state: every series created, every pane recycled.
	for range 120 {
		t = t.Add(time.Second)
		for s := range n {
			dst, _ = w.Add(emberwatch.Reading{Series: names[s], Time: t}, dst[:0])
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s := i % n
		if s == 0 {
			t = t.Add(time.Second)
		}
		r.Series, r.Time, r.Value = names[s], t, float64(i%23)
		i++
		var err error
		if dst, err = w.Add(r, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "readings/s")
}

// Benchmark10kSeries: 10,000 series at 1 Hz, 60 s windows with a 10 s hop.
func Benchmark10kSeries(b *testing.B) { benchManySeries(b, 10_000, allAggregates) }

// Benchmark10kSeriesQuantiles is the same with median, MAD and p50/p90/p99.
func Benchmark10kSeriesQuantiles(b *testing.B) {
	benchManySeries(b, 10_000, append(allAggregates[:len(allAggregates):len(allAggregates)], "median", "mad", "p50", "p90", "p99"))
}

// BenchmarkBytesPerSeries fills 10,000 series with a full 60-point window
// each (1 Hz, 60 s windows, 10 s hop) and reports the heap they hold.
func BenchmarkBytesPerSeries(b *testing.B) {
	benchBytesPerSeries(b, windowing.Config{Series: "*", Size: time.Minute, Hop: 10 * time.Second})
}

// BenchmarkBytesPerSeriesPoints is the same with 10 s of lateness, which
// makes each series keep its readings (as quantiles would).
func BenchmarkBytesPerSeriesPoints(b *testing.B) {
	benchBytesPerSeries(b, windowing.Config{Series: "*", Size: time.Minute, Hop: 10 * time.Second, Lateness: 10 * time.Second})
}

func benchBytesPerSeries(b *testing.B, spec windowing.Config) {
	const n = 10_000
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("station-%05d/temperature", i)
	}
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		w := windowing.New([]windowing.Config{spec})
		var dst []emberwatch.Features
		for sec := range 200 { // enough to reach the steady state
			t := t0.Add(time.Duration(sec) * time.Second)
			for i := range n {
				dst, _ = w.Add(emberwatch.Reading{Series: names[i], Time: t, Value: float64(sec)}, dst[:0])
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/series")
		runtime.KeepAlive(w)
	}
}
