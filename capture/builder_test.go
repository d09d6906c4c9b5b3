package capture

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
)

// Helpers that build frames byte by byte for the table tests, so that each
// test shows exactly which header it is about.

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

// tcpSeg is a TCP header with options opts (padded to 4 bytes) and n bytes
// of payload.
type tcpSeg struct {
	sport, dport uint16
	seq, ack     uint32
	flags        uint16 // wire bits, NS included
	win          uint16
	opts         []byte
	payload      int
}

func (s tcpSeg) bytes() []byte {
	opts := slices.Clone(s.opts)
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	hl := 20 + len(opts)
	b := cat(be16(s.sport), be16(s.dport), be32(s.seq), be32(s.ack),
		[]byte{byte(hl/4)<<4 | byte(s.flags>>8&1), byte(s.flags)}, be16(s.win), be16(0), be16(0), opts)
	return append(b, make([]byte, s.payload)...)
}

func addr(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

// ipv4 is an IPv4 header (with options opts, a multiple of 4 bytes) before
// payload; total 0 means compute the total length.
type ipv4 struct {
	src, dst string
	proto    byte
	id       uint16
	flagsOff uint16 // flags and fragment offset field (offset in 8-byte units)
	opts     []byte
	total    int   // -1: write 0 (BIG TCP)
	ttl      uint8 // 0: 64
}

func (h ipv4) wrap(payload []byte) []byte {
	hl := 20 + len(h.opts)
	total := hl + len(payload)
	switch {
	case h.total > 0:
		total = h.total
	case h.total < 0:
		total = 0
	}
	b := cat([]byte{0x40 | byte(hl/4), 0}, be16(uint16(total)), be16(h.id), be16(h.flagsOff),
		[]byte{cmp.Or(h.ttl, 64), h.proto}, be16(0), addr(h.src), addr(h.dst), h.opts)
	return append(b, payload...)
}

// ipv6 is an IPv6 header before payload (which starts with any extension
// headers); plen -1 writes a payload length of 0 (jumbogram).
type ipv6 struct {
	src, dst string
	next     byte
	plen     int
	hops     uint8 // hop limit; 0: 64
}

func (h ipv6) wrap(payload []byte) []byte {
	plen := len(payload)
	if h.plen < 0 {
		plen = 0
	} else if h.plen > 0 {
		plen = h.plen
	}
	b := cat([]byte{0x60, 0, 0, 0}, be16(uint16(plen)), []byte{h.next, cmp.Or(h.hops, 64)}, addr(h.src), addr(h.dst))
	return append(b, payload...)
}

// ext6 is a generic IPv6 extension header (hop-by-hop, routing, destination
// options) of 8*(len+1) bytes.
func ext6(next byte, body []byte) []byte {
	b := append([]byte{next, 0}, body...)
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	b[1] = byte(len(b)/8 - 1)
	return b
}

func frag6(next byte, off int, more bool, id uint32) []byte {
	v := uint16(off) &^ 7
	if more {
		v |= 1
	}
	return cat([]byte{next, 0}, be16(v), be32(id))
}

var (
	macA = []byte{0x02, 0, 0, 0, 0, 1}
	macB = []byte{0x02, 0, 0, 0, 0, 2}
)

func ether(etype uint16, payload []byte) []byte {
	return cat(macB, macA, be16(etype), payload)
}

func tag(tpid, vid uint16) []byte { return cat(be16(tpid), be16(vid)) }

// etherTagged is an Ethernet frame with the given tags (TPID, VID pairs),
// outermost first.
func etherTagged(etype uint16, payload []byte, tags ...[]byte) []byte {
	b := cat(macB, macA)
	for _, t := range tags {
		b = append(b, t...)
	}
	return cat(b, be16(etype), payload)
}

func sll(proto uint16, payload []byte) []byte {
	return cat(be16(0), be16(1), be16(6), macA, []byte{0, 0}, be16(proto), payload)
}

func sll2(proto uint16, payload []byte) []byte {
	return cat(be16(proto), be16(0), be32(2), be16(1), []byte{0, 6}, macA, []byte{0, 0}, payload)
}

func udp(sport, dport uint16, payload []byte) []byte {
	return cat(be16(sport), be16(dport), be16(uint16(8+len(payload))), be16(0), payload)
}

func vxlan(vni uint32, payload []byte) []byte {
	return cat([]byte{0x08, 0, 0, 0}, be32(vni<<8), payload)
}

func gre(proto uint16, key bool, payload []byte) []byte {
	if key {
		return cat([]byte{0x20, 0}, be16(proto), be32(42), payload)
	}
	return cat([]byte{0, 0}, be16(proto), payload)
}

// gtpu is a G-PDU; with ext it carries a PDU session container extension
// header.
func gtpu(ext bool, payload []byte) []byte {
	if !ext {
		return cat([]byte{0x30, 0xff}, be16(uint16(len(payload))), be32(7), payload)
	}
	hdr := cat(be16(0), []byte{0, 0x85}, []byte{1, 0x10, 0x01, 0})
	return cat([]byte{0x34, 0xff}, be16(uint16(len(hdr)+len(payload))), be32(7), hdr, payload)
}

func pppoe(code byte, payload []byte) []byte {
	return cat([]byte{0x11, code}, be16(0x1234), be16(uint16(len(payload))), payload)
}

func mpls(labels int, payload []byte) []byte {
	var b []byte
	for i := 0; i < labels; i++ {
		bos := byte(0)
		if i == labels-1 {
			bos = 1
		}
		b = append(b, 0, 0x10, bos, 64) // label 1, bottom-of-stack bit, TTL 64
	}
	return append(b, payload...)
}
