package detect

import (
	"math"
	"math/rand/v2"
	"time"
)

// HSTParams configures HalfSpaceTrees.
type HSTParams struct {
	// Trees is the number of trees in the forest.
	Trees int
	// Depth is the depth of every tree; a tree has 2^(Depth+1)−1 nodes.
	Depth int
	// Window is ψ, the number of points in each mass profile: the trees
	// score against the last complete window and learn the current one.
	Window int
	// Shingle is how many recent values make up a point's feature vector
	// (the value, the one before it, …).
	Shingle int
	// Seed makes the random trees reproducible.
	Seed uint64
}

// HalfSpaceTrees is the streaming Half-Space Trees detector of S. C. Tan,
// K. M. Ting and T. F. Liu, "Fast Anomaly Detection for Streaming Data",
// IJCAI 2011, on a shingle of the latest values. Each tree halves a random
// work space, one random dimension at a time, down to Depth; every node
// counts how many points of the reference window (r) and of the current
// window (l) fell in it, and every Window points the current counts become
// the reference. A point's tree score is r·2^k at the first node on its
// path whose reference mass is below a tenth of the window (or the leaf),
// k being that node's depth: points in sparse, shallow regions score low.
// Here the mass is smoothed to (r+1)·2^k, so that points isolated at
// different depths do not tie at zero, and the anomaly score is
// 1 − log(1+Σ)/log(1+T·ψ·2^Depth) over the T trees. A point with no
// reference mass at depth 5 of every tree scores 1 − log(1+32T)/log(1+
// T·ψ·2^Depth), 0.61 with the defaults, and a point isolated nearer the
// root more: the configured threshold of 0.6 alerts on such points. (It
// was 0.9, which no point can reach with ψ ≥ 250: even mass 0 at depth 1
// of every tree scores 0.76.)
//
// ψ defaults to 1,000 points, three and a half days of NAB's 5-minute
// series, so that the reference profile spans several daily cycles; with
// the paper's 250, less than a day, each phase of the cycle looked novel
// to the next window and HST did no better than the null detector on NAB.
//
// Features are scaled to [0,1] by the series' range: Hints' range when
// given, otherwise the range of the first window, which is buffered and
// becomes the first reference (scores are 0 until then). As in the paper,
// each tree's work space spans [s−r, s+r] per dimension with s random in
// [0,1] and r = 2·max(s, 1−s), so values well outside the first range are
// still split. Each point costs O(Trees·Depth); memory is
// O(Trees·2^Depth) counters.
type HalfSpaceTrees struct {
	p        HSTParams
	nodes    int // per tree
	dim      []uint8
	split    []float64
	ref, cur []uint32
	limit    uint32

	lo, scale float64
	ranged    bool
	buf       []float64 // raw values until the range is known
	shingle   []float64
	seen      int
	inWindow  int
	norm      float64
	x         []float64
}

// NewHalfSpaceTrees returns a Half-Space Trees detector; p must be valid.
func NewHalfSpaceTrees(p HSTParams, h Hints) *HalfSpaceTrees {
	nodes := 1<<(p.Depth+1) - 1
	internal := 1<<p.Depth - 1
	d := &HalfSpaceTrees{
		p:       p,
		nodes:   nodes,
		dim:     make([]uint8, p.Trees*internal),
		split:   make([]float64, p.Trees*internal),
		ref:     make([]uint32, p.Trees*nodes),
		cur:     make([]uint32, p.Trees*nodes),
		limit:   uint32(math.Ceil(0.1 * float64(p.Window))),
		shingle: make([]float64, p.Shingle),
		x:       make([]float64, p.Shingle),
		norm:    math.Log1p(float64(p.Trees) * float64(p.Window) * math.Exp2(float64(p.Depth))),
	}
	rng := rand.New(rand.NewPCG(p.Seed, 0x4a5f))
	lo := make([]float64, p.Shingle)
	hi := make([]float64, p.Shingle)
	for t := range p.Trees {
		for q := range p.Shingle {
			s := float64(rng.Float64()) // its scaling is not fused into 1−s on any GOARCH
			r := 2 * max(s, 1-s)
			lo[q], hi[q] = s-r, s+r
		}
		d.build(t*internal, 0, lo, hi, rng)
	}
	if h.HasRange {
		d.setRange(h.Min, h.Max)
	}
	return d
}

