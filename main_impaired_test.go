package main

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowtrack/flowtrack/internal/oracle"
)

const impairedDir = "pcaps/impaired"

// livePatterns are the patterns of the impaired scenarios recorded live
// (record.sh --impaired; pcaps/impaired/README.md): what the capture or
// the path between the hosts did.
var livePatterns = map[string]string{
	"syn-giveup":         "kernel timers",
	"synack-giveup":      "kernel timers",
	"synack-backoff":     "kernel timers",
	"fin-wait-2-orphan":  "kernel timers",
	"fin-wait-2-held":    "kernel timers",
	"rst-old":            "rst",
	"rst-old-timewait":   "rst",
	"rst-timewait-exact": "rst",
	"rst-timewait-ahead": "rst",
	"fin-lost-once":      "loss after the tap",
	"final-ack-lost":     "loss after the tap",
	"fin-cross-loss":     "loss after the tap",
	"fin-cross-loss-c":   "loss after the tap",
	"synack-lost-before": "loss before the tap",
	"data-lost-before":   "loss before the tap",
}

// impairedCaptures returns the impaired captures by name, with their
// pattern: those recorded live (SCENARIOS.tsv) and those made from
// recordings (DERIVED.tsv).
func impairedCaptures(t *testing.T) map[string]string {
	t.Helper()
	caps := map[string]string{}
	eachRow(t, filepath.Join(impairedDir, "SCENARIOS.tsv"), 9, func(f []string) {
		p, ok := livePatterns[f[0]]
		if !ok {
			t.Errorf("SCENARIOS.tsv: %s has no pattern in livePatterns", f[0])
		}
		caps[f[0]] = p
	})
	eachRow(t, filepath.Join(impairedDir, "DERIVED.tsv"), 5, func(f []string) { caps[f[0]] = f[3] })
	if len(caps) < 60 {
		t.Fatalf("only %d impaired captures", len(caps))
	}
	return caps
}

// eachRow calls fn with the fields of every row of a tab-separated file
// that has n of them; comment lines start with '#'.
func eachRow(t *testing.T, path string, n int, fn func([]string)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			fields := strings.Split(l, "\t")
			if len(fields) != n {
				t.Fatalf("%s: %q: %d fields, want %d", path, l, len(fields), n)
			}
			fn(fields)
		}
	}
}

// endpointScore tallies one pattern's endpoints.
type endpointScore struct {
	tellable, right        int // endpoints the capture can tell, and those flowtrack got right
	untellable, untellRite int // the others, and those right all the same
	flagged                int // endpoints marked uncertain
}

// TestImpairedStates replays the captures of pcaps/impaired (real Linux
// connections between two namespaces, recorded with loss before and after
// the capture point, injected RSTs and the kernel's long timers, and
// recordings made into captures that miss, reorder, duplicate or see one
// direction of the packets) and scores both endpoints' states against what
// ss said on each host. Every endpoint the capture can tell must be right;
// those it cannot (UNTELLABLE.tsv) are scored apart, and any of them
// flowtrack gets wrong must be marked uncertain. Packet and byte counts
// must be tshark's on the impaired file. The score, per pattern, is
// logged.
func TestImpairedStates(t *testing.T) {
	caps := impairedCaptures(t)
	untell := map[string]string{}
	eachRow(t, filepath.Join(impairedDir, "UNTELLABLE.tsv"), 4, func(f []string) {
		if _, ok := caps[f[0]]; !ok {
			t.Errorf("UNTELLABLE.tsv: no capture %s", f[0])
		}
		untell[f[0]+" "+f[1]+" "+f[2]] = f[3]
	})
	scores := map[string]*endpointScore{}
	for _, name := range slices.Sorted(maps.Keys(caps)) {
		sc := scores[caps[name]]
		if sc == nil {
			sc = &endpointScore{}
			scores[caps[name]] = sc
		}
		t.Run(name, func(t *testing.T) { scoreImpaired(t, name, untell, sc) })
	}
	var b strings.Builder
	var all endpointScore
	fmt.Fprintf(&b, "%-20s %9s %9s %11s %9s\n", "pattern", "tellable", "right", "untellable", "flagged")
	for _, p := range slices.Sorted(maps.Keys(scores)) {
		s := scores[p]
		fmt.Fprintf(&b, "%-20s %9d %9d %11d %9d\n", p, s.tellable, s.right, s.untellable, s.flagged)
		all.tellable += s.tellable
		all.right += s.right
		all.untellable += s.untellable
		all.untellRite += s.untellRite
		all.flagged += s.flagged
	}
	fmt.Fprintf(&b, "%-20s %9d %9d %11d %9d (untellable right all the same: %d)\n", "all", all.tellable, all.right, all.untellable, all.flagged, all.untellRite)
	t.Logf("endpoints of %d impaired captures:\n%s", len(caps), b.String())
}

// scoreImpaired replays one impaired capture and scores its endpoints.
func scoreImpaired(t *testing.T, name string, untell map[string]string, sc *endpointScore) {
	code, recs, stderr := flowtrack(t, "-r", filepath.Join(impairedDir, name+".pcap"), "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want, err := oracle.Streams(filepath.Join(impairedDir, "oracle", name+".pcap.streams.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	got := ours(recs)
	for p, w := range want {
		if g := got[p]; g == nil || g[0].Packets != w[0].Packets || g[1].Packets != w[1].Packets ||
			g[0].FrameBytes != w[0].FrameBytes || g[1].FrameBytes != w[1].FrameBytes {
			t.Errorf("%v: flowtrack counted %v, tshark %v", p, g, *w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d 4-tuples, tshark %d", len(got), len(want))
	}
	last := map[[2]string]jsonRecord{}
	for _, r := range recs {
		last[[2]string{r.Client, r.Server}] = r
	}
	ss, err := oracle.ReadSS(filepath.Join(impairedDir, name+".ss"))
	if err != nil || len(ss.Conns) == 0 {
		t.Fatalf("no ss truth: %v", err)
	}
	for _, c := range ss.Conns {
		r, ok := last[[2]string{c.Client, c.Server}]
		if !ok {
			t.Errorf("%s -> %s: no record", c.Client, c.Server)
			continue
		}
		for _, e := range []struct {
			side, ss, got string
			certain       *bool
		}{{"client", c.ClientState, r.ClientState, r.ClientCertain}, {"server", c.ServerState, r.ServerState, r.ServerCertain}} {
			want, _ := oracle.SSState(e.ss)
			why, untellable := untell[name+" "+c.Client+" "+e.side]
			if !untellable {
				why, untellable = untell[name+" * "+e.side]
			}
			right, flagged := e.got == want, e.certain != nil
			sc.tally(untellable, right, flagged)
			switch {
			case right:
			case untellable && !flagged:
				t.Errorf("%s %s: %s, ss %s: the capture cannot tell (%s), but the state is not marked uncertain", c.Client, e.side, e.got, want, why)
			case !untellable:
				t.Errorf("%s %s: %s, ss %s", c.Client, e.side, e.got, want)
			}
		}
	}
}

func (s *endpointScore) tally(untellable, right, flagged bool) {
	if flagged {
		s.flagged++
	}
	if untellable {
		s.untellable++
		if right {
			s.untellRite++
		}
		return
	}
	s.tellable++
	if right {
		s.right++
	}
}
