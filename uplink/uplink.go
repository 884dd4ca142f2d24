package uplink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/emberwatch/emberwatch"
)

// Outbox is what the uplink needs from the outbox: take records to send,
// delete what the broker acknowledged, put back what it did not.
type Outbox interface {
	Take(ctx context.Context, max int) ([]emberwatch.Message, error)
	Ack(seqs []uint64) error
	Release(seqs []uint64) error
}

// Status is the device's retained status topic and its two payloads, built
// when they are sent so that they carry the time. Offline is built at each
// connect for the last will, and again at a clean shutdown.
type Status struct {
	Topic   string
	Online  func() []byte
	Offline func() []byte
}

// ErrOffline is returned by PublishRetained when no session is up.
var ErrOffline = errors.New("uplink: not connected to the broker")

// Uplink drains an outbox to one broker. Run owns its goroutines.
type Uplink struct {
	cfg Config
	box Outbox
	log zerolog.Logger

	mu        sync.Mutex
	status    Status
	listen    []listener
	client    paho.Client // while a session is up
	published uint64

	publishers sync.WaitGroup // a session's publisher may outlive it
}

// listener is a subscription made on every connect.
type listener struct {
	topic  string
	handle func(payload []byte)
}

// New returns an uplink for the broker at cfg.URL. cfg must be normalised
// and valid, with URL set (start the embedded broker first if it was empty).
func New(cfg Config, box Outbox, status Status, log zerolog.Logger) *Uplink {
	return &Uplink{cfg: cfg, box: box, status: status, log: log.With().Str("component", "uplink").Logger()}
}

// Connected reports whether a session with the broker is up.
func (u *Uplink) Connected() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.client != nil
}

// Listen subscribes to topic (QoS 1) on every connect, and passes each
// message that arrives to handle. Call it before Run. handle runs on the
// MQTT client's goroutine and must return quickly.
func (u *Uplink) Listen(topic string, handle func(payload []byte)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.listen = append(u.listen, listener{topic, handle})
}

// SetStatus replaces the status payloads and, if a session is up,
// publishes the new online status. The last will registered with the
// broker changes at the next connect; a clean shutdown sends the new
// offline payload itself.
func (u *Uplink) SetStatus(st Status) error {
	u.mu.Lock()
	u.status = st
	u.mu.Unlock()
	if st.Topic == "" {
		return nil
	}
	return u.PublishRetained(st.Topic, st.Online())
}

// PublishRetained sends one retained QoS 1 message now, around the outbox,
// and waits for its PUBACK. It is for state topics (status, config
// acknowledgements), where only the latest message matters and the next
// connect brings a fresh one; events go through the outbox.
func (u *Uplink) PublishRetained(topic string, payload []byte) error {
	u.mu.Lock()
	c := u.client
	u.mu.Unlock()
	if c == nil {
		return ErrOffline
	}
	t := c.Publish(topic, 1, true, payload)
	if !t.WaitTimeout(u.cfg.ConnectTimeout) {
		return fmt.Errorf("uplink: publish to %s: no PUBACK within %s", topic, u.cfg.ConnectTimeout)
	}
	if err := t.Error(); err != nil {
		return fmt.Errorf("uplink: publish to %s: %w", topic, err)
	}
	return nil
}

func (u *Uplink) currentStatus() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.status
}

// Run connects, drains the outbox and reconnects with backoff until ctx is
// cancelled. On return every record not acknowledged is back in the outbox.
// It returns nil on cancellation and an error only for a configuration that
// can never connect (an unreadable password or certificate file).
func (u *Uplink) Run(ctx context.Context) error {
	defer u.publishers.Wait()
	opts, err := u.clientOptions()
	if err != nil {
		return err
	}
	backoff := u.cfg.BackoffMin
	for ctx.Err() == nil {
		start := time.Now()
		err := u.session(ctx, opts)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > u.cfg.BackoffMax {
			backoff = u.cfg.BackoffMin // the link was up a good while: start over
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		u.log.Warn().Err(err).Dur("retry_in", wait).Msg("broker connection down")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, u.cfg.BackoffMax)
	}
	return nil
}

