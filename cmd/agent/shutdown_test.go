package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/emberwatch/emberwatch/buffer"
	"github.com/emberwatch/emberwatch/internal/brokertest"
)

// buildAgent compiles the agent binary into a temp folder.
func buildAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "agent")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startBinary runs the agent binary with args, its log in logs, until the
// test ends. exited receives its exit; a test that reads it must put it
// back for the cleanup.
func startBinary(t *testing.T, bin string, args ...string) (cmd *exec.Cmd, logs *brokertest.LockedBuffer, exited chan error) {
	t.Helper()
	cmd = exec.Command(bin, args...)
	logs = &brokertest.LockedBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited = make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	return cmd, logs, exited
}

// TestShutdownKeepsEveryAcceptedMessage sends SIGTERM to the agent binary
// while it publishes to Mosquitto as fast as it can, then checks that every
// sequence number the outbox ever handed out was either delivered to a
// subscriber or is still in the outbox file.
// With the broker frozen just before SIGTERM (no more PUBACKs), the
// backlog must be in the file instead. (A broker killed outright may have
// acknowledged messages it then never delivered: at-least-once ends at the
// broker's acknowledgement.)
func TestShutdownKeepsEveryAcceptedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildAgent(t)
	t.Run("broker up", func(t *testing.T) { testShutdown(t, bin, false) })
	t.Run("broker frozen", func(t *testing.T) { testShutdown(t, bin, true) })
}

func testShutdown(t *testing.T, bin string, freezeBroker bool) {
	m := brokertest.StartMosquitto(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "agent.yaml")
	cfg := fmt.Sprintf(`device: shut-01
data_dir: %s
log: {level: info, format: json}
sources:
  - type: simulator
    interval: 10s
    simulator: {speed: 60000, seed: 1, start: 2026-07-15T06:00:00Z, event: {at: 3h}}
windows:
  - {size: 10m, hop: 1m}
detectors:
  - {series: "*", type: robust_zscore, min_spread: 2}
broker:
  url: %s
  in_flight: 32
`, dir, m.URL())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := brokertest.Subscribe(t, m.URL(), "emberwatch/shut-01/+")

	cmd, logs, exited := startBinary(t, bin, "run", "--config", cfgPath)

	// Wait until messages are flowing, then stop the agent mid-stream.
	if !await(30*time.Second, func() bool { return len(sub.Messages()) >= 300 }) {
		t.Fatalf("agent published only %d messages; logs:\n%s", len(sub.Messages()), logs)
	}
	if freezeBroker {
		m.Freeze()
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("agent exited with %v; logs:\n%s", err, logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("agent did not exit within 20s of SIGTERM; logs:\n%s", logs)
	}
	if freezeBroker {
		m.Thaw() // it delivers what it acknowledged before the freeze
	}

	box, err := buffer.Open(buffer.Config{Path: filepath.Join(dir, "outbox.db"), MaxRecords: 1 << 30}, zerolog.Nop())
	if err != nil {
		t.Fatalf("reopen outbox: %v", err)
	}
	defer box.Close()
	last, err := box.LastSeq()
	if err != nil {
		t.Fatal(err)
	}
	left := map[uint64]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Take returns at once when nothing is left
	for {
		msgs, err := box.Take(ctx, 1000)
		if err != nil || len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			left[m.Seq] = true
		}
	}
	if ev := box.Stats().Evicted; ev != [2]uint64{} {
		t.Fatalf("outbox evicted records: %v", ev)
	}
	delivered := func() map[uint64]bool {
		got := map[uint64]bool{}
		for _, msg := range sub.Messages() {
			var p struct {
				Seq uint64 `json:"seq"`
			}
			if json.Unmarshal(msg.Payload, &p) == nil && p.Seq > 0 {
				got[p.Seq] = true
			}
		}
		return got
	}
	var missing []uint64
	complete := await(10*time.Second, func() bool {
		got := delivered()
		missing = missing[:0]
		for s := uint64(1); s <= last; s++ {
			if !got[s] && !left[s] {
				missing = append(missing, s)
			}
		}
		return len(missing) == 0
	})
	if !complete {
		t.Fatalf("%d of %d accepted messages neither delivered nor in the outbox, e.g. %v", len(missing), last, missing[:min(10, len(missing))])
	}
	if last < 300 {
		t.Fatalf("only %d messages accepted", last)
	}
	if freezeBroker && len(left) == 0 {
		t.Fatalf("broker was down at shutdown, yet nothing is left in the outbox: the test proved nothing")
	}
	t.Logf("accepted %d, left in outbox %d", last, len(left))
}

// await polls cond until it holds or d passes; it reports whether it held.
func await(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
