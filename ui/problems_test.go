package ui

import (
	"flag"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/flowtrack/flowtrack/capture"
	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/internal/judgecap"
)

// problemsDir holds captures of real kernel sockets made to fail by
// design (tools/netns-problems), and what each design makes.
var problemsDir = filepath.Join("..", "pcaps", "problems")

// readPackets decodes the TCP packets of a capture file.
func readPackets(t *testing.T, path string) []flows.Packet {
	t.Helper()
	src, err := capture.OpenFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	d := capture.NewDecoder()
	var ps []flows.Packet
	for {
		data, ci, link, err := src.Next()
		if err != nil {
			break
		}
		var p flows.Packet
		if d.Decode(link, data, ci, &p) == capture.ResultTCP {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		t.Fatalf("%s: no TCP packet", path)
	}
	return ps
}

// designed is what a scenario of SCENARIOS.tsv makes: its thresholds, and
// for each kind of problem, the connections that have it and the side it
// is about.
type designed struct {
	name  string
	cfg   diag.Config
	conns map[string]int    // kind -> connections
	side  map[string]string // kind -> "client" or "server"
}

// Its expect column: "conns=N", "service:...", and "N:kind/side~words,..."
// or "N-M:..." (words may hold spaces, or underscores for them).
var (
	connItem = regexp.MustCompile(`(?:^|\s)(\d+)(?:-(\d+))?:(\S+)`)
	kindSide = regexp.MustCompile(`(?:^|,)([a-z0-9-]+)/(client|server)`)
)

func readScenarios(t *testing.T) []designed {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(problemsDir, "SCENARIOS.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var out []designed
	for _, ln := range strings.Split(string(b), "\n") {
		if ln == "" || strings.HasPrefix(ln, "#") {
			continue
		}
		f := strings.Split(ln, "\t")
		if len(f) != 5 {
			t.Fatalf("SCENARIOS.tsv: %q has %d fields, want 5", ln, len(f))
		}
		d := designed{name: f[0], conns: map[string]int{}, side: map[string]string{}}
		fs := flag.NewFlagSet("flowtrack", flag.ContinueOnError)
		d.cfg.AddFlags(fs)
		if err := fs.Parse(strings.Fields(f[2])); err != nil {
			t.Fatalf("SCENARIOS.tsv: %s: %v", d.name, err)
		}
		for _, m := range connItem.FindAllStringSubmatch(f[3], -1) {
			lo, _ := strconv.Atoi(m[1])
			hi := lo
			if m[2] != "" {
				hi, _ = strconv.Atoi(m[2])
			}
			for _, ks := range kindSide.FindAllStringSubmatch(m[3], -1) {
				d.conns[ks[1]] += hi - lo + 1
				d.side[ks[1]] = ks[2]
			}
		}
		out = append(out, d)
	}
	if len(out) < 10 {
		t.Fatalf("SCENARIOS.tsv: %d scenarios", len(out))
	}
	return out
}

// problemsView reads the Problems view's rows: kind -> connections.
func (h *harness) problemsView() map[string]int {
	h.t.Helper()
	got := map[string]int{}
	lines := strings.Split(h.text(), "\n")
	if len(lines) < 4 || !strings.HasPrefix(lines[2], "Problem ") {
		h.t.Fatalf("not the Problems view:\n%s", h.text())
	}
	for _, l := range lines[3 : len(lines)-2] {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			h.t.Fatalf("a row of the Problems view: %q", l)
		}
		got[f[0]] = n
	}
	return got
}

// TestProblemsViewOnRecordedScenarios replays each capture of real kernel
// sockets made to fail by design into the view, with its thresholds: the
// Problems view lists exactly the kinds the design makes, each with the
// number of connections that have it; Enter on the most severe lists those
// connections, with the kind in the Problem column, and their detail names
// it, about the side the design says, with its evidence packets. The
// clean scenario shows no problem, and no Problem column.
func TestProblemsViewOnRecordedScenarios(t *testing.T) {
	for _, sc := range readScenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			ps := readPackets(t, filepath.Join(problemsDir, sc.name+".pcap"))
			judge := diag.New(sc.cfg)
			h := newHarness(t, 200, 50, ps, func(c *Config, _ *flows.Config) { c.Judge = judge })
			if len(sc.conns) == 0 {
				if l, _ := h.line("Server st"); strings.Contains(l, "Problem") {
					t.Errorf("a Problem column without a problem:\n%s", h.text())
				}
			}
			h.key(tcell.KeyTab)
			h.key(tcell.KeyTab)
			got := h.problemsView()
			if !maps.Equal(got, sc.conns) {
				t.Fatalf("the Problems view shows %v, the design makes %v:\n%s", got, sc.conns, h.text())
			}
			if len(sc.conns) == 0 {
				return
			}
			checkWorst(t, h, sc)
		})
	}
}

