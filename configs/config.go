package configs

import (
	"embed"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/emberwatch/emberwatch/buffer"
	"github.com/emberwatch/emberwatch/detect"
	"github.com/emberwatch/emberwatch/sensors"
	"github.com/emberwatch/emberwatch/uplink"
	"github.com/emberwatch/emberwatch/windowing"
)

// Examples holds the example configs shipped in this folder.
//
//go:embed *.yaml
var Examples embed.FS

// DemoFile is the name of the embedded default config.
const DemoFile = "demo.yaml"

// Demo returns the embedded default config's source.
func Demo() []byte {
	b, err := Examples.ReadFile(DemoFile)
	if err != nil {
		panic("configs: demo.yaml not embedded: " + err.Error())
	}
	return b
}

// Config is the whole agent config.
type Config struct {
	// Device is this agent's id, unique in the fleet; it is a topic level.
	Device string `yaml:"device"`
	// TopicPrefix starts every topic; default "emberwatch".
	TopicPrefix string `yaml:"topic_prefix"`
	// DataDir holds the outbox and other state; default "./data".
	DataDir string `yaml:"data_dir"`
	// Log sets the log level ("debug", "info", "warn", "error") and format
	// ("console" or "json").
	Log LogConfig `yaml:"log"`

	Sources   []sensors.Config          `yaml:"sources"`
	Derived   []windowing.DerivedConfig `yaml:"derived"`
	Windows   []windowing.Config        `yaml:"windows"`
	Detectors []detect.DetectorConfig   `yaml:"detectors"`
	Rules     []detect.RuleConfig       `yaml:"rules"`
	Alerts    detect.AlertConfig        `yaml:"alerts"`
	Summaries SummariesConfig           `yaml:"summaries"`
	Outbox    buffer.Config             `yaml:"outbox"`
	Broker    uplink.Config             `yaml:"broker"`
	Remote    RemoteConfig              `yaml:"remote_config"`
}

// SummariesConfig bounds how window summaries are batched into messages on
// the summaries topic: a batch is sent when it holds MaxBatch summaries or
// when its newest window ends MaxDelay of event time after its oldest.
type SummariesConfig struct {
	// MaxBatch is the most summaries in one message. Default 100.
	MaxBatch int `yaml:"max_batch"`
	// MaxDelay is how much event time one message may span. Default 1m; 0s
	// sends the windows of each window end on their own.
	MaxDelay time.Duration `yaml:"max_delay"`
}

// LogConfig configures logging.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Topics are the device's MQTT topics.
type Topics struct {
	Alerts, Summaries, Status, Config, ConfigAck string
}

// Topics returns the topic names for c's prefix and device.
func (c *Config) Topics() Topics {
	base := c.TopicPrefix + "/" + c.Device + "/"
	return Topics{Alerts: base + "alerts", Summaries: base + "summaries", Status: base + "status",
		Config: base + "config", ConfigAck: base + "config/ack"}
}

