package diag

import (
	"fmt"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// closing judges the close: close-wait, fin-wait-2, last-ack-retransmit,
// and a peer that vanished (half-open).
func (c *judging) closing() {
	for _, client := range [2]bool{true, false} {
		if !c.seen(client) {
			continue // its state is all inference: a one-sided capture
		}
		switch c.state(client) {
		case flows.StateCloseWait:
			c.waiting(CloseWait, client, !client, c.j.cfg.CloseWait,
				"the %s has been in CLOSE_WAIT for %v: the %s closed, its application has not (a leak if it never does)")
		case flows.StateFinWait2:
			c.waiting(FinWait2, client, client, c.j.cfg.FinWait2,
				"the %s has been in FIN_WAIT_2 for %v: its FIN was acknowledged, but the %s's application has not closed")
		}
	}
	c.lastAck()
	c.vanished()
}

// waiting: the endpoint (client or not) has been in a state since the FIN
// that put it there (sent by finByClient) for at least limit.
func (c *judging) waiting(k Kind, client, finByClient bool, limit time.Duration, format string) {
	at := c.finTime(finByClient)
	if at.IsZero() {
		return
	}
	d := c.now.Sub(at)
	if d < limit {
		return
	}
	c.add(k, func() Problem {
		i := idx(finByClient)
		return Problem{Side: side(client), Since: at,
			Detail: fmt.Sprintf(format, side(client), round(d), side(!client)),
			Evidence: []Packet{{At: at, FromClient: finByClient, Flags: flows.FIN | flows.ACK,
				Seq: c.ev.FINSeq[i], HasSeq: c.ev.SentFIN[i], Note: "the FIN (its own sequence number)"}}}
	})
}

// finTime returns when the client's (or the server's) FIN was seen, if
// it was the connection's first FIN and its sender did not belie it with
// data past it (a damaged segment: no close, so no wait to judge).
func (c *judging) finTime(client bool) time.Time {
	if f := &c.ev.FIN; f.Seen && f.FromClient == client && !f.Belied {
		return f.At
	}
	return time.Time{}
}

// lastAck: an endpoint in LAST_ACK resent its FIN: the ACK of it was lost,
// or the peer is gone.
func (c *judging) lastAck() {
	la := &c.ev.LastAck
	if la.Resends == 0 {
		return
	}
	c.add(LastAckRetransmit, func() Problem {
		i := idx(la.ByClient)
		return Problem{Side: side(la.ByClient), Since: la.LastFIN,
			Detail: fmt.Sprintf("the %s resent its FIN %s in LAST_ACK: the %s's final ACK was lost, or the %s is gone",
				side(la.ByClient), count(la.Resends, "time", "times"), side(!la.ByClient), side(!la.ByClient)),
			Evidence: []Packet{{At: la.LastFIN, FromClient: la.ByClient, Flags: flows.FIN | flows.ACK,
				Seq: c.ev.FINSeq[i], HasSeq: c.ev.SentFIN[i], Note: "the last FIN resent"}}}
	})
}

// vanished: one end resent cfg.HalfOpenResends segments or more in a row
// and its peer answered none, or only with RSTs: the peer is gone
// (powered off, unplugged, restarted, or its state dropped by a
// middlebox) or reset the connection, while this end still holds it.
func (c *judging) vanished() {
	u := &c.ev.Unanswered
	if u.Resends < c.j.cfg.HalfOpenResends {
		return
	}
	gone, holder := side(!u.ByClient), side(u.ByClient)
	c.add(HalfOpen, func() Problem {
		p := Problem{Side: gone, Since: u.Since,
			Detail:   fmt.Sprintf("the %s went silent: the %s resent %d times in a row and got no answer", gone, holder, u.Resends),
			Evidence: []Packet{{At: u.Since, FromClient: u.ByClient, Flags: flows.ACK, Note: "the first unanswered resend"}}}
		if rs := &c.ev.Reset; rs.Seen && rs.FromClient == !u.ByClient && !rs.At.After(u.Since) {
			p.Since = rs.At
			p.Detail = fmt.Sprintf("the %s reset the connection, but the %s went on: it resent %d times in a row, answered by nothing but RSTs",
				gone, holder, u.Resends)
			p.Evidence = append([]Packet{c.rst(rs, "resets")}, p.Evidence...)
		}
		return p
	})
}
