package sensors_test

import (
	"context"
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/sensors"
)

// start is the event time of the first reading in these tests: 06:00 UTC,
// so a staged event at 3h falls in the morning warm-up.
var start = time.Date(2026, 7, 15, 6, 0, 0, 0, time.UTC)

// collect runs src until it has sent n readings, then cancels it and checks
// that Run returns nil promptly and leaves its channel open.
func collect(t testing.TB, src sensors.Source, n int) []emberwatch.Reading {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan emberwatch.Reading)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	safety := time.After(time.Minute)
	readings := make([]emberwatch.Reading, 0, n)
	for len(readings) < n {
		select {
		case r := <-out:
			readings = append(readings, r)
		case err := <-done:
			t.Fatalf("Run returned %v after %d of %d readings", err, len(readings), n)
		case <-safety:
			t.Fatalf("only %d of %d readings within a minute", len(readings), n)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-safety:
		t.Fatal("Run did not return after its context was cancelled")
	}
	select {
	case _, ok := <-out:
		if !ok {
			t.Error("Run closed the channel it was given; the caller owns it")
		}
	default:
	}
	return readings
}

// simulate collects the readings of the first d of event time.
func simulate(t testing.TB, cfg sensors.SimulatorConfig, interval, d time.Duration) []emberwatch.Reading {
	t.Helper()
	return collect(t, sensors.NewSimulator(cfg, interval, testLogger(t)), 3*int(d/interval))
}

// bySeries splits readings per series, keeping their order.
func bySeries(rs []emberwatch.Reading) map[string][]emberwatch.Reading {
	m := map[string][]emberwatch.Reading{}
	for _, r := range rs {
		m[r.Series] = append(m[r.Series], r)
	}
	return m
}

// between returns the values of rs with from <= Time < to.
func between(rs []emberwatch.Reading, from, to time.Time) []float64 {
	var v []float64
	for _, r := range rs {
		if !r.Time.Before(from) && r.Time.Before(to) {
			v = append(v, r.Value)
		}
	}
	return v
}

var series = []string{sensors.SeriesTemperature, sensors.SeriesHumidity, sensors.SeriesSmoke}

func TestSimulatorDeterministic(t *testing.T) {
	cfg := sensors.SimulatorConfig{Start: start, Seed: 42, Event: sensors.SimulatedEvent{At: 20 * time.Minute}}
	a := simulate(t, cfg, 10*time.Second, 2*time.Hour)
	b := simulate(t, cfg, 10*time.Second, 2*time.Hour)
	if !slices.Equal(a, b) {
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("same seed, reading %d differs: %+v vs %+v", i, a[i], b[i])
			}
		}
	}
	cfg.Seed = 43
	c := simulate(t, cfg, 10*time.Second, 2*time.Hour)
	same := 0
	for i := range a {
		if a[i] == c[i] {
			same++
		}
	}
	if same > len(a)/10 {
		t.Errorf("seeds 42 and 43 agree on %d of %d readings; the seed does not drive the noise", same, len(a))
	}
}

func TestSimulatorReadingOrder(t *testing.T) {
	for _, interval := range []time.Duration{time.Second, 10 * time.Second, 7 * time.Minute} {
		rs := simulate(t, sensors.SimulatorConfig{Start: start, Seed: 1}, interval, 200*interval)
		for i, r := range rs {
			step := i / 3
			want := start.Add(time.Duration(step) * interval)
			if r.Series != series[i%3] || !r.Time.Equal(want) {
				t.Fatalf("interval %s, reading %d = %s at %s; want %s at %s (one per series per interval, in time order)",
					interval, i, r.Series, r.Time.Format(time.RFC3339), series[i%3], want.Format(time.RFC3339))
			}
		}
	}
}

