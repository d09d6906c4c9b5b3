package capture

import (
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/flowtrack/flowtrack/flows"
)

// Each packet's IP TTL (IPv6 hop limit), IPv4 identification and TCP
// timestamp value reach
// flows.Packet, on the hand-written path and through the layers alike: in
// a tunnel the inner packet's TTL (the connection's), for a reassembled
// datagram the completing fragment's. The TTLs below are all different,
// so that a decoder reading the wrong header's fails.
func TestDecodeTTLAndTimestamp(t *testing.T) { //nolint:funlen // a table of cases: data, not steps
	tsOpts := []byte{1, 1, 8, 10, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 9} // NOP NOP TS, as Linux sends it
	sackFirst := []byte{1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 8, 10, 0, 0, 0, 42, 0, 0, 0, 0}
	data := func(opts []byte) []byte {
		return tcpSeg{sport: 40000, dport: 80, seq: 1, ack: 1, flags: tACK, win: 100, opts: opts, payload: 10}.bytes()
	}
	inner := ipv4{src: "10.1.1.1", dst: "10.2.2.2", proto: 6, ttl: 57, id: 0x5151}.wrap(data(tsOpts))
	tunnel := ether(0x0800, ipv4{src: "203.0.113.1", dst: "203.0.113.2", proto: 47, ttl: 200, id: 0xeeee}.wrap(gre(0x0800, false, inner)))
	fr := frags4(ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, id: 9, ttl: 33}, data(tsOpts), []int{16})
	cases := []struct {
		name   string
		link   layers.LinkType
		frames [][]byte
		ttl    uint8
		id     uint16
		hasTS  bool
		tsval  uint32
	}{
		{"fast path ipv4, NOP NOP TS", layers.LinkTypeEthernet, [][]byte{ether(0x0800, ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, ttl: 57, id: 0x1234}.wrap(data(tsOpts)))}, 57, 0x1234, true, 0xdeadbeef},
		{"fast path ipv6 hop limit", layers.LinkTypeEthernet, [][]byte{ether(0x86dd, ipv6{src: "2001:db8::1", dst: "2001:db8::2", next: 6, hops: 250}.wrap(data(nil)))}, 250, 0, false, 0},
		{"raw ipv4 (layers), SACK before TS", layers.LinkTypeRaw, [][]byte{ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, ttl: 3, id: 7}.wrap(data(sackFirst))}, 3, 7, true, 42},
		{"raw ipv6 (layers)", layers.LinkTypeRaw, [][]byte{ipv6{src: "2001:db8::1", dst: "2001:db8::2", next: 6, hops: 1}.wrap(data(tsOpts))}, 1, 0, true, 0xdeadbeef},
		{"syn options (MSS, SACK, TS, NOP, WS)", layers.LinkTypeEthernet, [][]byte{ether(0x0800, v4.wrap(syn.bytes()))}, 64, 0, true, 1},
		{"gre tunnel: the inner TTL and ID", layers.LinkTypeEthernet, [][]byte{tunnel}, 57, 0x5151, true, 0xdeadbeef},
		{"fragments: the completing one's TTL", layers.LinkTypeEthernet, fr, 33, 9, true, 0xdeadbeef},
		{"timestamps option cut short", layers.LinkTypeRaw, [][]byte{ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6}.wrap(data([]byte{1, 1, 1, 8, 10, 0, 0, 0}))}, 64, 0, false, 0},
		{"end of options before TS", layers.LinkTypeRaw, [][]byte{ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6}.wrap(data([]byte{0, 0, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0}))}, 64, 0, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := NewDecoder()
			var p flows.Packet
			var r Result
			for _, f := range c.frames {
				r = d.Decode(c.link, f, ci(len(f)), &p)
			}
			if r != ResultTCP {
				t.Fatalf("Decode = %v", r)
			}
			if p.TTL != c.ttl || p.IPID != c.id || p.HasTS != c.hasTS || p.TSVal != c.tsval {
				t.Errorf("TTL %d, IPID %#x, HasTS %v, TSVal %#x; want %d, %#x, %v, %#x", p.TTL, p.IPID, p.HasTS, p.TSVal, c.ttl, c.id, c.hasTS, c.tsval)
			}
		})
	}
}
