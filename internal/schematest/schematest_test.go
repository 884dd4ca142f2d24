package schematest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch"
)

// valid holds one hand-written valid message per kind; the invalid cases
// below each break one of them in one place.
var valid = map[Kind]string{
	Alert: `{"schema":"emberwatch/v1","device":"demo-01","seq":42,
		"id":"temp-robust-z/temperature@20260715T091000Z","state":"raised","series":"temperature",
		"detector":"temp-robust-z","feature":"mean","value":31.5,"expected":[18.2,24.9],
		"score":0.97,"threshold":0.9,"event_time":"2026-07-15T09:10:00Z",
		"message":"temperature raised: temp-robust-z mean=31.5, expected 18.2..24.9 (score 0.970)"}`,
	Summary: `{"schema":"emberwatch/v1","device":"demo-01","seq":43,"event_time":"2026-07-15T09:10:00Z",
		"summaries":[
			{"series":"temperature","window_start":"2026-07-15T09:00:00Z","window_end":"2026-07-15T09:10:00Z",
			 "count":60,"mean":21.5,"min":20.1,"max":23.0,"stddev":0.8,"last":22.9},
			{"series":"humidity","window_start":"2026-07-15T09:00:00Z","window_end":"2026-07-15T09:10:00Z",
			 "count":1,"mean":-3,"min":-3,"max":-3,"stddev":0,"last":-3}]}`,
	Status: `{"schema":"emberwatch/v1","device":"demo-01","state":"online",
		"event_time":"2026-07-15T09:10:00.123456789+02:00","version":"v0.4.1",
		"config_revision":7,"config_hash":"0a1b2c3d4e5f","started_at":"2026-07-15T09:09:58Z"}`,
	ConfigAck: `{"schema":"emberwatch/v1","device":"demo-01","event_time":"2026-07-15T09:10:00Z",
		"revision":7,"origin":"push","result":"applied","applied_revision":7}`,
	ConfigEnvelope: `{"revision":7,"payload":"device: demo-01\n",
		"signature":"` + strings.Repeat("A", 85) + `Q=="}`,
}

// more holds further valid messages: other states, optional fields left
// out, edge values.
var more = []struct {
	name    string
	kind    Kind
	payload string
}{
	{"alert resolved by a rule", Alert, `{"schema":"emberwatch/v1","device":"demo-01","seq":18446744073709551615,
		"id":"rule/wildfire@20260715T091000Z","state":"resolved","series":"temperature+humidity+smoke",
		"rule":"wildfire","feature":"temperature.delta > 4 and humidity.mean < 30","value":0,"expected":[0,0],
		"score":0,"threshold":0.5,"event_time":"2026-07-15T10:02:00.5Z","message":""}`},
	{"alert without detector, rule or feature", Alert, `{"schema":"emberwatch/v1","device":"d","seq":1,
		"id":"x","state":"raised","series":"s","value":-1e300,"expected":[-1.5e3,2E2],
		"score":1,"threshold":0,"event_time":"2026-07-15T09:10:00-07:00","message":"m"}`},
	{"status offline from the local file", Status, `{"schema":"emberwatch/v1","device":"demo-01","state":"offline",
		"event_time":"2026-07-15T09:10:00Z","version":"dev","config_revision":0,
		"config_hash":"ffffffffffff","started_at":"2026-07-15T09:09:58Z"}`},
	{"ack unchanged from the file", ConfigAck, `{"schema":"emberwatch/v1","device":"demo-01","event_time":"2026-07-15T09:10:00Z",
		"revision":0,"origin":"file","result":"unchanged","applied_revision":0}`},
	{"ack rejected", ConfigAck, `{"schema":"emberwatch/v1","device":"demo-01","event_time":"2026-07-15T09:10:00Z",
		"revision":0,"origin":"push","result":"rejected","applied_revision":6,
		"errors":["config: not an envelope: unexpected end of JSON input"]}`},
	{"ack rolled back", ConfigAck, `{"schema":"emberwatch/v1","device":"demo-01","event_time":"2026-07-15T09:10:00Z",
		"revision":8,"origin":"push","result":"rolled_back","applied_revision":7,
		"errors":["source station: open /dev/i2c-1: no such file","detectors[0]: bad"]}`},
	{"envelope unsigned", ConfigEnvelope, `{"revision":1,"payload":""}`},
	{"envelope with JSON config", ConfigEnvelope, `{"revision":18446744073709551615,"payload":"{\"device\":\"demo-01\"}",
		"signature":"` + strings.Repeat("+/09az", 14) + `aw=="}`},
}

