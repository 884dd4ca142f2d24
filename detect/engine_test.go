package detect_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/detect"
)

// zDetector is a robust z-score detector over series x whose history is
// warmUp zeros with a spread floor of 1: after warm-up a value v scores
// exactly |v|/(|v|+1), e.g. 9 scores the default threshold 0.9, 5 scores
// 0.83 and 4 scores 0.8. Values below the threshold enter the history; the
// tests feed few enough of them that zeros stay the majority.
func zDetector(t testing.TB) detect.DetectorConfig {
	return detectorConfig(t, detect.TypeRobustZ, func(c *detect.DetectorConfig) {
		c.Name, c.History, c.Warmup, c.MinSpread = "z", warmUp, warmUp, 1
	})
}

const warmUp = 20

// episode is one alert event, as far as a lifecycle table checks it: the
// state and the window (counted after warm-up) that caused it.
type episode struct {
	state  emberwatch.AlertState
	window int
}

func raised(w int) episode   { return episode{emberwatch.AlertRaised, w} }
func resolved(w int) episode { return episode{emberwatch.AlertResolved, w} }

// windowEnd is the end of window i after warm-up.
func windowEnd(i int) time.Time { return t0.Add(time.Duration(warmUp+i) * time.Minute) }

// runDetector feeds warmUp zeros and then values, one window a minute, to an
// engine with zDetector and alerts, and returns every alert.
func runDetector(t *testing.T, alerts detect.AlertConfig, values []float64) []emberwatch.Alert {
	t.Helper()
	e, err := detect.NewEngine([]detect.DetectorConfig{zDetector(t)}, nil, alerts)
	if err != nil {
		t.Fatal(err)
	}
	var out []emberwatch.Alert
	for i, f := range windows(append(make([]float64, warmUp), values...)) {
		out = e.Observe(&f, out)
		if i < warmUp && len(out) > 0 {
			t.Fatalf("alert during warm-up: %+v", out)
		}
	}
	return out
}

// checkEpisodes compares alerts with want and checks that every resolve
// carries the ID of the raise before it, and every raise a new ID.
func checkEpisodes(t *testing.T, got []emberwatch.Alert, want []episode) {
	t.Helper()
	var eps []episode
	for _, a := range got {
		eps = append(eps, episode{a.State, int(a.EventTime.Sub(windowEnd(0)) / time.Minute)})
	}
	if fmt.Sprint(eps) != fmt.Sprint(want) {
		t.Fatalf("alerts at windows %v, want %v", eps, want)
	}
	ids := map[string]bool{}
	for i, a := range got {
		switch a.State {
		case emberwatch.AlertRaised:
			if ids[a.ID] {
				t.Errorf("raise %d reuses ID %q", i, a.ID)
			}
			ids[a.ID] = true
		case emberwatch.AlertResolved:
			if i == 0 || got[i-1].State != emberwatch.AlertRaised || got[i-1].ID != a.ID {
				t.Errorf("resolve %d has ID %q, want the ID of the raise before it", i, a.ID)
			}
		}
	}
}

