package detect_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/detect"
)

// This file tests Engine.Reconfigure: a config reload while the agent runs
// keeps the scorer history and alert lifecycle of every detector and rule
// that did not change, and resolves the alerts of those that did.

// feat is window i (ending i minutes after t0) of series with mean v.
func feat(series string, i int, v float64) emberwatch.Features {
	end := t0.Add(time.Duration(i) * time.Minute)
	return emberwatch.Features{Series: series, Start: end.Add(-time.Minute), End: end, Count: 1, Sum: v, Mean: v, Min: v, Max: v, First: v, Last: v}
}

// xs is the x windows of vals, numbered from first.
func xs(first int, vals ...float64) []emberwatch.Features {
	fs := make([]emberwatch.Features, len(vals))
	for i, v := range vals {
		fs[i] = feat("x", first+i, v)
	}
	return fs
}

// zeros is n zeros.
func zeros(n int) []float64 { return make([]float64, n) }

// observe feeds fs to e and returns the alerts, appended to dst.
func observe(e *detect.Engine, fs []emberwatch.Features, dst []emberwatch.Alert) []emberwatch.Alert {
	for i := range fs {
		dst = e.Observe(&fs[i], dst)
	}
	return dst
}

func newEngine(t *testing.T, detectors []detect.DetectorConfig, rules []detect.RuleConfig, alerts detect.AlertConfig) *detect.Engine {
	t.Helper()
	e, err := detect.NewEngine(detectors, rules, alerts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// reconfigure calls e.Reconfigure with a dst holding one alert already, and
// returns the events it appended.
func reconfigure(t *testing.T, e *detect.Engine, detectors []detect.DetectorConfig, rules []detect.RuleConfig, alerts detect.AlertConfig) []emberwatch.Alert {
	t.Helper()
	kept := emberwatch.Alert{ID: "kept"}
	got, err := e.Reconfigure(detectors, rules, alerts, []emberwatch.Alert{kept})
	if err != nil {
		t.Fatalf("Reconfigure: %v", err)
	}
	if len(got) == 0 || got[0] != kept {
		t.Fatalf("Reconfigure did not append to dst: %+v", got)
	}
	return got[1:]
}

// named is zDetector under another name: the same history and scale.
func named(t testing.TB, name string) detect.DetectorConfig {
	c := zDetector(t)
	c.Name = name
	return c
}

// alertsOf returns the alerts of one detector or rule.
func alertsOf(as []emberwatch.Alert, name string) []emberwatch.Alert {
	var out []emberwatch.Alert
	for _, a := range as {
		if a.Detector == name || a.Rule == name {
			out = append(out, a)
		}
	}
	return out
}

// states lists the alerts as "name state window" for a failure message.
func states(as []emberwatch.Alert) string {
	var b strings.Builder
	for i, a := range as {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s%s %s %d", a.Detector, a.Rule, a.State, int(a.EventTime.Sub(t0)/time.Minute))
	}
	return "[" + b.String() + "]"
}

// reconfigureStream is two series with anomalies that every detector and
// rule of reconfigureConfig raises and resolves alerts for.
func reconfigureStream() []emberwatch.Features {
	rng := rand.New(rand.NewPCG(7, 11))
	var fs []emberwatch.Features
	for i := range 100 {
		x, y := 20+rng.NormFloat64(), 20+rng.NormFloat64()
		switch {
		case i >= 60 && i < 65:
			x += 20
		case i == 80:
			x -= 30
		}
		if i == 62 || i == 63 {
			y += 10
		}
		fs = append(fs, feat("x", i, x), feat("y", i, y))
	}
	return fs
}

// engineConfig is what NewEngine and Reconfigure take.
type engineConfig struct {
	detectors []detect.DetectorConfig
	rules     []detect.RuleConfig
	alerts    detect.AlertConfig
}

// reconfigureConfig builds, afresh at each call, two detectors (one for
// every series) and two rules.
func reconfigureConfig(t *testing.T) engineConfig {
	return engineConfig{
		detectors: []detect.DetectorConfig{
			detectorConfig(t, detect.TypeRobustZ, func(c *detect.DetectorConfig) { c.Name = "z" }),
			detectorConfig(t, detect.TypeEWMA, func(c *detect.DetectorConfig) { c.Name, c.Series = "ew", "*" }),
		},
		rules: []detect.RuleConfig{
			{Name: "hot", Expr: "x.mean > 30"},
			{Name: "both", Expr: "x.mean > 30 and y.mean > 25", Message: "x and y high"},
		},
		alerts: detect.AlertConfig{Debounce: 1, Hysteresis: 0.1, Cooldown: 2 * time.Minute},
	}
}

// TestEngineReconfigureIdenticalConfigChangesNothing reconfigures an engine
// with a freshly built copy of its own config before each window in turn,
// through warm-up and planted anomalies: the alerts are exactly those of a
// run without Reconfigure, and Reconfigure itself emits none.
func TestEngineReconfigureIdenticalConfigChangesNothing(t *testing.T) {
	fs := reconfigureStream()
	c := reconfigureConfig(t)
	want := observe(newEngine(t, c.detectors, c.rules, c.alerts), fs, nil)
	for _, name := range []string{"z", "ew", "hot", "both"} {
		if as := alertsOf(want, name); len(as) < 2 || as[0].State != emberwatch.AlertRaised {
			t.Fatalf("%s raised no alert on the stream: %s; the test would prove nothing", name, states(as))
		}
	}
	for k := 0; k <= len(fs); k++ {
		e := newEngine(t, c.detectors, c.rules, c.alerts)
		got := observe(e, fs[:k], nil)
		for range 2 { // twice: the second sees the state the first kept
			again := reconfigureConfig(t)
			if ev := reconfigure(t, e, again.detectors, again.rules, again.alerts); len(ev) != 0 {
				t.Fatalf("Reconfigure before window %d to the same config emitted %+v", k, ev)
			}
		}
		got = observe(e, fs[k:], got)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Reconfigure before window %d: alerts %s\nwithout Reconfigure %s", k, states(got), states(want))
		}
	}
}

// TestEngineReconfigureChangedDetectorWarmsUpAgain changes z's threshold
// (and moves it after keep in the list): z loses its history and scores
// nothing until it has seen Warmup windows again, while keep, unchanged,
// scores the very next window exactly as it would have without Reconfigure.
func TestEngineReconfigureChangedDetectorWarmsUpAgain(t *testing.T) {
	z, keep := named(t, "z"), named(t, "keep")
	alerts := detect.AlertConfig{Debounce: 1, Hysteresis: 0.1}
	lower := z
	lower.Threshold = 0.8 // 5 scores 0.83: over it, under 0.9

	pre := xs(0, zeros(warmUp+1)...)
	post := xs(warmUp+1, append(append([]float64{50}, zeros(warmUp-1)...), 5, 0)...)

	e := newEngine(t, []detect.DetectorConfig{z, keep}, nil, alerts)
	if got := observe(e, pre, nil); len(got) != 0 {
		t.Fatalf("alerts before Reconfigure: %s", states(got))
	}
	if ev := reconfigure(t, e, []detect.DetectorConfig{keep, lower}, nil, alerts); len(ev) != 0 {
		t.Fatalf("Reconfigure emitted %+v; nothing was raised", ev)
	}
	got := observe(e, post, nil)

	// keep: raised at the 50 and resolved after it, as without Reconfigure.
	plain := newEngine(t, []detect.DetectorConfig{z, keep}, nil, alerts)
	wantKeep := alertsOf(observe(plain, append(pre, post...), nil), "keep")
	if k := alertsOf(got, "keep"); !reflect.DeepEqual(k, wantKeep) || len(k) != 2 || !k[0].EventTime.Equal(post[0].End) {
		t.Errorf("keep alerts %s, want %s: the raise at the first window after Reconfigure", states(k), states(wantKeep))
	}
	// z: the 50 falls in its new warm-up and raises nothing; the 5 after
	// warm-up raises under the new threshold.
	zs := alertsOf(got, "z")
	if len(zs) != 2 || zs[0].State != emberwatch.AlertRaised || !zs[0].EventTime.Equal(post[warmUp].End) ||
		zs[0].Threshold != 0.8 || zs[1].State != emberwatch.AlertResolved || !zs[1].EventTime.Equal(post[warmUp+1].End) {
		t.Errorf("z alerts %s, want a raise at window %d (the first after a new warm-up) and a resolve after it",
			states(zs), warmUp+1+warmUp)
	}
	// Without the loss of history, the new threshold would have raised at
	// the 50.
	fresh := newEngine(t, []detect.DetectorConfig{lower}, nil, alerts)
	if as := observe(fresh, append(pre, post...), nil); len(as) == 0 || !as[0].EventTime.Equal(post[0].End) {
		t.Fatalf("a warmed-up z with the new threshold raises %s, want a raise at the 50", states(as))
	}
}

// TestEngineReconfigureRetiresRaisedDetectorAlert: a raised alert whose
// detector is removed or changed gets exactly one resolved event, with the
// raise's ID, saying why; the other detector's alert carries on.
func TestEngineReconfigureRetiresRaisedDetectorAlert(t *testing.T) {
	z, keep := named(t, "z"), named(t, "keep")
	alerts := detect.AlertConfig{Debounce: 1, Hysteresis: 0.1}
	changed := z
	changed.Feature = "max"
	tests := []struct {
		name  string
		after []detect.DetectorConfig
		// zAfter is whether z has a detector again after Reconfigure.
		zAfter bool
	}{
		{"removed", []detect.DetectorConfig{keep}, false},
		{"changed", []detect.DetectorConfig{keep, changed}, true},
		{"changed and moved", []detect.DetectorConfig{changed, keep}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pre := xs(0, append(zeros(warmUp), 50)...)
			e := newEngine(t, []detect.DetectorConfig{z, keep}, nil, alerts)
			raises := observe(e, pre, nil)
			if len(raises) != 2 || raises[0].Detector != "z" || raises[1].Detector != "keep" {
				t.Fatalf("alerts %s, want z and keep raised", states(raises))
			}
			ev := reconfigure(t, e, tt.after, nil, alerts)
			if len(ev) != 1 {
				t.Fatalf("Reconfigure emitted %d events %+v, want one resolve for z", len(ev), ev)
			}
			want := emberwatch.Alert{
				ID:        raises[0].ID,
				State:     emberwatch.AlertResolved,
				Series:    "x",
				Detector:  "z",
				Feature:   "mean",
				Threshold: 0.9,
				EventTime: pre[len(pre)-1].End, // the newest window seen
				Message:   "x resolved: detector z was changed or removed by a config update",
			}
			if ev[0] != want {
				t.Errorf("resolve = %+v\nwant %+v", ev[0], want)
			}

			// keep is still raised: the same 50 raises nothing new, a 0
			// resolves it under the same ID. z, if it is back, warms up.
			post := xs(len(pre), append(append([]float64{50, 0}, zeros(warmUp)...), 50)...)
			got := observe(e, post, nil)
			k := alertsOf(got, "keep")
			if len(k) < 2 || k[0].State != emberwatch.AlertResolved || k[0].ID != raises[1].ID || !k[0].EventTime.Equal(post[1].End) {
				t.Errorf("keep alerts after Reconfigure %s, want its raise resolved at window %d", states(k), len(pre)+1)
			}
			zs := alertsOf(got, "z")
			switch {
			case !tt.zAfter && len(zs) != 0:
				t.Errorf("z alerts after it was removed: %s", states(zs))
			case tt.zAfter && (len(zs) != 1 || zs[0].State != emberwatch.AlertRaised || zs[0].ID == raises[0].ID ||
				!zs[0].EventTime.Equal(post[len(post)-1].End) || zs[0].Feature != "max"):
				t.Errorf("z alerts after the change %s, want one new raise on max after a new warm-up", states(zs))
			}
		})
	}
}

