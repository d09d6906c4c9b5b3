package ui

import (
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// fakeLocal is a process lookup keyed by the client's address:port, as
// a live capture's sockets.Resolver would answer for the scenario's
// connections, and counts its calls.
type fakeLocal struct {
	calls atomic.Int64
	by    map[string]local.Info
}

func (f *fakeLocal) lookup(r *flows.Record) local.Info {
	f.calls.Add(1)
	return f.by[r.Client.String()]
}

func scenarioLocal() *fakeLocal {
	return &fakeLocal{by: map[string]local.Info{
		// A local client: curl, both ends on this host over loopback.
		"10.0.0.1:40002": {PID: 4242, Process: "curl", KernelClient: kernel(flows.StateEstablished), KernelServer: kernel(flows.StateEstablished)},
		// A local server only: its socket's process.
		"10.0.0.5:40010": {PID: 77, Process: "Python3", KernelServer: kernel(flows.StateFinWait2)},
	}}
}

// kernel is the kernel's state of a socket it lists.
func kernel(s flows.State) local.Kernel { return local.Kernel{State: s, Known: true} }

// withLocal gives the UI the process lookup of a live capture.
func withLocal(l *fakeLocal) func(*Config, *flows.Config) {
	return func(c *Config, _ *flows.Config) { c.Local, c.Processes = l.lookup, true }
}

// fakeNames is a Names whose answers the test sets: unknown until set,
// like a resolver whose lookups are still in flight.
type fakeNames struct {
	mu      sync.Mutex
	names   map[netip.Addr]string
	asked   map[netip.Addr]bool
	version uint64
}

func newFakeNames() *fakeNames {
	return &fakeNames{names: map[netip.Addr]string{}, asked: map[netip.Addr]bool{}}
}

func (n *fakeNames) Name(a netip.Addr) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.asked[a.Unmap()] = true
	name, ok := n.names[a.Unmap()]
	return name, ok
}

func (n *fakeNames) Version() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.version
}

// arrive makes a name known, as a finished lookup does.
func (n *fakeNames) arrive(addr, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.names[netip.MustParseAddr(addr)] = name
	n.version++
}

func (n *fakeNames) wasAsked(addr string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.asked[netip.MustParseAddr(addr)]
}

func withNames(n *fakeNames, show bool) func(*Config, *flows.Config) {
	return func(c *Config, _ *flows.Config) { c.Names, c.ShowNames = n, show }
}

// helpText returns the whole text of the help overlay, without its style
// tags, read on the event goroutine.
func (h *harness) helpText() string {
	h.t.Helper()
	done := make(chan string)
	go h.u.Load().app.QueueUpdate(func() { done <- h.u.Load().help.GetText(true) })
	select {
	case s := <-done:
		return s
	case <-time.After(10 * time.Second):
		h.t.Fatal("could not read the help")
	}
	return ""
}

func TestProcessColumn(t *testing.T) {
	loc := scenarioLocal()
	h := newHarness(t, 120, 30, scenario(), withLocal(loc))
	head, _ := h.line("Server st") // abbreviated or not: the scenario's problems take room

	if !strings.Contains(head, "Process") {
		t.Fatalf("no Process column at 120 wide: %q", head)
	}
	if l, _ := h.line("10.0.0.1:40002"); !strings.Contains(l, "curl[4242]") {
		t.Errorf("the local client's process is not shown: %q", l)
	}
	if l, _ := h.line("10.0.0.5:40010"); !strings.Contains(l, "Python3[77]") {
		t.Errorf("the local server's process is not shown: %q", l)
	}
	if l, _ := h.line("10.0.0.3:50000"); !strings.Contains(l, " - ") {
		t.Errorf("a connection with no local process does not say -: %q", l)
	}
	if loc.calls.Load() == 0 {
		t.Fatal("the lookup was never called")
	}

	// The filter matches the process name (any case) and the PID.
	for _, f := range []string{"curl", "CURL", "l[4242", "proc:cur"} {
		h.keys("/" + f)
		h.key(tcell.KeyEnter)
		if l, _ := h.line("Connections"); !strings.Contains(l, "Connections 1 ") {
			t.Errorf("/%s: %q, want 1 connection:\n%s", f, l, h.text())
		}
		if l, _ := h.line("curl[4242]"); l == "" {
			t.Errorf("/%s: the connection of curl is not listed", f)
		}
		h.key(tcell.KeyEscape)
	}
	h.keys("/python")
	h.key(tcell.KeyEnter)
	if l, _ := h.line("Connections"); !strings.Contains(l, "Connections 1 ") {
		t.Errorf("/python: %q, want 1 connection", l)
	}
	h.key(tcell.KeyEscape)

	// Sorted by process: named first, by name, the rest after.
	h.clickHeader("Process")
	if l, _ := h.line("sorted by"); !strings.Contains(l, "sorted by Process ▲") {
		t.Fatalf("a click on the Process header: %q", l)
	}
	if _, y := h.line("curl[4242]"); y != 3 {
		t.Errorf("curl is on line %d, want 3 (first)", y)
	}
	if _, y := h.line("Python3[77]"); y != 4 {
		t.Errorf("Python3 is on line %d, want 4", y)
	}

	// The detail view shows the kernel's states beside flowtrack's.
	h.keys("g")
	h.key(tcell.KeyEnter)
	if l, _ := h.line("kernel:"); strings.Join(strings.Fields(l), " ") != "kernel: ESTABLISHED kernel: ESTABLISHED" {
		t.Errorf("the kernel's states: %q", l)
	}
	if l, _ := h.line("process "); strings.Join(strings.Fields(l), " ") != "process curl[4242]" {
		t.Errorf("the process: %q", l)
	}
	h.key(tcell.KeyEscape)

	// The help lists the column and says the filter matches it.
	h.keys("?")
	text := strings.Join(strings.Fields(h.helpText()), " ")
	for _, want := range []string{"Process PID/command", "the conn_state or the Process column (PID/command), ignoring case", "conn_state, process or problem"} {
		if !strings.Contains(text, want) {
			t.Errorf("the help lacks %q:\n%s", want, text)
		}
	}
}

