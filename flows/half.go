package flows

// A connection of which nothing but SYNs from one side has been seen — an
// unanswered handshake, or one of a flood's millions of spoofed SYNs — is
// kept as a halfOpen value in its shard's half table rather than as a full
// conn: under a quarter of the memory. It becomes a conn (by replaying its
// SYNs) as soon as any other packet of its 4-tuple arrives, and whenever a
// record of it is needed.

// halfOpen is what a connection holds while only SYNs from one side have
// been seen: enough to replay them exactly. Its fields need only 4-byte
// alignment, so that with its 44-byte key it fills an 84-byte slot
// (halftable.go).
type halfOpen struct {
	id     u64
	first  u64 // capture time of the first SYN
	last   u64 // capture time of the latest SYN
	isn    uint32
	pkts   uint16 // SYNs seen, all alike; 0 in a free slot
	frame  uint16 // frame length of each
	ipLen  uint16 // IP length of each
	window uint16
	flags  Flags
	wscale int8
	bits   uint8 // halfDir1, halfSnapped
}

const (
	halfDir1    = 1 << iota // the SYNs were sent in direction 1
	halfSnapped             // the SYN's payload was cut by the snap length
)

// u64 is a 64-bit value kept as two 32-bit halves, which need only 4-byte
// alignment.
type u64 struct{ lo, hi uint32 }

func mk64(v int64) u64   { return u64{uint32(v), uint32(uint64(v) >> 32)} }
func (v u64) get() int64 { return int64(uint64(v.lo) | uint64(v.hi)<<32) }

func (h *halfOpen) ident() uint64  { return uint64(h.id.get()) }
func (h *halfOpen) firstTS() int64 { return h.first.get() }
func (h *halfOpen) lastTS() int64  { return h.last.get() }

func (h *halfOpen) dir() Dir {
	if h.bits&halfDir1 != 0 {
		return 1
	}
	return 0
}

// halfFits reports whether p can start a halfOpen: a SYN alone without
// data (a TCP Fast Open SYN makes a full connection), whose frame and IP
// lengths fit.
func halfFits(p *Packet) bool {
	return p.Flags&(SYN|ACK|RST|FIN) == SYN && p.PayloadLen == 0 && p.FrameLen <= 0xffff && p.IPLen <= 0xffff
}

func newHalf(id uint64, p *Packet, d Dir) halfOpen {
	h := halfOpen{
		id: mk64(int64(id)), first: mk64(p.TS), last: mk64(p.TS), isn: p.Seq, pkts: 1,
		frame: uint16(p.FrameLen), ipLen: uint16(p.IPLen), window: p.Window, flags: p.Flags, wscale: p.WScale,
	}
	if d == 1 {
		h.bits |= halfDir1
	}
	if p.Snapped {
		h.bits |= halfSnapped
	}
	return h
}

// resent reports whether p, sent in direction d, is the same SYN again,
// and counts it if so.
func (h *halfOpen) resent(p *Packet, d Dir) bool {
	if d != h.dir() || p.Flags != h.flags || p.Seq != h.isn || p.PayloadLen != 0 ||
		p.FrameLen != uint32(h.frame) || p.IPLen != uint32(h.ipLen) || h.pkts == 0xffff {
		return false
	}
	h.pkts++
	if p.TS > h.lastTS() {
		h.last = mk64(p.TS)
	}
	return true
}

// packet rebuilds the SYN.
func (h *halfOpen) packet(k *Key) Packet {
	s, r := int(h.dir()), 1-int(h.dir())
	return Packet{
		Tuple: Tuple{Src: k.Addr[s], Dst: k.Addr[r], SrcPort: k.Port[s], DstPort: k.Port[r], V6: k.V6, VLAN: k.VLAN},
		TS:    h.firstTS(), Seq: h.isn, FrameLen: uint32(h.frame), IPLen: uint32(h.ipLen),
		Window: h.window, WScale: h.wscale, Flags: h.flags, Snapped: h.bits&halfSnapped != 0,
	}
}

// conn replays the SYNs into a full connection, in reuse if not nil. The
// retransmissions between the first and the latest SYN are replayed at
// the latest's time (their own times were not kept).
func (h *halfOpen) conn(k Key, cfg *Config, reuse *conn) *conn {
	p := h.packet(&k)
	d := h.dir()
	cfg.cold.release(reuse) // scratch, which held another replay
	c := newConn(&k, &p, d, reuse, cfg.cold)
	c.setID(h.ident(), cfg.cold)
	c.apply(&p, int(d), cfg)
	p.TS = h.lastTS()
	for i := 1; i < int(h.pkts); i++ {
		c.apply(&p, int(d), cfg)
	}
	return c
}

// record returns the half-open connection's record, as of capture time
// now, replaying it into scratch.
func (h *halfOpen) record(k Key, cfg *Config, scratch *conn, now, seen int64, end EndReason, withLog bool) Record {
	c := h.conn(k, cfg, scratch)
	c.expireTimers(now, seen, cfg)
	return c.record(end, cfg, withLog)
}

// mayExpire reports whether a half-open connection could have expired by
// capture time now: only then is it replayed to find out.
func (h *halfOpen) mayExpire(now int64, cfg *Config) bool {
	return now-h.lastTS() >= int64(min(cfg.handshakeWait(), cfg.IdleTimeout, cfg.ClosedTimeout))
}
