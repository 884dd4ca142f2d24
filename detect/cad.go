package detect

import (
	"math"
	"math/bits"
	"slices"
	"time"
)

// CADParams configures CADOSE. Bits, BaseThreshold, RestPeriod,
// MaxLeftSemiContexts and MaxActiveNeurons are the reference's parameters,
// with its defaults; the rest say how the detector copes without the
// range that NAB's runner gives it, and bound its memory.
type CADParams struct {
	// Bits is how many bits a value is discretised to (numNormValueBits):
	// 3 makes eight levels across the range.
	Bits int
	// BaseThreshold is the raw score at or above which later scores are
	// suppressed for RestPeriod points (baseThreshold).
	BaseThreshold float64
	// RestPeriod is how many points after a raw score of BaseThreshold
	// report 0, unless Hints.Learn is set: then, as NAB sets it, it is a
	// fifth of Hints.Learn.
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
// left semi-contexts wholly present and, on the steps that make a new
// zero-level context, to those holding zero-level contexts; memory is
// bounded by MaxContexts and History.
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
		op:          newContextOperator(p.MaxLeftSemiContexts, p.MaxContexts),
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

func (d *CADOSE) setRange(lo, hi float64) {
	full := hi - lo
	if full == 0 {
		full = d.maxBinValue
	}
	d.minValue, d.minValueStep, d.ranged = lo, full/d.maxBinValue, true
	d.maxValue = hi
}

// learnRange sets the range to the values seen and rebuilds the detector from the values in its history, so that
// it is as if the range had been known when they arrived.
func (d *CADOSE) learnRange() {
	d.setRange(d.seenLo, d.seenHi)
	d.op = newContextOperator(d.p.MaxLeftSemiContexts, d.p.MaxContexts)
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
	tol := d.p.Tolerance * (d.maxValue - d.minValue)
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
	newContext := false
	if len(op.left) > 0 {
		newContext = op.zeroLevel(op.left, sens)
	}
	numSelected := op.crossRight(sens, sensMask, newContext)
	if numSelected > 0 {
		activeFrac = float64(len(op.active)) / float64(numSelected)
	}
	// The MaxActiveNeurons contexts ranking last by (activations, left
	// hash, right hash) become the neuron facts of the next left side.
	top := topActive(op.active, d.p.MaxActiveNeurons)
	left := append(op.prevLeft[:0], sens...)
	for _, a := range top {
		left = append(left, neuronBase+int64(a.id))
	}
	slices.Sort(left)
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
// active.
func topActive(active []cadActive, k int) []cadActive {
	if len(active) <= k {
		return active
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

// factMask is a set of sensor facts, which are below 128.
type factMask [2]uint64

func (m *factMask) set(f int64)             { m[f>>6] |= 1 << (f & 63) }
func (m factMask) has(f int64) bool         { return m[f>>6]&(1<<(f&63)) != 0 }
func (m factMask) subsetOf(o factMask) bool { return m[0]&^o[0] == 0 && m[1]&^o[1] == 0 }
func (m factMask) common(o factMask) int {
	return bits.OnesCount64(m[0]&o[0]) + bits.OnesCount64(m[1]&o[1])
}

// cadLeft is a left semi-context: context_operator.py's
// [crossed facts, size, matched, {right id: context id}], with the facts
// kept so that crossed facts and counts can be worked out when needed.
type cadLeft struct {
	facts    []int64 // sorted
	sensor   factMask
	neurons  int // how many of facts are neuron facts
	contexts pyIntDict
	// zeroLevel counts the zero-level contexts among them.
	zeroLevel int
	// links are the contexts again, in insertion order, for the walks
	// whose order does not matter.
	links []cadLink
}

type cadLink struct{ right, context int32 }

// cadRight is a right semi-context: sensor facts only.
type cadRight struct {
	facts []int64
	mask  factMask
	size  int
}

// cadContext is context_operator.py's contextValues:
// [activations, zero level, left hash, right hash].
type cadContext struct {
	activations         int
	zeroLevel           bool
	leftHash, rightHash int64
	left                int32 // its left semi-context
}

// contextOperator is context_operator.py's ContextOperator, organised for
// speed. The reference crosses every semi-context with the facts at every
// step. Here, on most steps, only the left semi-contexts wholly present
// in the facts matter, and they are found from an index on one neuron
// fact each and the sensor facts' bit masks. Only on steps that made a
// new zero-level context, the only steps on which new contexts and so
// orderings can arise, are the left semi-contexts that hold zero-level
// contexts walked too, in creation order as the reference walks them.
type contextOperator struct {
	maxLeft, maxContexts int
	leftIDs, rightIDs    map[int64]int32
	lefts                []cadLeft
	rights               []cadRight
	contexts             []cadContext

	// Crossing state: the left facts last crossed, how many left
	// semi-contexts existed then, and those of them wholly present.
	left       []int64
	crossedN   int
	full       []int32
	sensorOnly map[factMask][]int32 // left semi-contexts without neuron facts, by sensor facts
	masks      []factMask           // keys of sensorOnly in first-seen order
	// index files each left semi-context with neuron facts under one of
	// them, the one with the shortest list when it was made.
	index map[int64][]int32
	// inLeft[c] == cur marks context c as a neuron fact of op.left.
	inLeft []uint32
	cur    uint32
	// zeroLevels lists, ascending, the left semi-contexts that hold a
	// zero-level context.
	zeroLevels []int32

	active []cadActive
	// On a step that made a new zero-level context: the left facts before
	// it, the distinct potential contexts in order of appearance, and the
	// hashes of those and of the zero-level context.
	prevLeft   []int64
	prevMask   factMask // sensor facts of op.left
	potentials []cadPotential
	seen       pairSet
	// Per step of that kind: each zero-level left semi-context's neuron
	// facts among the previous left facts (counted through zeroPostings)
	// and the hashes of the semi-contexts' crossings, once worked out.
	zeroPostings map[int64][]int32
	zeroCount    []int32
	leftHash     []int64
	rightHash    []int64
	stepStamp    []uint32 // per left semi-context: step of zeroCount
	hashStamp    []uint32 // per left semi-context: step of leftHash
	rightStamp   []uint32
	step         uint32
	// newContextID is the id of the zero-level context made this step, 0
	// when none was: the reference stores False there, which compares
	// equal to id 0.
	newContextID int32
}

func newContextOperator(maxLeft, maxContexts int) contextOperator {
	return contextOperator{
		maxLeft: maxLeft, maxContexts: maxContexts,
		leftIDs: map[int64]int32{}, rightIDs: map[int64]int32{},
		sensorOnly: map[factMask][]int32{}, index: map[int64][]int32{},
		zeroPostings: map[int64][]int32{},
	}
}

// context finds or makes the context whose left and right facts hash to
// lh and rh; made reports a new one. At MaxContexts it makes nothing and
// returns ok=false for unknown contexts. The facts are left and right, or,
// when those are nil, the crossings potential pc stands for; they are
// copied when kept.
func (op *contextOperator) context(lh, rh int64, zeroLevel bool, left, right []int64, pc *cadPotential) (id int32, made, ok bool) {
	lid, lok := op.leftIDs[lh]
	rid, rok := op.rightIDs[rh]
	if lok && rok {
		if c, ok := op.lefts[lid].contexts.get(rid); ok {
			return c, false, true
		}
	}
	if len(op.contexts) >= op.maxContexts {
		return 0, false, false
	}
	if pc != nil {
		left, right = op.crossedFacts(pc)
	}
	if !lok {
		lid = op.addLeft(left, lh)
	}
	if !rok {
		rid = int32(len(op.rights))
		op.rightIDs[rh] = rid
		r := cadRight{facts: slices.Clone(right), size: len(right)}
		for _, f := range right {
			r.mask.set(f)
		}
		op.rights = append(op.rights, r)
		op.rightHash = append(op.rightHash, 0)
		op.rightStamp = append(op.rightStamp, 0)
	}
	id = int32(len(op.contexts))
	l := &op.lefts[lid]
	l.contexts.set(rid, id)
	l.links = append(l.links, cadLink{rid, id})
	op.contexts = append(op.contexts, cadContext{zeroLevel: zeroLevel, leftHash: lh, rightHash: rh, left: lid})
	op.inLeft = append(op.inLeft, 0)
	if zeroLevel {
		op.markZeroLevel(lid)
	}
	return id, true, true
}

func (op *contextOperator) addLeft(facts []int64, hash int64) int32 {
	id := int32(len(op.lefts))
	op.leftIDs[hash] = id
	l := cadLeft{facts: slices.Clone(facts)}
	best := int64(-1)
	for _, f := range facts {
		if f < neuronBase {
			l.sensor.set(f)
			continue
		}
		l.neurons++
		if best < 0 || len(op.index[f]) < len(op.index[best]) {
			best = f
		}
	}
	if l.neurons == 0 {
		if _, ok := op.sensorOnly[l.sensor]; !ok {
			op.masks = append(op.masks, l.sensor)
		}
		op.sensorOnly[l.sensor] = append(op.sensorOnly[l.sensor], id)
	} else {
		op.index[best] = append(op.index[best], id)
	}
	op.lefts = append(op.lefts, l)
	op.zeroCount = append(op.zeroCount, 0)
	op.leftHash = append(op.leftHash, 0)
	op.stepStamp = append(op.stepStamp, 0)
	op.hashStamp = append(op.hashStamp, 0)
	return id
}

// markZeroLevel counts a zero-level context in left semi-context lid.
func (op *contextOperator) markZeroLevel(lid int32) {
	l := &op.lefts[lid]
	l.zeroLevel++
	if l.zeroLevel == 1 {
		i, _ := slices.BinarySearch(op.zeroLevels, lid)
		op.zeroLevels = slices.Insert(op.zeroLevels, i, lid)
		for _, f := range l.facts[len(l.facts)-l.neurons:] {
			op.zeroPostings[f] = append(op.zeroPostings[f], lid)
		}
	}
}

// neuronsPresent reports whether every neuron fact of l is among the left
// facts last crossed.
func (op *contextOperator) neuronsPresent(l *cadLeft) bool {
	for _, f := range l.facts[len(l.facts)-l.neurons:] {
		if op.inLeft[f-neuronBase] != op.cur {
			return false
		}
	}
	return true
}

// zeroLevel is getContextByFacts for the one zero-level context of a step:
// it reports whether the context is new, and marks an old one zero-level.
func (op *contextOperator) zeroLevel(left, right []int64) bool {
	lh, rh := pyTupleHash(left), pyTupleHash(right)
	id, made, ok := op.context(lh, rh, true, left, right, nil)
	if made {
		op.seen.reset()
		op.seen.add(lh, rh)
		op.potentials = op.potentials[:0]
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
// op.potentials), and returns how many contexts were selected.
func (op *contextOperator) crossRight(sens []int64, sensMask factMask, newContext bool) (numSelected int) {
	op.active = op.active[:0]
	if newContext {
		numSelected = op.crossRightAll(sens, sensMask)
	} else {
		for _, lid := range op.full {
			for _, link := range op.lefts[lid].links {
				if link.context == op.newContextID {
					continue
				}
				numSelected++
				r := &op.rights[link.right]
				if r.mask.subsetOf(sensMask) {
					op.activate(link.context)
				}
			}
		}
	}
	op.newContextID = 0
	return numSelected
}

func (op *contextOperator) activate(id int32) {
	c := &op.contexts[id]
	c.activations++
	op.active = append(op.active, cadActive{id: id, count: c.activations, leftHash: c.leftHash, rightHash: c.rightHash})
}

// crossRightAll is the reference's walk over every left semi-context
// crossed last step, in creation order and each one's contexts in CPython
// dict order, as it runs on a step that made a new zero-level context.
func (op *contextOperator) crossRightAll(sens []int64, sensMask factMask) (numSelected int) {
	leftMask := op.prevMask
	op.step++
	for _, f := range op.left {
		for _, lid := range op.zeroPostings[f] {
			if op.stepStamp[lid] != op.step {
				op.stepStamp[lid], op.zeroCount[lid] = op.step, 0
			}
			op.zeroCount[lid]++
		}
	}
	// Only wholly present left semi-contexts and those holding zero-level
	// contexts can do anything; walk them in creation order.
	slices.Sort(op.full)
	for i, j := 0, 0; i < len(op.full) || j < len(op.zeroLevels); {
		var lid int32
		isFull := false
		switch {
		case j == len(op.zeroLevels) || (i < len(op.full) && op.full[i] < op.zeroLevels[j]):
			lid, isFull = op.full[i], true
			i++
		case i == len(op.full) || op.zeroLevels[j] < op.full[i]:
			lid = op.zeroLevels[j]
			j++
		default:
			lid, isFull = op.full[i], true
			i++
			j++
		}
		if int(lid) >= op.crossedN {
			break
		}
		l := &op.lefts[lid]
		matched := len(l.facts)
		if !isFull {
			// A partly present one matters only with at most maxLeft
			// facts present.
			matched = l.sensor.common(leftMask)
			if op.stepStamp[lid] == op.step {
				matched += int(op.zeroCount[lid])
			}
			if matched == 0 || matched > op.maxLeft {
				continue
			}
		}
		for k, right := range l.contexts.keys {
			context := l.contexts.vals[k]
			if right < 0 || context == op.newContextID {
				continue
			}
			c := &op.contexts[context]
			r := &op.rights[right]
			rMatched := r.mask.common(sensMask)
			switch {
			case isFull:
				numSelected++
				if rMatched == 0 {
					continue
				}
				if rMatched == r.size {
					op.activate(context)
				} else if c.zeroLevel && matched <= op.maxLeft {
					op.potential(lid, right, matched, rMatched, sensMask)
				}
			case c.zeroLevel && rMatched > 0 && matched <= op.maxLeft:
				op.potential(lid, right, matched, rMatched, sensMask)
			}
		}
	}
	return numSelected
}

// cadPotential is a potential new context: the crossings of left
// semi-context left with the previous left facts and of right semi-context
// right with the sensor facts, and their hashes.
type cadPotential struct {
	lh, rh      int64
	left, right int32
	sens        factMask
}

// crossedFacts returns the facts of the crossings pc stands for. It must
// run while op.inLeft and op.prevMask describe the left facts crossed.
func (op *contextOperator) crossedFacts(pc *cadPotential) (left, right []int64) {
	for _, f := range op.lefts[pc.left].facts {
		if op.present(f) {
			left = append(left, f)
		}
	}
	for _, f := range op.rights[pc.right].facts {
		if pc.sens.has(f) {
			right = append(right, f)
		}
	}
	return left, right
}

// present reports whether fact f is among the left facts last crossed.
func (op *contextOperator) present(f int64) bool {
	if f < neuronBase {
		return op.prevMask.has(f)
	}
	return op.inLeft[f-neuronBase] == op.cur
}

// potential records the crossing of left semi-context lid (matched facts
// present) with the left facts and of right semi-context rid (rMatched
// facts present) with the sensor facts as a potential new context,
// unless it was seen this step.
func (op *contextOperator) potential(lid, rid int32, matched, rMatched int, sensMask factMask) {
	if op.hashStamp[lid] != op.step {
		h := newTupleHasher(matched)
		for _, f := range op.lefts[lid].facts {
			if op.present(f) {
				h.add(f)
			}
		}
		op.hashStamp[lid], op.leftHash[lid] = op.step, h.sum()
	}
	lh := op.leftHash[lid]
	if op.rightStamp[rid] != op.step {
		h := newTupleHasher(rMatched)
		for _, f := range op.rights[rid].facts {
			if sensMask.has(f) {
				h.add(f)
			}
		}
		op.rightStamp[rid], op.rightHash[rid] = op.step, h.sum()
	}
	rh := op.rightHash[rid]
	if op.seen.add(lh, rh) {
		op.potentials = append(op.potentials, cadPotential{lh: lh, rh: rh, left: lid, right: rid, sens: sensMask})
	}
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
		if _, made, _ := op.context(pc.lh, pc.rh, false, nil, nil, pc); made {
			numNew++
		}
	}
	op.potentials = op.potentials[:0]
	op.crossedN = len(op.lefts)
	op.full = op.full[:0]
	for _, m := range op.masks {
		if m.subsetOf(sensMask) {
			op.full = append(op.full, op.sensorOnly[m]...)
		}
	}
	op.cur++
	op.prevMask = sensMask
	neurons := op.left[len(sens):]
	for _, f := range neurons {
		op.inLeft[f-neuronBase] = op.cur
	}
	for _, f := range neurons {
		for _, lid := range op.index[f] {
			if l := &op.lefts[lid]; l.sensor.subsetOf(sensMask) && op.neuronsPresent(l) {
				op.full = append(op.full, lid)
			}
		}
	}
	return numNew
}

// pyIntDict is a CPython 2.7 dict from small non-negative ints to ints,
// insert-only, laid out as Objects/dictobject.c lays it out (open
// addressing with perturbed probing, growth to four times the used count
// at two-thirds full), so that walking keys in slot order visits entries
// in the order the reference's iteritems() does.
type pyIntDict struct {
	keys, vals []int32 // by slot; key −1 marks an empty slot
	used       int
}

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
	return d.vals[s], d.keys[s] == key
}

// set inserts a key that is not present.
func (d *pyIntDict) set(key, val int32) {
	if d.keys == nil {
		d.keys, d.vals = make([]int32, pyDictMinSize), make([]int32, pyDictMinSize)
		for i := range d.keys {
			d.keys[i] = -1
		}
	}
	s := d.slot(key)
	d.keys[s], d.vals[s] = key, val
	d.used++
	if d.used*3 >= len(d.keys)*2 {
		d.resize(4 * d.used)
	}
}

// resize is dictresize: the smallest power of two above minUsed, filled
// in old slot order.
func (d *pyIntDict) resize(minUsed int) {
	size := pyDictMinSize
	for size <= minUsed {
		size <<= 1
	}
	oldKeys, oldVals := d.keys, d.vals
	d.keys, d.vals = make([]int32, size), make([]int32, size)
	for i := range d.keys {
		d.keys[i] = -1
	}
	for i, k := range oldKeys {
		if k >= 0 {
			s := d.slot(k)
			d.keys[s], d.vals[s] = k, oldVals[i]
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