// build splits node k of the tree whose internal nodes start at base,
// halving the work space [lo, hi] along a random dimension.
func (d *HalfSpaceTrees) build(base, k int, lo, hi []float64, rng *rand.Rand) {
	if k >= 1<<d.p.Depth-1 {
		return
	}
	q := rng.IntN(d.p.Shingle)
	mid := (lo[q] + hi[q]) / 2
	d.dim[base+k], d.split[base+k] = uint8(q), mid
	oldLo, oldHi := lo[q], hi[q]
	hi[q] = mid
	d.build(base, 2*k+1, lo, hi, rng)
	hi[q], lo[q] = oldHi, mid
	d.build(base, 2*k+2, lo, hi, rng)
	lo[q] = oldLo
}

func (d *HalfSpaceTrees) setRange(lo, hi float64) {
	d.lo, d.ranged = lo, true
	d.scale = 1 / spreadFloor(hi-lo, lo)
}

// Observe implements PointDetector.
func (d *HalfSpaceTrees) Observe(_ time.Time, v float64) float64 {
	if !d.ranged {
		d.buf = append(d.buf, v)
		if len(d.buf) < d.p.Window {
			return 0
		}
		lo, hi := d.buf[0], d.buf[0]
		for _, u := range d.buf {
			lo, hi = min(lo, u), max(hi, u)
		}
		d.setRange(lo, hi)
		for _, u := range d.buf[:len(d.buf)-1] {
			d.learn(u)
		}
		d.buf = nil
	}
	s := 0.0
	d.push(v)
	if d.seen > d.p.Window {
		s = d.score()
	}
	d.update()
	return s
}

// learn feeds v without scoring it.
func (d *HalfSpaceTrees) learn(v float64) {
	d.push(v)
	d.update()
}

// push shifts v, scaled, into the shingle and sets d.x.
func (d *HalfSpaceTrees) push(v float64) {
	x := (v - d.lo) * d.scale
	if d.seen == 0 {
		for i := range d.shingle {
			d.shingle[i] = x
		}
	}
	copy(d.shingle[1:], d.shingle[:len(d.shingle)-1])
	d.shingle[0] = x
	copy(d.x, d.shingle)
	d.seen++
}

// score walks each tree down the reference masses.
func (d *HalfSpaceTrees) score() float64 {
	internal := 1<<d.p.Depth - 1
	total := 0.0
	for t := range d.p.Trees {
		base, nb := t*internal, t*d.nodes
		k, depth := 0, 0
		for k < internal && d.ref[nb+k] >= d.limit {
			if d.x[d.dim[base+k]] < d.split[base+k] {
				k = 2*k + 1
			} else {
				k = 2*k + 2
			}
			depth++
		}
		total += float64(float64(d.ref[nb+k]+1) * math.Exp2(float64(depth))) // rounded: not fused into the sum
	}
	return max(0, 1-math.Log1p(total)/d.norm)
}

// update counts d.x in the current window and rolls the windows over
// every Window points.
func (d *HalfSpaceTrees) update() {
	internal := 1<<d.p.Depth - 1
	for t := range d.p.Trees {
		base, nb := t*internal, t*d.nodes
		k := 0
		for {
			d.cur[nb+k]++
			if k >= internal {
				break
			}
			if d.x[d.dim[base+k]] < d.split[base+k] {
				k = 2*k + 1
			} else {
				k = 2*k + 2
			}
		}
	}
	d.inWindow++
	if d.inWindow == d.p.Window {
		d.ref, d.cur = d.cur, d.ref
		clear(d.cur)
		d.inWindow = 0
	}
}

var _ PointDetector = (*HalfSpaceTrees)(nil)
