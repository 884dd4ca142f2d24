package detect

import (
	"math"
	"math/bits"
	"slices"
	"sync"
	"time"
)

// CADParams configures CADOSE. Bits, BaseThreshold, RestPeriod,
// MaxLeftSemiContexts and MaxActiveNeurons are the reference's parameters
// (DefaultPointParams keeps its defaults but for RestPeriod, which NAB's
// runner overrides anyway); the rest say how the detector copes without
// the range that NAB's runner gives it, and bound its memory.
type CADParams struct {
	// Bits is how many bits a value is discretised to (numNormValueBits):
	// 3 makes eight levels across the range.
	Bits int
	// BaseThreshold is the raw score at or above which later scores are
	// suppressed for RestPeriod points (baseThreshold).
	BaseThreshold float64
	// RestPeriod is how many points after a raw score of BaseThreshold
	// report 0, unless Hints.Learn is set: then, as NAB sets it, it is a
	// fifth of Hints.Learn (3 % of the file). The reference's default is
	// 30; DefaultPointParams has 60, which NAB scores better online.
	RestPeriod int
	// MaxLeftSemiContexts bounds the size of left semi-contexts that new
	// contexts are made from (maxLeftSemiContextsLenght).
	MaxLeftSemiContexts int
	// MaxActiveNeurons is how many active contexts feed the next step
	// (maxActiveNeuronsNum).
	MaxActiveNeurons int
	// Learn is, without Hints' range, how many leading points are buffered
	// (scoring 0) to learn the range from before they are replayed into the
	// detector.
	Learn int
	// History is, without Hints' range, how many recent values are kept to
	// rebuild the detector from when a value falls outside the range.
	History int
	// Tolerance is, without Hints' range, how far outside the range, as a
	// fraction of it, a value may lie and count as the range's edge; a
	// value further out scores as novel and makes the detector learn the
	// wider range.
	Tolerance float64
	// MaxContexts caps the context memory; once full, no new contexts are
	// made. The reference has no cap; on the NAB corpus 1<<20 never binds.
	MaxContexts int
}

// CADOSE is the Contextual Anomaly Detector, open-source edition, by
// Mikhail Smirnov (https://github.com/smirmik/CAD), which NAB publishes as
// "contextOSE" with a standard score of 69.9. It ports NAB's Python
// implementation, nab/detectors/context_ose/{cad_ose.py,
// context_operator.py, context_ose_detector.py} in
// https://github.com/numenta/NAB, in the revision NAB's results files come
// from (no prediction gating; sensor facts 2i + bit):
//
// Each value is discretised into Bits bits across [min, max]; each bit
// is a sensor fact. A context pairs a left semi-context (facts of the
// previous step: its sensor facts plus "neurons", the contexts active then)
// with a right semi-context (sensor facts that followed). Contexts are
// learnt as they occur, by crossing the facts of each step with those
// stored; the contexts whose left half is wholly present are selected, and
// those whose right half then comes true are active. A point scores
// (1 − a + n)/2, where a is the fraction of the selected contexts that
// were active and n the fraction of the potential new contexts that really
// were new. After a raw score of BaseThreshold the next RestPeriod scores
// are 0.
//
// The port keeps the reference's arithmetic and orderings: semi-contexts
// are keyed by CPython 2's hash of their fact tuple, as the reference
// keys them; active contexts are ranked by (activations, left hash, right
// hash); a semi-context's contexts are visited in CPython 2.7's dict order
// (pyIntDict), which decides the order new contexts are made in and so
// their ids; the reference's comparison of its "no new context" flag False
// with context id 0 (equal in Python) is kept. With Hints its scores equal
// those of the reference run under CPython 2.7 (TestCADOSEMatchesReference;
// and on the NAB files checked, row for row), and its per-file NAB scores
// equal NAB's published contextOSE table on 48 of the 58 files: the other
// ten published results files came from an earlier revision that gated
// scores by a prediction error. The scores are those of the reference, so
// they tie where its fractions do (0 during the rest period, 1 for a wholly
// novel point).
//
// NAB hands the detector each file's min and max (Hints). Without them
// the first Learn points are buffered to find the range, and afterwards a
// value more than Tolerance outside the range is coded with sensor facts
// of its own (see sensorFacts), which no context learnt in the range
// predicts, and then the detector is rebuilt with the range widened to
// every value seen, by replaying the last History values; values less far
// out count as the range's edge. Each step costs time proportional to the
// contexts of the left semi-contexts wholly present and, on the steps that
// make a new zero-level context, to the left semi-contexts holding
// zero-level contexts (see contextOperator). Memory is bounded by
// MaxContexts and History: besides the contexts, it holds for each left
// semi-context that has been the left facts the list of those wholly
// present in it, and a rebuild empties the memory without freeing it.
type CADOSE struct {
	p            CADParams
	minValue     float64
	minValueStep float64
	maxBinValue  float64
	restPeriod   int
	ranged       bool
	hinted       bool    // the range came from Hints and is fixed
	maxValue     float64 // top of the range
	seenLo       float64 // least and greatest values seen, without hints
	seenHi       float64
	history      ring      // the last History values, without hints
	replay       []float64 // scratch for rebuilds
	op           contextOperator
	step         int // points scored so far
	lastHigh     int // index in aScoresHistory of the last raw score ≥ BaseThreshold
	facts        []int64
}

// NewCADOSE returns a CAD OSE detector; p must be valid.
func NewCADOSE(p CADParams, h Hints) *CADOSE {
	d := &CADOSE{
		p:           p,
		maxBinValue: math.Exp2(float64(p.Bits)) - 1,
		restPeriod:  p.RestPeriod,
	}
	if op := cadSpares.take(); op != nil {
		op.reuse(p.Bits, p.MaxLeftSemiContexts, p.MaxContexts)
		d.op = *op
	} else {
		d.op = newContextOperator(p.Bits, p.MaxLeftSemiContexts, p.MaxContexts)
	}
	if h.Learn > 0 {
		d.restPeriod = int(float64(h.Learn) / 5.0)
	}
	if h.HasRange {
		d.setRange(h.Min, h.Max)
		d.hinted = true
	} else {
		d.history = newRing(max(p.History, p.Learn))
	}
	return d
}

// cadSpares holds the context operators of recycled CAD OSE detectors
// for new ones to reuse, as many as a few detectors built in turn need.
var cadSpares spares[contextOperator]

// recycle implements recycler: d's context operator goes to cadSpares
// and d is left without one (so recycling it again does nothing).
func (d *CADOSE) recycle() {
	if d.op.sensorOnly == nil {
		return
	}
	op := new(contextOperator)
	*op, d.op = d.op, contextOperator{}
	cadSpares.put(op)
}

// spares is a short free list, safe for concurrent use. Unlike a
// sync.Pool it keeps what it is given until taken, so that reuse does
// not depend on when the garbage collector runs.
type spares[T any] struct {
	mu   sync.Mutex
	free []*T
}

// maxSpares bounds a spares list: detectors are recycled one at a time,
// in turn, or not at all.
const maxSpares = 2

func (s *spares[T]) put(x *T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.free) < maxSpares {
		s.free = append(s.free, x)
	}
}

// take returns a spare, or nil if there is none.
func (s *spares[T]) take() *T {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.free) == 0 {
		return nil
	}
	x := s.free[len(s.free)-1]
	s.free[len(s.free)-1] = nil
	s.free = s.free[:len(s.free)-1]
	return x
}

func (d *CADOSE) setRange(lo, hi float64) {
	full := hi - lo
	if full == 0 {
		full = d.maxBinValue
	}
	d.minValue, d.minValueStep, d.ranged = lo, full/d.maxBinValue, true
	d.maxValue = hi
}

// learnRange sets the range to the values seen and rebuilds the detector
// from the values in its history, so that it is as if the range had been
// known when they arrived. The context operator's memory is reused.
func (d *CADOSE) learnRange() {
	d.setRange(d.seenLo, d.seenHi)
	d.op.reset()
	d.step, d.lastHigh = 0, 0
	d.replay = d.replay[:0]
	if d.history.full {
		d.replay = append(d.replay, d.history.buf[d.history.next:]...)
	}
	d.replay = append(d.replay, d.history.buf[:d.history.next]...)
	for _, u := range d.replay {
		d.anomalyScore(u)
	}
}

// Observe implements PointDetector.
func (d *CADOSE) Observe(_ time.Time, v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	if d.hinted {
		return d.anomalyScore(v)
	}
	if d.history.next == 0 && !d.history.full {
		d.seenLo, d.seenHi = v, v
	}
	d.seenLo, d.seenHi = min(d.seenLo, v), max(d.seenHi, v)
	d.history.push(v)
	if !d.ranged {
		if !d.history.full && d.history.next < d.p.Learn {
			return 0
		}
		d.learnRange()
		return 0
	}
	tol := float64(d.p.Tolerance * (d.maxValue - d.minValue)) // rounded: not fused into the comparisons below on any GOARCH
	if v >= d.minValue-tol && v <= d.maxValue+tol {
		// In range, or close enough to count as its edge.
		return d.anomalyScore(min(max(v, d.minValue), d.maxValue))
	}
	s := d.anomalyScore(v)
	d.learnRange()
	return s
}

