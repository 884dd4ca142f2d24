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
// skip without it.
const nabDir = "../../shared/data/nab"

var nabCorpus = sync.OnceValues(func() (*nab.Corpus, error) { return nab.LoadCorpus(nabDir) })

// benchNAB runs the named detector over the whole NAB corpus (365,558
// points, fresh state per file) once per iteration and reports the time
// per corpus and per point. hints gives each detector what NAB's runner
// gives its own: the file's range and probationary length.
func benchNAB(b *testing.B, name string, hints bool) {
	c, err := nabCorpus()
	if err != nil {
		b.Skipf("NAB corpus: %v", err)
	}
	p := detect.DefaultPointParams()
	b.ReportAllocs()
	b.ResetTimer()
	sink := 0.0
	for b.Loop() {
		for _, f := range c.Files {
			if hints {
				p.Hints = detect.Hints{
					Min: slices.Min(f.Values), Max: slices.Max(f.Values), HasRange: true,
					Learn: int(math.Floor(0.15 * float64(f.Len()))),
				}
			}
			d, err := detect.NewPointDetector(name, p)
			if err != nil {
				b.Fatal(err)
			}
			for i, t := range f.Timestamps {
				sink += d.Observe(t, f.Values[i])
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(c.Rows()), "ns/point")
	_ = sink
}

func BenchmarkNABGaussian(b *testing.B)         { benchNAB(b, "gaussian", false) }
func BenchmarkNABRobustZ(b *testing.B)          { benchNAB(b, "robust_z", false) }
func BenchmarkNABEWMA(b *testing.B)             { benchNAB(b, "ewma", false) }
func BenchmarkNABCUSUM(b *testing.B)            { benchNAB(b, "cusum", false) }
func BenchmarkNABPageHinkley(b *testing.B)      { benchNAB(b, "page_hinkley", false) }
func BenchmarkNABSpatial(b *testing.B)          { benchNAB(b, "spatial", false) }
func BenchmarkNABHST(b *testing.B)              { benchNAB(b, "hst", false) }
func BenchmarkNABCADOSE(b *testing.B)           { benchNAB(b, "cad_ose", false) }
func BenchmarkNABCADOSEHints(b *testing.B)      { benchNAB(b, "cad_ose", true) }
func BenchmarkNABLikelihoodCADOSE(b *testing.B) { benchNAB(b, "likelihood:cad_ose", false) }
func BenchmarkNABEnsemble(b *testing.B)         { benchNAB(b, "ensemble", false) }

func BenchmarkNABLikelihoodGaussian(b *testing.B) { benchNAB(b, "likelihood:gaussian", false) }
func BenchmarkNABEnsembleHints(b *testing.B)      { benchNAB(b, "ensemble", true) }
