package windowing

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"time"

	"github.com/emberwatch/emberwatch"
)

// Rejection reasons returned by Windower.Add. Each is counted in Stats.
var (
	// ErrInvalidValue is returned for a NaN or infinite value.
	ErrInvalidValue = errors.New("windowing: value is NaN or infinite")
	// ErrBadTime is returned for a timestamp before the Unix epoch or
	// further ahead of its arrival than the spec's MaxFuture.
	ErrBadTime = errors.New("windowing: timestamp before 1970 or too far in the future")
	// ErrLate is returned for a reading whose window has already been
	// emitted (and, under the update policy, is no longer held).
	ErrLate = errors.New("windowing: reading later than allowed lateness")
	// ErrFull is returned when a series already holds its MaxPoints.
	ErrFull = errors.New("windowing: series holds its max_points; reading dropped")
	// ErrNoWindow is returned for a series that no window spec matches.
	ErrNoWindow = errors.New("windowing: no window spec matches series")
)

// Stats counts what a Windower accepted, rejected and emitted.
type Stats struct {
	Accepted uint64
	Invalid  uint64
	BadTime  uint64
	Late     uint64
	Full     uint64
	NoWindow uint64
	Emitted  uint64
	// Updates counts corrected windows emitted for late readings.
	Updates uint64
}

// Windower holds the window state of every series it has seen. It is not
// safe for concurrent use; the pipeline gives it one goroutine. It never
// reads the clock: event time comes from the readings, processing time from
// the arrival times its caller passes.
type Windower struct {
	specs  []spec
	series map[string]*series
	order  []*series // creation order, for deterministic Flush and Tick
	stats  Stats
	vals   []float64 // scratch for quantiles
	devs   []float64
}

// spec is a Config compiled to nanoseconds.
type spec struct {
	Config
	size, hop, lateness, idle, maxFuture, gap int64
	invHalf                                   float64
	quantiles                                 []float64
	needValues                                bool
	// keepPoints holds each pane's readings, not just its summary: for
	// order statistics, to make out-of-order arrival give bit-identical
	// results, and to correct panes for late updates.
	keepPoints     bool
	panesPerWindow int
}

// New returns a Windower for the given specs, which must be valid once
// normalised (New normalises its own copy). A series uses the first spec
// that matches.
func New(specs []Config) *Windower {
	w := &Windower{series: map[string]*series{}}
	for _, c := range specs {
		c.Aggregates = slices.Clone(c.Aggregates)
		c.Normalize()
		sp := spec{Config: c, size: int64(c.Size), hop: int64(c.Hop), lateness: int64(c.Lateness),
			idle: int64(c.IdleTimeout), maxFuture: int64(c.MaxFuture), gap: int64(c.Gap)}
		if c.HalfLife > 0 {
			sp.invHalf = 1 / float64(c.HalfLife)
		}
		for _, a := range c.Aggregates {
			if q, ok := emberwatch.ParseQuantile(a); ok {
				sp.quantiles = append(sp.quantiles, q)
				sp.needValues = true
			}
			if a == "median" || a == "mad" {
				sp.needValues = true
			}
		}
		sp.keepPoints = sp.needValues || sp.lateness > 0 || c.LatePolicy == LateUpdate || c.Kind == KindSession || c.Kind == KindCount
		if len(sp.quantiles) > emberwatch.MaxQuantiles {
			sp.quantiles = sp.quantiles[:emberwatch.MaxQuantiles]
		}
		switch c.Kind {
		case KindCount:
			sp.panesPerWindow = c.Count / max(c.Every, 1)
		case KindSession:
		default:
			if sp.hop > 0 {
				sp.panesPerWindow = int(sp.size / sp.hop)
			}
		}
		w.specs = append(w.specs, sp)
	}
	return w
}

// Stats returns the counters so far.
func (w *Windower) Stats() Stats { return w.stats }

// Add folds r into its series' windows, taking its arrival time to be its
// own timestamp, and appends to dst the features of every window that
// closed. See AddAt.
func (w *Windower) Add(r emberwatch.Reading, dst []emberwatch.Features) ([]emberwatch.Features, error) {
	return w.AddAt(r, r.Time, dst)
}

