package sensors_test

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/sensors"
)

// csvT0 is 2026-07-15 06:00:00 UTC, Unix 1784095200.
var csvT0 = time.Date(2026, 7, 15, 6, 0, 0, 0, time.UTC)

func csvLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t))
}

func TestCSVReaderHeader(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		series []string
		err    string // part of the error NewCSVReader returns
	}{
		{name: "plain", in: "timestamp,value\n", series: []string{"value"}},
		{name: "UTF-8 byte order mark", in: "\ufefftimestamp,value\n", series: []string{"value"}},
		{name: "byte order mark before a value column", in: "\ufefftemp,timestamp\n", series: []string{"temp"}},
		{name: "spaces around names", in: " timestamp ,  temp , hum\t\n", series: []string{"temp", "hum"}},
		{name: "timestamp column anywhere, in any case", in: "temp,TimeStamp,hum\n", series: []string{"temp", "hum"}},
		{name: "TIMESTAMP last", in: "a,b,TIMESTAMP\n", series: []string{"a", "b"}},
		{name: "CRLF", in: "timestamp,value\r\n", series: []string{"value"}},
		{name: "quoted names", in: "\"timestamp\",\"a,b\"\n", series: []string{"a,b"}},
		{name: "header only", in: "timestamp,value", series: []string{"value"}},
		{
			// BUG: NewCSVReader strips the byte order mark from the first
			// cell after encoding/csv has parsed it, but csv sees
			// U+FEFF followed by a quote as a bare quote in an unquoted
			// field. Spreadsheets that write UTF-8 with a BOM and quote
			// every field produce exactly this.
			name: "byte order mark before a quoted header", in: "\ufeff\"timestamp\",\"value\"\n", series: []string{"value"},
		},
		{name: "no timestamp column", in: "time,value\n", err: "no timestamp column"},
		{name: "a value column twice", in: "timestamp,a,b,a\n", err: `column "a" appears twice`},
		{name: "a value column twice after trimming", in: "timestamp,a, a\n", err: `column "a" appears twice`},
		{name: "two timestamp columns", in: "timestamp,a,Timestamp\n", err: "two timestamp columns"},
		{name: "an empty column name", in: "timestamp,,a\n", err: "column 2 has no name"},
		{name: "a blank column name", in: "timestamp,a,  \n", err: "column 3 has no name"},
		{name: "a trailing comma", in: "timestamp,a,\n", err: "column 3 has no name"},
		{name: "no value column", in: "timestamp\n", err: "no value columns"},
		{name: "empty file", in: "", err: "empty"},
		{name: "only blank lines", in: "\n\n\r\n", err: "empty"},
		{name: "a bare quote in the header", in: "timestamp,va\"lue\n", err: "read CSV header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := sensors.NewCSVReader(strings.NewReader(tt.in))
			if tt.err != "" {
				if err == nil {
					t.Fatalf("NewCSVReader(%q) = series %q, want an error containing %q", tt.in, r.Series(), tt.err)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("NewCSVReader(%q) error = %q, want it to contain %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewCSVReader(%q): %v", tt.in, err)
			}
			if got := r.Series(); !slices.Equal(got, tt.series) {
				t.Errorf("Series() = %q, want %q", got, tt.series)
			}
			if got, err := r.Next(nil); err != io.EOF || len(got) != 0 {
				t.Errorf("Next on a header-only file = %v, %v; want nothing and io.EOF", got, err)
			}
		})
	}
}

