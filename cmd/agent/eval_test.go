package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/emberwatch/emberwatch/detect"
	"github.com/emberwatch/emberwatch/internal/nab"
)

// nabShared is the NAB corpus beside the repository.
const nabShared = "../../../shared/data/nab"

// nabSubset copies two NAB files, their label windows and the profiles
// into a fresh corpus folder and returns it.
func nabSubset(t *testing.T) string {
	t.Helper()
	keys := []string{"realTraffic/speed_7578.csv", "artificialWithAnomaly/art_daily_jumpsup.csv"}
	raw, err := os.ReadFile(filepath.Join(nabShared, "labels", "combined_windows.json"))
	if err != nil {
		t.Skipf("NAB corpus not found: %v", err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	windows := map[string]json.RawMessage{}
	for _, k := range keys {
		windows[k] = all[k]
		copyFile(t, filepath.Join(nabShared, k), filepath.Join(dir, k))
	}
	b, err := json.Marshal(windows)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "labels", "combined_windows.json"), b)
	copyFile(t, filepath.Join(nabShared, "labels", "profiles.json"), filepath.Join(dir, "labels", "profiles.json"))
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, b)
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEvalNABWritesResultsAndScores(t *testing.T) {
	data := nabSubset(t)
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, "eval", "nab", "--data", data, "--out", out, "--detector", "ensemble")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"ensemble", "standard", "reward_low_FP_rate", "reward_low_FN_rate", "optimised threshold", "configured threshold"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	c, err := nab.LoadCorpus(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := nab.ReadResults(out, "ensemble")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range c.Files {
		// The file holds the scores a fresh detector gives, in full.
		d, err := detect.NewPointDetector("ensemble", detect.DefaultPointParams())
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float64, f.Len())
		for i, ts := range f.Timestamps {
			want[i] = d.Observe(ts, f.Values[i])
		}
		if !slices.Equal(got[f.Key], want) {
			t.Errorf("%s: results file scores differ from the detector's", f.Key)
		}
		// Columns and labels.
		cat, file, _ := strings.Cut(f.Key, "/")
		fh, err := os.Open(filepath.Join(out, "ensemble", cat, "ensemble_"+file))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(fh).ReadAll()
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		if h := strings.Join(recs[0], ","); h != "timestamp,value,anomaly_score,label" {
			t.Errorf("%s: header %q", f.Key, h)
		}
		if len(recs)-1 != f.Len() {
			t.Fatalf("%s: %d rows, want %d", f.Key, len(recs)-1, f.Len())
		}
		for i, rec := range recs[1:] {
			inside := slices.ContainsFunc(f.Windows, func(w nab.Window) bool { return w.Start <= i && i <= w.End })
			if want := map[bool]string{true: "1", false: "0"}[inside]; rec[3] != want {
				t.Fatalf("%s: row %d label %s, want %s", f.Key, i, rec[3], want)
			}
			if rec[0] != f.Timestamps[i].Format(nab.TimeLayout) {
				t.Fatalf("%s: row %d timestamp %s", f.Key, i, rec[0])
			}
		}
	}
}

