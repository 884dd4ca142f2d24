package buffer_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
)

// openConfigured opens an outbox with cfg and closes it when the test ends.
// Inside a synctest bubble the close runs in the bubble too.
func openConfigured(t testing.TB, cfg buffer.Config) *buffer.Outbox {
	t.Helper()
	o, err := buffer.Open(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Open(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := o.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return o
}

// sizedMsg is a message with a payload of n bytes that says what it is: the
// sequence number, then the length, then filler derived from the number.
func sizedMsg(class emberwatch.Class, n int) buffer.Pending {
	topic := "emberwatch/caps/" + class.String()
	return buffer.Pending{Class: class, Topic: topic, Encode: func(seq uint64) ([]byte, error) {
		return sizedPayload(seq, n), nil
	}}
}

func sizedPayload(seq uint64, n int) []byte {
	p := make([]byte, n)
	binary.BigEndian.PutUint64(p, seq)
	binary.BigEndian.PutUint32(p[8:], uint32(n))
	for i := 12; i < n; i++ {
		p[i] = byte(seq) + byte(i)
	}
	return p
}

// checkSized fails t unless every message carries the payload sizedMsg()
// encoded for its sequence number.
func checkSized(t testing.TB, msgs []emberwatch.Message) {
	t.Helper()
	for _, m := range msgs {
		if len(m.Payload) < 12 {
			t.Fatalf("seq %d: payload of %d bytes, shorter than its header", m.Seq, len(m.Payload))
		}
		n := int(binary.BigEndian.Uint32(m.Payload[8:]))
		if want := sizedPayload(m.Seq, n); string(m.Payload) != string(want) {
			t.Fatalf("seq %d: payload of %d bytes does not match what was appended for it (%d bytes)", m.Seq, len(m.Payload), n)
		}
	}
}

// randomSizedBatch is 1 to 50 messages of 100 B to 4 KiB, one in five an alert,
// and the sum of their payload sizes.
func randomSizedBatch(rng *rand.Rand) ([]buffer.Pending, int64) {
	batch := make([]buffer.Pending, 1+rng.IntN(50))
	var size int64
	for i := range batch {
		class := emberwatch.ClassSummary
		if rng.IntN(5) == 0 {
			class = emberwatch.ClassAlert
		}
		n := 100 + rng.IntN(4096-100+1)
		batch[i] = sizedMsg(class, n)
		size += int64(n)
	}
	return batch, size
}

func sumClasses[T int | int64 | uint64](xs [2]T) T { return xs[0] + xs[1] }

// capChecker checks the byte cap's promises after every operation.
type capChecker struct {
	t        *testing.T
	o        *buffer.Outbox
	path     string
	maxBytes int64
	maxFile  int64 // the largest file seen
	evicted0 uint64
	// compactions as last seen, and when (on the bubble's clock) the
	// count last changed.
	compactions uint64
	compactedAt time.Time
}

// fileMargin is what the file may exceed MaxBytes by: bbolt's 1 MiB
// allocation step plus one commit's worth of new pages.
const fileMargin = 2 << 20

func (c *capChecker) check(step string) buffer.Stats {
	c.t.Helper()
	st := c.o.Stats()
	if b := sumClasses(st.BacklogBytes); b > c.maxBytes/2 {
		c.t.Fatalf("%s: BacklogBytes %v = %d, above MaxBytes/2 = %d", step, st.BacklogBytes, b, c.maxBytes/2)
	}
	fi, err := os.Stat(c.path)
	if err != nil {
		c.t.Fatal(err)
	}
	if fi.Size() != st.FileBytes {
		c.t.Errorf("%s: Stats.FileBytes = %d, os.Stat says %d", step, st.FileBytes, fi.Size())
	}
	if fi.Size() > c.maxBytes+fileMargin {
		c.t.Fatalf("%s: file is %d bytes (%.2f MiB), above MaxBytes + 2 MiB = %d; backlog %d bytes in %v records, %d compactions",
			step, fi.Size(), float64(fi.Size())/(1<<20), c.maxBytes+fileMargin, sumClasses(st.BacklogBytes), st.Backlog, st.Compactions)
	}
	c.maxFile = max(c.maxFile, fi.Size())
	if st.Compactions != c.compactions {
		c.compactions, c.compactedAt = st.Compactions, time.Now()
	}
	// Past MaxBytes, the file is compacted at the next commit or ack
	// unless one was compacted less than a minute ago.
	if fi.Size() > c.maxBytes && (st.Compactions == 0 || time.Since(c.compactedAt) >= time.Minute) {
		c.t.Fatalf("%s: file is %d bytes, past MaxBytes %d, with %d compactions, the last %v ago", step, fi.Size(), c.maxBytes, st.Compactions, time.Since(c.compactedAt))
	}
	if st.Evicted[0] > c.evicted0 && st.Backlog[1] > 0 {
		c.t.Fatalf("%s: an alert was evicted (Evicted %v) while %d summaries remain", step, st.Evicted, st.Backlog[1])
	}
	c.evicted0 = st.Evicted[0]
	if got := st.Appended - st.Acked - sumClasses(st.Evicted) - sumClasses(st.Expired); got != uint64(c.o.Len()) || c.o.Len() != sumClasses(st.Backlog) {
		c.t.Fatalf("%s: Appended %d - Acked %d - Evicted %v - Expired %v = %d, but Len = %d, Backlog %v",
			step, st.Appended, st.Acked, st.Evicted, st.Expired, got, c.o.Len(), st.Backlog)
	}
	return st
}

// takeCheckAck takes up to n records, checks their payloads and acks them.
func takeCheckAck(t testing.TB, o *buffer.Outbox, n int) int {
	t.Helper()
	if o.Len() == 0 {
		return 0
	}
	msgs := takeNow(t, o, n)
	checkSized(t, msgs)
	if err := o.Ack(seqsOf(msgs)); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	return len(msgs)
}

// TestByteCapBoundsFile appends ten times the byte cap in records of
// random sizes and checks, after every Append, that the records stay within
// half the cap, the file within the cap plus bbolt's margin, and summaries
// go before alerts, and that a file past MaxBytes is compacted unless the
// last compaction was less than a minute ago. It runs in a synctest bubble:
// the first phase happens within one instant, as a burst does (so at most
// one compaction); the churn phase lets a second pass between operations.
// Compaction runs inside the commit or ack that finds the file too big, so
// a file past MaxBytes is seen only while compaction is rate-limited.
func TestByteCapBoundsFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxBytes = 4 << 20
		path := tempPath(t)
		o := openConfigured(t, buffer.Config{Path: path, MaxBytes: maxBytes, MaxRecords: 10_000_000, NoSync: true})
		c := &capChecker{t: t, o: o, path: path, maxBytes: maxBytes}
		rng := rand.New(rand.NewPCG(4, 2))

		var appendedBytes int64
		for i := 0; appendedBytes < 10*maxBytes; i++ {
			batch, size := randomSizedBatch(rng)
			mustAppend(t, o, batch...)
			appendedBytes += size
			c.check(fmt.Sprintf("burst append %d", i))
			if rng.IntN(10) == 0 {
				takeCheckAck(t, o, 1+rng.IntN(20))
				c.check(fmt.Sprintf("burst ack %d", i))
			}
		}
		st := c.check("after the burst")
		if sumClasses(st.Evicted) == 0 {
			t.Fatalf("nothing evicted after appending %d records past a %d byte cap", st.Appended, maxBytes)
		}
		t.Logf("burst: %d appended, evicted %v, acked %d, largest file %d bytes, %d compactions", st.Appended, st.Evicted, st.Acked, c.maxFile, st.Compactions)

		// Churn at the cap: the consumer keeps up with a second's worth of
		// appends each second.
		for i := range 600 {
			time.Sleep(time.Second)
			takeCheckAck(t, o, 1+rng.IntN(40))
			c.check(fmt.Sprintf("churn ack %d", i))
			batch, _ := randomSizedBatch(rng)
			mustAppend(t, o, batch...)
			c.check(fmt.Sprintf("churn append %d", i))
		}
		st = c.check("after the churn")
		t.Logf("churn: %d appended, evicted %v, acked %d, largest file %d bytes, %d compactions", st.Appended, st.Evicted, st.Acked, c.maxFile, st.Compactions)

		// Whatever the caps and compactions did, what is left is intact and
		// survives a reopen.
		left := o.Len()
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		o = openConfigured(t, buffer.Config{Path: path, MaxBytes: maxBytes, MaxRecords: 10_000_000})
		if o.Len() != left {
			t.Fatalf("Len after reopen = %d, want %d", o.Len(), left)
		}
		msgs := takeNow(t, o, left)
		checkSized(t, msgs)
		if len(msgs) != left {
			t.Fatalf("took %d records after reopen, want %d", len(msgs), left)
		}
	})
}

