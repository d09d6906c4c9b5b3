package capture

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/flowtrack/flowtrack/flows"
)

// frags4 splits an IPv4 datagram's payload at the given byte offsets
// (multiples of 8) into Ethernet frames, optionally VLAN-tagged.
func frags4(h ipv4, payload []byte, cuts []int, tags ...[]byte) [][]byte {
	var out [][]byte
	bounds := append(append([]int{0}, cuts...), len(payload))
	for i := 0; i+1 < len(bounds); i++ {
		f := h
		f.flagsOff = uint16(bounds[i] / 8)
		if i+2 < len(bounds) {
			f.flagsOff |= 0x2000
		}
		out = append(out, etherTagged(0x0800, f.wrap(payload[bounds[i]:bounds[i+1]]), tags...))
	}
	return out
}

// frags6 does the same for IPv6 (raw IPv6 link type), with a fragment
// header after a destination options header in the unfragmentable part.
func frags6(payload []byte, cuts []int, id uint32) [][]byte {
	var out [][]byte
	bounds := append(append([]int{0}, cuts...), len(payload))
	for i := 0; i+1 < len(bounds); i++ {
		more := i+2 < len(bounds)
		out = append(out, ipv6{src: "2001:db8::1", dst: "2001:db8::2", next: 60}.wrap(
			cat(ext6(44, make([]byte, 6)), frag6(6, bounds[i], more, id), payload[bounds[i]:bounds[i+1]])))
	}
	return out
}

type frameIn struct {
	link  layers.LinkType
	data  []byte
	at    time.Duration
	wire  int
	want  Result
	check func(t *testing.T, p *flows.Packet)
}

func feed(t *testing.T, d *Decoder, frames []frameIn) {
	t.Helper()
	base := time.Unix(1700000000, 0)
	for i, f := range frames {
		info := gopacket.CaptureInfo{Timestamp: base.Add(f.at), CaptureLength: len(f.data), Length: len(f.data)}
		if f.wire > 0 {
			info.Length = f.wire
		}
		var p flows.Packet
		if got := d.Decode(f.link, f.data, info, &p); got != f.want {
			t.Fatalf("frame %d: Decode = %v, want %v", i, got, f.want)
		}
		if f.check != nil {
			f.check(t, &p)
		}
	}
}

func TestFragmentsIPv4OutOfOrder(t *testing.T) {
	payload := tcpSeg{sport: 1234, dport: 80, flags: tPSH | tACK, payload: 1480}.bytes() // 1500 bytes
	h := ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, id: 77}
	fr := frags4(h, payload, []int{600, 1200})
	total := len(fr[0]) + len(fr[1]) + len(fr[2])
	d := NewDecoder()
	feed(t, d, []frameIn{
		{link: layers.LinkTypeEthernet, data: fr[1], want: ResultFragmentPending},
		{link: layers.LinkTypeEthernet, data: fr[2], at: time.Second, want: ResultFragmentPending},
		{link: layers.LinkTypeEthernet, data: fr[0], at: 2 * time.Second, want: ResultTCP, check: func(t *testing.T, p *flows.Packet) {
			if p.Tuple.SrcAddrPort() != netip.MustParseAddrPort("192.0.2.1:1234") || p.Tuple.DstPort != 80 {
				t.Errorf("tuple %v -> %v", p.Tuple.SrcAddrPort(), p.Tuple.DstAddrPort())
			}
			if p.PayloadLen != 1480 {
				t.Errorf("PayloadLen %d, want 1480", p.PayloadLen)
			}
			if p.IPLen != 20+1500 {
				t.Errorf("IPLen %d, want the datagram's 1520", p.IPLen)
			}
			if p.FrameLen != uint32(total) {
				t.Errorf("FrameLen %d, want the three frames' %d", p.FrameLen, total)
			}
			if want := time.Unix(1700000002, 0).UnixNano(); p.TS != want {
				t.Errorf("TS %d, want the completing fragment's %d", p.TS, want)
			}
			if p.Flags != flows.PSH|flows.ACK {
				t.Errorf("flags %v", p.Flags)
			}
		}},
	})
	if n := d.Flush(); n != 0 {
		t.Errorf("Flush = %d after the datagram completed", n)
	}
}

func TestFragmentsIPv6(t *testing.T) {
	payload := tcpSeg{sport: 1234, dport: 443, flags: tSYN, opts: []byte{3, 3, 9}, payload: 1000}.bytes()
	fr := frags6(payload, []int{512}, 0xdeadbeef)
	d := NewDecoder()
	feed(t, d, []frameIn{
		{link: layers.LinkTypeIPv6, data: fr[0], want: ResultFragmentPending},
		{link: layers.LinkTypeIPv6, data: fr[1], want: ResultTCP, check: func(t *testing.T, p *flows.Packet) {
			if !p.Tuple.V6 || p.Tuple.DstPort != 443 || p.PayloadLen != 1000 || p.WScale != 9 {
				t.Errorf("got %+v", *p)
			}
			// The IPv6 header, the destination options before the
			// Fragment header, and the 24+1000-byte segment.
			if p.IPLen != 40+8+1024 {
				t.Errorf("IPLen %d, want %d", p.IPLen, 40+8+1024)
			}
			if p.FrameLen != uint32(len(fr[0])+len(fr[1])) {
				t.Errorf("FrameLen %d", p.FrameLen)
			}
		}},
	})
}

