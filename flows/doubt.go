package flows

// Doubt says why the packets seen cannot tell an endpoint's state for
// sure; DoubtNone when they can. A state in doubt is still flowtrack's
// best inference, marked so that no one mistakes it for a fact.
type Doubt uint8

// Reasons for doubt.
const (
	DoubtNone Doubt = iota
	// DoubtAwaiting: it waits for the answer to its SYN, SYN-ACK or FIN,
	// which the capture could still show: its retransmission timer has
	// not run out, so neither a retransmission (no answer) nor silence (an
	// acknowledgement) has told yet. A SYN's answer may never show: an RST
	// draws no packet, a SYN-ACK lost on its way none either.
	DoubtAwaiting
	// DoubtDelivery: a packet that would move it was seen, but one of the
	// same kind evidently failed to arrive before (it was sent again), and
	// whether this one arrived is not settled yet.
	DoubtDelivery
	// DoubtOrphan: it was in FIN_WAIT_2 for longer than tcp_fin_timeout.
	// A socket its application closed is gone by then; one that only shut
	// down writing stays in FIN_WAIT_2. The wire looks the same.
	DoubtOrphan
	// DoubtReset: an RST closed it, and nothing could show whether the
	// RST arrived: a lost RST leaves no trace when its receiver has
	// nothing to send.
	DoubtReset
	// DoubtUnseen: none of its packets were captured (a tap on one fibre,
	// or an answer to a SYN that may have been lost): its state is
	// inferred from its peer's packets alone.
	DoubtUnseen
	// DoubtOneWay: none of its peer's packets were captured: a FIN its
	// peer sent shows only in its acknowledgement, an RST not at all.
	DoubtOneWay
)

var doubtReasons = [...]string{
	DoubtNone:     "",
	DoubtAwaiting: "its answer (to a SYN, SYN-ACK or FIN) may not be in the capture yet",
	DoubtDelivery: "one like the last packet to it was lost before: not settled yet",
	DoubtOrphan:   "FIN_WAIT_2 past tcp_fin_timeout: gone if closed, kept if only shut down",
	DoubtReset:    "closed by an RST that may have been lost: nothing shows it arrived",
	DoubtUnseen:   "none of its packets were captured",
	DoubtOneWay:   "none of its peer's packets were captured",
}

// String explains the doubt in a few words; "" for DoubtNone.
func (d Doubt) String() string {
	if int(d) < len(doubtReasons) {
		return doubtReasons[d]
	}
	return "unknown"
}

// doubt returns why endpoint i's state is not certain, if it is not (cs
// holds its cold record). It
// is read after the timers have run (expireTimers), which settle what
// silence proves once the sender's retransmission timer has run out.
func (c *conn) doubt(i int, cs *coldStore) Doubt {
	e, peer := &c.ep[i], &c.ep[1-i]
	switch {
	case e.assumed != DoubtNone:
		return e.assumed
	case c.pending(e, cs) != 0:
		return DoubtDelivery
	case e.awaiting():
		return DoubtAwaiting
	case e.pkts == 0 && (peer.has(ackSent) || peer.state == StateSynSent):
		return DoubtUnseen
	case peer.pkts == 0 && e.has(ackSent):
		return DoubtOneWay
	}
	return DoubtNone
}

// awaiting reports whether e waits for the answer to the SYN, SYN-ACK or
// FIN it sent last, which a retransmission or silence will tell (a
// SYN's: an RST, or a SYN-ACK lost on its way, would not show).
func (e *endpoint) awaiting() bool {
	switch e.state {
	case StateSynSent:
		return e.has(sentSYN)
	case StateSynReceived:
		return e.has(sentSYNACK)
	case StateFinWait1, StateClosing, StateLastAck:
		return e.has(sentFIN) && !e.has(finAcked)
	}
	return false
}