// TestCompactionShrinksFile leaves a file of ~20 MiB of free pages (a backlog
// drained under a larger cap), reopens it under a 4 MiB cap and checks that
// the next Append compacts it and that records and sequence numbers carry
// over.
func TestCompactionShrinksFile(t *testing.T) {
	path := tempPath(t)
	big := buffer.Config{Path: path, MaxBytes: 64 << 20, MaxRecords: 10_000_000, NoSync: true}
	o, err := buffer.Open(big, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for range 200 { // 200 × 50 × 2 KiB = 20 MiB
		batch := make([]buffer.Pending, 50)
		for i := range batch {
			batch[i] = sizedMsg(emberwatch.Class(i%2), 2000)
		}
		mustAppend(t, o, batch...)
	}
	for o.Len() > 0 {
		takeCheckAck(t, o, 1000)
	}
	last, err := o.LastSeq()
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < 20<<20 {
		t.Fatalf("the drained file is %d bytes; the test needs it above 20 MiB", fi.Size())
	}

	small := buffer.Config{Path: path, MaxBytes: 4 << 20, MaxRecords: 10_000_000}
	o = openConfigured(t, small)
	seqs := mustAppend(t, o, sizedMsg(emberwatch.ClassAlert, 300), sizedMsg(emberwatch.ClassSummary, 300))
	if seqs[0] != last+1 {
		t.Errorf("first seq after reopening = %d, want %d", seqs[0], last+1)
	}
	st := o.Stats()
	if st.Compactions != 1 {
		t.Fatalf("Compactions = %d after the first Append on a %d byte file with MaxBytes 4 MiB, want 1", st.Compactions, fi.Size())
	}
	if st.FileBytes > 1<<20 {
		t.Errorf("file is %d bytes after compaction (from %d), want under 1 MiB", st.FileBytes, fi.Size())
	}
	if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("compaction left %s.compact behind (%v)", path, err)
	}
	// The compacted file carries on: the counter, the records, new appends.
	more := mustAppend(t, o, sizedMsg(emberwatch.ClassSummary, 500))
	if more[0] != seqs[1]+1 {
		t.Errorf("seq after compaction = %d, want %d", more[0], seqs[1]+1)
	}
	msgs := takeNow(t, o, 10)
	checkSized(t, msgs)
	if got, want := seqsOf(msgs), []uint64{seqs[0], seqs[1], more[0]}; !slices.Equal(got, want) {
		t.Fatalf("took %v after compaction, want %v", got, want)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o = openConfigured(t, small)
	if o.Len() != 3 {
		t.Fatalf("Len after reopening the compacted file = %d, want 3", o.Len())
	}
	if next := mustAppend(t, o, sizedMsg(emberwatch.ClassAlert, 100)); next[0] != more[0]+1 {
		t.Errorf("seq after reopening the compacted file = %d, want %d", next[0], more[0]+1)
	}
	if st := o.Stats(); st.Compactions != 0 || st.MovedAside != "" {
		t.Errorf("reopened compacted file: Compactions %d, MovedAside %q; want 0, none", st.Compactions, st.MovedAside)
	}
}

func TestRejectNew(t *testing.T) {
	const max = 5
	o := openConfigured(t, buffer.Config{Path: tempPath(t), MaxRecords: max, WhenFull: buffer.RejectNew})
	var kept []uint64 // the accepted, unevicted records, in seq order
	kept = append(kept, mustAppend(t, o, summary("s"), summary("s"), summary("s"), summary("s"), summary("s"))...)

	wantFull := func(step string, msgs ...buffer.Pending) {
		t.Helper()
		before := o.Stats()
		seqs, err := o.Append(msgs...)
		if !errors.Is(err, buffer.ErrFull) {
			t.Fatalf("%s: Append = %v, %v; want an error wrapping ErrFull", step, seqs, err)
		}
		if seqs != nil {
			t.Errorf("%s: a rejected Append returned seqs %v", step, seqs)
		}
		after := o.Stats()
		var rejected [2]uint64
		for _, m := range msgs {
			rejected[m.Class]++
		}
		if after.Rejected[0]-before.Rejected[0] != rejected[0] || after.Rejected[1]-before.Rejected[1] != rejected[1] {
			t.Errorf("%s: Rejected went from %v to %v, want +%v", step, before.Rejected, after.Rejected, rejected)
		}
		if after.Backlog != before.Backlog || after.Appended != before.Appended {
			t.Errorf("%s: rejected Append changed Backlog %v -> %v, Appended %d -> %d", step, before.Backlog, after.Backlog, before.Appended, after.Appended)
		}
	}
	wantFull("one summary past the cap", summary("s"))
	wantFull("a batch of summaries past the cap", summary("s"), summary("s"), summary("s"))
	if o.Len() != max {
		t.Fatalf("Len = %d after rejected appends, want %d", o.Len(), max)
	}

	// An alert pushes out the oldest summary.
	a := mustAppend(t, o, alert("a"))
	kept = append(kept[1:], a...)
	if st := o.Stats(); st.Evicted != [2]uint64{0, 1} {
		t.Errorf("after an alert at the cap: Evicted %v, want [0 1]", st.Evicted)
	}
	// Four more alerts push out the other four.
	a = mustAppend(t, o, alert("a"), alert("a"), alert("a"), alert("a"))
	kept = append(kept[4:], a...)
	if st := o.Stats(); st.Evicted != [2]uint64{0, 5} || st.Backlog != [2]int{max, 0} {
		t.Errorf("alerts only: Evicted %v, Backlog %v; want [0 5], [5 0]", st.Evicted, st.Backlog)
	}
	// Nothing pushes out an alert.
	wantFull("an alert over alerts", alert("a"))
	wantFull("a summary over alerts", summary("s"))
	wantFull("two alerts over alerts", alert("a"), alert("a"))

	if st := o.Stats(); st.Rejected != [2]uint64{3, 5} || st.Evicted != [2]uint64{0, 5} {
		t.Errorf("Rejected = %v, Evicted %v; want [3 5], [0 5]", st.Rejected, st.Evicted)
	}
	wantSeqs(t, takeNow(t, o, 100), kept...)
}

// TestRejectNewRejectedAppendEvictsNothing: under reject_new an alert Append
// that does not fit even with every summary gone is refused, and a refused
// Append must leave the outbox as it was. The summaries it pushed out
// before being refused are gone for nothing.
func TestRejectNewRejectedAppendEvictsNothing(t *testing.T) {
	o := openConfigured(t, buffer.Config{Path: tempPath(t), MaxRecords: 3, WhenFull: buffer.RejectNew})
	kept := mustAppend(t, o, alert("a"), alert("a"), summary("s"))

	seqs, err := o.Append(alert("a"), alert("a")) // 4 alerts do not fit in 3
	if !errors.Is(err, buffer.ErrFull) {
		t.Fatalf("Append of 2 alerts over 2 alerts + 1 summary with MaxRecords 3 = %v, %v; want ErrFull", seqs, err)
	}
	st := o.Stats()
	if o.Len() != 3 || st.Evicted != [2]uint64{} {
		t.Errorf("after the refused Append: Len %d, Backlog %v, Evicted %v; want Len 3, nothing evicted (the summary is still wanted)", o.Len(), st.Backlog, st.Evicted)
	}
	wantSeqs(t, takeNow(t, o, 10), kept...)
}

// TestRejectNewMixedBatchOverAlerts: an Append of an alert and a summary to
// an outbox full of alerts is refused under reject_new. makeRoom first
// evicts the Append's own summary (the only summary there is) and then the
// refusal deletes the Append's records again and subtracts them from the
// backlog a second time: Backlog[summary] goes to -1, Evicted counts a
// record that was never stored, and the next summary then fits past the
// cap.
func TestRejectNewMixedBatchOverAlerts(t *testing.T) {
	const max = 3
	path := tempPath(t)
	cfg := buffer.Config{Path: path, MaxRecords: max, WhenFull: buffer.RejectNew}
	o := openConfigured(t, cfg)
	kept := mustAppend(t, o, alert("a"), alert("a"), alert("a"))

	seqs, err := o.Append(alert("a"), summary("s"))
	if !errors.Is(err, buffer.ErrFull) {
		t.Fatalf("Append(alert, summary) over %d alerts = %v, %v; want ErrFull", max, seqs, err)
	}
	st := o.Stats()
	if st.Backlog != [2]int{max, 0} || st.Evicted != [2]uint64{} || st.Rejected != [2]uint64{1, 1} {
		t.Errorf("after the refused Append: Backlog %v, Evicted %v, Rejected %v; want [3 0], [0 0], [1 1]", st.Backlog, st.Evicted, st.Rejected)
	}
	if seqs, err := o.Append(summary("s")); !errors.Is(err, buffer.ErrFull) {
		t.Errorf("Append(summary) to %d alerts with MaxRecords %d = %v, %v; want ErrFull", max, max, seqs, err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o = openConfigured(t, cfg)
	if o.Len() > max {
		t.Errorf("the file holds %d records with MaxRecords %d (Backlog %v)", o.Len(), max, o.Stats().Backlog)
	}
	msgs := takeNow(t, o, 10)
	if got := seqsOf(msgs); !slices.Equal(got[:min(len(got), max)], kept) {
		t.Errorf("took %v, want the alerts %v first", got, kept)
	}
}

// TestCompactionGetsUnderCap: a compaction must leave the file under
// MaxBytes, or it runs again every minute for nothing, each time rewriting
// the whole file while appends, takes and acks wait. With MaxBytes 3 MiB
// the 1.5 MiB of records compact to about 2 MiB of pages, but the new file
// is grown to the next power of two (4 MiB): compact() opens the copy with
// bbolt's default AllocSize (16 MiB), and below that bbolt grows a file to
// its whole mmap size.
func TestCompactionGetsUnderCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxBytes = 3 << 20
		path := tempPath(t)
		o := openConfigured(t, buffer.Config{Path: path, MaxBytes: maxBytes, MaxRecords: 10_000_000, NoSync: true})
		rng := rand.New(rand.NewPCG(3, 3))
		var compactions uint64
		for i := range 300 {
			batch, _ := randomSizedBatch(rng)
			mustAppend(t, o, batch...)
			if i%3 == 0 {
				takeCheckAck(t, o, 5)
			}
			st := o.Stats()
			if st.Compactions > compactions && st.FileBytes > maxBytes {
				t.Fatalf("append %d: compaction %d left a file of %d bytes, still over MaxBytes %d (backlog %d bytes)",
					i, st.Compactions, st.FileBytes, maxBytes, sumClasses(st.BacklogBytes))
			}
			compactions = st.Compactions
			time.Sleep(time.Second)
		}
	})
}

