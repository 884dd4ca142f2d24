package windowing_test

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/windowing"
)

// TestWindowerMatchesReference feeds random streams of one to three series,
// shuffled within and beyond their lateness, to a Windower and to refModel,
// which recomputes every window from the list of accepted readings, and
// checks that they agree reading by reading.
func TestWindowerMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		specs, inputs := drawStream(t)
		w := windowing.New(specs)
		ref := newRefModel(specs)
		emitted := map[string][]emberwatch.Features{}

		for i, r := range inputs {
			wantOut, wantErr := ref.add(r)
			got, err := w.Add(r, nil)
			if !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
				t.Fatalf("input %d %s: error = %v, want %v", i, show(r), err, wantErr)
			}
			if len(got) != len(wantOut) {
				t.Fatalf("input %d %s: emitted %d windows %v, want %d %v", i, show(r), len(got), ends(got), len(wantOut), ends(wantOut))
			}
			for j := range got {
				checkFeatures(t, fmt.Sprintf("input %d %s, window %d", i, show(r), j), got[j], wantOut[j], ref.accepted(got[j].Series))
				emitted[got[j].Series] = append(emitted[got[j].Series], got[j])
			}
		}

		for _, f := range w.Flush(nil) {
			s := ref.series[f.Series]
			if s == nil {
				t.Fatalf("Flush emitted a window of unknown series %q", f.Series)
			}
			want, ok := refFeatures(s.spec, f.Series, f.End.Add(-s.spec.Size), f.End, s.accepted)
			if !ok {
				t.Fatalf("Flush emitted %s window ending %s, which holds no accepted reading", f.Series, f.End)
			}
			if f.End.Before(s.nextOpen) {
				t.Fatalf("Flush emitted %s window ending %s, which closed before (next open window ends %s)", f.Series, f.End, s.nextOpen)
			}
			checkFeatures(t, "Flush", f, want, s.accepted)
			emitted[f.Series] = append(emitted[f.Series], f)
		}

		var total uint64
		for name, s := range ref.series {
			fs, spec := emitted[name], s.spec
			for i, f := range fs {
				if e := f.End.UnixNano(); e%int64(spec.Hop) != 0 {
					t.Fatalf("%s window ends at %s, not a multiple of hop %s since the epoch", name, f.End, spec.Hop)
				}
				if i > 0 && !fs[i-1].End.Before(f.End) {
					t.Fatalf("%s windows out of order or repeated: %s then %s", name, fs[i-1].End, f.End)
				}
			}
			total += uint64(len(fs))
			// Every window holding data is emitted, exactly once.
			want := windowsWithData(s)
			if got := ends(fs); !slices.EqualFunc(got, want, time.Time.Equal) {
				t.Fatalf("%s: windows ending %v emitted, want those holding data: %v", name, got, want)
			}
		}

		want := ref.stats
		want.Emitted = total
		if got := w.Stats(); got != want {
			t.Fatalf("Stats = %+v, want %+v", got, want)
		}
	})
}

