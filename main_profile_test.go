package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCPUProfile: --cpuprofile writes a pprof CPU profile of the run (a
// gzipped protocol buffer whose string table names its sample types), and
// a path it cannot create is a usage error that names the flag.
func TestCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	code, recs, stderr := flowtrack(t, "-r", "pcaps/ssh-many.pcap", "-o", "json", "--cpuprofile", path)
	if code != 0 || len(recs) != 23 {
		t.Fatalf("exit %d, %d records (want 0, 23): %s", code, len(recs), stderr)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("the profile is not gzipped: %v", err)
	}
	pb, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("the profile's gzip stream: %v", err)
	}
	for _, s := range []string{"samples", "count", "cpu", "nanoseconds"} {
		if !bytes.Contains(pb, []byte(s)) {
			t.Errorf("the profile's strings lack %q: not a CPU profile", s)
		}
	}

	code, _, stderr = flowtrack(t, "-r", "pcaps/ssh-many.pcap", "-o", "json", "--cpuprofile", filepath.Join(t.TempDir(), "no", "such", "dir", "cpu.pprof"))
	if code != 2 || !strings.Contains(stderr, "--cpuprofile") {
		t.Errorf("an uncreatable profile: exit %d (want 2), stderr %q (want it to name --cpuprofile)", code, stderr)
	}
}
