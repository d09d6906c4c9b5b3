package flows

import "time"

// epFlags are facts about one endpoint, one bit each.
type epFlags uint16

const (
	sentSYN     epFlags = 1 << iota // it sent a SYN; isn is valid
	seqKnown                        // nxt is valid
	sentFIN                         // it sent a FIN; finSeq is valid
	gotFIN                          // it has received (processed) its peer's FIN
	finPending                      // its peer's FIN arrived after a gap; not yet processed
	sentData                        // it sent payload after its SYN
	fuzzyRST                        // it was closed by an in-window but inexact RST
	wsKnown                         // wscale holds its SYN's window scale option
	sentSYNACK                      // it sent a SYN-ACK
	finAcked                        // its FIN has been acknowledged
	ackSent                         // acked is valid
	resetClosed                     // an RST closed it
	doubt                           // a delivery it awaits (SYN-ACK, ACK) failed before
	finInferred                     // its FIN was inferred from the peer's ACK, not seen (infer.go)
	synInferred                     // its SYN-ACK was inferred from the peer's ACK, not seen (infer.go)
)

// endpoint is what the observer knows of one side of a connection.
//
// Its times are stamps: milliseconds since the connection's first packet,
// plus one, in 32 bits (conn.stamp), so that 0 means none; they stop at
// 49 days. Its packet and resend counts stop at their maximum; its byte
// counts do not: they keep their low 32 bits here, and what carries out of
// them in the cold record (epCold), which a connection needs only once one
// of its directions has sent 4 GiB.
type endpoint struct {
	state   State
	preRST  State // state before a fuzzy RST, restored if it answers with an ACK
	wscale  uint8
	assumed Doubt // an assumption its state rests on that the wire cannot check (doubt.go)
	flags   epFlags
	window  uint16 // last raw window it advertised
	isn     uint32 // initial sequence number (its SYN's)
	nxt     uint32 // highest sequence number it sent, plus one
	acked   uint32 // highest acknowledgement number it sent
	finSeq  uint32 // sequence number of its FIN
	twStart uint32 // stamp of its entering TIME_WAIT, or FIN_WAIT_2 before that
	lastTx  uint32 // stamp of the last SYN or FIN it sent
	// Its retransmission interval and a pending delivery, which only
	// trouble sets, are in its cold record (epCold.rto, pending).

	// What it sent (EndpointStats); its resends and gaps, which only
	// trouble counts, are kept with the cold evidence (epCold), as are its
	// byte counts' high 32 bits (addBytes).
	pkts                    uint32
	bytes, ipBytes, payload uint32
}

// stats returns endpoint i's counters; cs holds the cold ones.
func (c *conn) stats(i int, cs *coldStore) EndpointStats {
	e, ce := &c.ep[i], &cs.peek(c).eps[i]
	return EndpointStats{
		Packets: uint64(e.pkts),
		Bytes:   uint64(ce.bytesHi)<<32 | uint64(e.bytes), IPBytes: uint64(ce.ipBytesHi)<<32 | uint64(e.ipBytes),
		Payload:     uint64(ce.payloadHi)<<32 | uint64(e.payload),
		Retransmits: uint64(ce.retrans), Gaps: uint64(ce.gaps),
	}
}

// addBytes counts a packet's frame, IP and payload lengths to what
// endpoint s sent: the low 32 bits in the endpoint, a carry out of them in
// its cold record.
func (c *conn) addBytes(s int, frame, ip, payload uint32, cs *coldStore) {
	e := &c.ep[s]
	e.bytes += frame
	e.ipBytes += ip
	e.payload += payload
	if e.bytes < frame || e.ipBytes < ip || e.payload < payload {
		ce := &cs.get(c).eps[s]
		ce.bytesHi += carry(e.bytes, frame)
		ce.ipBytesHi += carry(e.ipBytes, ip)
		ce.payloadHi += carry(e.payload, payload)
	}
}

// carry returns 1 if sum, a 32-bit sum that ended in n, wrapped.
func carry(sum, n uint32) uint32 {
	if sum < n {
		return 1
	}
	return 0
}

// inc adds one to a 32-bit counter that stops at its maximum.
func inc(n *uint32) {
	if *n != ^uint32(0) {
		*n++
	}
}

// EndpointStats are the traffic counters of one direction of a connection:
// what one endpoint sent.
type EndpointStats struct {
	Packets uint64 // TCP segments sent
	Bytes   uint64 // sum of the frames' original lengths (link layer included), as tshark counts
	// IPBytes sums the segments' IP packets, IP header included (Packet's
	// IPLen): the octets IPFIX's octetDeltaCount counts (RFC 7012).
	IPBytes     uint64
	Payload     uint64 // TCP payload bytes
	Retransmits uint64 // segments that carried only sequence space already sent
	// Gaps counts segments that started beyond the highest sequence
	// number seen before them: a packet was lost before the capture
	// point, dropped by it, or overtaken. States may then be less sure.
	Gaps uint64
}