// AddAt folds r, which arrived at arrival (processing time), into its
// series' windows and appends to dst the features of every window the new
// watermark closed, oldest first. A rejected reading changes no window and
// returns one of the errors above.
func (w *Windower) AddAt(r emberwatch.Reading, arrival time.Time, dst []emberwatch.Features) ([]emberwatch.Features, error) {
	if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
		w.stats.Invalid++
		return dst, ErrInvalidValue
	}
	s := w.state(r.Series)
	if s == nil {
		w.stats.NoWindow++
		return dst, ErrNoWindow
	}
	at := arrival
	if s.sp.Time == TimeEvent {
		at = r.Time
	}
	// UnixNano is defined from 1678 to 2262; outside 1970..2261 is a bad
	// clock in any case.
	if y := at.UTC().Year(); y < 1970 || y > 2261 || at.Sub(arrival) > s.sp.MaxFuture {
		w.stats.BadTime++
		return dst, ErrBadTime
	}
	arr, t := arrival.UnixNano(), at.UnixNano()
	var err error
	n := len(dst)
	switch s.sp.Kind {
	case KindCount:
		dst, err = w.addCount(s, t, r.Value, dst)
	case KindSession:
		dst, err = w.addSession(s, t, r.Value, dst)
	default:
		dst, err = w.addTimed(s, t, r.Value, dst)
	}
	w.stats.Emitted += uint64(len(dst) - n) // a rejected reading may still close windows
	switch {
	case errors.Is(err, ErrFull):
		w.stats.Full++
		return dst, err
	case err != nil:
		w.stats.Late++
		return dst, err
	}
	s.lastArrival = max(s.lastArrival, arr)
	w.stats.Accepted++
	return dst, nil
}

// Tick tells the windower the processing time is now. Series with an
// IdleTimeout that have had no reading for that long get their watermark
// moved on as if event time had kept pace with the clock, and the windows
// that closes are appended to dst.
func (w *Windower) Tick(now time.Time, dst []emberwatch.Features) []emberwatch.Features {
	nowNs := now.UnixNano()
	n := len(dst)
	for _, s := range w.order {
		if s.sp.idle <= 0 || !s.started || s.sp.Kind == KindCount {
			continue
		}
		quiet := nowNs - s.lastArrival
		if quiet < s.sp.idle {
			continue
		}
		if wm := s.maxT + quiet - s.sp.lateness; wm > s.wm {
			s.wm = wm
			if s.sp.Kind == KindSession {
				dst = w.closeSessions(s, dst)
			} else {
				dst = w.advance(s, dst)
			}
		}
	}
	w.stats.Emitted += uint64(len(dst) - n)
	return dst
}

// Flush emits every window that still holds data, as if the watermark had
// jumped past the last reading of every series (the end of a recording, or
// a shutdown). Series keep their state; readings older than what was
// emitted are late afterwards.
func (w *Windower) Flush(dst []emberwatch.Features) []emberwatch.Features {
	n := len(dst)
	for _, s := range w.order {
		dst = w.flush(s, dst)
	}
	w.stats.Emitted += uint64(len(dst) - n)
	return dst
}

// flush emits every window of s that still holds data.
func (w *Windower) flush(s *series, dst []emberwatch.Features) []emberwatch.Features {
	if !s.started {
		return dst
	}
	switch s.sp.Kind {
	case KindCount:
		if s.cur != nil && len(s.cur.pts) > 0 {
			w.closeCountPane(s)
			s.unemitted = true
		}
		if s.unemitted {
			dst = w.emitQueue(s, dst)
		}
	case KindSession:
		s.wm = max(s.wm, s.maxT+s.sp.gap)
		dst = w.closeSessions(s, dst)
	default:
		s.wm = max(s.wm, s.maxT+s.sp.size)
		dst = w.advance(s, dst)
	}
	return dst
}

