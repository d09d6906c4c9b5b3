package main

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/flowtrack/flowtrack/capture"
	"github.com/flowtrack/flowtrack/export"
	"github.com/flowtrack/flowtrack/flows"
)

// BenchmarkReplay runs the whole headless path on bundled captures: open,
// read, decode, track, and write every record as JSON (to io.Discard). It
// reports ns per packet.
func BenchmarkReplay(b *testing.B) {
	for _, name := range []string{"ssh-many.pcap", "zerowin-ooo-http.pcap", "wikipedia.pcap"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var frames uint64
			for i := 0; i < b.N; i++ {
				src, err := capture.OpenFile(filepath.Join("pcaps", name), "")
				if err != nil {
					b.Fatal(err)
				}
				jw := export.NewJSON(io.Discard)
				table := flows.NewTable(flows.Config{OnRetire: func(r []flows.Record) { _ = jw.Write(r) }})
				var c capture.Counters
				if err := capture.Run(context.Background(), src, capture.NewDecoder(), &c, 0, table); err != nil {
					b.Fatal(err)
				}
				_ = jw.Write(table.Flush())
				src.Close()
				frames = c.Frames.Load()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(uint64(b.N)*frames), "ns/packet")
		})
	}
}
