package main

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
	"github.com/emberwatch/emberwatch/configs"
	"github.com/emberwatch/emberwatch/detect"
	"github.com/emberwatch/emberwatch/windowing"
)

// maxPending caps messages held in memory while the outbox refuses appends
// (a full disk); past it the oldest summaries are dropped, and counted.
const maxPending = 10_000

// processor is the stage between the sources and the outbox: it folds
// readings into windows, scores the windows, and appends alerts and window
// summaries to the outbox, one transaction per batch of readings.
type processor struct {
	windower *windowing.Windower
	deriver  *windowing.Deriver
	engine   *detect.Engine
	box      *buffer.Outbox
	device   string
	topics   configs.Topics
	log      zerolog.Logger
	// realtime is true when any source reads the wall clock: arrival
	// times are then the clock's, and idle series are ticked.
	realtime bool

	feats   []emberwatch.Features
	derived []emberwatch.Reading
	alerts  []emberwatch.Alert
	pending []buffer.Pending
	// The summaries batch: window ends from sumFirst to sumEnd, begun at
	// wall time sumSince.
	sumCfg    configs.SummariesConfig
	summaries []emberwatch.Summary
	sumFirst  time.Time
	sumEnd    time.Time
	sumSince  time.Time

	// ctl carries work from the agent's goroutine (a config change) to run
	// between batches; see do.
	ctl chan func()

	rejected      map[error]uint64
	appendErrors  uint64
	droppedOnFull uint64
}

// tickEvery is how often a real-time processor tells the windower the
// time, so that idle series close their windows.
const tickEvery = time.Second

// statsEvery is how often the processor logs the pipeline's counters.
const statsEvery = time.Minute

// newProcessor returns the processing stage for cfg; run starts it.
func newProcessor(cfg *configs.Config, box *buffer.Outbox, log zerolog.Logger) (*processor, error) {
	engine, err := detect.NewEngine(cfg.Detectors, cfg.Rules, cfg.Alerts)
	if err != nil {
		return nil, err
	}
	p := &processor{
		windower: windowing.New(cfg.Windows),
		deriver:  windowing.NewDeriver(cfg.Derived),
		engine:   engine,
		box:      box,
		device:   cfg.Device,
		topics:   cfg.Topics(),
		sumCfg:   cfg.Summaries,
		log:      log.With().Str("component", "process").Logger(),
		rejected: map[error]uint64{},
		ctl:      make(chan func()),
	}
	p.realtime = isRealtime(cfg)
	return p, nil
}

func isRealtime(cfg *configs.Config) bool {
	for _, sc := range cfg.Sources {
		if !sc.Simulated() {
			return true
		}
	}
	return false
}

// do runs f on the processor's goroutine between batches and waits for it.
// The processor must be running: its input not yet closed.
func (p *processor) do(f func()) {
	done := make(chan struct{})
	p.ctl <- func() {
		defer close(done)
		f()
	}
	<-done
}

// reconfigure switches the processor to cfg, which has passed validation
// (so the engine accepts it). Windows, derived series and detectors whose
// definition did not change keep their state. It runs on the processor's
// goroutine (see do).
func (p *processor) reconfigure(cfg *configs.Config) error {
	var err error
	p.alerts, err = p.engine.Reconfigure(cfg.Detectors, cfg.Rules, cfg.Alerts, p.alerts[:0])
	if err != nil {
		return err
	}
	for _, a := range p.alerts {
		p.queueAlert(a)
	}
	p.feats = p.windower.Reconfigure(cfg.Windows, p.feats[:0])
	p.deriver.Reconfigure(cfg.Derived)
	p.score()
	p.sumCfg = cfg.Summaries
	p.realtime = isRealtime(cfg)
	p.commit()
	return nil
}

// run consumes readings until in is closed, then flushes the open windows
// and appends the last messages.
func (p *processor) run(in <-chan emberwatch.Reading) error {
	// The ticker runs even for simulated sources, as a config change can
	// switch to a real-time one; it does nothing unless realtime is set.
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	stats := time.NewTicker(statsEvery)
	defer stats.Stop()
	for {
		select {
		case r, ok := <-in:
			if !ok {
				return p.finish()
			}
			p.add(r)
		batch:
			for n := 1; n < maxBatch; n++ {
				select {
				case r, ok := <-in:
					if !ok {
						break batch
					}
					p.add(r)
				default:
					break batch
				}
			}
		case now := <-tick.C:
			if !p.realtime {
				continue
			}
			p.feats = p.windower.Tick(now, p.feats[:0])
			p.score()
			if len(p.summaries) > 0 && now.Sub(p.sumSince) > p.sumCfg.MaxDelay {
				p.flushSummaries()
			}
		case f := <-p.ctl:
			f()
		case <-stats.C:
			p.logStats()
		}
		p.commit()
	}
}

// logStats logs the windowing and outbox counters, for an operator
// reading the device's log.
func (p *processor) logStats() {
	w := p.windower.Stats()
	o := p.box.Stats()
	p.log.Info().
		Uint64("readings_accepted", w.Accepted).Uint64("readings_late", w.Late).
		Uint64("readings_invalid", w.Invalid+w.BadTime).Uint64("readings_dropped_full", w.Full).
		Uint64("windows", w.Emitted).
		Ints("outbox_backlog", o.Backlog[:]).Int64("outbox_bytes", o.FileBytes).
		Dur("outbox_oldest_alert", o.OldestAge[emberwatch.ClassAlert]).
		Uint64("outbox_appended", o.Appended).Uint64("outbox_acked", o.Acked).
		Uints64("outbox_evicted", o.Evicted[:]).Uints64("outbox_expired", o.Expired[:]).
		Uint64("outbox_corrupt", o.Corrupt).Uint64("outbox_append_errors", o.AppendErrors).
		Str("outbox_moved_aside", o.MovedAside).
		Uint64("summaries_shed_while_disk_full", p.droppedOnFull).
		Msg("stats")
}

