package detect_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch/detect"
)

func TestDetectorConfigNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   detect.DetectorConfig
		want detect.DetectorConfig
	}{
		{
			name: "defaults",
			in:   detect.DetectorConfig{Series: "x", Type: detect.TypeEWMA},
			want: detect.DetectorConfig{Name: "ewma", Series: "x", Type: "ewma", Feature: "mean", Threshold: 0.9, History: 60, Warmup: 30, Alpha: 0.1},
		},
		{
			name: "warm-up defaults to at most the history",
			in:   detect.DetectorConfig{Series: "x", Type: detect.TypeRobustZ, History: 10},
			want: detect.DetectorConfig{Name: "robust_zscore", Series: "x", Type: "robust_zscore", Feature: "mean", Threshold: 0.9, History: 10, Warmup: 10, Alpha: 0.1},
		},
		{
			name: "set fields are kept",
			in:   detect.DetectorConfig{Name: "n", Series: "x", Type: "ewma", Feature: "max", Threshold: 0.5, History: 5, Warmup: 7, Alpha: 1, MinSpread: 2},
			want: detect.DetectorConfig{Name: "n", Series: "x", Type: "ewma", Feature: "max", Threshold: 0.5, History: 5, Warmup: 7, Alpha: 1, MinSpread: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in
			got.Normalize()
			if got != tt.want {
				t.Errorf("Normalize() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// checkPrefix fails unless err is nil when want is "", or starts with want.
func checkPrefix(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("Validate() = %v, want nil", err)
	case want != "" && err == nil:
		t.Fatalf("Validate() = nil, want %q...", want)
	case want != "" && !strings.HasPrefix(err.Error(), want):
		t.Fatalf("Validate() = %q, want it to start with %q", err, want)
	}
}

func TestDetectorConfigValidate(t *testing.T) {
	valid := func(set func(*detect.DetectorConfig)) detect.DetectorConfig {
		c := detect.DetectorConfig{Name: "d", Series: "temp*", Type: detect.TypeRobustZ, Feature: "mean", Threshold: 0.9, History: 60, Warmup: 30, Alpha: 0.1}
		if set != nil {
			set(&c)
		}
		return c
	}
	tests := []struct {
		name string
		cfg  detect.DetectorConfig
		want string
	}{
		{"valid robust z", valid(nil), ""},
		{"valid ewma with a long warm-up", valid(func(c *detect.DetectorConfig) { c.Type, c.Warmup = detect.TypeEWMA, 100 }), ""},
		{"smallest history", valid(func(c *detect.DetectorConfig) { c.History, c.Warmup = 3, 3 }), ""},
		{"alpha 1", valid(func(c *detect.DetectorConfig) { c.Alpha = 1 }), ""},
		{"every feature", valid(func(c *detect.DetectorConfig) { c.Feature = "rate" }), ""},
		{"missing series", valid(func(c *detect.DetectorConfig) { c.Series = "" }), "series: required"},
		{"bad pattern", valid(func(c *detect.DetectorConfig) { c.Series = "temp[" }), `series: bad pattern "temp["`},
		{"unknown type", valid(func(c *detect.DetectorConfig) { c.Type = "zscore" }), `type: unknown detector "zscore" (known: ewma, point, robust_zscore)`},
		{"missing type", valid(func(c *detect.DetectorConfig) { c.Type = "" }), `type: unknown detector "" (known: ewma, point, robust_zscore)`},
		{"unknown feature", valid(func(c *detect.DetectorConfig) { c.Feature = "avg" }), `feature: unknown aggregate "avg" (known: count, sum, mean,`},
		{"zero threshold", valid(func(c *detect.DetectorConfig) { c.Threshold = 0 }), "threshold: must be in (0,1)"},
		{"threshold 1", valid(func(c *detect.DetectorConfig) { c.Threshold = 1 }), "threshold: must be in (0,1)"},
		{"negative threshold", valid(func(c *detect.DetectorConfig) { c.Threshold = -0.5 }), "threshold: must be in (0,1)"},
		{"NaN threshold", valid(func(c *detect.DetectorConfig) { c.Threshold = math.NaN() }), "threshold: must be in (0,1)"},
		{"short history", valid(func(c *detect.DetectorConfig) { c.History, c.Warmup = 2, 2 }), "history: must be >= 3"},
		{"zero warm-up", valid(func(c *detect.DetectorConfig) { c.Warmup = 0 }), "warmup: must be >= 1"},
		{"robust z warm-up beyond history", valid(func(c *detect.DetectorConfig) { c.Warmup = 61 }), "warmup: must not exceed history (60)"},
		{"zero alpha", valid(func(c *detect.DetectorConfig) { c.Alpha = 0 }), "alpha: must be in (0,1]"},
		{"alpha above 1", valid(func(c *detect.DetectorConfig) { c.Alpha = 1.5 }), "alpha: must be in (0,1]"},
		{"NaN alpha", valid(func(c *detect.DetectorConfig) { c.Alpha = math.NaN() }), "alpha: must be in (0,1]"},
		{"negative min spread", valid(func(c *detect.DetectorConfig) { c.MinSpread = -1 }), "min_spread: must be >= 0"},
		{"NaN min spread", valid(func(c *detect.DetectorConfig) { c.MinSpread = math.NaN() }), "min_spread: must be >= 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkPrefix(t, tt.cfg.Validate(), tt.want)
		})
	}
}

func TestRuleConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  detect.RuleConfig
		want string
	}{
		{"valid", detect.RuleConfig{Name: "r", Expr: "a.mean > 1"}, ""},
		{"missing name", detect.RuleConfig{Expr: "a.mean > 1"}, "name: required"},
		{"bad expression", detect.RuleConfig{Name: "r", Expr: "a.mean = 1"}, `expr: at column 8: unknown operator "="`},
		{"empty expression", detect.RuleConfig{Name: "r"}, "expr: at column 1: expected a number or series.aggregate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkPrefix(t, tt.cfg.Validate(), tt.want)
		})
	}
	err := (&detect.RuleConfig{Name: "r", Expr: "a.mean > 1)"}).Validate()
	var se *detect.SyntaxError
	if !errors.As(err, &se) || se.Pos != 10 {
		t.Errorf("Validate() = %v, want it to wrap a *SyntaxError at 10", err)
	}
}

