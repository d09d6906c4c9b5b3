package flows

// A connection of which nothing but SYNs from one side has been seen — an
// unanswered handshake, or one of a flood's millions of spoofed SYNs — is
// kept as a halfOpen value in its shard's half map rather than as a full
// conn: under a quarter of the memory. It becomes a conn (by replaying its
// SYNs) as soon as any other packet of its 4-tuple arrives, and whenever a
// record of it is needed.

// halfOpen is what a connection holds while only SYNs from one side have
// been seen: enough to replay them exactly.
type halfOpen struct {
	id      uint64
	first   int64 // capture time of the first SYN
	last    int64 // capture time of the latest SYN
	isn     uint32
	payload uint32 // data on the SYN (TCP Fast Open)
	pkts    uint16 // SYNs seen, all alike
	frame   uint16 // frame length of each
	window  uint16
	flags   Flags
	wscale  int8
	dir     Dir // the sender of the SYNs
	snapped bool
}

// halfFits reports whether p (sent in direction d) can start a halfOpen:
// a SYN alone, whose frame length fits.
func halfFits(p *Packet) bool {
	return p.Flags&(SYN|ACK|RST|FIN) == SYN && p.FrameLen <= 0xffff
}

func newHalf(id uint64, p *Packet, d Dir) halfOpen {
	return halfOpen{
		id: id, first: p.TS, last: p.TS, isn: p.Seq, payload: p.PayloadLen, pkts: 1,
		frame: uint16(p.FrameLen), window: p.Window, flags: p.Flags, wscale: p.WScale,
		dir: d, snapped: p.Snapped,
	}
}

// resent reports whether p, sent in direction d, is the same SYN again,
// and counts it if so.
func (h *halfOpen) resent(p *Packet, d Dir) bool {
	if d != h.dir || p.Flags != h.flags || p.Seq != h.isn || p.PayloadLen != h.payload ||
		p.FrameLen != uint32(h.frame) || h.pkts == 0xffff {
		return false
	}
	h.pkts++
	if p.TS > h.last {
		h.last = p.TS
	}
	return true
}

// packet rebuilds the SYN.
func (h *halfOpen) packet(k *Key) Packet {
	s, r := int(h.dir), 1-int(h.dir)
	return Packet{
		Tuple: Tuple{Src: k.Addr[s], Dst: k.Addr[r], SrcPort: k.Port[s], DstPort: k.Port[r], V6: k.V6, VLAN: k.VLAN},
		TS:    h.first, Seq: h.isn, PayloadLen: h.payload, FrameLen: uint32(h.frame),
		Window: h.window, WScale: h.wscale, Flags: h.flags, Snapped: h.snapped,
	}
}

// conn replays the SYNs into a full connection, in reuse if not nil. The
// retransmissions between the first and the latest SYN are replayed at
// the latest's time (their own times were not kept).
func (h *halfOpen) conn(k Key, cfg *Config, reuse *conn) *conn {
	p := h.packet(&k)
	c := newConn(k, &p, h.dir, reuse)
	c.id = h.id
	c.apply(&p, int(h.dir), cfg)
	p.TS = h.last
	for i := 1; i < int(h.pkts); i++ {
		c.apply(&p, int(h.dir), cfg)
	}
	return c
}

// record returns the half-open connection's record, as of capture time
// now, replaying it into scratch.
func (h *halfOpen) record(k Key, cfg *Config, scratch *conn, now, seen int64, end EndReason, withLog bool) Record {
	c := h.conn(k, cfg, scratch)
	c.expireTimers(now, seen, cfg)
	return c.record(end, withLog)
}

// mayExpire reports whether a half-open connection could have expired by
// capture time now: only then is it replayed to find out.
func (h *halfOpen) mayExpire(now int64, cfg *Config) bool {
	return now-h.last >= int64(min(cfg.HandshakeTimeout, cfg.IdleTimeout, cfg.ClosedTimeout))
}