func (e *endpoint) has(f epFlags) bool { return e.flags&f != 0 }

// Role says how a connection's client was chosen.
type Role uint8

// Reasons for the choice of client and server.
const (
	RoleBySYN     Role = iota // the client sent the first SYN
	RoleBySYNACK              // the server sent a SYN-ACK (the SYN was not seen)
	RoleByPort                // no handshake seen: the server has the well-known or non-ephemeral port
	RoleByFirstTx             // no handshake and no port hint: the first packet's receiver is the server
)

// String explains the role choice in a few words.
func (r Role) String() string {
	switch r {
	case RoleBySYN:
		return "client sent the SYN"
	case RoleBySYNACK:
		return "server sent a SYN-ACK"
	case RoleByPort:
		return "server port is well-known or not ephemeral"
	default:
		return "server received the first packet seen"
	}
}

// conn is one tracked connection. Its fields are guarded by the lock of the
// shard that holds it, in whose slab it lives (slab.go): it holds no
// pointer, so that the garbage collector never scans it.
//
// The first cache line holds what finds it and what every packet changes
// besides the endpoints: its key, roles, marks and last time
// (TestConnLayout).
type conn struct {
	key      connKey // its Key, compact (connkey.go)
	client   uint8   // index of the client in ep
	firstDir Dir     // direction of the first packet seen
	role     Role
	marks    marks       // one-bit facts
	cold     uint32      // the rest of it, in the table's coldStore (0: none yet)
	last     int64       // capture time of the last packet
	first    int64       // capture time of the first packet
	zeek     zeekHot     // and zeekMore in its cold record (zeekFull)
	ep       [2]endpoint // indexed like key's endpoints
	ev       evHot       // for a diagnosis (evidence.go)
	// id is the low 32 bits of its ID, unique in its table, in order of
	// creation; the high ones are the table's ID epoch, or in its cold
	// record if it has one (ident, connwide.go).
	id uint32
	// synOrRTT is, until the handshake's round-trip time is known, the
	// time of the client's latest SYN as 1 + its nanoseconds after first
	// (0: none seen); then the RTT (ns). Once the RTT is known the SYN's
	// time is not needed again. Either is kept in 32 bits where it fits,
	// else it is wide and the value is in the cold record (setSYN,
	// synTime, rtt in connwide.go).
	synOrRTT uint32
}

// marks are a conn's one-bit facts.
type marks uint8

const (
	mMidstream marks = 1 << iota // the connection's opening SYN was not seen
	mCheap                       // on the cheap list (see evict.go)
	mRef                         // saw a packet since the CLOCK hand passed
	mDirty                       // on its shard's change list (changes.go)
	mRTTKnown                    // synOrRTT holds the handshake's round-trip time
	mLogged                      // it has a transition log (transition.go)
	// mColdWaits: the cold record may hold a pending delivery or a run of
	// resends (coldWaits). Clear, it holds neither, and the fast path need
	// not read it: most connections have one (Zeek's state), on another
	// cache line.
	mColdWaits
)

// is reports whether c has mark m.
func (c *conn) is(m marks) bool { return c.marks&m != 0 }

// mark sets mark m of c to on.
func (c *conn) mark(m marks, on bool) {
	if on {
		c.marks |= m
	} else {
		c.marks &^= m
	}
}

// newConn starts a connection with packet p, sent in direction d, in c's
// memory: a connection from a slab, which may have
// left the table (a SYN flood evicts one for every new one), or scratch.
// Its key's addresses that are not IPv4 go to cs's address pool, until
// cs.release(c).
func newConn(key *Key, p *Packet, d Dir, c *conn, cs *coldStore) *conn {
	*c = conn{key: compact(key, &cs.addrs), firstDir: d, first: p.TS, last: p.TS}
	s := uint8(d)
	switch {
	case p.Flags&(SYN|ACK) == SYN:
		c.client, c.role = s, RoleBySYN
	case p.Flags.Has(SYN | ACK):
		c.client, c.role, c.marks = 1-s, RoleBySYNACK, c.marks|mMidstream
		// The client must have sent a SYN that the SYN-ACK acknowledges.
		cl := &c.ep[c.client]
		cl.state = StateSynSent
		cl.isn, cl.nxt = p.Ack-1, p.Ack
		cl.flags |= sentSYN | seqKnown
	default:
		c.marks |= mMidstream
		c.client, c.role = clientByPort(p, s)
		c.ep[0].state, c.ep[1].state = StateEstablished, StateEstablished
	}
	return c
}

