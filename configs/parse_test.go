package configs_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch/configs"
	"github.com/emberwatch/emberwatch/detect"
	"github.com/emberwatch/emberwatch/sensors"
)

// minimal is the smallest valid config: everything else has a default.
const minimal = `device: d1
sources:
  - type: simulator
windows:
  - size: 1m
`

// fieldPaths returns the paths of the *configs.FieldErrors in err, in order.
func fieldPaths(err error) []string {
	var paths []string
	var walk func(error)
	walk = func(e error) {
		var fe *configs.FieldError
		switch x := e.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range x.Unwrap() {
				walk(e)
			}
		default:
			if errors.As(e, &fe) {
				paths = append(paths, fe.Path)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return paths
}

func TestParseDefaults(t *testing.T) {
	c, err := configs.Parse([]byte(minimal))
	if err != nil {
		t.Fatalf("Parse(minimal): %v", err)
	}
	checks := []struct {
		field     string
		got, want any
	}{
		{"topic_prefix", c.TopicPrefix, "emberwatch"},
		{"data_dir", c.DataDir, "data"},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "console"},
		{"sources[0].name", c.Sources[0].Name, "simulator"},
		{"sources[0].interval", c.Sources[0].Interval, 10 * time.Second},
		{"windows[0].series", c.Windows[0].Series, "*"},
		{"windows[0].hop", c.Windows[0].Hop, time.Minute},
		{"alerts.debounce", c.Alerts.Debounce, 1},
		{"outbox.path", c.Outbox.Path, filepath.Join("data", "outbox.db")},
		{"outbox.max_records", c.Outbox.MaxRecords, 1_000_000},
		{"broker.client_id", c.Broker.ClientID, "d1"},
		{"broker.embedded.listen", c.Broker.Embedded.Listen, "127.0.0.1:1883"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.field, ch.got, ch.want)
		}
	}
	if got := c.Topics(); got != (configs.Topics{Alerts: "emberwatch/d1/alerts", Summaries: "emberwatch/d1/summaries", Status: "emberwatch/d1/status",
		Config: "emberwatch/d1/config", ConfigAck: "emberwatch/d1/config/ack"}) {
		t.Errorf("Topics() = %+v", got)
	}

	// Set values win over defaults; the outbox follows data_dir.
	c, err = configs.Parse([]byte(minimal + "data_dir: /var/lib/ew\ntopic_prefix: fleet/north\nbroker:\n  client_id: other\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Outbox.Path != filepath.Join("/var/lib/ew", "outbox.db") || c.Broker.ClientID != "other" {
		t.Errorf("outbox.path %q, broker.client_id %q", c.Outbox.Path, c.Broker.ClientID)
	}
	if got := c.Topics().Alerts; got != "fleet/north/d1/alerts" {
		t.Errorf("alerts topic = %q", got)
	}
}

func TestParseJSON(t *testing.T) {
	c, err := configs.Parse([]byte(`{"device": "d1", "sources": [{"type": "simulator", "interval": "5s"}], "windows": [{"size": "1m"}]}`))
	if err != nil {
		t.Fatalf("Parse(JSON): %v", err)
	}
	if c.Device != "d1" || c.Sources[0].Interval != 5*time.Second {
		t.Errorf("got device %q, interval %s", c.Device, c.Sources[0].Interval)
	}
}

func TestParseAnchorsAndAliases(t *testing.T) {
	c, err := configs.Parse([]byte(`device: d1
sources:
  - type: simulator
windows:
  - &ten {size: 10m, hop: 1m}
  - *ten
`))
	if err != nil {
		t.Fatalf("Parse with an alias: %v", err)
	}
	if len(c.Windows) != 2 || !reflect.DeepEqual(c.Windows[1], c.Windows[0]) {
		t.Errorf("windows = %+v, want two equal specs", c.Windows)
	}
}

// TestParseMergeKeys: "<<" merges an anchored mapping, a common way to share
// settings in YAML. yaml.v3 supports it, but the strict walk in decodeStrict
// treats "<<" as a field name and reports it as an unknown key.
func TestParseMergeKeys(t *testing.T) {
	c, err := configs.Parse([]byte(`device: d1
sources:
  - type: simulator
windows:
  - &ten {size: 10m, hop: 1m}
  - <<: *ten
    series: smoke
`))
	if err != nil {
		t.Fatalf("Parse with a merge key: %v", err)
	}
	if c.Windows[1].Size != 10*time.Minute || c.Windows[1].Series != "smoke" {
		t.Errorf("windows[1] = %+v, want size 10m merged in, series smoke", c.Windows[1])
	}
}

// TestSuggestTransposedKey: swapping two letters is the commonest typo, but
// suggest() measures plain Levenshtein distance, where a swap costs 2, and
// allows at most max(1, len(key)/3) — so no key of five letters or fewer
// gets a suggestion for a swap ("tpye" for "type").
func TestSuggestTransposedKey(t *testing.T) {
	for _, tc := range []struct{ yaml, key, want string }{
		{"device: d1\nsources:\n  - tpye: simulator\n", "tpye", "type"},
		{"device: d1\nsources:\n  - type: simulator\nwindows:\n  - szie: 1m\n", "szie", "size"},
		{"device: d1\nsources:\n  - type: simulator\nwindows:\n  - size: 1m\n    hpo: 1m\n", "hpo", "hop"},
		{"device: d1\nsources:\n  - type: simulator\n    simulator: {event: {rmap: 1m}}\n", "rmap", "ramp"},
		{"device: d1\nsources:\n  - type: simulator\nwindows:\n  - size: 1m\nroules: []\n", "roules", "rules"}, // insertion: works
	} {
		_, err := configs.Parse([]byte(tc.yaml))
		want := fmt.Sprintf("unknown key %q (did you mean %q?)", tc.key, tc.want)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("misspelt key %q: error %v, want it to contain %s", tc.key, err, want)
		}
	}
}

