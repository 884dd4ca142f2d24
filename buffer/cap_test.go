package buffer_test

import (
	"strings"
	"testing"

	"github.com/emberwatch/emberwatch/buffer"
)

func TestCapEvictsSummariesFirst(t *testing.T) {
	const max = 4
	o := openAt(t, tempPath(t), max)
	check := func(step string, wantEvicted [2]uint64) {
		t.Helper()
		st := o.Stats()
		if n := o.Len(); n > max {
			t.Fatalf("%s: Len = %d, above MaxRecords %d", step, n, max)
		}
		if st.Evicted != wantEvicted {
			t.Errorf("%s: Stats.Evicted = %v, want %v", step, st.Evicted, wantEvicted)
		}
	}
	mustAppend(t, o, summary("s"), summary("s"), summary("s"))
	a := mustAppend(t, o, alert("a"))
	check("at the cap", [2]uint64{0, 0})

	a = append(a, mustAppend(t, o, alert("a"))...) // evicts s[0]
	check("one over", [2]uint64{0, 1})
	a = append(a, mustAppend(t, o, alert("a"), alert("a"))...) // evicts s[1], s[2]
	check("summaries gone", [2]uint64{0, 3})
	a = append(a, mustAppend(t, o, alert("a"))...) // only alerts left: evicts a[0]
	check("alerts evicted", [2]uint64{1, 3})
	if o.Len() != max {
		t.Errorf("Len = %d, want %d", o.Len(), max)
	}
	wantSeqs(t, takeNow(t, o, 10), a[1:]...)

	// A new summary past the cap is itself the oldest of the lowest class.
	mustAppend(t, o, summary("s"))
	check("summary over a full queue of alerts", [2]uint64{1, 4})
	if st := o.Stats(); st.Backlog != [2]int{4, 0} {
		t.Errorf("Backlog = %v, want [4 0]", st.Backlog)
	}
}

func TestCapWithinOneBatch(t *testing.T) {
	const max = 3
	o := openAt(t, tempPath(t), max)
	seqs := mustAppend(t, o, summary("s"), alert("a"), summary("s"), summary("s"), alert("a"), summary("s"))
	if o.Len() != max {
		t.Fatalf("Len = %d, want %d", o.Len(), max)
	}
	if st := o.Stats(); st.Evicted != [2]uint64{0, 3} || st.Appended != 6 {
		t.Errorf("Stats = %+v, want Evicted [0 3], Appended 6", st)
	}
	// The two alerts and the newest summary survive.
	wantSeqs(t, takeNow(t, o, 10), seqs[1], seqs[4], seqs[5])
}

func TestCapEvictsTakenRecords(t *testing.T) {
	o := openAt(t, tempPath(t), 2)
	s := mustAppend(t, o, summary("s"), summary("s"))
	wantSeqs(t, takeNow(t, o, 1), s[0])
	a := mustAppend(t, o, alert("a"))[0] // evicts the taken s[0]
	// Acking an evicted record counts nothing.
	if err := o.Ack([]uint64{s[0]}); err != nil {
		t.Fatal(err)
	}
	st := o.Stats()
	if st.Acked != 0 || st.Evicted != [2]uint64{0, 1} || o.Len() != 2 {
		t.Errorf("Stats = %+v, Len = %d; want Acked 0, Evicted [0 1], Len 2", st, o.Len())
	}
	wantSeqs(t, takeNow(t, o, 10), a, s[1])
}

func TestCapSurvivesReopen(t *testing.T) {
	path := tempPath(t)
	o := openAt(t, path, 3)
	mustAppend(t, o, summary("s"), summary("s"), summary("s"))
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o = openAt(t, path, 3)
	a := mustAppend(t, o, alert("a"))[0]
	if o.Len() != 3 || o.Stats().Evicted != [2]uint64{0, 1} {
		t.Fatalf("after reopen at the cap: Len %d, Evicted %v; want 3, [0 1]", o.Len(), o.Stats().Evicted)
	}
	if got := takeNow(t, o, 1); got[0].Seq != a {
		t.Errorf("first taken = %d, want the alert %d", got[0].Seq, a)
	}
}

func TestConfig(t *testing.T) {
	c := buffer.Config{Path: "x.db"}
	c.Normalize()
	if c.MaxRecords != 1_000_000 {
		t.Errorf("default MaxRecords = %d, want 1000000", c.MaxRecords)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate of the defaults: %v", err)
	}
	c = buffer.Config{Path: "x.db", MaxRecords: 7}
	c.Normalize()
	if c.MaxRecords != 7 {
		t.Errorf("Normalize changed MaxRecords 7 to %d", c.MaxRecords)
	}
	for _, tc := range []struct {
		cfg   buffer.Config
		field string
	}{
		{buffer.Config{MaxRecords: 1}, "path: "},
		{buffer.Config{Path: "x.db", MaxRecords: -1}, "max_records: "},
		{buffer.Config{Path: "x.db"}, "max_records: "}, // not normalised
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.field) {
			t.Errorf("Validate(%+v) = %v, want an error starting %q", tc.cfg, err, tc.field)
		}
	}
}

// TestOpenZeroMaxRecords: Config documents MaxRecords' zero value as
// "default 1,000,000", but Open takes the config as given. A caller that
// does not go through the configs package gets a cap of 0, and every record
// is evicted by the Append that stored it.
func TestOpenZeroMaxRecords(t *testing.T) {
	o, err := buffer.Open(buffer.Config{Path: tempPath(t)}, testLogger(t))
	if err != nil {
		return // refusing the config is an acceptable answer
	}
	defer o.Close()
	seqs := mustAppend(t, o, alert("a"))
	if o.Len() != 1 {
		t.Fatalf("Open with MaxRecords 0 (documented default 1,000,000): Append returned seq %v, then Len = %d, Evicted = %v; the record was evicted at once",
			seqs, o.Len(), o.Stats().Evicted)
	}
}
