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
	addCaptureSeeds(f, 64<<10)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		src, ok := openFuzzed(t, dir, data)
		if !ok {
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

// addCaptureSeeds adds the bundled pcap and pcapng files of at most max
// bytes to f's corpus.
func addCaptureSeeds(f *testing.F, max int) {
	paths, _ := filepath.Glob(pcapDir + "/*.pcap*")
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil && len(data) <= max {
			f.Add(data)
		}
	}
}

// openFuzzed writes data to a file in dir and opens it as a capture; false
// if it is refused.
func openFuzzed(t *testing.T, dir string, data []byte) (Source, bool) {
	t.Helper()
	path := filepath.Join(dir, "in.pcap")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := OpenFile(path, "")
	return src, err == nil
}
