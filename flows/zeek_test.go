package flows

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// Tests of the Zeek emulation: hand-built packet sequences whose conn_state
// and history follow from Zeek's documented semantics, and the real Zeek
// baselines of the bundled captures (../pcaps/baselines).

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
// "first" endpoint. cli and srv are the addresses of 'c' and 's'.
func zkRun(cli, srv netip.AddrPort, steps []zkStep, zeroWin map[int]bool) *zeekConn {
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
		z.observe(&p, s.from == first)
	}
	return z
}

func TestZeekHandBuilt(t *testing.T) {
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
			z := zkRun(zkCli, srv, c.steps, c.zero)
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
	z := zkRun(zkCli, zkSrv, steps, zero)
	if h := z.history(); h != "ShADTTTaw" {
		t.Errorf("history %q, want ShADTTTaw", h)
	}
	zero[len(steps)] = true
	steps = append(steps, zkStep{'s', ACK, 5001, 1101, 0, 0})
	if h := zkRun(zkCli, zkSrv, steps, zero).history(); h != "ShADTTTaww" {
		t.Errorf("history %q, want ShADTTTaww", h)
	}
}

// TestZeekReuse checks Zeek's port-reuse rule.
func TestZeekReuse(t *testing.T) {
	z := zkRun(zkCli, zkSrv, []zkStep{{'c', SYN, 1000, 0, 0, 0}}, nil)
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
	z = zkRun(zkCli, zkSrv, []zkStep{{'c', SYN, 1000, 0, 0, 0}, {'s', RST | ACK, 0, 1001, 0, 0}}, nil)
	p = Packet{Flags: SYN, Seq: 1000}
	if !z.reuse(&p, true) {
		t.Error("a SYN after a reset does not start a new connection")
	}
	// The SYN of a handshake whose SYN-ACK came first belongs to it.
	z = zkRun(zkCli, zkSrv, []zkStep{{'s', SYN | ACK, 5000, 1001, 0, 0}}, nil)
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
	h := zkRun(zkCli, zkSrv, steps, nil).history()
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

// A test-only capture reader: classic pcap and simple pcapng, Ethernet with
// 802.1Q/QinQ tags, PPPoE, IPv4 (with GRE and VXLAN tunnels) and IPv6. It
// yields one Packet per TCP segment.

type zkPacket struct {
	Packet
	truncated bool // payload not fully captured
}

func zkReadCapture(t *testing.T, path string) []zkPacket {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []zkPacket
	add := func(link uint32, ts int64, frame []byte, origLen uint32) {
		if link != 1 { // Ethernet only
			return
		}
		var p zkPacket
		p.TS = ts
		p.FrameLen = origLen
		p.WScale = -1
		if zkEthernet(frame, &p) {
			out = append(out, p)
		}
	}
	if len(data) < 24 {
		t.Fatalf("%s: too short", path)
	}
	if binary.LittleEndian.Uint32(data) == 0x0a0d0d0a {
		zkPcapng(t, data, add)
		return out
	}
	var bo binary.ByteOrder = binary.LittleEndian
	magic := bo.Uint32(data)
	if magic != 0xa1b2c3d4 && magic != 0xa1b23c4d {
		bo = binary.BigEndian
		magic = bo.Uint32(data)
	}
	nano := magic == 0xa1b23c4d
	if magic != 0xa1b2c3d4 && !nano {
		t.Fatalf("%s: not a capture", path)
	}
	link := bo.Uint32(data[20:]) & 0xffff
	for off := 24; off+16 <= len(data); {
		sec, frac := int64(bo.Uint32(data[off:])), int64(bo.Uint32(data[off+4:]))
		caplen, origLen := int(bo.Uint32(data[off+8:])), bo.Uint32(data[off+12:])
		off += 16
		if off+caplen > len(data) {
			break
		}
		if !nano {
			frac *= 1000
		}
		add(link, sec*1e9+frac, data[off:off+caplen], origLen)
		off += caplen
	}
	return out
}

func zkPcapng(t *testing.T, data []byte, add func(link uint32, ts int64, frame []byte, origLen uint32)) {
	var bo binary.ByteOrder = binary.LittleEndian
	type iface struct {
		link uint32
		res  int64 // ticks per second
	}
	var ifs []iface
	for off := 0; off+12 <= len(data); {
		typ := bo.Uint32(data[off:])
		if typ == 0x0a0d0d0a {
			if binary.LittleEndian.Uint32(data[off+8:]) == 0x1a2b3c4d {
				bo = binary.LittleEndian
			} else {
				bo = binary.BigEndian
			}
			ifs = nil
		}
		blen := int(bo.Uint32(data[off+4:]))
		if blen < 12 || off+blen > len(data) {
			t.Fatalf("bad pcapng block at %d", off)
		}
		b := data[off+8 : off+blen-4]
		switch typ {
		case 1: // interface description
			in := iface{link: uint32(bo.Uint16(b)), res: 1e6}
			for o := 8; o+4 <= len(b); {
				code, l := bo.Uint16(b[o:]), int(bo.Uint16(b[o+2:]))
				if code == 0 {
					break
				}
				if code == 9 && l >= 1 { // if_tsresol
					r := b[o+4]
					in.res = 1
					for i := 0; i < int(r&0x7f); i++ {
						if r&0x80 != 0 {
							in.res *= 2
						} else {
							in.res *= 10
						}
					}
				}
				o += 4 + (l+3)&^3
			}
			ifs = append(ifs, in)
		case 6: // enhanced packet
			id := bo.Uint32(b)
			ticks := int64(bo.Uint32(b[4:]))<<32 | int64(bo.Uint32(b[8:]))
			caplen, origLen := int(bo.Uint32(b[12:])), bo.Uint32(b[16:])
			if int(id) < len(ifs) && 20+caplen <= len(b) {
				in := ifs[id]
				ts := ticks / in.res * 1e9
				ts += ticks % in.res * 1e9 / in.res
				add(in.link, ts, b[20:20+caplen], origLen)
			}
		}
		off += blen
	}
}

func zkEthernet(b []byte, p *zkPacket) bool {
	if len(b) < 14 {
		return false
	}
	et := binary.BigEndian.Uint16(b[12:])
	b = b[14:]
	for (et == 0x8100 || et == 0x88a8 || et == 0x9100) && len(b) >= 4 {
		p.Tuple.VLAN.Push(binary.BigEndian.Uint16(b) & 0xfff)
		et = binary.BigEndian.Uint16(b[2:])
		b = b[4:]
	}
	if et == 0x8864 { // PPPoE session
		if len(b) < 8 {
			return false
		}
		switch binary.BigEndian.Uint16(b[6:]) {
		case 0x0021:
			et = 0x0800
		case 0x0057:
			et = 0x86dd
		default:
			return false
		}
		b = b[8:]
	}
	switch et {
	case 0x0800:
		return zkIPv4(b, p)
	case 0x86dd:
		return zkIPv6(b, p)
	}
	return false
}

func zkIPv4(b []byte, p *zkPacket) bool {
	if len(b) < 20 || b[0]>>4 != 4 {
		return false
	}
	ihl := int(b[0]&15) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if binary.BigEndian.Uint16(b[6:])&0x3fff != 0 || ihl < 20 || len(b) < ihl {
		return false // fragments are not needed here
	}
	if total == 0 || total < ihl { // segmentation offload
		total = len(b)
	}
	src, dst := b[12:16], b[16:20]
	proto := b[9]
	pl := b[ihl:]
	avail := total - ihl
	switch proto {
	case 6:
		p.Tuple.VLAN = VLAN{}
		p.Tuple.SetV4(src, dst)
		return zkTCP(pl, avail, p)
	case 47: // GRE
		if len(pl) < 4 {
			return false
		}
		fl, pt := binary.BigEndian.Uint16(pl), binary.BigEndian.Uint16(pl[2:])
		o := 4
		for _, bit := range []uint16{0x8000, 0x2000, 0x1000} {
			if fl&bit != 0 {
				o += 4
			}
		}
		if len(pl) < o {
			return false
		}
		switch pt {
		case 0x0800:
			return zkIPv4(pl[o:], p)
		case 0x86dd:
			return zkIPv6(pl[o:], p)
		case 0x6558:
			return zkEthernet(pl[o:], p)
		}
	case 17: // VXLAN
		if len(pl) >= 16 && binary.BigEndian.Uint16(pl[2:]) == 4789 {
			return zkEthernet(pl[16:], p)
		}
	}
	return false
}

func zkIPv6(b []byte, p *zkPacket) bool {
	if len(b) < 40 || b[0]>>4 != 6 {
		return false
	}
	avail := int(binary.BigEndian.Uint16(b[4:]))
	if avail == 0 {
		avail = len(b) - 40
	}
	src, dst := b[8:24], b[24:40]
	nh := b[6]
	pl := b[40:]
	for {
		switch nh {
		case 0, 43, 60:
			if len(pl) < 8 {
				return false
			}
			l := (int(pl[1]) + 1) * 8
			if len(pl) < l {
				return false
			}
			nh, pl, avail = pl[0], pl[l:], avail-l
			continue
		case 6:
			p.Tuple.VLAN = VLAN{}
			p.Tuple.SetV6(src, dst)
			return zkTCP(pl, avail, p)
		}
		return false
	}
}

// zkTCP fills p from a TCP header. avail is the segment's length according
// to the IP header.
func zkTCP(b []byte, avail int, p *zkPacket) bool {
	if len(b) < 20 {
		return false
	}
	off := int(b[12]>>4) * 4
	if off < 20 || len(b) < off {
		return false
	}
	p.Tuple.SrcPort, p.Tuple.DstPort = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
	p.Seq, p.Ack = binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:])
	p.Flags = Flags(b[13]) | Flags(b[12]&1)<<8
	p.Window = binary.BigEndian.Uint16(b[14:])
	if avail < off {
		avail = off
	}
	p.PayloadLen = uint32(avail - off)
	p.truncated = len(b) < avail
	if p.Flags&SYN != 0 {
		for o := 20; o < off; {
			k := b[o]
			if k == 0 {
				break
			}
			if k == 1 {
				o++
				continue
			}
			if o+1 >= off || b[o+1] < 2 {
				break
			}
			if k == 3 && b[o+1] == 3 && o+2 < off {
				p.WScale = int8(min(b[o+2], 14))
			}
			o += int(b[o+1])
		}
	}
	return true
}

