// Package sensors produces Readings. Each kind of source (the simulator today;
// periph.io drivers, an MQTT subscriber and CSV replay next) registers a
// constructor by name in a plain registry, and the agent builds the sources a
// config asks for with New.
//
// A Source owns no goroutines of its own beyond the one that calls Run: Run
// blocks, sends readings until its context is cancelled or the source is
// exhausted, and returns. It never closes the channel it was given; the caller
// owns that.
package sensors