// Reconfigure replaces the window specs while running. A series whose spec
// (the first that matches it) is unchanged keeps its windows and carries on
// as if nothing happened. A series whose spec changed, or that no spec
// matches any more, has its open windows flushed into dst and starts afresh
// under the new specs at its next reading. Stats carry on.
func (w *Windower) Reconfigure(specs []Config, dst []emberwatch.Features) []emberwatch.Features {
	nw := New(specs)
	n := len(dst)
	for _, s := range w.order {
		var ns *spec
		for i := range nw.specs {
			if nw.specs[i].matches(s.name) {
				ns = &nw.specs[i]
				break
			}
		}
		if ns != nil && reflect.DeepEqual(ns.Config, s.sp.Config) {
			s.sp = ns
			nw.series[s.name] = s
			nw.order = append(nw.order, s)
			continue
		}
		dst = w.flush(s, dst)
	}
	w.stats.Emitted += uint64(len(dst) - n)
	w.specs, w.series, w.order = nw.specs, nw.series, nw.order
	return dst
}

func (w *Windower) state(name string) *series {
	if s, ok := w.series[name]; ok {
		return s
	}
	for i := range w.specs {
		if w.specs[i].matches(name) {
			s := &series{name: name, sp: &w.specs[i]}
			s.q.invHalf = s.sp.invHalf
			w.series[name] = s
			w.order = append(w.order, s)
			return s
		}
	}
	return nil
}

// series is one series' window state.
type series struct {
	name        string
	sp          *spec
	started     bool
	k           float64 // shift: see closePane
	kSet        bool
	maxT, wm    int64 // latest event time; watermark
	lastArrival int64
	points      int // readings held, against MaxPoints
	paneLen     int // readings in the last pane released

	// time windows
	open    []*pane // panes not yet closed, by end
	q       queue   // closed panes of the current window
	history []*pane // panes evicted from q, kept for late updates
	nextEnd int64   // end of the next window to emit
	// retiredEnd and releasedEnd are the ends of the newest panes that
	// left the current window, and that were freed altogether.
	retiredEnd, releasedEnd int64

	// count windows
	cur       *pane
	unemitted bool // the queue holds readings no window has shown yet

	// session windows
	sessions []*pane // open sessions, by first reading

	free []*pane
}

// pane is a run of readings: one hop of a time window, Every readings of a
// count window, or a whole session.
type pane struct {
	end    int64   // exclusive end (time windows)
	pts    []point // sorted by (t, v) in time and session windows
	agg    agg     // valid once closed
	closed bool
}

type point struct {
	t int64
	v float64
}

func (s *series) newPane(end int64) *pane {
	var p *pane
	if n := len(s.free); n > 0 {
		p = s.free[n-1]
		s.free = s.free[:n-1]
		p.pts = p.pts[:0]
	} else {
		// Size a new pane like the last one closed: a steady rate then
		// needs no growth, and no capacity is wasted.
		p = &pane{pts: make([]point, 0, s.paneLen)}
	}
	p.end, p.agg, p.closed = end, agg{}, false
	return p
}

// closePane summarises p. A series that keeps points takes its shift from
// the first pane it closes (its earliest reading), so the shift, like
// everything else, does not depend on the order readings arrived in.
func (s *series) closePane(p *pane) {
	if !s.kSet && len(p.pts) > 0 {
		s.k, s.kSet = p.pts[0].v, true
	}
	p.close(s.sp.keepPoints, s.k, s.sp.invHalf)
}

func (s *series) release(p *pane) {
	s.releasedEnd = max(s.releasedEnd, p.end)
	s.paneLen = len(p.pts)
	s.points -= len(p.pts)
	s.free = append(s.free, p)
}

// insert adds a point keeping pts sorted by time, then value, so that the
// pane's summary does not depend on arrival order.
func (p *pane) insert(t int64, v float64) {
	if len(p.pts) == cap(p.pts) {
		// Grow by a quarter, not append's doubling: panes are recycled
		// with their capacity, so slack would be held for good.
		grown := make([]point, len(p.pts), len(p.pts)+max(4, len(p.pts)/4))
		copy(grown, p.pts)
		p.pts = grown
	}
	i := len(p.pts)
	for i > 0 && (p.pts[i-1].t > t || p.pts[i-1].t == t && p.pts[i-1].v > v) {
		i--
	}
	p.pts = slices.Insert(p.pts, i, point{t, v})
}