// zkConn is one connection as the harness splits the capture.
type zkConn struct {
	z     zeekConn
	first Tuple // first packet's addressing
	start int64
	last  int64
	pkts  [2]int // sent by the first packet's sender and by its peer
}

func (c *zkConn) orig() (netip.AddrPort, netip.AddrPort) {
	o, r := c.first.SrcAddrPort(), c.first.DstAddrPort()
	if c.z.flipped() {
		o, r = r, o
	}
	return o, r
}

// zkFinished reports whether Zeek would have removed the connection by time
// ts: tcp_close_delay (5 s) after it closed, tcp_attempt_delay (5 s) after
// an unanswered SYN, tcp_inactivity_timeout (5 min) after its last packet.
func (c *zkConn) finished(ts int64) bool {
	const sec = int64(1e9)
	z := &c.z
	o := z.origIdx()
	os, rs := z.state(o), z.state(1-o)
	switch {
	case ts-c.last >= 300*sec:
		return true
	case (os == zeekSynSent || os == zeekSynAckSent) && rs == zeekInactive:
		return ts-c.start > 5*sec
	case os == zeekReset || rs == zeekReset || (z.closed(o) && z.closed(1-o)):
		return ts-c.last > 5*sec
	}
	return false
}

// zkConnections groups a capture's packets into connections the way Zeek's
// default connection key does (addresses and ports, not VLAN tags), starting
// a new connection on Zeek's port-reuse rule and its timeouts.
// With captured, truncated payloads are reported to the emulation as such.
func zkConnections(pkts []zkPacket, captured bool) []*zkConn {
	cur := map[Key]*zkConn{}
	var all []*zkConn
	for i := range pkts {
		p := &pkts[i]
		t := p.Tuple
		t.VLAN = VLAN{}
		k, _ := t.Key()
		c := cur[k]
		fromFirst := c != nil && c.first.Src == t.Src && c.first.SrcPort == t.SrcPort
		if c != nil && (c.finished(p.TS) || c.z.reuse(&p.Packet, fromFirst)) {
			c = nil
		}
		if c == nil {
			c = &zkConn{first: t, start: p.TS}
			cur[k] = c
			all = append(all, c)
			fromFirst = true
		}
		c.last = p.TS
		if fromFirst {
			c.pkts[0]++
		} else {
			c.pkts[1]++
		}
		c.z.observeCaptured(&p.Packet, fromFirst, !captured || !p.truncated)
	}
	return all
}