// TestCSVReaderTimestampColumnAnywhere reads rows whose timestamp is not
// the first column.
func TestCSVReaderTimestampColumnAnywhere(t *testing.T) {
	r, err := sensors.NewCSVReader(strings.NewReader("temp,Timestamp,hum\n20.5,1784095200,40\n21,1784095210,\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []emberwatch.Reading
	for {
		got, err = r.Next(got)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []emberwatch.Reading{
		{Series: "temp", Time: csvT0, Value: 20.5},
		{Series: "hum", Time: csvT0, Value: 40},
		{Series: "temp", Time: csvT0.Add(10 * time.Second), Value: 21},
	}
	if !slices.EqualFunc(got, want, sameReading) {
		t.Errorf("read %v, want %v", got, want)
	}
}

func sameReading(a, b emberwatch.Reading) bool {
	return a.Series == b.Series && a.Time.Equal(b.Time) && a.Value == b.Value
}

func TestCSVReaderTimestamps(t *testing.T) {
	tests := []struct {
		name string
		cell string
		want time.Time // zero: the row is bad
	}{
		{"RFC 3339 in UTC", "2026-07-15T06:00:00Z", csvT0},
		{"RFC 3339 with an offset", "2026-07-15T08:00:00+02:00", csvT0},
		{"RFC 3339 with a negative offset and nanoseconds", "2026-07-15T02:29:59.123456789-03:30", csvT0.Add(-time.Second + 123456789)},
		{"date and time", "2026-07-15 06:00:00", csvT0},
		{"date and time with a fraction", "2026-07-15 06:00:00.25", csvT0.Add(250 * time.Millisecond)},
		{"date and time with nanoseconds", "2026-07-15 06:00:00.000000001", csvT0.Add(1)},
		{"Unix seconds", "1784095200", csvT0},
		{"Unix seconds with a fraction", "1784095200.5", csvT0.Add(500 * time.Millisecond)},
		{"Unix seconds with nanoseconds", "1784095200.000000007", csvT0.Add(7)},
		{"Unix seconds padded with spaces", "  1784095200 ", csvT0},
		{"the epoch", "0", time.Unix(0, 0)},
		{"negative Unix seconds", "-86400", time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)},
		{"negative Unix seconds with a fraction", "-1.5", time.Unix(0, -1500*int64(time.Millisecond))},
		{"negative Unix seconds below one", "-0.25", time.Unix(0, -250*int64(time.Millisecond))},
		{"RFC 3339 without a zone", "2026-07-15T06:00:00", time.Time{}},
		{"no seconds", "2026-07-15 06:00", time.Time{}},
		{"a month 13", "2026-13-01 00:00:00", time.Time{}},
		{"words", "yesterday", time.Time{}},
		{"two dots", "1.2.3", time.Time{}},
		{"exponent", "1e9", time.Time{}},
		{"ten fraction digits", "1784095200.1234567891", time.Time{}},
		{"a sign in the fraction", "1784095200.-5", time.Time{}},
		{"empty", "", time.Time{}},
		{"too large", "9223372036854775807", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := fmt.Sprintf("timestamp,v\n%q,1\n", tt.cell)
			r, err := sensors.NewCSVReader(strings.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Next(nil)
			if tt.want.IsZero() {
				var re *sensors.RowError
				if !errors.As(err, &re) || re.Line != 2 || !errors.Is(err, sensors.ErrBadRow) || len(got) != 0 {
					t.Fatalf("Next with timestamp %q = %v, %v; want no reading and a *RowError for line 2", tt.cell, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Next with timestamp %q: %v", tt.cell, err)
			}
			if len(got) != 1 || !got[0].Time.Equal(tt.want) {
				t.Fatalf("Next with timestamp %q = %v, want one reading at %s", tt.cell, got, tt.want)
			}
			if got[0].Time.Location() != time.UTC {
				t.Errorf("timestamp %q read as %s, in %s; want UTC", tt.cell, got[0].Time, got[0].Time.Location())
			}
		})
	}
}

// csvResult is what one call to Next gave: readings, or the line of a bad
// row, or the end.
type csvResult struct {
	readings []emberwatch.Reading
	badLine  int
	eof      bool
}

// readCSV calls Next until io.EOF (or 1000 calls) and returns each call's
// result, failing on any error that is not a *RowError wrapping
// ErrBadRow. Each call appends to a dst holding one sentinel reading, to
// check that a bad row appends nothing.
func readCSV(t *testing.T, r *sensors.CSVReader) []csvResult {
	t.Helper()
	sentinel := emberwatch.Reading{Series: "sentinel"}
	var out []csvResult
	for range 1000 {
		got, err := r.Next([]emberwatch.Reading{sentinel})
		if len(got) == 0 || got[0] != sentinel {
			t.Fatalf("Next dropped what dst held: %v", got)
		}
		got = got[1:]
		switch {
		case err == nil:
			out = append(out, csvResult{readings: got})
		case err == io.EOF:
			if len(got) != 0 {
				t.Fatalf("Next returned readings with io.EOF: %v", got)
			}
			return append(out, csvResult{eof: true})
		default:
			var re *sensors.RowError
			if !errors.As(err, &re) || !errors.Is(err, sensors.ErrBadRow) {
				t.Fatalf("Next error %v (%T) is not a *RowError wrapping ErrBadRow", err, err)
			}
			if len(got) != 0 {
				t.Fatalf("Next appended %v for a bad row (%v)", got, err)
			}
			if r.Line() != re.Line {
				t.Errorf("after %v, Line() = %d", err, r.Line())
			}
			out = append(out, csvResult{badLine: re.Line})
		}
	}
	t.Fatal("Next never returned io.EOF")
	return nil
}

func TestCSVReaderRows(t *testing.T) {
	at := func(s int) time.Time { return csvT0.Add(time.Duration(s) * time.Second) }
	temp := func(s int, v float64) emberwatch.Reading {
		return emberwatch.Reading{Series: "temp", Time: at(s), Value: v}
	}
	hum := func(s int, v float64) emberwatch.Reading {
		return emberwatch.Reading{Series: "hum", Time: at(s), Value: v}
	}
	in := strings.Join([]string{
		"timestamp,temp,hum",                // 1
		"2026-07-15 06:00:00,20.5,40",       // 2
		"2026-07-15 06:00:01,,41",           // 3: no temp
		"2026-07-15 06:00:02,21,",           // 4: no hum
		"2026-07-15 06:00:03,,  ",           // 5: nothing
		"2026-07-15 06:00:04,abc,42",        // 6: not a number
		"2026-07-15 06:00:05,NaN,42",        // 7
		"2026-07-15 06:00:06,1,+Inf",        // 8
		"2026-07-15 06:00:07,-infinity,1",   // 9
		"2026-07-15 06:00:08,1e400,1",       // 10: overflows to infinity
		"2026-07-15 06:00:09,1",             // 11: too few fields
		"2026-07-15 06:00:10,1,2,3",         // 12: too many
		"06:00:11,1,2",                      // 13: bad timestamp
		"2026-07-15 06:00:12,1\"5,2",        // 14: a bare quote
		"2026-07-15 06:00:13, 22 ,\t43",     // 15: spaces around values
		"",                                  // 16: blank, skipped
		"2026-07-15 06:00:14,\"23\n.5\",44", // 17-18: a quoted cell over two lines
		"2026-07-15 06:00:15,\"-1.5e-3\",4", // 19: quoted
		"2026-07-15 06:00:16,1,2",           // 20
	}, "\n") + "\n"
	r, err := sensors.NewCSVReader(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []csvResult{
		{readings: []emberwatch.Reading{temp(0, 20.5), hum(0, 40)}},
		{readings: []emberwatch.Reading{hum(1, 41)}},
		{readings: []emberwatch.Reading{temp(2, 21)}},
		{readings: nil},
		{badLine: 6}, {badLine: 7}, {badLine: 8}, {badLine: 9}, {badLine: 10},
		{badLine: 11}, {badLine: 12}, {badLine: 13}, {badLine: 14},
		{readings: []emberwatch.Reading{temp(13, 22), hum(13, 43)}},
		{badLine: 17},
		{readings: []emberwatch.Reading{temp(15, -1.5e-3), hum(15, 4)}},
		{readings: []emberwatch.Reading{temp(16, 1), hum(16, 2)}},
		{eof: true},
	}
	got := readCSV(t, r)
	for i := range max(len(got), len(want)) {
		var g, w csvResult
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g.badLine != w.badLine || g.eof != w.eof || !slices.EqualFunc(g.readings, w.readings, sameReading) {
			t.Errorf("Next call %d = %+v, want %+v", i, g, w)
		}
	}
	// Another call after the end stays at the end.
	if got, err := r.Next(nil); err != io.EOF || len(got) != 0 {
		t.Errorf("Next after io.EOF = %v, %v", got, err)
	}
}

func TestCSVReaderRowErrorUnwraps(t *testing.T) {
	r, err := sensors.NewCSVReader(strings.NewReader("timestamp,v\n1,\"a\"b\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Next(nil)
	var re *sensors.RowError
	if !errors.As(err, &re) || re.Line != 2 {
		t.Fatalf("Next error = %v, want a *RowError for line 2", err)
	}
	if !errors.Is(err, sensors.ErrBadRow) || !errors.Is(err, csv.ErrQuote) {
		t.Errorf("error %v should match both ErrBadRow and csv.ErrQuote", err)
	}
	if !strings.HasPrefix(err.Error(), "line 2: ") {
		t.Errorf("Error() = %q, want it to start with the line", err)
	}
}

func TestCSVReaderLastLine(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"trailing newline", "timestamp,v\n1,1\n2,2\n"},
		{"no trailing newline", "timestamp,v\n1,1\n2,2"},
		{"CRLF, no trailing newline", "timestamp,v\r\n1,1\r\n2,2"},
		{"CRLF with a trailing one", "timestamp,v\r\n1,1\r\n2,2\r\n"},
		{"a carriage return at the end", "timestamp,v\n1,1\n2,2\r"},
		{"trailing blank lines", "timestamp,v\n1,1\n2,2\n\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := sensors.NewCSVReader(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			got := readCSV(t, r)
			want := []csvResult{
				{readings: []emberwatch.Reading{{Series: "v", Time: time.Unix(1, 0), Value: 1}}},
				{readings: []emberwatch.Reading{{Series: "v", Time: time.Unix(2, 0), Value: 2}}},
				{eof: true},
			}
			if !slices.EqualFunc(got, want, func(a, b csvResult) bool {
				return a.badLine == b.badLine && a.eof == b.eof && slices.EqualFunc(a.readings, b.readings, sameReading)
			}) {
				t.Errorf("read %+v, want %+v", got, want)
			}
		})
	}
}

// nabDir is the NAB corpus, shared with the other checkouts.
const nabDir = "../../shared/data/nab"

func TestCSVReaderNAB(t *testing.T) {
	if _, err := os.Stat(nabDir); err != nil {
		t.Skipf("NAB corpus not available: %v", err)
	}
	tests := []struct {
		file        string
		rows        int
		first, last emberwatch.Reading
	}{
		{
			file:  "realKnownCause/machine_temperature_system_failure.csv",
			rows:  22695,
			first: emberwatch.Reading{Series: "value", Time: time.Date(2013, 12, 2, 21, 15, 0, 0, time.UTC), Value: 73.96732207},
			last:  emberwatch.Reading{Series: "value", Time: time.Date(2014, 2, 19, 15, 25, 0, 0, time.UTC), Value: 96.90386085},
		},
		{
			// One of the seven NAB files without a trailing newline.
			file:  "realTraffic/speed_7578.csv",
			rows:  1127,
			first: emberwatch.Reading{Series: "value", Time: time.Date(2015, 9, 8, 11, 39, 0, 0, time.UTC), Value: 73},
			last:  emberwatch.Reading{Series: "value", Time: time.Date(2015, 9, 17, 14, 5, 0, 0, time.UTC), Value: 27},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join(nabDir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r, err := sensors.NewCSVReader(f)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Series(); !slices.Equal(got, []string{"value"}) {
				t.Fatalf("Series() = %q", got)
			}
			var all []emberwatch.Reading
			rows := 0
			for {
				n := len(all)
				all, err = r.Next(all)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("row %d: %v", rows+1, err)
				}
				if len(all) != n+1 || math.IsNaN(all[n].Value) || math.IsInf(all[n].Value, 0) {
					t.Fatalf("row at line %d gave %v", r.Line(), all[n:])
				}
				rows++
			}
			if rows != tt.rows || len(all) != tt.rows {
				t.Fatalf("read %d rows and %d readings, want %d", rows, len(all), tt.rows)
			}
			if r.Line() != tt.rows+1 {
				t.Errorf("Line() = %d at the end, want %d", r.Line(), tt.rows+1)
			}
			if !sameReading(all[0], tt.first) || !sameReading(all[len(all)-1], tt.last) {
				t.Errorf("first %v and last %v, want %v and %v", all[0], all[len(all)-1], tt.first, tt.last)
			}
		})
	}
}

const csvSmall = "timestamp,temp,hum\n" +
	"2026-07-15 06:00:00,20,40\n" +
	"2026-07-15 06:00:10,bad,41\n" +
	"2026-07-15 06:00:20,21,\n" +
	"2026-07-15 06:00:30,,\n" +
	"2026-07-15 06:00:40,22\n" +
	"2026-07-15 06:00:50,23,43\n"

var csvSmallReadings = []emberwatch.Reading{
	{Series: "temp", Time: csvT0, Value: 20},
	{Series: "hum", Time: csvT0, Value: 40},
	{Series: "temp", Time: csvT0.Add(20 * time.Second), Value: 21},
	{Series: "temp", Time: csvT0.Add(50 * time.Second), Value: 23},
	{Series: "hum", Time: csvT0.Add(50 * time.Second), Value: 43},
}

func TestCSVSourceRun(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	path := filepath.Join(t.TempDir(), "rec.csv")
	if err := os.WriteFile(path, []byte(csvSmall), 0o600); err != nil {
		t.Fatal(err)
	}
	src := sensors.NewCSVSource(sensors.CSVConfig{Path: path}, csvLogger(t))
	out := make(chan emberwatch.Reading, 100)
	if err := src.Run(context.Background(), out); err != nil {
		t.Fatalf("Run: %v", err)
	}
	close(out)
	var got []emberwatch.Reading
	for r := range out {
		got = append(got, r)
	}
	if !slices.EqualFunc(got, csvSmallReadings, sameReading) {
		t.Errorf("Run sent %v, want %v", got, csvSmallReadings)
	}
	// Rows read counts the good rows, with or without values.
	if rows, bad := src.Counts(); rows != 4 || bad != 2 {
		t.Errorf("Counts() = %d rows, %d bad; want 4 and 2", rows, bad)
	}
}

func TestCSVSourceRunErrors(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	out := make(chan emberwatch.Reading, 10)

	missing := filepath.Join(t.TempDir(), "missing.csv")
	err := sensors.NewCSVSource(sensors.CSVConfig{Path: missing}, csvLogger(t)).Run(context.Background(), out)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Run on a missing file: %v, want an error matching fs.ErrNotExist", err)
	}

	noTS := filepath.Join(t.TempDir(), "nots.csv")
	if err := os.WriteFile(noTS, []byte("time,v\n1,2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = sensors.NewCSVSource(sensors.CSVConfig{Path: noTS}, csvLogger(t)).Run(context.Background(), out)
	if err == nil || !strings.Contains(err.Error(), noTS) || !strings.Contains(err.Error(), "no timestamp column") {
		t.Errorf("Run on a file without a timestamp column: %v, want an error naming the file and the problem", err)
	}
	if len(out) != 0 {
		t.Errorf("failed runs sent %d readings", len(out))
	}
}

// failingReader gives a header, then fails n times, then ends: a storage
// error in the middle of a recording.
type failingReader struct {
	header string
	n      int
	calls  int
}

var errDisk = errors.New("input/output error")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.header != "" {
		n := copy(p, f.header)
		f.header = f.header[n:]
		return n, nil
	}
	f.calls++
	if f.calls <= f.n {
		return 0, errDisk
	}
	return 0, io.EOF
}

func (f *failingReader) Close() error { return nil }

// BUG: CSVReader.Next wraps every read error, not only parse errors, in a
// *RowError, and CSVSource.Run skips every *RowError as a bad row. An I/O
// error mid-file is then counted as a bad row and reading goes on; an
// error that persists (a failing SD card) makes Run spin forever, never
// checking its context, instead of failing as "a missing or unreadable
// file fails Run" promises. Here the error clears after 1000 reads, so
// Run returns nil with 1000 "bad rows".
func TestCSVSourceRunReadError(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rd := &failingReader{header: "timestamp,v\n1,1\n", n: 1000}
	src := sensors.NewCSVSourceFrom(rd, sensors.CSVConfig{Path: "flaky.csv"}, zerolog.Nop())
	out := make(chan emberwatch.Reading, 10)
	err := src.Run(context.Background(), out)
	rows, bad := src.Counts()
	if !errors.Is(err, errDisk) {
		t.Errorf("Run over a read error returned %v after %d rows and %d bad rows; want the read error", err, rows, bad)
	}
}

func TestCSVSourceRunStopsOnCancel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	// A long recording and a consumer that stops after a few readings.
	var b strings.Builder
	b.WriteString("timestamp,v\n")
	for i := range 100_000 {
		fmt.Fprintf(&b, "%d,%d\n", 1784095200+i, i)
	}
	src := sensors.NewCSVSourceFrom(io.NopCloser(strings.NewReader(b.String())), sensors.CSVConfig{Path: "long.csv"}, csvLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan emberwatch.Reading)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	for i := range 3 {
		if r := <-out; r.Value != float64(i) {
			t.Fatalf("reading %d = %v", i, r)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestCSVSourceRunPaced(t *testing.T) {
	t.Run("speed 2 replays 10s apart readings 5s apart", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			in := "timestamp,v\n1784095200,1\n1784095210,2\n1784095230,3\n"
			src := sensors.NewCSVSourceFrom(io.NopCloser(strings.NewReader(in)), sensors.CSVConfig{Speed: 2}, csvLogger(t))
			out := make(chan emberwatch.Reading)
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- src.Run(context.Background(), out) }()
			for i, want := range []time.Duration{0, 5 * time.Second, 15 * time.Second} {
				r := <-out
				if got := time.Since(start); r.Value != float64(i+1) || got != want {
					t.Errorf("reading %v arrived after %s, want reading %d after %s", r.Value, got, i+1, want)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("cancel while waiting for the next reading", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		synctest.Test(t, func(t *testing.T) {
			in := "timestamp,v\n1784095200,1\n1784098800,2\n"
			src := sensors.NewCSVSourceFrom(io.NopCloser(strings.NewReader(in)), sensors.CSVConfig{Speed: 1}, csvLogger(t))
			ctx, cancel := context.WithCancel(context.Background())
			out := make(chan emberwatch.Reading, 10)
			done := make(chan error, 1)
			go func() { done <- src.Run(ctx, out) }()
			synctest.Wait() // Run sent the first reading and waits an hour
			if len(out) != 1 {
				t.Fatalf("%d readings sent before the wait, want 1", len(out))
			}
			time.Sleep(time.Minute)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if len(out) != 1 {
				t.Errorf("%d readings sent, want 1", len(out))
			}
		})
	})
}

// FuzzCSVReader: whatever the input, NewCSVReader and Next do not panic,
// Next returns readings with finite values of series named in the header,
// and its errors are *RowError (wrapping ErrBadRow) or io.EOF.
func FuzzCSVReader(f *testing.F) {
	for _, seed := range []string{
		csvSmall,
		"timestamp,value\n2013-12-02 21:15:00,73.96732207\n2013-12-02 21:20:00,74.93588199999998",
		"\ufefftemp,TimeStamp\r\n1,1784095200.5\r\n,-1.5\r\n",
		"timestamp,a,b\n2026-07-15T08:00:00+02:00,1e400,NaN\n\"1\n\",\"2\",3\nx,\"y\n",
		"timestamp,a\n1,1\"5\n2,2,2\n3\n,\n",
		"timestamp,timestamp\n",
		"",
		"a,b\n1,2\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := sensors.NewCSVReader(strings.NewReader(string(data)))
		if err != nil {
			if r != nil {
				t.Fatalf("NewCSVReader returned a reader and the error %v", err)
			}
			return
		}
		series := r.Series()
		if len(series) == 0 {
			t.Fatal("a reader with no series")
		}
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatalf("Next did not reach io.EOF after %d calls on %d bytes", i, len(data))
			}
			got, err := r.Next(nil)
			if err == io.EOF {
				if len(got) != 0 {
					t.Fatalf("io.EOF with readings %v", got)
				}
				return
			}
			if err != nil {
				var re *sensors.RowError
				if !errors.As(err, &re) || !errors.Is(err, sensors.ErrBadRow) {
					t.Fatalf("Next error %v (%T) is neither io.EOF nor a *RowError", err, err)
				}
				if len(got) != 0 {
					t.Fatalf("a bad row (%v) gave readings %v", err, got)
				}
				if re.Line < 2 {
					t.Fatalf("bad row at line %d, before the first row", re.Line)
				}
				continue
			}
			for _, rd := range got {
				if math.IsNaN(rd.Value) || math.IsInf(rd.Value, 0) {
					t.Fatalf("reading %v has a value that is not finite", rd)
				}
				if !slices.Contains(series, rd.Series) {
					t.Fatalf("reading %v of a series not in the header %q", rd, series)
				}
				if rd.Time.Location() != time.UTC {
					t.Fatalf("reading %v not in UTC", rd)
				}
			}
		}
	})
}