// TestRejectNewByteCap: the byte cap refuses under reject_new as the record
// cap does.
func TestRejectNewByteCap(t *testing.T) {
	const maxBytes = 1 << 20
	o := openConfigured(t, buffer.Config{Path: tempPath(t), MaxBytes: maxBytes, MaxRecords: 1_000_000, WhenFull: buffer.RejectNew, NoSync: true})
	var kept []uint64
	var err error
	for {
		var seqs []uint64
		seqs, err = o.Append(sizedMsg(emberwatch.ClassSummary, 4000), sizedMsg(emberwatch.ClassSummary, 4000))
		if err != nil {
			break
		}
		kept = append(kept, seqs...)
	}
	if !errors.Is(err, buffer.ErrFull) {
		t.Fatalf("Append past the byte cap: %v, want ErrFull", err)
	}
	st := o.Stats()
	if b := sumClasses(st.BacklogBytes); b > maxBytes/2 || b < maxBytes/2-2*4100 {
		t.Errorf("BacklogBytes = %d when full, want just under %d", b, maxBytes/2)
	}
	if st.Rejected != [2]uint64{0, 2} || st.Evicted != [2]uint64{} {
		t.Errorf("Rejected %v, Evicted %v; want [0 2], none", st.Rejected, st.Evicted)
	}
	msgs := takeNow(t, o, len(kept)+10)
	checkSized(t, msgs)
	if got := seqsOf(msgs); !slices.Equal(got, kept) {
		t.Errorf("took %d records, want the %d accepted", len(got), len(kept))
	}
}

