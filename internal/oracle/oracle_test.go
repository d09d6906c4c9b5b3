package oracle

import (
	"net/netip"
	"testing"
)

// TestReaders reads the two oracles of wikipedia.pcap: pcaps/MANIFEST.tsv
// says it holds 10 TCP conversations; tshark and Zeek count the same 10,
// with the same packets.
func TestReaders(t *testing.T) {
	streams, err := Streams("../../pcaps/oracle/wikipedia.pcap.streams.tsv")
	if err != nil {
		t.Fatal(err)
	}
	var pkts uint64
	for _, d := range streams {
		pkts += d[0].Packets + d[1].Packets
	}
	if len(streams) != 10 {
		t.Errorf("tshark: %d pairs, want 10", len(streams))
	}
	// The first stream: 141.142.220.118:35634 -> 208.80.152.2:80, 2 and 1
	// packets, 595 and 416 frame bytes, 463 and 350 of payload.
	a, b := netip.MustParseAddrPort("141.142.220.118:35634"), netip.MustParseAddrPort("208.80.152.2:80")
	p, dir := PairOf(b, a)
	if want := (Dir{Packets: 2, FrameBytes: 595, Payload: 463}); dir != 1 || streams[p] == nil || streams[p][0] != want {
		t.Errorf("%v (direction %d): %+v, want %+v from A", p, dir, streams[p], want)
	}
	// Its IP bytes: 567 and 402, as Zeek's conn.log also counts them
	// (orig_ip_bytes, resp_ip_bytes).
	if err := streams.WithIPBytes("../../pcaps/oracle/wikipedia.pcap.iplen.tsv"); err != nil {
		t.Fatal(err)
	}
	if d := streams[p]; d == nil || d[0].IPBytes != 567 || d[1].IPBytes != 402 {
		t.Errorf("%v: IP bytes %+v, want 567 from A and 402 from B", p, d)
	}

	conns, err := ConnLog("../../pcaps/baselines/wikipedia.zeek-conn.log")
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != 10 {
		t.Fatalf("conn.log: %d TCP connections, want 10", len(conns))
	}
	var zeekPkts uint64
	for _, c := range conns {
		zeekPkts += uint64(c.Pkts[0] + c.Pkts[1])
		if !c.HasState || !c.HasHistory || c.State == "" || c.Pkts[0] < 0 || c.Pkts[1] < 0 {
			t.Errorf("%v: state %q history %q packets %v: fields missing", c, c.State, c.History, c.Pkts)
		}
		if pair, _ := PairOf(c.Orig, c.Resp); streams[pair] == nil {
			t.Errorf("%v: not among tshark's streams", c)
		}
	}
	if zeekPkts != pkts || pkts == 0 {
		t.Errorf("%d TCP packets for tshark, %d for Zeek", pkts, zeekPkts)
	}
}

// TestReadSS reads the kernel's truth of a recorded capture: after packet
// 7, both ends ESTABLISHED (pcaps/kernel/established.ss).
func TestReadSS(t *testing.T) {
	s, err := ReadSS("../../pcaps/kernel/established.ss")
	if err != nil {
		t.Fatal(err)
	}
	if s.After != 7 || len(s.Conns) != 1 || s.Conns[0].ClientState != "ESTAB" || s.Conns[0].ServerState != "ESTAB" {
		t.Errorf("%+v", s)
	}
	if n, ok := SSState("SYN-RECV"); !ok || n != "SYN_RECEIVED" {
		t.Errorf("SYN-RECV is %q %v", n, ok)
	}
	if _, ok := SSState("LISTEN"); ok {
		t.Error("LISTEN taken for a connection's state")
	}
}
