package flows

import (
	"encoding/binary"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestPortReuseStartsNewRecord(t *testing.T) {
	var out retired
	tab := runWith(t, out.config(), seq(handshake, []step{
		{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW},
		{'s', FIN | ACK, 5001, 1002, 0, ms(6), TW, LA},
		{'c', ACK, 1002, 5002, 0, ms(7), TW, CL},
	}))
	p := pkt('c', SYN, 90000, 0, 0, time.Second)
	tab.Apply(&p)
	if len(out.recs) != 1 {
		t.Fatalf("%d records retired by the new SYN, want 1", len(out.recs))
	}
	if old := out.recs[0]; old.ClientState != CL || old.ServerState != CL || old.C2S.Packets != 4 {
		t.Fatalf("old connection: %v %v with %d client packets, want CLOSED CLOSED with 4", old.ClientState, old.ServerState, old.C2S.Packets)
	}
	recs := tab.Flush()
	if len(recs) != 1 || recs[0].ClientState != SS || recs[0].C2S.Packets != 1 || recs[0].Midstream {
		t.Fatalf("new connection: %+v", recs)
	}
	// A retransmitted SYN (same ISN) is not a new connection.
	tab = run(t, []step{{'c', SYN, 1000, 0, 0, 0, SS, CL}, {'c', SYN, 1000, 0, 0, time.Second, SS, CL}})
	if r := tab.Flush(); len(r) != 1 || r[0].C2S.Retransmits != 1 {
		t.Fatalf("SYN retransmission: %d records, want 1 with 1 retransmit", len(r))
	}
}

func TestCountersAndRTT(t *testing.T) {
	tab := run(t, seq(handshake, []step{
		{'c', PSH | ACK, 1001, 5001, 100, ms(3), ES, ES},
		{'c', PSH | ACK, 1001, 5001, 100, ms(300), ES, ES}, // retransmission
		{'s', ACK, 5001, 1101, 0, ms(301), ES, ES},
		{'c', ACK, 1100, 5001, 0, ms(5000), ES, ES}, // keep-alive: not a retransmission
	}))
	r := tab.Flush()[0]
	if r.C2S.Packets != 5 || r.S2C.Packets != 2 || r.C2S.Payload != 200 || r.C2S.Bytes != 5*54+200 || r.C2S.IPBytes != 5*40+200 {
		t.Errorf("counters c2s %+v s2c %+v", r.C2S, r.S2C)
	}
	if r.S2C.Bytes != 2*54 || r.S2C.IPBytes != 2*40 {
		t.Errorf("server to client: %d frame bytes, %d IP bytes; want %d, %d", r.S2C.Bytes, r.S2C.IPBytes, 2*54, 2*40)
	}
	if r.C2S.Retransmits != 1 || r.S2C.Retransmits != 0 {
		t.Errorf("retransmits %d/%d, want 1/0", r.C2S.Retransmits, r.S2C.Retransmits)
	}
	if r.RTT != 2*time.Millisecond {
		t.Errorf("RTT %v, want 2ms (SYN at 0, handshake ACK at 2 ms)", r.RTT)
	}
	if r.Client != cliAP || r.Server != srvAP || r.Role != RoleBySYN {
		t.Errorf("roles: client %v server %v (%v)", r.Client, r.Server, r.Role)
	}
}

// TestByteCountsPast32Bits sends more than 2^32 bytes each way, in frames
// of lengths near 2^31 and 2^32, so that the counts carry out of the
// endpoint's 32 bits (into the cold record) several times, and once more
// by the smallest frame: the counts must be the exact 64-bit sums.
func TestByteCountsPast32Bits(t *testing.T) {
	tab := NewTable(Config{})
	var want [2][3]uint64
	add := func(p *Packet, d int) {
		tab.Apply(p)
		want[d][0] += uint64(p.FrameLen)
		want[d][1] += uint64(p.IPLen)
		want[d][2] += uint64(p.PayloadLen)
	}
	for _, s := range handshake {
		p := pkt(s.from, s.flags, s.seq, s.ack, s.len, s.at)
		add(&p, map[byte]int{'c': 0, 's': 1}[s.from])
	}
	cseq, sseq := uint32(1001), uint32(5001)
	for i := range 9 {
		c := pkt('c', PSH|ACK, cseq, sseq, 1<<31+uint32(i), ms(3+i))
		c.FrameLen, c.IPLen = ^uint32(0)-uint32(i), 1<<31+uint32(i)+40
		cseq += c.PayloadLen
		add(&c, 0)
		s := pkt('s', PSH|ACK, sseq, cseq, 1<<30, ms(3+i))
		s.FrameLen, s.IPLen = 1<<31+uint32(i), 1<<30+40
		sseq += s.PayloadLen
		add(&s, 1)
	}
	last := pkt('c', ACK, cseq, sseq, 0, ms(20))
	add(&last, 0)
	r := tab.Flush()[0]
	for d, st := range []EndpointStats{r.C2S, r.S2C} {
		if got := [3]uint64{st.Bytes, st.IPBytes, st.Payload}; got != want[d] {
			t.Errorf("direction %d: bytes, IP bytes, payload %v, want %v", d, got, want[d])
		}
	}
	if r.C2S.Packets != 12 || r.S2C.Packets != 10 {
		t.Errorf("packets %d/%d, want 12/10", r.C2S.Packets, r.S2C.Packets)
	}
}

func TestMidstreamRolesByPort(t *testing.T) {
	cases := []struct {
		sport, dport uint16
		serverPort   uint16
		role         Role
	}{
		{40000, 443, 443, RoleByPort},
		{443, 40000, 443, RoleByPort},
		{50000, 8080, 8080, RoleByPort},
		{6000, 7000, 6000, RoleByPort},
		{5060, 5060, 5060, RoleByFirstTx},
	}
	for _, c := range cases {
		tab := NewTable(Config{})
		p := pkt('c', ACK, 1, 1, 10, 0)
		p.Tuple.SrcPort, p.Tuple.DstPort = c.sport, c.dport
		tab.Apply(&p)
		r := tab.Flush()[0]
		if r.Server.Port() != c.serverPort || r.Role != c.role || !r.Midstream {
			t.Errorf("%d -> %d: server %v (%v, midstream %v), want port %d (%v)", c.sport, c.dport, r.Server, r.Role, r.Midstream, c.serverPort, c.role)
		}
	}
}

func TestApplyDoesNotAllocate(t *testing.T) {
	tab := run(t, handshake)
	p := pkt('c', PSH|ACK, 1001, 5001, 100, ms(3))
	allocs := testing.AllocsPerRun(1000, func() {
		p.Seq += 100
		tab.Apply(&p)
	})
	if allocs != 0 {
		t.Fatalf("Apply on an existing connection: %v allocations per packet, want 0", allocs)
	}
}

func BenchmarkApply(b *testing.B) {
	b.Run("existing", func(b *testing.B) {
		tab := NewTable(Config{})
		p := pkt('c', PSH|ACK, 1001, 5001, 100, 0)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			p.Seq += 100
			tab.Apply(&p)
		}
	})
	b.Run("new", func(b *testing.B) {
		tab := NewTable(Config{})
		p := pkt('c', SYN, 1000, 0, 0, 0)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			binary.BigEndian.PutUint32(p.Tuple.Src[12:], uint32(i))
			tab.Apply(&p)
		}
	})
	// promote: a SYN and its SYN-ACK, the half-open connection made a
	// full one; ns/op is per connection (two packets).
	b.Run("promote", func(b *testing.B) {
		tab := NewTable(Config{})
		syn, synAck := pkt('c', SYN, 1000, 0, 0, 0), pkt('s', SYN|ACK, 5000, 1001, 0, 0)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			binary.BigEndian.PutUint32(syn.Tuple.Src[12:], uint32(i))
			binary.BigEndian.PutUint32(synAck.Tuple.Dst[12:], uint32(i))
			tab.Apply(&syn)
			tab.Apply(&synAck)
		}
	})
}

