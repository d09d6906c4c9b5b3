package flows

import "time"

// Evidence is what a connection's packets showed, for a diagnosis to
// judge (package diag): facts recorded as the packets passed, read from a
// Record. Arrays indexed by endpoint are [client, server]. Times are to
// the millisecond (the handshake's to 4 ms); a zero time means none was
// seen.
type Evidence struct {
	Handshake HandshakeEvidence
	Sent      [2]SentEvidence // what the client and the server sent
	// Stall is the longest silence, in both directions, before a segment
	// that resent the first byte its receiver had not acknowledged, into
	// an open window: what a retransmission timer resends (a fast
	// retransmit comes without such a silence).
	Stall StallEvidence
	// Reset is the first RST its receiver accepted (it changed a state);
	// IgnoredReset the first one its receiver ignored, as out of its
	// window (RFC 793 3.4, RFC 5961 3.2).
	Reset, IgnoredReset ResetEvidence
	ZeroWindow          ZeroWindowEvidence
	FIN                 FINEvidence // the first FIN
	LastAck             LastAckEvidence
	// Unanswered counts the segments one end resent since its peer last
	// sent anything: a peer that has vanished, if it goes on.
	Unanswered UnansweredEvidence
	Reuse      ReuseEvidence
	// TTL is the IP TTL (IPv6 hop limit) of each endpoint's first packet
	// other than an RST, 0 if unknown; TTLVaries says its other packets
	// came with another one too.
	TTL       [2]uint8
	TTLVaries [2]bool
	ISN       [2]uint32 // initial sequence numbers, if SentSYN
	SentSYN   [2]bool
	FINSeq    [2]uint32    // the sequence number of each one's FIN, if SentFIN
	FINAt     [2]time.Time // when each last sent its FIN, if SentFIN
	SentFIN   [2]bool
}

// HandshakeEvidence is what the opening handshake showed.
type HandshakeEvidence struct {
	SYNs, SYNACKs int // SYNs the client sent, SYN-ACKs the server sent (up to 255)
	FirstSYN      time.Time
	LastSYN       time.Time
	FirstSYNACK   time.Time
	LastSYNACK    time.Time
	// SYNAfterSYNACK: the client sent its SYN again after a SYN-ACK was
	// seen, so that SYN-ACK never reached it.
	SYNAfterSYNACK bool
	// SYNACKAfterACK: the server sent its SYN-ACK again after the
	// client's ACK of it was seen, so that ACK never reached it.
	SYNACKAfterACK bool
}

// SentEvidence is what one endpoint sent.
type SentEvidence struct {
	// Segments counts the segments with data it sent, Resent those of
	// them that resent sequence space already sent. Both are halved
	// together once Segments reaches 65535: their ratio is exact, the
	// counts are a lower bound.
	Segments, Resent int
	// TimeoutResends counts its resends of the first unacknowledged byte
	// after both directions had been silent for at least Linux's
	// minimum retransmission timeout (200 ms), up to 255.
	TimeoutResends int
	// DataAfterFIN: it was sent data after it had sent its FIN.
	DataAfterFIN bool
}

// StallEvidence is a silence before a resent segment.
type StallEvidence struct {
	Seen       bool
	FromClient bool          // the client resent
	Silence    time.Duration // how long nothing had been seen before the resent segment
	At         time.Time     // when the resent segment was seen
	Seq        uint32        // its sequence number
}

// ResetEvidence is one RST.
type ResetEvidence struct {
	Seen       bool
	FromClient bool // the client sent it
	At         time.Time
	Seq        uint32
	Ack        uint32 // only for an accepted RST with the ACK flag
	HasACK     bool
	TTL        uint8 // its IP TTL (hop limit); 0 if unknown
	// The states of its sender and receiver before it (an accepted
	// RST's only).
	SenderState, ReceiverState State
	SenderSentFIN              bool // its sender had sent a FIN before it
}

