// Package windowing turns readings into windowed features, per series, in
// event time.
//
// A series is assigned the first window spec whose pattern matches its name.
// The kinds:
//
//   - sliding (size, hop) and tumbling (hop = size) windows are half-open,
//     [start, end), and aligned to whole multiples of their hop since the Unix
//     epoch, as in Flink;
//   - count windows hold the last Count readings in arrival order and emit
//     every Every readings; their start and end are the first and last
//     reading's timestamps;
//   - session windows hold readings no more than Gap apart and span
//     [first reading, last reading + Gap).
//
// Event time and lateness. A series' watermark is the latest event time it
// has seen minus the allowed lateness. A time window is emitted once the
// watermark reaches its end, so a reading up to Lateness out of order still
// lands in the right window. A reading whose window was already emitted is
// late: under the drop policy it is counted and dropped; under the update
// policy it is folded in and every already-emitted window that holds it, and
// whose data is still held, is emitted again marked Update. Readings with a
// NaN or infinite value, a time before 1970 or further than MaxFuture ahead
// of their arrival are rejected and counted, never folded in. With an
// IdleTimeout, a series that has gone quiet has its watermark moved on with
// the clock (Tick), so its last windows close.
//
// Cost. A time window is cut into panes one hop long; each pane is summarised
// once, when it closes, from its readings sorted by time (so the result does
// not depend on arrival order), and panes are combined with the two-stack
// queue: O(1) amortised per reading per aggregate. count, sum (Neumaier
// compensated), mean, variance (Welford within a pane, Chan et al. across
// panes, both relative to the series' first value, so 1e9 + noise keeps its
// precision), min, max, first, last, delta, rate and ewma are exact. median,
// mad and quantiles ("p50", "p99.9", type 7 interpolation) are exact too: they
// sort the window's values at each emit, O(n log n) for n readings per
// window. A series holds at most MaxPoints readings (the open panes and the
// current window); memory per series is about 16 bytes a reading plus a few
// hundred bytes of state.
//
// The package is a pure, clock-free core: it takes event time from the
// readings and processing time from its caller, never sleeps and starts no
// goroutines. That is what lets a recording replayed as fast as the disk
// allows produce exactly the features the live agent would.
package windowing
