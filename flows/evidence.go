package flows

import "time"

// A connection's evidence: the facts about its handshake, retransmissions,
// windows, resets and closing that a diagnosis reads (package diag judges
// them; nothing here decides what is a problem). They are recorded as
// packets pass, in one small fixed-size struct kept apart from the
// fields the state machine uses on every packet.
//
// Times are offsets from the connection's first packet (conn.first): in
// milliseconds in 32 bits (49 days), the handshake's in units of 4 ms in
// 16 bits (262 s: a SYN is given up after 131 s); both stop at their
// largest value. Counts stop at theirs. Endpoints are indexed like conn.ep.

// evidence is what a connection's packets showed; see the top of the
// file. A record carries it whole; a conn keeps the part that every
// connection's packets write (evHot) in itself, and the rest (evCold),
// which only trouble writes, apart: a connection without trouble has none
// (coldStore). TestEvidenceSize keeps them at 36 and 64 bytes.
type evidence struct {
	evHot
	evCold
}

// evHot is the evidence that the packets of every connection write.
type evHot struct {
	finAt uint32 // the first FIN (evFINDir sent it)
	tsval uint32 // the client's latest timestamp value (evTSVal)
	bits  evBits

	// The server's first SYN-ACK, in hsUnit. (The client's first SYN is
	// the connection's first packet, but where a capture put its SYN-ACK
	// first; its latest, and the latest SYN-ACK, are in evCold.)
	synackAt uint16
	// sig is a digest of each endpoint's last packet (its numbers,
	// length, flags and IPv4 identification): the same packet again soon
	// after (copyWithin) is the capture's copy (a SPAN port's, a capture
	// on two interfaces), not a resend, which comes a timeout or a round
	// trip later and, from most stacks, with a new identification (Windows
	// keeps it). Without one (IPv6, or a stack that sends 0) only the
	// same packet right after it, within a millisecond, is a copy.
	sig [2]uint16
	// Data segments each endpoint sent (evCold.resent counts those that
	// resent sequence space already sent). When a count reaches its
	// maximum both of that endpoint's are halved: their ratio is what is
	// read.
	segs [2]uint16
	ttl  [2]uint8 // the TTL (hop limit) of each endpoint's first packet other than an RST
}

// evCold is the evidence that only trouble writes: resends after a
// silence, resets, zero windows, unanswered resends, a reused 4-tuple.
type evCold struct {
	// The longest silence (both ways) before a segment that resent the
	// first byte its peer had not acknowledged, when it came (ms) and
	// that segment's sequence number; evStallDir is its sender.
	stallMs, stallAt, stallSeq uint32
	// The first RST its receiver accepted (it changed a state): when
	// (ms), its sequence and acknowledgement numbers. Its TTL and the
	// states before it are in rstTTL and rstStates.
	rstAt, rstSeq, rstAck uint32
	// The first RST its receiver ignored (out of its window: RFC 793,
	// RFC 5961): when, and its sequence number.
	ignAt, ignSeq uint32
	// Zero windows advertised by one endpoint (evZWDir): the latest one
	// began at zwAt (still open if evZWOpen); the longest that ended
	// began at zwLongAt and lasted zwMs.
	zwAt, zwLongAt, zwMs uint32
	runAt                uint32 // the first of runN segments one end (evRunDir) resent since its peer last sent anything
	reuseNxt             uint32 // a reused 4-tuple (evReused): the reusing end's next sequence number in the old connection
	twAge                uint16 // a reused 4-tuple: how long the old end had been in TIME_WAIT (10 ms units)

	// What the handshake's resends write: the client's SYNs and the
	// server's SYN-ACKs after the first (evSYN, evSYNACK), and the times,
	// in hsUnit, of the latest of each. synLastAt is also the client's
	// only SYN's, when that is not the connection's first packet.
	synLastAt, synackLastAt uint16
	synsMore, synacksMore   uint8
	resent                  [2]uint16 // of evHot.segs, those that resent sequence space already sent

	stalls [2]uint8 // resends after a silence of at least minRTO, by sender
	rstTTL uint8    // the accepted RST's TTL
	ignTTL uint8    // the ignored RST's
	// The states of the accepted RST's sender (high four bits) and
	// receiver (low four) before it.
	rstStates uint8
	zwProbes  uint8 // segments probing the zero window (its advertiser's peer sent them)
	laResends uint8 // FINs resent in LAST_ACK by one end (evLADir)
	runN      uint8
}

