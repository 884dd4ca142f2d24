// Package detect turns windowed features into anomaly scores in [0,1] and
// alerts.
//
// A Scorer scores one series' features: the built-in detectors are a robust
// z-score over the feature's recent history (median and MAD, after Hampel's
// identifier) and an EWMA control chart (Roberts 1959). A Rule is a boolean
// expression over the latest features of several series, e.g.
//
//	temperature.delta > 5 and humidity.mean < 25 and smoke.mean > 50
//
// Every score and rule result passes through an alert lifecycle: an alert is
// raised after Debounce consecutive windows at or above the threshold, resolved
// once the score falls below the threshold minus the hysteresis, and not raised
// again within Cooldown of being resolved.
//
// PointDetectors score raw readings one at a time, for series where every
// point matters: a Gaussian tail, robust z, EWMA chart, CUSUM and
// Page-Hinkley on forecast residuals, Half-Space Trees (Tan, Ting and Liu
// 2011), a port of NAB's contextual detector CAD OSE, spatial novelty, a
// robust seasonal forecast, an online time-series discord for shapes never
// seen, Numenta's anomaly likelihood as a wrapper around any of them, and an
// ensemble. NewPointDetector builds one by name. docs/DETECTION.md has their scores on the Numenta Anomaly
// Benchmark, measured with `agent eval nab`. A detector of TypePoint runs one
// in the alert lifecycle (PointScorer), one window feature per point.
//
// Like windowing, the package is clock-free: time comes from the features and
// the readings.
package detect