// finish flushes the open windows and appends the last messages.
func (p *processor) finish() error {
	p.feats = p.windower.Flush(p.feats[:0])
	p.score()
	p.flushSummaries()
	p.commit()
	if len(p.pending) > 0 {
		return errors.New("outbox refused the last messages; they are lost")
	}
	return nil
}

func (p *processor) add(r emberwatch.Reading) {
	arrival := r.Time // a simulated clock: the reading's own time
	if p.realtime {
		arrival = time.Now()
	}
	if !p.window(r, arrival) {
		return
	}
	p.derived = p.deriver.Add(r, p.derived[:0])
	for _, d := range p.derived {
		p.window(d, arrival)
	}
}

// window folds one reading into its windows and scores what closed. It
// reports whether the reading was accepted.
func (p *processor) window(r emberwatch.Reading, arrival time.Time) bool {
	var err error
	p.feats, err = p.windower.AddAt(r, arrival, p.feats[:0])
	if err != nil {
		p.rejected[err]++
		// One line per reason, then one per thousand, so a broken sensor
		// cannot flood the log.
		if n := p.rejected[err]; n == 1 || n%1000 == 0 {
			p.log.Warn().Err(err).Str("series", r.Series).Time("time", r.Time).Uint64("count", n).Msg("reading rejected")
		}
		return false
	}
	p.score()
	return true
}

// score runs the detectors over p.feats and queues alerts and summaries.
func (p *processor) score() {
	for i := range p.feats {
		f := &p.feats[i]
		p.alerts = p.engine.Observe(f, p.alerts[:0])
		for _, a := range p.alerts {
			p.queueAlert(a)
		}
		p.summarize(f)
	}
}

// summarize adds f's summary to the batch, sending the batch first if f
// would stretch it past max_delay of event time, and after if it is full.
func (p *processor) summarize(f *emberwatch.Features) {
	if len(p.summaries) > 0 && f.End.Sub(p.sumFirst) > p.sumCfg.MaxDelay {
		p.flushSummaries()
	}
	if len(p.summaries) == 0 {
		p.sumFirst, p.sumSince = f.End, time.Now()
	}
	if f.End.After(p.sumEnd) || len(p.summaries) == 0 {
		p.sumEnd = f.End
	}
	p.summaries = append(p.summaries, emberwatch.Summary{
		Series: f.Series, WindowStart: f.Start, WindowEnd: f.End,
		Count: f.Count, Mean: f.Mean, Min: f.Min, Max: f.Max, Stddev: f.Stddev, Last: f.Last,
	})
	if len(p.summaries) >= p.sumCfg.MaxBatch {
		p.flushSummaries()
	}
}

// alertMessage is the JSON published on <prefix>/<device>/alerts.
type alertMessage struct {
	Schema string `json:"schema"`
	Device string `json:"device"`
	Seq    uint64 `json:"seq"`
	emberwatch.Alert
}

// summaryMessage is the JSON published on <prefix>/<device>/summaries: a
// batch of window summaries; EventTime is the newest window end in it.
type summaryMessage struct {
	Schema    string               `json:"schema"`
	Device    string               `json:"device"`
	Seq       uint64               `json:"seq"`
	EventTime time.Time            `json:"event_time"`
	Summaries []emberwatch.Summary `json:"summaries"`
}

func (p *processor) queueAlert(a emberwatch.Alert) {
	ev := p.log.Warn()
	if a.State == emberwatch.AlertResolved {
		ev = p.log.Info()
	}
	ev.Str("state", string(a.State)).Str("series", a.Series).Float64("score", a.Score).
		Time("event_time", a.EventTime).Msg("ALERT " + a.Message)
	p.pending = append(p.pending, buffer.Pending{
		Class: emberwatch.ClassAlert,
		Topic: p.topics.Alerts,
		Encode: func(seq uint64) ([]byte, error) {
			return json.Marshal(alertMessage{Schema: emberwatch.Schema, Device: p.device, Seq: seq, Alert: a})
		},
	})
}

func (p *processor) flushSummaries() {
	if len(p.summaries) == 0 {
		return
	}
	msg := summaryMessage{Schema: emberwatch.Schema, Device: p.device, EventTime: p.sumEnd,
		Summaries: append([]emberwatch.Summary(nil), p.summaries...)}
	p.summaries = p.summaries[:0]
	p.pending = append(p.pending, buffer.Pending{
		Class: emberwatch.ClassSummary,
		Topic: p.topics.Summaries,
		Encode: func(seq uint64) ([]byte, error) {
			m := msg
			m.Seq = seq
			return json.Marshal(m)
		},
	})
}

// commit appends the queued messages in one transaction. If the outbox
// refuses them (a full disk), they wait for the next commit.
func (p *processor) commit() {
	if len(p.pending) == 0 {
		return
	}
	if _, err := p.box.Append(p.pending...); err != nil {
		p.appendErrors++
		if p.appendErrors == 1 || p.appendErrors%100 == 0 {
			p.log.Error().Err(err).Int("waiting", len(p.pending)).Uint64("failures", p.appendErrors).Msg("outbox append failed; will retry")
		}
		p.shed()
		return
	}
	clear(p.pending)
	p.pending = p.pending[:0]
}

// shed drops the oldest summaries while more than maxPending messages wait.
func (p *processor) shed() {
	for i := 0; len(p.pending) > maxPending && i < len(p.pending); {
		if p.pending[i].Class == emberwatch.ClassSummary {
			p.pending = append(p.pending[:i], p.pending[i+1:]...)
			p.droppedOnFull++
			continue
		}
		i++
	}
}
