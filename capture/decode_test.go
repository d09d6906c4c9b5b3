package capture

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/flowtrack/flowtrack/flows"
)

const (
	tFIN = 0x01
	tSYN = 0x02
	tRST = 0x04
	tPSH = 0x08
	tACK = 0x10
	tNS  = 0x100
)

var (
	seg = tcpSeg{sport: 40000, dport: 80, seq: 1000, ack: 2000, flags: tACK | tPSH, win: 512, payload: 100}
	// a SYN with MSS, SACK permitted, timestamps, NOP and window scale 7
	synOpts = []byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}
	syn     = tcpSeg{sport: 40000, dport: 80, seq: 1000, flags: tSYN, win: 64240, opts: synOpts}

	v4    = ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6}
	v6    = ipv6{src: "2001:db8::1", dst: "2001:db8::2", next: 6}
	v4seg = v4.wrap(seg.bytes())
	v6seg = v6.wrap(seg.bytes())
)

func ci(n int) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, 5), CaptureLength: n, Length: n}
}

type decodeCase struct {
	name    string
	link    layers.LinkType
	frame   []byte
	wire    int // original length; 0: len(frame)
	want    Result
	src     string // "addr:port"; "" skips the tuple check
	dst     string
	vlan    flows.VLAN
	payload uint32
	ipLen   uint32 // the IP packet's length, headers included
	wscale  int8
	flags   flows.Flags
	snapped bool
}

func (c decodeCase) run(t *testing.T, d *Decoder) {
	t.Helper()
	info := ci(len(c.frame))
	if c.wire > 0 {
		info.Length = c.wire
	}
	var p flows.Packet
	got := d.Decode(c.link, c.frame, info, &p)
	if got != c.want {
		t.Fatalf("Decode = %v, want %v", got, c.want)
	}
	if got != ResultTCP {
		return
	}
	if c.src != "" {
		if s := p.Tuple.SrcAddrPort(); s != netip.MustParseAddrPort(c.src) {
			t.Errorf("src %v, want %v", s, c.src)
		}
		if s := p.Tuple.DstAddrPort(); s != netip.MustParseAddrPort(c.dst) {
			t.Errorf("dst %v, want %v", s, c.dst)
		}
		if v6 := netip.MustParseAddrPort(c.src).Addr().Is6(); p.Tuple.V6 != v6 {
			t.Errorf("V6 = %v", p.Tuple.V6)
		}
	}
	if p.Tuple.VLAN != c.vlan {
		t.Errorf("VLAN %+v, want %+v", p.Tuple.VLAN, c.vlan)
	}
	if p.PayloadLen != c.payload {
		t.Errorf("PayloadLen %d, want %d", p.PayloadLen, c.payload)
	}
	if want := uint32(info.Length); p.FrameLen != want {
		t.Errorf("FrameLen %d, want %d", p.FrameLen, want)
	}
	if p.IPLen != c.ipLen {
		t.Errorf("IPLen %d, want %d", p.IPLen, c.ipLen)
	}
	if p.TS != info.Timestamp.UnixNano() {
		t.Errorf("TS %d, want %d", p.TS, info.Timestamp.UnixNano())
	}
	if p.WScale != c.wscale {
		t.Errorf("WScale %d, want %d", p.WScale, c.wscale)
	}
	if c.flags != 0 && p.Flags != c.flags {
		t.Errorf("Flags %v, want %v", p.Flags, c.flags)
	}
	if p.Snapped != c.snapped {
		t.Errorf("Snapped %v, want %v", p.Snapped, c.snapped)
	}
}

