package nab

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// sameRows reports whether two readings of a data file are identical:
// each Time equal field for field (==, not just the same instant), each
// value the same bits.
func sameRows(ts1 []time.Time, vs1 []float64, ts2 []time.Time, vs2 []float64) error {
	if len(ts1) != len(ts2) || len(vs1) != len(vs2) {
		return fmt.Errorf("%d and %d rows", len(ts1), len(ts2))
	}
	for i := range ts1 {
		if ts1[i] != ts2[i] {
			return fmt.Errorf("row %d: time %#v, want %#v", i, ts1[i], ts2[i])
		}
		if math.Float64bits(vs1[i]) != math.Float64bits(vs2[i]) {
			return fmt.Errorf("row %d: value %v, want %v", i, vs1[i], vs2[i])
		}
	}
	return nil
}

// TestScanDataMatchesEncodingCSV reads every data file of the corpus both
// ways: the fast scanner must take each one, and give the rows that
// encoding/csv gives.
func TestScanDataMatchesEncodingCSV(t *testing.T) {
	c := sharedCorpus(t)
	var buf []byte
	for _, f := range c.Files {
		path := filepath.Join(corpusDir, filepath.FromSlash(f.Key))
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		ts, vs, ok := scanData(b)
		if !ok {
			t.Errorf("%s: scanData does not take it", f.Key)
			continue
		}
		wantTS, wantVS, err := readDataRecords(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameRows(ts, vs, wantTS, wantVS); err != nil {
			t.Errorf("%s: %v", f.Key, err)
		}
		gotTS, gotVS, err := readDataCSV(path, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameRows(gotTS, gotVS, wantTS, wantVS); err != nil {
			t.Errorf("%s: readDataCSV: %v", f.Key, err)
		}
	}
}

// TestReadDataCSV covers files the fast scanner does not take: those
// encoding/csv accepts read the same as through it, and malformed ones
// get its errors, which name the file and the line.
func TestReadDataCSV(t *testing.T) {
	const header = "timestamp,value\n"
	for _, c := range []struct {
		name, body string
		scans      bool   // scanData takes it
		err        error  // want errors.Is(err, this); nil: no error
		msg        string // and the message to contain this, after the path
	}{
		{name: "LF", body: header + "2014-04-01 00:00:00,1\n2014-04-01 00:05:00,2.5\n", scans: true},
		{name: "CRLF, no final newline", body: "timestamp,value\r\n2014-04-01 00:00:00,-1e-05\r\n2014-04-01 00:05:00,0", scans: true},
		{name: "header only", body: header, scans: true},
		{name: "header only, no newline", body: "timestamp,value", scans: true},
		{name: "next day", body: header + "2014-04-01 23:55:00,1\n2014-04-02 00:00:00,2\n", scans: true},
		{name: "quoted fields", body: header + "\"2014-04-01 00:00:00\",\"1\"\n"},
		{name: "columns swapped", body: "value,timestamp\n1,2014-04-01 00:00:00\n"},
		{name: "another column", body: "timestamp,value,label\n2014-04-01 00:00:00,1,0\n"},
		{name: "blank line", body: header + "2014-04-01 00:00:00,1\n\n2014-04-01 00:05:00,2\n"},
		{name: "fractional second", body: header + "2014-04-01 00:00:00.5,1\n"},
		{name: "hex value", body: header + "2014-04-01 00:00:00,0x1p-2\n", scans: true},
		{name: "NaN value", body: header + "2014-04-01 00:00:00,NaN\n", scans: true},
		{name: "bad value", body: header + "2014-04-01 00:00:00,1\n2014-04-01 00:05:00,x\n", err: ErrBadCSV, msg: "line 3"},
		{name: "empty value", body: header + "2014-04-01 00:00:00,\n", err: ErrBadCSV, msg: "line 2"},
		{name: "bad timestamp", body: header + "2014-04-01 00:00:00,1\n2014-04-01 00:05,2\n", err: ErrBadCSV, msg: "line 3"},
		{name: "impossible date", body: header + "2014-02-30 00:00:00,1\n", err: ErrBadCSV, msg: "line 2"},
		{name: "hour 24", body: header + "2014-04-01 24:00:00,1\n", err: ErrBadCSV, msg: "line 2"},
		{name: "space before value", body: header + "2014-04-01 00:00:00, 1\n", err: ErrBadCSV, msg: "line 2"},
		{name: "CR inside a line", body: header + "2014-04-01 00:00:00,1\r2\n", err: ErrBadCSV, msg: "line 2"},
		{name: "no value column", body: "timestamp,v\n2014-04-01 00:00:00,1\n", err: ErrBadCSV, msg: `no "value" column`},
		{name: "too many fields", body: header + "2014-04-01 00:00:00,1,2\n", err: csv.ErrFieldCount, msg: "line 2"},
		{name: "bare quote", body: header + "2014-04-01 00:00:00,1\"\n", err: csv.ErrBareQuote, msg: "line 2"},
		{name: "empty file", body: "", err: io.EOF, msg: "header: EOF"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "data.csv")
			if err := os.WriteFile(path, []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, _, ok := scanData([]byte(c.body)); ok != c.scans {
				t.Errorf("scanData takes it: %v, want %v", ok, c.scans)
			}
			var buf []byte
			ts, vs, err := readDataCSV(path, &buf)
			wantTS, wantVS, wantErr := readDataRecords(path, nil)
			switch {
			case c.err == nil && c.msg == "":
				if err != nil || wantErr != nil {
					t.Fatalf("readDataCSV: %v; through encoding/csv: %v", err, wantErr)
				}
				if err := sameRows(ts, vs, wantTS, wantVS); err != nil {
					t.Error(err)
				}
			case err == nil:
				t.Fatalf("readDataCSV: %d rows, no error", len(ts))
			default:
				if wantErr == nil || err.Error() != wantErr.Error() {
					t.Errorf("readDataCSV: %v; through encoding/csv: %v", err, wantErr)
				}
				if c.err != nil && !errors.Is(err, c.err) {
					t.Errorf("error %v does not wrap %v", err, c.err)
				}
				if want := "read " + path + ": "; !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), c.msg) {
					t.Errorf("error %q, want it to begin %q and mention %q", err, want, c.msg)
				}
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "none.csv")
		var buf []byte
		if _, _, err := readDataCSV(path, &buf); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("readDataCSV of a missing file: %v", err)
		}
	})
}