// sensorFacts discretises v into its sensor facts, ascending: bit i of
// the level is fact 2i + bit (cad_ose.py getAnomalyScore). A value beyond
// the range (possible only without hints) falls in a band of 2^Bits levels
// above or below it, and each band has sensor facts of its own, offset by
// 2·Bits per band, so that no context learnt inside the range predicts
// it; bands further out than fit below fact 128 share the outermost one.
func (d *CADOSE) sensorFacts(v float64) []int64 {
	x := (v - d.minValue) / d.minValueStep
	x = max(min(x, 1<<40), -(1 << 40))
	n := int64(x) // truncates towards zero, as Python's int()
	levels := int64(1) << d.p.Bits
	band := n / levels
	if n < 0 && n%levels != 0 {
		band-- // floor division
	}
	n -= band * levels
	width := 2 * int64(d.p.Bits)
	outer := (128/width - 1) / 2 // bands that fit on each side
	slot := int64(0)
	switch {
	case band > 0:
		slot = 2*min(band, outer) - 1
	case band < 0:
		slot = 2 * min(-band, outer)
	}
	fs := d.facts[:0]
	for i := range int64(d.p.Bits) {
		fs = append(fs, slot*width+2*i+n&1)
		n >>= 1
	}
	d.facts = fs
	return fs
}

// anomalyScore is cad_ose.py's getAnomalyScore.
func (d *CADOSE) anomalyScore(v float64) float64 {
	a1, a2 := d.stepFacts(d.sensorFacts(v))
	current := (1.0 - a1 + a2) / 2.0
	// aScoresHistory starts as [1.0]; entry i+1 is step i's raw score. The
	// score is reported unless one of the last restPeriod entries reached
	// the base threshold (Python's [-0:] is the whole list).
	d.step++
	hist := d.step // entries before appending this one
	window := d.restPeriod
	if window == 0 {
		window = hist
	}
	out := current
	if d.lastHigh >= hist-window {
		out = 0
	}
	if current >= d.p.BaseThreshold {
		d.lastHigh = hist
	}
	return out
}

// stepFacts is cad_ose.py's step: it learns from and crosses the sorted
// sensor facts and returns the fraction of selected contexts that were
// active and the fraction of potential new contexts that were new.
func (d *CADOSE) stepFacts(sens []int64) (activeFrac, newFrac float64) {
	op := &d.op
	var sensMask factMask
	for _, f := range sens {
		sensMask.set(f)
	}
	pat := op.sensPattern(sens)
	newContext := false
	if len(op.left) > 0 {
		newContext = op.zeroLevel(op.left, op.leftHash, sens, pat)
	}
	numSelected := op.crossRight(sens, sensMask, pat, newContext)
	if numSelected > 0 {
		activeFrac = float64(len(op.active)) / float64(numSelected)
	}
	// The MaxActiveNeurons contexts ranking last by (activations, left
	// hash, right hash) become the neuron facts of the next left side.
	top := topActive(op.active, d.p.MaxActiveNeurons, &op.topCount)
	left := append(op.prevLeft[:0], sens...)
	// Sensor facts come first and are sorted; insert each neuron fact.
	for _, a := range top {
		f := neuronBase + int64(a.id)
		i := len(left)
		left = append(left, f)
		for ; i > len(sens) && left[i-1] > f; i-- {
			left[i] = left[i-1]
		}
		left[i] = f
	}
	op.prevLeft, op.left = op.left, left
	numNew := op.crossLeft(sens, sensMask)
	if newContext {
		numNew++
		// Over the zero-level context and the distinct potential ones.
		newFrac = float64(numNew) / float64(op.seen.n)
	}
	return activeFrac, newFrac
}

// neuronBase is added to a context id to make it a neuron fact.
const neuronBase = 1 << 31

// topActive moves the k greatest of active, by (count, leftHash,
// rightHash), to its front and returns them, in O(len(active)·log k). The
// keys are distinct, so which k they are does not depend on the order of
// active. *least is the least count among the k returned last time: if k
// or more counts reach it now, the rest are out of the running.
func topActive(active []cadActive, k int, least *int) []cadActive {
	if len(active) <= k {
		return active
	}
	n := 0
	for i := range active {
		if active[i].count >= *least {
			active[n], active[i] = active[i], active[n]
			n++
		}
	}
	if n == k {
		// Exactly k reach it (about half the time): they are the k.
		*least = active[0].count
		for _, a := range active[1:k] {
			*least = min(*least, a.count)
		}
		return active[:k]
	}
	if n > k {
		active = active[:n]
	}
	h := active[:k] // a min-heap: h[0] is the least of the best k so far
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	for i := k; i < len(active); i++ {
		if activeLess(h[0], active[i]) {
			h[0], active[i] = active[i], h[0]
			siftDown(h, 0)
		}
	}
	*least = h[0].count
	return h
}

func activeLess(a, b cadActive) bool {
	if a.count != b.count {
		return a.count < b.count
	}
	if a.leftHash != b.leftHash {
		return a.leftHash < b.leftHash
	}
	return a.rightHash < b.rightHash
}

