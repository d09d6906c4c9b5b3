package flows_test

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowtrack/flowtrack/capture"
	"github.com/flowtrack/flowtrack/flows"
)

// TestFastPathSameAsSlow runs every bundled capture through the table
// twice, with the fast path (header prediction) and without, and compares
// the connection of every packet after it, field for field; and again
// with Zeek's record boundaries (Config.Zeek), and with a bound on the
// connections (Config.MaxConns), under which the fast path keeps the
// eviction lists and marks too: a loose one, and one that evicts.
func TestFastPathSameAsSlow(t *testing.T) {
	var paths []string
	err := filepath.WalkDir("../pcaps", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(d.Name(), ".pcap") {
			paths = append(paths, path)
		}
		return err
	})
	if err != nil || len(paths) < 100 {
		t.Fatalf("%d bundled captures: %v", len(paths), err)
	}
	total, fast := 0, 0
	for _, path := range paths {
		pkts := readTCP(t, path)
		if len(pkts) == 0 {
			continue
		}
		for _, cfg := range []flows.Config{{}, {Zeek: true}, {MaxConns: 1 << 16}, {MaxConns: 64}} {
			took, err := flows.FastSlowDiff(pkts, cfg)
			if err != nil {
				t.Errorf("%s (Zeek's records %v, MaxConns %d): %v", path, cfg.Zeek, cfg.MaxConns, err)
			}
			total += len(pkts)
			for _, f := range took {
				if f {
					fast++
				}
			}
		}
	}
	t.Logf("%d of %d packets took the fast path", fast, total)
	if fast == 0 {
		t.Error("no packet took the fast path")
	}
}

// readTCP returns the TCP segments of a capture as flowtrack decodes them,
// up to its end or the first error reading it (the bundled damaged
// captures have one on purpose); none if it cannot be opened.
func readTCP(t *testing.T, path string) []flows.Packet {
	t.Helper()
	src, err := capture.OpenFile(path, "")
	if err != nil {
		return nil
	}
	defer src.Close()
	d := capture.NewDecoder()
	var out []flows.Packet
	for {
		data, ci, link, err := src.Next()
		if err != nil {
			return out
		}
		var p flows.Packet
		if d.Decode(link, data, ci, &p) == capture.ResultTCP {
			out = append(out, p)
		}
	}
}
