package diag

import (
	"fmt"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// connect judges the opening: refused, unanswered, slow-connect.
func (c *judging) connect() {
	hs := &c.ev.Handshake
	if hs.SYNs == 0 {
		return
	}
	switch {
	case c.refused():
	case hs.SYNACKs == 0:
		c.unanswered()
	default:
		c.slowConnect()
	}
}

// refused: the server answered the SYN with an RST that the client took
// (RFC 793 3.9, SYN-SENT: an RST acknowledging the SYN).
func (c *judging) refused() bool {
	rs := &c.ev.Reset
	if !rs.Seen || rs.FromClient || rs.ReceiverState != flows.StateSynSent {
		return false
	}
	c.add(Refused, func() Problem {
		hs := &c.ev.Handshake
		return Problem{Side: SideServer, Since: hs.FirstSYN,
			Detail: fmt.Sprintf("%s answered with an RST: nothing listens on %v, or something on the path rejects it",
				count(hs.SYNs, "SYN", "SYNs"), c.r.Server),
			Evidence: []Packet{c.syn(hs.LastSYN, ""), c.rst(rs, "refuses the connection")}}
	})
	return true
}

// unanswered: SYNs and nothing from the server. Retrying while the
// client's kernel would still resend (Kernel.SynIntervals); gave up once
// it would have given up, its state is CLOSED, or its next SYN is
// overdue (its application gave up first). Nothing is judged before the
// first SYN's timeout (RTOInit) has passed.
func (c *judging) unanswered() {
	hs := &c.ev.Handshake
	if c.r.S2C.Packets > 0 || c.ev.Reset.Seen || c.r.C2S.Packets > uint64(hs.SYNs) {
		return // answered; or the client went on, so a SYN-ACK reached it (a one-sided capture)
	}
	waited := c.now.Sub(hs.FirstSYN)
	if waited < c.j.cfg.Kernel.RTOInit {
		return // no answer is due yet (SYNs sent faster are copies, or another stack's)
	}
	onSchedule := c.r.ClientState == flows.StateClosed || waited >= c.j.giveUp
	early := false
	if k := hs.SYNs; k < len(c.j.synIvl) {
		next := c.j.synIvl[k-1]
		early = !onSchedule && c.now.Sub(hs.LastSYN) > next+late(next)
	}
	c.add(Unanswered, func() Problem {
		what := "the client's kernel is still resending"
		switch {
		case onSchedule:
			what = fmt.Sprintf("the client gave up (Linux gives up %v after the first SYN, after %d)", c.j.giveUp, len(c.j.synIvl))
		case early:
			what = "the client gave up: no SYN came when its kernel would have resent one (its application stopped, or the capture lost it)"
		}
		p := Problem{Side: SideServer, Since: hs.FirstSYN,
			Detail: fmt.Sprintf("%s over %v, no SYN-ACK: %s", count(hs.SYNs, "SYN", "SYNs"),
				round(hs.LastSYN.Sub(hs.FirstSYN)), what),
			Evidence: []Packet{c.syn(hs.FirstSYN, "first SYN")}}
		if hs.SYNs > 1 {
			p.Evidence = append(p.Evidence, c.syn(hs.LastSYN, fmt.Sprintf("SYN %d", hs.SYNs)))
		}
		return p
	})
}

// late is how much later than its nominal time a kernel timer of d may
// fire and its packet be seen: Linux's timer wheel rounds up by up to an
// eighth, and the capture adds a little.
func late(d time.Duration) time.Duration { return d/8 + 100*time.Millisecond }

// slowConnect: a completed handshake whose SYN, SYN-ACK or final ACK had
// to be resent, adding at least the least retransmission timeout
// (RTOMin: a copy of a segment sent at once is a duplicate, not a
// resend on a timer), or whose RTT is far above its service's usual.
func (c *judging) slowConnect() {
	hs := &c.ev.Handshake
	if c.r.RTT < 0 && c.r.ClientState <= flows.StateSynReceived {
		return // never completed
	}
	var leg string
	var delay time.Duration
	server := true
	switch {
	case hs.SYNACKAfterACK:
		leg, delay = "the client's ACK of the SYN-ACK was lost: the server resent its SYN-ACK", hs.LastSYNACK.Sub(hs.FirstSYNACK)
	case hs.SYNACKs > 1 || hs.SYNAfterSYNACK:
		leg = "the SYN-ACK was lost: the server resent it"
		delay = max(hs.LastSYNACK.Sub(hs.FirstSYNACK), hs.LastSYN.Sub(hs.FirstSYN))
	case hs.SYNs > 1:
		leg, delay, server = "the SYN was lost: the client resent it", hs.LastSYN.Sub(hs.FirstSYN), false
	default:
		c.slowRTT()
		return
	}
	if delay < c.j.cfg.Kernel.RTOMin {
		c.slowRTT()
		return
	}
	c.add(SlowConnect, func() Problem {
		p := Problem{Side: side(!server), Since: hs.FirstSYN,
			Detail: fmt.Sprintf("%s (%s, %s), adding %v to the connect", leg,
				count(hs.SYNs, "SYN", "SYNs"), count(hs.SYNACKs, "SYN-ACK", "SYN-ACKs"), round(delay)),
			Evidence: []Packet{c.syn(hs.FirstSYN, "first SYN")}}
		if hs.SYNs > 1 {
			p.Evidence = append(p.Evidence, c.syn(hs.LastSYN, fmt.Sprintf("SYN %d", hs.SYNs)))
		}
		p.Evidence = append(p.Evidence, c.synack(hs.FirstSYNACK, "first SYN-ACK"))
		if hs.SYNACKs > 1 {
			p.Evidence = append(p.Evidence, c.synack(hs.LastSYNACK, fmt.Sprintf("SYN-ACK %d", hs.SYNACKs)))
		}
		return p
	})
}

// slowRTT: a handshake RTT above both SlowFactor times the service's
// median and the median plus SlowMargin, once the service has had
// SlowSamples handshakes. The side is the one whose leg took longer: the
// server's (SYN to SYN-ACK) or the client's (SYN-ACK to ACK), as seen at
// the capture point.
func (c *judging) slowRTT() {
	if c.usual == nil || c.r.RTT < 0 {
		return
	}
	cfg := &c.j.cfg
	med, n := c.usual.UsualRTT(c.r.Server)
	if n < cfg.SlowSamples || float64(c.r.RTT) <= cfg.SlowFactor*float64(med) || c.r.RTT <= med+cfg.SlowMargin {
		return
	}
	hs := &c.ev.Handshake
	c.add(SlowConnect, func() Problem {
		serverLeg := hs.FirstSYNACK.Sub(hs.LastSYN)
		clientLeg := c.r.RTT - serverLeg
		ack := hs.LastSYN.Add(c.r.RTT)
		return Problem{Side: side(clientLeg > serverLeg), Since: hs.LastSYN,
			Detail: fmt.Sprintf("handshake RTT %v against a usual %v (the median of %d on this service): SYN to SYN-ACK %v, SYN-ACK to ACK %v",
				round(c.r.RTT), round(med), n, round(serverLeg), round(clientLeg)),
			Evidence: []Packet{c.syn(hs.LastSYN, ""), c.synack(hs.FirstSYNACK, ""),
				{At: ack, FromClient: true, Flags: flows.ACK, Seq: c.ev.ISN[0] + 1, Ack: c.ev.ISN[1] + 1,
					HasSeq: true, HasAck: c.ev.SentSYN[1], Note: "completes the handshake"}}}
	})
}

// syn returns the client's SYN at t as evidence.
func (c *judging) syn(t time.Time, note string) Packet {
	return Packet{At: t, FromClient: true, Flags: flows.SYN, Seq: c.ev.ISN[0], HasSeq: c.ev.SentSYN[0], Note: note}
}

// synack returns the server's SYN-ACK at t as evidence.
func (c *judging) synack(t time.Time, note string) Packet {
	return Packet{At: t, Flags: flows.SYN | flows.ACK, Seq: c.ev.ISN[1], Ack: c.ev.ISN[0] + 1,
		HasSeq: c.ev.SentSYN[1], HasAck: c.ev.SentSYN[0], Note: note}
}

// rst returns an RST as evidence.
func (c *judging) rst(rs *flows.ResetEvidence, note string) Packet {
	f := flows.RST
	if rs.HasACK {
		f |= flows.ACK
	}
	// An ignored RST's acknowledgement number is not kept (flows.ResetEvidence).
	return Packet{At: rs.At, FromClient: rs.FromClient, Flags: f, Seq: rs.Seq, Ack: rs.Ack,
		HasSeq: true, HasAck: rs.HasACK && rs != &c.ev.IgnoredReset, Note: note}
}

// count returns "1 SYN" or "3 SYNs".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// round rounds d for a sentence: to the millisecond from a second, to
// the microsecond below.
func round(d time.Duration) time.Duration {
	if d >= time.Second || d <= -time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}
