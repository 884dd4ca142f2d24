package buffer_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
)

// Damaged files are opened in a child process (TestPowerLossChild), one
// case after another: a fault in a goroutine bbolt starts, or a check that
// never ends, would otherwise take the whole test binary down. The parent
// restarts the child after the case that crashed or hung and reports it.

const (
	damagedDirEnv  = "EMBERWATCH_BUFFER_DAMAGED_DIR"
	damagedFromEnv = "EMBERWATCH_BUFFER_DAMAGED_FROM"
	// damagedHang is how long one case may take before it counts as hung;
	// a sound one takes tens of milliseconds.
	damagedHang  = 3 * time.Second
	boltPageSize = 4096
)

// outboxImage is a closed outbox file's bytes and what it holds.
type outboxImage struct {
	data      []byte
	highWater int64 // bytes in use: pages past it are never read
	records   int
}

// buildImage writes an outbox of n records with payloads of up to maxSize
// bytes, acks a tenth of them (so the file has free pages and a freelist)
// and returns the file's bytes. It runs on the fixed clock of a synctest
// bubble, so that the record times, and with them the file and what a
// given seed's damage does to it, are the same on every run.
func buildImage(t *testing.T, seed uint64, n, maxSize int) (img outboxImage) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) { img = buildImageNow(t, seed, n, maxSize) })
	return img
}

func buildImageNow(t *testing.T, seed uint64, n, maxSize int) outboxImage {
	t.Helper()
	path := tempPath(t)
	o, err := buffer.Open(buffer.Config{Path: path, MaxRecords: 1_000_000, NoSync: true}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	for left := n; left > 0; {
		batch := make([]buffer.Pending, min(left, 1+rng.IntN(40)))
		for i := range batch {
			batch[i] = sizedMsg(emberwatch.Class(rng.IntN(2)), 12+rng.IntN(maxSize-12))
		}
		mustAppend(t, o, batch...)
		left -= len(batch)
	}
	takeCheckAck(t, o, n/10)
	img := outboxImage{records: o.Len()}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error {
		img.highWater = tx.Size()
		return nil
	})
	db.Close()
	img.data, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// damagedCase is a damaged outbox file to open.
type damagedCase struct {
	name       string
	data       []byte
	maxRecords int // the outbox's MaxRecords; 0 for 1,000,000
}

// damagedResult is what became of one case.
type damagedResult struct {
	Done    bool   `json:"done"`
	Moved   bool   `json:"moved"`   // moved aside, fresh outbox
	Back    int    `json:"back"`    // records that came back
	Intact  int    `json:"intact"`  // of those, with the payload appended
	Problem string `json:"problem"` // a broken promise, "" if none
	Crash   string `json:"-"`       // the process died or hung
}

// probeDamaged opens the outbox file at path and checks the promises: Open
// neither panics nor faults nor fails; either the file was moved aside
// (byte for byte) and a fresh outbox started, or it opened and every record
// in it can be taken and acked; the outbox then appends, takes, closes and
// reopens. It runs in the child, whose other goroutines are not protected:
// a fault there ends the process, which the parent reports.
func probeDamaged(path string, data []byte, maxRecords int) (res damagedResult) {
	res.Done = true
	step := "Open"
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			res.Problem = fmt.Sprintf("%s panicked: %v\n%s", step, r, bboltFrames(string(debug.Stack())))
		}
	}()
	cfg := buffer.Config{Path: path, MaxRecords: maxRecords}
	o, err := buffer.Open(cfg, zerolog.Nop())
	if err != nil {
		res.Problem = fmt.Sprintf("Open: %v; want the file opened or moved aside", err)
		return res
	}
	defer func() { o.Close() }()
	st := o.Stats()
	if res.Moved = st.MovedAside != ""; res.Moved {
		kept, err := os.ReadFile(st.MovedAside)
		switch {
		case err != nil:
			res.Problem = fmt.Sprintf("Stats.MovedAside = %s: %v", st.MovedAside, err)
		case !bytes.Equal(kept, data):
			res.Problem = fmt.Sprintf("the file moved aside holds %d bytes, want the %d that were there", len(kept), len(data))
		case o.Len() != 0:
			res.Problem = fmt.Sprintf("fresh outbox after moving aside: Len %d", o.Len())
		}
		if res.Problem != "" {
			return res
		}
	}

	step = "Take"
	var msgs []emberwatch.Message
	if n := o.Len(); n > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		msgs, err = o.Take(ctx, n+1)
		if err != nil && !errors.Is(err, context.Canceled) {
			res.Problem = fmt.Sprintf("Take: %v", err)
			return res
		}
	}
	res.Back, res.Intact = len(msgs), intactCount(msgs)
	for _, m := range msgs {
		if m.Class > emberwatch.ClassSummary || m.Topic == "" {
			res.Problem = fmt.Sprintf("Take returned seq %d with class %d, topic %q", m.Seq, m.Class, m.Topic)
			return res
		}
	}
	var lenProblem string // reported at the end, after the rest is tried
	if st := o.Stats(); o.Len() != len(msgs) {
		lenProblem = fmt.Sprintf("took %d records (skipping %d as corrupt), then Len = %d, Backlog %v: records neither takeable nor dropped are still counted", len(msgs), st.Corrupt, o.Len(), st.Backlog)
	}
	step = "Ack"
	if err := o.Ack(seqsOf(msgs)); err != nil {
		res.Problem = fmt.Sprintf("Ack of everything taken: %v", err)
		return res
	}
	step = "Append"
	seqs, err := o.Append(alert("after"), summary("after"))
	if err != nil {
		res.Problem = fmt.Sprintf("Append after opening: %v", err)
		return res
	}
	if maxRecords < 2 {
		seqs = seqs[:1] // the summary made room for the alert
	}
	step = "Close"
	if err := o.Close(); err != nil {
		res.Problem = fmt.Sprintf("Close: %v", err)
		return res
	}
	step = "reopen"
	o, err = buffer.Open(cfg, zerolog.Nop())
	if err != nil {
		res.Problem = fmt.Sprintf("reopening: %v", err)
		return res
	}
	step = "Take after reopening"
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	again, _ := o.Take(ctx, 10)
	if st := o.Stats(); st.MovedAside != "" || !slices.Equal(seqsOf(again), seqs) {
		res.Problem = fmt.Sprintf("reopened: MovedAside %q, took %v; want the file kept and seqs %v", st.MovedAside, seqsOf(again), seqs)
	}
	if res.Problem == "" {
		res.Problem = lenProblem
	}
	return res
}

