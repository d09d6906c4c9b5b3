package flows

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A zeekPkt is one packet of a hand-built sequence (client 10.0.0.1:40000,
// server 10.0.0.2:80).
type zeekPkt struct {
	from     byte
	flags    Flags
	seq, ack uint32
	len      uint32
	at       time.Duration
}

// zeekRow is a record as Zeek's conn.log would have it: start (since t0),
// history, conn_state, duration (0: unset), orig_bytes and resp_bytes (0
// when unset, as with a duration of 0), missed_bytes, orig_pkts and
// resp_pkts.
type zeekRow struct {
	start      time.Duration
	history    string
	state      string
	dur        time.Duration
	orig, resp uint64
	missed     uint64
	pkts       [2]uint64
}

func (r zeekRow) String() string {
	return fmt.Sprintf("%v %s %s dur=%v bytes=%d/%d missed=%d pkts=%d/%d", r.start, r.history, r.state, r.dur, r.orig, r.resp, r.missed, r.pkts[0], r.pkts[1])
}

// zeekRecords applies the packets to a table (Zeek's records with zeek)
// and returns its records as rows, in the order they started.
func zeekRecords(t *testing.T, zeek bool, pkts []zeekPkt) []zeekRow {
	t.Helper()
	var recs []Record
	tab := NewTable(Config{Zeek: zeek, OnRetire: func(r []Record) { recs = append(recs, r...) }})
	for _, z := range pkts {
		p := pkt(z.from, z.flags, z.seq, z.ack, z.len, z.at)
		tab.Apply(&p)
	}
	recs = append(recs, tab.Flush()...)
	SortByStart(recs)
	rows := make([]zeekRow, len(recs))
	for i := range recs {
		r := &recs[i]
		rows[i] = zeekRow{start: r.FirstSeen.Sub(t0), history: r.History(), state: r.ConnState()}
		f, ok := r.Zeek()
		if zeek != ok {
			t.Fatalf("record %d: Zeek fields %v, want %v", i, ok, zeek)
		}
		if ok {
			rows[i].dur = f.LastTime.Sub(r.FirstSeen)
			if rows[i].dur > 0 { // conn.log leaves the sizes unset otherwise
				rows[i].orig, rows[i].resp = f.OrigBytes, f.RespBytes
			}
			rows[i].missed = f.MissedBytes
			rows[i].pkts = [2]uint64{f.OrigPkts, f.RespPkts}
		}
	}
	return rows
}

var zeekHandshake = []zeekPkt{
	{'c', SYN, 1000, 0, 0, 0},
	{'s', SYN | ACK, 5000, 1001, 0, ms(1)},
	{'c', ACK, 1001, 5001, 0, ms(2)},
}

func zeekSeq(parts ...[]zeekPkt) []zeekPkt {
	var out []zeekPkt
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestZeekRecordBoundaries checks where records begin and end with
// Config.Zeek, on packet sequences whose conn.log rows are worked out by
// hand from Zeek's source (TCPSessionAdapter.cc, init-bare.zeek's tcp_*
// values); the comments give the reasoning. Each sequence is also applied
// without Config.Zeek, to show that the kernel's lifetimes draw other
// boundaries (kernel: the record count then).
func TestZeekRecordBoundaries(t *testing.T) {
	for _, tc := range zeekBoundaryCases {
		t.Run(tc.name, func(t *testing.T) {
			got := zeekRecords(t, true, tc.pkts)
			if g, w := rowsText(got), rowsText(tc.want); g != w {
				t.Errorf("Zeek's records:\n%s\nwant:\n%s", g, w)
			}
			if k := zeekRecords(t, false, tc.pkts); len(k) != tc.kernel {
				t.Errorf("without Config.Zeek: %d records, want %d", len(k), tc.kernel)
			}
		})
	}
}

func sec(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// zeekBoundaryCases are TestZeekRecordBoundaries's sequences: the rows
// Zeek logs, and how many records the kernel's lifetimes make of them.
var zeekBoundaryCases = []struct {
	name   string
	pkts   []zeekPkt
	want   []zeekRow
	kernel int
}{{
	// The SYN's AttemptTimer is due at 5 s: the retransmissions at 1
	// and 3 s (same ISN: no second 'S') belong to the first record;
	// at 7 s the timer has removed it (SYN_SENT, responder
	// inactive), and the SYN starts a new record.
	name: "unanswered SYN retransmitted past tcp_attempt_delay",
	pkts: []zeekPkt{{'c', SYN, 1000, 0, 0, 0}, {'c', SYN, 1000, 0, 0, sec(1)}, {'c', SYN, 1000, 0, 0, sec(3)}, {'c', SYN, 1000, 0, 0, sec(7)}},
	want: []zeekRow{
		{0, "S", "S0", sec(3), 0, 0, 0, [2]uint64{3, 0}},
		{sec(7), "S", "S0", 0, 0, 0, 0, [2]uint64{1, 0}},
	},
	kernel: 1,
}, {
	// The RST closes the connection (ConnectionClosed: complete,
	// ConnDeleteTimer at 5 s); a SYN on a closed connection is a
	// reuse (IsReuse), even with the ISN of the first SYN.
	name: "SYN after a reset, same ISN",
	pkts: zeekSeq(zeekHandshake, []zeekPkt{{'c', RST | ACK, 1001, 5001, 0, ms(3)}, {'c', SYN, 1000, 0, 0, sec(1)}}),
	want: []zeekRow{
		{0, "ShAR", "RSTO", ms(3), 0, 0, 0, [2]uint64{3, 1}},
		{sec(1), "S", "S0", 0, 0, 0, 0, [2]uint64{1, 0}},
	},
	kernel: 1,
}, {
	// Both FINs: ConnDeleteTimer at the second FIN + tcp_close_delay
	// (5.011 s). The last time stops at the second FIN (both sides
	// closed), so the ACKs after it add no duration. The ACK at 4 s
	// is still this connection's; the one at 5.011 s finds it gone
	// and starts a partial one ('A', OTH).
	name: "late ACKs after a close",
	pkts: zeekSeq(zeekHandshake, []zeekPkt{
		{'c', FIN | ACK, 1001, 5001, 0, ms(10)}, {'s', FIN | ACK, 5001, 1002, 0, ms(11)},
		{'c', ACK, 1002, 5002, 0, ms(12)}, {'c', ACK, 1002, 5002, 0, sec(4)}, {'c', ACK, 1002, 5002, 0, sec(5.011)},
	}),
	want: []zeekRow{
		{0, "ShAFf", "SF", ms(11), 0, 0, 0, [2]uint64{5, 2}},
		{sec(5.011), "A", "OTH", 0, 0, 0, 0, [2]uint64{1, 0}},
	},
	kernel: 1,
}, {
	// A RST after the client's own FIN, the server still
	// established (UpdateClosedState): ResetTimer at 5.02 s. The
	// server's ACK at 4 s belongs; its ACK at 5.02 s starts a new
	// connection, flipped by port (80 is a likely server port).
	name: "RST after FIN: tcp_reset_delay",
	pkts: zeekSeq(zeekHandshake, []zeekPkt{
		{'c', FIN | ACK, 1001, 5001, 0, ms(10)}, {'c', RST, 1002, 0, 0, ms(20)},
		{'s', ACK, 5001, 1002, 0, sec(4)}, {'s', ACK, 5001, 1002, 0, sec(5.02)},
	}),
	want: []zeekRow{
		{0, "ShAFRa", "RSTO", sec(4), 0, 0, 0, [2]uint64{4, 2}},
		{sec(5.02), "^a", "OTH", 0, 0, 0, 0, [2]uint64{0, 1}},
	},
	kernel: 1,
}, {
	// After the handshake the inactivity timeout is
	// tcp_inactivity_timeout (TCP_Endpoint::SetState): the data at
	// 301 s comes exactly 300 s after the last packet, and
	// InactivityTimer removes a connection at last_time + 300 s
	// (<=).
	name: "tcp_inactivity_timeout, at the boundary",
	pkts: zeekSeq(zeekHandshake, []zeekPkt{{'c', PSH | ACK, 1001, 5001, 10, sec(1)}, {'c', PSH | ACK, 1011, 5001, 10, sec(301)}}),
	want: []zeekRow{
		{0, "ShAD", "S1", sec(1), 10, 0, 0, [2]uint64{3, 1}},
		{sec(301), "D", "OTH", 0, 0, 0, 0, [2]uint64{1, 0}},
	},
	kernel: 1,
}, {
	name: "tcp_inactivity_timeout, just inside",
	pkts: zeekSeq(zeekHandshake, []zeekPkt{{'c', PSH | ACK, 1001, 5001, 10, sec(1)}, {'c', PSH | ACK, 1011, 5001, 10, sec(300.999)}}),
	want: []zeekRow{
		{0, "ShAD", "S1", sec(300.999), 20, 0, 0, [2]uint64{4, 1}},
	},
	kernel: 1,
}, {
	// One FIN and no reply: not a complete close, and ExpireTimer
	// removes only connections with both sides closed, a reset or
	// an inactive side: the server's data at 200 s is the same
	// connection.
	name: "half-closed connection lives on",
	pkts: zeekSeq(zeekHandshake, []zeekPkt{
		{'c', FIN | ACK, 1001, 5001, 0, ms(10)}, {'s', ACK, 5001, 1002, 0, ms(11)}, {'s', PSH | ACK, 5001, 1002, 10, sec(200)},
	}),
	want: []zeekRow{
		{0, "ShAFad", "S2", sec(200), 0, 10, 0, [2]uint64{3, 3}},
	},
	kernel: 1,
}, {
	// A SYN with another ISN on an open connection is a reuse.
	name: "new ISN on an open connection",
	pkts: zeekSeq(zeekHandshake, []zeekPkt{{'c', SYN, 9000, 0, 0, sec(1)}}),
	want: []zeekRow{
		{0, "ShA", "S1", ms(2), 0, 0, 0, [2]uint64{2, 1}},
		{sec(1), "S", "S0", 0, 0, 0, 0, [2]uint64{1, 0}},
	},
	kernel: 2,
}, {
	// The client's second segment (1101-1200) is lost: the
	// server's ACK of 1301 reveals a content gap of 100 octets,
	// reported ('G', missed_bytes) since both sides are
	// established. orig_bytes is from sequence numbers: 300.
	name: "content gap",
	pkts: zeekSeq(zeekHandshake, []zeekPkt{
		{'c', PSH | ACK, 1001, 5001, 100, ms(10)}, {'c', PSH | ACK, 1201, 5001, 100, ms(12)}, {'s', ACK, 5001, 1301, 0, ms(13)},
	}),
	want: []zeekRow{
		{0, "ShADaG", "S1", ms(13), 300, 0, 100, [2]uint64{4, 2}},
	},
	kernel: 1,
}}

func rowsText(rows []zeekRow) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.String() + "\n")
	}
	return b.String()
}
