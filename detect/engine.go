package detect

import (
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/emberwatch/emberwatch"
)

// Engine scores features with the configured detectors and rules and runs
// each one's alert lifecycle. It is not safe for concurrent use; the pipeline
// gives it one goroutine.
type Engine struct {
	alerts    AlertConfig
	detectors []DetectorConfig
	scorers   map[scorerKey]*tracked
	rules     []*trackedRule
	latest    map[string]*emberwatch.Features
}

type scorerKey struct {
	detector int
	series   string
}

type tracked struct {
	scorer Scorer
	life   lifecycle
}

type trackedRule struct {
	cfg     RuleConfig
	rule    *Rule
	lastEnd time.Time
	life    lifecycle
}

// NewEngine builds an engine; every config must have passed Validate.
func NewEngine(detectors []DetectorConfig, rules []RuleConfig, alerts AlertConfig) (*Engine, error) {
	e := &Engine{
		alerts:    alerts,
		detectors: detectors,
		scorers:   map[scorerKey]*tracked{},
		latest:    map[string]*emberwatch.Features{},
	}
	for i, rc := range rules {
		r, err := ParseRule(rc.Expr)
		if err != nil {
			return nil, fmt.Errorf("rules[%d].expr: %w", i, err)
		}
		e.rules = append(e.rules, &trackedRule{cfg: rc, rule: r})
	}
	return e, nil
}

// Observe scores one window's features and appends the alert events it
// causes to dst. Features of one series must arrive in window order.
func (e *Engine) Observe(f *emberwatch.Features, dst []emberwatch.Alert) []emberwatch.Alert {
	for i := range e.detectors {
		d := &e.detectors[i]
		if !d.matches(f.Series) {
			continue
		}
		k := scorerKey{i, f.Series}
		t, ok := e.scorers[k]
		if !ok {
			t = &tracked{scorer: NewScorer(*d)}
			e.scorers[k] = t
		}
		s, expected, ready := t.scorer.Score(f)
		if !ready {
			continue
		}
		v, _ := f.Value(d.Feature)
		if st, fire := t.life.step(s, d.Threshold, f.End, e.alerts); fire {
			dst = append(dst, emberwatch.Alert{
				ID:        t.life.id(d.Name + "/" + f.Series),
				State:     st,
				Series:    f.Series,
				Detector:  d.Name,
				Feature:   d.Feature,
				Value:     v,
				Expected:  expected,
				Score:     s,
				Threshold: d.Threshold,
				EventTime: f.End,
				Message: fmt.Sprintf("%s %s: %s %s=%.4g, expected %.4g..%.4g (score %.3f%s)",
					f.Series, st, d.Name, d.Feature, v, expected[0], expected[1], s, explain(t.scorer)),
			})
		}
	}
	cp := *f
	e.latest[f.Series] = &cp
	for _, r := range e.rules {
		if !e.ruleReady(r, f) {
			continue
		}
		r.lastEnd = f.End
		s := 0.0
		if r.rule.Eval(e.latest) {
			s = 1
		}
		if st, fire := r.life.step(s, 0.5, f.End, e.alerts); fire {
			msg := r.cfg.Message
			if msg == "" {
				msg = r.cfg.Expr
			}
			dst = append(dst, emberwatch.Alert{
				ID:        r.life.id("rule/" + r.cfg.Name),
				State:     st,
				Series:    strings.Join(r.rule.Series(), "+"),
				Rule:      r.cfg.Name,
				Feature:   r.cfg.Expr,
				Value:     s,
				Expected:  [2]float64{0, 0},
				Score:     s,
				Threshold: 0.5,
				EventTime: f.End,
				Message:   fmt.Sprintf("rule %s %s: %s [%s]", r.cfg.Name, st, msg, r.rule.Explain(e.latest)),
			})
		}
	}
	return dst
}

// explain is "; " and what s says of its last score when it is an
// Explainer with something to say, else "".
func explain(s Scorer) string {
	if e, ok := s.(Explainer); ok {
		if why := e.Explain(); why != "" {
			return "; " + why
		}
	}
	return ""
}

// ruleReady reports whether f completes a set of windows, all ending at
// f.End, for every series r reads, and r has not been evaluated for it yet.
func (e *Engine) ruleReady(r *trackedRule, f *emberwatch.Features) bool {
	if r.lastEnd.Equal(f.End) {
		return false
	}
	uses := false
	for _, s := range r.rule.Series() {
		l, ok := e.latest[s]
		if !ok || !l.End.Equal(f.End) {
			return false
		}
		uses = uses || s == f.Series
	}
	return uses
}

