// Package nab scores anomaly detectors the way the Numenta Anomaly
// Benchmark (NAB) does, so that a detector's output over the NAB corpus can
// be compared with NAB's published scoreboard.
//
// A detector emits one score in [0,1] per row of each data file. A row is a
// detection when its score is ≥ a threshold; one threshold per profile is
// chosen for the whole corpus by trying every distinct score and keeping the
// best total. The first min(⌊0.15·n⌋, 750) rows of each file are
// probationary and count for nothing. Inside a labelled window only the
// earliest detection counts, worth A_TP·σ(y)/σ(−1) with
// σ(y) = 2/(1+e^{5y}) − 1 and y = −(right − i + 1)/width, so an early
// detection earns the full A_TP; a window with none costs −A_FN. A
// detection outside every window costs A_FP·σ(y) with
// y = (i − prevRight)/(prevWidth − 1) measured from the preceding window
// (σ is −1 beyond y = 3) and exactly −A_FP when no window precedes it. The
// corpus total S is normalised to 100·(S − S_null)/(S_perfect − S_null),
// with the null detector (a constant score, which the optimiser turns into
// "never detect") and a perfect detector (A_TP for each labelled window).
//
// The package follows NAB's reference implementation, nab/sweeper.py,
// nab/optimizer.py, nab/scorer.py and nab/runner.py in
// https://github.com/numenta/NAB, including its quirks: TP/FP/FN/TN are
// counts of rows, not of windows; a window whose rows all fall in the
// probationary period is neither rewarded nor penalised by the sweep, yet
// still counts towards the perfect score; ties between thresholds go to the
// higher one. The scoring method is described in A. Lavin and S. Ahmad,
// "Evaluating Real-time Anomaly Detection Algorithms – the Numenta Anomaly
// Benchmark", IEEE ICMLA 2015 (arXiv:1510.03336).
//
// Everything here is pure: no goroutines, no clock, no global state, so
// any function may be called from any goroutine on values it does not
// share with a writer.
package nab
