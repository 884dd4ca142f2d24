package windowing_test

import (
	"fmt"
	"time"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/windowing"
)

func ExampleWindower() {
	w := windowing.New([]windowing.Config{{Series: "*", Size: time.Minute, Hop: time.Minute, Lateness: 10 * time.Second}})
	start := time.Date(2026, 7, 15, 6, 0, 0, 0, time.UTC)
	var out []emberwatch.Features
	for _, r := range []struct {
		at    time.Duration
		value float64
	}{{5 * time.Second, 20}, {65 * time.Second, 23}, {55 * time.Second, 22}, {71 * time.Second, 24}} {
		var err error
		out, err = w.Add(emberwatch.Reading{Series: "temperature", Time: start.Add(r.at), Value: r.value}, out)
		if err != nil {
			fmt.Println(err)
		}
	}
	out = w.Flush(out)
	for _, f := range out {
		fmt.Printf("%s [%s, %s) count=%d mean=%.1f delta=%.1f\n",
			f.Series, f.Start.Format("15:04:05"), f.End.Format("15:04:05"), f.Count, f.Mean, f.Delta)
	}
	// Output:
	// temperature [06:00:00, 06:01:00) count=2 mean=21.0 delta=2.0
	// temperature [06:01:00, 06:02:00) count=2 mean=23.5 delta=1.0
}