// Every link type and tunnel carrying the same TCP segment.
func TestDecodeLinkTypes(t *testing.T) { //nolint:funlen // a table of cases: data, not steps
	const (
		s4 = "192.0.2.1:40000"
		d4 = "198.51.100.2:80"
		s6 = "[2001:db8::1]:40000"
		d6 = "[2001:db8::2]:80"
	)
	inner4 := ipv4{src: "10.1.1.1", dst: "10.2.2.2", proto: 6}.wrap(seg.bytes())
	outer := func(proto byte, payload []byte) []byte {
		return ether(0x0800, ipv4{src: "203.0.113.1", dst: "203.0.113.2", proto: proto}.wrap(payload))
	}
	const si, di = "10.1.1.1:40000", "10.2.2.2:80"
	cases := []decodeCase{
		{name: "ethernet/ipv4", link: layers.LinkTypeEthernet, frame: ether(0x0800, v4seg), src: s4, dst: d4},
		{name: "ethernet/ipv6", link: layers.LinkTypeEthernet, frame: ether(0x86dd, v6seg), src: s6, dst: d6},
		{name: "802.1q", link: layers.LinkTypeEthernet, frame: etherTagged(0x0800, v4seg, tag(0x8100, 42)),
			src: s4, dst: d4, vlan: flows.VLAN{Outer: 42, N: 1}},
		{name: "qinq 8100/8100", link: layers.LinkTypeEthernet, frame: etherTagged(0x0800, v4seg, tag(0x8100, 10), tag(0x8100, 20)),
			src: s4, dst: d4, vlan: flows.VLAN{Outer: 10, Inner: 20, N: 2}},
		{name: "802.1ad 88a8/8100", link: layers.LinkTypeEthernet, frame: etherTagged(0x86dd, v6seg, tag(0x88a8, 100), tag(0x8100, 200)),
			src: s6, dst: d6, vlan: flows.VLAN{Outer: 100, Inner: 200, N: 2}},
		{name: "three tags keep two", link: layers.LinkTypeEthernet, frame: etherTagged(0x0800, v4seg, tag(0x88a8, 1), tag(0x8100, 2), tag(0x8100, 3)),
			src: s4, dst: d4, vlan: flows.VLAN{Outer: 1, Inner: 2, N: 2}},
		{name: "vlan 0 and priority bits", link: layers.LinkTypeEthernet, frame: etherTagged(0x0800, v4seg, tag(0x8100, 0xe000)),
			src: s4, dst: d4, vlan: flows.VLAN{N: 1}},
		{name: "linux sll", link: layers.LinkTypeLinuxSLL, frame: sll(0x0800, v4seg), src: s4, dst: d4},
		{name: "linux sll ipv6", link: layers.LinkTypeLinuxSLL, frame: sll(0x86dd, v6seg), src: s6, dst: d6},
		{name: "linux sll2", link: layers.LinkTypeLinuxSLL2, frame: sll2(0x0800, v4seg), src: s4, dst: d4},
		{name: "linux sll2 ipv6", link: layers.LinkTypeLinuxSLL2, frame: sll2(0x86dd, v6seg), src: s6, dst: d6},
		{name: "null AF_INET little-endian", link: layers.LinkTypeNull, frame: cat(le32(2), v4seg), src: s4, dst: d4},
		{name: "null AF_INET big-endian", link: layers.LinkTypeNull, frame: cat(be32(2), v4seg), src: s4, dst: d4},
		{name: "null AF_INET6 24 (NetBSD/OpenBSD)", link: layers.LinkTypeNull, frame: cat(le32(24), v6seg), src: s6, dst: d6},
		{name: "null AF_INET6 28 (FreeBSD)", link: layers.LinkTypeNull, frame: cat(le32(28), v6seg), src: s6, dst: d6},
		{name: "null AF_INET6 30 (macOS) big-endian", link: layers.LinkTypeNull, frame: cat(be32(30), v6seg), src: s6, dst: d6},
		{name: "null AF_INET6 10 (Linux)", link: layers.LinkTypeNull, frame: cat(le32(10), v6seg), src: s6, dst: d6},
		{name: "loop (108) AF_INET", link: layers.LinkTypeLoop, frame: cat(be32(2), v4seg), src: s4, dst: d4},
		{name: "loop (108) AF_INET6", link: layers.LinkTypeLoop, frame: cat(be32(24), v6seg), src: s6, dst: d6},
		{name: "raw 101 ipv4", link: layers.LinkTypeRaw, frame: v4seg, src: s4, dst: d4},
		{name: "raw 101 ipv6", link: layers.LinkTypeRaw, frame: v6seg, src: s6, dst: d6},
		{name: "raw 12 ipv4", link: 12, frame: v4seg, src: s4, dst: d4},
		{name: "raw 14 ipv6", link: 14, frame: v6seg, src: s6, dst: d6},
		{name: "ipv4 228", link: layers.LinkTypeIPv4, frame: v4seg, src: s4, dst: d4},
		{name: "ipv6 229", link: layers.LinkTypeIPv6, frame: v6seg, src: s6, dst: d6},
		{name: "pppoe ipv4", link: layers.LinkTypeEthernet, frame: ether(0x8864, pppoe(0, cat(be16(0x0021), v4seg))), src: s4, dst: d4},
		{name: "pppoe ipv6", link: layers.LinkTypeEthernet, frame: ether(0x8864, pppoe(0, cat(be16(0x0057), v6seg))), src: s6, dst: d6},
		{name: "pppoe in qinq", link: layers.LinkTypeEthernet, frame: etherTagged(0x8864, pppoe(0, cat(be16(0x0021), v4seg)), tag(0x88a8, 5), tag(0x8100, 6)),
			src: s4, dst: d4, vlan: flows.VLAN{Outer: 5, Inner: 6, N: 2}},
		{name: "ppp (9) with hdlc address", link: layers.LinkTypePPP, frame: cat([]byte{0xff, 0x03}, be16(0x0021), v4seg), src: s4, dst: d4},
		{name: "ppp compressed protocol", link: layers.LinkTypePPP, frame: cat([]byte{0x21}, v4seg), src: s4, dst: d4},
		{name: "mpls two labels", link: layers.LinkTypeEthernet, frame: ether(0x8847, mpls(2, v4seg)), src: s4, dst: d4},
		{name: "gre ipv4", link: layers.LinkTypeEthernet, frame: outer(47, gre(0x0800, false, inner4)), src: si, dst: di},
		{name: "gre with key", link: layers.LinkTypeEthernet, frame: outer(47, gre(0x0800, true, inner4)), src: si, dst: di},
		{name: "gre ethernet (0x6558) with vlan", link: layers.LinkTypeEthernet,
			frame: outer(47, gre(0x6558, false, etherTagged(0x0800, inner4, tag(0x8100, 7)))), src: si, dst: di, vlan: flows.VLAN{Outer: 7, N: 1}},
		{name: "pptp: gre v1 with ppp", link: layers.LinkTypeEthernet,
			frame: outer(47, cat([]byte{0x30, 0x81}, be16(0x880b), be16(uint16(4+len(inner4))), be16(7), be32(1), be32(0), []byte{0xff, 0x03}, be16(0x0021), inner4)),
			src:   si, dst: di},
		{name: "erspan type ii", link: layers.LinkTypeEthernet,
			frame: outer(47, cat([]byte{0x10, 0}, be16(0x88be), be32(1), []byte{0x10, 0x01, 0, 0, 0, 0, 0, 0}, ether(0x0800, inner4))), src: si, dst: di},
		{name: "vxlan", link: layers.LinkTypeEthernet, frame: outer(17, udp(51000, 4789, vxlan(99, ether(0x0800, inner4)))), src: si, dst: di},
		{name: "vxlan keeps outer tag first", link: layers.LinkTypeEthernet,
			frame: etherTagged(0x0800, ipv4{src: "203.0.113.1", dst: "203.0.113.2", proto: 17}.wrap(udp(51000, 4789, vxlan(99, etherTagged(0x0800, inner4, tag(0x8100, 9))))), tag(0x8100, 8)),
			src:   si, dst: di, vlan: flows.VLAN{Outer: 8, Inner: 9, N: 2}},
		{name: "gtp-u", link: layers.LinkTypeEthernet, frame: outer(17, udp(2152, 2152, gtpu(false, inner4))), src: si, dst: di},
		{name: "gtp-u with extension header", link: layers.LinkTypeEthernet, frame: outer(17, udp(2152, 2152, gtpu(true, inner4))), src: si, dst: di},
		{name: "gtp-u over ipv6 carrying ipv6", link: layers.LinkTypeEthernet,
			frame: ether(0x86dd, ipv6{src: "2001:db8:ff::1", dst: "2001:db8:ff::2", next: 17}.wrap(udp(2152, 2152, gtpu(true, v6seg)))), src: s6, dst: d6},
		{name: "ipv4 in ipv4", link: layers.LinkTypeEthernet, frame: outer(4, inner4), src: si, dst: di},
		{name: "ipv6 in ipv4 (6in4)", link: layers.LinkTypeEthernet, frame: outer(41, v6seg), src: s6, dst: d6},
		{name: "ipv4 in ipv6", link: layers.LinkTypeIPv6, frame: ipv6{src: "2001:db8:ff::1", dst: "2001:db8:ff::2", next: 4}.wrap(inner4), src: si, dst: di},
	}
	d := NewDecoder()
	for _, c := range cases {
		if c.want == ResultTCP && c.payload == 0 {
			c.payload = 100
			// The segment's IP packet, inside any tunnel: 20 bytes of
			// TCP header and 100 of payload after an IPv4 or IPv6 header.
			c.ipLen = 20 + 20 + 100
			if netip.MustParseAddrPort(c.src).Addr().Is6() {
				c.ipLen = 40 + 20 + 100
			}
		}
		if c.wscale == 0 {
			c.wscale = -1
		}
		t.Run(c.name, func(t *testing.T) { c.run(t, d) })
	}
}

