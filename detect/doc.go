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
// Like windowing, the package is clock-free: time comes from the features.
package detect
