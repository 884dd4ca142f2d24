package detect

import (
	"math"
	"time"
)

// DiscordParams configures Discord.
type DiscordParams struct {
	// Block is how many points are averaged into one block.
	Block int
	// Length is how many consecutive blocks make the shape compared: the
	// last Length blocks against every earlier run of Length blocks.
	Length int
	// History is how many past blocks the search for a neighbour reaches
	// back; memory is 2·(History+Length) values.
	History int
	// Decay is the fraction by which the record distance shrinks per
	// block, so that a shape may again count as novel long after the
	// last one did.
	Decay float64
	// Warmup is how many blocks are seen before scoring; at least
	// 2·Length, so that a run not overlapping the last exists.
	Warmup int
}

// Discord scores the recent shape of a series by how far it lies from
// the nearest shape seen before: a time-series discord (Keogh, Lin and Fu
// 2005) found online. It is for the anomalies the other detectors miss
// because no single value is out of place: a holiday in a weekly rhythm,
// a day that does not warm, a pattern that stops. A change narrower than
// a block and within the range seen (a short daily peak that fails to
// come, where the rest of the day is flat) barely moves the block means,
// and is not its to catch.
//
// The points are averaged into blocks of Block points. Each time a block
// completes, the last Length blocks are compared with every earlier run
// of Length blocks that does not overlap them, as far back as History
// blocks, by root-mean-square difference in units of the range of block
// means seen; the least of those is the shape's distance d. The score
// compares d with the record, the greatest distance seen so far, which
// decays by Decay per block: with r = d/record, it is r/(r+1), so 0.5
// means as novel as the record and 0.55 (the default threshold) 22 %
// more. A shape more novel than any before sets the record, so the same
// change does not fire again until the record has decayed; a series that
// has always repeated exactly (record 0) scores 1 at its first
// difference. Only the point that completes a block is scored; the
// others score 0. O(History·Length) per block, O(History/Block·Length)
// per point on average; the search stops early on each run once its
// partial sum passes the best so far.
type Discord struct {
	p      DiscordParams
	sum    float64 // of the block being filled
	filled int     // points in it
	blocks []float64
	n      int // blocks completed
	lo, hi float64
	record float64
	scored bool // a distance has been measured
}

// NewDiscord returns a discord detector; p must be valid.
func NewDiscord(p DiscordParams) *Discord {
	return &Discord{p: p, blocks: make([]float64, 0, 2*(p.History+p.Length))}
}

// Observe implements PointDetector. A NaN or infinite value is skipped:
// it scores 0 and is not averaged; so is a block whose sum overflows.
func (d *Discord) Observe(_ time.Time, v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	d.sum += v
	d.filled++
	if d.filled < d.p.Block {
		return 0
	}
	b := d.sum / float64(d.filled)
	d.sum, d.filled = 0, 0
	if math.IsInf(b, 0) {
		return 0
	}
	d.push(b)
	if d.n < d.p.Warmup || d.hi == d.lo {
		return 0
	}
	dist := d.nearest() / (d.hi - d.lo)
	s := 0.0
	switch {
	case !d.scored:
	case d.record > 0:
		r := dist / d.record
		s = r / (r + 1)
	case dist > 0:
		s = 1 // the first difference in a series that has always repeated
	}
	d.record = max(d.record*(1-d.p.Decay), dist)
	d.scored = true
	return s
}

// push appends a block mean, keeping the last History+Length: once the
// buffer is full, the kept ones move to its front (amortised O(1)).
func (d *Discord) push(b float64) {
	if d.n == 0 {
		d.lo, d.hi = b, b
	}
	d.lo, d.hi = min(d.lo, b), max(d.hi, b)
	d.n++
	if len(d.blocks) == cap(d.blocks) {
		keep := d.p.History + d.p.Length
		d.blocks = append(d.blocks[:0], d.blocks[len(d.blocks)-keep:]...)
	}
	d.blocks = append(d.blocks, b)
}

// nearest returns the root-mean-square difference between the last
// Length blocks and the nearest earlier run of Length blocks that ends
// before they begin, among the last History+Length blocks.
func (d *Discord) nearest() float64 {
	m := d.p.Length
	n := len(d.blocks)
	x := d.blocks[n-m:]
	best := math.Inf(1)
	for j := max(0, n-m-d.p.History); j <= n-2*m; j++ {
		y := d.blocks[j : j+m]
		s := 0.0
		for k, xv := range x {
			e := xv - y[k]
			s += float64(e * e) // rounded before the sum: no fused multiply-add, the same bits on every GOARCH
			if s >= best {
				break
			}
		}
		best = min(best, s)
	}
	return math.Sqrt(best / float64(m))
}

var _ PointDetector = (*Discord)(nil)
