package flows

import (
	"reflect"
	"testing"
	"time"
)

// ev is one packet of an evidence test: pkt's fields, and the ones the
// evidence reads besides.
type ev struct {
	from     byte
	flags    Flags
	seq, ack uint32
	len      uint32
	at       time.Duration
	win      int    // advertised window; 0 means pkt's 1000, -1 a zero window
	ttl      uint8  // 0 means 64
	tsval    uint32 // 0: no timestamps option
	id       uint16 // IPv4 identification
}

func (e ev) packet() Packet {
	p := pkt(e.from, e.flags, e.seq, e.ack, e.len, e.at)
	switch {
	case e.win < 0:
		p.Window = 0
	case e.win > 0:
		p.Window = uint16(e.win)
	}
	p.TTL = e.ttl
	if p.TTL == 0 {
		p.TTL = 64
	}
	p.TSVal, p.HasTS = e.tsval, e.tsval != 0
	p.IPID = e.id
	return p
}

// evidenceOf applies the packets to a new table and returns the evidence
// of each record, oldest first.
func evidenceOf(t *testing.T, pkts []ev) []Evidence {
	t.Helper()
	var out retired
	tab := NewTable(out.config())
	for _, e := range pkts {
		p := e.packet()
		tab.Apply(&p)
	}
	var evs []Evidence
	// ReadEvidence must set every field, whatever *out held: it is
	// read into one that holds something in each of Evidence's
	// conditional parts first, then each record's in turn.
	at := time.Unix(1, 0)
	reused := Evidence{Stall: StallEvidence{Seen: true, At: at}, Reset: ResetEvidence{Seen: true},
		IgnoredReset: ResetEvidence{Seen: true}, ZeroWindow: ZeroWindowEvidence{Seen: true, Since: at},
		FIN: FINEvidence{Seen: true}, LastAck: LastAckEvidence{Resends: 1}, Unanswered: UnansweredEvidence{Resends: 1},
		Reuse: ReuseEvidence{Reused: true}, FINAt: [2]time.Time{at, at}, SentFIN: [2]bool{true, true}}
	for _, r := range append(out.recs, tab.Flush()...) {
		e := r.Evidence()
		if r.ReadEvidence(&reused); !reflect.DeepEqual(reused, e) {
			t.Fatalf("ReadEvidence over another evidence:\n%+v\nEvidence:\n%+v", reused, e)
		}
		evs = append(evs, e)
	}
	return evs
}

func one(t *testing.T, pkts []ev) Evidence {
	t.Helper()
	evs := evidenceOf(t, pkts)
	if len(evs) != 1 {
		t.Fatalf("%d records, want 1", len(evs))
	}
	return evs[0]
}

var opened = []ev{
	{from: 'c', flags: SYN, seq: 1000},
	{from: 's', flags: SYN | ACK, seq: 5000, ack: 1001, at: ms(1)},
	{from: 'c', flags: ACK, seq: 1001, ack: 5001, at: ms(2)},
}