// Headers and lengths: options, extension headers, truncation, BIG TCP.
func TestDecodeHeaders(t *testing.T) {
	const s4, d4 = "192.0.2.1:40000", "198.51.100.2:80"
	const s6, d6 = "[2001:db8::1]:40000", "[2001:db8::2]:80"
	eth4 := func(h ipv4, s tcpSeg) []byte { return ether(0x0800, h.wrap(s.bytes())) }
	full := ether(0x0800, v4seg)
	hbhJumbo := ext6(6, []byte{0xc2, 4, 0, 1, 0x38, 0x80}) // jumbo length 80000
	cases := []decodeCase{
		{name: "syn window scale", link: layers.LinkTypeEthernet, frame: eth4(v4, syn), src: s4, dst: d4, wscale: 7, flags: flows.SYN, ipLen: 20 + 40},
		{name: "syn-ack window scale 14 cap", link: layers.LinkTypeEthernet,
			frame: eth4(v4, tcpSeg{sport: 80, dport: 40000, flags: tSYN | tACK, opts: []byte{3, 3, 20}}), src: "192.0.2.1:80", dst: "198.51.100.2:40000", wscale: 14, flags: flows.SYN | flows.ACK, ipLen: 20 + 24},
		{name: "syn without window scale", link: layers.LinkTypeEthernet, frame: eth4(v4, tcpSeg{flags: tSYN, opts: []byte{2, 4, 5, 0xb4}}), wscale: -1, ipLen: 20 + 24},
		{name: "window scale ignored without syn", link: layers.LinkTypeEthernet, frame: eth4(v4, tcpSeg{flags: tACK, opts: []byte{3, 3, 7}}), wscale: -1, ipLen: 20 + 24},
		{name: "ns cwr ece flags", link: layers.LinkTypeEthernet, frame: eth4(v4, tcpSeg{flags: tNS | 0xc0 | tACK}), wscale: -1,
			flags: flows.NS | flows.CWR | flows.ECE | flows.ACK, ipLen: 40},
		{name: "fin rst", link: layers.LinkTypeEthernet, frame: eth4(v4, tcpSeg{flags: tFIN | tRST}), wscale: -1, flags: flows.FIN | flows.RST, ipLen: 40},
		{name: "ipv4 options", link: layers.LinkTypeEthernet,
			frame: eth4(ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, opts: []byte{0x94, 4, 0, 0, 1, 1, 1, 0}}, seg), src: s4, dst: d4, payload: 100, ipLen: 28 + 120},
		{name: "ethernet padding not payload", link: layers.LinkTypeEthernet,
			frame: append(eth4(v4, tcpSeg{flags: tACK}), 0, 0, 0, 0, 0, 0), payload: 0, ipLen: 40},
		{name: "snaplen cuts payload", link: layers.LinkTypeEthernet, frame: full[:14+20+20+10], wire: len(full), src: s4, dst: d4, payload: 100, ipLen: 140, snapped: true},
		{name: "snaplen leaves the whole payload", link: layers.LinkTypeEthernet, frame: full, wire: len(full) + 4, src: s4, dst: d4, payload: 100, ipLen: 140},
		{name: "snaplen cuts tcp options", link: layers.LinkTypeEthernet,
			frame: eth4(v4, tcpSeg{flags: tSYN, opts: synOpts, payload: 0})[:14+20+22], wire: 14 + 20 + 40, wscale: -1, flags: flows.SYN, ipLen: 60},
		{name: "snaplen cuts tcp fixed header", link: layers.LinkTypeEthernet, frame: full[:14+20+19], wire: len(full), want: ResultMalformed},
		{name: "snaplen leaves no tcp byte", link: layers.LinkTypeEthernet, frame: full[:14+20], wire: len(full), want: ResultMalformed},
		{name: "tcp data offset below 5", link: layers.LinkTypeEthernet,
			frame: func() []byte { b := eth4(v4, seg); b[14+20+12] = 0x40; return b }(), want: ResultMalformed},
		{name: "tcp header longer than ip payload", link: layers.LinkTypeEthernet,
			frame: eth4(ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, total: 20 + 20}, tcpSeg{opts: []byte{1, 1, 1, 1}}), want: ResultMalformed},
		{name: "ip total length beyond the frame", link: layers.LinkTypeEthernet,
			frame: eth4(ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, total: 1500}, seg), src: s4, dst: d4, payload: 100, ipLen: 140},
		{name: "ipv4 total length 0 (BIG TCP)", link: layers.LinkTypeEthernet,
			frame: eth4(ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, total: -1}, tcpSeg{flags: tACK})[:14+20+20], wire: 14 + 20 + 20 + 80000, payload: 80000, ipLen: 20 + 20 + 80000, snapped: true},
		{name: "ipv6 jumbo payload", link: layers.LinkTypeEthernet,
			frame: ether(0x86dd, ipv6{src: "2001:db8::1", dst: "2001:db8::2", next: 0, plen: -1}.wrap(cat(hbhJumbo, tcpSeg{flags: tACK}.bytes()))),
			wire:  14 + 40 + 80000, payload: 80000 - 8 - 20, ipLen: 40 + 80000, snapped: true},
		{name: "ipv6 hop-by-hop routing destination", link: layers.LinkTypeIPv6,
			frame: ipv6{src: "2001:db8::1", dst: "2001:db8::2", next: 0}.wrap(cat(ext6(43, []byte{1, 0}), ext6(60, make([]byte, 14)), ext6(6, []byte{1, 4, 0, 0, 0, 0}), seg.bytes())),
			src:   s6, dst: d6, payload: 100, ipLen: 40 + 8 + 16 + 8 + 120},
		{name: "ipv6 atomic fragment", link: layers.LinkTypeIPv6,
			frame: ipv6{src: "2001:db8::1", dst: "2001:db8::2", next: 44}.wrap(cat(frag6(6, 0, false, 9), seg.bytes())), src: s6, dst: d6, payload: 100, ipLen: 40 + 8 + 120},
		{name: "ipv6 extension header cut short", link: layers.LinkTypeIPv6,
			frame: ipv6{src: "2001:db8::1", dst: "2001:db8::2", next: 60, plen: 100}.wrap([]byte{6, 8, 0, 0, 0, 0, 0, 0}), wire: 140, want: ResultMalformed},
		{name: "ipsec ah then tcp", link: layers.LinkTypeIPv4,
			frame: ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 51}.wrap(cat([]byte{6, 4, 0, 0}, be32(1), be32(1), make([]byte, 12), seg.bytes())),
			src:   s4, dst: d4, payload: 100, ipLen: 20 + 24 + 120},
		{name: "pppoe length shorter than ip length", link: layers.LinkTypeEthernet,
			frame: func() []byte {
				b := ether(0x8864, pppoe(0, cat(be16(0x0021), ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6}.wrap(tcpSeg{flags: tACK, payload: 6}.bytes()))))
				b[14+4], b[14+5] = 0, 42 // PPPoE says 2+40: the 6 bytes after are padding
				return b
			}(), payload: 0, ipLen: 40},
	}
	d := NewDecoder()
	for _, c := range cases {
		if c.wscale == 0 && c.want == ResultTCP {
			c.wscale = -1
		}
		t.Run(c.name, func(t *testing.T) { c.run(t, d) })
	}
}

