package flows

import (
	"math/rand/v2"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// Tests of the Zeek emulation with hand-built packet sequences whose
// conn_state and history follow from Zeek's documented semantics. The real
// Zeek baselines of the bundled captures are in zeek_baselines_test.go.

// zkStep is one hand-built packet, sent by the client ('c') or the server
// ('s'). The first step's sender is the connection's "first" endpoint.
type zkStep struct {
	from     byte
	flags    Flags
	seq, ack uint32
	n        uint32 // payload length
	win      uint16 // window; 0 stands for 8192 unless the step is listed as a zero window
}

var (
	zkCli = netip.MustParseAddrPort("10.1.0.1:40000")
	zkSrv = netip.MustParseAddrPort("10.1.0.2:5000") // not a likely server port
	zkWeb = netip.MustParseAddrPort("10.1.0.2:80")   // a likely server port
)

// zkRun feeds the steps to a zeekConn. The first step's sender is the
// "first" endpoint. cli and srv are the addresses of 'c' and 's'. The steps
// listed in zeroWin have a zero window, those in snapped a payload that the
// snapshot length cut short.
func zkRun(cli, srv netip.AddrPort, steps []zkStep, zeroWin, snapped map[int]bool) *zeekConn {
	z := new(zeekConn)
	first := steps[0].from
	for i, s := range steps {
		var p Packet
		src, dst := cli, srv
		if s.from == 's' {
			src, dst = srv, cli
		}
		p.Tuple.SetV4(src.Addr().AsSlice(), dst.Addr().AsSlice())
		p.Tuple.SrcPort, p.Tuple.DstPort = src.Port(), dst.Port()
		p.Flags, p.Seq, p.Ack, p.PayloadLen = s.flags, s.seq, s.ack, s.n
		p.Window = s.win
		if p.Window == 0 && !zeroWin[i] {
			p.Window = 8192
		}
		p.WScale = -1
		p.Snapped = snapped[i]
		z.observe(&p, s.from == first)
	}
	return z
}

func TestZeekHandBuilt(t *testing.T) { //nolint:funlen // a table of cases: data, not steps
	const (
		S  = SYN
		SA = SYN | ACK
		A  = ACK
		PA = PSH | ACK
		FA = FIN | ACK
		R  = RST
		RA = RST | ACK
	)
	// The client's ISN is 1000, the server's 5000.
	hs := []zkStep{{'c', S, 1000, 0, 0, 0}, {'s', SA, 5000, 1001, 0, 0}, {'c', A, 1001, 5001, 0, 0}}
	with := func(tail ...zkStep) []zkStep { return append(append([]zkStep(nil), hs...), tail...) }
	cases := []struct {
		name    string
		srv     netip.AddrPort
		steps   []zkStep
		zero    map[int]bool // steps with a zero window
		snapped map[int]bool // steps whose payload was not all captured
		history string
		state   string
		flipped bool
	}{
		{name: "complete", steps: with(
			zkStep{'c', PA, 1001, 5001, 100, 0}, zkStep{'s', A, 5001, 1101, 0, 0},
			zkStep{'s', PA, 5001, 1101, 200, 0}, zkStep{'c', A, 1101, 5201, 0, 0},
			zkStep{'c', FA, 1101, 5201, 0, 0}, zkStep{'s', FA, 5201, 1102, 0, 0}, zkStep{'c', A, 1102, 5202, 0, 0}),
			history: "ShADadFf", state: "SF"},
		{name: "syn only", steps: []zkStep{{'c', S, 1000, 0, 0, 0}}, history: "S", state: "S0"},
		{name: "syn retransmitted", steps: []zkStep{{'c', S, 1000, 0, 0, 0}, {'c', S, 1000, 0, 0, 0}}, history: "S", state: "S0"},
		{name: "rejected", steps: []zkStep{{'c', S, 1000, 0, 0, 0}, {'s', RA, 0, 1001, 0, 0}}, history: "Sr", state: "REJ"},
		{name: "syn then rst", steps: []zkStep{{'c', S, 1000, 0, 0, 0}, {'c', R, 1001, 0, 0, 0}}, history: "SR", state: "RSTOS0"},
		// The three RST cases of Zeek's conn_state-RST-behavior test.
		{name: "syn, bare ack, rst", steps: []zkStep{{'c', S, 1000, 0, 0, 0}, {'s', A, 5000, 1001, 0, 0}, {'c', R, 1001, 0, 0, 0}},
			history: "SaR", state: "RSTOS0"},
		{name: "syn, bare ack, fin, rst", steps: []zkStep{{'c', S, 1000, 0, 0, 0}, {'s', A, 5000, 1001, 0, 0},
			{'c', FA, 1001, 5000, 0, 0}, {'c', R, 1002, 0, 0, 0}}, history: "SaFR", state: "OTH"},
		{name: "lone rst", steps: []zkStep{{'c', R, 1000, 0, 0, 0}}, history: "R", state: "OTH"},
		{name: "originator aborts", steps: with(zkStep{'c', RA, 1001, 5001, 0, 0}), history: "ShAR", state: "RSTO"},
		{name: "responder aborts", steps: with(zkStep{'s', RA, 5001, 1001, 0, 0}), history: "ShAr", state: "RSTR"},
		{name: "originator closes", steps: with(zkStep{'c', FA, 1001, 5001, 0, 0}), history: "ShAF", state: "S2"},
		{name: "responder closes", steps: with(zkStep{'s', FA, 5001, 1001, 0, 0}), history: "ShAf", state: "S3"},
		{name: "established", steps: hs, history: "ShA", state: "S1"},
		{name: "syn then fin", steps: []zkStep{{'c', S, 1000, 0, 0, 0}, {'c', FIN, 1001, 0, 0, 0}}, history: "SF", state: "SH"},
		// A SYN-ACK from a likely server port flips the roles at once.
		{name: "syn-ack then fin", srv: zkWeb, steps: []zkStep{{'s', SA, 5000, 1001, 0, 0}, {'s', FA, 5001, 1001, 0, 0}},
			history: "^hf", state: "SHR", flipped: true},
		{name: "syn-ack then rst", srv: zkWeb, steps: []zkStep{{'s', SA, 5000, 1001, 0, 0}, {'s', R, 5001, 0, 0, 0}},
			history: "^hr", state: "RSTRH", flipped: true},
		{name: "syn-ack only", srv: zkWeb, steps: []zkStep{{'s', SA, 5000, 1001, 0, 0}}, history: "^h", state: "OTH", flipped: true},
		{name: "missed syn", srv: zkWeb, steps: []zkStep{{'s', SA, 5000, 1001, 0, 0}, {'c', A, 1001, 5001, 0, 0},
			{'c', PA, 1001, 5001, 10, 0}, {'s', A, 5001, 1011, 0, 0}}, history: "^hADa", state: "S1", flipped: true},
		// From an unknown port it is flipped when an ACK follows.
		{name: "syn-ack then ack", steps: []zkStep{{'s', SA, 5000, 1001, 0, 0}, {'c', A, 1001, 5001, 0, 0},
			{'c', FA, 1001, 5001, 0, 0}, {'s', FA, 5001, 1002, 0, 0}}, history: "^hAFf", state: "SF", flipped: true},
		{name: "syn-ack then its own ack", steps: []zkStep{{'s', SA, 5000, 1001, 0, 0}, {'s', A, 5001, 1001, 0, 0},
			{'s', FA, 5001, 1001, 0, 0}}, history: "^haf", state: "SHR", flipped: true},
		{name: "syn-ack then rst (scan)", steps: []zkStep{{'s', SA, 5000, 1001, 0, 0}, {'c', R, 1001, 0, 0, 0}},
			history: "Hr", state: "REJ"},
		// The SYN-ACK overtook the SYN: Zeek flips when the SYN arrives
		// and appends the '^' then.
		{name: "reordered handshake", steps: []zkStep{{'s', SA, 5000, 1001, 0, 0}, {'c', S, 1000, 0, 0, 0},
			{'c', A, 1001, 5001, 0, 0}, {'c', FA, 1001, 5001, 0, 0}, {'s', FA, 5001, 1002, 0, 0}},
			history: "Hs^AFf", state: "SF", flipped: true},
		{name: "midstream", steps: []zkStep{{'c', PA, 1000, 5000, 10, 0}, {'s', PA, 5000, 1010, 20, 0}},
			history: "Dd", state: "OTH"},
		{name: "midstream closed", steps: []zkStep{{'c', PA, 1000, 5000, 10, 0}, {'s', A, 5000, 1010, 0, 0},
			{'c', FA, 1010, 5000, 0, 0}, {'s', FA, 5000, 1011, 0, 0}, {'c', A, 1011, 5001, 0, 0}},
			history: "DaFfA", state: "SF"},
		// Data from a likely server port: its receiver is the originator.
		{name: "midstream from server port", srv: zkWeb, steps: []zkStep{{'s', PA, 5000, 1000, 10, 0}},
			history: "^d", state: "OTH", flipped: true},
		{name: "retransmission", steps: with(zkStep{'c', PA, 1001, 5001, 100, 0}, zkStep{'c', PA, 1001, 5001, 100, 0},
			zkStep{'s', A, 5001, 1101, 0, 0}), history: "ShADTa", state: "S1"},
		{name: "fin retransmitted", steps: with(zkStep{'c', FA, 1001, 5001, 0, 0}, zkStep{'c', FA, 1001, 5001, 0, 0}),
			history: "ShAF", state: "S2"},
		{name: "fin at a new sequence number", steps: with(zkStep{'c', FA, 1001, 5001, 0, 0}, zkStep{'c', FA, 1051, 5001, 0, 0}),
			history: "ShAFF", state: "S2"},
		{name: "rst repeated and moved", steps: with(zkStep{'s', R, 5001, 0, 0, 0}, zkStep{'s', R, 5001, 0, 0, 0},
			zkStep{'s', R, 5100, 0, 0, 0}), history: "ShArr", state: "RSTR"},
		{name: "fin and rst", steps: with(zkStep{'c', FIN | RST | ACK, 1001, 5001, 0, 0}), history: "ShAI", state: "RSTO"},
		{name: "syn and fin", steps: []zkStep{{'c', SYN | FIN, 1000, 0, 0, 0}}, history: "Q", state: "SH"},
		{name: "zero window", steps: with(zkStep{'c', PA, 1001, 5001, 100, 0}, zkStep{'s', A, 5001, 1101, 0, 0},
			zkStep{'s', A, 5001, 1101, 0, 0}), zero: map[int]bool{5: true}, history: "ShADaw", state: "S1"},
		{name: "zero window after peer's fin is boring", steps: with(zkStep{'c', FA, 1001, 5001, 0, 0},
			zkStep{'s', A, 5001, 1002, 0, 0}), zero: map[int]bool{4: true}, history: "ShAFa", state: "S2"},
		// The server acknowledges data that the capture missed: a gap.
		{name: "content gap", steps: with(zkStep{'c', PA, 1001, 5001, 100, 0}, zkStep{'s', A, 5001, 1101, 0, 0},
			zkStep{'c', PA, 1201, 5001, 100, 0}, zkStep{'s', A, 5001, 1301, 0, 0}), history: "ShADaG", state: "S1"},
		// Zeek's reassembler never gets a payload that the snapshot length
		// cut short (TCP_Endpoint::DataSent needs caplen >= len), so the
		// server's acknowledgement of it reveals a gap.
		{name: "truncated payload", steps: with(zkStep{'c', PA, 1001, 5001, 100, 0}, zkStep{'s', A, 5001, 1101, 0, 0}),
			snapped: map[int]bool{3: true}, history: "ShADaG", state: "S1"},
		{name: "truncated payload, acknowledged in part", steps: with(zkStep{'c', PA, 1001, 5001, 100, 0},
			zkStep{'c', PA, 1101, 5001, 100, 0}, zkStep{'s', A, 5001, 1101, 0, 0}),
			snapped: map[int]bool{4: true}, history: "ShADa", state: "S1"},
		// Out of order, then filled: no gap, and the late segment counts
		// as a retransmission (it ends below the highest sequence seen).
		{name: "reordered data", steps: with(zkStep{'c', PA, 1101, 5001, 100, 0}, zkStep{'c', PA, 1001, 5001, 100, 0},
			zkStep{'s', A, 5001, 1201, 0, 0}), history: "ShADTa", state: "S1"},
		// Gaps are not reported while an endpoint is partial.
		{name: "no gap without handshake", steps: []zkStep{{'c', PA, 1000, 5000, 10, 0}, {'s', A, 5000, 1100, 0, 0}},
			history: "Da", state: "OTH"},
		// A FIN's sequence number is not a gap.
		{name: "fin acked", steps: with(zkStep{'c', FA, 1001, 5001, 10, 0}, zkStep{'s', A, 5001, 1012, 0, 0}),
			history: "ShAFa", state: "S2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := c.srv
			if !srv.IsValid() {
				srv = zkSrv
			}
			z := zkRun(zkCli, srv, c.steps, c.zero, c.snapped)
			if h, s, f := z.history(), z.connState(), z.flipped(); h != c.history || s != c.state || f != c.flipped {
				t.Errorf("got history %q, conn_state %s, flipped %v; want %q, %s, %v", h, s, f, c.history, c.state, c.flipped)
			}
		})
	}
}

