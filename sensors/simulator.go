package sensors

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/rs/zerolog"

	"github.com/emberwatch/emberwatch"
)

// Series produced by the simulator.
const (
	SeriesTemperature = "temperature" // °C
	SeriesHumidity    = "humidity"    // % relative humidity
	SeriesSmoke       = "smoke"       // gas sensor level, ppm-like
)

// SimulatorConfig configures the "simulator" source: a weather station with a
// daily cycle, sensor noise and, optionally, one staged wildfire-style event
// whose timing is known, so that tests and demos have ground truth.
type SimulatorConfig struct {
	// Start is the event time of the first reading; zero means the wall clock
	// at start-up, truncated to the interval.
	Start time.Time `yaml:"start"`
	// Speed is how many seconds of simulated time pass per second of wall
	// time. 1 is real time; 0 runs as fast as the pipeline consumes.
	Speed float64 `yaml:"speed"`
	// Seed makes the noise reproducible. Two runs with the same seed and
	// start produce the same readings.
	Seed uint64 `yaml:"seed"`
	// Event stages one fire near the station. It is off when At is zero.
	Event SimulatedEvent `yaml:"event"`
}

// SimulatedEvent is a staged wildfire-style event: temperature rises, humidity
// falls and smoke climbs over Ramp, holds for Duration, then fades over Ramp.
type SimulatedEvent struct {
	// At is the offset from Start at which the event begins.
	At time.Duration `yaml:"at"`
	// Ramp is how long the signals take to reach full strength. Default 10m.
	Ramp time.Duration `yaml:"ramp"`
	// Duration is how long the event holds at full strength. Default 30m.
	Duration time.Duration `yaml:"duration"`
	// TempRise is the temperature increase at full strength in °C. Default 12.
	TempRise float64 `yaml:"temp_rise"`
	// HumidityDrop is the fraction of relative humidity lost at full
	// strength, in (0,1). Default 0.7.
	HumidityDrop float64 `yaml:"humidity_drop"`
	// Smoke is the smoke level added at full strength. Default 250.
	Smoke float64 `yaml:"smoke"`
}

func init() {
	Register("simulator", newSimulator, validateSimulator)
}

func validateSimulator(c Config) error {
	s := c.Simulator
	if s.Speed < 0 || math.IsNaN(s.Speed) || math.IsInf(s.Speed, 0) {
		return fmt.Errorf("simulator.speed: must be >= 0 (0 = as fast as possible), got %v", s.Speed)
	}
	e := s.Event
	switch {
	case e.At < 0:
		return fmt.Errorf("simulator.event.at: must be >= 0, got %s", e.At)
	case e.Ramp < 0:
		return fmt.Errorf("simulator.event.ramp: must be >= 0, got %s", e.Ramp)
	case e.Duration < 0:
		return fmt.Errorf("simulator.event.duration: must be >= 0, got %s", e.Duration)
	case !(e.HumidityDrop >= 0 && e.HumidityDrop < 1):
		return fmt.Errorf("simulator.event.humidity_drop: must be in [0,1), got %v", e.HumidityDrop)
	case math.IsNaN(e.TempRise) || math.IsInf(e.TempRise, 0):
		return fmt.Errorf("simulator.event.temp_rise: must be a finite number, got %v", e.TempRise)
	case math.IsNaN(e.Smoke) || math.IsInf(e.Smoke, 0):
		return fmt.Errorf("simulator.event.smoke: must be a finite number, got %v", e.Smoke)
	}
	return nil
}

// Simulator is the "simulator" source. Its methods other than Run may be
// called from any goroutine.
type Simulator struct {
	cfg      SimulatorConfig
	interval time.Duration
	log      zerolog.Logger
	// now reads the wall clock; only pacing uses it.
	now func() time.Time
}

func newSimulator(c Config, log zerolog.Logger) (Source, error) {
	return NewSimulator(c.Simulator, c.Interval, log), nil
}

