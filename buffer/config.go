package buffer

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Policies for a full outbox.
const (
	// EvictOldest makes room by deleting the oldest record of the lowest
	// class present: summaries go before alerts.
	EvictOldest = "evict_oldest"
	// RejectNew refuses an Append that does not fit once every record of a
	// lower class is gone: alerts still push out summaries, but nothing
	// pushes out a record of its own class.
	RejectNew = "reject_new"
)

// Config configures the outbox.
type Config struct {
	// Path is the bbolt file; its folder is created if missing.
	Path string `yaml:"path"`
	// MaxRecords caps the backlog. Default 1,000,000.
	MaxRecords int `yaml:"max_records"`
	// MaxBytes caps the file. Records are capped at half of it, which
	// leaves room for bbolt's page overhead and free pages, and the file is
	// compacted when it grows past it. Default 256 MiB. YAML takes a number
	// of bytes or a size such as 64MiB or 1GB.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// MaxAge drops records older than this. Default 0: records never
	// expire.
	MaxAge time.Duration `yaml:"max_age"`
	// WhenFull is evict_oldest (default) or reject_new.
	WhenFull string `yaml:"when_full"`
	// CommitDelay is how long a commit waits for more appends to join it.
	// Default 0: a commit takes whatever appends queued up while the last
	// one was being written, which already batches concurrent appends
	// without adding latency.
	CommitDelay time.Duration `yaml:"commit_delay"`
	// CommitBatch caps the records in one commit. Default 4096.
	CommitBatch int `yaml:"commit_batch"`
	// NoSync skips the fsync after each commit. Appends get several times
	// faster, and a power cut can then lose the last seconds of them or
	// damage the file (which Open moves aside). A crash of the agent alone
	// loses nothing either way. Default false.
	NoSync bool `yaml:"no_sync"`
}

// Normalize fills defaults.
func (c *Config) Normalize() {
	if c.MaxRecords == 0 {
		c.MaxRecords = 1_000_000
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 256 << 20
	}
	if c.WhenFull == "" {
		c.WhenFull = EvictOldest
	}
	if c.CommitBatch == 0 {
		c.CommitBatch = 4096
	}
}

// minBytes is the smallest MaxBytes that leaves bbolt room to work.
const minBytes = 1 << 20

// Validate checks the config; errors name the field relative to the outbox.
func (c *Config) Validate() error {
	switch {
	case c.Path == "":
		return fmt.Errorf("path: required")
	case c.MaxRecords < 1:
		return fmt.Errorf("max_records: must be >= 1, got %d", c.MaxRecords)
	case c.MaxBytes < minBytes:
		return fmt.Errorf("max_bytes: must be at least 1MiB, got %d", c.MaxBytes)
	case c.MaxAge < 0:
		return fmt.Errorf("max_age: must be >= 0, got %s", c.MaxAge)
	case c.WhenFull != EvictOldest && c.WhenFull != RejectNew:
		return fmt.Errorf("when_full: must be %s or %s, got %q", EvictOldest, RejectNew, c.WhenFull)
	case c.CommitDelay < 0 || c.CommitDelay > time.Second:
		return fmt.Errorf("commit_delay: must be in [0, 1s], got %s", c.CommitDelay)
	case c.CommitBatch < 1:
		return fmt.Errorf("commit_batch: must be >= 1, got %d", c.CommitBatch)
	}
	return nil
}

// ByteSize is a number of bytes that YAML may spell as 65536, 64KiB, 16MiB,
// 1GiB, or with decimal units (kB, MB, GB).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"kB", 1000}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseByteSize reads a size such as "64MiB".
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("want a size such as 64MiB or 1GB")
	}
	return ByteSize(n * mult), nil
}

// UnmarshalYAML accepts a plain number of bytes or a size with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}