// coldRec is a connection's cold record (coldStore): the evidence that
// only trouble writes, and what only trouble writes of its endpoints and
// of its Zeek emulation, which a Record carries elsewhere (its counters,
// Record.zeek) or not at all.
type coldRec struct {
	evCold
	eps  [2]epCold // indexed like conn.ep
	zeek zeekMore  // what only retransmissions, zero windows and long histories write of its Zeek emulation
	// What does not fit in the conn's 32 bits (conn.id, conn.synOrRTT):
	// the high bits of an ID past 2^32, and a SYN time or handshake RTT
	// (connwide.go).
	idHi     uint32
	synOrRTT u64
}

// epCold is what only trouble writes of an endpoint's counts and
// sequence space.
type epCold struct {
	retrans, gaps  uint32 // EndpointStats's Retransmits and Gaps, stopping at their maximum
	rto, pending   uint32 // see conn.rto and conn.pending
	holeLo, holeHi uint32 // the last gap it left in sequence space, [holeLo, holeHi), not yet filled
	// The high 32 bits of its byte counts (endpoint.bytes, ipBytes,
	// payload), which carry into them past 4 GiB.
	bytesHi, ipBytesHi, payloadHi uint32
}

// evBits are evidence's one-bit facts.
type evBits uint32

const (
	evStallDir       evBits = 1 << iota // endpoint 1 sent the longest stall's segment
	evRST                               // rst holds an accepted RST
	evRSTDir                            // ... sent by endpoint 1
	evRSTAck                            // ... with the ACK flag
	evRSTAfterFIN                       // ... by an endpoint that had sent a FIN
	evIgn                               // ign holds an ignored RST
	evIgnDir                            // ... sent by endpoint 1
	evIgnAck                            // ... with the ACK flag
	evTTLVaries0                        // endpoint 0's non-RST packets came with more than one TTL
	evTTLVaries1                        // endpoint 1's
	evZW                                // a zero window was advertised
	evZWDir                             // ... by endpoint 1
	evZWOpen                            // ... and is still zero
	evFIN                               // finAt holds the first FIN
	evFINDir                            // ... sent by endpoint 1
	evLADir                             // endpoint 1 resent its FIN in LAST_ACK
	evRunDir                            // endpoint 1 is resending unanswered (runN > 0)
	evTSVal                             // tsval holds the client's timestamp value
	evSynAfterSynAck                    // the client resent its SYN after a SYN-ACK was seen
	evSynAckAfterAck                    // the server resent its SYN-ACK after the client's ACK of it was seen
	evDataToClosed0                     // endpoint 0 was sent data after its FIN
	evDataToClosed1                     // endpoint 1
	evReused                            // the SYN took a 4-tuple whose last connection was in TIME_WAIT
	evReuseTWSelf                       // ... on the reusing end itself (else its peer)
	evReuseISNAbove                     // ... with an ISN above the old connection's next sequence number
	evReuseTSKnown                      // ... both it and the old connection's client carried timestamps
	evReuseTSAbove                      // ... and its timestamp was newer
	evLastDir                           // endpoint 1 sent the last packet
	evFINBelied                         // the first FIN's sender later sent data past it
	evSYN                               // the client sent a SYN (more: evCold.synsMore)
	evSYNACK                            // the server sent a SYN-ACK (more: evCold.synacksMore)
)

// hsUnit is the unit of the handshake's times, in nanoseconds.
const hsUnit = 4e6

// minRTO is Linux's TCP_RTO_MIN: a resend after at least this much silence
// was sent by a retransmission timer. The evidence keeps the fact with the
// kernel's fixed floor; a judge weighs it with its own settings.
const minRTO = 200 * time.Millisecond

// at returns ts as an offset from the connection's first packet in unit
// nanoseconds, stopping at max.
func offset(first, ts, unit int64, max uint32) uint32 {
	d := (ts - first) / unit
	switch {
	case d < 0:
		return 0
	case d > int64(max):
		return max
	}
	return uint32(d)
}

func (c *conn) ms(ts int64) uint32 { return offset(c.first, ts, 1e6, ^uint32(0)) }
func (c *conn) hs(ts int64) uint16 { return uint16(offset(c.first, ts, hsUnit, 0xffff)) }

func inc8(n *uint8) {
	if *n != 0xff {
		*n++
	}
}

// dirBit returns bit if endpoint i is 1, else 0.
func dirBit(i int, bit evBits) evBits {
	if i == 1 {
		return bit
	}
	return 0
}