// FuzzApply feeds arbitrary packet sequences on a few 4-tuples and checks
// the table's invariants: states are valid, counters never decrease, and a
// connection's client and server are different endpoints.
func FuzzApply(f *testing.F) {
	f.Add([]byte{0x02, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x12, 1, 0, 0, 0x10, 0, 0, 0, 0, 0})
	f.Add(make([]byte, 200))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := Config{TimeWait: time.Second, ClosedTimeout: time.Second, IdleTimeout: 10 * time.Second, HandshakeTimeout: 5 * time.Second}
		if len(data)%2 == 1 { // a bound of 2 for the 4 connections: evictions and limbo
			cfg.Shards, cfg.MaxConns = 1, 2
		}
		cfg.Changes = len(data)%3 == 0
		cfg.Zeek = len(data)%5 == 0
		var retired []Record
		cfg.OnRetire = func(r []Record) { retired = append(retired, r...) }
		tab := NewTable(cfg)
		prev := map[uint64]Record{}
		var ts int64
		for len(data) >= 12 {
			b := data[:12]
			data = data[12:]
			var p Packet
			s4 := [4]byte{10, 0, 0, 1 + b[0]&1}
			d4 := [4]byte{10, 0, 0, 2 - b[0]&1}
			p.Tuple.SetV4(s4[:], d4[:])
			p.Tuple.SrcPort, p.Tuple.DstPort = 1000+uint16(b[1]&3), 80
			if b[0]&1 == 1 {
				p.Tuple.SrcPort, p.Tuple.DstPort = 80, 1000+uint16(b[1]&3)
			}
			p.Flags = Flags(b[2]) | Flags(b[3]&1)<<8
			p.Seq = binary.BigEndian.Uint32(b[4:]) >> (b[1] >> 4)
			p.Ack = binary.BigEndian.Uint32(b[8:]) >> (b[1] >> 4)
			p.PayloadLen = uint32(b[3] >> 1)
			p.Window = uint16(b[10])
			p.WScale = int8(b[11]&15) - 1
			ts += int64(b[11]>>4) * int64(time.Second/4)
			p.TS, p.FrameLen, p.IPLen = ts, 54+p.PayloadLen, 40+p.PayloadLen
			p.TTL = 62 + b[7]&3 // RSTs among them with other TTLs
			p.HasTS, p.TSVal = b[6]&1 == 1, uint32(ts>>20)+uint32(b[6]>>1)
			tab.Apply(&p)
			if cfg.MaxConns > 0 && tab.Len() > cfg.MaxConns {
				t.Fatalf("%d connections tracked, bound %d", tab.Len(), cfg.MaxConns)
			}
			tab.EachChange(tab.Opened(), func(uint64) {}, func(*Record) {})
			for _, r := range tab.Snapshot() {
				if r.ClientState >= numStates || r.ServerState >= numStates {
					t.Fatalf("invalid state %d/%d", r.ClientState, r.ServerState)
				}
				if r.Client == r.Server {
					t.Fatalf("client and server are both %v", r.Client)
				}
				if o, ok := prev[r.ID]; ok {
					if r.C2S.Packets < o.C2S.Packets || r.S2C.Packets < o.S2C.Packets ||
						r.C2S.Bytes < o.C2S.Bytes || r.S2C.Bytes < o.S2C.Bytes ||
						r.C2S.IPBytes < o.C2S.IPBytes || r.S2C.IPBytes < o.S2C.IPBytes ||
						r.C2S.Retransmits < o.C2S.Retransmits || r.S2C.Retransmits < o.S2C.Retransmits {
						t.Fatalf("counters decreased: %+v %+v -> %+v %+v", o.C2S, o.S2C, r.C2S, r.S2C)
					}
				}
				prev[r.ID] = r
				checkEvidence(t, &r)
				_ = r.ConnState()
				_ = r.History()
			}
		}
		for _, r := range append(retired, tab.Flush()...) {
			checkEvidence(t, &r)
			// A Zeek table's records carry Zeek's fields, with
			// distinct roles; no other table's do.
			if f, ok := r.Zeek(); ok != cfg.Zeek || ok && f.Orig == f.Resp {
				t.Fatalf("Zeek fields %v (%v -> %v), Config.Zeek %v", ok, f.Orig, f.Resp, cfg.Zeek)
			}
		}
	})
}

