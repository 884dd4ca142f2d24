package detect_test

import (
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/emberwatch/emberwatch/detect"
	"github.com/emberwatch/emberwatch/internal/nab"
)

// nabDir is the NAB corpus shared beside the repository; the benchmarks
// and TestNABScoresUnchanged skip without it.
const nabDir = "../../shared/data/nab"

var nabCorpus = sync.OnceValues(func() (*nab.Corpus, error) { return nab.LoadCorpus(nabDir) })

// loadNAB returns the shared NAB corpus or skips tb.
func loadNAB(tb testing.TB) *nab.Corpus {
	tb.Helper()
	c, err := nabCorpus()
	if err != nil {
		tb.Skipf("NAB corpus: %v", err)
	}
	return c
}

// nabDetectors are the detectors `agent eval nab --detector all` runs:
// every registered one, and the likelihood of each but the ensemble and
// spatial.
func nabDetectors() []string {
	names := detect.PointDetectorNames()
	for _, n := range detect.PointDetectorNames() {
		if n != "ensemble" && n != "spatial" {
			names = append(names, detect.LikelihoodPrefix+n)
		}
	}
	return names
}

// nabModes are the two settings of `agent eval nab`: online, and with
// the hints NAB's runner gives its detectors (--hints).
var nabModes = []string{"online", "hints"}

// nabParams returns the parameters `agent eval nab` gives the detectors
// for f: the defaults and, in mode "hints", the file's min, max and
// probationary length ⌊0.15·rows⌋, as NAB's runner gives them.
func nabParams(f *nab.File, mode string) detect.PointParams {
	p := detect.DefaultPointParams()
	if mode == "hints" {
		p.Hints = detect.Hints{
			Min: slices.Min(f.Values), Max: slices.Max(f.Values), HasRange: true,
			Learn: int(math.Floor(0.15 * float64(f.Len()))),
		}
	}
	return p
}

// BenchmarkNAB runs each detector over the whole NAB corpus (365,558
// points, fresh state per file, each detector recycled after its file as
// `agent eval nab` recycles them, no I/O) once per iteration, online and
// with hints, and reports the time per corpus (ns/op), the process's CPU
// time per corpus (cpu-s/op, user and system, GC included, on Unix) and
// the time per point. Select one with -bench='NAB/^cad_ose$/online$'
// (each level of the name is matched on its own, so an unanchored
// cad_ose matches likelihood:cad_ose too).
func BenchmarkNAB(b *testing.B) {
	c := loadNAB(b)
	for _, name := range nabDetectors() {
		for _, mode := range nabModes {
			b.Run(name+"/"+mode, func(b *testing.B) {
				params := make([]detect.PointParams, len(c.Files))
				for i, f := range c.Files {
					params[i] = nabParams(f, mode)
				}
				b.ReportAllocs()
				sink := 0.0
				cpu0, cpuOK := processCPU()
				for b.Loop() {
					for i, f := range c.Files {
						d, err := detect.NewPointDetector(name, params[i])
						if err != nil {
							b.Fatal(err)
						}
						for j, t := range f.Timestamps {
							sink += d.Observe(t, f.Values[j])
						}
						detect.Recycle(d)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(c.Rows()), "ns/point")
				if cpu1, ok := processCPU(); ok && cpuOK {
					b.ReportMetric((cpu1-cpu0).Seconds()/float64(b.N), "cpu-s/op")
				}
				_ = sink
			})
		}
	}
}
