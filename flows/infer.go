package flows

import "time"

// What an endpoint's acknowledgements prove its peer sent, when the
// capture did not show it: a tap on one fibre (one direction only), a
// capture that dropped a packet, or a packet captured after the ACK that
// answers it. An ACK covers only sequence space its sender received, so
// the peer must have sent it.

// inferSent applies what the ACK in p, sent by S, proves R sent that the
// capture has not shown:
//   - S in SYN_SENT acknowledging without a SYN of its own has accepted a
//     SYN-ACK (RFC 793 3.4: a SYN_SENT socket answers nothing else with a
//     plain ACK), so R sent one, with the sequence number below the ACK;
//   - an ACK one past everything R is known to have sent (seen, or
//     acknowledged before) covers R's FIN: the FIN takes the last
//     sequence number R sends; if R had S's FIN, its FIN acknowledged
//     it;
//   - an ACK beyond an inferred FIN shows it was a byte of data after all.
//
// It runs before S's ACK is applied, which then delivers the SYN-ACK or
// FIN to S and the ACK to R as if both had been seen.
func (c *conn) inferSent(p *Packet, S, R *endpoint) {
	if p.Flags&SYN != 0 {
		return
	}
	if S.state == StateSynSent && S.has(sentSYN) && !R.has(sentSYN) {
		R.isn = p.Ack - 1
		R.flags |= sentSYN | sentSYNACK | synInferred
		R.lastTx = p.TS
		if R.state == StateClosed {
			R.state = StateSynReceived
		}
		return
	}
	top, known := sentTop(S, R)
	switch {
	case !known || !seqGT(p.Ack, top):
	case R.has(finInferred) && seqGT(p.Ack, R.finSeq+1):
		c.uninferFIN(R, S)
	case !R.has(sentFIN) && p.Ack == top+1:
		switch R.state {
		case StateEstablished, StateSynReceived, StateCloseWait:
			R.finSeq = top
			R.flags |= sentFIN | finInferred
			R.resent(p.TS, false)
			R.finSent()
			if R.has(gotFIN) && S.has(sentFIN) && !S.has(finAcked) {
				// R had S's FIN: its own FIN acknowledged it.
				S.deliver(p.TS, S.ackArrived)
			}
		}
	}
}

// sentTop returns the highest sequence number (plus one) that R is known
// to have sent: seen from it, or acknowledged by S.
func sentTop(S, R *endpoint) (uint32, bool) {
	top, known := R.nxt, R.has(seqKnown)
	if S.has(ackSent) && (!known || seqGT(S.acked, top)) {
		top, known = S.acked, true
	}
	return top, known
}

// finSent moves e, which has just sent its FIN, to FIN_WAIT_1 or LAST_ACK.
func (e *endpoint) finSent() {
	switch e.state {
	case StateEstablished, StateSynReceived, StateSynSent:
		e.state = StateFinWait1
	case StateCloseWait:
		e.state = StateLastAck
	}
}

// uninferFIN undoes the FIN inferred for R, and its receipt by S: what
// was taken for R's FIN was a byte of data.
func (c *conn) uninferFIN(R, S *endpoint) {
	R.flags &^= sentFIN | finInferred | finAcked
	R.pending = 0
	if R.has(resetClosed) {
		return
	}
	switch R.state {
	case StateFinWait1, StateFinWait2:
		R.state = StateEstablished
	case StateClosing, StateTimeWait, StateLastAck, StateClosed:
		R.state = StateCloseWait
	}
	S.unreceiveFIN()
}

// unreceiveFIN undoes e's receipt of its peer's FIN: the FIN did not
// reach it after all.
func (e *endpoint) unreceiveFIN() {
	if !e.has(gotFIN) {
		return
	}
	e.flags &^= gotFIN
	switch e.state {
	case StateCloseWait:
		e.state = StateEstablished
	case StateClosing:
		e.state = StateFinWait1
	case StateTimeWait:
		e.state = StateFinWait2
	case StateLastAck:
		e.state = StateFinWait1
		if e.has(finAcked) {
			e.state = StateFinWait2
		}
	case StateClosed:
		if e.has(finAcked) && !e.has(resetClosed) {
			e.state = StateFinWait2
		}
	}
}

// resentUnseen applies what a duplicate ACK from S proves once S has R's
// FIN: R can send nothing new after its FIN, and S sends an ACK again,
// with the same window, only to answer a segment R sent again: its FIN
// (RFC 793; Linux answers it from CLOSE_WAIT, LAST_ACK and TIME_WAIT
// alike). If R's FIN was taken as acknowledged, that acknowledgement never
// arrived: the capture missed R's retransmission.
func (c *conn) resentUnseen(p *Packet, S, R *endpoint) {
	if p.Flags&(SYN|FIN|RST) != 0 || p.PayloadLen != 0 || !S.has(gotFIN) || !S.has(ackSent) || p.Ack != S.acked ||
		!R.has(sentFIN) || !R.has(finAcked) || R.has(resetClosed) || p.TS-R.lastTx < int64(10*time.Millisecond) {
		// (Within 10 ms of R's FIN, the least time in which Linux sends
		// anything again (the tail loss probe's), it is the same ACK
		// captured twice.)
		return
	}
	R.flags = R.flags&^finAcked | doubt
	switch {
	case R.state == StateFinWait2, R.state == StateClosed && R.assumed == DoubtOrphan:
		R.state, R.assumed = StateFinWait1, DoubtNone
	case R.state == StateTimeWait && R.has(gotFIN):
		R.state = StateClosing
	case R.state == StateClosed && R.has(gotFIN):
		R.state = StateLastAck
	}
	R.resent(p.TS, true)
}
