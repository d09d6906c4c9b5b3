package flows

import (
	"fmt"
	"time"
)

// Transition is one change of an endpoint's state and what caused it: a
// packet (its direction, flags and numbers) or a timer.
type Transition struct {
	TS         int64 // capture time, Unix nanoseconds
	Client     bool  // the client's state changed (else the server's)
	From, To   State
	Packet     bool // caused by a packet (else by a timer running out)
	Confirmed  bool // a delayed delivery, confirmed when no retransmission followed
	Replaced   bool // closed because a new connection (this packet, a SYN) took the 4-tuple
	FromClient bool // the packet was sent by the client
	Flags      Flags
	Seq, Ack   uint32
	PayloadLen uint32
}

// Time returns the transition's capture time.
func (t Transition) Time() time.Time { return time.Unix(0, t.TS).UTC() }

// Cause describes what caused the transition, for example
// "client sent F. seq=1101 ack=5001 len=0" or "timer".
func (t Transition) Cause() string {
	if t.Confirmed {
		return "delivery confirmed: no retransmission followed"
	}
	if t.Replaced {
		return fmt.Sprintf("a new connection took the 4-tuple (SYN seq=%d)", t.Seq)
	}
	if !t.Packet {
		switch t.From {
		case StateTimeWait:
			return "TIME_WAIT timer ran out"
		default:
			return "handshake timed out"
		}
	}
	who := "server"
	if t.FromClient {
		who = "client"
	}
	return fmt.Sprintf("%s sent %s seq=%d ack=%d len=%d", who, t.Flags, t.Seq, t.Ack, t.PayloadLen)
}

// logTransition keeps t, up to cfg.Transitions per connection: the first
// half and the most recent ones, so both the opening and the end survive.
func (c *conn) logTransition(cfg *Config, t Transition) {
	if c.log == nil {
		l := make([]Transition, 0, 4)
		c.log = &l
	}
	l := *c.log
	if len(l) >= cfg.Transitions {
		keep := cfg.Transitions / 2
		copy(l[keep:], l[keep+1:])
		l = l[:len(l)-1]
	}
	*c.log = append(l, t)
}
