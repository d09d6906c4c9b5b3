package ui

import (
	"cmp"
	"math/bits"
	"net/netip"
	"slices"
	"time"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
)

// Problems (package diag) are judged on the builder goroutine, when a
// record becomes a row: every row of a full frame; of an incremental one
// (incremental.go), the rows that changed, and once a second of capture
// time the rows whose problems may begin with time alone, a socket left in
// CLOSE_WAIT (rejudge). A row keeps only the kinds (a diag.Set); the
// detail view judges its one record again for the problems in full.
// Judgements run on the table's clock, capture time, so a replay shows the
// verdicts the live run showed.

// judgeRow sets the problems of row r, the row of rec.
func (b *builder) judgeRow(r *row, rec *flows.Record) {
	r.setProbs(b.judge.Kinds(rec, b.judge.Until(rec, b.judgeAt), &b.usual))
	if r.flags&rowRetired == 0 && mayBegin(rec) {
		r.flags |= rowWatch
	}
}

// setProbs sets the row's problems and the width of their column.
func (r *row) setProbs(s diag.Set) {
	r.probs = s
	r.wid[widProb] = 0
	if s != 0 {
		r.wid[widProb] = uint8(strlen(problemText(s)))
	}
}

// mayBegin reports whether a problem of rec may begin without a packet
// (one judged as of a later time): a handshake without an answer, an
// endpoint waiting in CLOSE_WAIT or FIN_WAIT_2, or a zero window still
// closed. A retired record's judgement no longer moves (diag.Judge.Until).
func mayBegin(rec *flows.Record) bool {
	for _, st := range [2]flows.State{rec.ClientState, rec.ServerState} {
		switch st {
		case flows.StateSynSent, flows.StateSynReceived, flows.StateCloseWait, flows.StateFinWait2:
			return true
		}
	}
	return rec.Evidence().ZeroWindow.Open
}

// rejudgeMax is the most rows an incremental frame judges again for the
// passing of time (rejudge).
const rejudgeMax = 2_000

// rejudge judges again, once a second of capture time, the rows whose
// problems may begin with time alone (rowWatch), so that an incremental
// frame shows a socket left in CLOSE_WAIT without waiting for the next
// full one: at most rejudgeMax rows a frame, the next frame taking up
// where this one left off. A row whose problems changed joins the rows
// the frame changed.
func (x *incFrame) rejudge() {
	b, s := x.b, x.s
	if s.watchAt == 0 {
		if b.judgeAt.Sub(s.rejudged) < time.Second {
			return
		}
		s.rejudged = b.judgeAt
	}
	n, i := 0, s.watchAt
	for ; i < len(x.rows) && n < rejudgeMax; i++ {
		r := &x.rows[i]
		if r.flags&(rowWatch|rowGone|rowRetired) != rowWatch {
			continue
		}
		n++
		rec, ok := b.table.Lookup(r.key, r.id)
		if !ok {
			continue // gone: the change lists say so
		}
		if p := b.judge.Kinds(&rec, b.judge.Until(&rec, b.judgeAt), &b.usual); p != r.probs {
			r.setProbs(p)
			x.touched = append(x.touched, int32(i))
		}
	}
	s.watchAt = i
	if i >= len(x.rows) {
		s.watchAt = 0
	}
}

// usualRTTs are the services' median handshake RTTs, from the rows of the
// last full frame, for slow-connect's rule on RTTs (diag.RTTs).
type usualRTTs struct {
	m map[netip.AddrPort]usualRTT
}

type usualRTT struct {
	median time.Duration
	n      int
}

// UsualRTT returns server's median handshake RTT and the number of RTTs
// it is the median of.
func (u *usualRTTs) UsualRTT(server netip.AddrPort) (time.Duration, int) {
	v := u.m[server]
	return v.median, v.n
}

// update computes the medians over rows.
func (u *usualRTTs) update(rows []row) {
	by := map[netip.AddrPort][]int32{}
	for i := range rows {
		r := &rows[i]
		if r.rtt >= 0 && r.flags&rowGone == 0 {
			ap := r.server()
			by[ap] = append(by[ap], r.rtt)
		}
	}
	m := make(map[netip.AddrPort]usualRTT, len(by))
	for ap, v := range by {
		slices.Sort(v)
		m[ap] = usualRTT{time.Duration(v[len(v)/2]) * time.Microsecond, len(v)}
	}
	u.m = m
}

