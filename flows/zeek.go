package flows

// This file emulates how Zeek's TCP analyzer arrives at a connection's
// conn_state and history (the conn.log fields), so that flowtrack's records
// can be compared with Zeek's. It follows Zeek's source:
//
//   - packet_analysis/protocol/tcp/TCPSessionAdapter.cc (TCP.cc in older
//     releases): Process, init_endpoint, update_history, update_window,
//     update_last_seq, init_peer and the Update*State state machine;
//   - analyzer/protocol/tcp/TCP_Endpoint.cc and TCP_Reassembler.cc: the
//     exponential 'T', 'G' and 'W' entries and when a content gap counts;
//   - Conn.cc and Session.h: CheckHistory, ScaledHistoryEntry, FlipRoles;
//   - packet_analysis/protocol/tcp/TCP.cc: WantConnection, the
//     likely_server_ports heuristic that flips a connection's roles when
//     its first packet is not a SYN;
//   - scripts/base/protocols/conn/main.zeek: conn_state().
//
// Zeek keeps sequence numbers relative to the initial one in 64 bits, with a
// wrap counter; this emulation uses 32-bit modular arithmetic (seqLT and
// friends, as the state machine does), which gives the same answers for all
// but multi-gigabyte corner cases. Checksums are not verified, so there is
// never a 'C'.
//
// To keep the state small (68 bytes a connection) some things are
// approximated:
//
//   - The reassembler's list of out-of-order blocks is one mark, the end of
//     the contiguous data: a segment that reaches it, or a gap, makes all
//     data seen so far contiguous. The first 'G' of a direction is exact;
//     later gap counts, and so the 'G' at 10, 100, ..., can differ when
//     several holes are open at once.
//   - Gap and zero-window counts stop at 65535 (their letters at 1 to
//     10000 are exact); retransmissions are counted in 32 bits.
//   - hist_last_FIN and hist_last_RST (a repeated FIN or RST adds its letter
//     again only at a new sequence number) keep 16 bits; hist_last_SYN is
//     taken as 0, which it is unless a SYN follows the endpoint's own FIN
//     or RST (and Zeek then starts a new connection anyway, see reuse).
//   - The history keeps its first 24 letters.
//   - TCP_Endpoint::Size, used only to tell REJ from RSTR when both sides
//     reset, is taken from last_seq alone.
//   - likely_server_ports is the default set of a plain `zeek -r` (see
//     zeekLikelyServerPort); `zeek -b` would have almost none.
//   - The late flip of a connection that began with a SYN-ACK (Zeek pull
//     request #2191) follows the pull request's description and Zeek's
//     baselines (core.tcp.flip-without-syn, core.conn-size-flip): the
//     history is rewritten as if flipped from the start ("H" becomes
//     "^h"), and the SYN-ACK's sender becomes an established responder.

// zeekState is one of Zeek's TCP endpoint states
// (analyzer::tcp::EndpointState), numbered as Zeek numbers them: 3 bits.
type zeekState uint8

// Zeek's TCP endpoint states, in Zeek's order.
const (
	zeekInactive    zeekState = iota // nothing seen from this side yet
	zeekSynSent                      // SYN seen
	zeekSynAckSent                   // SYN-ACK seen, but no SYN from the peer
	zeekPartial                      // data seen, but no SYN
	zeekEstablished                  // handshake completed (or inferred)
	zeekClosed                       // FIN seen
	zeekReset                        // RST seen
)

var zeekStateNames = [...]string{"INACTIVE", "SYN_SENT", "SYN_ACK_SENT", "PARTIAL", "ESTABLISHED", "CLOSED", "RESET"}

// String returns the state's name in Zeek's TCP_ENDPOINT_* constants,
// without the prefix ("SYN_SENT").
func (s zeekState) String() string {
	if int(s) < len(zeekStateNames) {
		return zeekStateNames[s]
	}
	return "UNKNOWN"
}

// History letters. A letter is stored as a 5-bit code: index+1 for the
// originator (upper case), index+12 for the responder (lower case), and
// zeekCaret for '^'. Code 0 marks the end of the history.
const zeekLetters = "SHADFRGTWIQ"

const (
	zhS = iota // SYN without ACK
	zhH        // SYN-ACK
	zhA        // pure ACK
	zhD        // payload
	zhF        // FIN
	zhR        // RST
	zhG        // content gap (exponential)
	zhT        // retransmission (exponential)
	zhW        // zero window (exponential)
	zhI        // FIN and RST together
	zhQ        // SYN with FIN or RST
)

