package buffer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
)

// TestConcurrentAppendTakeAck has several writers append while one consumer
// takes and acks; every appended seq must be taken exactly once. Run with
// -race.
func TestConcurrentAppendTakeAck(t *testing.T) {
	const writers, perWriter = 4, 40
	o := openAt(t, tempPath(t), 1_000_000)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // safety bound
	defer cancel()

	appended := make(chan []uint64, writers*perWriter)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				class := emberwatch.Class(i % 2)
				seqs, err := o.Append(pending(class, fmt.Sprintf("w%d", w)))
				if err != nil {
					t.Errorf("writer %d: Append: %v", w, err)
					return
				}
				appended <- seqs
			}
		})
	}

	taken := map[uint64]int{}
	consumed := make(chan error, 1)
	go func() {
		for len(taken) < writers*perWriter {
			msgs, err := o.Take(ctx, 7)
			if err != nil {
				consumed <- fmt.Errorf("Take after %d records: %w", len(taken), err)
				return
			}
			for _, m := range msgs {
				taken[m.Seq]++
				if string(m.Payload) != string(payloadFor(m.Topic, m.Seq)) {
					consumed <- fmt.Errorf("seq %d: payload %q does not match", m.Seq, m.Payload)
					return
				}
			}
			if err := o.Ack(seqsOf(msgs)); err != nil {
				consumed <- fmt.Errorf("Ack: %w", err)
				return
			}
		}
		consumed <- nil
	}()

	wg.Wait()
	close(appended)
	if err := <-consumed; err != nil {
		t.Fatal(err)
	}
	want := map[uint64]bool{}
	for seqs := range appended {
		for _, s := range seqs {
			if want[s] {
				t.Errorf("seq %d returned by two Appends", s)
			}
			want[s] = true
		}
	}
	if len(want) != writers*perWriter {
		t.Fatalf("%d distinct seqs appended, want %d", len(want), writers*perWriter)
	}
	for s, n := range taken {
		if n != 1 {
			t.Errorf("seq %d taken %d times", s, n)
		}
		if !want[s] {
			t.Errorf("seq %d taken but never appended", s)
		}
	}
	for s := range want {
		if taken[s] == 0 {
			t.Errorf("seq %d appended but never taken", s)
		}
	}
	st := o.Stats()
	if o.Len() != 0 || st.Acked != writers*perWriter || st.Appended != writers*perWriter {
		t.Errorf("at the end: Len %d, Stats %+v; want Len 0, Appended = Acked = %d", o.Len(), st, writers*perWriter)
	}
}

// TestConcurrentConsumers has two consumers take from one outbox while a
// writer appends; between them they see every record once.
func TestConcurrentConsumers(t *testing.T) {
	const n = 120
	o := openAt(t, tempPath(t), 1_000_000)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	var mu sync.Mutex
	taken := map[uint64]int{}
	total := 0
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				mu.Lock()
				done := total >= n
				mu.Unlock()
				if done {
					return
				}
				msgs, err := o.Take(ctx, 5)
				if err != nil {
					if !errors.Is(err, buffer.ErrClosed) {
						t.Errorf("Take: %v", err)
					}
					return
				}
				mu.Lock()
				for _, m := range msgs {
					taken[m.Seq]++
				}
				total += len(msgs)
				mu.Unlock()
				if err := o.Ack(seqsOf(msgs)); err != nil {
					t.Errorf("Ack: %v", err)
					return
				}
			}
		})
	}
	for i := range n / 2 {
		mustAppend(t, o, alert(fmt.Sprint(i)), summary(fmt.Sprint(i)))
	}
	// Wait until the consumers have seen n records, then close to release
	// whichever of them is blocked in Take.
	// Wait until all n are acked. Changed is fetched before the counter is
	// read: an Ack after the read closes it, one before is seen by the read.
	for {
		changed := o.Changed()
		seen := o.Stats().Acked
		if seen >= n {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("consumers acked %d of %d records", seen, n)
		}
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if total != n || len(taken) != n {
		t.Fatalf("consumers took %d records, %d distinct; want %d", total, len(taken), n)
	}
	for s, c := range taken {
		if c != 1 {
			t.Errorf("seq %d taken %d times", s, c)
		}
	}
}
