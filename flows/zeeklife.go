package flows

import "time"

// This file emulates when Zeek forgets a TCP connection, for Config.Zeek:
// which packet's connection record a later packet of the same 4-tuple
// starts afresh. zeek.go emulates the endpoint states and the history of
// one connection; this file adds what Zeek's session layer and TCP
// analyzer keep to decide its end, and the conn.log fields that depend on
// it (duration, orig_bytes, resp_bytes, missed_bytes). It follows Zeek's
// source:
//
//   - scripts/base/init-bare.zeek: the tcp_* delays and timeouts below;
//   - packet_analysis/protocol/tcp/TCPSessionAdapter.cc: Process (last
//     time, sequence and acknowledgement numbers), UpdateStateMachine and
//     its Update*State (do_close, the attempt and reset timers,
//     ConnectionReset), ConnectionClosed, EndpointEOF, and the timers
//     AttemptTimer, ExpireTimer, ResetTimer and ConnDeleteTimer;
//   - packet_analysis/protocol/tcp/TCP.cc: MakeSessionAdapter (a TCP
//     connection starts with udp_inactivity_timeout);
//   - analyzer/protocol/tcp/TCP_Endpoint.cc: SetState (the inactivity
//     timeout becomes tcp_inactivity_timeout when the handshake ends) and
//     Size (orig_bytes, resp_bytes);
//   - analyzer/protocol/tcp/TCP_Reassembler.cc: DataPending, CheckEOF, and
//     Undelivered's content gaps (missed_bytes, counted by the
//     content_gap handler of base/protocols/conn/main.zeek);
//   - session/Session.cc: InactivityTimer;
//   - RunState.cc: dispatch_packet expires the timers due by a packet's
//     time before the packet is processed.
//
// Timers are kept as Zeek keeps them, as deadlines checked at the times it
// would check them (Table.zeekAdvance). Approximations:
//
//   - The reassembler is zeek.go's: data beyond a hole is one block, from
//     the lowest sequence number seen beyond the hole to last_seq.
//   - connection_partial_close has no handler in Zeek's default scripts,
//     so PartialCloseTimer is never scheduled; ResetTimer is scheduled
//     whether or not connection_reset has a handler (Zeek pull request
//     #5860).
//   - max_timer_expires (300 timers a packet) is not enforced.

// Zeek's TCP timing constants (scripts/base/init-bare.zeek).
const (
	zeekSYNTimeout    = 5 * time.Second // tcp_SYN_timeout: the first ExpireTimer
	zeekSessionTimer  = 6 * time.Second // tcp_session_timer: ExpireTimer's period
	zeekLinger        = 5 * time.Second // tcp_connection_linger
	zeekAttemptDelay  = 5 * time.Second // tcp_attempt_delay
	zeekCloseDelay    = 5 * time.Second // tcp_close_delay
	zeekResetDelay    = 5 * time.Second // tcp_reset_delay
	zeekInactivity    = 5 * time.Minute // tcp_inactivity_timeout
	zeekUDPInactivity = 1 * time.Minute // udp_inactivity_timeout, a TCP connection's until its handshake ends
)

// zeekLife is what Zeek keeps of a connection beyond zeekConn to decide
// its end. Endpoints are indexed as in zeekConn (0: the sender of the
// connection's first packet). Times are capture times (ns); a deadline of
// 0 is no timer.
type zeekLife struct {
	lastTime  int64 // Connection::last_time
	inactTO   int64 // the inactivity timeout in force
	inactAt   int64 // InactivityTimer
	attemptAt int64 // AttemptTimer
	expireAt  [3]int64
	deleteAt  int64 // ConnDeleteTimer
	resetAt   int64 // ResetTimer
	wake      int64 // the earliest deadline, as last scheduled (zeektable.go)

	ack       [2]uint32 // TCP_Endpoint::ack_seq
	ackWraps  [2]uint32
	seqWraps  [2]uint32
	holeStart [2]uint32 // relative start of the lowest data seen beyond a hole, 0 if none
	missed    uint64    // content gaps' lengths (conn.log missed_bytes)

	didClose [2]bool // TCP_Endpoint::did_close
	didEOF   [2]bool // TCP_Reassembler::did_EOF
	active   bool    // TCPSessionAdapter::is_active
	deferred bool    // close_deferred
	defGen   bool    // deferred_gen_event
}