func TestProcessDetailWithoutProcess(t *testing.T) {
	h := newHarness(t, 120, 40, scenario(), withLocal(scenarioLocal()))
	_, y := h.line("10.0.0.5:40010")
	for range y - 3 {
		h.key(tcell.KeyDown)
	}
	h.key(tcell.KeyEnter)
	// The kernel's states line up under flowtrack's.
	st, _ := h.line("state ")
	k, _ := h.line("kernel:")
	if strings.Join(strings.Fields(k), " ") != "kernel: - kernel: FIN_WAIT_2" || strings.Index(k, "kernel: F") != strings.Index(st, "FIN_WAIT_2") {
		t.Errorf("the kernel's states do not line up with flowtrack's:\n%s\n%s", st, k)
	}
	if l, _ := h.line("process "); strings.Join(strings.Fields(l), " ") != "process Python3[77]" {
		t.Errorf("the process: %q", l)
	}
}

func TestNoProcessColumnInReplay(t *testing.T) {
	h := newHarness(t, 200, 50, scenario())
	if l, _ := h.line("Client state"); strings.Contains(l, "Process") {
		t.Errorf("a Process column without a lookup: %q", l)
	}
	h.keys("?")
	if text := h.helpText(); strings.Contains(text, "PID/command") || strings.Contains(text, "Process") {
		t.Errorf("the help describes a Process column without one:\n%s", text)
	}
}

func TestProcessColumnNarrow(t *testing.T) {
	h := newHarness(t, 200, 30, scenario(), withLocal(scenarioLocal()))
	if l, _ := h.line("Client state"); !strings.Contains(l, "Process") || !strings.Contains(l, "conn_state") {
		t.Errorf("200 wide: not every column: %q", l)
	}
	for _, w := range []int{120, 100, 80, 66, 50} {
		h.resize(w, 20)
		head, _ := h.line("Client")
		if l, _ := h.line(".5:40010"); !strings.Contains(l, "CLOSE_WAIT") || !strings.Contains(l, "FIN_WAIT_2") {
			t.Errorf("width %d: states missing: %q", w, l)
		}
		for _, l := range strings.Split(h.text(), "\n") {
			if n := len([]rune(l)); n > w {
				t.Errorf("width %d: a line of %d: %q", w, n, l)
			}
		}
		// The Process column goes before Bytes and Rate, after the
		// essentials.
		if strings.Contains(head, "Bytes") && !strings.Contains(head, "Process") {
			t.Errorf("width %d: Bytes shown before Process: %q", w, head)
		}
		if w == 50 && strings.Contains(head, "Process") {
			t.Errorf("width 50: the Process column is kept over the essentials: %q", head)
		}
	}
}

func TestKernelAgreementHeader(t *testing.T) {
	h := newHarness(t, 120, 30, scenario(), withLocal(scenarioLocal()))
	h.agree.Store(3)
	h.tick()
	hd, _ := h.line("test.pcap")
	if !strings.Contains(hd, "kernel agreed 3/3") {
		t.Errorf("header: %q", hd)
	}
	if _, bg, _ := h.styleAt("kernel agreed").Decompose(); bg == tcell.ColorYellow {
		t.Errorf("full agreement shown as a warning")
	}
	h.disagree.Store(1)
	h.tick()
	if hd, _ := h.line("test.pcap"); !strings.Contains(hd, "kernel agreed 3/4") {
		t.Errorf("header: %q", hd)
	}
	if _, bg, _ := h.styleAt("kernel agreed").Decompose(); bg != tcell.ColorYellow {
		t.Errorf("a disagreement is not shown as a warning (background %v)", bg)
	}
}