// zkRow is one connection of a Zeek baseline.
type zkRow struct {
	orig, resp     netip.AddrPort
	history, state string // "" when the baseline does not have the field
	pkts           [2]int // orig_pkts, resp_pkts; -1 when absent
}

// zkConnLog reads the TCP rows of a conn.log baseline (full or zeek-cut).
func zkConnLog(t *testing.T, path string) []zkRow {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fields []string
	var rows []zkRow
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#fields\t"):
			fields = strings.Split(line, "\t")[1:]
			continue
		case strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "ts\t"):
			fields = strings.Split(line, "\t")
			continue
		}
		v := strings.Split(line, "\t")
		get := func(name string) string {
			for i, f := range fields {
				if f == name && i < len(v) {
					return v[i]
				}
			}
			return ""
		}
		if p := get("proto"); p != "" && p != "tcp" {
			continue
		}
		op, _ := strconv.Atoi(get("id.orig_p"))
		rp, _ := strconv.Atoi(get("id.resp_p"))
		pkts := [2]int{-1, -1}
		for i, f := range []string{"orig_pkts", "resp_pkts"} {
			if n, err := strconv.Atoi(get(f)); err == nil {
				pkts[i] = n
			}
		}
		rows = append(rows, zkRow{
			orig:    netip.AddrPortFrom(netip.MustParseAddr(get("id.orig_h")), uint16(op)),
			resp:    netip.AddrPortFrom(netip.MustParseAddr(get("id.resp_h")), uint16(rp)),
			history: get("history"),
			state:   get("conn_state"),
			pkts:    pkts,
		})
	}
	if fields == nil {
		t.Fatalf("%s: no header", path)
	}
	return rows
}

