package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/internal/jsonrec"
	"github.com/flowtrack/flowtrack/internal/oracle"
)

// jsonRecord is the JSON contract as a client would decode it.
type jsonRecord = jsonrec.Record

// flowtrack runs the command with args and returns its exit code, the
// records it printed and its stderr.
func flowtrack(t *testing.T, args ...string) (int, []jsonRecord, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	recs, err := jsonrec.Read(&stdout)
	if err != nil {
		t.Fatalf("flowtrack %v: bad JSON: %v", args, err)
	}
	return code, recs, stderr.String()
}

// ours sums flowtrack's records per 4-tuple (records of one 4-tuple on
// different VLANs or reused ports add up, as tshark counts them together).
func ours(recs []jsonRecord) oracle.Counts {
	out := oracle.Counts{}
	for _, r := range recs {
		k, d := oracle.PairOf(netip.MustParseAddrPort(r.Client), netip.MustParseAddrPort(r.Server))
		if out[k] == nil {
			out[k] = new([2]oracle.Dir)
		}
		c := out[k]
		c[d].Packets += r.PacketsC2S
		c[1-d].Packets += r.PacketsS2C
		c[d].FrameBytes += r.BytesC2S
		c[1-d].FrameBytes += r.BytesS2C
		c[d].Payload += r.PayloadC2S
		c[1-d].Payload += r.PayloadS2C
	}
	return out
}

// fragmentBytes are the frame bytes of the captures whose TCP segments
// arrive in IP fragments. tshark credits a reassembled datagram with only
// the length of its last fragment's frame; flowtrack counts every fragment's
// frame. The figures are the sums of tshark's own frame.len over each file.
var fragmentBytes = map[string]uint64{
	"frag-ipv4-syn.pcap":        58 + 50,
	"vlan-frag-tcp-syn.pcap":    46 * 3,
	"frag-ipv6-rawip6-tcp.pcap": 512 + 512 + 140,
}

// rejected reports whether tshark refused the capture's header (its oracle
// has a .conv.err and no packets).
func rejected(name string) bool {
	c := oracle.Complaint(filepath.Join("pcaps", "oracle", name+".conv.err"))
	return c != "" && !strings.Contains(c, "cut short")
}

func captures(t *testing.T) []string {
	var names []string
	for _, pat := range []string{"pcaps/*.pcap", "pcaps/*.pcapng"} {
		m, _ := filepath.Glob(pat)
		for _, p := range m {
			names = append(names, filepath.Base(p))
		}
	}
	if len(names) < 60 {
		t.Fatalf("only %d captures in pcaps/", len(names))
	}
	return names
}

// TestCountsMatchTshark replays every bundled capture and compares packets,
// frame bytes and payload bytes per 4-tuple and direction with tshark's.
func TestCountsMatchTshark(t *testing.T) {
	for _, name := range captures(t) {
		if rejected(name) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			code, recs, stderr := flowtrack(t, "-r", filepath.Join("pcaps", name), "-o", "json")
			cut := strings.HasPrefix(name, "cut-")
			if cut != (code != 0) {
				t.Fatalf("exit code %d (stderr %q)", code, stderr)
			}
			want, err := oracle.Streams(filepath.Join("pcaps", "oracle", name+".streams.tsv"))
			if err != nil {
				t.Fatal(err)
			}
			got := ours(recs)
			if fb, ok := fragmentBytes[name]; ok {
				for _, c := range want {
					for d := range c {
						if c[d].Packets > 0 {
							c[d].FrameBytes = fb
						}
					}
				}
			}
			for k, w := range want {
				g := got[k]
				if g == nil {
					t.Errorf("%v: missing (tshark: %+v)", k, *w)
					continue
				}
				if *g != *w {
					t.Errorf("%v: got %+v, tshark %+v", k, *g, *w)
				}
			}
			for k := range got {
				if want[k] == nil {
					t.Errorf("%v: not in tshark's output", k)
				}
			}
		})
	}
}

