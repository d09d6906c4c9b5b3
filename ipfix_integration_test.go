package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/capture"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/internal/oracle"
	"github.com/flowtrack/flowtrack/internal/testenv"
	"github.com/flowtrack/flowtrack/local"
)

// These tests export bundled captures to a real IPFIX collector, nfcapd
// from the nfdump package, on loopback, read back what it stored with
// nfdump, and compare it with flowtrack's own JSON output and with tshark's
// count of the IP packets' octets (pcaps/oracle/*.iplen.tsv).

// nfcapd is a collector run for one test.
type nfcapd struct {
	cmd    *exec.Cmd
	dir    string
	addr   string
	mu     sync.Mutex // guards out
	out    bytes.Buffer
	exited chan struct{}
	lines  bool // its output is line-buffered: records show as they arrive
}

// startNfcapd starts nfcapd on a free UDP port of 127.0.0.1, storing into
// a temporary directory, and waits until it listens. It skips the test if
// nfcapd or nfdump is missing (fails it under CI).
func startNfcapd(t *testing.T) *nfcapd {
	t.Helper()
	bin := testenv.LookPath(t, "nfcapd", "nfdump")
	testenv.LookPath(t, "nfdump", "nfdump")
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	n := &nfcapd{dir: t.TempDir(), addr: fmt.Sprintf("127.0.0.1:%d", port), exited: make(chan struct{})}
	// -t 3600: one file unless the test straddles the hour; SIGTERM
	// closes it. -E prints each record as it arrives, so that the test
	// knows when nfcapd has them all.
	args := []string{bin, "-E", "-w", n.dir, "-b", "127.0.0.1", "-p", strconv.Itoa(port), "-t", "3600"}
	if stdbuf, err := exec.LookPath("stdbuf"); err == nil {
		args = append([]string{stdbuf, "-oL"}, args...) // print each line as it comes, not when a buffer fills
		n.lines = true
	}
	n.cmd = exec.Command(args[0], args[1:]...)
	r, w := io.Pipe()
	n.cmd.Stdout, n.cmd.Stderr = w, w
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("nfcapd: %v", err)
	}
	started := make(chan struct{})
	scanned := make(chan struct{}) // all of nfcapd's output is in n.out
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(r)
		once := sync.Once{}
		for sc.Scan() {
			n.mu.Lock()
			n.out.WriteString(sc.Text() + "\n")
			n.mu.Unlock()
			if strings.Contains(sc.Text(), "Startup") {
				once.Do(func() { close(started) })
			}
		}
	}()
	go func() {
		_ = n.cmd.Wait()
		w.Close()
		<-scanned // its last lines (the summary) are read before it counts as exited
		close(n.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-n.exited:
		default:
			_ = n.cmd.Process.Kill() // only the nfcapd this test started
			<-n.exited
		}
	})
	select {
	case <-started:
	case <-n.exited:
		t.Fatalf("nfcapd exited at once:\n%s", n.log())
	case <-time.After(10 * time.Second):
		t.Fatalf("nfcapd did not start within 10 s:\n%s", n.log())
	}
	return n
}

func (n *nfcapd) log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.out.String()
}

// wait waits until nfcapd has printed n records.
func (n *nfcapd) wait(t *testing.T, records int) {
	t.Helper()
	if !n.lines { // its output comes in blocks: give it time instead
		time.Sleep(time.Second)
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(n.log(), "Flow Record:") < records {
		if time.Now().After(deadline) {
			t.Fatalf("nfcapd received %d records within 10 s, want %d:\n%s", strings.Count(n.log(), "Flow Record:"), records, n.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// endReasons returns the flowEndReason of each record nfcapd printed.
func (n *nfcapd) endReasons() []int {
	var reasons []int
	for _, m := range regexp.MustCompile(`end reason\s+=\s+0x([0-9a-f]+)`).FindAllStringSubmatch(n.log(), -1) {
		v, _ := strconv.ParseInt(m[1], 16, 0)
		reasons = append(reasons, int(v))
	}
	return reasons
}

// stop makes nfcapd write its file and exit, and returns its log.
func (n *nfcapd) stop(t *testing.T) string {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("nfcapd: %v", err)
	}
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("nfcapd did not stop within 10 s:\n%s", n.log())
	}
	return n.log()
}

// nfRecord is a flow as nfdump -o json prints it (nfdump 1.7).
type nfRecord struct {
	First      string `json:"first"` // local time, milliseconds; run with TZ=UTC
	Last       string `json:"last"`
	InPackets  uint64 `json:"in_packets"`
	InBytes    uint64 `json:"in_bytes"`
	OutPackets uint64 `json:"out_packets"`
	OutBytes   uint64 `json:"out_bytes"`
	Proto      int    `json:"proto"`
	TCPFlags   string `json:"tcp_flags"` // "CEUAPRSF", a dot for each flag not set
	SrcPort    uint16 `json:"src_port"`
	DstPort    uint16 `json:"dst_port"`
	Src4       string `json:"src4_addr"`
	Dst4       string `json:"dst4_addr"`
	Src6       string `json:"src6_addr"`
	Dst6       string `json:"dst6_addr"`
	SrcVLAN    int    `json:"src_vlan"`
}

func (r *nfRecord) client() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(r.Src4+r.Src6), r.SrcPort)
}

func (r *nfRecord) server() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(r.Dst4+r.Dst6), r.DstPort)
}