// NewSimulator returns a simulator that emits the three series every interval
// of event time. Zero event fields get their defaults.
func NewSimulator(cfg SimulatorConfig, interval time.Duration, log zerolog.Logger) *Simulator {
	if cfg.Start.IsZero() {
		cfg.Start = time.Now().UTC().Truncate(interval)
	}
	e := &cfg.Event
	if e.Ramp == 0 {
		e.Ramp = 10 * time.Minute
	}
	if e.Duration == 0 {
		e.Duration = 30 * time.Minute
	}
	if e.TempRise == 0 {
		e.TempRise = 12
	}
	if e.HumidityDrop == 0 {
		e.HumidityDrop = 0.7
	}
	if e.Smoke == 0 {
		e.Smoke = 250
	}
	return &Simulator{cfg: cfg, interval: interval, log: log, now: time.Now}
}

// EventWindow returns the event time span in which the staged event moves the
// signals, and false when no event is staged.
func (s *Simulator) EventWindow() (start, end time.Time, ok bool) {
	e := s.cfg.Event
	if e.At <= 0 {
		return time.Time{}, time.Time{}, false
	}
	start = s.cfg.Start.Add(e.At)
	return start, start.Add(2*e.Ramp + e.Duration), true
}

// Run emits readings from Start onwards, paced by Speed, until ctx ends.
func (s *Simulator) Run(ctx context.Context, out chan<- emberwatch.Reading) error {
	rng := rand.New(rand.NewPCG(s.cfg.Seed, s.cfg.Seed^0x9e3779b97f4a7c15))
	var noiseT, noiseH, noiseS float64 // AR(1) noise state per series
	pace := &pacer{start: s.now(), speed: s.cfg.Speed, now: s.now}
	defer pace.stop()
	if st, en, ok := s.EventWindow(); ok {
		s.log.Info().Time("event_start", st).Time("event_end", en).Msg("simulator: staged event scheduled")
	}
	for i := 0; ; i++ {
		elapsed := time.Duration(i) * s.interval
		t := s.cfg.Start.Add(elapsed)
		if !pace.wait(ctx, elapsed) {
			return nil
		}
		noiseT = 0.9*noiseT + 0.08*rng.NormFloat64()
		noiseH = 0.9*noiseH + 0.4*rng.NormFloat64()
		noiseS = 0.8*noiseS + 0.3*rng.NormFloat64()
		temp, hum, smoke := s.baseline(t)
		f := s.intensity(elapsed)
		temp += noiseT + s.cfg.Event.TempRise*f
		hum = clamp((hum+noiseH)*(1-s.cfg.Event.HumidityDrop*f), 1, 100)
		smoke = math.Max(0, smoke+noiseS+s.cfg.Event.Smoke*f)
		for _, r := range [...]emberwatch.Reading{
			{Series: SeriesTemperature, Time: t, Value: temp},
			{Series: SeriesHumidity, Time: t, Value: hum},
			{Series: SeriesSmoke, Time: t, Value: smoke},
		} {
			select {
			case <-ctx.Done():
				return nil
			case out <- r:
			}
		}
	}
}

// baseline is the undisturbed weather at t: warmest mid-afternoon, most
// humid before dawn, smoke at the sensor's clean-air level.
func (s *Simulator) baseline(t time.Time) (temp, hum, smoke float64) {
	h := float64(t.Hour()) + float64(t.Minute())/60 + float64(t.Second())/3600
	day := math.Sin(2 * math.Pi * (h - 9) / 24) // peaks at 15:00
	return 17 + 7*day, 55 - 20*day, 8
}

// intensity is the event's strength in [0,1] at elapsed time since Start.
func (s *Simulator) intensity(elapsed time.Duration) float64 {
	e := s.cfg.Event
	if e.At <= 0 || elapsed < e.At {
		return 0
	}
	d := elapsed - e.At
	switch {
	case d < e.Ramp:
		return float64(d) / float64(e.Ramp)
	case d < e.Ramp+e.Duration:
		return 1
	case d < 2*e.Ramp+e.Duration:
		return 1 - float64(d-e.Ramp-e.Duration)/float64(e.Ramp)
	}
	return 0
}

func clamp(v, lo, hi float64) float64 {
	return math.Max(lo, math.Min(hi, v))
}

var _ Source = (*Simulator)(nil)
