package detect

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestEnsembleExplainNamesTheLeader runs the default ensemble beside its
// members on a noisy daily cycle with a spike and a level shift: at every
// point, the member Explain names must be one whose calibrated score is the
// ensemble's score.
func TestEnsembleExplainNamesTheLeader(t *testing.T) {
	p := DefaultPointParams()
	e, err := NewEnsemble(p)
	if err != nil {
		t.Fatal(err)
	}
	members := make([]PointDetector, len(p.Ensemble.Members))
	for i, name := range p.Ensemble.Members {
		if members[i], err = newPoint(name, p, 1); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(9, 9))
	start := time.Date(2026, 7, 15, 0, 0, 0, 0, time.UTC)
	led := map[string]int{}
	for i := range 3000 {
		v := 20 + 5*math.Sin(2*math.Pi*float64(i)/288) + 0.5*rng.NormFloat64()
		switch {
		case i == 2000:
			v += 30
		case i > 2500:
			v += 15
		}
		at := start.Add(time.Duration(i) * 5 * time.Minute)
		got := e.Observe(at, v)
		byName := map[string]float64{}
		for k, m := range members {
			byName[p.Ensemble.Members[k]] = calibrate(m.Observe(at, v), e.thresholds[k])
		}
		why := e.Explain()
		name := why[len("led by "):]
		if s, ok := byName[name]; !ok || s != got {
			t.Fatalf("point %d: ensemble %v, %q, members %v", i, got, why, byName)
		}
		if got >= 0.5 {
			led[name]++
		}
	}
	if len(led) == 0 {
		t.Fatal("the ensemble never reached its threshold on the planted anomalies")
	}
	t.Logf("points at or above 0.5, by leading member: %v", led)
}