// with appends extra lines to the minimal config.
func with(extra string) string { return minimal + extra }

// parseErrorCases are broken configs and what Parse must say about them;
// FuzzParse starts from them too.
var parseErrorCases = []struct {
	name  string
	in    string
	paths []string // exactly these field errors, in order; nil: none
	want  []string // substrings of the error text
}{
	{"unknown top-level key", with("colour: red\n"),
		[]string{"colour"}, []string{`colour: line 6: unknown key "colour"`}},
	{"misspelt top-level key", "device: d1\nsources:\n  - type: simulator\nwindws:\n  - size: 1m\n",
		[]string{"windws"}, []string{`windws: line 4: unknown key "windws" (did you mean "windows"?)`}},
	{"unknown nested key", "device: d1\nsources:\n  - type: simulator\nwindows:\n  - sise: 1m\n",
		[]string{"windows[0].sise"}, []string{`unknown key "sise" (did you mean "size"?)`}},
	{"unknown deep key", "device: d1\nsources:\n  - type: simulator\n    simulator:\n      event:\n        durration: 5m\nwindows:\n  - size: 1m\n",
		[]string{"sources[0].simulator.event.durration"}, []string{`line 6: unknown key "durration" (did you mean "duration"?)`}},
	{"no suggestion for a far-off key", with("frobnicate: 1\n"),
		[]string{"frobnicate"}, []string{`unknown key "frobnicate"`}},
	{"duration that is not one", "device: d1\nsources:\n  - type: simulator\nwindows:\n  - size: ten\n",
		[]string{"windows[0].size"}, []string{`windows[0].size: line 5: want a duration such as 10s, 5m or 1h30m, got "ten"`}},
	{"bare number for a duration", "device: d1\nsources:\n  - type: simulator\n    interval: 10\nwindows:\n  - size: 1m\n",
		[]string{"sources[0].interval"}, []string{"want a duration", `got "10"`}},
	{"integer that is not one", with("outbox:\n  max_records: lots\n"),
		[]string{"outbox.max_records"}, []string{`want an integer, got "lots"`}},
	{"list for a string", strings.Replace(minimal, "device: d1", "device: [a, b]", 1),
		[]string{"device"}, []string{"device: line 1: want a string, got a list"}},
	{"mapping for a list", "device: d1\nsources:\n  - type: simulator\nwindows: {size: 1m}\n",
		[]string{"windows"}, []string{"want a list, got a mapping"}},
	{"scalar for a mapping", with("broker: localhost\n"),
		[]string{"broker"}, []string{`want a mapping of keys to values, got "localhost"`}},
	{"list at the top", "- device: d1\n",
		[]string{"(top level)"}, []string{"want a mapping of keys to values, got a list"}},
	{"negative window size", "device: d1\nsources:\n  - type: simulator\nwindows:\n  - size: -1m\n",
		[]string{"windows[0].size"}, []string{"windows[0].size: must be > 0"}},
	{"unknown detector type", with("detectors:\n  - series: temperature\n    type: isolation_forest\n"),
		[]string{"detectors[0].type"}, []string{`detectors[0].type: unknown detector "isolation_forest"`, "robust_zscore"}},
	{"unknown source type", "device: d1\nsources:\n  - type: bme680\nwindows:\n  - size: 1m\n",
		[]string{"sources[0].type"}, append([]string{`sources[0].type: sensors: unknown source type "bme680"`}, sensors.Types()...)},
	{"missing device", "sources:\n  - type: simulator\nwindows:\n  - size: 1m\n",
		[]string{"device"}, []string{"device: required"}},
	{"device with a slash", strings.Replace(minimal, "d1", "a/b", 1),
		[]string{"device"}, []string{`device: "a/b" must not contain`}},
	{"wildcard in topic_prefix", with("topic_prefix: fleet/+\n"),
		[]string{"topic_prefix"}, []string{`topic_prefix: "+" must not contain`}},
	{"empty level in topic_prefix", with("topic_prefix: fleet//x\n"),
		[]string{"topic_prefix"}, []string{"topic_prefix: empty topic level"}},
	{"bad rule expression", with("rules:\n  - name: r\n    expr: temperature.delta >\n"),
		[]string{"rules[0].expr"}, []string{"rules[0].expr: at column"}},
	{"rule without a name", with("rules:\n  - expr: smoke.mean > 40\n"),
		[]string{"rules[0].name"}, []string{"rules[0].name: required"}},
	{"duplicate source names", "device: d1\nsources:\n  - type: simulator\n  - type: simulator\nwindows:\n  - size: 1m\n",
		[]string{"sources[1].name"}, []string{`sources[1].name: "simulator" already used by sources[0]`}},
	{"humidity_drop out of range", "device: d1\nsources:\n  - type: simulator\n    simulator: {event: {at: 1h, humidity_drop: 1.5}}\nwindows:\n  - size: 1m\n",
		[]string{"sources[0].simulator.event.humidity_drop"}, []string{"sources[0].simulator.event.humidity_drop: must be in [0,1)"}},
	{"negative speed", "device: d1\nsources:\n  - type: simulator\n    simulator: {speed: -1}\nwindows:\n  - size: 1m\n",
		[]string{"sources[0].simulator.speed"}, []string{"sources[0].simulator.speed: must be >= 0"}},
	{"bad log level", with("log: {level: loud}\n"),
		[]string{"log.level"}, []string{`log.level: must be debug, info, warn or error, got "loud"`}},
	{"bad broker scheme", with("broker: {url: 'http://b:1883'}\n"),
		[]string{"broker.url"}, []string{`broker.url: scheme "http" not supported`}},
	{"negative max_records", with("outbox: {max_records: -1}\n"),
		[]string{"outbox.max_records"}, []string{"outbox.max_records: must be >= 1"}},
	{"two documents", minimal + "---\ndevice: d2\n",
		nil, []string{"more than one YAML document"}},
	{"invalid YAML", "device: [d1\n",
		nil, []string{"config is not valid YAML"}},
	{"tab indentation", "device: d1\nsources:\n\t- type: simulator\n",
		nil, []string{"config is not valid YAML"}},
	{"duplicate key", with("device: d2\n"),
		nil, []string{`"device" already defined`}},
	{"empty document", "",
		[]string{"device", "sources", "windows"}, []string{"device: required", "sources: at least one source is required", "windows: at least one window is required"}},
	{"comments only", "# nothing here\n",
		[]string{"device", "sources", "windows"}, []string{"device: required"}},
	{"explicit null", "~\n",
		[]string{"device", "sources", "windows"}, []string{"device: required"}},
}

