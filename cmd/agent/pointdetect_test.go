package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch/configs"
	"github.com/emberwatch/emberwatch/internal/schematest"
)

// TestPointDetectorOnRecording runs configs/nab-replay.yaml as shipped,
// made hermetic: the NAB-measured ensemble, as a configured detector,
// must raise an alert inside the recording's label window, every alert
// must match its schema, and the agent must stop by itself when the
// recording ends.
func TestPointDetectorOnRecording(t *testing.T) {
	const key = "artificialWithAnomaly/art_daily_jumpsup.csv"
	recording := filepath.Join(nabShared, filepath.FromSlash(key))
	if _, err := os.Stat(recording); err != nil {
		t.Skipf("NAB corpus not found: %v", err)
	}
	raw, err := configs.Examples.ReadFile("nab-replay.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Sources[0].CSV.Path; got != "../shared/data/nab/"+key {
		t.Fatalf("the example replays %s, not the file this test checks", got)
	}
	cfg.Sources[0].CSV.Path = recording
	cfg.DataDir = t.TempDir()
	cfg.Outbox.Path = filepath.Join(cfg.DataDir, "outbox.db")
	cfg.Broker.Embedded.Listen = "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// The label window, from NAB's labels.
	labels, err := os.ReadFile(filepath.Join(nabShared, "labels", "combined_windows.json"))
	if err != nil {
		t.Fatal(err)
	}
	var windows map[string][][2]string
	if err := json.Unmarshal(labels, &windows); err != nil {
		t.Fatal(err)
	}
	var limits [2]time.Time
	for i, s := range windows[key][0] {
		if limits[i], err = time.Parse("2006-01-02 15:04:05.000000", s); err != nil {
			t.Fatal(err)
		}
	}
	from, to := limits[0], limits[1]

	p := startAgent(t, cfg, raw)
	select {
	case err := <-p.done:
		p.done <- err // for stop
		if err != nil {
			t.Fatalf("agent returned %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the agent did not stop within 60s of replaying a 4,032-row recording")
	}
	inWindow := 0
	alerts := p.messages("alerts")
	for _, m := range alerts {
		schematest.Validate(t, schematest.Alert, m.Payload)
		var a struct {
			State     string    `json:"state"`
			Detector  string    `json:"detector"`
			Feature   string    `json:"feature"`
			Score     float64   `json:"score"`
			Threshold float64   `json:"threshold"`
			EventTime time.Time `json:"event_time"`
		}
		if err := json.Unmarshal(m.Payload, &a); err != nil {
			t.Fatal(err)
		}
		if a.Detector != "nab-ensemble" || a.Feature != "last" || a.Threshold != 0.5 {
			t.Errorf("alert from another detector or threshold: %s", m.Payload)
		}
		if a.State == "raised" && a.Score < a.Threshold {
			t.Errorf("raised below the threshold: %s", m.Payload)
		}
		if a.State == "raised" && !a.EventTime.Before(from) && !a.EventTime.After(to) {
			inWindow++
		}
	}
	if inWindow == 0 {
		var b strings.Builder
		for _, m := range alerts {
			b.Write(m.Payload)
			b.WriteByte('\n')
		}
		t.Fatalf("no alert raised inside the label window %s..%s; alerts:\n%s", from, to, b.String())
	}
	t.Logf("%d alert events, %d raised inside the label window", len(alerts), inWindow)
}
