// Package flows tracks TCP connections, keyed by 4-tuple, and infers the
// RFC 793 state of both endpoints of each one from the packets a passive
// observer sees.
//
// # Input and output
//
// The only input is [Packet], a small value that a decoder (package capture)
// fills from one frame's headers. The output is [Record], an immutable copy
// of one connection, handed out by [Table.Snapshot] and by the table's
// retire callback when a connection ends and expires. A view that follows
// a large table sets Config.Changes and asks [Table.EachChange] for what
// changed since it last looked.
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
// A capture may apply its packets through [Lanes] instead, which updates
// the table on several goroutines, each owning a share of the shards, and
// gives the records and events Apply (and Tick, between packets) would, in
// the same order, on the goroutine that calls it.
//
// # What the state machine does not know
//
// A passive observer assumes that what it saw was delivered, and corrects
// that only from the evidence that follows (a SYN, SYN-ACK or FIN sent
// again; a peer that never acknowledges). It does not see: a socket closed
// by its application without a packet (it keeps its last state until a
// timer or a later packet moves it); the window scale of a connection
// picked up mid-stream (RST checks then assume the largest); packets lost
// between the capture point and a host that then behaves as if they came;
// and TCP options beyond the window scale (no SACK, timestamps or MD5 are
// used to judge a segment).
//
// This package imports neither gopacket nor any UI toolkit.
package flows
