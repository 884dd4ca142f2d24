package windowing_test

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"path"
	"reflect"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/windowing"
)

// This file tests Windower.Reconfigure and Deriver.Reconfigure: a config
// reload while the agent runs keeps the state of what did not change.

// rop is one call of a generated stream: AddAt(r, arrival), or Tick(arrival)
// when tick is set.
type rop struct {
	tick    bool
	r       emberwatch.Reading
	arrival time.Time
}

// TestReconfigureIdenticalSpecsChangesNothing feeds random streams of every
// window kind, with lateness, out-of-order and too-late readings, invalid
// values, unmatched series, idle ticks and small MaxPoints, to two
// Windowers. The second is reconfigured with the same specs (as given, or
// normalised, sometimes with an extra spec that matches none of the series)
// at random points. Both must answer every call identically, bit for bit,
// flush the same windows at the end and count the same Stats; Reconfigure
// itself must emit nothing.
func TestReconfigureIdenticalSpecsChangesNothing(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		specs, ops := drawReconfigStream(t)
		at := rapid.SliceOfN(rapid.IntRange(0, len(ops)), 1, 3).Draw(t, "reconfigure before ops")
		plain, w := windowing.New(specs), windowing.New(specs)

		sentinel := emberwatch.Features{Series: "sentinel"}
		reconfigure := func(i int) {
			again := make([]windowing.Config, len(specs))
			normalise := rapid.Bool().Draw(t, "normalised copy?")
			for j, c := range specs {
				c.Aggregates = slices.Clone(c.Aggregates)
				if normalise {
					c = normalised(c)
				}
				again[j] = c
			}
			if rapid.Bool().Draw(t, "extra spec matching none?") {
				again = append(again, windowing.Config{Series: "nothing/*", Size: time.Hour})
			}
			got := w.Reconfigure(again, []emberwatch.Features{sentinel})
			if len(got) != 1 || got[0].Series != "sentinel" {
				t.Fatalf("before op %d: Reconfigure to the same specs emitted %s, want nothing", i, spans(got[min(1, len(got)):]))
			}
		}
		for i, o := range ops {
			for _, k := range at {
				if k == i {
					reconfigure(i)
				}
			}
			want, wantErr := call(plain, o)
			got, err := call(w, o)
			if err != wantErr {
				t.Fatalf("op %d %s: error = %v, without Reconfigure %v", i, o, err, wantErr)
			}
			sameWindows(t, fmt.Sprintf("op %d %s", i, o), got, want)
		}
		if slices.Contains(at, len(ops)) {
			reconfigure(len(ops))
		}
		sameWindows(t, "Flush", w.Flush(nil), plain.Flush(nil))
		if got, want := w.Stats(), plain.Stats(); got != want {
			t.Fatalf("Stats = %+v, without Reconfigure %+v", got, want)
		}
	})
}

// sameWindows fails unless got and want (what a Windower that was not
// reconfigured answers) are the same windows, bit for bit (a NaN equals a
// NaN).
func sameWindows(t interface {
	Helper()
	Fatalf(string, ...any)
}, where string, got, want []emberwatch.Features) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: emitted %s, want %s", where, spans(got), spans(want))
	}
	for i := range got {
		// %v prints every float in its shortest exact form.
		if fmt.Sprintf("%+v", got[i]) != fmt.Sprintf("%+v", want[i]) {
			t.Fatalf("%s: window %d differs from the one wanted:%s", where, i, fieldDiff(got[i], want[i]))
		}
	}
}

