package flows

import (
	"testing"
	"time"
)

// A dstep is one frame of a hand-built capture with loss: a TCP segment,
// or (from 't') a frame of other traffic at `at`, which only moves the
// capture's clock (Table.Advance). After it, both endpoints must be in the
// states given, with the doubts given.
type dstep struct {
	from           byte // 'c' client, 's' server, 't' other traffic
	flags          Flags
	seq, ack, len  uint32
	at             time.Duration
	client, server State
	cd, sd         Doubt
}

const (
	dN = DoubtNone
	dA = DoubtAwaiting
	dD = DoubtDelivery
	dO = DoubtOrphan
	dR = DoubtReset
	dU = DoubtUnseen
	dW = DoubtOneWay
)

// runLoss applies the steps to a new table, checking states and doubts
// after each, and returns the table.
func runLoss(t *testing.T, steps []dstep) *Table {
	t.Helper()
	tab := NewTable(Config{})
	for i, s := range steps {
		if s.from == 't' {
			tab.Advance(t0.Add(s.at).UnixNano())
		} else {
			p := pkt(s.from, s.flags, s.seq, s.ack, s.len, s.at)
			tab.Apply(&p)
		}
		recs := tab.Snapshot()
		if len(recs) != 1 {
			t.Fatalf("step %d: %d connections in the table, want 1", i+1, len(recs))
		}
		r := recs[0]
		if r.ClientState != s.client || r.ServerState != s.server || r.ClientDoubt != s.cd || r.ServerDoubt != s.sd {
			t.Fatalf("step %d (%c %v seq=%d ack=%d len=%d at %v): client %v (%d) server %v (%d), want %v (%d) %v (%d)",
				i+1, s.from, s.flags, s.seq, s.ack, s.len, s.at, r.ClientState, r.ClientDoubt, r.ServerState, r.ServerDoubt,
				s.client, s.cd, s.server, s.sd)
		}
	}
	return tab
}