// zkDeviation is a documented difference between this emulation and Zeek
// for one baseline connection: the test compares the two after erasing the
// listed history letters from both, so everything else must still agree.
type zkDeviation struct {
	erase string // history letters to ignore
	why   string
}

// zkKnown lists the baseline connections that do not match exactly, by
// capture and originator.
var zkKnown = map[string]zkDeviation{
	// Zeek: ShADaGdgtR. Every payload in rtx-fast-sack.pcap is cut short
	// by its 68-byte snapshot length, and Zeek's reassembler never gets
	// truncated payloads (TCP_Endpoint::DataSent needs caplen >= len), so
	// the peer's ACKs reveal content gaps (missed_bytes is all 24257 bytes
	// of payload). flows.Packet has no captured length, so the emulation
	// cannot tell a truncated segment from a whole one: ours is ShADadtR.
	"rtx-fast-sack.pcap 10.0.88.85:50368": {erase: "Gg", why: "gaps from snapshot truncation"},
}

// zkRegexpAddr finds "orig_h=..., orig_p=N/tcp, resp_h=..., resp_p=N/tcp".
var zkRegexpAddr = regexp.MustCompile(`orig_h=([^,]+), orig_p=(\d+)/tcp, resp_h=([^,]+), resp_p=(\d+)/tcp`)

func zkIDs(m []string) (netip.AddrPort, netip.AddrPort) {
	op, _ := strconv.Atoi(m[2])
	rp, _ := strconv.Atoi(m[4])
	return netip.AddrPortFrom(netip.MustParseAddr(m[1]), uint16(op)), netip.AddrPortFrom(netip.MustParseAddr(m[3]), uint16(rp))
}