// clientByPort picks the client of a connection seen without a handshake,
// from the ports of its first packet (sent by endpoint s).
func clientByPort(p *Packet, s uint8) (uint8, Role) {
	sp, dp := p.Tuple.SrcPort, p.Tuple.DstPort
	srcServer := func() (uint8, Role) { return 1 - s, RoleByPort }
	dstServer := func() (uint8, Role) { return s, RoleByPort }
	switch {
	case sp == dp:
	case sp < 1024 && dp >= 1024:
		return srcServer()
	case dp < 1024 && sp >= 1024:
		return dstServer()
	case ephemeral(dp) && !ephemeral(sp):
		return srcServer()
	case ephemeral(sp) && !ephemeral(dp):
		return dstServer()
	case sp < dp:
		return srcServer()
	case dp < sp:
		return dstServer()
	}
	return s, RoleByFirstTx
}

// ephemeral reports whether a port is in the range operating systems use
// for outgoing connections (Linux 32768-60999, IANA and Windows 49152-65535).
func ephemeral(port uint16) bool { return port >= 32768 }

// startsNew reports whether p, a SYN without ACK sent by endpoint s, opens a
// new connection on c's 4-tuple rather than belonging to c.
func (c *conn) startsNew(p *Packet, s int) bool {
	S, R := &c.ep[s], &c.ep[1-s]
	if S.has(sentSYN) && p.Seq == S.isn {
		return false // a retransmitted SYN
	}
	if !S.has(sentSYN) && R.has(sentSYN) && R.state == StateSynSent && S.state == StateClosed {
		return false // simultaneous open: both ends sent a SYN
	}
	return true
}

// supersede marks c as replaced by a new connection that endpoint s opened
// with a new SYN: s's old socket must be gone, and a peer in TIME_WAIT
// accepts the new SYN by dropping its old socket.
func (c *conn) supersede(p *Packet, s int, cfg *Config) {
	close := func(i int) {
		if e := &c.ep[i]; e.state != StateClosed {
			if cfg.Transitions > 0 {
				c.logTransition(cfg, Transition{
					TS: p.TS, Client: i == int(c.client), From: e.state, To: StateClosed,
					Packet: true, FromClient: s == int(c.client), Replaced: true,
					Flags: p.Flags, Seq: p.Seq, Ack: p.Ack, PayloadLen: p.PayloadLen,
				})
			}
			e.state = StateClosed
		}
	}
	close(s)
	if c.ep[1-s].state == StateTimeWait {
		close(1 - s)
	}
}

// apply updates c with packet p sent by endpoint s, logging the state
// changes it causes when the table keeps transitions, and reports whether
// p was notable evidence (evidence.go).
//
// Its timers must have been run to p's time first (Table.Apply does, as it
// checks whether c expired).
func (c *conn) apply(p *Packet, s int, cfg *Config) (notable bool) {
	if predict != nil && predict(c, p, s, cfg.cold) {
		return false // no state changed, nothing notable (fastpath.go)
	}
	before := [2]State{c.ep[0].state, c.ep[1].state}
	b := c.look(s, cfg.cold)
	c.update(p, s, cfg.cold)
	notable = c.note(p, s, &b, cfg.cold)
	if cfg.Transitions > 0 {
		for i := range c.ep {
			if c.ep[i].state != before[i] {
				c.logTransition(cfg, Transition{
					TS: p.TS, Client: i == int(c.client), From: before[i], To: c.ep[i].state,
					Packet: true, FromClient: s == int(c.client),
					Flags: p.Flags, Seq: p.Seq, Ack: p.Ack, PayloadLen: p.PayloadLen,
				})
			}
		}
	}
	return notable
}

// update applies packet p, sent by endpoint s, to both endpoints; cs
// holds the cold evidence and counts.
func (c *conn) update(p *Packet, s int, cs *coldStore) {
	S := &c.ep[s]
	if p.TS > c.last {
		c.last = p.TS
	}
	z := c.zeekFull(cs)
	z.observe(p, Dir(s) == c.firstDir)
	c.setZeek(&z, cs)
	f := p.Flags

	seqLen := p.PayloadLen
	if f&SYN != 0 {
		seqLen++
	}
	if f&FIN != 0 {
		seqLen++
	}
	end := p.Seq + seqLen
	inOrder := !S.has(seqKnown) || seqLE(p.Seq, S.nxt)
	inc(&S.pkts)
	c.addBytes(s, p.FrameLen, p.IPLen, p.PayloadLen, cs)
	if f&RST == 0 && S.has(seqKnown) && (!inOrder || seqLen > 0 && seqLE(end, S.nxt)) {
		c.outOfOrder(p, s, end, inOrder, cs)
	}
	if f&SYN != 0 && p.WScale >= 0 {
		S.wscale, S.flags = uint8(p.WScale), S.flags|wsKnown
	}
	if f&RST != 0 {
		c.reset(p, s, cs)
		return
	}
	sameWindow := S.window == p.Window
	S.window = p.Window
	if p.PayloadLen > 0 && f&SYN == 0 {
		S.flags |= sentData
	}
	if f&ACK != 0 {
		c.acknowledged(p, s, sameWindow, cs)
	}
	c.transmit(p, s, inOrder, cs)
	if !S.has(seqKnown) || seqGT(end, S.nxt) {
		S.nxt = end
		S.flags |= seqKnown
	}
}