// checkEvidence checks what a record's evidence must hold whatever the
// packets: resends are a share of what was sent, times lie within the
// connection's, and silences and zero windows within its span.
func checkEvidence(t *testing.T, r *Record) {
	t.Helper()
	e := r.Evidence()
	span := r.LastSeen.Sub(r.FirstSeen)
	for i, s := range e.Sent {
		if s.Resent > s.Segments || s.Segments < 0 || s.TimeoutResends > 255 {
			t.Fatalf("endpoint %d sent %+v", i, s)
		}
	}
	for _, tm := range []time.Time{e.Handshake.FirstSYN, e.Handshake.LastSYN, e.Handshake.FirstSYNACK,
		e.Handshake.LastSYNACK, e.Stall.At, e.Reset.At, e.IgnoredReset.At, e.ZeroWindow.Since,
		e.ZeroWindow.LongestFrom, e.FIN.At, e.Unanswered.Since} {
		if !tm.IsZero() && (tm.Before(r.FirstSeen) || tm.After(r.LastSeen)) {
			t.Fatalf("evidence time %v outside the connection's %v to %v: %+v", tm, r.FirstSeen, r.LastSeen, e)
		}
	}
	if e.Stall.Silence > span || e.ZeroWindow.Longest > span || e.Reuse.TimeWaitAge < 0 {
		t.Fatalf("a silence or window longer than the connection's %v: %+v", span, e)
	}
	if e.FIN.Belied && !e.FIN.Seen {
		t.Fatalf("a FIN belied that was never seen: %+v", e.FIN)
	}
	if e.Handshake.SYNs == 0 && !e.Handshake.FirstSYN.IsZero() || e.Handshake.LastSYN.Before(e.Handshake.FirstSYN) {
		t.Fatalf("handshake %+v", e.Handshake)
	}
}