// fold adds a reading to an open pane: to its points when the spec keeps
// them, else straight into its summary.
func (s *series) fold(p *pane, t int64, v float64) {
	if s.sp.keepPoints {
		p.insert(t, v)
		s.points++
		return
	}
	p.agg.add(t, v, s.k, s.sp.invHalf)
}

// close computes the pane's summary from its sorted points, when it has
// them.
func (p *pane) close(keepPoints bool, k, invHalf float64) {
	if keepPoints {
		p.agg = agg{}
		for _, pt := range p.pts {
			p.agg.add(pt.t, pt.v, k, invHalf)
		}
	}
	p.closed = true
}

func (w *Windower) addTimed(s *series, t int64, v float64, dst []emberwatch.Features) ([]emberwatch.Features, error) {
	sp := s.sp
	if !s.started {
		s.started, s.maxT = true, t
		s.wm = t - sp.lateness
		s.nextEnd = alignUp(t-sp.lateness, sp.hop)
		if !sp.keepPoints {
			s.k, s.kSet = v, true // folded at once: the shift must be known now
		}
	}
	end := alignUp(t, sp.hop)
	if end < s.nextEnd {
		// The window holding this pane has been emitted.
		if sp.LatePolicy == LateUpdate {
			if p := s.heldPane(end); p != nil {
				return w.lateUpdate(s, p, t, v, dst), nil
			}
		}
		return dst, ErrLate
	}
	// Move time on first: the reading's own pane cannot close (its end is
	// past the new watermark), and windows that close release their panes
	// before the capacity check.
	if t > s.maxT {
		s.maxT = t
	}
	if wm := s.maxT - sp.lateness; wm > s.wm {
		s.wm = wm
	}
	dst = w.advance(s, dst)
	if sp.keepPoints && s.points >= sp.MaxPoints {
		return dst, ErrFull
	}
	s.fold(s.openPane(end), t, v)
	return dst, nil
}

// openPane finds or makes the open pane ending at end.
func (s *series) openPane(end int64) *pane {
	i := len(s.open)
	for i > 0 && s.open[i-1].end > end {
		i--
	}
	if i > 0 && s.open[i-1].end == end {
		return s.open[i-1]
	}
	p := s.newPane(end)
	s.open = slices.Insert(s.open, i, p)
	return p
}

// advance emits every window that ends at or before the watermark.
func (w *Windower) advance(s *series, dst []emberwatch.Features) []emberwatch.Features {
	sp := s.sp
	for s.nextEnd <= s.wm {
		end := s.nextEnd
		for len(s.open) > 0 && s.open[0].end <= end {
			p := s.open[0]
			s.open = append(s.open[:0], s.open[1:]...) // in place: no creep, no allocation
			s.closePane(p)
			s.q.push(p)
		}
		for s.q.len() > 0 && s.q.oldest().end <= end-sp.size {
			s.retire(s.q.pop())
		}
		if s.q.len() > 0 {
			a := s.q.query()
			dst = append(dst, w.features(s, end-sp.size, end, &a, s.q.each, false))
		}
		s.nextEnd = end + sp.hop
		for s.q.len() > 0 && s.q.oldest().end <= s.nextEnd-sp.size {
			s.retire(s.q.pop()) // not in the next window: free it now
		}
		if s.q.len() == 0 {
			// Nothing held: jump over the empty windows, to the first open
			// pane or the first window still open, whichever comes first.
			target := alignUp(s.wm, sp.hop)
			if len(s.open) > 0 {
				target = min(target, s.open[0].end)
			}
			s.nextEnd = max(s.nextEnd, target)
		}
	}
	return dst
}

// retire moves a pane out of the current window: into the history when
// late updates may still need it, else back to the free list.
func (s *series) retire(p *pane) {
	s.retiredEnd = max(s.retiredEnd, p.end)
	if s.sp.LatePolicy != LateUpdate {
		s.release(p)
		return
	}
	s.history = append(s.history, p)
	// Keep a window's worth of panes and one less behind the current
	// window: a late reading in any of the window's panes can then correct
	// every emitted window that holds it.
	if extra := len(s.history) - (2*s.sp.panesPerWindow - 1); extra > 0 {
		for _, p := range s.history[:extra] {
			s.release(p)
		}
		s.history = append(s.history[:0], s.history[extra:]...)
	}
}