// TestEngineReconfigureRetiresEverySeries: removed detectors that match
// several series resolve each raised one, once, in a fixed order (config
// order, then series name), and none that is not raised.
func TestEngineReconfigureRetiresEverySeries(t *testing.T) {
	all, every := named(t, "all"), named(t, "every")
	all.Series, every.Series = "*", "*"
	alerts := detect.AlertConfig{Debounce: 1, Hysteresis: 0.1}
	series := []string{"d", "b", "quiet", "a", "c"}
	for run := range 20 { // map order is random: one run could pass by luck
		e := newEngine(t, []detect.DetectorConfig{all, every}, nil, alerts)
		for i := range warmUp + 1 {
			for _, s := range series {
				v := 0.0
				if i == warmUp && s != "quiet" {
					v = 50
				}
				f := feat(s, i, v)
				e.Observe(&f, nil)
			}
		}
		ev := reconfigure(t, e, nil, nil, alerts)
		var got []string
		for _, a := range ev {
			if a.State != emberwatch.AlertResolved || !a.EventTime.Equal(t0.Add(warmUp*time.Minute)) ||
				!strings.HasPrefix(a.ID, a.Detector+"/"+a.Series+"@") {
				t.Errorf("run %d: event %+v", run, a)
			}
			got = append(got, a.Detector+"/"+a.Series)
		}
		if want := []string{"all/a", "all/b", "all/c", "all/d", "every/a", "every/b", "every/c", "every/d"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("run %d: resolved series %v, want %v", run, got, want)
		}
	}
}