func TestEvictionsInHeader(t *testing.T) {
	h := newHarness(t, 120, 30, scenario(), func(_ *Config, t *flows.Config) {
		t.Shards, t.MaxConns = 1, 4
	})
	n := h.table.Evicted()
	if n == 0 {
		t.Fatal("the table evicted nothing: the test proves nothing")
	}
	hd, _ := h.line("test.pcap")
	want := "evicted " + itoa(n)
	if !strings.Contains(hd, want) {
		t.Fatalf("header %q lacks %q", hd, want)
	}
	if _, bg, _ := h.styleAt(want).Decompose(); bg != tcell.ColorYellow {
		t.Errorf("evictions not in the warning colour (background %v)", bg)
	}
	h.resize(80, 24)
	if hd, _ := h.line("test.pcap"); !strings.Contains(hd, "evict") {
		t.Errorf("80 wide, the header drops the evictions: %q", hd)
	}
	// Without evictions, nothing is said.
	h2 := newHarness(t, 120, 30, scenario())
	if hd, _ := h2.line("test.pcap"); strings.Contains(hd, "evict") {
		t.Errorf("header without evictions: %q", hd)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestReplayProgress(t *testing.T) {
	h := newHarness(t, 120, 30, scenario())
	h.progress.Store(420)
	h.tick()
	if hd, _ := h.line("test.pcap"); !strings.Contains(hd, "replay 1x 42%") {
		t.Errorf("header: %q", hd)
	}
}

func TestNamesKey(t *testing.T) {
	names := newFakeNames()
	h := newHarness(t, 200, 40, scenario(), withNames(names, false))
	// Numeric at first, as with -n; nothing is asked for.
	if l, _ := h.line("10.0.0.1:40002"); !strings.Contains(l, "10.0.0.2:80") {
		t.Fatalf("not numeric at first: %q", l)
	}
	if names.wasAsked("10.0.0.2") {
		t.Error("a name was looked up while names are off")
	}
	if l, _ := h.line("q quit"); !strings.Contains(l, "n names") {
		t.Errorf("the footer lacks n: %q", l)
	}
	h.keys("n")
	if l, _ := h.line("q quit"); !strings.Contains(l, "n numeric") {
		t.Errorf("the footer does not offer numeric after n: %q", l)
	}
	// Names are unknown at first: addresses stay numeric, and the names
	// on screen are asked for.
	if l, _ := h.line("10.0.0.1:40002"); !strings.Contains(l, "10.0.0.2:80") {
		t.Errorf("an unknown name is not numeric: %q", l)
	}
	if !names.wasAsked("10.0.0.2") || !names.wasAsked("10.0.0.1") {
		t.Error("the names on screen were not asked for")
	}
	// A name arrives: it is shown, with the port, at the next frame.
	names.arrive("10.0.0.2", "web.example.org")
	names.arrive("2001:db8::2", "v6.example.org")
	h.tick()
	if l, _ := h.line("10.0.0.1:40002"); !strings.Contains(l, "web.example.org:80") {
		t.Errorf("a known name is not shown: %q", l)
	}
	if l, _ := h.line("[2001:db8::1]:40000"); !strings.Contains(l, "v6.example.org:443") {
		t.Errorf("an IPv6 address's name is not shown: %q", l)
	}
	if l, _ := h.line("10.0.0.3:50000"); !strings.Contains(l, "web.example.org:443") {
		t.Errorf("a known name is not shown: %q", l)
	}
	// The filter matches names while they are shown.
	h.keys("/web.example.org:443")
	h.key(tcell.KeyEnter)
	if l, _ := h.line("Connections"); !strings.Contains(l, "Connections 2 ") {
		t.Errorf("/web.example.org:443: %q, want 2 connections:\n%s", l, h.text())
	}
	h.key(tcell.KeyEscape)
	// So do the services and the details.
	h.key(tcell.KeyTab)
	if l, _ := h.line("web.example.org:80"); l == "" {
		t.Errorf("the services do not show names:\n%s", h.text())
	}
	h.key(tcell.KeyBacktab)
	_, y := h.line("10.0.0.1:40002")
	for range y - 3 {
		h.key(tcell.KeyDown)
	}
	h.key(tcell.KeyEnter)
	if l, _ := h.line("host name"); !strings.Contains(l, "web.example.org") {
		t.Errorf("the details lack the server's name: %q\n%s", l, h.text())
	}
	h.key(tcell.KeyEscape)
	// The help lists the key.
	h.keys("?")
	if !strings.Contains(h.helpText(), " n             host names") {
		t.Errorf("the help lacks n:\n%s", h.helpText())
	}
	if l, _ := h.line("host names (reverse DNS)"); l == "" {
		t.Errorf("n is not on the help's first page:\n%s", h.text())
	}
	h.keys("?")
	// n again: numeric.
	h.keys("n")
	if l, _ := h.line("10.0.0.1:40002"); !strings.Contains(l, "10.0.0.2:80") || strings.Contains(l, "example") {
		t.Errorf("n did not go back to numeric: %q", l)
	}
}

func TestNamesFromTheStart(t *testing.T) {
	names := newFakeNames()
	names.arrive("10.0.0.2", "a-rather-long-host-name.example.org")
	h := newHarness(t, 200, 40, scenario(), withNames(names, true))
	l, _ := h.line("10.0.0.1:40002")
	if !strings.Contains(l, "a-rather-long-host-name.example.org:80") {
		t.Errorf("names not shown from the start, or cut on a wide screen: %q", l)
	}
	if hd, _ := h.line("Client state"); !strings.Contains(hd, "conn_state") {
		t.Errorf("a long name pushed a column out at 200 wide: %q", hd)
	}
	// On a narrow screen a name takes only the room left, cut at its
	// start, keeping the port.
	h.resize(80, 24)
	l, _ = h.line("10.0.0.1:40002")
	if !strings.Contains(l, "…") || !strings.Contains(l, ".example.org:80") {
		t.Errorf("80 wide: %q", l)
	}
	for _, l := range strings.Split(h.text(), "\n") {
		if n := len([]rune(l)); n > 80 {
			t.Errorf("a line of %d: %q", n, l)
		}
	}
}

// TestNoNamesKeyWithoutNames: without a resolver, n does nothing and is
// not offered.
func TestNoNamesKeyWithoutNames(t *testing.T) {
	h := newHarness(t, 200, 40, scenario())
	if l, _ := h.line("q quit"); strings.Contains(l, "n names") {
		t.Errorf("the footer offers n without names: %q", l)
	}
	h.keys("n")
	if u := h.u.Load(); u.showNames {
		t.Error("n turned names on without a resolver")
	}
}

func TestFilterProcessAndNames(t *testing.T) {
	r := rowOf(t, "10.0.0.1:40000", "192.168.7.9:443", flows.StateEstablished, flows.StateEstablished)
	var procs procTable
	r.pid, r.proc = 1234, procs.intern("Firefox")
	p := procs.view()
	names := newFakeNames()
	names.arrive("192.168.7.9", "Mail.Example.com")
	for _, c := range []struct {
		expr        string
		plain, full bool // without and with the process and the names
	}{
		{"firefox", false, true},
		{"FIRE", false, true},
		{"1234", false, true},
		{"x[1234]", false, true},
		{"proc:fire", false, true},
		{"proc:1234", false, false},
		{"!proc:fire", true, false},
		{"proc:chrome", false, false},
		{"!firefox", true, false},
		{"mail.example", false, true},
		{"example.com:443", false, true},
		{"example.com:80", false, false},
		{"192.168.7.9", true, true},
	} {
		f := compileFilter(c.expr)
		if got := f.match(&r); got != c.plain {
			t.Errorf("%q without process or names: %v, want %v", c.expr, got, c.plain)
		}
		f.procs, f.names = &p, names
		if got := f.match(&r); got != c.full {
			t.Errorf("%q with process and names: %v, want %v", c.expr, got, c.full)
		}
	}
}

func TestProcTableBound(t *testing.T) {
	tab := flows.NewTable(flows.Config{})
	var ps []flows.Packet
	for i := range 3 {
		ps = append(ps, pkt("10.0.0.1:"+itoa(uint64(40000+i)), "10.0.0.2:80", flows.SYN, 1000, 0, 0, time.Duration(i)))
	}
	for i := range ps {
		tab.Apply(&ps[i])
	}
	n := 0
	b := newBuilder(&Config{Table: tab, Local: func(r *flows.Record) local.Info {
		n++
		return local.Info{PID: n, Process: "p" + itoa(uint64(n))}
	}}, func() time.Time { return t0 })
	var f *frame
	for range maxProcNames/3 + 10 {
		f = b.full(&request{})
		b.commit(f)
	}
	if len(b.procs.names) > maxProcNames+3 {
		t.Errorf("%d process names kept, bound %d", len(b.procs.names), maxProcNames)
	}
	for i := range f.rows {
		r := &f.rows[i]
		if got, want := r.procText(&f.procs), "p"+itoa(uint64(r.pid))+"["+itoa(uint64(r.pid))+"]"; got != want {
			t.Errorf("row %d: %q, want %q", i, got, want)
		}
	}
}
