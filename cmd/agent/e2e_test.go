package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/emberwatch/emberwatch/configs"
	"github.com/emberwatch/emberwatch/internal/brokertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, brokertest.IgnorePahoDisconnect)
}

// simStart is the simulated clock's start in the end-to-end tests: early
// morning, so the staged event lands while the day is warming up.
var simStart = time.Date(2026, 7, 15, 6, 0, 0, 0, time.UTC)

const eventAt = 3 * time.Hour

// testConfig is the demo config made hermetic: a temp data folder, the
// embedded broker on a free port (or brokerURL), a fixed clock and a fast
// simulation.
func testConfig(t *testing.T, brokerURL string, speed float64) *configs.Config {
	t.Helper()
	cfg, err := configs.Parse(configs.Demo())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Outbox.Path = cfg.DataDir + "/outbox.db"
	cfg.Broker.URL = brokerURL
	cfg.Broker.Embedded.Listen = "127.0.0.1:0"
	sim := &cfg.Sources[0].Simulator
	sim.Start = simStart
	sim.Speed = speed
	sim.Event.At = eventAt
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}

// alertJSON is what a subscriber decodes; pointers tell a missing field
// from a zero one.
type alertJSON struct {
	Schema    *string    `json:"schema"`
	Device    *string    `json:"device"`
	Seq       *uint64    `json:"seq"`
	ID        *string    `json:"id"`
	State     *string    `json:"state"`
	Series    *string    `json:"series"`
	EventTime *time.Time `json:"event_time"`
	Score     *float64   `json:"score"`
	Threshold *float64   `json:"threshold"`
	Message   *string    `json:"message"`
}

// runEndToEnd runs the agent in-process against brokerURL (empty: the
// embedded broker), waits for the staged event's first alert, and checks it.
func runEndToEnd(t *testing.T, brokerURL string) {
	cfg := testConfig(t, brokerURL, 20000)
	p := startAgent(t, cfg, configs.Demo())
	alerts := func() []brokertest.Message { return p.messages("alerts") }

	eventStart := simStart.Add(eventAt)
	const maxDelay = 20 * time.Minute // simulated time from event start to alert
	if !await(60*time.Second, func() bool { return len(alerts()) > 0 }) {
		t.Fatal("no alert within 60s")
	}
	msg := alerts()[0]
	if msg.Topic != "emberwatch/demo-01/alerts" {
		t.Errorf("topic = %q, want emberwatch/demo-01/alerts", msg.Topic)
	}
	var got alertJSON
	if err := json.Unmarshal(msg.Payload, &got); err != nil {
		t.Fatalf("alert is not JSON: %v: %s", err, msg.Payload)
	}
	t.Logf("first alert: %s", msg.Payload)
	switch {
	case got.Schema == nil || *got.Schema != "emberwatch/v1":
		t.Errorf("schema missing or wrong: %s", msg.Payload)
	case got.Device == nil || *got.Device != "demo-01":
		t.Errorf("device missing or wrong: %s", msg.Payload)
	case got.Seq == nil || *got.Seq == 0:
		t.Errorf("seq missing or zero: %s", msg.Payload)
	case got.Series == nil || *got.Series == "":
		t.Errorf("series missing: %s", msg.Payload)
	case got.Score == nil || *got.Score < *got.Threshold || *got.Score >= 1:
		t.Errorf("score missing or not in [threshold,1): %s", msg.Payload)
	case got.State == nil || *got.State != "raised":
		t.Errorf("first alert should be raised: %s", msg.Payload)
	case got.EventTime == nil:
		t.Errorf("event_time missing: %s", msg.Payload)
	case got.EventTime.Before(eventStart):
		t.Errorf("alert at %s, before the staged event starts at %s", got.EventTime, eventStart)
	case got.EventTime.Sub(eventStart) > maxDelay:
		t.Errorf("alert at %s, more than %s after the event started at %s", got.EventTime, maxDelay, eventStart)
	}

	p.stop()
	// Every alert that arrived is about the staged event, and sequence
	// numbers only grow.
	var last uint64
	for _, m := range alerts() {
		var a alertJSON
		if err := json.Unmarshal(m.Payload, &a); err != nil {
			t.Fatalf("bad alert JSON: %s", m.Payload)
		}
		if a.EventTime.Before(eventStart) {
			t.Errorf("alert before the event: %s", m.Payload)
		}
		if *a.Seq <= last {
			t.Errorf("seq %d after %d", *a.Seq, last)
		}
		last = *a.Seq
	}
}

func TestEndToEndEmbeddedBroker(t *testing.T) {
	runEndToEnd(t, "")
}

func TestEndToEndMosquitto(t *testing.T) {
	m := brokertest.StartMosquitto(t)
	runEndToEnd(t, m.URL())
}
