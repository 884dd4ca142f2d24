package detect_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch/detect"
)

const cadVariantsGolden = "testdata/cad_variants.golden"

// cadVariants are CAD OSE parameter sets away from the defaults, each
// reaching code that the NAB corpus under the defaults does not: sensor
// facts of other widths (the per-value activation tables cover up to
// three bits, the table-driven subset numbering up to four), more left
// facts than fit a 64-bit position mask, a context cap that binds, no rest
// period, and a short history.
var cadVariants = []struct {
	name string
	set  func(*detect.CADParams)
}{
	{"defaults", func(*detect.CADParams) {}},
	{"bits1", func(p *detect.CADParams) { p.Bits = 1 }},
	{"bits2", func(p *detect.CADParams) { p.Bits = 2 }},
	{"bits4", func(p *detect.CADParams) { p.Bits = 4 }},
	{"bits5", func(p *detect.CADParams) { p.Bits = 5 }},
	{"neurons70", func(p *detect.CADParams) { p.MaxActiveNeurons = 70 }},
	{"maxleft3", func(p *detect.CADParams) { p.MaxLeftSemiContexts = 3 }},
	{"maxcontexts300", func(p *detect.CADParams) { p.MaxContexts = 300 }},
	{"rest0", func(p *detect.CADParams) { p.RestPeriod = 0 }},
	{"history300", func(p *detect.CADParams) { p.History, p.Learn, p.Tolerance = 300, 60, 0.05 }},
}

// cadVariantStreams are the synthetic streams the variants score: the
// point tests' streams, a rising ramp that keeps widening the range
// (rebuilds without hints), and uniform noise, which makes contexts fast.
func cadVariantStreams() map[string][]float64 {
	streams := map[string][]float64{}
	for _, anomaly := range []string{"spike", "level shift", "variance change"} {
		streams[anomaly] = pointStream(7, anomaly)
	}
	ramp := make([]float64, pointLen)
	noise := make([]float64, pointLen)
	rng := rand.New(rand.NewPCG(11, 0xcad))
	for i := range ramp {
		ramp[i] = float64(i)*0.05 + 3*math.Sin(float64(i)/7) + rng.NormFloat64()
		noise[i] = rng.Float64() * 100
	}
	streams["ramp"], streams["noise"] = ramp, noise
	return streams
}

// cadVariantDigest scores every stream, online and with hints, and
// returns the SHA-256 of the scores' bits.
func cadVariantDigest(t *testing.T, set func(*detect.CADParams)) string {
	streams := cadVariantStreams()
	h := sha256.New()
	var b [8]byte
	for _, name := range slices.Sorted(maps.Keys(streams)) {
		vals := streams[name]
		for _, hints := range []bool{false, true} {
			p := detect.DefaultPointParams()
			p.CAD.RestPeriod = 30 // the reference's default, which the golden digests were written with
			set(&p.CAD)
			if hints {
				p.Hints = detect.Hints{Min: slices.Min(vals), Max: slices.Max(vals), HasRange: true, Learn: int(0.15 * float64(len(vals)))}
			}
			d, err := detect.NewPointDetector("cad_ose", p)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(h, "%s %v\n", name, hints)
			for i, v := range vals {
				s := d.Observe(pointStart.Add(time.Duration(i)*time.Minute), v)
				binary.LittleEndian.PutUint64(b[:], math.Float64bits(s))
				h.Write(b[:])
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestCADOSEVariantsUnchanged checks that CAD OSE under parameter sets
// away from the defaults scores synthetic streams bit for bit as the
// implementation did when testdata/cad_variants.golden was written (the
// straightforward port before it was made fast): the fast paths must
// agree with the general ones they stand in for. -update rewrites the
// file.
func TestCADOSEVariantsUnchanged(t *testing.T) {
	want := map[string]string{}
	if !*update {
		data, err := os.ReadFile(cadVariantsGolden)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(line, "#") {
				want[f[0]] = f[1]
			}
		}
	}
	var sb strings.Builder
	sb.WriteString("# SHA-256 of CAD OSE's scores of cadVariantStreams, per parameter set; see TestCADOSEVariantsUnchanged.\n")
	for _, v := range cadVariants {
		got := cadVariantDigest(t, v.set)
		fmt.Fprintf(&sb, "%s %s\n", v.name, got)
		if !*update && got != want[v.name] {
			t.Errorf("%s: scores changed: digest %s, golden %q", v.name, got, want[v.name])
		}
	}
	if *update {
		if err := os.WriteFile(cadVariantsGolden, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
