package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch/internal/brokertest"
)

// TestBinaryStatusAndSIGHUP runs the agent binary against Mosquitto: its
// retained status goes online; SIGHUP re-reads the edited config file and
// acknowledges it on config/ack; SIGKILL leaves the broker to publish the
// last will, and a subscriber sees the device offline.
func TestBinaryStatusAndSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildAgent(t)
	m := brokertest.StartMosquitto(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "agent.yaml")
	cfg := fmt.Sprintf(`device: kill-01
data_dir: %s
log: {level: info, format: json}
sources:
  - type: simulator
    interval: 10s
    simulator: {speed: 600, seed: 1, start: 2026-07-15T06:00:00Z}
windows:
  - {size: 10m, hop: 1m}
alerts: {cooldown: 15m}
broker:
  url: %s
  keepalive: 60s
`, dir, m.URL())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	status := brokertest.Subscribe(t, m.URL(), "emberwatch/kill-01/status")
	acks := brokertest.Subscribe(t, m.URL(), "emberwatch/kill-01/config/ack")

	cmd, logs, exited := startBinary(t, bin, "run", "--config", cfgPath)
	lastState := func() (statusMessage, bool) {
		msgs := status.Messages()
		if len(msgs) == 0 {
			return statusMessage{}, false
		}
		var s statusMessage
		return s, json.Unmarshal(msgs[len(msgs)-1].Payload, &s) == nil
	}
	if !await(20*time.Second, func() bool { s, ok := lastState(); return ok && s.State == "online" }) {
		t.Fatalf("no online status; logs:\n%s", logs)
	}

	edited := strings.Replace(cfg, "cooldown: 15m", "cooldown: 5m", 1)
	if err := os.WriteFile(cfgPath, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !await(20*time.Second, func() bool {
		for _, a := range acks.Messages() {
			var ack configAck
			if json.Unmarshal(a.Payload, &ack) == nil && ack.Origin == "file" && ack.Result == resultApplied {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no ack for the SIGHUP reload; acks %v; logs:\n%s", acks.Messages(), logs)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	exited <- nil // for the cleanup
	if !await(20*time.Second, func() bool { s, ok := lastState(); return ok && s.State == "offline" }) {
		t.Fatalf("no offline status after SIGKILL: %v", status.Messages())
	}
	s, _ := lastState()
	if s.Device != "kill-01" || s.Version == "" || s.StartedAt.IsZero() {
		t.Fatalf("offline status incomplete: %+v", s)
	}
}
