package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/configs"
	"github.com/emberwatch/emberwatch/internal/brokertest"
	"github.com/emberwatch/emberwatch/sensors"
)

// probe is a source the latency benchmark feeds by hand: a reading sent on
// probeIn enters the pipeline as a live sensor's would.
var probeIn = make(chan emberwatch.Reading)

type probeSource struct{}

func (probeSource) Run(ctx context.Context, out chan<- emberwatch.Reading) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-probeIn:
			select {
			case out <- r:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

var registerProbe sync.Once

// BenchmarkReadingToAlert measures the time from a reading entering the
// agent to its alert arriving at a subscriber of the broker: windowing
// (count windows of one reading), a threshold rule with no debounce, the
// durable outbox append, and the QoS 1 publish. Each iteration sends a
// spike (an alert raised) and a normal reading (the alert resolved), one at
// a time, and times both.
//
//	go test -run='^$' -bench=ReadingToAlert -benchtime=2000x ./cmd/agent
func BenchmarkReadingToAlert(b *testing.B) {
	registerProbe.Do(func() {
		sensors.Register("probe", func(sensors.Config, zerolog.Logger) (sensors.Source, error) { return probeSource{}, nil }, nil)
	})
	b.Run("mochi", func(b *testing.B) { benchReadingToAlert(b, "") })
	b.Run("mosquitto", func(b *testing.B) { benchReadingToAlert(b, brokertest.StartMosquitto(b).URL()) })
	// Mosquitto leaves Nagle on by default: small PUBLISHes to the
	// subscriber can wait for a delayed ACK (about 40 ms).
	b.Run("mosquitto-nodelay", func(b *testing.B) {
		benchReadingToAlert(b, brokertest.StartMosquitto(b, "set_tcp_nodelay true").URL())
	})
}

func benchReadingToAlert(b *testing.B, brokerURL string) {
	raw := fmt.Sprintf(`device: lat-01
data_dir: %s
log: {level: warn}
sources: [{name: probe, type: probe}]
windows: [{series: "*", kind: count, count: 1}]
rules: [{name: hot, expr: "x.last > 100"}]
alerts: {debounce: 1, hysteresis: 0, cooldown: 0s}
broker: {url: %q, embedded: {listen: "127.0.0.1:0"}}
`, b.TempDir(), brokerURL)
	cfg, err := configs.Parse([]byte(raw))
	if err != nil {
		b.Fatal(err)
	}
	arrived := make(chan time.Time, 1)
	ready := make(chan struct{})
	var sub paho.Client
	a := &agent{cfg: cfg, raw: []byte(raw), log: zerolog.Nop(), hooks: hooks{brokerReady: func(url string) {
		o := paho.NewClientOptions().AddBroker(url).SetClientID("latency-sub").SetOrderMatters(true)
		sub = paho.NewClient(o)
		if t := sub.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			b.Errorf("subscriber connect: %v", t.Error())
		}
		t := sub.Subscribe("emberwatch/lat-01/alerts", 1, func(paho.Client, paho.Message) { arrived <- time.Now() })
		if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			b.Errorf("subscribe: %v", t.Error())
		}
		close(ready)
	}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	<-ready
	defer func() {
		cancel()
		<-done
		sub.Disconnect(0)
	}()

	t0 := time.Now()
	lat := make([]time.Duration, 0, 2*b.N)
	send := func(i int, v float64) {
		start := time.Now()
		probeIn <- emberwatch.Reading{Series: "x", Time: t0.Add(time.Duration(i) * time.Millisecond), Value: v}
		select {
		case at := <-arrived:
			lat = append(lat, at.Sub(start))
		case <-time.After(10 * time.Second):
			b.Fatalf("no alert within 10s for reading %d", i)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		send(2*i, 200) // raised
		send(2*i+1, 0) // resolved
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
}
