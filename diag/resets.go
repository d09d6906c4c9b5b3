package diag

import (
	"fmt"

	"github.com/flowtrack/flowtrack/flows"
)

// resets judges the RSTs: abort, reset-after-close, reset-ignored,
// reset-suspect.
func (c *judging) resets() {
	if rs := &c.ev.Reset; rs.Seen && rs.ReceiverState != flows.StateSynSent {
		c.accepted(rs)
	}
	if ig := &c.ev.IgnoredReset; ig.Seen {
		c.add(ResetIgnored, func() Problem {
			if hs := &c.ev.Handshake; !ig.FromClient && hs.SYNs > 0 && (hs.SYNACKs == 0 || ig.At.Before(hs.FirstSYNACK)) {
				// Before any SYN-ACK the client is in SYN_SENT, where an RST
				// counts only if it acknowledges the SYN (RFC 9293
				// 3.10.7.3): there is no window yet.
				return Problem{Side: SideServer, Since: ig.At,
					Detail:   "an RST from the server that does not acknowledge the client's SYN came while the client waited in SYN_SENT, and was ignored (RFC 9293): stale, or forged",
					Evidence: []Packet{c.rst(ig, "does not acknowledge the SYN")}}
			}
			return Problem{Side: side(ig.FromClient), Since: ig.At,
				Detail: fmt.Sprintf("an RST from the %s with seq %d, outside the window the %s accepts, was ignored (RFC 5961): stale, or forged",
					side(ig.FromClient), ig.Seq, side(!ig.FromClient)),
				Evidence: []Packet{c.rst(ig, "out of the window")}}
		})
	}
	c.suspect(&c.ev.Reset)
	if ig := &c.ev.IgnoredReset; ig.Seen && (!c.ev.Reset.Seen || c.ev.Reset.TTL == c.ttl(c.ev.Reset.FromClient)) {
		c.suspect(ig)
	}
}

// accepted classifies the RST that closed the connection after its
// handshake. From an end that had sent its FIN and was then sent data:
// reset-after-close (its application had closed; Linux answers such data
// with an RST). Otherwise, from an end that had not closed, during the
// connection: abort (SO_LINGER 0, an application's abort, an end that no
// longer has the connection, or a middlebox). An RST in the handshake (a
// SYN-ACK refused by a client without the socket, as a port scan does),
// or to an end never seen, is none of these. (An end that resets while
// its peer goes on sending is half-open: see vanished.)
func (c *judging) accepted(rs *flows.ResetEvidence) {
	sender, receiver := rs.SenderState, rs.ReceiverState
	if receiver == flows.StateSynReceived || sender == flows.StateSynReceived || receiver == flows.StateClosed && sender <= flows.StateSynReceived {
		return
	}
	if !c.seen(!rs.FromClient) {
		return // a lone RST: nothing shows its receiver had the connection
	}
	who, peer := side(rs.FromClient), side(!rs.FromClient)
	switch {
	case rs.SenderSentFIN && c.ev.Sent[idx(rs.FromClient)].DataAfterFIN:
		c.add(ResetAfterClose, func() Problem {
			return Problem{Side: who, Since: rs.At,
				Detail: fmt.Sprintf("the %s had closed (sent its FIN); the %s sent data after it, and the %s answered with an RST: its application was gone",
					who, peer, who),
				Evidence: []Packet{c.rst(rs, "answers data sent after its FIN")}}
		})
	case rs.SenderSentFIN:
	case c.set.Has(HalfOpen) && c.ev.Unanswered.ByClient != rs.FromClient:
		// Its peer went on resending: half-open says it, with this RST.
	default:
		c.add(Abort, func() Problem {
			how := "(SO_LINGER 0, an application's abort, or a middlebox)"
			if !rs.HasACK {
				how = "without ACK, as an end that no longer has the connection answers (or an RFC 793 abort)"
			}
			return Problem{Side: who, Since: rs.At,
				Detail:   fmt.Sprintf("the %s reset the connection in %s %s", who, sender, how),
				Evidence: []Packet{c.rst(rs, "resets")}}
		})
	}
}

// suspect: an RST whose TTL (hop limit) differs from every other packet
// its sender sent, which all came with one TTL: made on the path, not by
// the sender's kernel (which uses its sockets' TTL for RSTs too).
func (c *judging) suspect(rs *flows.ResetEvidence) {
	want := c.ttl(rs.FromClient)
	if !rs.Seen || rs.TTL == 0 || want == 0 || rs.TTL == want || c.ev.TTLVaries[idx(rs.FromClient)] {
		return
	}
	if c.set.Has(ResetSuspect) {
		return
	}
	c.add(ResetSuspect, func() Problem {
		return Problem{Side: side(rs.FromClient), Since: rs.At,
			Detail: fmt.Sprintf("an RST claiming to come from the %s has TTL %d, its other packets %d: likely injected on the path",
				side(rs.FromClient), rs.TTL, want),
			Evidence: []Packet{c.rst(rs, fmt.Sprintf("TTL %d", rs.TTL))}}
	})
}

// ttl returns the TTL of the client's (or the server's) other packets, 0
// if none was seen.
func (c *judging) ttl(client bool) uint8 { return c.ev.TTL[idx(client)] }
