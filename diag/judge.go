package diag

import (
	"net/netip"
	"slices"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// Problem is one thing wrong with a connection (or a service), with the
// packets it rests on.
type Problem struct {
	Kind     Kind
	Side     Side      // the endpoint it is about
	Since    time.Time // when it began (capture time)
	Detail   string    // what was seen, in a sentence
	Evidence []Packet  // the packets that show it, oldest first
}

// Packet is one packet a problem rests on. A packet known only by its
// time and direction (one whose numbers flows did not keep) has neither
// HasSeq nor HasAck.
type Packet struct {
	At             time.Time
	FromClient     bool
	Flags          flows.Flags
	Seq, Ack       uint32
	HasSeq, HasAck bool
	Note           string // what this packet shows
}

// RTTs gives a service's usual handshake round-trip time: its median
// over at least n handshakes. Services implements it.
type RTTs interface {
	UsualRTT(server netip.AddrPort) (median time.Duration, n int)
}

// Judge judges records with one configuration. It is safe for
// concurrent use.
type Judge struct {
	cfg    Config
	synIvl []time.Duration // the SYN schedule (Kernel.SynIntervals)
	giveUp time.Duration   // its end (Kernel.SynGiveUp)
}

// New returns a Judge with cfg's thresholds (zero fields: defaults).
func New(cfg Config) *Judge {
	cfg = cfg.withDefaults()
	return &Judge{cfg: cfg, synIvl: cfg.Kernel.SynIntervals(), giveUp: cfg.Kernel.SynGiveUp()}
}

// Config returns the Judge's configuration, defaults filled in.
func (j *Judge) Config() Config { return j.cfg }

// Until returns the capture time up to which record r was watched, given
// the table's time now: now for a connection still tracked or flushed at
// the end; for one that left the table earlier, its last packet, or for
// one retired idle that plus the idle timeout. Judging a record as of
// Until keeps a verdict the same whenever it is written.
func (j *Judge) Until(r *flows.Record, now time.Time) time.Time {
	switch r.End {
	case flows.EndNone, flows.EndFlushed:
		if now.Before(r.LastSeen) {
			return r.LastSeen
		}
		return now
	case flows.EndIdle:
		return r.LastSeen.Add(j.cfg.IdleTimeout)
	}
	return r.LastSeen
}

// Problems returns what is wrong with the connection of record r as of
// capture time now (see Until), the most severe first, or nil. usual, if
// not nil, gives the service's usual handshake RTT (slow-connect).
func (j *Judge) Problems(r *flows.Record, now time.Time, usual RTTs) []Problem {
	return j.problems(r, r.Evidence(), now, usual)
}

// problems is Problems with r's evidence.
func (j *Judge) problems(r *flows.Record, ev flows.Evidence, now time.Time, usual RTTs) []Problem {
	c := judging{j: j, r: r, ev: ev, now: now, detail: true, usual: usual}
	c.run()
	sortProblems(c.out)
	return c.out
}

// sortProblems sorts ps the most severe first.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int { return int(rank[a.Kind]) - int(rank[b.Kind]) })
}

// Kinds returns the kinds of Problems's problems, without building them:
// what a view's column, a filter and the counters need.
func (j *Judge) Kinds(r *flows.Record, now time.Time, usual RTTs) Set {
	c := judging{j: j, r: r, now: now, usual: usual}
	r.ReadEvidence(&c.ev)
	c.run()
	return c.set
}

// judging is one record being judged.
type judging struct {
	j      *Judge
	r      *flows.Record
	ev     flows.Evidence
	now    time.Time
	usual  RTTs
	detail bool // build the problems (else only set)
	set    Set
	out    []Problem
}

func (c *judging) run() {
	c.connect()
	c.data()
	c.closing()
	c.resets()
	c.reuse()
}

// add notes a problem of kind k; only when details are wanted does it
// call build for its side, start, detail and evidence.
func (c *judging) add(k Kind, build func() Problem) {
	c.set = c.set.Add(k)
	if c.detail {
		p := build()
		p.Kind = k
		c.out = append(c.out, p)
	}
}

// state returns the state of the client's or the server's endpoint.
func (c *judging) state(client bool) flows.State {
	if client {
		return c.r.ClientState
	}
	return c.r.ServerState
}

// seen reports whether the client (or the server) sent any packet
// captured.
func (c *judging) seen(client bool) bool {
	if client {
		return c.r.C2S.Packets > 0
	}
	return c.r.S2C.Packets > 0
}

// idx returns the index of the client (0) or the server (1) in
// Evidence's arrays.
func idx(client bool) int {
	if client {
		return 0
	}
	return 1
}