func TestTransitionsLogged(t *testing.T) {
	var out retired
	cfg := out.config()
	cfg.Transitions = 16
	tab := NewTable(cfg)
	for _, s := range seq(handshake, []step{
		{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW},
		{'s', FIN | ACK, 5001, 1002, 0, ms(6), TW, LA},
		{'c', ACK, 1002, 5002, 0, ms(7), TW, CL},
	}) {
		p := pkt(s.from, s.flags, s.seq, s.ack, s.len, s.at)
		tab.Apply(&p)
	}
	later := pkt('c', SYN, 1, 0, 0, time.Minute+ms(6))
	later.Tuple.SrcPort = 40001
	tab.Apply(&later)
	var r Record
	for _, x := range append(out.recs, tab.Flush()...) {
		if x.Client.Port() == 40000 {
			r = x
		}
	}
	type tr struct {
		client   bool
		from, to State
	}
	want := []tr{
		{true, CL, SS}, {true, SS, ES}, {false, CL, SR}, {false, SR, ES},
		{true, ES, F1}, {false, ES, CW}, {true, F1, TW}, {false, CW, LA}, {false, LA, CL}, {true, TW, CL},
	}
	if len(r.Transitions) != len(want) {
		t.Fatalf("%d transitions, want %d: %+v", len(r.Transitions), len(want), r.Transitions)
	}
	for i, w := range want {
		g := r.Transitions[i]
		if g.Client != w.client || g.From != w.from || g.To != w.to {
			t.Errorf("transition %d: client=%v %v->%v, want client=%v %v->%v (%s)", i, g.Client, g.From, g.To, w.client, w.from, w.to, g.Cause())
		}
	}
	if last := r.Transitions[len(want)-1]; last.Packet || last.Time() != t0.Add(time.Minute+ms(6)) {
		t.Errorf("last transition %+v: want the TIME_WAIT timer at 60 s after it began", last)
	}
	if c := r.Transitions[0].Cause(); c != "client sent S seq=1000 ack=0 len=0" {
		t.Errorf("cause %q", c)
	}
}

func TestGapsCounted(t *testing.T) {
	tab := run(t, seq(handshake, []step{
		{'c', PSH | ACK, 1001, 5001, 100, ms(3), ES, ES},
		{'c', PSH | ACK, 1201, 5001, 100, ms(4), ES, ES}, // 1101..1200 missing
		{'c', PSH | ACK, 1101, 5001, 100, ms(5), ES, ES}, // arrives late: no gap, no retransmission
		{'s', ACK, 5001, 1301, 0, ms(6), ES, ES},
	}))
	r := tab.Flush()[0]
	if r.C2S.Gaps != 1 || r.S2C.Gaps != 0 || r.C2S.Retransmits != 0 {
		t.Errorf("gaps %d/%d, retransmits %d: want 1/0 and 0", r.C2S.Gaps, r.S2C.Gaps, r.C2S.Retransmits)
	}
}