// records reads every flow nfcapd stored.
func (n *nfcapd) records(t *testing.T) []nfRecord {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(n.dir, "nfcapd.[0-9]*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("nfcapd stored no file in %s (%v):\n%s", n.dir, err, n.log())
	}
	var all []nfRecord
	for _, f := range files {
		cmd := exec.Command("nfdump", "-r", f, "-o", "json")
		cmd.Env = append(os.Environ(), "TZ=UTC")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("nfdump -r %s: %v", f, err)
		}
		if len(bytes.TrimSpace(out)) == 0 {
			continue
		}
		var recs []nfRecord
		if err := json.Unmarshal(out, &recs); err != nil {
			t.Fatalf("nfdump -r %s -o json: %v\n%s", f, err, out)
		}
		all = append(all, recs...)
	}
	return all
}

// ftRecord is the part of flowtrack's JSON output these tests compare.
type ftRecord struct {
	Client     string   `json:"client"`
	Server     string   `json:"server"`
	Role       string   `json:"role"`
	PacketsC2S uint64   `json:"packets_c2s"`
	PacketsS2C uint64   `json:"packets_s2c"`
	BytesC2S   uint64   `json:"bytes_c2s"`
	BytesS2C   uint64   `json:"bytes_s2c"`
	FirstSeen  string   `json:"first_seen"`
	LastSeen   string   `json:"last_seen"`
	VLAN       []uint16 `json:"vlan"`
}

// runFlowtrack runs the command and returns its JSON records and stderr.
func runFlowtrack(t *testing.T, args ...string) ([]ftRecord, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("flowtrack %v: exit %d: %s", args, code, stderr.String())
	}
	var recs []ftRecord
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r ftRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs, stderr.String()
}

// mainExports reports whether the command has the export flags yet; until
// it does, the tests wire the exporters themselves, as track does.
func mainExports() bool {
	_, err := parseArgs([]string{"-r", "x.pcap", "--ipfix", "127.0.0.1:4739", "--metrics", "127.0.0.1:0"}, io.Discard)
	return err == nil
}

// replayExporting replays pcap into a table wired to the exporters that
// o asks for, the way the command does, and returns what they printed.
// hook, if set, is called after each packet.
func replayExporting(t *testing.T, pcap string, o *exportOptions, hook func(*exporters, *flows.Table, *capture.Counters)) string {
	t.Helper()
	src, err := capture.OpenFile(pcap, "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var stderr bytes.Buffer
	cfg := flows.Config{}
	// Every connection named, so that the collector reads records with
	// the variable-length name element.
	named := func(r *flows.Record) local.Info {
		return local.Info{ServerName: "conn-" + strconv.FormatUint(r.ID, 10) + ".example", NameSource: "sni"}
	}
	ex, err := startExporters(o, true, named, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	ex.hook(&cfg)
	table := flows.NewTable(cfg)
	var counters capture.Counters
	rsrc, apply := ex.attach(table, &counters, src, table)
	if hook != nil {
		apply = hookSink{Sink: apply, hook: func() { hook(ex, table, &counters) }}
	}
	if err := capture.Run(context.Background(), rsrc, capture.NewDecoder(), &counters, 0, apply); err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		hook(ex, table, &counters)
	}
	ex.finish(table.Flush())
	return stderr.String()
}

// millis parses an RFC 3339 time and truncates it to milliseconds, as
// IPFIX's flowStartMilliseconds carries it; or nfdump's time, in UTC.
func millis(t *testing.T, s string) int64 {
	t.Helper()
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000"} {
		if ts, err := time.Parse(layout, s); err == nil {
			return ts.UnixMilli()
		}
	}
	t.Fatalf("bad time %q", s)
	return 0
}

// tupleTotals are what the records of one 4-tuple add up to.
type tupleTotals struct {
	records               int
	pkts, bytes           [2]uint64 // client to server, server to client
	first, last           int64     // milliseconds
	firstFlags, firstRole string    // of the earliest record
	vlan                  int
}

