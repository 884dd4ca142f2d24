package nab

import (
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// corpusDir is the shared NAB corpus, relative to this package's directory.
var corpusDir = filepath.Join("..", "..", "..", "shared", "data", "nab")

var referenceDir = filepath.Join(corpusDir, "reference-results")

var detectors = []string{"windowedGaussian", "numenta", "ARTime"}

var loadShared = sync.OnceValues(func() (*Corpus, error) { return LoadCorpus(corpusDir) })

// sharedCorpus loads the NAB corpus once per test binary, or skips the
// test when it is not present.
func sharedCorpus(tb testing.TB) *Corpus {
	tb.Helper()
	if _, err := os.Stat(corpusDir); err != nil {
		tb.Skipf("NAB corpus not available: %v", err)
	}
	c, err := loadShared()
	if err != nil {
		tb.Fatalf("LoadCorpus: %v", err)
	}
	return c
}

func readResults(tb testing.TB, detector string) map[string][]float64 {
	tb.Helper()
	s, err := ReadResults(referenceDir, detector)
	if err != nil {
		tb.Fatalf("ReadResults(%s): %v", detector, err)
	}
	return s
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// ---- hand-made files ----

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func minutes(n int) []time.Time {
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = t0.Add(time.Duration(i) * time.Minute)
	}
	return ts
}

// tiny builds an n-row file whose windows span the given rows, with the
// probationary period set to probation rows.
func tiny(t *testing.T, n, probation int, windows ...Window) *File {
	t.Helper()
	ts := minutes(n)
	lims := make([][2]time.Time, len(windows))
	for k, w := range windows {
		lims[k] = [2]time.Time{ts[w.Start], ts[w.End]}
	}
	f, err := NewFile("tiny/file.csv", ts, nil, lims)
	if err != nil {
		t.Fatalf("NewFile: %v", err)
	}
	if !slices.Equal(f.Windows, windows) {
		t.Fatalf("windows mapped to %v, want %v", f.Windows, windows)
	}
	f.Probation = probation
	return f
}

// detect returns n scores that are 1 on the given rows and 0 elsewhere.
func detect(n int, rows ...int) []float64 {
	s := make([]float64, n)
	for _, i := range rows {
		s[i] = 1
	}
	return s
}

func TestScaledSigmoid(t *testing.T) {
	for _, c := range []struct {
		name string
		y    float64
		want float64
	}{
		{"left edge of window", -1, 0.9866142981514303},
		{"middle of window", -0.5, 0.8482836399575129},
		{"right edge", 0, 0},
		{"one width past", 1, -0.9866142981514303},
		{"exactly three widths past", 3, 2/(1+math.Exp(15)) - 1},
		{"beyond three widths", 3.0001, -1},
		{"far beyond", 1e9, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := scaledSigmoid(c.y); !near(got, c.want, 1e-15) {
				t.Errorf("scaledSigmoid(%v) = %v, want %v", c.y, got, c.want)
			}
		})
	}
}

