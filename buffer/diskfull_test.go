package buffer_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
)

// mountTmpfs mounts a tmpfs of the given size (such as "4m") on a fresh
// folder and unmounts it when the test ends. It skips the test where
// mounting is not allowed.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs for a real full disk (needs root): %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fsFreeBytes is the space left for an unprivileged writer on dir's file
// system.
func fsFreeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// TestDiskFull fills a real (tmpfs) file system under the outbox: Append
// fails with the cause, nothing stored is lost, the outbox keeps working
// and recovers once there is room again.
func TestDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "4m")
	path := filepath.Join(dir, "outbox.db")
	cfg := buffer.Config{Path: path, MaxBytes: 64 << 20, MaxRecords: 1_000_000}
	o, err := buffer.Open(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() { // before the unmount
		if !closed {
			o.Close()
		}
	}()

	// Leave 256 KiB: room for a few commits, not for the appends below.
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, fsFreeBytes(t, dir)-256<<10), 0o600); err != nil {
		t.Fatalf("writing the filler: %v", err)
	}

	stored := map[uint64]bool{}
	var appended uint64
	var appendErr error
	batch := func() []buffer.Pending {
		b := make([]buffer.Pending, 8)
		for i := range b {
			b[i] = sizedMsg(emberwatch.Class(i%2), 1000)
		}
		return b
	}
	for range 1000 {
		seqs, err := o.Append(batch()...)
		if err != nil {
			appendErr = err
			break
		}
		for _, s := range seqs {
			stored[s] = true
		}
		appended += uint64(len(seqs))
	}
	if appendErr == nil {
		t.Fatalf("8 MB of appends on a full 4 MiB file system all succeeded")
	}
	t.Logf("Append failed after %d records: %v", len(stored), appendErr)
	if !errors.Is(appendErr, syscall.ENOSPC) && !strings.Contains(appendErr.Error(), "no space left") {
		t.Errorf("Append on a full disk: %v; want the cause (ENOSPC) in the error", appendErr)
	}
	if errors.Is(appendErr, buffer.ErrFull) {
		t.Errorf("Append on a full disk: %v wraps ErrFull, which means the outbox's own caps", appendErr)
	}
	st := o.Stats()
	if st.AppendErrors == 0 {
		t.Errorf("Stats.AppendErrors = 0 after a failed commit")
	}
	if st.Appended != uint64(len(stored)) || o.Len() != len(stored) {
		t.Errorf("Appended %d, Len %d; want both %d (the failed Append counts for nothing)", st.Appended, o.Len(), len(stored))
	}
	if last, err := o.LastSeq(); err != nil || last != uint64(len(stored)) {
		t.Errorf("LastSeq = %d, %v; want %d (a failed commit's numbers are handed out again)", last, err, len(stored))
	}

	// Still usable while the disk is full: take and ack.
	msgs := takeNow(t, o, 10)
	checkSized(t, msgs)
	if err := o.Ack(seqsOf(msgs)); err != nil {
		t.Errorf("Ack on a full disk: %v", err)
	} else {
		for _, s := range seqsOf(msgs) {
			delete(stored, s)
		}
	}
	if err := o.Release(nil); err != nil {
		t.Fatal(err)
	}

	// Room again: appends succeed and carry on the numbering.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		for _, s := range mustAppend(t, o, batch()...) {
			stored[s] = true
			appended++
		}
	}
	want := slices.Sorted(func(yield func(uint64) bool) {
		for s := range stored {
			if !yield(s) {
				return
			}
		}
	})
	check := func(step string) {
		t.Helper()
		msgs := takeNow(t, o, len(want)+100)
		checkSized(t, msgs)
		got := seqsOf(msgs)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: took %d records, want the %d that Append returned for and were not acked", step, len(got), len(want))
		}
	}
	check("after freeing space")
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	o = openConfigured(t, cfg)
	if st := o.Stats(); st.MovedAside != "" {
		t.Fatalf("the file was moved aside at reopen: %s", st.MovedAside)
	}
	check("after reopening")
	if last := want[len(want)-1]; last != appended {
		t.Errorf("the last seq is %d after %d records appended, want %d: the failed Append's numbers are reused", last, appended, appended)
	}
}

// TestDiskFullKeepsTakenMarks: a commit that fails on a full disk is rolled
// back, so a record it would have evicted is still stored, and if it was
// taken (in flight to the broker) it must stay taken. makeRoom and expire
// delete the taken mark while the transaction is still open, so after the
// failed commit the in-flight record counts as untaken: the next scan
// (after any Release) hands it out a second time while the first delivery
// is still unacknowledged.
func TestDiskFullKeepsTakenMarks(t *testing.T) {
	dir := mountTmpfs(t, "4m")
	const max = 200
	o := openConfigured(t, buffer.Config{Path: filepath.Join(dir, "outbox.db"), MaxBytes: 64 << 20, MaxRecords: max})
	for range max / 10 {
		b := make([]buffer.Pending, 10)
		for i := range b {
			b[i] = sizedMsg(emberwatch.ClassSummary, 1000)
		}
		mustAppend(t, o, b...)
	}
	inFlight := takeNow(t, o, 1)[0] // the oldest: the next to be evicted
	other := takeNow(t, o, 1)[0]

	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, fsFreeBytes(t, dir)), 0o600); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing the filler: %v", err)
	}
	seqs, err := o.Append(sizedMsg(emberwatch.ClassSummary, 3000), sizedMsg(emberwatch.ClassSummary, 3000))
	if err == nil {
		t.Skipf("an Append on a full disk succeeded (%v); the test needs it to fail", seqs)
	}
	if o.Len() != max {
		t.Fatalf("Len = %d after a failed Append, want %d", o.Len(), max)
	}
	// The consumer gives back the other record; the in-flight one stays out.
	if err := o.Release([]uint64{other.Seq}); err != nil {
		t.Fatal(err)
	}
	for _, m := range takeNow(t, o, max) {
		if m.Seq == inFlight.Seq {
			t.Fatalf("seq %d was taken and neither acked nor released, yet Take handed it out again after a failed commit", m.Seq)
		}
	}
}
