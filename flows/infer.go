package flows

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

// resentUnseen applies what a duplicate ACK from S in TIME_WAIT proves:
// TIME_WAIT answers only a segment from its peer, so R, taken for CLOSED
// when S's ACK of its FIN was seen, sent its FIN again without the
// capture showing it: that ACK never arrived (RFC 793's LAST-ACK
// retransmits; Linux's tcp_timewait_state_process answers with an ACK).
func (c *conn) resentUnseen(p *Packet, S, R *endpoint) {
	if S.state != StateTimeWait || p.Flags&(SYN|FIN|RST) != 0 || p.PayloadLen != 0 ||
		!S.has(ackSent) || p.Ack != S.acked ||
		R.state != StateClosed || !R.has(sentFIN) || !R.has(finAcked) || !R.has(gotFIN) || R.has(resetClosed) {
		return
	}
	R.flags = R.flags&^finAcked | doubt
	R.state = StateLastAck
	R.resent(p.TS, true)
}
