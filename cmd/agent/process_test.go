package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
	"github.com/emberwatch/emberwatch/configs"
)

// TestSummaryBatching checks both bounds of a summaries batch: at most
// max_batch summaries, and window ends at most max_delay apart.
func TestSummaryBatching(t *testing.T) {
	for _, tc := range []struct {
		name     string
		batch    int
		delay    time.Duration
		want     []int // summaries per message
		wantEnds []int // minutes of each message's event_time
	}{
		// Three series, windows ending every minute for 5 minutes.
		{"by time", 100, 2 * time.Minute, []int{9, 6}, []int{3, 5}},
		{"by size", 4, time.Hour, []int{4, 4, 4, 3}, []int{2, 3, 4, 5}},
		{"each window end alone", 100, 0, []int{3, 3, 3, 3, 3}, []int{1, 2, 3, 4, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := configs.Parse(configs.Demo())
			if err != nil {
				t.Fatal(err)
			}
			cfg.Summaries = configs.SummariesConfig{MaxBatch: tc.batch, MaxDelay: tc.delay}
			box, err := buffer.Open(buffer.Config{Path: filepath.Join(t.TempDir(), "o.db"), MaxRecords: 1000}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer box.Close()
			p, err := newProcessor(cfg, box, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for m := 1; m <= 5; m++ {
				p.feats = p.feats[:0]
				for _, s := range []string{"humidity", "smoke", "temperature"} {
					end := t0.Add(time.Duration(m) * time.Minute)
					p.feats = append(p.feats, emberwatch.Features{Series: s, Start: end.Add(-10 * time.Minute), End: end, Count: 60})
				}
				p.score()
				p.commit()
			}
			if err := p.finish(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			msgs, err := box.Take(ctx, 100)
			if err != nil && err != context.Canceled {
				t.Fatal(err)
			}
			var got, ends []int
			for _, m := range msgs {
				if m.Topic != cfg.Topics().Summaries {
					continue
				}
				var s summaryMessage
				if err := json.Unmarshal(m.Payload, &s); err != nil {
					t.Fatal(err)
				}
				if s.Seq != m.Seq {
					t.Fatalf("payload seq %d, record seq %d", s.Seq, m.Seq)
				}
				got = append(got, len(s.Summaries))
				ends = append(ends, int(s.EventTime.Sub(t0)/time.Minute))
			}
			if !slices.Equal(got, tc.want) || !slices.Equal(ends, tc.wantEnds) {
				t.Fatalf("messages of %v summaries ending at minutes %v; want %v ending at %v", got, ends, tc.want, tc.wantEnds)
			}
		})
	}
}