func TestEngineDetectorLifecycle(t *testing.T) {
	base := detect.AlertConfig{Debounce: 1, Hysteresis: 0.1}
	with := func(set func(*detect.AlertConfig)) detect.AlertConfig {
		c := base
		set(&c)
		return c
	}
	tests := []struct {
		name   string
		alerts detect.AlertConfig
		values []float64 // after warm-up, one a window
		want   []episode
	}{
		{
			name:   "nothing below the threshold",
			alerts: base,
			values: []float64{0, 5, 8, 8.9, 0},
		},
		{
			name:   "a score at the threshold raises at once without debounce",
			alerts: base,
			values: []float64{0, 9, 0},
			want:   []episode{raised(1), resolved(2)},
		},
		{
			name:   "debounce 3 raises on the third window in a row",
			alerts: with(func(c *detect.AlertConfig) { c.Debounce = 3 }),
			values: []float64{9, 9, 0, 9, 9, 50, 9, 0},
			want:   []episode{raised(5), resolved(7)},
		},
		{
			name:   "debounce starts over after a resolve",
			alerts: with(func(c *detect.AlertConfig) { c.Debounce = 2 }),
			values: []float64{9, 9, 0, 9, 9},
			want:   []episode{raised(1), resolved(2), raised(4)},
		},
		{
			name:   "debounce counts only consecutive windows",
			alerts: with(func(c *detect.AlertConfig) { c.Debounce = 2 }),
			values: []float64{9, 0, 9, 0, 9, 0},
		},
		{
			name:   "hysteresis keeps the alert raised between threshold*(1-h) and threshold",
			alerts: base, // resolves below 0.81
			values: []float64{9, 5, 4.5, 5, 4, 0},
			want:   []episode{raised(0), resolved(4)},
		},
		{
			name:   "wider hysteresis",
			alerts: with(func(c *detect.AlertConfig) { c.Hysteresis = 0.5 }), // resolves below 0.45
			values: []float64{9, 1, 0.9, 0.8},
			want:   []episode{raised(0), resolved(3)},
		},
		{
			name:   "zero hysteresis resolves just below the threshold",
			alerts: with(func(c *detect.AlertConfig) { c.Hysteresis = 0 }),
			values: []float64{9, 9, 8.9},
			want:   []episode{raised(0), resolved(2)},
		},
		{
			name:   "no resolve is repeated and no raise while raised",
			alerts: base,
			values: []float64{9, 20, 9, 0, 0, 0},
			want:   []episode{raised(0), resolved(3)},
		},
		{
			name:   "cooldown holds back a raise within it of the resolve",
			alerts: with(func(c *detect.AlertConfig) { c.Cooldown = 5 * time.Minute }),
			values: []float64{9, 0, 9, 9, 9, 9, 9, 0},
			// Resolved at window 1; 4 minutes later is still cooling, 5
			// minutes later is not.
			want: []episode{raised(0), resolved(1), raised(6), resolved(7)},
		},
		{
			name:   "a raise after the cooldown needs a score at the threshold",
			alerts: with(func(c *detect.AlertConfig) { c.Cooldown = 3 * time.Minute }),
			values: []float64{9, 0, 9, 0, 0, 0, 0, 9},
			want:   []episode{raised(0), resolved(1), raised(7)},
		},
		{
			name:   "windows during the cooldown count toward the debounce",
			alerts: with(func(c *detect.AlertConfig) { c.Cooldown = 3 * time.Minute; c.Debounce = 2 }),
			values: []float64{9, 9, 0, 9, 9, 9},
			want:   []episode{raised(1), resolved(2), raised(5)},
		},
		{
			name:   "each episode has its own ID",
			alerts: base,
			values: []float64{9, 0, 9, 0, 9},
			want:   []episode{raised(0), resolved(1), raised(2), resolved(3), raised(4)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkEpisodes(t, runDetector(t, tt.alerts, tt.values), tt.want)
		})
	}
}

func TestEngineDetectorAlertExplainsItself(t *testing.T) {
	got := runDetector(t, detect.AlertConfig{Debounce: 1, Hysteresis: 0.1}, []float64{-99, 0})
	if len(got) != 2 {
		t.Fatalf("got %d alerts, want a raise and a resolve: %+v", len(got), got)
	}
	a := got[0]
	wantID := "z/x@" + windowEnd(0).UTC().Format("20060102T150405.999999999Z")
	if a.ID != wantID || a.State != emberwatch.AlertRaised || a.Series != "x" || a.Detector != "z" || a.Rule != "" ||
		a.Feature != "mean" || a.Value != -99 || a.Threshold != 0.9 || !a.EventTime.Equal(windowEnd(0)) {
		t.Errorf("raise = %+v", a)
	}
	if math.Abs(a.Score-0.99) > 1e-15 || math.Abs(a.Expected[0]+9) > 1e-12 || math.Abs(a.Expected[1]-9) > 1e-12 {
		t.Errorf("raise score %v expected %v, want 0.99 and [-9, 9]", a.Score, a.Expected)
	}
	if want := "x raised: z mean=-99, expected -9..9 (score 0.990)"; a.Message != want {
		t.Errorf("raise message %q, want %q", a.Message, want)
	}
	r := got[1]
	if r.ID != wantID || r.State != emberwatch.AlertResolved || r.Value != 0 || r.Score != 0 || !r.EventTime.Equal(windowEnd(1)) {
		t.Errorf("resolve = %+v", r)
	}
}