// ipOracle reads tshark's packets and IP-layer octets (IP header included)
// per 4-tuple and direction, made by scripts/iplen-oracle.sh.
func ipOracle(t *testing.T, name string) oracle.Counts {
	t.Helper()
	dir := filepath.Join("pcaps", "oracle")
	c, err := oracle.Streams(filepath.Join(dir, name+".streams.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WithIPBytes(filepath.Join(dir, name+".iplen.tsv")); err != nil {
		t.Fatal(err)
	}
	if len(c) == 0 {
		t.Fatalf("%s: no stream in the oracle", name)
	}
	return c
}

// ipfixCase is one replay exported to nfcapd.
type ipfixCase struct {
	pcap          string
	activeTimeout time.Duration
	periodic      bool  // records of long connections are split
	reasons       []int // the flowEndReasons expected, in any number
}

func TestIPFIXToNfcapd(t *testing.T) {
	cases := []ipfixCase{
		// 0: no periodic records, each connection gets exactly one.
		{"wikipedia.pcap", 0, false, []int{4}},            // IPv4; one connection picked up mid-stream, one only a SYN-ACK; all open at the end
		{"ssh-many.pcap", 0, false, []int{3}},             // 23 connections over four years, all closed by FIN or RST
		{"ssh-many.pcap", time.Second, true, []int{2, 3}}, // ... reported every second of capture time
		{"port-reuse-gtp-sip.pcap", 0, false, []int{3}},   // IPv6 in GTP-U, one 4-tuple reused four times
		{"qinq-http.pcap", 0, false, []int{4}},            // two VLAN tags
	}
	viaRun := mainExports()
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%v", c.pcap, c.activeTimeout), func(t *testing.T) {
			ours, theirs := exportToNfcapd(t, c, viaRun)
			want := ourTotals(t, ours, ipOracle(t, c.pcap))
			got := collectorTotals(t, theirs)
			compareTotals(t, c, want, got)
		})
	}
}