// outOfOrder counts p, a segment that endpoint s sent which does not
// extend its sequence space in order: one that starts beyond it leaves a
// gap before it; one that ends within it is a retransmission, unless it is
// a keep-alive or fills the last gap seen (it was overtaken, not resent).
// The counts and the gap are kept in cs (epCold).
func (c *conn) outOfOrder(p *Packet, s int, end uint32, inOrder bool, cs *coldStore) {
	e, hole := &c.ep[s], &cs.peek(c).eps[s]
	switch {
	case !inOrder:
		ce := &cs.get(c).eps[s]
		inc(&ce.gaps)
		ce.holeLo, ce.holeHi = e.nxt, p.Seq
	case keepalive(p, e):
	case hole.holeLo != hole.holeHi && seqGE(p.Seq, hole.holeLo) && seqLE(end, hole.holeHi):
		if p.Seq == hole.holeLo { // (a gap, so a record of its own: hole can be written)
			hole.holeLo = end
		} else if end == hole.holeHi {
			hole.holeHi = p.Seq
		}
	default:
		inc(&cs.get(c).eps[s].retrans)
	}
}

// acknowledged applies what an ACK that endpoint s sent proves s has
// received. sameWindow is whether it advertises the window it did last;
// cs holds the cold record.
func (c *conn) acknowledged(p *Packet, s int, sameWindow bool, cs *coldStore) {
	S, R := &c.ep[s], &c.ep[1-s]
	f := p.Flags
	c.inferSent(p, S, R, cs)
	if sameWindow {
		c.resentUnseen(p, S, R, cs)
	}
	c.refuteSilence(p, S, R)
	if !S.has(ackSent) || seqGT(p.Ack, S.acked) {
		S.acked = p.Ack
		S.flags |= ackSent
	}
	if R.has(sentFIN) && seqGE(p.Ack, R.finSeq+1) {
		c.receiveFIN(S, p.TS)
	}
	if S.state == StateSynSent && f&SYN == 0 && R.has(sentSYN) && p.Ack == R.isn+1 {
		c.ackArrived(S, c.stamp(p.TS), cs) // it only ACKs a SYN-ACK it accepted
	}
	if S.state == StateSynReceived && f&SYN == 0 && S.has(sentSYN) {
		c.ackArrived(S, c.stamp(p.TS), cs) // it only sends a plain ACK once established
	}
	if S.has(fuzzyRST) && f&(SYN|FIN) == 0 && p.PayloadLen == 0 {
		S.state = S.preRST // a challenge ACK: the RST did not close it
		S.assumed = DoubtNone
		c.setPending(S, 0, cs)
	}
	S.flags &^= fuzzyRST
}

// transmit applies what sending p, without RST, does to its sender
// (endpoint s) and what receiving it does to the peer. inOrder is whether
// p starts at or below the sender's next sequence number; cs holds the
// cold counts.
func (c *conn) transmit(p *Packet, s int, inOrder bool, cs *coldStore) {
	S, R := &c.ep[s], &c.ep[1-s]
	f := p.Flags
	if S.has(finInferred) && p.PayloadLen > 0 && seqGT(p.Seq+p.PayloadLen, S.finSeq) {
		c.uninferFIN(S, R, cs) // data where its FIN was inferred: that was data
	}
	if f&SYN != 0 {
		if f&ACK == 0 {
			c.sendSYN(p, s, cs)
		} else {
			c.sendSYNACK(p, S, R, cs)
		}
	}
	resent := false
	if f&FIN != 0 {
		resent = c.sendFIN(p, S, R, cs)
	}
	// A FIN sent again shows that the first did not arrive or was not
	// acknowledged: whether this one arrives is left to the evidence that
	// follows.
	if f&ACK != 0 && !resent {
		c.receiveACK(p, R, cs)
	}
	switch {
	case resent:
	case f&FIN != 0 && inOrder:
		c.receiveFIN(R, p.TS)
	case f&FIN != 0:
		R.flags |= finPending // processed once the gap before it is filled
	case R.has(finPending) && S.has(sentFIN) && p.Seq+p.PayloadLen == S.finSeq:
		c.receiveFIN(R, p.TS) // the gap before the FIN is filled
	}
	if s == int(c.client) && f&(SYN|ACK) == ACK && !c.is(mRTTKnown) && c.synSeen() &&
		R.has(sentSYN) && !R.has(synInferred) && p.Ack == R.isn+1 {
		// The client's ACK of the SYN-ACK. An ACK captured before its
		// SYN (a merge of captures out of order) gives no RTT yet, nor
		// one of a SYN-ACK not seen: the first ACK seen may be late.
		if rtt := p.TS - c.synTime(cs); rtt >= 0 {
			c.setRTT(rtt, cs)
		}
	}
}

