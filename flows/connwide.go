package flows

// A conn keeps its ID and its SYN time or handshake RTT in 32 bits each,
// which is where they fit for every connection but those of a table that
// has handed out 2^32 IDs, a SYN more than 4 s after the connection's
// first packet (or before it) and a handshake slower than 4 s: those keep
// the rest in their cold record.

// wide is a conn.synOrRTT whose value is in the cold record.
const wide = ^uint32(0)

// ident returns c's ID.
func (c *conn) ident(cs *coldStore) uint64 {
	if c.cold == 0 {
		return uint64(c.id)
	}
	return uint64(cs.at(c.cold).idHi)<<32 | uint64(c.id)
}

// setID makes id c's ID.
func (c *conn) setID(id uint64, cs *coldStore) {
	c.id = uint32(id)
	if hi := uint32(id >> 32); hi != 0 || c.cold != 0 {
		cs.get(c).idHi = hi
	}
}

// synSeen reports whether, until the RTT is known, the client sent a SYN
// at a capture time other than 0.
func (c *conn) synSeen() bool { return c.synOrRTT != 0 }

// setSYN keeps ts as the time of the client's latest SYN, until the RTT
// is known: 1 more than its nanoseconds since c's first packet where that
// fits, 0 for a time of 0 (none, as when the time itself was kept).
func (c *conn) setSYN(ts int64, cs *coldStore) {
	switch off := ts - c.first; {
	case ts == 0:
		c.synOrRTT = 0
	case off >= 0 && off < int64(wide)-1:
		c.synOrRTT = uint32(off + 1)
	default:
		c.synOrRTT = wide
		cs.get(c).synOrRTT = mk64(ts)
	}
}

// synTime returns the time of the client's latest SYN, which synSeen.
func (c *conn) synTime(cs *coldStore) int64 {
	if c.synOrRTT == wide {
		return cs.at(c.cold).synOrRTT.get()
	}
	return c.first + int64(c.synOrRTT) - 1
}

// setRTT keeps rtt (at least 0) as the handshake's round-trip time, in
// place of the SYN's time.
func (c *conn) setRTT(rtt int64, cs *coldStore) {
	c.marks |= mRTTKnown
	if rtt < int64(wide) {
		c.synOrRTT = uint32(rtt)
		return
	}
	c.synOrRTT = wide
	cs.get(c).synOrRTT = mk64(rtt)
}

// rtt returns the handshake's round-trip time, once mRTTKnown.
func (c *conn) rtt(cs *coldStore) int64 {
	if c.synOrRTT == wide {
		return cs.peek(c).synOrRTT.get()
	}
	return int64(c.synOrRTT)
}