// newZeekLife starts the life of a connection whose first packet arrives
// at ts, network time now: the Connection constructor, MakeSessionAdapter
// and the TCPSessionAdapter constructor.
func newZeekLife(ts, now int64) *zeekLife {
	l := &zeekLife{lastTime: ts, active: true, inactTO: int64(zeekUDPInactivity)}
	l.inactAt = ts + l.inactTO
	l.expireAt[0] = now + int64(zeekSYNTimeout)
	return l
}

// after updates l for packet p, sent by zeekConn endpoint s, which took the
// connection's emulation from pre to z (TCPSessionAdapter::Process).
func (l *zeekLife) after(pre, z *zeekConn, p *Packet, s int) {
	if !l.didClose[0] || !l.didClose[1] {
		l.lastTime = p.TS // Conn()->SetLastTime, unless both sides closed
	}
	l.seqNumbers(pre, z, p, s)
	l.inactivity(pre, z)
	doClose, gen := l.stateMachine(pre, p, s)
	l.contents(pre, z, p, s)
	// AckReceived checks the acknowledged endpoint's EOF, then DataSent
	// and CheckEOF the sender's, and ConnectionClosed comes last.
	if p.Flags&ACK != 0 {
		l.checkEOF(z, 1-s)
	}
	l.checkEOF(z, s)
	if doClose {
		l.connectionClosed(z, s, gen)
	}
}

// seqNumbers keeps the acknowledgement numbers and the wrap counts that
// TCP_Endpoint::Size reads: init_endpoint, init_peer, update_ack_seq and
// UpdateLastSeq.
func (l *zeekLife) seqNumbers(pre, z *zeekConn, p *Packet, s int) {
	base := pre.ep[s].last
	if pre.initsEndpoint(s, p.Flags&SYN != 0, p.Seq) {
		// InitAckSeq and InitLastSeq: the partial case's last_seq is
		// the first sequence number, a SYN's one past the segment.
		l.ack[s], base = z.ep[s].start, p.Seq
		if p.Flags&SYN != 0 {
			base = p.Seq + zeekSegLen(p)
		}
	}
	if z.ep[s].last < base {
		l.seqWraps[s]++ // UpdateLastSeq to a lower number
	}
	if p.Flags&ACK == 0 {
		return
	}
	r := 1 - s
	switch {
	case pre.state(r) == zeekInactive:
		l.ack[r] = p.Ack - 1 // init_peer
	case l.ackWraps[r] == 0 && seqLT(p.Ack, z.ep[r].start):
		// TCP_ack_underflow_or_misorder
	case p.Flags&RST != 0:
		// Acknowledgements in a RST are not trusted.
	default:
		d := int32(p.Ack - l.ack[r])
		if (p.Ack != 0 || d <= zeekTooLarge) && d > 0 {
			if p.Ack < l.ack[r] {
				l.ackWraps[r]++
			}
			l.ack[r] = p.Ack
		}
	}
}

// inactivity applies TCP_Endpoint::SetState's rule: once an endpoint leaves
// the handshake states while both were in them, the connection's
// inactivity timeout becomes tcp_inactivity_timeout.
func (l *zeekLife) inactivity(pre, z *zeekConn) {
	hs := func(s zeekState) bool { return s <= zeekSynAckSent }
	if l.inactTO == int64(zeekInactivity) || !hs(pre.state(0)) || !hs(pre.state(1)) {
		return
	}
	if !hs(z.state(0)) || !hs(z.state(1)) {
		l.inactTO = int64(zeekInactivity)
		l.inactAt = l.lastTime + l.inactTO // Session::SetInactivityTimeout
	}
}