// drawStream draws window specs and a stream of readings in arrival order.
func drawStream(t *rapid.T) ([]windowing.Config, []emberwatch.Reading) {
	nSeries := rapid.IntRange(1, 3).Draw(t, "series")
	anchor := rapid.SampledFrom([]time.Time{time.Unix(0, 0), t0}).Draw(t, "anchor")
	base := anchor.Add(time.Duration(rapid.Int64Range(-int64(time.Hour), int64(time.Hour)).Draw(t, "base")))

	type arrival struct {
		r  emberwatch.Reading
		at time.Time
	}
	var arr []arrival
	var specs []windowing.Config
	for i := range nSeries {
		name := fmt.Sprintf("s%d", i)
		unit := rapid.SampledFrom([]time.Duration{250 * time.Millisecond, time.Second, time.Minute}).Draw(t, "unit")
		hop := time.Duration(rapid.IntRange(1, 6).Draw(t, "hop")) * unit
		size := time.Duration(rapid.IntRange(1, 4).Draw(t, "hops per window")) * hop
		// Times are mostly whole quarters of a hop, so readings often fall
		// exactly on window edges and on the watermark and share times;
		// nudges of a nanosecond either way probe each edge from both sides.
		quarter := hop / 4
		nudge := func(label string) time.Duration { return drawNudge(t, quarter, label) }
		lateness := max(0, time.Duration(rapid.IntRange(0, 8*int(size/hop)).Draw(t, "lateness"))*quarter+nudge("lateness"))
		spec := windowing.Config{Series: name, Size: size, Hop: hop, Lateness: lateness}
		if rapid.Bool().Draw(t, "order statistics?") {
			spec.Aggregates = []string{"count", "mean", "ewma", "median", "mad", "p10", "p90", "p99.9"}
		}
		spec.Normalize()
		specs = append(specs, spec)

		at := base
		n := rapid.IntRange(1, 40).Draw(t, "readings")
		for range n {
			at = at.Add(max(0, time.Duration(rapid.IntRange(0, 8).Draw(t, "gap"))*quarter+nudge("gap")))
			if rapid.IntRange(0, 19).Draw(t, "jump?") == 0 {
				at = at.Add(time.Duration(rapid.IntRange(1, 5).Draw(t, "jump")) * size)
			}
			v := float64(rapid.IntRange(-100000, 100000).Draw(t, "value")) / 100
			if rapid.IntRange(0, 19).Draw(t, "invalid?") == 0 {
				v = rapid.SampledFrom([]float64{math.NaN(), math.Inf(1), math.Inf(-1)}).Draw(t, "invalid")
			}
			// Mostly within the lateness, in quarters of it; sometimes
			// beyond, by a nudge or by up to a window.
			delay := time.Duration(rapid.IntRange(0, 4).Draw(t, "delay")) * lateness / 4
			if rapid.IntRange(0, 9).Draw(t, "too late?") == 0 {
				delay = lateness + max(1, time.Duration(rapid.IntRange(0, 4*int(size/hop)).Draw(t, "excess"))*quarter+nudge("excess"))
			}
			r := emberwatch.Reading{Series: name, Time: at, Value: v}
			if rapid.IntRange(0, 29).Draw(t, "unmatched?") == 0 {
				r.Series = "unmatched"
			}
			arr = append(arr, arrival{r, at.Add(delay)})
		}
	}
	// Sometimes a catch-all spec, and the specs in random order: the first
	// match wins, which the reference works out for itself.
	if rapid.Bool().Draw(t, "catch-all?") {
		c := specs[rapid.IntRange(0, len(specs)-1).Draw(t, "catch-all like")]
		c.Series = rapid.SampledFrom([]string{"*", "s*", "s[01]"}).Draw(t, "catch-all")
		specs = append(specs, c)
	}
	specs = rapid.Permutation(specs).Draw(t, "spec order")
	slices.SortStableFunc(arr, func(a, b arrival) int { return a.at.Compare(b.at) })
	inputs := make([]emberwatch.Reading, len(arr))
	for i, a := range arr {
		inputs[i] = a.r
	}
	return specs, inputs
}

// refModel is the naive reference: it keeps every accepted reading and
// recomputes a window from all of them when the window closes.
type refModel struct {
	specs  []windowing.Config
	series map[string]*refSeries
	stats  windowing.Stats
}

type refSeries struct {
	spec      windowing.Config
	accepted  []emberwatch.Reading // arrival order
	maxT      time.Time            // latest accepted event time
	watermark time.Time            // never goes back
	nextOpen  time.Time            // end of the earliest window not closed yet
}

func newRefModel(specs []windowing.Config) *refModel {
	return &refModel{specs: specs, series: map[string]*refSeries{}}
}

func (m *refModel) matches(series string) bool {
	for _, spec := range m.specs {
		if ok, _ := path.Match(spec.Series, series); ok {
			return true
		}
	}
	return false
}

func (m *refModel) accepted(series string) []emberwatch.Reading { return m.series[series].accepted }