// checkWorst opens the most severe kind of the Problems view (its first
// row), and the first of its connections.
func checkWorst(t *testing.T, h *harness, sc designed) {
	t.Helper()
	kinds := slices.Collect(maps.Keys(sc.conns))
	slices.SortFunc(kinds, func(a, b string) int {
		ka, _ := diag.ParseKind(a)
		kb, _ := diag.ParseKind(b)
		return int(severity[ka]) - int(severity[kb])
	})
	worst := kinds[0]
	if l, _ := h.line("Last seen"); l == "" {
		t.Fatalf("no Problems view:\n%s", h.text())
	}
	h.keys("g")
	h.key(tcell.KeyEnter)
	bar, _ := h.line("Connections ")
	if !strings.Contains(bar, "Connections "+strconv.Itoa(sc.conns[worst])+" ") || !strings.Contains(bar, "filter: problem:"+worst) {
		t.Fatalf("Enter on %s: %q, want its %d connections:\n%s", worst, bar, sc.conns[worst], h.text())
	}
	k, _ := diag.ParseKind(worst)
	if n := strings.Count(h.text(), " "+shortKind(k)+" "); n != sc.conns[worst] {
		t.Errorf("%d rows say %s in the Problem column, want %d:\n%s", n, shortKind(k), sc.conns[worst], h.text())
	}
	h.keys("g")
	h.key(tcell.KeyEnter)
	text := h.text()
	want := regexp.MustCompile(`(?m)^ ` + regexp.QuoteMeta(worst) + ` +the ` + sc.side[worst] + `, since \d\d:\d\d:\d\d\.\d{3} \(`)
	if !want.MatchString(text) {
		t.Errorf("the detail view does not name %s about the %s:\n%s", worst, sc.side[worst], text)
	}
	if !regexp.MustCompile(`(?m)^   \d\d:\d\d:\d\d\.\d{3}  (client→server|server→client)  \S+`).MatchString(text) {
		t.Errorf("the detail view lists no evidence packet:\n%s", text)
	}
	h.key(tcell.KeyEscape)
	h.key(tcell.KeyEscape)
	if l, _ := h.line("Last seen"); l == "" {
		t.Errorf("Esc Esc did not come back to the Problems view:\n%s", h.text())
	}
}

// TestProblemsMatchHeadless: on every bundled capture, each connection's
// problems in the view (its row, as a finished replay shows it, lingering
// records and all) are those the headless output judges
// (internal/judgecap, as --problems and the JSON do), and the detail view
// judges the same.
func TestProblemsMatchHeadless(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "pcaps", "*.pcap*"))
	if err != nil || len(files) < 20 {
		t.Fatalf("%d bundled captures: %v", len(files), err)
	}
	files = append(files, filepath.Join(problemsDir, "close-wait.pcap"), filepath.Join(problemsDir, "zero-window.pcap"))
	withProblems := 0
	for _, path := range files {
		conns, _, err := judgecap.File(path, diag.Config{})
		if err != nil {
			continue // a bundled damaged file (capture's tests)
		}
		headless := map[string]diag.Set{}
		for _, c := range conns {
			var s diag.Set
			for _, p := range c.Problems {
				s = s.Add(p.Kind)
			}
			headless[connKey(c.Record.Client, c.Record.Server, c.Record.FirstSeen.UnixNano())] = s
		}
		ret := NewRetired(0)
		tab := flows.NewTable(flows.Config{OnRetire: ret.Add})
		for _, p := range readPacketsAny(t, path) {
			tab.Apply(&p)
		}
		b := newBuilder(&Config{Table: tab, Retired: ret, Linger: time.Hour}, func() time.Time { return t0 })
		b.commit(b.full(&request{}))
		f := b.full(&request{}) // the services' usual RTTs known
		seen := 0
		for _, r := range f.rows {
			k := connKey(r.client(), r.server(), r.first)
			want, ok := headless[k]
			if !ok {
				continue
			}
			seen++
			if r.probs != want {
				t.Errorf("%s: %s: the view has %v, headless %v", filepath.Base(path), k, r.probs, want)
			}
			if want != 0 {
				withProblems++
				rec, _ := b.lookup(r.key, r.id)
				if got := kindsOf(b.detailProblems(rec)); got != want {
					t.Errorf("%s: %s: the detail has %v, headless %v", filepath.Base(path), k, got, want)
				}
			}
		}
		if seen != len(headless) {
			t.Errorf("%s: %d of %d connections found in the view", filepath.Base(path), seen, len(headless))
		}
	}
	if withProblems < 20 {
		t.Errorf("only %d connections with problems: the test proves little", withProblems)
	}
}

func connKey(c, s netip.AddrPort, first int64) string {
	return c.String() + " " + s.String() + " " + strconv.FormatInt(first, 10)
}

