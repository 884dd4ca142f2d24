package buffer_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
)

// TestOutboxSuite runs the conformance suite against the bbolt outbox, each
// subtest on a fresh file.
func TestOutboxSuite(t *testing.T) {
	runOutboxSuite(t, func(t *testing.T) *buffer.Outbox {
		return openAt(t, tempPath(t), 1000)
	})
}

// runOutboxSuite is the behaviour every outbox must have. open returns an
// empty outbox with room for at least 100 records, closed when t ends; it
// may be called inside a synctest bubble.
func runOutboxSuite(t *testing.T, open func(t *testing.T) *buffer.Outbox) {
	t.Run("AppendReturnsIncreasingSeqs", func(t *testing.T) {
		o := open(t)
		var all []uint64
		all = append(all, mustAppend(t, o, alert("a"))...)
		all = append(all, mustAppend(t, o, summary("s"), alert("a"), summary("s"))...)
		all = append(all, mustAppend(t, o, summary("s"))...)
		for i := 1; i < len(all); i++ {
			if all[i] <= all[i-1] {
				t.Fatalf("sequence numbers not increasing: %v", all)
			}
		}
		if all[0] == 0 {
			t.Errorf("first sequence number is 0; 0 must never be assigned")
		}
		if got := o.Len(); got != 5 {
			t.Errorf("Len = %d, want 5", got)
		}
		st := o.Stats()
		if st.Appended != 5 || st.Backlog != [2]int{2, 3} {
			t.Errorf("Stats = %+v, want Appended 5, Backlog [2 3]", st)
		}
	})

	t.Run("AppendNothing", func(t *testing.T) {
		o := open(t)
		seqs, err := o.Append()
		if err != nil || len(seqs) != 0 {
			t.Fatalf("Append() = %v, %v; want no seqs, no error", seqs, err)
		}
		if o.Len() != 0 {
			t.Errorf("Len = %d after an empty Append", o.Len())
		}
	})

	t.Run("TakeAlertsFirstOldestFirst", func(t *testing.T) {
		o := open(t)
		s1 := mustAppend(t, o, summary("s/1"))[0]
		a2 := mustAppend(t, o, alert("a/2"))[0]
		s3 := mustAppend(t, o, summary("s/3"))[0]
		a4 := mustAppend(t, o, alert("a/4"))[0]

		msgs := takeNow(t, o, 10)
		wantSeqs(t, msgs, a2, a4, s1, s3)
		for _, m := range msgs {
			want := emberwatch.ClassSummary
			if m.Seq == a2 || m.Seq == a4 {
				want = emberwatch.ClassAlert
			}
			if m.Class != want {
				t.Errorf("seq %d: class %v, want %v", m.Seq, m.Class, want)
			}
		}
		if msgs[0].Topic != "a/2" || msgs[3].Topic != "s/3" {
			t.Errorf("topics = %q, %q; want a/2, s/3", msgs[0].Topic, msgs[3].Topic)
		}
	})

	t.Run("TakeRespectsMax", func(t *testing.T) {
		o := open(t)
		seqs := mustAppend(t, o, summary("s"), summary("s"), summary("s"), alert("a"), summary("s"))
		// alerts first: seqs[3], then the summaries in order.
		wantSeqs(t, takeNow(t, o, 2), seqs[3], seqs[0])
		wantSeqs(t, takeNow(t, o, 2), seqs[1], seqs[2])
		wantSeqs(t, takeNow(t, o, 2), seqs[4])
	})

	t.Run("NewAlertOvertakesTakenSummaries", func(t *testing.T) {
		o := open(t)
		s := mustAppend(t, o, summary("s"), summary("s"), summary("s"))
		wantSeqs(t, takeNow(t, o, 1), s[0])
		a := mustAppend(t, o, alert("a"))[0]
		wantSeqs(t, takeNow(t, o, 2), a, s[1])
	})

	t.Run("TakeMarksRecordsTaken", func(t *testing.T) {
		o := open(t)
		seqs := mustAppend(t, o, alert("a"), summary("s"))
		wantSeqs(t, takeNow(t, o, 10), seqs...)
		if again := takeNow(t, o, 10); len(again) != 0 {
			t.Fatalf("second Take returned %v; taken records must not be handed out twice", seqsOf(again))
		}
		// Taken is not acknowledged: the records still count.
		if o.Len() != 2 {
			t.Errorf("Len = %d after Take, want 2", o.Len())
		}
		later := mustAppend(t, o, summary("s"))
		wantSeqs(t, takeNow(t, o, 10), later...)
	})

	t.Run("AckDeletes", func(t *testing.T) {
		o := open(t)
		seqs := mustAppend(t, o, alert("a"), summary("s"), summary("s"))
		wantSeqs(t, takeNow(t, o, 10), seqs[0], seqs[1], seqs[2])
		if err := o.Ack([]uint64{seqs[0], seqs[2]}); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		if o.Len() != 1 {
			t.Errorf("Len = %d after acking 2 of 3, want 1", o.Len())
		}
		st := o.Stats()
		if st.Acked != 2 || st.Backlog != [2]int{0, 1} {
			t.Errorf("Stats = %+v, want Acked 2, Backlog [0 1]", st)
		}
		// Acking again, or acking a number never assigned, changes nothing.
		if err := o.Ack([]uint64{seqs[0], 999_999}); err != nil {
			t.Fatalf("Ack of unknown seqs: %v", err)
		}
		if st := o.Stats(); st.Acked != 2 || o.Len() != 1 {
			t.Errorf("after acking unknown seqs: Acked %d, Len %d; want 2, 1", st.Acked, o.Len())
		}
		if err := o.Ack(nil); err != nil {
			t.Errorf("Ack(nil): %v", err)
		}
		// Acked records are gone for good: releasing them brings nothing back.
		if err := o.Release(seqs); err != nil {
			t.Fatalf("Release: %v", err)
		}
		wantSeqs(t, takeNow(t, o, 10), seqs[1])
	})

	t.Run("ReleaseRequeuesInOrder", func(t *testing.T) {
		o := open(t)
		seqs := mustAppend(t, o, summary("s"), alert("a"), summary("s"), alert("a"))
		wantSeqs(t, takeNow(t, o, 10), seqs[1], seqs[3], seqs[0], seqs[2])
		// Release out of order; they come back in queue order.
		if err := o.Release([]uint64{seqs[2], seqs[3], seqs[0]}); err != nil {
			t.Fatalf("Release: %v", err)
		}
		wantSeqs(t, takeNow(t, o, 10), seqs[3], seqs[0], seqs[2])
		if again := takeNow(t, o, 10); len(again) != 0 {
			t.Fatalf("records taken twice after one Release: %v", seqsOf(again))
		}
		// Released records come before newer ones of their class.
		newer := mustAppend(t, o, summary("s"))[0]
		if err := o.Release([]uint64{seqs[0]}); err != nil {
			t.Fatalf("Release: %v", err)
		}
		wantSeqs(t, takeNow(t, o, 10), seqs[0], newer)
		if o.Len() != 5 {
			t.Errorf("Len = %d, want 5: Release must not delete", o.Len())
		}
	})

	t.Run("TakeBlocksUntilAppend", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o := open(t)
			ctx, cancel := context.WithTimeout(t.Context(), time.Hour) // safety bound, in bubble time
			defer cancel()
			got := make(chan takeResult, 1)
			go func() {
				msgs, err := o.Take(ctx, 10)
				got <- takeResult{msgs, err}
			}()
			synctest.Wait() // Take is now durably blocked
			select {
			case r := <-got:
				t.Fatalf("Take on an empty outbox returned %v, %v without waiting", seqsOf(r.msgs), r.err)
			default:
			}
			seq := mustAppend(t, o, summary("s"))[0]
			r := <-got
			if r.err != nil {
				t.Fatalf("Take: %v", r.err)
			}
			wantSeqs(t, r.msgs, seq)
		})
	})

	t.Run("TakeBlocksUntilRelease", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o := open(t)
			seq := mustAppend(t, o, alert("a"))[0]
			wantSeqs(t, takeNow(t, o, 10), seq)
			got := make(chan takeResult, 1)
			go func() {
				msgs, err := o.Take(t.Context(), 10)
				got <- takeResult{msgs, err}
			}()
			synctest.Wait()
			select {
			case r := <-got:
				t.Fatalf("Take with every record taken returned %v, %v without waiting", seqsOf(r.msgs), r.err)
			default:
			}
			if err := o.Release([]uint64{seq}); err != nil {
				t.Fatalf("Release: %v", err)
			}
			r := <-got
			if r.err != nil {
				t.Fatalf("Take: %v", r.err)
			}
			wantSeqs(t, r.msgs, seq)
		})
	})

	t.Run("TakeReturnsCtxErr", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o := open(t)
			ctx, cancel := context.WithCancel(t.Context())
			got := make(chan takeResult, 1)
			go func() {
				msgs, err := o.Take(ctx, 10)
				got <- takeResult{msgs, err}
			}()
			synctest.Wait()
			cancel()
			if r := <-got; !errors.Is(r.err, context.Canceled) || len(r.msgs) != 0 {
				t.Fatalf("Take after cancel = %v, %v; want no records, context.Canceled", seqsOf(r.msgs), r.err)
			}

			ctx, cancel = context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			msgs, err := o.Take(ctx, 10) // the bubble's clock jumps to the deadline
			if !errors.Is(err, context.DeadlineExceeded) || len(msgs) != 0 {
				t.Fatalf("Take past deadline = %v, %v; want no records, context.DeadlineExceeded", seqsOf(msgs), err)
			}
		})
	})

	t.Run("EncodeGetsAppendSeq", func(t *testing.T) {
		o := open(t)
		var encoded []uint64
		enc := func(seq uint64) ([]byte, error) {
			encoded = append(encoded, seq)
			return payloadFor("t", seq), nil
		}
		seqs := mustAppend(t, o,
			buffer.Pending{Class: emberwatch.ClassAlert, Topic: "t", Encode: enc},
			buffer.Pending{Class: emberwatch.ClassSummary, Topic: "t", Encode: enc},
			buffer.Pending{Class: emberwatch.ClassAlert, Topic: "t", Encode: enc},
		)
		if !slices.Equal(encoded, seqs) {
			t.Fatalf("Encode saw seqs %v, Append returned %v", encoded, seqs)
		}
		// The stored payload is what Encode returned for that seq.
		wantSeqs(t, takeNow(t, o, 10), seqs[0], seqs[2], seqs[1])
	})

	t.Run("EncodeErrorStoresNothing", func(t *testing.T) {
		o := open(t)
		before := mustAppend(t, o, alert("a"))[0]
		boom := errors.New("boom")
		_, err := o.Append(
			summary("s"),
			buffer.Pending{Class: emberwatch.ClassSummary, Topic: "t", Encode: func(uint64) ([]byte, error) { return nil, boom }},
			alert("a"),
		)
		if !errors.Is(err, boom) {
			t.Fatalf("Append with a failing Encode: err = %v, want it to wrap %v", err, boom)
		}
		if o.Len() != 1 {
			t.Errorf("Len = %d after a failed Append, want 1 (nothing of the batch stored)", o.Len())
		}
		if st := o.Stats(); st.Appended != 1 || st.Backlog != [2]int{1, 0} {
			t.Errorf("Stats = %+v after a failed Append, want Appended 1, Backlog [1 0]", st)
		}
		wantSeqs(t, takeNow(t, o, 10), before)
		after := mustAppend(t, o, summary("s"))[0]
		if after <= before {
			t.Errorf("seq after a failed Append = %d, not above %d", after, before)
		}
		wantSeqs(t, takeNow(t, o, 10), after)
	})

	t.Run("AppendedRecordsAreDelivered", func(t *testing.T) {
		// Whatever Append accepts, Take must hand out: "a crash or a power
		// cut loses nothing that Append returned for", and neither may the
		// outbox itself. Rejecting a bad topic up front would also do.
		for _, topic := range []string{"emberwatch/d1/alerts", "", "emberwatch/+/alerts", "emberwatch/#", "nul\x00byte"} {
			o := open(t)
			seqs, err := o.Append(alert(topic))
			if err != nil {
				continue // rejected at the door: fine
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			msgs, err := o.Take(ctx, 10)
			if len(msgs) != 1 || msgs[0].Seq != seqs[0] || msgs[0].Topic != topic {
				t.Errorf("topic %q: Append accepted it as seq %v, but Take returned %v, %v (Stats.Corrupt = %d); the record was dropped",
					topic, seqs, seqsOf(msgs), err, o.Stats().Corrupt)
			}
		}
	})

	t.Run("ChangedSignals", func(t *testing.T) {
		o := open(t)
		var seq uint64
		for _, step := range []struct {
			name string
			do   func() error
		}{
			{"Append", func() error {
				seqs, err := o.Append(alert("a"))
				if err == nil {
					seq = seqs[0]
				}
				return err
			}},
			{"Release", func() error {
				if _, err := o.Take(context.Background(), 1); err != nil {
					return err
				}
				return o.Release([]uint64{seq})
			}},
			{"Ack", func() error { return o.Ack([]uint64{seq}) }},
		} {
			ch := o.Changed()
			select {
			case <-ch:
				t.Fatalf("before %s: Changed is already closed", step.name)
			default:
			}
			if err := step.do(); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
			select {
			case <-ch:
			default:
				t.Errorf("%s did not close the Changed channel", step.name)
			}
		}
	})

	t.Run("AfterClose", func(t *testing.T) {
		o := open(t)
		seqs := mustAppend(t, o, alert("a"))
		if err := o.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := o.Close(); err != nil {
			t.Errorf("second Close: %v, want nil", err)
		}
		if _, err := o.Append(alert("a")); !errors.Is(err, buffer.ErrClosed) {
			t.Errorf("Append after Close: %v, want ErrClosed", err)
		}
		if _, err := o.Take(context.Background(), 1); !errors.Is(err, buffer.ErrClosed) {
			t.Errorf("Take after Close: %v, want ErrClosed", err)
		}
		if err := o.Ack(seqs); !errors.Is(err, buffer.ErrClosed) {
			t.Errorf("Ack after Close: %v, want ErrClosed", err)
		}
		if err := o.Release(seqs); !errors.Is(err, buffer.ErrClosed) {
			t.Errorf("Release after Close: %v, want ErrClosed", err)
		}
	})

	t.Run("CloseUnblocksTake", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o := open(t)
			got := make(chan takeResult, 1)
			go func() {
				msgs, err := o.Take(t.Context(), 10)
				got <- takeResult{msgs, err}
			}()
			synctest.Wait()
			if err := o.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if r := <-got; !errors.Is(r.err, buffer.ErrClosed) || len(r.msgs) != 0 {
				t.Fatalf("blocked Take after Close = %v, %v; want ErrClosed", seqsOf(r.msgs), r.err)
			}
		})
	})
}

type takeResult struct {
	msgs []emberwatch.Message
	err  error
}
