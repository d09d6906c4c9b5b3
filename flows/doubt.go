package flows

// Doubt says why the packets seen cannot tell an endpoint's state for
// sure; DoubtNone when they can. A state in doubt is still flowtrack's
// best inference, marked so that no one mistakes it for a fact.
type Doubt uint8

// Reasons for doubt.
const (
	DoubtNone Doubt = iota
	// DoubtAwaiting: it waits for the acknowledgement of its SYN-ACK or
	// FIN, which the capture could still show: its retransmission timer
	// has not run out, so neither a retransmission (not acknowledged) nor
	// silence (acknowledged) has told yet.
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
)

var doubtReasons = [...]string{
	DoubtNone:     "",
	DoubtAwaiting: "waiting for the ACK of its SYN-ACK or FIN, which the capture could still show (its retransmission timer has not run out)",
	DoubtDelivery: "a packet that moves it was seen, but one like it failed to arrive before; not yet settled",
	DoubtOrphan:   "FIN_WAIT_2 past tcp_fin_timeout: gone if its application closed the socket, still FIN_WAIT_2 if it only shut down writing",
	DoubtReset:    "closed by an RST whose arrival nothing could show (a lost RST leaves no trace)",
}

// String explains the doubt in a few words; "" for DoubtNone.
func (d Doubt) String() string {
	if int(d) < len(doubtReasons) {
		return doubtReasons[d]
	}
	return "unknown"
}

// doubt returns why e's state is not certain, if it is not. It is read
// after the timers have run (expireTimers), which settle what silence
// proves once the sender's retransmission timer has run out.
func (e *endpoint) doubt() Doubt {
	switch {
	case e.assumed != DoubtNone:
		return e.assumed
	case e.pending != 0:
		return DoubtDelivery
	case e.awaiting():
		return DoubtAwaiting
	}
	return DoubtNone
}

// awaiting reports whether e waits for the acknowledgement of the SYN-ACK
// or FIN it sent last: a retransmission or silence will tell whether it
// came.
func (e *endpoint) awaiting() bool {
	switch e.state {
	case StateSynReceived:
		return e.has(sentSYNACK)
	case StateFinWait1, StateClosing, StateLastAck:
		return e.has(sentFIN) && !e.has(finAcked)
	}
	return false
}