// stateMachine replays what UpdateStateMachine does beyond the states
// (which zeek.go keeps) for packet p from endpoint s: the timers it sets,
// ConnectionReset, and whether the connection is to be reported closed
// (do_close) and with an event (gen_event).
func (l *zeekLife) stateMachine(pre *zeekConn, p *Packet, s int) (doClose, gen bool) {
	f := p.Flags
	syn, fin, rst := f&SYN != 0, f&FIN != 0, f&RST != 0
	// The states as the state machine sees them: after a flip of a
	// connection that began with a SYN-ACK (zeek.go's observe).
	o := pre.origIdx()
	if pre.bits&zbStarted == 0 && zeekFlipFirst(p) {
		o = 1
	}
	st, peer, peerPrev := pre.state(s), pre.state(1-s), pre.prev(1-s)
	if pre.synAckFlips(p) {
		o = 1 - o
		if s != o {
			st = zeekEstablished
		} else {
			peer, peerPrev = zeekEstablished, zeekSynAckSent
		}
	}
	isOrig := s == o
	switch st {
	case zeekInactive:
		if syn && isOrig {
			l.attemptAt = minDeadline(l.attemptAt, p.TS+int64(zeekAttemptDelay))
		}
		doClose, gen = fin, fin
		if rst {
			reject := peer == zeekEstablished
			if !isOrig {
				reject = peer == zeekSynSent || peer == zeekSynAckSent
			}
			doClose, gen = true, !reject
		}
	case zeekSynSent, zeekSynAckSent:
		doClose, gen = fin || rst, fin
		if rst {
			l.active = false // ConnectionReset
		}
	case zeekEstablished, zeekPartial:
		doClose, gen = fin || rst, fin && !rst
		if rst && (peer != zeekReset || peerPrev != zeekEstablished) {
			l.active = false // ConnectionReset
		}
	case zeekClosed:
		if rst && peer != zeekClosed {
			doClose = !l.didClose[s]
			l.resetAt = minDeadline(l.resetAt, p.TS+int64(zeekResetDelay))
		}
	}
	return doClose, gen
}

// contents follows the reassembler (TCP_Reassembler's DataSent and
// AckReceived): where data beyond a hole starts, and the content gaps that
// an acknowledgement reveals (missed_bytes, counted when the gap is
// reported, as zeek.go's 'G' is). zeek.go's reassembler takes everything
// up to last_seq as received once a hole closes; knowing where received
// data lies, this one corrects it: data never handed to the reassembler
// (cut short by the snapshot length) is delivered only as a gap, one
// acknowledgement at a time, as in Zeek.
func (l *zeekLife) contents(pre, z *zeekConn, p *Packet, s int) {
	e := &z.ep[s]
	if p.PayloadLen > 0 && p.Flags&RST == 0 && !p.Snapped && int32(p.Seq-e.start) >= 0 {
		rel := p.Seq - e.start
		if p.Flags&SYN != 0 {
			rel++
		}
		from := pre.ep[s].reassem + 1
		switch {
		case seqLT(from, rel):
			if l.holeStart[s] == 0 || seqLT(rel, l.holeStart[s]) {
				l.holeStart[s] = rel
			}
		case seqLT(from, rel+p.PayloadLen) && l.holeStart[s] == 0:
			e.reassem = rel + p.PayloadLen - 1 // nothing lies beyond it
		}
	}
	if r := 1 - s; p.Flags&ACK != 0 && pre.state(r) != zeekInactive {
		a := &pre.ep[r]
		rel := p.Ack - a.start
		if int32(rel) < 0 {
			rel = 0
		}
		to, from := pre.ackTarget(r, rel), a.reassem+1
		if seqGT(to, from) {
			if z.clean(r) && z.clean(s) {
				l.missed += uint64(l.gap(r, from, to, a.last-a.start))
			}
			if h := l.holeStart[r]; h == 0 || !seqLT(h, to) {
				z.ep[r].reassem = to - 1 // delivered up to the acknowledgement, not beyond
			}
		}
	}
	for i := range l.holeStart {
		if l.holeStart[i] != 0 && !seqLT(z.ep[i].reassem+1, l.holeStart[i]) {
			l.holeStart[i] = 0 // the hole is filled, or given up as a gap
		}
	}
}

