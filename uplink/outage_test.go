package uplink_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
	"github.com/emberwatch/emberwatch/internal/brokertest"
	"github.com/emberwatch/emberwatch/uplink"
)

// The outage tests: a producer appends alerts and summaries all along, the
// uplink drains them, and halfway the broker goes away and comes back. What
// the subscriber finally holds is checked against what was appended:
// everything arrives, in order within a class, and the only duplicates are
// publishes that were in flight when the link died.

const (
	alertTopic   = "dev/alerts"
	summaryTopic = "dev/summaries"
	// outageInFlight is the uplink's in_flight in the outage tests: at most
	// this many publishes are unacknowledged when the link dies.
	outageInFlight = 64
)

// outage is how a test takes the broker away (down, called while the
// uplink drains a backlog) and brings it back (up), and how many duplicates
// that may cause.
type outage struct {
	down, up func(t *testing.T)
	maxDups  int
}

// TestOutageBrokerRestart kills Mosquitto (SIGKILL) with a full window of
// publishes in flight, keeps producing while it is down, then starts it
// again on the same port.
//
// Mosquitto runs with persistence off, and that makes it lose two things a
// test must keep apart from the uplink's own losses:
//   - A message it acknowledged but had not yet written to the subscriber
//     dies with the process. So before the kill the test holds the uplink
//     (a gate on Take) until its window is acknowledged and the subscriber
//     has everything acknowledged; then it freezes the broker (SIGSTOP),
//     lets a full window of publishes go out into the frozen broker, and
//     kills it. Those publishes were sent and never acknowledged, which is
//     the case the uplink must handle: it resends them after the restart.
//   - The restarted broker has forgotten the subscriber's session, so
//     whatever is published before the subscriber is back and subscribed
//     again goes to nobody. The gate stays shut from the kill until the
//     subscriber has its SUBACK from the new broker.
//
// Nothing reached the broker's event loop from that last window, so no
// duplicates are allowed here; TestOutageLinkDown covers the window that
// the broker did pass on.
func TestOutageBrokerRestart(t *testing.T) {
	m := brokertest.StartMosquitto(t)
	box := openOutbox(t)
	gate := newGatedOutbox(box)
	sub := subscribeSession(t, m.URL(), "dev/+")
	defer sub.close()
	runOutage(t, m.URL(), box, gate, sub, outage{
		down: func(t *testing.T) {
			gate.shut()
			if !await(10*time.Second, func() bool { return gate.outstanding() == 0 }) {
				t.Fatalf("uplink still has %d publishes unacknowledged 10s after its Take was held", gate.outstanding())
			}
			if !await(10*time.Second, func() bool { return sub.distinct() >= gate.acked() }) {
				t.Fatalf("subscriber has %d messages of the %d the broker acknowledged", sub.distinct(), gate.acked())
			}
			m.Freeze()
			gate.open()
			if !await(10*time.Second, func() bool { return gate.outstanding() >= outageInFlight }) {
				t.Fatalf("uplink has %d publishes in flight to the frozen broker, want %d", gate.outstanding(), outageInFlight)
			}
			m.Stop()
			gate.shut() // the uplink cannot reach the broker again before Start
		},
		up: func(t *testing.T) {
			m.Start()
			if !await(10*time.Second, func() bool { return sub.subscriptions() >= 2 }) {
				t.Fatal("subscriber did not subscribe again within 10s of the restart")
			}
			gate.open()
		},
		maxDups: 0,
	})
}

// TestOutageLinkDown cuts the network between the uplink and a broker that
// stays up (a proxy drops every connection and refuses new ones) while the
// uplink drains a backlog, then restores it. The subscriber is connected to
// the broker directly and never notices. Publishes the broker passed on but
// whose PUBACK the cut swallowed arrive twice. This is also the outage the
// embedded broker can take: mochi cannot be killed and restarted on its
// port, and it sends PUBACK before it passes a message on, so closing it
// can lose what it acknowledged.
func TestOutageLinkDown(t *testing.T) {
	brokers(t, func(t *testing.T, url string) {
		p := startLinkProxy(t, strings.TrimPrefix(url, "tcp://"))
		defer p.close()
		box := openOutbox(t)
		sub := subscribeSession(t, url, "dev/+")
		defer sub.close()
		runOutage(t, p.url(), box, box, sub, outage{
			down:    func(*testing.T) { p.cut() },
			up:      func(*testing.T) { p.restore() },
			maxDups: outageInFlight,
		})
	})
}