// TestZeekBaselines compares the emulation with Zeek's own output for the
// bundled captures.
func TestZeekBaselines(t *testing.T) {
	dir := filepath.Join("..", "pcaps")
	base := filepath.Join(dir, "baselines")
	type job struct {
		capture string
		rows    func(t *testing.T) []zkRow
		all     bool // the baseline lists every TCP connection
	}
	connLog := func(name string) func(t *testing.T) []zkRow {
		return func(t *testing.T) []zkRow { return zkConnLog(t, filepath.Join(base, name)) }
	}
	// stateLine reads "HISTORY, CONN_STATE" baselines of single-connection
	// captures; the originator is whatever the capture's connection has.
	stateLine := func(name string) func(t *testing.T) []zkRow {
		return func(t *testing.T) []zkRow {
			b, err := os.ReadFile(filepath.Join(base, name))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(string(b), "\n") {
				if h, s, ok := strings.Cut(l, ", "); ok && !strings.HasPrefix(l, "#") {
					return []zkRow{{history: h, state: s, pkts: [2]int{-1, -1}}}
				}
			}
			t.Fatalf("%s: no state line", name)
			return nil
		}
	}
	// removeLine reads the connection ids (and the history, if any) that a
	// script printed in connection_state_remove.
	removeLine := func(name, prefix string) func(t *testing.T) []zkRow {
		return func(t *testing.T) []zkRow {
			b, err := os.ReadFile(filepath.Join(base, name))
			if err != nil {
				t.Fatal(err)
			}
			var rows []zkRow
			for _, l := range strings.Split(string(b), "\n") {
				if !strings.HasPrefix(l, prefix) {
					continue
				}
				m := zkRegexpAddr.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("%s: cannot parse %q", name, l)
				}
				r := zkRow{pkts: [2]int{-1, -1}}
				r.orig, r.resp = zkIDs(m)
				if i := strings.LastIndex(l, "], "); i >= 0 {
					r.history = l[i+3:]
				}
				rows = append(rows, r)
			}
			return rows
		}
	}
	jobs := []job{
		{"eth-http-get.pcap", connLog("eth-http-get.zeek-conn.log"), true},
		{"wikipedia.pcap", connLog("wikipedia.zeek-conn.log"), true},
		{"ssh-many.pcap", connLog("ssh-many.zeek-conn.log"), true},
		{"rtx-fast-sack.pcap", connLog("rtx-fast-sack.zeek-conn.log"), true},
		{"ooo-dup-nosyn.pcap", connLog("ooo-dup-nosyn.zeek-conn.log"), true},
		{"midstream-missing-syn.pcap", connLog("midstream-missing-syn.zeek-conn.log"), true},
		{"midstream-one-sided.pcap", connLog("midstream-one-sided.zeek-conn.log"), true},
		{"midstream-flip.pcapng", connLog("midstream-flip.zeek-conn.log"), true},
		{"vlan-collisions.pcap", connLog("vlan-collisions.zeek-conn-default.log"), true},
		{"rtx-timeout-split.pcapng", connLog("rtx-timeout-split.zeek-conn.log"), true},
		{"gre-ssh.pcap", connLog("gre-ssh.zeek-conn.log"), true},
		{"vxlan-http.pcap", connLog("vxlan-http.zeek-conn.log"), true},
		{"pppoe-qinq-tls.pcap", connLog("pppoe-qinq-tls.zeek-conn.log"), true},
		{"rst-only.pcap", stateLine("rst-only.zeek-state.txt"), true},
		{"rst-after-syn.pcap", stateLine("rst-after-syn.zeek-state.txt"), true},
		{"rst-after-syn-ack.pcap", stateLine("rst-after-syn-ack.zeek-state.txt"), true},
		{"rst-after-syn-fin.pcap", stateLine("rst-after-syn-fin.zeek-state.txt"), true},
		{"handshake-reorder.pcap", removeLine("handshake-reorder.zeek-out.txt", "connection_state_remove"), true},
		{"rtx-ssh-dups.pcap", removeLine("rtx-ssh-dups.zeek-out.txt", "REMOVE:"), true},
	}
	// "observe" is what the table gets (Packet has no captured length);
	// "captured" also tells the emulation which payloads the snapshot
	// length cut short, and must match Zeek everywhere.
	for _, captured := range []bool{false, true} {
		mode := "observe"
		if captured {
			mode = "captured"
		}
		for _, j := range jobs {
			t.Run(mode+"/"+j.capture, func(t *testing.T) {
				conns := zkConnections(zkReadCapture(t, filepath.Join(dir, j.capture)), captured)
				zkCompare(t, j.capture, conns, j.rows(t), j.all, !captured)
			})
		}
	}
}