func TestSimulatorPlausibleWithoutEvent(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		cfg := sensors.SimulatorConfig{Start: start, Seed: seed}
		sim := sensors.NewSimulator(cfg, time.Minute, testLogger(t))
		if st, en, ok := sim.EventWindow(); ok {
			t.Errorf("no event staged, yet EventWindow = %s, %s, true", st, en)
		}
		rs := bySeries(collect(t, sim, 3*24*60)) // one day
		for _, name := range series {
			if len(rs[name]) != 24*60 {
				t.Fatalf("seed %d: %d %s readings in a day of minutes, want %d", seed, len(rs[name]), name, 24*60)
			}
		}
		check := func(name string, lo, hi float64) {
			for _, r := range rs[name] {
				if !(r.Value >= lo && r.Value <= hi) {
					t.Errorf("seed %d: %s %v at %s, want within [%v, %v]", seed, name, r.Value, r.Time.Format(time.TimeOnly), lo, hi)
					return
				}
			}
		}
		check(sensors.SeriesTemperature, -10, 45)
		check(sensors.SeriesHumidity, 1, 100)
		check(sensors.SeriesSmoke, 0, 20) // clean air: near the sensor's level of 8
		// The daily cycle: afternoon warmer and drier than before dawn.
		temp, hum := rs[sensors.SeriesTemperature], rs[sensors.SeriesHumidity]
		day := start.Truncate(24 * time.Hour)
		afternoon := func(v []emberwatch.Reading) float64 {
			return mean(between(v, day.Add(14*time.Hour), day.Add(16*time.Hour)))
		}
		night := func(v []emberwatch.Reading) float64 {
			return mean(append(between(v, day.Add(26*time.Hour), day.Add(28*time.Hour)), between(v, day.Add(2*time.Hour), day.Add(4*time.Hour))...))
		}
		if afternoon(temp) < night(temp)+8 {
			t.Errorf("seed %d: afternoon %.1f°C, night %.1f°C; want a daily cycle", seed, afternoon(temp), night(temp))
		}
		if afternoon(hum) > night(hum)-20 {
			t.Errorf("seed %d: afternoon %.0f%% RH, night %.0f%%; want drier afternoons", seed, afternoon(hum), night(hum))
		}
	}
}

func TestSimulatorEventWindow(t *testing.T) {
	for _, tc := range []struct {
		name       string
		event      sensors.SimulatedEvent
		start, end time.Duration // from Start
	}{
		{"as configured", sensors.SimulatedEvent{At: 3 * time.Hour, Ramp: 10 * time.Minute, Duration: 30 * time.Minute}, 3 * time.Hour, 3*time.Hour + 50*time.Minute},
		{"defaults", sensors.SimulatedEvent{At: time.Hour}, time.Hour, time.Hour + 2*10*time.Minute + 30*time.Minute},
		{"short", sensors.SimulatedEvent{At: time.Minute, Ramp: time.Minute, Duration: 2 * time.Minute}, time.Minute, 5 * time.Minute},
	} {
		sim := sensors.NewSimulator(sensors.SimulatorConfig{Start: start, Event: tc.event}, 10*time.Second, testLogger(t))
		st, en, ok := sim.EventWindow()
		if !ok || !st.Equal(start.Add(tc.start)) || !en.Equal(start.Add(tc.end)) {
			t.Errorf("%s: EventWindow = %s, %s, %v; want %s, %s, true", tc.name,
				st.Format(time.TimeOnly), en.Format(time.TimeOnly), ok,
				start.Add(tc.start).Format(time.TimeOnly), start.Add(tc.end).Format(time.TimeOnly))
		}
	}
	sim := sensors.NewSimulator(sensors.SimulatorConfig{Start: start, Event: sensors.SimulatedEvent{Ramp: time.Minute, Duration: time.Hour}}, 10*time.Second, testLogger(t))
	if _, _, ok := sim.EventWindow(); ok {
		t.Error("At 0: EventWindow reports an event")
	}
}

