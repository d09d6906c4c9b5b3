package main

import (
	"bytes"
	"debug/elf"
	"os/exec"
	"strings"
	"testing"
)

// TestPcapStaticBuild builds flowtrack as make build does where libpcap's
// static library is installed (the tag pcapstatic), and checks that the
// binary loads no shared library but the C library's, lists the
// interfaces through libpcap (its D-Bus code linked in too), and replays
// a capture through a BPF filter with the same output as a binary that
// loads libpcap.
func TestPcapStaticBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	// The tag pcapstatic needs libpcap.a and libdbus-1.a (Debian's libpcap-dev).
	static, dynamic := buildFlowtrack(t, "pcapstatic"), buildFlowtrack(t)
	f, err := elf.Open(static)
	if err != nil {
		t.Fatal(err)
	}
	libs, err := f.ImportedLibraries()
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range libs {
		if !strings.HasPrefix(l, "libc.so") {
			t.Errorf("the static build loads %s (all: %v)", l, libs)
		}
	}
	if out, err := exec.Command(static, "-D").CombinedOutput(); err != nil || !bytes.Contains(out, []byte(".lo ")) {
		t.Errorf("flowtrack -D: %v\n%s", err, out)
	}
	args := []string{"-r", "pcaps/wikipedia.pcap", "-o", "json", "tcp port 80 and host 208.80.152.2"}
	want, err := exec.Command(dynamic, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dynamic: %v\n%s", err, want)
	}
	got, err := exec.Command(static, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("static: %v\n%s", err, got)
	}
	if !bytes.Equal(got, want) || !bytes.Contains(got, []byte(`"server":"208.80.152.2:80"`)) {
		t.Errorf("static build's replay differs or is empty:\n%s\nwant\n%s", got, want)
	}
}