// TestZeekExponential checks the letters Zeek logs at 1, 10, 100, ...
// occurrences: 150 retransmissions give "TTT", 9 zero windows one 'w'.
func TestZeekExponential(t *testing.T) {
	steps := []zkStep{{'c', SYN, 1000, 0, 0, 0}, {'s', SYN | ACK, 5000, 1001, 0, 0}, {'c', ACK, 1001, 5001, 0, 0},
		{'c', PSH | ACK, 1001, 5001, 100, 0}}
	for i := 0; i < 150; i++ {
		steps = append(steps, zkStep{'c', PSH | ACK, 1001, 5001, 100, 0})
	}
	zero := map[int]bool{}
	for i := 0; i < 9; i++ {
		zero[len(steps)] = true
		steps = append(steps, zkStep{'s', ACK, 5001, 1101, 0, 0})
	}
	z := zkRun(zkCli, zkSrv, steps, zero, nil)
	if h := z.history(); h != "ShADTTTaw" {
		t.Errorf("history %q, want ShADTTTaw", h)
	}
	zero[len(steps)] = true
	steps = append(steps, zkStep{'s', ACK, 5001, 1101, 0, 0})
	if h := zkRun(zkCli, zkSrv, steps, zero, nil).history(); h != "ShADTTTaww" {
		t.Errorf("history %q, want ShADTTTaww", h)
	}
}