// gap returns how many octets TCP_Reassembler::Undelivered reports missing
// between from and to, in endpoint i's sequence space ending at rl (its
// relative last_seq): the hole below the data seen beyond it, and what
// lies past that data.
func (l *zeekLife) gap(i int, from, to, rl uint32) uint32 {
	h := l.holeStart[i]
	if h == 0 || !seqLT(h, to) {
		return to - from
	}
	n := h - from
	if seqLT(rl, to) {
		n += to - rl
	}
	return n
}

// dataPending is TCPSessionAdapter::DataPending for endpoint i
// (TCP_Reassembler::DataPending): its data is not all delivered up to
// last_seq (less a FIN), or it has not reset and its peer holds data
// beyond a hole.
func (l *zeekLife) dataPending(z *zeekConn, i int) bool {
	e := &z.ep[i]
	rl, delivered := e.last-e.start, e.reassem+1
	if seqLT(rl, delivered) {
		return false
	}
	if delivered != rl-1 && delivered != rl {
		return true
	}
	return z.state(i) != zeekReset && l.holeStart[1-i] != 0
}

// checkEOF is TCP_Reassembler::CheckEOF and EndpointEOF: once endpoint i
// has closed and its data is delivered, a close that was deferred for
// pending data is made.
func (l *zeekLife) checkEOF(z *zeekConn, i int) {
	st := z.state(i)
	if l.didEOF[i] || (z.bits&(zbFinSeen<<i) == 0 && st != zeekClosed && st != zeekReset) || l.dataPending(z, i) {
		return
	}
	l.didEOF[i] = true
	if l.deferred {
		l.connectionClosed(z, i, l.defGen)
		l.deferred = false
	}
}

// connectionClosed is TCPSessionAdapter::ConnectionClosed for endpoint s.
func (l *zeekLife) connectionClosed(z *zeekConn, s int, gen bool) {
	if l.dataPending(z, s) {
		l.deferred = true
		if !l.defGen {
			l.defGen = gen
		}
		return
	}
	l.deferred = false
	if l.didClose[s] {
		return
	}
	l.didClose[s] = true
	r := 1 - s
	if z.state(s) == zeekReset || l.didClose[r] || z.state(r) == zeekInactive {
		if z.prev(s) != zeekInactive || z.state(r) != zeekInactive {
			if l.defGen {
				gen, l.defGen = true, false
			}
			if gen {
				l.active = false // ConnectionFinished
			}
		}
		// CancelTimers (the analyzer's: not the inactivity timer),
		// then ConnDeleteTimer.
		l.attemptAt, l.resetAt, l.expireAt = 0, 0, [3]int64{}
		l.deleteAt = l.lastTime + int64(zeekCloseDelay)
		return
	}
	if z.prev(s) != zeekInactive {
		// An ExpireTimer to look for the other side closing too.
		for i := range l.expireAt {
			if l.expireAt[i] == 0 {
				l.expireAt[i] = l.lastTime + int64(zeekSessionTimer)
				break
			}
		}
	}
}

// zeekTimer names l's timers, for fire.
type zeekTimer uint8

const (
	ztNone zeekTimer = iota
	ztInactivity
	ztAttempt
	ztExpire // ztExpire+i for expireAt[i]
	_
	_
	ztDelete
	ztReset
)

// next returns l's earliest deadline and its timer.
func (l *zeekLife) next() (int64, zeekTimer) {
	at, which := int64(0), ztNone
	try := func(t int64, w zeekTimer) {
		if t != 0 && (at == 0 || t < at) {
			at, which = t, w
		}
	}
	try(l.inactAt, ztInactivity)
	try(l.attemptAt, ztAttempt)
	for i, t := range l.expireAt {
		try(t, ztExpire+zeekTimer(i))
	}
	try(l.deleteAt, ztDelete)
	try(l.resetAt, ztReset)
	return at, which
}

