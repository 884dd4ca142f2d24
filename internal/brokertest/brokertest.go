// Package brokertest starts real MQTT brokers for tests: a Mosquitto process
// on a free loopback port (optionally with a TLS listener, using
// certificates from a throwaway PKI made per test), and a subscriber that
// collects what arrives.
//
// Tests that need Mosquitto fail with install instructions when it is
// missing, unless EMBERWATCH_SKIP_MOSQUITTO=1 is set (CI never sets it).
package brokertest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"
)

// IgnorePahoDisconnect is a goleak option for the one goroutine paho leaves
// behind on purpose: Disconnect returns after its quiesce time while a helper
// goroutine may still wait out the same time to send DISCONNECT on a link
// that is already gone. It ends by itself within the quiesce time.
var IgnorePahoDisconnect = goleak.IgnoreTopFunction("github.com/eclipse/paho%2emqtt%2egolang.(*client).Disconnect.func1")

// SkipEnv is the opt-out variable for tests that need Mosquitto.
const SkipEnv = "EMBERWATCH_SKIP_MOSQUITTO"

// Mosquitto is a broker process owned by one test.
type Mosquitto struct {
	t       testing.TB
	bin     string
	conf    string
	port    int
	tlsPort int // 0 unless started by StartMosquittoTLS
	cmd     *exec.Cmd
	log     *LockedBuffer
	done    chan struct{}
}

// StartMosquitto runs Mosquitto on a free 127.0.0.1 port until the test
// ends. extraConf lines are appended to its config file.
func StartMosquitto(t testing.TB, extraConf ...string) *Mosquitto {
	t.Helper()
	m := newMosquitto(t)
	m.writeConf(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n", m.port), extraConf)
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

// TLSListener configures the TLS listener of StartMosquittoTLS.
type TLSListener struct {
	// CAFile verifies client certificates; CertFile and KeyFile are the
	// broker's own.
	CAFile, CertFile, KeyFile string
	// RequireCertificate refuses clients without a certificate signed by
	// CAFile (mutual TLS).
	RequireCertificate bool
	// Users maps usernames to passwords. When set, clients on the TLS
	// listener must log in as one of them; otherwise anyone may connect.
	Users map[string]string
}

// StartMosquittoTLS runs Mosquitto with two listeners until the test ends:
// a TLS one at TLSURL configured by l, for the client under test, and the
// plain anonymous one at URL, so that Subscribe can watch what arrives
// without the credentials being tested. extraConf lines are appended and
// apply to the TLS listener.
func StartMosquittoTLS(t testing.TB, l TLSListener, extraConf ...string) *Mosquitto {
	t.Helper()
	m := newMosquitto(t)
	m.tlsPort = freePort(t)
	// per_listener_settings makes allow_anonymous and password_file apply
	// to the listener they follow.
	conf := fmt.Sprintf("per_listener_settings true\nlistener %d 127.0.0.1\nallow_anonymous true\n", m.port)
	conf += fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate %t\n",
		m.tlsPort, l.CAFile, l.CertFile, l.KeyFile, l.RequireCertificate)
	if len(l.Users) > 0 {
		conf += fmt.Sprintf("allow_anonymous false\npassword_file %s\n", writePasswordFile(t, l.Users))
	} else {
		conf += "allow_anonymous true\n"
	}
	m.writeConf(conf, extraConf)
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

func newMosquitto(t testing.TB) *Mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr == nil {
			bin = "/usr/sbin/mosquitto"
		}
	}
	if bin == "" {
		if os.Getenv(SkipEnv) == "1" {
			t.Skipf("mosquitto not installed and %s=1: skipping", SkipEnv)
		}
		t.Fatalf("this test needs the mosquitto broker: install it with `sudo apt-get install -y mosquitto` "+
			"(or set %s=1 to skip the Mosquitto tests)", SkipEnv)
	}
	return &Mosquitto{t: t, bin: bin, port: freePort(t), conf: filepath.Join(t.TempDir(), "mosquitto.conf")}
}

// writeConf writes listeners, then the settings every test broker shares,
// then extraConf.
func (m *Mosquitto) writeConf(listeners string, extraConf []string) {
	m.t.Helper()
	conf := listeners + "persistence false\n" +
		"max_queued_messages 100000\nmax_inflight_messages 0\nlog_dest stderr\nlog_type error\nlog_type warning\n"
	if os.Geteuid() == 0 {
		// Started as root, Mosquitto would switch to the mosquitto user
		// and then fail to read a password file in the test's private
		// temp dir.
		conf += "user root\n"
	}
	for _, l := range extraConf {
		conf += l + "\n"
	}
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		m.t.Fatal(err)
	}
}

