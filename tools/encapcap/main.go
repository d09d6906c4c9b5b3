// Command encapcap writes the test captures of link types and tunnels that
// could not be recorded here (the test machine's kernel has no Geneve, FOU,
// GRE or VXLAN devices, and no hardware of the other kinds): it takes the
// IP packets of real captures and writes them again inside each
// encapsulation, header by header as its specification lays it out.
//
//	go run ./tools/encapcap -out pcaps pcaps/eth-http-get.pcap pcaps/rawip6-http.pcap
//
// The inputs are read in the order given, each an Ethernet or raw IP
// capture; the packets keep their times, and the two inputs are written
// one after the other. Every frame is cut to 256 bytes, as flowtrack's own
// live captures are, with its original length kept. tshark is the oracle
// for what the files hold (pcaps/oracle), not this program.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// packet is one IP packet of an input, with the Ethernet frame it came in
// (built from the IP packet for a raw IP input).
type packet struct {
	ts    time.Time
	ip    []byte // the whole IP packet
	eth   []byte // an Ethernet frame carrying it
	v6    bool
	wire  int // its IP length on the wire (may exceed len(ip) if the input was cut)
	first bool
}

const snaplen = 256

func main() {
	out := flag.String("out", "pcaps", "directory to write the captures to")
	flag.Parse()
	var pkts []packet
	for _, in := range flag.Args() {
		p, err := read(in)
		if err != nil {
			fmt.Fprintln(os.Stderr, "encapcap:", err)
			os.Exit(1)
		}
		pkts = append(pkts, p...)
	}
	for _, k := range kinds {
		if err := write(filepath.Join(*out, k.file), k, pkts); err != nil {
			fmt.Fprintln(os.Stderr, "encapcap:", err)
			os.Exit(1)
		}
	}
}

func read(path string) ([]packet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []packet
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		var ip []byte
		switch r.LinkType() {
		case layers.LinkTypeEthernet:
			if len(data) < 14 {
				continue
			}
			ip = data[14:]
		case layers.LinkTypeRaw, 12:
			ip = data
		default:
			return nil, fmt.Errorf("%s: link type %v: want Ethernet or raw IP", path, r.LinkType())
		}
		if len(ip) < 20 {
			continue
		}
		p := packet{ts: ci.Timestamp, ip: ip, v6: ip[0]>>4 == 6, first: len(out) == 0}
		p.wire = ci.Length - (len(data) - len(ip))
		et := uint16(0x0800)
		if p.v6 {
			et = 0x86dd
		}
		p.eth = ether(macA, macB, et, ip)
		if r.LinkType() == layers.LinkTypeEthernet {
			p.eth = data
		}
		out = append(out, p)
	}
}

var (
	macA = []byte{0x02, 0, 0x5e, 0x10, 0, 1}
	macB = []byte{0x02, 0, 0x5e, 0x10, 0, 2}
	macC = []byte{0x02, 0, 0x5e, 0x10, 0, 3}
	macD = []byte{0x02, 0, 0x5e, 0x10, 0, 4}
	ipA  = []byte{192, 0, 2, 1} // tunnel endpoints (documentation addresses)
	ipB  = []byte{192, 0, 2, 2}
)

// kind is one capture to write: its link type and how each packet is
// wrapped (extra frames, not TCP, may be added by extra).
type kind struct {
	file  string
	link  layers.LinkType
	wrap  func(p packet, i int) []byte
	extra func(ts time.Time) [][]byte // frames written before the first packet
}