func (u *Uplink) clientOptions() (*paho.ClientOptions, error) {
	o := paho.NewClientOptions().
		AddBroker(u.cfg.URL).
		SetClientID(u.cfg.ClientID).
		SetProtocolVersion(4). // MQTT 3.1.1; no silent retry with 3.1 after a refusal
		SetCleanSession(u.cfg.cleanSession()).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(u.cfg.Keepalive).
		SetConnectTimeout(u.cfg.ConnectTimeout).
		SetWriteTimeout(u.cfg.ConnectTimeout).
		SetOrderMatters(false)
	if u.cfg.Username != "" {
		pw, err := u.cfg.password()
		if err != nil {
			return nil, fmt.Errorf("uplink: %w", err)
		}
		o.SetUsername(u.cfg.Username).SetPassword(pw)
	}
	if u.cfg.CAFile != "" || u.cfg.CertFile != "" {
		tc, err := u.tlsConfig()
		if err != nil {
			return nil, fmt.Errorf("uplink: %w", err)
		}
		o.SetTLSConfig(tc)
	}
	return o, nil
}

func (u *Uplink) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if u.cfg.CAFile != "" {
		pem, err := os.ReadFile(u.cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate found", u.cfg.CAFile)
		}
	}
	if u.cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(u.cfg.CertFile, u.cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

type inflight struct {
	seq uint64
	tok paho.Token
}

// session runs one connection: connect, publish status, drain until the
// link drops or ctx ends.
func (u *Uplink) session(ctx context.Context, opts *paho.ClientOptions) error {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	o := *opts
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		cancel(fmt.Errorf("connection lost: %w", err))
	})
	status := u.currentStatus()
	if status.Topic != "" {
		o.SetBinaryWill(status.Topic, status.Offline(), 1, true)
	}
	client := paho.NewClient(&o)
	tok := client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		client.Disconnect(0)
		return ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("connect to %s: %w", u.cfg.URL, explainConnectError(err, u.cfg))
	}
	u.log.Info().Str("broker", u.cfg.URL).Msg("connected to broker")
	if status.Topic != "" {
		u.publishStatus(client, status.Topic, status.Online(), u.cfg.ConnectTimeout)
	}
	if err := u.subscribe(client); err != nil {
		client.Disconnect(250)
		return err
	}
	u.setClient(client)
	defer u.setClient(nil)

	// Four stages, each on a goroutine of its own:
	//
	//	sender -> publisher -> acker -> deleter
	//
	// The sender takes records from the outbox, up to InFlight ahead, and
	// passes each on once a slot is free: slots bounds the publishes
	// awaiting their PUBACK. The publisher hands them to paho in order. The
	// acker waits for each PUBACK in order and frees its slot at once, so
	// that the window stays full and the link busy. The deleter deletes
	// acknowledged records in batches: everything acknowledged while the
	// previous batch's transaction (and fsync) ran goes in the next one.
	//
	// The session waits for the sender, acker and deleter, not for the
	// publisher: after the link dies paho's Publish can wait write_timeout
	// to hand its packet to a writer that has stopped (paho issue #325).
	// Whatever the publisher still holds is in outstanding and goes back to
	// the outbox; the dead client can no longer send it. Run waits for the
	// publisher before it returns.
	slots := make(chan struct{}, u.cfg.InFlight)
	toPublish := make(chan emberwatch.Message)
	pending := make(chan inflight, u.cfg.InFlight)
	kick := make(chan struct{}, 1)
	var (
		mu          sync.Mutex
		outstanding = map[uint64]struct{}{} // taken, not yet deleted
		ackedSeqs   []uint64                // acknowledged, not yet deleted
		wg          sync.WaitGroup
	)
	ackerDone := make(chan struct{})
	wg.Add(3)
	go func() { // sender
		defer wg.Done()
		defer close(toPublish)
		for {
			msgs, err := u.box.Take(sctx, u.cfg.InFlight)
			if err != nil {
				if sctx.Err() == nil {
					cancel(fmt.Errorf("take from outbox: %w", err))
				}
				return
			}
			mu.Lock()
			for _, m := range msgs {
				outstanding[m.Seq] = struct{}{}
			}
			mu.Unlock()
			for _, m := range msgs {
				select {
				case slots <- struct{}{}:
				case <-sctx.Done():
					return
				}
				select {
				case toPublish <- m:
				case <-sctx.Done():
					return
				}
			}
		}
	}()
	u.publishers.Add(1)
	go func() { // publisher
		defer u.publishers.Done()
		defer close(pending)
		for m := range toPublish {
			if sctx.Err() != nil {
				return
			}
			p := inflight{seq: m.Seq, tok: client.Publish(m.Topic, 1, false, m.Payload)}
			select {
			case pending <- p:
			case <-sctx.Done():
				return
			}
		}
	}()
	go func() { // acker
		defer wg.Done()
		defer close(ackerDone)
		ack := func(p inflight) {
			if err := p.tok.Error(); err != nil {
				cancel(fmt.Errorf("publish: %w", err))
				return
			}
			<-slots
			mu.Lock()
			ackedSeqs = append(ackedSeqs, p.seq)
			mu.Unlock()
			select {
			case kick <- struct{}{}:
			default:
			}
		}
		for {
			select {
			case p, ok := <-pending:
				if !ok {
					return
				}
				select {
				case <-p.tok.Done():
					ack(p)
					continue
				case <-sctx.Done():
					if done(p.tok) {
						ack(p)
					}
				}
			case <-sctx.Done():
			}
			// The session is ending: count what was acknowledged already.
			for {
				select {
				case p, ok := <-pending:
					if !ok {
						return
					}
					if done(p.tok) {
						ack(p)
					}
				default:
					return
				}
			}
		}
	}()
	go func() { // deleter
		defer wg.Done()
		for {
			last := false
			select {
			case <-kick:
			case <-ackerDone:
				last = true
			}
			mu.Lock()
			batch := ackedSeqs
			ackedSeqs = nil
			mu.Unlock()
			if len(batch) > 0 {
				if err := u.box.Ack(batch); err != nil {
					// They stay outstanding, go back and are sent again.
					cancel(fmt.Errorf("ack outbox: %w", err))
				} else {
					mu.Lock()
					for _, s := range batch {
						delete(outstanding, s)
					}
					mu.Unlock()
					u.mu.Lock()
					u.published += uint64(len(batch))
					u.mu.Unlock()
				}
			}
			if last {
				return
			}
		}
	}()
	<-sctx.Done()
	wg.Wait()
	mu.Lock()
	seqs := make([]uint64, 0, len(outstanding))
	for s := range outstanding {
		seqs = append(seqs, s)
	}
	mu.Unlock()

	if st := u.currentStatus(); ctx.Err() != nil && st.Topic != "" {
		// Clean shutdown: say so ourselves (briefly: the agent is
		// stopping); the broker only sends the will when the link dies.
		u.setClient(nil)
		u.publishStatus(client, st.Topic, st.Offline(), min(u.cfg.ConnectTimeout, time.Second))
	}
	client.Disconnect(250)
	if len(seqs) > 0 {
		if err := u.box.Release(seqs); err != nil && !errors.Is(err, context.Canceled) {
			u.log.Warn().Err(err).Msg("return unacknowledged records to the outbox")
		}
	}
	return context.Cause(sctx)
}

