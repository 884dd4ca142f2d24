package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
	"github.com/emberwatch/emberwatch/configs"
	"github.com/emberwatch/emberwatch/detect"
	"github.com/emberwatch/emberwatch/sensors"
	"github.com/emberwatch/emberwatch/uplink"
	"github.com/emberwatch/emberwatch/windowing"
)

// drainTimeout bounds how long a shutdown waits for the broker to take the
// outbox's backlog; what it does not take stays in the file for next time.
const drainTimeout = 5 * time.Second

// readingsBuffer is how many readings may wait between the sources and the
// processing stage.
const readingsBuffer = 1024

// maxBatch is how many readings the processing stage folds in before it
// appends the resulting messages to the outbox in one transaction.
const maxBatch = 512

// agent is one running pipeline:
//
//	sources ──readings──► process (windowing → detect) ──append──► outbox ──take/ack──► uplink ──► broker
//
// It is wired downstream first (broker, outbox, uplink, then the processing
// stage, then the sources) and stopped upstream first: cancelling the context
// stops the sources; the processing stage drains what they sent, flushes the
// open windows and appends the last messages; the uplink gets up to
// drainTimeout to deliver the backlog; then the outbox and broker close.
type agent struct {
	cfg   *configs.Config
	raw   []byte // the config's source, for its revision hash
	log   zerolog.Logger
	hooks hooks
}

// hooks let tests observe an agent without reaching into it.
type hooks struct {
	// brokerReady is called with the broker URL once the uplink is about to
	// connect and before any source starts.
	brokerReady func(url string)
}

func (a *agent) run(ctx context.Context) error {
	cfg := a.cfg
	topics := cfg.Topics()

	// Downstream first: broker, outbox, uplink.
	brokerURL := cfg.Broker.URL
	if brokerURL == "" {
		b, err := uplink.StartBroker(cfg.Broker.Embedded.Listen, a.log)
		if err != nil {
			return err
		}
		defer b.Close()
		brokerURL = b.URL()
	}
	box, err := buffer.Open(cfg.Outbox, a.log)
	if err != nil {
		return err
	}
	defer box.Close()

	upCfg := cfg.Broker
	upCfg.URL = brokerURL
	started := time.Now().UTC()
	status := uplink.Status{
		Topic: topics.Status,
		Online: func() []byte {
			return a.statusPayload("online", started)
		},
		Offline: a.statusPayload("offline", started),
	}
	up := uplink.New(upCfg, box, status, a.log)
	upCtx, stopUplink := context.WithCancel(context.WithoutCancel(ctx))
	defer stopUplink()
	var wg sync.WaitGroup
	upErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		upErr <- up.Run(upCtx)
	}()
	defer wg.Wait()
	if a.hooks.brokerReady != nil {
		a.hooks.brokerReady(brokerURL)
	}

	// Then the processing stage, then the sources.
	engine, err := detect.NewEngine(cfg.Detectors, cfg.Rules, cfg.Alerts)
	if err != nil {
		stopUplink()
		return err
	}
	p := &processor{
		windower: windowing.New(cfg.Windows),
		deriver:  windowing.NewDeriver(cfg.Derived),
		engine:   engine,
		box:      box,
		device:   cfg.Device,
		topics:   topics,
		log:      a.log.With().Str("component", "process").Logger(),
	}
	for _, sc := range cfg.Sources {
		p.realtime = p.realtime || !sc.Simulated()
	}
	srcs := make([]sensors.Source, 0, len(cfg.Sources))
	for _, sc := range cfg.Sources {
		s, err := sensors.New(sc, a.log)
		if err != nil {
			stopUplink()
			return fmt.Errorf("source %s: %w", sc.Name, err)
		}
		srcs = append(srcs, s)
	}
	readings := make(chan emberwatch.Reading, readingsBuffer)
	srcCtx, stopSources := context.WithCancel(ctx)
	defer stopSources()
	var srcWG sync.WaitGroup
	srcErrs := make(chan error, len(srcs))
	for i, s := range srcs {
		srcWG.Add(1)
		go func() {
			defer srcWG.Done()
			if err := s.Run(srcCtx, readings); err != nil {
				srcErrs <- fmt.Errorf("source %s: %w", cfg.Sources[i].Name, err)
				stopSources()
			}
		}()
	}
	go func() {
		srcWG.Wait()
		close(readings)
	}()
	a.log.Info().Str("device", cfg.Device).Str("broker", brokerURL).Str("alerts_topic", topics.Alerts).
		Int("sources", len(srcs)).Msg("agent running")

	procErr := p.run(readings) // returns once every source has stopped
	srcWG.Wait()
	close(srcErrs)
	var errs []error
	for e := range srcErrs {
		errs = append(errs, e)
	}
	if procErr != nil {
		errs = append(errs, procErr)
	}

	// Give the uplink a bounded time to deliver the backlog.
	a.drain(box, up)
	stopUplink()
	wg.Wait()
	if err := <-upErr; err != nil {
		errs = append(errs, err)
	}
	a.log.Info().Int("outbox_backlog", box.Len()).Uint64("published", up.Published()).Msg("agent stopped")
	return errors.Join(errs...)
}

// drain waits until the outbox is empty, the uplink is disconnected, or
// drainTimeout passes.
func (a *agent) drain(box *buffer.Outbox, up *uplink.Uplink) {
	deadline := time.NewTimer(drainTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		changed := box.Changed()
		if box.Len() == 0 {
			return
		}
		if !up.Connected() {
			a.log.Warn().Int("backlog", box.Len()).Msg("broker unreachable at shutdown; backlog stays in the outbox")
			return
		}
		select {
		case <-changed:
		case <-poll.C: // the uplink may drop while the outbox is quiet
		case <-deadline.C:
			a.log.Warn().Int("backlog", box.Len()).Msg("drain timed out; backlog stays in the outbox")
			return
		}
	}
}

func (a *agent) statusPayload(state string, started time.Time) []byte {
	sum := sha256.Sum256(a.raw)
	b, _ := json.Marshal(map[string]any{
		"schema":      emberwatch.Schema,
		"device":      a.cfg.Device,
		"state":       state,
		"version":     version,
		"config_hash": hex.EncodeToString(sum[:6]),
		"started_at":  started,
	})
	return b
}
