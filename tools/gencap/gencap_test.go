package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/internal/jsonrec"
	"github.com/flowtrack/flowtrack/internal/testenv"
)

// truthRow is one line of the truth file.
type truthRow struct {
	client, server      netip.AddrPort
	id                  int64
	n                   [8]uint64 // packets, bytes, payload, retransmits: c2s, s2c each
	cstate, sstate, end string
	first, last         time.Time
	rtt                 int64 // ns, -1 if none
}

func readTruth(t *testing.T, path string) []truthRow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []truthRow
	sc := bufio.NewScanner(f)
	header := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if !header {
			if line != truthHeader {
				t.Fatalf("truth header %q, want %q", line, truthHeader)
			}
			header = true
			continue
		}
		c := strings.Split(line, "\t")
		if len(c) != 20 {
			t.Fatalf("truth line with %d columns: %q", len(c), line)
		}
		var r truthRow
		r.id, _ = strconv.ParseInt(c[0], 10, 64)
		r.client = netip.AddrPortFrom(netip.MustParseAddr(c[2]), uint16(atoi(t, c[3])))
		r.server = netip.AddrPortFrom(netip.MustParseAddr(c[4]), uint16(atoi(t, c[5])))
		for i := range r.n {
			r.n[i] = uint64(atoi(t, c[6+i]))
		}
		r.cstate, r.sstate, r.end = c[14], c[15], c[16]
		r.first = mustTime(t, c[17])
		r.last = mustTime(t, c[18])
		r.rtt = -1
		if c[19] != "-" {
			r.rtt = int64(atoi(t, c[19]))
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// flowtrackBinary builds the real command once per test binary.
func flowtrackBinary(t *testing.T) string {
	t.Helper()
	gocmd := testenv.LookPath(t, "go", "golang")
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gencap-test-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "flowtrack")
		out, err := exec.Command(gocmd, "build", "-o", binPath, "github.com/flowtrack/flowtrack").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// genFiles writes a capture and its truth into dir.
func genFiles(t *testing.T, cfg config, dir, name string) (pcap, truth string) {
	t.Helper()
	pcap = filepath.Join(dir, name+".pcap")
	truth = filepath.Join(dir, name+".tsv")
	if err := run(cfg, pcap, truth, true); err != nil {
		t.Fatal(err)
	}
	return pcap, truth
}

// compare runs flowtrack on pcap and checks every connection against the
// truth: the records of one 4-tuple in the order they started.
func compare(t *testing.T, pcap, truthPath string, args ...string) {
	t.Helper()
	rows := readTruth(t, truthPath)
	// Timers off: the truth gives the states after each connection's last
	// packet.
	args = append([]string{"-r", pcap, "-o", "json", "--time-wait", "100h", "--handshake-timeout", "100h"}, args...)
	cmd := exec.Command(flowtrackBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("flowtrack: %v\n%s", err, stderr.String())
	}
	recs, err := jsonrec.Read(&stdout)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(rows) {
		t.Errorf("flowtrack wrote %d records, the truth has %d connections", len(recs), len(rows))
	}
	type key struct{ c, s netip.AddrPort }
	got := map[key][]jsonrec.Record{}
	for _, r := range recs {
		k := key{netip.MustParseAddrPort(r.Client), netip.MustParseAddrPort(r.Server)}
		got[k] = append(got[k], r)
	}
	seen := map[key]int{}
	bad := 0
	for _, w := range truthByID(t, rows) {
		k := key{w.client, w.server}
		i := seen[k]
		seen[k]++
		var diffs []string
		if i >= len(got[k]) {
			diffs = []string{"no record"}
		} else {
			diffs = diffTruth(t, &got[k][i], w)
		}
		if len(diffs) > 0 {
			bad++
			if bad <= 20 {
				t.Errorf("%v -> %v (%s, #%d of its 4-tuple): %s", w.client, w.server, w.end, i+1, strings.Join(diffs, "; "))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d connections differ from the truth", bad, len(rows))
	}
}

// truthByID returns the truth's connections in the order they started,
// checking that their IDs number them once each.
func truthByID(t *testing.T, rows []truthRow) []*truthRow {
	byID := make([]*truthRow, len(rows))
	for i := range rows {
		r := &rows[i]
		if r.id < 0 || r.id >= int64(len(rows)) || byID[r.id] != nil {
			t.Fatalf("truth ids are not 0..%d once each: %d", len(rows)-1, r.id)
		}
		byID[r.id] = r
	}
	return byID
}

// diffTruth lists how flowtrack's record r of a connection differs from
// the truth w.
func diffTruth(t *testing.T, r *jsonrec.Record, w *truthRow) []string {
	gotN := [8]uint64{r.PacketsC2S, r.PacketsS2C, r.BytesC2S, r.BytesS2C, r.PayloadC2S, r.PayloadS2C, r.RetransmitsC2S, r.RetransmitsS2C}
	var diffs []string
	if gotN != w.n {
		diffs = append(diffs, fmt.Sprintf("packets/bytes/payload/retransmits %v, truth %v", gotN, w.n))
	}
	if r.ClientState != w.cstate || r.ServerState != w.sstate {
		diffs = append(diffs, fmt.Sprintf("states %s/%s, truth %s/%s", r.ClientState, r.ServerState, w.cstate, w.sstate))
	}
	if r.Midstream || r.GapsC2S != 0 || r.GapsS2C != 0 {
		diffs = append(diffs, fmt.Sprintf("midstream %v, gaps %d/%d", r.Midstream, r.GapsC2S, r.GapsS2C))
	}
	if f, l := mustTime(t, r.FirstSeen), mustTime(t, r.LastSeen); !f.Equal(w.first) || !l.Equal(w.last) {
		diffs = append(diffs, fmt.Sprintf("first/last %v/%v, truth %v/%v", f, l, w.first, w.last))
	}
	switch {
	case (r.RTTms == nil) != (w.rtt < 0):
		diffs = append(diffs, fmt.Sprintf("rtt %v, truth %d ns", r.RTTms, w.rtt))
	case r.RTTms != nil && abs(*r.RTTms*1e6-float64(w.rtt)) > 1:
		diffs = append(diffs, fmt.Sprintf("rtt %v ms, truth %d ns", *r.RTTms, w.rtt))
	}
	return diffs
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestAgainstFlowtrack generates a capture with every kind of connection
// and checks flowtrack's records against its truth.
func TestAgainstFlowtrack(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*config)
		args []string // flowtrack's, beside those compare gives
	}{
		{"mixed", func(c *config) {
			c.Conns, c.Concurrent, c.Snaplen = 200, 50, 96
			c.Retrans, c.Reuse, c.HalfOpen, c.Refused, c.RST, c.Open = 3, 10, 5, 5, 10, 5
		}, nil},
		{"cut", func(c *config) { // stop mid-run: connections cut in every phase
			c.Packets, c.Conns, c.Concurrent, c.Nano, c.Seed, c.IPv6 = 6000, 300, 150, true, 7, 50
			c.Retrans, c.Reuse = 3, 10
		}, nil},
		{"synflood", func(c *config) {
			c.SYNFlood, c.Established, c.Snaplen, c.Seed = 2000, 20, 96, 3
		}, nil},
		// A bounded table under a flood: 8,000 connections, 2,000 of them
		// established, leave room for 6,000 half-open ones, so that at
		// 25,000 SYNs/s a half-open connection lasts 0.24 s in the full
		// table, and a few handshakes take longer (up to 0.3 s).
		// The evicted ones wait in limbo, so every established connection
		// is still one exact record.
		{"synflood-bounded", func(c *config) {
			c.SYNFlood, c.Established, c.Snaplen, c.Seed = 250000, 2000, 96, 4
			c.Packets = c.SYNFlood + 40*int64(c.Established)
			c.Rate = float64(c.Packets) / 10 // 10 s: handshakes start in the first second
		}, []string{"--max-conns", "8000"}},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			tc.mod(&cfg)
			pcap, truth := genFiles(t, cfg, dir, tc.name)
			rows := readTruth(t, truth)
			ends := map[string]int{}
			for _, r := range rows {
				ends[r.end]++
			}
			t.Logf("%d connections: %v", len(rows), ends)
			compare(t, pcap, truth, tc.args...)
		})
	}
}