// TestMaxAge runs the outbox on the bubble's fake clock: records older than
// MaxAge go at the next commit, and with no appends at the next tick of the
// commit goroutine.
func TestMaxAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		o := openConfigured(t, buffer.Config{Path: tempPath(t), MaxRecords: 1000, MaxAge: time.Hour})
		mustAppend(t, o, alert("a"), summary("s"), summary("s")) // expires first

		time.Sleep(30 * time.Minute)
		second := mustAppend(t, o, alert("a"), summary("s"))
		if st := o.Stats(); st.OldestAge != [2]time.Duration{30 * time.Minute, 30 * time.Minute} {
			t.Errorf("OldestAge = %v 30 min after the first append, want 30m for both", st.OldestAge)
		}

		time.Sleep(31 * time.Minute) // 61 min after the first batch
		third := mustAppend(t, o, summary("s"))
		st := o.Stats()
		if st.Expired != [2]uint64{1, 2} {
			t.Errorf("Expired = %v an hour and a minute after the first batch, want [1 2]", st.Expired)
		}
		if st.OldestAge != [2]time.Duration{31 * time.Minute, 31 * time.Minute} {
			t.Errorf("OldestAge = %v, want 31m for both (the second batch)", st.OldestAge)
		}
		if o.Len() != 3 {
			t.Errorf("Len = %d, want 3", o.Len())
		}
		msgs := takeNow(t, o, 10)
		wantSeqs(t, msgs, second[0], second[1], third[0])
		if err := o.Release(seqsOf(msgs)); err != nil {
			t.Fatal(err)
		}

		// No appends from here: the commit goroutine's ticker expires the
		// second batch once it is an hour old.
		time.Sleep(30*time.Minute + 30*time.Second) // second batch 60.5 min old
		synctest.Wait()
		st = o.Stats()
		if st.Expired != [2]uint64{2, 3} {
			t.Errorf("Expired = %v with no appends, %v after the second batch, want [2 3]", st.Expired, time.Since(start)-30*time.Minute)
		}
		if st.OldestAge != [2]time.Duration{0, 30*time.Minute + 30*time.Second} {
			t.Errorf("OldestAge = %v, want [0 30m30s] (only the third batch left)", st.OldestAge)
		}
		wantSeqs(t, takeNow(t, o, 10), third...)
		if st.Appended-st.Acked-sumClasses(st.Expired) != uint64(o.Len()) {
			t.Errorf("counters do not add up: %+v, Len %d", st, o.Len())
		}
	})
}

