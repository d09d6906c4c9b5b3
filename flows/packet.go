package flows

// Flags are the TCP header flags, in their wire bit positions.
type Flags uint16

// TCP flags.
const (
	FIN Flags = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
	ECE
	CWR
	NS
)

// Has reports whether all of f2 are set in f.
func (f Flags) Has(f2 Flags) bool { return f&f2 == f2 }

// String returns the flags as tcpdump prints them ("S", "S.", "F.", "R").
func (f Flags) String() string {
	var b [10]byte
	n := 0
	for _, c := range []struct {
		f Flags
		c byte
	}{{SYN, 'S'}, {FIN, 'F'}, {PSH, 'P'}, {RST, 'R'}, {URG, 'U'}, {ECE, 'E'}, {CWR, 'W'}, {ACK, '.'}} {
		if f&c.f != 0 {
			b[n] = c.c
			n++
		}
	}
	if n == 0 {
		return "none"
	}
	return string(b[:n])
}

// Packet is what flows needs to know of one TCP segment: a small value that
// a decoder fills without allocating and hands to Table.Apply.
type Packet struct {
	Tuple      Tuple
	TS         int64  // capture timestamp, Unix nanoseconds
	Seq, Ack   uint32 // raw sequence and acknowledgement numbers
	PayloadLen uint32 // TCP payload bytes (from IP lengths, not the snapshot)
	FrameLen   uint32 // original wire length; for a fragmented datagram, of all its fragments
	// IPLen is the length of the IP packet that carries the segment, IP
	// header (and IPv6 extension headers) included, as far as the wire
	// carried it: the octets that IPFIX counts (RFC 7012's
	// octetDeltaCount). In a tunnel it is the inner packet's, whose
	// addresses the connection has: the outer headers belong to the
	// tunnel's own flow. For a fragmented datagram it is the reassembled
	// datagram's (its header and all its fragments' data), as the
	// datagram counts as one packet.
	IPLen  uint32
	Window uint16 // raw (unscaled) window field
	WScale int8   // window scale option of a SYN, or -1 if absent
	Flags  Flags
	// TTL is the IPv4 time to live or the IPv6 hop limit of the IP packet
	// that carries the segment (in a tunnel, the inner packet's): an RST
	// whose TTL differs from its sender's other packets was likely made
	// by something on the path. 0 when unknown (a replayed SYN).
	TTL uint8
	// IPID is an IPv4 packet's identification (0 for IPv6): a copy of a
	// packet that a capture saw twice has the same, a retransmission a
	// new one (on every stack that numbers its packets).
	IPID uint16
	// HasTS says the segment carries the timestamps option (RFC 7323);
	// TSVal is its sender's timestamp value then. A Linux host in
	// TIME_WAIT accepts a new SYN on the 4-tuple if its timestamp is
	// newer than the old connection's (see Evidence).
	HasTS   bool
	TSVal   uint32
	Snapped bool // the payload was cut short by the snapshot length
}