// heldPane returns the closed pane ending at end if it is still held.
func (s *series) heldPane(end int64) *pane {
	var found *pane
	s.q.each(func(p *pane) {
		if p.end == end {
			found = p
		}
	})
	if found != nil {
		return found
	}
	for _, p := range s.history {
		if p.end == end {
			return p
		}
	}
	return nil
}

// lateUpdate folds a late reading into its held pane and emits every
// emitted window that contains it and whose panes are all still held, as
// corrected results marked Update.
func (w *Windower) lateUpdate(s *series, p *pane, t int64, v float64, dst []emberwatch.Features) []emberwatch.Features {
	sp := s.sp
	p.insert(t, v)
	s.points++
	s.closePane(p)
	s.q.rebuild()
	held := make([]*pane, 0, len(s.history)+s.q.len())
	held = append(held, s.history...)
	s.q.each(func(p *pane) { held = append(held, p) })
	for end := p.end; end < s.nextEnd && end < p.end+sp.size; end += sp.hop {
		start := end - sp.size
		if s.releasedEnd > start {
			continue // a pane of this window has been freed
		}
		var a agg
		each := func(f func(*pane)) {
			for _, h := range held {
				if h.end > start && h.end <= end {
					f(h)
				}
			}
		}
		each(func(h *pane) { a = merge(&a, &h.agg, sp.invHalf) })
		if a.n == 0 {
			continue
		}
		dst = append(dst, w.features(s, start, end, &a, each, true))
		w.stats.Updates++
	}
	return dst
}

func (w *Windower) addCount(s *series, t int64, v float64, dst []emberwatch.Features) ([]emberwatch.Features, error) {
	s.started = true
	if s.points >= s.sp.MaxPoints {
		return dst, ErrFull
	}
	if s.cur == nil {
		s.cur = s.newPane(0)
	}
	s.cur.pts = append(s.cur.pts, point{t, v}) // arrival order
	s.points++
	s.maxT = max(s.maxT, t)
	if len(s.cur.pts) < s.sp.Every {
		return dst, nil
	}
	w.closeCountPane(s)
	if s.q.len() < s.sp.panesPerWindow {
		s.unemitted = true
		return dst, nil
	}
	dst = w.emitQueue(s, dst)
	// The oldest pane is in no later window: free it now, so that a series
	// never holds more than Count readings.
	s.release(s.q.pop())
	return dst, nil
}

func (w *Windower) closeCountPane(s *series) {
	s.closePane(s.cur)
	s.q.push(s.cur)
	s.cur = nil
	for s.q.len() > s.sp.panesPerWindow {
		s.release(s.q.pop())
	}
}

// emitQueue emits the current queue as one count window, spanning the
// first to the last reading's time.
func (w *Windower) emitQueue(s *series, dst []emberwatch.Features) []emberwatch.Features {
	s.unemitted = false
	a := s.q.query()
	return append(dst, w.features(s, a.firstT, a.lastT, &a, s.q.each, false))
}

func (w *Windower) addSession(s *series, t int64, v float64, dst []emberwatch.Features) ([]emberwatch.Features, error) {
	sp := s.sp
	if !s.started {
		s.started, s.maxT = true, t
		s.wm = t - sp.lateness
	}
	touches := slices.ContainsFunc(s.sessions, func(p *pane) bool {
		return t >= p.pts[0].t-sp.gap && t <= p.pts[len(p.pts)-1].t+sp.gap
	})
	if !touches && t+sp.gap <= s.wm {
		return dst, ErrLate // it would start a session that has already closed
	}
	if s.points >= sp.MaxPoints {
		return dst, ErrFull
	}
	// Merge the sessions this reading touches; it may bridge two.
	var into *pane
	for i := 0; i < len(s.sessions); {
		p := s.sessions[i]
		first, last := p.pts[0].t, p.pts[len(p.pts)-1].t
		if t < first-sp.gap || t > last+sp.gap {
			i++
			continue
		}
		if into == nil {
			into = p
			i++
			continue
		}
		for _, pt := range p.pts {
			into.insert(pt.t, pt.v)
		}
		p.pts = p.pts[:0] // its points moved into into; the count stays
		s.free = append(s.free, p)
		s.sessions = slices.Delete(s.sessions, i, i+1)
	}
	if into == nil {
		into = s.newPane(0)
		i := len(s.sessions)
		for i > 0 && s.sessions[i-1].pts[0].t > t {
			i--
		}
		s.sessions = slices.Insert(s.sessions, i, into)
	}
	into.insert(t, v)
	s.points++
	s.maxT = max(s.maxT, t)
	s.wm = max(s.wm, s.maxT-sp.lateness)
	return w.closeSessions(s, dst), nil
}

