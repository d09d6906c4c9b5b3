package main

import (
	"io"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/export"
	"github.com/flowtrack/flowtrack/flows"
)

// benchRecords returns the records of n connections made of hand-built
// packets, as a replay's final flush hands them to the output: each a
// handshake, a request and its answer, and a close by FIN from either
// side, from 100 clients to 256 services (as in the bench script's
// 10 M-packet capture), a few milliseconds apart.
func benchRecords(n int, zeek bool) []flows.Record {
	t := flows.NewTable(flows.Config{Zeek: zeek})
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := range n {
		var c, s flows.Tuple
		c.SetV4([]byte{10, 0, 0, byte(i % 100)}, []byte{198, 51, 100, byte(i % 128)})
		c.SrcPort, c.DstPort = uint16(32768+i%28000), uint16(80+363*(i/128%2))
		s.SetV4(c.Dst[12:16], c.Src[12:16])
		s.SrcPort, s.DstPort = c.DstPort, c.SrcPort
		ts := base + int64(i)*3_000_000
		rtt := int64(1_000_000 + i%7*1_500_000)
		cs, ss := uint32(i)*7919, uint32(i)*104729
		// The side that closes first: the client for two connections in
		// three.
		first := i%3 != 0
		ce, se := cs+121, ss+901 // each side's sequence number after its data
		fe, le := ce, se         // the first closer's and the last one's
		if !first {
			fe, le = se, ce
		}
		for _, p := range [...]struct {
			server   bool
			flags    flows.Flags
			seq, ack uint32
			len      uint32
			at       int64
		}{
			{false, flows.SYN, cs, 0, 0, 0},
			{true, flows.SYN | flows.ACK, ss, cs + 1, 0, rtt},
			{false, flows.ACK, cs + 1, ss + 1, 0, rtt + 50_000},
			{false, flows.ACK | flows.PSH, cs + 1, ss + 1, 120, rtt + 90_000},
			{true, flows.ACK | flows.PSH, ss + 1, cs + 121, 900, 2*rtt + 400_000},
			{!first, flows.FIN | flows.ACK, fe, le, 0, 2*rtt + 900_000},
			{first, flows.FIN | flows.ACK, le, fe + 1, 0, 3*rtt + 900_000},
			{!first, flows.ACK, fe + 1, le + 1, 0, 4*rtt + 900_000},
		} {
			pk := flows.Packet{Tuple: c, Seq: p.seq, Ack: p.ack, Flags: p.flags, PayloadLen: p.len,
				TS: ts + p.at, WScale: -1, Window: 64000, TTL: 64}
			if p.server {
				pk.Tuple = s
			}
			pk.IPLen = 52 + pk.PayloadLen
			pk.FrameLen = 14 + pk.IPLen
			t.Apply(&pk)
		}
	}
	return t.Flush()
}

// BenchmarkOutput writes the records of a replay's connections in each
// output mode that judges them, with a judge that learns from each (as
// a headless run does): the per-record cost of -o json, table and zeek.
func BenchmarkOutput(b *testing.B) {
	for _, mode := range []string{"json", "table", "zeek"} {
		recs := benchRecords(20000, mode == "zeek")
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				judge := newProblemJudge(diag.Config{})
				var s sink
				switch mode {
				case "json":
					jw := export.NewBufferedJSON(io.Discard)
					jw.Problems = judge.problems
					s = jsonSink{jw}
				case "table":
					s = &tableSink{w: io.Discard, judge: judge}
				case "zeek":
					s = zeekSink{export.NewZeekLog(io.Discard, time.Time{})}
				}
				if err := s.end(recs, time.Time{}); err != nil {
					b.Fatal(err)
				}
				if err := s.close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
			b.ReportMetric(0, "ns/op")
		})
	}
}