// TestEngineReconfigureRules: a raised rule that is removed or changed gets
// one resolved event saying so; an unchanged one, moved in the list, keeps
// its alert and resolves it later under the same ID.
func TestEngineReconfigureRules(t *testing.T) {
	dry := detect.RuleConfig{Name: "dry heat", Expr: "a.mean > 10 and b.mean < 5", Message: "hot and dry"}
	other := detect.RuleConfig{Name: "other", Expr: "a.mean > 100"}
	alerts := detect.AlertConfig{Debounce: 1, Hysteresis: 0.1}
	raise := []emberwatch.Features{feat("a", 0, 20), feat("b", 0, 1), feat("a", 1, 20)}
	tests := []struct {
		name    string
		after   []detect.RuleConfig
		retired bool
		removed bool
	}{
		{"removed", []detect.RuleConfig{other}, true, true},
		{"expression changed", []detect.RuleConfig{{Name: dry.Name, Expr: "a.mean > 11 and b.mean < 5", Message: dry.Message}}, true, false},
		{"message changed", []detect.RuleConfig{{Name: dry.Name, Expr: dry.Expr, Message: "dry"}}, true, false},
		{"unchanged and moved", []detect.RuleConfig{other, dry}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, nil, []detect.RuleConfig{dry}, alerts)
			got := observe(e, raise, nil)
			if len(got) != 1 || got[0].State != emberwatch.AlertRaised {
				t.Fatalf("alerts %s, want dry heat raised", states(got))
			}
			ev := reconfigure(t, e, nil, tt.after, alerts)
			if !tt.retired {
				if len(ev) != 0 {
					t.Fatalf("Reconfigure emitted %+v for an unchanged rule", ev)
				}
				// b's window 1 completes window 1: still hot and dry, no new
				// raise; then a cools down and it resolves.
				after := observe(e, []emberwatch.Features{feat("b", 1, 1), feat("b", 2, 1), feat("a", 2, 0)}, nil)
				if len(after) != 1 || after[0].State != emberwatch.AlertResolved || after[0].ID != got[0].ID {
					t.Fatalf("alerts after Reconfigure %s, want the raise resolved under its ID", states(after))
				}
				return
			}
			want := emberwatch.Alert{
				ID:        got[0].ID,
				State:     emberwatch.AlertResolved,
				Series:    "a+b",
				Rule:      "dry heat",
				Feature:   dry.Expr,
				Threshold: 0.5,
				EventTime: raise[2].End, // the newest window of a or b
				Message:   "rule dry heat resolved: changed or removed by a config update",
			}
			if len(ev) != 1 || ev[0] != want {
				t.Fatalf("Reconfigure emitted %+v\nwant one %+v", ev, want)
			}
			// A changed rule starts with no alert: the next true evaluation
			// is a new raise with a new ID.
			after := observe(e, []emberwatch.Features{feat("b", 1, 1), feat("b", 2, 1), feat("a", 2, 50)}, nil)
			if tt.removed {
				if len(after) != 0 {
					t.Fatalf("alerts after the rule was removed: %s", states(after))
				}
				return
			}
			if len(after) != 1 || after[0].State != emberwatch.AlertRaised || after[0].ID == got[0].ID {
				t.Fatalf("alerts after the change %s, want a new raise", states(after))
			}
		})
	}
}

