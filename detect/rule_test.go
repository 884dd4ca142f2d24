package detect_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/detect"
)

// latest is the feature map the rule tests evaluate against; series c is
// missing.
func latest() map[string]*emberwatch.Features {
	return map[string]*emberwatch.Features{
		"a":        {Series: "a", Count: 5, Sum: 50, Mean: 10, Min: 8, Max: 12, Variance: 2, Stddev: 1.5, First: 9, Last: 11, Delta: 2, Rate: 0.125},
		"b":        {Series: "b", Count: 1, Sum: 3, Mean: 3, Min: 3, Max: 3, First: 3, Last: 3, Delta: -4},
		"room_1-b": {Series: "room_1-b", Mean: 21.5},
	}
}

var validRules = []struct {
	expr string
	want bool
}{
	// Every comparison operator, on both sides of the boundary.
	{"a.mean > 9", true},
	{"a.mean > 10", false},
	{"a.mean >= 10", true},
	{"a.mean >= 10.5", false},
	{"a.mean < 11", true},
	{"a.mean < 10", false},
	{"a.mean <= 10", true},
	{"a.mean <= 9.99", false},
	{"a.mean == 10", true},
	{"a.mean == 10.0001", false},
	{"a.mean != 3", true},
	{"a.mean != 10", false},
	// Every aggregate.
	{"a.count == 5 and a.sum == 50 and a.min == 8 and a.max == 12", true},
	{"a.variance == 2 and a.stddev == 1.5 and a.first == 9 and a.last == 11", true},
	{"a.delta == 2 and a.rate == 0.125 and b.delta == -4", true},
	// Numbers on either side, or series on both.
	{"9 < a.mean", true},
	{"10 < a.mean", false},
	{"a.mean > b.mean", true},
	{"b.mean >= a.mean", false},
	{"a.count == b.count", false},
	// Number forms.
	{"b.delta > -5", true},
	{"b.delta>-4", false},
	{"b.delta>=-4", true},
	{"a.mean < +11", true},
	{"a.rate == .125", true},
	{"a.sum == 5e1", true},
	{"a.sum == 5E+1", true},
	{"a.rate == 1.25e-1", true},
	// and, or, not, parentheses; and binds tighter than or.
	{"a.mean > 5 and b.mean > 5", false},
	{"a.mean > 5 and b.mean < 5", true},
	{"a.mean > 50 or b.mean < 5", true},
	{"a.mean > 50 or b.mean > 5", false},
	{"a.mean > 5 or b.mean > 5 and b.mean > 100", true},    // a or (b and b)
	{"b.mean > 100 and b.mean > 1 or a.mean > 5", true},    // (b and b) or a
	{"(a.mean > 5 or b.mean > 5) and b.mean > 100", false}, // parentheses override
	{"b.mean > 100 and (b.mean > 1 or a.mean > 5)", false},
	{"not a.mean > 5", false},
	{"not a.mean > 50", true},
	{"not not a.mean > 5", true},
	{"not a.mean > 50 and b.mean > 100", false}, // (not a) and b
	{"not (a.mean > 5 and b.mean > 5)", true},
	{"((a.mean > 5))", true},
	{"a.mean > 5 and b.mean < 5 and a.count == 5 or b.mean > 100", true},
	// Keywords in any case, any whitespace.
	{"a.mean > 5 AND b.mean < 5", true},
	{"a.mean > 50 Or b.mean < 5", true},
	{"NOT a.mean > 50", true},
	{"\ta.mean>5\nand\r\nb.mean<5 ", true},
	// Series names with digits, underscores and dashes.
	{"room_1-b.mean > 21", true},
	// A missing series makes its comparison false.
	{"c.mean > 0", false},
	{"c.mean < 0", false},
	{"c.mean != 0", false},
	{"a.mean > 5 and c.mean < 0", false},
	{"a.mean > c.mean", false},
	{"c.mean < a.mean", false},
	{"c.mean == c.mean", false},
}