// drawReconfigStream draws one to three series, each with a spec of a
// random kind and options, and a stream of calls in arrival order.
func drawReconfigStream(t *rapid.T) ([]windowing.Config, []rop) {
	nSeries := rapid.IntRange(1, 3).Draw(t, "series")
	base := t0.Add(time.Duration(rapid.Int64Range(-int64(time.Hour), int64(time.Hour)).Draw(t, "base")))
	var specs []windowing.Config
	var ops []rop
	for i := range nSeries {
		name := fmt.Sprintf("s%d", i)
		c, quarter := drawSpec(t, name)
		specs = append(specs, c)
		nudge := func(label string) time.Duration { return drawNudge(t, quarter, label) }
		at := base
		for range rapid.IntRange(1, 40).Draw(t, "readings") {
			at = at.Add(max(0, time.Duration(rapid.IntRange(0, 8).Draw(t, "step"))*quarter+nudge("step")))
			if rapid.IntRange(0, 19).Draw(t, "jump?") == 0 {
				at = at.Add(time.Duration(rapid.IntRange(1, 20).Draw(t, "jump")) * quarter * 4)
			}
			v := float64(rapid.IntRange(-100000, 100000).Draw(t, "value")) / 100
			if rapid.IntRange(0, 29).Draw(t, "invalid?") == 0 {
				v = rapid.SampledFrom([]float64{math.NaN(), math.Inf(1), math.Inf(-1)}).Draw(t, "invalid")
			}
			// Mostly within the lateness, sometimes well beyond it.
			delay := time.Duration(rapid.IntRange(0, 4).Draw(t, "delay")) * c.Lateness / 4
			if rapid.IntRange(0, 9).Draw(t, "too late?") == 0 {
				delay = c.Lateness + time.Duration(rapid.IntRange(1, 16).Draw(t, "excess"))*quarter
			}
			r := emberwatch.Reading{Series: name, Time: at, Value: v}
			if rapid.IntRange(0, 29).Draw(t, "unmatched?") == 0 {
				r.Series = "unmatched"
			}
			ops = append(ops, rop{r: r, arrival: at.Add(delay + nudge("arrival"))})
			if rapid.IntRange(0, 7).Draw(t, "tick?") == 0 {
				ops = append(ops, rop{tick: true, arrival: at.Add(delay + time.Duration(rapid.IntRange(0, 32).Draw(t, "tick after"))*quarter)})
			}
		}
	}
	if rapid.Bool().Draw(t, "catch-all?") {
		c := specs[rapid.IntRange(0, len(specs)-1).Draw(t, "catch-all like")]
		c.Series = rapid.SampledFrom([]string{"*", "s*", "s[01]"}).Draw(t, "catch-all")
		specs = append(specs, c)
	}
	specs = rapid.Permutation(specs).Draw(t, "spec order")
	slices.SortStableFunc(ops, func(a, b rop) int { return a.arrival.Compare(b.arrival) })
	return specs, ops
}

// drawSpec draws a valid spec for series of any kind, with random lateness,
// late policy, idle timeout, time mode, aggregates and MaxPoints, left for
// New to normalise. quarter is the time step its readings should move in: a
// quarter of a hop, of a session gap, or of a time unit for count windows.
func drawSpec(t *rapid.T, series string) (c windowing.Config, quarter time.Duration) {
	unit := rapid.SampledFrom([]time.Duration{250 * time.Millisecond, time.Second, time.Minute}).Draw(t, "unit")
	c = windowing.Config{Series: series, Kind: rapid.SampledFrom([]string{
		windowing.KindSliding, windowing.KindTumbling, windowing.KindCount, windowing.KindSession}).Draw(t, "kind")}
	quarter = unit / 4
	switch c.Kind {
	case windowing.KindSliding:
		c.Hop = time.Duration(rapid.IntRange(1, 6).Draw(t, "hop")) * unit
		c.Size = time.Duration(rapid.IntRange(1, 4).Draw(t, "hops per window")) * c.Hop
		quarter = c.Hop / 4
	case windowing.KindTumbling:
		c.Size = time.Duration(rapid.IntRange(1, 6).Draw(t, "size")) * unit
		quarter = c.Size / 4
	case windowing.KindCount:
		c.Every = rapid.IntRange(1, 3).Draw(t, "every")
		c.Count = c.Every * rapid.IntRange(1, 4).Draw(t, "panes per window")
	case windowing.KindSession:
		c.Gap = time.Duration(rapid.IntRange(1, 6).Draw(t, "gap")) * unit
		quarter = c.Gap / 4
	}
	c.Lateness = time.Duration(rapid.IntRange(0, 12).Draw(t, "lateness")) * quarter
	if rapid.IntRange(0, 2).Draw(t, "odd lateness?") == 0 {
		c.Lateness += time.Duration(rapid.Int64Range(-1, int64(quarter)).Draw(t, "lateness offset"))
		c.Lateness = max(0, c.Lateness)
	}
	if rapid.Bool().Draw(t, "update policy?") {
		c.LatePolicy = windowing.LateUpdate
	}
	if rapid.IntRange(0, 3).Draw(t, "idle timeout?") == 0 {
		c.IdleTimeout = time.Duration(rapid.IntRange(1, 16).Draw(t, "idle timeout")) * quarter
	}
	if rapid.IntRange(0, 5).Draw(t, "processing time?") == 0 {
		c.Time = windowing.TimeProcessing
	}
	if rapid.Bool().Draw(t, "order statistics?") {
		c.Aggregates = []string{"count", "mean", "ewma", "median", "mad", "p10", "p90", "p99.9"}
	}
	if rapid.IntRange(0, 4).Draw(t, "few max points?") == 0 {
		c.MaxPoints = c.Count + rapid.IntRange(1, 12).Draw(t, "max points")
	}
	n := normalised(c)
	if err := n.Validate(); err != nil {
		t.Fatalf("drew an invalid spec %+v: %v", n, err)
	}
	return c, quarter
}

// normalised returns a normalised copy of c.
func normalised(c windowing.Config) windowing.Config {
	c.Aggregates = slices.Clone(c.Aggregates)
	c.Normalize()
	return c
}