// TestZeekReuse checks Zeek's port-reuse rule.
func TestZeekReuse(t *testing.T) {
	z := zkRun(zkCli, zkSrv, []zkStep{{'c', SYN, 1000, 0, 0, 0}}, nil, nil)
	p := Packet{Flags: SYN, Seq: 1000}
	if z.reuse(&p, true) {
		t.Error("a retransmitted SYN starts a new connection")
	}
	p.Seq = 7000
	if !z.reuse(&p, true) {
		t.Error("a SYN with a new ISN does not start a new connection")
	}
	p.Flags = ACK
	if z.reuse(&p, true) {
		t.Error("an ACK starts a new connection")
	}
	// Once a side has closed, any SYN starts a new connection.
	z = zkRun(zkCli, zkSrv, []zkStep{{'c', SYN, 1000, 0, 0, 0}, {'s', RST | ACK, 0, 1001, 0, 0}}, nil, nil)
	p = Packet{Flags: SYN, Seq: 1000}
	if !z.reuse(&p, true) {
		t.Error("a SYN after a reset does not start a new connection")
	}
	// The SYN of a handshake whose SYN-ACK came first belongs to it.
	z = zkRun(zkCli, zkSrv, []zkStep{{'s', SYN | ACK, 5000, 1001, 0, 0}}, nil, nil)
	if p.Seq = 1000; z.reuse(&p, false) {
		t.Error("the SYN of a reordered handshake starts a new connection")
	}
}

