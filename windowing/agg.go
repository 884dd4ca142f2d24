package windowing

import "math"

// agg is the mergeable summary of a run of readings of one series. Sums and
// moments are kept relative to the series' shift k (its first accepted
// value), so that values like 1e9 + noise keep their full precision:
// x − k is small and exact where x is large.
//
// Merging is associative (but not commutative: a must precede b in time),
// which is what the two-stack queue needs.
type agg struct {
	n           int
	sum, comp   float64 // Σ(x−k) with Neumaier's compensation term
	mean, m2    float64 // mean and Σ(x−mean)² of x−k (Welford; Chan to merge)
	min, max    float64 // absolute
	firstT      int64
	lastT       int64
	first, last float64 // absolute; by (time, value) order
	ewS, ewW    float64 // Σ w·(x−k) and Σ w, w = 2^((t−lastT)/halfLife) ≤ 1
}

// add folds one reading into a. Readings may come in any order; folded in
// (time, value) order the result depends on nothing else. invHalf is
// 1/half-life in 1/ns.
func (a *agg) add(t int64, x, k, invHalf float64) {
	d := x - k
	if a.n == 0 {
		*a = agg{n: 1, sum: d, mean: d, min: x, max: x, firstT: t, lastT: t, first: x, last: x, ewS: d, ewW: 1}
		return
	}
	a.n++
	s := a.sum + d
	if math.Abs(a.sum) >= math.Abs(d) {
		a.comp += (a.sum - s) + d
	} else {
		a.comp += (d - s) + a.sum
	}
	a.sum = s
	delta := d - a.mean
	a.mean += delta / float64(a.n)
	a.m2 += float64(delta * (d - a.mean)) // rounded: not fused into the sum on any GOARCH
	a.min = math.Min(a.min, x)
	a.max = math.Max(a.max, x)
	if t > a.lastT || t == a.lastT && x >= a.last {
		// The newest reading: rebase the exponential sums on it so that
		// every weight stays <= 1.
		scale := math.Exp2(-float64(t-a.lastT) * invHalf)
		a.ewS = float64(a.ewS*scale) + d
		a.ewW = float64(a.ewW*scale) + 1
		a.lastT, a.last = t, x
	} else {
		w := math.Exp2(-float64(a.lastT-t) * invHalf)
		a.ewS += float64(w * d)
		a.ewW += w
	}
	if t < a.firstT || t == a.firstT && x < a.first {
		a.firstT, a.first = t, x
	}
}

// merge returns the summary of a's readings followed by b's.
func merge(a, b *agg, invHalf float64) agg {
	if a.n == 0 {
		return *b
	}
	if b.n == 0 {
		return *a
	}
	r := agg{n: a.n + b.n}
	r.sum = a.sum + b.sum
	if math.Abs(a.sum) >= math.Abs(b.sum) {
		r.comp = a.comp + b.comp + (a.sum - r.sum) + b.sum
	} else {
		r.comp = a.comp + b.comp + (b.sum - r.sum) + a.sum
	}
	na, nb, n := float64(a.n), float64(b.n), float64(r.n)
	delta := b.mean - a.mean
	r.mean = a.mean + delta*nb/n
	r.m2 = a.m2 + b.m2 + delta*delta*na*nb/n
	r.min = math.Min(a.min, b.min)
	r.max = math.Max(a.max, b.max)
	r.firstT, r.first = a.firstT, a.first
	if b.firstT < a.firstT || b.firstT == a.firstT && b.first < a.first {
		r.firstT, r.first = b.firstT, b.first
	}
	r.lastT, r.last = b.lastT, b.last
	if a.lastT > b.lastT || a.lastT == b.lastT && a.last > b.last {
		r.lastT, r.last = a.lastT, a.last
	}
	sa := math.Exp2(-float64(r.lastT-a.lastT) * invHalf)
	sb := math.Exp2(-float64(r.lastT-b.lastT) * invHalf)
	r.ewS = float64(a.ewS*sa) + float64(b.ewS*sb)
	r.ewW = float64(a.ewW*sa) + float64(b.ewW*sb)
	return r
}

// queue is a FIFO of pane summaries that answers "merge of everything in
// the queue" in O(1) amortised per push, pop and query: the two-stack
// scheme. back collects new panes with a running merge; front holds older
// panes, each with the merge of itself and every newer pane in front. A pop
// from an empty front moves back over once, which each pane pays for once.
type queue struct {
	front   []qitem // oldest on top (last element)
	back    []*pane // newest last
	backAgg agg
	invHalf float64
}

type qitem struct {
	p   *pane
	acc agg // front: merge of p and every newer item in front
}

func (q *queue) len() int { return len(q.front) + len(q.back) }

func (q *queue) push(p *pane) {
	q.back = append(q.back, p)
	q.backAgg = merge(&q.backAgg, &p.agg, q.invHalf)
}

// oldest returns the oldest pane, or nil.
func (q *queue) oldest() *pane {
	if len(q.front) > 0 {
		return q.front[len(q.front)-1].p
	}
	if len(q.back) > 0 {
		return q.back[0]
	}
	return nil
}

// pop removes the oldest pane and returns it.
func (q *queue) pop() *pane {
	if len(q.front) == 0 {
		q.flip()
	}
	it := q.front[len(q.front)-1]
	q.front[len(q.front)-1] = qitem{}
	q.front = q.front[:len(q.front)-1]
	return it.p
}

func (q *queue) flip() {
	var acc agg
	for i := len(q.back) - 1; i >= 0; i-- {
		acc = merge(&q.back[i].agg, &acc, q.invHalf)
		q.front = append(q.front, qitem{p: q.back[i], acc: acc})
	}
	clear(q.back)
	q.back = q.back[:0]
	q.backAgg = agg{}
}

// query returns the merge of every pane in the queue.
func (q *queue) query() agg {
	if len(q.front) == 0 {
		return q.backAgg
	}
	return merge(&q.front[len(q.front)-1].acc, &q.backAgg, q.invHalf)
}

// rebuild recomputes the stacked merges after a pane in the queue changed
// (a late reading under the update policy). O(panes).
func (q *queue) rebuild() {
	panes := make([]*pane, 0, q.len())
	for i := len(q.front) - 1; i >= 0; i-- {
		panes = append(panes, q.front[i].p)
	}
	panes = append(panes, q.back...)
	clear(q.front)
	q.front = q.front[:0]
	clear(q.back)
	q.back = q.back[:0]
	q.backAgg = agg{}
	for _, p := range panes {
		q.push(p)
	}
}

// each calls f on every pane, oldest first.
func (q *queue) each(f func(*pane)) {
	for i := len(q.front) - 1; i >= 0; i-- {
		f(q.front[i].p)
	}
	for _, p := range q.back {
		f(p)
	}
}
