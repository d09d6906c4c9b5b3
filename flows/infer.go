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
func (c *conn) inferSent(p *Packet, snd, rcv *endpoint, cs *coldStore) {
	if p.Flags&SYN != 0 {
		return
	}
	if snd.state == StateSynSent && snd.has(sentSYN) && !rcv.has(sentSYN) {
		rcv.isn = p.Ack - 1
		rcv.flags |= sentSYN | sentSYNACK | synInferred
		rcv.lastTx = c.stamp(p.TS)
		if rcv.state == StateClosed {
			rcv.state = StateSynReceived
		}
		return
	}
	top, known := sentTop(snd, rcv)
	switch {
	case !known || !seqGT(p.Ack, top):
	case rcv.has(finInferred) && seqGT(p.Ack, rcv.finSeq+1):
		c.uninferFIN(rcv, snd, cs)
	case !rcv.has(sentFIN) && p.Ack == top+1:
		switch rcv.state {
		case StateEstablished, StateSynReceived, StateCloseWait:
			rcv.finSeq = top
			rcv.flags |= sentFIN | finInferred
			c.resent(rcv, c.stamp(p.TS), false, cs)
			rcv.finSent()
			if rcv.has(gotFIN) && snd.has(sentFIN) && !snd.has(finAcked) {
				// rcv had snd's FIN: its own FIN acknowledged it.
				c.deliver(snd, c.stamp(p.TS), cs)
			}
		}
	}
}

// sentTop returns the highest sequence number (plus one) that R is known
// to have sent: seen from it, or acknowledged by S.
func sentTop(snd, rcv *endpoint) (uint32, bool) {
	top, known := rcv.nxt, rcv.has(seqKnown)
	if snd.has(ackSent) && (!known || seqGT(snd.acked, top)) {
		top, known = snd.acked, true
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
func (c *conn) uninferFIN(rcv, snd *endpoint, cs *coldStore) {
	rcv.flags &^= sentFIN | finInferred | finAcked
	c.setPending(rcv, 0, cs)
	if rcv.has(resetClosed) {
		return
	}
	switch rcv.state {
	case StateFinWait1, StateFinWait2:
		rcv.state = StateEstablished
	case StateClosing, StateTimeWait, StateLastAck, StateClosed:
		rcv.state = StateCloseWait
	}
	snd.unreceiveFIN()
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
func (c *conn) resentUnseen(p *Packet, snd, rcv *endpoint, cs *coldStore) {
	if p.Flags&(SYN|FIN|RST) != 0 || p.PayloadLen != 0 || !snd.has(gotFIN) || !snd.has(ackSent) || p.Ack != snd.acked ||
		!rcv.has(sentFIN) || !rcv.has(finAcked) || rcv.has(resetClosed) || p.TS-c.at(rcv.lastTx) < int64(10*time.Millisecond) {
		// (Within 10 ms of rcv's FIN, the least time in which Linux sends
		// anything again (the tail loss probe's), it is the same ACK
		// captured twice.)
		return
	}
	rcv.flags = rcv.flags&^finAcked | doubt
	switch {
	case rcv.state == StateFinWait2, rcv.state == StateClosed && rcv.assumed == DoubtOrphan:
		rcv.state, rcv.assumed = StateFinWait1, DoubtNone
	case rcv.state == StateTimeWait && rcv.has(gotFIN):
		rcv.state = StateClosing
	case rcv.state == StateClosed && rcv.has(gotFIN):
		rcv.state = StateLastAck
	}
	c.resent(rcv, c.stamp(p.TS), true, cs)
}
