package windowing

import (
	"errors"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/emberwatch/emberwatch"
)

// Rejection reasons returned by Windower.Add. Each is counted in Stats.
var (
	// ErrInvalidValue is returned for a NaN or infinite value.
	ErrInvalidValue = errors.New("windowing: value is NaN or infinite")
	// ErrLate is returned for a reading older than its series' watermark.
	ErrLate = errors.New("windowing: reading later than allowed lateness")
	// ErrNoWindow is returned for a series that no window spec matches.
	ErrNoWindow = errors.New("windowing: no window spec matches series")
)

// Stats counts what a Windower accepted and rejected.
type Stats struct {
	Accepted uint64
	Invalid  uint64
	Late     uint64
	NoWindow uint64
	Emitted  uint64
}

// Windower holds the window state of every series it has seen. It is not safe
// for concurrent use; the pipeline gives it one goroutine.
type Windower struct {
	specs  []Config
	series map[string]*seriesState
	stats  Stats
}

type seriesState struct {
	spec    *Config
	buf     []emberwatch.Reading // sorted by time; holds the open windows
	maxT    time.Time
	nextEnd time.Time // end of the next window to emit
}

// New returns a Windower for the given specs, which must have passed
// Validate. A series uses the first spec that matches its name.
func New(specs []Config) *Windower {
	return &Windower{specs: slices.Clone(specs), series: map[string]*seriesState{}}
}

// Stats returns the counters so far.
func (w *Windower) Stats() Stats { return w.stats }

// Add folds r into its series' windows and appends to dst the features of
// every window that the new watermark closed, in time order. A rejected
// reading leaves all state unchanged and returns one of the errors above.
func (w *Windower) Add(r emberwatch.Reading, dst []emberwatch.Features) ([]emberwatch.Features, error) {
	if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
		w.stats.Invalid++
		return dst, ErrInvalidValue
	}
	s, err := w.state(r.Series)
	if err != nil {
		w.stats.NoWindow++
		return dst, err
	}
	if s.nextEnd.IsZero() {
		s.nextEnd = alignUp(r.Time, s.spec.Hop)
		s.maxT = r.Time
	}
	// Too late: behind the watermark, or before every window still open.
	if r.Time.Before(s.maxT.Add(-s.spec.Lateness)) || r.Time.Before(s.nextEnd.Add(-s.spec.Size)) {
		w.stats.Late++
		return dst, ErrLate
	}
	w.stats.Accepted++
	insertSorted(&s.buf, r)
	if r.Time.After(s.maxT) {
		s.maxT = r.Time
	}
	return w.emit(s, r.Series, s.maxT.Add(-s.spec.Lateness), dst), nil
}

// Flush emits every window that holds data up to the latest reading of each
// series, as if the watermark had jumped past it. Replay calls it at the end
// of a recording; the live agent at shutdown.
func (w *Windower) Flush(dst []emberwatch.Features) []emberwatch.Features {
	names := make([]string, 0, len(w.series))
	for n := range w.series {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		s := w.series[n]
		dst = w.emit(s, n, alignUp(s.maxT, s.spec.Hop), dst)
	}
	return dst
}

func (w *Windower) state(name string) (*seriesState, error) {
	if s, ok := w.series[name]; ok {
		return s, nil
	}
	for i := range w.specs {
		if w.specs[i].matches(name) {
			s := &seriesState{spec: &w.specs[i]}
			w.series[name] = s
			return s, nil
		}
	}
	return nil, ErrNoWindow
}

// emit closes every window of s that ends at or before watermark.
func (w *Windower) emit(s *seriesState, name string, watermark time.Time, dst []emberwatch.Features) []emberwatch.Features {
	for !s.nextEnd.After(watermark) {
		end := s.nextEnd
		start := end.Add(-s.spec.Size)
		lo := sort.Search(len(s.buf), func(i int) bool { return !s.buf[i].Time.Before(start) })
		hi := sort.Search(len(s.buf), func(i int) bool { return !s.buf[i].Time.Before(end) })
		if hi > lo {
			dst = append(dst, aggregate(name, start, end, s.buf[lo:hi]))
			w.stats.Emitted++
		}
		s.nextEnd = end.Add(s.spec.Hop)
		// Readings before the next window's start are needed by no open window.
		keepFrom := s.nextEnd.Add(-s.spec.Size)
		drop := sort.Search(len(s.buf), func(i int) bool { return !s.buf[i].Time.Before(keepFrom) })
		if drop > 0 {
			s.buf = append(s.buf[:0], s.buf[drop:]...)
		}
	}
	return dst
}

// aggregate computes the features of rs, which is sorted by time and not empty.
func aggregate(series string, start, end time.Time, rs []emberwatch.Reading) emberwatch.Features {
	f := emberwatch.Features{
		Series: series, Start: start, End: end,
		Count: len(rs),
		Min:   math.Inf(1), Max: math.Inf(-1),
		First: rs[0].Value, Last: rs[len(rs)-1].Value,
	}
	// Welford's update keeps the variance exact for values far from zero.
	var mean, m2 float64
	for i, r := range rs {
		f.Sum += r.Value
		f.Min = math.Min(f.Min, r.Value)
		f.Max = math.Max(f.Max, r.Value)
		d := r.Value - mean
		mean += d / float64(i+1)
		m2 += d * (r.Value - mean)
	}
	f.Mean = mean
	if len(rs) > 1 {
		f.Variance = m2 / float64(len(rs)-1)
	}
	f.Stddev = math.Sqrt(f.Variance)
	f.Delta = f.Last - f.First
	if dt := rs[len(rs)-1].Time.Sub(rs[0].Time).Seconds(); dt > 0 {
		f.Rate = f.Delta / dt
	}
	return f
}

func insertSorted(buf *[]emberwatch.Reading, r emberwatch.Reading) {
	b := *buf
	i := len(b)
	for i > 0 && b[i-1].Time.After(r.Time) {
		i--
	}
	*buf = slices.Insert(b, i, r)
}

// alignUp returns the first multiple of hop since the Unix epoch that is
// strictly after t: the end of the first window that can hold t.
func alignUp(t time.Time, hop time.Duration) time.Time {
	ns := t.UnixNano()
	h := int64(hop)
	q := ns / h
	if ns < 0 && ns%h != 0 {
		q--
	}
	return time.Unix(0, (q+1)*h).UTC()
}