func TestProbationRows(t *testing.T) {
	for _, c := range []struct{ n, want int }{
		{0, 0}, {1, 0}, {6, 0}, {7, 1}, {20, 3}, {4032, 604}, {5000, 750}, {5006, 750}, {22695, 750},
	} {
		if got := ProbationRows(c.n); got != c.want {
			t.Errorf("ProbationRows(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

func TestScoreFile(t *testing.T) {
	// A profile with distinct weights, so each one is seen to apply.
	p := Profile{Name: "test", TPWeight: 2, FPWeight: 0.3, FNWeight: 1.5}
	sig := scaledSigmoid
	const n = 60
	win := Window{Start: 10, End: 19} // width 10
	for _, c := range []struct {
		name           string
		probation      int
		windows        []Window
		rows           []int // detections
		want           float64
		tp, fp, fn, tn int
	}{
		{
			name: "no detection costs A_FN", windows: []Window{win},
			want: -1.5, fn: 10, tn: 50,
		},
		{
			name: "detection on first window row earns A_TP", windows: []Window{win}, rows: []int{10},
			want: 2, tp: 1, fn: 9, tn: 50,
		},
		{
			name: "detection mid-window weighted by position", windows: []Window{win}, rows: []int{15},
			want: 2 * sig(-0.5) / sig(-1), tp: 1, fn: 9, tn: 50,
		},
		{
			name: "detection on last window row earns little", windows: []Window{win}, rows: []int{19},
			want: 2 * sig(-0.1) / sig(-1), tp: 1, fn: 9, tn: 50,
		},
		{
			name: "only the first detection in a window counts", windows: []Window{win}, rows: []int{12, 13, 17},
			want: 2 * sig(-0.8) / sig(-1), tp: 3, fn: 7, tn: 50,
		},
		{
			name: "FP before any window costs A_FP", windows: []Window{win}, rows: []int{3},
			want: -1.5 - 0.3, fp: 1, fn: 10, tn: 49,
		},
		{
			name: "FP in a file without windows costs A_FP", rows: []int{3, 40},
			want: -0.6, fp: 2, tn: 58,
		},
		{
			name: "FP just after a window costs little", windows: []Window{win}, rows: []int{20},
			want: -1.5 + 0.3*sig(1.0/9), fp: 1, fn: 10, tn: 49,
		},
		{
			name: "FP cost grows with distance after a window", windows: []Window{win}, rows: []int{28},
			want: -1.5 + 0.3*sig(1), fp: 1, fn: 10, tn: 49,
		},
		{
			name: "FP beyond three widths costs A_FP", windows: []Window{win}, rows: []int{47},
			want: -1.5 - 0.3, fp: 1, fn: 10, tn: 49,
		},
		{
			name:    "FP measured from the nearest preceding window",
			windows: []Window{{Start: 10, End: 19}, {Start: 30, End: 34}}, rows: []int{10, 30, 37},
			want: 2 + 2 + 0.3*sig(3.0/4), tp: 2, fp: 1, fn: 13, tn: 44,
		},
		{
			name: "probationary detections are ignored", probation: 8, windows: []Window{win}, rows: []int{2, 7},
			want: -1.5, fn: 10, tn: 42,
		},
		{
			name: "window partly in probation keeps its full width", probation: 12, windows: []Window{win}, rows: []int{10, 12},
			want: 2 * sig(-0.8) / sig(-1), tp: 1, fn: 7, tn: 40,
		},
		{
			name: "window wholly in probation is neither rewarded nor penalised", probation: 8,
			windows: []Window{{Start: 2, End: 4}}, rows: []int{3},
			want: 0, tn: 52,
		},
		{
			name: "FP after a probationary window decays from it", probation: 8,
			windows: []Window{{Start: 2, End: 4}}, rows: []int{8},
			want: 0.3 * sig(2), fp: 1, tn: 51,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := tiny(t, n, c.probation, c.windows...)
			got := ScoreFile(f, detect(n, c.rows...), 0.5, p)
			if !near(got.Score, c.want, 1e-12) {
				t.Errorf("score = %.15g, want %.15g", got.Score, c.want)
			}
			if got.TP != c.tp || got.FP != c.fp || got.FN != c.fn || got.TN != c.tn {
				t.Errorf("TP/FP/FN/TN = %d/%d/%d/%d, want %d/%d/%d/%d",
					got.TP, got.FP, got.FN, got.TN, c.tp, c.fp, c.fn, c.tn)
			}
		})
	}
}

func TestScoreFileThresholdIsInclusive(t *testing.T) {
	f := tiny(t, 20, 0, Window{Start: 5, End: 9})
	s := make([]float64, 20)
	s[5] = 0.7
	p := StandardProfiles()[0]
	if r := ScoreFile(f, s, 0.7, p); r.TP != 1 || r.Score != 1 {
		t.Errorf("score 0.7 at threshold 0.7: %+v, want a detection scoring 1", r)
	}
	if r := ScoreFile(f, s, math.Nextafter(0.7, 1), p); r.TP != 0 || r.Score != -1 {
		t.Errorf("score 0.7 just below threshold: %+v, want no detection", r)
	}
}

func TestNewFileErrors(t *testing.T) {
	ts := minutes(10)
	off := t0.Add(90 * time.Second) // between two rows
	for _, c := range []struct {
		name string
		lims [][2]time.Time
	}{
		{"start not a row timestamp", [][2]time.Time{{off, ts[5]}}},
		{"end not a row timestamp", [][2]time.Time{{ts[1], off}}},
		{"end before start", [][2]time.Time{{ts[5], ts[4]}}},
		{"overlapping windows", [][2]time.Time{{ts[1], ts[4]}, {ts[4], ts[6]}}},
		{"out of order", [][2]time.Time{{ts[6], ts[8]}, {ts[1], ts[2]}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewFile("x/y.csv", ts, nil, c.lims); !errors.Is(err, ErrBadWindow) {
				t.Errorf("err = %v, want ErrBadWindow", err)
			}
		})
	}
}

func TestOptimizeTiesGoToHigherThreshold(t *testing.T) {
	f := tiny(t, 40, 0, Window{Start: 10, End: 19})
	s := make([]float64, 40)
	s[10] = 0.9 // earliest row of the window: full credit
	s[15] = 0.8 // a later detection adds nothing, so 0.8 ties with 0.9
	s[30] = 0.5 // an FP: lowering the threshold to 0.5 costs
	p := StandardProfiles()[0]
	th, total, err := Optimize([]*File{f}, map[string][]float64{f.Key: s}, p)
	if err != nil {
		t.Fatal(err)
	}
	if th != 0.9 || total != 1 {
		t.Errorf("Optimize = (%v, %v), want (0.9, 1)", th, total)
	}
}

func TestOptimizeNothingBest(t *testing.T) {
	f := tiny(t, 40, 0, Window{Start: 10, End: 19})
	s := make([]float64, 40)
	s[3] = 0.6 // FPs only above the window's scores
	s[30] = 0.6
	p := StandardProfiles()[0]
	th, total, err := Optimize([]*File{f}, map[string][]float64{f.Key: s}, p)
	if err != nil {
		t.Fatal(err)
	}
	if th != NoDetection || total != -1 {
		t.Errorf("Optimize = (%v, %v), want (%v, -1)", th, total, NoDetection)
	}
}

func TestOptimizeErrors(t *testing.T) {
	f := tiny(t, 10, 0)
	p := StandardProfiles()[0]
	for _, c := range []struct {
		name   string
		scores map[string][]float64
		want   error
	}{
		{"missing file", map[string][]float64{}, ErrMissingScores},
		{"short", map[string][]float64{f.Key: make([]float64, 9)}, ErrScoreCount},
		{"NaN", map[string][]float64{f.Key: append(make([]float64, 9), math.NaN())}, ErrScoreRange},
		{"above one", map[string][]float64{f.Key: append(make([]float64, 9), 1.5)}, ErrScoreRange},
		{"negative", map[string][]float64{f.Key: append(make([]float64, 9), -0.1)}, ErrScoreRange},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := Optimize([]*File{f}, c.scores, p); !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}
}

// TestOptimizeMatchesNaive checks the incremental sweep against scoring
// every candidate threshold from scratch with ScoreFile.
func TestOptimizeMatchesNaive(t *testing.T) {
	levels := []float64{0, 0.1, 0.25, 0.5, 0.5000001, 0.75, 0.9, 1}
	rapid.Check(t, func(rt *rapid.T) {
		var files []*File
		scores := map[string][]float64{}
		for k := range rapid.IntRange(1, 4).Draw(rt, "files") {
			n := rapid.IntRange(1, 80).Draw(rt, "rows")
			ts, lims := drawWindows(rt, n)
			f, err := NewFile(strconv.Itoa(k)+".csv", ts, nil, lims)
			if err != nil {
				rt.Fatal(err)
			}
			f.Probation = rapid.IntRange(0, n/3).Draw(rt, "probation")
			s := make([]float64, n)
			for i := range s {
				s[i] = rapid.SampledFrom(levels).Draw(rt, "score")
			}
			files = append(files, f)
			scores[f.Key] = s
		}
		p := Profile{
			TPWeight: rapid.Float64Range(0.1, 3).Draw(rt, "tp"),
			FPWeight: rapid.Float64Range(0.01, 1).Draw(rt, "fp"),
			FNWeight: rapid.Float64Range(0.1, 3).Draw(rt, "fn"),
		}
		th, total, err := Optimize(files, scores, p)
		if err != nil {
			rt.Fatal(err)
		}
		naive := func(th float64) float64 {
			sum := 0.0
			for _, f := range files {
				sum += ScoreFile(f, scores[f.Key], th, p).Score
			}
			return sum
		}
		// Candidates from the highest threshold down; the best is the first
		// to reach the maximum.
		cands := []float64{NoDetection}
		for _, l := range slices.Backward(levels) {
			cands = append(cands, l)
		}
		best, bestT := math.Inf(-1), 0.0
		for _, c := range cands {
			if v := naive(c); v > best+1e-9 {
				best, bestT = v, c
			}
		}
		// A threshold that no row scores at is equivalent to the next
		// higher one that some row does; compare by the totals and by the
		// detections they make.
		if !near(total, best, 1e-9) || !near(naive(th), best, 1e-9) {
			rt.Fatalf("Optimize = (%v, %v); naive best (%v, %v), naive at %v = %v", th, total, bestT, best, th, naive(th))
		}
		if th < bestT && !sameDetections(files, scores, th, bestT) {
			rt.Fatalf("Optimize chose %v below the highest best threshold %v", th, bestT)
		}
	})
}

// TestBaselinesMatchConstantDetectors checks Baselines, which walks the
// rows itself, against ScoreFile scoring a constant at NoDetection and at
// 0 on fresh copies of the files; and that a probationary period changed
// after a file was scored is honoured.
func TestBaselinesMatchConstantDetectors(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		c := &Corpus{}
		var copies []func(probation int) *File
		for k := range rapid.IntRange(1, 4).Draw(rt, "files") {
			n := rapid.IntRange(1, 80).Draw(rt, "rows")
			ts, lims := drawWindows(rt, n)
			fresh := func(probation int) *File {
				f, err := NewFile(strconv.Itoa(k)+".csv", ts, nil, lims)
				if err != nil {
					rt.Fatal(err)
				}
				f.Probation = probation
				return f
			}
			f := fresh(ProbationRows(n))
			c.Files = append(c.Files, f)
			c.NumWindows += len(f.Windows)
			copies = append(copies, fresh)
		}
		p := Profile{
			TPWeight: rapid.Float64Range(0.1, 3).Draw(rt, "tp"),
			FPWeight: rapid.Float64Range(0.01, 1).Draw(rt, "fp"),
			FNWeight: rapid.Float64Range(0.1, 3).Draw(rt, "fn"),
		}
		for round := range 2 {
			var none, all float64
			for k, f := range c.Files {
				g := copies[k](f.Probation)
				zeros := make([]float64, g.Len())
				none += ScoreFile(g, zeros, NoDetection, p).Score
				all += ScoreFile(g, zeros, 0, p).Score
			}
			null, _ := Baselines(c, p)
			if want := max(none, all); null != want {
				rt.Fatalf("round %d: Baselines null = %v, constant detectors give max(%v, %v)", round, null, none, all)
			}
			for _, f := range c.Files {
				f.Probation = rapid.IntRange(0, f.Len()).Draw(rt, "probation")
			}
		}
	})
}

// drawWindows draws n one-minute timestamps and non-overlapping label
// windows over them.
func drawWindows(rt *rapid.T, n int) ([]time.Time, [][2]time.Time) {
	ts := minutes(n)
	var lims [][2]time.Time
	for i := rapid.IntRange(0, n-1).Draw(rt, "first"); i < n; {
		end := min(n-1, i+rapid.IntRange(0, 12).Draw(rt, "width"))
		lims = append(lims, [2]time.Time{ts[i], ts[end]})
		i = end + 1 + rapid.IntRange(0, 20).Draw(rt, "gap")
	}
	return ts, lims
}

func sameDetections(files []*File, scores map[string][]float64, a, b float64) bool {
	for _, f := range files {
		for _, s := range scores[f.Key][f.Probation:] {
			if (s >= a) != (s >= b) {
				return false
			}
		}
	}
	return true
}

// ---- the NAB corpus ----

func TestLoadCorpus(t *testing.T) {
	c := sharedCorpus(t)
	if len(c.Files) != 58 || c.Rows() != 365558 || c.NumWindows != 116 {
		t.Errorf("corpus has %d files, %d rows, %d windows; want 58, 365558, 116", len(c.Files), c.Rows(), c.NumWindows)
	}
	if !slices.Equal(c.Profiles, StandardProfiles()) {
		t.Errorf("profiles.json gives %v, want %v", c.Profiles, StandardProfiles())
	}
	noWindows := 0
	for _, f := range c.Files {
		if len(f.Values) != f.Len() || f.Probation != ProbationRows(f.Len()) {
			t.Errorf("%s: %d values, probation %d for %d rows", f.Key, len(f.Values), f.Probation, f.Len())
		}
		if len(f.Windows) == 0 {
			noWindows++
		}
		for _, w := range f.Windows {
			if w.Start < f.Probation {
				t.Errorf("%s: window %v starts in the probationary period (%d rows)", f.Key, w, f.Probation)
			}
		}
	}
	if noWindows != 6 {
		t.Errorf("%d files without windows, want 6", noWindows)
	}
	// A file with no trailing newline keeps its last row.
	f := c.File("realKnownCause/nyc_taxi.csv")
	if f == nil || f.Len() != 10320 || !f.Timestamps[f.Len()-1].Equal(time.Date(2015, 1, 31, 23, 30, 0, 0, time.UTC)) {
		t.Errorf("nyc_taxi: want 10320 rows ending 2015-01-31 23:30:00")
	}
	// The first window of art_daily_flatmiddle, 2014-04-10 07:15 to
	// 2014-04-11 16:45 in 5-minute rows starting 2014-04-01 00:00.
	f = c.File("artificialWithAnomaly/art_daily_flatmiddle.csv")
	if want := (Window{Start: 2679, End: 3081}); f == nil || len(f.Windows) != 1 || f.Windows[0] != want {
		t.Errorf("art_daily_flatmiddle windows = %v, want [%v]", f.Windows, want)
	}
}

func TestReadResults(t *testing.T) {
	c := sharedCorpus(t)
	for _, d := range detectors {
		s := readResults(t, d)
		if len(s) != len(c.Files) {
			t.Errorf("%s: %d results files, want %d", d, len(s), len(c.Files))
		}
		for _, f := range c.Files {
			if len(s[f.Key]) != f.Len() {
				t.Errorf("%s %s: %d scores for %d rows", d, f.Key, len(s[f.Key]), f.Len())
			}
		}
	}
}

func TestReadResultsNABFormat(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "det", "cat"), 0o755); err != nil {
		t.Fatal(err)
	}
	body := "timestamp,value,anomaly_score,label\n2014-01-01 00:00:00,3.5,0.25,0\n2014-01-01 00:05:00,4,1.0,1"
	if err := os.WriteFile(filepath.Join(dir, "det", "cat", "det_a.csv"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "det", "det_standard_scores.csv"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := ReadResults(dir, "det")
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{0.25, 1}; len(s) != 1 || !slices.Equal(s["cat/a.csv"], want) {
		t.Errorf("ReadResults = %v, want map[cat/a.csv:%v]", s, want)
	}
	if _, err := ReadResults(dir, "other"); err == nil {
		t.Error("ReadResults of a missing detector: no error")
	}
}

func readPublished(t *testing.T) map[string]map[string]float64 {
	t.Helper()
	var v map[string]map[string]float64
	if err := readJSON(filepath.Join(referenceDir, "published_final_results.json"), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPublishedFinalScores scores NAB's published results files and checks
// the normalised scores against NAB's published final results.
//
// NAB's current optimiser (sweeper.py) tries every distinct score, but the
// published numenta tables predate it: they were made by the hill-climbing
// optimiser ("twiddle") of NAB 1.0, which for reward_low_FP_rate stopped
// at a local optimum, threshold 0.575195503235 rather than the global one.
// The exhaustive sweep finds a better threshold there, so for that one case
// the test checks that the sweep scores higher and that scoring at the
// published threshold reproduces the published number.
func TestPublishedFinalScores(t *testing.T) {
	c := sharedCorpus(t)
	published := readPublished(t)
	twiddled := map[[2]string]float64{{"numenta", RewardLowFPRate}: 0.575195503235}
	for _, d := range detectors {
		scores := readResults(t, d)
		for _, p := range c.Profiles {
			t.Run(d+"/"+p.Name, func(t *testing.T) {
				want, ok := published[d][p.Name]
				if !ok {
					t.Fatalf("no published score")
				}
				r, err := Score(c, scores, p)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("threshold %v raw %.6f normalised %.4f, published %.4f", r.Threshold, r.Raw, r.Normalized, want)
				th, ok := twiddled[[2]string{d, p.Name}]
				if !ok {
					if !near(r.Normalized, want, 0.05) {
						t.Errorf("normalised score %.4f, published %.4f", r.Normalized, want)
					}
					return
				}
				if r.Normalized < want {
					t.Errorf("exhaustive sweep scores %.4f, below the hill-climbed %.4f", r.Normalized, want)
				}
				at, err := ScoreAt(c, scores, p, th)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("at the published threshold %v: normalised %.4f", th, at.Normalized)
				if !near(at.Normalized, want, 0.05) {
					t.Errorf("at the published threshold: normalised %.4f, published %.4f", at.Normalized, want)
				}
			})
		}
	}
}

// tableRow is one row of a NAB per-file score table.
type tableRow struct {
	threshold, score      float64
	tp, tn, fp, fn, total int
}

func readTable(t *testing.T, detector, profile string) map[string]tableRow {
	t.Helper()
	fh, err := os.Open(filepath.Join(referenceDir, detector, detector+"_"+profile+"_scores.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	recs, err := csv.NewReader(fh).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]tableRow{}
	for _, rec := range recs[1:] {
		num := func(i int) float64 {
			v, err := strconv.ParseFloat(rec[i], 64)
			if err != nil && rec[0] != "Totals" {
				t.Fatalf("%v: field %d: %v", rec, i, err)
			}
			return v
		}
		key := rec[2]
		if rec[0] == "Totals" {
			key = "Totals"
		}
		rows[key] = tableRow{
			threshold: num(3), score: num(4),
			tp: int(num(5)), tn: int(num(6)), fp: int(num(7)), fn: int(num(8)), total: int(num(9)),
		}
	}
	return rows
}

// TestPublishedPerFileTables scores every file at NAB's published threshold
// and compares with NAB's per-file tables: the row counts exactly, the
// score to the precision the tables print.
// TestScoreProfilesMatchesScore checks that sorting once for every
// profile scores as Score does for each, on NAB's published results.
func TestScoreProfilesMatchesScore(t *testing.T) {
	c := sharedCorpus(t)
	for _, d := range detectors {
		scores := readResults(t, d)
		all, err := ScoreProfiles(c, scores, c.Profiles)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(c.Profiles) {
			t.Fatalf("%s: %d results for %d profiles", d, len(all), len(c.Profiles))
		}
		for i, p := range c.Profiles {
			one, err := Score(c, scores, p)
			if err != nil {
				t.Fatal(err)
			}
			if all[i].Profile != p || all[i].Threshold != one.Threshold || all[i].Raw != one.Raw || all[i].Normalized != one.Normalized {
				t.Errorf("%s/%s: ScoreProfiles gives threshold %v, raw %v; Score %v, %v",
					d, p.Name, all[i].Threshold, all[i].Raw, one.Threshold, one.Raw)
			}
		}
	}
	if _, err := ScoreProfiles(c, map[string][]float64{}, c.Profiles); !errors.Is(err, ErrMissingScores) {
		t.Errorf("no scores: error %v, want ErrMissingScores", err)
	}
}

func TestPublishedPerFileTables(t *testing.T) {
	c := sharedCorpus(t)
	for _, d := range detectors {
		scores := readResults(t, d)
		for _, p := range c.Profiles {
			t.Run(d+"/"+p.Name, func(t *testing.T) {
				table := readTable(t, d, p.Name)
				tot := table["Totals"]
				th := table[c.Files[0].Key].threshold
				r, err := ScoreAt(c, scores, p, th)
				if err != nil {
					t.Fatal(err)
				}
				for _, fr := range r.Files {
					want, ok := table[fr.Key]
					if !ok {
						t.Errorf("%s: not in the table", fr.Key)
						continue
					}
					if want.threshold != th {
						t.Errorf("%s: table threshold %v, others %v", fr.Key, want.threshold, th)
					}
					if fr.TP != want.tp || fr.FP != want.fp || fr.FN != want.fn || fr.TN != want.tn {
						t.Errorf("%s: TP/FP/FN/TN %d/%d/%d/%d, table %d/%d/%d/%d", fr.Key,
							fr.TP, fr.FP, fr.FN, fr.TN, want.tp, want.fp, want.fn, want.tn)
					}
					// Older tables count every row, newer ones the scored rows.
					if n := fr.TP + fr.FP + fr.FN + fr.TN; want.total != n && want.total != c.File(fr.Key).Len() {
						t.Errorf("%s: table total %d, scored %d of %d rows", fr.Key, want.total, n, c.File(fr.Key).Len())
					}
					if !near(fr.Score, want.score, 1e-9*max(1, math.Abs(want.score))) {
						t.Errorf("%s: score %.12g, table %.12g", fr.Key, fr.Score, want.score)
					}
				}
				if !near(r.Raw, tot.score, 1e-8) || r.TP != tot.tp || r.FP != tot.fp || r.FN != tot.fn || r.TN != tot.tn {
					t.Errorf("totals %.10g %d/%d/%d/%d, table %.10g %d/%d/%d/%d",
						r.Raw, r.TP, r.FP, r.FN, r.TN, tot.score, tot.tp, tot.fp, tot.fn, tot.tn)
				}
			})
		}
	}
}

// TestOptimizedThresholdMatchesSweepTables checks Optimize against the one
// detector whose tables NAB produced with its current sweep optimiser.
func TestOptimizedThresholdMatchesSweepTables(t *testing.T) {
	c := sharedCorpus(t)
	scores := readResults(t, "ARTime")
	for _, p := range c.Profiles {
		table := readTable(t, "ARTime", p.Name)
		th, total, err := Optimize(c.Files, scores, p)
		if err != nil {
			t.Fatal(err)
		}
		if want := table[c.Files[0].Key].threshold; th != want || !near(total, table["Totals"].score, 1e-9) {
			t.Errorf("%s: Optimize = (%v, %.12g), table (%v, %.12g)", p.Name, th, total, want, table["Totals"].score)
		}
	}
}

func TestNullAndPerfectDetectors(t *testing.T) {
	c := sharedCorpus(t)
	null := map[string][]float64{}
	perfect := map[string][]float64{}
	for _, f := range c.Files {
		s := make([]float64, f.Len())
		for i := range s {
			s[i] = 0.5 // NAB's null detector
		}
		null[f.Key] = s
		perfect[f.Key] = make([]float64, f.Len())
		for _, w := range f.Windows {
			perfect[f.Key][w.Start] = 1
		}
	}
	for _, p := range c.Profiles {
		r, err := Score(c, null, p)
		if err != nil {
			t.Fatal(err)
		}
		if r.Threshold != NoDetection || r.Normalized != 0 || r.Null != -float64(c.NumWindows)*p.FNWeight {
			t.Errorf("%s: null detector: threshold %v, normalised %v, null %v", p.Name, r.Threshold, r.Normalized, r.Null)
		}
		r, err = Score(c, perfect, p)
		if err != nil {
			t.Fatal(err)
		}
		if r.Normalized != 100 || r.Raw != r.Perfect || r.FP != 0 || r.TP != c.NumWindows {
			t.Errorf("%s: perfect detector: normalised %v, raw %v, perfect %v, FP %d, TP %d", p.Name, r.Normalized, r.Raw, r.Perfect, r.FP, r.TP)
		}
	}
}

func TestNormalize(t *testing.T) {
	for _, c := range []struct{ raw, null, perfect, want float64 }{
		{-116, -116, 116, 0},
		{116, -116, 116, 100},
		{0, -116, 116, 50},
		{46.6344501971, -116, 116, 70.10105611943965},
	} {
		if got := Normalize(c.raw, c.null, c.perfect); !near(got, c.want, 1e-9) {
			t.Errorf("Normalize(%v, %v, %v) = %v, want %v", c.raw, c.null, c.perfect, got, c.want)
		}
	}
}

func BenchmarkScoreCorpus(b *testing.B) {
	c := sharedCorpus(b)
	scores := readResults(b, "numenta")
	p := c.Profiles[0]
	for b.Loop() {
		if _, err := Score(c, scores, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOptimize(b *testing.B) {
	c := sharedCorpus(b)
	scores := readResults(b, "numenta")
	p := c.Profiles[0]
	for b.Loop() {
		if _, _, err := Optimize(c.Files, scores, p); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParseTimeFastAgreesWithTimeParse draws timestamps in TimeLayout's
// shape with fields in and out of range, and a byte changed now and then:
// whatever the fast path accepts, time.Parse reads as the same instant,
// and every all-digit timestamp time.Parse accepts, the fast path takes.
func TestParseTimeFastAgreesWithTimeParse(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		s := fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d",
			rapid.IntRange(0, 9999).Draw(rt, "year"), rapid.IntRange(0, 14).Draw(rt, "month"),
			rapid.IntRange(0, 32).Draw(rt, "day"), rapid.IntRange(0, 25).Draw(rt, "hour"),
			rapid.IntRange(0, 61).Draw(rt, "minute"), rapid.IntRange(0, 61).Draw(rt, "second"))
		mutated := rapid.Bool().Draw(rt, "mutate")
		if mutated {
			b := []byte(s)
			b[rapid.IntRange(0, len(b)-1).Draw(rt, "at")] = rapid.SampledFrom([]byte("0123456789-: T/x")).Draw(rt, "byte")
			s = string(b)
		}
		fast, ok := parseTimeFast(s)
		want, err := time.Parse(TimeLayout, s)
		switch {
		case ok && (err != nil || !fast.Equal(want) || fast.Location() != time.UTC):
			rt.Fatalf("%q: fast path gives %v, time.Parse %v, %v", s, fast, want, err)
		case !ok && err == nil && !mutated:
			rt.Fatalf("%q: time.Parse reads %v, the fast path refuses it", s, want)
		}
	})
}

// TestAppendTimeMatchesAppendFormat compares the results files' timestamp
// writer with the time package's, across the years it writes itself and
// beyond them, in and out of UTC.
func TestAppendTimeMatchesAppendFormat(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		sec := rapid.Int64Range(-70000000000, 300000000000).Draw(rt, "unix")
		zone := time.FixedZone("z", rapid.IntRange(-14, 14).Draw(rt, "offset")*3600)
		tm := time.Unix(sec, rapid.Int64Range(0, 999999999).Draw(rt, "nanos")).In(zone)
		if got, want := string(AppendTime([]byte("x"), tm)), "x"+tm.UTC().Format(TimeLayout); got != want {
			rt.Fatalf("AppendTime(%v) = %q, want %q", tm, got, want)
		}
	})
}

// TestSortByScore checks the radix sort against a stable comparison sort:
// highest score first, equal scores (0 and −0 among them) in the order
// given.
func TestSortByScore(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		// Few distinct scores, so that ties are common.
		vals := []float64{0, math.Copysign(0, -1), 1, 0.5, 0.25, 1e-300, math.Nextafter(0.5, 1), 0.75}
		n := rapid.IntRange(0, 300).Draw(t, "n")
		pts := make([]point, n)
		for i := range pts {
			s := rapid.SampledFrom(vals).Draw(t, "v")
			if rapid.Bool().Draw(t, "any") {
				s = rapid.Float64Range(0, 1).Draw(t, "s")
			}
			pts[i] = point{score: s, window: int32(i)}
		}
		want := slices.Clone(pts)
		slices.SortStableFunc(want, func(a, b point) int {
			switch {
			case a.score > b.score:
				return -1
			case a.score < b.score:
				return 1
			}
			return 0
		})
		sortByScore(pts)
		for i := range pts {
			if pts[i].window != want[i].window {
				t.Fatalf("row %d: %v (row %d given), want %v (row %d)", i, pts[i].score, pts[i].window, want[i].score, want[i].window)
			}
		}
	})
}

// BenchmarkSortByScore sorts as many rows as NAB scores, a third of them
// 0, as a detector at rest scores them.
func BenchmarkSortByScore(b *testing.B) {
	src := make([]point, 330_000)
	x := uint64(1)
	for i := range src {
		x = x*6364136223846793005 + 1442695040888963407
		if x>>62 != 0 {
			src[i].score = float64(x>>11) / (1 << 53)
		}
	}
	pts := make([]point, len(src))
	for b.Loop() {
		copy(pts, src)
		sortByScore(pts)
	}
}