// TestZeekRandom feeds random segments between two endpoints and checks
// that every outcome is well formed and that observe does not allocate.
func TestZeekRandom(t *testing.T) {
	valid := map[string]bool{"S0": true, "S1": true, "SF": true, "REJ": true, "S2": true, "S3": true, "RSTO": true,
		"RSTR": true, "RSTOS0": true, "RSTRH": true, "SH": true, "SHR": true, "OTH": true}
	letters := regexp.MustCompile(`^[\^SHADFRGTWIQshadfrgtwiq]*$`)
	rng := rand.New(rand.NewPCG(1, 2))
	var pk [2]Packet
	for i, ap := range [][2]netip.AddrPort{{zkCli, zkWeb}, {zkWeb, zkCli}} {
		pk[i].Tuple.SetV4(ap[0].Addr().AsSlice(), ap[1].Addr().AsSlice())
		pk[i].Tuple.SrcPort, pk[i].Tuple.DstPort = ap[0].Port(), ap[1].Port()
	}
	for n := 0; n < 3000; n++ {
		var z zeekConn
		base := [2]uint32{rng.Uint32(), rng.Uint32()}
		for k := rng.IntN(40); k >= 0; k-- {
			d := rng.IntN(2)
			p := &pk[d]
			p.Flags = Flags(rng.IntN(1 << 6))
			p.Seq = base[d] + uint32(rng.IntN(3000))
			p.Ack = base[1-d] + uint32(rng.IntN(3000))
			p.PayloadLen = uint32(rng.IntN(3)) * 500
			p.Window = uint16(rng.IntN(3))
			if allocs := testing.AllocsPerRun(1, func() { z.observe(p, d == 0) }); allocs != 0 {
				t.Fatalf("observe allocates %v times", allocs)
			}
		}
		if h, s := z.history(), z.connState(); !valid[s] || !letters.MatchString(h) || len(h) > zeekMaxHist {
			t.Fatalf("history %q, conn_state %q", h, s)
		}
	}
}