// Parse reads a config: defaults, strict decode, normalise, validate. The
// error lists every problem found, each naming its field.
func Parse(data []byte) (*Config, error) {
	// Defaults that a zero value cannot express go in before the decode.
	c := &Config{Alerts: detect.DefaultAlertConfig(), Remote: RemoteConfig{Enabled: true},
		Summaries: SummariesConfig{MaxDelay: unsetDelay}}
	if err := decodeStrict(data, c); err != nil {
		return nil, err
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// unsetDelay marks a duration the config did not set, where 0 means something.
const unsetDelay = time.Duration(-1)

// Normalize fills every default.
func (c *Config) Normalize() {
	if c.TopicPrefix == "" {
		c.TopicPrefix = "emberwatch"
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "console"
	}
	for i := range c.Sources {
		c.Sources[i].Normalize()
	}
	for i := range c.Windows {
		c.Windows[i].Normalize()
	}
	for i := range c.Detectors {
		c.Detectors[i].Normalize()
	}
	c.Alerts.Normalize()
	if c.Summaries.MaxBatch == 0 {
		c.Summaries.MaxBatch = 100
	}
	if c.Summaries.MaxDelay == unsetDelay {
		c.Summaries.MaxDelay = time.Minute
	}
	if c.Outbox.Path == "" {
		c.Outbox.Path = filepath.Join(c.DataDir, "outbox.db")
	}
	c.Outbox.Normalize()
	if c.Broker.ClientID == "" {
		c.Broker.ClientID = c.Device
	}
	c.Broker.Normalize()
}

// Validate checks every section and returns all problems joined, each as
// "field.path: what is wrong".
func (c *Config) Validate() error {
	var errs []error
	add := func(path string, err error) {
		if err != nil {
			errs = append(errs, &FieldError{Path: path, Err: err})
		}
	}
	add("device", topicLevel(c.Device, true))
	for _, lvl := range strings.Split(c.TopicPrefix, "/") {
		add("topic_prefix", topicLevel(lvl, false))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", fmt.Errorf("must be debug, info, warn or error, got %q", c.Log.Level))
	}
	switch c.Log.Format {
	case "console", "json":
	default:
		add("log.format", fmt.Errorf("must be console or json, got %q", c.Log.Format))
	}
	if len(c.Sources) == 0 {
		add("sources", errors.New("at least one source is required"))
	}
	names := map[string]int{}
	for i := range c.Sources {
		s := &c.Sources[i]
		addNested(add, fmt.Sprintf("sources[%d]", i), s.Validate())
		if j, dup := names[s.Name]; dup {
			add(fmt.Sprintf("sources[%d].name", i), fmt.Errorf("%q already used by sources[%d]", s.Name, j))
		}
		names[s.Name] = i
	}
	if len(c.Windows) == 0 {
		add("windows", errors.New("at least one window is required"))
	}
	for i := range c.Windows {
		addNested(add, fmt.Sprintf("windows[%d]", i), c.Windows[i].Validate())
	}
	derived := map[string]int{}
	for i := range c.Derived {
		addNested(add, fmt.Sprintf("derived[%d]", i), c.Derived[i].Validate())
		if j, dup := derived[c.Derived[i].Name]; dup {
			add(fmt.Sprintf("derived[%d].name", i), fmt.Errorf("%q already used by derived[%d]", c.Derived[i].Name, j))
		}
		derived[c.Derived[i].Name] = i
	}
	for i := range c.Detectors {
		addNested(add, fmt.Sprintf("detectors[%d]", i), c.Detectors[i].Validate())
	}
	rules := map[string]int{}
	for i := range c.Rules {
		addNested(add, fmt.Sprintf("rules[%d]", i), c.Rules[i].Validate())
		if j, dup := rules[c.Rules[i].Name]; dup {
			add(fmt.Sprintf("rules[%d].name", i), fmt.Errorf("%q already used by rules[%d]", c.Rules[i].Name, j))
		}
		rules[c.Rules[i].Name] = i
	}
	addNested(add, "alerts", c.Alerts.Validate())
	if c.Summaries.MaxBatch < 1 || c.Summaries.MaxBatch > 10_000 {
		add("summaries.max_batch", fmt.Errorf("must be in [1,10000], got %d", c.Summaries.MaxBatch))
	}
	if c.Summaries.MaxDelay < 0 {
		add("summaries.max_delay", fmt.Errorf("must be >= 0, got %s", c.Summaries.MaxDelay))
	}
	addNested(add, "outbox", c.Outbox.Validate())
	addNested(add, "broker", c.Broker.Validate())
	return errors.Join(errs...)
}

// addNested records err, whose text starts with a field path relative to
// prefix ("size: must be > 0"), under the full path ("windows[0].size").
func addNested(add func(string, error), prefix string, err error) {
	if err == nil {
		return
	}
	msg := err.Error()
	if field, rest, ok := strings.Cut(msg, ": "); ok && !strings.ContainsAny(field, " ") {
		add(prefix+"."+field, &trimmed{msg: rest, err: err})
		return
	}
	add(prefix, err)
}

// trimmed is an error whose text lost its leading field name (now in the
// FieldError's path) but which still unwraps to the original, so that
// errors.Is and errors.As see through Parse.
type trimmed struct {
	msg string
	err error
}

func (t *trimmed) Error() string { return t.msg }
func (t *trimmed) Unwrap() error { return errors.Unwrap(t.err) }

// FieldError is a problem with one field of a config.
type FieldError struct {
	Path string // e.g. "windows[0].size"
	Err  error
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func topicLevel(s string, required bool) error {
	switch {
	case s == "" && required:
		return errors.New("required")
	case s == "":
		return errors.New("empty topic level")
	case strings.ContainsAny(s, "/+#\x00"):
		return fmt.Errorf("%q must not contain '/', '+', '#' or NUL", s)
	}
	return nil
}