// TestMaxConnsEvictsCheapFirst floods a bounded table with unanswered SYNs
// while three established connections carry data: only SYNs are evicted,
// and the established connections keep exact counters.
func TestMaxConnsEvictsCheapFirst(t *testing.T) {
	var out retired
	cfg := out.config()
	cfg.Shards, cfg.MaxConns = 1, 10
	tab := NewTable(cfg)
	est := func(port uint16, at time.Duration) {
		for _, s := range handshake {
			p := pkt(s.from, s.flags, s.seq, s.ack, s.len, at+s.at)
			if s.from == 'c' {
				p.Tuple.SrcPort = port
			} else {
				p.Tuple.DstPort = port
			}
			tab.Apply(&p)
		}
	}
	for i := uint16(0); i < 3; i++ {
		est(41000+i, 0)
	}
	for i := 0; i < 1000; i++ {
		p := pkt('c', SYN, uint32(i), 0, 0, ms(10+i))
		binary.BigEndian.PutUint32(p.Tuple.Src[12:], 0x0b000000+uint32(i))
		tab.Apply(&p)
		if i%100 == 0 { // the established connections stay busy
			for j := uint16(0); j < 3; j++ {
				d := pkt('c', PSH|ACK, 1001+uint32(i), 5001, 1, ms(10+i))
				d.Tuple.SrcPort = 41000 + j
				tab.Apply(&d)
			}
		}
	}
	if n := tab.Len(); n != 10 {
		t.Fatalf("%d connections, want the bound, 10", n)
	}
	// 993 evicted; the latest 20 of them wait in limbo (twice the
	// shard's bound), the rest were retired in the order they were evicted.
	if tab.Evicted() != 993 || len(out.recs) != 973 {
		t.Fatalf("evicted %d, retired %d; want 993 and 973", tab.Evicted(), len(out.recs))
	}
	seen := map[[4]byte]bool{}
	for i, r := range out.recs {
		a := r.Client.Addr().As4()
		if r.End != EndEvicted || r.ClientState != SS || r.C2S.Packets != 1 || a[0] != 11 || seen[a] {
			t.Fatalf("eviction %d: %v %v %v (%d packets), want one of the flood's SYNs, each once", i, r.Client, r.ClientState, r.End, r.C2S.Packets)
		}
		seen[a] = true
	}
	n, inLimbo := 0, 0
	for _, r := range tab.Flush() {
		if r.End == EndEvicted {
			inLimbo++
			if a := r.Client.Addr().As4(); a[0] != 11 || seen[a] || r.C2S.Packets != 1 {
				t.Fatalf("flushed from limbo: %v %d packets, want a flood SYN not yet retired", r.Client, r.C2S.Packets)
			}
			continue
		}
		if r.Server.Port() == 80 && r.ClientState == ES {
			n++
			if r.C2S.Packets != 2+10 || r.C2S.Payload != 10 {
				t.Errorf("%v: %d packets, %d payload bytes; want 12 and 10", r.Client, r.C2S.Packets, r.C2S.Payload)
			}
		}
	}
	if n != 3 || inLimbo != 20 {
		t.Fatalf("%d established connections left and %d flushed from limbo, want 3 and 20", n, inLimbo)
	}
}