// TestEngineReconfigureAlertSettings changes only the alert settings: every
// detector keeps its state and raised alert, and the new hysteresis decides
// when it resolves.
func TestEngineReconfigureAlertSettings(t *testing.T) {
	z := named(t, "z")
	e := newEngine(t, []detect.DetectorConfig{z}, nil, detect.AlertConfig{Debounce: 1, Hysteresis: 0.1})
	raised := observe(e, xs(0, append(zeros(warmUp), 50)...), nil)
	if len(raised) != 1 {
		t.Fatalf("alerts %s, want z raised", states(raised))
	}
	if ev := reconfigure(t, e, []detect.DetectorConfig{z}, nil, detect.AlertConfig{Debounce: 1, Hysteresis: 0.5}); len(ev) != 0 {
		t.Fatalf("Reconfigure emitted %+v", ev)
	}
	// 1 scores 0.5: under 0.81 (the old hysteresis), over 0.45 (the new).
	got := observe(e, xs(warmUp+1, 1, 0.5), nil)
	if len(got) != 1 || got[0].State != emberwatch.AlertResolved || got[0].ID != raised[0].ID || !got[0].EventTime.Equal(t0.Add((warmUp+2)*time.Minute)) {
		t.Fatalf("alerts %s, want the raise resolved at 0.5, not at 1", states(got))
	}
}

