package configs_test

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch/configs"
)

func keyPair(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pubPEM, privPEM, err := configs.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "k.pub"), pubPEM, 0o644)
	os.WriteFile(filepath.Join(dir, "k.key"), privPEM, 0o600)
	pub, err := configs.LoadPublicKey(filepath.Join(dir, "k.pub"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := configs.LoadPrivateKey(filepath.Join(dir, "k.key"))
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func TestEnvelopeSignature(t *testing.T) {
	pub, priv := keyPair(t)
	_, otherPriv := keyPair(t)
	e := configs.Envelope{Revision: 3, Payload: "device: d1\n"}
	if err := e.Verify(pub); !errors.Is(err, configs.ErrUnsigned) {
		t.Fatalf("unsigned: %v", err)
	}
	if err := e.Verify(nil); err != nil {
		t.Fatalf("no key configured: %v", err)
	}
	e.Sign(priv)
	if err := e.Verify(pub); err != nil {
		t.Fatalf("signed: %v", err)
	}
	// The round trip through JSON keeps it valid.
	back, err := configs.DecodeEnvelope(e.Encode())
	if err != nil || back != e || back.Verify(pub) != nil {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	for name, tamper := range map[string]func(*configs.Envelope){
		"payload changed":  func(e *configs.Envelope) { e.Payload += " " },
		"revision changed": func(e *configs.Envelope) { e.Revision++ },
		"other key":        func(e *configs.Envelope) { e.Sign(otherPriv) },
	} {
		c := e
		tamper(&c)
		if err := c.Verify(pub); !errors.Is(err, configs.ErrBadSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDecodeEnvelopeErrors(t *testing.T) {
	for name, in := range map[string]string{
		"not JSON":            "device: d1",
		"unknown field":       `{"revision":1,"payload":"x","sig":"y"}`,
		"revision zero":       `{"revision":0,"payload":"x"}`,
		"revision missing":    `{"payload":"x"}`,
		"negative revision":   `{"revision":-1,"payload":"x"}`,
		"payload empty":       `{"revision":1,"payload":""}`,
		"signature not b64":   `{"revision":1,"payload":"x","signature":"!!"}`,
		"signature too short": `{"revision":1,"payload":"x","signature":"AAAA"}`,
		"trailing data":       `{"revision":1,"payload":"x"} {}`,
		"too large":           `{"revision":1,"payload":"` + strings.Repeat("x", configs.MaxEnvelopeBytes) + `"}`,
	} {
		if _, err := configs.DecodeEnvelope([]byte(in)); !errors.Is(err, configs.ErrBadEnvelope) {
			t.Errorf("%s: got %v, want ErrBadEnvelope", name, err)
		}
	}
}

func TestLoadKeyErrors(t *testing.T) {
	dir := t.TempDir()
	pubPEM, privPEM, _ := configs.GenerateKey()
	os.WriteFile(filepath.Join(dir, "k.pub"), pubPEM, 0o644)
	os.WriteFile(filepath.Join(dir, "k.key"), privPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "junk"), []byte("hello"), 0o600)
	if _, err := configs.LoadPublicKey(filepath.Join(dir, "k.key")); err == nil || !strings.Contains(err.Error(), `"PUBLIC KEY"`) {
		t.Errorf("private key as public: %v", err)
	}
	if _, err := configs.LoadPrivateKey(filepath.Join(dir, "k.pub")); err == nil {
		t.Error("public key as private: no error")
	}
	if _, err := configs.LoadPublicKey(filepath.Join(dir, "junk")); err == nil {
		t.Error("junk as public key: no error")
	}
	if _, err := configs.LoadPublicKey(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestLastGood(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := configs.LastGoodPath(dir)
	if _, ok, err := configs.ReadLastGood(path); ok || err != nil {
		t.Fatalf("none yet: ok %v err %v", ok, err)
	}
	want := configs.LastGood{Revision: 7, Origin: configs.OriginPush, Payload: "device: d1\n", AppliedAt: time.Unix(1, 0).UTC()}
	for range 2 { // the second write replaces the first
		if err := configs.WriteLastGood(path, want); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := configs.ReadLastGood(path)
	if err != nil || !ok || got != want {
		t.Fatalf("read back %+v %v %v", got, ok, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
	os.WriteFile(path, []byte(`{"revision":1`), 0o644)
	if _, _, err := configs.ReadLastGood(path); err == nil {
		t.Fatal("truncated file read without error")
	}
	b, _ := json.Marshal(configs.LastGood{Revision: 1, Origin: "elsewhere"})
	os.WriteFile(path, b, 0o644)
	if _, _, err := configs.ReadLastGood(path); err == nil {
		t.Fatal("unknown origin read without error")
	}
}

func TestCheckLiveChange(t *testing.T) {
	base, err := configs.Parse(configs.Demo())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		edit    func(c *configs.Config)
		trusted bool
		paths   []string
	}{
		{"detectors and rules", func(c *configs.Config) { c.Detectors[0].Threshold = 0.5; c.Rules = nil }, false, nil},
		{"device", func(c *configs.Config) { c.Device = "x" }, false, []string{"device"}},
		{"broker and outbox", func(c *configs.Config) { c.Broker.InFlight = 1; c.Outbox.MaxRecords = 1 }, false, []string{"outbox", "broker"}},
		{"remote_config by push", func(c *configs.Config) { c.Remote.PublicKeyFile = "k.pub" }, false, []string{"remote_config"}},
		{"remote_config from the file", func(c *configs.Config) { c.Remote.PublicKeyFile = "k.pub" }, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, _ := configs.Parse(configs.Demo())
			tc.edit(next)
			got := fieldPaths(base.CheckLiveChange(next, tc.trusted))
			if strings.Join(got, ",") != strings.Join(tc.paths, ",") {
				t.Fatalf("paths %v, want %v", got, tc.paths)
			}
		})
	}
}

// FuzzDecodeEnvelope checks that DecodeEnvelope never panics, rejects with
// ErrBadEnvelope, and that what it accepts encodes back to an equal
// envelope.
//
//	go test -run='^$' -fuzz=FuzzDecodeEnvelope -fuzztime=30s ./configs
func FuzzDecodeEnvelope(f *testing.F) {
	_, priv := keyPair(f)
	e := configs.Envelope{Revision: 12, Payload: string(configs.Demo())}
	f.Add(e.Encode())
	e.Sign(priv)
	f.Add(e.Encode())
	f.Add([]byte(`{"revision":1,"payload":"x","signature":""}`))
	f.Add([]byte(`{"revision":18446744073709551615,"payload":"\u0000"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := configs.DecodeEnvelope(data)
		if err != nil {
			if !errors.Is(err, configs.ErrBadEnvelope) {
				t.Fatalf("error not ErrBadEnvelope: %v", err)
			}
			return
		}
		back, err := configs.DecodeEnvelope(e.Encode())
		if err != nil || back != e {
			t.Fatalf("re-encoded envelope: %+v, %v; was %+v", back, err, e)
		}
	})
}