// TestLinkLossWhilePublishBlocked cuts the link while the uplink's sender
// waits inside paho's Publish for the client's writer, which is stuck on a
// full socket (the proxy in front of the broker has stopped reading): the
// uplink must notice the dead link at once, not after write_timeout.
func TestLinkLossWhilePublishBlocked(t *testing.T) {
	m := brokertest.StartMosquitto(t)
	p := startLinkProxy(t, m.Addr())
	defer p.close()
	box := openOutbox(t)
	cfg := testConfig(p.url())
	cfg.ConnectTimeout = 3 * time.Second // the bug shows as a 3s stall
	u := uplink.New(cfg, box, uplink.Status{}, logger(t))
	r := start(u)
	defer r.stop(t)
	// A window of 64 such records is far more than the socket buffers
	// between the uplink and the paused proxy hold.
	payload := make([]byte, 256<<10)
	big := make([]buffer.Pending, 70)
	for i := range big {
		big[i] = buffer.Pending{Class: emberwatch.ClassSummary, Topic: summaryTopic, Encode: func(uint64) ([]byte, error) { return payload, nil }}
	}
	// Whether paho's stopping writer still takes the waiting packet or
	// leaves it is a select between two ready channels, so one try shows
	// the bug half the time: eight show it 255 times in 256.
	for round := range 8 {
		if !await(10*time.Second, func() bool { return u.Connected() && box.Len() == 0 }) {
			t.Fatalf("round %d: uplink connected %v with %d records in the outbox after 10s", round, u.Connected(), box.Len())
		}
		p.pause()
		if _, err := box.Append(big...); err != nil {
			t.Fatal(err)
		}
		if !awaitStable(10*time.Second, blockedInPublish) {
			t.Fatalf("round %d: the uplink's sender never blocked in paho's Publish", round)
		}
		cut := time.Now()
		p.cut()
		if !await(time.Second, func() bool { return !u.Connected() }) {
			await(10*time.Second, func() bool { return !u.Connected() })
			t.Fatalf("round %d: uplink noticed the dead link after %s, want at once", round, time.Since(cut).Round(time.Millisecond))
		}
		p.restore()
	}
}

// runOutage drives one outage: produce with the broker up, take it down in
// the middle of a backlog, keep producing, bring it back, keep producing,
// stop producing and wait for the outbox to empty; then check what sub
// received. The uplink connects to url and drains out, which wraps box.
func runOutage(t *testing.T, url string, box *buffer.Outbox, out uplink.Outbox, sub *sessionSub, o outage) {
	cfg := testConfig(url)
	cfg.InFlight = outageInFlight
	u := uplink.New(cfg, out, uplink.Status{}, logger(t))
	r := start(u)
	defer r.stop(t)
	p := produce(t, box)
	defer p.stop()

	// Broker up.
	if !await(10*time.Second, func() bool { return sub.count() >= 1000 }) {
		t.Fatalf("broker up: subscriber got %d messages, want 1000", sub.count())
	}

	// Broker down in the middle of a backlog, so that the uplink has a
	// window in flight: it notices, acknowledges nothing more, and the
	// outbox grows.
	p.appendBurst(2000)
	before := sub.count()
	if !await(10*time.Second, func() bool { return sub.count() >= before+500 }) {
		t.Fatalf("broker up: subscriber got %d messages of a 2000 burst, want 500", sub.count()-before)
	}
	downAt := time.Now()
	o.down(t)
	if !await(5*time.Second, func() bool { return !u.Connected() }) {
		t.Fatal("uplink still reports Connected 5s into the outage")
	}
	published, backlog := u.Published(), box.Len()
	if !await(10*time.Second, func() bool { return box.Len() >= backlog+1000 }) {
		t.Fatalf("outbox did not grow while the broker was down: %d records, %d at the start of the outage", box.Len(), backlog)
	}
	if u.Connected() {
		t.Fatal("uplink reports Connected while the broker is down")
	}
	if n := u.Published(); n != published {
		t.Fatalf("uplink counted %d acknowledgements while the broker was down", n-published)
	}
	mark := sub.count() // arrivals from here on came after the outage
	backlog = box.Len()

	// Broker back: the backlog drains while the producer goes on.
	o.up(t)
	if !await(10*time.Second, u.Connected) {
		t.Fatal("uplink did not reconnect within 10s")
	}
	t.Logf("outage lasted %s; backlog at its end %d records", time.Since(downAt).Round(time.Millisecond), backlog)
	if !await(10*time.Second, func() bool { return sub.count() >= mark+1000 }) {
		t.Fatalf("after the outage: subscriber got %d messages, want 1000", sub.count()-mark)
	}

	// Producer stops: everything drains.
	produced := p.stop()
	if !await(20*time.Second, func() bool { return box.Len() == 0 }) {
		t.Fatalf("outbox still holds %d records", box.Len())
	}
	if !await(10*time.Second, func() bool { return sub.distinct() >= len(produced) }) {
		t.Fatalf("subscriber has %d distinct messages of %d produced", sub.distinct(), len(produced))
	}
	r.stop(t)
	checkDelivery(t, produced, sub.arrivals(t), mark, o.maxDups)
}