// fire runs l's timers due by network time now, in deadline order, as
// Zeek's timer manager dispatches them (each is handed now, not its
// deadline), and reports whether one removed the connection, and why.
func (l *zeekLife) fire(z *zeekConn, now int64) (bool, EndReason) {
	for {
		at, which := l.next()
		if which == ztNone || at > now {
			return false, EndNone
		}
		switch which {
		case ztInactivity: // Session::InactivityTimer
			if l.lastTime+l.inactTO <= now {
				return true, EndIdle
			}
			l.inactAt = l.lastTime + l.inactTO
		case ztAttempt:
			l.attemptAt = 0
			o := z.origIdx()
			if os := z.state(o); l.active && (os == zeekSynSent || os == zeekSynAckSent) && z.state(1-o) == zeekInactive {
				return true, EndIdle
			}
		case ztDelete:
			return true, EndClosed
		case ztReset:
			l.resetAt = 0
			if l.active {
				return true, EndClosed
			}
		default:
			i := int(which - ztExpire)
			l.expireAt[i] = 0
			if !l.active {
				continue
			}
			if gone, why := l.expire(z, now); gone {
				return true, why
			}
			l.expireAt[i] = now + int64(zeekSessionTimer)
		}
	}
}

// expire is ExpireTimer's test, at network time now.
func (l *zeekLife) expire(z *zeekConn, now int64) (bool, EndReason) {
	if l.lastTime+int64(zeekLinger) >= now {
		return false, EndNone
	}
	o := z.origIdx()
	os, rs := z.state(o), z.state(1-o)
	if l.didClose[0] || l.didClose[1] {
		if (l.didClose[0] && l.didClose[1]) || os == zeekReset || rs == zeekReset || os == zeekInactive || rs == zeekInactive {
			return true, EndClosed
		}
	}
	if os == zeekInactive && rs == zeekInactive {
		return true, EndIdle
	}
	return false, EndNone
}

// zeekSegLen is get_segment_len: the sequence space p occupies.
func zeekSegLen(p *Packet) uint32 {
	n := p.PayloadLen
	if p.Flags&SYN != 0 {
		n++
	}
	if p.Flags&FIN != 0 {
		n++
	}
	if p.Flags&RST != 0 {
		n -= p.PayloadLen
	}
	return n
}

// minDeadline returns the earlier of two deadlines, 0 being none.
func minDeadline(a, b int64) int64 {
	if a == 0 || b < a {
		return b
	}
	return a
}

// zeekExtra is what a Record carries of zeekLife: the conn.log fields that
// Zeek's session layer decides. Only a table with Config.Zeek fills it.
type zeekExtra struct {
	firstDir Dir       // direction of the connection's first packet: zeekConn's endpoint 0 sent it
	lastTime int64     // Connection::last_time
	size     [2]uint64 // TCP_Endpoint::Size, endpoints as in zeekConn
	missed   uint64
}

// extra returns l's conn.log fields for its connection c.
func (l *zeekLife) extra(c *conn) *zeekExtra {
	x := &zeekExtra{firstDir: c.firstDir, lastTime: l.lastTime, missed: l.missed}
	z := zeekConn{zeekHot: c.zeek} // (size reads nothing of zeekMore)
	for i := range x.size {
		x.size[i] = l.size(&z, i)
	}
	return x
}

// size is TCP_Endpoint::Size: the sequence space endpoint i used, from its
// last sequence number or the highest acknowledgement of it, whichever is
// further, less the SYN and the FIN, in 64 bits with wraps counted.
func (l *zeekLife) size(z *zeekConn, i int) uint64 {
	e := &z.ep[i]
	start := uint64(e.start)
	last := uint64(l.seqWraps[i])<<32 | uint64(e.last)
	ack := uint64(l.ackWraps[i])<<32 | uint64(l.ack[i])
	noDataAcked := ack == start || ack == start+1
	if z.prev(i) == zeekSynSent && z.state(i) == zeekReset && z.state(1-i) == zeekInactive && !noDataAcked {
		return 0 // a half-open connection discovered and aborted
	}
	n := max(last, ack) - start
	if n != 0 {
		n-- // the SYN
	}
	if z.bits&(zbFinSeen<<i) != 0 && n != 0 {
		n-- // the FIN
	}
	return n
}
