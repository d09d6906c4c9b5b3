package flows

import "time"

// expireTimers runs c's endpoints' kernel timers to capture time now:
// TIME_WAIT ends, an unanswered handshake is given up on the kernel's
// schedule, and an orphaned FIN_WAIT_2 ends. It also settles, by capture
// time seen, what a sender's silence proves: an acknowledgement it waited
// for arrived if its retransmission timer ran out without its sending
// again.
//
// seen is the capture time of the newest frame seen anywhere (now may be
// later, from the wall clock of a quiet live capture): silence is taken
// as evidence only while the capture still sees frames, since a capture
// that stopped seeing anything would confirm anything.
func (c *conn) expireTimers(now, seen int64, cfg *Config) {
	for i := range c.ep {
		e := &c.ep[i]
		pending := c.pending(e, cfg.cold)
		if e.state == StateEstablished && pending == 0 {
			continue // no timer, nothing to settle (the commonest case, at every packet)
		}
		if pending != 0 || e.awaiting() {
			c.settle(i, seen, cfg)
		}
		at := c.timerEnd(e, cfg)
		if at == 0 || now < at {
			continue
		}
		from := e.state
		e.state = StateClosed
		if from == StateFinWait2 {
			e.assumed = DoubtOrphan
		}
		if cfg.Transitions > 0 {
			c.logTransition(cfg, Transition{TS: at, Client: i == int(c.client), From: from, To: StateClosed})
		}
	}
}

// settle applies what endpoint i's silence up to capture time seen
// proves. After an RST closed it, the RST arrived if it did not send again
// the SYN, data or FIN it was waiting to have acknowledged; otherwise, the
// acknowledgement it waits for (of its SYN, SYN-ACK or FIN) arrived if it
// did not send them again.
func (c *conn) settle(i int, seen int64, cfg *Config) {
	e := &c.ep[i]
	if e.assumed == DoubtReset {
		if seen >= c.at(c.pending(e, cfg.cold))+late(c.retransmitWait(e, e.preRST, cfg)) {
			e.assumed = DoubtNone
			c.setPending(e, 0, cfg.cold)
		}
		return
	}
	if e.state == StateSynSent && (c.pending(e, cfg.cold) == 0 || c.seesClient(e)) {
		// Silence proves nothing of a SYN: an RST, or the application
		// giving up, would end it as quietly as the capture missing its
		// retransmissions. Nor of a SYN-ACK, once the client's packets
		// show: it would have answered it at once.
		return
	}
	at := c.at(e.lastTx) + late(c.retransmitWait(e, e.state, cfg))
	if seen < at {
		return
	}
	from := e.state
	c.ackArrived(e, max(c.pending(e, cfg.cold), e.lastTx), cfg.cold)
	if cfg.Transitions > 0 && e.state != from {
		c.logTransition(cfg, Transition{TS: at, Client: i == int(c.client), From: from, To: e.state, Confirmed: true})
	}
}

// retransmitWait returns how long after its last SYN, SYN-ACK or FIN
// endpoint e, in state st, would send it again if no answer came. Once it
// has sent one again, twice the interval between the last two (the timer
// doubles), and at least the least timeout (RTOInit in a handshake, RTOMin
// after it: a tail loss probe may come sooner than the timer). Before
// that, its first timeout: RTOInit in a handshake; after it, the
// connection's RTO, which Linux keeps at least RTOMin above the smoothed
// round trip (RTOInit while no round trip was seen).
func (c *conn) retransmitWait(e *endpoint, st State, cfg *Config) time.Duration {
	k := &cfg.Kernel
	handshake := st == StateSynSent || st == StateSynReceived
	var wait time.Duration
	switch rto := c.rto(e, cfg.cold); {
	case rto > 0 && handshake:
		wait = max(2*time.Duration(rto)*time.Millisecond, k.RTOInit)
	case rto > 0:
		wait = max(2*time.Duration(rto)*time.Millisecond, k.RTOMin)
	case !handshake && c.is(mRTTKnown):
		wait = k.RTOMin + 2*time.Duration(c.rtt(cfg.cold))
	default:
		wait = k.RTOInit
	}
	return min(wait, k.RTOMax)
}

// late returns the capture time, after d, by which a kernel timer of d
// has surely fired: the timer wheel rounds a timer up by up to an eighth,
// jiffies add a few milliseconds, and the sender's clock and the
// capture's may drift a little.
func late(d time.Duration) int64 {
	return int64(d + d/4 + 10*time.Millisecond)
}

// timerEnd returns the capture time at which e's state timer, if its
// state has one, closes it; 0 if none runs.
func (c *conn) timerEnd(e *endpoint, cfg *Config) int64 {
	switch e.state {
	case StateTimeWait:
		return c.at(e.twStart) + int64(cfg.TimeWait)
	case StateFinWait2:
		// Linux ends FIN_WAIT_2 after tcp_fin_timeout only for a socket
		// its application closed; the wire cannot tell (DoubtOrphan),
		// and closing is by far the commoner. The time counts from the
		// last packet either way: the peer's data would have drawn an
		// RST from an orphan.
		if e.twStart == 0 {
			return 0
		}
		return max(c.at(e.twStart), c.last) + int64(cfg.Kernel.FinTimeout)
	case StateSynSent, StateSynReceived:
		if cfg.HandshakeTimeout > 0 {
			return c.last + int64(cfg.HandshakeTimeout)
		}
		sched := cfg.synIntervals
		if e.state == StateSynReceived && e.has(sentSYNACK) {
			sched = cfg.synAckIntervals
		}
		last := c.at(e.lastTx)
		if last == 0 {
			last = c.first
		}
		// From the last SYN (or SYN-ACK) seen, the rest of the schedule:
		// the number of retransmissions seen says where it is.
		return last + int64(remaining(sched, int(cfg.cold.peek(c).eps[c.index(e)].retrans)))
	}
	return 0
}

// handshakeWait returns the least time a handshake lasts after its last
// packet before it may be given up: for a sweep to know which half-open
// connections need looking at.
func (cfg *Config) handshakeWait() time.Duration {
	if cfg.HandshakeTimeout > 0 {
		return cfg.HandshakeTimeout
	}
	return min(cfg.synIntervals[len(cfg.synIntervals)-1], cfg.synAckIntervals[len(cfg.synAckIntervals)-1])
}

// refuteSilence undoes what R's silence was taken to prove (settle) when
// S, long after, still does not acknowledge R's FIN: an ACK is
// cumulative, so S never received the FIN, and R never had it
// acknowledged; its retransmissions went unseen. R waits again, from the
// time of S's ACK. (A FIN taken as acknowledged whose ACK S never was
// seen to send is one settle assumed.)
func (c *conn) refuteSilence(p *Packet, snd, rcv *endpoint) {
	if !rcv.has(finAcked) || !seqLT(p.Ack, rcv.finSeq+1) || snd.has(ackSent) && seqGE(snd.acked, rcv.finSeq+1) {
		return
	}
	rcv.flags &^= finAcked
	rcv.lastTx = c.stamp(p.TS)
	switch {
	case rcv.state == StateFinWait2, rcv.state == StateClosed && rcv.assumed == DoubtOrphan:
		rcv.state, rcv.assumed = StateFinWait1, DoubtNone
	case rcv.state == StateTimeWait && rcv.has(gotFIN):
		rcv.state = StateClosing
	case rcv.state == StateClosed && rcv.has(gotFIN) && !rcv.has(resetClosed):
		rcv.state = StateLastAck
	}
	snd.unreceiveFIN()
}