// prior is what the evidence needs from a connection as it was before a
// packet changed it.
type prior struct {
	last       int64  // the previous packet's time (either direction)
	pkts       uint64 // packets the connection had carried
	nxt, acked uint32 // the sender's next sequence number; what the receiver acknowledged
	ownAcked   uint32 // what the sender acknowledged
	finSeq     uint32 // the sender's FIN's sequence number, if flags[0] has sentFIN
	ownAckSent bool   // ownAcked is valid
	retrans    uint32 // the sender's retransmission count
	window     uint16 // the receiver's last advertised window
	states     [2]State
	flags      [2]epFlags
	known      bool // nxt is valid
	ackSent    bool // acked (the receiver's) is valid
}

// look takes what note needs from c before packet p, from endpoint s,
// changes it.
func (c *conn) look(s int, cs *coldStore) prior {
	S, R := &c.ep[s], &c.ep[1-s]
	return prior{
		last: c.last, pkts: uint64(S.pkts) + uint64(c.ep[1-s].pkts), nxt: S.nxt, acked: R.acked, ownAcked: S.acked, ownAckSent: S.has(ackSent),
		finSeq: S.finSeq, retrans: cs.peek(c).eps[s].retrans, window: R.window,
		states: [2]State{S.state, R.state}, flags: [2]epFlags{S.flags, R.flags},
		known: S.has(seqKnown), ackSent: R.has(ackSent),
	}
}

// note records the evidence of packet p, sent by endpoint s, once c has
// applied it; b is what c was before; cs holds the cold evidence. It
// reports whether p was notable: what may start a problem, beyond a
// change of state (EventNote).
func (c *conn) note(p *Packet, s int, b *prior, cs *coldStore) bool {
	ev := &c.ev
	sig := digest(p)
	soon := p.TS-b.last < int64(copyWithin)
	again := ev.bits&evLastDir == dirBit(s, evLastDir) && p.TS-b.last < int64(time.Millisecond)
	if sig == ev.sig[s] && soon && (p.IPID != 0 || again) && b.pkts > 0 && p.Flags&(SYN|ACK) != SYN {
		// The capture's copy. (Not a SYN: a half-open connection's SYNs
		// are replayed at one time, and counted as they were sent.)
		return false
	}
	ev.sig[s] = sig
	ev.bits = ev.bits&^evLastDir | dirBit(s, evLastDir)
	if p.Flags&RST != 0 {
		return c.noteRST(p, s, b, cs)
	}
	switch run := &cs.peek(c).runN; {
	case *run == 0:
	case ev.bits&evRunDir != dirBit(s, evRunDir):
		*run = 0 // its peer answered (an RST is no answer: a peer without the connection sends one to each resend)
	case p.Flags&ACK != 0 && b.ownAckSent && seqGT(p.Ack, b.ownAcked),
		p.PayloadLen == 0 && p.Flags&(FIN|SYN) == 0 && b.known && p.Seq != b.nxt-1:
		// It acknowledges more of its peer's data, or sends a bare ACK
		// (TCP sends one only for what it received; keep-alives aside):
		// its peer sends, if the capture misses it.
		*run = 0
	}
	c.noteTTLAndTS(p, s)
	if p.Flags&SYN != 0 {
		c.noteSYN(p, s, cs)
		return false // a handshake's problems come with its states
	}
	if ev.bits&evFIN == 0 && p.Flags&FIN != 0 {
		ev.finAt, ev.bits = c.ms(p.TS), ev.bits|evFIN|dirBit(s, evFINDir)
	}
	if p.PayloadLen > 0 && b.flags[1]&sentFIN != 0 {
		ev.bits |= evDataToClosed0 << (1 - s)
	}
	if p.PayloadLen > 0 && b.flags[0]&sentFIN != 0 && ev.bits&evFINDir == dirBit(s, evFINDir) &&
		seqGT(p.Seq+p.PayloadLen, b.finSeq+1) {
		// New data past its own FIN, which no stack sends (RFC 9293
		// 3.10.2: SEND in the FIN-WAIT states is an error; the FIN took the
		// last sequence number). More than one byte past it: a keep-alive
		// may carry one garbage byte at the FIN's number. The "FIN" was a
		// damaged or crafted segment, not a close.
		ev.bits |= evFINBelied
	}
	w := c.noteWindow(p, s, b, cs)
	return c.noteSegment(p, s, b, cs) || w
}

// copyWithin is how soon after the last packet the same packet again is
// a copy: capture equipment copies within microseconds, or a few
// milliseconds when it merges two feeds; a sender resends after a
// timeout (200 ms at least on Linux) or the round trip of duplicate ACKs.
const copyWithin = 10 * time.Millisecond

// digest returns evidence.sig of packet p.
func digest(p *Packet) uint16 {
	h := p.Seq ^ p.Ack*0x9e3779b1 ^ p.PayloadLen<<7 ^ uint32(p.Flags)<<20 ^ uint32(p.IPID)*0x85ebca6b
	return uint16(h ^ h>>16)
}

