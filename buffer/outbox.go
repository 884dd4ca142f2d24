package buffer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/emberwatch/emberwatch"
)

// Errors returned by the outbox.
var (
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("buffer: outbox closed")
	// ErrLocked is returned by Open when another process holds the file.
	ErrLocked = errors.New("buffer: outbox file is locked by another process")
	// ErrFull is returned by Append under the reject_new policy when the
	// messages do not fit.
	ErrFull = errors.New("buffer: outbox full")
	// ErrBadTopic is returned by Append for a topic no broker would accept
	// for a publish: empty, or with a wildcard or NUL in it.
	ErrBadTopic = errors.New("buffer: invalid topic")
)

// Pending is a message to append. Encode is called with the sequence number
// the message gets, so the payload can carry it; an Encode error fails that
// Append alone, and its numbers are handed out again.
type Pending struct {
	Class  emberwatch.Class
	Topic  string
	Encode func(seq uint64) ([]byte, error)
}

// Stats are the outbox's metrics. Counters run from Open.
type Stats struct {
	// MovedAside is where a damaged file found at Open was moved, if any.
	MovedAside string
	// Backlog and BacklogBytes are the records not yet acknowledged, and
	// their size, per class.
	Backlog      [numClasses]int
	BacklogBytes [numClasses]int64
	// OldestAge is the age of the oldest record per class (0 when empty).
	OldestAge [numClasses]time.Duration
	// FileBytes is the size of the bbolt file.
	FileBytes int64
	Appended  uint64
	Acked     uint64
	// Evicted counts records dropped to make room, Expired those dropped
	// for age, Rejected those refused under reject_new, per class.
	Evicted  [numClasses]uint64
	Expired  [numClasses]uint64
	Rejected [numClasses]uint64
	// Corrupt counts undecodable records skipped and deleted.
	Corrupt uint64
	// Commits counts write transactions; Appended/Commits is the group
	// commit's batching. AppendErrors counts failed commits (a full disk).
	Commits      uint64
	AppendErrors uint64
	Compactions  uint64
}

const numClasses = 2

var (
	metaBucket   = []byte("meta")
	classBuckets = [numClasses][]byte{[]byte("alerts"), []byte("summaries")}
)

// Record layout, version 2: version byte, uvarint append time (Unix ns),
// uvarint topic length, topic, payload. Version 1 lacks the time.
const (
	recordV1 = 1
	recordV2 = 2
)

// allocSize is how much bbolt grows the file by once it is past it; small,
// so that the file tracks the byte cap closely.
const allocSize = 1 << 20

// queuedAppends is how many appends may wait for the commit goroutine;
// past it, Append blocks.
const queuedAppends = 1024

// compactEvery is the least time between two compactions.
const compactEvery = time.Minute

// Outbox is a durable message queue in a bbolt file. All methods are safe
// for concurrent use. Appends are group-committed by a goroutine the outbox
// owns from Open to Close.
type Outbox struct {
	cfg Config
	log zerolog.Logger
	now func() time.Time

	reqs   chan *appendReq
	stop   chan struct{}
	wg     sync.WaitGroup
	sendMu sync.RWMutex // held to send on reqs; Close takes it to stop sends
	ended  bool         // guarded by sendMu: no more sends

	mu          sync.Mutex // guards the fields below and every use of db
	db          *bolt.DB
	closed      bool
	changed     chan struct{} // closed and replaced when records become takeable
	taken       map[uint64]struct{}
	cursor      [numClasses]uint64 // Take scans each class after this seq
	seq         uint64             // the last sequence number handed out
	stats       Stats
	lastCompact time.Time
	dropLog     map[string]*dropLog
}

type appendReq struct {
	msgs []Pending
	seqs []uint64
	err  error
	done chan struct{}
}