// firstSpec returns, normalised, the first of specs that matches series.
func firstSpec(specs []windowing.Config, series string) (windowing.Config, bool) {
	for _, c := range specs {
		c = normalised(c)
		if ok, _ := path.Match(c.Series, series); ok || c.Series == "*" {
			return c, true
		}
	}
	return windowing.Config{}, false
}

// TestReconfigureChangedSpecsProperty draws a stream and, for its middle, a
// new set of specs in which each spec is kept, redrawn or removed, and a
// catch-all may be added. Against two plain Windowers, one that never
// changes and one with the new specs fed only what comes after the change,
// it checks that:
//
//   - a series whose first matching spec is unchanged answers every call
//     as if there had been no Reconfigure;
//   - Reconfigure emits, for every other series that holds data, exactly
//     what Flush would have emitted for it at that point, in the order
//     Flush would have;
//   - afterwards such a series behaves exactly like a new series under the
//     new specs (or is rejected with ErrNoWindow if none matches it).
func TestReconfigureChangedSpecsProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		specs, ops := drawReconfigStream(t)
		k := rapid.IntRange(0, len(ops)).Draw(t, "reconfigure before op")
		var next []windowing.Config
		for i, c := range specs {
			switch rapid.IntRange(0, 2).Draw(t, fmt.Sprintf("spec %d: keep, redraw or remove", i)) {
			case 0:
				next = append(next, c)
			case 1:
				n, _ := drawSpec(t, c.Series)
				next = append(next, n)
			}
		}
		if rapid.IntRange(0, 3).Draw(t, "new catch-all?") == 0 {
			c, _ := drawSpec(t, "*")
			next = slices.Insert(next, rapid.IntRange(0, len(next)).Draw(t, "catch-all at"), c)
		}

		// The series that exist at the change: a finite reading came for
		// them and a spec matched. They keep their state if the spec they
		// match first is the same.
		kept := map[string]bool{}
		for _, o := range ops[:k] {
			if o.tick || math.IsNaN(o.r.Value) || math.IsInf(o.r.Value, 0) {
				continue
			}
			was, ok := firstSpec(specs, o.r.Series)
			is, still := firstSpec(next, o.r.Series)
			kept[o.r.Series] = ok && still && reflect.DeepEqual(was, is)
		}
		keptOf := func(fs []emberwatch.Features, want bool) []emberwatch.Features {
			var out []emberwatch.Features
			for _, f := range fs {
				if kept[f.Series] == want {
					out = append(out, f)
				}
			}
			return out
		}

		w, plain := windowing.New(specs), windowing.New(specs)
		for i, o := range ops[:k] {
			want, wantErr := call(plain, o)
			got, err := call(w, o)
			if err != wantErr {
				t.Fatalf("op %d %s: error = %v, want %v", i, o, err, wantErr)
			}
			sameWindows(t, fmt.Sprintf("op %d %s", i, o), got, want)
		}
		// What Flush would emit now for the series that do not keep their
		// state: a copy of the plain Windower, made by replaying.
		before := windowing.New(specs)
		for _, o := range ops[:k] {
			call(before, o)
		}
		sameWindows(t, "Reconfigure", w.Reconfigure(next, nil), keptOf(before.Flush(nil), false))

		fresh := windowing.New(next)
		for i, o := range ops[k:] {
			i += k
			want, wantErr := call(plain, o)
			if o.tick {
				more, _ := call(fresh, o)
				want = append(keptOf(want, true), more...)
			} else if !kept[o.r.Series] {
				want, wantErr = call(fresh, o)
			}
			got, err := call(w, o)
			if err != wantErr {
				t.Fatalf("op %d %s: error = %v, want %v", i, o, err, wantErr)
			}
			sameWindows(t, fmt.Sprintf("op %d %s", i, o), got, want)
		}
		sameWindows(t, "Flush", w.Flush(nil), append(keptOf(plain.Flush(nil), true), fresh.Flush(nil)...))
	})
}

// call makes the call o on w.
func call(w *windowing.Windower, o rop) ([]emberwatch.Features, error) {
	if o.tick {
		return w.Tick(o.arrival, nil), nil
	}
	return w.AddAt(o.r, o.arrival, nil)
}

func (o rop) String() string {
	if o.tick {
		return fmt.Sprintf("Tick(%s)", o.arrival.UTC().Format("15:04:05.000000000"))
	}
	return fmt.Sprintf("AddAt(%s, arriving %s)", show(o.r), o.arrival.UTC().Format("15:04:05.000000000"))
}

// rstep is one call of a hand-written reconfigure timeline: Add of a
// reading (series "x" unless named), or Reconfigure to specs when specs is
// not nil. emit is what the call must emit; err what Add must return.
type rstep struct {
	series string
	at     time.Duration
	v      float64
	err    error
	specs  []windowing.Config
	emit   []kwin
}

