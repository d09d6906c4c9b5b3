package flows

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Record is an immutable copy of one connection: what Snapshot, Flush and
// the retire callback hand out. Its zero value is not meaningful.
type Record struct {
	ID          uint64 // unique in its table; later connections have larger IDs
	Key         Key
	Client      netip.AddrPort
	Server      netip.AddrPort
	ClientState State
	ServerState State
	// ClientDoubt and ServerDoubt say why the packets seen cannot tell
	// the state for sure, or DoubtNone (doubt.go).
	ClientDoubt, ServerDoubt Doubt
	Midstream                bool // the opening SYN was not seen
	Role                     Role // why Client is the client
	C2S, S2C                 EndpointStats
	RTT                      time.Duration // handshake round-trip time, or -1 if not seen
	FirstSeen                time.Time
	LastSeen                 time.Time
	ClientWindow             uint16 // last raw windows advertised
	ServerWindow             uint16
	Transitions              []Transition // oldest first; only if Config.Transitions is set, and not in Snapshot
	End                      EndReason    // why it left the table; EndNone in a snapshot
	zeek                     zeekConn
	zx                       *zeekExtra // with Config.Zeek, when it left the table: a pointer, so that other records stay as small
	ev                       evidence   // read through Evidence (evidence_view.go)
	seqs                     recordSeqs // the sequence numbers Evidence names
}

// ConnState returns Zeek's conn_state code for the connection (S0, SF, ...).
func (r *Record) ConnState() string { return r.zeek.connState() }

// History returns Zeek's history string for the connection.
func (r *Record) History() string { return r.zeek.history() }

// AppendHistory appends Zeek's history string to dst: History without a
// string made for each record, for a writer of many.
func (r *Record) AppendHistory(dst []byte) []byte { return r.zeek.appendHistory(dst) }

// Closed reports whether both endpoints are CLOSED.
func (r *Record) Closed() bool {
	return r.ClientState == StateClosed && r.ServerState == StateClosed
}

// EndReason says why a record left the table.
type EndReason uint8

// Why records leave the table.
const (
	EndNone     EndReason = iota // still tracked (a snapshot)
	EndClosed                    // both ends closed, and the closed timeout passed
	EndIdle                      // no packet for the idle timeout
	EndReplaced                  // a new connection (new SYN) took its 4-tuple
	EndEvicted                   // evicted to respect Config.MaxConns
	EndFlushed                   // still tracked when the capture ended (Flush)
)

var endNames = [...]string{"", "closed", "idle", "replaced", "evicted", "flushed"}

// String returns "closed", "idle", "replaced", "evicted", "flushed" or "".
func (e EndReason) String() string {
	if int(e) < len(endNames) {
		return endNames[e]
	}
	return "unknown"
}

// record copies c, of a table with configuration cfg, into a Record; its
// transition log only if withLog.
func (c *conn) record(end EndReason, cfg *Config, withLog bool) Record {
	var r Record
	c.fill(&r, end, cfg, withLog)
	return r
}

// fill writes c into r in place: a Record built on the stack and copied
// out is a visible cost of a snapshot.
func (c *conn) fill(r *Record, end EndReason, cfg *Config, withLog bool) {
	cl, sv := int(c.client), 1-int(c.client)
	r.ID = c.ident(cfg.cold)
	r.Key = c.fullKey(cfg.cold)
	r.Client = r.Key.Endpoint(cl)
	r.Server = r.Key.Endpoint(sv)
	r.ClientState = c.ep[cl].state
	r.ServerState = c.ep[sv].state
	r.ClientDoubt = c.doubt(cl, cfg.cold)
	r.ServerDoubt = c.doubt(sv, cfg.cold)
	r.Midstream = c.is(mMidstream)
	r.Role = c.role
	r.C2S = c.stats(cl, cfg.cold)
	r.S2C = c.stats(sv, cfg.cold)
	r.RTT = -1
	if c.is(mRTTKnown) {
		r.RTT = time.Duration(c.rtt(cfg.cold))
	}
	r.FirstSeen = time.Unix(0, c.first).UTC()
	r.LastSeen = time.Unix(0, c.last).UTC()
	r.ClientWindow = c.ep[cl].window
	r.ServerWindow = c.ep[sv].window
	r.End = end
	r.zeek = c.zeekFull(cfg.cold)
	r.zx = nil
	r.ev = evidence{c.ev, cfg.cold.peek(c).evCold}
	r.seqs = recordSeqs{client: c.client}
	for i := range c.ep {
		e := &c.ep[i]
		r.seqs.isn[i], r.seqs.finSeq[i], r.seqs.finTx[i], r.seqs.flags[i] = e.isn, e.finSeq, c.at(e.lastTx), e.flags
	}
	r.Transitions = nil
	if withLog && cfg.logs != nil {
		r.Transitions = c.transitions(cfg.logs)
	}
}