func TestSimulatorEvent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		seed  uint64
		event sensors.SimulatedEvent
	}{
		{"defaults seed 7", 7, sensors.SimulatedEvent{At: 3 * time.Hour}},
		{"defaults seed 8", 8, sensors.SimulatedEvent{At: 3 * time.Hour}},
		{"demo", 7, sensors.SimulatedEvent{At: 3 * time.Hour, Ramp: 10 * time.Minute, Duration: 30 * time.Minute}},
		{"mild", 1, sensors.SimulatedEvent{At: 90 * time.Minute, Ramp: 5 * time.Minute, Duration: 20 * time.Minute, TempRise: 6, HumidityDrop: 0.4, Smoke: 60}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const interval = 10 * time.Second
			cfg := sensors.SimulatorConfig{Start: start, Seed: tc.seed, Event: tc.event}
			sim := sensors.NewSimulator(cfg, interval, testLogger(t))
			st, en, ok := sim.EventWindow()
			if !ok {
				t.Fatal("EventWindow reports no event")
			}
			// What the event should do, with NewSimulator's defaults.
			ramp, rise, drop, smoke := tc.event.Ramp, tc.event.TempRise, tc.event.HumidityDrop, tc.event.Smoke
			if ramp == 0 {
				ramp = 10 * time.Minute
			}
			if rise == 0 {
				rise = 12
			}
			if drop == 0 {
				drop = 0.7
			}
			if smoke == 0 {
				smoke = 250
			}
			held0, held1 := st.Add(ramp), en.Add(-ramp)

			rs := bySeries(collect(t, sim, 3*int(en.Add(time.Hour).Sub(start)/interval)))
			temp, hum, smk := rs[sensors.SeriesTemperature], rs[sensors.SeriesHumidity], rs[sensors.SeriesSmoke]

			preT, heldT := between(temp, st.Add(-30*time.Minute), st), between(temp, held0, held1)
			preH, heldH := between(hum, st.Add(-30*time.Minute), st), between(hum, held0, held1)
			preS, heldS := between(smk, st.Add(-30*time.Minute), st), between(smk, held0, held1)
			if len(heldT) == 0 || len(preT) == 0 {
				t.Fatalf("no readings before or during the event (%d, %d)", len(preT), len(heldT))
			}
			if lo, hi := slices.Min(heldT), slices.Max(preT); lo < hi+rise/2 {
				t.Errorf("held temperature down to %.1f°C, before up to %.1f°C; want a rise of about %v", lo, hi, rise)
			}
			if hi, lo := slices.Max(heldH), slices.Min(preH); hi > lo*(1-drop/2) {
				t.Errorf("held humidity up to %.1f%%, before down to %.1f%%; want a drop of about %.0f%%", hi, lo, 100*drop)
			}
			if lo, hi := slices.Min(heldS), slices.Max(preS); lo < hi+smoke/2 {
				t.Errorf("held smoke down to %.1f, before up to %.1f; want about %v more", lo, hi, smoke)
			}
			// Outside the window the air is clean; the event is where
			// EventWindow says it is.
			for _, r := range smk {
				inside := r.Time.After(st) && r.Time.Before(en)
				if !inside && r.Value > 20 {
					t.Errorf("smoke %.1f at %s, outside the event window [%s, %s]", r.Value,
						r.Time.Format(time.TimeOnly), st.Format(time.TimeOnly), en.Format(time.TimeOnly))
				}
			}
			if after := between(temp, en.Add(20*time.Minute), en.Add(time.Hour)); mean(after) > mean(heldT)-rise/2 {
				t.Errorf("temperature %.1f°C after the event, %.1f°C while it held; it did not fade", mean(after), mean(heldT))
			}
		})
	}
}

// TestSimulatorReadingsFinite: whatever passes Validate must not make the
// simulator send NaN or ±Inf readings downstream.
func TestSimulatorReadingsFinite(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*sensors.SimulatedEvent)
	}{
		{"NaN humidity_drop", func(e *sensors.SimulatedEvent) { e.HumidityDrop = math.NaN() }},
		{"NaN temp_rise", func(e *sensors.SimulatedEvent) { e.TempRise = math.NaN() }},
		{"-Inf temp_rise", func(e *sensors.SimulatedEvent) { e.TempRise = math.Inf(-1) }},
		{"+Inf smoke", func(e *sensors.SimulatedEvent) { e.Smoke = math.Inf(1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sensors.Config{Type: "simulator", Interval: time.Minute,
				Simulator: sensors.SimulatorConfig{Start: start, Event: sensors.SimulatedEvent{At: time.Hour}}}
			tc.edit(&cfg.Simulator.Event)
			cfg.Normalize()
			if err := cfg.Validate(); err != nil {
				return // rejected: fine
			}
			src, err := sensors.New(cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range collect(t, src, 3*3*60) {
				if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
					t.Fatalf("Validate accepted the config, and the simulator sent %s = %v at %s",
						r.Series, r.Value, r.Time.Format(time.TimeOnly))
				}
			}
		})
	}
}

