// Package tcpgen makes random TCP packets on a few 4-tuples, for tests
// that need connections to open, carry data, close, reset and be reused.
package tcpgen

import (
	"math/rand/v2"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// Traffic makes packets on n 4-tuples (clients 10.0.x.y to three servers),
// with sequence numbers that follow on per direction.
type Traffic struct {
	rng  *rand.Rand
	n    int
	seqs map[[2]int]uint32
	ts   int64
}

// New returns traffic on n 4-tuples, drawn from rng.
func New(rng *rand.Rand, n int) *Traffic {
	return &Traffic{rng: rng, n: n, seqs: map[[2]int]uint32{}, ts: time.Unix(1e9, 0).UnixNano()}
}

// Next returns the next packet: a SYN (or SYN-ACK from the server), a new
// one in two of three, a FIN, an RST, or an ACK with 0, 100 or 200 bytes,
// 0 to 15 µs of capture time after the last.
func (g *Traffic) Next() flows.Packet {
	rng := g.rng
	tu := rng.IntN(g.n)
	fromServer := rng.IntN(2) == 1
	var p flows.Packet
	c4 := [4]byte{10, 0, byte(tu >> 8), byte(tu)}
	s4 := [4]byte{10, 1, 0, byte(1 + tu%3)}
	cp, sp := uint16(40000+tu), uint16(80+tu%3)
	if fromServer {
		p.Tuple.SetV4(s4[:], c4[:])
		p.Tuple.SrcPort, p.Tuple.DstPort = sp, cp
	} else {
		p.Tuple.SetV4(c4[:], s4[:])
		p.Tuple.SrcPort, p.Tuple.DstPort = cp, sp
	}
	dir := [2]int{tu, 0}
	if fromServer {
		dir[1] = 1
	}
	seq := g.seqs[dir]
	switch rng.IntN(10) {
	case 0, 1:
		p.Flags = flows.SYN
		if fromServer {
			p.Flags |= flows.ACK
		}
		if rng.IntN(3) > 0 {
			seq = rng.Uint32()
		}
	case 2:
		p.Flags = flows.FIN | flows.ACK
	case 3:
		p.Flags = flows.RST
	default:
		p.Flags = flows.ACK
		p.PayloadLen = uint32(rng.IntN(3) * 100)
	}
	p.Seq = seq
	p.Ack = g.seqs[[2]int{tu, 1 - dir[1]}]
	next := seq + p.PayloadLen
	if p.Flags&(flows.SYN|flows.FIN) != 0 {
		next++
	}
	g.seqs[dir] = next
	p.Window, p.WScale = 1000, -1
	g.ts += int64(rng.IntN(4)) * int64(5*time.Microsecond)
	p.TS, p.FrameLen, p.IPLen = g.ts, 54+p.PayloadLen, 40+p.PayloadLen // Ethernet, IPv4, TCP
	return p
}