// TestEvictedHandshakeComesBack: a client's SYN evicted by a flood in a
// full table waits in limbo, and its SYN-ACK brings it back whole: one
// record with every packet, not the SYN alone and a mid-stream pickup.
func TestEvictedHandshakeComesBack(t *testing.T) {
	var out retired
	cfg := out.config()
	cfg.Shards, cfg.MaxConns = 1, 10
	tab := NewTable(cfg)
	flood := func(from, n int, at time.Duration) {
		for i := from; i < from+n; i++ {
			p := pkt('c', SYN, uint32(i), 0, 0, at)
			binary.BigEndian.PutUint32(p.Tuple.Src[12:], 0x0b000000+uint32(i))
			tab.Apply(&p)
		}
	}
	syn := pkt('c', SYN, 1000, 0, 0, 0)
	tab.Apply(&syn)
	flood(0, 15, ms(1)) // the bound is 10: the client's SYN, the oldest, is evicted first
	if tab.Evicted() != 6 || len(out.recs) != 0 {
		t.Fatalf("evicted %d, retired %d: want 6 in limbo, none retired", tab.Evicted(), len(out.recs))
	}
	resent := pkt('c', SYN, 1000, 0, 0, ms(1000)) // the client resends its SYN
	tab.Apply(&resent)
	flood(15, 5, ms(1001))
	steps := []step{
		{'s', SYN | ACK, 5000, 1001, 0, ms(1100), ES, SR},
		{'c', ACK, 1001, 5001, 0, ms(1101), ES, ES},
		{'c', PSH | ACK, 1001, 5001, 10, ms(1102), ES, ES},
	}
	for _, s := range steps {
		p := pkt(s.from, s.flags, s.seq, s.ack, s.len, s.at)
		tab.Apply(&p)
	}
	if tab.Len() != 10 {
		t.Fatalf("%d connections in the table, want the bound, 10", tab.Len())
	}
	var got []Record
	for _, r := range append(out.recs, tab.Flush()...) {
		if r.Client == cliAP {
			got = append(got, r)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d records of the client's connection, want 1: %+v", len(got), got)
	}
	r := got[0]
	if r.ClientState != ES || r.ServerState != ES || r.C2S.Packets != 4 || r.S2C.Packets != 1 ||
		r.C2S.Retransmits != 1 || r.C2S.Payload != 10 || r.Midstream || r.End != EndFlushed {
		t.Fatalf("client's record: %v/%v, %d/%d packets, %d retransmits, %d payload, midstream %v, end %v; "+
			"want ESTABLISHED/ESTABLISHED, 4/1, 1, 10, false, flushed",
			r.ClientState, r.ServerState, r.C2S.Packets, r.S2C.Packets, r.C2S.Retransmits, r.C2S.Payload, r.Midstream, r.End)
	}
	// 21 connections through a bound of 10: 11 evicted, each record once.
	if tab.Evicted() != 11 {
		t.Fatalf("evicted %d, want 11", tab.Evicted())
	}
}

// TestLimboIsBounded: limbo holds twice a shard's bound of evicted connections
// and retires the oldest first once full; the sweep retires those whose
// handshake would have timed out.
func TestLimboIsBounded(t *testing.T) {
	var out retired
	cfg := out.config()
	cfg.Shards, cfg.MaxConns, cfg.HandshakeTimeout = 1, 4, 10*time.Second
	tab := NewTable(cfg)
	for i := 0; i < 20; i++ {
		p := pkt('c', SYN, uint32(i), 0, 0, ms(i))
		binary.BigEndian.PutUint32(p.Tuple.Src[12:], 0x0b000000+uint32(i))
		tab.Apply(&p)
	}
	// 16 evicted: 8 wait in limbo, the 8 oldest went in order.
	if tab.Evicted() != 16 || len(out.recs) != 8 {
		t.Fatalf("evicted %d, retired %d; want 16 and 8", tab.Evicted(), len(out.recs))
	}
	for i, r := range out.recs {
		if a := r.Client.Addr().As4(); a[3] != byte(i) || r.End != EndEvicted {
			t.Fatalf("retired %d: %v %v, want 11.0.0.%d evicted", i, r.Client, r.End, i)
		}
	}
	// Much later (past the handshake timeout and the closed timeout), a
	// packet of another connection brings a sweep: the table's half-open
	// connections expire, and limbo's go with them.
	late := pkt('c', SYN, 1, 0, 0, 45*time.Second)
	tab.Apply(&late)
	ends := map[EndReason]int{}
	for _, r := range out.recs[8:] {
		if r.ClientState != CL {
			t.Errorf("%v left at the sweep in %v, want CLOSED", r.Client, r.ClientState)
		}
		ends[r.End]++
	}
	if ends[EndEvicted] != 8 || ends[EndClosed] != 4 || len(out.recs) != 20 || tab.Evicted() != 16 {
		t.Fatalf("the sweep retired %v (%d in all), evicted %d; want 8 from limbo and 4 closed, 20, 16",
			ends, len(out.recs), tab.Evicted())
	}
}

func TestMaxConnsEvictsEstablishedByClock(t *testing.T) {
	cfg := Config{Shards: 1, MaxConns: 2}
	tab := NewTable(cfg)
	mk := func(port uint16, at time.Duration) {
		p := pkt('c', PSH|ACK, 1, 1, 10, at)
		p.Tuple.SrcPort = port
		tab.Apply(&p)
	}
	mk(50001, 0)
	mk(50002, ms(1))
	mk(50001, ms(2)) // 50001 is used again: 50002 should go first
	mk(50003, ms(3))
	var ports []uint16
	for _, r := range tab.Flush() {
		ports = append(ports, r.Client.Port())
	}
	if len(ports) != 2 || ports[0] != 50001 || ports[1] != 50003 {
		t.Fatalf("kept %v, want [50001 50003]", ports)
	}
}

// BenchmarkMemoryPerConn reports the memory (heap, and slabs outside it)
// that a table holds per connection, for half-open ones (a SYN only) and established ones (a
// handshake and data both ways), at b.N connections (use -benchtime=1000000x).
// "established-past-2^32" opens its connections after the table has
// handed out 2^32 IDs (the count starts there): they must cost what the
// first 2^32 do.
func BenchmarkMemoryPerConn(b *testing.B) {
	for _, kind := range []string{"half-open", "established", "established-past-2^32"} {
		b.Run(kind, func(b *testing.B) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			tab := NewTable(Config{})
			if kind == "established-past-2^32" {
				tab.opened.Store(1<<32 - 1)
			}
			for i := 0; i < b.N; i++ {
				steps := handshake[:1]
				if kind != "half-open" {
					steps = seq(handshake, []step{
						{'c', PSH | ACK, 1001, 5001, 100, ms(3), ES, ES},
						{'s', PSH | ACK, 5001, 1101, 100, ms(4), ES, ES},
					})
				}
				for _, s := range steps {
					p := pkt(s.from, s.flags, s.seq, s.ack, s.len, s.at)
					binary.BigEndian.PutUint32(p.Tuple.Src[12:], uint32(i))
					if s.from == 's' {
						binary.BigEndian.PutUint32(p.Tuple.Dst[12:], uint32(i))
						p.Tuple.Src = pkt('s', 0, 0, 0, 0, 0).Tuple.Src
					}
					tab.Apply(&p)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			if n := tab.Len(); n != b.N {
				b.Fatalf("%d connections, want %d", n, b.N)
			}
			// The slabs' chunks outside the heap count whole, as the
			// heap counts a slice's capacity.
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc+uint64(tab.slabBytes()))/float64(b.N), "B/conn")
			runtime.KeepAlive(tab)
		})
	}
}