// problemShort are the kinds' names in the Problem column, at most 11
// characters; a kind without one there is written in full.
var problemShort = [diag.NumKinds]string{
	diag.SlowConnect:       "slow-conn",
	diag.TimeoutRetransmit: "timeout-rtx",
	diag.ZeroWindow:        "zero-win",
	diag.LastAckRetransmit: "lastack-rtx",
	diag.ResetAfterClose:   "rst-closed",
	diag.ResetIgnored:      "rst-ignored",
	diag.ResetSuspect:      "rst-suspect",
	diag.PortPressure:      "port-press",
}

func shortKind(k diag.Kind) string {
	if k < diag.NumKinds && problemShort[k] != "" {
		return problemShort[k]
	}
	return k.String()
}

// problemText is the Problem column's text: the most severe kind.
func problemText(s diag.Set) string {
	k, ok := s.Worst()
	if !ok {
		return "-"
	}
	return shortKind(k)
}

// severity is each kind's place in diag's order, the most severe 0.
var severity = func() (r [diag.NumKinds]uint8) {
	ks := make([]diag.Kind, diag.NumKinds)
	for i := range ks {
		ks[i] = diag.Kind(i)
	}
	slices.SortStableFunc(ks, func(a, b diag.Kind) int {
		switch {
		case diag.MoreSevere(a, b):
			return -1
		case diag.MoreSevere(b, a):
			return 1
		}
		return 0
	})
	for i, k := range ks {
		r[k] = uint8(i)
	}
	return r
}()

// problemKey is the Problem column's sort key: the most severe largest,
// then the most problems.
func problemKey(s diag.Set) uint64 {
	k, ok := s.Worst()
	if !ok {
		return 0
	}
	return uint64(int(diag.NumKinds)-int(severity[k]))<<8 | uint64(bits.OnesCount32(uint32(s)))
}

// probRow is one row of the Problems view: a kind, the connections listed
// that have it, those that had it and left the table since the capture
// began, their services, and when it was last seen.
type probRow struct {
	kind  diag.Kind
	conns int
	ended int
	svcs  []endpoint // in order
	more  bool       // and more services than tallyServices
	last  int64      // capture time, Unix ns: when a connection was last judged to have it
}

// tallyServices is the most services the tally of ended connections
// keeps per kind.
const tallyServices = 1000

// probTally counts the problems of the connections that left the table,
// each once, with its final record: what the Problems view keeps of them
// once their rows are gone. (A record the Retired sink dropped, the UI
// falling far behind, is not counted.)
type probTally struct {
	conns [diag.NumKinds]int
	last  [diag.NumKinds]int64
	svcs  [diag.NumKinds]map[endpoint]struct{}
	more  [diag.NumKinds]bool
}

// add counts the record of a connection that left the table.
func (t *probTally) add(b *builder, rec *flows.Record) {
	s := b.judge.Kinds(rec, b.judge.Until(rec, b.judgeAt), &b.usual)
	if s == 0 {
		return
	}
	var r row
	r.setRecord(rec, true)
	ep := r.serverEndpoint()
	for v := uint32(s); v != 0; v &= v - 1 {
		k := diag.Kind(bits.TrailingZeros32(v))
		t.conns[k]++
		t.last[k] = max(t.last[k], r.last)
		if t.svcs[k] == nil {
			t.svcs[k] = map[endpoint]struct{}{}
		}
		if _, ok := t.svcs[k][ep]; !ok && len(t.svcs[k]) >= tallyServices {
			t.more[k] = true
			continue
		}
		t.svcs[k][ep] = struct{}{}
	}
}

// probAgg gathers the Problems view's rows.
type probAgg struct {
	now   int64 // the table's capture time
	conns [diag.NumKinds]int
	last  [diag.NumKinds]int64
	svcs  [diag.NumKinds]map[endpoint]struct{}
}