func write(path string, k kind, pkts []packet) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	cut := snaplen
	if k.link == 239 {
		cut = 1 << 16 // tcpdump -i nflog takes whole packets; tshark misreads NFLOG cut short
	}
	// The header says the records' real limit: libpcap cuts a record longer
	// than the file's snapshot length.
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(uint32(cut), k.link); err != nil {
		f.Close()
		return err
	}
	put := func(ts time.Time, frame []byte, wire int) error {
		ci := gopacket.CaptureInfo{Timestamp: ts, Length: wire, CaptureLength: min(len(frame), cut)}
		return w.WritePacket(ci, frame[:ci.CaptureLength])
	}
	if k.extra != nil && len(pkts) > 0 {
		for _, fr := range k.extra(pkts[0].ts.Add(-time.Millisecond)) {
			if err := put(pkts[0].ts.Add(-time.Millisecond), fr, len(fr)); err != nil {
				f.Close()
				return err
			}
		}
	}
	for i, p := range pkts {
		fr := k.wrap(p, i)
		if fr == nil {
			continue
		}
		if err := put(p.ts, fr, len(fr)+p.wire-len(p.ip)); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func ether(dst, src []byte, et uint16, payload []byte) []byte {
	return cat(dst, src, be16(et), payload)
}

// ipv4 wraps payload in an IPv4 header from a to b, with a correct
// header checksum; wire is the payload's length on the wire.
func ipv4(a, b []byte, proto uint8, payload []byte, wire int) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+wire))
	h[8], h[9] = 64, proto
	copy(h[12:], a)
	copy(h[16:], b)
	binary.BigEndian.PutUint16(h[10:], checksum(h))
	return cat(h, payload)
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// udp4 is an Ethernet frame carrying payload in UDP over IPv4 between the
// tunnel endpoints, A to B for even packets' direction; the UDP checksum is
// 0 (none), as tunnels over IPv4 send it. extra is the length of inner
// bytes beyond payload that the wire carried.
func udp4(p packet, sport, dport uint16, payload []byte) []byte {
	wire := len(payload) + p.wire - len(p.ip)
	u := cat(be16(sport), be16(dport), be16(uint16(8+wire)), be16(0), payload)
	src, dst, ms, md := ipA, ipB, macA, macB
	if fromServer(p) {
		src, dst, ms, md = ipB, ipA, macB, macA
	}
	return ether(md, ms, 0x0800, ipv4(src, dst, 17, u, 8+wire))
}

// fromServer reports whether the inner packet goes from the server (port
// 80 or 443) to the client.
func fromServer(p packet) bool {
	off := 40
	if !p.v6 {
		off = int(p.ip[0]&0x0f) * 4
	}
	if len(p.ip) < off+2 {
		return false
	}
	sp := binary.BigEndian.Uint16(p.ip[off:])
	return sp == 80 || sp == 443
}

func etherType(p packet) uint16 {
	if p.v6 {
		return 0x86dd
	}
	return 0x0800
}

// llcSNAP is an 802.2 LLC/SNAP header for an Ethernet type (RFC 1042).
func llcSNAP(et uint16) []byte { return cat([]byte{0xaa, 0xaa, 0x03, 0, 0, 0}, be16(et)) }

// dot11Data is an 802.11 data frame header: to the distribution system
// (station to access point) or from it, QoS data on odd calls.
func dot11Data(toDS, qos bool, seq int) []byte {
	fc0 := byte(0x08) // data
	if qos {
		fc0 = 0x88
	}
	fc1 := byte(0x02) // from DS
	a1, a2, a3 := macB, macC, macA
	if toDS {
		fc1 = 0x01
		a1, a2, a3 = macC, macA, macB
	}
	h := cat([]byte{fc0, fc1, 0x2c, 0}, a1, a2, a3, le16(uint16(seq<<4)))
	if qos {
		h = append(h, 0, 0)
	}
	return h
}