// Fragments of the same IP ID on different VLANs are different datagrams;
// a duplicate fragment adds its frame length; overlaps are fine.
func TestFragmentsKeysDuplicatesOverlaps(t *testing.T) {
	payload := tcpSeg{sport: 1, dport: 2, flags: tACK, payload: 780}.bytes() // 800 bytes
	h := ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, id: 5}
	a := frags4(h, payload, []int{400}, tag(0x8100, 10))
	b := frags4(h, payload, []int{400}, tag(0x8100, 11))
	over := frags4(h, payload, []int{200})[1] // bytes 200..800, last fragment
	d := NewDecoder()
	wantVLAN := func(id uint16, frameLen int) func(t *testing.T, p *flows.Packet) {
		return func(t *testing.T, p *flows.Packet) {
			if p.Tuple.VLAN != (flows.VLAN{Outer: id, N: 1}) || p.PayloadLen != 780 || p.FrameLen != uint32(frameLen) {
				t.Errorf("got %+v", *p)
			}
		}
	}
	feed(t, d, []frameIn{
		{link: layers.LinkTypeEthernet, data: a[0], want: ResultFragmentPending},
		{link: layers.LinkTypeEthernet, data: a[0], want: ResultFragmentPending}, // duplicate
		{link: layers.LinkTypeEthernet, data: b[1], want: ResultFragmentPending},
		{link: layers.LinkTypeEthernet, data: a[1], want: ResultTCP, check: wantVLAN(10, 2*len(a[0])+len(a[1]))},
		{link: layers.LinkTypeEthernet, data: b[0], want: ResultTCP, check: wantVLAN(11, len(b[0])+len(b[1]))},
		// untagged: first half, then an overlapping second part
		{link: layers.LinkTypeEthernet, data: frags4(h, payload, []int{400})[0], want: ResultFragmentPending},
		{link: layers.LinkTypeEthernet, data: over, want: ResultTCP},
	})
}

func TestFragmentsExpireAndEvict(t *testing.T) {
	payload := tcpSeg{sport: 1, dport: 2, flags: tACK, payload: 780}.bytes()
	h := ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, id: 1}
	fr := frags4(h, payload, []int{400})
	d := NewDecoder()
	feed(t, d, []frameIn{
		{link: layers.LinkTypeEthernet, data: fr[0], want: ResultFragmentPending},
		// 31 s later the first fragment has expired: the second waits alone
		{link: layers.LinkTypeEthernet, data: fr[1], at: 31 * time.Second, want: ResultFragmentPending},
	})
	if d.unmatched != 1 {
		t.Errorf("unmatched = %d after expiry, want 1", d.unmatched)
	}
	if n := d.Flush(); n != 2 {
		t.Errorf("Flush = %d, want 2 (the expired one and the waiting one)", n)
	}

	// A full table pushes out its oldest datagram.
	d = NewDecoder()
	var frames []frameIn
	for i := 0; i <= fragMaxDatagrams; i++ {
		h.id = uint16(i)
		frames = append(frames, frameIn{link: layers.LinkTypeEthernet, data: frags4(h, payload, []int{400})[0], want: ResultFragmentPending})
	}
	h.id = 0
	frames = append(frames, frameIn{link: layers.LinkTypeEthernet, data: frags4(h, payload, []int{400})[1], want: ResultFragmentPending})
	h.id = fragMaxDatagrams
	frames = append(frames, frameIn{link: layers.LinkTypeEthernet, data: frags4(h, payload, []int{400})[1], want: ResultTCP})
	feed(t, d, frames)
	if d.unmatched != 2 { // datagram 0 evicted by datagram 1024, then datagram 1 by datagram 0's second fragment
		t.Errorf("unmatched = %d, want 2", d.unmatched)
	}
}

