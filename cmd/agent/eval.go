package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/emberwatch/emberwatch/detect"
	"github.com/emberwatch/emberwatch/internal/nab"
)

// defaultNABDetector is the point detector that scores best on NAB's
// standard profile without hints (docs/DETECTION.md).
const defaultNABDetector = "ensemble"

const evalUsage = `usage: agent eval nab --data DIR --out DIR [--detector NAME[,NAME...]|all] [--hints] [--threshold F] [--members NAME,...] [--combine max|mean]`

// cmdEval runs an offline evaluation. The one benchmark so far is NAB:
// every detector named runs online over every file of the corpus, point
// by point with fresh state per file and one parameter set for all files;
// its scores are written as NAB results files and scored under NAB's
// three profiles, at the optimised threshold and at the detector's
// configured one.
func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "nab" {
		fmt.Fprintln(stderr, evalUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("eval nab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "NAB corpus root: labels/ and one folder per category (required)")
	out := fs.String("out", "", "folder for the results files, <out>/<detector>/<category>/<detector>_<file>.csv (required)")
	names := fs.String("detector", defaultNABDetector, `point detector(s), comma-separated, or "all"; known: `+strings.Join(detect.PointDetectorNames(), ", ")+`, each optionally prefixed by "`+detect.LikelihoodPrefix+`"`)
	hints := fs.Bool("hints", false, "give each detector the file's min, max and probationary length, as NAB's runner gives its own detectors (a look-ahead a live agent does not have)")
	threshold := fs.Float64("threshold", 0, "configured threshold for every detector named, in (0,1); 0 keeps each detector's default")
	members := fs.String("members", "", "the ensemble's members, comma-separated (default: "+strings.Join(detect.DefaultPointParams().Ensemble.Members, ",")+")")
	combine := fs.String("combine", "", `how the ensemble combines its members' scores: "max" or "mean" (default: `+detect.DefaultPointParams().Ensemble.Combine+")")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if *data == "" || *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, evalUsage)
		return exitUsage
	}
	params := detect.DefaultPointParams()
	params.Threshold = *threshold
	if *members != "" {
		params.Ensemble.Members = strings.Split(*members, ",")
	}
	if *combine != "" {
		params.Ensemble.Combine = *combine
	}
	detectors := strings.Split(*names, ",")
	if *names == "all" {
		detectors = allNABDetectors()
	}
	for _, name := range detectors {
		if _, err := detect.NewPointDetector(name, params); err != nil {
			fmt.Fprintf(stderr, "agent eval nab: --detector: %v\n", err)
			return exitUsage
		}
	}
	corpus, err := nab.LoadCorpus(*data)
	if err != nil {
		fmt.Fprintf(stderr, "agent eval nab: %v\n", err)
		return exitUsage
	}
	for _, name := range detectors {
		res, err := evalNAB(ctx, corpus, name, params, *hints, *out)
		if err != nil {
			fmt.Fprintf(stderr, "agent eval nab: %s: %v\n", name, err)
			return exitFailure
		}
		printNAB(stdout, res, *hints)
	}
	return exitOK
}

// allNABDetectors lists every registered detector and the likelihood of
// each but those whose scores are mostly zeros by design (spatial,
// discord), which leave the likelihood nothing to estimate, and the
// ensemble.
func allNABDetectors() []string {
	out := detect.PointDetectorNames()
	for _, n := range detect.PointDetectorNames() {
		if n != "ensemble" && n != "spatial" && n != "discord" {
			out = append(out, detect.LikelihoodPrefix+n)
		}
	}
	return out
}

// nabEval is one detector's evaluation.
type nabEval struct {
	detector  string
	dir       string // results folder
	rows      int
	elapsed   time.Duration // running the detector, excluding I/O
	threshold float64       // configured
	optimised []nab.Result  // per profile, at the optimised threshold
	at        []nab.Result  // per profile, at the configured threshold
	corpus    *nab.Corpus
	scores    map[string][]float64
}