// TestBadFiles checks that files tshark rejects, and other bad input, give
// one clear line on stderr and a non-zero exit.
func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	notCapture := filepath.Join(dir, "notes.txt")
	os.WriteFile(notCapture, []byte("these are not packets\n"), 0o644)
	cases := []struct{ path, want string }{
		{filepath.Join(dir, "missing.pcap"), "no such file"},
		{dir, "directory"},
		{notCapture, "not a pcap"},
	}
	for _, name := range captures(t) {
		if rejected(name) {
			cases = append(cases, struct{ path, want string }{filepath.Join("pcaps", name), name})
		}
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.path), func(t *testing.T) {
			code, recs, stderr := flowtrack(t, "-r", c.path, "-o", "json")
			if code == 0 || len(recs) != 0 {
				t.Fatalf("exit %d with %d records, want an error", code, len(recs))
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.Contains(strings.ToLower(lines[0]), strings.ToLower(c.want)) {
				t.Fatalf("stderr %q: want one line mentioning %q", stderr, c.want)
			}
		})
	}
}

func TestBadArguments(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-r", "pcaps/eth-http-get.pcap", "-i", "lo"}, "not both"},
		{[]string{"-r", "pcaps/eth-http-get.pcap", "-o", "xml"}, "unknown output format"},
		{[]string{"-r", "pcaps/eth-http-get.pcap", "-o", "table", "--follow"}, "use it with -o json"},
		{[]string{"-r", "pcaps/eth-http-get.pcap", "port", "80", "and"}, "filter"},
		{[]string{"-i", "no-such-interface0", "-o", "json", "-c", "1"}, "no-such-interface0"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := flowtrack(t, c.args...)
			if code == 0 || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr %q: want failure mentioning %q", code, stderr, c.want)
			}
		})
	}
}

func TestFilterArguments(t *testing.T) {
	_, all, _ := flowtrack(t, "-r", "pcaps/wikipedia.pcap", "-o", "json")
	_, some, _ := flowtrack(t, "-r", "pcaps/wikipedia.pcap", "-o", "json", "host", "208.80.152.3")
	_, viaF, _ := flowtrack(t, "-r", "pcaps/wikipedia.pcap", "-o", "json", "-f", "host 208.80.152.3")
	// tshark: 6 of the 10 TCP conversations are with 208.80.152.3.
	if len(all) != 10 || len(some) != 6 || len(viaF) != 6 {
		t.Fatalf("records: %d unfiltered, %d with 'host 208.80.152.3', %d with -f: want 10, 6, 6", len(all), len(some), len(viaF))
	}
	for _, r := range some {
		if r.Server != "208.80.152.3:80" {
			t.Errorf("%s -> %s passed the filter 'host 208.80.152.3'", r.Client, r.Server)
		}
	}
}

func Example_table() {
	run(context.Background(), []string{"-r", "pcaps/eth-http-get.pcap", "-o", "table"}, os.Stdout, nopWriter{})
	// Output:
	// Proto  Client               Server             Name            Client state  Server state  Pkts  Bytes  Pkts c>s/s>c  Bytes c>s/s>c  RTT     Retrans  Zeek  Flags  Problems
	// tcp    141.142.228.5:59856  192.150.187.43:80  bro.org (host)  TIME_WAIT     CLOSED        14    6087   7/7           610/5477       70.0ms  0/0      SF    -      -
}

type nopWriter struct{}

func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }

// TestKernelStates replays the captures of real Linux sockets in
// pcaps/kernel and compares both endpoints' inferred states with what
// `ss -tan` reported on each host when the capture ended.
func TestKernelStates(t *testing.T) {
	ssFiles, _ := filepath.Glob("pcaps/kernel/*.ss")
	var truth []string
	for _, f := range ssFiles {
		if !strings.HasSuffix(f, ".mid.ss") {
			truth = append(truth, f)
		}
	}
	if len(truth) < 15 {
		t.Fatalf("only %d kernel captures with ss truth", len(truth))
	}
	for _, ssFile := range truth {
		name := strings.TrimSuffix(filepath.Base(ssFile), ".ss")
		t.Run(name, func(t *testing.T) {
			code, recs, stderr := flowtrack(t, "-r", filepath.Join("pcaps", "kernel", name+".pcap"), "-o", "json")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			// The last record of each 4-tuple is the connection ss saw.
			last := map[[2]string]jsonRecord{}
			for _, r := range recs {
				last[[2]string{r.Client, r.Server}] = r
			}
			ss, err := oracle.ReadSS(ssFile)
			if err != nil {
				t.Fatal(err)
			}
			if len(ss.Conns) == 0 {
				t.Fatal("no connections in the ss file")
			}
			for _, c := range ss.Conns {
				r, ok := last[[2]string{c.Client, c.Server}]
				if !ok {
					t.Errorf("%s -> %s: no record", c.Client, c.Server)
					continue
				}
				wc, _ := oracle.SSState(c.ClientState)
				ws, _ := oracle.SSState(c.ServerState)
				if r.ClientState != wc || r.ServerState != ws {
					t.Errorf("%s -> %s: client %s server %s; ss: client %s server %s",
						c.Client, c.Server, r.ClientState, r.ServerState, wc, ws)
				}
			}
		})
	}
}