// runReconfigTimeline runs steps on a Windower built from specs and checks
// every answer and every window against naiveWindow (a kwin's of indexes
// steps), then Flush against flush. Windows are checked under the spec
// that made them: a Reconfigure's flushed windows under the specs before it.
// It returns the Windower and everything it emitted, Flush included.
func runReconfigTimeline(t *testing.T, specs []windowing.Config, steps []rstep, flush []kwin) (*windowing.Windower, []emberwatch.Features) {
	t.Helper()
	w := windowing.New(specs)
	readings := make([]emberwatch.Reading, len(steps))
	for i, st := range steps {
		readings[i] = emberwatch.Reading{Series: cmp.Or(st.series, "x"), Time: t0.Add(st.at), Value: st.v}
	}
	var all []emberwatch.Features
	check := func(where string, specs []windowing.Config, got []emberwatch.Features, want []kwin) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: emitted %d windows %s, want %d %s", where, len(got), spans(got), len(want), kspans(want))
		}
		for j, kw := range want {
			var pts []emberwatch.Reading
			for _, i := range kw.of {
				if steps[i].specs != nil {
					t.Fatalf("%s: window %d holds step %d, a Reconfigure", where, j, i)
				}
				pts = append(pts, readings[i])
			}
			series := cmp.Or(kw.series, "x")
			wantF := naiveWindow(specFor(t, specs, series), series, t0.Add(kw.start), t0.Add(kw.end), pts)
			wantF.Update = kw.update
			checkWindow(t, fmt.Sprintf("%s, window %d", where, j), got[j], wantF)
		}
		all = append(all, got...)
	}
	for i, st := range steps {
		if st.specs != nil {
			// dst keeps what it held and gets the flushed windows after it.
			kept := emberwatch.Features{Series: "kept"}
			got := w.Reconfigure(st.specs, []emberwatch.Features{kept})
			if len(got) == 0 || got[0].Series != "kept" {
				t.Fatalf("step %d: Reconfigure did not append to dst: %s", i, spans(got))
			}
			check(fmt.Sprintf("step %d (Reconfigure)", i), specs, got[1:], st.emit)
			specs = st.specs
			continue
		}
		got, err := w.Add(readings[i], nil)
		if !errors.Is(err, st.err) || (err == nil) != (st.err == nil) {
			t.Fatalf("step %d: Add(%s at %s, %v) error = %v, want %v", i, readings[i].Series, st.at, st.v, err, st.err)
		}
		check(fmt.Sprintf("step %d (%s at %s, %v)", i, readings[i].Series, st.at, st.v), specs, got, st.emit)
	}
	check("Flush", specs, w.Flush(nil), flush)
	return w, all
}

