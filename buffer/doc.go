// Package buffer is the outbox: every outbound message is appended to a bbolt
// file before it is sent, and deleted only when the broker has acknowledged
// it. A crash or a power cut loses nothing that Append returned for.
//
// Records live in one bucket per priority class, keyed by a device-wide
// sequence number (big-endian, so keys sort in append order). The sequence
// counter is stored in the file too and never goes backwards, so a subscriber
// can de-duplicate the at-least-once stream by it across restarts.
//
// Take hands out the oldest untaken records, alerts before summaries; Ack
// deletes what the broker confirmed and Release puts back what it did not.
// Taken-but-unacknowledged records are only marked in memory, so after a
// restart everything not acknowledged is sent again.
package buffer