func TestTickRunsTimersWithoutPackets(t *testing.T) {
	var out retired
	tab := runWith(t, out.config(), seq(handshake, []step{
		{'c', FIN | ACK, 1001, 5001, 0, ms(5), F1, CW},
		{'s', FIN | ACK, 5001, 1002, 0, ms(6), TW, LA},
		{'c', ACK, 1002, 5002, 0, ms(7), TW, CL},
	}))
	tab.Tick(t0.Add(30 * time.Second))
	if r := tab.Snapshot(); len(r) != 1 || r[0].ClientState != TW {
		t.Fatalf("after 30 s: %+v, want TIME_WAIT", r)
	}
	tab.Tick(t0.Add(61 * time.Second))
	if r := tab.Snapshot(); len(r) == 1 && r[0].ClientState != CL {
		t.Fatalf("after 61 s the snapshot shows %v, want CLOSED", r[0].ClientState)
	}
	tab.Tick(t0.Add(100 * time.Second))
	if len(out.recs) != 1 || out.recs[0].End != EndClosed {
		t.Fatalf("after 100 s without packets: %d retired, want the closed connection", len(out.recs))
	}
}

func TestReplacedConnectionLogsItsEnd(t *testing.T) {
	var out retired
	cfg := out.config()
	cfg.Transitions = 16
	tab := NewTable(cfg)
	for _, s := range seq(handshake, []step{
		{'s', FIN | ACK, 5001, 1001, 0, ms(5), CW, F1},
		{'c', FIN | ACK, 1001, 5002, 0, ms(6), LA, TW},
		{'s', ACK, 5002, 1002, 0, ms(7), CL, TW},
		{'c', SYN, 77777, 0, 0, time.Second, SS, CL},
	}) {
		p := pkt(s.from, s.flags, s.seq, s.ack, s.len, s.at)
		tab.Apply(&p)
	}
	if len(out.recs) != 1 {
		t.Fatalf("%d retired", len(out.recs))
	}
	tr := out.recs[0].Transitions
	last := tr[len(tr)-1]
	if last.Client || last.From != TW || last.To != CL || !last.Replaced || !strings.Contains(last.Cause(), "new connection") {
		t.Fatalf("last transition %+v (%s): want the server's TIME_WAIT closed by the new SYN", last, last.Cause())
	}
}

// TestShardHashSpreads checks that the shard hash spreads similar keys
// (one client, sequential ports; sequential addresses) evenly: each of 64
// shards within a quarter of its fair share.
func TestShardHashSpreads(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		var counts [64]int
		const n = 64000
		for i := 0; i < n; i++ {
			p := pkt('c', SYN, 1, 0, 0, 0)
			if v6 {
				p.Tuple.V6, p.Tuple.Src[0], p.Tuple.Dst[0] = true, 0x20, 0x20
			}
			binary.BigEndian.PutUint32(p.Tuple.Src[12:], 0x0a000000+uint32(i/100))
			p.Tuple.SrcPort = uint16(32768 + i%100)
			k, _ := p.Tuple.Key()
			counts[k.hash64()&63]++
		}
		for s, c := range counts {
			if c < n/64*3/4 || c > n/64*5/4 {
				t.Errorf("v6=%v: shard %d got %d keys, fair share %d", v6, s, c, n/64)
			}
		}
	}
}