// SortByStart sorts records by first-seen time, then by ID (the order the
// table saw them start), so that output is deterministic. A Record is large
// to swap: it sorts keys copied beside each record's position, compared
// without following them into the records, then moves each record once,
// into a scratch slice copied back.
func SortByStart(recs []Record) {
	type key struct {
		first int64
		id    uint64
		at    int
	}
	keys := make([]key, len(recs))
	sorted := true
	for i := range recs {
		keys[i] = key{recs[i].FirstSeen.UnixNano(), recs[i].ID, i}
		sorted = sorted && (i == 0 || cmpStart(keys[i-1].first, keys[i-1].id, keys[i].first, keys[i].id) <= 0)
	}
	if sorted {
		return
	}
	slices.SortFunc(keys, func(a, b key) int { return cmpStart(a.first, a.id, b.first, b.id) })
	b, ok := sortScratch.Get().(*[]Record)
	if !ok {
		b = new([]Record)
	}
	out := slices.Grow((*b)[:0], len(recs))[:len(recs)]
	for i, k := range keys {
		out[i] = recs[k.at]
	}
	copy(recs, out)
	clear(out) // let the transition logs go
	*b = out[:0]
	sortScratch.Put(b)
}

// sortScratch holds SortByStart's scratch slices: a sweep sorts a batch
// every second of capture time, and a fresh slice each time costs more
// than the sort.
var sortScratch sync.Pool

// cmpStart orders connections by start time, then ID.
func cmpStart(first1 int64, id1 uint64, first2 int64, id2 uint64) int {
	if c := cmp.Compare(first1, first2); c != 0 {
		return c
	}
	return cmp.Compare(id1, id2)
}

// ZeekFields are a record's fields in Zeek's conn.log that flowtrack does
// not keep as kernel facts: the roles and counts as Zeek assigns them.
type ZeekFields struct {
	Orig, Resp netip.AddrPort // Zeek's originator and responder (id.orig_*, id.resp_*)
	// LastTime is Zeek's last_time: the connection's duration is
	// LastTime - FirstSeen, and Zeek logs no duration, orig_bytes or
	// resp_bytes when it is 0.
	LastTime             time.Time
	OrigBytes, RespBytes uint64 // TCP_Endpoint::Size: sequence space less SYN and FIN
	MissedBytes          uint64 // octets in content gaps Zeek reported
	OrigPkts, RespPkts   uint64
	// OrigIPBytes and RespIPBytes sum the IP lengths of the packets each
	// side sent (EndpointStats.IPBytes).
	OrigIPBytes, RespIPBytes uint64
}

// Zeek returns the record's conn.log fields, and false if the table that
// made it did not keep them (Config.Zeek, and only for records of
// connections that left the table).
func (r *Record) Zeek() (ZeekFields, bool) {
	x := r.zx
	if x == nil {
		return ZeekFields{}, false
	}
	first := r.Key.Endpoint(int(x.firstDir))
	o := 0 // zeekConn's endpoint that is the originator
	if r.zeek.flipped() {
		o = 1
	}
	f := ZeekFields{
		Orig: first, Resp: r.Key.Endpoint(1 - int(x.firstDir)),
		LastTime:    time.Unix(0, x.lastTime).UTC(),
		OrigBytes:   x.size[o],
		RespBytes:   x.size[1-o],
		MissedBytes: x.missed,
	}
	if o == 1 {
		f.Orig, f.Resp = f.Resp, f.Orig
	}
	os, rs := r.C2S, r.S2C
	if f.Orig != r.Client {
		os, rs = rs, os
	}
	f.OrigPkts, f.OrigIPBytes, f.RespPkts, f.RespIPBytes = os.Packets, os.IPBytes, rs.Packets, rs.IPBytes
	return f, true
}