// ZeroWindowEvidence is what one endpoint's zero windows showed: the
// first endpoint to advertise one (a connection rarely has two).
type ZeroWindowEvidence struct {
	Seen     bool
	ByClient bool      // the client advertised it
	Since    time.Time // when the latest zero window began
	Open     bool      // and it is still zero
	// The longest zero window that ended: when it began, how long.
	LongestFrom time.Time
	Longest     time.Duration
	Probes      int // segments its peer sent to probe it, up to 255
}

// FINEvidence is a FIN.
type FINEvidence struct {
	Seen       bool
	FromClient bool
	At         time.Time
	// Belied: its sender later sent new data past it, which a sender that
	// closed never does: the segment was damaged or crafted, and the
	// states it led to are not a close.
	Belied bool
}

// LastAckEvidence is a FIN resent in LAST_ACK.
type LastAckEvidence struct {
	Resends  int  // FINs resent in LAST_ACK, up to 255
	ByClient bool // the client resent them
	LastFIN  time.Time
}

// UnansweredEvidence is a run of resends nobody answered.
type UnansweredEvidence struct {
	Resends  int // up to 255
	ByClient bool
	Since    time.Time // the first of them
}

// ReuseEvidence says whether the connection's SYN took a 4-tuple whose
// previous connection still had an end in TIME_WAIT.
type ReuseEvidence struct {
	Reused bool
	// SelfInTimeWait: the end that sent the SYN was in TIME_WAIT itself
	// (it reused its own socket's port); otherwise its peer was.
	SelfInTimeWait bool
	TimeWaitAge    time.Duration // how long that end had been in TIME_WAIT (to 10 ms)
	// OldNext is the SYN sender's next sequence number in the old
	// connection, where the end in TIME_WAIT expected more; ISNAbove
	// says the SYN's sequence number was above it.
	OldNext  uint32
	ISNAbove bool
	// TSKnown: the SYN and the old connection's client carried
	// timestamps; TSAbove: the SYN's was newer.
	TSKnown, TSAbove bool
}

// recordSeqs is what Evidence needs of a connection's endpoints, indexed
// like conn.ep.
type recordSeqs struct {
	isn, finSeq [2]uint32
	finTx       [2]int64 // when each last sent a SYN or FIN
	flags       [2]epFlags
	client      uint8
}

// Evidence returns the record's evidence.
func (r *Record) Evidence() Evidence {
	var out Evidence
	r.ReadEvidence(&out)
	return out
}