const (
	zeekCaret   = uint8(2*len(zeekLetters) + 1) // code of '^'
	zeekMaxHist = 24                            // letters kept; further ones are dropped
)

// Zeek's per-role "already in the history" bits (TCP_Endpoint::HistoryMasks).
// They are kept per role (originator or responder), not per endpoint, as in
// Zeek, where Connection::hist_seen is shifted by 16 for the responder.
const (
	zseenSYN = 1 << iota
	zseenFIN
	zseenRST
	zseenFINRST
	zseenData
	zseenACK
	zseenMulti
)

// Layout of zeekConn.bits.
const (
	zbStateBits = 6 // per endpoint: state (3 bits), then previous state (3 bits)
	zbSeenShift = 12
	zbSeenBits  = 7
	zbSwapped   = 1 << 26 // the originator is the receiver of the first packet (ep[1])
	zbStarted   = 1 << 27 // a packet has been observed
	zbFinSeen   = 1 << 28 // ep[0] has sent a FIN (FIN_cnt > 0); << 1 for ep[1]
)

// zeekTooLarge is Zeek's TOO_LARGE_SEQ_DELTA: a SYN or RST this far from the
// expected sequence number does not move the endpoint's last_seq.
const zeekTooLarge = 1048576

// zeekEnd is Zeek's TCP_Endpoint, reduced to what conn_state and history
// depend on. Sequence numbers are absolute unless named relative (to start,
// as Zeek's are; data after a SYN starts at relative 1).
type zeekEnd struct {
	start   uint32 // start_seq: the ISN, or seq-1 of the first packet if no SYN was seen
	last    uint32 // last_seq: one past the highest sequence number sent
	reassem uint32 // the reassembler's last_reassem_seq minus 1: data is contiguous up to here (relative)
	gap     uint16 // content gaps ('G'), saturating
	fin     uint16 // low 16 bits of FIN_seq (relative, one past the latest FIN)
}

// zeekConn emulates Zeek's TCP analyzer endpoint states and history for one
// connection. ep[0] is the endpoint that sent the connection's first packet
// seen. The zero value means nothing seen yet.
//
// A conn keeps its zeekHot in itself, and its zeekMore, which only
// retransmissions, zero windows and long histories write, in its cold record
// (conn.zeekFull, setZeek).
type zeekConn struct {
	zeekHot
	zeekMore
}

// zeekHot is all of zeekConn but zeekMore.
type zeekHot struct {
	ep [2]zeekEnd
	// The low 16 bits of each end's hist_last_RST (relative), beside
	// zeekEnd so that neither has two bytes of padding.
	rst  [2]uint16
	bits uint32    // states, per-role history bits, roles
	hist [2]uint32 // the first 12 history letters, 5-bit codes, six a word
}

// zeekMore is what only retransmissions, zero windows and histories of
// more than 12 letters write of a zeekConn.
type zeekMore struct {
	rxmt     [2]uint32 // retransmissions ('T'), indexed like zeekConn.ep
	histMore [2]uint32 // the history's letters after the first 12, as in hist
	win0     [2]uint16 // zero windows ('W'), saturating, as rxmt
}

// histWord returns the i-th word of six history letters (of
// zeekMaxHist/6).
func (z *zeekConn) histWord(i int) *uint32 {
	if i < len(z.hist) {
		return &z.hist[i]
	}
	return &z.histMore[i-len(z.hist)]
}

// zeekHistWords is the number of words the history's letters take.
const zeekHistWords = (zeekMaxHist + 5) / 6

