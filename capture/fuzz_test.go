package capture

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/flowtrack/flowtrack/flows"
)

// A fuzz input is a sequence of frames, so that the fuzzer can also build
// fragment sequences: each record is link type (2 bytes), extra original
// length beyond the captured bytes (2), captured length (2), then the
// frame. Record i is captured at i*4 seconds, so that the fragment table's
// 30 s expiry is reachable too.

func appendRecord(b []byte, link layers.LinkType, extra uint16, frame []byte) []byte {
	if len(frame) > 0xffff {
		frame = frame[:0xffff]
	}
	b = binary.BigEndian.AppendUint16(b, uint16(link))
	b = binary.BigEndian.AppendUint16(b, extra)
	b = binary.BigEndian.AppendUint16(b, uint16(len(frame)))
	return append(b, frame...)
}

type fuzzFrame struct {
	link layers.LinkType
	ci   gopacket.CaptureInfo
	data []byte
}

func parseRecords(b []byte) []fuzzFrame {
	var out []fuzzFrame
	base := time.Unix(1700000000, 0)
	for len(b) >= 6 {
		link := layers.LinkType(binary.BigEndian.Uint16(b))
		extra := int(binary.BigEndian.Uint16(b[2:]))
		n := min(int(binary.BigEndian.Uint16(b[4:])), len(b)-6)
		data := b[6 : 6+n]
		b = b[6+n:]
		ts := base.Add(time.Duration(len(out)) * 4 * time.Second)
		out = append(out, fuzzFrame{link, gopacket.CaptureInfo{Timestamp: ts, CaptureLength: n, Length: n + extra}, data})
	}
	return out
}

// fuzzLinkTypes are the link types Decode knows, and one it does not.
var fuzzLinkTypes = []layers.LinkType{
	layers.LinkTypeNull, layers.LinkTypeEthernet, layers.LinkTypePPP, 12, 14, linkTypePPPSerial,
	layers.LinkTypePPPEthernet, layers.LinkTypeRaw, layers.LinkTypeLoop, layers.LinkTypeLinuxSLL,
	layers.LinkTypeIPv4, layers.LinkTypeIPv6, layers.LinkTypeLinuxSLL2, 147,
	layers.LinkTypeC_HDLC, layers.LinkTypeIEEE802_11, layers.LinkTypeIEEE80211Radio,
	layers.LinkTypeArcNet, layers.LinkTypeARCNetLinux, linkTypeNFLOG, linkTypeIPoIB,
}

// fuzzSeeds returns, for every bundled capture, its first frames as one
// sequence, each of its first frames alone, and its first two frames as
// every other link type; then the builder's frames and fragment sequences.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, path := range captureFiles(t) {
		src, err := OpenFile(path, "")
		if err != nil {
			continue
		}
		var seq []byte
		for i := 0; i < 64; i++ {
			data, ci, link, err := src.Next()
			if err != nil {
				break
			}
			extra := uint16(min(max(ci.Length-len(data), 0), 0xffff))
			if len(seq) < 16<<10 {
				seq = appendRecord(seq, link, extra, data)
			}
			if i < 12 {
				seeds = append(seeds, appendRecord(nil, link, extra, data))
			}
			if i < 2 {
				// the same bytes as every other link type
				for _, other := range fuzzLinkTypes {
					if other != link {
						seeds = append(seeds, appendRecord(nil, other, extra, data))
					}
				}
			}
		}
		src.Close()
		if len(seq) > 0 {
			seeds = append(seeds, seq)
		}
	}
	for _, f := range benchFrames() {
		seeds = append(seeds, appendRecord(nil, f.link, uint16(min(max(f.wire-len(f.frame), 0), 0xffff)), f.frame))
	}
	payload := tcpSeg{sport: 1, dport: 2, flags: tACK, payload: 780}.bytes()
	var seq []byte
	for _, fr := range frags4(ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, id: 1}, payload, []int{400}) {
		seq = appendRecord(seq, layers.LinkTypeEthernet, 0, fr)
	}
	for _, fr := range frags6(payload, []int{256, 512}, 7) {
		seq = appendRecord(seq, layers.LinkTypeIPv6, 0, fr)
	}
	return append(seeds, seq)
}