// TestHalfOpenReplaysExactly checks that a connection kept half-open (SYNs
// only) and then answered gives the same record as one tracked in full from
// its first packet: the SYN retransmissions, timestamps, RTT, Zeek history
// and transition log all survive the replay.
func TestHalfOpenReplaysExactly(t *testing.T) {
	steps := []step{
		{'c', SYN, 1000, 0, 0, 0, SS, CL},
		{'c', SYN, 1000, 0, 0, time.Second, SS, CL},
		{'c', SYN, 1000, 0, 0, 3 * time.Second, SS, CL},
		{'s', SYN | ACK, 5000, 1001, 0, 3*time.Second + ms(20), ES, SR},
		{'c', ACK, 1001, 5001, 0, 3*time.Second + ms(21), ES, ES},
	}
	tab := runWith(t, Config{Transitions: 16}, steps)
	got := tab.Flush()[0]
	want := []struct {
		from, to State
		client   bool
	}{{CL, SS, true}, {SS, ES, true}, {CL, SR, false}, {SR, ES, false}}
	if len(got.Transitions) != len(want) {
		t.Fatalf("%d transitions, want %d: %+v", len(got.Transitions), len(want), got.Transitions)
	}
	for i, w := range want {
		if tr := got.Transitions[i]; tr.From != w.from || tr.To != w.to || tr.Client != w.client {
			t.Errorf("transition %d: %+v", i, tr)
		}
	}
	if got.C2S.Packets != 4 || got.C2S.Retransmits != 2 || got.RTT != ms(21) || !got.FirstSeen.Equal(t0) ||
		got.C2S.Bytes != 4*54 || got.C2S.IPBytes != 4*40 {
		t.Errorf("record %+v: want 4 client packets (4*54 frame bytes, 4*40 IP bytes), 2 retransmits, RTT 21ms, first seen at the first SYN", got)
	}
	if h, cs := got.History(), got.ConnState(); cs != "S1" || h[0] != 'S' {
		t.Errorf("Zeek: %s %s", h, cs)
	}
}

// settledHeap returns the live heap once the cleanups of tables no longer
// reachable have run (they hold a table's shards until then).
func settledHeap() uint64 {
	var m runtime.MemStats
	last := uint64(0)
	for range 20 {
		runtime.GC()
		runtime.Gosched()
		runtime.ReadMemStats(&m)
		if m.HeapAlloc == last {
			break
		}
		last = m.HeapAlloc
	}
	return m.HeapAlloc
}

// TestHalfOpenMemory checks that a connection known only by its SYN costs
// a fraction of a full one (BenchmarkMemoryPerConn measures it).
func TestHalfOpenMemory(t *testing.T) {
	measure := func(established bool) float64 {
		before := settledHeap()
		tab := NewTable(Config{})
		const n = 20000
		for i := 0; i < n; i++ {
			p := pkt('c', SYN, 1000, 0, 0, 0)
			binary.BigEndian.PutUint32(p.Tuple.Src[12:], uint32(i))
			tab.Apply(&p)
			if established {
				q := pkt('s', SYN|ACK, 5000, 1001, 0, ms(1))
				binary.BigEndian.PutUint32(q.Tuple.Dst[12:], uint32(i))
				tab.Apply(&q)
			}
		}
		after := settledHeap()
		runtime.KeepAlive(tab)
		return float64(int64(after)-int64(before)+int64(tab.slabBytes())) / n
	}
	half, full := measure(false), measure(true)
	t.Logf("memory per connection (heap and slab): %.0f B half-open, %.0f B answered", half, full)
	if half > 192 || half > full/2 {
		t.Errorf("a half-open connection takes %.0f B, a full one %.0f B", half, full)
	}
}

// TestHalfOpenKeepsIPBytes checks that a SYN resent with other options
// keeps its own IP length through the half-open table, even in a frame of
// the same length (Ethernet pads every frame to 60 bytes): only SYNs alike
// are counted in a halfOpen.
func TestHalfOpenKeepsIPBytes(t *testing.T) {
	tab := NewTable(Config{})
	for i, n := range []uint32{44, 44, 40} { // IPv4 and TCP headers, with an MSS option or none
		p := pkt('c', SYN, 1000, 0, 0, time.Duration(i)*time.Second)
		p.IPLen, p.FrameLen = n, 60
		tab.Apply(&p)
	}
	r := tab.Flush()
	if len(r) != 1 || r[0].C2S.Packets != 3 || r[0].C2S.IPBytes != 128 || r[0].C2S.Bytes != 180 {
		t.Fatalf("records %+v: want one with 3 packets, 128 IP bytes, 180 frame bytes", r)
	}
}