// TestDatesMatchesTimeDate parses runs of timestamps with one dates, as
// scanData does, so that most take the path that reuses the previous
// row's date: each must be the Time time.Date gives, field for field.
func TestDatesMatchesTimeDate(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		tm := time.Unix(rapid.Int64Range(-62135596800, 253402300799).Draw(rt, "start"), 0).UTC()
		var d dates
		for i := range rapid.IntRange(1, 50).Draw(rt, "rows") {
			tm = tm.Add(time.Duration(rapid.SampledFrom([]int64{0, 1, 59, 60, 300, 3600, 86399, 86400, 2678400}).Draw(rt, "step")) * time.Second)
			if tm.Year() > 9999 {
				break
			}
			y, mo, dd := tm.Date()
			h, mi, s := tm.Clock()
			want := time.Date(y, mo, dd, h, mi, s, 0, time.UTC)
			got, ok := d.parse(AppendTime(nil, tm))
			if !ok || got != want {
				rt.Fatalf("row %d, %s: parse gives %#v, %v; want %#v", i, tm, got, ok, want)
			}
		}
	})
}

// TestParseDecimalAgreesWithParseFloat draws decimals in and out of the
// fast path's reach and some that are not decimals at all: whatever
// parseDecimal takes, ParseFloat reads as the same bits.
func TestParseDecimalAgreesWithParseFloat(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var s string
		if rapid.Bool().Draw(rt, "text") {
			s = rapid.StringOfN(rapid.SampledFrom([]rune("0123456789.eE+-_xpinfINFa ")), 0, 25, -1).Draw(rt, "s")
		} else {
			digits := rapid.StringOfN(rapid.RuneFrom([]rune("0123456789")), 1, 20, -1).Draw(rt, "digits")
			point := rapid.IntRange(-1, len(digits)).Draw(rt, "point")
			if point >= 0 {
				digits = digits[:point] + "." + digits[point:]
			}
			s = rapid.SampledFrom([]string{"", "-", "+"}).Draw(rt, "sign") + digits
			if rapid.Bool().Draw(rt, "exp") {
				s += fmt.Sprintf("%s%s%d", rapid.SampledFrom([]string{"e", "E"}).Draw(rt, "e"),
					rapid.SampledFrom([]string{"", "-", "+"}).Draw(rt, "esign"), rapid.IntRange(0, 40).Draw(rt, "exponent"))
			}
		}
		checkParseDecimal(rt, s)
	})
	for _, s := range []string{"0", "-0", "+0", "0.0", "-0e5", "1.", ".5", "-.5", ".", "-", "e5", "1e", "1e+", "9007199254740992",
		"9007199254740993", "900719925474099.3", "1e22", "1e23", "1e-22", "1e-23", "123456789012345e-22", "0.30000000000000004",
		"0000000000000000000001.5", "1.0000000000000000000", "1_0", "0x10", "Inf", "nan", "1e99999999999"} {
		checkParseDecimal(t, s)
	}
}