// decodeAll decodes a sequence of frames with a fresh decoder.
func decodeAll(t *testing.T, frames []fuzzFrame) ([]Result, []flows.Packet) {
	d := NewDecoder()
	d.letPanicsThrough()
	res := make([]Result, len(frames))
	pkts := make([]flows.Packet, len(frames))
	for i, f := range frames {
		res[i] = d.Decode(f.link, f.data, f.ci, &pkts[i])
		if res[i] != ResultTCP {
			pkts[i] = flows.Packet{}
		}
	}
	d.Flush()
	return res, pkts
}

var v4prefix = [12]byte{10: 0xff, 11: 0xff}

func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		frames := parseRecords(in)
		res, pkts := decodeAll(t, frames)
		for i, r := range res {
			if r > ResultUndecoded {
				t.Fatalf("frame %d: result %d", i, r)
			}
			if r != ResultTCP {
				continue
			}
			p := &pkts[i]
			wire := max(frames[i].ci.Length, len(frames[i].data))
			if p.FrameLen == 0 || int(p.FrameLen) < wire {
				t.Fatalf("frame %d: FrameLen %d below the frame's %d", i, p.FrameLen, wire)
			}
			if p.TS != frames[i].ci.Timestamp.UnixNano() {
				t.Fatalf("frame %d: TS %d", i, p.TS)
			}
			if !p.Tuple.V6 && ([12]byte(p.Tuple.Src[:12]) != v4prefix || [12]byte(p.Tuple.Dst[:12]) != v4prefix) {
				t.Fatalf("frame %d: IPv4 tuple with addresses not v4-mapped: %+v", i, p.Tuple)
			}
			if p.Tuple.VLAN.N > 2 || p.Tuple.VLAN.Outer > 0xfff || p.Tuple.VLAN.Inner > 0xfff ||
				(p.Tuple.VLAN.N < 2 && p.Tuple.VLAN.Inner != 0) || (p.Tuple.VLAN.N == 0 && p.Tuple.VLAN.Outer != 0) {
				t.Fatalf("frame %d: VLAN %+v", i, p.Tuple.VLAN)
			}
			if p.WScale < -1 || p.WScale > 14 || (p.WScale != -1 && !p.Flags.Has(flows.SYN)) {
				t.Fatalf("frame %d: WScale %d with flags %v", i, p.WScale, p.Flags)
			}
			if p.Flags > 0x1ff {
				t.Fatalf("frame %d: flags %#x", i, p.Flags)
			}
			if uint64(p.PayloadLen)+20 > 1<<32-1 {
				t.Fatalf("frame %d: PayloadLen %d", i, p.PayloadLen)
			}
			if p.Snapped && int(p.FrameLen) == wire && frames[i].ci.Length <= len(frames[i].data) {
				t.Fatalf("frame %d: Snapped, but the whole frame was captured", i)
			}
			// The ports and addresses of a packet that is not reassembled
			// are in the frame, in the order of the tuple.
			if int(p.FrameLen) == wire && !containsPorts(frames[i].data, p.Tuple.SrcPort, p.Tuple.DstPort) {
				t.Fatalf("frame %d: ports %d > %d not in the frame", i, p.Tuple.SrcPort, p.Tuple.DstPort)
			}
		}
		// Decoding is deterministic: a fresh decoder gives the same.
		res2, pkts2 := decodeAll(t, frames)
		for i := range res {
			if res[i] != res2[i] || pkts[i] != pkts2[i] {
				t.Fatalf("frame %d decoded twice differently: %v %+v, then %v %+v", i, res[i], pkts[i], res2[i], pkts2[i])
			}
		}
	})
}

func containsPorts(frame []byte, src, dst uint16) bool {
	want := binary.BigEndian.AppendUint32(nil, uint32(src)<<16|uint32(dst))
	for i := 0; i+4 <= len(frame); i++ {
		if [4]byte(frame[i:i+4]) == [4]byte(want) {
			return true
		}
	}
	return false
}