// TestLossRules checks, on hand-built sequences worked out from RFC 793
// and Linux's behaviour, what flowtrack infers when the capture misses,
// reorders or only half sees packets, and what it marks uncertain.
// Client ISN 1000, server ISN 5000; the handshake's round trip is 2 ms.
func TestLossRules(t *testing.T) { //nolint:funlen // a table of cases: data, not steps
	hs := []dstep{
		{'c', SYN, 1000, 0, 0, 0, SS, CL, dA, dU},
		{'s', SYN | ACK, 5000, 1001, 0, ms(1), ES, SR, dN, dA},
		{'c', ACK, 1001, 5001, 0, ms(2), ES, ES, dN, dN},
	}
	cat := func(parts ...[]dstep) []dstep {
		var out []dstep
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name  string
		steps []dstep
	}{
		{"one direction, client to server: its ACKs prove the SYN-ACK, the server's data and FIN", []dstep{
			{'c', SYN, 1000, 0, 0, 0, SS, CL, dA, dU},
			// Only a client that accepted a SYN-ACK answers with a plain
			// ACK. Neither end is certain: the server is never seen, and
			// an RST from it would not show.
			{'c', ACK, 1001, 5001, 0, ms(2), ES, ES, dW, dU},
			{'c', PSH | ACK, 1001, 5001, 100, ms(3), ES, ES, dW, dU},
			{'c', ACK, 1101, 5201, 0, ms(5), ES, ES, dW, dU}, // the server sent 200 bytes
			{'c', FIN | ACK, 1101, 5201, 0, ms(6), F1, CW, dA, dU},
			// One past the server's data: its FIN, which (sent from
			// CLOSE_WAIT) acknowledged the client's.
			{'c', ACK, 1102, 5202, 0, ms(8), TW, CL, dW, dU},
		}},
		{"one direction, server to client: its ACKs prove the client's data and FIN", []dstep{
			{'s', SYN | ACK, 5000, 1001, 0, 0, ES, SR, dU, dA},
			{'s', ACK, 5001, 1101, 0, ms(2), ES, ES, dU, dW}, // established; the client sent 100 bytes
			{'s', PSH | ACK, 5001, 1101, 200, ms(3), ES, ES, dU, dW},
			{'s', ACK, 5201, 1102, 0, ms(5), F2, CW, dU, dW}, // one past: the client's FIN
			{'s', FIN | ACK, 5201, 1102, 0, ms(6), TW, LA, dU, dA},
			// The client's last ACK is not seen, but the server's FIN is
			// not sent again: by its first timeout (1 s, no round trip
			// seen) with a margin, the ACK has arrived.
			{'t', 0, 0, 0, 0, time.Second + ms(200), TW, LA, dU, dA},
			{'t', 0, 0, 0, 0, time.Second + ms(300), TW, CL, dU, dW},
		}},
		{"the SYN-ACK missed, then captured late: no retransmission", cat(hs[:1], []dstep{
			{'c', ACK, 1001, 5001, 0, ms(2), ES, ES, dW, dU},
			{'s', SYN | ACK, 5000, 1001, 0, ms(2), ES, ES, dN, dN},
			{'s', PSH | ACK, 5001, 1001, 100, ms(3), ES, ES, dN, dN},
		})},
		{"a FIN the capture missed: the ACK one past the data proves it", cat(hs, []dstep{
			{'s', PSH | ACK, 5001, 1001, 100, ms(3), ES, ES, dN, dN},
			{'c', ACK, 1001, 5101, 0, ms(4), ES, ES, dN, dN},
			{'c', ACK, 1001, 5102, 0, ms(6), CW, F2, dN, dN},
			{'c', FIN | ACK, 1001, 5102, 0, ms(7), LA, TW, dA, dN},
			{'s', ACK, 5102, 1002, 0, ms(8), CL, TW, dN, dN},
		})},
		{"an ACK one past the data, then beyond it: a byte of data, not a FIN", cat(hs, []dstep{
			{'c', ACK, 1001, 5002, 0, ms(3), CW, F2, dN, dN},
			{'c', ACK, 1001, 5101, 0, ms(4), ES, ES, dN, dN},
		})},
		{"reordered at the capture point: the ACK one frame before the FIN it acknowledges", cat(hs, []dstep{
			{'s', ACK, 5001, 1002, 0, ms(5), F2, CW, dN, dN},
			{'c', FIN | ACK, 1001, 5001, 0, ms(5), F2, CW, dN, dN}, // seen at last: not a retransmission
			{'s', FIN | ACK, 5001, 1002, 0, ms(6), TW, LA, dN, dA},
		})},
		{"reordered: the ACK before a FIN that carries data", cat(hs, []dstep{
			{'s', ACK, 5001, 1102, 0, ms(5), ES, ES, dN, dN}, // acknowledges 101 unseen: not a FIN alone
			{'c', FIN | PSH | ACK, 1001, 5001, 100, ms(5), F2, CW, dN, dN},
		})},
		{"the final ACK missed: LAST_ACK's FIN not sent again by its timeout", cat(hs, []dstep{
			{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW, dA, dN},
			{'s', ACK, 5001, 1002, 0, ms(6), F2, CW, dN, dN},
			{'s', FIN | ACK, 5001, 1002, 0, ms(10), TW, LA, dN, dA},
			// Its RTO is at least 200 ms above the round trip (204 ms);
			// with the margin, 275 ms after the handshake's start.
			{'t', 0, 0, 0, 0, ms(250), TW, LA, dN, dA},
			{'t', 0, 0, 0, 0, ms(300), TW, CL, dN, dN},
		})},
		{"silence refuted: the peer's later ACK does not cover the FIN", cat(hs, []dstep{
			{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW, dA, dN},
			{'t', 0, 0, 0, 0, ms(300), F2, CW, dN, dN},
			// The server never had the FIN: its ACKs are cumulative.
			{'s', PSH | ACK, 5001, 1001, 10, ms(400), F1, ES, dA, dN},
		})},
		{"a FIN acknowledged, sent again, acknowledged again: confirmed only after the doubled timeout", cat(hs, []dstep{
			{'c', FIN | ACK, 1001, 5001, 0, ms(10), F1, CW, dA, dN},
			{'s', ACK, 5001, 1002, 0, ms(11), F2, CW, dN, dN},
			// Sent again: that ACK never arrived, nor may the next.
			{'c', FIN | ACK, 1001, 5001, 0, ms(220), F1, CW, dA, dN},
			{'s', ACK, 5001, 1002, 0, ms(221), F1, CW, dD, dN},
			// Sent again 210 ms after the first: the next would come 420 ms
			// after this one; with the margin, 755 ms.
			{'t', 0, 0, 0, 0, ms(700), F1, CW, dD, dN},
			{'t', 0, 0, 0, 0, ms(800), F2, CW, dN, dN},
		})},
		{"a duplicate ACK from TIME_WAIT: the peer sent its FIN again, unseen", []dstep{
			{'c', SYN, 1000, 0, 0, 0, SS, CL, dA, dU},
			{'c', ACK, 1001, 5001, 0, ms(2), ES, ES, dW, dU},
			{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW, dA, dU},
			{'c', ACK, 1002, 5002, 0, ms(7), TW, CL, dW, dU}, // the server's FIN, inferred
			// TIME_WAIT answers only its peer: the server's FIN came again,
			// so the first ACK never arrived; whether this one did is open.
			{'c', ACK, 1002, 5002, 0, ms(220), TW, LA, dW, dD},
		}},
		{"RST below what its receiver acknowledged: ignored", cat(hs, []dstep{
			{'c', PSH | ACK, 1001, 5001, 100, ms(3), ES, ES, dN, dN},
			// The client's next 100 bytes are not captured; the server
			// acknowledges them.
			{'s', ACK, 5001, 1201, 0, ms(5), ES, ES, dN, dN},
			{'c', RST, 1101, 0, 0, ms(6), ES, ES, dN, dN},
			{'c', RST, 1201, 0, 0, ms(7), CL, CL, dN, dR},
		})},
		{"TIME_WAIT ignores every RST but one at its next sequence number", cat(hs, []dstep{
			{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW, dA, dN},
			{'s', FIN | ACK, 5001, 1002, 0, ms(6), TW, LA, dN, dA},
			{'c', ACK, 1002, 5002, 0, ms(7), TW, CL, dN, dN},
			{'s', RST, 5001, 0, 0, ms(8), TW, CL, dN, dN},       // below: old
			{'s', RST, 5002 + 100, 0, 0, ms(9), TW, CL, dN, dN}, // in the window, not exact: no challenge ACK either
			{'s', RST, 5002, 0, 0, ms(10), CL, CL, dR, dN},
		})},
		{"SYN_RECEIVED takes any RST in its window", []dstep{
			{'c', SYN, 1000, 0, 0, 0, SS, CL, dA, dU},
			{'s', SYN | ACK, 5000, 1001, 0, ms(1), ES, SR, dN, dA},
			{'c', RST, 1000, 0, 0, ms(2), ES, SR, dN, dA}, // below rcv_nxt: dropped
			{'c', RST, 1006, 0, 0, ms(3), CL, CL, dN, dR},
		}},
		{"an RST refusing a SYN: confirmed once no SYN follows within its timeout", []dstep{
			{'c', SYN, 1000, 0, 0, 0, SS, CL, dA, dU},
			{'s', RST | ACK, 0, 1001, 0, ms(1), CL, CL, dR, dN},
			{'t', 0, 0, 0, 0, time.Second, CL, CL, dR, dN},
			{'t', 0, 0, 0, 0, time.Second + ms(300), CL, CL, dN, dN},
		}},
		{"an idle receiver closed by an RST: nothing will ever tell", cat(hs, []dstep{
			{'c', RST, 1001, 0, 0, ms(5), CL, CL, dN, dR},
			{'t', 0, 0, 0, 0, 25 * time.Second, CL, CL, dN, dR},
		})},
		{"an orphan's FIN_WAIT_2 ends after tcp_fin_timeout, as far as the wire can tell", cat(hs, []dstep{
			{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW, dA, dN},
			{'s', ACK, 5001, 1002, 0, ms(6), F2, CW, dN, dN},
			{'t', 0, 0, 0, 0, 59 * time.Second, F2, CW, dN, dN},
			{'t', 0, 0, 0, 0, 60*time.Second + ms(7), CL, CW, dO, dN},
			// The server's FIN: an orphan long gone would answer with an
			// RST; one that only shut down writing takes it.
			{'s', FIN | ACK, 5001, 1002, 0, 70 * time.Second, TW, LA, dN, dA},
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runLoss(t, tt.steps) })
	}
}

// TestSynGiveUp: a connecting socket whose SYNs get no answer gives up on
// the kernel's schedule, from the last SYN seen; a listener drops a
// half-open connection after its SYN-ACK retries.
func TestSynGiveUp(t *testing.T) {
	// SYNs at Linux's defaults: 0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67 s.
	var steps []dstep
	at := time.Duration(0)
	for i, d := range Linux.SynIntervals() {
		steps = append(steps, dstep{'c', SYN, 1000, 0, 0, at, SS, CL, dA, dU})
		if i == len(Linux.SynIntervals())-1 {
			break
		}
		at += d
	}
	// at is 67 s: given up 64 s later, when it has been idle for longer
	// than the closed timeout: its record leaves the table at once.
	steps = append(steps, dstep{'t', 0, 0, 0, 0, at + 63*time.Second, SS, CL, dA, dU})
	t.Run("every SYN seen", func(t *testing.T) {
		tab := runLoss(t, steps)
		gaveUp(t, tab, at+64*time.Second)
	})
	t.Run("only the first SYN seen", func(t *testing.T) {
		tab := runLoss(t, []dstep{
			{'c', SYN, 1000, 0, 0, 0, SS, CL, dA, dU},
			{'t', 0, 0, 0, 0, 130 * time.Second, SS, CL, dA, dU},
		})
		gaveUp(t, tab, 131*time.Second)
	})
	t.Run("SYN-ACKs", func(t *testing.T) {
		// The client's SYN is seen, its SYN-ACKs are lost on the way to it
		// (it answers none), and its later SYNs are lost before the
		// capture point: the listener resends the SYN-ACK on its own
		// timer, and the client, which never acknowledged one, never got
		// one.
		steps := []dstep{
			{'c', SYN, 1000, 0, 0, 0, SS, CL, dA, dU},
			{'s', SYN | ACK, 5000, 1001, 0, ms(1), ES, SR, dN, dA},
		}
		at := ms(1)
		for _, d := range Linux.SynAckIntervals()[:5] {
			at += d
			steps = append(steps, dstep{'s', SYN | ACK, 5000, 1001, 0, at, SS, SR, dD, dA})
		}
		// The last at 31.001 s: dropped 32 s later.
		steps = append(steps,
			dstep{'t', 0, 0, 0, 0, at + 31*time.Second, SS, SR, dD, dA},
			dstep{'t', 0, 0, 0, 0, at + 32*time.Second, SS, CL, dD, dN})
		runLoss(t, steps)
	})
}

// gaveUp moves tab's clock to at and requires the connection to have left
// the table with both ends CLOSED.
func gaveUp(t *testing.T, tab *Table, at time.Duration) {
	t.Helper()
	tab.Advance(t0.Add(at).UnixNano())
	if n := len(tab.Snapshot()); n != 0 {
		t.Fatalf("%d connections left at %v", n, at)
	}
}

// TestKernelSchedules checks the schedules against net/ipv4/tcp_timer.c
// and inet_connection_sock.c worked by hand, with the measurements of
// docs/states.md beside them.
func TestKernelSchedules(t *testing.T) {
	s := time.Second
	sched := func(ds ...time.Duration) []time.Duration { return ds }
	for _, tc := range []struct {
		name  string
		got   []time.Duration
		want  []time.Duration
		total time.Duration
	}{
		{"SYN, defaults", Linux.SynIntervals(), sched(s, s, s, s, s, 2*s, 4*s, 8*s, 16*s, 32*s, 64*s), 131 * s},
		{"SYN, no linear timeouts (before Linux 6.5)", Kernel{SynRetries: 6, RTOInit: s, RTOMax: 120 * s}.SynIntervals(),
			sched(s, 2*s, 4*s, 8*s, 16*s, 32*s, 64*s), 127 * s},
		// tcp_model_timeout(2, 1 s) is 7 s: it ends the linear run early.
		{"SYN, 2 retries and 4 linear", Kernel{SynRetries: 2, SynLinearTimeouts: 4, RTOInit: s, RTOMax: 120 * s}.SynIntervals(),
			sched(s, s, s, s, s, 2*s), 7 * s},
		{"SYN-ACK, defaults", Linux.SynAckIntervals(), sched(s, 2*s, 4*s, 8*s, 16*s, 32*s), 63 * s},
	} {
		if len(tc.got) != len(tc.want) || sum(tc.got) != tc.total {
			t.Errorf("%s: %v (%v), want %v (%v)", tc.name, tc.got, sum(tc.got), tc.want, tc.total)
			continue
		}
		for i := range tc.got {
			if tc.got[i] != tc.want[i] {
				t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
				break
			}
		}
	}
	if g := Linux.SynGiveUp(); g != 131*s {
		t.Errorf("SynGiveUp %v, want 131s", g)
	}
	// ((2 << 9) - 1) * 200 ms + (15 - 9) * 120 s, and (2 << 8) - 1) * 200 ms.
	if g := Linux.RetransmitGiveUp(false); g != 924600*time.Millisecond {
		t.Errorf("RetransmitGiveUp %v, want 924.6s", g)
	}
	if g := Linux.RetransmitGiveUp(true); g != 102200*time.Millisecond {
		t.Errorf("RetransmitGiveUp(orphan) %v, want 102.2s", g)
	}
}