// bboltFrames keeps the function lines of a stack that say where it
// happened: bbolt's and the outbox's.
func bboltFrames(stack string) string {
	var keep []string
	for _, l := range strings.Split(stack, "\n") {
		if (strings.HasPrefix(l, "go.etcd.io/bbolt") || strings.HasPrefix(l, "github.com/emberwatch/emberwatch/buffer.")) && len(keep) < 8 {
			keep = append(keep, "    "+l)
		}
	}
	return strings.Join(keep, "\n")
}

// intactCount counts the records whose payload is the one appended for them.
// bbolt keeps no checksum over data pages, so a flipped payload byte comes
// back undetected; the count is logged, not checked.
func intactCount(msgs []emberwatch.Message) int {
	n := 0
	for _, m := range msgs {
		if len(m.Payload) >= 12 {
			size := int(binary.BigEndian.Uint32(m.Payload[8:]))
			if size == len(m.Payload) && bytes.Equal(m.Payload, sizedPayload(m.Seq, size)) {
				n++
			}
		}
	}
	return n
}

// TestPowerLossChild is the child process of the power-loss tests; run
// directly it skips. It probes the cases in its folder from the one named
// by damagedFromEnv on, printing a line as each starts and one with its
// result.
func TestPowerLossChild(t *testing.T) {
	dir := os.Getenv(damagedDirEnv)
	if dir == "" {
		t.Skip("the child process of the power-loss tests")
	}
	from, err := strconv.Atoi(os.Getenv(damagedFromEnv))
	if err != nil {
		t.Fatal(err)
	}
	for i := from; ; i++ {
		caseDir := filepath.Join(dir, strconv.Itoa(i))
		data, err := os.ReadFile(filepath.Join(caseDir, "damaged"))
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		maxRecords := 1_000_000
		if b, err := os.ReadFile(filepath.Join(caseDir, "max_records")); err == nil {
			maxRecords, _ = strconv.Atoi(string(b))
		}
		fmt.Printf("START %d\n", i)
		path := filepath.Join(caseDir, "outbox.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(probeDamaged(path, data, maxRecords))
		fmt.Printf("RESULT %d %s\n", i, b)
	}
}

// probeInChild opens every case in child processes and returns what became
// of each, restarting the child after a case that crashed or hung it.
func probeInChild(t *testing.T, cases []damagedCase) []damagedResult {
	t.Helper()
	dir := t.TempDir()
	for i, c := range cases {
		caseDir := filepath.Join(dir, strconv.Itoa(i))
		if err := os.Mkdir(caseDir, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(caseDir, "damaged"), c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if c.maxRecords > 0 {
			if err := os.WriteFile(filepath.Join(caseDir, "max_records"), []byte(strconv.Itoa(c.maxRecords)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	results := make([]damagedResult, len(cases))
	for from := 0; from < len(cases); {
		cur, crash := runChild(t, dir, from, results)
		if cur < 0 {
			break // the child got through the rest
		}
		results[cur].Crash = crash
		from = cur + 1
	}
	for i, r := range results {
		if !r.Done && r.Crash == "" {
			t.Fatalf("case %s: the child never got to it", cases[i].name)
		}
	}
	return results
}

// runChild runs the child from case from on, filling in results. It
// returns the case that was running when the child died or hung (-1 if
// none) and what it died of.
func runChild(t *testing.T, dir string, from int, results []damagedResult) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPowerLossChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), damagedDirEnv+"="+dir, damagedFromEnv+"="+strconv.Itoa(from))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	cur, hung := -1, false
	timer := time.NewTimer(10 * time.Second) // starting the child

	defer timer.Stop()
read:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				break read
			}
			var i int
			if _, err := fmt.Sscanf(l, "START %d", &i); err == nil {
				cur = i
				timer.Reset(damagedHang)
			} else if rest, ok := strings.CutPrefix(l, "RESULT "); ok {
				num, js, _ := strings.Cut(rest, " ")
				i, _ := strconv.Atoi(num)
				if err := json.Unmarshal([]byte(js), &results[i]); err != nil {
					t.Fatalf("child printed %q: %v", l, err)
				}
				cur = -1
				timer.Reset(damagedHang)
			}
		case <-timer.C:
			hung = true
			cmd.Process.Kill()
			for range lines { // until the pipe closes
			}
			break read
		}
	}
	werr := cmd.Wait()
	switch {
	case hung && cur >= 0:
		return cur, fmt.Sprintf("did not finish within %v: the child was still busy in it and was killed", damagedHang)
	case hung:
		t.Fatalf("the child printed nothing for %v outside any case; stderr:\n%s", damagedHang, stderr.Bytes())
	case cur >= 0:
		return cur, fmt.Sprintf("the process died (%v):\n%s", werr, crashSummary(stderr.String()))
	}
	return -1, ""
}

