package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/configs"
)

// Config changes reach a running agent two ways: a push on
// <prefix>/<device>/config (an envelope: revision, payload, optional
// signature) and SIGHUP, which re-reads the config file. Both go through
// apply: parse and validate exactly as `agent validate` does, refuse
// changes that need a restart, open every new source (a sensor that cannot
// start leaves the running config in place: a roll-back), save the config
// as the last good one, then switch. Sources, windows, derived series and
// detectors whose definition did not change keep running with their state;
// the outbox is untouched. Every push is answered on .../config/ack.

// Results of a config change, as the ack reports them.
const (
	resultApplied    = "applied"
	resultUnchanged  = "unchanged"
	resultRejected   = "rejected"
	resultRolledBack = "rolled_back"
)

// configAck is the JSON retained on <prefix>/<device>/config/ack.
type configAck struct {
	Schema          string    `json:"schema"`
	Device          string    `json:"device"`
	EventTime       time.Time `json:"event_time"`
	Revision        uint64    `json:"revision"`
	Origin          string    `json:"origin"`
	Result          string    `json:"result"`
	AppliedRevision uint64    `json:"applied_revision"`
	Errors          []string  `json:"errors,omitempty"`
}

// pushCounts count config pushes by outcome, for the log.
type pushCounts struct {
	received, applied, unchanged, rejected, rolledBack, unsigned, badSignature, replayed, dropped uint64
}

// mailbox queues pushes from the MQTT client's goroutines to the control
// loop. Handlers may run concurrently, so arrival order is not revision
// order; every push is handled, and revisions sort out which one wins. A
// burst beyond maxQueued drops the oldest, counted.
type mailbox struct {
	mu      sync.Mutex
	queue   [][]byte
	dropped uint64
	ready   chan struct{}
}

// maxQueued bounds the pushes waiting to be handled.
const maxQueued = 16

func (m *mailbox) init() { m.ready = make(chan struct{}, 1) }

func (m *mailbox) put(p []byte) {
	m.mu.Lock()
	if len(m.queue) == maxQueued {
		m.queue = m.queue[1:]
		m.dropped++
	}
	m.queue = append(m.queue, append([]byte(nil), p...))
	m.mu.Unlock()
	select {
	case m.ready <- struct{}{}:
	default:
	}
}

// take returns the oldest waiting push, if any, and how many were dropped.
func (m *mailbox) take() (p []byte, ok bool, dropped uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.queue) == 0 {
		return nil, false, m.dropped
	}
	p = m.queue[0]
	m.queue[0] = nil
	m.queue = m.queue[1:]
	if len(m.queue) > 0 {
		select {
		case m.ready <- struct{}{}: // more to come
		default:
		}
	}
	return p, true, m.dropped
}

// resume picks the config to start with. A config pushed earlier and saved
// as the last good one wins over the file, as long as it still parses and
// agrees with the file on what only a restart may change; the saved
// revision carries on either way, so that replay protection survives a
// restart.
func (a *agent) resume() error {
	path := configs.LastGoodPath(a.cfg.DataDir)
	lg, ok, err := configs.ReadLastGood(path)
	if err != nil {
		a.log.Error().Err(err).Msg("last good config unreadable; starting from the config file")
		return nil
	}
	if !ok {
		return nil
	}
	a.revision, a.pushed = lg.Revision, lg.PushedSHA256
	if lg.Origin != configs.OriginPush {
		return nil
	}
	cfg, err := a.parse([]byte(lg.Payload))
	if err == nil {
		err = a.cfg.CheckLiveChange(cfg, false)
	}
	if err != nil {
		a.log.Error().Err(err).Uint64("revision", lg.Revision).Msg("pushed config saved earlier no longer fits; starting from the config file")
		return nil
	}
	a.fileCfg, a.fileRaw = a.cfg, a.raw
	a.cfg, a.raw, a.origin = cfg, []byte(lg.Payload), configs.OriginPush
	a.log.Info().Uint64("revision", lg.Revision).Str("saved_in", path).Msg("starting from the config pushed earlier")
	return nil
}