func TestEverySchemaCompiles(t *testing.T) {
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(dir); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds {
		b, err := os.ReadFile(filepath.Join(dir, k.File()))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", k.File(), err)
		}
		if got := doc["$schema"]; got != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema = %v, want draft 2020-12", k.File(), got)
		}
		for _, key := range []string{"title", "description"} {
			if s, _ := doc[key].(string); s == "" {
				t.Errorf("%s: no %s", k.File(), key)
			}
		}
		closedObjects(t, k.File(), "#", doc)
		if !strings.Contains(string(readme), "("+k.File()+")") {
			t.Errorf("schemas/README.md does not link %s", k.File())
		}
	}
}

// closedObjects fails the test for every object schema under node that
// allows properties it does not name, or names no required ones.
func closedObjects(t *testing.T, file, at string, node any) {
	t.Helper()
	switch n := node.(type) {
	case map[string]any:
		if n["type"] == "object" {
			if n["additionalProperties"] != false {
				t.Errorf("%s: object at %s lacks additionalProperties: false", file, at)
			}
			if req, _ := n["required"].([]any); len(req) == 0 {
				t.Errorf("%s: object at %s requires nothing", file, at)
			}
		}
		for k, v := range n {
			closedObjects(t, file, at+"/"+k, v)
		}
	case []any:
		for i, v := range n {
			closedObjects(t, file, at+"/"+strconv.Itoa(i), v)
		}
	}
}

func TestValidExamplesPass(t *testing.T) {
	for _, k := range Kinds {
		t.Run(string(k), func(t *testing.T) {
			if err := Check(k, []byte(valid[k])); err != nil {
				t.Errorf("valid example rejected: %v", err)
			}
		})
	}
	for _, c := range more {
		t.Run(c.name, func(t *testing.T) {
			if err := Check(c.kind, []byte(c.payload)); err != nil {
				t.Errorf("valid example rejected: %v", err)
			}
		})
	}
}

