package buffer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
)

// TestMain checks that no test leaves a goroutine behind. When the test
// binary is started as the crash child (see TestCrashLosesNothingAppended),
// it appends forever instead of running the tests.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		os.Exit(runCrashChild(path))
	}
	goleak.VerifyTestMain(m)
}

// testLogger routes the outbox's log lines to t.Log.
func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).With().Timestamp().Logger()
}

// tempPath returns the path of an outbox file in a fresh temporary folder.
func tempPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "outbox.db")
}

// openAt opens the outbox at path and closes it when the test ends.
func openAt(t testing.TB, path string, maxRecords int) *buffer.Outbox {
	t.Helper()
	o, err := buffer.Open(buffer.Config{Path: path, MaxRecords: maxRecords}, testLogger(t))
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := o.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return o
}

// payloadFor is the payload pending() encodes: it carries the sequence
// number, as the agent's real payloads do.
func payloadFor(topic string, seq uint64) []byte {
	return fmt.Appendf(nil, `{"topic":%q,"seq":%d}`, topic, seq)
}

// pending is a message whose payload carries its sequence number.
func pending(class emberwatch.Class, topic string) buffer.Pending {
	return buffer.Pending{Class: class, Topic: topic, Encode: func(seq uint64) ([]byte, error) {
		return payloadFor(topic, seq), nil
	}}
}

func alert(topic string) buffer.Pending   { return pending(emberwatch.ClassAlert, topic) }
func summary(topic string) buffer.Pending { return pending(emberwatch.ClassSummary, topic) }

// mustAppend appends msgs and returns their sequence numbers.
func mustAppend(t testing.TB, o *buffer.Outbox, msgs ...buffer.Pending) []uint64 {
	t.Helper()
	seqs, err := o.Append(msgs...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(seqs) != len(msgs) {
		t.Fatalf("Append of %d messages returned %d sequence numbers", len(msgs), len(seqs))
	}
	return seqs
}

// takeNow takes up to max records without waiting: with a context that has
// already ended, Take returns what is available or, if nothing is,
// context.Canceled.
func takeNow(t testing.TB, o *buffer.Outbox, max int) []emberwatch.Message {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	msgs, err := o.Take(ctx, max)
	switch {
	case err == nil && len(msgs) == 0:
		t.Fatalf("Take returned no records and no error")
	case err != nil && !errors.Is(err, context.Canceled):
		t.Fatalf("Take: %v", err)
	case err != nil && len(msgs) > 0:
		t.Fatalf("Take returned %d records and error %v", len(msgs), err)
	}
	return msgs
}

func seqsOf(msgs []emberwatch.Message) []uint64 {
	s := make([]uint64, len(msgs))
	for i, m := range msgs {
		s[i] = m.Seq
	}
	return s
}

// wantSeqs fails the test unless msgs carry exactly the sequence numbers
// want, in that order, each with the payload pending() encoded for it.
func wantSeqs(t testing.TB, msgs []emberwatch.Message, want ...uint64) {
	t.Helper()
	if got := seqsOf(msgs); !slices.Equal(got, want) {
		t.Fatalf("took seqs %v, want %v", got, want)
	}
	for _, m := range msgs {
		if p := payloadFor(m.Topic, m.Seq); string(m.Payload) != string(p) {
			t.Errorf("seq %d: payload %q, want %q", m.Seq, m.Payload, p)
		}
	}
}