var kinds = []kind{
	{file: "nflog-http.pcap", link: 239, wrap: func(p packet, _ int) []byte {
		fam := byte(2)
		if p.v6 {
			fam = 10
		}
		// NFULA_PACKET_HDR (hardware protocol, hook), NFULA_PREFIX, then
		// NFULA_PAYLOAD, in a little-endian host's order.
		hdr := cat(le16(8), le16(1), be16(etherType(p)), []byte{3, 0})
		prefix := cat(le16(4+6), le16(10), []byte("http:\x00"), []byte{0, 0})
		pay := cat(le16(uint16(4+len(p.ip))), le16(9), p.ip)
		for len(pay)%4 != 0 {
			pay = append(pay, 0)
		}
		return cat([]byte{fam, 0}, be16(5), hdr, prefix, pay)
	}},
	{file: "chdlc-http.pcap", link: 104, wrap: func(p packet, _ int) []byte {
		return cat([]byte{0x0f, 0x00}, be16(etherType(p)), p.ip)
	}, extra: func(time.Time) [][]byte {
		// SLARP (keepalive) and CDP: known, not IP
		return [][]byte{
			cat([]byte{0x8f, 0x00}, be16(0x8035), be16(0), be16(2), make([]byte, 14)),
			cat([]byte{0x8f, 0x00}, be16(0x2000), make([]byte, 20)),
		}
	}},
	{file: "ipoib-http.pcap", link: 242, wrap: func(p packet, i int) []byte {
		gid := make([]byte, 40) // tcpdump's IPoIB header: 40 bytes of addresses, then type and reserved
		gid[3], gid[23] = 0x48, 0x49
		gid[19], gid[39] = byte(i), byte(i+1)
		return cat(gid, be16(etherType(p)), be16(0), p.ip)
	}},
	{file: "radiotap-80211-http.pcap", link: 127, wrap: func(p packet, i int) []byte {
		rt := []byte{0, 0, 8, 0, 0, 0, 0, 0} // version 0, length 8, no fields
		return cat(rt, dot11Data(!fromServer(p), i%2 == 1, i), llcSNAP(etherType(p)), p.ip)
	}, extra: func(time.Time) [][]byte {
		rt := []byte{0, 0, 8, 0, 0, 0, 0, 0}
		beacon := cat(rt, []byte{0x80, 0, 0, 0}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, macB, macB, le16(0), make([]byte, 12))
		null := cat(rt, []byte{0x48, 0x01, 0, 0}, macB, macC, macB, le16(16))
		protected := cat(rt, []byte{0x08, 0x41, 0, 0}, macB, macC, macB, le16(32), make([]byte, 8+40))
		return [][]byte{beacon, null, protected}
	}},
	{file: "arcnet-linux-http.pcap", link: 129, wrap: func(p packet, i int) []byte {
		proto := byte(0xd4)
		if p.v6 {
			proto = 0xc4
		}
		src, dst := byte(1), byte(2)
		if fromServer(p) {
			src, dst = 2, 1
		}
		return cat([]byte{src, dst}, be16(0), []byte{proto, 0}, be16(uint16(i)), p.ip)
	}},
	{file: "geneve-http.pcap", link: layers.LinkTypeEthernet, wrap: func(p packet, _ int) []byte {
		// one 8-byte option (class 0x0103, type 0x80), then the Ethernet frame
		g := cat([]byte{0x02, 0x00}, be16(0x6558), []byte{0, 0, 0x2a, 0}, be16(0x0103), []byte{0x80, 0x01}, []byte{1, 2, 3, 4})
		return udp4(p, 49152+uint16(len(p.ip)%1000), 6081, cat(g, p.eth))
	}},
	{file: "gre-udp-http.pcap", link: layers.LinkTypeEthernet, wrap: func(p packet, _ int) []byte {
		return udp4(p, 49152+uint16(len(p.ip)%1000), 4754, cat(be16(0), be16(etherType(p)), p.ip))
	}},
	{file: "teredo-http6.pcap", link: layers.LinkTypeEthernet, wrap: func(p packet, _ int) []byte {
		if !p.v6 {
			return nil
		}
		body := p.ip
		if fromServer(p) { // the relay's packets to the client carry an origin indication
			body = cat([]byte{0, 0}, be16(^uint16(80)), []byte{^ipB[0], ^ipB[1], ^ipB[2], ^ipB[3]}, p.ip)
		}
		return udp4(p, 3544, 3544, body)
	}},
	{file: "ayiya-http.pcap", link: layers.LinkTypeEthernet, wrap: func(p packet, i int) []byte {
		next := byte(4)
		if p.v6 {
			next = 41
		}
		// identity 2^4 = 16 bytes (an IPv6 address), signature 5 words (SHA-1)
		h := cat([]byte{0x41, 0x52, 0x11, next}, binary.BigEndian.AppendUint32(nil, uint32(p.ts.Unix())), make([]byte, 16+20))
		h[8], h[23] = 0x20, byte(i)
		return udp4(p, 5072, 5072, cat(h, p.ip))
	}},
	{file: "aruba-gre-http.pcap", link: layers.LinkTypeEthernet, wrap: func(p packet, i int) []byte {
		inner := cat(dot11Data(!fromServer(p), i%2 == 0, i), llcSNAP(etherType(p)), p.ip)
		g := cat(be16(0), be16(0x8210), inner)
		src, dst := ipA, ipB
		wire := len(g) + p.wire - len(p.ip)
		return ether(macB, macA, 0x0800, ipv4(src, dst, 47, g, wire))
	}},
	{file: "pbb-http.pcap", link: layers.LinkTypeEthernet, wrap: func(p packet, _ int) []byte {
		// B-DA, B-SA, B-tag (802.1ad, VID 100), I-tag (I-SID 0x010203), customer frame
		return cat(macD, macC, be16(0x88a8), be16(100), be16(0x88e7), []byte{0, 1, 2, 3}, p.eth)
	}, extra: func(time.Time) [][]byte {
		return [][]byte{ether(macA, macB, 0x8137, cat(be16(0xffff), be16(30), make([]byte, 26)))} // IPX
	}},
	{file: "vntag-http.pcap", link: layers.LinkTypeEthernet, wrap: func(p packet, i int) []byte {
		return cat(p.eth[:12], be16(0x8926), []byte{0x80, byte(i), 0x00, 0x05}, p.eth[12:])
	}, extra: func(time.Time) [][]byte {
		// IPX in 802.2 LLC, and AppleTalk: named as undecoded
		return [][]byte{
			ether(macA, macB, 36, cat([]byte{0xe0, 0xe0, 0x03}, be16(0xffff), be16(30), make([]byte, 29))),
			ether(macA, macB, 0x809b, make([]byte, 30)),
		}
	}},
	{file: "lsrr-http.pcap", link: layers.LinkTypeEthernet, wrap: lsrr},
}