// parse parses a config the way `agent validate` does, then applies the
// --speed override like every config this agent runs.
func (a *agent) parse(raw []byte) (*configs.Config, error) {
	cfg, err := configs.Parse(raw)
	if err != nil {
		return nil, err
	}
	if a.speed != nil {
		for i := range cfg.Sources {
			if cfg.Sources[i].Type == "simulator" {
				cfg.Sources[i].Simulator.Speed = *a.speed
			}
		}
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// handlePush decodes, verifies and applies one push, and answers it.
func (a *agent) handlePush(payload []byte) {
	a.counts.received++
	env, err := configs.DecodeEnvelope(payload)
	if err != nil {
		a.counts.rejected++
		a.answer(0, configs.OriginPush, resultRejected, []error{err})
		return
	}
	if err := env.Verify(a.pubKey); err != nil {
		a.counts.rejected++
		if errors.Is(err, configs.ErrUnsigned) {
			a.counts.unsigned++
		} else {
			a.counts.badSignature++
		}
		a.answer(env.Revision, configs.OriginPush, resultRejected, []error{err})
		return
	}
	switch {
	case env.Revision < a.revision:
		a.counts.rejected++
		a.counts.replayed++
		a.answer(env.Revision, configs.OriginPush, resultRejected, []error{
			fmt.Errorf("revision %d is older than the running revision %d; push a higher revision", env.Revision, a.revision)})
		return
	case env.Revision == a.revision && configs.PayloadHash(env.Payload) == a.pushed:
		// The retained push again, as every reconnect delivers it.
		a.counts.unchanged++
		a.answer(env.Revision, configs.OriginPush, resultUnchanged, nil)
		return
	case env.Revision == a.revision:
		a.counts.rejected++
		a.counts.replayed++
		a.answer(env.Revision, configs.OriginPush, resultRejected, []error{
			fmt.Errorf("revision %d is already applied with a different payload; push a higher revision", env.Revision)})
		return
	}
	cfg, err := a.parse([]byte(env.Payload))
	if err != nil {
		a.counts.rejected++
		a.answer(env.Revision, configs.OriginPush, resultRejected, flatten(err))
		return
	}
	lg := configs.LastGood{Revision: env.Revision, Origin: configs.OriginPush, Payload: env.Payload,
		Signature: env.Signature, PushedSHA256: configs.PayloadHash(env.Payload)}
	result, errs := a.apply(cfg, lg)
	switch result {
	case resultApplied:
		a.counts.applied++
		a.pushed = lg.PushedSHA256
	case resultRolledBack:
		a.counts.rolledBack++
	default:
		a.counts.rejected++
	}
	a.answer(env.Revision, configs.OriginPush, result, errs)
}

// handleReload re-reads the config file (SIGHUP) and applies it. The file
// is trusted: it may change remote_config, and it keeps the revision.
func (a *agent) handleReload() {
	if a.path == "" {
		a.log.Warn().Msg("SIGHUP: running the embedded demo config; there is no file to re-read")
		return
	}
	raw, err := os.ReadFile(a.path)
	var cfg *configs.Config
	if err == nil {
		cfg, err = a.parse(raw)
	}
	if err != nil {
		a.answer(a.revision, configs.OriginFile, resultRejected, flatten(err))
		return
	}
	lg := configs.LastGood{Revision: a.revision, Origin: configs.OriginFile, Payload: string(raw), PushedSHA256: a.pushed}
	result, errs := a.apply(cfg, lg)
	a.answer(a.revision, configs.OriginFile, result, errs)
}

// apply switches the running agent to cfg, or leaves it as it is and says
// why. See the comment at the top of this file for the steps.
func (a *agent) apply(cfg *configs.Config, lg configs.LastGood) (result string, errs []error) {
	trusted := lg.Origin == configs.OriginFile
	if err := a.cfg.CheckLiveChange(cfg, trusted); err != nil {
		return resultRejected, flatten(err)
	}
	pubKey := a.pubKey
	if cfg.Remote.PublicKeyFile != a.cfg.Remote.PublicKeyFile {
		pubKey = nil
		if cfg.Remote.PublicKeyFile != "" {
			k, err := configs.LoadPublicKey(cfg.Remote.PublicKeyFile)
			if err != nil {
				return resultRejected, []error{fmt.Errorf("remote_config.public_key_file: %w", err)}
			}
			pubKey = k
		}
	}
	if cfg.Remote.Enabled != a.cfg.Remote.Enabled {
		return resultRejected, []error{errors.New("remote_config.enabled: it takes a restart to change")}
	}
	startIdx, stopNames := a.srcs.plan(cfg.Sources)
	opened, err := a.srcs.open(cfg.Sources, startIdx)
	if err != nil {
		a.log.Error().Err(err).Msg("new config cannot start; the running config stays")
		return resultRolledBack, []error{err, fmt.Errorf("kept revision %d running", a.revision)}
	}
	lg.AppliedAt = time.Now().UTC()
	if err := configs.WriteLastGood(configs.LastGoodPath(a.cfg.DataDir), lg); err != nil {
		closeAll(opened)
		return resultRejected, []error{fmt.Errorf("save last good config: %w", err)}
	}
	a.srcs.stop(stopNames)
	var perr error
	a.proc.do(func() { perr = a.proc.reconfigure(cfg) })
	if perr != nil { // Validate parsed every rule already; this is a bug
		a.log.Error().Err(perr).Msg("processor refused a validated config")
	}
	a.srcs.start(opened)
	a.cfg, a.raw, a.revision, a.origin, a.pubKey = cfg, []byte(lg.Payload), lg.Revision, lg.Origin, pubKey
	if err := a.up.SetStatus(a.status()); err != nil {
		a.log.Warn().Err(err).Msg("publish status after config change")
	}
	a.log.Info().Uint64("revision", a.revision).Str("origin", a.origin).
		Int("sources_restarted", len(stopNames)).Int("sources_started", len(startIdx)).Msg("config applied")
	return resultApplied, nil
}

// answer logs the outcome of a config change and publishes the ack.
func (a *agent) answer(revision uint64, origin, result string, errs []error) {
	ack := configAck{Schema: emberwatch.Schema, Device: a.cfg.Device, EventTime: time.Now().UTC(),
		Revision: revision, Origin: origin, Result: result, AppliedRevision: a.revision}
	for _, e := range errs {
		ack.Errors = append(ack.Errors, e.Error())
	}
	ev := a.log.Info()
	if result == resultRejected || result == resultRolledBack {
		ev = a.log.Error()
	}
	c := a.counts
	ev.Uint64("revision", revision).Str("origin", origin).Str("result", result).Strs("errors", ack.Errors).
		Uint64("applied_revision", a.revision).Uint64("pushes", c.received).Uint64("pushes_rejected", c.rejected).
		Uint64("pushes_unsigned", c.unsigned).Uint64("pushes_bad_signature", c.badSignature).
		Uint64("pushes_replayed", c.replayed).Uint64("pushes_dropped", c.dropped).Msg("config change")
	b, _ := json.Marshal(ack)
	if err := a.up.PublishRetained(a.cfg.Topics().ConfigAck, b); err != nil {
		a.log.Warn().Err(err).Msg("publish config ack; the next connect delivers the push, and its ack, again")
	}
	if a.hooks.applied != nil {
		a.hooks.applied(ack)
	}
}

// flatten lists the errors joined in err, one per field.
func flatten(err error) []error {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		return j.Unwrap()
	}
	return []error{err}
}