// TestGroupCommitShares has 8 goroutines append one message at a time:
// every Append succeeds, the numbers are 1..1600 without a gap, and
// commits were shared.
func TestGroupCommitShares(t *testing.T) {
	const writers, each = 8, 200
	o := openConfigured(t, buffer.Config{Path: tempPath(t), MaxRecords: 1_000_000})
	got := make([][]uint64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				seqs, err := o.Append(pending(emberwatch.Class(i%2), fmt.Sprintf("w%d", w)))
				if err != nil {
					t.Errorf("writer %d, append %d: %v", w, i, err)
					return
				}
				got[w] = append(got[w], seqs...)
			}
		})
	}
	wg.Wait()
	var all []uint64
	for w, seqs := range got {
		if !slices.IsSorted(seqs) {
			t.Errorf("writer %d got decreasing seqs", w)
		}
		all = append(all, seqs...)
	}
	slices.Sort(all)
	for i, s := range all {
		if s != uint64(i+1) {
			t.Fatalf("sorted seqs[%d] = %d, want %d: numbers are not 1..%d without gaps or repeats", i, s, i+1, writers*each)
		}
	}
	st := o.Stats()
	t.Logf("%d appends in %d commits", st.Appended, st.Commits)
	if st.Appended != writers*each || st.Commits >= writers*each {
		t.Errorf("Appended %d in %d commits; want %d appends sharing fewer commits", st.Appended, st.Commits, writers*each)
	}
	msgs := takeNow(t, o, writers*each)
	if len(msgs) != writers*each {
		t.Fatalf("took %d records, want %d", len(msgs), writers*each)
	}
	for _, m := range msgs {
		if string(m.Payload) != string(payloadFor(m.Topic, m.Seq)) {
			t.Fatalf("seq %d: payload %q", m.Seq, m.Payload)
		}
	}
}