// ReadEvidence sets *out to the record's evidence: Evidence without
// returning its 600-odd bytes by value and copying them again, for a
// judge of every record.
func (r *Record) ReadEvidence(out *Evidence) {
	*out = Evidence{}
	ev := &r.ev
	cl := int(r.seqs.client)
	ep := func(i int) int { return i ^ cl } // client/server index <-> conn.ep index
	isClient := func(bit evBits) bool { return (ev.bits&bit != 0) == (cl == 1) }
	at := func(ms uint32) time.Time { return r.FirstSeen.Add(time.Duration(ms) * time.Millisecond) }
	hs := func(n int, u uint16) time.Time {
		if n == 0 {
			return time.Time{}
		}
		return r.FirstSeen.Add(time.Duration(u) * hsUnit)
	}
	syns, synacks := 0, 0
	if ev.bits&evSYN != 0 {
		syns = 1 + int(ev.synsMore)
	}
	synackLast := ev.synackAt
	if ev.bits&evSYNACK != 0 {
		synacks = 1 + int(ev.synacksMore)
	}
	if synacks > 1 {
		synackLast = ev.synackLastAt
	}
	out.Handshake = HandshakeEvidence{
		SYNs: syns, SYNACKs: synacks,
		FirstSYN: hs(syns, 0), LastSYN: hs(syns, ev.synLastAt),
		FirstSYNACK: hs(synacks, ev.synackAt), LastSYNACK: hs(synacks, synackLast),
		SYNAfterSYNACK: ev.bits&evSynAfterSynAck != 0, SYNACKAfterACK: ev.bits&evSynAckAfterAck != 0,
	}
	for i := range 2 {
		e := ep(i)
		out.Sent[i] = SentEvidence{Segments: int(ev.segs[e]), Resent: int(ev.resent[e]),
			TimeoutResends: int(ev.stalls[e]), DataAfterFIN: ev.bits&(evDataToClosed0<<e) != 0}
		out.TTL[i], out.TTLVaries[i] = ev.ttl[e], ev.bits&(evTTLVaries0<<e) != 0
		out.ISN[i], out.SentSYN[i] = r.seqs.isn[e], r.seqs.flags[e]&sentSYN != 0
		out.FINSeq[i], out.SentFIN[i] = r.seqs.finSeq[e], r.seqs.flags[e]&sentFIN != 0
		if out.SentFIN[i] {
			out.FINAt[i] = time.Unix(0, r.seqs.finTx[e]).UTC()
		}
	}
	if ev.stallMs > 0 {
		out.Stall = StallEvidence{Seen: true, FromClient: isClient(evStallDir),
			Silence: time.Duration(ev.stallMs) * time.Millisecond, At: at(ev.stallAt), Seq: ev.stallSeq}
	}
	if ev.bits&evRST != 0 {
		out.Reset = ResetEvidence{Seen: true, FromClient: isClient(evRSTDir), At: at(ev.rstAt),
			Seq: ev.rstSeq, Ack: ev.rstAck, HasACK: ev.bits&evRSTAck != 0, TTL: ev.rstTTL,
			SenderState: State(ev.rstStates >> 4), ReceiverState: State(ev.rstStates & 15),
			SenderSentFIN: ev.bits&evRSTAfterFIN != 0}
	}
	if ev.bits&evIgn != 0 {
		out.IgnoredReset = ResetEvidence{Seen: true, FromClient: isClient(evIgnDir), At: at(ev.ignAt),
			Seq: ev.ignSeq, HasACK: ev.bits&evIgnAck != 0, TTL: ev.ignTTL}
	}
	r.closingEvidence(out, at, isClient)
}

// closingEvidence fills in out what the zero windows, the FINs, the
// unanswered resends and a reused 4-tuple showed.
func (r *Record) closingEvidence(out *Evidence, at func(uint32) time.Time, isClient func(evBits) bool) {
	ev := &r.ev
	if ev.bits&evZW != 0 {
		z := ZeroWindowEvidence{Seen: true, ByClient: isClient(evZWDir), Since: at(ev.zwAt),
			Open: ev.bits&evZWOpen != 0, Probes: int(ev.zwProbes)}
		if ev.zwMs > 0 || !z.Open {
			z.LongestFrom, z.Longest = at(ev.zwLongAt), time.Duration(ev.zwMs)*time.Millisecond
		}
		out.ZeroWindow = z
	}
	if ev.bits&evFIN != 0 {
		out.FIN = FINEvidence{Seen: true, FromClient: isClient(evFINDir), At: at(ev.finAt), Belied: ev.bits&evFINBelied != 0}
	}
	if ev.laResends > 0 {
		e := int(r.seqs.client)
		if !isClient(evLADir) {
			e = 1 - e
		}
		out.LastAck = LastAckEvidence{Resends: int(ev.laResends), ByClient: isClient(evLADir),
			LastFIN: time.Unix(0, r.seqs.finTx[e]).UTC()}
	}
	if ev.runN > 0 {
		out.Unanswered = UnansweredEvidence{Resends: int(ev.runN), ByClient: isClient(evRunDir), Since: at(ev.runAt)}
	}
	if ev.bits&evReused != 0 {
		out.Reuse = ReuseEvidence{Reused: true, SelfInTimeWait: ev.bits&evReuseTWSelf != 0,
			TimeWaitAge: time.Duration(ev.twAge) * 10 * time.Millisecond, OldNext: ev.reuseNxt,
			ISNAbove: ev.bits&evReuseISNAbove != 0, TSKnown: ev.bits&evReuseTSKnown != 0,
			TSAbove: ev.bits&evReuseTSAbove != 0}
	}
}