// zkCompare matches Zeek's rows with our connections by originator and
// responder and compares them. With deviations, the differences listed in
// zkKnown are allowed.
func zkCompare(t *testing.T, capture string, conns []*zkConn, rows []zkRow, all, deviations bool) {
	if all && len(rows) != len(conns) {
		for _, c := range conns {
			o, r := c.orig()
			t.Logf("ours: %v -> %v %s %s", o, r, c.z.history(), c.z.connState())
		}
		t.Errorf("%d connections, Zeek has %d", len(conns), len(rows))
	}
	used := make([]bool, len(conns))
	for _, row := range rows {
		var c *zkConn
		for i, cc := range conns {
			o, r := cc.orig()
			single := !row.orig.IsValid() && len(conns) == 1
			if !used[i] && (single || (o == row.orig && r == row.resp)) {
				c, used[i] = cc, true
				break
			}
		}
		if c == nil {
			t.Errorf("Zeek's connection %v -> %v (%s %s) not found with these roles", row.orig, row.resp, row.history, row.state)
			continue
		}
		o, _ := c.orig()
		pkts := c.pkts
		if c.z.flipped() {
			pkts[0], pkts[1] = pkts[1], pkts[0]
		}
		for i, n := range row.pkts {
			if n >= 0 && n != pkts[i] {
				t.Errorf("%v: ours %d+%d packets, Zeek %d+%d", o, pkts[0], pkts[1], row.pkts[0], row.pkts[1])
				break
			}
		}
		h, s := c.z.history(), c.z.connState()
		zh := row.history
		dev, known := zkKnown[capture+" "+o.String()]
		known = known && deviations
		if known {
			h, zh = zkErase(h, dev.erase), zkErase(zh, dev.erase)
		}
		switch {
		case (row.history != "" && h != zh) || (row.state != "" && s != row.state):
			t.Errorf("%v: ours %s %s, Zeek %s %s", o, h, s, zh, row.state)
		case known:
			t.Logf("%v: matches Zeek except %q (%s): ours %s, Zeek %s", o, dev.erase, dev.why, c.z.history(), row.history)
		default:
			t.Logf("%v: %s %s, Zeek %q %q", o, h, s, row.history, row.state)
		}
	}
}

func zkErase(s, letters string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(letters, r) {
			return -1
		}
		return r
	}, s)
}

// TestZeekEndpointStates compares the final endpoint states with baselines
// that print Zeek's endpoint records (state 1 SYN_SENT ... 6 RESET).
func TestZeekEndpointStates(t *testing.T) {
	re := regexp.MustCompile(`state=(\d)`)
	for _, name := range []string{"fin-retransmit", "rst-inject"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "pcaps", "baselines", name+zkSuffix(name)))
			if err != nil {
				t.Fatal(err)
			}
			m := re.FindAllStringSubmatch(string(b), -1)
			if len(m) != 2 {
				t.Fatalf("want two endpoint records, found %d", len(m))
			}
			conns := zkConnections(zkReadCapture(t, filepath.Join("..", "pcaps", name+".pcap")), false)
			if len(conns) != 1 {
				t.Fatalf("%d connections", len(conns))
			}
			z := &conns[0].z
			o := z.origIdx()
			got := fmt.Sprintf("%d %d", z.state(o), z.state(1-o))
			if want := m[0][1] + " " + m[1][1]; got != want {
				t.Errorf("states (orig resp) %s, Zeek %s; history %s", got, want, z.history())
			}
		})
	}
}

func zkSuffix(name string) string {
	if name == "rst-inject" {
		return ".zeek-stdout.txt"
	}
	return ".zeek-out.txt"
}
