package nab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoResults is returned by ReadResults when the detector's directory
// holds no results files.
var ErrNoResults = errors.New("nab: no results files")

// ReadResults reads a detector's NAB results files,
// dir/detector/category/detector_file.csv, into anomaly scores keyed like
// File.Key ("category/file.csv"). Only the anomaly_score column is used, so
// both the two-column files NAB publishes (timestamp,anomaly_score) and the
// files its runner writes (timestamp,value,anomaly_score,label,…) are
// accepted. Files directly under dir/detector, such as the per-profile
// *_scores.csv tables, are skipped, as are files without the detector_
// prefix.
func ReadResults(dir, detector string) (map[string][]float64, error) {
	root := filepath.Join(dir, detector)
	cats, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	prefix := detector + "_"
	out := make(map[string][]float64)
	for _, cat := range cats {
		if !cat.IsDir() {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(root, cat.Name()))
		if err != nil {
			return nil, fmt.Errorf("read results: %w", err)
		}
		for _, e := range ents {
			name := e.Name()
			if e.IsDir() || !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ".csv") {
				continue
			}
			var scores []float64
			err := readCSV(filepath.Join(root, cat.Name(), name), nil, []string{"anomaly_score"}, func(_ int, rec []string, idx []int) error {
				v, err := parseFloat(rec[idx[0]])
				if err != nil {
					return err
				}
				scores = append(scores, v)
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("read results: %w", err)
			}
			out[cat.Name()+"/"+strings.TrimPrefix(name, prefix)] = scores
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("read results %s: %w", root, ErrNoResults)
	}
	return out, nil
}