// checkDelivery checks the arrivals against the produced seqs: the distinct
// seqs received are exactly those produced, each on its class's topic;
// within a class each seq arrives after every smaller one unless it is a
// redelivery; a redelivery is of a seq that first arrived before the
// outage (index < mark) among the last outageInFlight to do so, so that it
// was in flight when the link died, comes after the outage, and comes only
// once; and there are at most maxDups of them.
func checkDelivery(t *testing.T, produced map[uint64]emberwatch.Class, got []arrival, mark, maxDups int) {
	t.Helper()
	first := make(map[uint64]int, len(produced)) // seq -> index of its first arrival
	var last [2]uint64                           // highest seq arrived per class
	var dups []uint64
	for i, a := range got {
		c, ok := produced[a.seq]
		if !ok {
			t.Fatalf("arrival %d: seq %d was never produced", i, a.seq)
		}
		if c != a.class {
			t.Fatalf("arrival %d: seq %d is a %s but came on the %s topic", i, a.seq, c, a.class)
		}
		if at, seen := first[a.seq]; seen {
			if at >= mark || i < mark {
				t.Fatalf("seq %d arrived at %d and again at %d: a duplicate not caused by the outage (which ended at arrival %d)", a.seq, at, i, mark)
			}
			if at < mark-outageInFlight {
				t.Fatalf("seq %d redelivered, but %d messages arrived after it before the outage: it cannot have been in flight (in_flight %d)", a.seq, mark-1-at, outageInFlight)
			}
			for _, d := range dups {
				if d == a.seq {
					t.Fatalf("seq %d arrived three times", a.seq)
				}
			}
			dups = append(dups, a.seq)
			continue
		}
		first[a.seq] = i
		if a.seq < last[c] {
			t.Fatalf("arrival %d: %s %d after %s %d, and not a redelivery", i, c, a.seq, c, last[c])
		}
		last[c] = a.seq
	}
	var missing []uint64
	for s := range produced {
		if _, ok := first[s]; !ok {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d produced seqs never arrived, e.g. %v", len(missing), len(produced), missing[:min(len(missing), 10)])
	}
	if len(dups) > maxDups {
		t.Fatalf("%d duplicates, want at most %d: %v", len(dups), maxDups, dups)
	}
	t.Logf("%d produced, %d arrivals, %d duplicates from the outage", len(produced), len(got), len(dups))
}

// producer appends alerts and summaries to the outbox at a steady pace
// until stop: produceBatch records every produceEvery, one alert and the
// rest summaries, each payload its seq.
type producer struct {
	quit      chan struct{}
	done      chan struct{}
	burst     chan int
	burstDone chan struct{}
	once      sync.Once

	mu   sync.Mutex
	seqs map[uint64]emberwatch.Class
}

const (
	produceBatch = 8
	produceEvery = 4 * time.Millisecond // 2,000 records/s
)

func produce(t *testing.T, box *buffer.Outbox) *producer {
	p := &producer{quit: make(chan struct{}), done: make(chan struct{}), burst: make(chan int), burstDone: make(chan struct{}),
		seqs: map[uint64]emberwatch.Class{}}
	encode := func(seq uint64) ([]byte, error) { return strconv.AppendUint(nil, seq, 10), nil }
	batch := func(n int) []buffer.Pending {
		b := make([]buffer.Pending, n)
		for i := range b {
			b[i] = buffer.Pending{Class: emberwatch.ClassSummary, Topic: summaryTopic, Encode: encode}
			if i%produceBatch == 0 {
				b[i] = buffer.Pending{Class: emberwatch.ClassAlert, Topic: alertTopic, Encode: encode}
			}
		}
		return b
	}
	regular := batch(produceBatch)
	go func() {
		defer close(p.done)
		tick := time.NewTicker(produceEvery)
		defer tick.Stop()
		for {
			msgs, burst := regular, false
			select {
			case <-p.quit:
				return
			case n := <-p.burst:
				msgs, burst = batch(n), true
			case <-tick.C:
			}
			seqs, err := box.Append(msgs...)
			if err != nil {
				t.Errorf("producer: %v", err)
				return
			}
			p.mu.Lock()
			for i, s := range seqs {
				p.seqs[s] = msgs[i].Class
			}
			p.mu.Unlock()
			if burst {
				p.burstDone <- struct{}{}
			}
		}
	}()
	return p
}

// appendBurst makes the producer append n records in one commit and
// returns once they are in the outbox.
func (p *producer) appendBurst(n int) {
	select {
	case p.burst <- n:
		<-p.burstDone
	case <-p.done: // failed; the test has the error
	}
}

// stop ends the producer, waits for it, and returns every seq it appended
// with its class. Calling it again returns the same.
func (p *producer) stop() map[uint64]emberwatch.Class {
	p.once.Do(func() { close(p.quit) })
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seqs
}

// gatedOutbox is the uplink's view of an outbox with a gate in front of
// Take, and counters. While the gate is shut no record gets out: Take
// waits, and records that a Take already waiting inside the outbox receives
// go back. Tests hold the uplink at a chosen moment with it without
// touching the connection.
type gatedOutbox struct {
	*buffer.Outbox

	mu       sync.Mutex
	gate     chan struct{} // closed while open
	taken    int           // records handed to the uplink
	ackedN   int           // records it acknowledged
	released int           // records it gave back
	acks     int           // Ack calls: one bbolt transaction each
}

// newGatedOutbox returns box behind an open gate.
func newGatedOutbox(box *buffer.Outbox) *gatedOutbox {
	g := &gatedOutbox{Outbox: box, gate: make(chan struct{})}
	close(g.gate)
	return g
}

func (g *gatedOutbox) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.isOpenLocked() {
		g.gate = make(chan struct{})
	}
}

