package main

import (
	"context"
	"crypto/ed25519"
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
	"github.com/emberwatch/emberwatch/uplink"
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
//	   ▲                        ▲                                                         │
//	   └──── control loop ──────┴──────── config pushes (<prefix>/<device>/config) ◄──────┘
//
// It is wired downstream first (broker, outbox, uplink, then the processing
// stage, then the sources) and stopped upstream first: cancelling the context
// stops the sources; the processing stage drains what they sent, flushes the
// open windows and appends the last messages; the uplink gets up to
// drainTimeout to deliver the backlog; then the outbox and broker close.
//
// While it runs, the control loop (run's own goroutine) applies config
// pushes and SIGHUP reloads: see reload.go.
type agent struct {
	// path is the config file SIGHUP re-reads; empty for the embedded demo.
	path string
	// speed, if set, overrides the simulator speed of every config run.
	speed *float64

	// The running config, its source text, revision and origin.
	cfg      *configs.Config
	raw      []byte
	revision uint64
	origin   string
	// pushed is the SHA-256 of the last pushed payload applied, to tell a
	// retained push delivered again from a different one under the same
	// revision.
	pushed string
	pubKey ed25519.PublicKey
	// fileCfg and fileRaw are the file's config when a pushed one was
	// resumed in its place: the fallback if the pushed one cannot start.
	fileCfg *configs.Config
	fileRaw []byte

	log   zerolog.Logger
	hooks hooks
	// reload delivers SIGHUP.
	reload <-chan struct{}

	// Wired by run.
	box     *buffer.Outbox
	up      *uplink.Uplink
	proc    *processor
	srcs    *sourceSet
	started time.Time
	pushes  mailbox
	counts  pushCounts
}

// hooks let tests observe an agent without reaching into it.
type hooks struct {
	// brokerReady is called with the broker URL once the uplink is about to
	// connect and before any source starts.
	brokerReady func(url string)
	// applied is called on the control loop after each config push or
	// reload has been handled, with the acknowledgement sent.
	applied func(configAck)
}

func (a *agent) run(ctx context.Context) error {
	if a.origin == "" {
		a.origin = configs.OriginFile
	}
	if err := a.resume(); err != nil {
		return err
	}
	cfg := a.cfg
	topics := cfg.Topics()
	if cfg.Remote.PublicKeyFile != "" {
		k, err := configs.LoadPublicKey(cfg.Remote.PublicKeyFile)
		if err != nil {
			return fmt.Errorf("remote_config.public_key_file: %w", err)
		}
		a.pubKey = k
	}

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
	a.box = box

	upCfg := cfg.Broker
	upCfg.URL = brokerURL
	a.started = time.Now().UTC()
	a.up = uplink.New(upCfg, box, a.status(), a.log)
	a.pushes.init()
	if cfg.Remote.Enabled {
		a.up.Listen(topics.Config, a.pushes.put)
		if a.pubKey == nil {
			a.log.Warn().Str("topic", topics.Config).Msg("remote config accepts unsigned pushes; set remote_config.public_key_file to require signatures")
		}
	}
	upCtx, stopUplink := context.WithCancel(context.WithoutCancel(ctx))
	defer stopUplink()
	var wg sync.WaitGroup
	upErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		upErr <- a.up.Run(upCtx)
	}()
	defer wg.Wait()
	if a.hooks.brokerReady != nil {
		a.hooks.brokerReady(brokerURL)
	}

	// Then the processing stage, then the sources. The sources are opened
	// first: a pushed config whose sensor cannot start gives way to the
	// file's, rather than keeping the agent down.
	readings := make(chan emberwatch.Reading, readingsBuffer)
	a.srcs = newSourceSet(ctx, readings, a.log)
	opened, err := a.srcs.open(cfg.Sources, allIndexes(cfg.Sources))
	if err != nil && a.fileCfg != nil {
		a.log.Error().Err(err).Uint64("revision", a.revision).Msg("pushed config cannot start; running the config file instead")
		a.cfg, a.raw, a.origin = a.fileCfg, a.fileRaw, configs.OriginFile
		cfg = a.cfg
		if serr := a.up.SetStatus(a.status()); serr != nil && !errors.Is(serr, uplink.ErrOffline) {
			a.log.Warn().Err(serr).Msg("publish status")
		}
		opened, err = a.srcs.open(cfg.Sources, allIndexes(cfg.Sources))
	}
	if err != nil {
		stopUplink()
		return err
	}
	a.proc, err = newProcessor(cfg, box, a.log)
	if err != nil {
		closeAll(opened)
		stopUplink()
		return err
	}
	procDone := make(chan error, 1)
	go func() { procDone <- a.proc.run(readings) }()
	a.srcs.start(opened)
	a.log.Info().Str("device", cfg.Device).Str("broker", brokerURL).Str("alerts_topic", topics.Alerts).
		Int("sources", len(cfg.Sources)).Uint64("config_revision", a.revision).Str("config_origin", a.origin).
		Msg("agent running")

	errs := a.control(ctx)

	// Stop the sources, then let the processor drain and flush.
	a.srcs.stopAll()
	close(readings)
	if err := <-procDone; err != nil {
		errs = append(errs, err)
	}

	// Give the uplink a bounded time to deliver the backlog.
	a.drain(box, a.up)
	stopUplink()
	wg.Wait()
	if err := <-upErr; err != nil {
		errs = append(errs, err)
	}
	a.log.Info().Int("outbox_backlog", box.Len()).Uint64("published", a.up.Published()).Msg("agent stopped")
	return errors.Join(errs...)
}

func allIndexes[T any](xs []T) []int {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// control is the agent's control loop: it applies config pushes and
// reloads until ctx ends, a source fails, or every source has finished
// (a recording replayed to its end). It returns the sources' errors.
func (a *agent) control(ctx context.Context) []error {
	var errs []error
	for {
		select {
		case <-ctx.Done():
			return errs
		case err := <-a.srcs.failed:
			// A source that fails takes the agent down with it, so that
			// a supervisor restarts it and the operator sees why.
			return append(errs, err)
		case <-a.srcs.finished:
			if a.srcs.reap() == 0 {
				return errs // every source has finished
			}
		case <-a.pushes.ready:
			if p, ok, dropped := a.pushes.take(); ok {
				a.counts.dropped = dropped
				a.handlePush(p)
			}
		case <-a.reload:
			a.handleReload()
		}
	}
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

// statusMessage is the JSON retained on <prefix>/<device>/status.
type statusMessage struct {
	Schema         string    `json:"schema"`
	Device         string    `json:"device"`
	State          string    `json:"state"`
	EventTime      time.Time `json:"event_time"`
	Version        string    `json:"version"`
	ConfigRevision uint64    `json:"config_revision"`
	ConfigHash     string    `json:"config_hash"`
	StartedAt      time.Time `json:"started_at"`
}

// status returns the status payloads for the running config.
func (a *agent) status() uplink.Status {
	sum := sha256.Sum256(a.raw)
	msg := statusMessage{Schema: emberwatch.Schema, Device: a.cfg.Device, Version: version,
		ConfigRevision: a.revision, ConfigHash: hex.EncodeToString(sum[:6]), StartedAt: a.started}
	encode := func(state string) []byte {
		m := msg
		m.State, m.EventTime = state, time.Now().UTC()
		b, _ := json.Marshal(m)
		return b
	}
	return uplink.Status{
		Topic:  a.cfg.Topics().Status,
		Online: func() []byte { return encode("online") },
		// Also the last will, built at connect: its event time is when
		// the will was set, not when the link died.
		Offline: func() []byte { return encode("offline") },
	}
}
