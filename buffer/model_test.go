package buffer_test

import (
	"cmp"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/rs/zerolog"
	"pgregory.net/rapid"

	"github.com/emberwatch/emberwatch"
	"github.com/emberwatch/emberwatch/buffer"
)

// model is a naive outbox: a slice of records and a counter.
type model struct {
	max      int
	last     uint64
	recs     []modelRec // in seq order
	appended uint64     // counters since the last open
	acked    uint64
	evicted  [2]uint64
}

type modelRec struct {
	seq   uint64
	class emberwatch.Class
	taken bool
}

func (m *model) append(classes []emberwatch.Class) []uint64 {
	var seqs []uint64
	for _, c := range classes {
		m.last++
		m.recs = append(m.recs, modelRec{seq: m.last, class: c})
		seqs = append(seqs, m.last)
	}
	m.appended += uint64(len(classes))
	for len(m.recs) > m.max {
		i := slices.IndexFunc(m.recs, func(r modelRec) bool { return r.class == emberwatch.ClassSummary })
		if i < 0 {
			i = 0 // no summaries: the oldest alert
		}
		m.evicted[m.recs[i].class]++
		m.recs = slices.Delete(m.recs, i, i+1)
	}
	return seqs
}

// take returns the seqs Take should hand out: untaken, alerts first, oldest
// first, at most max.
func (m *model) take(max int) []uint64 {
	var avail []*modelRec
	for i := range m.recs {
		if !m.recs[i].taken {
			avail = append(avail, &m.recs[i])
		}
	}
	slices.SortStableFunc(avail, func(a, b *modelRec) int { return cmp.Compare(a.class, b.class) })
	var seqs []uint64
	for _, r := range avail[:min(max, len(avail))] {
		r.taken = true
		seqs = append(seqs, r.seq)
	}
	return seqs
}

func (m *model) ack(seqs []uint64) {
	for _, s := range seqs {
		if i := m.find(s); i >= 0 {
			m.recs = slices.Delete(m.recs, i, i+1)
			m.acked++
		}
	}
}

func (m *model) release(seqs []uint64) {
	for _, s := range seqs {
		if i := m.find(s); i >= 0 {
			m.recs[i].taken = false
		}
	}
}

func (m *model) reopen() {
	for i := range m.recs {
		m.recs[i].taken = false
	}
	m.appended, m.acked, m.evicted = 0, 0, [2]uint64{}
}

func (m *model) find(seq uint64) int {
	return slices.IndexFunc(m.recs, func(r modelRec) bool { return r.seq == seq })
}

func (m *model) takenSeqs() []uint64 {
	var s []uint64
	for _, r := range m.recs {
		if r.taken {
			s = append(s, r.seq)
		}
	}
	return s
}

// TestOutboxMatchesModel drives the outbox and the naive model with the same
// random operations, closing and reopening the file now and then, and checks
// that they agree on every answer.
func TestOutboxMatchesModel(t *testing.T) {
	dir := t.TempDir()
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		path := filepath.Join(dir, strconv.Itoa(run), "outbox.db")
		defer os.RemoveAll(filepath.Dir(path))
		m := &model{max: rapid.IntRange(1, 6).Draw(rt, "max_records")}
		open := func() *buffer.Outbox {
			o, err := buffer.Open(buffer.Config{Path: path, MaxRecords: m.max}, zerolog.Nop())
			if err != nil {
				rt.Fatalf("Open: %v", err)
			}
			return o
		}
		o := open()
		defer func() { o.Close() }()
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		// someSeqs draws a few of the given seqs, and sometimes one that is
		// unknown or already gone.
		someSeqs := func(rt *rapid.T, from []uint64) []uint64 {
			var s []uint64
			if len(from) > 0 {
				s = rapid.SliceOfDistinct(rapid.SampledFrom(from), rapid.ID).Draw(rt, "seqs")
			}
			if rapid.Bool().Draw(rt, "stray") {
				s = append(s, rapid.Uint64Range(1, m.last+3).Draw(rt, "stray_seq"))
			}
			return s
		}

		rt.Repeat(map[string]func(*rapid.T){
			"append": func(rt *rapid.T) {
				classes := rapid.SliceOfN(rapid.SampledFrom([]emberwatch.Class{emberwatch.ClassAlert, emberwatch.ClassSummary}), 1, 4).Draw(rt, "classes")
				msgs := make([]buffer.Pending, len(classes))
				for i, c := range classes {
					msgs[i] = pending(c, "t")
				}
				got, err := o.Append(msgs...)
				if err != nil {
					rt.Fatalf("Append: %v", err)
				}
				if want := m.append(classes); !slices.Equal(got, want) {
					rt.Fatalf("Append returned %v, model %v", got, want)
				}
			},
			"take": func(rt *rapid.T) {
				max := rapid.IntRange(1, 5).Draw(rt, "max")
				msgs, err := o.Take(cancelled, max)
				want := m.take(max)
				if len(want) == 0 {
					if !errors.Is(err, context.Canceled) || len(msgs) != 0 {
						rt.Fatalf("Take with nothing takeable = %v, %v; want context.Canceled", seqsOf(msgs), err)
					}
					return
				}
				if err != nil {
					rt.Fatalf("Take: %v", err)
				}
				if got := seqsOf(msgs); !slices.Equal(got, want) {
					rt.Fatalf("Take(%d) = %v, model %v", max, got, want)
				}
				for _, msg := range msgs {
					if msg.Class != m.recs[m.find(msg.Seq)].class {
						rt.Fatalf("seq %d has class %v, model %v", msg.Seq, msg.Class, m.recs[m.find(msg.Seq)].class)
					}
				}
			},
			"ack": func(rt *rapid.T) {
				seqs := someSeqs(rt, m.takenSeqs())
				if err := o.Ack(seqs); err != nil {
					rt.Fatalf("Ack: %v", err)
				}
				m.ack(seqs)
			},
			"release": func(rt *rapid.T) {
				seqs := someSeqs(rt, m.takenSeqs())
				if err := o.Release(seqs); err != nil {
					rt.Fatalf("Release: %v", err)
				}
				m.release(seqs)
			},
			"reopen": func(rt *rapid.T) {
				if err := o.Close(); err != nil {
					rt.Fatalf("Close: %v", err)
				}
				o = open()
				m.reopen()
			},
			"": func(rt *rapid.T) {
				var backlog [2]int
				for _, r := range m.recs {
					backlog[r.class]++
				}
				st := o.Stats()
				if o.Len() != len(m.recs) || st.Backlog != backlog {
					rt.Fatalf("Len %d, Backlog %v; model %d, %v", o.Len(), st.Backlog, len(m.recs), backlog)
				}
				if st.Appended != m.appended || st.Acked != m.acked || st.Evicted != m.evicted || st.Corrupt != 0 {
					rt.Fatalf("Stats %+v; model Appended %d, Acked %d, Evicted %v", st, m.appended, m.acked, m.evicted)
				}
			},
		})
	})
}
