package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/emberwatch/emberwatch/configs"
	"github.com/emberwatch/emberwatch/internal/brokertest"
	"github.com/emberwatch/emberwatch/internal/schematest"
	"github.com/emberwatch/emberwatch/uplink"
)

// push publishes env as an operator would and returns the device's ack.
func (p *testAgent) push(env configs.Envelope) configAck {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := uplink.Config{URL: p.url, ClientID: "pusher-" + p.t.Name()}
	reply, err := uplink.Request(ctx, cfg, "emberwatch/demo-01/config", env.Encode(), true,
		"emberwatch/demo-01/config/ack", func(b []byte) bool {
			var a configAck
			return json.Unmarshal(b, &a) == nil && a.Revision == env.Revision
		})
	if err != nil {
		p.t.Fatalf("push revision %d: %v", env.Revision, err)
	}
	var ack configAck
	if err := json.Unmarshal(reply, &ack); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("ack: %s", reply)
	return ack
}

// messages returns what arrived on topic under the agent's device.
func (p *testAgent) messages(topic string) []brokertest.Message {
	var out []brokertest.Message
	for _, m := range p.sub.Messages() {
		if m.Topic == p.prefix+topic {
			out = append(out, m)
		}
	}
	return out
}

// awaitSummaries waits until more than n summaries messages have arrived.
func (p *testAgent) awaitSummaries(n int) {
	p.t.Helper()
	if !await(30*time.Second, func() bool { return len(p.messages("summaries")) > n }) {
		p.t.Fatalf("no summaries after the first %d", n)
	}
}

