package buffer

import (
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
)

// Config configures the outbox.
type Config struct {
	// Path is the bbolt file; its folder is created if missing.
	Path string `yaml:"path"`
	// MaxRecords caps the backlog. Past it, the oldest record of the lowest
	// priority class is evicted, and counted. Default 1,000,000.
	MaxRecords int `yaml:"max_records"`
}

// Normalize fills defaults.
func (c *Config) Normalize() {
	if c.MaxRecords == 0 {
		c.MaxRecords = 1_000_000
	}
}

// Validate checks the config; errors name the field relative to the outbox.
func (c *Config) Validate() error {
	if c.Path == "" {
		return fmt.Errorf("path: required")
	}
	if c.MaxRecords < 1 {
		return fmt.Errorf("max_records: must be >= 1, got %d", c.MaxRecords)
	}
	return nil
}

// Pending is a message to append. Encode is called inside the append
// transaction with the sequence number the message gets, so the payload can
// carry it.
type Pending struct {
	Class  emberwatch.Class
	Topic  string
	Encode func(seq uint64) ([]byte, error)
}

// Stats are the outbox's counters.
type Stats struct {
	// MovedAside is where a damaged file found at Open was moved, if any.
	MovedAside string
	Backlog    [numClasses]int
	Appended   uint64
	Acked      uint64
	Evicted    [numClasses]uint64
	Corrupt    uint64
}

const numClasses = 2

var (
	metaBucket   = []byte("meta")
	classBuckets = [numClasses][]byte{[]byte("alerts"), []byte("summaries")}
)

const recordVersion = 1