// TestParseErrors parses each broken config in parseErrorCases.
func TestParseErrors(t *testing.T) {
	for _, tc := range parseErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			checkParseError(t, []byte(tc.in), tc.paths, tc.want)
		})
	}
}

// TestParseInvalidFiles parses each testdata/invalid/*.yaml file. A file
// states what it expects in its leading comments: "# path: p" for each field
// error (exactly those, in order), "# want: text" for each substring of the
// error.
func TestParseInvalidFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/invalid files (%v)", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var paths, want []string
			for line := range strings.Lines(string(data)) {
				line = strings.TrimSpace(line)
				if p, ok := strings.CutPrefix(line, "# path: "); ok {
					paths = append(paths, p)
				}
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, w)
				}
			}
			if len(want) == 0 && len(paths) == 0 {
				t.Fatal("the file states no expectation (# path: or # want:)")
			}
			checkParseError(t, data, paths, want)
		})
	}
}

func checkParseError(t *testing.T, in []byte, paths, want []string) {
	t.Helper()
	c, err := configs.Parse(in)
	if err == nil {
		t.Fatalf("Parse succeeded; want an error\ninput:\n%s", in)
	}
	if c != nil {
		t.Errorf("Parse returned a config along with the error")
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not mention %q:\n%s", w, msg)
		}
	}
	if got := fieldPaths(err); !slices.Equal(got, paths) {
		t.Errorf("field errors at %q, want %q\nerror:\n%s", got, paths, msg)
	}
	for _, p := range paths {
		if !strings.Contains(msg, p+": ") {
			t.Errorf("error text does not name the field %q:\n%s", p, msg)
		}
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	// Two decode problems: both reported, the walk does not stop at the first.
	_, err := configs.Parse([]byte("devise: d1\nsources:\n  - type: simulator\n    intervall: 1s\nwindows:\n  - size: 1m\n"))
	if got, want := fieldPaths(err), []string{"devise", "sources[0].intervall"}; !slices.Equal(got, want) {
		t.Errorf("decode problems reported at %q, want %q (error: %v)", got, want, err)
	}
	// Two validation problems in different sections.
	_, err = configs.Parse([]byte("device: d1\nsources:\n  - type: simulator\nwindows:\n  - size: -1m\ndetectors:\n  - series: smoke\n    type: nope\n"))
	if got, want := fieldPaths(err), []string{"windows[0].size", "detectors[0].type"}; !slices.Equal(got, want) {
		t.Errorf("validation problems reported at %q, want %q (error: %v)", got, want, err)
	}
	// Two problems in one list, at different indexes.
	_, err = configs.Parse([]byte("device: d1\nsources:\n  - type: simulator\nwindows:\n  - size: 1m\n  - size: 0s\n  - size: -1m\n"))
	if got, want := fieldPaths(err), []string{"windows[1].size", "windows[2].size"}; !slices.Equal(got, want) {
		t.Errorf("problems reported at %q, want %q (error: %v)", got, want, err)
	}
}

