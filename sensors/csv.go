package sensors

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/emberwatch/emberwatch"
)

// ErrBadRow is wrapped by every *RowError.
var ErrBadRow = errors.New("sensors: bad CSV row")

// RowError is a CSV row that could not be read. Line counts from 1, the
// header being line 1.
type RowError struct {
	Line int
	Err  error
}

func (e *RowError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap lets errors.Is match ErrBadRow and the underlying cause.
func (e *RowError) Unwrap() []error { return []error{ErrBadRow, e.Err} }

// CSVReader reads a recording: a header row, a column named "timestamp",
// and one numeric column per series, named by its header. Timestamps are RFC
// 3339, "YYYY-MM-DD HH:MM:SS" (taken as UTC) or Unix seconds (with an
// optional fraction). An empty cell means the series has no value in that
// row. This is the format of the NAB corpus.
type CSVReader struct {
	r      *csv.Reader
	tsCol  int
	series []string // by column; "" for the timestamp column
	line   int
}

// NewCSVReader reads the header from r.
func NewCSVReader(r io.Reader) (*CSVReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	// A byte-order mark must go before encoding/csv sees a quoted header.
	if bom, err := br.Peek(3); err == nil && string(bom) == "\ufeff" {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1 // checked per row, with our own message
	head, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("read CSV header: the file is empty")
		}
		return nil, fmt.Errorf("read CSV header: %w", err)
	}
	c := &CSVReader{r: cr, tsCol: -1, line: 1, series: make([]string, len(head))}
	seen := map[string]bool{}
	for i, h := range head {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		switch {
		case strings.EqualFold(h, "timestamp"):
			if c.tsCol >= 0 {
				return nil, errors.New("read CSV header: two timestamp columns")
			}
			c.tsCol = i
		case h == "":
			return nil, fmt.Errorf("read CSV header: column %d has no name", i+1)
		case seen[h]:
			return nil, fmt.Errorf("read CSV header: column %q appears twice", h)
		default:
			seen[h] = true
			c.series[i] = h
		}
	}
	if c.tsCol < 0 {
		return nil, fmt.Errorf("read CSV header: no timestamp column in %q", strings.Join(head, ","))
	}
	if len(seen) == 0 {
		return nil, errors.New("read CSV header: no value columns")
	}
	return c, nil
}

// Series returns the series names in column order.
func (c *CSVReader) Series() []string {
	var s []string
	for _, n := range c.series {
		if n != "" {
			s = append(s, n)
		}
	}
	return s
}

// Line returns the line number of the row read last.
func (c *CSVReader) Line() int { return c.line }

// Next appends the readings of the next row to dst. At the end it returns
// io.EOF. A bad row returns a *RowError and appends nothing; reading may go
// on with the next row. Any other error is the reader's own (an I/O
// error): reading cannot go on.
func (c *CSVReader) Next(dst []emberwatch.Reading) ([]emberwatch.Reading, error) {
	rec, err := c.r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return dst, io.EOF
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) && isRowError(pe.Err) {
			c.line = pe.Line
			return dst, &RowError{Line: pe.Line, Err: pe.Err}
		}
		return dst, fmt.Errorf("read CSV after line %d: %w", c.line, err)
	}
	c.line, _ = c.r.FieldPos(0)
	if len(rec) != len(c.series) {
		return dst, &RowError{Line: c.line, Err: fmt.Errorf("%d fields, want %d", len(rec), len(c.series))}
	}
	ts, err := ParseTimestamp(rec[c.tsCol])
	if err != nil {
		return dst, &RowError{Line: c.line, Err: err}
	}
	n := len(dst)
	for i, name := range c.series {
		if name == "" {
			continue
		}
		cell := strings.TrimSpace(rec[i])
		if cell == "" {
			continue
		}
		v, err := strconv.ParseFloat(cell, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return dst[:n], &RowError{Line: c.line, Err: fmt.Errorf("column %q: %q is not a finite number", name, cell)}
		}
		dst = append(dst, emberwatch.Reading{Series: name, Time: ts, Value: v})
	}
	return dst, nil
}

// isRowError tells a malformed row (encoding/csv's syntax errors) from a
// failure of the reader underneath.
func isRowError(err error) bool {
	return errors.Is(err, csv.ErrBareQuote) || errors.Is(err, csv.ErrQuote) || errors.Is(err, csv.ErrFieldCount)
}