// detections counts, past each file's probationary period, the label
// windows with at least one score at or above a threshold and the points
// at or above it outside every window.
type detections struct{ hit, windows, fp int }

func (r *nabEval) counts(threshold float64) detections {
	var d detections
	for _, f := range r.corpus.Files {
		s := r.scores[f.Key]
		win := 0
		hit := make([]bool, len(f.Windows))
		for i := f.Probation; i < f.Len(); i++ {
			for win < len(f.Windows) && f.Windows[win].End < i {
				win++
			}
			if s[i] < threshold {
				continue
			}
			if win < len(f.Windows) && f.Windows[win].Start <= i {
				hit[win] = true
			} else {
				d.fp++
			}
		}
		for k, w := range f.Windows {
			if w.End >= f.Probation {
				d.windows++
				if hit[k] {
					d.hit++
				}
			}
		}
	}
	return d
}

// resultsName is the detector's name as a folder and file prefix.
func resultsName(detector string) string {
	return strings.NewReplacer(":", "_", "/", "_", ",", "_").Replace(detector)
}

// evalNAB runs one detector over the corpus, writes its results files
// under out and scores it.
func evalNAB(ctx context.Context, c *nab.Corpus, name string, params detect.PointParams, hints bool, out string) (*nabEval, error) {
	thr, err := detect.PointThreshold(name, params)
	if err != nil {
		return nil, err
	}
	scores := make(map[string][]float64, len(c.Files))
	res := &nabEval{detector: name, threshold: thr, dir: filepath.Join(out, resultsName(name)), corpus: c, scores: scores}
	for _, f := range c.Files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := params
		if hints {
			p.Hints = nabHints(f)
		}
		s, elapsed, err := runPointDetector(name, p, f)
		if err != nil {
			return nil, err
		}
		res.elapsed += elapsed
		res.rows += f.Len()
		scores[f.Key] = s
		if err := writeNABResults(res.dir, resultsName(name), f, s); err != nil {
			return nil, err
		}
	}
	res.optimised, err = nab.ScoreProfiles(c, scores, nab.StandardProfiles())
	if err != nil {
		return nil, err
	}
	for _, prof := range nab.StandardProfiles() {
		a, err := nab.ScoreAt(c, scores, prof, thr)
		if err != nil {
			return nil, err
		}
		res.at = append(res.at, a)
	}
	return res, nil
}

// nabHints are what NAB's runner tells each of its detectors about a file
// (nab/detectors/base.py): its min and max and a probationary period of
// ⌊0.15·rows⌋, not capped as the scorer's is.
func nabHints(f *nab.File) detect.Hints {
	return detect.Hints{
		Min: slices.Min(f.Values), Max: slices.Max(f.Values), HasRange: true,
		Learn: int(math.Floor(0.15 * float64(f.Len()))),
	}
}

// runPointDetector scores f's points in order with a fresh detector.
func runPointDetector(name string, p detect.PointParams, f *nab.File) ([]float64, time.Duration, error) {
	d, err := detect.NewPointDetector(name, p)
	if err != nil {
		return nil, 0, err
	}
	scores := make([]float64, f.Len())
	start := time.Now()
	for i, t := range f.Timestamps {
		scores[i] = d.Observe(t, f.Values[i])
	}
	elapsed := time.Since(start)
	detect.Recycle(d)
	for i, s := range scores {
		if !(s >= 0 && s <= 1) {
			return nil, 0, fmt.Errorf("%s: row %d: score %v outside [0,1]", f.Key, i, s)
		}
	}
	return scores, elapsed, nil
}

