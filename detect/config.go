package detect

import (
	"fmt"
	"math"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/emberwatch/emberwatch"
)

// Detector types known to NewScorer.
const (
	TypeRobustZ = "robust_zscore"
	TypeEWMA    = "ewma"
	// TypePoint runs a point detector (Point names it) on one feature of
	// each window.
	TypePoint = "point"
)

var detectorTypes = []string{TypeEWMA, TypePoint, TypeRobustZ}

// DetectorConfig configures one detector, applied to every series that Series
// matches (each series gets its own state).
type DetectorConfig struct {
	// Name identifies the detector in alerts; default "<type>".
	Name string `yaml:"name"`
	// Series is a series name or path.Match pattern; "*" alone matches
	// every series.
	Series string `yaml:"series"`
	// Type is robust_zscore, ewma or point.
	Type string `yaml:"type"`
	// Point names the point detector of type point: any name `agent eval
	// nab` takes (PointDetectorNames, optionally with LikelihoodPrefix),
	// "ensemble" being the best measured on NAB. It runs with
	// DefaultPointParams and learns for its own period: History, Warmup,
	// Alpha and MinSpread do not apply to it.
	Point string `yaml:"point"`
	// Feature is the window aggregate scored; default "mean".
	Feature string `yaml:"feature"`
	// Threshold is the score at or above which the detector fires; default
	// 0.9, which is a deviation of 9 spreads (see score), and for type
	// point the point detector's own (PointThreshold).
	Threshold float64 `yaml:"threshold"`
	// History is how many past windows robust_zscore compares against;
	// default 60.
	History int `yaml:"history"`
	// Warmup is how many windows a detector sees before it scores; default
	// 30 (never more than History for robust_zscore).
	Warmup int `yaml:"warmup"`
	// Alpha is the EWMA smoothing factor in (0,1]; default 0.1.
	Alpha float64 `yaml:"alpha"`
	// MinSpread is a floor on the spread (in the feature's unit) that
	// deviations are measured in, so that a very quiet signal does not turn
	// sensor resolution into alerts. Default 0.
	MinSpread float64 `yaml:"min_spread"`
}

// Normalize fills defaults.
func (c *DetectorConfig) Normalize() {
	if c.Name == "" {
		c.Name = c.Type
	}
	if c.Feature == "" {
		c.Feature = "mean"
	}
	if c.Threshold == 0 {
		c.Threshold = 0.9
		if c.Type == TypePoint {
			if t, err := PointThreshold(c.Point, PointParams{}); err == nil {
				c.Threshold = t
			}
		}
	}
	if c.History == 0 {
		c.History = 60
	}
	if c.Warmup == 0 {
		c.Warmup = min(30, c.History)
	}
	if c.Alpha == 0 {
		c.Alpha = 0.1
	}
}

// Validate checks the config; errors name the field relative to the detector.
func (c *DetectorConfig) Validate() error {
	if c.Series == "" {
		return fmt.Errorf("series: required")
	}
	if _, err := path.Match(c.Series, ""); err != nil {
		return fmt.Errorf("series: bad pattern %q: %v", c.Series, err)
	}
	if !slices.Contains(detectorTypes, c.Type) {
		return fmt.Errorf("type: unknown detector %q (known: %s)", c.Type, strings.Join(detectorTypes, ", "))
	}
	switch {
	case c.Type == TypePoint && c.Point == "":
		return fmt.Errorf("point: required for type %s (known: %s, each optionally prefixed by %q)",
			TypePoint, strings.Join(PointDetectorNames(), ", "), LikelihoodPrefix)
	case c.Type == TypePoint:
		if _, err := NewPointDetector(c.Point, DefaultPointParams()); err != nil {
			return fmt.Errorf("point: %w", err)
		}
	case c.Point != "":
		return fmt.Errorf("point: only for type %s, not %s", TypePoint, c.Type)
	}
	if !emberwatch.IsFeatureName(c.Feature) {
		return fmt.Errorf("feature: unknown aggregate %q (known: %s, or a quantile such as p90)", c.Feature, strings.Join(emberwatch.FeatureNames, ", "))
	}
	if !(c.Threshold > 0 && c.Threshold < 1) {
		return fmt.Errorf("threshold: must be in (0,1), got %v", c.Threshold)
	}
	if c.History < 3 {
		return fmt.Errorf("history: must be >= 3, got %d", c.History)
	}
	if c.Warmup < 1 {
		return fmt.Errorf("warmup: must be >= 1, got %d", c.Warmup)
	}
	if c.Type == TypeRobustZ && c.Warmup > c.History {
		return fmt.Errorf("warmup: must not exceed history (%d), got %d", c.History, c.Warmup)
	}
	if !(c.Alpha > 0 && c.Alpha <= 1) {
		return fmt.Errorf("alpha: must be in (0,1], got %v", c.Alpha)
	}
	if c.MinSpread < 0 || math.IsNaN(c.MinSpread) {
		return fmt.Errorf("min_spread: must be >= 0, got %v", c.MinSpread)
	}
	return nil
}

func (c *DetectorConfig) matches(series string) bool {
	if c.Series == "*" {
		return true // every series, even names with a "/"
	}
	ok, _ := path.Match(c.Series, series)
	return ok
}

// RuleConfig is a cross-series threshold rule.
type RuleConfig struct {
	// Name identifies the rule in alerts.
	Name string `yaml:"name"`
	// Expr is the condition, e.g. "temperature.delta > 5 and humidity.mean < 25".
	Expr string `yaml:"expr"`
	// Message is shown with the alert; default the expression.
	Message string `yaml:"message"`
}

// Validate parses the expression; errors name the field and the position.
func (c *RuleConfig) Validate() error {
	if c.Name == "" {
		return fmt.Errorf("name: required")
	}
	if _, err := ParseRule(c.Expr); err != nil {
		return fmt.Errorf("expr: %w", err)
	}
	return nil
}

// AlertConfig is the alert lifecycle shared by every detector and rule.
type AlertConfig struct {
	// Debounce is how many consecutive windows must be at or above the
	// threshold before an alert is raised. Default 1.
	Debounce int `yaml:"debounce"`
	// Hysteresis is how far below the threshold the score must fall before an
	// alert resolves, as a fraction of the threshold. Default 0.1 (see
	// DefaultAlertConfig); 0 resolves as soon as the score is below the
	// threshold.
	Hysteresis float64 `yaml:"hysteresis"`
	// Cooldown is the least event time between a resolve and the next raise
	// of the same alert. Default 0.
	Cooldown time.Duration `yaml:"cooldown"`
}

// DefaultAlertConfig is the lifecycle a config starts from before its own
// keys are decoded over it.
func DefaultAlertConfig() AlertConfig {
	return AlertConfig{Debounce: 1, Hysteresis: 0.1}
}

// Normalize fills defaults that a zero value cannot mean otherwise.
func (c *AlertConfig) Normalize() {
	if c.Debounce == 0 {
		c.Debounce = 1
	}
}

// Validate checks the config.
func (c *AlertConfig) Validate() error {
	if c.Debounce < 1 {
		return fmt.Errorf("debounce: must be >= 1, got %d", c.Debounce)
	}
	if !(c.Hysteresis >= 0 && c.Hysteresis < 1) {
		return fmt.Errorf("hysteresis: must be in [0,1), got %v", c.Hysteresis)
	}
	if c.Cooldown < 0 {
		return fmt.Errorf("cooldown: must be >= 0, got %s", c.Cooldown)
	}
	return nil
}