func (g *gatedOutbox) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.isOpenLocked() {
		close(g.gate)
	}
}

func (g *gatedOutbox) isOpenLocked() bool {
	select {
	case <-g.gate:
		return true
	default:
		return false
	}
}

func (g *gatedOutbox) Take(ctx context.Context, n int) ([]emberwatch.Message, error) {
	for {
		g.mu.Lock()
		gate := g.gate
		g.mu.Unlock()
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		msgs, err := g.Outbox.Take(ctx, n)
		if err != nil {
			return nil, err
		}
		g.mu.Lock()
		if g.isOpenLocked() {
			g.taken += len(msgs)
			g.mu.Unlock()
			return msgs, nil
		}
		g.mu.Unlock()
		seqs := make([]uint64, len(msgs))
		for i, m := range msgs {
			seqs[i] = m.Seq
		}
		if err := g.Outbox.Release(seqs); err != nil {
			return nil, err
		}
	}
}

func (g *gatedOutbox) Ack(seqs []uint64) error {
	err := g.Outbox.Ack(seqs)
	if err == nil {
		g.mu.Lock()
		g.acks++
		g.ackedN += len(seqs)
		g.mu.Unlock()
	}
	return err
}

func (g *gatedOutbox) Release(seqs []uint64) error {
	g.mu.Lock()
	g.released += len(seqs)
	g.mu.Unlock()
	return g.Outbox.Release(seqs)
}

// outstanding is the number of records the uplink holds: taken, neither
// acknowledged nor given back.
func (g *gatedOutbox) outstanding() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.taken - g.ackedN - g.released
}

// acked is the number of records the uplink acknowledged.
func (g *gatedOutbox) acked() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ackedN
}

var _ uplink.Outbox = (*gatedOutbox)(nil)

// arrival is one message as the subscriber got it.
type arrival struct {
	class emberwatch.Class
	seq   uint64
}

// sessionSub subscribes on a persistent session (clean session off, a fixed
// client id, QoS 1), reconnects by itself, and subscribes again on every
// connect: a restarted Mosquitto without persistence has forgotten the
// session. It records every arrival in order.
type sessionSub struct {
	c paho.Client

	mu         sync.Mutex
	got        []arrival
	seqs       map[uint64]struct{}
	subscribed int // SUBACKs, one per connection
	bad        []string
}

// subscribeSession connects to url and subscribes to topic; the
// subscription is active when it returns. Close it before the broker stops
// for good, or it keeps reconnecting until then.
func subscribeSession(t *testing.T, url, topic string) *sessionSub {
	t.Helper()
	s := &sessionSub{seqs: map[uint64]struct{}{}}
	opts := paho.NewClientOptions().AddBroker(url).
		SetClientID("emberwatch-outage-sub").
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(50 * time.Millisecond).
		SetConnectTimeout(5 * time.Second).
		SetOrderMatters(true)
	opts.SetOnConnectHandler(func(c paho.Client) {
		tok := c.Subscribe(topic, 1, s.record)
		if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
			s.mu.Lock()
			s.subscribed++
			s.mu.Unlock()
		}
	})
	s.c = paho.NewClient(opts)
	if tok := s.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		s.close()
		t.Fatalf("subscriber connect to %s: %v", url, tok.Error())
	}
	if !await(10*time.Second, func() bool { return s.subscriptions() >= 1 }) {
		s.close()
		t.Fatalf("subscribe to %s: no SUBACK within 10s", topic)
	}
	return s
}