// add returns the windows Add must emit for r and the error it must return.
func (m *refModel) add(r emberwatch.Reading) ([]emberwatch.Features, error) {
	if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
		m.stats.Invalid++
		return nil, windowing.ErrInvalidValue
	}
	s := m.series[r.Series]
	if s == nil {
		if r.Time.Before(time.Unix(0, 0)) && m.matches(r.Series) {
			m.stats.BadTime++
			return nil, windowing.ErrBadTime
		}
		for _, spec := range m.specs {
			if ok, _ := path.Match(spec.Series, r.Series); ok {
				// The first window that can still take a reading: the one
				// holding the first reading's time minus the lateness.
				s = &refSeries{spec: spec, maxT: r.Time, nextOpen: floorTo(r.Time.Add(-spec.Lateness), spec.Hop).Add(spec.Hop)}
				s.watermark = r.Time.Add(-spec.Lateness)
				m.series[r.Series] = s
				break
			}
		}
		if s == nil {
			m.stats.NoWindow++
			return nil, windowing.ErrNoWindow
		}
	}
	if r.Time.Before(time.Unix(0, 0)) {
		m.stats.BadTime++
		return nil, windowing.ErrBadTime
	}
	// Late: the window holding r ends before the next one to be emitted,
	// so it has been emitted already.
	if floorTo(r.Time, s.spec.Hop).Add(s.spec.Hop).Before(s.nextOpen) {
		m.stats.Late++
		return nil, windowing.ErrLate
	}
	m.stats.Accepted++
	s.accepted = append(s.accepted, r)
	if r.Time.After(s.maxT) {
		s.maxT = r.Time
	}
	if wm := s.maxT.Add(-s.spec.Lateness); wm.After(s.watermark) {
		s.watermark = wm
	}
	var out []emberwatch.Features
	for ; !s.nextOpen.After(s.watermark); s.nextOpen = s.nextOpen.Add(s.spec.Hop) {
		if f, ok := refFeatures(s.spec, r.Series, s.nextOpen.Add(-s.spec.Size), s.nextOpen, s.accepted); ok {
			out = append(out, f)
		}
	}
	return out, nil
}

// floorTo returns the latest multiple of hop since the Unix epoch at or
// before t.
func floorTo(t time.Time, hop time.Duration) time.Time {
	d := t.Sub(time.Unix(0, 0))
	k := d / hop
	if k*hop > d {
		k--
	}
	return time.Unix(0, 0).Add(k * hop)
}

// windowsWithData returns the end of every window of s that holds at least
// one accepted reading, in order.
func windowsWithData(s *refSeries) []time.Time {
	var out []time.Time
	for _, r := range s.accepted {
		// Windows holding r end in (r.Time, r.Time+Size].
		for end := floorTo(r.Time, s.spec.Hop).Add(s.spec.Hop); !end.After(r.Time.Add(s.spec.Size)); end = end.Add(s.spec.Hop) {
			out = append(out, end)
		}
	}
	slices.SortFunc(out, time.Time.Compare)
	return slices.CompactFunc(out, time.Time.Equal)
}

// refFeatures computes the features of [start, end) from scratch.
func refFeatures(spec windowing.Config, series string, start, end time.Time, accepted []emberwatch.Reading) (emberwatch.Features, bool) {
	var in []emberwatch.Reading
	for _, r := range accepted {
		if !r.Time.Before(start) && r.Time.Before(end) {
			in = append(in, r)
		}
	}
	if len(in) == 0 {
		return emberwatch.Features{}, false
	}
	// By event time; equal times by value, so arrival order never matters.
	slices.SortFunc(in, func(a, b emberwatch.Reading) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Value, b.Value)
	})
	n := len(in)
	f := emberwatch.Features{Series: series, Start: start, End: end, Count: n, Min: in[0].Value, Max: in[0].Value}
	for _, r := range in {
		f.Sum += r.Value
		f.Min = min(f.Min, r.Value)
		f.Max = max(f.Max, r.Value)
	}
	f.Mean = f.Sum / float64(n)
	if n > 1 {
		var ss float64
		for _, r := range in {
			ss += (r.Value - f.Mean) * (r.Value - f.Mean)
		}
		f.Variance = ss / float64(n-1)
	}
	f.Stddev = math.Sqrt(f.Variance)
	f.First, f.Last = in[0].Value, in[n-1].Value
	f.Delta = f.Last - f.First
	if dt := in[n-1].Time.Sub(in[0].Time); dt > 0 {
		f.Rate = f.Delta / dt.Seconds()
	}
	// EWMA: weights halve every half-life back from the newest reading.
	var ws, w float64
	for _, r := range in {
		wt := math.Exp2(-float64(in[n-1].Time.Sub(r.Time)) / float64(spec.HalfLife))
		ws += wt * r.Value
		w += wt
	}
	f.EWMA = ws / w
	vals := make([]float64, n)
	for i, r := range in {
		vals[i] = r.Value
	}
	slices.Sort(vals)
	f.Median = refQuantile(vals, 0.5)
	devs := make([]float64, n)
	for i, v := range vals {
		devs[i] = math.Abs(v - f.Median)
	}
	slices.Sort(devs)
	f.MAD = refQuantile(devs, 0.5)
	for _, a := range spec.Aggregates {
		if q, ok := emberwatch.ParseQuantile(a); ok {
			f.Quantiles[f.NumQuantiles] = emberwatch.Quantile{Q: q, V: refQuantile(vals, q)}
			f.NumQuantiles++
		}
	}
	return f, true
}

