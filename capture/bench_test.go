package capture

import (
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/flowtrack/flowtrack/capture/peek"
	"github.com/flowtrack/flowtrack/flows"
)

type benchFrame struct {
	name  string
	link  layers.LinkType
	frame []byte
	wire  int // original length, if more than len(frame)
}

func (f benchFrame) ci() gopacket.CaptureInfo {
	info := ci(len(f.frame))
	info.Length = max(f.wire, len(f.frame))
	return info
}

func benchFrames() []benchFrame {
	inner := ipv4{src: "10.1.1.1", dst: "10.2.2.2", proto: 6}.wrap(seg.bytes())
	outer := func(proto byte, payload []byte) []byte {
		return ether(0x0800, ipv4{src: "203.0.113.1", dst: "203.0.113.2", proto: proto}.wrap(payload))
	}
	return []benchFrame{
		{"eth-ipv4-tcp", layers.LinkTypeEthernet, ether(0x0800, v4seg), 0},
		{"eth-ipv4-syn-options", layers.LinkTypeEthernet, ether(0x0800, v4.wrap(syn.bytes())), 0},
		{"qinq-ipv6-tcp", layers.LinkTypeEthernet, etherTagged(0x86dd, v6seg, tag(0x88a8, 1), tag(0x8100, 2)), 0},
		{"sll-ipv4-tcp", layers.LinkTypeLinuxSLL, sll(0x0800, v4seg), 0},
		{"sll2-ipv6-tcp", layers.LinkTypeLinuxSLL2, sll2(0x86dd, v6seg), 0},
		{"null-ipv6-tcp", layers.LinkTypeNull, cat(le32(30), v6seg), 0},
		{"raw-ipv4-tcp", layers.LinkTypeRaw, v4seg, 0},
		{"pppoe-ipv4-tcp", layers.LinkTypeEthernet, ether(0x8864, pppoe(0, cat(be16(0x0021), v4seg))), 0},
		{"ipv6-ext-headers", layers.LinkTypeIPv6, ipv6{src: "2001:db8::1", dst: "2001:db8::2", next: 43}.wrap(
			cat(ext6(60, []byte{1, 0}), ext6(44, make([]byte, 6)), frag6(6, 0, false, 1), seg.bytes())), 0},
		{"gre-ipv4-tcp", layers.LinkTypeEthernet, outer(47, gre(0x0800, true, inner)), 0},
		{"vxlan-ipv4-tcp", layers.LinkTypeEthernet, outer(17, udp(50000, 4789, vxlan(5, ether(0x0800, inner)))), 0},
		{"gtpu-ipv4-tcp", layers.LinkTypeEthernet, outer(17, udp(2152, 2152, gtpu(true, inner))), 0},
		{"mpls-ipv4-tcp", layers.LinkTypeEthernet, ether(0x8847, mpls(2, v4seg)), 0},
		// BIG TCP: a 64 KB+ segment, captured with a 256-byte snapshot
		{"bigtcp-ipv6-jumbo", layers.LinkTypeEthernet, ether(0x86dd, ipv6{src: "2001:db8::1", dst: "2001:db8::2", next: 0, plen: -1}.wrap(
			cat(ext6(6, []byte{0xc2, 4, 0, 1, 0x38, 0x80}), seg.bytes()))), 14 + 40 + 80000},
		{"bigtcp-ipv4-total-0", layers.LinkTypeEthernet, ether(0x0800, ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, total: -1}.wrap(seg.bytes())), 14 + 20 + 80000},
	}
}

// Decoding a TCP frame that is not a fragment allocates nothing, for every
// encapsulation.
func TestDecodeZeroAllocs(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testZeroAllocs(t, newBenchDecoder(false)) })
	t.Run("peek", func(t *testing.T) { testZeroAllocs(t, newBenchDecoder(true)) })
}

func testZeroAllocs(t *testing.T, d *Decoder) {
	var p flows.Packet
	for _, f := range benchFrames() {
		info := f.ci()
		if r := d.Decode(f.link, f.frame, info, &p); r != ResultTCP {
			t.Fatalf("%s: %v", f.name, r)
		}
		if n := testing.AllocsPerRun(200, func() { d.Decode(f.link, f.frame, info, &p) }); n != 0 {
			t.Errorf("%s: %v allocations per Decode, want 0", f.name, n)
		}
	}
	// Non-TCP frames do not allocate either.
	arp := ether(0x0806, make([]byte, 28))
	if n := testing.AllocsPerRun(200, func() { d.Decode(layers.LinkTypeEthernet, arp, ci(len(arp)), &p) }); n != 0 {
		t.Errorf("arp: %v allocations per Decode", n)
	}
}

func BenchmarkDecode(b *testing.B) { benchDecode(b, false) }

// BenchmarkDecodePeek is BenchmarkDecode with a Peeker reading first
// payloads and DNS responses, as flowtrack decodes: the cost per packet
// of naming connections.
func BenchmarkDecodePeek(b *testing.B) { benchDecode(b, true) }

func newBenchDecoder(peeker bool) *Decoder {
	d := NewDecoder()
	if peeker {
		d.SetPeeker(peek.New(peek.Config{}))
	}
	return d
}

func benchDecode(b *testing.B, peeker bool) {
	for _, f := range benchFrames() {
		b.Run(f.name, func(b *testing.B) {
			d := newBenchDecoder(peeker)
			var p flows.Packet
			info := f.ci()
			b.ReportAllocs()
			b.SetBytes(int64(len(f.frame)))
			for b.Loop() {
				if d.Decode(f.link, f.frame, info, &p) != ResultTCP {
					b.Fatal("not TCP")
				}
			}
		})
	}
	b.Run("ipv4-fragment-pair", func(b *testing.B) {
		payload := tcpSeg{sport: 1, dport: 2, flags: tACK, payload: 1380}.bytes()
		fr := frags4(ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, id: 1}, payload, []int{704})
		d := newBenchDecoder(peeker)
		var p flows.Packet
		b.ReportAllocs()
		for b.Loop() {
			d.Decode(layers.LinkTypeEthernet, fr[0], ci(len(fr[0])), &p)
			if d.Decode(layers.LinkTypeEthernet, fr[1], ci(len(fr[1])), &p) != ResultTCP {
				b.Fatal("not TCP")
			}
		}
	})
	for _, name := range []string{"wikipedia", "ssh-many", "zerowin-ooo-http", "tls-google-8conn"} {
		b.Run("file-"+name, func(b *testing.B) {
			benchFile(b, "../pcaps/"+name+".pcap", peeker)
		})
	}
}

// benchFile decodes a capture's frames, read into memory once.
func benchFile(b *testing.B, path string, peeker bool) {
	src, err := OpenFile(path, "")
	if err != nil {
		b.Fatal(err)
	}
	type fr struct {
		link layers.LinkType
		data []byte
	}
	var frames []fr
	var bytes int64
	for {
		data, _, link, err := src.Next()
		if err != nil {
			break
		}
		frames = append(frames, fr{link, append([]byte(nil), data...)})
		bytes += int64(len(data))
	}
	src.Close()
	d := newBenchDecoder(peeker)
	var p flows.Packet
	b.ReportAllocs()
	b.SetBytes(bytes)
	for b.Loop() {
		for _, f := range frames {
			d.Decode(f.link, f.data, ci(len(f.data)), &p)
		}
	}
}