// TestCommitDelayJoinsAppends: with CommitDelay, an Append waits that long
// for company, and Appends started together share one commit.
func TestCommitDelayJoinsAppends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 5 * time.Millisecond
		o := openConfigured(t, buffer.Config{Path: tempPath(t), MaxRecords: 1000, CommitDelay: delay})
		start := time.Now()
		mustAppend(t, o, alert("a"))
		if d := time.Since(start); d != delay {
			t.Errorf("a lone Append took %v of fake time, want the commit delay %v", d, delay)
		}

		before := o.Stats().Commits
		var wg sync.WaitGroup
		got := make([][]uint64, 2)
		for i := range got {
			wg.Go(func() { got[i] = mustAppend(t, o, summary("s"), alert("a")) })
		}
		wg.Wait()
		if after := o.Stats().Commits; after != before+1 {
			t.Errorf("two Appends started together took %d commits, want 1", after-before)
		}
		all := slices.Concat(got[0], got[1])
		slices.Sort(all)
		if !slices.Equal(all, []uint64{2, 3, 4, 5}) {
			t.Errorf("seqs %v, want 2..5", all)
		}
	})
}

var errTestEncode = errors.New("test: cannot encode")

// failingEncode is a message whose Encode fails; encoded counts its calls.
func failingEncode(class emberwatch.Class, encoded *int) buffer.Pending {
	return buffer.Pending{Class: class, Topic: "fails", Encode: func(uint64) ([]byte, error) {
		*encoded++
		return nil, errTestEncode
	}}
}