// keepalive reports whether p is a keep-alive probe: at most one byte,
// one below the next sequence number.
func keepalive(p *Packet, e *endpoint) bool {
	return p.PayloadLen <= 1 && p.Flags&(SYN|FIN|RST) == 0 && p.Seq == e.nxt-1
}

func (c *conn) sendSYN(p *Packet, s int, cs *coldStore) {
	S, R := &c.ep[s], &c.ep[1-s]
	retransmit := S.has(sentSYN) && p.Seq == S.isn
	if retransmit && c.duplicate(p, S) {
		return
	}
	S.isn = p.Seq
	S.flags |= sentSYN
	c.resent(S, c.stamp(p.TS), retransmit, cs)
	if s == int(c.client) {
		if !c.is(mRTTKnown) {
			c.setSYN(p.TS, cs)
		}
		if c.is(mMidstream) && c.role == RoleBySYNACK && retransmit {
			// The SYN was only captured after the SYN-ACK: not a
			// retransmission, and not a connection picked up mid-stream.
			c.role = RoleBySYN
			c.marks &^= mMidstream
			if ce := &cs.peek(c).eps[s]; ce.retrans > 0 { // (so a record of its own)
				ce.retrans--
			}
			retransmit = false
		}
	}
	switch {
	case !retransmit && R.has(sentSYN) && R.state == StateSynSent:
		// Simultaneous open: the SYNs crossed, and each end answers the
		// other's SYN from SYN_RECEIVED (RFC 793 figure 8).
		S.state, R.state = StateSynReceived, StateSynReceived
	case S.state == StateClosed:
		S.state = StateSynSent
	case retransmit && S.state == StateEstablished && !S.has(sentData) && R.has(sentSYN):
		// The SYN is sent again after the peer's SYN-ACK: the SYN-ACK
		// never reached it (an end that had it would not resend its SYN).
		S.state = StateSynSent
		S.flags |= doubt
	}
}

// duplicate reports whether p, a SYN, SYN-ACK or FIN that e sent before,
// is the same packet captured twice (a SPAN port copying both directions,
// a capture of two interfaces) rather than sent again: Linux never resends
// one within a millisecond (its least timeout, the tail loss probe's, is
// 10 ms).
//
// Its last one's time is kept to the millisecond (a stamp): a packet in
// the same millisecond or the next is the same one again.
func (c *conn) duplicate(p *Packet, e *endpoint) bool {
	return e.lastTx != 0 && c.stamp(p.TS)-e.lastTx < 2
}

// resent notes the time of a SYN or FIN transmission by e and, for a
// retransmission, the interval since the last one (the sender's current
// retransmission timeout), clearing any delivery that was waiting for it.
// A first transmission starts a new schedule. cs holds the cold record.
func (c *conn) resent(e *endpoint, now uint32, retransmit bool, cs *coldStore) {
	rto := uint32(0)
	if retransmit {
		rto = ^uint32(0) // no earlier one seen: the longest interval
		if e.lastTx != 0 {
			rto = now - e.lastTx
		}
		c.setPending(e, 0, cs)
	}
	if rto != 0 || c.cold != 0 {
		cs.get(c).eps[c.index(e)].rto = rto
	}
	e.lastTx = now
}

// pending returns the stamp of a doubtful delivery to e or, after an RST
// closed it, the RST's until silence confirms it arrived; 0 if none. cs
// holds it (epCold.pending).
func (c *conn) pending(e *endpoint, cs *coldStore) uint32 {
	if c.cold == 0 {
		return 0
	}
	return cs.at(c.cold).eps[c.index(e)].pending
}

// coldWaits reports whether either endpoint has a pending delivery, or
// one is resending unanswered (a run of resends, evidence.go). The mark
// mColdWaits is set when either starts, and cleared here once neither is
// left.
func (c *conn) coldWaits(cs *coldStore) bool {
	if !c.is(mColdWaits) {
		return false
	}
	r := cs.peek(c)
	if r.eps[0].pending != 0 || r.eps[1].pending != 0 || r.runN != 0 {
		return true
	}
	c.marks &^= mColdWaits
	return false
}