func TestEvalNABIsDeterministic(t *testing.T) {
	data := nabSubset(t)
	outs := []string{t.TempDir(), t.TempDir()}
	var printed []string
	for _, out := range outs {
		code, stdout, stderr := runCLI(t, "eval", "nab", "--data", data, "--out", out, "--detector", "cad_ose,likelihood:gaussian,hst")
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		printed = append(printed, stdout)
	}
	n := 0
	err := filepath.WalkDir(outs[0], func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(outs[0], path)
		a, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(outs[1], rel))
		if err != nil {
			return err
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs", rel)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 6 {
		t.Errorf("%d results files, want 6 (3 detectors × 2 files)", n)
	}
	// The tables agree too, but for the run time and folder.
	strip := func(s string) string {
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.Contains(l, "points in") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if strip(printed[0]) != strip(printed[1]) {
		t.Errorf("scores differ between two runs:\n%s\n%s", printed[0], printed[1])
	}
}

func TestEvalNABUsage(t *testing.T) {
	data := nabSubset(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no benchmark", []string{"eval"}, "usage: agent eval nab"},
		{"unknown benchmark", []string{"eval", "kdd"}, "usage: agent eval nab"},
		{"no data", []string{"eval", "nab", "--out", t.TempDir()}, "usage: agent eval nab"},
		{"unknown detector", []string{"eval", "nab", "--data", data, "--out", t.TempDir(), "--detector", "crystal_ball"}, "unknown point detector"},
		{"bad ensemble", []string{"eval", "nab", "--data", data, "--out", t.TempDir(), "--detector", "ensemble", "--combine", "median"}, "ensemble.combine"},
		{"missing corpus", []string{"eval", "nab", "--data", t.TempDir(), "--out", t.TempDir()}, "combined_windows.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantUsageError(t, tt.args, tt.want) })
	}
}

func TestEvalNABWithHints(t *testing.T) {
	data := nabSubset(t)
	code, stdout, stderr := runCLI(t, "eval", "nab", "--data", data, "--out", t.TempDir(), "--detector", "cad_ose", "--hints")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "with NAB's hints") {
		t.Errorf("stdout does not say hints were given:\n%s", stdout)
	}
}

// TestAppendValueMatchesAppendFloat compares the results files' value
// writer with strconv's: whole numbers either side of 2⁵³, where it
// stops writing them itself, and any float64 at all.
func TestAppendValueMatchesAppendFloat(t *testing.T) {
	check := func(t interface{ Fatalf(string, ...any) }, v float64) {
		if got, want := string(appendValue([]byte("x"), v)), string(strconv.AppendFloat([]byte("x"), v, 'f', -1, 64)); got != want {
			t.Fatalf("appendValue(%v) = %q, want %q", v, got, want)
		}
	}
	for _, v := range []float64{0, math.Copysign(0, -1), 1, -1, 26288, 1 << 53, 1<<53 - 1, 1<<53 + 2, -(1 << 53), 1e21, 1e22, 0.5, math.NaN(), math.Inf(1), math.Inf(-1)} {
		check(t, v)
	}
	rapid.Check(t, func(rt *rapid.T) {
		switch rapid.IntRange(0, 2).Draw(rt, "kind") {
		case 0:
			check(rt, float64(rapid.Int64Range(-1<<54, 1<<54).Draw(rt, "int")))
		case 1:
			check(rt, float64(rapid.Int64().Draw(rt, "int"))*math.Pow(10, float64(rapid.IntRange(-5, 5).Draw(rt, "exp"))))
		default:
			check(rt, math.Float64frombits(rapid.Uint64().Draw(rt, "bits")))
		}
	})
}

// TestAppendScoreMatchesAppendFloat compares the results files' score
// writer with strconv's.
func TestAppendScoreMatchesAppendFloat(t *testing.T) {
	check := func(t interface{ Fatalf(string, ...any) }, s float64) {
		if got, want := string(appendScore([]byte("x"), s)), string(strconv.AppendFloat([]byte("x"), s, 'g', -1, 64)); got != want {
			t.Fatalf("appendScore(%v) = %q, want %q", s, got, want)
		}
	}
	for _, s := range []float64{0, math.Copysign(0, -1), 1, 0.5, 1e-300, math.Nextafter(1, 0), math.NaN()} {
		check(t, s)
	}
	rapid.Check(t, func(rt *rapid.T) {
		check(rt, rapid.Float64Range(0, 1).Draw(rt, "score"))
	})
}

// TestStampsMatchAppendTime writes runs of timestamps a few seconds to a
// month apart with one stamps, as a results file does, in years nab
// writes itself and beyond them.
func TestStampsMatchAppendTime(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		sec := rapid.Int64Range(-70000000000, 300000000000).Draw(rt, "unix")
		tm := time.Unix(sec, rapid.Int64Range(0, 999999999).Draw(rt, "nanos"))
		var st stamps
		for i := range rapid.IntRange(1, 50).Draw(rt, "rows") {
			step := rapid.SampledFrom([]time.Duration{0, time.Second, time.Minute, 5 * time.Minute, time.Hour, 24 * time.Hour, 31 * 24 * time.Hour}).Draw(rt, "step")
			tm = tm.Add(step)
			if got, want := string(st.append([]byte("x"), tm)), string(nab.AppendTime([]byte("x"), tm)); got != want {
				rt.Fatalf("row %d, %v: stamps writes %q, want %q", i, tm, got, want)
			}
		}
	})
}
