package flows

import (
	"net/netip"
	"testing"
	"time"
)

// A step is one packet of a hand-built sequence and the states RFC 793
// says both endpoints are in once it has been delivered.
type step struct {
	from   byte // 'c' client, 's' server
	flags  Flags
	seq    uint32
	ack    uint32
	len    uint32
	at     time.Duration // capture time since the start
	client State
	server State
}

var (
	cliAP = netip.MustParseAddrPort("10.0.0.1:40000")
	srvAP = netip.MustParseAddrPort("10.0.0.2:80")
	t0    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

func pkt(from byte, flags Flags, seq, ack, n uint32, at time.Duration) Packet {
	src, dst := cliAP, srvAP
	if from == 's' {
		src, dst = srvAP, cliAP
	}
	var p Packet
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	p.Tuple.SetV4(s4[:], d4[:])
	p.Tuple.SrcPort, p.Tuple.DstPort = src.Port(), dst.Port()
	p.Flags, p.Seq, p.Ack, p.PayloadLen = flags, seq, ack, n
	p.FrameLen = 54 + n // Ethernet, IPv4 and TCP headers without options
	p.IPLen = 40 + n
	p.Window = 1000
	p.WScale = -1
	p.TS = t0.Add(at).UnixNano()
	return p
}

// run applies the steps one by one to a new table, checking both states
// after each, and returns the table.
func run(t *testing.T, steps []step) *Table {
	t.Helper()
	return runWith(t, Config{}, steps)
}

func runWith(t *testing.T, cfg Config, steps []step) *Table {
	t.Helper()
	tab := NewTable(cfg)
	for i, s := range steps {
		p := pkt(s.from, s.flags, s.seq, s.ack, s.len, s.at)
		tab.Apply(&p)
		recs := tab.Snapshot()
		if len(recs) != 1 {
			t.Fatalf("step %d: %d connections in the table, want 1", i+1, len(recs))
		}
		r := recs[0]
		if r.ClientState != s.client || r.ServerState != s.server {
			t.Fatalf("step %d (%c %v seq=%d ack=%d len=%d): client %v server %v, want %v %v",
				i+1, s.from, s.flags, s.seq, s.ack, s.len, r.ClientState, r.ServerState, s.client, s.server)
		}
	}
	return tab
}

const (
	CL = StateClosed
	SS = StateSynSent
	SR = StateSynReceived
	ES = StateEstablished
	F1 = StateFinWait1
	F2 = StateFinWait2
	CW = StateCloseWait
	CG = StateClosing
	LA = StateLastAck
	TW = StateTimeWait
)

// handshake is the three-way handshake with client ISN 1000 and server ISN
// 5000 (RFC 793 figure 7).
var handshake = []step{
	{'c', SYN, 1000, 0, 0, 0, SS, CL},
	{'s', SYN | ACK, 5000, 1001, 0, ms(1), ES, SR},
	{'c', ACK, 1001, 5001, 0, ms(2), ES, ES},
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func seq(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestStateTransitions(t *testing.T) { //nolint:funlen // a table of cases: data, not steps
	tests := []struct {
		name  string
		steps []step
	}{
		{"open, data, active close by client", seq(handshake, []step{
			{'c', PSH | ACK, 1001, 5001, 100, ms(3), ES, ES},
			{'s', ACK, 5001, 1101, 0, ms(4), ES, ES},
			{'c', FIN | ACK, 1101, 5001, 0, ms(5), F1, CW},
			{'s', ACK, 5001, 1102, 0, ms(6), F2, CW},
			{'s', FIN | ACK, 5001, 1102, 0, ms(7), TW, LA},
			{'c', ACK, 1102, 5002, 0, ms(8), TW, CL},
		})},
		{"active close by server", seq(handshake, []step{
			{'s', FIN | ACK, 5001, 1001, 0, ms(5), CW, F1},
			{'c', ACK, 1001, 5002, 0, ms(6), CW, F2},
			{'c', FIN | ACK, 1001, 5002, 0, ms(7), LA, TW},
			{'s', ACK, 5002, 1002, 0, ms(8), CL, TW},
		})},
		{"FIN and its ACK in one segment each way", seq(handshake, []step{
			{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW},
			{'s', FIN | ACK, 5001, 1002, 0, ms(6), TW, LA},
			{'c', ACK, 1002, 5002, 0, ms(7), TW, CL},
		})},
		{"half-close: server keeps sending", seq(handshake, []step{
			{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW},
			{'s', ACK, 5001, 1002, 0, ms(6), F2, CW},
			{'s', PSH | ACK, 5001, 1002, 500, ms(7), F2, CW},
			{'c', ACK, 1002, 5501, 0, ms(8), F2, CW},
		})},
		{"simultaneous close (RFC 793 figure 13)", seq(handshake, []step{
			{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW},
			{'s', FIN | ACK, 5001, 1001, 0, ms(5), CG, CG},
			{'c', ACK, 1002, 5002, 0, ms(6), CG, TW},
			{'s', ACK, 5002, 1002, 0, ms(6), TW, TW},
		})},
		{"FIN carrying data", seq(handshake, []step{
			{'c', FIN | PSH | ACK, 1001, 5001, 50, ms(5), F1, CW},
			{'s', ACK, 5001, 1051, 0, ms(6), F1, CW}, // acks the data, not the FIN
			{'s', ACK, 5001, 1052, 0, ms(7), F2, CW},
		})},
		{"a FIN sent again was not acknowledged", seq(handshake, []step{
			{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW},
			{'s', ACK, 5001, 1002, 0, ms(6), F2, CW},
			{'c', FIN | ACK, 1001, 5001, 0, ms(205), F1, CW},
		})},
		{"a FIN sent again and never acknowledged was not received", seq(handshake, []step{
			{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW},
			{'c', FIN | ACK, 1001, 5001, 0, ms(205), F1, ES},
		})},
		{"the last ACK was lost: LAST_ACK sends its FIN again", seq(handshake, []step{
			{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW},
			{'s', ACK, 5001, 1002, 0, ms(6), F2, CW},
			{'s', FIN | ACK, 5001, 1002, 0, ms(7), TW, LA},
			{'c', ACK, 1002, 5002, 0, ms(8), TW, CL},
			{'s', FIN | ACK, 5001, 1002, 0, ms(300), TW, LA},
		})},
		{"simultaneous close, both final ACKs lost", seq(handshake, []step{
			{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW},
			{'s', FIN | ACK, 5001, 1001, 0, ms(5), CG, CG},
			{'c', ACK, 1002, 5002, 0, ms(6), CG, TW},
			{'s', ACK, 5002, 1002, 0, ms(6), TW, TW},
			{'c', FIN | ACK, 1001, 5002, 0, ms(300), CG, TW},
			{'s', FIN | ACK, 5001, 1002, 0, ms(300), CG, CG},
		})},
		{"LAST_ACK waits for the ACK of its FIN", seq(handshake, []step{
			{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW},
			{'s', ACK, 5001, 1002, 0, ms(6), F2, CW},
			{'s', FIN | ACK, 5001, 1002, 0, ms(100), TW, LA},
			// Sent again, and the client had not acknowledged it: the
			// first never reached the client.
			{'s', FIN | ACK, 5001, 1002, 0, ms(300), F2, LA},
			{'c', ACK, 1002, 5002, 0, ms(301), TW, CL},
		})},
		{"FIN overtakes data: processed when the gap fills", seq(handshake, []step{
			{'c', FIN | ACK, 1101, 5001, 0, ms(5), F1, ES},
			{'c', PSH | ACK, 1001, 5001, 100, ms(6), F1, CW},
			{'s', ACK, 5001, 1102, 0, ms(7), F2, CW},
		})},
		{"FIN after a gap: the peer's ACK proves it arrived", seq(handshake, []step{
			{'c', FIN | ACK, 1101, 5001, 0, ms(5), F1, ES},
			{'s', ACK, 5001, 1102, 0, ms(7), F2, CW},
		})},
		{"RST from client in ESTABLISHED", seq(handshake, []step{
			{'c', RST | ACK, 1001, 5001, 0, ms(5), CL, CL},
		})},
		{"RST from server in ESTABLISHED", seq(handshake, []step{
			{'c', PSH | ACK, 1001, 5001, 10, ms(3), ES, ES},
			{'s', RST, 5001, 0, 0, ms(5), CL, CL},
		})},
		{"RST outside the window is ignored", seq(handshake, []step{
			{'s', RST, 5001 + 1<<20, 0, 0, ms(5), ES, ES},
			{'c', RST, 999, 0, 0, ms(6), ES, ES},
		})},
		{"in-window RST answered by a challenge ACK (RFC 5961)", seq(handshake, []step{
			{'c', RST, 1500, 0, 0, ms(5), CL, CL},
			{'s', ACK, 5001, 1001, 0, ms(6), CL, ES},
		})},
		{"RST in FIN_WAIT_2 and CLOSE_WAIT", seq(handshake, []step{
			{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW},
			{'s', ACK, 5001, 1002, 0, ms(6), F2, CW},
			{'s', RST | ACK, 5001, 1002, 0, ms(7), CL, CL},
		})},
		{"RST in TIME_WAIT", seq(handshake, []step{
			{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW},
			{'s', FIN | ACK, 5001, 1002, 0, ms(6), TW, LA},
			{'c', ACK, 1002, 5002, 0, ms(7), TW, CL},
			{'s', RST, 5002, 0, 0, ms(8), CL, CL},
		})},
		{"RST in LAST_ACK", seq(handshake, []step{
			{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW},
			{'s', FIN | ACK, 5001, 1002, 0, ms(6), TW, LA},
			{'c', RST, 1002, 0, 0, ms(8), CL, CL},
		})},
		{"connection refused", []step{
			{'c', SYN, 1000, 0, 0, 0, SS, CL},
			{'s', RST | ACK, 0, 1001, 0, ms(1), CL, CL},
		}},
		{"RST with a wrong ACK in SYN_SENT is ignored", []step{
			{'c', SYN, 1000, 0, 0, 0, SS, CL},
			{'s', RST | ACK, 0, 1000, 0, ms(1), SS, CL},
			{'s', SYN | ACK, 5000, 1001, 0, ms(2), ES, SR},
		}},
		{"client aborts its SYN", []step{
			{'c', SYN, 1000, 0, 0, 0, SS, CL},
			{'c', RST, 1001, 0, 0, ms(1), CL, CL},
		}},
		{"RST from client in SYN_RECEIVED", []step{
			{'c', SYN, 1000, 0, 0, 0, SS, CL},
			{'s', SYN | ACK, 5000, 1001, 0, ms(1), ES, SR},
			{'c', RST, 1001, 0, 0, ms(2), CL, CL},
		}},
		{"SYN retransmitted, never answered", []step{
			{'c', SYN, 1000, 0, 0, 0, SS, CL},
			{'c', SYN, 1000, 0, 0, time.Second, SS, CL},
			{'c', SYN, 1000, 0, 0, 3 * time.Second, SS, CL},
		}},
		{"SYN-ACK lost: the client sends its SYN again", []step{
			{'c', SYN, 1000, 0, 0, 0, SS, CL},
			{'s', SYN | ACK, 5000, 1001, 0, ms(1), ES, SR},
			{'c', SYN, 1000, 0, 0, time.Second, SS, SR},
			// The first SYN-ACK was lost: this one may be too, until the
			// client shows it arrived.
			{'s', SYN | ACK, 5000, 1001, 0, time.Second + ms(1), SS, SR},
			{'c', ACK, 1001, 5001, 0, time.Second + ms(2), ES, ES},
		}},
		{"handshake ACK lost: the server sends its SYN-ACK again", seq(handshake, []step{
			{'s', SYN | ACK, 5000, 1001, 0, time.Second, ES, SR},
			// The ACK answering it arrives unless the server sends its
			// SYN-ACK again when its doubled timer (2 s) runs out; a
			// kernel timer may fire up to an eighth late, so not before
			// 1 s + 2.5 s.
			{'c', ACK, 1001, 5001, 0, time.Second + ms(1), ES, SR},
			{'c', PSH | ACK, 1001, 5001, 10, 2 * time.Second, ES, SR},
			{'c', PSH | ACK, 1011, 5001, 10, 3*time.Second + ms(2), ES, SR},
			{'c', PSH | ACK, 1021, 5001, 10, 3*time.Second + ms(600), ES, ES},
		})},
		{"a SYN-ACK resent on backoff, a little late: the ACK did not arrive", seq(handshake, []step{
			{'s', SYN | ACK, 5000, 1001, 0, time.Second, ES, SR},
			{'c', ACK, 1001, 5001, 0, time.Second + ms(1), ES, SR},
			{'c', PSH | ACK, 1001, 5001, 10, 3*time.Second + ms(100), ES, SR},
			// The timer of 2 s fired 200 ms late (the timer wheel):
			// whatever the round trip said, the ACK did not arrive.
			{'s', SYN | ACK, 5000, 1001, 0, 3*time.Second + ms(200), ES, SR},
			{'c', ACK, 1011, 5001, 0, 3*time.Second + ms(201), ES, SR},
		})},
		{"handshake ACK lost twice", seq(handshake, []step{
			{'s', SYN | ACK, 5000, 1001, 0, time.Second, ES, SR},
			{'c', ACK, 1001, 5001, 0, time.Second + ms(1), ES, SR},
			{'s', SYN | ACK, 5000, 1001, 0, 3 * time.Second, ES, SR},
			{'c', ACK, 1001, 5001, 0, 3*time.Second + ms(1), ES, SR},
			{'s', ACK, 5001, 1001, 0, 3*time.Second + ms(2), ES, ES}, // only an established server sends this
		})},
		{"simultaneous open (RFC 793 figure 8)", []step{
			{'c', SYN, 1000, 0, 0, 0, SS, CL},
			{'s', SYN, 5000, 0, 0, 0, SR, SR},
			{'c', SYN | ACK, 1000, 5001, 0, ms(1), SR, ES},
			{'s', SYN | ACK, 5000, 1001, 0, ms(1), ES, ES},
		}},
		{"data on the SYN (TCP Fast Open)", []step{
			{'c', SYN, 1000, 0, 20, 0, SS, CL},
			{'s', SYN | ACK, 5000, 1021, 0, ms(1), ES, SR},
			{'c', ACK, 1021, 5001, 0, ms(2), ES, ES},
		}},
		{"picked up mid-stream: data then close", []step{
			{'s', PSH | ACK, 7000, 3000, 100, 0, ES, ES},
			{'c', ACK, 3000, 7100, 0, ms(1), ES, ES},
			{'c', FIN | ACK, 3000, 7100, 0, ms(2), F1, CW},
			{'s', FIN | ACK, 7100, 3001, 0, ms(3), TW, LA},
		}},
		{"picked up at the SYN-ACK", []step{
			{'s', SYN | ACK, 5000, 1001, 0, 0, ES, SR},
			{'c', ACK, 1001, 5001, 0, ms(1), ES, ES},
		}},
		{"picked up at an RST", []step{
			{'c', RST, 1001, 0, 0, 0, CL, CL},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, tt.steps) })
	}
}

// retired collects what a table retires.
type retired struct{ recs []Record }

func (r *retired) config() Config {
	// One shard: every sweep looks at every connection.
	return Config{Shards: 1, OnRetire: func(recs []Record) { r.recs = append(r.recs, recs...) }}
}

func TestTimeWaitEndsAfterTimeout(t *testing.T) {
	var out retired
	tab := runWith(t, out.config(), seq(handshake, []step{
		{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW},
		{'s', FIN | ACK, 5001, 1002, 0, ms(6), TW, LA},
		{'c', ACK, 1002, 5002, 0, ms(7), TW, CL},
	}))
	// A packet of another connection 30 s later: still TIME_WAIT.
	other := pkt('c', SYN, 1, 0, 0, 30*time.Second)
	other.Tuple.SrcPort = 40001
	tab.Apply(&other)
	for _, r := range tab.Snapshot() {
		if r.Client.Port() == 40000 && r.ClientState != TW {
			t.Fatalf("after 30 s client is %v, want TIME_WAIT", r.ClientState)
		}
	}
	other = pkt('c', SYN, 1, 0, 0, 61*time.Second)
	other.Tuple.SrcPort = 40001
	tab.Apply(&other)
	if len(out.recs) != 1 || out.recs[0].Client.Port() != 40000 {
		t.Fatalf("%d records retired, want the one of port 40000", len(out.recs))
	}
	if r := out.recs[0]; r.ClientState != CL || r.ServerState != CL {
		t.Fatalf("60 s after TIME_WAIT began: %v %v, want CLOSED CLOSED", r.ClientState, r.ServerState)
	}
}

func TestHandshakeGivesUp(t *testing.T) {
	var out retired
	tab := runWith(t, out.config(), []step{{'c', SYN, 1000, 0, 0, 0, SS, CL}})
	other := pkt('c', SYN, 1, 0, 0, 2*time.Minute)
	other.Tuple.SrcPort = 40001
	tab.Apply(&other)
	if r := tab.Snapshot(); len(r) != 2 {
		t.Fatalf("after 2 min %d connections, want 2", len(r))
	}
	recs := tab.Flush()
	if r := recs[0]; r.ClientState != SS {
		t.Fatalf("unanswered SYN after 2 min: client %v, want SYN_SENT", r.ClientState)
	}
	tab = runWith(t, out.config(), []step{{'c', SYN, 1000, 0, 0, 0, SS, CL}})
	other.TS = t0.Add(4 * time.Minute).UnixNano()
	tab.Apply(&other)
	if len(out.recs) != 1 {
		t.Fatalf("%d records retired after 4 min, want 1", len(out.recs))
	}
	if r := out.recs[0]; r.ClientState != CL {
		t.Fatalf("unanswered SYN after 4 min: client %v, want CLOSED", r.ClientState)
	}
}