// writeNABResults writes f's scores as NAB does:
// dir/category/name_file.csv with timestamp,value,anomaly_score,label,
// where label is 1 inside a label window. Scores are written in full
// (shortest round-trip form); the file is replaced atomically.
func writeNABResults(dir, name string, f *nab.File, scores []float64) error {
	cat, file := path.Split(f.Key)
	dst := filepath.Join(dir, filepath.FromSlash(cat), name+"_"+file)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".results-*.csv")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	w := bufio.NewWriterSize(tmp, 64<<10)
	w.WriteString("timestamp,value,anomaly_score,label\n")
	var b []byte
	var st stamps
	win := 0
	for i, t := range f.Timestamps {
		for win < len(f.Windows) && f.Windows[win].End < i {
			win++
		}
		label := byte('0')
		if win < len(f.Windows) && f.Windows[win].Start <= i {
			label = '1'
		}
		b = st.append(b[:0], t)
		b = append(b, ',')
		b = appendValue(b, f.Values[i])
		b = append(b, ',')
		b = appendScore(b, scores[i])
		b = append(b, ',', label, '\n')
		w.Write(b)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// stamps appends timestamps as nab.AppendTime does, keeping the date of
// the last one: the rows of a data file come minutes apart, so most share
// the previous row's date and only their clock is formatted.
type stamps struct {
	day  int64  // days since 1970-01-01 of date
	date []byte // "YYYY-MM-DD " of day; nil before the first timestamp
}

func (s *stamps) append(b []byte, t time.Time) []byte {
	sec := t.Unix()
	day, clock := sec/86400, sec%86400
	if clock < 0 {
		day, clock = day-1, clock+86400
	}
	if s.date == nil || day != s.day {
		n := len(b)
		b = nab.AppendTime(b, t)
		if len(b)-n != len(nab.TimeLayout) {
			s.date = nil // a year outside 0–9999, written in full
			return b
		}
		s.day, s.date = day, append(s.date[:0], b[n:n+len("2006-01-02 ")]...)
		return b
	}
	h, m, sc := clock/3600, clock/60%60, clock%60
	b = append(b, s.date...)
	return append(b, byte('0'+h/10), byte('0'+h%10), ':', byte('0'+m/10), byte('0'+m%10), ':', byte('0'+sc/10), byte('0'+sc%10))
}

// appendValue appends v as strconv.AppendFloat(b, v, 'f', -1, 64) does.
// Most of NAB's values are whole numbers, and the shortest form of a whole
// number below 2⁵³ is its integer digits (no other decimal of as few
// digits lies within half a unit of it), which strconv.AppendInt writes
// several times faster. Negative zero is left to AppendFloat ("-0").
func appendValue(b []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 && !(v == 0 && math.Signbit(v)) {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// appendScore appends s as strconv.AppendFloat(b, s, 'g', -1, 64) does,
// writing scores of exactly 0 and 1 itself: spatial, for one, scores
// nearly every row 0.
func appendScore(b []byte, s float64) []byte {
	switch {
	case s == 1:
		return append(b, '1')
	case s == 0 && !math.Signbit(s):
		return append(b, '0')
	}
	return strconv.AppendFloat(b, s, 'g', -1, 64)
}

// printNAB prints one detector's scores as a table.
func printNAB(w io.Writer, r *nabEval, hints bool) {
	mode := "online (no hints)"
	if hints {
		mode = "with NAB's hints (file min/max, probation)"
	}
	fmt.Fprintf(w, "%s — %s: %d points in %s (%.0f ns/point); results in %s\n",
		r.detector, mode, r.rows, r.elapsed.Round(time.Millisecond), float64(r.elapsed.Nanoseconds())/float64(max(r.rows, 1)), r.dir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "profile\toptimised threshold\tscore\twindows hit\tFP points\t\tconfigured threshold\tscore\twindows hit\tFP points\t")
	for i := range r.optimised {
		o, a := r.optimised[i], r.at[i]
		oc, ac := r.counts(o.Threshold), r.counts(a.Threshold)
		fmt.Fprintf(tw, "%s\t%.6g\t%.2f\t%d/%d\t%d\t\t%.6g\t%.2f\t%d/%d\t%d\t\n",
			o.Profile.Name, o.Threshold, o.Normalized, oc.hit, oc.windows, oc.fp,
			a.Threshold, a.Normalized, ac.hit, ac.windows, ac.fp)
	}
	tw.Flush()
	fmt.Fprintln(w)
}
