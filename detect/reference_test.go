package detect_test

import (
	"encoding/csv"
	"math"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch/detect"
)

// readFloatsCSV reads a CSV with a header into columns of floats.
func readFloatsCSV(t *testing.T, path string) [][]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	cols := make([][]float64, len(recs[0]))
	for _, rec := range recs[1:] {
		for j, s := range rec {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatal(err)
			}
			cols[j] = append(cols[j], v)
		}
	}
	return cols
}

// TestCADOSEMatchesReference compares the port with NAB's contextOSE
// algorithm run under CPython 2.7 (the interpreter NAB's published results
// came from) on a synthetic stream of 1,500 points: a daily-like cycle
// with noise, a spike at 900 and a raised level over 1100–1199. The
// reference was given the stream's min, max and a rest period of
// ⌊0.15·1500⌋/5, as NAB's runner gives them; its scores must be matched
// exactly.
func TestCADOSEMatchesReference(t *testing.T) {
	cols := readFloatsCSV(t, "testdata/cad_ose_reference.csv")
	vals, want := cols[0], cols[1]
	p := detect.DefaultPointParams()
	p.Hints = detect.Hints{Min: slices.Min(vals), Max: slices.Max(vals), HasRange: true, Learn: int(math.Floor(0.15 * float64(len(vals))))}
	got := observeAll(t, "cad_ose", p, vals)
	bad := 0
	for i := range want {
		if got[i] != want[i] {
			if bad++; bad <= 5 {
				t.Errorf("point %d (value %v): score %v, reference %v", i, vals[i], got[i], want[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d scores differ", bad, len(want))
	}
}

// replayScores is a PointDetector that returns prepared raw scores.
type replayScores struct {
	scores []float64
	i      int
}

func (r *replayScores) Observe(time.Time, float64) float64 {
	s := r.scores[r.i]
	r.i++
	return s
}

// TestLikelihoodMatchesReference compares Likelihood with nupic's
// AnomalyLikelihood (anomaly_likelihood.py, transcribed without numpy) fed
// the same 1,600 raw scores and values: noise, a burst of high scores, a
// run of zeros. The reference reports 1 − L for each point's (filtered)
// tail probability L, 0.5 while it learns; the port reports
// LikelihoodScore(ln L), 0 while it learns.
func TestLikelihoodMatchesReference(t *testing.T) {
	cols := readFloatsCSV(t, "testdata/likelihood_reference.csv")
	vals, raw, prob := cols[0], cols[1], cols[2]
	lp := detect.LikelihoodParams{LearningPeriod: 150, EstimationSamples: 150, HistoricWindow: 600, ReestimationPeriod: 100, AveragingWindow: 10}
	d := detect.NewLikelihood(&replayScores{scores: raw}, lp, detect.Hints{})
	for i, v := range vals {
		s := d.Observe(pointStart.Add(time.Duration(i)*time.Minute), v)
		if i < lp.LearningPeriod+lp.EstimationSamples {
			if s != 0 {
				t.Fatalf("point %d: score %v while learning", i, s)
			}
			continue
		}
		digits := s / (1 - s) // LikelihoodScore's inverse: −log10 L
		gotL := math.Pow(10, -digits)
		if wantL := 1 - prob[i]; math.Abs(gotL-wantL) > 1e-12+1e-9*wantL {
			t.Errorf("point %d: likelihood %.15g, reference %.15g", i, gotL, wantL)
		}
	}
}