// TestZeekHistoryFull checks that a history longer than zeekMaxHist keeps
// its first letters.
func TestZeekHistoryFull(t *testing.T) {
	steps := []zkStep{{'c', SYN, 1000, 0, 0, 0}, {'s', SYN | ACK, 5000, 1001, 0, 0}, {'c', ACK, 1001, 5001, 0, 0}}
	for i := uint32(0); i < 30; i++ {
		steps = append(steps, zkStep{'s', RST, 5001 + 10*i, 0, 0, 0})
	}
	h := zkRun(zkCli, zkSrv, steps, nil, nil).history()
	if want := "ShA" + strings.Repeat("r", zeekMaxHist-3); h != want {
		t.Errorf("history %q, want %q", h, want)
	}
}

// TestZeekSize keeps the per-connection cost in view: 2 x 24 bytes of
// endpoint state, 4 of states and flags, 16 of history.
func TestZeekSize(t *testing.T) {
	if n := unsafe.Sizeof(zeekConn{}); n > 68 {
		t.Errorf("zeekConn is %d bytes, more than 68", n)
	}
}

// TestZeekStateNames checks that the states print as Zeek names them, in
// Zeek's numbering (the baselines print the numbers).
func TestZeekStateNames(t *testing.T) {
	want := []string{"INACTIVE", "SYN_SENT", "SYN_ACK_SENT", "PARTIAL", "ESTABLISHED", "CLOSED", "RESET"}
	for i, w := range want {
		if s := zeekState(i).String(); s != w {
			t.Errorf("state %d is %q, want %q", i, s, w)
		}
	}
	if s := zeekState(7).String(); s != "UNKNOWN" {
		t.Errorf("state 7 is %q", s)
	}
}

// TestZeekInTableKeepsLongHistory runs a connection whose history is
// longer than the 12 letters a conn keeps in itself, with retransmissions
// counted to the tens ('T' at 1 and 10), through a table, where the rest
// and the counts are in its cold record: its history and conn_state must
// be the standalone emulation's.
func TestZeekInTableKeepsLongHistory(t *testing.T) {
	const S, SA, A, PA, FA = SYN, SYN | ACK, ACK, PSH | ACK, FIN | ACK
	steps := []zkStep{{'c', S, 1000, 0, 0, 0}, {'s', SA, 5000, 1001, 0, 0}, {'c', A, 1001, 5001, 0, 0},
		{'c', PA, 1001, 5001, 100, 0}, {'s', PA, 5001, 1101, 100, 0}}
	for range 10 {
		steps = append(steps, zkStep{'c', PA, 1001, 5101, 100, 0}, zkStep{'s', PA, 5001, 1101, 100, 0})
	}
	steps = append(steps, zkStep{'c', A, 1101, 5101, 0, 0}, zkStep{'s', A, 5101, 1101, 0, 0},
		zkStep{'c', FA, 1101, 5101, 0, 0}, zkStep{'s', FA, 5101, 1102, 0, 0}, zkStep{'c', A, 1102, 5102, 0, 0})
	zeroWin := map[int]bool{len(steps) - 5: true, len(steps) - 4: true}
	want := zkRun(zkCli, zkSrv, steps, zeroWin, nil)
	if h := want.history(); len(h) <= 12 || strings.Count(h, "T") != 2 {
		t.Fatalf("standalone history %q: want more than 12 letters, with two 'T'", h)
	}
	r := zkInTable(steps, zeroWin)
	if r.History() != want.history() || r.ConnState() != want.connState() {
		t.Fatalf("in a table: %s %q, want %s %q", r.ConnState(), r.History(), want.connState(), want.history())
	}
}