func TestRuleEval(t *testing.T) {
	m := latest()
	for _, tt := range validRules {
		t.Run(tt.expr, func(t *testing.T) {
			r, err := detect.ParseRule(tt.expr)
			if err != nil {
				t.Fatalf("ParseRule(%q): %v", tt.expr, err)
			}
			if got := r.Eval(m); got != tt.want {
				t.Errorf("Eval(%q) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}

// TestRuleEvalMissingSeriesUnderNot: Eval "reports false if a series it
// needs is missing from latest", also when the comparison on the missing
// series sits under a not.
func TestRuleEvalMissingSeriesUnderNot(t *testing.T) {
	for _, expr := range []string{"not c.mean > 0", "not (a.mean > 5 and c.mean > 0)"} {
		r, err := detect.ParseRule(expr)
		if err != nil {
			t.Fatal(err)
		}
		if r.Eval(latest()) {
			t.Errorf("Eval(%q) with series c missing = true, want false", expr)
		}
	}
}

var invalidRules = []struct {
	name string
	expr string
	pos  int
	msg  string // prefix of SyntaxError.Msg
}{
	{"empty expression", "", 0, `expected a number or series.aggregate, found "end of expression"`},
	{"only spaces", "   ", 3, `expected a number or series.aggregate, found "end of expression"`},
	{"missing right operand", "a.mean >", 8, `expected a number or series.aggregate, found "end of expression"`},
	{"missing left operand", "> 5", 0, `expected a number or series.aggregate, found ">"`},
	{"two operators", "a.mean > > 5", 9, `expected a number or series.aggregate, found ">"`},
	{"unknown aggregate", "a.avg > 5", 2, `unknown aggregate "avg" (known: count, sum, mean, min, max, variance, stddev, first, last, delta, rate`},
	{"aggregates are lower case", "a.Mean > 5", 2, `unknown aggregate "Mean"`},
	{"unknown aggregate on the right", "x.mean > 1 and room_1.avg < 3", 22, `unknown aggregate "avg"`},
	{"missing operator", "a.mean 5", 7, `expected a comparison operator, found "5"`},
	{"comparison without operator", "a.mean", 6, `expected a comparison operator, found "end of expression"`},
	{"unclosed parenthesis", "(a.mean > 5", 11, `expected ")", found "end of expression"`},
	{"unclosed inner parenthesis", "a.mean > 5 and (b.mean < 1", 26, `expected ")", found "end of expression"`},
	{"missing or inside parentheses", "(a.mean > 5 b.mean < 2)", 12, `expected ")", found "b.mean"`},
	{"unopened parenthesis", "a.mean > 5)", 10, `unexpected ")"`},
	{"empty parentheses", "()", 1, `expected a number or series.aggregate, found ")"`},
	{"trailing comparison", "a.mean > 5 b.mean < 3", 11, `unexpected "b.mean"`},
	{"trailing number", "a.mean > 5 6", 11, `unexpected "6"`},
	{"single equals", "a.mean = 5", 7, `unknown operator "=" (use ==, !=, <, <=, >, >=)`},
	{"arrow", "a.mean => 5", 7, `unknown operator "="`},
	{"bare bang", "a.mean ! 5", 7, `unknown operator "!"`},
	{"bad character", "a.mean > 5 & b.mean > 1", 11, `unexpected character '&'`},
	{"non-ASCII character", "a.mean > 5 ≥ 3", 11, `unexpected character`},
	{"dangling and", "a.mean > 5 and", 14, `expected a number or series.aggregate, found "end of expression"`},
	{"dangling or", "a.mean > 5 or", 13, `expected a number or series.aggregate, found "end of expression"`},
	{"dangling not", "not", 3, `expected a number or series.aggregate, found "end of expression"`},
	{"keyword as operand", "a.mean > 5 and or b.mean > 1", 15, `expected a number or series.aggregate, found "or"`},
	{"series without aggregate", "temperature > 5", 0, `"temperature": want series.aggregate, e.g. temperature.mean`},
	{"series with empty aggregate", "a. > 5", 0, `"a.": want series.aggregate`},
	{"aggregate without series", ".mean > 5", 0, `bad number "."`},
	{"two decimal points", "1.2.3 < a.mean", 0, `bad number "1.2.3"`},
	{"exponent without digits", "a.mean >= 5e", 10, `bad number "5e"`},
	{"number out of range", "a.mean > 1e999", 9, `bad number "1e999"`},
	{"lone minus", "a.mean > -", 9, `bad number "-"`},
	{"no series", "5 > 3", 0, `rule reads no series`},
}

func TestParseRuleErrors(t *testing.T) {
	for _, tt := range invalidRules {
		t.Run(tt.name, func(t *testing.T) {
			r, err := detect.ParseRule(tt.expr)
			if err == nil {
				t.Fatalf("ParseRule(%q) = %v, want an error", tt.expr, r)
			}
			var se *detect.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("ParseRule(%q) error %v (%T), want a *SyntaxError", tt.expr, err, err)
			}
			if se.Pos != tt.pos || !strings.HasPrefix(se.Msg, tt.msg) {
				t.Errorf("ParseRule(%q) = {Pos: %d, Msg: %q}, want {Pos: %d, Msg: %q...}", tt.expr, se.Pos, se.Msg, tt.pos, tt.msg)
			}
		})
	}
}

func TestSyntaxErrorCountsColumnsFromOne(t *testing.T) {
	_, err := detect.ParseRule("a.mean = 5")
	if got, want := err.Error(), `at column 8: unknown operator "="`; !strings.HasPrefix(got, want) {
		t.Errorf("Error() = %q, want it to start with %q", got, want)
	}
}

func TestRuleSeries(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{"a.mean > 1", []string{"a"}},
		{"5 < a.mean", []string{"a"}},
		{"a.mean > a.max", []string{"a"}},
		{"b.mean > 1 and a.mean > 2 or b.max < 3 or a.delta > c.mean", []string{"a", "b", "c"}},
		{"not (zeta.mean > 1) or alpha.mean > 1 and room_1-b.mean < 3", []string{"alpha", "room_1-b", "zeta"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			r, err := detect.ParseRule(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Series(); !slices.Equal(got, tt.want) {
				t.Errorf("Series() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRuleExplain(t *testing.T) {
	m := latest()
	m["big"] = &emberwatch.Features{Series: "big", Sum: 12345.6, Rate: 0.123456}
	tests := []struct {
		expr string
		want string
	}{
		{"a.delta > 5", "a.delta=2 > 5 (not met)"},
		{"5 < a.mean", "5 < a.mean=10"},
		{"a.mean > b.mean", "a.mean=10 > b.mean=3"},
		{"a.delta > 5 and b.mean < 25 or not c.mean > 1", "a.delta=2 > 5 (not met), b.mean=3 < 25, c.mean=? > 1 (not met)"},
		{"big.sum > 1e4 and big.rate < .5", "big.sum=1.235e+04 > 10000, big.rate=0.1235 < 0.5"},
		{"b.delta == -4", "b.delta=-4 == -4"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			r, err := detect.ParseRule(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Explain(m); got != tt.want {
				t.Errorf("Explain() = %q, want %q", got, tt.want)
			}
		})
	}
}

func ExampleParseRule() {
	r, err := detect.ParseRule("temperature.delta > 5 and humidity.mean < 25")
	if err != nil {
		panic(err)
	}
	latest := map[string]*emberwatch.Features{
		"temperature": {Series: "temperature", Delta: 9.1},
		"humidity":    {Series: "humidity", Mean: 18},
	}
	fmt.Println(r.Series(), r.Eval(latest))
	fmt.Println(r.Explain(latest))

	_, err = detect.ParseRule("temperature.delta = 5")
	fmt.Println(err)
	// Output:
	// [humidity temperature] true
	// temperature.delta=9.1 > 5, humidity.mean=18 < 25
	// at column 19: unknown operator "=" (use ==, !=, <, <=, >, >=)
}