func (s *sessionSub) record(_ paho.Client, m paho.Message) {
	a := arrival{class: emberwatch.ClassSummary}
	switch m.Topic() {
	case alertTopic:
		a.class = emberwatch.ClassAlert
	case summaryTopic:
	default:
		s.mu.Lock()
		s.bad = append(s.bad, fmt.Sprintf("unexpected topic %q", m.Topic()))
		s.mu.Unlock()
		return
	}
	seq, err := strconv.ParseUint(string(m.Payload()), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.bad = append(s.bad, fmt.Sprintf("payload %q: %v", m.Payload(), err))
		return
	}
	a.seq = seq
	s.got = append(s.got, a)
	s.seqs[seq] = struct{}{}
}

func (s *sessionSub) close() { s.c.Disconnect(100) }

func (s *sessionSub) subscriptions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subscribed
}

// count is the number of arrivals, duplicates included.
func (s *sessionSub) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// distinct is the number of distinct seqs received.
func (s *sessionSub) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seqs)
}

// arrivals returns every arrival so far, in order. Messages it could not
// read fail the test there.
func (s *sessionSub) arrivals(t *testing.T) []arrival {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bad) > 0 {
		t.Fatalf("subscriber got messages it cannot read: %v", s.bad)
	}
	return append([]arrival(nil), s.got...)
}

// linkProxy forwards TCP connections from a loopback port of its own to a
// broker. cut drops every connection and refuses new ones until restore: a
// network outage with the broker still up. pause stops forwarding what
// clients send (a link that has stalled) until cut or restore.
type linkProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	down  bool
	flow  chan struct{} // closed while client data flows
	conns map[net.Conn]struct{}
}

// proxyReadBuffer is the receive buffer of the proxy's client side, fixed
// so that the kernel does not grow it: a paused proxy soon blocks the
// client's writes.
const proxyReadBuffer = 128 << 10

func startLinkProxy(t *testing.T, target string) *linkProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &linkProxy{ln: ln, target: target, flow: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.flow)
	p.wg.Add(1)
	go p.accept()
	return p
}

func (p *linkProxy) url() string { return "tcp://" + p.ln.Addr().String() }

func (p *linkProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		c.(*net.TCPConn).SetReadBuffer(proxyReadBuffer)
		p.conns[c], p.conns[b] = struct{}{}, struct{}{}
		p.wg.Add(2)
		go p.pipe(b, c, true)
		go p.pipe(c, b, false)
		p.mu.Unlock()
	}
}

// pipe copies src to dst, waiting while paused if src is a client; when
// either side ends, both close.
func (p *linkProxy) pipe(dst, src net.Conn, fromClient bool) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		if fromClient {
			p.mu.Lock()
			flow := p.flow
			p.mu.Unlock()
			<-flow
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// pause stops forwarding what clients send; a read under way completes.
func (p *linkProxy) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.flow:
		p.flow = make(chan struct{})
	default:
	}
}

// resumeLocked forwards client data again.
func (p *linkProxy) resumeLocked() {
	select {
	case <-p.flow:
	default:
		close(p.flow)
	}
}

// cut closes every connection through the proxy and refuses new ones.
func (p *linkProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	p.resumeLocked() // so that paused pipes see their connections closed
}

// restore accepts connections again, and forwards all they send.
func (p *linkProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
	p.resumeLocked()
}

// close cuts every connection, stops listening and waits for the proxy's
// goroutines.
func (p *linkProxy) close() {
	p.ln.Close()
	p.cut()
	p.wg.Wait()
}

// awaitStable is await for a condition that must hold on 20 polls in a row
// (about 100 ms): for a state a goroutine passes through on its way to the
// one the test wants.
func awaitStable(d time.Duration, cond func() bool) bool {
	n := 0
	return await(d, func() bool {
		if cond() {
			n++
		} else {
			n = 0
		}
		return n >= 20
	})
}

// blockedInPublish reports whether a goroutine waits inside paho's Publish
// for the client's writer to take its packet.
func blockedInPublish() bool {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "[select") && strings.Contains(g, ".(*client).Publish(") {
			return true
		}
	}
	return false
}