// noteSYN records a SYN or SYN-ACK from endpoint s; cs holds what
// resends write.
func (c *conn) noteSYN(p *Packet, s int, cs *coldStore) {
	ev := &c.ev
	t := c.hs(p.TS)
	switch {
	case p.Flags&ACK == 0 && s == int(c.client):
		if ev.bits&(evSYN|evSYNACK) == evSYN|evSYNACK {
			ev.bits |= evSynAfterSynAck
		}
		if ev.bits&evSYN == 0 {
			ev.bits |= evSYN
			if t != 0 || c.cold != 0 { // (0 is what a connection without a record reads)
				cs.get(c).synLastAt = t
			}
			return
		}
		cd := cs.get(c)
		cd.synLastAt = t
		cd.synsMore = min(cd.synsMore+1, 254) // counts stop at 255, the first included
	case p.Flags&ACK != 0 && s != int(c.client):
		if ev.bits&evSYNACK == 0 {
			ev.synackAt, ev.bits = t, ev.bits|evSYNACK
			return
		}
		if c.is(mRTTKnown) {
			ev.bits |= evSynAckAfterAck
		}
		cd := cs.get(c)
		cd.synackLastAt = t
		cd.synacksMore = min(cd.synacksMore+1, 254)
	}
}

// noteWindow records zero windows that endpoint s advertises, and the
// probes it sends into its peer's. It reports a zero window opening or
// closing.
func (c *conn) noteWindow(p *Packet, s int, b *prior, cs *coldStore) bool {
	ev := &c.ev
	open := ev.bits&evZWOpen != 0
	mine := ev.bits&evZW == 0 || ev.bits&evZWDir == dirBit(s, evZWDir)
	switch {
	case p.Window == 0 && !open && mine:
		cs.get(c).zwAt = c.ms(p.TS)
		ev.bits |= evZW | evZWOpen | dirBit(s, evZWDir)
		return true
	case p.Window != 0 && open && mine:
		if cd := cs.get(c); c.ms(p.TS)-cd.zwAt >= cd.zwMs {
			cd.zwMs, cd.zwLongAt = c.ms(p.TS)-cd.zwAt, cd.zwAt
		}
		ev.bits &^= evZWOpen
		return true
	case open && !mine && p.PayloadLen <= 1 && p.Flags&FIN == 0 && b.known &&
		(p.Seq == b.nxt-1 || p.Seq == b.nxt && p.PayloadLen == 1):
		// A zero-window probe: Linux sends one below the next sequence
		// number without data; others send the next byte.
		inc8(&cs.get(c).zwProbes)
	}
	return false
}

// noteSegment records segment p from endpoint s (no SYN, no RST) that
// counts towards the data sent and resent, the stalls, FINs resent in
// LAST_ACK and resends nobody answers. It reports a resend.
func (c *conn) noteSegment(p *Packet, s int, b *prior, cs *coldStore) bool {
	ev := &c.ev
	resent := cs.peek(c).eps[s].retrans != b.retrans
	if p.PayloadLen > 0 {
		if ev.segs[s] == 0xffff {
			ev.segs[s] >>= 1
			if c.cold != 0 {
				cs.at(c.cold).resent[s] >>= 1
			}
		}
		ev.segs[s]++
		if resent {
			cs.get(c).resent[s]++
		}
	}
	// A segment that carries sequence space below what its sender had
	// sent: a retransmission, or the filling of a gap that the capture
	// saw (what it missed there was resent). A keep-alive is neither.
	seqLen := p.PayloadLen
	if p.Flags&FIN != 0 {
		seqLen++
	}
	if seqLen == 0 || !b.known || !seqLT(p.Seq, b.nxt) ||
		p.Flags&FIN == 0 && p.PayloadLen <= 1 && p.Seq == b.nxt-1 {
		return false
	}
	if p.Flags&FIN != 0 && b.states[0] == StateLastAck && p.TS-b.last >= int64(minRTO) {
		// Resent by its timer: nothing came back for a timeout.
		inc8(&cs.get(c).laResends)
		ev.bits = ev.bits&^evLADir | dirBit(s, evLADir)
	}
	cd := cs.get(c)
	if cd.runN == 0 {
		cd.runAt, ev.bits = c.ms(p.TS), ev.bits&^evRunDir|dirBit(s, evRunDir)
	}
	inc8(&cd.runN)
	c.marks |= mColdWaits
	if b.ackSent && p.Seq == b.acked && b.window != 0 {
		// It resent the first byte its peer had not acknowledged, into an
		// open window: what a retransmission timer resends.
		stall := p.TS - b.last
		if stall >= int64(minRTO) {
			inc8(&cd.stalls[s])
		}
		if ms := uint32(min(stall/1e6, 1<<32-1)); ms > cd.stallMs {
			cd.stallMs, cd.stallAt, cd.stallSeq = ms, c.ms(p.TS), p.Seq
			ev.bits = ev.bits&^evStallDir | dirBit(s, evStallDir)
		}
	}
	return true
}

