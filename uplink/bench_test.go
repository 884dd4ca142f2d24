package uplink_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
	"github.com/emberwatch/emberwatch/internal/brokertest"
	"github.com/emberwatch/emberwatch/uplink"
)

// The benchmark behind the Uplink section of docs/BENCHMARKS.md.

// BenchmarkDrainToMosquitto measures how fast the uplink empties a backlog
// of 200-byte QoS 1 messages into Mosquitto on loopback, for several
// in_flight values. One op is one message: the outbox (fsync on, on disk)
// is filled with b.N records and the uplink connected before the clock
// starts; the clock stops when the outbox is empty, that is when every
// PUBACK has come back and every record is deleted. No one subscribes.
//
// Mosquitto runs as configured out of the box ("default": Nagle's algorithm
// on its sockets) and with set_tcp_nodelay true ("nodelay"), which shows
// how much of the time goes to waiting for PUBACKs that Mosquitto holds
// back until it sees our TCP ACK, which Linux delays up to 40 ms when we
// have nothing to send.
func BenchmarkDrainToMosquitto(b *testing.B) {
	for _, broker := range []struct {
		name string
		conf []string
	}{
		{"default", nil},
		{"nodelay", []string{"set_tcp_nodelay true"}},
	} {
		b.Run(broker.name, func(b *testing.B) {
			benchDrain(b, brokertest.StartMosquitto(b, broker.conf...))
		})
	}
}

func benchDrain(b *testing.B, m *brokertest.Mosquitto) {
	for _, inFlight := range []int{64, 256, 1000} {
		b.Run(fmt.Sprintf("in_flight=%d", inFlight), func(b *testing.B) {
			box, err := buffer.Open(buffer.Config{
				Path:       filepath.Join(b.TempDir(), "outbox.db"),
				MaxRecords: 10_000_000,
				MaxBytes:   4 << 30,
			}, zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			defer box.Close()
			fillOutbox(b, box, b.N)

			gate := newGatedOutbox(box)
			gate.shut()
			cfg := testConfig(m.URL())
			cfg.InFlight = inFlight
			u := uplink.New(cfg, gate, uplink.Status{}, zerolog.Nop())
			r := start(u)
			defer func() {
				r.cancel()
				r.wg.Wait()
				if r.err != nil {
					b.Errorf("Run: %v", r.err)
				}
			}()
			if !await(10*time.Second, u.Connected) {
				b.Fatal("uplink did not connect within 10s")
			}

			b.ResetTimer()
			gate.open()
			for box.Len() > 0 {
				changed := box.Changed()
				if box.Len() == 0 {
					break
				}
				<-changed
			}
			b.StopTimer()

			// The uplink counts a batch just after deleting it.
			if !await(5*time.Second, func() bool { return u.Published() == uint64(b.N) }) {
				b.Fatalf("uplink counted %d acknowledgements, want %d", u.Published(), b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			gate.mu.Lock()
			b.ReportMetric(float64(gate.ackedN)/float64(gate.acks), "msgs/ack")
			gate.mu.Unlock()
		})
	}
}

// fillOutbox appends n records of 200 bytes, alternately alerts and
// summaries, in commits of up to 1,000.
func fillOutbox(b *testing.B, box *buffer.Outbox, n int) {
	b.Helper()
	payload := make([]byte, 200)
	batch := make([]buffer.Pending, 1000)
	for i := range batch {
		batch[i] = buffer.Pending{
			Class:  emberwatch.Class(i % 2),
			Topic:  "emberwatch/bench-01/summaries",
			Encode: func(uint64) ([]byte, error) { return payload, nil },
		}
	}
	for n > 0 {
		k := min(n, len(batch))
		if _, err := box.Append(batch[:k]...); err != nil {
			b.Fatal(err)
		}
		n -= k
	}
}