// TestEncodeFailureInSharedCommit puts an Append whose second message fails
// to encode into one commit with two good Appends: only it fails, and the
// numbers its first message was encoded with are handed out again.
func TestEncodeFailureInSharedCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := openConfigured(t, buffer.Config{Path: tempPath(t), MaxRecords: 1000, CommitDelay: time.Millisecond})
		before := o.Stats().Commits
		var wg sync.WaitGroup
		var good [2][]uint64
		var badSeqs []uint64
		var badErr error
		encoded := 0
		wg.Go(func() { good[0] = mustAppend(t, o, alert("a"), summary("s")) })
		synctest.Wait() // the first is waiting for company in the commit goroutine
		wg.Go(func() {
			badSeqs, badErr = o.Append(summary("s"), failingEncode(emberwatch.ClassAlert, &encoded), alert("a"))
		})
		synctest.Wait()
		wg.Go(func() { good[1] = mustAppend(t, o, summary("s"), alert("a")) })
		wg.Wait()

		if !errors.Is(badErr, errTestEncode) || badSeqs != nil {
			t.Errorf("Append with a failing Encode = %v, %v; want no seqs and an error wrapping the Encode error", badSeqs, badErr)
		}
		if encoded != 1 {
			t.Errorf("the failing Encode was called %d times, want once", encoded)
		}
		if after := o.Stats().Commits; after != before+1 {
			t.Errorf("the three Appends took %d commits, want 1 (the test needs them to share it)", after-before)
		}
		if !slices.Equal(good[0], []uint64{1, 2}) || !slices.Equal(good[1], []uint64{3, 4}) {
			t.Errorf("good Appends got %v and %v, want [1 2] and [3 4]", good[0], good[1])
		}
		if last, err := o.LastSeq(); err != nil || last != 4 {
			t.Errorf("LastSeq = %d, %v; want 4", last, err)
		}
		wantSeqs(t, takeNow(t, o, 10), 1, 4, 2, 3)
		if st := o.Stats(); st.Appended != 4 || st.AppendErrors != 0 {
			t.Errorf("Appended %d, AppendErrors %d; want 4, 0 (an Encode error is not a commit failure)", st.Appended, st.AppendErrors)
		}
	})
}

// TestEncodeFailuresUnderLoad: one goroutine's Appends keep failing to
// encode while seven others append; the stored numbers have no gap.
func TestEncodeFailuresUnderLoad(t *testing.T) {
	const writers, each = 7, 100
	o := openConfigured(t, buffer.Config{Path: tempPath(t), MaxRecords: 1_000_000})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	failed := 0
	wg.Go(func() {
		encoded := 0
		for {
			select {
			case <-stop:
				return
			default:
			}
			seqs, err := o.Append(alert("a"), failingEncode(emberwatch.ClassSummary, &encoded))
			if !errors.Is(err, errTestEncode) || seqs != nil {
				t.Errorf("failing Append = %v, %v; want an Encode error", seqs, err)
				return
			}
			failed++
		}
	})
	var good sync.WaitGroup
	for w := range writers {
		good.Go(func() {
			for i := range each {
				if _, err := o.Append(pending(emberwatch.Class(i%2), fmt.Sprintf("w%d", w))); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	good.Wait()
	close(stop)
	wg.Wait()
	t.Logf("%d failing Appends among %d good ones", failed, writers*each)
	last, err := o.LastSeq()
	if err != nil {
		t.Fatal(err)
	}
	if last != writers*each {
		t.Errorf("LastSeq = %d after %d good single-record Appends, want %d", last, writers*each, writers*each)
	}
	msgs := takeNow(t, o, writers*each+10)
	seqs := seqsOf(msgs)
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("stored seqs have a gap or repeat at %d: got %d", i+1, s)
		}
		if m := msgs[slices.IndexFunc(msgs, func(m emberwatch.Message) bool { return m.Seq == s })]; string(m.Payload) != string(payloadFor(m.Topic, m.Seq)) {
			t.Fatalf("seq %d: payload %q", m.Seq, m.Payload)
		}
	}
	if len(seqs) != writers*each {
		t.Errorf("took %d records, want %d", len(seqs), writers*each)
	}
}

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want buffer.ByteSize
		ok   bool
	}{
		{"65536", 65536, true},
		{"64KiB", 64 << 10, true},
		{"16MiB", 16 << 20, true},
		{"1GiB", 1 << 30, true},
		{"10MB", 10_000_000, true},
		{"1kB", 1000, true},
		{"1KB", 1000, true},
		{"512B", 512, true},
		{" 64 MiB ", 64 << 20, true},
		{"0", 0, true}, // parses; Validate refuses it
		{"12XB", 0, false},
		{"-1", 0, false},
		{"-1MiB", 0, false},
		{"1.5MiB", 0, false},
		{"", 0, false},
		{"MiB", 0, false},
		{"64mib", 0, false},
		{"99999999999GiB", 0, false}, // overflows
	} {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			got, err := buffer.ParseByteSize(tc.in)
			if tc.ok && (err != nil || got != tc.want) {
				t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
			if !tc.ok && err == nil {
				t.Errorf("ParseByteSize(%q) = %d, want an error", tc.in, got)
			}

			// In YAML, plain and quoted; a plain empty value is null,
			// which leaves the field at 0 (the default).
			for _, doc := range []string{"size: " + tc.in, fmt.Sprintf("size: %q", tc.in)} {
				if tc.in == "" && doc == "size: " {
					continue
				}
				var v struct {
					Size buffer.ByteSize `yaml:"size"`
				}
				err := yaml.Unmarshal([]byte(doc), &v)
				if tc.ok && (err != nil || v.Size != tc.want) {
					t.Errorf("YAML %s: %d, %v; want %d", doc, v.Size, err, tc.want)
				}
				if !tc.ok && err == nil {
					t.Errorf("YAML %s: %d, want an error", doc, v.Size)
				}
			}
		})
	}
}

