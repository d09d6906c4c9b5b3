// Package diag judges connections and services: it names what is wrong
// with each (a refused connect, a peer that stopped reading, a socket
// left in CLOSE_WAIT, a reset injected on the path...), with the packets
// that prove it.
//
// It reads only what package flows recorded as the packets passed (a
// Record, its states and its Evidence) and judges on capture time: a
// replay of a capture gives the same verdicts as the live run did. The
// rules, their sides and thresholds are in docs/problems.md.
//
// It imports flows and the standard library only.
package diag