// setPending sets e's pending delivery (see pending).
func (c *conn) setPending(e *endpoint, at uint32, cs *coldStore) {
	if at != 0 {
		c.marks |= mColdWaits
	}
	if at != 0 || c.cold != 0 {
		cs.get(c).eps[c.index(e)].pending = at
	}
}

// rto returns the milliseconds between e's last two SYNs or FINs, 0
// after a first one.
func (c *conn) rto(e *endpoint, cs *coldStore) uint32 {
	if c.cold == 0 {
		return 0
	}
	return cs.at(c.cold).eps[c.index(e)].rto
}

func (c *conn) sendSYNACK(p *Packet, snd, rcv *endpoint, cs *coldStore) {
	if rcv.has(sentSYN) && rcv.state != StateClosed && (seqLT(p.Ack, rcv.isn+1) || seqGT(p.Ack, rcv.nxt)) {
		// It answers another SYN than the peer's (an earlier
		// connection's, on a reused port): not this connection's.
		return
	}
	// A SYN-ACK inferred from the peer's ACK, seen now, was not sent again.
	retransmit := snd.has(sentSYNACK) && p.Seq == snd.isn && !snd.has(synInferred)
	if retransmit && c.duplicate(p, snd) {
		return
	}
	snd.isn = p.Seq
	snd.flags = snd.flags&^synInferred | sentSYN | sentSYNACK
	c.resent(snd, c.stamp(p.TS), retransmit, cs)
	switch snd.state {
	case StateClosed, StateSynSent:
		snd.state = StateSynReceived
	case StateEstablished:
		if retransmit && !snd.has(sentData) && !snd.has(sentFIN) {
			// The SYN-ACK is sent again after the peer's ACK: that ACK
			// never reached it.
			snd.state = StateSynReceived
			snd.flags |= doubt
		}
	}
	if retransmit && rcv.state == StateEstablished && !rcv.has(ackSent) && c.seesClient(rcv) {
		// The client, whose packets the capture shows (its SYN), never
		// answered the first SYN-ACK, as it would have at once: it never
		// got it, and whether it gets this one is for its ACK to tell.
		rcv.state = StateSynSent
		rcv.flags |= doubt
	}
}

// seesClient reports whether e is the client and the capture has shown
// its SYN: its direction is captured, so what it sends is seen.
func (c *conn) seesClient(e *endpoint) bool {
	return e == &c.ep[c.client] && c.role == RoleBySYN
}

// sendFIN applies a FIN sent by S and reports whether it was sent before;
// cs holds the cold record.
func (c *conn) sendFIN(p *Packet, snd, rcv *endpoint, cs *coldStore) (resent bool) {
	fs := p.Seq + p.PayloadLen
	if p.Flags&SYN != 0 {
		fs++
	}
	if snd.has(sentFIN) && fs == snd.finSeq {
		if snd.has(finInferred) {
			// The FIN its peer's ACK proved: seen at last, not sent again.
			snd.flags &^= finInferred
			return false
		}
		if !c.duplicate(p, snd) {
			c.resendFIN(p, snd, rcv, cs)
		}
		return true
	}
	snd.finSeq = fs
	snd.flags = snd.flags&^finInferred | sentFIN
	c.resent(snd, c.stamp(p.TS), false, cs)
	if snd.state == StateCloseWait && rcv.has(sentFIN) && p.Flags&ACK != 0 && seqLT(p.Ack, rcv.finSeq+1) {
		// Its FIN does not acknowledge the peer's: the FINs crossed, and
		// it processes the peer's FIN from FIN_WAIT_1 (RFC 793 figure 13).
		snd.state = StateClosing
	} else {
		snd.finSent()
	}
	if rcv.has(ackSent) && seqGE(rcv.acked, fs+1) {
		// The peer's ACK of this FIN was captured before it (reordered
		// at the capture point): it still counts.
		c.deliver(snd, c.stamp(p.TS), cs)
	}
	return false
}

// resendFIN applies what a retransmitted FIN from S proves: S has not
// received an acknowledgement of it, and R, if it never acknowledged it,
// has not received it.
func (c *conn) resendFIN(p *Packet, snd, rcv *endpoint, cs *coldStore) {
	c.resent(snd, c.stamp(p.TS), true, cs)
	if snd.has(finAcked) || c.pending(snd, cs) != 0 {
		snd.flags = snd.flags&^finAcked | doubt
		switch {
		case snd.state == StateFinWait2:
			snd.state = StateFinWait1
		case snd.state == StateTimeWait && snd.has(gotFIN):
			snd.state = StateClosing
		case snd.state == StateClosed && snd.has(gotFIN) && !snd.has(resetClosed):
			snd.state = StateLastAck
		}
	}
	if rcv.pkts > 0 && !(rcv.has(ackSent) && seqGE(rcv.acked, snd.finSeq+1)) {
		// (Of a receiver the capture has never shown, an ACK would not
		// have been seen: its silence says nothing.)
		rcv.unreceiveFIN()
	}
}