// observe is called for every packet of the connection in capture order.
// fromFirst is true when the packet was sent by the endpoint that sent the
// connection's first packet seen. A payload that the capture cut short
// (p.Snapped) is not given to the emulated reassembler: Zeek's never
// receives one (TCP_Endpoint::DataSent needs caplen >= len), so the peer's
// acknowledgement of it shows as a content gap ('G').
func (z *zeekConn) observe(p *Packet, fromFirst bool) {
	f := p.Flags
	syn, fin, rst, ack := f&SYN != 0, f&FIN != 0, f&RST != 0, f&ACK != 0
	length := p.PayloadLen
	s := 0
	if !fromFirst {
		s = 1
	}

	if z.bits&zbStarted == 0 {
		z.bits |= zbStarted
		if zeekFlipFirst(p) {
			z.bits |= zbSwapped
			z.addCode(zeekCaret)
		}
	}
	// A connection that began with a SYN-ACK from its originator is flipped
	// as soon as an ACK or data follows in either direction: a stealth scan
	// would answer with a RST or nothing (Zeek pull request #2191).
	if z.synAckFlips(p) {
		z.flipSynAck()
	}

	isOrig := s == z.origIdx()
	e, peer := &z.ep[s], &z.ep[1-s]

	segLen := length // sequence space the segment occupies (get_segment_len)
	if syn {
		segLen++
	}
	if fin {
		segLen++
	}
	if rst {
		segLen -= length
	}
	end := p.Seq + segLen

	z.initEndpoint(s, syn, p.Seq, end)
	relSeq := p.Seq - e.start
	underflow := int32(relSeq) < 0

	z.updateHistory(s, isOrig, syn, fin, rst, ack, relSeq, length)

	// update_window: a zero window counts unless it comes with or after a
	// RST, or after the peer's FIN. Scaling never makes a window zero.
	if p.Window == 0 && !rst && z.state(1-s) != zeekClosed && z.state(s) != zeekReset && zeekScaled16(&z.win0[s]) {
		z.add(zhW, isOrig)
	}

	if fin {
		z.bits |= zbFinSeen << s
		e.fin = uint16(relSeq + segLen)
	}

	var relAck uint32
	if ack {
		if z.state(1-s) == zeekInactive {
			// init_peer: number the silent peer's sequence space as
			// though its SYN had been seen.
			relAck = 1
			peer.start, peer.last = p.Ack-1, p.Ack-1
		} else if relAck = p.Ack - peer.start; int32(relAck) < 0 {
			relAck = 0 // TCP_ack_underflow_or_misorder
		}
	}

	z.updateLastSeq(s, isOrig, end, syn, fin, rst, length)
	z.stateMachine(s, isOrig, p.Seq, syn, fin, rst, ack, length)

	// The acknowledgement is applied after the state machine, so that a gap
	// it reveals in a FIN or RST is judged by the new states.
	if ack {
		z.ackReceived(1-s, relAck)
	}
	if length > 0 && !rst && !underflow && !p.Snapped {
		rel := relSeq
		if syn {
			rel++
		}
		z.dataSent(s, rel, length)
	}
}

// synAckFlips reports whether p makes observe flip a connection that began
// with a SYN-ACK from its originator (see flipSynAck).
func (z *zeekConn) synAckFlips(p *Packet) bool {
	o := z.origIdx()
	return z.state(o) == zeekSynAckSent && z.state(1-o) == zeekInactive &&
		p.Flags&(SYN|FIN|RST) == 0 && (p.Flags&ACK != 0 || p.PayloadLen > 0)
}

// flipped reports whether Zeek would make the receiver of the first packet
// the originator. The history then starts with '^', except after a SYN that
// answers the originator's SYN-ACK (a reordered handshake), where Zeek
// appends the '^' when it flips.
func (z *zeekConn) flipped() bool { return z.bits&zbSwapped != 0 }

// connState returns Zeek's conn_state: conn_state() of
// base/protocols/conn/main.zeek, applied to the endpoint states.
func (z *zeekConn) connState() string {
	o := z.origIdx()
	r := 1 - o
	os, rs := z.state(o), z.state(r)
	oInactive := os == zeekInactive || os == zeekPartial
	rInactive := rs == zeekInactive || rs == zeekPartial
	switch {
	case rs == zeekReset:
		if os == zeekSynSent || os == zeekSynAckSent || (os == zeekReset && z.sizeZero(o) && z.sizeZero(r)) {
			return "REJ"
		}
		if oInactive {
			return "RSTRH"
		}
		return "RSTR"
	case os == zeekReset:
		if rInactive {
			if z.synThenRST() {
				return "RSTOS0"
			}
			return "OTH"
		}
		return "RSTO"
	case rs == zeekClosed && os == zeekClosed:
		return "SF"
	case os == zeekClosed:
		if rInactive {
			return "SH"
		}
		return "S2"
	case rs == zeekClosed:
		if oInactive {
			return "SHR"
		}
		return "S3"
	case os == zeekSynSent && rs == zeekInactive:
		return "S0"
	case os == zeekEstablished && rs == zeekEstablished:
		return "S1"
	}
	return "OTH"
}