// edit returns the YAML of cfg's source with f applied to its document.
func edit(t *testing.T, raw []byte, f func(doc map[string]any)) string {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	f(doc)
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hermetic is the test config's YAML: the demo with a temp data folder, the
// broker at brokerURL (empty: the embedded one on a free port), a fixed
// clock, at speed 600.
func hermetic(t *testing.T, dataDir, brokerURL string) []byte {
	return []byte(edit(t, configs.Demo(), func(doc map[string]any) {
		doc["data_dir"] = dataDir
		doc["broker"] = map[string]any{"url": brokerURL, "embedded": map[string]any{"listen": "127.0.0.1:0"}}
		src := doc["sources"].([]any)[0].(map[string]any)["simulator"].(map[string]any)
		src["speed"] = 600
		src["start"] = simStart.Format(time.RFC3339)
	}))
}

func parse(t *testing.T, raw []byte) *configs.Config {
	t.Helper()
	c, err := configs.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type summaryJSON struct {
	Seq       uint64 `json:"seq"`
	Summaries []struct {
		Series    string    `json:"series"`
		WindowEnd time.Time `json:"window_end"`
		Count     int       `json:"count"`
	} `json:"summaries"`
}

// TestConfigPush runs the cases of a config push against one agent, on the
// embedded broker and on Mosquitto: a valid push that keeps window and
// outbox state, an invalid one, a replay, the same revision again, a device
// and a broker change, a source that cannot start, and a restart that
// resumes the pushed config.
func TestConfigPush(t *testing.T) {
	t.Run("mochi", func(t *testing.T) { testConfigPush(t, "") })
	t.Run("mosquitto", func(t *testing.T) { testConfigPush(t, brokertest.StartMosquitto(t).URL()) })
}

func testConfigPush(t *testing.T, brokerURL string) {
	dir := t.TempDir()
	raw := hermetic(t, dir, brokerURL)
	p := startAgent(t, parse(t, raw), raw)
	p.awaitSummaries(20) // 20 simulated minutes: every 10-minute window is full

	// A valid push: a new rule and a lower smoke threshold. Windows are
	// unchanged, so they keep their readings.
	valid := edit(t, raw, func(doc map[string]any) {
		doc["rules"] = append(doc["rules"].([]any), map[string]any{"name": "hot", "expr": "temperature.mean > 60"})
		doc["detectors"].([]any)[2].(map[string]any)["threshold"] = 0.8
	})
	before := len(p.messages("summaries"))
	ack := p.push(configs.Envelope{Revision: 10, Payload: valid})
	if ack.Result != resultApplied || ack.AppliedRevision != 10 || ack.Origin != "push" || len(ack.Errors) != 0 {
		t.Fatalf("valid push: %+v", ack)
	}
	if len(p.a.cfg.Rules) != 2 || p.a.cfg.Detectors[2].Threshold != 0.8 {
		t.Fatalf("running config not switched: %d rules, smoke threshold %v", len(p.a.cfg.Rules), p.a.cfg.Detectors[2].Threshold)
	}
	// Every window after the push is full (60 readings of 10 s): the
	// windows did not start over.
	p.awaitSummaries(before + 3)
	for _, m := range p.messages("summaries")[before:] {
		var s summaryJSON
		if err := json.Unmarshal(m.Payload, &s); err != nil {
			t.Fatal(err)
		}
		for _, w := range s.Summaries {
			if w.Count != 60 {
				t.Fatalf("window %s of %s after the push holds %d readings, want 60: window state was lost", w.WindowEnd, w.Series, w.Count)
			}
		}
	}
	// The status says which revision runs.
	if !await(10*time.Second, func() bool {
		st := p.messages("status")
		var s statusMessage
		return len(st) > 0 && json.Unmarshal(st[len(st)-1].Payload, &s) == nil && s.ConfigRevision == 10 && s.State == "online"
	}) {
		t.Fatalf("status does not show revision 10: %v", p.messages("status"))
	}
	saved, ok, err := configs.ReadLastGood(configs.LastGoodPath(dir))
	if err != nil || !ok || saved.Revision != 10 || saved.Payload != valid {
		t.Fatalf("last good config: %+v %v %v", saved, ok, err)
	}

	// Invalid: every error is reported, with its field.
	invalid := strings.Replace(valid, "size: 10m", "size: -1m", 1) + "\nwindowz: []\n"
	ack = p.push(configs.Envelope{Revision: 11, Payload: invalid})
	if ack.Result != resultRejected || ack.AppliedRevision != 10 {
		t.Fatalf("invalid push: %+v", ack)
	}
	joined := strings.Join(ack.Errors, "\n")
	for _, want := range []string{`windowz: line`, `unknown key "windowz" (did you mean "windows"?)`} {
		if !strings.Contains(joined, want) {
			t.Errorf("errors %q lack %q", ack.Errors, want)
		}
	}
	invalid = strings.Replace(valid, "size: 10m", "size: -1m", 1)
	invalid = strings.Replace(invalid, "cooldown: 15m", "cooldown: -1m", 1)
	ack = p.push(configs.Envelope{Revision: 11, Payload: invalid})
	if ack.Result != resultRejected || len(ack.Errors) != 2 ||
		!strings.HasPrefix(ack.Errors[0], "windows[0].size:") || !strings.HasPrefix(ack.Errors[1], "alerts.cooldown:") {
		t.Fatalf("invalid push, two errors: %+v", ack)
	}

	// A replayed older revision, and the current one again.
	ack = p.push(configs.Envelope{Revision: 9, Payload: valid})
	if ack.Result != resultRejected || !strings.Contains(ack.Errors[0], "older than the running revision 10") {
		t.Fatalf("replayed revision: %+v", ack)
	}
	ack = p.push(configs.Envelope{Revision: 10, Payload: valid})
	if ack.Result != resultUnchanged || ack.AppliedRevision != 10 {
		t.Fatalf("same revision again: %+v", ack)
	}

	// What only a restart may change.
	other := edit(t, []byte(valid), func(doc map[string]any) {
		doc["device"] = "demo-02"
		doc["broker"] = map[string]any{"url": "tcp://10.0.0.1:1883"}
	})
	ack = p.push(configs.Envelope{Revision: 12, Payload: other})
	if ack.Result != resultRejected || len(ack.Errors) != 2 ||
		!strings.HasPrefix(ack.Errors[0], "device:") || !strings.HasPrefix(ack.Errors[1], "broker:") {
		t.Fatalf("device and broker change: %+v", ack)
	}

	// A source that cannot start: the running config stays.
	broken := edit(t, []byte(valid), func(doc map[string]any) {
		doc["sources"] = append(doc["sources"].([]any), map[string]any{
			"name": "archive", "type": "csv", "csv": map[string]any{"path": filepath.Join(dir, "missing.csv")}})
	})
	ack = p.push(configs.Envelope{Revision: 13, Payload: broken})
	if ack.Result != resultRolledBack || ack.AppliedRevision != 10 || !strings.Contains(ack.Errors[0], "sources[1] (archive): cannot start") {
		t.Fatalf("source that cannot start: %+v", ack)
	}
	if n := len(p.a.cfg.Sources); n != 1 {
		t.Fatalf("running config has %d sources after the roll-back", n)
	}
	p.awaitSummaries(len(p.messages("summaries")))

	// Sequence numbers ran on without a gap through all of it: nothing
	// the outbox held was dropped.
	p.stop()
	// Every message seen, pushes and acks included, matches its schema.
	for _, m := range p.sub.Messages() {
		kind, ok := schematest.KindOf(m.Topic)
		if !ok {
			t.Fatalf("message on %s, which has no schema", m.Topic)
		}
		schematest.Validate(t, kind, m.Payload)
	}
	var seqs []uint64
	for _, m := range p.sub.Messages() {
		if m.Topic == "emberwatch/demo-01/summaries" || m.Topic == "emberwatch/demo-01/alerts" {
			var s struct{ Seq uint64 }
			json.Unmarshal(m.Payload, &s)
			seqs = append(seqs, s.Seq)
		}
	}
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	if len(seqs) == 0 || seqs[len(seqs)-1]-seqs[0]+1 != uint64(len(seqs)) {
		t.Fatalf("sequence numbers have gaps: %d distinct from %d to %d", len(seqs), seqs[0], seqs[len(seqs)-1])
	}

	// A restart from the original file runs the pushed config.
	q := startAgent(t, parse(t, raw), raw)
	if q.a.revision != 10 || len(q.a.cfg.Rules) != 2 || q.a.origin != configs.OriginPush {
		t.Fatalf("after a restart: revision %d, %d rules, origin %s", q.a.revision, len(q.a.cfg.Rules), q.a.origin)
	}
	ack = q.push(configs.Envelope{Revision: 9, Payload: valid})
	if ack.Result != resultRejected {
		t.Fatalf("replay after a restart: %+v", ack)
	}
}

// TestSignedConfigPush requires signatures: unsigned, forged and
// mis-signed pushes are refused; a signed one is applied.
func TestSignedConfigPush(t *testing.T) {
	dir := t.TempDir()
	pub, priv, err := configs.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "k.pub"), pub, 0o644)
	os.WriteFile(filepath.Join(dir, "k.key"), priv, 0o600)
	key, err := configs.LoadPrivateKey(filepath.Join(dir, "k.key"))
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, _ := configs.GenerateKey()
	os.WriteFile(filepath.Join(dir, "other.key"), otherPriv, 0o600)
	other, _ := configs.LoadPrivateKey(filepath.Join(dir, "other.key"))

	raw := []byte(edit(t, hermetic(t, filepath.Join(dir, "data"), ""), func(doc map[string]any) {
		doc["remote_config"] = map[string]any{"public_key_file": filepath.Join(dir, "k.pub")}
	}))
	p := startAgent(t, parse(t, raw), raw)
	next := strings.Replace(string(raw), "cooldown: 15m", "cooldown: 20m", 1)

	ack := p.push(configs.Envelope{Revision: 5, Payload: next})
	if ack.Result != resultRejected || !strings.Contains(ack.Errors[0], "not signed") {
		t.Fatalf("unsigned: %+v", ack)
	}
	forged := configs.Envelope{Revision: 5, Payload: next}
	forged.Sign(other)
	if ack = p.push(forged); ack.Result != resultRejected || !strings.Contains(ack.Errors[0], "signature does not match") {
		t.Fatalf("signed by another key: %+v", ack)
	}
	// A genuine signature moved to a higher revision.
	moved := configs.Envelope{Revision: 5, Payload: next}
	moved.Sign(key)
	moved.Revision = 6
	if ack = p.push(moved); ack.Result != resultRejected {
		t.Fatalf("signature of revision 5 on revision 6: %+v", ack)
	}
	good := configs.Envelope{Revision: 7, Payload: next}
	good.Sign(key)
	if ack = p.push(good); ack.Result != resultApplied || p.a.cfg.Alerts.Cooldown != 20*time.Minute {
		t.Fatalf("signed: %+v", ack)
	}
	if c := p.a.counts; c.unsigned != 1 || c.badSignature != 2 || c.applied != 1 {
		t.Fatalf("counts: %+v", c)
	}
}

