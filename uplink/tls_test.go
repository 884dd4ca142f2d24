package uplink_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
	"github.com/emberwatch/emberwatch/internal/brokertest"
	"github.com/emberwatch/emberwatch/uplink"
)

// The TLS tests run Mosquitto with a TLS listener for the uplink and a
// plain one for the test's subscriber, so what arrives is observed without
// the credentials under test.

const (
	testUser     = "device-01"
	testPassword = "correct horse battery staple"
)

// logBuffer keeps an uplink's log lines so a test can wait for one.
type logBuffer struct{ brokertest.LockedBuffer }

func (b *logBuffer) connectErrors(t *testing.T) []string {
	t.Helper()
	var errs []string
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var line struct{ Message, Error string }
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if line.Message == "broker connection down" {
			errs = append(errs, line.Error)
		}
	}
	return errs
}

// awaitConnectError waits until a logged connection error contains want.
func (b *logBuffer) awaitConnectError(t *testing.T, want string) string {
	t.Helper()
	var found string
	ok := await(20*time.Second, func() bool {
		for _, e := range b.connectErrors(t) {
			if strings.Contains(e, want) {
				found = e
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("no connection error containing %q; got %q", want, b.connectErrors(t))
	}
	return found
}

// tlsSetup is the uplink's config for a TLS broker, and a subscriber on
// the broker's plain listener.
type tlsSetup struct {
	sub *brokertest.Subscriber
	cfg uplink.Config
}

// newTLSSetup starts Mosquitto with l's TLS listener; l's CA and broker
// certificate default to pki's. cfg trusts pki.CA.
func newTLSSetup(t *testing.T, pki *brokertest.PKI, l brokertest.TLSListener) *tlsSetup {
	t.Helper()
	if l.CAFile == "" {
		l.CAFile = pki.CA.CertFile
	}
	if l.CertFile == "" {
		l.CertFile, l.KeyFile = pki.Server.CertFile, pki.Server.KeyFile
	}
	m := brokertest.StartMosquittoTLS(t, l)
	s := &tlsSetup{sub: brokertest.Subscribe(t, m.URL(), "dev/#"), cfg: testConfig(m.TLSURL())}
	s.cfg.CAFile = pki.CA.CertFile
	return s
}

// runUplink starts an uplink with cfg and one alert in its outbox, logging
// to the test and to the returned buffer. It stops with the test at the
// latest.
func runUplink(t *testing.T, cfg uplink.Config) (*uplink.Uplink, *buffer.Outbox, *logBuffer, *running) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &logBuffer{}
	log := zerolog.New(io.MultiWriter(zerolog.NewTestWriter(t), logs)).Level(zerolog.InfoLevel)
	box := openOutbox(t)
	appendN(t, box, emberwatch.ClassAlert, "dev/alerts", 1)
	up := uplink.New(cfg, box, uplink.Status{}, log)
	r := start(up)
	// Stop it even when the test fails early, before the outbox closes.
	t.Cleanup(func() {
		r.cancel()
		r.wg.Wait()
	})
	return up, box, logs, r
}

// assertDelivers checks that the alert in the outbox reaches the
// subscriber and leaves the outbox.
func (s *tlsSetup) assertDelivers(t *testing.T, cfg uplink.Config) {
	t.Helper()
	up, box, logs, r := runUplink(t, cfg)
	defer r.stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if m := s.sub.Next(ctx, t); m.Topic != "dev/alerts" {
		t.Fatalf("received %q on %s, want the alert", m.Payload, m.Topic)
	}
	if !await(10*time.Second, func() bool { return box.Len() == 0 && up.Published() == 1 }) {
		t.Fatalf("outbox holds %d, published %d after delivery", box.Len(), up.Published())
	}
	if errs := logs.connectErrors(t); len(errs) > 0 {
		t.Fatalf("connection errors before delivery: %q", errs)
	}
}

// assertRefused checks that the uplink's connection error says want and
// that nothing reached the broker.
func (s *tlsSetup) assertRefused(t *testing.T, cfg uplink.Config, want string) {
	t.Helper()
	up, box, logs, r := runUplink(t, cfg)
	got := logs.awaitConnectError(t, want)
	r.stop(t)
	t.Logf("logged: %s", got)
	if strings.Contains(logs.String(), "connected to broker") || up.Published() != 0 {
		t.Fatalf("uplink connected (published %d) despite the refusal:\n%s", up.Published(), logs)
	}
	if box.Len() != 1 {
		t.Fatalf("outbox holds %d records, want the 1 undelivered", box.Len())
	}
	if msgs := s.sub.Messages(); len(msgs) != 0 {
		t.Fatalf("subscriber received %d messages, want none", len(msgs))
	}
	if strings.Contains(logs.String(), testPassword) {
		t.Fatalf("the password appears in the log:\n%s", logs)
	}
}

// TestTLSDelivers connects over ssl:// verifying the broker against
// ca_file, and delivers an alert from the outbox.
func TestTLSDelivers(t *testing.T) {
	s := newTLSSetup(t, brokertest.NewPKI(t), brokertest.TLSListener{})
	s.assertDelivers(t, s.cfg)
}

// TestMutualTLSDelivers connects to a broker that requires a client
// certificate, presenting one signed by the CA it trusts.
func TestMutualTLSDelivers(t *testing.T) {
	pki := brokertest.NewPKI(t)
	s := newTLSSetup(t, pki, brokertest.TLSListener{RequireCertificate: true})
	cfg := s.cfg
	cfg.CertFile, cfg.KeyFile = pki.Client.CertFile, pki.Client.KeyFile
	s.assertDelivers(t, cfg)
}

// TestPasswordLogin logs in over TLS with the password read from a file and
// from the environment.
func TestPasswordLogin(t *testing.T) {
	pki := brokertest.NewPKI(t)
	s := newTLSSetup(t, pki, brokertest.TLSListener{Users: map[string]string{testUser: testPassword}})
	t.Run("password_file", func(t *testing.T) {
		cfg := s.cfg
		cfg.Username, cfg.PasswordFile = testUser, writePassword(t, testPassword+"\n")
		s.assertDelivers(t, cfg)
	})
	t.Run("password_env", func(t *testing.T) {
		t.Setenv("EMBERWATCH_TEST_MQTT_PASSWORD", testPassword)
		cfg := s.cfg
		cfg.Username, cfg.PasswordEnv = testUser, "EMBERWATCH_TEST_MQTT_PASSWORD"
		s.assertDelivers(t, cfg)
	})
}

// TestTLSRefusals checks that each kind of refused connection is logged in
// words that name the setting to fix, and that nothing is delivered.
func TestTLSRefusals(t *testing.T) {
	pki := brokertest.NewPKI(t)
	users := map[string]string{testUser: testPassword}
	now := time.Now()
	for _, tc := range []struct {
		name     string
		listener brokertest.TLSListener
		setup    func(t *testing.T, cfg *uplink.Config)
		want     func(cfg uplink.Config) string
	}{{
		name: "ca_file of another CA",
		setup: func(t *testing.T, cfg *uplink.Config) {
			cfg.CAFile = pki.OtherCA.CertFile
		},
		want: func(cfg uplink.Config) string {
			return "broker certificate is not signed by a CA in ca_file " + pki.OtherCA.CertFile + ": "
		},
	}, {
		name: "no ca_file",
		setup: func(t *testing.T, cfg *uplink.Config) {
			cfg.CAFile = ""
		},
		want: func(uplink.Config) string {
			return "broker certificate is not signed by a CA in the system roots (set ca_file to the broker's CA): "
		},
	}, {
		name: "broker certificate expired",
		listener: func() brokertest.TLSListener {
			kp := pki.CA.Issue(t, brokertest.Cert{CommonName: "stale broker", Hosts: []string{"127.0.0.1"},
				NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
			return brokertest.TLSListener{CertFile: kp.CertFile, KeyFile: kp.KeyFile}
		}(),
		want: func(uplink.Config) string {
			return "broker certificate has expired or is not yet valid (renew it, or check this device's clock): "
		},
	}, {
		name: "broker certificate for another host",
		listener: func() brokertest.TLSListener {
			kp := pki.CA.Issue(t, brokertest.Cert{CommonName: "elsewhere", Hosts: []string{"broker.invalid"}})
			return brokertest.TLSListener{CertFile: kp.CertFile, KeyFile: kp.KeyFile}
		}(),
		want: func(uplink.Config) string {
			return `broker certificate is not valid for host "127.0.0.1" (use a name or address it lists in url): `
		},
	}, {
		name:     "no client certificate",
		listener: brokertest.TLSListener{RequireCertificate: true},
		want: func(uplink.Config) string {
			return "broker requires a client certificate (set cert_file and key_file): "
		},
	}, {
		name:     "expired client certificate",
		listener: brokertest.TLSListener{RequireCertificate: true},
		setup: func(t *testing.T, cfg *uplink.Config) {
			cfg.CertFile, cfg.KeyFile = pki.ExpiredClient.CertFile, pki.ExpiredClient.KeyFile
		},
		want: func(cfg uplink.Config) string {
			return "broker refused client certificate cert_file " + cfg.CertFile + ": it has expired or is not yet valid: "
		},
	}, {
		name:     "client certificate from an unrelated CA",
		listener: brokertest.TLSListener{RequireCertificate: true},
		setup: func(t *testing.T, cfg *uplink.Config) {
			cfg.CertFile, cfg.KeyFile = pki.OtherClient.CertFile, pki.OtherClient.KeyFile
		},
		want: func(cfg uplink.Config) string {
			return "broker refused client certificate cert_file " + cfg.CertFile + ": it does not trust the CA that signed it: "
		},
	}, {
		name:     "wrong password from password_file",
		listener: brokertest.TLSListener{Users: users},
		setup: func(t *testing.T, cfg *uplink.Config) {
			cfg.Username, cfg.PasswordFile = testUser, writePassword(t, "not "+testPassword)
		},
		want: func(cfg uplink.Config) string {
			return `broker refused user "` + testUser + `": wrong username or password, or the user may not connect ` +
				"(password from password_file " + cfg.PasswordFile + "): "
		},
	}, {
		name:     "wrong password from password_env",
		listener: brokertest.TLSListener{Users: users},
		setup: func(t *testing.T, cfg *uplink.Config) {
			t.Setenv("EMBERWATCH_TEST_MQTT_PASSWORD", "not "+testPassword)
			cfg.Username, cfg.PasswordEnv = testUser, "EMBERWATCH_TEST_MQTT_PASSWORD"
		},
		want: func(uplink.Config) string {
			return `broker refused user "` + testUser + `": wrong username or password, or the user may not connect ` +
				"(password from environment variable EMBERWATCH_TEST_MQTT_PASSWORD): "
		},
	}, {
		name:     "unknown user",
		listener: brokertest.TLSListener{Users: users},
		setup: func(t *testing.T, cfg *uplink.Config) {
			t.Setenv("EMBERWATCH_TEST_MQTT_PASSWORD", testPassword)
			cfg.Username, cfg.PasswordEnv = "intruder", "EMBERWATCH_TEST_MQTT_PASSWORD"
		},
		want: func(uplink.Config) string {
			return `broker refused user "intruder": wrong username or password`
		},
	}, {
		name:     "no username",
		listener: brokertest.TLSListener{Users: users},
		want: func(uplink.Config) string {
			return "broker refused the connection: not authorised; it may require a username and password: "
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTLSSetup(t, pki, tc.listener)
			cfg := s.cfg
			if tc.setup != nil {
				tc.setup(t, &cfg)
			}
			s.assertRefused(t, cfg, tc.want(cfg))
		})
	}
}

// TestRefusedPortIsExplained connects to a port nothing listens on.
func TestRefusedPortIsExplained(t *testing.T) {
	m := brokertest.StartMosquitto(t)
	m.Stop()
	_, _, logs, r := runUplink(t, testConfig(m.URL()))
	defer r.stop(t)
	logs.awaitConnectError(t, "connect to "+m.URL()+": nothing is listening on that port (is the broker running, and the port right?): ")
}

func writePassword(t *testing.T, pw string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(path, []byte(pw), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