// receiveACK applies the acknowledgement in p to its receiver R; cs holds
// the cold record.
func (c *conn) receiveACK(p *Packet, rcv *endpoint, cs *coldStore) {
	a := p.Ack
	switch rcv.state {
	case StateSynSent:
		// A SYN-ACK must acknowledge the SYN and no more than was sent
		// with it (data on a SYN, RFC 7413).
		if p.Flags&SYN != 0 && (!rcv.has(sentSYN) || seqGE(a, rcv.isn+1) && seqLE(a, rcv.nxt)) {
			c.deliver(rcv, c.stamp(p.TS), cs)
		}
	case StateSynReceived:
		if !rcv.has(sentSYN) || seqGE(a, rcv.isn+1) {
			c.deliver(rcv, c.stamp(p.TS), cs)
		}
	}
	if rcv.has(sentFIN) && seqGE(a, rcv.finSeq+1) && !rcv.has(finAcked) {
		c.deliver(rcv, c.stamp(p.TS), cs)
	}
}

// deliver applies an arrival at e with apply, unless earlier arrivals of
// the same kind evidently failed: then it waits, until e shows it arrived
// or until e's retransmission timer has run out twice without e sending
// again (see expireTimers).
func (c *conn) deliver(e *endpoint, now uint32, cs *coldStore) {
	if !e.has(doubt) {
		c.ackArrived(e, now, cs)
		return
	}
	if c.pending(e, cs) == 0 {
		c.setPending(e, now, cs)
	}
}

// ackArrived applies the arrival at e of what it waits for in its state:
// the SYN-ACK in SYN_SENT, the ACK of its SYN in SYN_RECEIVED, or the ACK
// of its FIN.
func (c *conn) ackArrived(e *endpoint, now uint32, cs *coldStore) {
	c.setPending(e, 0, cs)
	e.flags &^= doubt
	switch e.state {
	case StateSynSent, StateSynReceived:
		e.state = StateEstablished
		return
	}
	if !e.has(sentFIN) {
		return
	}
	e.flags |= finAcked
	switch e.state {
	case StateFinWait1:
		e.state = StateFinWait2
		e.twStart = now // tcp_fin_timeout runs from here (timers.go)
	case StateClosing:
		e.enterTimeWait(now)
	case StateLastAck:
		e.state = StateClosed
	}
}

// receiveFIN processes the peer's FIN at endpoint E.
func (c *conn) receiveFIN(e *endpoint, ts int64) {
	if e.has(gotFIN) {
		return
	}
	e.flags = e.flags&^finPending | gotFIN
	switch e.state {
	case StateEstablished, StateSynReceived:
		e.state = StateCloseWait
	case StateFinWait1:
		e.state = StateClosing
	case StateFinWait2:
		e.enterTimeWait(c.stamp(ts))
	case StateClosed:
		if e.assumed == DoubtOrphan {
			// Taken for an orphan gone after tcp_fin_timeout: were it
			// gone it would answer with an RST, which closes it again.
			e.assumed = DoubtNone
			e.enterTimeWait(c.stamp(ts))
		}
	}
}

func (e *endpoint) enterTimeWait(now uint32) {
	e.state = StateTimeWait
	e.twStart = now
}

// reset applies an RST sent by endpoint s. An RST that its receiver would
// not accept changes nothing (rstAcceptable). cs holds the cold record.
func (c *conn) reset(p *Packet, s int, cs *coldStore) {
	S, R := &c.ep[s], &c.ep[1-s]
	ok, exact := rstAcceptable(p, S, R)
	if !ok {
		return
	}
	if S.state == StateSynSent && S.has(seqKnown) && p.Seq != S.nxt {
		// An RST answering an unacceptable segment: the SYN_SENT socket
		// stays (RFC 793 3.9, SYN-SENT, "If the ACK bit is set").
	} else {
		S.state = StateClosed
		S.flags |= resetClosed
		S.assumed = DoubtNone
		c.setPending(S, 0, cs)
	}
	if R.state == StateClosed {
		return
	}
	R.flags |= resetClosed
	R.preRST = R.state
	if !exact {
		R.flags |= fuzzyRST
	}
	// Whether the RST arrived shows only if R had something to send
	// again (timers.go settles it by R's silence); otherwise nothing will.
	R.assumed = DoubtReset
	pending := uint32(0)
	if R.state == StateSynSent || R.awaiting() || R.has(seqKnown) && !(S.has(ackSent) && seqGE(S.acked, R.nxt)) {
		pending = c.stamp(p.TS)
	}
	c.setPending(R, pending, cs)
	R.state = StateClosed
}