// TestReconfigureChangedSpec changes the spec of one series of each kind:
// Reconfigure flushes its open windows, and its next reading starts it
// afresh under the new spec, sharing nothing with what came before (not
// even a window it falls in). Stats carry on across the change.
func TestReconfigureChangedSpec(t *testing.T) {
	s := time.Second
	one := func(c windowing.Config) []windowing.Config { return []windowing.Config{c} }
	tests := []struct {
		name  string
		specs []windowing.Config
		steps []rstep
		flush []kwin
		stats windowing.Stats
	}{
		{
			name:  "sliding: every window holding data is flushed, then a smaller tumbling window",
			specs: one(windowing.Config{Size: 2 * time.Minute, Hop: time.Minute}),
			steps: []rstep{
				0: {at: 0, v: 1},
				1: {at: 30 * s, v: 2},
				2: {at: 70 * s, v: 4, emit: []kwin{{start: -60 * s, end: 60 * s, of: []int{0, 1}}}},
				3: {specs: one(windowing.Config{Size: 30 * s}), emit: []kwin{
					{start: 0, end: 120 * s, of: []int{0, 1, 2}},
					{start: 60 * s, end: 180 * s, of: []int{2}},
				}},
				4: {at: 75 * s, v: 8},
				5: {at: 100 * s, v: 16, emit: []kwin{{start: 60 * s, end: 90 * s, of: []int{4}}}},
			},
			flush: []kwin{{start: 90 * s, end: 120 * s, of: []int{5}}},
			stats: windowing.Stats{Accepted: 5, Emitted: 5},
		},
		{
			// The reading at 40s comes within the old lateness but after the
			// flush: the series has started afresh, so it opens a new window
			// of its own rather than being late.
			name:  "tumbling with lateness: the held windows are flushed, the next reading starts afresh",
			specs: one(windowing.Config{Size: time.Minute, Lateness: 30 * s}),
			steps: []rstep{
				0: {at: 10 * s, v: 1},
				1: {at: 50 * s, v: 2},
				2: {at: 70 * s, v: 4},
				3: {specs: one(windowing.Config{Size: time.Minute}), emit: []kwin{
					{start: 0, end: 60 * s, of: []int{0, 1}},
					{start: 60 * s, end: 120 * s, of: []int{2}},
				}},
				4: {at: 40 * s, v: 8},
				5: {at: 45 * s, v: 16},
				6: {at: 60 * s, v: 32, emit: []kwin{{start: 0, end: 60 * s, of: []int{4, 5}}}},
				7: {at: 59 * s, v: 64, err: windowing.ErrLate},
			},
			flush: []kwin{{start: 60 * s, end: 120 * s, of: []int{6}}},
			stats: windowing.Stats{Accepted: 6, Late: 1, Emitted: 4},
		},
		{
			name:  "count: the partial window is flushed, the new count starts from nothing",
			specs: one(windowing.Config{Kind: windowing.KindCount, Count: 4, Every: 2}),
			steps: []rstep{
				0: {at: 0, v: 1},
				1: {at: s, v: 2},
				2: {at: 2 * s, v: 4},
				3: {at: 3 * s, v: 8, emit: []kwin{{start: 0, end: 3 * s, of: []int{0, 1, 2, 3}}}},
				4: {at: 4 * s, v: 16},
				5: {specs: one(windowing.Config{Kind: windowing.KindCount, Count: 2}), emit: []kwin{
					{start: 2 * s, end: 4 * s, of: []int{2, 3, 4}},
				}},
				6: {at: 5 * s, v: 32},
				7: {at: 6 * s, v: 64, emit: []kwin{{start: 5 * s, end: 6 * s, of: []int{6, 7}}}},
				8: {at: 7 * s, v: 128},
			},
			flush: []kwin{{start: 7 * s, end: 7 * s, of: []int{8}}},
			stats: windowing.Stats{Accepted: 8, Emitted: 4},
		},
		{
			name:  "count: whole panes that do not fill a window yet are flushed",
			specs: one(windowing.Config{Kind: windowing.KindCount, Count: 4, Every: 2}),
			steps: []rstep{
				0: {at: 0, v: 1},
				1: {at: s, v: 2},
				2: {specs: one(windowing.Config{Kind: windowing.KindCount, Count: 6, Every: 2}), emit: []kwin{
					{start: 0, end: s, of: []int{0, 1}},
				}},
			},
			stats: windowing.Stats{Accepted: 2, Emitted: 1},
		},
		{
			name:  "session: the open session is flushed and does not merge with the next",
			specs: one(windowing.Config{Kind: windowing.KindSession, Gap: 10 * s}),
			steps: []rstep{
				0: {at: 0, v: 1},
				1: {at: 5 * s, v: 2},
				2: {at: 30 * s, v: 4, emit: []kwin{{start: 0, end: 15 * s, of: []int{0, 1}}}},
				3: {specs: one(windowing.Config{Kind: windowing.KindSession, Gap: 20 * s}), emit: []kwin{
					{start: 30 * s, end: 40 * s, of: []int{2}},
				}},
				4: {at: 35 * s, v: 8},
				5: {at: 50 * s, v: 16},
			},
			flush: []kwin{{start: 35 * s, end: 70 * s, of: []int{4, 5}}},
			stats: windowing.Stats{Accepted: 5, Emitted: 3},
		},
		{
			name:  "a change of kind: tumbling to session",
			specs: one(windowing.Config{Size: time.Minute}),
			steps: []rstep{
				0: {at: 10 * s, v: 1},
				1: {specs: one(windowing.Config{Kind: windowing.KindSession, Gap: 5 * s}), emit: []kwin{
					{start: 0, end: 60 * s, of: []int{0}},
				}},
				2: {at: 20 * s, v: 2},
				3: {at: 40 * s, v: 4, emit: []kwin{{start: 20 * s, end: 25 * s, of: []int{2}}}},
			},
			flush: []kwin{{start: 40 * s, end: 45 * s, of: []int{3}}},
			stats: windowing.Stats{Accepted: 3, Emitted: 3},
		},
		{
			name:  "a change of an option alone (the aggregates) counts as a change",
			specs: one(windowing.Config{Size: time.Minute}),
			steps: []rstep{
				0: {at: 10 * s, v: 1},
				1: {specs: one(windowing.Config{Size: time.Minute, Aggregates: []string{"count", "mean", "median", "p90"}}), emit: []kwin{
					{start: 0, end: 60 * s, of: []int{0}},
				}},
				2: {at: 20 * s, v: 2},
				3: {at: 25 * s, v: 3},
			},
			flush: []kwin{{start: 0, end: 60 * s, of: []int{2, 3}}},
			stats: windowing.Stats{Accepted: 3, Emitted: 2},
		},
		{
			name:  "a series that was never started has nothing to flush",
			specs: one(windowing.Config{Size: time.Minute}),
			steps: []rstep{
				0: {at: -100 * 365 * 24 * time.Hour, v: 1, err: windowing.ErrBadTime}, // before 1970
				1: {specs: one(windowing.Config{Size: 2 * time.Minute})},
				2: {at: 10 * s, v: 2},
			},
			flush: []kwin{{start: 0, end: 120 * s, of: []int{2}}},
			stats: windowing.Stats{Accepted: 1, BadTime: 1, Emitted: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := runReconfigTimeline(t, tt.specs, tt.steps, tt.flush)
			if got := w.Stats(); got != tt.stats {
				t.Errorf("Stats = %+v, want %+v", got, tt.stats)
			}
		})
	}
}