// noteRST records an RST from endpoint s: the first its receiver
// accepted, and the first it ignored. It reports a first one.
func (c *conn) noteRST(p *Packet, s int, b *prior, cs *coldStore) bool {
	ev := &c.ev
	if p.Flags&(SYN|FIN) != 0 {
		return false // no stack sends these: a crafted or damaged segment
	}
	S, R := &c.ep[s], &c.ep[1-s]
	changed := S.state != b.states[0] || R.state != b.states[1] || S.flags != b.flags[0] || R.flags != b.flags[1]
	states := uint8(b.states[0])<<4 | uint8(b.states[1])
	ack := p.Flags&ACK != 0
	switch {
	case changed && ev.bits&evRST == 0:
		cd := cs.get(c)
		cd.rstAt, cd.rstSeq, cd.rstAck, cd.rstTTL, cd.rstStates = c.ms(p.TS), p.Seq, p.Ack, p.TTL, states
		ev.bits |= evRST | dirBit(s, evRSTDir)
		if ack {
			ev.bits |= evRSTAck
		}
		if b.flags[0]&sentFIN != 0 {
			ev.bits |= evRSTAfterFIN
		}
	case !changed && b.states[1] != StateClosed && ev.bits&evIgn == 0:
		cd := cs.get(c)
		cd.ignAt, cd.ignSeq, cd.ignTTL = c.ms(p.TS), p.Seq, p.TTL
		ev.bits |= evIgn | dirBit(s, evIgnDir)
		if ack {
			ev.bits |= evIgnAck
		}
	default:
		return false
	}
	return true
}

// reuse is what a new connection's evidence says of the 4-tuple it took
// over (reuseFacts).
type reuse struct {
	bits evBits // evReused and the evReuse* bits
	nxt  uint32 // evidence.reuseNxt
	age  uint16 // evidence.twAge
}

// reuseFacts returns what a new connection's evidence says of the 4-tuple
// it takes from c, whose endpoint s sent the new connection's SYN p: was
// an end of c in TIME_WAIT, and was the SYN's ISN (and timestamp) above
// what that end had seen? c's timers must have run to p's time.
func (c *conn) reuseFacts(p *Packet, s int) (r reuse) {
	var tw int
	switch {
	case c.ep[1-s].state == StateTimeWait:
		tw = 1 - s
	case c.ep[s].state == StateTimeWait:
		tw = s
	default:
		return r
	}
	S := &c.ep[s]
	r.bits = evReused
	if tw == s {
		r.bits |= evReuseTWSelf
	}
	r.age = uint16(min(max(p.TS-c.at(c.ep[tw].twStart), 0)/1e7, 0xffff))
	if S.has(seqKnown) {
		r.nxt = S.nxt
		if seqGT(p.Seq, S.nxt) {
			r.bits |= evReuseISNAbove
		}
	}
	if p.HasTS && s == int(c.client) && c.ev.bits&evTSVal != 0 {
		r.bits |= evReuseTSKnown
		if int32(p.TSVal-c.ev.tsval) > 0 {
			r.bits |= evReuseTSAbove
		}
	}
	return r
}

// inherit keeps in a new connection's evidence what reuseFacts found.
func (c *conn) inherit(r reuse, cs *coldStore) {
	if r.bits == 0 {
		return
	}
	c.ev.bits |= r.bits
	cd := cs.get(c)
	cd.twAge, cd.reuseNxt = r.age, r.nxt
}

// noteTTLAndTS adds what every packet p from endpoint s tells: its TTL
// (or hop limit), and the client's latest timestamp value.
func (c *conn) noteTTLAndTS(p *Packet, s int) {
	ev := &c.ev
	switch {
	case ev.ttl[s] == 0:
		ev.ttl[s] = p.TTL
	case p.TTL != 0 && p.TTL != ev.ttl[s]:
		ev.bits |= evTTLVaries0 << s
	}
	if p.HasTS && s == int(c.client) {
		ev.tsval, ev.bits = p.TSVal, ev.bits|evTSVal
	}
}
