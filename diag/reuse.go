package diag

import (
	"fmt"

	"github.com/flowtrack/flowtrack/flows"
)

// reuse: the connection's SYN took a 4-tuple whose previous connection
// still had an end in TIME_WAIT. A Linux end in TIME_WAIT takes the SYN
// for a new connection, ending its TIME_WAIT, when the SYN's sequence
// number is above what it expected next, or its timestamp is newer than
// the last it saw (tcp_timewait_state_process; an older timestamp is
// refused whatever the sequence number, RFC 7323 PAWS); otherwise it
// answers with the old connection's ACK, the client resets that and
// resends its SYN a second later.
func (c *judging) reuse() {
	ru := &c.ev.Reuse
	if !ru.Reused {
		return
	}
	c.add(EarlyReuse, func() Problem {
		hs := &c.ev.Handshake
		return Problem{Side: SideClient, Since: hs.FirstSYN, Detail: c.reuseDetail(ru),
			Evidence: []Packet{{At: hs.FirstSYN, FromClient: true, Flags: flows.SYN, Seq: c.ev.ISN[0], HasSeq: true,
				Note: "SYN on the old 4-tuple"}}}
	})
}

// reuseDetail says how far into TIME_WAIT the 4-tuple was taken, how the
// SYN compared with the old connection, and what Linux does with it.
func (c *judging) reuseDetail(ru *flows.ReuseEvidence) string {
	if ru.SelfInTimeWait {
		return fmt.Sprintf("the client reused the 4-tuple %v into its own TIME_WAIT (its kernel took a port whose last connection to this service was still in TIME_WAIT, as Linux's tcp_tw_reuse does when it finds no better one); ISN %d against the old next sequence number %d",
			ru.TimeWaitAge, c.ev.ISN[0], ru.OldNext)
	}
	isn := "above"
	if !ru.ISNAbove {
		isn = "not above"
	}
	ts, accepts := "no timestamps to compare", ru.ISNAbove
	if ru.TSKnown {
		ts, accepts = "its timestamp was older than the old connection's", ru.TSAbove
		if ru.TSAbove {
			ts = "its timestamp was newer than the old connection's"
		}
	}
	verdict := "Linux takes it for a new connection and ends the TIME_WAIT"
	if !accepts {
		verdict = "Linux answers it with the old connection's ACK; the client resets that and resends its SYN"
	}
	return fmt.Sprintf("the client reused the 4-tuple %v into the server's TIME_WAIT: ISN %d %s the old next sequence number %d, %s: %s",
		ru.TimeWaitAge, c.ev.ISN[0], isn, ru.OldNext, ts, verdict)
}
