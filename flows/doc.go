// Package flows tracks TCP connections, keyed by 4-tuple, and infers the
// RFC 793 state of both endpoints of each one from the packets a passive
// observer sees.
//
// # Input and output
//
// The only input is [Packet], a small value that a decoder (package capture)
// fills from one frame's headers. The output is [Record], an immutable copy
// of one connection, handed out by [Table.Snapshot] and by the table's
// retire callback when a connection ends and expires.
//
// # Clock
//
// Every timer runs on capture time: the timestamp of the newest packet
// applied. Replaying the same capture therefore always gives the same
// records, and tests need no fake clock.
//
// # Concurrency
//
// [Table] is sharded by a symmetric hash of the 4-tuple; each shard has its
// own mutex. Apply, Snapshot and Sweep may be called from any goroutine.
//
// This package imports neither gopacket nor any UI toolkit.
package flows
