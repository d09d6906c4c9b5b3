package flows

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
