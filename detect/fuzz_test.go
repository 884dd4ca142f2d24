package detect_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/detect"
)

// FuzzParseRule: ParseRule never panics; it either returns a rule that reads
// at least one series, sorted and unique, and that evaluates and explains
// without panicking, or a *SyntaxError positioned inside the expression (or
// just past its end).
func FuzzParseRule(f *testing.F) {
	for _, tt := range validRules {
		f.Add(tt.expr)
	}
	for _, tt := range invalidRules {
		f.Add(tt.expr)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		r, err := detect.ParseRule(expr)
		if err != nil {
			var se *detect.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("ParseRule(%q) error %v (%T), want a *SyntaxError", expr, err, err)
			}
			if se.Pos < 0 || se.Pos > len(expr) {
				t.Fatalf("ParseRule(%q) error at %d, outside [0, %d]", expr, se.Pos, len(expr))
			}
			if r != nil {
				t.Fatalf("ParseRule(%q) returned a rule with error %v", expr, err)
			}
			return
		}
		series := r.Series()
		if len(series) == 0 || !slices.IsSorted(series) || len(slices.Compact(slices.Clone(series))) != len(series) {
			t.Fatalf("ParseRule(%q).Series() = %q, want sorted, unique and not empty", expr, series)
		}
		r.Eval(nil)
		r.Explain(nil)
		latest := map[string]*emberwatch.Features{}
		for _, s := range series {
			latest[s] = &emberwatch.Features{Series: s, Mean: 1, Count: 1}
		}
		a, b := r.Eval(latest), r.Eval(latest)
		if a != b {
			t.Fatalf("Eval(%q) not deterministic", expr)
		}
		r.Explain(latest)
	})
}