// zeekDeviations are history letters left out of the comparison, per
// capture, where Zeek and tshark disagree and flowtrack follows tshark.
var zeekDeviations = map[string]string{
	// Six server segments (frames 19, 33, 41, ...) have a PPPoE payload
	// length 6 bytes shorter than their IPv4 total length. Zeek believes
	// the IP header and sees 6 bytes of data, which moves its responder
	// retransmission letter 't'; tshark (and flowtrack) trim to the PPPoE
	// length and see none. The next segment's sequence number does not
	// advance, so the 6 bytes are trailer, not data.
	"pppoe-qinq-tls": "t",
}

// zeekSkipped are the conn.log baselines TestZeekBaselines does not
// compare, and why.
var zeekSkipped = map[string]string{
	// Zeek drops a packet with a bad TCP checksum (history "C"); flowtrack
	// never checks checksums, because offloading makes local captures
	// full of wrong ones.
	"bad-checksum-syn.zeek-conn.log": "checksums are not verified by design",
	// Zeek's default key ignores VLANs; flowtrack's keeps them apart
	// (the VLAN-aware log is compared instead).
	"vlan-collisions.zeek-conn-default.log": "VLAN-blind key",
	// Only VLAN columns: checked by TestVLANKeys.
	"qinq-vlan0-http.zeek-conn.log.cut": "no conn_state or history",
}

// The Zeek baselines in pcaps/baselines (pcaps/MANIFEST.tsv): conn.logs,
// and the "history, conn_state" lines of single-connection captures.
const zeekConnLogs, zeekStateLines = 16, 4

// TestZeekBaselines compares conn_state and history with Zeek's conn.log
// for every capture that has one, with Zeek's inactivity timeout (5 min).
func TestZeekBaselines(t *testing.T) {
	logs, _ := filepath.Glob("pcaps/baselines/*.zeek-conn*.log*")
	if len(logs) != zeekConnLogs {
		t.Errorf("%d conn.log baselines in pcaps/baselines, want %d", len(logs), zeekConnLogs)
	}
	compared := 0
	for _, log := range logs {
		base := filepath.Base(log)
		if why, ok := zeekSkipped[base]; ok {
			t.Logf("%s: skipped: %s", base, why)
			continue
		}
		compared++
		name, _, _ := strings.Cut(base, ".zeek")
		t.Run(name, func(t *testing.T) { compareConnLog(t, name, log) })
	}
	if want := zeekConnLogs - len(zeekSkipped); compared != want {
		t.Errorf("compared %d conn.logs, want %d: a skipped baseline is missing", compared, want)
	}
	states, _ := filepath.Glob("pcaps/baselines/*.zeek-state.txt")
	if len(states) != zeekStateLines {
		t.Errorf("%d state-line baselines in pcaps/baselines, want %d", len(states), zeekStateLines)
	}
	for _, st := range states {
		name := strings.TrimSuffix(filepath.Base(st), ".zeek-state.txt")
		t.Run(name, func(t *testing.T) { compareStateLine(t, name, st) })
	}
}

// compareConnLog compares flowtrack's records of a capture with Zeek's
// conn.log of it, connection by connection in order per 4-tuple.
func compareConnLog(t *testing.T, name, log string) {
	want, err := oracle.ConnLog(log)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatal("no TCP connections in the baseline")
	}
	pcap := filepath.Join("pcaps", name+".pcap")
	if _, err := os.Stat(pcap); err != nil {
		pcap += "ng"
	}
	_, recs, stderr := flowtrack(t, "-r", pcap, "-o", "json", "--idle-timeout", "5m")
	got := map[oracle.Pair][]jsonRecord{}
	for _, r := range recs {
		k, _ := oracle.PairOf(netip.MustParseAddrPort(r.Client), netip.MustParseAddrPort(r.Server))
		got[k] = append(got[k], r)
	}
	seen := map[oracle.Pair]int{}
	for _, w := range want {
		k, _ := oracle.PairOf(w.Orig, w.Resp)
		i := seen[k]
		seen[k]++
		if i >= len(got[k]) {
			t.Errorf("%v: no record #%d (stderr %s)", w, i+1, stderr)
			continue
		}
		g := got[k][i]
		if w.HasState && g.ConnState != w.State {
			t.Errorf("%v: conn_state %s, Zeek %s", w, g.ConnState, w.State)
		}
		if d, ok := zeekDeviations[name]; ok {
			w.History, g.History = strings.ReplaceAll(w.History, d, ""), strings.ReplaceAll(g.History, d, "")
		}
		if w.HasHistory && g.History != w.History {
			t.Errorf("%v: history %s, Zeek %s", w, g.History, w.History)
		}
	}
	for k, rs := range got {
		if len(rs) != seen[k] {
			t.Errorf("%v: %d records, Zeek %d", k, len(rs), seen[k])
		}
	}
}