// ParseTimestamp reads RFC 3339, "YYYY-MM-DD HH:MM:SS[.fff]" as UTC, or Unix
// seconds with an optional fraction.
func ParseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("empty timestamp")
	}
	if len(s) >= 19 && s[4] == '-' {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC(), nil
		}
		if t, err := time.ParseInLocation("2006-01-02 15:04:05.999999999", s, time.UTC); err == nil {
			return t, nil
		}
		return time.Time{}, fmt.Errorf("timestamp %q: want RFC 3339, YYYY-MM-DD HH:MM:SS or Unix seconds", s)
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || len(frac) > 9 || strings.Trim(frac, "0123456789") != "" {
		return time.Time{}, fmt.Errorf("timestamp %q: want RFC 3339, YYYY-MM-DD HH:MM:SS or Unix seconds", s)
	}
	if n > math.MaxInt64/int64(time.Second)-1 || n < math.MinInt64/int64(time.Second)+1 {
		return time.Time{}, fmt.Errorf("timestamp %q: out of range", s)
	}
	var ns int64
	if frac != "" {
		f, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		ns = f
		if strings.HasPrefix(sec, "-") {
			ns = -ns
		}
	}
	return time.Unix(n, ns).UTC(), nil
}

// CSVConfig configures the "csv" source, which replays a recording.
type CSVConfig struct {
	// Path is the recording.
	Path string `yaml:"path"`
	// Speed paces the replay by the recording's timestamps: simulated
	// seconds per wall second. 0 (the default) replays as fast as the
	// pipeline takes it.
	Speed float64 `yaml:"speed"`
}

func init() {
	Register("csv", newCSVSource, func(c Config) error {
		if c.CSV.Path == "" {
			return errors.New("csv.path: required")
		}
		if c.CSV.Speed < 0 || math.IsNaN(c.CSV.Speed) || math.IsInf(c.CSV.Speed, 0) {
			return fmt.Errorf("csv.speed: must be >= 0, got %v", c.CSV.Speed)
		}
		return nil
	})
}

// CSVSource replays a recording. Bad rows are skipped, logged (the first
// ten, then every thousandth) and counted; a missing or unreadable file
// fails Run.
type CSVSource struct {
	cfg     CSVConfig
	log     zerolog.Logger
	open    func() (io.ReadCloser, error)
	opened  io.ReadCloser // by Open, for Run
	badRows int
	rows    int
}

func newCSVSource(c Config, log zerolog.Logger) (Source, error) {
	return NewCSVSource(c.CSV, log), nil
}

// NewCSVSource returns a source that replays the file at cfg.Path.
func NewCSVSource(cfg CSVConfig, log zerolog.Logger) *CSVSource {
	return &CSVSource{cfg: cfg, log: log, open: func() (io.ReadCloser, error) { return os.Open(cfg.Path) }}
}

// NewCSVSourceFrom replays r instead of a file; Run closes it.
func NewCSVSourceFrom(r io.ReadCloser, cfg CSVConfig, log zerolog.Logger) *CSVSource {
	return &CSVSource{cfg: cfg, log: log, open: func() (io.ReadCloser, error) { return r, nil }}
}

// Counts returns the rows read and the bad rows skipped. Call it after Run
// has returned.
func (s *CSVSource) Counts() (rows, bad int) { return s.rows, s.badRows }

// Open opens the recording, so that a missing file fails the config that
// names it before Run.
func (s *CSVSource) Open() error {
	if s.opened != nil {
		return nil
	}
	f, err := s.open()
	if err != nil {
		return fmt.Errorf("open recording: %w", err)
	}
	s.opened = f
	return nil
}

// Close closes a recording opened by Open that Run never read.
func (s *CSVSource) Close() error {
	if s.opened == nil {
		return nil
	}
	f := s.opened
	s.opened = nil
	return f.Close()
}

// Run sends every reading of the recording, then returns nil.
func (s *CSVSource) Run(ctx context.Context, out chan<- emberwatch.Reading) error {
	if err := s.Open(); err != nil {
		return err
	}
	f := s.opened
	s.opened = nil
	defer f.Close()
	r, err := NewCSVReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", s.cfg.Path, err)
	}
	var (
		buf   []emberwatch.Reading
		first time.Time
		pace  = &pacer{start: time.Now(), speed: s.cfg.Speed, now: time.Now}
	)
	defer pace.stop()
	for {
		buf, err = r.Next(buf[:0])
		if errors.Is(err, io.EOF) {
			break
		}
		var rowErr *RowError
		if errors.As(err, &rowErr) {
			s.badRows++
			if s.badRows <= 10 || s.badRows%1000 == 0 {
				s.log.Warn().Err(err).Int("bad_rows", s.badRows).Msg("recording: skipped bad row")
			}
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.cfg.Path, err)
		}
		s.rows++
		if len(buf) == 0 {
			continue
		}
		if first.IsZero() {
			first = buf[0].Time
		}
		if !pace.wait(ctx, buf[0].Time.Sub(first)) {
			return nil
		}
		for _, rd := range buf {
			select {
			case <-ctx.Done():
				return nil
			case out <- rd:
			}
		}
	}
	s.log.Info().Int("rows", s.rows).Int("bad_rows", s.badRows).Msg("recording replayed")
	return nil
}

var (
	_ Source = (*CSVSource)(nil)
	_ Opener = (*CSVSource)(nil)
)
