package buffer_test

import (
	"testing"

	"github.com/rs/zerolog"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
)

// benchAppend appends batches of batch 200-byte messages, one transaction
// (one fsync) per Append call, and reports messages per second.
func benchAppend(b *testing.B, batch int) {
	o, err := buffer.Open(buffer.Config{Path: tempPath(b), MaxRecords: 1_000_000}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	payload := make([]byte, 200)
	msgs := make([]buffer.Pending, batch)
	for i := range msgs {
		msgs[i] = buffer.Pending{
			Class:  emberwatch.Class(i % 2),
			Topic:  "emberwatch/bench-01/summaries",
			Encode: func(uint64) ([]byte, error) { return payload, nil },
		}
	}
	b.SetBytes(int64(batch * len(payload)))
	n := 0
	for b.Loop() {
		if _, err := o.Append(msgs...); err != nil {
			b.Fatal(err)
		}
		n += batch
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
	if o.Len() != n {
		b.Fatalf("Len = %d after appending %d", o.Len(), n)
	}
}

func BenchmarkAppend(b *testing.B)        { benchAppend(b, 1) }
func BenchmarkAppendBatch64(b *testing.B) { benchAppend(b, 64) }
