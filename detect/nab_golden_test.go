package detect_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/emberwatch/emberwatch/detect"
)

var update = flag.Bool("update", false, "rewrite testdata/nab_scores.golden from the detectors as they are")

const nabGolden = "testdata/nab_scores.golden"

// nabDigest runs the named detector over every file of the corpus, as
// `agent eval nab` does (recycling each detector after its file), and
// returns the SHA-256 of the file keys and the bits of every score, in
// corpus order.
func nabDigest(t *testing.T, name, mode string) string {
	c := loadNAB(t)
	h := sha256.New()
	var b [8]byte
	for _, f := range c.Files {
		d, err := detect.NewPointDetector(name, nabParams(f, mode))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s\n", f.Key)
		for i, ts := range f.Timestamps {
			binary.LittleEndian.PutUint64(b[:], math.Float64bits(d.Observe(ts, f.Values[i])))
			h.Write(b[:])
		}
		detect.Recycle(d)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// readNABGolden reads the golden digests, keyed "detector mode".
func readNABGolden(t *testing.T) map[string]string {
	f, err := os.Open(nabGolden)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 3 {
			t.Fatalf("%s: malformed line %q", nabGolden, line)
		}
		want[fs[0]+" "+fs[1]] = fs[2]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return want
}

// nabGoldenDetectors are the detectors whose scores of the NAB corpus
// testdata/nab_scores.golden holds: CAD OSE, as it scored before it was
// made fast (the likelihood wrapping it scores as it does if it does);
// discord, and the ensemble, whose scores are the NAB figures in
// docs/DETECTION.md, so that no change to any member moves them unseen;
// and the cheap statistical detectors. All of them score the same bits on
// amd64, arm64 and 386 (no product is fused into a sum, and they call no
// math function whose last bit depends on the architecture), so the test
// also passes under GOARCH=arm64 with -exec qemu-aarch64-static.
var nabGoldenDetectors = []string{"cad_ose", "discord", "ensemble", "cusum", "ewma", "page_hinkley", "robust_z"}

// TestNABScoresUnchanged checks that the golden detectors, online and with
// hints, score the NAB corpus bit for bit as they did when
// testdata/nab_scores.golden was written: speed-ups must not change a
// score. A change meant to alter scores rewrites the file with -update
// (go test ./detect -run=NABScoresUnchanged -update: the package comes
// first, or go test hands it to the test binary) and says why; the
// NAB scores in docs/DETECTION.md must then be measured again. It skips
// without the corpus, and in -short mode runs online only.
func TestNABScoresUnchanged(t *testing.T) {
	loadNAB(t)
	var want map[string]string
	if !*update {
		want = readNABGolden(t)
	}
	var mu sync.Mutex
	got := map[string]string{}
	t.Run("detectors", func(t *testing.T) {
		for _, name := range nabGoldenDetectors {
			for _, mode := range nabModes {
				if testing.Short() && mode != "online" {
					continue
				}
				t.Run(name+"/"+mode, func(t *testing.T) {
					t.Parallel()
					key := name + " " + mode
					d := nabDigest(t, name, mode)
					mu.Lock()
					got[key] = d
					mu.Unlock()
					if !*update && d != want[key] {
						t.Errorf("scores over the NAB corpus changed: digest %s, golden %q", d, want[key])
					}
				})
			}
		}
	})
	if !*update || t.Failed() {
		return
	}
	if testing.Short() {
		t.Fatal("-update needs both modes: run it without -short")
	}
	var sb strings.Builder
	sb.WriteString("# SHA-256 of every score (float64 bits) each golden detector gives the NAB corpus,\n")
	sb.WriteString("# file by file in corpus order, as `agent eval nab` runs it; see TestNABScoresUnchanged.\n")
	sb.WriteString("# detector mode digest\n")
	for _, name := range nabGoldenDetectors {
		for _, mode := range nabModes {
			fmt.Fprintf(&sb, "%s %s %s\n", name, mode, got[name+" "+mode])
		}
	}
	if err := os.WriteFile(nabGolden, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