// TestEngineReconfigureBadRuleChangesNothing: a config whose rule does not
// parse is refused, with nothing emitted, even though it also removes a
// raised detector and a raised rule; the engine then behaves exactly as one
// that was never asked.
func TestEngineReconfigureBadRuleChangesNothing(t *testing.T) {
	fs := reconfigureStream()
	c := reconfigureConfig(t)
	plain, e := newEngine(t, c.detectors, c.rules, c.alerts), newEngine(t, c.detectors, c.rules, c.alerts)
	const k = 2 * 61 // x's window 61: x is in its anomaly, z and hot are raised
	want := observe(plain, fs, nil)
	got := observe(e, fs[:k], nil)
	if as := states(got); !strings.Contains(as, "z raised") || !strings.Contains(as, "hot raised") {
		t.Fatalf("before Reconfigure: %s, want z and hot raised", as)
	}

	kept := emberwatch.Alert{ID: "kept"}
	dst, err := e.Reconfigure(c.detectors[1:], []detect.RuleConfig{{Name: "ok", Expr: "x.mean > 1"}, {Name: "bad", Expr: "x.mean = 1"}},
		detect.AlertConfig{Debounce: 5}, []emberwatch.Alert{kept})
	var se *detect.SyntaxError
	if err == nil || !strings.HasPrefix(err.Error(), "rules[1].expr: ") || !errors.As(err, &se) {
		t.Fatalf("Reconfigure error = %v, want rules[1].expr: wrapping a *SyntaxError", err)
	}
	if len(dst) != 1 || dst[0] != kept {
		t.Fatalf("Reconfigure with a bad rule returned dst %+v, want it as given", dst)
	}
	got = observe(e, fs[k:], got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after the refused Reconfigure: alerts %s\nwithout it %s", states(got), states(want))
	}
}