// TestReconfigureKeepsUnchangedSeries runs two series, then changes the spec
// of a only. b's windows are exactly those of a run without Reconfigure; a's
// open window is flushed, and a starts afresh with windows of the new size.
func TestReconfigureKeepsUnchangedSeries(t *testing.T) {
	s := time.Second
	aggs := []string{"count", "sum", "mean", "min", "max", "variance", "ewma", "median", "p90"}
	old := []windowing.Config{
		{Series: "a", Size: time.Minute, Aggregates: aggs},
		{Series: "*", Size: 2 * time.Minute, Hop: time.Minute, Lateness: 10 * s, Aggregates: aggs},
	}
	changed := []windowing.Config{
		{Series: "a", Size: 2 * time.Minute, Aggregates: aggs},
		{Series: "*", Size: 2 * time.Minute, Hop: time.Minute, Lateness: 10 * s, Aggregates: aggs},
	}
	steps := []rstep{
		0:  {series: "a", at: 0, v: 1},
		1:  {series: "b", at: 5 * s, v: 10},
		2:  {series: "a", at: 30 * s, v: 2},
		3:  {series: "b", at: 40 * s, v: 20},
		4:  {series: "a", at: 65 * s, v: 4, emit: []kwin{{series: "a", start: 0, end: 60 * s, of: []int{0, 2}}}},
		5:  {series: "b", at: 70 * s, v: 30, emit: []kwin{{series: "b", start: -60 * s, end: 60 * s, of: []int{1, 3}}}},
		6:  {series: "b", at: 62 * s, v: 25}, // out of order, within the lateness
		7:  {specs: changed, emit: []kwin{{series: "a", start: 60 * s, end: 120 * s, of: []int{4}}}},
		8:  {series: "b", at: 65 * s, v: 27}, // b's held panes take it as if nothing happened
		9:  {series: "a", at: 80 * s, v: 8},  // a fresh count: the reading at 65s is not in its window
		10: {series: "b", at: 130 * s, v: 40, emit: []kwin{{series: "b", start: 0, end: 120 * s, of: []int{1, 3, 5, 6, 8}}}},
		11: {series: "a", at: 130 * s, v: 16, emit: []kwin{{series: "a", start: 0, end: 120 * s, of: []int{9}}}},
		12: {series: "a", at: 150 * s, v: 32},
	}
	// b is flushed first: a was made anew after it.
	flush := []kwin{
		{series: "b", start: 60 * s, end: 180 * s, of: []int{5, 6, 8, 10}},
		{series: "b", start: 120 * s, end: 240 * s, of: []int{10}},
		{series: "a", start: 120 * s, end: 240 * s, of: []int{11, 12}},
	}
	w, got := runReconfigTimeline(t, old, steps, flush)

	// The same readings without the Reconfigure.
	plain := windowing.New(old)
	var want []emberwatch.Features
	for _, st := range steps {
		if st.specs == nil {
			var err error
			if want, err = plain.Add(emberwatch.Reading{Series: st.series, Time: t0.Add(st.at), Value: st.v}, want); err != nil {
				t.Fatal(err)
			}
		}
	}
	want = plain.Flush(want)
	if b, wantB := ofSeries(got, "b"), ofSeries(want, "b"); !reflect.DeepEqual(b, wantB) {
		t.Errorf("b emitted %s, without Reconfigure %s", spans(b), spans(wantB))
	}
	for _, f := range ofSeries(got, "a")[2:] {
		if f.End.Sub(f.Start) != 2*time.Minute {
			t.Errorf("a's window %s after the change is not 2m long", spans([]emberwatch.Features{f}))
		}
	}
	if c, ok := w.SpecFor("a"); !ok || c.Size != 2*time.Minute {
		t.Errorf("SpecFor(a) = %+v, %v; want the new 2m spec", c, ok)
	}
	// Stats carry on: nothing is reset, and the flushed window is counted.
	wantStats := windowing.Stats{Accepted: 12, Emitted: uint64(len(got))}
	if st := w.Stats(); st != wantStats {
		t.Errorf("Stats = %+v, want %+v", st, wantStats)
	}
}