// TestRootTypesMatch marshals the root package's Alert and Summary the way
// the agent wraps them, so a renamed json tag fails here too, without
// running the agent.
func TestRootTypesMatch(t *testing.T) {
	at := time.Date(2026, 7, 15, 9, 10, 0, 0, time.UTC)
	alert, err := json.Marshal(struct {
		Schema string `json:"schema"`
		Device string `json:"device"`
		Seq    uint64 `json:"seq"`
		emberwatch.Alert
	}{emberwatch.Schema, "demo-01", 1, emberwatch.Alert{
		ID: "rule/wildfire@x", State: emberwatch.AlertRaised, Series: "a+b", Rule: "wildfire",
		Value: 1, Expected: [2]float64{0, 0}, Score: 1, Threshold: 0.5, EventTime: at, Message: "m",
	}})
	if err != nil {
		t.Fatal(err)
	}
	Validate(t, Alert, alert)
	summary, err := json.Marshal(struct {
		Schema    string               `json:"schema"`
		Device    string               `json:"device"`
		Seq       uint64               `json:"seq"`
		EventTime time.Time            `json:"event_time"`
		Summaries []emberwatch.Summary `json:"summaries"`
	}{emberwatch.Schema, "demo-01", 2, at, []emberwatch.Summary{{
		Series: "smoke", WindowStart: at.Add(-10 * time.Minute), WindowEnd: at, Count: 3, Mean: 1, Min: 0, Max: 2, Stddev: 1, Last: 2,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	Validate(t, Summary, summary)
}

// TestSignedEnvelope signs a config by the documented rule and checks the
// envelope an operator's tool would send.
func TestSignedEnvelope(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	payload := "device: demo-01\nsources:\n  - type: simulator\n"
	for _, rev := range []uint64{1, 7, 1 << 40} {
		msg := "emberwatch-config-v1\n" + strconv.FormatUint(rev, 10) + "\n" + payload
		sig := ed25519.Sign(key, []byte(msg))
		env, err := json.Marshal(map[string]any{
			"revision": rev, "payload": payload, "signature": base64.StdEncoding.EncodeToString(sig),
		})
		if err != nil {
			t.Fatal(err)
		}
		Validate(t, ConfigEnvelope, env)
	}
}

func TestInvalidExamplesFail(t *testing.T) {
	set := func(k string, v any) func(map[string]any) {
		return func(m map[string]any) { m[k] = v }
	}
	del := func(k string) func(map[string]any) {
		return func(m map[string]any) { delete(m, k) }
	}
	inSummary := func(f func(map[string]any)) func(map[string]any) {
		return func(m map[string]any) { f(m["summaries"].([]any)[0].(map[string]any)) }
	}
	sig32 := base64.StdEncoding.EncodeToString(make([]byte, 32))
	sig64 := base64.StdEncoding.EncodeToString(make([]byte, 64))
	const badSig = "does not match pattern '^[A-Za-z0-9+/]{85}[AQgw]==$'"
	cases := []struct {
		name   string
		kind   Kind
		change func(map[string]any)
		want   string // in the error: where, and what
	}{
		{"alert missing id", Alert, del("id"), "at '': missing property 'id'"},
		{"alert missing seq", Alert, del("seq"), "at '': missing property 'seq'"},
		{"alert missing event_time", Alert, del("event_time"), "missing property 'event_time'"},
		{"alert extra field", Alert, set("severity", "high"), "additional properties 'severity' not allowed"},
		{"alert score 1.5", Alert, set("score", 1.5), "at '/score': maximum"},
		{"alert score negative", Alert, set("score", -0.1), "at '/score': minimum"},
		{"alert threshold 2", Alert, set("threshold", 2), "at '/threshold': maximum"},
		{"alert unknown state", Alert, set("state", "open"), "at '/state': value must be one of"},
		{"alert value as string", Alert, set("value", "31.5"), "at '/value': got string, want number"},
		{"alert score null", Alert, set("score", nil), "at '/score': got null, want number"},
		{"alert date with a space", Alert, set("event_time", "2026-07-15 09:10:00Z"), "at '/event_time': '2026-07-15 09:10:00Z' is not valid date-time"},
		{"alert hour 25", Alert, set("event_time", "2026-07-15T25:10:00Z"), "is not valid date-time"},
		{"alert date without zone", Alert, set("event_time", "2026-07-15T09:10:00"), "is not valid date-time"},
		{"alert unix time", Alert, set("event_time", 1784106600), "at '/event_time': got number, want string"},
		{"alert expected of three", Alert, set("expected", []any{1, 2, 3}), "at '/expected/2': false schema"},
		{"alert expected of one", Alert, set("expected", []any{1}), "at '/expected': minItems"},
		{"alert expected strings", Alert, set("expected", []any{"1", "2"}), "at '/expected/0': got string, want number"},
		{"alert seq 0", Alert, set("seq", 0), "at '/seq': minimum"},
		{"alert seq fraction", Alert, set("seq", 1.5), "at '/seq': got number, want integer"},
		{"alert seq past uint64", Alert, set("seq", json.Number("18446744073709551616")), "at '/seq': maximum"},
		{"alert other schema", Alert, set("schema", "emberwatch/v2"), "at '/schema': value must be"},
		{"alert device with slash", Alert, set("device", "a/b"), "at '/device': 'a/b' does not match pattern"},
		{"alert empty detector", Alert, set("detector", ""), "at '/detector': minLength"},

		{"summary empty batch", Summary, set("summaries", []any{}), "at '/summaries': minItems"},
		{"summary missing event_time", Summary, del("event_time"), "missing property 'event_time'"},
		{"summary missing count", Summary, inSummary(del("count")), "at '/summaries/0': missing property 'count'"},
		{"summary count 0", Summary, inSummary(set("count", 0)), "at '/summaries/0/count': minimum"},
		{"summary extra aggregate", Summary, inSummary(set("p99", 3)), "additional properties 'p99' not allowed"},
		{"summary bad window_start", Summary, inSummary(set("window_start", "2026-02-30T00:00:00Z")), "at '/summaries/0/window_start': '2026-02-30T00:00:00Z' is not valid date-time"},
		{"summary negative stddev", Summary, inSummary(set("stddev", -1)), "at '/summaries/0/stddev': minimum"},
		{"summary mean as string", Summary, inSummary(set("mean", "NaN")), "at '/summaries/0/mean': got string, want number"},

		{"status missing event_time", Status, del("event_time"), "missing property 'event_time'"},
		{"status missing config_revision", Status, del("config_revision"), "missing property 'config_revision'"},
		{"status with seq", Status, set("seq", 3), "additional properties 'seq' not allowed"},
		{"status unknown state", Status, set("state", "starting"), "at '/state': value must be one of"},
		{"status short hash", Status, set("config_hash", "0a1b2c"), "at '/config_hash': '0a1b2c' does not match pattern"},
		{"status upper-case hash", Status, set("config_hash", "0A1B2C3D4E5F"), "at '/config_hash': '0A1B2C3D4E5F' does not match pattern"},
		{"status negative revision", Status, set("config_revision", -1), "at '/config_revision': minimum"},
		{"status bad started_at", Status, set("started_at", "yesterday"), "at '/started_at': 'yesterday' is not valid date-time"},
		{"status empty version", Status, set("version", ""), "at '/version': minLength"},

		{"ack rejected without errors", ConfigAck, set("result", "rejected"), "missing property 'errors'"},
		{"ack rolled back without errors", ConfigAck, set("result", "rolled_back"), "missing property 'errors'"},
		{"ack applied with errors", ConfigAck, set("errors", []any{"x"}), "at '/errors': false schema"},
		{"ack empty errors", ConfigAck, func(m map[string]any) {
			m["result"], m["errors"] = "rejected", []any{}
		}, "at '/errors': minItems"},
		{"ack empty reason", ConfigAck, func(m map[string]any) {
			m["result"], m["errors"] = "rejected", []any{""}
		}, "at '/errors/0': minLength"},
		{"ack unknown result", ConfigAck, set("result", "failed"), "at '/result': value must be one of"},
		{"ack unknown origin", ConfigAck, set("origin", "remote"), "at '/origin': value must be one of"},
		{"ack missing applied_revision", ConfigAck, del("applied_revision"), "missing property 'applied_revision'"},
		{"ack with seq", ConfigAck, set("seq", 1), "additional properties 'seq' not allowed"},

		{"envelope revision 0", ConfigEnvelope, set("revision", 0), "at '/revision': minimum"},
		{"envelope missing payload", ConfigEnvelope, del("payload"), "missing property 'payload'"},
		{"envelope payload as object", ConfigEnvelope, set("payload", map[string]any{"device": "d"}), "at '/payload': got object, want string"},
		{"envelope 32-byte signature", ConfigEnvelope, set("signature", sig32), badSig},
		{"envelope unpadded signature", ConfigEnvelope, set("signature", strings.TrimRight(sig64, "=")), badSig},
		{"envelope url-safe signature", ConfigEnvelope, set("signature", strings.Repeat("-_", 42)+"AA=="), badSig},
		{"envelope hex signature", ConfigEnvelope, set("signature", strings.Repeat("ab", 64)), badSig},
		{"envelope extra field", ConfigEnvelope, set("device", "demo-01"), "additional properties 'device' not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal([]byte(valid[c.kind]), &m); err != nil {
				t.Fatal(err)
			}
			c.change(m)
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			err = Check(c.kind, b)
			if err == nil {
				t.Fatalf("accepted: %s", b)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("rejected, but not for %q: %v\npayload: %s", c.want, err, b)
			}
		})
	}
}

func TestNotJSONFails(t *testing.T) {
	for _, p := range []string{``, `{`, `{"revision":1,"payload":""} {}`, `[]`} {
		if err := Check(ConfigEnvelope, []byte(p)); err == nil {
			t.Errorf("accepted %q", p)
		}
	}
	if err := Check("firmware", []byte(`{}`)); err == nil {
		t.Error("accepted a message of an unknown kind")
	}
}

func TestKindOf(t *testing.T) {
	for topic, want := range map[string]Kind{
		"emberwatch/demo-01/alerts":     Alert,
		"emberwatch/demo-01/summaries":  Summary,
		"site/a/emberwatch/d/status":    Status,
		"emberwatch/demo-01/config/ack": ConfigAck,
		"emberwatch/demo-01/config":     ConfigEnvelope,
	} {
		if got, ok := KindOf(topic); !ok || got != want {
			t.Errorf("KindOf(%q) = %q, %v; want %q", topic, got, ok, want)
		}
	}
	for _, topic := range []string{"emberwatch/demo-01/metrics", "emberwatch/demo-01/alerts/x", ""} {
		if got, ok := KindOf(topic); ok {
			t.Errorf("KindOf(%q) = %q, want none", topic, got)
		}
	}
}