// history returns Zeek's history string.
func (z *zeekConn) history() string {
	var b [zeekMaxHist]byte
	return string(z.appendHistory(b[:0]))
}

// appendHistory appends Zeek's history string to b.
func (z *zeekConn) appendHistory(b []byte) []byte {
	codes, n := z.codes()
	for _, c := range codes[:n] {
		switch {
		case c == zeekCaret:
			b = append(b, '^')
		case int(c) > len(zeekLetters):
			b = append(b, zeekLetters[int(c)-len(zeekLetters)-1]+'a'-'A')
		default:
			b = append(b, zeekLetters[c-1])
		}
	}
	return b
}

// reuse reports whether Zeek would end the connection and start a new one
// with packet p instead of applying p to it (TCPSessionAdapter::IsReuse): p
// is a SYN (or, before the originator has sent anything, a SYN-ACK) whose
// sequence number is not the originator's ISN, or any such SYN once either
// side has closed. A table that wants Zeek's connection boundaries calls it
// before observe.
func (z *zeekConn) reuse(p *Packet, fromFirst bool) bool {
	if z.bits&zbStarted == 0 || p.Flags&SYN == 0 {
		return false
	}
	o := z.origIdx()
	r := 1 - o
	co := o // the endpoint whose ISN the packet should repeat
	if p.Flags&ACK != 0 {
		if z.state(o) != zeekInactive {
			return false // not a half-open connection
		}
		co = r
	}
	if !z.closed(o) && !z.closed(r) {
		if p.Seq == z.ep[co].start {
			return false
		}
		if p.Flags&ACK == 0 && z.state(co) == zeekSynAckSent && z.state(r) == zeekInactive && p.Seq == z.ep[r].start {
			return false // the SYN of a reordered handshake
		}
	}
	return true
}

// closed approximates Zeek's did_close: the endpoint sent a FIN or RST that
// the analyzer acted on.
func (z *zeekConn) closed(i int) bool {
	s := z.state(i)
	return s == zeekClosed || s == zeekReset
}

func (z *zeekConn) origIdx() int {
	if z.bits&zbSwapped != 0 {
		return 1
	}
	return 0
}

func (z *zeekConn) state(i int) zeekState { return zeekState(z.bits>>(zbStateBits*i)) & 7 }
func (z *zeekConn) prev(i int) zeekState  { return zeekState(z.bits>>(zbStateBits*i+3)) & 7 }

// setState is TCP_Endpoint::SetState: the previous state is remembered only
// when the state changes.
func (z *zeekConn) setState(i int, s zeekState) {
	cur := z.state(i)
	if s == cur {
		return
	}
	sh := zbStateBits * i
	z.bits = z.bits&^(63<<sh) | uint32(cur)<<(sh+3) | uint32(s)<<sh
}

// zeekFlipFirst is TCPAnalyzer::WantConnection's role heuristic for the
// first packet of a connection: if it is not a SYN, or is a SYN-ACK, and its
// source port is a likely server port, its receiver becomes the originator,
// unless the destination port is one too and the packet is a SYN-ACK (a
// stealth scan) or the destination port is the lower one.
func zeekFlipFirst(p *Packet) bool {
	f := p.Flags
	if f&SYN != 0 && f&ACK == 0 {
		return false
	}
	sp, dp := p.Tuple.SrcPort, p.Tuple.DstPort
	if !zeekLikelyServerPort(sp) {
		return false
	}
	if zeekLikelyServerPort(dp) {
		return f&SYN == 0 && sp < dp
	}
	return true
}

// zeekLikelyServerPort reports whether a TCP port is in Zeek's default
// likely_server_ports: the ports that the protocol scripts loaded by a plain
// `zeek -r` register (base/protocols/*/main.zeek: http, ssl, ssh, smtp, dns,
// ftp, irc, imap, pop3, smb, dce-rpc, krb, ldap, mysql, postgresql, rdp,
// redis, socks, xmpp, mqtt, modbus, dnp3, finger).
func zeekLikelyServerPort(port uint16) bool {
	switch port {
	case 21, 22, 25, 53, 79, 80, 81, 88, 110, 135, 139, 143, 389, 443, 445,
		465, 502, 563, 585, 587, 614, 631, 636, 989, 990, 992, 993, 995,
		1080, 1434, 1883, 2811, 3128, 3268, 3306, 3389, 5222, 5223, 5269,
		5432, 6379, 6666, 6667, 6668, 6669, 8000, 8080, 8888, 20000:
		return true
	}
	return false
}