func siftDown(h []cadActive, i int) {
	for {
		m := i
		if l := 2*i + 1; l < len(h) && activeLess(h[l], h[m]) {
			m = l
		}
		if r := 2*i + 2; r < len(h) && activeLess(h[r], h[m]) {
			m = r
		}
		if m == i {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// cadActive is an active context as the reference ranks them.
type cadActive struct {
	id                  int32
	count               int
	leftHash, rightHash int64
}

// factMask is a set of sensor facts, which are below 128: fact f is bit
// f of lo, or bit f−64 of hi. (A struct, not an array, so that the
// compiler keeps it in registers.)
type factMask struct{ lo, hi uint64 }

func (m *factMask) set(f int64) {
	if f < 64 {
		m.lo |= 1 << f
	} else {
		m.hi |= 1 << (f - 64)
	}
}

func (m factMask) has(f int64) bool {
	if f < 64 {
		return m.lo&(1<<f) != 0
	}
	return m.hi&(1<<(f-64)) != 0
}

func (m factMask) subsetOf(o factMask) bool { return m.lo&^o.lo|m.hi&^o.hi == 0 }
func (m factMask) and(o factMask) factMask  { return factMask{m.lo & o.lo, m.hi & o.hi} }
func (m factMask) empty() bool              { return m.lo|m.hi == 0 }

// shr returns the facts from s on, shifted down by s, to 64 of them.
func (m factMask) shr(s uint) uint64 { return m.lo>>s | m.hi<<(64-s) | m.hi>>(s-64) }

// cadLeft is a left semi-context: context_operator.py's
// [crossed facts, size, matched, {right id: context id}], with the facts
// kept so that crossed facts and counts can be worked out when needed.
type cadLeft struct {
	// links are the contexts, in the order they were made, with what the
	// walks over wholly present left semi-contexts need of each. act[p],
	// while actOK, marks the links whose right semi-contexts are within
	// the sensor facts of value p in the range's own band (see
	// sensPattern); without act, masks holds the right semi-contexts'
	// sensor facts, in the order of links. links, hash and act, which
	// those walks read, make up the first cache line.
	links []cadLink
	hash  int64 // pyTupleHash(facts), its key
	act   [maxPatterns]uint32
	masks []factMask
	facts []int64 // sorted
	// sensor are the sensor facts among facts; neurons is how many of
	// them are neuron facts, sig their neuronSig.
	sensor factMask
	sig    uint64
	// rights has bit r set for each right semi-context r below 64 that
	// contexts holds, so that most look-ups need not probe it (the
	// range's own band has 26 right semi-contexts of three bits).
	rights   uint64
	contexts pyIntDict
	neurons  int32
	// zeroLevel counts the zero-level contexts among them.
	zeroLevel int32
	actOK     bool
	// zeroKnown has bit p set once its context with the sensor facts of
	// value p in the range's own band (see sensPattern) is known to be
	// there and zero-level, as it then stays.
	zeroKnown uint8
	_         [6]byte // to 192 bytes, three cache lines
}

// has reports whether l has a context with right semi-context rid.
func (l *cadLeft) has(rid int32) bool {
	if rid < 64 {
		return l.rights&(1<<rid) != 0
	}
	_, ok := l.contexts.get(rid)
	return ok
}

// maxPatterns bounds the values of sensor facts that cadLeft.act covers:
// those of three bits.
const maxPatterns = 8

// cadZeroLeft is what crossRightAll needs of a left semi-context that
// holds zero-level contexts and is not wholly present: its sensor facts
// and its zero-level contexts in slot order, the first of them inline.
// They are kept apart from cadLeft, in one cache line each, because that
// walk visits every such left semi-context.
type cadZeroLeft struct {
	sensor factMask
	first  cadZeroLink
	more   []cadZeroLink
}

// cadZeroLink is a zero-level context as crossRightAll sees it.
type cadZeroLink struct {
	mask           factMask // of its right semi-context
	right, context int32
}

// zeroLinksChanged brings op.zeroLefts[lid] and op.zeroSubs[lid] up to
// date with the contexts of left semi-context lid, walking them in slot
// order.
func (op *contextOperator) zeroLinksChanged(lid int32) {
	l, z := &op.lefts[lid], &op.zeroLefts[lid]
	if l.zeroLevel == 0 {
		return
	}
	z.more = z.more[:0]
	n := 0
	var subs uint64
	for s, right := range l.contexts.keys {
		if right < 0 {
			continue
		}
		id := l.contexts.vals()[s]
		if !op.contexts[id].zeroLevel {
			continue
		}
		if zl := (cadZeroLink{mask: op.rights[right].mask, right: right, context: id}); n == 0 {
			z.first = zl
		} else {
			z.more = op.mem.zeroLinks.append(z.more, zl)
		}
		n++
		for p, pm := range op.patterns {
			if common := op.rights[right].mask.and(pm); !common.empty() {
				subs |= 1 << (8*p + int(sensBits(common, int64(p&1))))
			}
		}
	}
	op.zeroSubs[lid] = subs
}

// cadLink is a context of a left semi-context, with what the walks over
// wholly present left semi-contexts need of it: its right semi-context's
// hash, its activations and its id. Keeping these here spares them a
// random access per context. Activations saturate at 2^32−1, which a
// context activated on every point reaches after 136 years at one point a
// second.
type cadLink struct {
	rightHash   int64
	activations uint32
	context     int32
}

// activate counts an activation of k.
func (k *cadLink) activate() {
	if k.activations != math.MaxUint32 {
		k.activations++
	}
}

// addLink stores context k in left semi-context l under right
// semi-context right and updates l.act or, without act, l.masks.
func (op *contextOperator) addLink(l *cadLeft, k cadLink, right int32) {
	l.contexts.set(right, k.context, &op.mem.ids)
	if right < 64 {
		l.rights |= 1 << right
	}
	if l.links == nil {
		l.actOK = op.patterns != nil
	}
	l.links = op.mem.links.append(l.links, k)
	i := len(l.links) - 1
	mask, rights := op.rights[right].mask, op.rights
	if l.actOK && i >= op.actMax {
		// Too many for act: masks takes over, in link order, which is
		// the order of context ids.
		l.actOK = false
		l.masks = make([]factMask, i, 2*i)
		vals := l.contexts.vals()
		for s, r := range l.contexts.keys {
			if r >= 0 && vals[s] != k.context {
				j, _ := slices.BinarySearchFunc(l.links[:i], vals[s], func(k cadLink, id int32) int { return int(k.context - id) })
				l.masks[j] = rights[r].mask
			}
		}
	}
	if !l.actOK {
		l.masks = append(l.masks, mask)
		return
	}
	for p, s := range op.patterns {
		if mask.subsetOf(s) {
			l.act[p] |= 1 << i
		}
	}
}

// cadRight is a right semi-context: sensor facts only.
type cadRight struct {
	facts []int64
	mask  factMask
}

// cadContext is what context_operator.py's contextValues
// [activations, zero level, left hash, right hash] holds beyond its
// cadLink: its left semi-context (whose hash is the left hash) and whether
// it is zero-level.
type cadContext struct {
	left      int32
	zeroLevel bool
}

// neuronLists holds lists by neuron fact: a neuron fact is neuronBase
// plus a context id, which slot maps to the lists' place in lists (plus
// one; 0 for none).
type neuronLists struct {
	slot  []int32
	lists []cadNeuronLists
}

// cadNeuronLists are the lists of a neuron fact: the left semi-contexts
// filed under it in the index, and those with it holding zero-level
// contexts.
type cadNeuronLists struct {
	index []cadIndexed
	zero  []int32
}

// get returns the lists of neuron fact f, empty if it has none.
func (t *neuronLists) get(f int64) cadNeuronLists {
	if c := f - neuronBase; c < int64(len(t.slot)) && t.slot[c] > 0 {
		return t.lists[t.slot[c]-1]
	}
	return cadNeuronLists{}
}

// add returns the lists of neuron fact f, to be added to; they move when
// lists for another fact are added.
func (t *neuronLists) add(f int64) *cadNeuronLists {
	c := f - neuronBase
	if c >= int64(len(t.slot)) {
		t.slot = append(t.slot, make([]int32, c+1-int64(len(t.slot)))...)
	}
	if t.slot[c] == 0 {
		t.lists = append(t.lists, cadNeuronLists{})
		t.slot[c] = int32(len(t.lists))
	}
	return &t.lists[t.slot[c]-1]
}

// cadFullCache lists, ascending, the left semi-contexts below upTo
// wholly present in the facts of a left semi-context.
type cadFullCache struct {
	lids []int32
	upTo int32
}

// cadIndexed is a left semi-context with neuron facts as the index files
// it: with its sensor facts, how many neuron facts it has and neuronSig of
// them, so that most that are not wholly present are passed over without
// reading it.
type cadIndexed struct {
	sensor  factMask
	sig     uint64
	neurons int32
	left    int32
}

// neuronSig is a 64-bit Bloom filter of one neuron fact: a left
// semi-context's neuron facts can all be present only if the union of
// their signatures lies within that of the present ones.
func neuronSig(f int64) uint64 { return 1 << (uint64(f) * 0x9e3779b97f4a7c15 >> 58) }

// contextOperator is context_operator.py's ContextOperator, organised for
// speed. The reference crosses every semi-context with the facts at every
// step. Here, on most steps, only the left semi-contexts wholly present
// in the facts matter. They are found from an index on one neuron fact
// each and the sensor facts' bit masks, once for each set of left facts:
// when the left facts recur, as those of a left semi-context, the list
// found then is kept and only the left semi-contexts made since are
// looked at (fullCache). Their contexts whose right semi-contexts are
// within the sensor facts are read off a bit table per sensor value
// (cadLeft.act). Only on steps that made a new zero-level context, the
// only steps on which new contexts and so orderings can arise, are the
// left semi-contexts that hold zero-level contexts walked too, in creation
// order as the reference walks them: each one's crossing with the left
// facts is told by the positions of its facts among them (their neuron
// facts found through lists by neuron fact), so that the crossings the
// walk has already offered with a subset of the sensor facts are passed
// over without hashing (crossSet). What a step finds is kept in ids
// (semi-contexts, crossings, subsets of the sensor facts) rather than
// maps where it is looked up again.
type contextOperator struct {
	maxLeft, maxContexts int
	// patterns[p], for few enough bits, are the sensor facts of value p
	// in the range's own band; act tables cover up to actMax links (32,
	// their width; tests lower it).
	patterns          []factMask
	actMax            int
	leftIDs, rightIDs idTable // semi-contexts by hash
	lefts             []cadLeft
	zeroLefts         []cadZeroLeft // by left semi-context
	rights            []cadRight
	contexts          []cadContext

	// Crossing state: the left facts last crossed and their hash, how
	// many left semi-contexts existed then, and those of them wholly
	// present. When the left facts are those of a left semi-context, full
	// is fullCache's list for it, which grows as left semi-contexts are
	// made, in creation order (so that walks over it read op.lefts in
	// order); otherwise it is fullBuf, in any order.
	left     []int64
	leftHash int64
	leftLID  int32 // leftIDs' entry for leftHash, if leftLOK
	leftLOK  bool
	crossedN int
	full     []int32
	fullBuf  []int32
	// fullPending is set while full was found for left facts that are no
	// left semi-context's, until one is made of them.
	fullPending bool
	fullCache   []cadFullCache       // by left semi-context
	bitmap      []uint64             // scratch for sortIDs
	sensorOnly  map[factMask][]int32 // left semi-contexts without neuron facts, by sensor facts
	masks       []factMask           // keys of sensorOnly in first-seen order
	// byNeuron keeps, by neuron fact, the index, which files each left
	// semi-context with neuron facts under one of them (the one with the
	// shortest list when it was made), and the left semi-contexts with
	// the fact that hold zero-level contexts.
	byNeuron neuronLists
	// inLeft[c] == cur marks context c as a neuron fact of op.left.
	inLeft []uint32
	cur    uint32
	// zeroLevels lists, ascending, the left semi-contexts that hold a
	// zero-level context.
	zeroLevels  []int32
	zeroSensors []factMask // their sensor facts
	zeroCodes   []uint32   // and those as sensorCode gives them
	zeroFacts   []int32    // and how many facts they have
	// zeroSubs has, by left semi-context holding zero-level contexts and
	// with patterns, in byte p the subsets of the sensor facts of value p
	// (as rightCrossing numbers them) that its zero-level contexts' right
	// semi-contexts cross them in.
	zeroSubs []uint64

	active   []cadActive
	topCount int // the least count among the active contexts last ranked top
	// On a step that made a new zero-level context: the left facts before
	// it, the distinct potential contexts in order of appearance, and the
	// hashes of those and of the zero-level context.
	prevLeft   []int64
	prevMask   factMask // sensor facts of op.left
	potentials []cadPotential
	seen       pairSet
	crossings  crossSet
	// rightCrossings caches, by right semi-context, its crossing with the
	// sensor facts on such a step; crossingLefts and subRights remember
	// the semi-contexts found for the crossings offered as potential new
	// contexts.
	rightCrossings []cadRightCrossing
	crossingLefts  []cadCrossingLeft
	subRights      []cadSubRight // by subset of sens, while below 64
	// mem is where the semi-contexts' facts and lists are carved from.
	mem     cadSlabs
	scratch []int64
	// Per step of that kind: each zero-level left semi-context's neuron
	// facts among the previous left facts, found through the neuron
	// facts' zero lists (byNeuron), as a bit mask of their positions in
	// them while there are at most posLimit (64) previous left facts,
	// otherwise counted. Both are by left semi-context.
	neuronPos   []uint64
	neuronCount []int32
	cands       []cadCandidate // scratch for partlyPresent
	step        uint32
	posLimit    int
	// newContextID is the id of the zero-level context made this step, 0
	// when none was: the reference stores False there, which compares
	// equal to id 0.
	newContextID int32
}

func newContextOperator(nBits, maxLeft, maxContexts int) contextOperator {
	op := contextOperator{sensorOnly: map[factMask][]int32{}, subRights: make([]cadSubRight, 64)}
	op.configure(nBits, maxLeft, maxContexts)
	return op
}

// configure sets op's parameters, and the limits of its fast paths (which
// tests lower) to their defaults.
func (op *contextOperator) configure(nBits, maxLeft, maxContexts int) {
	var patterns []factMask
	if 1<<nBits <= maxPatterns {
		patterns = make([]factMask, 1<<nBits)
		for p := range patterns {
			for i := range nBits {
				patterns[p].set(int64(2*i + p>>i&1))
			}
		}
	}
	op.patterns, op.maxLeft, op.maxContexts = patterns, maxLeft, maxContexts
	op.actMax, op.posLimit = 32, 64
}

// reuse empties op, as reset does, and sets it up as newContextOperator
// would with these parameters.
func (op *contextOperator) reuse(nBits, maxLeft, maxContexts int) {
	op.reset()
	op.configure(nBits, maxLeft, maxContexts)
}

// cadSlabs are the slabs that a contextOperator carves the facts of
// semi-contexts and the lists it keeps for each of them from: all of
// those are dropped together, by reset, which rewinds the slabs.
type cadSlabs struct {
	facts     slab[int64]
	ids       slab[int32] // pyIntDict tables, lists of left semi-contexts
	links     slab[cadLink]
	zeroLinks slab[cadZeroLink]
	indexed   slab[cadIndexed]
}

func (m *cadSlabs) rewind() {
	m.facts.rewind()
	m.ids.rewind()
	m.links.rewind()
	m.zeroLinks.rewind()
	m.indexed.rewind()
}

// slab carves small slices of T out of large chunks, sparing an
// allocation each (and the garbage collector an object to sweep). rewind
// hands the chunks out again: whatever was carved before must no longer
// be used. Chunks double in length from slabMin elements, the largest
// slice carved, to slabMax; larger slices are allocated on their own.
// The room a slice leaves when append moves it stays unused until the
// rewind: as slices double, at most as much again as they hold.
type slab[T any] struct {
	chunks [][]T
	next   int // chunks[:next] have been carved from
	free   []T // the rest of chunks[next-1]
}

const slabMin, slabMax = 256, 2048

// alloc returns an empty slice with capacity c, which append moves
// elsewhere when it outgrows c. What lies beyond its length is not
// zeroed: a rewound slab hands out what it held before.
func (s *slab[T]) alloc(c int) []T {
	if c > slabMin {
		return make([]T, 0, c)
	}
	if len(s.free) < c {
		if s.next == len(s.chunks) {
			s.chunks = append(s.chunks, make([]T, slabMin<<min(s.next, bits.Len(slabMax/slabMin)-1)))
		}
		s.free = s.chunks[s.next]
		s.next++
	}
	xs := s.free[:0:c]
	s.free = s.free[c:]
	return xs
}

// append appends v to xs, first moving xs to a slice of twice its
// capacity carved from s if it is full.
func (s *slab[T]) append(xs []T, v T) []T {
	if len(xs) == cap(xs) {
		xs = append(s.alloc(max(4, 2*cap(xs))), xs...)
	}
	return append(xs, v)
}

// rewind makes every chunk free again.
func (s *slab[T]) rewind() {
	s.next, s.free = 0, nil
}

// cadKey names a context by the hashes of its left and right facts, with
// the ids of those semi-contexts where they are known to exist.
type cadKey struct {
	lh, rh   int64
	lid, rid int32
	lok, rok bool
}

// reset empties op as newContextOperator makes it, keeping the memory
// it holds for the next run: its slices are truncated and its slabs
// rewound. Stamps and generations (cur, step, seen, crossings,
// subRights) carry on, so that none of theirs is current.
func (op *contextOperator) reset() {
	op.leftIDs.reset()
	op.rightIDs.reset()
	clear(op.sensorOnly)
	clear(op.byNeuron.slot)
	op.mem.rewind()
	*op = contextOperator{
		maxLeft: op.maxLeft, maxContexts: op.maxContexts, patterns: op.patterns, actMax: op.actMax,
		leftIDs: op.leftIDs, rightIDs: op.rightIDs,
		lefts: op.lefts[:0], zeroLefts: op.zeroLefts[:0], rights: op.rights[:0], contexts: op.contexts[:0],
		left: op.left[:0], fullBuf: op.fullBuf[:0], fullCache: op.fullCache[:0],
		bitmap: op.bitmap, sensorOnly: op.sensorOnly, masks: op.masks[:0],
		byNeuron: neuronLists{slot: op.byNeuron.slot[:0], lists: op.byNeuron.lists[:0]},
		inLeft:   op.inLeft[:0], cur: op.cur,
		zeroLevels: op.zeroLevels[:0], zeroSensors: op.zeroSensors[:0], zeroCodes: op.zeroCodes[:0], zeroFacts: op.zeroFacts[:0],
		active: op.active[:0], prevLeft: op.prevLeft[:0], potentials: op.potentials[:0],
		seen: op.seen, crossings: op.crossings,
		rightCrossings: op.rightCrossings[:0], crossingLefts: op.crossingLefts[:0], subRights: op.subRights,
		mem: op.mem, scratch: op.scratch, cands: op.cands,
		neuronPos: op.neuronPos[:0], neuronCount: op.neuronCount[:0], zeroSubs: op.zeroSubs[:0], step: op.step, posLimit: op.posLimit,
	}
}

// context finds or makes the context k names, filling in k's ids; made
// reports a new one. At MaxContexts it makes nothing and returns ok=false
// for unknown contexts. The facts are left and right, or, when those are
// nil, the crossings potential pc stands for with sensor facts sens; they
// are copied when kept.
func (op *contextOperator) context(k *cadKey, zeroLevel bool, left, right []int64, pc *cadPotential, sens []int64) (id int32, made, ok bool) {
	if k.lok && k.rok {
		// The rights bit rules most misses out without a probe; a hit, or
		// an id it does not cover, is looked up once.
		l := &op.lefts[k.lid]
		if k.rid >= 64 || l.rights&(1<<k.rid) != 0 {
			if c, ok := l.contexts.get(k.rid); ok {
				return c, false, true
			}
		}
	}
	if len(op.contexts) >= op.maxContexts {
		return 0, false, false
	}
	if pc != nil {
		left, right = op.crossedFacts(pc, sens)
	}
	if !k.lok {
		k.lid, k.lok = op.addLeft(left, k.lh), true
	}
	if !k.rok {
		k.rid, k.rok = int32(len(op.rights)), true
		op.rightIDs.set(k.rh, k.rid)
		r := cadRight{facts: op.keep(right)}
		for _, f := range right {
			r.mask.set(f)
		}
		op.rights = appendDoubling(op.rights, r)
		op.rightCrossings = appendDoubling(op.rightCrossings, cadRightCrossing{})
	}
	id = int32(len(op.contexts))
	op.contexts = appendDoubling(op.contexts, cadContext{left: k.lid, zeroLevel: zeroLevel})
	l := &op.lefts[k.lid]
	op.addLink(l, cadLink{rightHash: k.rh, context: id}, k.rid)
	op.zeroLinksChanged(k.lid)
	op.inLeft = appendDoubling(op.inLeft, 0)
	if zeroLevel {
		op.markZeroLevel(k.lid)
	}
	return id, true, true
}

// keep returns a copy of facts, which stay unchanged, carved from a slab
// to spare an allocation each.
func (op *contextOperator) keep(facts []int64) []int64 {
	return append(op.mem.facts.alloc(len(facts)), facts...)
}

func (op *contextOperator) addLeft(facts []int64, hash int64) int32 {
	id := int32(len(op.lefts))
	op.leftIDs.set(hash, id)
	l := cadLeft{facts: op.keep(facts), hash: hash}
	best := int64(-1)
	for _, f := range facts {
		if f < neuronBase {
			l.sensor.set(f)
			continue
		}
		l.neurons++
		l.sig |= neuronSig(f)
		if best < 0 || len(op.byNeuron.get(f).index) < len(op.byNeuron.get(best).index) {
			best = f
		}
	}
	if l.neurons == 0 {
		if _, ok := op.sensorOnly[l.sensor]; !ok {
			op.masks = append(op.masks, l.sensor)
		}
		op.sensorOnly[l.sensor] = op.mem.ids.append(op.sensorOnly[l.sensor], id)
	} else {
		nl := op.byNeuron.add(best)
		nl.index = op.mem.indexed.append(nl.index, cadIndexed{sensor: l.sensor, sig: l.sig, neurons: l.neurons, left: id})
	}
	op.lefts = appendDoubling(op.lefts, l)
	op.zeroLefts = appendDoubling(op.zeroLefts, cadZeroLeft{sensor: l.sensor})
	op.fullCache = appendDoubling(op.fullCache, cadFullCache{})
	if op.fullPending && hash == op.leftHash && slices.Equal(facts, op.left) {
		// The left facts last crossed, as the zero-level context's left
		// semi-context: what was found wholly present in them is its
		// cache.
		op.sortIDs(op.full)
		lids := append(op.mem.ids.alloc(len(op.full)), op.full...)
		op.fullCache[id] = cadFullCache{lids: lids, upTo: int32(op.crossedN)}
		op.full, op.fullPending = op.fullCache[id].lids, false
	}
	op.neuronPos = appendDoubling(op.neuronPos, 0)
	op.neuronCount = appendDoubling(op.neuronCount, 0)
	op.zeroSubs = appendDoubling(op.zeroSubs, 0)
	return id
}

// appendDoubling appends v to s, doubling its capacity when full: append
// grows long slices by a quarter, which copies the large slices kept per
// semi-context or context about five times over (and makes as much
// garbage).
func appendDoubling[T any](s []T, v T) []T {
	if len(s) == cap(s) {
		s = slices.Grow(s, len(s))
	}
	return append(s, v)
}

// markZeroLevel counts a zero-level context in left semi-context lid,
// whose cadContext is marked already.
func (op *contextOperator) markZeroLevel(lid int32) {
	l := &op.lefts[lid]
	l.zeroLevel++
	op.zeroLinksChanged(lid)
	if l.zeroLevel == 1 {
		i, _ := slices.BinarySearch(op.zeroLevels, lid)
		op.zeroLevels = slices.Insert(op.zeroLevels, i, lid)
		op.zeroSensors = slices.Insert(op.zeroSensors, i, l.sensor)
		op.zeroCodes = slices.Insert(op.zeroCodes, i, sensorCode(l.sensor))
		op.zeroFacts = slices.Insert(op.zeroFacts, i, int32(len(l.facts)))
		for _, f := range l.facts[len(l.facts)-int(l.neurons):] {
			nl := op.byNeuron.add(f)
			nl.zero = op.mem.ids.append(nl.zero, lid)
		}
	}
}

// neuronsPresent reports whether every neuron fact of l is among the left
// facts last crossed.
func (op *contextOperator) neuronsPresent(l *cadLeft) bool {
	for _, f := range l.facts[len(l.facts)-int(l.neurons):] {
		if op.inLeft[f-neuronBase] != op.cur {
			return false
		}
	}
	return true
}

// zeroLevel is getContextByFacts for the one zero-level context of a step:
// it reports whether the context is new, and marks an old one zero-level.
// pat is sensPattern(right): a context known to be zero-level already
// (cadLeft.zeroKnown) needs nothing done, as on most steps.
func (op *contextOperator) zeroLevel(left []int64, lh int64, right []int64, pat int) bool {
	if op.leftLOK && pat >= 0 && op.lefts[op.leftLID].zeroKnown&(1<<pat) != 0 {
		return false
	}
	rh := pyTupleHash(right)
	// crossLeft looked the left semi-context up.
	k := cadKey{lh: lh, rh: rh, lid: op.leftLID, lok: op.leftLOK}
	k.rid, k.rok = op.rightIDs.get(rh)
	id, made, ok := op.context(&k, true, left, right, nil, nil)
	if made {
		op.seen.reset()
		op.seen.add(lh, rh)
		op.potentials = op.potentials[:0]
	}
	if ok && pat >= 0 {
		op.lefts[k.lid].zeroKnown |= 1 << pat
	}
	switch {
	case !ok:
		return false
	case made:
		op.newContextID = id
		return true
	}
	if c := &op.contexts[id]; !c.zeroLevel {
		c.zeroLevel = true
		op.markZeroLevel(c.left)
	}
	return false
}

// crossRight is contextCrosser(leftOrRight=1) with
// updateContextsAndGetActive: it scores the contexts of the left
// semi-contexts crossed last step against the sensor facts, filling
// op.active (and, on a step that made a new zero-level context,
// op.potentials), and returns how many contexts were selected. pat is
// sensPattern(sens).
func (op *contextOperator) crossRight(sens []int64, sensMask factMask, pat int, newContext bool) (numSelected int) {
	op.active = op.active[:0]
	if newContext {
		numSelected = op.crossRightAll(sens, sensMask, pat)
	} else {
		numSelected = op.activateFull(op.full, sensMask, pat, op.leftOf(op.newContextID))
	}
	op.newContextID = 0
	return numSelected
}

// crossRightAll is the reference's walk over every left semi-context
// crossed last step, in creation order and each one's zero-level contexts
// in CPython dict order, the order in which it offers potential contexts,
// as it runs on a step that made a new zero-level context. (Activations
// are counted in any order: their ranking does not depend on it.)
func (op *contextOperator) crossRightAll(sens []int64, sensMask factMask, pat int) (numSelected int) {
	leftMask := op.prevMask
	op.step++
	byPos := len(op.left) <= op.posLimit
	op.crossings.reset()
	// neuronPos and neuronCount are 0 for every left semi-context holding
	// zero-level contexts: partlyPresent leaves them so.
	neuronPos, neuronCount := op.neuronPos, op.neuronCount
	for p := len(sens); p < len(op.left); p++ {
		ids := op.byNeuron.get(op.left[p]).zero
		if !byPos {
			for _, lid := range ids {
				neuronCount[lid]++
			}
			continue
		}
		bit := uint64(1) << p
		for _, lid := range ids {
			neuronPos[lid] |= bit
		}
	}
	// Only wholly present left semi-contexts and those holding zero-level
	// contexts can do anything. The wholly present ones (op.full) are
	// activated first, all at once; then those holding zero-level
	// contexts offer potential contexts in creation order. Of these, the
	// wholly present ones of at most maxLeft facts are the candidates
	// with all their facts present.
	numSelected = op.activateFull(op.full, sensMask, pat, op.leftOf(op.newContextID))
	for _, c := range op.partlyPresent(len(sens), leftMask, byPos) {
		if c.full {
			op.crossFull(c.lid, sens, sensMask)
			continue
		}
		// With byPos, left semi-contexts whose crossings with the left
		// facts are the same share an account of what was offered;
		// otherwise each keeps its own. subs are the subsets of sens its
		// zero-level contexts can be offered with (see zeroSubs; all
		// ones when not known, which never passes, the empty subset
		// never being offered): when each was offered with its crossing,
		// or there are none, crossPartial would offer nothing (as on
		// about two calls in three) and is passed over.
		own := crossEntry{}
		e := &own
		if cs := &op.crossings; byPos {
			// crossSet.find's first probe, by hand: the compiler does
			// not inline it.
			if len(cs.entries) > 0 {
				e = &cs.entries[c.pos*0x9e3779b97f4a7c15>>cs.shift]
			}
			if len(cs.entries) == 0 || e.gen != cs.cur || e.pos != c.pos {
				e = cs.find(c.pos)
			}
		}
		subs := ^uint64(0)
		if pat >= 0 {
			subs = op.zeroSubs[c.lid] >> (8 * pat) & 0xff
		}
		if subs&^e.offered != 0 {
			op.crossPartial(c.lid, int(c.matched), e, sens, sensMask, byPos)
		}
	}
	return numSelected
}

// partlyPresent returns, in creation order, the left semi-contexts
// holding zero-level contexts that were crossed last step with from 1 to
// maxLeft facts present, the only ones that matter (some of them wholly
// present), and clears neuronPos and neuronCount for the next such step.
// About half pass, unpredictably, so it decides without a branch (picking
// them out first took about 5 % off online NAB runs). nSens is how many
// sensor facts op.left has, leftMask what they are.
func (op *contextOperator) partlyPresent(nSens int, leftMask factMask, byPos bool) []cadCandidate {
	// The left facts' sensor facts as sensorCode numbers values.
	prevCode := sensorCode(leftMask)
	prevOK, prevVal := prevCode&codeOK != 0 && uint8(prevCode) == 1<<nSens-1, uint8(prevCode>>8)
	zero, codes, nFacts := op.zeroLevels, op.zeroCodes, op.zeroFacts
	neuronPos, neuronCount := op.neuronPos, op.neuronCount
	cands := slices.Grow(op.cands[:0], len(zero))[:len(zero)]
	op.cands = cands
	n := 0
	maxLeft := uint(op.maxLeft)
	for j, lid := range zero {
		if int(lid) >= op.crossedN {
			// Made since: not crossed.
			neuronPos[lid], neuronCount[lid] = 0, 0
			continue
		}
		// Its sensor facts present are those that agree with the left
		// facts' on their pair, or, outside the range's own band, found
		// by their masks.
		var pos uint64
		if code := codes[j]; prevOK && code&codeOK != 0 {
			pos = uint64(^(uint8(code>>8) ^ prevVal) & uint8(code))
		} else {
			pos = sensBits(op.zeroSensors[j].and(leftMask), op.left[0])
		}
		np := neuronPos[lid]
		neuronPos[lid] = 0
		matched := bits.OnesCount64(pos) + bits.OnesCount64(np)
		if !byPos {
			matched += int(neuronCount[lid])
			neuronCount[lid] = 0
		}
		cands[n] = cadCandidate{pos: pos | np, lid: lid, matched: int32(matched), full: int32(matched) == nFacts[j]}
		inc := 0
		if uint(matched-1) < maxLeft {
			inc = 1 // a conditional move
		}
		n += inc
	}
	return cands[:n]
}

// cadCandidate is a left semi-context holding zero-level contexts that is
// partly present: matched of its facts, at positions pos, are; full if
// that is all of them.
type cadCandidate struct {
	pos          uint64
	lid, matched int32
	full         bool
}

// crossFull is crossRightAll's walk over the zero-level contexts of left
// semi-context lid, wholly present and of at most maxLeft facts: it
// offers the crossings of those whose right semi-context is partly
// present as potential contexts.
func (op *contextOperator) crossFull(lid int32, sens []int64, sensMask factMask) {
	lh := op.lefts[lid].hash
	z := &op.zeroLefts[lid]
	var offered uint64 // the subsets of sens offered with l so far
	for i := -1; i < len(z.more); i++ {
		k := &z.first
		if i >= 0 {
			k = &z.more[i]
		}
		common := k.mask.and(sensMask)
		if k.context == op.newContextID || common.empty() || common == k.mask {
			continue
		}
		rc := op.rightCrossing(k.right, common, sens)
		if rc.sub < 64 {
			if offered&(1<<rc.sub) != 0 {
				continue
			}
			offered |= 1 << rc.sub
		}
		op.potential(lh, -1, rc, lid)
	}
}

// activateFull activates, appending them to op.active, the contexts of
// the left semi-contexts lids, wholly present, whose right semi-contexts
// are within sensMask, leaving out op.newContextID, which is in skipLeft;
// it returns how many contexts it selected. pat is sensPattern. The act
// tables are read inline, in one call for all of lids: on most steps this
// is all the work there is.
func (op *contextOperator) activateFull(lids []int32, sensMask factMask, pat int, skipLeft int32) (numSelected int) {
	active, skip := op.active, op.newContextID
	for _, lid := range lids {
		l := &op.lefts[lid]
		numSelected += len(l.links)
		if lid == skipLeft {
			numSelected--
		}
		if pat < 0 || !l.actOK {
			active = op.activateByMask(l, sensMask, active)
			continue
		}
		links, lh := l.links, l.hash
		for m := l.act[pat]; m != 0; m &= m - 1 {
			k := &links[bits.TrailingZeros32(m)]
			if k.context != skip {
				k.activate()
				active = append(active, cadActive{id: k.context, count: int(k.activations), leftHash: lh, rightHash: k.rightHash})
			}
		}
	}
	op.active = active
	return numSelected
}

// activateByMask is activateFull for a left semi-context l without an
// act table for the sensor facts: it appends to active and returns it.
func (op *contextOperator) activateByMask(l *cadLeft, sensMask factMask, active []cadActive) []cadActive {
	links, lh, skip := l.links, l.hash, op.newContextID
	if l.masks != nil {
		for i := range links {
			if k := &links[i]; k.context != skip && l.masks[i].subsetOf(sensMask) {
				k.activate()
				active = append(active, cadActive{id: k.context, count: int(k.activations), leftHash: lh, rightHash: k.rightHash})
			}
		}
		return active
	}
	// act covers the sensor facts in the range's own band only: these lie
	// beyond it. The right semi-contexts are found through contexts, the
	// links by id, in which order they were made.
	vals := l.contexts.vals()
	for s, r := range l.contexts.keys {
		if id := vals[s]; r >= 0 && id != skip && op.rights[r].mask.subsetOf(sensMask) {
			i, _ := slices.BinarySearchFunc(links, id, func(k cadLink, id int32) int { return int(k.context - id) })
			k := &links[i]
			k.activate()
			active = append(active, cadActive{id: k.context, count: int(k.activations), leftHash: lh, rightHash: k.rightHash})
		}
	}
	return active
}

// leftOf returns the left semi-context of context id, −1 if there is no
// such context.
func (op *contextOperator) leftOf(id int32) int32 {
	if int(id) < len(op.contexts) {
		return op.contexts[id].left
	}
	return -1
}

// sensPattern returns, for sensor facts sens in the range's own band,
// their value (bit i the bit of the i-th fact), which indexes the act
// tables; otherwise, or without the tables, −1.
func (op *contextOperator) sensPattern(sens []int64) int {
	if op.patterns == nil || sens[0] > 1 {
		return -1
	}
	p := 0
	for i, f := range sens {
		p |= int(f&1) << i
	}
	return p
}

// crossPartial is crossRightAll's walk over the zero-level contexts of
// left semi-context lid, of which matched facts are present (its sensor
// facts present, and its neuron facts at neuronPos): it offers the
// crossings of those whose right semi-context is partly present as
// potential contexts, noting what it offered in e, the account of lid's
// crossing with the left facts (see crossRightAll).
func (op *contextOperator) crossPartial(lid int32, matched int, e *crossEntry, sens []int64, sensMask factMask, byPos bool) {
	z := &op.zeroLefts[lid]
	for i := -1; i < len(z.more); i++ {
		k := &z.first
		if i >= 0 {
			k = &z.more[i]
		}
		common := k.mask.and(sensMask)
		if common.empty() || k.context == op.newContextID {
			continue
		}
		rc := op.rightCrossing(k.right, common, sens)
		if rc.sub < 64 {
			if e.offered&(1<<rc.sub) != 0 {
				continue
			}
			e.offered |= 1 << rc.sub
		}
		if !e.hashed {
			e.lh, e.hashed = op.crossingHash(lid, matched, e.pos, byPos), true
			e.crossing = int32(len(op.crossingLefts))
			op.crossingLefts = append(op.crossingLefts, cadCrossingLeft{pos: e.pos})
		}
		op.potential(e.lh, e.crossing, rc, lid)
	}
}

// crossSet maps the crossings of left semi-contexts with the left facts,
// by the positions of their facts among the left facts, to their hashes
// and the subsets of sens offered with them this step. It is emptied in
// O(1) by a new generation.
type crossSet struct {
	entries []crossEntry
	shift   uint // 64 − log2(len(entries)): a hash's top bits index it
	cur     uint32
	n       int
}

// crossEntry is a crossing: its positions, which subsets of sens (as
// rightCrossing numbers them, below 64) were offered with it, and its hash
// once worked out.
type crossEntry struct {
	pos, offered uint64
	lh           int64
	gen          uint32
	crossing     int32 // in op.crossingLefts, once hashed
	hashed       bool
}

func (s *crossSet) reset() {
	s.cur++
	s.n = 0
	if s.cur == 0 { // wrapped: forget every generation
		clear(s.entries)
		s.cur = 1
	}
}

// find returns the entry of pos, adding an empty one if there is none.
// The entry stays put until the next find. Its first probe is
// crossRightAll's, by hand.
func (s *crossSet) find(pos uint64) *crossEntry {
	if 2*(s.n+1) > len(s.entries) {
		s.grow()
	}
	mask := uint64(len(s.entries) - 1)
	for i := pos * 0x9e3779b97f4a7c15 >> s.shift; ; i = (i + 1) & mask {
		e := &s.entries[i]
		if e.gen != s.cur {
			*e = crossEntry{pos: pos, gen: s.cur}
			s.n++
			return e
		}
		if e.pos == pos {
			return e
		}
	}
}

func (s *crossSet) grow() {
	old, cur := s.entries, s.cur
	s.entries, s.cur, s.n = make([]crossEntry, max(64, 2*len(old))), 1, 0
	s.shift = uint(64 - bits.TrailingZeros(uint(len(s.entries))))
	for _, e := range old {
		if e.gen == cur {
			n := s.find(e.pos)
			*n = e
			n.gen = 1
		}
	}
}

// cadRightCrossing is the crossing of a right semi-context with the
// sensor facts of the step numbered step: which of them (as bits by index)
// it holds, and its hash.
type cadRightCrossing struct {
	step uint32
	sub  uint32
	rh   int64
}

// rightCrossing returns the crossing of right semi-context rid, whose
// facts among sens are common, with sens, worked out once a step.
func (op *contextOperator) rightCrossing(rid int32, common factMask, sens []int64) *cadRightCrossing {
	if rc := &op.rightCrossings[rid]; rc.step == op.step {
		return rc
	}
	return op.newRightCrossing(rid, common, sens)
}

func (op *contextOperator) newRightCrossing(rid int32, common factMask, sens []int64) *cadRightCrossing {
	rc := &op.rightCrossings[rid]
	sub := sensBits(common, sens[0])
	h := newTupleHasher(bits.OnesCount64(sub))
	for b := sub; b != 0; b &= b - 1 {
		h.add(sens[bits.TrailingZeros64(b)])
	}
	*rc = cadRightCrossing{step: op.step, sub: uint32(sub), rh: h.sum()}
	return rc
}

// pairBits[x] is sensBits of the facts x of the first four pairs.
var pairBits = func() (t [256]uint8) {
	for x := range t {
		for i := range 4 {
			if x>>(2*i)&3 != 0 {
				t[x] |= 1 << i
			}
		}
	}
	return t
}()

// sensBits returns which of the sensor facts of one value, the first of
// which is first, are in m, a subset of them, as bits by index: fact
// first&^1 + 2i + bit is index i.
func sensBits(m factMask, first int64) uint64 {
	if first < 2 && m.hi == 0 && m.lo < uint64(len(pairBits)) {
		return uint64(pairBits[m.lo])
	}
	return gatherPairs(m.shr(uint(first &^ 1)))
}

// gatherPairs makes bit 2i (or 2i+1) of x bit i.
func gatherPairs(x uint64) uint64 {
	x = (x | x>>1) & 0x5555555555555555
	x = (x | x>>1) & 0x3333333333333333
	x = (x | x>>2) & 0x0f0f0f0f0f0f0f0f
	x = (x | x>>4) & 0x00ff00ff00ff00ff
	x = (x | x>>8) & 0x0000ffff0000ffff
	return (x | x>>16) & 0x00000000ffffffff
}

// potential records the crossing (hash lh, index crossing in
// op.crossingLefts or −1) of left semi-context lid with the left facts
// and crossing rc of a right semi-context with the sensor facts as a
// potential new context, unless it was seen this step. The walks leave
// out repeats they can tell from the subsets.
func (op *contextOperator) potential(lh int64, crossing int32, rc *cadRightCrossing, lid int32) {
	if rh := rc.rh; op.seen.add(lh, rh) {
		op.potentials = append(op.potentials, cadPotential{lh: lh, rh: rh, left: lid, sub: rc.sub, crossing: crossing})
	}
}

// codeOK marks a sensorCode.
const codeOK = 1 << 16

// sensorCode codes sensor facts of the range's own band, up to eight
// pairs: bit i marks pair i (facts 2i and 2i+1) as holding one, bit 8+i
// is its value; codeOK is set. Facts of another band, or beyond, give 0.
func sensorCode(m factMask) uint32 {
	if m.hi != 0 || m.lo >= 1<<16 {
		return 0
	}
	code := uint32(codeOK)
	for i := range 8 {
		switch m.lo >> (2 * i) & 3 {
		case 1:
			code |= 1 << i
		case 2:
			code |= 1<<i | 1<<(8+i)
		case 3:
			return 0 // both facts of a pair: not one value's
		}
	}
	return code
}

// crossingHash returns the hash of the crossing of left semi-context lid,
// not wholly present, with the left facts last crossed, of which matched
// are in it. With byPos they are the left facts at positions pos;
// otherwise lid's facts are looked up.
func (op *contextOperator) crossingHash(lid int32, matched int, pos uint64, byPos bool) int64 {
	h := newTupleHasher(matched)
	if !byPos {
		for _, f := range op.lefts[lid].facts {
			if op.present(f) {
				h.add(f)
			}
		}
		return h.sum()
	}
	for ; pos != 0; pos &= pos - 1 {
		h.add(op.left[bits.TrailingZeros64(pos)])
	}
	return h.sum()
}

// cadPotential is a potential new context: the crossings of left
// semi-context left with the previous left facts and of a right
// semi-context with the sensor facts, those of them in sub (as bits by
// index), and their hashes. crossing indexes op.crossingLefts, or is −1
// when left is wholly present and so is its own crossing.
type cadPotential struct {
	lh, rh   int64
	left     int32
	sub      uint32
	crossing int32
}

// cadCrossingLeft is the left semi-context of a crossing, once found,
// and the positions of its facts among the left facts crossed (0 when
// not known).
type cadCrossingLeft struct {
	pos uint64
	lid int32
	ok  bool
}

// cadSubRight is the right semi-context of the facts of sens in a subset,
// found on the step numbered step.
type cadSubRight struct {
	step uint32
	rid  int32
}

// crossedFacts returns the facts of the crossings pc stands for, sens
// being the sensor facts, in scratch space that the next call reuses. It
// must run while op.inLeft, op.prevMask and op.prevLeft describe the left
// facts crossed.
func (op *contextOperator) crossedFacts(pc *cadPotential, sens []int64) (left, right []int64) {
	facts := op.lefts[pc.left].facts
	if cap(op.scratch) < len(facts)+len(sens) {
		op.scratch = make([]int64, 0, 2*(len(facts)+len(sens)))
	}
	left = op.scratch[:0]
	switch {
	case pc.crossing < 0:
		left = append(left, facts...) // wholly present
	case op.crossingLefts[pc.crossing].pos != 0:
		// op.prevLeft holds the left facts crossed.
		for pos := op.crossingLefts[pc.crossing].pos; pos != 0; pos &= pos - 1 {
			left = append(left, op.prevLeft[bits.TrailingZeros64(pos)])
		}
	default:
		for _, f := range facts {
			if op.present(f) {
				left = append(left, f)
			}
		}
	}
	right = left[len(left):]
	for b := uint64(pc.sub); b != 0; b &= b - 1 {
		right = append(right, sens[bits.TrailingZeros64(b)])
	}
	op.scratch = left[:0]
	return left, right
}

// present reports whether fact f is among the left facts last crossed.
func (op *contextOperator) present(f int64) bool {
	if f < neuronBase {
		return op.prevMask.has(f)
	}
	return op.inLeft[f-neuronBase] == op.cur
}

// idTable maps hashes to ids (non-negative), by open addressing.
type idTable struct {
	keys []int64
	ids  []int32 // −1 marks an empty slot
	n    int
}

// reset empties t, keeping its slots.
func (t *idTable) reset() {
	for i := range t.ids {
		t.ids[i] = -1
	}
	t.n = 0
}

func (t *idTable) get(key int64) (int32, bool) {
	if t.n == 0 {
		return 0, false
	}
	mask := uint64(len(t.keys) - 1)
	for i := idSlot(key, mask); ; i = (i + 1) & mask {
		if t.ids[i] < 0 {
			return 0, false
		}
		if t.keys[i] == key {
			return t.ids[i], true
		}
	}
}

// set adds a key that is not present.
func (t *idTable) set(key int64, id int32) {
	if 2*(t.n+1) > len(t.keys) {
		old, oldIDs := t.keys, t.ids
		t.keys, t.ids, t.n = make([]int64, max(64, 2*len(old))), make([]int32, max(64, 2*len(old))), 0
		for i := range t.ids {
			t.ids[i] = -1
		}
		for i, k := range old {
			if oldIDs[i] >= 0 {
				t.set(k, oldIDs[i])
			}
		}
	}
	mask := uint64(len(t.keys) - 1)
	i := idSlot(key, mask)
	for t.ids[i] >= 0 {
		i = (i + 1) & mask
	}
	t.keys[i], t.ids[i] = key, id
	t.n++
}

func idSlot(key int64, mask uint64) uint64 {
	h := uint64(key) * 0x9e3779b97f4a7c15
	return (h ^ h>>29) & mask
}

// pairSet is a set of hash pairs, emptied in O(1) by a new generation.
type pairSet struct {
	keys [][2]int64
	gen  []uint32
	cur  uint32
	n    int
}

func (s *pairSet) reset() {
	s.cur++
	s.n = 0
}

// add inserts (a, b) and reports whether it was absent.
func (s *pairSet) add(a, b int64) bool {
	if 2*(s.n+1) > len(s.keys) {
		s.grow()
	}
	mask := uint64(len(s.keys) - 1)
	i := (uint64(a)*0x9e3779b97f4a7c15 ^ uint64(b)*0xc2b2ae3d27d4eb4f) >> 17 & mask
	for ; s.gen[i] == s.cur; i = (i + 1) & mask {
		if s.keys[i] == [2]int64{a, b} {
			return false
		}
	}
	s.keys[i], s.gen[i] = [2]int64{a, b}, s.cur
	s.n++
	return true
}

func (s *pairSet) grow() {
	old, oldGen, cur := s.keys, s.gen, s.cur
	size := max(64, 2*len(old))
	s.keys, s.gen, s.cur, s.n = make([][2]int64, size), make([]uint32, size), 1, 0
	for i, k := range old {
		if oldGen[i] == cur {
			s.add(k[0], k[1])
		}
	}
}

// crossLeft is contextCrosser(leftOrRight=0): it stores this step's
// potential new contexts, counting those that were new, and crosses
// op.left with the left semi-contexts, keeping those wholly present.
// Repeats of a potential context are left out beforehand: the reference
// finds them already made.
func (op *contextOperator) crossLeft(sens []int64, sensMask factMask) (numNew int) {
	for i := range op.potentials {
		pc := &op.potentials[i]
		// The left semi-context is pc's own when wholly present, or the
		// one last found for its crossing; the right one is the one last
		// found for its subset of sens.
		k := cadKey{lh: pc.lh, rh: pc.rh}
		var cl *cadCrossingLeft
		if pc.crossing < 0 {
			k.lid, k.lok = pc.left, true
		} else if cl = &op.crossingLefts[pc.crossing]; cl.ok {
			k.lid, k.lok = cl.lid, true
		} else {
			k.lid, k.lok = op.leftIDs.get(k.lh)
		}
		var sr *cadSubRight
		if pc.sub < uint32(len(op.subRights)) {
			if sr = &op.subRights[pc.sub]; sr.step == op.step {
				k.rid, k.rok = sr.rid, true
			}
		}
		if !k.rok {
			k.rid, k.rok = op.rightIDs.get(k.rh)
		}
		// Most were made already, which the left semi-context's
		// rights tell without a look-up.
		if !k.lok || !k.rok || !op.lefts[k.lid].has(k.rid) {
			if _, made, _ := op.context(&k, false, nil, nil, pc, sens); made {
				numNew++
			}
		}
		if cl != nil && k.lok {
			cl.lid, cl.ok = k.lid, true
		}
		if sr != nil && k.rok {
			sr.step, sr.rid = op.step, k.rid
		}
	}
	op.potentials = op.potentials[:0]
	op.crossingLefts = op.crossingLefts[:0]
	op.crossedN = len(op.lefts)
	op.cur++
	op.prevMask = sensMask
	neurons := op.left[len(sens):]
	var sig uint64
	for _, f := range neurons {
		op.inLeft[f-neuronBase] = op.cur
		sig |= neuronSig(f)
	}
	op.leftHash = pyTupleHash(op.left)
	op.fullPending = false
	lid, ok := op.leftIDs.get(op.leftHash)
	op.leftLID, op.leftLOK = lid, ok
	if !ok || !slices.Equal(op.lefts[lid].facts, op.left) {
		op.full = op.findFull(op.fullBuf[:0], 0, sensMask, neurons, sig)
		op.fullBuf, op.fullPending = op.full, true
		return numNew
	}
	// The left facts are those of left semi-context lid, as they were
	// last time it was crossed, and the left semi-contexts wholly present
	// are those found then and, of those made since, the ones found now.
	c := &op.fullCache[lid]
	switch n := len(c.lids); {
	case int(c.upTo) == op.crossedN:
	case op.crossedN-int(c.upTo) <= 4*len(neurons):
		// Few were made: look at each.
		for id := c.upTo; int(id) < op.crossedN; id++ {
			if l := &op.lefts[id]; l.sensor.subsetOf(sensMask) && l.sig&^sig == 0 && op.neuronsPresent(l) {
				c.lids = op.mem.ids.append(c.lids, id)
			}
		}
	default:
		c.lids = op.findFull(c.lids, c.upTo, sensMask, neurons, sig)
		op.sortIDs(c.lids[n:])
	}
	c.upTo = int32(op.crossedN)
	op.full = c.lids
	return numNew
}

// sortIDs sorts ids, distinct left semi-contexts below op.crossedN, by
// setting their bits in a bitmap and reading them back in order.
func (op *contextOperator) sortIDs(ids []int32) {
	if len(ids) < 16 {
		slices.Sort(ids)
		return
	}
	words := (op.crossedN + 63) / 64
	if len(op.bitmap) < words {
		op.bitmap = make([]uint64, 2*words)
	}
	bm := op.bitmap[:words]
	for _, id := range ids {
		bm[id>>6] |= 1 << (id & 63)
	}
	i := 0
	for w, x := range bm {
		for ; x != 0; x &= x - 1 {
			ids[i] = int32(w<<6 + bits.TrailingZeros64(x))
			i++
		}
		bm[w] = 0
	}
}

// findFull appends to dst the left semi-contexts from id from on that are
// wholly present in op.left, whose neuron facts (marked in op.inLeft) are
// neurons and have signature sig, and whose sensor facts are sensMask.
func (op *contextOperator) findFull(dst []int32, from int32, sensMask factMask, neurons []int64, sig uint64) []int32 {
	for _, m := range op.masks {
		if m.subsetOf(sensMask) {
			ids := op.sensorOnly[m]
			if from > 0 {
				i, _ := slices.BinarySearch(ids, from)
				ids = ids[i:]
			}
			dst = append(dst, ids...)
		}
	}
	for _, f := range neurons {
		es := op.byNeuron.get(f).index
		if from > 0 {
			i, _ := slices.BinarySearchFunc(es, from, func(e cadIndexed, id int32) int { return int(e.left - id) })
			es = es[i:]
		}
		for _, e := range es {
			// f is present: with one neuron fact, e is wholly present
			// if its sensor facts are.
			if e.sensor.subsetOf(sensMask) && e.sig&^sig == 0 && (e.neurons == 1 || op.neuronsPresent(&op.lefts[e.left])) {
				dst = append(dst, e.left)
			}
		}
	}
	return dst
}

// pyIntDict is a CPython 2.7 dict from small non-negative ints to ints,
// insert-only, laid out as Objects/dictobject.c lays it out (open
// addressing with perturbed probing, growth to four times the used count
// at two-thirds full), so that walking keys in slot order visits entries
// in the order the reference's iteritems() does.
type pyIntDict struct {
	// keys are by slot, −1 marking an empty slot; the values follow them
	// in the same slice, up to cap(keys) (vals).
	keys []int32
	used int32
}

// vals returns the values by slot.
func (d *pyIntDict) vals() []int32 { return d.keys[len(d.keys):cap(d.keys)] }

const pyDictMinSize = 8

// slot returns the slot of key, or the empty slot where it would go.
func (d *pyIntDict) slot(key int32) int {
	mask := uint64(len(d.keys) - 1)
	i := uint64(key) & mask
	if d.keys[i] < 0 || d.keys[i] == key {
		return int(i)
	}
	for perturb := uint64(key); ; perturb >>= 5 {
		i = i<<2 + i + perturb + 1
		if k := d.keys[i&mask]; k < 0 || k == key {
			return int(i & mask)
		}
	}
}

func (d *pyIntDict) get(key int32) (int32, bool) {
	if d.used == 0 {
		return 0, false
	}
	s := d.slot(key)
	return d.vals()[s], d.keys[s] == key
}

// set inserts a key that is not present and returns its slot, unless
// the table was resized, which moves every key.
func (d *pyIntDict) set(key, val int32, mem *slab[int32]) (slot int, resized bool) {
	if d.keys == nil {
		d.alloc(pyDictMinSize, mem)
	}
	s := d.slot(key)
	d.keys[s], d.vals()[s] = key, val
	d.used++
	if int(d.used)*3 >= len(d.keys)*2 {
		d.resize(4*int(d.used), mem)
		return 0, true
	}
	return s, false
}

// alloc makes an empty table of size slots, keys and values in one
// slice carved from mem; the values of empty slots are undefined.
func (d *pyIntDict) alloc(size int, mem *slab[int32]) {
	d.keys = mem.alloc(2 * size)[:size]
	for i := range d.keys {
		d.keys[i] = -1
	}
}

// resize is dictresize: the smallest power of two above minUsed, filled
// in old slot order.
func (d *pyIntDict) resize(minUsed int, mem *slab[int32]) {
	size := pyDictMinSize
	for size <= minUsed {
		size <<= 1
	}
	oldKeys, oldVals := d.keys, d.vals()
	d.alloc(size, mem)
	vals := d.vals()
	for i, k := range oldKeys {
		if k >= 0 {
			s := d.slot(k)
			d.keys[s], vals[s] = k, oldVals[i]
		}
	}
}

// pyTupleHash is CPython 2.7's hash of a tuple of ints on a 64-bit build
// (Objects/tupleobject.c tuplehash), which NAB's reference uses to key
// semi-contexts and to break ties between active contexts.
func pyTupleHash(xs []int64) int64 {
	h := newTupleHasher(len(xs))
	for _, x := range xs {
		h.add(x)
	}
	return h.sum()
}

// tupleHasher computes pyTupleHash of a tuple of known length element by
// element.
type tupleHasher struct {
	x, mult int64
	left    int64
}

func newTupleHasher(n int) tupleHasher {
	return tupleHasher{x: 0x345678, mult: 1000003, left: int64(n)}
}

func (h *tupleHasher) add(y int64) {
	if y == -1 {
		y = -2 // hash(-1) is -2 in CPython
	}
	h.left--
	h.x = (h.x ^ y) * h.mult
	h.mult += 82520 + h.left + h.left
}

func (h *tupleHasher) sum() int64 {
	x := h.x + 97531
	if x == -1 {
		x = -2
	}
	return x
}

var _ PointDetector = (*CADOSE)(nil)