func TestFieldError(t *testing.T) {
	inner := errors.New("must be > 0")
	fe := &configs.FieldError{Path: "windows[0].size", Err: inner}
	if fe.Error() != "windows[0].size: must be > 0" {
		t.Errorf("Error() = %q", fe.Error())
	}
	if !errors.Is(fe, inner) {
		t.Error("FieldError does not unwrap to its cause")
	}
	_, err := configs.Parse([]byte("sources:\n  - type: simulator\nwindows:\n  - size: 1m\n"))
	var got *configs.FieldError
	if !errors.As(err, &got) || got.Path != "device" {
		t.Errorf("errors.As(Parse error) = %v, %+v; want a FieldError for device", err, got)
	}
}

// TestParseHasNoSideEffects: parsing reads nothing and creates nothing, not
// even the data folder or the files the config names.
func TestParseHasNoSideEffects(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := minimal + "data_dir: " + data + "\nbroker:\n  url: ssl://b.example.net:8883\n  password_file: " + filepath.Join(dir, "missing") +
		"\n  ca_file: " + filepath.Join(dir, "ca.pem") + "\n"
	c, err := configs.Parse([]byte(cfg))
	if err != nil {
		t.Fatalf("Parse: %v (files a config names are not read while parsing)", err)
	}
	if c.Outbox.Path != filepath.Join(data, "outbox.db") {
		t.Errorf("outbox.path = %q", c.Outbox.Path)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("Parse created %v in %s", entries, dir)
	}
}

// TestParseKeepsErrorChain: a section's error keeps its identity through
// Parse, so callers can match it with errors.Is and errors.As (STYLE 7).
// addNested re-creates a nested error from its text with errors.New, which
// cuts the chain: neither sensors.ErrUnknownType nor *detect.SyntaxError
// can be found in what Parse returns.
func TestParseKeepsErrorChain(t *testing.T) {
	_, err := configs.Parse([]byte("device: d1\nsources:\n  - type: bme680\nwindows:\n  - size: 1m\n"))
	if !errors.Is(err, sensors.ErrUnknownType) {
		t.Errorf("Parse error %q does not match sensors.ErrUnknownType", err)
	}
	_, err = configs.Parse([]byte(with("rules:\n  - name: r\n    expr: smoke.mean >\n")))
	var se *detect.SyntaxError
	if !errors.As(err, &se) {
		t.Errorf("Parse error %q holds no *detect.SyntaxError", err)
	}
}
