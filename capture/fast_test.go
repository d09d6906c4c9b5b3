package capture

import (
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/flowtrack/flowtrack/flows"
	"github.com/gopacket/gopacket/layers"
)

// TestFastPathMatchesLayers decodes every frame of every bundled capture
// twice, with the hand-written fast path and with gopacket's layers only,
// and requires the same result and Packet.
func TestFastPathMatchesLayers(t *testing.T) {
	paths, _ := filepath.Glob(pcapDir + "/*.pcap*")
	kernel, _ := filepath.Glob(pcapDir + "/kernel/*.pcap")
	fastHits := 0
	for _, path := range append(paths, kernel...) {
		src, err := OpenFile(path, "")
		if err != nil {
			continue
		}
		fast, slow := NewDecoder(), NewDecoder()
		slow.slow = true
		for i := 1; ; i++ {
			data, ci, link, err := src.Next()
			if errors.Is(err, io.EOF) || err != nil {
				break
			}
			var pf, ps flows.Packet
			rf := fast.Decode(link, data, ci, &pf)
			rs := slow.Decode(link, data, ci, &ps)
			if rf != rs || pf != ps {
				t.Errorf("%s frame %d: fast %v %+v, layers %v %+v", filepath.Base(path), i, rf, pf, rs, ps)
			}
			var probe flows.Packet
			if link == layers.LinkTypeEthernet && fastOK(data, max(ci.Length, len(data)), 0, &probe) {
				fastHits++
			}
		}
		src.Close()
	}
	if fastHits < 5000 {
		t.Errorf("the fast path took only %d frames", fastHits)
	}
}

// TestFastPathIPv4Options: an IPv4 header of 40 bytes (20 of options) is
// still IPv4.
func TestFastPathIPv4Options(t *testing.T) {
	f := make([]byte, 14+40+20)
	f[12], f[13] = 0x08, 0x00
	ip := f[14:]
	ip[0] = 0x4a // IHL 10
	ip[2], ip[3] = 0, 60
	ip[9] = 6
	copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	tcp := ip[40:]
	tcp[1], tcp[3] = 80, 81
	tcp[12] = 5 << 4
	var p flows.Packet
	if !fastOK(f, len(f), 0, &p) || p.Tuple.V6 || p.Tuple.SrcAddrPort().String() != "10.0.0.1:80" {
		t.Fatalf("got %+v", p.Tuple)
	}
}

func fastOK(data []byte, wire int, ts int64, p *flows.Packet) bool {
	_, ok := fastEthernet(data, wire, ts, p)
	return ok
}