// Open opens (or creates) the outbox file and checks it. A damaged file
// (not a bbolt database, truncated, failing bbolt's consistency check) is
// moved aside as <path>.corrupt-<time> and a fresh one is made, so that a
// damaged file never keeps the agent from starting; Stats.MovedAside says so.
// Any other failure (the file is locked by another process, unreadable, not
// a regular file) is returned and the file is left alone.
func Open(cfg Config, log zerolog.Logger) (*Outbox, error) {
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	log = log.With().Str("component", "outbox").Logger()
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o750); err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	os.Remove(cfg.Path + ".compact") // a compaction cut short; the original is intact
	db, damaged, err := openChecked(cfg.Path, cfg.NoSync)
	movedAside := ""
	if damaged {
		aside, rerr := moveAside(cfg.Path)
		if rerr != nil {
			return nil, fmt.Errorf("open outbox %s: %w (and moving it aside failed: %v)", cfg.Path, err, rerr)
		}
		log.Error().Err(err).Str("moved_to", aside).Msg("outbox file damaged; moved it aside and starting fresh")
		movedAside = aside
		db, _, err = openChecked(cfg.Path, cfg.NoSync)
	}
	if err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", cfg.Path, err)
	}
	o := &Outbox{cfg: cfg, log: log, now: time.Now, db: db,
		reqs: make(chan *appendReq, queuedAppends), stop: make(chan struct{}),
		changed: make(chan struct{}), taken: map[uint64]struct{}{}}
	o.stats.MovedAside = movedAside
	if err := o.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open outbox %s: %w", cfg.Path, err)
	}
	o.wg.Add(1)
	go o.commitLoop()
	log.Info().Str("path", cfg.Path).Ints("backlog", o.stats.Backlog[:]).Uint64("last_seq", o.seq).Msg("outbox open")
	return o, nil
}

