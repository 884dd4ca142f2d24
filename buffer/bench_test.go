package buffer_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
)

// The benchmarks behind docs/BENCHMARKS.md: durable (fsync on) appends of
// 200-byte records, the drain of a backlog, and the file size it takes.

const benchTopic = "emberwatch/bench-01/summaries"

func benchOutbox(b *testing.B) *buffer.Outbox {
	o, err := buffer.Open(buffer.Config{Path: tempPath(b), MaxRecords: 10_000_000, MaxBytes: 4 << 30}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { o.Close() })
	return o
}

func benchMsgs(batch int) []buffer.Pending {
	payload := make([]byte, 200)
	msgs := make([]buffer.Pending, batch)
	for i := range msgs {
		msgs[i] = buffer.Pending{
			Class:  emberwatch.Class(i % 2),
			Topic:  benchTopic,
			Encode: func(uint64) ([]byte, error) { return payload, nil },
		}
	}
	return msgs
}

// benchAppend appends from goroutines goroutines, each calling Append with
// batch messages and waiting for it to be durable, and reports messages per
// second. Concurrent Appends share commits (group commit).
func benchAppend(b *testing.B, goroutines, batch int) {
	o := benchOutbox(b)
	msgs := benchMsgs(batch)
	b.SetBytes(int64(batch * 200))
	var total int
	for b.Loop() {
		// One op is one Append per goroutine, all at once.
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				if _, err := o.Append(msgs...); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		total += goroutines * batch
	}
	st := o.Stats()
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(st.Appended)/float64(st.Commits), "msgs/commit")
}

// BenchmarkAppend1: one goroutine, one message per Append: every Append
// waits for its own fsync.
func BenchmarkAppend1(b *testing.B) { benchAppend(b, 1, 1) }

// BenchmarkAppend1Batch64: one goroutine appending 64 messages per call,
// as the agent's processing stage does with a batch of readings.
func BenchmarkAppend1Batch64(b *testing.B) { benchAppend(b, 1, 64) }

// BenchmarkAppend8: eight goroutines, one message per Append each.
func BenchmarkAppend8(b *testing.B) { benchAppend(b, 8, 1) }

// BenchmarkAppend8Batch64: eight goroutines, 64 messages per Append each.
func BenchmarkAppend8Batch64(b *testing.B) { benchAppend(b, 8, 64) }

// BenchmarkAppendPipelined: 256 goroutines each appending one message at a
// time, the way many sensors' stages would; shows what group commit does
// for single-message appends.
func BenchmarkAppendPipelined(b *testing.B) { benchAppend(b, 256, 1) }

// BenchmarkDrain1M appends a backlog of 1,000,000 200-byte records, then
// drains it with Take and Ack in batches of 1,000, as the uplink does
// (broker excluded). It reports the drain rate, the whole drain's time and
// the file size the million records took.
func BenchmarkDrain1M(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		b.StopTimer()
		o := benchOutbox(b)
		msgs := benchMsgs(1000)
		for range n / 1000 {
			if _, err := o.Append(msgs...); err != nil {
				b.Fatal(err)
			}
		}
		st := o.Stats()
		b.ReportMetric(float64(st.FileBytes)/(1<<20), "MiB/1M-records")
		b.StartTimer()
		ctx := context.Background()
		drained := 0
		for drained < n {
			got, err := o.Take(ctx, 1000)
			if err != nil {
				b.Fatal(err)
			}
			seqs := make([]uint64, len(got))
			for i, m := range got {
				seqs[i] = m.Seq
			}
			if err := o.Ack(seqs); err != nil {
				b.Fatal(err)
			}
			drained += len(got)
		}
		b.StopTimer()
		if o.Len() != 0 {
			b.Fatalf("Len = %d after the drain", o.Len())
		}
		o.Close()
		os.Remove(tempPath(b))
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkAppend1Async: one goroutine, one message per call, keeping up to
// 1,024 appends in flight with AppendAsync and waiting for each to be
// durable.
func BenchmarkAppend1Async(b *testing.B) {
	o := benchOutbox(b)
	msg := benchMsgs(1)[0]
	inflight := make([]*buffer.Appending, 0, 1024)
	wait := func() {
		for _, a := range inflight {
			if _, err := a.Wait(); err != nil {
				b.Fatal(err)
			}
		}
		inflight = inflight[:0]
	}
	b.SetBytes(200)
	for b.Loop() {
		inflight = append(inflight, o.AppendAsync(msg))
		if len(inflight) == cap(inflight) {
			wait()
		}
	}
	wait()
	st := o.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(st.Appended)/float64(st.Commits), "msgs/commit")
}

// BenchmarkAppend8Async: eight goroutines as in BenchmarkAppend1Async.
func BenchmarkAppend8Async(b *testing.B) {
	o := benchOutbox(b)
	msg := benchMsgs(1)[0]
	b.SetBytes(200)
	var total int
	for b.Loop() {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				inflight := make([]*buffer.Appending, 128)
				for i := range inflight {
					inflight[i] = o.AppendAsync(msg)
				}
				for _, a := range inflight {
					if _, err := a.Wait(); err != nil {
						b.Error(err)
					}
				}
			})
		}
		wg.Wait()
		total += 8 * 128
	}
	st := o.Stats()
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(st.Appended)/float64(st.Commits), "msgs/commit")
}
