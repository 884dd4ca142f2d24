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
// crossings read from the left facts' positions or looked up fact by fact
// (posLimit 0), and no activation tables at all (which also leaves
// crossPartial without zeroSubs, so that it walks every left
// semi-context it is given). The scores must not differ.
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