func TestDecodeNonTCP(t *testing.T) {
	arp := ether(0x0806, make([]byte, 28))
	dns := ether(0x0800, ipv4{src: "192.0.2.1", dst: "192.0.2.53", proto: 17}.wrap(udp(5353, 53, make([]byte, 30))))
	icmp6 := ether(0x86dd, ipv6{src: "2001:db8::1", dst: "2001:db8::2", next: 58}.wrap(make([]byte, 16)))
	notVXLAN := ether(0x0800, ipv4{src: "192.0.2.1", dst: "192.0.2.2", proto: 17}.wrap(udp(1000, 4789, []byte{1, 2, 3})))
	cases := []decodeCase{
		{name: "arp", link: layers.LinkTypeEthernet, frame: arp, want: ResultNonTCP},
		{name: "udp dns", link: layers.LinkTypeEthernet, frame: dns, want: ResultNonTCP},
		{name: "icmpv6", link: layers.LinkTypeEthernet, frame: icmp6, want: ResultNonTCP},
		{name: "802.3 llc", link: layers.LinkTypeEthernet, frame: ether(40, make([]byte, 40)), want: ResultNonTCP},
		{name: "802.1ad arp", link: layers.LinkTypeEthernet, frame: etherTagged(0x0806, make([]byte, 28), tag(0x88a8, 3)), want: ResultNonTCP},
		{name: "pppoe discovery", link: layers.LinkTypeEthernet, frame: ether(0x8863, pppoe(0x09, make([]byte, 8))), want: ResultNonTCP},
		{name: "ppp lcp", link: layers.LinkTypeEthernet, frame: ether(0x8864, pppoe(0, cat(be16(0xc021), make([]byte, 8)))), want: ResultNonTCP},
		{name: "udp to 4789 that is not vxlan", link: layers.LinkTypeEthernet, frame: notVXLAN, want: ResultNonTCP},
		{name: "vxlan arp", link: layers.LinkTypeEthernet,
			frame: ether(0x0800, ipv4{src: "192.0.2.1", dst: "192.0.2.2", proto: 17}.wrap(udp(1000, 4789, vxlan(1, arp)))), want: ResultNonTCP},
		{name: "icmp fragment not held", link: layers.LinkTypeEthernet,
			frame: ether(0x0800, ipv4{src: "192.0.2.1", dst: "192.0.2.2", proto: 1, flagsOff: 0x2000}.wrap(make([]byte, 64))), want: ResultNonTCP},
		{name: "empty frame", link: layers.LinkTypeEthernet, frame: nil, want: ResultMalformed},
		{name: "short ethernet", link: layers.LinkTypeEthernet, frame: make([]byte, 10), want: ResultMalformed},
		{name: "raw, not ip", link: layers.LinkTypeRaw, frame: []byte{0x50, 1, 2, 3}, want: ResultMalformed},
		{name: "ipv6 in an ipv4 ethertype", link: layers.LinkTypeEthernet, frame: ether(0x0800, v6seg), want: ResultMalformed},
		{name: "ipv4 header length below 5", link: layers.LinkTypeIPv4, frame: func() []byte {
			b := ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6}.wrap(seg.bytes())
			b[0] = 0x44
			return b
		}(), want: ResultMalformed},
	}
	d := NewDecoder()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, d) })
	}
}