// lifecycle is one alert's state machine.
type lifecycle struct {
	active     bool
	over       int
	raisedAt   time.Time
	resolvedAt time.Time
}

// step advances the lifecycle by one score at event time t and reports the
// state change, if any.
func (l *lifecycle) step(score, threshold float64, t time.Time, cfg AlertConfig) (emberwatch.AlertState, bool) {
	if !l.active {
		if score >= threshold {
			l.over++
		} else {
			l.over = 0
		}
		cooling := !l.resolvedAt.IsZero() && t.Sub(l.resolvedAt) < cfg.Cooldown
		if l.over >= cfg.Debounce && !cooling {
			l.active, l.over, l.raisedAt = true, 0, t
			return emberwatch.AlertRaised, true
		}
		return "", false
	}
	if score < threshold*(1-cfg.Hysteresis) {
		l.active, l.resolvedAt = false, t
		return emberwatch.AlertResolved, true
	}
	return "", false
}

// id names one raise-resolve episode of an alert.
func (l *lifecycle) id(base string) string {
	return fmt.Sprintf("%s@%s", base, l.raisedAt.UTC().Format("20060102T150405.999999999Z"))
}

// Reconfigure replaces the detectors, rules and alert settings while
// running. A detector or rule whose config is unchanged keeps its state: its
// history, its warm-up and any alert it has raised. One that was removed or
// changed is dropped; if it had an alert raised, a resolved event saying so
// is appended to dst, so that no subscriber is left with an alert that will
// never resolve. On error (a rule that does not parse) nothing changes.
func (e *Engine) Reconfigure(detectors []DetectorConfig, rules []RuleConfig, alerts AlertConfig, dst []emberwatch.Alert) ([]emberwatch.Alert, error) {
	ne, err := NewEngine(detectors, rules, alerts)
	if err != nil {
		return dst, err
	}
	ne.latest = e.latest
	// Map each old detector to an identical new one, each used once.
	moved := map[int]int{}
	taken := map[int]bool{}
	for i, old := range e.detectors {
		for j, d := range ne.detectors {
			if !taken[j] && reflect.DeepEqual(old, d) {
				moved[i], taken[j] = j, true
				break
			}
		}
	}
	// In config order, then by series: not the map's random order, so that a
	// replay retires alerts in the same order as the live agent.
	keys := slices.SortedFunc(maps.Keys(e.scorers), func(a, b scorerKey) int {
		return cmp.Or(cmp.Compare(a.detector, b.detector), strings.Compare(a.series, b.series))
	})
	for _, k := range keys {
		t := e.scorers[k]
		if j, ok := moved[k.detector]; ok {
			ne.scorers[scorerKey{j, k.series}] = t
			continue
		}
		if t.life.active {
			d := e.detectors[k.detector]
			dst = append(dst, e.retired(t.life.id(d.Name+"/"+k.series), k.series, d.Name, "", d.Feature, d.Threshold,
				fmt.Sprintf("%s resolved: detector %s was changed or removed by a config update", k.series, d.Name)))
		}
	}
	keptRule := map[int]bool{}
	for _, old := range e.rules {
		kept := false
		for j, r := range ne.rules {
			if !keptRule[j] && r.cfg == old.cfg {
				ne.rules[j], keptRule[j], kept = old, true, true
				break
			}
		}
		if !kept && old.life.active {
			series := old.rule.Series()
			dst = append(dst, e.retired(old.life.id("rule/"+old.cfg.Name), strings.Join(series, "+"), "", old.cfg.Name, old.cfg.Expr, 0.5,
				fmt.Sprintf("rule %s resolved: changed or removed by a config update", old.cfg.Name)))
		}
	}
	*e = *ne
	return dst, nil
}

// retired is the resolved event of an alert whose detector or rule a config
// update removed. Its event time is the newest window end seen for the
// series, the last moment the agent knew anything about it.
func (e *Engine) retired(id, series, detector, rule, feature string, threshold float64, msg string) emberwatch.Alert {
	var t time.Time
	for _, s := range strings.Split(series, "+") {
		if f, ok := e.latest[s]; ok && f.End.After(t) {
			t = f.End
		}
	}
	return emberwatch.Alert{ID: id, State: emberwatch.AlertResolved, Series: series, Detector: detector, Rule: rule,
		Feature: feature, Threshold: threshold, EventTime: t, Message: msg}
}
