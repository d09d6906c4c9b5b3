package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/flowtrack/flowtrack/internal/oracle"
)

// These tests need no root: they check pair and trim on made-up input, and
// that the committed captures in pcaps/kernel agree with their .ss files.

const kernelDir = "../../pcaps/kernel"

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPair(t *testing.T) {
	dir := t.TempDir()
	cli := writeFile(t, dir, "cli", ""+
		"ESTAB      0 0 10.99.0.1:40001 10.99.0.2:7001\n"+
		"TIME-WAIT  0 0 10.99.0.1:40002 10.99.0.2:7001\n"+
		"ESTAB      0 0 10.99.0.1:40009 10.99.0.2:9999\n") // other port: ignored
	srv := writeFile(t, dir, "srv", ""+
		"LISTEN     0 4096 10.99.0.2:7001 0.0.0.0:*\n"+
		"ESTAB      0 0 10.99.0.2:7001 10.99.0.1:40001\n"+
		"SYN-RECV   0 0 10.99.0.2:7001 10.99.0.1:40003\n"+
		"LAST-ACK   0 1 [fd99::2]:7001 [fd99::1]:40004\n")
	tuples := writeFile(t, dir, "tuples", "10.99.0.1:40005\t10.99.0.2:7001\n10.99.0.1:40001\t10.99.0.2:7001\n")
	var out bytes.Buffer
	pair(&out, cli, srv, tuples+","+filepath.Join(dir, "missing"), 7001, "", 0)
	want := "# client\tserver\tclient_state\tserver_state\n" +
		"10.99.0.1:40001\t10.99.0.2:7001\tESTAB\tESTAB\n" +
		"10.99.0.1:40002\t10.99.0.2:7001\tTIME-WAIT\tCLOSED\n" +
		"10.99.0.1:40003\t10.99.0.2:7001\tCLOSED\tSYN-RECV\n" +
		"10.99.0.1:40005\t10.99.0.2:7001\tCLOSED\tCLOSED\n" +
		"[fd99::1]:40004\t[fd99::2]:7001\tCLOSED\tLAST-ACK\n"
	if out.String() != want {
		t.Errorf("pair:\n%s\nwant:\n%s", out.String(), want)
	}
}

func pcapBytes(stamps ...[2]uint32) []byte {
	var b bytes.Buffer
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr, 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 128)
	binary.LittleEndian.PutUint32(hdr[20:], 1)
	b.Write(hdr)
	for i, s := range stamps {
		rec := make([]byte, 16+3)
		binary.LittleEndian.PutUint32(rec, s[0])
		binary.LittleEndian.PutUint32(rec[4:], s[1])
		binary.LittleEndian.PutUint32(rec[8:], 3)
		binary.LittleEndian.PutUint32(rec[12:], 3)
		copy(rec[16:], []byte{byte(i), byte(i), byte(i)})
		b.Write(rec)
	}
	return b.Bytes()
}

func TestTrimAndCount(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.pcap")
	if err := os.WriteFile(p, pcapBytes([2]uint32{100, 0}, [2]uint32{100, 500000}, [2]uint32{101, 1}), 0o644); err != nil {
		t.Fatal(err)
	}
	until := int64(100)*1e9 + 500000*1000 // exactly the second packet
	if n := readPcap(p).countUntil(until); n != 2 {
		t.Fatalf("countUntil = %d, want 2", n)
	}
	trim(p, until)
	got := readPcap(p)
	if len(got.recs) != 2 || got.recs[1][16] != 1 {
		t.Fatalf("after trim: %d records", len(got.recs))
	}
	if !bytes.Equal(got.header, pcapBytes()[:24]) {
		t.Fatal("trim changed the file header")
	}
}

// ---- the committed captures ----

// readSSFile reads a .ss file of the committed captures.
func readSSFile(t *testing.T, path string) oracle.SS {
	t.Helper()
	s, err := oracle.ReadSS(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.After < 0 {
		t.Errorf("%s: no 'after packet N' comment", path)
	}
	return s
}

func TestCommittedCaptures(t *testing.T) {
	manifest, err := os.ReadFile(filepath.Join(kernelDir, "SCENARIOS.tsv"))
	if err != nil {
		t.Fatalf("no committed captures: %v", err)
	}
	n := 0
	for _, ln := range strings.Split(string(manifest), "\n") {
		if ln == "" || strings.HasPrefix(ln, "#") {
			continue
		}
		fl := strings.Split(ln, "\t")
		if len(fl) != 9 {
			t.Errorf("SCENARIOS.tsv: %q: want 9 fields, got %d", ln, len(fl))
			continue
		}
		n++
		name, port, expect := fl[0], fl[1], fl[5]
		t.Run(name, func(t *testing.T) {
			p := readPcap(filepath.Join(kernelDir, name+".pcap"))
			if lt := binary.LittleEndian.Uint32(p.header[20:]); lt != 1 {
				t.Errorf("link type %d, want 1 (Ethernet)", lt)
			}
			if len(p.recs) == 0 {
				t.Fatal("empty capture")
			}
			seen := map[[2]string]bool{}
			for _, r := range p.recs {
				s, d, ok := frameTuple(r)
				if !ok {
					t.Fatal("a record that is not TCP over IPv4/IPv6 over Ethernet")
				}
				if !strings.HasSuffix(s, ":"+port) && !strings.HasSuffix(d, ":"+port) {
					t.Errorf("packet %s > %s is not on port %s", s, d, port)
				}
				seen[[2]string{s, d}] = true
			}
			check := func(file string, whole bool) []string {
				ss := readSSFile(t, filepath.Join(kernelDir, file))
				if whole && ss.After != len(p.recs) {
					t.Errorf("%s: taken after packet %d, but the capture has %d", file, ss.After, len(p.recs))
				}
				if ss.After > len(p.recs) {
					t.Errorf("%s: after packet %d of %d", file, ss.After, len(p.recs))
				}
				var got []string
				for _, c := range ss.Conns {
					if !strings.HasSuffix(c.Server, ":"+port) {
						t.Errorf("%s: server %s not on port %s", file, c.Server, port)
					}
					if !seen[[2]string{c.Client, c.Server}] && !seen[[2]string{c.Server, c.Client}] {
						t.Errorf("%s: connection %s - %s not in the capture", file, c.Client, c.Server)
					}
					got = append(got, c.ClientState+"/"+c.ServerState)
				}
				return got
			}
			got := check(name+".ss", true)
			if want := expand(expect); strings.Join(sorted(got), " ") != strings.Join(want, " ") {
				// The .ss file is the truth; a different kernel may differ.
				t.Logf("kernel states %v differ from the intended %v", sorted(got), want)
			}
			if _, err := os.Stat(filepath.Join(kernelDir, name+".mid.ss")); err == nil {
				check(name+".mid.ss", false)
			}
		})
	}
	if n == 0 {
		t.Error("SCENARIOS.tsv lists no scenario")
	}
}

// expand turns "ESTAB/ESTAB*5 TIME-WAIT/CLOSED*3" into a sorted list.
func expand(s string) []string {
	var out []string
	for _, f := range strings.Fields(s) {
		k := 1
		if i := strings.LastIndex(f, "*"); i >= 0 {
			k, _ = strconv.Atoi(f[i+1:])
			f = f[:i]
		}
		for ; k > 0; k-- {
			out = append(out, f)
		}
	}
	return sorted(out)
}

func sorted(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}