// Frames whose contents flowtrack does not decode are ResultUndecoded, and
// Undecoded names what they held; link-layer control protocols, 802.11
// management frames and the like are traffic that is not TCP.
func TestDecodeUndecoded(t *testing.T) {
	ipx := cat(be16(0xffff), be16(30), make([]byte, 26))
	esp := ether(0x0800, ipv4{src: "192.0.2.1", dst: "192.0.2.2", proto: 50}.wrap(make([]byte, 40)))
	rt := []byte{0, 0, 8, 0, 0, 0, 0, 0}
	mac := make([]byte, 18)
	cases := []struct {
		name  string
		link  layers.LinkType
		frame []byte
		want  Result
		encap Encap
	}{
		{"unknown link type", 147, v4seg, ResultUndecoded, Encap{EncapLinkType, 147}},
		{"ipx ethertype", layers.LinkTypeEthernet, ether(0x8137, ipx), ResultUndecoded, Encap{EncapEtherType, 0x8137}},
		{"ipx in llc", layers.LinkTypeEthernet, ether(uint16(3+len(ipx)), cat([]byte{0xe0, 0xe0, 3}, ipx)), ResultUndecoded, Encap{EncapLLC, 0xe0}},
		{"ipx in 802.1q", layers.LinkTypeEthernet, etherTagged(0x8137, ipx, tag(0x8100, 5)), ResultUndecoded, Encap{EncapEtherType, 0x8137}},
		{"esp", layers.LinkTypeEthernet, esp, ResultUndecoded, Encap{EncapIPProto, 50}},
		{"ipx over ppp", layers.LinkTypePPP, cat([]byte{0xff, 3}, be16(0x002b), ipx), ResultUndecoded, Encap{EncapPPP, 0x2b}},
		{"null unknown family", layers.LinkTypeNull, cat(le32(7), v4seg), ResultUndecoded, Encap{EncapFamily, 7}},
		{"802.11 protected", layers.LinkTypeIEEE80211Radio, cat(rt, []byte{0x08, 0x41, 0, 0}, mac, make([]byte, 46)), ResultUndecoded, Encap{Encap80211, dot11Protected}},
		{"802.11 beacon", layers.LinkTypeIEEE80211Radio, cat(rt, []byte{0x80, 0, 0, 0}, mac, make([]byte, 20)), ResultNonTCP, Encap{}},
		{"802.11 null data", layers.LinkTypeIEEE802_11, cat([]byte{0x48, 0x01, 0, 0}, mac, make([]byte, 2)), ResultNonTCP, Encap{}},
		{"c-hdlc slarp", layers.LinkTypeC_HDLC, cat([]byte{0x8f, 0}, be16(0x8035), make([]byte, 18)), ResultNonTCP, Encap{}},
		{"unknown gre protocol", layers.LinkTypeEthernet,
			ether(0x0800, ipv4{src: "192.0.2.1", dst: "192.0.2.2", proto: 47}.wrap(cat(be16(0), be16(0x88b5), make([]byte, 40)))), ResultUndecoded, Encap{EncapEtherType, 0x88b5}},
		{"lldp", layers.LinkTypeEthernet, ether(0x88cc, make([]byte, 40)), ResultNonTCP, Encap{}},
		{"arcnet arp", layers.LinkTypeArcNet, cat([]byte{1, 2, 0xd5, 0}, be16(1), make([]byte, 28)), ResultNonTCP, Encap{}},
	}
	d := NewDecoder()
	var p flows.Packet
	for _, c := range cases {
		r := d.Decode(c.link, c.frame, ci(len(c.frame)), &p)
		if r != c.want || (r == ResultUndecoded && d.Undecoded() != c.encap) {
			t.Errorf("%s: %v %v, want %v %v", c.name, r, d.Undecoded(), c.want, c.encap)
		}
	}
	if got := (Encap{EncapEtherType, 0x8137}).String(); got != "IPX (ethertype 0x8137)" {
		t.Errorf("IPX is named %q", got)
	}
}