// closeSessions emits every session whose gap has passed the watermark, as
// the window [first reading, last reading + gap).
func (w *Windower) closeSessions(s *series, dst []emberwatch.Features) []emberwatch.Features {
	for len(s.sessions) > 0 {
		i := slices.IndexFunc(s.sessions, func(p *pane) bool { return p.pts[len(p.pts)-1].t+s.sp.gap <= s.wm })
		if i < 0 {
			break
		}
		p := s.sessions[i]
		s.sessions = slices.Delete(s.sessions, i, i+1)
		s.closePane(p)
		one := func(f func(*pane)) { f(p) }
		dst = append(dst, w.features(s, p.agg.firstT, p.agg.lastT+s.sp.gap, &p.agg, one, false))
		s.release(p)
	}
	return dst
}

// features turns a merged summary into the Features record. each visits
// the panes behind it, for the aggregates that need every value.
func (w *Windower) features(s *series, start, end int64, a *agg, each func(func(*pane)), update bool) emberwatch.Features {
	n := float64(a.n)
	f := emberwatch.Features{
		Series: s.name,
		Start:  time.Unix(0, start).UTC(),
		End:    time.Unix(0, end).UTC(),
		Count:  a.n,
		Sum:    float64(n*s.k) + (a.sum + a.comp),
		Mean:   s.k + a.mean,
		Min:    a.min,
		Max:    a.max,
		First:  a.first,
		Last:   a.last,
		Delta:  a.last - a.first,
		EWMA:   s.k + a.ewS/a.ewW,
		Update: update,
	}
	if a.n > 1 {
		f.Variance = math.Max(0, a.m2/(n-1))
	}
	f.Stddev = math.Sqrt(f.Variance)
	if dt := a.lastT - a.firstT; dt > 0 {
		f.Rate = f.Delta / (float64(dt) / 1e9)
	}
	if s.sp.needValues {
		vals := w.vals[:0]
		each(func(p *pane) {
			for _, pt := range p.pts {
				vals = append(vals, pt.v)
			}
		})
		slices.Sort(vals)
		f.Median = quantile(vals, 0.5)
		devs := w.devs[:0]
		for _, v := range vals {
			devs = append(devs, math.Abs(v-f.Median))
		}
		slices.Sort(devs)
		f.MAD = quantile(devs, 0.5)
		for i, q := range s.sp.quantiles {
			f.Quantiles[i] = emberwatch.Quantile{Q: q, V: quantile(vals, q)}
		}
		f.NumQuantiles = len(s.sp.quantiles)
		w.vals, w.devs = vals, devs
	}
	return f
}

// quantile is the q-quantile of sorted xs by linear interpolation between
// closest ranks (Hyndman and Fan's type 7, numpy's default).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	h := float64(q * float64(len(xs)-1)) // rounded: not fused into h−lo below on any GOARCH
	lo := int(h)
	if lo >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	return xs[lo] + float64((h-float64(lo))*(xs[lo+1]-xs[lo]))
}

// alignUp returns the first multiple of hop since the Unix epoch that is
// strictly after t: the end of the pane that holds t.
func alignUp(t, hop int64) int64 {
	q := t / hop
	if t < 0 && t%hop != 0 {
		q--
	}
	return (q + 1) * hop
}

// SpecFor returns the window spec a series uses, and false if none matches.
func (w *Windower) SpecFor(series string) (Config, bool) {
	if s := w.state(series); s != nil {
		return s.sp.Config, true
	}
	return Config{}, false
}