// flipSynAck swaps the roles of a connection that began with a SYN-ACK from
// its originator, now that an ACK or data shows it was not a stealth scan.
// The history is rewritten as if the flip had happened at the start: cases
// swapped and a leading '^' ("H" becomes "^h"). The SYN-ACK's sender, now
// the responder, is established, as a responder's SYN-ACK makes it.
func (z *zeekConn) flipSynAck() {
	o := z.origIdx()
	z.bits ^= zbSwapped
	const m = 1<<zbSeenBits - 1
	seen := z.bits >> zbSeenShift & (m<<zbSeenBits | m)
	seen = (seen&m)<<zbSeenBits | seen>>zbSeenBits
	z.bits = z.bits&^((m<<zbSeenBits|m)<<zbSeenShift) | seen<<zbSeenShift

	codes, n := z.codes()
	var out [zeekMaxHist]uint8
	out[0] = zeekCaret
	for i, c := range codes[:min(n, zeekMaxHist-1)] {
		switch {
		case c == zeekCaret:
		case int(c) > len(zeekLetters):
			c -= uint8(len(zeekLetters))
		default:
			c += uint8(len(zeekLetters))
		}
		out[i+1] = c
	}
	z.setCodes(&out)
	z.setState(o, zeekEstablished)
}

// initEndpoint is init_endpoint: it (re)initializes an endpoint's sequence
// numbers on its first packet, and on a SYN that starts its sequence space
// over.
func (z *zeekConn) initEndpoint(s int, syn bool, seq, end uint32) {
	if !z.initsEndpoint(s, syn, seq) {
		return
	}
	e := &z.ep[s]
	if syn {
		e.start, e.last = seq, end
	} else {
		// A partial connection (only an inactive endpoint gets here
		// without a SYN): number it as though a SYN had been seen,
		// without marking its first packet a duplicate.
		e.start, e.last = seq-1, seq
	}
}

// initsEndpoint reports whether init_endpoint (re)initializes endpoint s's
// sequence numbers for a packet (a SYN if syn) at seq: on its first packet,
// and on a SYN that starts its sequence space over.
func (z *zeekConn) initsEndpoint(s int, syn bool, seq uint32) bool {
	switch z.state(s) {
	case zeekInactive:
		return true
	case zeekSynSent, zeekSynAckSent:
		return syn && seq != z.ep[s].start
	case zeekEstablished, zeekPartial:
		return syn
	case zeekReset:
		return syn && z.prev(s) == zeekInactive
	}
	return false
}

// updateHistory is update_history. Zeek adds an 'S' or 'H' again when a SYN
// arrives at a new relative sequence number; that number is always 0 unless
// the endpoint had closed, and Zeek's hist_last_SYN is taken to be 0 here.
func (z *zeekConn) updateHistory(s int, isOrig, syn, fin, rst, ack bool, relSeq, length uint32) {
	e := &z.ep[s]
	n := 0
	for _, b := range [...]bool{syn, fin, rst} {
		if b {
			n++
		}
	}
	switch {
	case n > 1:
		if fin && rst {
			z.check(zseenFINRST, zhI, isOrig)
		} else {
			z.check(zseenMulti, zhQ, isOrig)
		}
	case syn:
		l := zhS
		if ack {
			l = zhH
		}
		if z.check(zseenSYN, l, isOrig) && relSeq != 0 {
			z.add(l, isOrig)
		}
	case fin:
		var lastFIN uint16 // hist_last_FIN = FIN_seq - 1 for a FIN without SYN
		if z.bits&(zbFinSeen<<s) != 0 {
			lastFIN = e.fin - 1
		}
		if z.check(zseenFIN, zhF, isOrig) && uint16(relSeq+length) != lastFIN {
			z.add(zhF, isOrig)
		}
	case rst:
		if z.check(zseenRST, zhR, isOrig) && uint16(relSeq) != z.rst[s] {
			z.add(zhR, isOrig)
		}
		z.rst[s] = uint16(relSeq)
	case length > 0:
		z.check(zseenData, zhD, isOrig)
	case ack:
		z.check(zseenACK, zhA, isOrig)
	}
}