// TestSIGHUPReload re-reads the config file through the same path as a
// push: a bad edit is refused and the running config stays; a good one is
// applied and keeps the revision.
func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	raw := hermetic(t, filepath.Join(dir, "data"), "")
	path := filepath.Join(dir, "agent.yaml")
	os.WriteFile(path, raw, 0o644)
	reload := make(chan struct{})
	acks := make(chan configAck, 4)
	p := startAgent(t, parse(t, raw), raw, func(a *agent) {
		a.path = path
		a.reload = reload
		a.hooks.applied = func(ack configAck) { acks <- ack }
	})
	ack := p.push(configs.Envelope{Revision: 3, Payload: string(raw)})
	if ack.Result != resultApplied {
		t.Fatalf("push: %+v", ack)
	}
	<-acks

	os.WriteFile(path, []byte(strings.Replace(string(raw), "cooldown: 15m", "cooldown: soon", 1)), 0o644)
	reload <- struct{}{}
	if a := <-acks; a.Result != resultRejected || a.Origin != "file" || !strings.HasPrefix(a.Errors[0], "alerts.cooldown:") {
		t.Fatalf("bad edit: %+v", a)
	}
	os.WriteFile(path, []byte(strings.Replace(string(raw), "cooldown: 15m", "cooldown: 5m", 1)), 0o644)
	reload <- struct{}{}
	if a := <-acks; a.Result != resultApplied || a.AppliedRevision != 3 || p.a.cfg.Alerts.Cooldown != 5*time.Minute {
		t.Fatalf("good edit: %+v, cooldown %s", a, p.a.cfg.Alerts.Cooldown)
	}

	// After a restart the file's config runs, and the push of revision 3,
	// which a broker would deliver again as retained, is known as handled.
	p.stop()
	edited, _ := os.ReadFile(path)
	q := startAgent(t, parse(t, edited), edited, func(a *agent) { a.path = path })
	if q.a.origin != configs.OriginFile || q.a.cfg.Alerts.Cooldown != 5*time.Minute {
		t.Fatalf("after a restart: origin %s, cooldown %s", q.a.origin, q.a.cfg.Alerts.Cooldown)
	}
	if ack := q.push(configs.Envelope{Revision: 3, Payload: string(raw)}); ack.Result != resultUnchanged {
		t.Fatalf("the retained push again after a reload and a restart: %+v", ack)
	}
}

