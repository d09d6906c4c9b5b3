package capture

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowtrack/flowtrack/flows"
)

// FuzzFile runs the whole file path on arbitrary bytes: the file is opened
// as a capture (libpcap, or the pcapng fallback), read, decoded and
// tracked. Invariants: no panic; an error or not, every connection tracked
// has valid states, distinct endpoints, and no more packets than frames
// were read.
func FuzzFile(f *testing.F) {
	paths, _ := filepath.Glob("../pcaps/*.pcap*")
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil && len(data) <= 64<<10 {
			f.Add(data)
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "in.pcap")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		src, err := OpenFile(path, "")
		if err != nil {
			return
		}
		defer src.Close()
		table := flows.NewTable(flows.Config{MaxConns: 64})
		var c Counters
		_ = Run(context.Background(), src, NewDecoder(), &c, 10000, table)
		var pkts uint64
		for _, r := range table.Flush() {
			if r.ClientState.String() == "INVALID" || r.ServerState.String() == "INVALID" {
				t.Fatalf("invalid state in %+v", r)
			}
			if r.Client == r.Server {
				t.Fatalf("client and server are both %v", r.Client)
			}
			_, _ = r.ConnState(), r.History()
			pkts += r.C2S.Packets + r.S2C.Packets
		}
		if pkts > c.TCP.Load() {
			t.Fatalf("%d packets in records, %d TCP frames read", pkts, c.TCP.Load())
		}
	})
}
