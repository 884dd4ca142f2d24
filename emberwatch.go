// Package emberwatch holds the few record types that cross package lines:
// a sensor Reading, the windowed Features computed from readings, the Alert and
// Summary events sent upstream, and the Message the outbox stores for them.
//
// The package imports only the standard library, and nothing in the module is
// imported by it; every stage (sensors, windowing, detect, buffer, uplink)
// depends on these types and on nothing of each other.
package emberwatch

import (
	"strconv"
	"time"
)

// Schema is the version string carried by every message the agent publishes.
// Subscribers use it to pick a decoder; it changes when a field changes meaning.
const Schema = "emberwatch/v1"

// Reading is one sensor value at one instant of event time.
type Reading struct {
	// Series names the measured quantity on this device, e.g. "temperature".
	Series string
	// Time is when the value was measured (event time), not when it arrived.
	Time time.Time
	// Value is the measurement in the series' unit.
	Value float64
}

// Features are the aggregates of one series over one window of event time,
// [Start, End).
type Features struct {
	Series     string
	Start, End time.Time
	Count      int
	Sum        float64
	Mean       float64
	Min, Max   float64
	Variance   float64 // sample variance (n-1); 0 for a single reading
	Stddev     float64
	First      float64
	Last       float64
	Delta      float64 // Last - First
	Rate       float64 // Delta per second between the first and last reading
	EWMA       float64 // exponentially weighted mean, newest readings weighing most
	Median     float64
	MAD        float64 // median absolute deviation from the median (unscaled)
	// Quantiles holds the first NumQuantiles configured quantiles, exact.
	Quantiles    [MaxQuantiles]Quantile
	NumQuantiles int
	// Update marks a corrected result for a window emitted before, after a
	// late reading was folded in.
	Update bool
}

// MaxQuantiles is how many quantiles one Features record carries.
const MaxQuantiles = 8

// Quantile is the value V below which a fraction Q of a window's readings lie.
type Quantile struct {
	Q, V float64
}

// Value returns the aggregate called name ("mean", "delta", ...) and whether
// such an aggregate exists. Rules and detectors address features by these names.
func (f *Features) Value(name string) (float64, bool) {
	switch name {
	case "count":
		return float64(f.Count), true
	case "sum":
		return f.Sum, true
	case "mean":
		return f.Mean, true
	case "min":
		return f.Min, true
	case "max":
		return f.Max, true
	case "variance":
		return f.Variance, true
	case "stddev":
		return f.Stddev, true
	case "first":
		return f.First, true
	case "last":
		return f.Last, true
	case "delta":
		return f.Delta, true
	case "rate":
		return f.Rate, true
	case "ewma":
		return f.EWMA, true
	case "median":
		return f.Median, true
	case "mad":
		return f.MAD, true
	}
	if q, ok := ParseQuantile(name); ok {
		for _, x := range f.Quantiles[:f.NumQuantiles] {
			if x.Q == q {
				return x.V, true
			}
		}
	}
	return 0, false
}

// FeatureNames lists the aggregate names Features.Value answers to, in a
// stable order; quantiles ("p50", "p99.9") come on top.
var FeatureNames = []string{"count", "sum", "mean", "min", "max", "variance", "stddev",
	"first", "last", "delta", "rate", "ewma", "median", "mad"}

// IsFeatureName reports whether name is an aggregate or a quantile name.
func IsFeatureName(name string) bool {
	if _, ok := ParseQuantile(name); ok {
		return true
	}
	for _, n := range FeatureNames {
		if n == name {
			return true
		}
	}
	return false
}

// ParseQuantile reads a quantile's name: "p50" is 0.5, "p99.9" is 0.999.
// It reports false for anything else.
func ParseQuantile(name string) (float64, bool) {
	if len(name) < 2 || name[0] != 'p' {
		return 0, false
	}
	digits := name[1:]
	dot := false
	for i := 0; i < len(digits); i++ {
		switch c := digits[i]; {
		case c == '.' && !dot && i > 0 && i < len(digits)-1:
			dot = true
		case c < '0' || c > '9':
			return 0, false
		}
	}
	v, err := strconv.ParseFloat(digits, 64)
	if err != nil || v > 100 {
		return 0, false
	}
	return v / 100, true
}

// AlertState is where an alert is in its lifecycle.
type AlertState string

// Alert lifecycle states.
const (
	AlertRaised   AlertState = "raised"
	AlertResolved AlertState = "resolved"
)

// Alert is one lifecycle event of an anomaly: raised or resolved. It explains
// itself: which detector or rule, which feature, the value seen, the range that
// was expected, and the score.
type Alert struct {
	// ID is stable across an alert's raise and resolve events.
	ID    string     `json:"id"`
	State AlertState `json:"state"`
	// Series is the series the alert is about, or the rule's series joined by
	// "+" for a cross-series rule.
	Series   string  `json:"series"`
	Detector string  `json:"detector,omitempty"`
	Rule     string  `json:"rule,omitempty"`
	Feature  string  `json:"feature,omitempty"`
	Value    float64 `json:"value"`
	// Expected is the range the detector considered normal, [low, high].
	Expected  [2]float64 `json:"expected"`
	Score     float64    `json:"score"`
	Threshold float64    `json:"threshold"`
	// EventTime is the end of the window that raised or resolved the alert.
	EventTime time.Time `json:"event_time"`
	Message   string    `json:"message"`
}

// Summary is the digest of one series over one window, sent upstream so that
// a subscriber sees the device's data without the raw readings.
type Summary struct {
	Series      string    `json:"series"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Count       int       `json:"count"`
	Mean        float64   `json:"mean"`
	Min         float64   `json:"min"`
	Max         float64   `json:"max"`
	Stddev      float64   `json:"stddev"`
	Last        float64   `json:"last"`
}

// Class is an outbound message's priority class. Lower values are sent first
// and evicted last.
type Class uint8

// Message classes, in priority order.
const (
	ClassAlert Class = iota
	ClassSummary
)

// String returns the class name used in logs and metrics.
func (c Class) String() string {
	switch c {
	case ClassAlert:
		return "alert"
	case ClassSummary:
		return "summary"
	}
	return "unknown"
}

// Message is an outbound MQTT message as the outbox stores it. Seq is the
// device-wide sequence number that the outbox assigned on append; the payload
// carries the same number so subscribers can de-duplicate.
type Message struct {
	Seq     uint64
	Class   Class
	Topic   string
	Payload []byte
}
