package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch/configs"
	"github.com/emberwatch/emberwatch/internal/brokertest"
	"github.com/emberwatch/emberwatch/internal/schematest"
	"github.com/emberwatch/emberwatch/uplink"
)

// TestSchemaEveryMessage runs the agent on the demo config until it has
// raised and resolved an alert, sent summaries and its online status, then
// stops it (offline status), and checks every message it published on its
// topics, and the retained state a late subscriber is handed, against the
// schema of the topic's kind in schemas/.
//
// The brokers outlive the agent: the mochi broker is started by the test,
// not by the agent, which would close it right after publishing its offline
// status, before the broker may have passed that on.
func TestSchemaEveryMessage(t *testing.T) {
	t.Run("mochi", func(t *testing.T) {
		b, err := uplink.StartBroker("127.0.0.1:0", testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		testSchemaEveryMessage(t, b.URL())
	})
	t.Run("mosquitto", func(t *testing.T) { testSchemaEveryMessage(t, brokertest.StartMosquitto(t).URL()) })
}

func testSchemaEveryMessage(t *testing.T, brokerURL string) {
	cfg := testConfig(t, brokerURL, 20000)
	all := strings.TrimSuffix(cfg.Topics().Status, "status") + "#"
	p := startAgent(t, cfg, configs.Demo())
	sub := p.sub

	// Run until every kind of event has been seen once.
	need := []string{"alert raised", "alert resolved", "summaries", "status online"}
	if !await(60*time.Second, func() bool { return seenAll(sub.Messages(), need) }) {
		t.Errorf("within 60s the agent did not send all of %v; seen: %v", need, seen(sub.Messages()))
	}
	p.stop()
	// The offline status is published before the agent returns, but its
	// delivery to the subscriber may trail.
	if !await(5*time.Second, func() bool { return seenAll(sub.Messages(), []string{"status offline"}) }) {
		t.Errorf("no offline status after the agent stopped; seen: %v", seen(sub.Messages()))
	}

	// A late subscriber is handed the retained state, which must match
	// its schema too.
	late := brokertest.Subscribe(t, brokerURL, all)
	if !await(5*time.Second, func() bool { return seenAll(late.Messages(), []string{"status offline"}) }) {
		t.Errorf("a late subscriber got no retained offline status; seen: %v", seen(late.Messages()))
	}
	for _, m := range late.Messages() {
		if !m.Retained {
			t.Errorf("late subscriber got a live message on %s after the agent stopped: %s", m.Topic, m.Payload)
		}
	}
	msgs := append(sub.Messages(), late.Messages()...)

	byKind := map[schematest.Kind][]brokertest.Message{}
	for _, m := range msgs {
		k, ok := schematest.KindOf(m.Topic)
		if !ok {
			t.Errorf("message on a topic with no schema: %s: %s", m.Topic, m.Payload)
			continue
		}
		byKind[k] = append(byKind[k], m)
	}
	for _, k := range schematest.Kinds {
		ms := byKind[k]
		if len(ms) == 0 {
			continue // config acks and pushes: none in this run
		}
		t.Run(string(k), func(t *testing.T) {
			t.Logf("%d messages on %s, e.g. %s", len(ms), ms[0].Topic, ms[0].Payload)
			const show = 3
			bad := 0
			for _, m := range ms {
				if err := schematest.Check(k, m.Payload); err != nil {
					if bad < show {
						t.Errorf("message on %s does not match schemas/%s: %v\npayload: %s", m.Topic, k.File(), err, m.Payload)
					}
					bad++
				}
			}
			if bad > show {
				t.Errorf("... %d of %d %s messages do not match in all", bad, len(ms), k)
			}
		})
	}
}

// event names what a message is, for the checklist: "alert raised",
// "summaries", "status offline", or the topic's kind.
func event(m brokertest.Message) string {
	k, ok := schematest.KindOf(m.Topic)
	if !ok {
		return m.Topic
	}
	var f struct{ State string }
	json.Unmarshal(m.Payload, &f)
	switch k {
	case schematest.Alert:
		return "alert " + f.State
	case schematest.Summary:
		return "summaries"
	case schematest.Status:
		return "status " + f.State
	}
	return string(k)
}

// seen counts the messages by event.
func seen(ms []brokertest.Message) map[string]int {
	n := map[string]int{}
	for _, m := range ms {
		n[event(m)]++
	}
	return n
}

func seenAll(ms []brokertest.Message, events []string) bool {
	n := seen(ms)
	for _, e := range events {
		if n[e] == 0 {
			return false
		}
	}
	return true
}
