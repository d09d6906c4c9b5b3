package flows

// A conn keeps its ID and its SYN time or handshake RTT in 32 bits each,
// which is where they fit for every connection but a few: those whose
// ID's high 32 bits are not the table's ID epoch (coldStore.epoch), a SYN
// more than 4 s after the connection's first packet (or before it) and a
// handshake slower than 4 s keep the rest in their cold record.
//
// The epoch is the high bits of the IDs being handed out: a connection
// without a cold record has an ID of the epoch, and a record made for it
// later takes the epoch's bits (coldStore.get). When the IDs reach the
// next epoch (every 2^32 connections, or packets with Lanes), the
// connections of the old one that have no record are given one first
// (newIDEpoch): only those alive across the boundary pay, once.

// wide is a conn.synOrRTT whose value is in the cold record.
const wide = ^uint32(0)

// ident returns c's ID.
func (c *conn) ident(cs *coldStore) uint64 {
	if c.cold == 0 {
		return uint64(cs.epoch.Load())<<32 | uint64(c.id)
	}
	return uint64(cs.at(c.cold).idHi)<<32 | uint64(c.id)
}

// setID makes id c's ID: one of an epoch other than the table's (a
// half-open connection's from before the boundary, or one handed out
// while another goroutine moves the epoch on) needs a cold record.
func (c *conn) setID(id uint64, cs *coldStore) {
	c.id = uint32(id)
	if hi := uint32(id >> 32); hi != cs.epoch.Load() || c.cold != 0 {
		cs.get(c).idHi = hi
	}
}

// newIDEpoch moves the table's ID epoch on to e, once the IDs handed out
// reach it: every connection without a cold record has an ID of the old
// epoch, and is given a record with the old epoch's bits first. The
// caller holds held's lock (nil: none). Packets applied meanwhile by other
// goroutines (Table.Apply from several) find the shards walked or not: a
// connection one opens before the walk reaches its shard is walked, and
// one with an ID of the new epoch opened before the epoch moves gets a
// record of its own (setID). With Lanes, no lane is running.
func (t *Table) newIDEpoch(held *shard, e uint32) {
	cs := t.cfg.cold
	for i := range t.shards {
		sh := &t.shards[i]
		if sh != held {
			sh.mu.Lock()
		}
		sh.m.eachConn(func(c *conn) {
			if c.cold == 0 {
				cs.get(c) // which takes the old epoch's bits
			}
		})
		if sh != held {
			sh.mu.Unlock()
		}
	}
	cs.epoch.Store(e)
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
		return cs.at(c.cold).synOrRTT.get()
	}
	return int64(c.synOrRTT)
}