func TestFragmentsOddCases(t *testing.T) { //nolint:funlen // a table of cases: data, not steps
	payload := tcpSeg{sport: 1, dport: 2, flags: tACK, payload: 780}.bytes()
	h := ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, id: 3}
	fr := frags4(h, payload, []int{400})
	t.Run("first fragment cut before the tcp header", func(t *testing.T) {
		feed(t, NewDecoder(), []frameIn{
			{link: layers.LinkTypeEthernet, data: fr[0][:14+20+12], wire: len(fr[0]), want: ResultFragmentPending},
			{link: layers.LinkTypeEthernet, data: fr[1], want: ResultMalformed},
		})
	})
	t.Run("a fragment cut by the snapshot length", func(t *testing.T) {
		feed(t, NewDecoder(), []frameIn{
			{link: layers.LinkTypeEthernet, data: fr[0], want: ResultFragmentPending},
			{link: layers.LinkTypeEthernet, data: fr[1][:100], wire: len(fr[1]), want: ResultTCP, check: func(t *testing.T, p *flows.Packet) {
				if !p.Snapped || p.PayloadLen != 780 || p.FrameLen != uint32(len(fr[0])+len(fr[1])) || p.IPLen != 820 {
					t.Errorf("got %+v", *p)
				}
			}},
		})
		feed(t, NewDecoder(), []frameIn{
			{link: layers.LinkTypeEthernet, data: fr[0], want: ResultFragmentPending},
			{link: layers.LinkTypeEthernet, data: fr[1], want: ResultTCP, check: func(t *testing.T, p *flows.Packet) {
				if p.Snapped {
					t.Error("Snapped, with every fragment whole")
				}
			}},
		})
	})
	t.Run("two different ends", func(t *testing.T) {
		d := NewDecoder()
		short := frags4(h, payload[:600], []int{400})[1]
		feed(t, d, []frameIn{
			{link: layers.LinkTypeEthernet, data: fr[1], want: ResultFragmentPending},
			{link: layers.LinkTypeEthernet, data: short, want: ResultFragmentPending},
		})
		if d.unmatched != 2 {
			t.Errorf("unmatched = %d, want 2", d.unmatched)
		}
	})
	t.Run("beyond 64 KiB", func(t *testing.T) {
		big := h
		big.flagsOff = 8190 // offset 65520
		feed(t, NewDecoder(), []frameIn{{link: layers.LinkTypeEthernet, data: ether(0x0800, big.wrap(make([]byte, 64))), want: ResultMalformed}})
	})
	t.Run("fragmented gre tunnel", func(t *testing.T) {
		inner := ipv4{src: "10.0.0.1", dst: "10.0.0.2", proto: 6}.wrap(tcpSeg{sport: 22, dport: 5555, flags: tACK, payload: 900}.bytes())
		outer := ipv4{src: "203.0.113.1", dst: "203.0.113.2", proto: 47, id: 9}
		fr := frags4(outer, gre(0x0800, false, inner), []int{480})
		feed(t, NewDecoder(), []frameIn{
			{link: layers.LinkTypeEthernet, data: fr[0], want: ResultFragmentPending},
			{link: layers.LinkTypeEthernet, data: fr[1], want: ResultTCP, check: func(t *testing.T, p *flows.Packet) {
				// IPLen is the inner packet's, which the outer datagram carries.
				if p.Tuple.SrcAddrPort() != netip.MustParseAddrPort("10.0.0.1:22") || p.PayloadLen != 900 ||
					p.FrameLen != uint32(len(fr[0])+len(fr[1])) || p.IPLen != 940 {
					t.Errorf("got %+v", *p)
				}
			}},
		})
	})
	t.Run("options in the first fragment only", func(t *testing.T) {
		// RFC 791: options not marked for copying are in the first
		// fragment only; the reassembled datagram has its header.
		opts := []byte{0x07, 7, 4, 0, 0, 0, 0, 0} // record route, not copied
		first := ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, id: 8, flagsOff: 0x2000, opts: opts}
		rest := ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, id: 8, flagsOff: 400 / 8}
		f0, f1 := ether(0x0800, first.wrap(payload[:400])), ether(0x0800, rest.wrap(payload[400:]))
		want := func(t *testing.T, p *flows.Packet) {
			if p.PayloadLen != 780 || p.IPLen != 28+800 {
				t.Errorf("PayloadLen %d, IPLen %d; want 780, %d", p.PayloadLen, p.IPLen, 28+800)
			}
		}
		feed(t, NewDecoder(), []frameIn{
			{link: layers.LinkTypeEthernet, data: f0, want: ResultFragmentPending},
			{link: layers.LinkTypeEthernet, data: f1, want: ResultTCP, check: want},
		})
		feed(t, NewDecoder(), []frameIn{
			{link: layers.LinkTypeEthernet, data: f1, want: ResultFragmentPending},
			{link: layers.LinkTypeEthernet, data: f0, want: ResultTCP, check: want},
		})
	})
	t.Run("fragmented udp that is not a tunnel", func(t *testing.T) {
		u := ipv4{src: "192.0.2.1", dst: "192.0.2.53", proto: 17, id: 4}
		fr := frags4(u, udp(5353, 53, make([]byte, 1200)), []int{800})
		feed(t, NewDecoder(), []frameIn{
			{link: layers.LinkTypeEthernet, data: fr[0], want: ResultFragmentPending},
			{link: layers.LinkTypeEthernet, data: fr[1], want: ResultNonTCP},
		})
	})
}
