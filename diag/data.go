package diag

import (
	"fmt"

	"github.com/flowtrack/flowtrack/flows"
)

// data judges the transfer: timeout-retransmit, loss, zero-window.
func (c *judging) data() {
	c.timeouts()
	c.loss(true)
	c.loss(false)
	c.zeroWindow()
}

// timeouts: a sender resent the first byte its peer had not acknowledged
// after both directions had been silent for at least cfg.Stall: its
// retransmission timer fired (a fast retransmit follows the duplicate
// ACKs that ask for it at once). The longest stall is the evidence; a
// sender whose stalls were all shorter than the longest one's is named
// with its count only.
func (c *judging) timeouts() {
	st := &c.ev.Stall
	if !st.Seen || st.Silence < c.j.cfg.Stall {
		return
	}
	i := idx(st.FromClient)
	if la := &c.ev.LastAck; la.Resends > 0 && la.ByClient == st.FromClient && c.ev.SentFIN[i] && st.Seq == c.ev.FINSeq[i] {
		return // a FIN resent in LAST_ACK: last-ack-retransmit says it
	}
	c.add(TimeoutRetransmit, func() Problem {
		n := c.ev.Sent[i].TimeoutResends
		return Problem{Side: side(st.FromClient), Since: st.At.Add(-st.Silence),
			Detail: fmt.Sprintf("the %s resent after %v of silence (its retransmission timer), %s",
				side(st.FromClient), round(st.Silence), count(n, "such resend", "such resends")),
			Evidence: []Packet{{At: st.At, FromClient: st.FromClient, Flags: flows.ACK, Seq: st.Seq, HasSeq: true,
				Note: fmt.Sprintf("resends the first unacknowledged byte after %v without a packet either way", round(st.Silence))}}}
	})
}

// loss: the share of a direction's data segments that were resent, or
// missed by the capture point (gaps: a segment lost before it is seen
// only as the hole it leaves), reaches cfg.Loss with at least cfg.LossMin
// of them.
func (c *judging) loss(client bool) {
	s := &c.ev.Sent[idx(client)]
	gaps := c.r.S2C.Gaps
	if client {
		gaps = c.r.C2S.Gaps
	}
	lost := s.Resent + int(min(gaps, uint64(s.Segments)))
	if s.Segments == 0 || lost < c.j.cfg.LossMin || float64(lost) < c.j.cfg.Loss*float64(s.Segments) {
		return
	}
	c.add(Loss, func() Problem {
		p := Problem{Side: side(client), Since: c.r.FirstSeen,
			Detail: fmt.Sprintf("%.1f%% of the %s's %d data segments resent or missed: %d resent (lost, or resent too soon), %d missed before the capture point (gaps)",
				100*float64(lost)/float64(s.Segments), side(client), s.Segments, s.Resent, gaps)}
		if st := &c.ev.Stall; st.Seen && st.FromClient == client {
			p.Evidence = []Packet{{At: st.At, FromClient: client, Flags: flows.ACK, Seq: st.Seq, HasSeq: true,
				Note: "a resent segment"}}
		}
		return p
	})
}

// zeroWindow: a receiver advertised a zero window that lasted (or, still
// closed, has lasted) at least cfg.ZeroWindow.
func (c *judging) zeroWindow() {
	zw := &c.ev.ZeroWindow
	if !zw.Seen {
		return
	}
	from, long := zw.LongestFrom, zw.Longest
	if open := c.now.Sub(zw.Since); zw.Open && open >= long {
		from, long = zw.Since, open
	}
	if long < c.j.cfg.ZeroWindow {
		return
	}
	c.add(ZeroWindow, func() Problem {
		still := ""
		if zw.Open && from.Equal(zw.Since) {
			still = ", and it is still zero"
		}
		p := Problem{Side: side(zw.ByClient), Since: from,
			Detail: fmt.Sprintf("the %s advertised a zero window for %v%s: its application stopped reading; %s from the %s",
				side(zw.ByClient), round(long), still, count(zw.Probes, "probe", "probes"), side(!zw.ByClient)),
			Evidence: []Packet{{At: from, FromClient: zw.ByClient, Flags: flows.ACK, Note: "window 0"}}}
		if still == "" {
			p.Evidence = append(p.Evidence, Packet{At: from.Add(long), FromClient: zw.ByClient, Flags: flows.ACK,
				Note: "the window opens"})
		}
		return p
	})
}
