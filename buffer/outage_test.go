package buffer_test

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
)

// TestLongOutage appends a million records while nothing drains (the link
// is down), then drains them as the uplink would: every record comes out
// exactly once, alerts before any summary, oldest first within a class.
func TestLongOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("a million records")
	}
	const n = 1_000_000
	o, err := buffer.Open(buffer.Config{Path: tempPath(t), MaxRecords: 2 * n, MaxBytes: 2 << 30}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	payload := make([]byte, 200)
	batch := make([]buffer.Pending, 1000)
	for i := range batch {
		c := emberwatch.ClassSummary
		if i%10 == 0 {
			c = emberwatch.ClassAlert
		}
		batch[i] = buffer.Pending{Class: c, Topic: "emberwatch/dev/x", Encode: func(uint64) ([]byte, error) { return payload, nil }}
	}
	// Keep a few appends in flight, as the agent's stages would.
	var inflight []*buffer.Appending
	for range n / len(batch) {
		inflight = append(inflight, o.AppendAsync(batch...))
		if len(inflight) == 8 {
			for _, a := range inflight {
				if _, err := a.Wait(); err != nil {
					t.Fatal(err)
				}
			}
			inflight = inflight[:0]
		}
	}
	for _, a := range inflight {
		if _, err := a.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if o.Len() != n {
		t.Fatalf("backlog %d, want %d", o.Len(), n)
	}

	seen := make([]bool, n+1)
	var lastAlert, lastSummary uint64
	summaries := false
	ctx := context.Background()
	for drained := 0; drained < n; {
		msgs, err := o.Take(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		seqs := make([]uint64, len(msgs))
		for i, m := range msgs {
			if m.Seq == 0 || m.Seq > n || seen[m.Seq] {
				t.Fatalf("seq %d out of range or delivered twice", m.Seq)
			}
			seen[m.Seq] = true
			switch m.Class {
			case emberwatch.ClassAlert:
				if summaries {
					t.Fatalf("alert %d after a summary", m.Seq)
				}
				if m.Seq <= lastAlert {
					t.Fatalf("alert %d after alert %d", m.Seq, lastAlert)
				}
				lastAlert = m.Seq
			default:
				summaries = true
				if m.Seq <= lastSummary {
					t.Fatalf("summary %d after summary %d", m.Seq, lastSummary)
				}
				lastSummary = m.Seq
			}
			seqs[i] = m.Seq
		}
		if err := o.Ack(seqs); err != nil {
			t.Fatal(err)
		}
		drained += len(msgs)
	}
	for s := 1; s <= n; s++ {
		if !seen[s] {
			t.Fatalf("seq %d never delivered", s)
		}
	}
	if o.Len() != 0 {
		t.Fatalf("backlog %d after the drain", o.Len())
	}
	st := o.Stats()
	if st.Evicted != [2]uint64{} || st.Appended != n || st.Acked != n {
		t.Fatalf("stats %+v", st)
	}
}
