package windowing_test

import (
	"strings"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/windowing"
)

func TestDeriver(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	rd := func(series string, s int, v float64) emberwatch.Reading {
		return emberwatch.Reading{Series: series, Time: at(s), Value: v}
	}
	tests := []struct {
		name string
		cfg  windowing.DerivedConfig
		in   []emberwatch.Reading
		want []emberwatch.Reading
	}{
		{
			name: "difference of readings at the same time, once per pair",
			cfg:  windowing.DerivedConfig{Name: "spread", Op: "difference", Of: []string{"in", "out"}},
			in:   []emberwatch.Reading{rd("in", 0, 21), rd("out", 0, 5), rd("in", 10, 22), rd("other", 10, 1), rd("out", 10, 4), rd("out", 20, 3)},
			want: []emberwatch.Reading{rd("spread", 0, 16), rd("spread", 10, 18)},
		},
		{
			name: "tolerance pairs nearby readings at the later time",
			cfg:  windowing.DerivedConfig{Name: "r", Op: "ratio", Of: []string{"a", "b"}, Tolerance: 2 * time.Second},
			in:   []emberwatch.Reading{rd("a", 0, 10), rd("b", 1, 4), rd("b", 5, 5), rd("a", 9, 20)},
			want: []emberwatch.Reading{rd("r", 1, 2.5)},
		},
		{
			name: "a ratio by zero is not emitted",
			cfg:  windowing.DerivedConfig{Name: "r", Op: "ratio", Of: []string{"a", "b"}},
			in:   []emberwatch.Reading{rd("a", 0, 1), rd("b", 0, 0), rd("a", 1, 1), rd("b", 1, 2)},
			want: []emberwatch.Reading{rd("r", 1, 0.5)},
		},
		{
			name: "an older reading pairs with nothing",
			cfg:  windowing.DerivedConfig{Name: "s", Op: "sum", Of: []string{"a", "b"}},
			in:   []emberwatch.Reading{rd("a", 10, 1), rd("b", 10, 2), rd("a", 5, 7), rd("b", 5, 7)},
			want: []emberwatch.Reading{rd("s", 10, 3)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			d := windowing.NewDeriver([]windowing.DerivedConfig{tt.cfg})
			var got []emberwatch.Reading
			for _, r := range tt.in {
				got = d.Add(r, got)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i].Series != tt.want[i].Series || !got[i].Time.Equal(tt.want[i].Time) || got[i].Value != tt.want[i].Value {
					t.Errorf("reading %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestDerivedConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg  windowing.DerivedConfig
		want string
	}{
		{windowing.DerivedConfig{Op: "sum", Of: []string{"a", "b"}}, "name: required"},
		{windowing.DerivedConfig{Name: "x", Op: "minus", Of: []string{"a", "b"}}, "op: unknown operation"},
		{windowing.DerivedConfig{Name: "x", Op: "sum", Of: []string{"a"}}, "of: want two series"},
		{windowing.DerivedConfig{Name: "x", Op: "sum", Of: []string{"a", "a"}}, "of: want two different series"},
		{windowing.DerivedConfig{Name: "a", Op: "sum", Of: []string{"a", "b"}}, `name: "a" is also an input`},
		{windowing.DerivedConfig{Name: "x", Op: "sum", Of: []string{"a", "b"}, Tolerance: -1}, "tolerance: must be >= 0"},
	} {
		if err := tt.cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%+v: Validate() = %v, want %q...", tt.cfg, err, tt.want)
		}
	}
}
