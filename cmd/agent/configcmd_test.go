package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emberwatch/emberwatch/configs"
	"github.com/emberwatch/emberwatch/internal/brokertest"
)

// TestConfigCommands drives keygen, sign and push as an operator would,
// against an agent that requires signatures.
func TestConfigCommands(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "fleet")
	if code, _, stderr := runCLI(t, "config", "keygen", "--out", prefix); code != exitOK {
		t.Fatalf("keygen: %d %s", code, stderr)
	}
	if fi, err := os.Stat(prefix + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", fi, err)
	}
	if code, _, stderr := runCLI(t, "config", "keygen", "--out", prefix); code != exitFailure || !strings.Contains(stderr, "exists") {
		t.Fatalf("keygen over an existing key: %d %s", code, stderr)
	}

	raw := []byte(edit(t, hermetic(t, filepath.Join(dir, "data"), ""), func(doc map[string]any) {
		doc["remote_config"] = map[string]any{"public_key_file": prefix + ".pub"}
	}))
	next := filepath.Join(dir, "next.yaml")
	os.WriteFile(next, bytes.Replace(raw, []byte("cooldown: 15m"), []byte("cooldown: 20m"), 1), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, bytes.Replace(raw, []byte("cooldown: 15m"), []byte("cooldwn: 20m"), 1), 0o644)

	// sign checks the config first, and its envelope verifies.
	if code, _, stderr := runCLI(t, "config", "sign", "--key", prefix+".key", bad); code != exitUsage || !strings.Contains(stderr, `did you mean "cooldown"`) {
		t.Fatalf("sign of an invalid config: %d %s", code, stderr)
	}
	code, stdout, stderr := runCLI(t, "config", "sign", "--key", prefix+".key", "--revision", "41", next)
	if code != exitOK {
		t.Fatalf("sign: %d %s", code, stderr)
	}
	env, err := configs.DecodeEnvelope([]byte(stdout))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := configs.LoadPublicKey(prefix + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if env.Revision != 41 || env.Verify(pub) != nil {
		t.Fatalf("signed envelope: revision %d, verify %v", env.Revision, env.Verify(pub))
	}
	signed := filepath.Join(dir, "next.json")
	os.WriteFile(signed, []byte(stdout), 0o644)

	p := startAgent(t, parse(t, raw), raw)
	push := func(args ...string) (int, string, string) {
		return runCLI(t, append([]string{"config", "push", "--broker", p.url, "--device", "demo-01", "--wait", "20s"}, args...)...)
	}
	if code, stdout, _ := push("--revision", "40", next); code != exitFailure || !strings.Contains(stdout, "rejected") || !strings.Contains(stdout, "not signed") {
		t.Fatalf("unsigned push: %d %s", code, stdout)
	}
	if code, stdout, stderr := push(signed); code != exitOK || !strings.Contains(stdout, "revision 41 applied") {
		t.Fatalf("push of a signed envelope: %d %s %s", code, stdout, stderr)
	}
	if code, stdout, stderr := push("--key", prefix+".key", next); code != exitOK || !strings.Contains(stdout, "applied") {
		t.Fatalf("push signed on the fly: %d %s %s", code, stdout, stderr)
	}
	if p.a.cfg.Alerts.Cooldown.String() != "20m0s" || p.a.revision <= 41 {
		t.Fatalf("running: cooldown %s, revision %d", p.a.cfg.Alerts.Cooldown, p.a.revision)
	}
	if code, _, stderr := runCLI(t, "config", "push", "--broker", p.url, "--device", "demo-02", next); code != exitUsage || !strings.Contains(stderr, `not "demo-02"`) {
		t.Fatalf("push to the wrong device: %d %s", code, stderr)
	}
}

// TestConfigPushOverMutualTLS pushes with the TLS and credential flags to an
// agent that reaches Mosquitto over mutual TLS with a password, both sides
// with certificates made in the test.
func TestConfigPushOverMutualTLS(t *testing.T) {
	pki := brokertest.NewPKI(t)
	m := brokertest.StartMosquittoTLS(t, brokertest.TLSListener{
		CAFile: pki.CA.CertFile, CertFile: pki.Server.CertFile, KeyFile: pki.Server.KeyFile,
		RequireCertificate: true, Users: map[string]string{"demo-01": "device-secret", "ops": "ops-secret"},
	})
	t.Setenv("EW_TEST_DEVICE_PW", "device-secret")
	t.Setenv("EW_TEST_OPS_PW", "ops-secret")
	dir := t.TempDir()
	raw := []byte(edit(t, hermetic(t, dir, ""), func(doc map[string]any) {
		doc["broker"] = map[string]any{"url": m.TLSURL(), "ca_file": pki.CA.CertFile,
			"cert_file": pki.Client.CertFile, "key_file": pki.Client.KeyFile,
			"username": "demo-01", "password_env": "EW_TEST_DEVICE_PW"}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	a := &agent{cfg: parse(t, raw), raw: raw, log: testLogger(t)}
	go func() { done <- a.run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent returned %v", err)
		}
	}()

	next := filepath.Join(dir, "next.yaml")
	os.WriteFile(next, bytes.Replace(raw, []byte("cooldown: 15m"), []byte("cooldown: 20m"), 1), 0o644)
	tlsFlags := []string{"--ca-file", pki.CA.CertFile, "--cert-file", pki.Client.CertFile, "--key-file", pki.Client.KeyFile,
		"--username", "ops", "--password-env", "EW_TEST_OPS_PW"}
	args := append([]string{"config", "push", "--broker", m.TLSURL(), "--device", "demo-01", "--wait", "20s"}, tlsFlags...)
	// The agent may still be connecting: the push is retained, and the
	// ack comes once it has subscribed.
	code, stdout, stderr := runCLI(t, append(args, next)...)
	if code != exitOK || !strings.Contains(stdout, "applied") {
		t.Fatalf("push over mTLS: %d %s %s", code, stdout, stderr)
	}
	// Without a client certificate the broker refuses the operator too.
	code, _, stderr = runCLI(t, "config", "push", "--broker", m.TLSURL(), "--device", "demo-01", "--ca-file", pki.CA.CertFile,
		"--username", "ops", "--password-env", "EW_TEST_OPS_PW", next)
	if code != exitFailure || !strings.Contains(stderr, "client certificate") {
		t.Fatalf("push without a client certificate: %d %s", code, stderr)
	}
}