// TestReconfigureMatchingFirstSpec: a series keeps its windows when the
// first spec it matches is unchanged, wherever that spec moves in the list,
// and loses them when a new spec in front of it now matches it first, even
// one with the same window.
func TestReconfigureMatchingFirstSpec(t *testing.T) {
	s := time.Second
	a := windowing.Config{Series: "a", Size: time.Minute}
	b := windowing.Config{Series: "b*", Size: time.Minute}
	takeB := windowing.Config{Series: "b2", Size: time.Minute} // b*'s window under another pattern
	steps := []rstep{
		0: {series: "a", at: 0, v: 1},
		1: {series: "b1", at: 0, v: 2},
		2: {series: "b2", at: 0, v: 4},
		3: {specs: []windowing.Config{{Series: "c", Kind: windowing.KindCount, Count: 1}, takeB, b, a}, emit: []kwin{
			{series: "b2", start: 0, end: 60 * s, of: []int{2}},
		}},
		4: {series: "a", at: 10 * s, v: 8},
		5: {series: "b1", at: 10 * s, v: 16},
		6: {series: "b2", at: 10 * s, v: 32},
	}
	flush := []kwin{
		{series: "a", start: 0, end: 60 * s, of: []int{0, 4}},
		{series: "b1", start: 0, end: 60 * s, of: []int{1, 5}},
		{series: "b2", start: 0, end: 60 * s, of: []int{6}},
	}
	runReconfigTimeline(t, []windowing.Config{a, b}, steps, flush)
}

// TestReconfigureRemovedSeries removes every spec that matches a series: its
// windows are flushed, its readings are rejected with ErrNoWindow from then
// on, and a later config that matches it again starts it afresh.
func TestReconfigureRemovedSeries(t *testing.T) {
	s := time.Second
	a := windowing.Config{Series: "a", Size: time.Minute, Lateness: 20 * s}
	b := windowing.Config{Series: "b", Kind: windowing.KindSession, Gap: 10 * s}
	steps := []rstep{
		0: {series: "a", at: 0, v: 1},
		1: {series: "b", at: 0, v: 2},
		2: {series: "a", at: 70 * s, v: 4},
		3: {series: "b", at: 30 * s, v: 8, emit: []kwin{{series: "b", start: 0, end: 10 * s, of: []int{1}}}},
		4: {specs: []windowing.Config{b}, emit: []kwin{
			{series: "a", start: 0, end: 60 * s, of: []int{0}},
			{series: "a", start: 60 * s, end: 120 * s, of: []int{2}},
		}},
		5: {series: "a", at: 75 * s, v: 16, err: windowing.ErrNoWindow},
		6: {series: "b", at: 35 * s, v: 32},
		7: {series: "a", at: 200 * s, v: 64, err: windowing.ErrNoWindow},
		8: {specs: []windowing.Config{a, b}},
		9: {series: "a", at: 10 * s, v: 128}, // older than everything flushed: a fresh start
	}
	flush := []kwin{
		{series: "b", start: 30 * s, end: 45 * s, of: []int{3, 6}},
		{series: "a", start: 0, end: 60 * s, of: []int{9}},
	}
	w, got := runReconfigTimeline(t, []windowing.Config{a, b}, steps, flush)
	want := windowing.Stats{Accepted: 6, NoWindow: 2, Emitted: uint64(len(got))}
	if st := w.Stats(); st != want {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}

	// Removed, and not matched again: SpecFor and Flush know nothing of it.
	w = windowing.New([]windowing.Config{a, b})
	if _, err := w.Add(emberwatch.Reading{Series: "a", Time: t0, Value: 1}, nil); err != nil {
		t.Fatal(err)
	}
	if got := w.Reconfigure([]windowing.Config{b}, nil); spans(got) != "[a[0s,1m0s)n=1]" {
		t.Errorf("Reconfigure emitted %s, want a's open window", spans(got))
	}
	if c, ok := w.SpecFor("a"); ok {
		t.Errorf("SpecFor(a) = %+v after its spec was removed", c)
	}
	if got := w.Flush(nil); len(got) != 0 {
		t.Errorf("Flush emitted %s, want nothing", spans(got))
	}
	if got := w.Reconfigure(nil, nil); len(got) != 0 {
		t.Errorf("Reconfigure to no specs emitted %s, want nothing: b never started", spans(got))
	}
	if _, err := w.Add(emberwatch.Reading{Series: "b", Time: t0, Value: 1}, nil); !errors.Is(err, windowing.ErrNoWindow) {
		t.Errorf("Add to b with no specs: %v, want ErrNoWindow", err)
	}
}