// lsrr rewrites an IPv4 packet as sent with a loose source route through
// a router (192.0.2.254), and the odd ones as the router forwarded them:
// before the router the header's destination is the router and the route
// holds the final destination; after it the destination is the final one
// and the route records the router. Every fourth packet has a strict route.
func lsrr(p packet, i int) []byte {
	if p.v6 {
		return nil
	}
	hl := int(p.ip[0]&0x0f) * 4
	router := []byte{192, 0, 2, 254}
	final := append([]byte(nil), p.ip[16:20]...)
	typ := byte(0x83)
	if i%4 == 3 {
		typ = 0x89
	}
	opt := cat([]byte{1, typ, 7, 4}, final) // NOP, then the option: length 7, pointer 4
	dst := router
	if i%2 == 1 {
		opt = cat([]byte{1, typ, 7, 8}, router)
		dst = final
	}
	h := append([]byte(nil), p.ip[:hl]...)
	h[0] = byte(4<<4 | (hl+8)/4)
	binary.BigEndian.PutUint16(h[2:], uint16(binary.BigEndian.Uint16(h[2:])+8))
	copy(h[16:], dst)
	h = cat(h, opt)
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:], checksum(h))
	return ether(p.eth[0:6], p.eth[6:12], 0x0800, cat(h, p.ip[hl:]))
}
