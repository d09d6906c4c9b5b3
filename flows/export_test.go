package flows

import "fmt"

// SetChangeLimit sets how many entries each shard's change list holds, so
// that an external test can make them overflow.
func SetChangeLimit(t *Table, n int) { t.chgMax = n }

// SetLaneThresholds sets how many connections l's table holds before its
// shards are shared out among the lanes, and before the lanes load ahead,
// so that a test's small table does both.
func SetLaneThresholds(l *Lanes, split, touch uint64) { l.splitAbove, l.touchAbove = split, touch }

// ZeekConn is the Zeek emulation of one connection, for the baseline tests
// (zeek_baselines_test.go), which decode the bundled captures with package
// capture as flowtrack does and group the packets into connections as
// Zeek would.
type ZeekConn struct{ z zeekConn }

// ZeekState is one of Zeek's TCP endpoint states, in Zeek's numbering.
type ZeekState = zeekState

// Zeek's endpoint states.
const (
	ZeekInactive   = zeekInactive
	ZeekSynSent    = zeekSynSent
	ZeekSynAckSent = zeekSynAckSent
	ZeekReset      = zeekReset
)

func (c *ZeekConn) Observe(p *Packet, fromFirst bool)    { c.z.observe(p, fromFirst) }
func (c *ZeekConn) Reuse(p *Packet, fromFirst bool) bool { return c.z.reuse(p, fromFirst) }
func (c *ZeekConn) Flipped() bool                        { return c.z.flipped() }
func (c *ZeekConn) History() string                      { return c.z.history() }
func (c *ZeekConn) ConnState() string                    { return c.z.connState() }

// States returns the originator's and the responder's states, and whether
// each has closed (sent a FIN or RST that the analyzer acted on).
func (c *ZeekConn) States() (orig, resp ZeekState, origClosed, respClosed bool) {
	o := c.z.origIdx()
	return c.z.state(o), c.z.state(1 - o), c.z.closed(o), c.z.closed(1 - o)
}

// FastSlowDiff applies pkts, in order, to two tables made with cfg: one
// with the fast path (fastpath.go), one without. After each packet it
// compares the connection the packet went to in both, whole: every byte of
// it in the slab and of its cold record. It returns which packets took
// the fast path, and the first difference.
func FastSlowDiff(pkts []Packet, cfg Config) (fast []bool, err error) {
	fastT, slowT := NewTable(cfg), NewTable(cfg)
	fast = make([]bool, len(pkts))
	var i int
	counted := func(c *conn, p *Packet, s int, cs *coldStore) bool {
		ok := c.predicted(p, s, cs)
		fast[i] = fast[i] || ok
		return ok
	}
	defer func() { predict = (*conn).predicted }()
	for i = range pkts {
		p := pkts[i]
		predict = counted
		fastT.Apply(&p)
		p = pkts[i]
		predict = nil
		slowT.Apply(&p)
		if err := sameConn(fastT, slowT, &pkts[i]); err != nil {
			return fast, fmt.Errorf("packet %d (%v %v seq %d ack %d len %d): %w", i+1, p.Tuple, p.Flags, p.Seq, p.Ack, p.PayloadLen, err)
		}
	}
	return fast, nil
}

// sameConn compares the connections of p's key in tables a and b.
func sameConn(a, b *Table, p *Packet) error {
	var key Key
	p.Tuple.fillKey(&key)
	h := key.hash64()
	find := func(t *Table) *conn {
		sh := &t.shards[uint32(h)&t.mask]
		return sh.m.get(&key, h)
	}
	ca, cb := find(a), find(b)
	// mColdWaits is a hint that only the fast path clears once its cold
	// record holds nothing to wait for: a connection that took the slow
	// path may keep it longer.
	hinted := func(c *conn) conn {
		v := *c
		v.marks &^= mColdWaits
		return v
	}
	// Clear, the hint promises that the cold record holds nothing to wait
	// for.
	unhinted := func(t *Table, c *conn) bool {
		if c.is(mColdWaits) {
			return false
		}
		r := t.cfg.cold.peek(c)
		return r.eps[0].pending != 0 || r.eps[1].pending != 0 || r.runN != 0
	}
	switch {
	case ca == nil && cb == nil:
		return nil
	case ca == nil || cb == nil:
		return fmt.Errorf("tracked in one table only (fast %v, slow %v)", ca != nil, cb != nil)
	case unhinted(a, ca) || unhinted(b, cb):
		return fmt.Errorf("a pending delivery or a run of resends without mColdWaits (fast %v, slow %v)", unhinted(a, ca), unhinted(b, cb))
	case hinted(ca) != hinted(cb):
		return fmt.Errorf("connections differ: %s", firstDiff(fmt.Sprintf("%+v", *ca), fmt.Sprintf("%+v", *cb)))
	case *a.cfg.cold.peek(ca) != *b.cfg.cold.peek(cb):
		return fmt.Errorf("cold records differ: %s", firstDiff(fmt.Sprintf("%+v", *a.cfg.cold.peek(ca)), fmt.Sprintf("%+v", *b.cfg.cold.peek(cb))))
	}
	return nil
}

// firstDiff shows where two printed values first differ.
func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-120)
	return fmt.Sprintf("\nfast ...%s\nslow ...%s", a[from:min(len(a), i+40)], b[from:min(len(b), i+40)])
}