func TestSimulatorRunCancels(t *testing.T) {
	sim := sensors.NewSimulator(sensors.SimulatorConfig{Start: start}, time.Second, testLogger(t))
	// Blocked on its first send, nobody reading.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx, make(chan emberwatch.Reading)) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v after cancel, want nil", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after cancel")
	}
	// Already cancelled before it starts.
	if err := sim.Run(ctx, make(chan emberwatch.Reading)); err != nil {
		t.Errorf("Run with a cancelled context = %v, want nil", err)
	}
	// Mid-stream, with a reader: collect checks Run returns nil.
	collect(t, sim, 100)
	goleak.VerifyNone(t)
}

// TestSimulatorPacing runs a paced simulator in a synctest bubble, whose
// clock moves only when every goroutine waits: reading i must arrive exactly
// i·interval/speed after Run starts.
func TestSimulatorPacing(t *testing.T) {
	for _, speed := range []float64{1, 60, 600, 0.5} {
		synctest.Test(t, func(t *testing.T) {
			const interval = 10 * time.Second
			sim := sensors.NewSimulator(sensors.SimulatorConfig{Start: start, Speed: speed}, interval, testLogger(t))
			ctx, cancel := context.WithCancel(t.Context())
			out := make(chan emberwatch.Reading)
			done := make(chan error, 1)
			t0 := time.Now()
			go func() { done <- sim.Run(ctx, out) }()
			for i := range 5 {
				for j := range 3 {
					r := <-out
					wantAt := time.Duration(float64(time.Duration(i)*interval) / speed)
					if got := time.Since(t0); got != wantAt {
						t.Errorf("speed %v: reading %d.%d arrived %s after start, want %s", speed, i, j, got, wantAt)
					}
					if want := start.Add(time.Duration(i) * interval); !r.Time.Equal(want) {
						t.Errorf("speed %v: reading %d.%d has event time %s, want %s", speed, i, j, r.Time, want)
					}
				}
			}
			// Between intervals it waits and sends nothing early.
			synctest.Wait()
			select {
			case r := <-out:
				t.Errorf("speed %v: a reading for %s arrived %s early", speed, r.Time.Format(time.TimeOnly), time.Since(t0))
			default:
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v after cancel, want nil", err)
			}
		})
	}
}

// TestSimulatorPacedCancelLeavesNothing cancels a paced simulator while it
// waits for its next reading, on the real clock: Run returns nil and no
// goroutine is left.
func TestSimulatorPacedCancelLeavesNothing(t *testing.T) {
	sim := sensors.NewSimulator(sensors.SimulatorConfig{Start: start, Speed: 1}, time.Hour, testLogger(t))
	collect(t, sim, 3) // the first interval is due at once, the next in an hour
	goleak.VerifyNone(t)
}

// TestSimulatorZeroStart: a zero Start means the wall clock truncated to the
// interval. In a bubble the clock is fixed, so this can be checked exactly.
func TestSimulatorZeroStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 10 * time.Second
		time.Sleep(1234 * time.Millisecond) // move the bubble's clock off a boundary
		want := time.Now().UTC().Truncate(interval)
		rs := collect(t, sensors.NewSimulator(sensors.SimulatorConfig{}, interval, testLogger(t)), 6)
		if !rs[0].Time.Equal(want) || !rs[3].Time.Equal(want.Add(interval)) {
			t.Errorf("zero Start: readings at %s, %s; want %s and one interval later", rs[0].Time, rs[3].Time, want)
		}
	})
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