// compareStateLine compares the one connection of a capture with Zeek's
// "history, conn_state" line.
func compareStateLine(t *testing.T, name, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			want = l
		}
	}
	if want == "" {
		t.Fatal("no state line in the baseline")
	}
	_, recs, _ := flowtrack(t, "-r", filepath.Join("pcaps", name+".pcap"), "-o", "json")
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	if got := recs[0].History + ", " + recs[0].ConnState; got != want {
		t.Errorf("history, conn_state: %q, Zeek %q", got, want)
	}
}

// TestVLANKeys checks that the VLAN tags are part of a connection's key, as
// in Zeek's VLAN-aware conn.log baselines.
func TestVLANKeys(t *testing.T) {
	_, recs, _ := flowtrack(t, "-r", "pcaps/vlan-collisions.pcap", "-o", "json")
	// pcaps/baselines/vlan-collisions.zeek-conn-vlan-aware.log: one 4-tuple,
	// untagged, VLAN 10/20 and VLAN 42, 7+7 packets each.
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%v %d+%d", r.VLAN, r.PacketsC2S, r.PacketsS2C))
	}
	sort.Strings(got)
	if want := "[10 20] 7+7,[42] 7+7,[] 7+7"; strings.Join(got, ",") != want {
		t.Errorf("vlan-collisions: %q, want %q", strings.Join(got, ","), want)
	}
	// pcaps/baselines/qinq-vlan0-http.zeek-conn.log.cut: VLAN 0 inside VLAN 0.
	_, recs, _ = flowtrack(t, "-r", "pcaps/qinq-vlan0-http.pcap", "-o", "json")
	for _, r := range recs {
		if fmt.Sprint(r.VLAN) != "[0 0]" {
			t.Errorf("qinq-vlan0-http: %s -> %s vlan %v, want [0 0]", r.Client, r.Server, r.VLAN)
		}
	}
}

// TestJSONContract checks that every record carries the fields
// docs/json.md promises to every record, on a tagged capture so that vlan
// is present too.
func TestJSONContract(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-r", "pcaps/vlan-collisions.pcap", "-o", "json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	keys := []string{"proto", "client", "server", "client_state", "server_state", "midstream", "role", "packets_c2s", "packets_s2c",
		"bytes_c2s", "bytes_s2c", "payload_c2s", "payload_s2c", "retransmits_c2s", "retransmits_s2c", "gaps_c2s", "gaps_s2c", "rtt_ms",
		"first_seen", "last_seen", "conn_state", "history"}
	sawVLAN := false
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("no %q in %s", k, line)
			}
		}
		if _, ok := m["vlan"]; ok {
			sawVLAN = true
		}
		for _, k := range []string{"first_seen", "last_seen"} {
			if _, err := time.Parse(time.RFC3339Nano, m[k].(string)); err != nil {
				t.Errorf("%s: %v", k, err)
			}
		}
	}
	if !sawVLAN {
		t.Error("no record with vlan tags")
	}
}