func evs(parts ...[]ev) []ev {
	var out []ev
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func at(d time.Duration) time.Time { return t0.Add(d) }

// The handshake's SYNs and SYN-ACKs, counted and timed, and which one was
// resent after the other side's answer had been seen (the answer was
// lost): a SYN after a SYN-ACK (the SYN-ACK never reached the client), a
// SYN-ACK after the client's ACK (the ACK never reached the server).
func TestEvidenceHandshake(t *testing.T) {
	lostSYN := one(t, []ev{
		{from: 'c', flags: SYN, seq: 1000},
		{from: 'c', flags: SYN, seq: 1000, at: time.Second},
		{from: 's', flags: SYN | ACK, seq: 5000, ack: 1001, at: time.Second + ms(1)},
		{from: 'c', flags: ACK, seq: 1001, ack: 5001, at: time.Second + ms(2)},
	}).Handshake
	want := HandshakeEvidence{SYNs: 2, SYNACKs: 1, FirstSYN: at(0), LastSYN: at(time.Second),
		FirstSYNACK: at(time.Second), LastSYNACK: at(time.Second)} // 4 ms units: 1.001 s is 1.000
	if lostSYN != want {
		t.Errorf("lost SYN:\n got %+v\nwant %+v", lostSYN, want)
	}
	lostSYNACK := one(t, []ev{
		{from: 'c', flags: SYN, seq: 1000},
		{from: 's', flags: SYN | ACK, seq: 5000, ack: 1001, at: ms(1)},
		{from: 'c', flags: SYN, seq: 1000, at: time.Second},
		{from: 's', flags: SYN | ACK, seq: 5000, ack: 1001, at: time.Second + ms(8)},
		{from: 'c', flags: ACK, seq: 1001, ack: 5001, at: time.Second + ms(9)},
	}).Handshake
	if !lostSYNACK.SYNAfterSYNACK || lostSYNACK.SYNACKAfterACK || lostSYNACK.SYNs != 2 || lostSYNACK.SYNACKs != 2 ||
		lostSYNACK.LastSYNACK != at(time.Second+ms(8)) {
		t.Errorf("lost SYN-ACK: %+v", lostSYNACK)
	}
	lostACK := one(t, evs(opened, []ev{
		{from: 's', flags: SYN | ACK, seq: 5000, ack: 1001, at: time.Second},
		{from: 'c', flags: ACK, seq: 1001, ack: 5001, at: time.Second + ms(1)},
	})).Handshake
	if lostACK.SYNAfterSYNACK || !lostACK.SYNACKAfterACK || lostACK.SYNs != 1 || lostACK.SYNACKs != 2 {
		t.Errorf("lost ACK: %+v", lostACK)
	}
}

// A retransmission after a silence (a timer's) and a fast one, and the
// share of data segments resent: the client sends ten segments of 100
// bytes; the first is lost; three duplicate ACKs make it resend at once
// (no silence); that is lost too, and 300 ms of silence later its timer
// resends it.
func TestEvidenceStallAndResent(t *testing.T) {
	pkts := opened
	for i := range 10 {
		pkts = append(pkts, ev{from: 'c', flags: PSH | ACK, seq: 1001 + 100*uint32(i), ack: 5001, len: 100, at: ms(10 + i)})
	}
	for i := range 3 {
		pkts = append(pkts, ev{from: 's', flags: ACK, seq: 5001, ack: 1001, at: ms(21 + i)})
	}
	pkts = append(pkts,
		ev{from: 'c', flags: PSH | ACK, seq: 1001, ack: 5001, len: 100, at: ms(24)},
		ev{from: 'c', flags: PSH | ACK, seq: 1001, ack: 5001, len: 100, at: ms(324)},
		ev{from: 's', flags: ACK, seq: 5001, ack: 2001, at: ms(325)},
	)
	e := one(t, pkts)
	if e.Sent[0] != (SentEvidence{Segments: 12, Resent: 2, TimeoutResends: 1}) || e.Sent[1] != (SentEvidence{}) {
		t.Errorf("sent %+v %+v, want the client's 12 segments, 2 resent, 1 after a silence", e.Sent[0], e.Sent[1])
	}
	want := StallEvidence{Seen: true, FromClient: true, Silence: 300 * time.Millisecond, At: at(ms(324)), Seq: 1001}
	if e.Stall != want {
		t.Errorf("stall %+v, want %+v", e.Stall, want)
	}
	if e.Unanswered.Resends != 0 {
		t.Errorf("%d unanswered resends after the server's ACK", e.Unanswered.Resends)
	}
}

// Captured near the receiver, a lost segment is a gap, and what fills it
// came after the sender's silence: a stall all the same.
func TestEvidenceStallFillingAGap(t *testing.T) {
	e := one(t, evs(opened, []ev{
		{from: 'c', flags: PSH | ACK, seq: 1101, ack: 5001, len: 100, at: ms(10)},
		{from: 's', flags: ACK, seq: 5001, ack: 1001, at: ms(11)},
		{from: 'c', flags: PSH | ACK, seq: 1001, ack: 5001, len: 100, at: ms(260)},
	}))
	if !e.Stall.Seen || e.Stall.Silence != 249*time.Millisecond || e.Sent[0].TimeoutResends != 1 || e.Sent[0].Resent != 0 {
		t.Errorf("stall %+v, sent %+v: want a 249 ms stall, one timeout resend, none counted resent (a gap filled)", e.Stall, e.Sent[0])
	}
}

// A receiver that stops reading: its window falls to zero, the sender
// probes it (Linux: a segment without data one below its next sequence
// number), and the window opens again.
func TestEvidenceZeroWindow(t *testing.T) {
	e := one(t, evs(opened, []ev{
		{from: 'c', flags: PSH | ACK, seq: 1001, ack: 5001, len: 100, at: ms(10)},
		{from: 's', flags: ACK, seq: 5001, ack: 1101, at: ms(11), win: -1},
		{from: 'c', flags: ACK, seq: 1100, ack: 5001, at: ms(211)},
		{from: 's', flags: ACK, seq: 5001, ack: 1101, at: ms(212), win: -1},
		{from: 'c', flags: ACK, seq: 1100, ack: 5001, at: ms(611)},
		{from: 's', flags: ACK, seq: 5001, ack: 1101, at: ms(612), win: -1},
		{from: 's', flags: ACK, seq: 5001, ack: 1101, at: ms(1011), win: 500},
		{from: 's', flags: ACK, seq: 5001, ack: 1101, at: ms(2000), win: -1},
	}))
	want := ZeroWindowEvidence{Seen: true, ByClient: false, Since: at(ms(2000)), Open: true,
		LongestFrom: at(ms(11)), Longest: time.Second, Probes: 2}
	if e.ZeroWindow != want {
		t.Errorf("zero window:\n got %+v\nwant %+v", e.ZeroWindow, want)
	}
	if e.Stall.Seen || e.Sent[0].Resent != 0 {
		t.Errorf("probes taken for resends: stall %+v, sent %+v", e.Stall, e.Sent[0])
	}
}

// RSTs: one out of the window, which the receiver ignores (RFC 5961), and
// an abort (SO_LINGER 0: RST with ACK at the next sequence number) with
// another TTL than its sender's other packets.
func TestEvidenceResets(t *testing.T) {
	e := one(t, evs(opened, []ev{
		{from: 'c', flags: PSH | ACK, seq: 1001, ack: 5001, len: 100, at: ms(10)},
		{from: 's', flags: RST, seq: 5001 + 100000, at: ms(11), ttl: 40},
		{from: 's', flags: RST | ACK, seq: 5001, ack: 1101, at: ms(12), ttl: 50},
	}))
	ign := ResetEvidence{Seen: true, At: at(ms(11)), Seq: 105001, TTL: 40}
	if e.IgnoredReset != ign {
		t.Errorf("ignored RST:\n got %+v\nwant %+v", e.IgnoredReset, ign)
	}
	rst := ResetEvidence{Seen: true, At: at(ms(12)), Seq: 5001, Ack: 1101, HasACK: true, TTL: 50, SenderState: ES, ReceiverState: ES}
	if e.Reset != rst {
		t.Errorf("RST:\n got %+v\nwant %+v", e.Reset, rst)
	}
	if e.TTL != [2]uint8{64, 64} || e.TTLVaries != [2]bool{} {
		t.Errorf("TTLs %v (varying %v), want 64 for both, steady", e.TTL, e.TTLVaries)
	}
}

// A write to an application that had closed: the server closes, the
// client sends data after the server's FIN, and the server's kernel
// answers with an RST (Linux: without ACK, at the acknowledgement number).
func TestEvidenceResetAfterClose(t *testing.T) {
	e := one(t, evs(opened, []ev{
		{from: 's', flags: FIN | ACK, seq: 5001, ack: 1001, at: ms(10)},
		{from: 'c', flags: ACK, seq: 1001, ack: 5002, at: ms(11)},
		{from: 'c', flags: PSH | ACK, seq: 1001, ack: 5002, len: 10, at: ms(20)},
		{from: 's', flags: RST, seq: 5002, at: ms(21)},
	}))
	if !e.Sent[1].DataAfterFIN || e.Sent[0].DataAfterFIN {
		t.Errorf("data after FIN: %+v %+v, want the server's only", e.Sent[0], e.Sent[1])
	}
	if !e.Reset.Seen || e.Reset.FromClient || !e.Reset.SenderSentFIN || e.Reset.HasACK || e.Reset.SenderState != F2 {
		t.Errorf("RST %+v: want the server's, after its FIN, from FIN_WAIT_2, without ACK", e.Reset)
	}
	if !e.FIN.Seen || e.FIN.FromClient || e.FIN.At != at(ms(10)) {
		t.Errorf("first FIN %+v", e.FIN)
	}
}

// The server's FIN resent in LAST_ACK (the client's last ACK lost), and a
// run of resends nobody answers.
func TestEvidenceLastAckAndUnanswered(t *testing.T) {
	e := one(t, evs(opened, []ev{
		{from: 'c', flags: FIN | ACK, seq: 1001, ack: 5001, at: ms(10)},
		{from: 's', flags: ACK, seq: 5001, ack: 1002, at: ms(11)},
		{from: 's', flags: FIN | ACK, seq: 5001, ack: 1002, at: ms(20)},
		{from: 's', flags: FIN | ACK, seq: 5001, ack: 1002, at: ms(220)},
		{from: 's', flags: FIN | ACK, seq: 5001, ack: 1002, at: ms(620)},
	}))
	if e.LastAck != (LastAckEvidence{Resends: 2, LastFIN: at(ms(620))}) {
		t.Errorf("LAST_ACK %+v", e.LastAck)
	}
	if e.Unanswered != (UnansweredEvidence{Resends: 2, Since: at(ms(220))}) {
		t.Errorf("unanswered %+v", e.Unanswered)
	}
	if e.Stall.Silence != 400*time.Millisecond || e.Sent[1].TimeoutResends != 2 {
		t.Errorf("stall %+v, sent %+v: want 400 ms, 2 timeout resends", e.Stall, e.Sent[1])
	}
}

// A SYN on a 4-tuple whose server is in TIME_WAIT (it closed first),
// with an ISN above the old client's next sequence number and a newer
// timestamp: what Linux takes for a new connection (the server entered
// TIME_WAIT at 11 ms, with the client's FIN: 4.989 s before, kept to 10 ms). The second SYN has
// neither: Linux answers it with the old connection's ACK.
func TestEvidenceReuse(t *testing.T) {
	closed := evs(opened, []ev{
		{from: 's', flags: FIN | ACK, seq: 5001, ack: 1001, at: ms(10), tsval: 900},
		{from: 'c', flags: FIN | ACK, seq: 1001, ack: 5002, at: ms(11), tsval: 100},
		{from: 's', flags: ACK, seq: 5002, ack: 1002, at: ms(12), tsval: 901},
	})
	got := evidenceOf(t, evs(closed, []ev{{from: 'c', flags: SYN, seq: 90000, at: 5 * time.Second, tsval: 5100}}))
	if len(got) != 2 {
		t.Fatalf("%d records, want the old and the new", len(got))
	}
	want := ReuseEvidence{Reused: true, TimeWaitAge: ms(4980), OldNext: 1002, ISNAbove: true, TSKnown: true, TSAbove: true}
	if got[1].Reuse != want || got[0].Reuse.Reused {
		t.Errorf("reuse:\n got %+v\nwant %+v (old %+v)", got[1].Reuse, want, got[0].Reuse)
	}
	got = evidenceOf(t, evs(closed, []ev{{from: 'c', flags: SYN, seq: 500, at: 5 * time.Second, tsval: 50}}))
	want = ReuseEvidence{Reused: true, TimeWaitAge: ms(4980), OldNext: 1002, TSKnown: true}
	if got[1].Reuse != want {
		t.Errorf("reuse below:\n got %+v\nwant %+v", got[1].Reuse, want)
	}
	// Once TIME_WAIT is over (60 s), a new SYN reuses nothing early.
	got = evidenceOf(t, evs(closed, []ev{{from: 'c', flags: SYN, seq: 90000, at: 61 * time.Second, tsval: 5100}}))
	if got[len(got)-1].Reuse.Reused {
		t.Errorf("a SYN after TIME_WAIT ended counted as an early reuse")
	}
}

// A capture that saw each packet twice (a SPAN port, two interfaces): a
// copy has the same IPv4 identification and comes within milliseconds; a
// resend has a new one, or comes a timeout later (Windows keeps the
// identification). Without an identification (IPv6, or a stack that
// sends 0), only a copy within a millisecond is one.
func TestEvidenceCopiesAreNotResends(t *testing.T) {
	data := func(at time.Duration, id uint16) ev {
		return ev{from: 'c', flags: PSH | ACK, seq: 1001, ack: 5001, len: 100, at: at, id: id}
	}
	for _, c := range []struct {
		name   string
		pkts   []ev
		resent int
	}{
		{"a copy", []ev{data(ms(10), 7), data(ms(10), 7)}, 0},
		{"a late copy", []ev{data(ms(10), 7), data(ms(15), 7)}, 0},
		{"a resend", []ev{data(ms(10), 7), data(ms(15), 8)}, 1},
		{"a resend by a stack that keeps the identification (Windows)", []ev{data(ms(10), 7), data(ms(300), 7)}, 1},
		{"no identification, a copy", []ev{data(ms(10), 0), data(ms(10)+100*time.Microsecond, 0)}, 0},
		{"no identification, a resend", []ev{data(ms(10), 0), data(ms(300), 0)}, 1},
	} {
		e := one(t, evs(opened, c.pkts))
		if e.Sent[0].Segments != 1+c.resent || e.Sent[0].Resent != c.resent {
			t.Errorf("%s: sent %+v, want %d resent", c.name, e.Sent[0], c.resent)
		}
	}
}

// Resends stay unanswered only while the resender hears nothing: an ACK
// from it that takes in more of its peer's data shows the peer sending
// (what a one-sided capture misses), and ends the run.
func TestEvidenceUnansweredEndsWhenThePeerIsHeardFrom(t *testing.T) {
	resends := []ev{
		{from: 'c', flags: PSH | ACK, seq: 1001, ack: 5001, len: 100, at: ms(10)},
		{from: 'c', flags: PSH | ACK, seq: 1001, ack: 5001, len: 100, at: ms(300)},
		{from: 'c', flags: PSH | ACK, seq: 1001, ack: 5001, len: 100, at: ms(900)},
	}
	if e := one(t, evs(opened, resends)); e.Unanswered.Resends != 2 {
		t.Errorf("%d unanswered resends, want 2", e.Unanswered.Resends)
	}
	acked := evs(opened, resends, []ev{{from: 'c', flags: ACK, seq: 1101, ack: 5101, at: ms(2000)}})
	if e := one(t, acked); e.Unanswered.Resends != 0 {
		t.Errorf("%d unanswered resends after the client acknowledged new data, want 0", e.Unanswered.Resends)
	}
}

// TestColdEvidenceStaysWithItsConnection gives a connection cold evidence
// (a resend after a silence, a zero window, a reset: cold.go), then opens
// connections in its memory that need cold evidence of their own (a zero
// window): one that replaces it on its 4-tuple, and one on another
// 4-tuple after a sweep retired both. Neither may show what the first
// one had.
func TestColdEvidenceStaysWithItsConnection(t *testing.T) {
	var out retired
	tab := NewTable(out.config())
	apply := func(port uint16, pkts []ev) {
		for _, e := range pkts {
			p := e.packet()
			if e.from == 'c' {
				p.Tuple.SrcPort = port
			} else {
				p.Tuple.DstPort = port
			}
			tab.Apply(&p)
		}
	}
	apply(40000, evs(opened, []ev{
		{from: 'c', flags: PSH | ACK, seq: 1001, ack: 5001, len: 100, at: ms(10)},
		{from: 'c', flags: PSH | ACK, seq: 1001, ack: 5001, len: 100, at: ms(500)},
		{from: 's', flags: ACK, seq: 5001, ack: 1101, at: ms(501), win: -1},
		{from: 'c', flags: RST | ACK, seq: 1101, ack: 5001, at: ms(600)},
	}))
	again := func(port uint16, at time.Duration) {
		apply(port, []ev{
			{from: 'c', flags: SYN, seq: 9000, at: at},
			{from: 's', flags: SYN | ACK, seq: 7000, ack: 9001, at: at + ms(1)},
			{from: 'c', flags: ACK, seq: 9001, ack: 7001, at: at + ms(2)},
			{from: 's', flags: ACK, seq: 7001, ack: 9001, at: at + ms(3), win: -1},
			{from: 'c', flags: FIN | ACK, seq: 9001, ack: 7001, at: at + ms(4)},
		})
	}
	again(40000, time.Second) // a new SYN replaces the closed connection
	again(40001, 5*time.Minute)
	out.recs = append(out.recs, tab.Flush()...)
	recs := out.recs
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	first := recs[0].Evidence()
	if !first.Stall.Seen || !first.ZeroWindow.Seen || !first.Reset.Seen {
		t.Fatalf("the first connection lost its evidence: %+v", first)
	}
	for _, r := range recs[1:] {
		e := r.Evidence()
		if e.Stall.Seen || e.Reset.Seen || e.ZeroWindow.Since != r.FirstSeen.Add(ms(3)) {
			t.Errorf("connection from port %d has the first one's evidence: stall %+v, reset %+v, zero window %+v",
				r.Client.Port(), e.Stall, e.Reset, e.ZeroWindow)
		}
	}
}

// A FIN whose sender later sends new data past it (a segment damaged into
// a FIN, as in sll-oversized-addr.pcapng) is belied; a keep-alive's one
// garbage byte at the FIN's number, and data from its peer (a
// half-close), are not new data from the closer.
func TestEvidenceFINBelied(t *testing.T) {
	closing := evs(opened, []ev{
		{from: 'c', flags: FIN | ACK, seq: 1001, ack: 5001, at: ms(10)},
		{from: 's', flags: ACK, seq: 5001, ack: 1002, at: ms(11)},
	})
	for _, tc := range []struct {
		name   string
		then   []ev
		belied bool
	}{
		{"data past the FIN", []ev{{from: 'c', flags: PSH | ACK, seq: 1001, ack: 5001, len: 13, at: ms(20)}}, true},
		{"a keep-alive byte", []ev{{from: 'c', flags: ACK, seq: 1001, ack: 5001, len: 1, at: ms(20)}}, false},
		{"the peer's data", []ev{{from: 's', flags: PSH | ACK, seq: 5001, ack: 1002, len: 13, at: ms(20)}}, false},
		{"nothing", nil, false},
	} {
		e := one(t, evs(closing, tc.then))
		if !e.FIN.Seen || !e.FIN.FromClient || e.FIN.Belied != tc.belied {
			t.Errorf("%s: FIN %+v, want the client's, belied %v", tc.name, e.FIN, tc.belied)
		}
	}
}
