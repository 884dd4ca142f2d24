package windowing_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch/windowing"
)

func TestConfigNormalize(t *testing.T) {
	c := windowing.Config{Size: 5 * time.Minute}
	c.Normalize()
	if c.Series != "*" || c.Kind != windowing.KindSliding || c.Hop != 5*time.Minute ||
		c.LatePolicy != windowing.LateDrop || c.Time != windowing.TimeEvent ||
		c.MaxFuture != 24*time.Hour || c.HalfLife != 5*time.Minute/4 || c.MaxPoints != 10_000 {
		t.Errorf("Normalize() = %+v", c)
	}
	if !slices.Equal(c.Aggregates, []string{"count", "sum", "mean", "min", "max", "variance", "stddev", "first", "last", "delta", "rate"}) {
		t.Errorf("default aggregates = %v", c.Aggregates)
	}
	c = windowing.Config{Series: "temp*", Size: 5 * time.Minute, Hop: time.Minute, Lateness: time.Second, Aggregates: []string{"p90"}}
	c.Normalize()
	if c.Series != "temp*" || c.Hop != time.Minute || c.Lateness != time.Second || !slices.Equal(c.Aggregates, []string{"p90"}) {
		t.Errorf("Normalize() changed set fields: %+v", c)
	}
	c = windowing.Config{Kind: windowing.KindCount, Count: 60}
	c.Normalize()
	if c.Every != 60 {
		t.Errorf("count window Every = %d, want Count", c.Every)
	}
}

func TestConfigValidate(t *testing.T) {
	base := func(f func(*windowing.Config)) windowing.Config {
		c := windowing.Config{Size: time.Minute}
		c.Normalize()
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  windowing.Config
		want string // prefix of the error; "" for valid
	}{
		{"tumbling", base(func(c *windowing.Config) {}), ""},
		{"sliding", base(func(c *windowing.Config) { c.Size, c.Hop, c.Lateness = 10*time.Minute, time.Minute, time.Hour }), ""},
		{"pattern", base(func(c *windowing.Config) { c.Series, c.Hop = "room[0-9]/*", 30*time.Second }), ""},
		{"count", base(func(c *windowing.Config) { c.Kind, c.Count, c.Every = windowing.KindCount, 60, 10 }), ""},
		{"session", base(func(c *windowing.Config) { c.Kind, c.Gap = windowing.KindSession, time.Minute }), ""},
		{"quantiles", base(func(c *windowing.Config) { c.Aggregates = []string{"median", "mad", "p50", "p99.9", "ewma"} }), ""},
		{"zero size", base(func(c *windowing.Config) { c.Size = 0 }), "size: must be > 0"},
		{"negative size", base(func(c *windowing.Config) { c.Size = -time.Minute }), "size: must be > 0"},
		{"zero hop", base(func(c *windowing.Config) { c.Hop = 0 }), "hop: must be > 0"},
		{"hop exceeds size", base(func(c *windowing.Config) { c.Hop = 2 * time.Minute }), "hop: must not exceed size"},
		{"hop does not divide size", base(func(c *windowing.Config) { c.Hop = 25 * time.Second }), "hop: must divide size"},
		{"negative lateness", base(func(c *windowing.Config) { c.Lateness = -time.Nanosecond }), "lateness: must be >= 0"},
		{"bad pattern", base(func(c *windowing.Config) { c.Series = "room[" }), "series: bad pattern"},
		{"unknown kind", base(func(c *windowing.Config) { c.Kind = "hopping" }), "kind: unknown window kind"},
		{"count without count", base(func(c *windowing.Config) { c.Kind = windowing.KindCount }), "count: must be >= 1"},
		{"every not dividing count", base(func(c *windowing.Config) { c.Kind, c.Count, c.Every = windowing.KindCount, 10, 3 }), "every: must divide count"},
		{"session without gap", base(func(c *windowing.Config) { c.Kind = windowing.KindSession }), "gap: must be > 0"},
		{"late policy", base(func(c *windowing.Config) { c.LatePolicy = "keep" }), "late_policy: must be drop or update"},
		{"time mode", base(func(c *windowing.Config) { c.Time = "wall" }), "time: must be event or processing"},
		{"negative idle", base(func(c *windowing.Config) { c.IdleTimeout = -time.Second }), "idle_timeout: must be >= 0"},
		{"unknown aggregate", base(func(c *windowing.Config) { c.Aggregates = []string{"mean", "avg"} }), `aggregates[1]: unknown aggregate "avg"`},
		{"bad quantile", base(func(c *windowing.Config) { c.Aggregates = []string{"p101"} }), `aggregates[0]: unknown aggregate "p101"`},
		{"duplicate aggregate", base(func(c *windowing.Config) { c.Aggregates = []string{"mean", "mean"} }), `aggregates[1]: "mean" listed twice`},
		{"too many quantiles", base(func(c *windowing.Config) {
			c.Aggregates = []string{"p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"}
		}), "aggregates: at most 8 quantiles"},
		{"max points", base(func(c *windowing.Config) { c.MaxPoints = -1 }), "max_points: must be >= 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate() = nil, want %q...", tt.want)
			case tt.want != "" && !strings.HasPrefix(err.Error(), tt.want):
				t.Fatalf("Validate() = %q, want it to start with %q", err, tt.want)
			}
		})
	}
}