func TestAlertConfigNormalize(t *testing.T) {
	c := detect.AlertConfig{}
	c.Normalize()
	if want := (detect.AlertConfig{Debounce: 1}); c != want {
		t.Errorf("Normalize() = %+v, want %+v", c, want)
	}
	c = detect.AlertConfig{Debounce: 3, Hysteresis: 0.3, Cooldown: time.Minute}
	want := c
	c.Normalize()
	if c != want {
		t.Errorf("Normalize() = %+v, want the set fields kept: %+v", c, want)
	}
}

func TestAlertConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  detect.AlertConfig
		want string
	}{
		{"valid", detect.AlertConfig{Debounce: 1, Hysteresis: 0.1}, ""},
		{"zero hysteresis", detect.AlertConfig{Debounce: 1}, ""},
		{"cooldown", detect.AlertConfig{Debounce: 5, Hysteresis: 0.99, Cooldown: time.Hour}, ""},
		{"zero debounce", detect.AlertConfig{Hysteresis: 0.1}, "debounce: must be >= 1"},
		{"negative debounce", detect.AlertConfig{Debounce: -1}, "debounce: must be >= 1"},
		{"hysteresis 1", detect.AlertConfig{Debounce: 1, Hysteresis: 1}, "hysteresis: must be in [0,1)"},
		{"negative hysteresis", detect.AlertConfig{Debounce: 1, Hysteresis: -0.1}, "hysteresis: must be in [0,1)"},
		{"NaN hysteresis", detect.AlertConfig{Debounce: 1, Hysteresis: math.NaN()}, "hysteresis: must be in [0,1)"},
		{"negative cooldown", detect.AlertConfig{Debounce: 1, Cooldown: -time.Second}, "cooldown: must be >= 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkPrefix(t, tt.cfg.Validate(), tt.want)
		})
	}
}