// refQuantile interpolates between the closest ranks (type 7).
func refQuantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(math.Floor(pos))
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i]*(1-(pos-float64(i))) + sorted[i+1]*(pos-float64(i))
}

// checkFeatures compares got with the reference want: counts and order
// statistics exactly, sums and moments within 1e-9 relative. Where the spread
// vanishes, rounding of order eps*|v|^2 is all a variance can get right, so
// the tolerance has a floor scaled by the largest value.
func checkFeatures(t *rapid.T, where string, got, want emberwatch.Features, accepted []emberwatch.Reading) {
	t.Helper()
	if got.Series != want.Series || !got.Start.Equal(want.Start) || !got.End.Equal(want.End) {
		t.Fatalf("%s: window %s [%s, %s), want %s [%s, %s)", where, got.Series, got.Start, got.End, want.Series, want.Start, want.End)
	}
	if got.Count != want.Count || got.Min != want.Min || got.Max != want.Max ||
		got.First != want.First || got.Last != want.Last || got.Delta != want.Delta {
		t.Fatalf("%s: got %+v\nwant %+v", where, got, want)
	}
	// The windower works relative to the series' first value (its shift),
	// so rounding scales with the largest value the series has seen.
	var maxAbs float64
	for _, r := range accepted {
		maxAbs = max(maxAbs, math.Abs(r.Value))
	}
	for _, c := range []struct {
		name      string
		got, want float64
		floor     float64
	}{
		{"Sum", got.Sum, want.Sum, maxAbs * float64(want.Count)},
		{"Mean", got.Mean, want.Mean, maxAbs},
		{"Variance", got.Variance, want.Variance, 1e-6 * maxAbs * maxAbs},
		{"Stddev", got.Stddev, want.Stddev, 1e-3 * maxAbs},
		{"Rate", got.Rate, want.Rate, 0},
		{"EWMA", got.EWMA, want.EWMA, maxAbs},
	} {
		if math.Abs(c.got-c.want) > 1e-9*max(math.Abs(c.want), c.floor) {
			t.Fatalf("%s: %s = %.17g, want %.17g\ngot  %+v\nwant %+v", where, c.name, c.got, c.want, got, want)
		}
	}
	// Order statistics are exact, up to the rounding of one interpolation.
	if got.NumQuantiles > 0 || want.NumQuantiles > 0 {
		if got.NumQuantiles != want.NumQuantiles {
			t.Fatalf("%s: %d quantiles, want %d", where, got.NumQuantiles, want.NumQuantiles)
		}
		near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-12*max(maxAbs, 1) }
		if !near(got.Median, want.Median) || !near(got.MAD, want.MAD) {
			t.Fatalf("%s: median %v mad %v, want %v %v", where, got.Median, got.MAD, want.Median, want.MAD)
		}
		for i := range want.NumQuantiles {
			if got.Quantiles[i].Q != want.Quantiles[i].Q || !near(got.Quantiles[i].V, want.Quantiles[i].V) {
				t.Fatalf("%s: quantile %d = %+v, want %+v", where, i, got.Quantiles[i], want.Quantiles[i])
			}
		}
	}
}

func show(r emberwatch.Reading) string {
	return fmt.Sprintf("%s@%s=%v", r.Series, r.Time.UTC().Format("15:04:05.000000000"), r.Value)
}

func ends(fs []emberwatch.Features) []time.Time {
	out := make([]time.Time, len(fs))
	for i, f := range fs {
		out[i] = f.End
	}
	return out
}

// drawNudge draws how far a time moves off a whole quarter of a hop: mostly
// not at all, sometimes a nanosecond either way (to probe an edge from both
// sides), sometimes anywhere within the quarter.
func drawNudge(t *rapid.T, quarter time.Duration, label string) time.Duration {
	switch rapid.IntRange(0, 5).Draw(t, label+" nudge") {
	case 3:
		return 1
	case 4:
		return -1
	case 5:
		return time.Duration(rapid.Int64Range(0, int64(quarter)).Draw(t, label+" offset"))
	}
	return 0
}