// rstAcceptable reports whether R accepts an RST sent by S, and whether
// it accepts it outright (exact) rather than, inside its window but not
// at the next sequence number, answering it with a challenge ACK (RFC
// 5961 3.2). It follows Linux (net/ipv4/tcp_input.c, tcp_minisocks.c):
//   - SYN_SENT: only an RST that acknowledges the SYN, and no more than
//     was sent (tcp_rcv_synsent_state_process);
//   - TIME_WAIT: only an RST at exactly the next sequence number (TIME_WAIT
//     assassination, RFC 1337); any other is dropped
//     (tcp_timewait_state_process);
//   - SYN_RECEIVED: any RST in the window (tcp_check_req);
//   - otherwise (tcp_validate_incoming): an RST below what R has
//     acknowledged, or beyond its window, is dropped, unless it is one
//     below the next sequence number after R received the peer's FIN
//     (tcp_reset_check); one at the next sequence number resets, and any
//     other in the window draws a challenge ACK.
func rstAcceptable(p *Packet, snd, rcv *endpoint) (ok, exact bool) {
	switch {
	case rcv.state == StateSynSent && rcv.has(sentSYN):
		return p.Flags&ACK != 0 && seqGT(p.Ack, rcv.isn) && seqLE(p.Ack, rcv.nxt), true
	case rcv.state == StateClosed || !snd.has(seqKnown):
		return true, true
	case rcv.state == StateTimeWait:
		return p.Seq == snd.nxt, true
	}
	d := int64(int32(p.Seq - snd.nxt))
	switch {
	case d > rcv.recvWindow(snd):
		return false, false
	case rcv.state == StateSynReceived:
		return d >= 0, true
	case d == -1 && rcv.has(gotFIN) && (rcv.state == StateCloseWait || rcv.state == StateLastAck || rcv.state == StateClosing):
		return true, true
	case d < -1 || rcv.has(ackSent) && seqLT(p.Seq, rcv.acked):
		return false, false
	}
	return true, d == 0
}

// recvWindow returns the receive window (bytes) that e last advertised to
// its peer. Without both SYNs' window scale options seen, the scale is
// unknown and the largest one is assumed, so that no valid RST is ignored.
func (e *endpoint) recvWindow(peer *endpoint) int64 {
	w := int64(e.window)
	switch {
	case e.has(wsKnown) && peer.has(wsKnown):
		w <<= e.wscale
	case e.has(sentSYN) && peer.has(sentSYN):
		// both SYNs seen, at least one without the option: no scaling
	default:
		w <<= 14
	}
	if w == 0 {
		w = 1
	}
	return w
}

// touch reads a word from each cache line of the conn, so that a walk can
// fetch a group of connections before it uses them (eachConn).
// TestConnTouch checks that the words fall on every line.
func (c *conn) touch() uint32 {
	return c.key.addr[0] + uint32(c.last) + c.zeek.bits + uint32(c.ep[0].state) +
		c.ep[0].bytes + c.ep[1].pkts + uint32(c.ev.bits) + uint32(c.synOrRTT)
}

// stamp returns capture time ts as an endpoint's times keep it: the
// milliseconds since the connection's first packet, plus one (0 is
// none), stopping at the largest 32-bit value (49 days). A time before
// the first packet (a capture merged out of order) counts as the first.
func (c *conn) stamp(ts int64) uint32 {
	d := (ts - c.first) / int64(time.Millisecond)
	switch {
	case d < 0:
		return 1
	case d >= 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(d) + 1
}

// at returns the capture time of a stamp, to the millisecond; 0 for none.
func (c *conn) at(s uint32) int64 {
	if s == 0 {
		return 0
	}
	return c.first + int64(s-1)*int64(time.Millisecond)
}

// zeekFull returns c's Zeek emulation whole: what it keeps itself, and
// what its cold record in cs holds.
func (c *conn) zeekFull(cs *coldStore) zeekConn {
	return zeekConn{zeekHot: c.zeek, zeekMore: cs.peek(c).zeek}
}

// zeekReuse reports whether Zeek would end c and start a new connection
// with packet p, sent in direction d (zeekConn.reuse).
func (c *conn) zeekReuse(p *Packet, d Dir, cs *coldStore) bool {
	z := c.zeekFull(cs)
	return z.reuse(p, d == c.firstDir)
}

// setZeek keeps z as c's Zeek emulation, its zeekMore in c's cold record
// (which it needs only once that is not zero).
func (c *conn) setZeek(z *zeekConn, cs *coldStore) {
	c.zeek = z.zeekHot
	if c.cold != 0 || z.zeekMore != (zeekMore{}) {
		cs.get(c).zeek = z.zeekMore
	}
}

// index returns the index in c.ep of e, one of c's endpoints.
func (c *conn) index(e *endpoint) int {
	if e == &c.ep[0] {
		return 0
	}
	return 1
}