// crashSummary is the first lines of a Go crash and the frames that say
// where it happened.
func crashSummary(stderr string) string {
	var head []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "fatal error") || strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "unexpected fault") || strings.HasPrefix(l, "[signal") {
			head = append(head, "    "+l)
		}
		if len(head) == 3 {
			break
		}
	}
	return strings.Join(head, "\n") + "\n" + bboltFrames(stderr)
}

// checkDamaged reports, under a subtest per case, the cases that crashed,
// hung or broke a promise, and logs what became of the others. extra
// checks a case further.
func checkDamaged(t *testing.T, cases []damagedCase, extra func(t *testing.T, i int, r damagedResult)) {
	results := probeInChild(t, cases)
	moved := 0
	for i, c := range cases {
		r := results[i]
		t.Run(c.name, func(t *testing.T) {
			switch {
			case r.Crash != "":
				t.Errorf("opening the damaged file %s", r.Crash)
				return
			case r.Problem != "":
				t.Errorf("%s", r.Problem)
				return
			}
			if r.Moved {
				moved++
			}
			t.Logf("moved aside %v, %d records back, %d intact", r.Moved, r.Back, r.Intact)
			if extra != nil {
				extra(t, i, r)
			}
		})
	}
	t.Logf("%d of %d damaged files moved aside", moved, len(cases))
}

// flipBytes damages img in 1 to 4 random pages in use: 1 to 8 random bytes
// each, anywhere in the page or, with header, in its first 64 bytes (the
// page header and the first element headers: ids, counts, offsets, sizes).
func flipBytes(img outboxImage, seed uint64, header bool) damagedCase {
	rng := rand.New(rand.NewPCG(seed, 7))
	data := bytes.Clone(img.data)
	pages := int(img.highWater / boltPageSize)
	var hit []int
	for range 1 + rng.IntN(4) {
		p := rng.IntN(pages)
		if header {
			p = 2 + rng.IntN(pages-2) // meta pages have checksums; see TestPowerLossZeroedPage
		}
		hit = append(hit, p)
		span := boltPageSize
		if header {
			span = 64
		}
		for range 1 + rng.IntN(8) {
			data[p*boltPageSize+rng.IntN(span)] ^= byte(1 + rng.IntN(255))
		}
	}
	where := "anywhere"
	if header {
		where = "headers"
	}
	return damagedCase{name: fmt.Sprintf("%s seed %d pages %v", where, seed, hit), data: data}
}

