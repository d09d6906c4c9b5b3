package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/internal/judgecap"
	"github.com/flowtrack/flowtrack/internal/testenv"
)

// manifestRow is one line of SCENARIOS.tsv.
type manifestRow struct {
	name, expect, desc string
	flags              []string
}

func readManifest(t *testing.T, path string) []manifestRow {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows []manifestRow
	for _, ln := range strings.Split(string(b), "\n") {
		if ln == "" || strings.HasPrefix(ln, "#") {
			continue
		}
		f := strings.Split(ln, "\t")
		if len(f) != 5 {
			t.Fatalf("%s: %q has %d fields, want 5", path, ln, len(f))
		}
		rows = append(rows, manifestRow{name: f[0], flags: strings.Fields(f[2]), expect: f[3], desc: f[4]})
	}
	return rows
}

// config returns the thresholds of flowtrack's command-line flags.
func config(t *testing.T, flags []string) diag.Config {
	t.Helper()
	var cfg diag.Config
	fs := flag.NewFlagSet("flowtrack", flag.ContinueOnError)
	cfg.AddFlags(fs)
	if err := fs.Parse(flags); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestRecordedScenarios judges each capture of pcaps/problems (recorded
// from real kernel sockets by this program) with the thresholds its row of
// SCENARIOS.tsv names, and finds exactly the problems its design makes:
// on the connections, with the sides and the words it names, and nothing
// on the others (the clean scenario: nothing at all). It needs no root.
func TestRecordedScenarios(t *testing.T) {
	dir := filepath.Join("..", "..", "pcaps", "problems")
	tsv := filepath.Join(dir, "SCENARIOS.tsv")
	if b, err := os.ReadFile(tsv); err != nil {
		t.Fatal(err)
	} else if !bytes.Equal(b, manifest()) {
		t.Errorf("%s is not what this program's scenario table writes: record the scenarios that changed again "+
			"(go run ./tools/netns-problems record -out pcaps/problems NAME..., as root)", tsv)
	}
	for _, row := range readManifest(t, tsv) {
		t.Run(row.name, func(t *testing.T) {
			checkScenario(t, filepath.Join(dir, row.name+".pcap"), row)
		})
	}
}

// checkScenario judges a scenario's capture and compares with its row.
func checkScenario(t *testing.T, pcap string, row manifestRow) {
	t.Helper()
	conns, services, err := judgecap.File(pcap, config(t, row.flags))
	if err != nil {
		t.Fatal(err)
	}
	want, err := parseExpect(row.expect, len(conns))
	if err != nil {
		t.Fatal(err)
	}
	if want.conns >= 0 && len(conns) != want.conns {
		t.Errorf("%d connections, the design makes %d", len(conns), want.conns)
	}
	for i, c := range conns {
		got := map[string]string{}
		for _, p := range c.Problems {
			got[p.Kind.String()+"/"+p.Side.String()] = p.Detail
		}
		exp := want.perConn[i+1]
		for k, words := range exp {
			d, ok := got[k]
			switch {
			case !ok:
				t.Errorf("connection %d (%v): no %s; it has %v", i+1, c.Record.Client, k, keys(got))
			case words != "" && !strings.Contains(d, words):
				t.Errorf("connection %d: %s says %q, without %q", i+1, k, d, words)
			}
		}
		for k, d := range got {
			if _, ok := exp[k]; !ok {
				t.Errorf("connection %d (%v): %s, which the design does not make: %s", i+1, c.Record.Client, k, d)
			}
		}
	}
	checkServices(t, services, want)
}

func checkServices(t *testing.T, services []diag.Summary, want expectation) {
	t.Helper()
	var kinds []string
	leak := false
	for _, s := range services {
		for _, p := range s.Problems {
			kinds = append(kinds, p.Kind.String())
		}
		leak = leak || s.Leaking
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, want.service) {
		t.Errorf("service problems %v, the design makes %v", kinds, want.service)
	}
	if leak != want.leak {
		t.Errorf("a service leaking CLOSE_WAIT sockets: %v, the design says %v", leak, want.leak)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// expectation is a parsed expect column.
type expectation struct {
	conns   int                       // -1: not said
	perConn map[int]map[string]string // connection (1-based) -> "kind/side" -> words its detail must hold
	service []string                  // the service's problems' kinds, sorted
	leak    bool                      // a service's CLOSE_WAIT count keeps growing
}

// parseExpect parses SCENARIOS.tsv's expect column (see scenario.expect)
// for a capture of n connections.
func parseExpect(s string, n int) (expectation, error) {
	e := expectation{conns: -1, perConn: map[int]map[string]string{}}
	for _, item := range strings.Fields(s) {
		switch {
		case strings.HasPrefix(item, "conns="):
			k, err := strconv.Atoi(strings.TrimPrefix(item, "conns="))
			if err != nil {
				return e, fmt.Errorf("%q: %w", item, err)
			}
			e.conns = k
		case item == "service:leak":
			e.leak = true
		case strings.HasPrefix(item, "service:"):
			e.service = append(e.service, strings.TrimPrefix(item, "service:"))
		default:
			if err := e.addConns(item, n); err != nil {
				return e, err
			}
		}
	}
	slices.Sort(e.service)
	return e, nil
}

// addConns parses "N:kind/side~words,..." or "N-M:...".
func (e *expectation) addConns(item string, n int) error {
	who, what, ok := strings.Cut(item, ":")
	if !ok {
		return fmt.Errorf("%q: want N:kind/side", item)
	}
	lo, hi, isRange := strings.Cut(who, "-")
	from, err1 := strconv.Atoi(lo)
	to := from
	var err2 error
	if isRange {
		to, err2 = strconv.Atoi(hi)
	}
	if err1 != nil || err2 != nil || from < 1 || to < from {
		return fmt.Errorf("%q: bad connection number", item)
	}
	for i := from; i <= to; i++ {
		if e.perConn[i] == nil {
			e.perConn[i] = map[string]string{}
		}
		for _, p := range strings.Split(what, ",") {
			k, words, _ := strings.Cut(p, "~")
			e.perConn[i][k] = strings.ReplaceAll(words, "_", " ")
		}
	}
	return nil
}

// TestLiveScenarios records every scenario afresh between namespaces of
// its own (root) and judges the new captures as TestRecordedScenarios
// does the committed ones: the kernel of the machine running the test
// must still make each problem. About 10 s, the scenarios running at once.
func TestLiveScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the live scenarios run real connections between network namespaces for about 10 s")
	}
	if os.Geteuid() != 0 {
		testenv.Missing(t, "not root: the live scenarios create network namespaces (run as root, e.g. sudo go test ./tools/netns-problems -run TestLiveScenarios)")
	}
	for _, tool := range []string{"ip", "nft", "tcpdump", "ethtool", "sysctl", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, "%s not found: the live scenarios need it (make setup installs the packages)", tool)
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "netns-problems")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "out")
	if b, err := exec.Command(bin, "record", "-out", out).CombinedOutput(); err != nil {
		t.Fatalf("record: %v\n%s", err, b)
	}
	for _, row := range readManifest(t, filepath.Join(out, "SCENARIOS.tsv")) {
		t.Run(row.name, func(t *testing.T) { checkScenario(t, filepath.Join(out, row.name+".pcap"), row) })
	}
}