// done reports whether t has completed, without waiting.
func done(t paho.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}

func (u *Uplink) publishStatus(c paho.Client, topic string, payload []byte, wait time.Duration) {
	t := c.Publish(topic, 1, true, payload)
	if !t.WaitTimeout(wait) || t.Error() != nil {
		u.log.Warn().Err(t.Error()).Msg("publish status")
	}
}

// subscribe makes the Listen subscriptions on a new session.
func (u *Uplink) subscribe(c paho.Client) error {
	u.mu.Lock()
	ls := slices.Clone(u.listen)
	u.mu.Unlock()
	for _, l := range ls {
		t := c.Subscribe(l.topic, 1, func(_ paho.Client, m paho.Message) { l.handle(m.Payload()) })
		if !t.WaitTimeout(u.cfg.ConnectTimeout) {
			return fmt.Errorf("subscribe to %s: no SUBACK within %s", l.topic, u.cfg.ConnectTimeout)
		}
		if err := t.Error(); err != nil {
			return fmt.Errorf("subscribe to %s: %w", l.topic, err)
		}
	}
	return nil
}

func (u *Uplink) setClient(c paho.Client) {
	u.mu.Lock()
	u.client = c
	u.mu.Unlock()
}

// Published returns how many records the broker has acknowledged.
func (u *Uplink) Published() uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.published
}