func kindsOf(ps []diag.Problem) diag.Set {
	var s diag.Set
	for i := range ps {
		s = s.Add(ps[i].Kind)
	}
	return s
}

// readPacketsAny is readPackets for a capture that may hold no TCP.
func readPacketsAny(t *testing.T, path string) []flows.Packet {
	t.Helper()
	src, err := capture.OpenFile(path, "")
	if err != nil {
		return nil // a bundled bad file: judgecap read nothing either
	}
	defer src.Close()
	d := capture.NewDecoder()
	var ps []flows.Packet
	for {
		data, ci, link, err := src.Next()
		if err != nil {
			return ps
		}
		var p flows.Packet
		if d.Decode(link, data, ci, &p) == capture.ResultTCP {
			ps = append(ps, p)
		}
	}
}

// TestSlowConnectAgainstServiceRTT: a handshake far slower than its
// service's usual (diag's rule: above 4 times the median and the median
// plus 100 ms, once 20 handshakes are known) is slow-connect in the view,
// judged against the medians of the rows it shows.
func TestSlowConnectAgainstServiceRTT(t *testing.T) {
	var ps []flows.Packet
	for i := range 25 {
		c := &conv{c: "10.0.0.1:" + strconv.Itoa(40000+i), s: "10.0.0.2:80", at: time.Duration(i) * ms(10), out: &ps}
		c.handshake() // RTT 2 ms
	}
	slow := &conv{c: "10.0.0.3:50000", s: "10.0.0.2:80", at: ms(300), out: &ps}
	slow.send(true, flows.SYN, 1000, 0, 0, 0).
		send(false, flows.SYN|flows.ACK, 5000, 1001, 0, ms(300)).
		send(true, flows.ACK, 1001, 5001, 0, ms(1))
	sortPackets(ps)
	tab := flows.NewTable(flows.Config{})
	for i := range ps {
		tab.Apply(&ps[i])
	}
	b := newBuilder(&Config{Table: tab}, func() time.Time { return t0 })
	b.commit(b.full(&request{}))
	f := b.full(&request{})
	n := 0
	for _, r := range f.rows {
		isSlow := r.client().Addr() == netip.MustParseAddr("10.0.0.3")
		if r.probs.Has(diag.SlowConnect) != isSlow {
			t.Errorf("%v (RTT %dµs): %v", r.client(), r.rtt, r.probs)
		}
		n++
	}
	if n != 26 {
		t.Fatalf("%d rows, want 26", n)
	}
}

// TestProblemsOfEndedConnections: the Problems view keeps counting the
// problems of the connections that left the table once their rows are
// gone (Ended), each once, with when it was last seen.
func TestProblemsOfEndedConnections(t *testing.T) {
	ret := NewRetired(0)
	tab := flows.NewTable(flows.Config{ClosedTimeout: time.Second, SweepEvery: 100 * time.Millisecond, OnRetire: ret.Add})
	var ps []flows.Packet
	(&conv{c: "10.0.0.4:51000", s: "10.0.0.2:443", out: &ps}).send(true, flows.SYN, 1000, 0, 0, 0).
		send(false, flows.RST|flows.ACK, 0, 1001, 0, ms(1)) // refused
	(&conv{c: "10.0.0.1:40000", s: "10.0.0.2:80", out: &ps}).handshake()
	for i := range ps {
		tab.Apply(&ps[i])
	}
	b := newBuilder(&Config{Table: tab, Retired: ret, Linger: time.Second}, func() time.Time { return t0 })
	req := &request{view: viewProblems}
	b.commit(b.full(req))
	if p := b.shown.probs; len(p) != 1 || p[0].kind != diag.Refused || p[0].conns != 1 || p[0].ended != 0 {
		t.Fatalf("before it leaves: %+v", p)
	}
	// Packets on the other connection move the clock on: the refused one
	// leaves the table (closed for 1 s), lingers 1 s, and its row goes.
	for i, at := range []time.Duration{3 * time.Second, 6 * time.Second, 9 * time.Second} {
		p := pkt("10.0.0.1:40000", "10.0.0.2:80", flows.ACK|flows.PSH, 1001, 5001, 10, at)
		p.Seq += uint32(10 * i)
		tab.Apply(&p)
		b.commit(b.full(req))
	}
	if _, ok := b.shown.find(1); ok {
		t.Fatal("the refused connection still has its row: the test proves nothing")
	}
	p := b.shown.probs
	if len(p) != 1 || p[0].kind != diag.Refused || p[0].conns != 0 || p[0].ended != 1 {
		t.Fatalf("once it left: %+v", p)
	}
	if want := t0.Add(ms(1)).UnixNano(); p[0].last != want || len(p[0].svcs) != 1 || p[0].svcs[0].String() != "10.0.0.2:443" {
		t.Errorf("last seen %v (want the RST's time), services %v", time.Unix(0, p[0].last).UTC(), p[0].svcs)
	}
}
