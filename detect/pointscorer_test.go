package detect_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/detect"
)

// TestPointScorerInEngine runs the NAB-measured detectors as configured
// detectors: the engine must score each window's feature exactly as the
// point detector scores the same series, report the range seen before as
// the expected range, and raise an alert for each planted anomaly.
func TestPointScorerInEngine(t *testing.T) {
	for _, name := range []string{"ensemble", "cad_ose", "spatial"} {
		for _, anomaly := range []string{"spike", "level shift"} {
			t.Run(name+"/"+anomaly, func(t *testing.T) {
				cfg := detectorConfig(t, detect.TypePoint, func(c *detect.DetectorConfig) {
					c.Name, c.Point, c.Feature = "nab", name, "last"
				})
				want, err := detect.PointThreshold(name, detect.PointParams{})
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Threshold != want {
					t.Fatalf("default threshold %v, want the point detector's %v", cfg.Threshold, want)
				}
				e, err := detect.NewEngine([]detect.DetectorConfig{cfg}, nil, detect.AlertConfig{Debounce: 1, Hysteresis: 0.1})
				if err != nil {
					t.Fatal(err)
				}
				direct, err := detect.NewPointDetector(name, detect.DefaultPointParams())
				if err != nil {
					t.Fatal(err)
				}
				fs := windows(pointStream(3, anomaly))
				var raise *emberwatch.Alert
				for i := range fs {
					alerts := e.Observe(&fs[i], nil)
					score := direct.Observe(fs[i].End, fs[i].Last)
					for _, a := range alerts {
						if a.Score != score {
							t.Fatalf("window %d: the engine scores %v, the point detector %v", i, a.Score, score)
						}
						seen := []float64{}
						for _, f := range fs[:i] {
							seen = append(seen, f.Last)
						}
						if a.Expected != [2]float64{slices.Min(seen), slices.Max(seen)} {
							t.Fatalf("window %d: expected range %v, want the range seen before", i, a.Expected)
						}
						if a.State == emberwatch.AlertRaised && i >= pointChange && raise == nil {
							raise = &a
						}
					}
				}
				if raise == nil || raise.EventTime.After(fs[pointChange+1].End) {
					t.Fatalf("no alert within two windows of the %s: %+v", anomaly, raise)
				}
				if raise.Detector != "nab" || raise.Feature != "last" || !strings.Contains(raise.Message, "nab last=") {
					t.Errorf("alert does not explain itself: %+v", *raise)
				}
				// Only the ensemble says which of its members gave the score.
				if led := strings.Contains(raise.Message, "; led by "); led != (name == "ensemble") {
					t.Errorf("%s: message %q", name, raise.Message)
				}
			})
		}
	}
}

func TestPointDetectorConfigErrors(t *testing.T) {
	for _, c := range []struct {
		typ, point, want string
	}{
		{detect.TypePoint, "", `point: required for type point (known: cad_ose, cusum, discord, ensemble`},
		{detect.TypePoint, "crystal_ball", `point: detect: unknown point detector "crystal_ball"`},
		{detect.TypePoint, "likelihood:ensemble", `point: point detector "ensemble": an ensemble cannot contain an ensemble`},
		{detect.TypeRobustZ, "ensemble", "point: only for type point, not robust_zscore"},
	} {
		cfg := detect.DetectorConfig{Series: "x", Type: c.typ, Point: c.point}
		cfg.Normalize()
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("type %s, point %q: error %v, want it to start %q", c.typ, c.point, err, c.want)
		}
		if c.point == "crystal_ball" && !errors.Is(err, detect.ErrUnknownPointDetector) {
			t.Errorf("unknown point detector: %v does not wrap ErrUnknownPointDetector", err)
		}
	}
}