// TestStateCertainty: an endpoint whose state the packets cannot tell for
// sure (in fin-wait-1.pcap the client's FIN was sent again and the
// server's ACK of it seen once more: whether that one arrived is not
// settled when the capture ends) has client_state_certain false in the
// JSON, right after the states, and a '?' in the table; a state that is
// sure has no such field (the server's CLOSE_WAIT, and every state of
// eth-http-get.pcap).
func TestStateCertainty(t *testing.T) {
	code, recs, stderr := flowtrack(t, "-r", "pcaps/kernel/fin-wait-1.pcap", "-o", "json")
	if code != 0 || len(recs) != 1 {
		t.Fatalf("exit %d, %d records: %s", code, len(recs), stderr)
	}
	r := recs[0]
	if r.ClientState != "FIN_WAIT_1" || r.ClientCertain == nil || *r.ClientCertain || r.ServerCertain != nil {
		t.Errorf("client %s (certain %v), server %s (certain %v): want FIN_WAIT_1 uncertain, the server certain",
			r.ClientState, r.ClientCertain, r.ServerState, r.ServerCertain)
	}
	if !strings.Contains(r.Raw, `"server_state":"CLOSE_WAIT","client_state_certain":false,"midstream"`) {
		t.Errorf("client_state_certain is not right after the states: %s", r.Raw)
	}
	var stdout, errb bytes.Buffer
	if code := run(context.Background(), []string{"-r", "pcaps/kernel/fin-wait-1.pcap", "-o", "table"}, &stdout, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(stdout.String(), " FIN_WAIT_1?   CLOSE_WAIT ") {
		t.Errorf("the table does not mark the client's state:\n%s", stdout.String())
	}
	_, recs, _ = flowtrack(t, "-r", "pcaps/eth-http-get.pcap", "-o", "json")
	for _, r := range recs {
		if r.ClientCertain != nil || r.ServerCertain != nil {
			t.Errorf("%s -> %s: a state marked uncertain in a complete capture: %s", r.Client, r.Server, r.Raw)
		}
	}
}

// TestFollowEvents streams events for a complete connection and checks
// that they trace its states in order, and that the last one equals the
// record that -o json prints.
func TestFollowEvents(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-r", "pcaps/eth-http-get.pcap", "-o", "json", "--follow"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var trace []string
	var last map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		trace = append(trace, fmt.Sprintf("%s %s/%s", m["event"], m["client_state"], m["server_state"]))
		last = m
	}
	// RFC 793: SYN; SYN-ACK (client ESTABLISHED on receipt, server
	// SYN_RECEIVED); ACK; client FIN; server FIN+ACK acknowledging it; the
	// last ACK.
	want := []string{
		"open SYN_SENT/CLOSED",
		"state ESTABLISHED/SYN_RECEIVED",
		"state ESTABLISHED/ESTABLISHED",
		"state FIN_WAIT_1/CLOSE_WAIT",
		"state TIME_WAIT/LAST_ACK",
		"state TIME_WAIT/CLOSED",
		"end TIME_WAIT/CLOSED",
	}
	if strings.Join(trace, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(trace, "\n"), strings.Join(want, "\n"))
	}
	_, recs, _ := flowtrack(t, "-r", "pcaps/eth-http-get.pcap", "-o", "json")
	if last["packets_c2s"].(float64) != float64(recs[0].PacketsC2S) || last["history"] != recs[0].History {
		t.Errorf("last event %v differs from the record %+v", last, recs[0])
	}
}

// TestOutputNone: -o none writes nothing but the summary (a daemon that
// only exports), and still tracks every connection.
func TestOutputNone(t *testing.T) {
	code, recs, stderr := flowtrack(t, "-r", "pcaps/wikipedia.pcap", "-o", "none")
	if code != 0 || len(recs) != 0 {
		t.Fatalf("exit %d, %d records: want 0 and none", code, len(recs))
	}
	// tshark: 10 TCP conversations in 136 frames.
	if !strings.Contains(stderr, "136 packets") || !strings.Contains(stderr, ", 10 connections") {
		t.Errorf("summary %q", stderr)
	}
}

// A set of files: a cut file among them is named at the end, with a
// non-zero exit, and every record is still written.
func TestReadSetWithCutFile(t *testing.T) {
	code, recs, stderr := flowtrack(t, "-r", "pcaps/wikipedia.pcap", "-r", "pcaps/cut-mid-record.pcap", "-o", "json")
	if code == 0 || len(recs) < 11 {
		t.Fatalf("exit %d with %d records: want an error and wikipedia's 10 connections and the cut file's", code, len(recs))
	}
	if !strings.Contains(stderr, "1 of 2 files could not be read whole") || !strings.Contains(stderr, "cut-mid-record.pcap: file is cut short") {
		t.Errorf("stderr %q: want the cut file named", stderr)
	}
}

// The summary names the frames flowtrack does not decode, by kind.
func TestSummaryNamesUndecoded(t *testing.T) {
	code, _, stderr := flowtrack(t, "-r", "pcaps/vntag-http.pcap", "-o", "json")
	want := "2 frames in an encapsulation flowtrack does not decode: 1 AppleTalk (ethertype 0x809b), 1 IPX (LLC SAP 0xe0)"
	if code != 0 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q: want %q", code, stderr, want)
	}
}