// TestConfigYAML decodes the new fields as a config file spells them.
func TestConfigYAML(t *testing.T) {
	var c buffer.Config
	doc := "path: /var/lib/emberwatch/outbox.db\nmax_bytes: 64MiB\nmax_age: 72h\nwhen_full: reject_new\ncommit_delay: 2ms\ncommit_batch: 512\nno_sync: true\n"
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	want := buffer.Config{Path: "/var/lib/emberwatch/outbox.db", MaxBytes: 64 << 20, MaxAge: 72 * time.Hour,
		WhenFull: buffer.RejectNew, CommitDelay: 2 * time.Millisecond, CommitBatch: 512, NoSync: true}
	if c != want {
		t.Errorf("decoded %+v, want %+v", c, want)
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestConfigDefaultsAndValidate(t *testing.T) {
	c := buffer.Config{Path: "x.db"}
	c.Normalize()
	if c.MaxBytes != 256<<20 || c.WhenFull != buffer.EvictOldest || c.CommitBatch != 4096 || c.MaxAge != 0 || c.CommitDelay != 0 {
		t.Errorf("defaults: %+v; want MaxBytes 256MiB, evict_oldest, CommitBatch 4096, no MaxAge or CommitDelay", c)
	}
	valid := func(edit func(c *buffer.Config)) buffer.Config {
		c := buffer.Config{Path: "x.db"}
		c.Normalize()
		edit(&c)
		return c
	}
	for _, tc := range []struct {
		name  string
		cfg   buffer.Config
		field string // "" for valid
	}{
		{"max_bytes 1MiB", valid(func(c *buffer.Config) { c.MaxBytes = 1 << 20 }), ""},
		{"max_bytes below 1MiB", valid(func(c *buffer.Config) { c.MaxBytes = 1<<20 - 1 }), "max_bytes: "},
		{"max_bytes negative", valid(func(c *buffer.Config) { c.MaxBytes = -1 }), "max_bytes: "},
		{"max_age negative", valid(func(c *buffer.Config) { c.MaxAge = -time.Second }), "max_age: "},
		{"max_age an hour", valid(func(c *buffer.Config) { c.MaxAge = time.Hour }), ""},
		{"when_full unknown", valid(func(c *buffer.Config) { c.WhenFull = "drop_newest" }), "when_full: "},
		{"when_full reject_new", valid(func(c *buffer.Config) { c.WhenFull = buffer.RejectNew }), ""},
		{"commit_delay negative", valid(func(c *buffer.Config) { c.CommitDelay = -time.Millisecond }), "commit_delay: "},
		{"commit_delay 1s", valid(func(c *buffer.Config) { c.CommitDelay = time.Second }), ""},
		{"commit_delay over 1s", valid(func(c *buffer.Config) { c.CommitDelay = time.Second + 1 }), "commit_delay: "},
		{"commit_batch 0", valid(func(c *buffer.Config) { c.CommitBatch = 0 }), "commit_batch: "},
		{"commit_batch negative", valid(func(c *buffer.Config) { c.CommitBatch = -3 }), "commit_batch: "},
		{"commit_batch 1", valid(func(c *buffer.Config) { c.CommitBatch = 1 }), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.field == "" && err != nil:
				t.Errorf("Validate(%+v) = %v, want nil", tc.cfg, err)
			case tc.field != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.field)):
				t.Errorf("Validate(%+v) = %v, want an error starting %q", tc.cfg, err, tc.field)
			}
		})
	}
	// Open refuses what Validate refuses, naming the field.
	_, err := buffer.Open(buffer.Config{Path: tempPath(t), WhenFull: "drop"}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "when_full: ") {
		t.Errorf("Open with when_full drop = %v, want an error naming when_full", err)
	}
}