// TestZeekInTableZeroWindows runs zero windows from both ends through a
// table, where their counts are in the cold record: after the responder's
// first pure ACK ('a'), Zeek adds 'w' for the
// responder's 1st and 10th zero window and 'W' for the originator's 1st
// (of 5), so "ShAawwW", as the standalone emulation does; a count shared
// by the two ends would give one letter fewer.
func TestZeekInTableZeroWindows(t *testing.T) {
	steps := []zkStep{{'c', SYN, 1000, 0, 0, 0}, {'s', SYN | ACK, 5000, 1001, 0, 0}, {'c', ACK, 1001, 5001, 0, 0}}
	zeroWin := map[int]bool{}
	for range 10 {
		zeroWin[len(steps)] = true
		steps = append(steps, zkStep{'s', ACK, 5001, 1001, 0, 0})
	}
	for range 5 {
		zeroWin[len(steps)] = true
		steps = append(steps, zkStep{'c', ACK, 1001, 5001, 0, 0})
	}
	if h := zkRun(zkCli, zkSrv, steps, zeroWin, nil).history(); h != "ShAawwW" {
		t.Fatalf("standalone history %q, want ShAawwW", h)
	}
	if r := zkInTable(steps, zeroWin); r.History() != "ShAawwW" {
		t.Fatalf("in a table: history %q, want ShAawwW", r.History())
	}
}

// zkInTable applies steps, between zkCli and zkSrv 300 ms apart, to a
// table (zeroWin: the steps sent with a zero window) and returns the
// connection's record.
func zkInTable(steps []zkStep, zeroWin map[int]bool) Record {
	tab := NewTable(Config{})
	for i, s := range steps {
		src, dst := zkCli, zkSrv
		if s.from == 's' {
			src, dst = zkSrv, zkCli
		}
		var p Packet
		p.Tuple.SetV4(src.Addr().AsSlice(), dst.Addr().AsSlice())
		p.Tuple.SrcPort, p.Tuple.DstPort = src.Port(), dst.Port()
		p.Flags, p.Seq, p.Ack, p.PayloadLen, p.Window, p.WScale = s.flags, s.seq, s.ack, s.n, 8192, -1
		if zeroWin[i] {
			p.Window = 0
		}
		p.TS = t0.Add(time.Duration(i) * 300 * time.Millisecond).UnixNano()
		p.FrameLen, p.IPLen = 54+s.n, 40+s.n
		tab.Apply(&p)
	}
	return tab.Flush()[0]
}

// FuzzAppendHistory checks appendHistory, after any prefix, against the
// letter-by-letter mapping of the codes written out independently: the
// codes 1-11 are zeekLetters in upper case (the originator's), 12-22 in
// lower case, 23 the caret; a zero ends the history.
func FuzzAppendHistory(f *testing.F) {
	f.Add([]byte("pre"), []byte{1, 13, 3, 4, 16, 23, 5})
	f.Add([]byte(nil), []byte{})
	f.Add([]byte("x"), []byte{23, 22, 11, 0, 1})
	f.Add([]byte(""), []byte("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x01\x02"))
	const table = "SHADFRGTWIQshadfrgtwiq^"
	f.Fuzz(func(t *testing.T, prefix, raw []byte) {
		var codes [zeekMaxHist]uint8
		var want []byte
		for i, c := range raw[:min(len(raw), zeekMaxHist)] {
			codes[i] = c % uint8(len(table)+1)
			if codes[i] == 0 {
				break
			}
			want = append(want, table[codes[i]-1])
		}
		var z zeekConn
		z.setCodes(&codes)
		got := z.appendHistory(slices.Clip(prefix))
		if string(got[:len(prefix)]) != string(prefix) || string(got[len(prefix):]) != string(want) {
			t.Fatalf("appendHistory(%q) = %q, want %q after the prefix", prefix, got, want)
		}
		if h := z.history(); h != string(want) {
			t.Fatalf("history() = %q, want %q", h, want)
		}
	})
}