// updateLastSeq is update_last_seq: it advances last_seq, and counts a
// retransmission when a segment with payload ends at or below it.
func (z *zeekConn) updateLastSeq(s int, isOrig bool, end uint32, syn, fin, rst bool, length uint32) {
	e := &z.ep[s]
	d := int32(end - e.last)
	switch {
	case (syn || rst) && (d > zeekTooLarge || d < -zeekTooLarge):
	case fin && e.last == e.start+1:
		e.last = end // only the SYN seen so far: trust the FIN
	case z.state(s) == zeekReset:
	case d > 0:
		e.last = end
	case length > 0:
		if zeekScaled32(&z.rxmt[s]) {
			z.add(zhT, isOrig)
		}
	}
}

// stateMachine is UpdateStateMachine with UpdateInactiveState,
// UpdateSYN_SentState, UpdateEstablishedState and UpdateClosedState, for a
// packet sent by endpoint s.
func (z *zeekConn) stateMachine(s int, isOrig bool, seq uint32, syn, fin, rst, ack bool, length uint32) {
	p := 1 - s
	switch z.state(s) {
	case zeekInactive:
		if syn {
			switch {
			case isOrig && ack:
				z.setState(s, zeekSynAckSent)
			case isOrig:
				z.setState(s, zeekSynSent)
			default:
				if !ack && z.state(p) == zeekSynAckSent && seq == z.ep[s].start {
					// The SYN of a handshake whose SYN-ACK came
					// first: flip and establish.
					z.bits ^= zbSwapped
					z.addCode(zeekCaret)
					z.setState(p, zeekEstablished)
				}
				if z.state(p) == zeekSynSent {
					z.setState(p, zeekEstablished)
				}
				z.setState(s, zeekEstablished)
			}
		}
		if fin {
			z.setState(s, zeekClosed)
		}
		if rst {
			z.setState(s, zeekReset)
		}
		if z.state(s) == zeekInactive { // no control flag changed it
			switch {
			case !isOrig && length == 0 && z.state(z.origIdx()) == zeekSynSent:
				// An ACK of the SYN before the SYN-ACK: not yet partial.
			case ack && z.state(p) == zeekEstablished:
				// The SYN was missed but the SYN-ACK seen.
				z.setState(s, zeekEstablished)
			default:
				z.setState(s, zeekPartial)
			}
		}
	case zeekSynSent, zeekSynAckSent:
		if fin {
			z.setState(s, zeekClosed)
		}
		if rst {
			z.setState(s, zeekReset)
		}
	case zeekEstablished, zeekPartial:
		if syn && z.state(s) == zeekPartial && z.state(p) == zeekInactive && !ack {
			z.setState(s, zeekSynSent)
		}
		if fin && !rst {
			z.setState(s, zeekClosed)
			if z.state(p) == zeekReset && z.prev(p) == zeekClosed {
				// The peer's FIN then RST was a normal close.
				z.setState(p, zeekClosed)
			}
		}
		if rst {
			z.setState(s, zeekReset)
		}
	case zeekClosed:
		if rst && z.state(p) != zeekClosed {
			z.setState(s, zeekReset)
		}
	}
}

// ackReceived is TCP_Reassembler::AckReceived for endpoint i's data: an
// acknowledgement beyond the data seen contiguously is a content gap, which
// counts in the history only while both endpoints are established or
// closing cleanly. Afterwards the data is taken as contiguous up to the
// acknowledgement and any data seen beyond it.
func (z *zeekConn) ackReceived(i int, seq uint32) {
	e := &z.ep[i]
	rl := e.last - e.start // relative last_seq
	seq = z.ackTarget(i, seq)
	if seqLE(seq, e.reassem+1) {
		return
	}
	if z.clean(i) && z.clean(1-i) && zeekScaled16(&e.gap) {
		z.add(zhG, i == z.origIdx())
	}
	if seqLT(seq, rl) {
		seq = rl
	}
	e.reassem = seq - 1
}

// ackTarget is how far TCP_Reassembler::AckReceived takes an
// acknowledgement of endpoint i's data at relative seq: not past its FIN,
// whose own sequence number is no gap.
func (z *zeekConn) ackTarget(i int, seq uint32) uint32 {
	e := &z.ep[i]
	if z.bits&(zbFinSeen<<i) != 0 {
		rl := e.last - e.start
		finSeq := rl - uint32(uint16(rl)-e.fin)
		if !seqLT(seq, finSeq) {
			seq = finSeq - 1
		}
	}
	return seq
}

