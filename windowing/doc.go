// Package windowing turns readings into windowed features, per series, in
// event time.
//
// A series is assigned the first window spec whose pattern matches its name.
// Time windows are half-open, [start, end), and aligned to whole multiples of
// their hop since the Unix epoch (a tumbling window is a sliding window whose
// hop equals its size), as in Flink. A series' watermark is the latest event
// time it has seen minus the allowed lateness: a window is emitted once the
// watermark reaches its end, so readings up to Lateness out of order still
// land in the right window. Readings older than the watermark, and values
// that are NaN or infinite, are rejected and counted, never folded in.
//
// The package is a pure, clock-free core: it takes timestamps from the
// readings, never reads the wall clock, never sleeps and starts no goroutines.
// That is what lets a recording replayed as fast as the disk allows produce
// exactly the features the live agent would.
package windowing