// load creates the buckets and counts what the file holds.
func (o *Outbox) load() error {
	return o.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		o.seq = meta.Sequence()
		for c, name := range classBuckets {
			b, err := tx.CreateBucketIfNotExists(name)
			if err != nil {
				return err
			}
			o.stats.Backlog[c], o.stats.BacklogBytes[c] = 0, 0
			var bad [][]byte
			err = b.ForEach(func(k, v []byte) error {
				if _, ok := seqOf(k); !ok {
					bad = append(bad, slices.Clone(k)) // a damaged key: Take's seeks would never reach it
					return nil
				}
				o.stats.Backlog[c]++
				o.stats.BacklogBytes[c] += recordSize(k, v)
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range bad {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			o.stats.Corrupt += uint64(len(bad))
		}
		return nil
	})
}

func recordSize(k, v []byte) int64 { return int64(len(k) + len(v)) }

// Append stores the messages and returns their sequence numbers. It returns
// once they are committed (and, unless NoSync, fsynced): nothing it returned
// for is lost to a crash. Concurrent Appends share commits. It fails with
// ErrBadTopic for a topic no broker takes, ErrFull under reject_new, or the
// storage error (a full disk); the agent can go on and try again.
func (o *Outbox) Append(msgs ...Pending) ([]uint64, error) {
	return o.AppendAsync(msgs...).Wait()
}

// Appending is an append on its way to disk.
type Appending struct{ r *appendReq }

// Wait blocks until the append is durable (or failed) and returns what
// Append would have.
func (a *Appending) Wait() ([]uint64, error) {
	<-a.r.done
	return a.r.seqs, a.r.err
}

// AppendAsync queues the messages for the next commit and returns without
// waiting for it, so that one goroutine can keep many appends in flight;
// Wait on the result before relying on them. Appends are committed in the
// order they were queued.
func (o *Outbox) AppendAsync(msgs ...Pending) *Appending {
	r := &appendReq{msgs: msgs, done: make(chan struct{})}
	fail := func(err error) *Appending {
		r.err = err
		close(r.done)
		return &Appending{r}
	}
	for _, m := range msgs {
		if err := checkTopic(m.Topic); err != nil {
			return fail(fmt.Errorf("append to outbox: %w", err))
		}
		if int(m.Class) >= numClasses {
			return fail(fmt.Errorf("append to outbox: unknown class %d", m.Class))
		}
	}
	o.sendMu.RLock()
	defer o.sendMu.RUnlock()
	if o.ended {
		return fail(ErrClosed)
	}
	if len(msgs) == 0 {
		return fail(nil)
	}
	o.reqs <- r
	return &Appending{r}
}

// commitLoop owns the write side: it gathers appends into commits and
// expires old records.
func (o *Outbox) commitLoop() {
	defer o.wg.Done()
	var expire <-chan time.Time
	if o.cfg.MaxAge > 0 {
		t := time.NewTicker(min(max(o.cfg.MaxAge/10, time.Second), time.Minute))
		defer t.Stop()
		expire = t.C
	}
	var delay *time.Timer
	defer func() {
		if delay != nil {
			delay.Stop()
		}
	}()
	for {
		var first *appendReq
		select {
		case <-o.stop:
			// Close let no more appends in; answer those still queued.
			for {
				select {
				case r := <-o.reqs:
					r.err = ErrClosed
					close(r.done)
				default:
					return
				}
			}
		case <-expire:
			o.mu.Lock()
			o.commit(nil)
			o.mu.Unlock()
			continue
		case first = <-o.reqs:
		}
		batch := []*appendReq{first}
		n := len(first.msgs)
		var timeout <-chan time.Time
		if o.cfg.CommitDelay > 0 {
			if delay == nil {
				delay = time.NewTimer(o.cfg.CommitDelay)
			} else {
				delay.Reset(o.cfg.CommitDelay)
			}
			timeout = delay.C
		}
	gather:
		for n < o.cfg.CommitBatch {
			if timeout == nil {
				select {
				case r := <-o.reqs:
					batch, n = append(batch, r), n+len(r.msgs)
				default:
					break gather
				}
				continue
			}
			select {
			case r := <-o.reqs:
				batch, n = append(batch, r), n+len(r.msgs)
			case <-timeout:
				timeout = nil
				break gather
			}
		}
		if timeout != nil && !delay.Stop() {
			<-delay.C
		}
		o.mu.Lock()
		o.commit(batch)
		o.mu.Unlock()
		for _, r := range batch {
			close(r.done)
		}
	}
}

type staged struct {
	req   *appendReq
	class []emberwatch.Class
	keys  [][]byte
	vals  [][]byte
}

// commit writes a batch of appends in one transaction, then enforces the
// caps. o.mu is held.
func (o *Outbox) commit(batch []*appendReq) {
	if o.closed {
		for _, r := range batch {
			r.err = ErrClosed
		}
		return
	}
	now := o.now()
	startSeq := o.seq
	var work []staged
	for _, r := range batch {
		st := staged{req: r}
		before := o.seq
		for _, m := range r.msgs {
			o.seq++
			payload, err := m.Encode(o.seq)
			if err != nil {
				r.err = fmt.Errorf("append to outbox: encode message %d: %w", o.seq, err)
				break
			}
			st.class = append(st.class, m.Class)
			st.keys = append(st.keys, key(o.seq))
			st.vals = append(st.vals, encodeRecord(now, m.Topic, payload))
		}
		if r.err != nil {
			o.seq = before // hand the numbers out again: no gaps
			continue
		}
		work = append(work, st)
	}
	stats := o.stats
	var evicted, expired, rejected [numClasses]uint64
	var dropped []uint64 // evicted or expired: their taken marks go after the commit
	err := o.db.Update(func(tx *bolt.Tx) error {
		b := [numClasses]*bolt.Bucket{tx.Bucket(classBuckets[0]), tx.Bucket(classBuckets[1])}
		for _, bk := range b {
			// Keys only ever grow: fill pages instead of splitting them in
			// half, which halves the file.
			bk.FillPercent = 0.95
		}
		for i := range work {
			st := &work[i]
			for j, k := range st.keys {
				c := st.class[j]
				if err := b[c].Put(k, st.vals[j]); err != nil {
					return err
				}
				stats.Backlog[c]++
				stats.BacklogBytes[c] += recordSize(k, st.vals[j])
			}
			ok, err := o.makeRoom(b, &stats, &evicted, st, &dropped)
			if err != nil {
				return err
			}
			if !ok {
				// reject_new: take this append back out.
				for j, k := range st.keys {
					c := st.class[j]
					if err := b[c].Delete(k); err != nil {
						return err
					}
					stats.Backlog[c]--
					stats.BacklogBytes[c] -= recordSize(k, st.vals[j])
					rejected[c]++
				}
				st.req.err = fmt.Errorf("append to outbox: %w (%d records, %d bytes held)", ErrFull, total(stats.Backlog), totalBytes(stats.BacklogBytes))
			}
		}
		if o.cfg.MaxAge > 0 {
			if err := o.expire(b, &stats, &expired, now.Add(-o.cfg.MaxAge), &dropped); err != nil {
				return err
			}
		}
		return tx.Bucket(metaBucket).SetSequence(o.seq)
	})
	if err != nil {
		o.seq = startSeq
		o.stats.AppendErrors++
		if o.stats.AppendErrors == 1 || o.stats.AppendErrors%100 == 0 {
			o.log.Error().Err(err).Uint64("failures", o.stats.AppendErrors).Msg("outbox commit failed")
		}
		for _, r := range batch {
			if r.err == nil {
				r.err = fmt.Errorf("append to outbox: %w", err)
			}
		}
		return
	}
	for _, seq := range dropped {
		delete(o.taken, seq)
	}
	appended := 0
	for i := range work {
		if work[i].req.err == nil {
			work[i].req.seqs = make([]uint64, len(work[i].keys))
			for j, k := range work[i].keys {
				work[i].req.seqs[j] = binary.BigEndian.Uint64(k)
			}
			appended += len(work[i].keys)
		}
	}
	stats.Appended += uint64(appended)
	stats.Commits++
	for c := range numClasses {
		stats.Evicted[c] += evicted[c]
		stats.Expired[c] += expired[c]
		stats.Rejected[c] += rejected[c]
	}
	o.stats = stats
	o.logDrops(evicted, "outbox full; evicted oldest records")
	o.logDrops(expired, "outbox records expired (max_age)")
	o.logDrops(rejected, "outbox full; rejected new records")
	if appended > 0 {
		o.signal()
	}
	o.maybeCompact()
}

// makeRoom enforces the record and byte caps after st was put. Under
// evict_oldest it deletes the oldest records of the lowest class first (st's
// own included, if the cap is smaller than one Append). Under reject_new it
// first works out whether deleting records of classes below st's highest,
// older than st, would make st fit; only then does it delete them, and
// otherwise it deletes nothing and reports false. Sequence numbers deleted
// go to dropped, whose taken marks are cleared once the commit succeeds.
func (o *Outbox) makeRoom(b [numClasses]*bolt.Bucket, stats *Stats, evicted *[numClasses]uint64, st *staged, dropped *[]uint64) (bool, error) {
	maxBytes := int64(o.cfg.MaxBytes) / 2
	over := func(n int, size int64) bool { return n > o.cfg.MaxRecords || size > maxBytes }
	n, size := total(stats.Backlog), totalBytes(stats.BacklogBytes)
	if !over(n, size) {
		return true, nil
	}
	floor := 0 // the highest-priority class that may lose records
	var before []byte
	if o.cfg.WhenFull == RejectNew {
		floor = int(slices.Min(st.class)) + 1
		before = st.keys[0] // never st's own records
		// Would it fit? Count what may go, without deleting.
		freeN, freeSize := 0, int64(0)
		for c := floor; c < numClasses; c++ {
			freeN += stats.Backlog[c]
			freeSize += stats.BacklogBytes[c]
			for j, k := range st.keys {
				if int(st.class[j]) == c {
					freeN--
					freeSize -= recordSize(k, st.vals[j])
				}
			}
		}
		if over(n-freeN, size-freeSize) {
			return false, nil
		}
	}
	for c := numClasses - 1; c >= floor && over(n, size); c-- {
		cur := b[c].Cursor()
		for k, v := cur.First(); k != nil && over(n, size); k, v = cur.First() {
			if before != nil && bytes.Compare(k, before) >= 0 {
				break
			}
			recSize := recordSize(k, v)
			if seq, ok := seqOf(k); ok {
				*dropped = append(*dropped, seq)
			}
			if err := cur.Delete(); err != nil {
				return false, err
			}
			stats.Backlog[c]--
			stats.BacklogBytes[c] -= recSize
			evicted[c]++
			n, size = n-1, size-recSize
		}
	}
	return !over(n, size), nil
}

// seqOf reads a record key; a key that is not 8 bytes is damage.
func seqOf(k []byte) (uint64, bool) {
	if len(k) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}

// expire deletes records appended before cutoff.
func (o *Outbox) expire(b [numClasses]*bolt.Bucket, stats *Stats, expired *[numClasses]uint64, cutoff time.Time, dropped *[]uint64) error {
	for c := range numClasses {
		cur := b[c].Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.First() {
			at, ok := recordTime(v)
			if !ok || !at.Before(cutoff) {
				break
			}
			size := recordSize(k, v)
			if seq, ok := seqOf(k); ok {
				*dropped = append(*dropped, seq)
			}
			if err := cur.Delete(); err != nil {
				return err
			}
			stats.Backlog[c]--
			stats.BacklogBytes[c] -= size
			expired[c]++
		}
	}
	return nil
}

// dropLogEvery bounds how often drops are logged: a long outage at the cap
// evicts at every commit.
const dropLogEvery = 10 * time.Second

// logDrops logs records dropped for one reason, at most once per
// dropLogEvery, with the counts since the last line. o.mu is held.
func (o *Outbox) logDrops(n [numClasses]uint64, msg string) {
	if o.dropLog == nil {
		o.dropLog = map[string]*dropLog{}
	}
	d := o.dropLog[msg]
	if d == nil {
		d = &dropLog{}
		o.dropLog[msg] = d
	}
	for c, k := range n {
		d.pending[c] += k
	}
	if d.pending == [numClasses]uint64{} || o.now().Sub(d.last) < dropLogEvery {
		return
	}
	o.log.Warn().Uint64("alerts", d.pending[emberwatch.ClassAlert]).
		Uint64("summaries", d.pending[emberwatch.ClassSummary]).Msg(msg)
	d.pending, d.last = [numClasses]uint64{}, o.now()
}

type dropLog struct {
	last    time.Time
	pending [numClasses]uint64
}

// maybeCompact rewrites the file when it has grown past MaxBytes: bbolt
// never gives pages back by itself. o.mu is held; appends, takes and acks
// wait for it. A crash midway leaves the original file, and Open removes
// the half-written copy.
func (o *Outbox) maybeCompact() {
	size := o.fileSize()
	if size <= int64(o.cfg.MaxBytes) || o.now().Sub(o.lastCompact) < compactEvery {
		return
	}
	o.lastCompact = o.now()
	if err := o.compact(); err != nil {
		o.log.Error().Err(err).Msg("outbox compaction failed; carrying on with the old file")
		return
	}
	o.stats.Compactions++
	o.log.Info().Int64("bytes_before", size).Int64("bytes_after", o.fileSize()).Msg("outbox compacted")
}

func (o *Outbox) compact() error {
	tmp := o.cfg.Path + ".compact"
	os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second, NoSync: o.cfg.NoSync})
	if err != nil {
		return err
	}
	dst.AllocSize = allocSize
	if err := bolt.Compact(dst, o.db, 16<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return err
	}
	// bbolt sizes a small file to its whole memory map, a power of two;
	// cut the copy to the pages it uses (bbolt grows it again as needed).
	var used int64
	dst.View(func(tx *bolt.Tx) error {
		used = tx.Size()
		return nil
	})
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := truncateSync(tmp, used); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := o.db.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, o.cfg.Path); err != nil {
		// Reopen the original, which is intact.
		db, _, oerr := openChecked(o.cfg.Path, o.cfg.NoSync)
		if oerr != nil {
			return fmt.Errorf("%w; and reopening the outbox failed: %v", err, oerr)
		}
		o.db = db
		return err
	}
	syncDir(filepath.Dir(o.cfg.Path))
	db, _, err := openChecked(o.cfg.Path, o.cfg.NoSync)
	if err != nil {
		return fmt.Errorf("reopen after compaction: %w", err)
	}
	o.db = db
	return nil
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func (o *Outbox) fileSize() int64 {
	fi, err := os.Stat(o.cfg.Path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Take returns up to n of the oldest records that are not already taken,
// alerts before summaries, and marks them taken. It blocks until at least one
// is available or ctx ends (then it returns ctx.Err()).
func (o *Outbox) Take(ctx context.Context, n int) ([]emberwatch.Message, error) {
	n = max(n, 1)
	for {
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			return nil, ErrClosed
		}
		msgs, err := o.takeLocked(n)
		changed := o.changed
		o.mu.Unlock()
		if err != nil || len(msgs) > 0 {
			return msgs, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		}
	}
}

func (o *Outbox) takeLocked(max int) ([]emberwatch.Message, error) {
	var msgs []emberwatch.Message
	var corrupt []badRecord
	err := o.db.View(func(tx *bolt.Tx) error {
		for c := 0; c < numClasses && len(msgs) < max; c++ {
			cur := tx.Bucket(classBuckets[c]).Cursor()
			for k, v := cur.Seek(key(o.cursor[c] + 1)); k != nil && len(msgs) < max; k, v = cur.Next() {
				seq, ok := seqOf(k)
				if !ok {
					corrupt = append(corrupt, badRecord{c, slices.Clone(k), recordSize(k, v)})
					continue
				}
				if _, ok := o.taken[seq]; ok {
					continue
				}
				_, topic, payload, err := decodeRecord(v)
				if err != nil {
					corrupt = append(corrupt, badRecord{c, slices.Clone(k), recordSize(k, v)})
					continue
				}
				msgs = append(msgs, emberwatch.Message{Seq: seq, Class: emberwatch.Class(c), Topic: topic, Payload: slices.Clone(payload)})
				o.taken[seq] = struct{}{}
				o.cursor[c] = seq
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("take from outbox: %w", err)
	}
	if len(corrupt) > 0 {
		o.dropCorruptLocked(corrupt)
	}
	return msgs, nil
}

// badRecord is a record that cannot be read: its class, exact key and size.
type badRecord struct {
	class int
	key   []byte
	size  int64
}

// dropCorruptLocked deletes records that cannot be decoded, so that one bad
// record never blocks the queue behind it.
func (o *Outbox) dropCorruptLocked(recs []badRecord) {
	err := o.db.Update(func(tx *bolt.Tx) error {
		for _, r := range recs {
			if err := tx.Bucket(classBuckets[r.class]).Delete(r.key); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		o.log.Error().Err(err).Msg("outbox: deleting corrupt records failed")
		return
	}
	for _, r := range recs {
		o.stats.Backlog[r.class]--
		o.stats.BacklogBytes[r.class] -= r.size
	}
	o.stats.Corrupt += uint64(len(recs))
	o.log.Error().Int("records", len(recs)).Uint64("corrupt_total", o.stats.Corrupt).Msg("outbox: skipped undecodable records")
}

// Ack deletes the given taken records in one transaction: the broker has
// them. Unknown sequence numbers are ignored.
func (o *Outbox) Ack(seqs []uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrClosed
	}
	if len(seqs) == 0 {
		return nil
	}
	var deleted [numClasses]int
	var freed [numClasses]int64
	err := o.db.Update(func(tx *bolt.Tx) error {
		for _, s := range seqs {
			k := key(s)
			for c, name := range classBuckets {
				b := tx.Bucket(name)
				if v := b.Get(k); v != nil {
					freed[c] += recordSize(k, v)
					if err := b.Delete(k); err != nil {
						return err
					}
					deleted[c]++
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ack outbox records: %w", err)
	}
	for _, s := range seqs {
		delete(o.taken, s)
	}
	for c, n := range deleted {
		o.stats.Backlog[c] -= n
		o.stats.BacklogBytes[c] -= freed[c]
		o.stats.Acked += uint64(n)
	}
	o.signal()
	o.maybeCompact()
	return nil
}

// Release returns taken records to the queue, to be taken again in order.
func (o *Outbox) Release(seqs []uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrClosed
	}
	for _, s := range seqs {
		delete(o.taken, s)
	}
	// Rewind every cursor; taken records are skipped on the next scan.
	o.cursor = [numClasses]uint64{}
	o.signal()
	return nil
}

// Len returns the number of records not yet acknowledged.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return total(o.stats.Backlog)
}

// LastSeq returns the last sequence number handed out (0 for a new file).
// Every number up to it was acknowledged, evicted, expired, rejected under
// reject_new, or is still in the outbox; the numbers of an Append that
// failed otherwise are handed out again.
func (o *Outbox) LastSeq() (uint64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return 0, ErrClosed
	}
	return o.seq, nil
}

// Changed returns a channel that is closed the next time records are
// appended, acknowledged or released.
func (o *Outbox) Changed() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.changed
}

// Stats returns the metrics: a copy of the counters, plus the oldest
// record's age per class and the file size, read now.
func (o *Outbox) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	st := o.stats
	if o.closed {
		return st
	}
	now := o.now()
	o.db.View(func(tx *bolt.Tx) error {
		for c, name := range classBuckets {
			if _, v := tx.Bucket(name).Cursor().First(); v != nil {
				if at, ok := recordTime(v); ok {
					st.OldestAge[c] = max(0, now.Sub(at))
				}
			}
		}
		return nil
	})
	st.FileBytes = o.fileSize()
	return st
}

// Close stops the commit goroutine and closes the file. Records not
// acknowledged stay in it for the next Open. Appends and blocked Takes
// return ErrClosed.
func (o *Outbox) Close() error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	o.signal()
	o.mu.Unlock()
	o.sendMu.Lock() // waits for appends being queued
	o.ended = true
	o.sendMu.Unlock()
	close(o.stop)
	o.wg.Wait()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.log.Info().Ints("backlog", o.stats.Backlog[:]).Msg("outbox closed")
	return o.db.Close()
}

func (o *Outbox) signal() {
	close(o.changed)
	o.changed = make(chan struct{})
}

func total(b [numClasses]int) int {
	n := 0
	for _, x := range b {
		n += x
	}
	return n
}

func totalBytes(b [numClasses]int64) int64 {
	var n int64
	for _, x := range b {
		n += x
	}
	return n
}

func key(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}

func encodeRecord(at time.Time, topic string, payload []byte) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(topic)+len(payload))
	b = append(b, recordV2)
	b = binary.AppendUvarint(b, uint64(at.UnixNano()))
	b = binary.AppendUvarint(b, uint64(len(topic)))
	b = append(b, topic...)
	return append(b, payload...)
}

var errBadRecord = errors.New("buffer: undecodable record")

func checkTopic(t string) error {
	if t == "" || strings.ContainsAny(t, "+#\x00") {
		return fmt.Errorf("%w %q", ErrBadTopic, t)
	}
	return nil
}

func decodeRecord(b []byte) (at time.Time, topic string, payload []byte, err error) {
	if len(b) < 2 || b[0] != recordV1 && b[0] != recordV2 {
		return at, "", nil, errBadRecord
	}
	rest := b[1:]
	if b[0] == recordV2 {
		ns, w := binary.Uvarint(rest)
		if w <= 0 || ns > 1<<63-1 {
			return at, "", nil, errBadRecord
		}
		at, rest = time.Unix(0, int64(ns)), rest[w:]
	}
	n, w := binary.Uvarint(rest)
	if w <= 0 || n > uint64(len(rest)-w) {
		return at, "", nil, errBadRecord
	}
	rest = rest[w:]
	topic = string(rest[:n])
	if checkTopic(topic) != nil {
		return at, "", nil, errBadRecord
	}
	return at, topic, rest[n:], nil
}

// recordTime is a record's append time; false for version 1 records and
// undecodable ones, which never expire by age.
func recordTime(v []byte) (time.Time, bool) {
	at, _, _, err := decodeRecord(v)
	return at, err == nil && !at.IsZero()
}

// openChecked opens the bbolt file at path and runs bbolt's consistency
// check over it. damaged reports that the error means the file's contents
// are bad, as opposed to the file being locked or inaccessible. bbolt
// panics, or faults on memory mapped past the end of a truncated file, on
// some damage; both are caught here and reported as damage.
func openChecked(path string, noSync bool) (db *bolt.DB, damaged bool, err error) {
	if fi, serr := os.Lstat(path); serr == nil && !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("%s is not a regular file", path)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				func() {
					defer func() { _ = recover() }()
					db.Close()
				}()
			}
			db, damaged, err = nil, true, fmt.Errorf("bbolt failed reading the file: %v", r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: noSync})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, false, ErrLocked
	}
	if err != nil {
		return nil, isDamage(err), err
	}
	db.AllocSize = allocSize
	// bbolt's own check runs in a goroutine of its own, where a fault on
	// a damaged page cannot be recovered, and it can loop for a very long
	// time over a damaged overflow count. So first walk the file here, with
	// faults turned into panics, and vet every page header; only a file
	// that passes goes to bbolt's check.
	err = db.View(func(tx *bolt.Tx) error {
		if err := vetPages(tx); err != nil {
			return err
		}
		return walk(tx)
	})
	if err == nil {
		var first error
		err = db.View(func(tx *bolt.Tx) error {
			for e := range tx.Check() { // drain it: Check's goroutine sends them all
				if first == nil {
					first = e
				}
			}
			return nil
		})
		if err == nil {
			err = first
		}
	}
	if err != nil {
		db.Close()
		return nil, true, fmt.Errorf("consistency check: %w", err)
	}
	return db, false, nil
}