func TestEngineDetectorPerSeriesState(t *testing.T) {
	cfg := zDetector(t)
	cfg.Series = "temp*"
	e, err := detect.NewEngine([]detect.DetectorConfig{cfg}, nil, detect.AlertConfig{Debounce: 1, Hysteresis: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	var out []emberwatch.Alert
	feed := func(series string, i int, v float64) {
		end := t0.Add(time.Duration(i) * time.Minute)
		out = e.Observe(&emberwatch.Features{Series: series, End: end, Mean: v}, out)
	}
	for i := range warmUp {
		feed("temperature", i, 0)
		feed("humidity", i, 0)
	}
	// temperature2 starts late: it is still warming up when the others spike.
	feed("temperature2", warmUp, 0)
	feed("temperature", warmUp, 50)
	feed("humidity", warmUp, 50)
	feed("temperature2", warmUp, 50)
	if len(out) != 1 || out[0].Series != "temperature" || out[0].State != emberwatch.AlertRaised {
		t.Fatalf("alerts %+v, want one raise for temperature only", out)
	}
}

// ruleEvent is one Features for series at window i with mean v.
type ruleEvent struct {
	series string
	window int
	v      float64
}

func runRules(t *testing.T, rules []detect.RuleConfig, alerts detect.AlertConfig, events []ruleEvent) ([]emberwatch.Alert, []int) {
	t.Helper()
	e, err := detect.NewEngine(nil, rules, alerts)
	if err != nil {
		t.Fatal(err)
	}
	var out []emberwatch.Alert
	var at []int // the event each alert came from
	for i, ev := range events {
		end := windowEnd(ev.window)
		n := len(out)
		out = e.Observe(&emberwatch.Features{Series: ev.series, Start: end.Add(-time.Minute), End: end, Count: 1, Mean: ev.v}, out)
		for range out[n:] {
			at = append(at, i)
		}
	}
	return out, at
}

func TestEngineRuleLifecycle(t *testing.T) {
	rule := []detect.RuleConfig{{Name: "hot", Expr: "x.mean > 0.5"}}
	seq := func(vs ...float64) []ruleEvent {
		var evs []ruleEvent
		for i, v := range vs {
			evs = append(evs, ruleEvent{"x", i, v})
		}
		return evs
	}
	tests := []struct {
		name   string
		alerts detect.AlertConfig
		events []ruleEvent
		want   []episode
	}{
		{
			name:   "raise when true, resolve when false",
			alerts: detect.AlertConfig{Debounce: 1, Hysteresis: 0.1},
			events: seq(0, 1, 1, 0, 0),
			want:   []episode{raised(1), resolved(3)},
		},
		{
			name:   "debounce 3",
			alerts: detect.AlertConfig{Debounce: 3, Hysteresis: 0.1},
			events: seq(1, 1, 0, 1, 1, 1, 1, 0),
			want:   []episode{raised(5), resolved(7)},
		},
		{
			name:   "cooldown",
			alerts: detect.AlertConfig{Debounce: 1, Hysteresis: 0.5, Cooldown: 2 * time.Minute},
			events: seq(1, 0, 1, 1, 0),
			want:   []episode{raised(0), resolved(1), raised(3), resolved(4)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := runRules(t, rule, tt.alerts, tt.events)
			checkEpisodes(t, got, tt.want)
		})
	}
}

func TestEngineRuleWaitsForAlignedWindows(t *testing.T) {
	rules := []detect.RuleConfig{
		{Name: "dry heat", Expr: "a.mean > 10 and b.mean < 5", Message: "hot and dry"},
		{Name: "a alone", Expr: "a.mean > 10"},
	}
	events := []ruleEvent{
		0: {"a", 0, 20}, // b has no window yet: only "a alone" evaluates
		1: {"b", 0, 1},  // both windows end at 0: "dry heat" raises
		2: {"a", 1, 20},
		3: {"c", 1, 0},  // a series no rule reads changes nothing
		4: {"a", 2, 0},  // b is still at window 0
		5: {"b", 1, 1},  // a moved on to window 2: no evaluation at 1
		6: {"b", 2, 1},  // both at 2, a is no longer hot: resolve
		7: {"b", 3, 1},  // a has no window 3 yet
		8: {"a", 3, 20}, // both at 3: raise again
	}
	got, at := runRules(t, rules, detect.AlertConfig{Debounce: 1, Hysteresis: 0.1}, events)
	type key struct {
		rule  string
		state emberwatch.AlertState
		event int
	}
	var keys []key
	for i, a := range got {
		keys = append(keys, key{a.Rule, a.State, at[i]})
	}
	want := []key{
		{"a alone", emberwatch.AlertRaised, 0},
		{"dry heat", emberwatch.AlertRaised, 1},
		{"a alone", emberwatch.AlertResolved, 4},
		{"dry heat", emberwatch.AlertResolved, 6},
		{"dry heat", emberwatch.AlertRaised, 8}, // rules in config order
		{"a alone", emberwatch.AlertRaised, 8},
	}
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("alerts (rule, state, event) = %v, want %v", keys, want)
	}

	raise, resolve := got[1], got[3]
	if raise.ID != resolve.ID || raise.ID != "rule/dry heat@"+windowEnd(0).UTC().Format("20060102T150405.999999999Z") {
		t.Errorf("raise ID %q, resolve ID %q; want both rule/dry heat@<time of the raise>", raise.ID, resolve.ID)
	}
	if got[4].ID == raise.ID {
		t.Errorf("second raise reuses the first episode's ID %q", raise.ID)
	}
	if raise.Series != "a+b" || raise.Rule != "dry heat" || raise.Detector != "" || raise.Feature != rules[0].Expr ||
		raise.Value != 1 || raise.Score != 1 || raise.Threshold != 0.5 || !raise.EventTime.Equal(windowEnd(0)) {
		t.Errorf("raise = %+v", raise)
	}
	if want := "rule dry heat raised: hot and dry [a.mean=20 > 10, b.mean=1 < 5]"; raise.Message != want {
		t.Errorf("raise message %q, want %q", raise.Message, want)
	}
	if want := "rule dry heat resolved: hot and dry [a.mean=0 > 10 (not met), b.mean=1 < 5]"; resolve.Message != want {
		t.Errorf("resolve message %q, want %q", resolve.Message, want)
	}
	if !resolve.EventTime.Equal(windowEnd(2)) || resolve.Value != 0 || resolve.Score != 0 {
		t.Errorf("resolve = %+v", resolve)
	}
	if want := "rule a alone raised: a.mean > 10 [a.mean=20 > 10]"; got[0].Message != want {
		t.Errorf("message without Message set: %q, want %q", got[0].Message, want)
	}
}

func TestEngineRuleEvaluatesOncePerWindowEnd(t *testing.T) {
	rules := []detect.RuleConfig{{Name: "r", Expr: "x.mean > 0.5"}}
	// The same window twice must not count twice toward a debounce of 2.
	got, _ := runRules(t, rules, detect.AlertConfig{Debounce: 2, Hysteresis: 0.1}, []ruleEvent{{"x", 0, 1}, {"x", 0, 1}})
	if len(got) != 0 {
		t.Fatalf("alerts %+v, want none", got)
	}
}

func TestEngineDetectorsAndRulesTogether(t *testing.T) {
	e, err := detect.NewEngine(
		[]detect.DetectorConfig{zDetector(t)},
		[]detect.RuleConfig{{Name: "big", Expr: "x.mean >= 9"}},
		detect.AlertConfig{Debounce: 1, Hysteresis: 0.1},
	)
	if err != nil {
		t.Fatal(err)
	}
	var out []emberwatch.Alert
	for _, f := range windows(append(make([]float64, warmUp), 9)) {
		out = e.Observe(&f, out)
	}
	// During warm-up the rule already evaluates (false); at 9 both fire.
	if len(out) != 2 || out[0].Detector != "z" || out[1].Rule != "big" {
		t.Fatalf("alerts %+v, want the detector's raise then the rule's", out)
	}
}

func TestEngineObserveAppendsToDst(t *testing.T) {
	e, err := detect.NewEngine(nil, []detect.RuleConfig{{Name: "r", Expr: "x.mean > 0"}}, detect.AlertConfig{Debounce: 1, Hysteresis: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	dst := []emberwatch.Alert{{ID: "keep"}}
	f := windows([]float64{1})[0]
	dst = e.Observe(&f, dst)
	if len(dst) != 2 || dst[0].ID != "keep" || dst[1].State != emberwatch.AlertRaised {
		t.Fatalf("dst = %+v, want the kept alert then a raise", dst)
	}
}

func TestEngineKeepsItsOwnCopyOfFeatures(t *testing.T) {
	e, err := detect.NewEngine(nil, []detect.RuleConfig{{Name: "r", Expr: "a.mean > 10 and b.mean > 10"}}, detect.AlertConfig{Debounce: 1, Hysteresis: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	f := emberwatch.Features{Series: "a", End: t0, Mean: 20}
	e.Observe(&f, nil)
	f.Mean = 0 // the caller reuses its Features
	if got := e.Observe(&emberwatch.Features{Series: "b", End: t0, Mean: 20}, nil); len(got) != 1 {
		t.Fatalf("alerts %+v, want a raise from a's window as it was observed", got)
	}
}

func TestNewEngineRejectsBadRule(t *testing.T) {
	_, err := detect.NewEngine(nil, []detect.RuleConfig{
		{Name: "ok", Expr: "a.mean > 1"},
		{Name: "bad", Expr: "a.mean = 1"},
	}, detect.AlertConfig{Debounce: 1})
	var se *detect.SyntaxError
	if err == nil || !strings.HasPrefix(err.Error(), "rules[1].expr: at column 8: ") || !errors.As(err, &se) || se.Pos != 7 {
		t.Fatalf("NewEngine error = %v, want rules[1].expr: wrapping a *SyntaxError at 7", err)
	}
}