// TestResumeFallsBackToTheFile starts from a saved pushed config whose
// sensor can no longer be opened: the agent runs the file's config instead
// of staying down, and keeps the revision for replay protection.
func TestResumeFallsBackToTheFile(t *testing.T) {
	dir := t.TempDir()
	raw := hermetic(t, dir, "")
	pushed := edit(t, raw, func(doc map[string]any) {
		doc["sources"] = append(doc["sources"].([]any), map[string]any{
			"name": "archive", "type": "csv", "csv": map[string]any{"path": filepath.Join(dir, "gone.csv")}})
	})
	if err := configs.WriteLastGood(configs.LastGoodPath(dir), configs.LastGood{Revision: 8, Origin: configs.OriginPush, Payload: pushed}); err != nil {
		t.Fatal(err)
	}
	p := startAgent(t, parse(t, raw), raw)
	p.awaitSummaries(0)
	if p.a.origin != configs.OriginFile || len(p.a.cfg.Sources) != 1 || p.a.revision != 8 {
		t.Fatalf("running origin %s with %d sources at revision %d", p.a.origin, len(p.a.cfg.Sources), p.a.revision)
	}
	if ack := p.push(configs.Envelope{Revision: 7, Payload: string(raw)}); ack.Result != resultRejected {
		t.Fatalf("revision 7 after resuming revision 8: %+v", ack)
	}
}
