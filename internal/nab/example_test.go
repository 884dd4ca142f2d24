package nab_test

import (
	"fmt"
	"time"

	"github.com/emberwatch/emberwatch/internal/nab"
)

func ExampleScoreFile() {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ts := make([]time.Time, 40)
	for i := range ts {
		ts[i] = start.Add(time.Duration(i) * time.Minute)
	}
	// One label window over rows 20..29.
	f, err := nab.NewFile("demo/series.csv", ts, nil, [][2]time.Time{{ts[20], ts[29]}})
	if err != nil {
		panic(err)
	}
	scores := make([]float64, len(ts))
	scores[2] = 0.9  // probationary: ignored
	scores[25] = 0.9 // detected halfway into the window
	scores[27] = 0.7 // a later detection in the same window adds nothing
	scores[33] = 0.8 // a false positive shortly after the window
	p := nab.StandardProfiles()[0]
	r := nab.ScoreFile(f, scores, 0.5, p)
	fmt.Printf("probation %d rows, window rows %v\n", f.Probation, f.Windows)
	fmt.Printf("score %.4f: TP %d FP %d FN %d TN %d\n", r.Score, r.TP, r.FP, r.FN, r.TN)
	// Output:
	// probation 6 rows, window rows [{20 29}]
	// score 0.7713: TP 2 FP 1 FN 8 TN 23
}