// A frame from an endpoint to itself (a LAND attack, or a socket connected
// to itself) has no direction to tell client from server: it is counted as
// malformed, not tracked. A host talking to itself on two ports is fine.
func TestDecodeSelfConnection(t *testing.T) {
	var p flows.Packet
	land := ether(0x0800, ipv4{src: "127.0.0.1", dst: "127.0.0.1", proto: 6}.wrap(tcpSeg{sport: 5000, dport: 5000, flags: tSYN}.bytes()))
	if r := NewDecoder().Decode(layers.LinkTypeEthernet, land, ci(len(land)), &p); r != ResultMalformed {
		t.Errorf("a frame from 127.0.0.1:5000 to itself: %v, want malformed", r)
	}
	frame := ether(0x0800, ipv4{src: "127.0.0.1", dst: "127.0.0.1", proto: 6}.wrap(tcpSeg{sport: 5000, dport: 5001, flags: tSYN}.bytes()))
	decodeCase{link: layers.LinkTypeEthernet, frame: frame, src: "127.0.0.1:5000", dst: "127.0.0.1:5001", wscale: -1, flags: flows.SYN, ipLen: 40}.run(t, NewDecoder())
}

// The same Packet value is reused: every field must be rewritten.
func TestDecodeOverwritesPacket(t *testing.T) {
	d := NewDecoder()
	var p flows.Packet
	tagged := etherTagged(0x86dd, ipv6{src: "2001:db8::1", dst: "2001:db8::2", next: 6}.wrap(syn.bytes()), tag(0x8100, 5), tag(0x8100, 6))
	if r := d.Decode(layers.LinkTypeEthernet, tagged, ci(len(tagged)), &p); r != ResultTCP || !p.HasTS {
		t.Fatal(r, p.HasTS)
	}
	plain := ether(0x0800, v4seg)
	if r := d.Decode(layers.LinkTypeEthernet, plain, ci(len(plain)), &p); r != ResultTCP {
		t.Fatal(r)
	}
	var want flows.Packet
	want.Tuple.SetV4(addr("192.0.2.1"), addr("198.51.100.2"))
	want.Tuple.SrcPort, want.Tuple.DstPort = 40000, 80
	want.TS = ci(0).Timestamp.UnixNano()
	want.Seq, want.Ack, want.PayloadLen, want.FrameLen, want.IPLen = 1000, 2000, 100, uint32(len(plain)), uint32(len(v4seg))
	want.Window, want.WScale, want.Flags = 512, -1, flows.ACK|flows.PSH
	want.TTL = 64 // the SYN before had timestamps: HasTS and TSVal must be cleared
	if p != want {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}
}