// TestPowerLossFlippedBytes damages a valid outbox file as a bad power cut
// or worn flash might, flipping a few bytes in a few pages, and opens it.
// The file is the same on every run; whether a damaged offset or page id
// faults depends on what happens to be mapped past bbolt's mmap, so the
// set of cases that crash can differ a little between runs (a hang does
// not).
func TestPowerLossFlippedBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	img := buildImage(t, 1, 600, 1500)
	t.Logf("image: %d records in %d pages (%d bytes in the file)", img.records, img.highWater/boltPageSize, len(img.data))
	var cases []damagedCase
	for seed := range uint64(12) {
		cases = append(cases, flipBytes(img, seed, false))
	}
	for seed := range uint64(24) {
		cases = append(cases, flipBytes(img, seed, true))
	}
	checkDamaged(t, cases, nil)
}

// TestPowerLossZeroedPage zeroes one whole page (a sector that never got
// written) of a valid outbox file, for pages across the file, and both
// meta pages at once.
func TestPowerLossZeroedPage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	img := buildImage(t, 2, 600, 1500)
	pages := int(img.highWater / boltPageSize)
	var cases []damagedCase
	zero := func(name string, from, to int) {
		data := bytes.Clone(img.data)
		clear(data[from*boltPageSize : to*boltPageSize])
		cases = append(cases, damagedCase{name: name, data: data})
	}
	for p := range 6 {
		zero(fmt.Sprintf("page %d", p), p, p+1)
	}
	for p := 6; p < pages; p += max(1, pages/12) {
		zero(fmt.Sprintf("page %d", p), p, p+1)
	}
	zero("both meta pages", 0, 2)
	checkDamaged(t, cases, func(t *testing.T, i int, r damagedResult) {
		if cases[i].name == "both meta pages" && !r.Moved {
			t.Errorf("a file with both meta pages zeroed was not moved aside")
		}
	})
}

// TestPowerLossTruncated cuts a valid multi-MiB outbox file at random
// offsets, as a file system that lost the tail of the file would.
func TestPowerLossTruncated(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	img := buildImage(t, 3, 3000, 2000)
	t.Logf("image: %d records, %d bytes in use, %d in the file", img.records, img.highWater, len(img.data))
	rng := rand.New(rand.NewPCG(20, 20))
	var cases []damagedCase
	var offs []int
	for range 20 {
		off := rng.IntN(len(img.data))
		if rng.IntN(2) == 0 {
			off -= off % boltPageSize // whole pages, as file systems usually lose them
		}
		offs = append(offs, off)
		cases = append(cases, damagedCase{name: fmt.Sprintf("at %d", off), data: img.data[:off]})
	}
	checkDamaged(t, cases, func(t *testing.T, i int, r damagedResult) {
		if int64(offs[i]) >= img.highWater && (r.Moved || r.Back != img.records) {
			t.Errorf("cut past the pages in use: moved aside %v, %d of %d records back; want all", r.Moved, r.Back, img.records)
		}
		// A cut changes no byte: whatever comes back is as appended.
		if r.Intact != r.Back {
			t.Errorf("%d of the %d records that came back have a payload other than the one appended", r.Back-r.Intact, r.Back)
		}
	})
}

// TestPowerLossKeyLength damages the key size of one record, the first in
// the alerts bucket's only (leaf) page, in ways bbolt's consistency check
// lets through: keys stay in order. The outbox reads every key as an
// 8-byte sequence number.
func TestPowerLossKeyLength(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := tempPath(t)
	o := openAt(t, path, 1000)
	for range 12 {
		mustAppend(t, o, sizedMsg(emberwatch.ClassAlert, 150), sizedMsg(emberwatch.ClassSummary, 150))
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var root uint64
	db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("alerts"))
		root = uint64(b.Root())
		if st := b.Stats(); st.Depth != 1 || st.LeafPageN != 1 || st.InlineBucketN != 0 {
			t.Fatalf("alerts bucket: %+v; the test needs it in one leaf page of its own", st)
		}
		return nil
	})
	db.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A leaf page: 16-byte header, then 16-byte elements (flags, pos,
	// ksize, vsize; native byte order).
	ksize := int(root)*boltPageSize + 16 + 8
	if got := binary.NativeEndian.Uint32(data[ksize:]); got != 8 {
		t.Fatalf("first element's key size is %d, want 8: not the page layout the test expects", got)
	}
	withKeySize := func(n uint32) []byte {
		d := bytes.Clone(data)
		binary.NativeEndian.PutUint32(d[ksize:], n)
		return d
	}
	checkDamaged(t, []damagedCase{
		{name: "first alert's key cut to 4 bytes", data: withKeySize(4)},
		{name: "first alert's key grown to 12 bytes", data: withKeySize(12)},
		// With MaxRecords 1 the next Append evicts, which reads the
		// oldest key of each bucket in the commit goroutine.
		{name: "first alert's key cut to 4 bytes, MaxRecords 1", data: withKeySize(4), maxRecords: 1},
	}, nil)
}
