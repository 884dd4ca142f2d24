package main

import (
	"bytes"
	"encoding/csv"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch/sensors"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestReplayGolden replays a small recording with bad rows and checks
// features.jsonl against the golden file (go test -run Replay -update
// rewrites it).
func TestReplayGolden(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, "replay", "--config", "testdata/replay.yaml", "--input", "testdata/station.csv", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "1 bad rows skipped") {
		t.Errorf("summary does not count the bad row: %s", stdout)
	}
	if !strings.Contains(stderr, "line 8") {
		t.Errorf("the bad row is not reported with its line number: %s", stderr)
	}
	got, err := os.ReadFile(filepath.Join(out, "features.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	golden := "testdata/station.features.jsonl"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("features.jsonl differs from %s (run with -update to accept):\n%s", golden, got)
	}
}

func TestReplayStrictStopsAtBadRow(t *testing.T) {
	code, _, stderr := runCLI(t, "replay", "--strict", "--config", "testdata/replay.yaml", "--input", "testdata/station.csv", "--out", t.TempDir())
	if code != exitFailure || !strings.Contains(stderr, "line 8") {
		t.Fatalf("exit %d, stderr %q; want exit 1 naming line 8", code, stderr)
	}
}

func TestReplayUsage(t *testing.T) {
	for _, args := range [][]string{
		{"replay"},
		{"replay", "--input", "testdata/station.csv"},
		{"replay", "--input", "testdata/missing.csv", "--out", t.TempDir()},
	} {
		if code, _, stderr := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, stderr)
		}
	}
}

// TestReplayShuffledWithinLatenessIsIdentical replays a NAB recording in
// order and with rows shuffled by up to the windows' lateness (20 minutes): the two
// features.jsonl files must be byte for byte the same.
func TestReplayShuffledWithinLatenessIsIdentical(t *testing.T) {
	src := "../../../shared/data/nab/realKnownCause/cpu_utilization_asg_misconfiguration.csv"
	data, err := os.ReadFile(src)
	if err != nil {
		t.Skipf("NAB data not found: %v", err)
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header, body := rows[0], rows[1:]
	// Each row may arrive up to 20 minutes (the lateness) after its time;
	// order by that arrival.
	rng := rand.New(rand.NewPCG(1, 2))
	type arrival struct {
		at  time.Time
		row []string
	}
	arr := make([]arrival, len(body))
	for i, r := range body {
		ts, err := sensors.ParseTimestamp(r[0])
		if err != nil {
			t.Fatal(err)
		}
		arr[i] = arrival{ts.Add(time.Duration(rng.Int64N(int64(20 * time.Minute)))), r}
	}
	slices.SortStableFunc(arr, func(a, b arrival) int { return a.at.Compare(b.at) })
	var shuffled bytes.Buffer
	w := csv.NewWriter(&shuffled)
	w.Write(header)
	moved := 0
	for i, a := range arr {
		w.Write(a.row)
		if a.row[0] != body[i][0] {
			moved++
		}
	}
	w.Flush()
	dir := t.TempDir()
	shufPath := filepath.Join(dir, "shuffled.csv")
	if err := os.WriteFile(shufPath, shuffled.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if moved < len(body)/10 {
		t.Fatal("the shuffle moved no row; the test would prove nothing")
	}

	var outs [2][]byte
	for i, in := range []string{src, shufPath} {
		out := filepath.Join(dir, "out", strings.TrimSuffix(filepath.Base(in), ".csv"))
		if code, _, stderr := runCLI(t, "replay", "--config", "testdata/replay-late.yaml", "--input", in, "--out", out); code != exitOK {
			t.Fatalf("replay %s: exit %d: %s", in, code, stderr)
		}
		if outs[i], err = os.ReadFile(filepath.Join(out, "features.jsonl")); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Fatalf("in-order and shuffled replays differ (%d vs %d bytes)", len(outs[0]), len(outs[1]))
	}
	if n := bytes.Count(outs[0], []byte("\n")); n < 1000 {
		t.Fatalf("only %d windows", n)
	}
}
