package detect

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestCADOSEGeneralPaths checks CAD OSE's fast paths against the general
// ones they stand in for, which the NAB corpus and the parameter variants
// of TestCADOSEVariantsUnchanged do not all reach: a left semi-context
// with more contexts than its activation tables hold (here after one),
// crossings (their hashes and, for new contexts, facts) read from the left
// facts' positions or looked up fact by fact (posLimit 0), and no
// activation tables at all (which also leaves crossPartial without
// zeroSubs, so that it walks every left semi-context it is given). The
// scores must not differ.
func TestCADOSEGeneralPaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 0xcad))
	vals := make([]float64, 1500)
	for i := range vals {
		vals[i] = 10*math.Sin(float64(i)/9) + 0.01*float64(i) + rng.NormFloat64()
		if i%97 == 0 {
			vals[i] += 40 * rng.Float64()
		}
	}
	p := DefaultPointParams().CAD
	variants := []struct {
		name string
		set  func(*contextOperator)
	}{
		{"one-link tables", func(op *contextOperator) { op.actMax = 1 }},
		{"no position masks", func(op *contextOperator) { op.posLimit = 0 }},
		{"no tables", func(op *contextOperator) { op.patterns = nil }},
	}
	for _, hints := range []bool{false, true} {
		h := Hints{}
		if hints {
			h = Hints{Min: slices.Min(vals), Max: slices.Max(vals), HasRange: true, Learn: 225}
		}
		want := cadScores(NewCADOSE(p, h), vals)
		for _, v := range variants {
			d := NewCADOSE(p, h)
			v.set(&d.op)
			if got := cadScores(d, vals); !slices.Equal(got, want) {
				i := 0
				for got[i] == want[i] {
					i++
				}
				t.Errorf("hints %v, %s: point %d scores %v, not %v", hints, v.name, i, got[i], want[i])
			}
		}
	}
}

func cadScores(d *CADOSE, vals []float64) []float64 {
	out := make([]float64, len(vals))
	start := time.Date(2026, 7, 15, 0, 0, 0, 0, time.UTC)
	for i, v := range vals {
		out[i] = d.Observe(start.Add(time.Duration(i)*time.Minute), v)
	}
	return out
}

// TestTopActive checks topActive, with its short cut for when exactly k
// contexts reach the least count of last time, against sorting: it must
// return the k greatest by (count, leftHash, rightHash) whatever that
// count is, and leave it at the least count among them.
func TestTopActive(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 0xcad))
	for trial := range 2000 {
		k := 1 + rng.IntN(20)
		active := make([]cadActive, rng.IntN(3*k))
		for i := range active {
			active[i] = cadActive{id: int32(i), count: rng.IntN(8), leftHash: rng.Int64N(4), rightHash: int64(i)}
		}
		want := slices.Clone(active)
		slices.SortFunc(want, func(a, b cadActive) int {
			if activeLess(a, b) {
				return 1
			}
			return -1
		})
		want = want[:min(k, len(want))]
		least := rng.IntN(9)
		got := slices.Clone(topActive(active, k, &least))
		byID := func(a, b cadActive) int { return int(a.id - b.id) }
		slices.SortFunc(got, byID)
		slices.SortFunc(want, byID)
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d, k %d: got %v, want %v", trial, k, got, want)
		}
		if len(active) > k && least != slices.MinFunc(want, func(a, b cadActive) int { return a.count - b.count }).count {
			t.Fatalf("trial %d, k %d: least count %d, want that of %v", trial, k, least, want)
		}
	}
}

// TestSlab checks that the slices a slab carves out, appended to in turn
// and across rewinds, never share memory: each keeps what was appended
// to it until the next rewind.
func TestSlab(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 0xcad))
	var s slab[int32]
	for round := range 4 {
		var got, want [][]int32
		for range 5000 {
			if j := rng.IntN(len(got) + 1); j < len(got) {
				v := int32(rng.Uint32())
				got[j], want[j] = s.append(got[j], v), append(want[j], v)
				continue
			}
			c := rng.IntN(8)
			if rng.IntN(50) == 0 {
				c = slabMin + rng.IntN(slabMin) // too large to carve
			}
			xs := s.alloc(c)
			if len(xs) != 0 || cap(xs) != c {
				t.Fatalf("round %d: alloc(%d) has length %d, capacity %d", round, c, len(xs), cap(xs))
			}
			for range rng.IntN(c + 1) {
				xs = append(xs, int32(rng.Uint32()))
			}
			got, want = append(got, xs), append(want, slices.Clone(xs))
		}
		for i := range got {
			if !slices.Equal(got[i], want[i]) {
				t.Fatalf("round %d: slice %d holds %v, not %v", round, i, got[i], want[i])
			}
		}
		s.rewind()
	}
}

// TestCADOSERecycled runs detectors one after another, each built on the
// memory of the one before (Recycle), with parameters and hints that
// change between them, and series that leave large tables and lowered
// fast-path limits behind: each must score as a detector built on a
// fresh context operator does, with the limits back at their defaults.
func TestCADOSERecycled(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 0xcad))
	series := func(n int, shift float64) []float64 {
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = 10*math.Sin(float64(i)/7) + rng.NormFloat64()
			if i > n/2 {
				vals[i] += shift // a rebuild, without hints
			}
		}
		return vals
	}
	long, short := series(6000, 30), series(800, -25)
	base := DefaultPointParams().CAD
	withBits := func(b int) CADParams { p := base; p.Bits = b; return p }
	hints := func(vals []float64) Hints {
		return Hints{Min: slices.Min(vals), Max: slices.Max(vals), HasRange: true, Learn: len(vals) * 15 / 100}
	}
	runs := []struct {
		name  string
		p     CADParams
		h     Hints
		vals  []float64
		tweak func(*contextOperator)
	}{
		{"long", base, Hints{}, long, func(op *contextOperator) { op.actMax, op.posLimit = 1, 0 }},
		{"short", base, Hints{}, short, nil},
		{"four bits", withBits(4), Hints{}, long, nil},
		{"three bits, hints", base, hints(short), short, nil},
		{"two bits", withBits(2), hints(long), long, nil},
		{"short again", base, Hints{}, short, nil},
	}
	for _, r := range runs {
		d := NewCADOSE(r.p, r.h)
		if r.name != "long" && len(d.op.mem.facts.chunks) == 0 {
			t.Fatalf("%s: built on a fresh context operator, not the one recycled", r.name)
		}
		if d.op.actMax != 32 || d.op.posLimit != 64 {
			// Lowered limits score the same, slower.
			t.Errorf("%s: recycled with actMax %d, posLimit %d, not 32, 64", r.name, d.op.actMax, d.op.posLimit)
		}
		got := cadScores(d, r.vals)

		fresh := NewCADOSE(r.p, r.h)
		fresh.op = newContextOperator(r.p.Bits, r.p.MaxLeftSemiContexts, r.p.MaxContexts)
		want := cadScores(fresh, r.vals)
		if r.tweak != nil {
			r.tweak(&d.op)
		}
		Recycle(d)
		Recycle(d) // a second time does nothing
		if !slices.Equal(got, want) {
			i := 0
			for got[i] == want[i] {
				i++
			}
			t.Errorf("%s: point %d scores %v recycled, %v fresh", r.name, i, got[i], want[i])
		}
	}
}
