package buffer_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
)

func TestReopenKeepsUnackedRecords(t *testing.T) {
	path := tempPath(t)
	o := openAt(t, path, 100)
	seqs := mustAppend(t, o, alert("a"), summary("s"), alert("a"), summary("s"))
	wantSeqs(t, takeNow(t, o, 10), seqs[0], seqs[2], seqs[1], seqs[3])
	if err := o.Ack([]uint64{seqs[0], seqs[3]}); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	o = openAt(t, path, 100)
	if o.Len() != 2 {
		t.Fatalf("Len after reopen = %d, want 2 (taken but not acked)", o.Len())
	}
	if st := o.Stats(); st.Backlog != [2]int{1, 1} {
		t.Errorf("Backlog after reopen = %v, want [1 1]", st.Backlog)
	}
	// Taken-but-unacked records are takeable again, payloads intact.
	wantSeqs(t, takeNow(t, o, 10), seqs[2], seqs[1])
	next := mustAppend(t, o, summary("s"))[0]
	if next <= seqs[3] {
		t.Errorf("first seq after reopen = %d, want > %d", next, seqs[3])
	}
}

func TestSeqNeverReused(t *testing.T) {
	path := tempPath(t)
	var last uint64
	for round := range 4 {
		o := openAt(t, path, 100)
		seqs := mustAppend(t, o, alert("a"), summary("s"), summary("s"))
		if seqs[0] <= last {
			t.Fatalf("round %d: seq %d after reopen, not above the last one ever assigned (%d)", round, seqs[0], last)
		}
		last = seqs[2]
		// Ack everything: the outbox is empty, yet numbers must not restart.
		msgs := takeNow(t, o, 10)
		if err := o.Ack(seqsOf(msgs)); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		if o.Len() != 0 {
			t.Fatalf("round %d: Len = %d after acking all", round, o.Len())
		}
		if err := o.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

const crashChildEnv = "EMBERWATCH_BUFFER_CRASH_CHILD"

// runCrashChild appends alerts to the outbox at path for ever, printing each
// sequence number once Append has returned for it. The parent kills it.
func runCrashChild(path string) int {
	o, err := buffer.Open(buffer.Config{Path: path, MaxRecords: 1_000_000}, zerolog.Nop())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for {
		seqs, err := o.Append(alert("crash"), summary("crash"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("%d\n%d\n", seqs[0], seqs[1])
	}
}

// TestCrashLosesNothingAppended kills a process that appends as fast as it
// can (SIGKILL, mid-transaction more often than not) after a random number of
// appends, twenty times over the same file, and each time reopens the file:
// it opens without repair, every record Append returned for is there, in
// order within its class, and acknowledged records stay gone.
func TestCrashLosesNothingAppended(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := tempPath(t)
	var acked []uint64
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 20 {
		killAt := 5 + rng.IntN(200)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		cmd.Stderr = &bytes.Buffer{}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var printed []uint64
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			seq, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			printed = append(printed, seq)
			if len(printed) == killAt {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Lines still in the pipe after the kill count too: the child only
		// prints what Append returned for.
		err = cmd.Wait()
		if len(printed) < killAt {
			t.Fatalf("round %d: child exited early (%v) after %d records: %s", round, err, len(printed), cmd.Stderr)
		}

		o := openAt(t, path, 1_000_000)
		if st := o.Stats(); st.MovedAside != "" || st.Corrupt != 0 {
			t.Fatalf("round %d: the file needed repair after a kill: %+v", round, st)
		}
		var msgs []emberwatch.Message
		if o.Len() > 0 {
			msgs = takeNow(t, o, o.Len())
		}
		var last [2]uint64
		for _, m := range msgs {
			if m.Seq <= last[m.Class] {
				t.Errorf("round %d: class %v seq %d after %d", round, m.Class, m.Seq, last[m.Class])
			}
			last[m.Class] = m.Seq
		}
		have := map[uint64]bool{}
		for _, m := range msgs {
			have[m.Seq] = true
		}
		for _, s := range printed {
			if !have[s] {
				t.Errorf("round %d: seq %d was appended before the kill but is missing after reopen", round, s)
			}
		}
		for _, s := range acked {
			if have[s] {
				t.Errorf("round %d: seq %d was acked before, yet came back", round, s)
			}
		}
		next := mustAppend(t, o, alert("after"))[0]
		if m := slices.Max(printed); next <= m {
			t.Errorf("round %d: seq after the crash = %d, not above %d", round, next, m)
		}
		// Ack half so the next round also checks acks survive a crash.
		half := seqsOf(msgs[:len(msgs)/2])
		if err := o.Ack(half); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, half...)
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// validOutboxFile returns the bytes of a closed outbox file holding records.
func validOutboxFile(t *testing.T) []byte {
	t.Helper()
	path := tempPath(t)
	o := openAt(t, path, 1000)
	for range 20 {
		mustAppend(t, o, alert("emberwatch/d/alerts"), summary("emberwatch/d/summaries"))
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOpenMovesCorruptFileAside writes damaged files where the outbox lives
// and checks that Open keeps the bytes aside and starts a working outbox.
// bbolt may panic or fault on such files, so Open runs with faults turned
// into panics, and a panic fails the case instead of the whole test binary.
func TestOpenMovesCorruptFileAside(t *testing.T) {
	valid := validOutboxFile(t)
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	cases := []struct {
		name string
		data []byte
	}{
		{"garbage 1 byte", garbage(1)},
		{"garbage 100 bytes", garbage(100)},
		{"garbage 64 KiB", garbage(64 << 10)},
		{"text", []byte("this is not an outbox\n")},
		{"truncated at 100", valid[:100]},
		{"truncated at 4096 (one meta page)", valid[:4096]},
		{"truncated at 6000", valid[:6000]},
		{"truncated at 8292 (both meta pages)", valid[:8292]},
		{"truncated at 12288", valid[:12288]},
		{"truncated at 16384", valid[:16384]},
		{"truncated at 24576", valid[:24576]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tempPath(t)
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			o := openSurvivingPanics(t, path)
			aside, err := filepath.Glob(path + ".corrupt-*")
			if err != nil {
				t.Fatal(err)
			}
			if len(aside) != 1 {
				t.Fatalf("files moved aside: %v, want exactly one %s.corrupt-<timestamp>", aside, filepath.Base(path))
			}
			stamp := aside[0][len(path+".corrupt-"):]
			if _, err := time.Parse("20060102T150405Z", stamp); err != nil {
				t.Errorf("aside file %s: suffix %q is not a timestamp: %v", aside[0], stamp, err)
			}
			kept, err := os.ReadFile(aside[0])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(kept, tc.data) {
				t.Errorf("aside file holds %d bytes, want the %d bytes that were there", len(kept), len(tc.data))
			}
			if o.Len() != 0 {
				t.Errorf("fresh outbox Len = %d, want 0", o.Len())
			}
			seqs := mustAppend(t, o, summary("s"), alert("a"))
			wantSeqs(t, takeNow(t, o, 10), seqs[1], seqs[0])
		})
	}
}

// openSurvivingPanics opens the outbox at path, failing t (rather than
// crashing the test binary) if Open panics or faults.
func openSurvivingPanics(t *testing.T, path string) (o *buffer.Outbox) {
	t.Helper()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Open panicked on a damaged file instead of moving it aside: %v", r)
		}
	}()
	return openAt(t, path, 1000)
}

func TestOpenEmptyFileIsFresh(t *testing.T) {
	path := tempPath(t)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	o := openAt(t, path, 10)
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 0 {
		t.Errorf("an empty file was moved aside: %v", aside)
	}
	seqs := mustAppend(t, o, alert("a"))
	wantSeqs(t, takeNow(t, o, 10), seqs...)
}

func TestOpenCreatesFolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "outbox.db")
	o := openAt(t, path, 10)
	mustAppend(t, o, alert("a"))
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("outbox file not created: %v", err)
	}
}

func TestOpenLockedFile(t *testing.T) {
	path := tempPath(t)
	first := openAt(t, path, 10)
	seq := mustAppend(t, first, alert("a"))[0]

	type openResult struct {
		o   *buffer.Outbox
		err error
	}
	got := make(chan openResult, 1)
	go func() {
		o, err := buffer.Open(buffer.Config{Path: path, MaxRecords: 10}, testLogger(t))
		got <- openResult{o, err}
	}()
	var r openResult
	select {
	case r = <-got:
	case <-time.After(10 * time.Second): // safety bound; bbolt gives up after 1s
		t.Fatal("second Open of a held file did not return")
	}
	if r.err == nil {
		r.o.Close()
		t.Fatal("second Open of a file held open succeeded")
	}
	if !errors.Is(r.err, buffer.ErrLocked) {
		t.Fatalf("second Open: %v, want an error wrapping ErrLocked", r.err)
	}
	// The held file is neither moved aside nor disturbed.
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 0 {
		t.Errorf("a locked file was moved aside: %v", aside)
	}
	wantSeqs(t, takeNow(t, first, 10), seq)
}

// corruptValues are record values the outbox cannot decode.
var corruptValues = map[string][]byte{
	"empty":              {},
	"one byte":           {1},
	"unknown version":    append([]byte{9, 1}, "tpayload"...),
	"topic past the end": append([]byte{1, 100}, "short"...),
	"bad uvarint":        {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	"empty topic":        append([]byte{1, 0}, "payload"...),
	"wildcard topic":     append([]byte{1, 3}, "a/#payload"...),
}

func TestCorruptRecordIsSkipped(t *testing.T) {
	for name, value := range corruptValues {
		t.Run(name, func(t *testing.T) {
			path := tempPath(t)
			o := openAt(t, path, 100)
			seqs := mustAppend(t, o, alert("a"), alert("a"), alert("a"), summary("s"))
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			putRaw(t, path, "alerts", seqs[1], value)

			o = openAt(t, path, 100)
			if o.Len() != 4 {
				t.Fatalf("Len after reopen = %d, want 4 (the corrupt record is not known yet)", o.Len())
			}
			wantSeqs(t, takeNow(t, o, 10), seqs[0], seqs[2], seqs[3])
			st := o.Stats()
			if st.Corrupt != 1 {
				t.Errorf("Stats.Corrupt = %d, want 1", st.Corrupt)
			}
			if o.Len() != 3 || st.Backlog != [2]int{2, 1} {
				t.Errorf("Len = %d, Backlog = %v after skipping; want 3, [2 1]", o.Len(), st.Backlog)
			}
			if err := o.Ack([]uint64{seqs[0], seqs[2], seqs[3]}); err != nil {
				t.Fatal(err)
			}
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			// The corrupt record was deleted, not just skipped.
			o = openAt(t, path, 100)
			if o.Len() != 0 {
				t.Errorf("Len after acking the rest and reopening = %d, want 0", o.Len())
			}
		})
	}
}

// putRaw writes value under seq in bucket of the (closed) outbox file.
func putRaw(t *testing.T, path, bucket string, seq uint64, value []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return fmt.Errorf("no bucket %q", bucket)
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, seq), value)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOpenDirectoryIsNotMovedAside: a path that cannot be opened for a
// reason other than a damaged file (here it is a folder; a full descriptor
// table or an I/O error would do the same) must be reported, not "repaired"
// by renaming whatever is there.
func TestOpenDirectoryIsNotMovedAside(t *testing.T) {
	path := tempPath(t)
	if err := os.Mkdir(path, 0o750); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(path, "keep.txt")
	if err := os.WriteFile(keep, []byte("not the outbox's"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := buffer.Open(buffer.Config{Path: path, MaxRecords: 10}, testLogger(t))
	if err == nil {
		o.Close()
	}
	aside, _ := filepath.Glob(path + ".corrupt-*")
	if len(aside) > 0 {
		t.Errorf("Open(%s) where a folder is: err = %v, and it renamed the folder to %s", filepath.Base(path), err, filepath.Base(aside[0]))
	}
	if _, serr := os.Stat(keep); serr != nil {
		t.Errorf("the folder's file is no longer where it was: %v", serr)
	}
	if err == nil {
		t.Errorf("Open succeeded with a folder at the outbox path")
	}
}

// TestOpenKeepsEveryCorruptFile: two damaged files found in the same second
// must both be kept. The aside name has one-second resolution, so the
// second rename replaces the first file. The bubble's clock stands still,
// which makes "the same second" certain.
func TestOpenKeepsEveryCorruptFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := tempPath(t)
		for i, junk := range []string{"first damaged file", "second damaged file"} {
			if err := os.WriteFile(path, []byte(junk), 0o600); err != nil {
				t.Fatal(err)
			}
			o, err := buffer.Open(buffer.Config{Path: path, MaxRecords: 10}, testLogger(t))
			if err != nil {
				t.Fatalf("Open %d: %v", i, err)
			}
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}
		aside, err := filepath.Glob(path + ".corrupt-*")
		if err != nil {
			t.Fatal(err)
		}
		var kept []string
		for _, a := range aside {
			b, err := os.ReadFile(a)
			if err != nil {
				t.Fatal(err)
			}
			kept = append(kept, string(b))
		}
		if len(kept) != 2 {
			t.Errorf("two damaged files moved aside within a second; kept %q, want both", kept)
		}
	})
}