// vetPages reads the header of every page in use up to the file's
// high-water mark and fails on one that is not a page bbolt writes or whose
// overflow count runs past the end. Free pages (and the rest of a freed
// overflow run, which holds old data, not headers) are stepped over one by
// one.
func vetPages(tx *bolt.Tx) error {
	pageSize := int64(tx.DB().Info().PageSize)
	hwm := int(tx.Size() / pageSize)
	for id := 0; id < hwm; {
		info, err := tx.Page(id)
		if err != nil {
			return fmt.Errorf("page %d: %w", id, err)
		}
		if info == nil {
			return fmt.Errorf("page %d: unreadable", id)
		}
		switch info.Type {
		case "free":
			id++
			continue
		case "meta", "freelist", "branch", "leaf":
		default:
			return fmt.Errorf("page %d: not a page bbolt writes (%s)", id, info.Type)
		}
		next := id + 1 + info.OverflowCount
		if info.OverflowCount < 0 || next > hwm {
			return fmt.Errorf("page %d: overflow of %d pages runs past the end of the file (%d pages)", id, info.OverflowCount, hwm)
		}
		id = next
	}
	return nil
}

// walk reads every key and value of every bucket, touching their first and
// last bytes, so that a damaged page faults here, where it is caught.
func walk(tx *bolt.Tx) error {
	var sink byte
	touch := func(b []byte) {
		if len(b) > 0 {
			sink ^= b[0] ^ b[len(b)-1]
		}
	}
	err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		touch(name)
		return b.ForEach(func(k, v []byte) error {
			touch(k)
			touch(v)
			return nil
		})
	})
	_ = sink
	return err
}

// isDamage reports whether err from bolt.Open means the file is not a
// usable bbolt database.
func isDamage(err error) bool {
	return errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrVersionMismatch) ||
		errors.Is(err, berrors.ErrChecksum) || strings.Contains(err.Error(), "file size too small") ||
		strings.Contains(err.Error(), "invalid")
}

// moveAside renames a damaged file to a name of its own, never over an
// earlier one.
func moveAside(path string) (string, error) {
	base := fmt.Sprintf("%s.corrupt-%s", path, time.Now().UTC().Format("20060102T150405Z"))
	aside := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(aside); errors.Is(err, os.ErrNotExist) {
			break
		}
		aside = fmt.Sprintf("%s-%d", base, i)
	}
	return aside, os.Rename(path, aside)
}