func checkParseDecimal(t interface{ Fatalf(string, ...any) }, s string) {
	got, ok := parseDecimal([]byte(s))
	if !ok {
		return
	}
	want, err := strconv.ParseFloat(s, 64)
	if err != nil || math.Float64bits(got) != math.Float64bits(want) {
		t.Fatalf("parseDecimal(%q) = %v; ParseFloat gives %v, %v", s, got, want, err)
	}
}

// TestParseDecimalTakesNABValues checks that the fast path is taken for
// nearly every value of the corpus, so that it is worth its place. It is
// not taken for 4% of them, which have 17 significant digits
// (21.909119730300002).
func TestParseDecimalTakesNABValues(t *testing.T) {
	c := sharedCorpus(t)
	n, missed := 0, 0
	for _, f := range c.Files {
		b, err := os.ReadFile(filepath.Join(corpusDir, filepath.FromSlash(f.Key)))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n"))[1:] {
			_, v, _ := bytes.Cut(bytes.TrimSuffix(line, []byte("\r")), []byte(","))
			n++
			if _, ok := parseDecimal(v); !ok {
				missed++
			}
		}
	}
	if n != c.Rows() || missed > n/20 {
		t.Errorf("parseDecimal leaves %d of %d values (of %d rows) to ParseFloat", missed, n, c.Rows())
	}
}

// FuzzReadDataCSV feeds arbitrary files to the fast scanner: whatever it
// takes, encoding/csv must read without error to the same rows. The
// value parser is checked on its own too, on each line's last field.
func FuzzReadDataCSV(f *testing.F) {
	for _, seed := range []string{
		"timestamp,value\n2014-04-01 00:00:00,73.96732207\n2014-04-01 00:05:00,74\n",
		"timestamp,value\r\n2011-07-01 00:00:01,0.0819647355164\r\n2011-07-01 01:00:01,-1.00035107164e-05",
		"timestamp,value\n2014-04-01 23:59:59,1\n2014-04-02 00:00:00,2\n\n",
		"timestamp,value\n\"2014-04-01 00:00:00\",\"1\"\n",
		"timestamp,value\n2014-04-01 00:00:00,1,2\n",
		"timestamp,value\n2014-04-01 00:00:00,1\"\n",
		"timestamp,value\n2014-02-29 00:00:00,1\n",
		"timestamp,value\n2014-04-01 00:00:00,1\r2\n",
		"timestamp,value\r",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for line := range bytes.Lines(data) {
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			checkParseDecimal(t, string(line[bytes.LastIndexByte(line, ',')+1:]))
		}
		ts, vs, ok := scanData(data)
		if !ok {
			return
		}
		wantTS, wantVS, err := readDataRecords("fuzz.csv", bytes.NewReader(data))
		if err != nil {
			t.Fatalf("scanData takes %q, encoding/csv says %v", data, err)
		}
		if err := sameRows(ts, vs, wantTS, wantVS); err != nil {
			t.Fatalf("%q: %v", data, err)
		}
	})
}

func BenchmarkLoadCorpus(b *testing.B) {
	sharedCorpus(b)
	for b.Loop() {
		if _, err := LoadCorpus(corpusDir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadData reads every data file of the corpus with the fast
// scanner and through encoding/csv.
func BenchmarkReadData(b *testing.B) {
	c := sharedCorpus(b)
	for _, bc := range []struct {
		name string
		read func(path string, buf *[]byte) error
	}{
		{"scan", func(path string, buf *[]byte) error { _, _, err := readDataCSV(path, buf); return err }},
		{"encoding_csv", func(path string, _ *[]byte) error { _, _, err := readDataRecords(path, nil); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var buf []byte
			for b.Loop() {
				for _, f := range c.Files {
					if err := bc.read(filepath.Join(corpusDir, filepath.FromSlash(f.Key)), &buf); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
