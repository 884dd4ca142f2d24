package uplink_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
	"github.com/emberwatch/emberwatch/internal/brokertest"
	"github.com/emberwatch/emberwatch/uplink"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, brokertest.IgnorePahoDisconnect)
}

func logger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}

// brokers runs f against the embedded broker and against Mosquitto.
func brokers(t *testing.T, f func(t *testing.T, url string)) {
	t.Run("mochi", func(t *testing.T) {
		b, err := uplink.StartBroker("127.0.0.1:0", logger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		f(t, b.URL())
	})
	t.Run("mosquitto", func(t *testing.T) {
		f(t, brokertest.StartMosquitto(t).URL())
	})
}

func openOutbox(t *testing.T) *buffer.Outbox {
	t.Helper()
	box, err := buffer.Open(buffer.Config{Path: t.TempDir() + "/outbox.db", MaxRecords: 1_000_000}, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { box.Close() })
	return box
}

// appendN appends n messages of class c whose payload is their seq.
func appendN(t *testing.T, box *buffer.Outbox, c emberwatch.Class, topic string, n int) {
	t.Helper()
	msgs := make([]buffer.Pending, n)
	for i := range msgs {
		msgs[i] = buffer.Pending{Class: c, Topic: topic, Encode: func(seq uint64) ([]byte, error) {
			return []byte(strconv.FormatUint(seq, 10)), nil
		}}
	}
	if _, err := box.Append(msgs...); err != nil {
		t.Fatal(err)
	}
}

func testConfig(url string) uplink.Config {
	c := uplink.Config{URL: url, ClientID: fmt.Sprintf("uplink-test-%d", time.Now().UnixNano()), BackoffMin: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond}
	c.Normalize()
	return c
}

func await(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

type running struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	err    error
}

func start(up *uplink.Uplink) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.err = up.Run(ctx)
	}()
	return r
}

func (r *running) stop(t *testing.T) {
	r.cancel()
	r.wg.Wait()
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
}

// TestDrainsBacklogAlertsFirst appends a backlog of summaries and alerts,
// then starts the uplink: every record arrives once, alerts before
// summaries, and the outbox empties.
func TestDrainsBacklogAlertsFirst(t *testing.T) {
	brokers(t, func(t *testing.T, url string) {
		box := openOutbox(t)
		appendN(t, box, emberwatch.ClassSummary, "dev/summaries", 1500)
		appendN(t, box, emberwatch.ClassAlert, "dev/alerts", 500)
		sub := brokertest.Subscribe(t, url, "dev/+")
		status := uplink.Status{Topic: "dev/status", Online: func() []byte { return []byte("online") }, Offline: func() []byte { return []byte("offline") }}
		statusSub := brokertest.Subscribe(t, url, "dev/status")
		r := start(uplink.New(testConfig(url), box, status, logger(t)))

		if !await(30*time.Second, func() bool { return len(sub.Messages()) >= 2000 }) {
			t.Fatalf("received %d of 2000", len(sub.Messages()))
		}
		if !await(5*time.Second, func() bool { return box.Len() == 0 }) {
			t.Fatalf("outbox still holds %d records after delivery", box.Len())
		}
		r.stop(t)

		seen := map[string]bool{}
		alertsDone := false
		var got []brokertest.Message
		for _, m := range sub.Messages() {
			if m.Topic == "dev/status" {
				continue
			}
			got = append(got, m)
		}
		for i, m := range got {
			if seen[string(m.Payload)] {
				t.Fatalf("seq %s delivered twice with the broker up", m.Payload)
			}
			seen[string(m.Payload)] = true
			switch m.Topic {
			case "dev/alerts":
				if alertsDone {
					t.Fatalf("alert %s arrived after a summary (message %d)", m.Payload, i)
				}
			case "dev/summaries":
				alertsDone = true
			}
		}
		if len(seen) != 2000 {
			t.Fatalf("%d distinct records, want 2000", len(seen))
		}
		if !await(5*time.Second, func() bool { return len(statusSub.Messages()) >= 2 }) {
			t.Fatalf("status messages: %v", statusSub.Messages())
		}
		st := statusSub.Messages()
		if string(st[0].Payload) != "online" || string(st[len(st)-1].Payload) != "offline" {
			t.Fatalf("status went %q ... %q, want online ... offline", st[0].Payload, st[len(st)-1].Payload)
		}
	})
}

// TestDeliversAfterBrokerComesBack starts the uplink while the broker is
// down; the backlog waits in the outbox and is delivered once it is up.
func TestDeliversAfterBrokerComesBack(t *testing.T) {
	m := brokertest.StartMosquitto(t)
	m.Stop()
	box := openOutbox(t)
	r := start(uplink.New(testConfig(m.URL()), box, uplink.Status{}, logger(t)))
	defer r.stop(t)
	appendN(t, box, emberwatch.ClassAlert, "dev/alerts", 100)
	if box.Len() != 100 {
		t.Fatalf("outbox holds %d, want 100 while the broker is down", box.Len())
	}
	m.Start()
	sub := brokertest.Subscribe(t, m.URL(), "dev/alerts")
	appendN(t, box, emberwatch.ClassAlert, "dev/alerts", 100)
	if !await(30*time.Second, func() bool { return box.Len() == 0 }) {
		t.Fatalf("outbox still holds %d records", box.Len())
	}
	// The first 100 may have reached the broker before the subscriber
	// did; the second 100 must all arrive.
	if !await(10*time.Second, func() bool { return len(sub.Messages()) >= 100 }) {
		t.Fatalf("subscriber got %d messages", len(sub.Messages()))
	}
}

// TestBadCredentialsFileIsAnError checks that a config that can never
// connect stops Run with a clear error instead of retrying forever.
func TestBadCredentialsFileIsAnError(t *testing.T) {
	box := openOutbox(t)
	cfg := testConfig("tcp://127.0.0.1:1")
	cfg.Username = "u"
	cfg.PasswordFile = t.TempDir() + "/missing"
	err := uplink.New(cfg, box, uplink.Status{}, logger(t)).Run(context.Background())
	if err == nil {
		t.Fatal("Run with an unreadable password file returned nil")
	}
	t.Log(err)
}