// TestKinds checks that the mixed capture has every way of ending.
func TestKinds(t *testing.T) {
	cfg := defaultConfig()
	cfg.Conns, cfg.Concurrent, cfg.Retrans, cfg.Reuse, cfg.IPv6 = 400, 50, 3, 10, 30
	_, truth := genFiles(t, cfg, t.TempDir(), "kinds")
	ends := map[string]int{}
	v6, retrans := 0, 0
	for _, r := range readTruth(t, truth) {
		ends[r.end]++
		if r.client.Addr().Is6() {
			v6++
		}
		retrans += int(r.n[6] + r.n[7])
	}
	for _, k := range []string{"fin-client", "fin-server", "rst-client", "rst-server", "half-open", "refused", "open"} {
		if ends[k] == 0 {
			t.Errorf("no connection ended %s: %v", k, ends)
		}
	}
	if ends["fin-client+reused"]+ends["fin-server+reused"] == 0 {
		t.Errorf("no 4-tuple reused: %v", ends)
	}
	if v6 == 0 || retrans == 0 {
		t.Errorf("%d IPv6 connections, %d retransmissions", v6, retrans)
	}
}

// TestDeterministic: the same seed gives byte-identical files, another
// seed different ones.
func TestDeterministic(t *testing.T) {
	dir := t.TempDir()
	cfg := defaultConfig()
	cfg.Conns, cfg.Snaplen = 300, 96
	read := func(name string, seed uint64) ([]byte, []byte) {
		c := cfg
		c.Seed = seed
		p, tr := genFiles(t, c, dir, name)
		a, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(tr)
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
	p1, t1 := read("a", 42)
	p2, t2 := read("b", 42)
	p3, _ := read("c", 43)
	if !bytes.Equal(p1, p2) || !bytes.Equal(t1, t2) {
		t.Error("the same seed gave different files")
	}
	if bytes.Equal(p1, p3) {
		t.Error("another seed gave the same capture")
	}
}

// TestChecksumsAndFormat walks a full-snaplen capture with an independent
// reader: record headers, monotonic timestamps, IPv4 and TCP checksums.
func TestChecksumsAndFormat(t *testing.T) {
	for _, nano := range []bool{false, true} {
		cfg := defaultConfig()
		cfg.Conns, cfg.Nano, cfg.IPv6, cfg.Retrans = 100, nano, 40, 5
		p, _ := genFiles(t, cfg, t.TempDir(), "full")
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		magic := binary.LittleEndian.Uint32(data)
		if want := map[bool]uint32{false: 0xa1b2c3d4, true: 0xa1b23c4d}[nano]; magic != want {
			t.Fatalf("magic %#x, want %#x", magic, want)
		}
		var prev int64
		n := 0
		for off := 24; off < len(data); n++ {
			if off+16 > len(data) {
				t.Fatalf("record %d: truncated header", n)
			}
			h := data[off : off+16]
			ts := int64(binary.LittleEndian.Uint32(h))*1e9 + int64(binary.LittleEndian.Uint32(h[4:]))
			if !nano {
				ts = int64(binary.LittleEndian.Uint32(h))*1e9 + int64(binary.LittleEndian.Uint32(h[4:]))*1000
			}
			capl, orig := int(binary.LittleEndian.Uint32(h[8:])), int(binary.LittleEndian.Uint32(h[12:]))
			if ts < prev {
				t.Fatalf("record %d: time goes back", n)
			}
			prev = ts
			if capl != orig || orig < minFrame {
				t.Fatalf("record %d: caplen %d, len %d", n, capl, orig)
			}
			off += 16
			if err := checkFrame(data[off : off+capl]); err != nil {
				t.Fatalf("record %d: %v", n, err)
			}
			off += capl
		}
		if n < 1000 {
			t.Fatalf("only %d records", n)
		}
	}
}

// checkFrame verifies an Ethernet frame's IP and TCP checksums, summing
// byte by byte.
func checkFrame(f []byte) error {
	sum := func(bs ...[]byte) uint16 {
		var s uint32
		i := 0
		for _, b := range bs {
			for _, x := range b {
				if i%2 == 0 {
					s += uint32(x) << 8
				} else {
					s += uint32(x)
				}
				i++
			}
		}
		for s>>16 != 0 {
			s = s&0xffff + s>>16
		}
		return uint16(s)
	}
	et := binary.BigEndian.Uint16(f[12:])
	var seg, pseudo []byte
	switch et {
	case 0x0800:
		ip := f[14:]
		if sum(ip[:20]) != 0xffff {
			return fmt.Errorf("bad IPv4 header checksum")
		}
		tl := int(binary.BigEndian.Uint16(ip[2:]))
		seg = ip[20:tl]
		pseudo = append(append([]byte{}, ip[12:20]...), 0, 6, byte(len(seg)>>8), byte(len(seg)))
	case 0x86dd:
		ip := f[14:]
		pl := int(binary.BigEndian.Uint16(ip[4:]))
		seg = ip[40 : 40+pl]
		pseudo = append(append([]byte{}, ip[8:40]...), 0, 0, byte(len(seg)>>8), byte(len(seg)), 0, 0, 0, 6)
	default:
		return fmt.Errorf("ethertype %#x", et)
	}
	if sum(pseudo, seg) != 0xffff {
		return fmt.Errorf("bad TCP checksum")
	}
	return nil
}

// BenchmarkGenerate measures the generator's packet rate (snaplen 96, no
// truth).
func BenchmarkGenerate(b *testing.B) {
	cfg := defaultConfig()
	cfg.Packets, cfg.Conns, cfg.Concurrent, cfg.Snaplen = 200000, 20000, 2000, 96
	for b.Loop() {
		if _, err := generate(cfg, discard{}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cfg.Packets)*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