// Outbox is a durable message queue in a bbolt file. All methods are safe
// for concurrent use.
type Outbox struct {
	db  *bolt.DB
	cfg Config
	log zerolog.Logger

	mu      sync.Mutex
	closed  bool
	changed chan struct{} // closed and replaced whenever records become takeable
	taken   map[uint64]struct{}
	cursor  [numClasses]uint64 // Take scans each class after this seq
	stats   Stats
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
	db, damaged, err := openChecked(cfg.Path)
	movedAside := ""
	if damaged {
		aside, rerr := moveAside(cfg.Path)
		if rerr != nil {
			return nil, fmt.Errorf("open outbox %s: %w (and moving it aside failed: %v)", cfg.Path, err, rerr)
		}
		log.Error().Err(err).Str("moved_to", aside).Msg("outbox file damaged; moved it aside and starting fresh")
		movedAside = aside
		db, _, err = openChecked(cfg.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", cfg.Path, err)
	}
	o := &Outbox{db: db, cfg: cfg, log: log, changed: make(chan struct{}), taken: map[uint64]struct{}{}}
	o.stats.MovedAside = movedAside
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(metaBucket); err != nil {
			return err
		}
		for c, name := range classBuckets {
			b, err := tx.CreateBucketIfNotExists(name)
			if err != nil {
				return err
			}
			o.stats.Backlog[c] = b.Stats().KeyN
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open outbox %s: %w", cfg.Path, err)
	}
	log.Info().Str("path", cfg.Path).Ints("backlog", o.stats.Backlog[:]).Msg("outbox open")
	return o, nil
}

// openChecked opens the bbolt file at path and runs bbolt's consistency
// check over it. damaged reports that the error means the file's contents
// are bad, as opposed to the file being locked or inaccessible. bbolt
// panics, or faults on memory mapped past the end of a truncated file, on
// some damage; both are caught here and reported as damage.
func openChecked(path string) (db *bolt.DB, damaged bool, err error) {
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
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, false, ErrLocked
	}
	if err != nil {
		return nil, isDamage(err), err
	}
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
	if err != nil {
		db.Close()
		return nil, true, fmt.Errorf("consistency check: %w", err)
	}
	return db, false, nil
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

// Append stores the messages in one transaction (one fsync) and returns
// their sequence numbers. When it returns nil the messages are on disk.
func (o *Outbox) Append(msgs ...Pending) ([]uint64, error) {
	for _, m := range msgs {
		if err := checkTopic(m.Topic); err != nil {
			return nil, fmt.Errorf("append to outbox: %w", err)
		}
		if int(m.Class) >= numClasses {
			return nil, fmt.Errorf("append to outbox: unknown class %d", m.Class)
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, ErrClosed
	}
	seqs := make([]uint64, 0, len(msgs))
	var evicted [numClasses]uint64
	backlog := o.stats.Backlog
	err := o.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		for _, m := range msgs {
			seq, err := meta.NextSequence()
			if err != nil {
				return err
			}
			payload, err := m.Encode(seq)
			if err != nil {
				return fmt.Errorf("encode message %d: %w", seq, err)
			}
			if err := tx.Bucket(classBuckets[m.Class]).Put(key(seq), encodeRecord(m.Topic, payload)); err != nil {
				return err
			}
			backlog[m.Class]++
			seqs = append(seqs, seq)
		}
		// Enforce the cap: the lowest class loses its oldest records first.
		for c := numClasses - 1; c >= 0 && total(backlog) > o.cfg.MaxRecords; c-- {
			cur := tx.Bucket(classBuckets[c]).Cursor()
			for k, _ := cur.First(); k != nil && total(backlog) > o.cfg.MaxRecords; k, _ = cur.First() {
				if err := cur.Delete(); err != nil {
					return err
				}
				delete(o.taken, binary.BigEndian.Uint64(k))
				backlog[c]--
				evicted[c]++
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("append to outbox: %w", err)
	}
	o.stats.Backlog = backlog
	o.stats.Appended += uint64(len(seqs))
	for c, n := range evicted {
		if n > 0 {
			o.stats.Evicted[c] += n
			o.log.Warn().Str("class", emberwatch.Class(c).String()).Uint64("evicted", n).
				Uint64("evicted_total", o.stats.Evicted[c]).Msg("outbox full; evicted oldest records")
		}
	}
	o.signal()
	return seqs, nil
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
	var corrupt [][2]uint64 // class, seq
	err := o.db.View(func(tx *bolt.Tx) error {
		for c := 0; c < numClasses && len(msgs) < max; c++ {
			cur := tx.Bucket(classBuckets[c]).Cursor()
			for k, v := cur.Seek(key(o.cursor[c] + 1)); k != nil && len(msgs) < max; k, v = cur.Next() {
				seq := binary.BigEndian.Uint64(k)
				if _, ok := o.taken[seq]; ok {
					continue
				}
				topic, payload, err := decodeRecord(v)
				if err != nil {
					corrupt = append(corrupt, [2]uint64{uint64(c), seq})
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

// dropCorruptLocked deletes records that cannot be decoded, so that one bad
// record never blocks the queue behind it.
func (o *Outbox) dropCorruptLocked(recs [][2]uint64) {
	err := o.db.Update(func(tx *bolt.Tx) error {
		for _, r := range recs {
			if err := tx.Bucket(classBuckets[r[0]]).Delete(key(r[1])); err != nil {
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
		o.stats.Backlog[r[0]]--
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
	err := o.db.Update(func(tx *bolt.Tx) error {
		for _, s := range seqs {
			for c, name := range classBuckets {
				b := tx.Bucket(name)
				if b.Get(key(s)) != nil {
					if err := b.Delete(key(s)); err != nil {
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
		o.stats.Acked += uint64(n)
	}
	o.signal()
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

// LastSeq returns the sequence number of the last record ever appended (0
// for a new file). Every number up to it was either acknowledged, evicted
// (and counted) or is still in the outbox.
func (o *Outbox) LastSeq() (uint64, error) {
	var seq uint64
	err := o.db.View(func(tx *bolt.Tx) error {
		seq = tx.Bucket(metaBucket).Sequence()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read outbox sequence: %w", err)
	}
	return seq, nil
}

// Changed returns a channel that is closed the next time records are
// appended, acknowledged or released.
func (o *Outbox) Changed() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.changed
}

// Stats returns a copy of the counters.
func (o *Outbox) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stats
}

// Close closes the file. Records not acknowledged stay in it for the next
// Open. Blocked Take calls return ErrClosed.
func (o *Outbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	o.signal()
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

func key(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}

// encodeRecord lays out a record as: version byte, uvarint topic length,
// topic, payload.
func encodeRecord(topic string, payload []byte) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(topic)+len(payload))
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, uint64(len(topic)))
	b = append(b, topic...)
	return append(b, payload...)
}

var errBadRecord = errors.New("buffer: undecodable record")

// ErrBadTopic is returned by Append for a topic no broker would accept for a
// publish: empty, or with a wildcard or NUL in it.
var ErrBadTopic = errors.New("buffer: invalid topic")

func checkTopic(t string) error {
	if t == "" || strings.ContainsAny(t, "+#\x00") {
		return fmt.Errorf("%w %q", ErrBadTopic, t)
	}
	return nil
}

func decodeRecord(b []byte) (topic string, payload []byte, err error) {
	if len(b) < 2 || b[0] != recordVersion {
		return "", nil, errBadRecord
	}
	n, w := binary.Uvarint(b[1:])
	if w <= 0 || n > uint64(len(b)-1-w) {
		return "", nil, errBadRecord
	}
	rest := b[1+w:]
	topic = string(rest[:n])
	if checkTopic(topic) != nil {
		return "", nil, errBadRecord
	}
	return topic, rest[n:], nil
}
