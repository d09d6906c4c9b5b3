package flows

import (
	"fmt"
	"sync"
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

// transition is a Transition as a connection keeps it, in 24 bytes
// instead of 32: a view keeps about ten for each of a million connections.
type transition struct {
	ts         int64
	seq, ack   uint32
	payloadLen uint32
	flags      Flags
	states     uint8 // From<<4 | To
	bits       uint8 // tr* below
}

const (
	trClient = 1 << iota
	trPacket
	trConfirmed
	trReplaced
	trFromClient
)

// States fit in four bits each.
var _ [16 - numStates]struct{}

func packTransition(t *Transition) transition {
	p := transition{ts: t.TS, seq: t.Seq, ack: t.Ack, payloadLen: t.PayloadLen, flags: t.Flags,
		states: uint8(t.From)<<4 | uint8(t.To)}
	for _, b := range [...]struct {
		on  bool
		bit uint8
	}{{t.Client, trClient}, {t.Packet, trPacket}, {t.Confirmed, trConfirmed}, {t.Replaced, trReplaced}, {t.FromClient, trFromClient}} {
		if b.on {
			p.bits |= b.bit
		}
	}
	return p
}

func (p transition) unpack() Transition {
	return Transition{
		TS: p.ts, Seq: p.seq, Ack: p.ack, PayloadLen: p.payloadLen, Flags: p.flags,
		From: State(p.states >> 4), To: State(p.states & 15),
		Client: p.bits&trClient != 0, Packet: p.bits&trPacket != 0, Confirmed: p.bits&trConfirmed != 0,
		Replaced: p.bits&trReplaced != 0, FromClient: p.bits&trFromClient != 0,
	}
}

// logTransition keeps t, up to cfg.Transitions per connection: the first
// half and the most recent ones, so both the opening and the end survive.
// The log grows to 4, 10, 25 entries, then the limit: a connection
// opened and closed normally has 9 or 10, which fill 240 bytes exactly (a
// size class), where doubling would have taken 16.
func (c *conn) logTransition(cfg *Config, t Transition) {
	lg := cfg.logs
	lg.mu.Lock()
	defer lg.mu.Unlock()
	l := lg.m[c]
	if !c.is(mLogged) {
		// A new connection in the memory of one that left, whose log
		// may still be here.
		c.marks |= mLogged
		l = make([]transition, 0, min(4, cfg.Transitions))
	}
	if len(l) >= cfg.Transitions {
		keep := cfg.Transitions / 2
		copy(l[keep:], l[keep+1:])
		l = l[:len(l)-1]
	}
	if len(l) == cap(l) {
		n := min(cfg.Transitions, max(4, len(l)*5/2, len(l)*2))
		l = append(make([]transition, 0, n), l...)
	}
	lg.m[c] = append(l, packTransition(&t))
}

// transitions returns the log as Transitions, oldest first.
func (c *conn) transitions(lg *transitionLogs) []Transition {
	if !c.is(mLogged) {
		return nil
	}
	lg.mu.Lock()
	defer lg.mu.Unlock()
	l := lg.m[c]
	out := make([]Transition, len(l))
	for i, p := range l {
		out[i] = p.unpack()
	}
	return out
}

// transitionLogs holds a table's transition logs (Config.Transitions), by
// connection: a conn holds no pointer (slab.go). Lanes log on several
// goroutines at once, so a lock guards them; only a table that keeps
// transitions (for a detailed view) pays for it.
type transitionLogs struct {
	mu sync.Mutex
	m  map[*conn][]transition
}

// drop forgets c's log, if any, as c leaves the table.
func (lg *transitionLogs) drop(c *conn) {
	if lg == nil || !c.is(mLogged) {
		return
	}
	lg.mu.Lock()
	delete(lg.m, c)
	lg.mu.Unlock()
	c.marks &^= mLogged
}

// reset forgets every log, once no connection is left.
func (lg *transitionLogs) reset() {
	if lg == nil {
		return
	}
	lg.mu.Lock()
	clear(lg.m)
	lg.mu.Unlock()
}
