// Package nameslive holds the live test of connection names: real
// clients and servers between two network namespaces (names.sh).
package nameslive

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// record is what the test reads of flowtrack's JSON.
type record struct {
	Client, Server string
	ServerName     string   `json:"server_name"`
	NameSource     string   `json:"name_source"`
	ALPN           []string `json:"alpn"`
	DNSChain       []string `json:"dns_chain"`
}

// need fails the test when CI runs it without what it needs, and skips it
// otherwise, saying why.
func need(t *testing.T, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI: %s", why)
	}
	t.Skip(why)
}

// TestNamesLive runs names.sh: curl (TLS 1.3, TLS 1.2, HTTP/1, a CNAME
// chain, two names on one address, hellos split over segments by an MSS
// of 300), a raw TCP client named by DNS alone, and headless Chromium
// loading a page whose images come from another name, all by names
// dnsmasq answers; flowtrack captures live, with its default settings, on
// the client's side. Every connection must carry the name its client
// asked for, from where the script says. About 15 s.
func TestNamesLive(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the live names test runs real clients between network namespaces for ~15 s")
	}
	need(t, os.Geteuid() == 0, "not root: the live names test creates network namespaces (sudo go test ./tools/names-live)")
	for _, tool := range []string{"ip", "ethtool", "curl", "openssl", "nginx", "dnsmasq", "tcpdump", "tshark", "chromium"} {
		_, err := exec.LookPath(tool)
		need(t, err == nil, tool+" not found: make setup installs what the live names test needs")
	}
	dir := t.TempDir()
	ft := filepath.Join(dir, "flowtrack")
	build := exec.Command("go", "build", "-o", ft, "github.com/flowtrack/flowtrack")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building flowtrack: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "out")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "names.sh", ft, out)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) } // its trap cleans up
	cmd.WaitDelay = 20 * time.Second
	if b, err := cmd.CombinedOutput(); err != nil {
		logs, _ := os.ReadFile(filepath.Join(out, "log"))
		t.Fatalf("names.sh: %v\n%s\n%s", err, b, tail(logs, 40))
	}
	t.Cleanup(func() { leftovers(t, cmd.Process.Pid) })
	recs := readRecords(t, filepath.Join(out, "records.json"))
	if testing.Verbose() {
		for _, r := range recs {
			t.Logf("%s -> %s: %q (%s) alpn %v chain %v", r.Client, r.Server, r.ServerName, r.NameSource, r.ALPN, r.DNSChain)
		}
	}
	checkCurl(t, out, recs)
	checkChromium(t, out, recs)
	checkSplit(t, out)
}

func readRecords(t *testing.T, path string) []record {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}

// checkCurl checks each curl connection (by its client port) and the raw
// client's (the other connection to port 80) against expect.tsv.
func checkCurl(t *testing.T, out string, recs []record) {
	data, err := os.ReadFile(filepath.Join(out, "expect.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 7 {
		t.Fatalf("expect.tsv has %d cases", len(lines))
	}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		port, want, src := f[0], f[1], f[2]
		var found []record
		for _, r := range recs {
			cport := r.Client[strings.LastIndexByte(r.Client, ':')+1:]
			curl := strings.HasPrefix(cport, "4100")
			if cport == port || port == "raw" && !curl && strings.HasSuffix(r.Server, ":80") {
				found = append(found, r)
			}
		}
		if len(found) != 1 {
			t.Errorf("client port %s: %d connections", port, len(found))
			continue
		}
		r := found[0]
		if r.ServerName != want || r.NameSource != src {
			t.Errorf("client port %s (%s): named %q by %q; want %q by %q", port, r.Server, r.ServerName, r.NameSource, want, src)
		}
		if src == "sni" && !slices.Equal(r.ALPN, []string{"h2", "http/1.1"}) {
			t.Errorf("client port %s: ALPN %v; curl offers h2 and http/1.1", port, r.ALPN)
		}
		if strings.HasPrefix(want, "www.") {
			chain := []string{want, "mid.names18.test", "cdn.names18.test"}
			if !slices.Equal(r.DNSChain, chain) {
				t.Errorf("%s: DNS chain %v; dnsmasq's is %v", want, r.DNSChain, chain)
			}
		}
	}
}

// checkChromium: every connection to the page's server is named by the
// page's name, every one to the images' server by theirs, both by SNI.
func checkChromium(t *testing.T, out string, recs []record) {
	data, err := os.ReadFile(filepath.Join(out, "chromium.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(filepath.Join(out, "chromium.html"))
	if strings.Count(string(html), "<img") != 4 {
		t.Errorf("chromium did not load the page: %q", tail(html, 5))
	}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Split(l, "\t")
		server, want := f[0], f[1]
		n := 0
		for _, r := range recs {
			if r.Server != server || strings.HasPrefix(r.Client[strings.LastIndexByte(r.Client, ':')+1:], "4100") {
				continue
			}
			n++
			if r.ServerName != want || r.NameSource != "sni" || !slices.Contains(r.ALPN, "h2") {
				t.Errorf("chromium %s -> %s: named %q by %q, ALPN %v; want %q by sni, with h2", r.Client, server, r.ServerName, r.NameSource, r.ALPN, want)
			}
		}
		if n == 0 {
			t.Errorf("no chromium connection to %s", server)
		}
	}
}

// checkSplit makes sure, with tshark on tcpdump's capture of the same
// interface, that the hellos were indeed split: every ClientHello came in
// two segments or more.
func checkSplit(t *testing.T, out string) {
	b, err := exec.Command("tshark", "-r", filepath.Join(out, "wire.pcap"), "-Y", "tls.handshake.type == 1",
		"-T", "fields", "-e", "tcp.srcport", "-e", "tcp.segment.count").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 8 {
		t.Fatalf("tshark found %d ClientHellos", len(lines))
	}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if n, _ := strconv.Atoi(f[len(f)-1]); n < 2 {
			t.Errorf("the ClientHello from port %s came in one segment: %q", f[0], l)
		}
	}
}

// leftovers fails the test, and removes them, if names.sh left its
// namespaces behind.
func leftovers(t *testing.T, pid int) {
	for _, ns := range []string{"names18-" + strconv.Itoa(pid) + "-c", "names18-" + strconv.Itoa(pid) + "-s"} {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
			t.Errorf("namespace %s left behind", ns)
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
	}
}

func tail(b []byte, n int) string {
	lines := strings.Split(string(b), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
