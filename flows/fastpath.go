package flows

// Header prediction, as Van Jacobson's and Linux's tcp_rcv_established
// fast path do it: most packets of an established connection are plain
// ACKs, with or without data, that continue exactly where their sender
// left off and acknowledge no more than the peer sent. Such a packet
// changes no state, no Zeek history letter and no evidence but a few
// counters and stamps; the fast path checks that the packet and the
// connection are of that kind and updates only those. Everything else
// takes the slow path (conn.update, conn.note), whose result the fast
// path must equal field for field (TestFastPathSameAsSlow).

// predict is the fast path (conn.predicted); tests replace it, to count
// the packets it takes, or set it to nil to compare with the slow path.
var predict = (*conn).predicted

// notFast are the endpoint facts under which a plain ACK may do more than
// the fast path does: a FIN sent, received, awaited or inferred, an RST
// that closed it or that it may answer.
const notFast = sentFIN | gotFIN | finPending | fuzzyRST | finInferred | finAcked | resetClosed

// predicted applies packet p, sent by endpoint s, if it is of the kind
// the fast path takes (see the top of the file), and reports whether it
// was. If not, c is unchanged. cs holds the cold records.
func (c *conn) predicted(p *Packet, s int, cs *coldStore) bool {
	S, R := &c.ep[s], &c.ep[1-s]
	switch {
	case p.Flags&(SYN|FIN|RST|ACK) != ACK, p.Window == 0:
		return false
	case S.state != StateEstablished || R.state != StateEstablished:
		return false
	case (S.flags|R.flags)&notFast != 0 || !S.has(seqKnown) || p.Seq != S.nxt:
		return false // not in order
	case s == int(c.client) && !c.is(mRTTKnown) && c.synSeen():
		return false // it may be the ACK that gives the handshake's RTT
	}
	if top, known := sentTop(S, R); known && seqGT(p.Ack, top) {
		return false // it acknowledges what was not seen sent (infer.go)
	}
	sig := digest(p)
	if !c.evidencePredicts(p, s, sig, cs) || !c.zeek.predicted(p, Dir(s) == c.firstDir) {
		return false
	}
	c.evidencePredicted(p, s, sig)
	if p.TS > c.last {
		c.last = p.TS
	}
	inc(&S.pkts)
	c.addBytes(s, p.FrameLen, p.IPLen, p.PayloadLen, cs)
	S.window = p.Window
	if !S.has(ackSent) || seqGT(p.Ack, S.acked) {
		S.acked = p.Ack
		S.flags |= ackSent
	}
	if p.PayloadLen > 0 {
		S.flags |= sentData
		S.nxt = p.Seq + p.PayloadLen
	}
	return true
}

// evidencePredicts reports whether packet p from endpoint s, whose digest
// is sig, adds to c's evidence only what every packet does.
func (c *conn) evidencePredicts(p *Packet, s int, sig uint16, cs *coldStore) bool {
	ev := &c.ev
	switch {
	case sig == ev.sig[s]: // possibly the capture's copy
		return false
	case ev.bits&evZWOpen != 0: // a zero window's end, or a probe into it
		return false
	case p.PayloadLen > 0 && ev.segs[s] == 0xffff: // halves the resent count too
		return false
	case c.is(mColdWaits) && cs.peek(c).runN != 0: // a run of resends to end
		return false
	}
	return true
}

// evidencePredicted adds packet p from endpoint s, whose digest is sig, to
// c's evidence, as conn.note does when evidencePredicts.
func (c *conn) evidencePredicted(p *Packet, s int, sig uint16) {
	ev := &c.ev
	ev.sig[s] = sig
	ev.bits = ev.bits&^evLastDir | dirBit(s, evLastDir)
	c.noteTTLAndTS(p, s)
	if p.PayloadLen > 0 {
		ev.segs[s]++
	}
}

// predicted checks that packet p (a plain ACK, no zero window) adds no
// letter to z's history and changes no state, and if so applies it as
// observe would: its sender's last sequence number, and the emulated
// reassembler's progress both ways. fromFirst is as for observe.
func (z *zeekHot) predicted(p *Packet, fromFirst bool) bool {
	s := 1
	if fromFirst {
		s = 0
	}
	e, peer := &z.ep[s], &z.ep[1-s]
	st, pst := zeekState(z.bits>>(zbStateBits*s))&7, zeekState(z.bits>>(zbStateBits*(1-s)))&7
	// The sender established or partial, the peer so too or silent (a
	// capture of one direction), no FIN seen: the state machine does
	// nothing with a plain ACK.
	if z.bits&(zbStarted|zbFinSeen|zbFinSeen<<1) != zbStarted || st != zeekEstablished && st != zeekPartial ||
		pst != zeekEstablished && pst != zeekPartial && pst != zeekInactive {
		return false
	}
	seen := uint32(zseenACK)
	if p.PayloadLen > 0 {
		seen = zseenData
	}
	sh := zbSeenShift
	if (s == 0) == (z.bits&zbSwapped != 0) { // the responder sent it
		sh += zbSeenBits
	}
	end := p.Seq + p.PayloadLen
	advances := int32(end-e.last) > 0
	relAck := p.Ack - peer.start
	switch {
	case pst == zeekInactive:
		relAck = 1 // the silent peer is numbered as though its SYN was seen
	case int32(relAck) < 0:
		relAck = 0
	}
	gap := !seqLE(relAck, peer.reassem+1)
	clean := st == zeekEstablished && pst == zeekEstablished
	if z.bits&(seen<<sh) == 0 || p.PayloadLen > 0 && !advances ||
		gap && clean && peer.gap != 1<<16-1 && zeekPow10(uint32(peer.gap)+1) {
		return false // a letter: the first of its kind, a 'T' or a 'G'
	}
	if advances {
		e.last = end
	}
	if pst == zeekInactive {
		peer.start, peer.last = p.Ack-1, p.Ack-1
	}
	if gap {
		if clean && peer.gap != 1<<16-1 {
			peer.gap++
		}
		if rl := peer.last - peer.start; seqLT(relAck, rl) {
			relAck = rl
		}
		peer.reassem = relAck - 1
	}
	if relSeq := p.Seq - e.start; p.PayloadLen > 0 && int32(relSeq) >= 0 && !p.Snapped {
		r, upper := e.reassem+1, relSeq+p.PayloadLen
		if seqLE(upper, r) || seqLT(r, relSeq) {
			return true
		}
		if rl := e.last - e.start; seqLT(upper, rl) {
			upper = rl
		}
		e.reassem = upper - 1
	}
	return true
}