// add counts row r. A connection still open has its problems now; one
// closed or gone from the table had them last at its last packet.
func (a *probAgg) add(r *row) {
	at := r.last
	if !r.ended() {
		at = max(at, a.now)
	}
	ep := r.serverEndpoint()
	for s := uint32(r.probs); s != 0; s &= s - 1 {
		k := diag.Kind(bits.TrailingZeros32(s))
		a.conns[k]++
		a.last[k] = max(a.last[k], at)
		if a.svcs[k] == nil {
			a.svcs[k] = map[endpoint]struct{}{}
		}
		a.svcs[k][ep] = struct{}{}
	}
}

// rows returns the kinds seen, on the rows listed or in the tally of
// those that left the table, the most severe first.
func (a *probAgg) rows(t *probTally) []probRow {
	var out []probRow
	for k := range diag.NumKinds {
		if a.conns[k] == 0 && t.conns[k] == 0 {
			continue
		}
		svcs := make([]endpoint, 0, len(a.svcs[k])+len(t.svcs[k]))
		for ep := range a.svcs[k] {
			svcs = append(svcs, ep)
		}
		for ep := range t.svcs[k] {
			if _, ok := a.svcs[k][ep]; !ok {
				svcs = append(svcs, ep)
			}
		}
		slices.SortFunc(svcs, cmpEndpoint)
		out = append(out, probRow{kind: k, conns: a.conns[k], ended: t.conns[k], svcs: svcs, more: t.more[k],
			last: max(a.last[k], t.last[k])})
	}
	slices.SortFunc(out, func(a, b probRow) int { return cmp.Compare(severity[a.kind], severity[b.kind]) })
	return out
}

// problemRows aggregates the rows the request lists into the Problems
// view's rows.
func (b *builder) problemRows(f *frame, req *request, flt *filter) []probRow {
	a := probAgg{now: b.judgeAt.UnixNano()}
	for i := range f.rows {
		r := &f.rows[i]
		if r.probs != 0 && req.lists(r, flt) {
			a.add(r)
		}
	}
	return a.rows(&b.tally)
}

// detailProblems judges the detail view's record in full.
func (b *builder) detailProblems(rec *flows.Record) []diag.Problem {
	return b.judge.Problems(rec, b.judge.Until(rec, b.judgeAt), &b.usual)
}

// problemHelp says what each kind means, for the help (docs/problems.md
// has the rules and their thresholds).
var problemHelp = [diag.NumKinds]string{
	diag.Refused:           "an RST answered the SYN: nothing listens, or the path rejects it (about the server)",
	diag.Unanswered:        "SYNs without a SYN-ACK: retrying, or given up on the kernel's schedule (about the server)",
	diag.SlowConnect:       "the handshake completed only after a SYN or SYN-ACK was resent, or its RTT is far above the service's usual (about who resent)",
	diag.TimeoutRetransmit: "a segment resent after a silence as long as a retransmission timeout, not a fast retransmit (about the sender)",
	diag.Loss:              "a large share of a direction's data segments resent (about the sender)",
	diag.ZeroWindow:        "a receiver advertised a zero window for long (about the receiver)",
	diag.CloseWait:         "in CLOSE_WAIT for long: the peer closed, the application has not (the classic leak)",
	diag.FinWait2:          "in FIN_WAIT_2 for long: the peer's application has not closed",
	diag.LastAckRetransmit: "a FIN resent in LAST_ACK: the final ACK was lost, or the peer is gone",
	diag.HalfOpen:          "one end reset or vanished while the other kept sending unanswered (about the end that vanished)",
	diag.Abort:             "an RST during the connection: an application abort, SO_LINGER 0, or a middlebox (about its sender)",
	diag.ResetAfterClose:   "an RST answering data sent to an application that had closed (about the end that closed)",
	diag.ResetIgnored:      "an RST outside the window, which the receiver ignores (RFC 5961; possibly spoofed)",
	diag.ResetSuspect:      "an RST whose TTL or hop limit differs from its sender's other packets: likely injected on the path",
	diag.EarlyReuse:        "a new SYN on a 4-tuple whose previous connection was still in TIME_WAIT (about the client)",
	diag.PortPressure:      "a client holding so many TIME_WAIT sockets to a service that its ephemeral ports run short (a service's)",
}
