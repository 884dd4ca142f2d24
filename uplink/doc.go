// Package uplink drains the outbox to an MQTT broker with paho and, when no
// broker is configured, runs an embedded one (mochi-mqtt) on loopback.
//
// Delivery is at-least-once: a record is published with QoS 1 and leaves the
// outbox only after the broker's PUBACK. At most InFlight publishes are
// outstanding at a time (paho itself sets no limit). When the connection
// drops, whatever was not acknowledged goes back to the outbox and is sent
// again after a reconnect with exponential backoff and jitter; the rest of the
// agent keeps running meanwhile, and the outbox grows.
//
// The device's status topic is retained: "online" on connect, "offline" from
// the last will when the link dies and from a clean shutdown.
package uplink