// dataSent feeds endpoint i's payload at relative sequence number rel to the
// emulated reassembler. Data out of order is not remembered block by block:
// when a segment reaches the contiguous data, everything seen up to last_seq
// is taken as delivered.
func (z *zeekConn) dataSent(i int, rel, length uint32) {
	e := &z.ep[i]
	r := e.reassem + 1
	upper := rel + length
	if seqLE(upper, r) || seqLT(r, rel) {
		return // old data, or data beyond a hole
	}
	if rl := e.last - e.start; seqLT(upper, rl) {
		upper = rl
	}
	e.reassem = upper - 1
}

// clean reports whether endpoint i is established or closed after having
// been established: only then are its gaps reported.
func (z *zeekConn) clean(i int) bool {
	s := z.state(i)
	return s == zeekEstablished || (s == zeekClosed && z.prev(i) == zeekEstablished)
}

// sizeZero reports whether TCP_Endpoint::Size would be 0: no payload, not
// counting the SYN and FIN octets.
func (z *zeekConn) sizeZero(i int) bool {
	e := &z.ep[i]
	n := e.last - e.start
	if n != 0 {
		n--
	}
	if z.bits&(zbFinSeen<<i) != 0 && n != 0 {
		n--
	}
	return n == 0
}

// synThenRST reports whether the history matches /^\^?S[^HAFGIQ]*R.*/, the
// pattern that tells RSTOS0 from OTH.
func (z *zeekConn) synThenRST() bool {
	codes, n := z.codes()
	c := codes[:n]
	if len(c) > 0 && c[0] == zeekCaret {
		c = c[1:]
	}
	if len(c) == 0 || c[0] != zhS+1 {
		return false
	}
	for _, x := range c[1:] {
		switch x {
		case zhR + 1:
			return true
		case zhH + 1, zhA + 1, zhF + 1, zhG + 1, zhI + 1, zhQ + 1:
			return false
		}
	}
	return false
}

// check is Connection::CheckHistory: it adds the letter the first time the
// role sets the bit, and reports whether the bit was already set.
func (z *zeekConn) check(mask uint32, letter int, isOrig bool) bool {
	sh := zbSeenShift
	if !isOrig {
		sh += zbSeenBits
	}
	if z.bits&(mask<<sh) != 0 {
		return true
	}
	z.bits |= mask << sh
	z.add(letter, isOrig)
	return false
}

// add appends a letter in the case of the role that caused it.
func (z *zeekConn) add(letter int, isOrig bool) {
	c := letter + 1
	if !isOrig {
		c += len(zeekLetters)
	}
	z.addCode(uint8(c))
}

func (z *zeekConn) addCode(c uint8) {
	for i := range zeekHistWords {
		w := z.histWord(i)
		for j := 0; j < 30; j += 5 {
			if *w>>j&31 == 0 {
				*w |= uint32(c) << j
				return
			}
		}
	}
	// The history is full: the letter is lost.
}

func (z *zeekConn) codes() (c [zeekMaxHist]uint8, n int) {
	for i := range zeekHistWords {
		w := *z.histWord(i)
		for j := 0; j < 30; j += 5 {
			x := uint8(w >> j & 31)
			if x == 0 || n == zeekMaxHist {
				return c, n
			}
			c[n] = x
			n++
		}
	}
	return c, n
}

func (z *zeekConn) setCodes(c *[zeekMaxHist]uint8) {
	for i := range zeekHistWords {
		var w uint32
		for j := 0; j < 6 && 6*i+j < zeekMaxHist; j++ {
			w |= uint32(c[6*i+j]) << (5 * j)
		}
		*z.histWord(i) = w
	}
}

// zeekScaled32 and zeekScaled16 are Connection::ScaledHistoryEntry: they
// count an event and report whether the count reached 1, 10, 100, ...,
// when Zeek adds the letter again. The 16-bit counters stop at 65535.
func zeekScaled32(n *uint32) bool {
	*n++
	return zeekPow10(*n)
}

func zeekScaled16(n *uint16) bool {
	if *n == 1<<16-1 {
		return false
	}
	*n++
	return zeekPow10(uint32(*n))
}

func zeekPow10(n uint32) bool {
	switch n {
	case 1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9:
		return true
	}
	return false
}