// TestReconfigureIdleTimeoutCarriesOn: a series kept through a Reconfigure
// keeps its idle clock, and Tick no longer sees a series that was flushed.
func TestReconfigureIdleTimeoutCarriesOn(t *testing.T) {
	s := time.Second
	quiet := windowing.Config{Series: "quiet", Size: time.Minute, IdleTimeout: 30 * s}
	gone := windowing.Config{Series: "gone", Size: time.Minute, IdleTimeout: 30 * s}
	w := runOps(t, []windowing.Config{quiet, gone}, []op{
		{series: "quiet", at: 50 * s, arrival: 50 * s},
		{series: "gone", at: 50 * s, arrival: 50 * s},
	})
	if got := spans(w.Reconfigure([]windowing.Config{quiet}, nil)); got != "[gone[0s,1m0s)n=1]" {
		t.Fatalf("Reconfigure emitted %s, want gone's window", got)
	}
	if got := spans(w.Tick(t0.Add(79*s), nil)); got != "[]" {
		t.Errorf("Tick at 79s emitted %s, want nothing", got)
	}
	if got := spans(w.Tick(t0.Add(80*s), nil)); got != "[quiet[0s,1m0s)n=1]" {
		t.Errorf("Tick at 80s emitted %s, want quiet's window: the idle clock ran on from 50s", got)
	}
}

// TestDeriverReconfigure: an unchanged definition keeps the reading it is
// waiting to pair and the time of its last pair, wherever it moves in the
// list; a changed or new one starts with nothing; a removed one is gone.
func TestDeriverReconfigure(t *testing.T) {
	rd := func(series string, s int, v float64) emberwatch.Reading {
		return emberwatch.Reading{Series: series, Time: t0.Add(time.Duration(s) * time.Second), Value: v}
	}
	spread := func() windowing.DerivedConfig {
		return windowing.DerivedConfig{Name: "spread", Op: "difference", Of: []string{"in", "out"}}
	}
	with := func(set func(*windowing.DerivedConfig)) windowing.DerivedConfig {
		c := spread()
		set(&c)
		return c
	}
	other := windowing.DerivedConfig{Name: "total", Op: "sum", Of: []string{"x", "y"}}
	// step is a reading to Add, or a Reconfigure to cfgs when cfgs is not nil.
	type step struct {
		r    emberwatch.Reading
		cfgs []windowing.DerivedConfig
		want []emberwatch.Reading
	}
	reconf := func(cfgs ...windowing.DerivedConfig) step {
		return step{cfgs: append([]windowing.DerivedConfig{}, cfgs...)}
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "an unchanged definition pairs a reading from before with one after",
			steps: []step{
				{r: rd("in", 0, 21)},
				reconf(other, spread()),
				{r: rd("out", 0, 5), want: []emberwatch.Reading{rd("spread", 0, 16)}},
			},
		},
		{
			name: "an unchanged definition remembers its last pair",
			steps: []step{
				{r: rd("in", 10, 21)},
				{r: rd("out", 10, 5), want: []emberwatch.Reading{rd("spread", 10, 16)}},
				reconf(spread()),
				{r: rd("in", 10, 22)}, // the pair at 10s has been used
				{r: rd("in", 20, 23)},
				{r: rd("out", 20, 3), want: []emberwatch.Reading{rd("spread", 20, 20)}},
			},
		},
		{
			name: "a changed tolerance starts fresh",
			steps: []step{
				{r: rd("in", 0, 21)},
				reconf(with(func(c *windowing.DerivedConfig) { c.Tolerance = time.Second })),
				{r: rd("out", 0, 5)},
				{r: rd("in", 1, 22), want: []emberwatch.Reading{rd("spread", 1, 17)}},
			},
		},
		{
			name: "a changed operation starts fresh",
			steps: []step{
				{r: rd("in", 0, 21)},
				reconf(with(func(c *windowing.DerivedConfig) { c.Op = "sum" })),
				{r: rd("out", 0, 5)},
				{r: rd("in", 0, 20), want: []emberwatch.Reading{rd("spread", 0, 25)}},
			},
		},
		{
			name: "swapped inputs are a change",
			steps: []step{
				{r: rd("in", 0, 21)},
				reconf(with(func(c *windowing.DerivedConfig) { c.Of = []string{"out", "in"} })),
				{r: rd("out", 0, 5)},
				{r: rd("in", 0, 20), want: []emberwatch.Reading{rd("spread", 0, -15)}},
			},
		},
		{
			name: "a removed definition derives nothing, and comes back fresh",
			steps: []step{
				{r: rd("in", 0, 21)},
				reconf(other),
				{r: rd("out", 0, 5)},
				reconf(spread(), other),
				{r: rd("in", 1, 22)},
				{r: rd("x", 1, 1)},
				{r: rd("out", 1, 4), want: []emberwatch.Reading{rd("spread", 1, 18)}},
				{r: rd("y", 1, 2), want: []emberwatch.Reading{rd("total", 1, 3)}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := windowing.NewDeriver([]windowing.DerivedConfig{spread()})
			for i, st := range tt.steps {
				if st.cfgs != nil {
					d.Reconfigure(st.cfgs)
					continue
				}
				got := d.Add(st.r, nil)
				if fmt.Sprint(got) != fmt.Sprint(st.want) {
					t.Fatalf("step %d: Add(%+v) = %v, want %v", i, st.r, got, st.want)
				}
			}
		})
	}
}