// exportToNfcapd replays c's capture with IPFIX export to a fresh nfcapd,
// and returns flowtrack's JSON records and what nfcapd stored, after
// checking nfcapd's own account of what it received.
func exportToNfcapd(t *testing.T, c ipfixCase, viaRun bool) ([]ftRecord, []nfRecord) {
	t.Helper()
	pcap := filepath.Join("pcaps", c.pcap)
	col := startNfcapd(t)
	var (
		ours   []ftRecord
		stderr string
	)
	if viaRun {
		ours, stderr = runFlowtrack(t, "-r", pcap, "-o", "json", "--ipfix", col.addr,
			"--ipfix-active-timeout", c.activeTimeout.String())
	} else {
		ours, _ = runFlowtrack(t, "-r", pcap, "-o", "json")
		stderr = replayExporting(t, pcap, &exportOptions{ipfix: col.addr, activeTimeout: c.activeTimeout}, nil)
	}
	sent := regexp.MustCompile(`ipfix: (\d+) records`).FindStringSubmatch(stderr)
	if sent == nil {
		t.Fatalf("no ipfix summary line in %q", stderr)
	}
	nsent, _ := strconv.Atoi(sent[1])
	col.wait(t, nsent)
	log := col.stop(t)
	theirs := col.records(t)
	t.Logf("%d connections, %d IPFIX records; %s", len(ours), len(theirs), strings.TrimSpace(stderr))
	if len(theirs) != nsent {
		t.Errorf("flowtrack sent %d records, nfcapd stored %d", nsent, len(theirs))
	}
	checkReasons(t, col.endReasons(), nsent, c.reasons)
	// nfcapd's last line: "Ident: 'none' Flows: 10, Packets: 78, Bytes: 19079, Sequence Errors: 0, Bad Packets: 0".
	m := regexp.MustCompile(`Flows: (\d+),.*Sequence Errors: (\d+), Bad Packets: (\d+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no summary in nfcapd's log:\n%s", log)
	}
	if m[1] != strconv.Itoa(len(theirs)) || m[2] != "0" || m[3] != "0" {
		t.Errorf("nfcapd: %s flows, %s sequence errors, %s bad packets; want %d, 0, 0", m[1], m[2], m[3], len(theirs))
	}
	return ours, theirs
}

// checkReasons checks that every record has a flowEndReason, and that the
// reasons are exactly those wanted.
func checkReasons(t *testing.T, reasons []int, records int, want []int) {
	t.Helper()
	if len(reasons) != records {
		t.Errorf("%d end reasons for %d records", len(reasons), records)
	}
	for _, w := range want {
		if !slices.Contains(reasons, w) {
			t.Errorf("no record ended with reason %d", w)
		}
	}
	for _, r := range reasons {
		if !slices.Contains(want, r) {
			t.Errorf("a record ended with reason %d, want only %v", r, want)
		}
	}
}

// ourTotals adds up flowtrack's JSON records per 4-tuple, with the IP
// octets of tshark's oracle: IPFIX counts the IP packets' octets (RFC
// 7012), which the JSON does not give.
func ourTotals(t *testing.T, ours []ftRecord, truth oracle.Counts) map[string]*tupleTotals {
	t.Helper()
	want := make(map[string]*tupleTotals)
	for _, r := range ours {
		k := r.Client + " " + r.Server
		tt := want[k]
		first, last := millis(t, r.FirstSeen), millis(t, r.LastSeen)
		if tt == nil {
			tt = &tupleTotals{first: first, last: last, firstRole: r.Role}
			if len(r.VLAN) > 0 {
				tt.vlan = int(r.VLAN[0])
			}
			want[k] = tt
		}
		tt.records++
		tt.pkts[0] += r.PacketsC2S
		tt.pkts[1] += r.PacketsS2C
		if first < tt.first {
			tt.first, tt.firstRole = first, r.Role
		}
		tt.last = max(tt.last, last)
	}
	for k, tt := range want {
		cs := strings.Fields(k)
		o, d := oracle.PairOf(netip.MustParseAddrPort(cs[0]), netip.MustParseAddrPort(cs[1]))
		oc := truth[o]
		if oc == nil || oc[d].Packets != tt.pkts[0] || oc[1-d].Packets != tt.pkts[1] {
			t.Errorf("%s: tshark's IP oracle has %+v, flowtrack %v packets", k, oc, tt.pkts)
			continue
		}
		tt.bytes = [2]uint64{oc[d].IPBytes, oc[1-d].IPBytes}
	}
	return want
}

// collectorTotals adds up nfcapd's records per 4-tuple.
func collectorTotals(t *testing.T, theirs []nfRecord) map[string]*tupleTotals {
	t.Helper()
	got := make(map[string]*tupleTotals)
	for _, r := range theirs {
		if r.Proto != 6 {
			t.Errorf("record of protocol %d, want 6 (TCP)", r.Proto)
		}
		k := r.client().String() + " " + r.server().String()
		tt := got[k]
		first, last := millis(t, r.First), millis(t, r.Last)
		if tt == nil {
			tt = &tupleTotals{first: first, last: last, firstFlags: r.TCPFlags, vlan: r.SrcVLAN}
			got[k] = tt
		}
		tt.records++
		tt.pkts[0] += r.InPackets
		tt.pkts[1] += r.OutPackets
		tt.bytes[0] += r.InBytes
		tt.bytes[1] += r.OutBytes
		if first < tt.first {
			tt.first, tt.firstFlags = first, r.TCPFlags
		}
		tt.last = max(tt.last, last)
	}
	return got
}

// compareTotals compares nfcapd's totals per 4-tuple with flowtrack's and
// tshark's.
func compareTotals(t *testing.T, c ipfixCase, want, got map[string]*tupleTotals) {
	t.Helper()
	split := false
	for _, k := range slices.Sorted(maps.Keys(want)) {
		w, g := want[k], got[k]
		if g == nil {
			t.Errorf("%s: no IPFIX record", k)
			continue
		}
		if g.pkts != w.pkts || g.bytes != w.bytes {
			t.Errorf("%s: IPFIX packets %v octets %v (client to server, back); flowtrack's packets %v, tshark's IP octets %v", k, g.pkts, g.bytes, w.pkts, w.bytes)
		}
		if g.first != w.first || g.last != w.last {
			t.Errorf("%s: IPFIX from %d to %d ms, flowtrack %d to %d", k, g.first, g.last, w.first, w.last)
		}
		if g.vlan != w.vlan {
			t.Errorf("%s: IPFIX VLAN %d, flowtrack %d", k, g.vlan, w.vlan)
		}
		if w.firstRole == "client sent the SYN" && (len(g.firstFlags) != 8 || g.firstFlags[6] != 'S') {
			t.Errorf("%s: the client sent a SYN, but its first record's flags are %q", k, g.firstFlags)
		}
		switch {
		case g.records > w.records:
			split = true
		case g.records < w.records:
			t.Errorf("%s: %d IPFIX records for %d connections", k, g.records, w.records)
		case !c.periodic && g.records != w.records:
			t.Errorf("%s: %d IPFIX records for %d connections, want one each", k, g.records, w.records)
		}
	}
	for k := range got {
		if want[k] == nil {
			t.Errorf("IPFIX record of %s, which flowtrack did not report", k)
		}
	}
	if split != c.periodic {
		t.Errorf("long connections split into periodic records: %v, want %v", split, c.periodic)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	get := func(url string) (map[string]float64, error) {
		resp, err := http.Get(url)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		s := make(map[string]float64)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
				v, err := strconv.ParseFloat(line[i+1:], 64)
				if err != nil {
					return nil, fmt.Errorf("bad sample %q", line)
				}
				s[line[:i]] = v
			}
		}
		return s, sc.Err()
	}
	sumOf := func(s map[string]float64, name string) (n float64) {
		for k, v := range s {
			if k == name || strings.HasPrefix(k, name+"{") {
				n += v
			}
		}
		return n
	}
	applied, scrapes := 0, 0
	var url string
	check := func(ex *exporters, table *flows.Table, counters *capture.Counters) {
		url = "http://" + ex.addr + "/metrics"
		s, err := get(url)
		if err != nil {
			t.Fatal(err)
		}
		scrapes++
		live := float64(table.Len())
		for name, want := range map[string]float64{
			"flowtrack_connections_opened_total": float64(table.Opened()),
			"flowtrack_connections":              live,
			"flowtrack_connections_closed_total": float64(table.Opened()) - live,
		} {
			if got := sumOf(s, name); got != want {
				t.Errorf("after %d packets: %s is %v, want %v", applied, name, got, want)
			}
		}
		if f := s["flowtrack_capture_frames_total"]; f < float64(applied) || f > float64(counters.Frames.Load()) {
			t.Errorf("after %d packets: %v frames, want between %d and %d", applied, f, applied, counters.Frames.Load())
		}
	}
	replayExporting(t, "pcaps/ssh-many.pcap", &exportOptions{metrics: "127.0.0.1:0", activeTimeout: time.Minute},
		func(ex *exporters, table *flows.Table, counters *capture.Counters) {
			if applied++; applied%400 == 0 {
				check(ex, table, counters)
			}
		})
	if scrapes < 4 {
		t.Errorf("%d scrapes, want at least 4", scrapes)
	}
	if _, err := get(url); err == nil {
		t.Error("the metrics are still served after the capture stopped")
	}
}

func TestExportFlags(t *testing.T) {
	for _, c := range []struct {
		o   exportOptions
		err string
	}{
		{exportOptions{ipfix: "127.0.0.1:4739", activeTimeout: time.Minute, metrics: ":9464"}, ""},
		{exportOptions{ipfix: "tcp://[::1]:4739", activeTimeout: time.Second}, ""},
		{exportOptions{ipfix: "collector", activeTimeout: time.Minute}, "want HOST:PORT"},
		{exportOptions{ipfix: "127.0.0.1:4739"}, ""}, // no periodic records
		{exportOptions{ipfix: "127.0.0.1:4739", activeTimeout: -time.Second}, "must be positive"},
		{exportOptions{metrics: "9464", activeTimeout: time.Minute}, "want [HOST]:PORT"},
	} {
		err := c.o.check()
		if (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%+v: %v, want an error saying %q", c.o, err, c.err)
		}
	}
	var nothing *exporters // no export flag: everything passes through
	cfg := flows.Config{}
	nothing.hook(&cfg)
	if cfg.OnRetire != nil || cfg.OnChange != nil {
		t.Error("hooks set without exporters")
	}
	nothing.finish(nil)
	if x, err := startExporters(&exportOptions{activeTimeout: time.Minute}, false, nil, io.Discard); x != nil || err != nil {
		t.Errorf("exporters %v, %v without flags", x, err)
	}
	if _, err := startExporters(&exportOptions{metrics: "256.0.0.1:1", activeTimeout: time.Minute}, false, nil, io.Discard); err == nil {
		t.Error("no error for an address that cannot be listened on")
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var o exportOptions
	o.addFlags(fs)
	if err := fs.Parse([]string{"--ipfix", "tcp://127.0.0.1:4739", "--ipfix-active-timeout", "5s", "--metrics", ":9464"}); err != nil {
		t.Fatal(err)
	}
	if o.ipfix != "tcp://127.0.0.1:4739" || o.activeTimeout != 5*time.Second || o.metrics != ":9464" {
		t.Errorf("flags parsed into %+v", o)
	}
}

// hookSink calls hook after each packet it passes on.
type hookSink struct {
	capture.Sink
	hook func()
}

func (s hookSink) Apply(p *flows.Packet) {
	s.Sink.Apply(p)
	s.hook()
}