// URL is the broker address for clients: the plain listener.
func (m *Mosquitto) URL() string { return "tcp://127.0.0.1:" + strconv.Itoa(m.port) }

// Addr is host:port of the plain listener.
func (m *Mosquitto) Addr() string { return "127.0.0.1:" + strconv.Itoa(m.port) }

// TLSURL is the ssl:// address of the TLS listener; empty unless the broker
// was started by StartMosquittoTLS.
func (m *Mosquitto) TLSURL() string {
	if m.tlsPort == 0 {
		return ""
	}
	return "ssl://127.0.0.1:" + strconv.Itoa(m.tlsPort)
}

// Log returns what the process started last has written so far (errors
// and warnings), for failure messages. It may be called while Mosquitto
// runs, but not during Start.
func (m *Mosquitto) Log() string { return m.log.String() }

// LockedBuffer is a bytes.Buffer that a writer (a child process's output,
// a logger) and the test reading it may use at once.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start starts the process (again, after Stop) on the same ports and waits
// until every listener accepts connections.
func (m *Mosquitto) Start() {
	m.t.Helper()
	m.log = &LockedBuffer{}
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.cmd.Stdout = m.log
	m.cmd.Stderr = m.log
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	m.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait()
		close(done)
	}(m.cmd, m.done)
	addrs := []string{m.Addr()}
	if m.tlsPort != 0 {
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(m.tlsPort))
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range addrs {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-m.done:
				m.t.Fatalf("mosquitto exited at start-up: %s", m.log.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				m.t.Fatalf("mosquitto did not listen on %s within 10s: %s", addr, m.log.String())
			}
		}
	}
}

// Freeze stops the broker process (SIGSTOP): connections stay open, but
// nothing is read, acknowledged or delivered until Thaw.
func (m *Mosquitto) Freeze() {
	m.t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		m.t.Fatalf("freeze mosquitto: %v", err)
	}
}

// Thaw lets a frozen broker run again (SIGCONT).
func (m *Mosquitto) Thaw() {
	m.t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		m.t.Fatalf("thaw mosquitto: %v", err)
	}
}

// Stop ends the process and waits for it. Stopping a stopped broker is a
// no-op.
func (m *Mosquitto) Stop() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Kill()
	m.cmd.Process.Signal(syscall.SIGCONT) // a frozen process dies only once thawed
	<-m.done
	m.cmd = nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Message is one received publish.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// Subscriber is an independent paho client that collects every message on
// its topics.
type Subscriber struct {
	c  paho.Client
	ch chan Message

	mu  sync.Mutex
	all []Message
}

// Subscribe connects to url and subscribes to topic (wildcards allowed) with
// QoS 1. The subscription is active when it returns; it ends with the test.
func Subscribe(t testing.TB, url, topic string) *Subscriber {
	t.Helper()
	s := &Subscriber{ch: make(chan Message, 100_000)}
	subscribed := make(chan error, 1)
	opts := paho.NewClientOptions().AddBroker(url).
		SetClientID(fmt.Sprintf("sub-%d", time.Now().UnixNano())).
		SetAutoReconnect(false).SetCleanSession(true).SetOrderMatters(true).
		SetConnectTimeout(5 * time.Second)
	opts.SetOnConnectHandler(func(c paho.Client) {
		tok := c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
			msg := Message{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...), Retained: m.Retained()}
			s.mu.Lock()
			s.all = append(s.all, msg)
			s.mu.Unlock()
			select {
			case s.ch <- msg:
			default:
			}
		})
		tok.Wait()
		select {
		case subscribed <- tok.Error():
		default:
		}
	})
	s.c = paho.NewClient(opts)
	if tok := s.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect to %s: %v", url, tok.Error())
	}
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatalf("subscribe %s: %v", topic, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("subscribe %s: no SUBACK within 10s", topic)
	}
	t.Cleanup(func() { s.c.Disconnect(100) })
	return s
}

// Next returns the next message, or fails the test when none arrives before
// ctx ends.
func (s *Subscriber) Next(ctx context.Context, t testing.TB) Message {
	t.Helper()
	select {
	case m := <-s.ch:
		return m
	case <-ctx.Done():
		t.Fatalf("no message before %v", ctx.Err())
		return Message{}
	}
}

// Messages returns every message received so far.
func (s *Subscriber) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.all...)
}
