// Package oracle reads the independent truths that tests compare
// flowtrack with (pcaps/README.md): tshark's per-stream counts of each
// bundled capture (pcaps/oracle) and Zeek's conn.log baselines
// (pcaps/baselines). It is for tests: a file it cannot read fails the
// test.
package oracle

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Pair is a 4-tuple without its direction: A is the lower endpoint (by
// address, then port). Direction 0 is from A to B.
type Pair struct{ A, B netip.AddrPort }

// PairOf returns the pair of src and dst, and the direction from src to
// dst.
func PairOf(src, dst netip.AddrPort) (Pair, int) {
	if src.Compare(dst) <= 0 {
		return Pair{src, dst}, 0
	}
	return Pair{dst, src}, 1
}

func (p Pair) String() string { return p.A.String() + " <-> " + p.B.String() }

// Compare orders pairs by A, then B.
func (p Pair) Compare(q Pair) int {
	if c := p.A.Compare(q.A); c != 0 {
		return c
	}
	return p.B.Compare(q.B)
}

// Dir is what one direction of a pair carried.
type Dir struct{ Packets, FrameBytes, Payload uint64 }

// Counts are the totals of each pair, by direction.
type Counts map[Pair]*[2]Dir

// Add counts one packet from src to dst.
func (c Counts) Add(src, dst netip.AddrPort, frameBytes, payload uint64) {
	p, dir := PairOf(src, dst)
	d := c.dirs(p)
	d[dir].Packets++
	d[dir].FrameBytes += frameBytes
	d[dir].Payload += payload
}

func (c Counts) dirs(p Pair) *[2]Dir {
	d := c[p]
	if d == nil {
		d = new([2]Dir)
		c[p] = d
	}
	return d
}

// Streams reads tshark's per-stream counts (a .streams.tsv: stream, the
// two endpoints' address and port, then packets, frame bytes and payload
// bytes each way) and sums them per pair, since tshark splits
// conversations differently (pcaps/README.md).
func Streams(t testing.TB, path string) Counts {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := Counts{}
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for line := 2; sc.Scan(); line++ {
		c := strings.Split(sc.Text(), "\t")
		if len(c) < 11 {
			t.Fatalf("%s:%d: %d fields, want 11: %q", path, line, len(c), sc.Text())
		}
		n := make([]uint64, 0, 8)
		for _, s := range append([]string{c[2], c[4]}, c[5:11]...) {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatalf("%s:%d: %v", path, line, err)
			}
			n = append(n, v)
		}
		a, b := addrPort(t, c[1], n[0]), addrPort(t, c[3], n[1])
		p, dir := PairOf(a, b)
		d := out.dirs(p)
		d[dir].Packets += n[2]
		d[1-dir].Packets += n[3]
		d[dir].FrameBytes += n[4]
		d[1-dir].FrameBytes += n[5]
		d[dir].Payload += n[6]
		d[1-dir].Payload += n[7]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func addrPort(t testing.TB, addr string, port uint64) netip.AddrPort {
	t.Helper()
	a, err := netip.ParseAddr(addr)
	if err != nil || port > 65535 {
		t.Fatalf("bad endpoint %s port %d (%v)", addr, port, err)
	}
	return netip.AddrPortFrom(a, uint16(port))
}

// Complaint returns what tshark said about a capture it could not read in
// full (the .conv.err beside its .streams.tsv), or "" if it said nothing.
func Complaint(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// Conn is one TCP connection of a Zeek conn.log.
type Conn struct {
	Orig, Resp     netip.AddrPort
	State, History string // conn_state and history; "" where the log has no such column
	// HasState and HasHistory say whether the log has the column.
	HasState, HasHistory bool
	Pkts                 [2]int // orig_pkts and resp_pkts; -1 where the log has no such column
}

// ConnLog reads the TCP connections of a Zeek conn.log, whole (a #fields
// header) or cut by zeek-cut (a first line of column names from "ts").
func ConnLog(t testing.TB, path string) []Conn {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cols map[string]int
	var out []Conn
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, "\t")
		switch {
		case strings.HasPrefix(line, "#fields\t"):
			cols = columns(f[1:])
		case cols == nil && f[0] == "ts":
			cols = columns(f)
		case line == "" || strings.HasPrefix(line, "#"):
		case cols == nil:
			t.Fatalf("%s:%d: a connection before the header", path, i+1)
		case len(f) < len(cols):
			t.Fatalf("%s:%d: %d fields, want %d", path, i+1, len(f), len(cols))
		default:
			if c, ok := conn(t, cols, f); ok {
				out = append(out, c)
			}
		}
	}
	if cols == nil {
		t.Fatalf("%s: no header", path)
	}
	return out
}

func columns(names []string) map[string]int {
	cols := make(map[string]int, len(names))
	for i, c := range names {
		cols[c] = i
	}
	return cols
}

// conn reads one line of a conn.log; ok is false for a connection that is
// not TCP.
func conn(t testing.TB, cols map[string]int, f []string) (c Conn, ok bool) {
	t.Helper()
	get := func(name string) string {
		if i, ok := cols[name]; ok {
			return f[i]
		}
		return ""
	}
	if p := get("proto"); p != "" && p != "tcp" {
		return c, false
	}
	endpoint := func(h, p string) netip.AddrPort {
		port, err := strconv.ParseUint(get(p), 10, 16)
		if err != nil {
			t.Fatalf("conn.log %s %q: %v", p, get(p), err)
		}
		return addrPort(t, get(h), port)
	}
	c.Orig, c.Resp = endpoint("id.orig_h", "id.orig_p"), endpoint("id.resp_h", "id.resp_p")
	c.State, c.History = get("conn_state"), get("history")
	_, c.HasState = cols["conn_state"]
	_, c.HasHistory = cols["history"]
	for i, name := range []string{"orig_pkts", "resp_pkts"} {
		c.Pkts[i] = -1
		if n, err := strconv.Atoi(get(name)); err == nil {
			c.Pkts[i] = n
		}
	}
	return c, true
}

// String names a connection as Zeek's id fields do.
func (c Conn) String() string { return fmt.Sprintf("%v -> %v", c.Orig, c.Resp) }
