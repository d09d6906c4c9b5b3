package ui

import (
	"context"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/flowtrack/flowtrack/flows"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// pkt builds a packet from src to dst, like flows/state_test.go does.
func pkt(src, dst string, flags flows.Flags, seq, ack, n uint32, at time.Duration) flows.Packet {
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	var p flows.Packet
	if s.Addr().Is4() {
		s4, d4 := s.Addr().As4(), d.Addr().As4()
		p.Tuple.SetV4(s4[:], d4[:])
	} else {
		s6, d6 := s.Addr().As16(), d.Addr().As16()
		p.Tuple.SetV6(s6[:], d6[:])
	}
	p.Tuple.SrcPort, p.Tuple.DstPort = s.Port(), d.Port()
	p.Flags, p.Seq, p.Ack, p.PayloadLen = flags, seq, ack, n
	p.FrameLen = 54 + n
	p.Window = 1000
	p.WScale = -1
	p.TS = t0.Add(at).UnixNano()
	return p
}

// conv is one conversation between a client and a server: a helper to
// write packet sequences with sequence numbers relative to ISNs 1000
// (client) and 5000 (server).
type conv struct {
	c, s string
	at   time.Duration
	out  *[]flows.Packet
}

func (v *conv) send(fromClient bool, flags flows.Flags, seq, ack, n uint32, dt time.Duration) *conv {
	v.at += dt
	src, dst := v.c, v.s
	if !fromClient {
		src, dst = v.s, v.c
	}
	*v.out = append(*v.out, pkt(src, dst, flags, seq, ack, n, v.at))
	return v
}

func (v *conv) handshake() *conv {
	return v.send(true, flows.SYN, 1000, 0, 0, 0).
		send(false, flows.SYN|flows.ACK, 5000, 1001, 0, ms(1)).
		send(true, flows.ACK, 1001, 5001, 0, ms(1))
}

// scenario is a small set of connections in many states, ending 2 s after
// the first packet.
func scenario() []flows.Packet {
	var ps []flows.Packet
	conn := func(c, s string, at time.Duration) *conv { return &conv{c: c, s: s, at: at, out: &ps} }
	const (
		A, P, F, R = flows.ACK, flows.PSH, flows.FIN, flows.RST
		S          = flows.SYN
	)
	// A complete exchange, closed by the client: TIME_WAIT / CLOSED.
	conn("10.0.0.1:40001", "10.0.0.2:80", 0).handshake().
		send(true, P|A, 1001, 5001, 100, ms(1)).
		send(false, P|A, 5001, 1101, 5000, ms(20)).
		send(true, F|A, 1101, 10001, 0, ms(1)).
		send(false, F|A, 10001, 1102, 0, ms(1)).
		send(true, A, 1102, 10002, 0, ms(1))
	// Established, with data both ways.
	b := conn("10.0.0.1:40002", "10.0.0.2:80", ms(10)).handshake().
		send(true, P|A, 1001, 5001, 300, ms(1)).
		send(false, P|A, 5001, 1301, 20000, ms(30))
	// An unanswered SYN: SYN_SENT / CLOSED.
	conn("10.0.0.3:50000", "10.0.0.2:443", ms(20)).send(true, S, 1000, 0, 0, 0)
	// Refused: CLOSED / CLOSED.
	conn("10.0.0.4:51000", "10.0.0.2:443", ms(30)).send(true, S, 1000, 0, 0, 0).
		send(false, R|A, 0, 1001, 0, ms(1))
	// IPv6, established.
	conn("[2001:db8::1]:40000", "[2001:db8::2]:443", ms(40)).handshake().
		send(true, P|A, 1001, 5001, 517, ms(2))
	// Picked up mid-stream: the server is the well-known port.
	conn("192.168.1.10:5555", "10.0.0.9:22", ms(50)).send(true, P|A, 7000, 9000, 48, 0).
		send(false, A, 9000, 7048, 0, ms(1))
	// Closed by the server, the client not yet: CLOSE_WAIT / FIN_WAIT_2.
	conn("10.0.0.5:40010", "10.0.0.2:80", ms(60)).handshake().
		send(false, F|A, 5001, 1001, 0, ms(5)).
		send(true, A, 1001, 5002, 0, ms(1))
	// The first connection's port is reused at 1 s: its old record retires.
	conn("10.0.0.1:40001", "10.0.0.2:80", time.Second).send(true, S, 90000, 0, 0, 0)
	// More data on the established one at 2 s: the capture's clock.
	b.at = 2 * time.Second
	b.send(true, P|A, 1301, 25001, 1000, 0)
	sortPackets(ps)
	return ps
}

func sortPackets(ps []flows.Packet) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].TS < ps[j-1].TS; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

// fakeReplay is a Replay that records what the UI asks of it.
type fakeReplay struct {
	mu     sync.Mutex
	speed  float64
	paused bool
	steps  int
}

func (r *fakeReplay) Speed() float64 { r.mu.Lock(); defer r.mu.Unlock(); return r.speed }
func (r *fakeReplay) SetSpeed(s float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.speed = s
}
func (r *fakeReplay) Paused() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.paused }
func (r *fakeReplay) SetPaused(p bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paused = p
}
func (r *fakeReplay) Step() { r.mu.Lock(); defer r.mu.Unlock(); r.steps++ }

// harness runs the UI on a simulation screen, with manual refreshes.
type harness struct {
	t       *testing.T
	screen  tcell.SimulationScreen
	table   *flows.Table
	retired *Retired
	replay  *fakeReplay
	packets atomic.Uint64
	ticks   chan struct{}
	settled chan struct{}
	drawn   atomic.Uint64
	done    chan error
	cancel  context.CancelFunc
	u       atomic.Pointer[ui]
	live    atomic.Bool
	clock   atomic.Int64 // the wall clock the UI sees, Unix ns
	// What status reports besides packets: the kernel's verdicts and the
	// replay's progress (per mille).
	agree, disagree, progress atomic.Uint64
	source                    atomic.Pointer[string] // the capture's name; nil: "test.pcap"
}

const barrierKey = tcell.KeyF60

// newHarness runs the UI on a w x h simulation screen, on a table of ps.
// setup, if any, changes the table's and the UI's configuration first.
func newHarness(t *testing.T, w, h int, ps []flows.Packet, setup ...func(*Config, *flows.Config)) *harness {
	t.Helper()
	hs := &harness{
		t:       t,
		screen:  tcell.NewSimulationScreen("UTF-8"),
		retired: NewRetired(100),
		replay:  &fakeReplay{speed: 1},
		ticks:   make(chan struct{}),
		settled: make(chan struct{}, 1),
		done:    make(chan error, 1),
	}
	hs.clock.Store(t0.UnixNano())
	tcfg := flows.Config{Transitions: 32, OnRetire: hs.retired.Add}
	cfg := Config{
		Retired: hs.retired,
		Status:  hs.status,
		Replay:  hs.replay,
		Linger:  5 * time.Second,
		Screen:  hs.screen,
	}
	for _, s := range setup {
		s(&cfg, &tcfg)
	}
	// FLOWTRACK_UI_INCREMENTAL=1 runs every harness test with frames built
	// from the table's changes (incremental.go), which a table this small
	// would not otherwise use: the screens must be the same.
	incremental := os.Getenv("FLOWTRACK_UI_INCREMENTAL") == "1"
	if incremental {
		tcfg.Changes = true
	}
	hs.table = flows.NewTable(tcfg)
	cfg.Table = hs.table
	hs.apply(ps...)
	ctx, cancel := context.WithCancel(context.Background())
	hs.cancel = cancel
	opts := options{
		clock:   func() time.Time { return time.Unix(0, hs.clock.Load()) },
		ticks:   hs.ticks,
		drawn:   func(seq uint64) { hs.drawn.Store(seq) },
		barrier: barrierKey,
		settled: func() { hs.settled <- struct{}{} },
		ready:   func(u *ui) { hs.u.Store(u) },

		incremental: incremental,
	}
	go func() { hs.done <- run(ctx, cfg, opts) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-hs.done:
		case <-time.After(10 * time.Second):
			t.Error("the UI did not stop")
		}
	})
	hs.tick()
	hs.resize(w, h)
	return hs
}

// resize changes the screen's size as a terminal would.
func (h *harness) resize(w, hgt int) {
	h.t.Helper()
	h.cells(func([]tcell.SimCell, int, int) { h.screen.SetSize(w, hgt) })
	if err := h.screen.PostEvent(tcell.NewEventResize(w, hgt)); err != nil {
		h.t.Fatal(err)
	}
	h.sync()
}

func (h *harness) apply(ps ...flows.Packet) {
	for i := range ps {
		h.table.Apply(&ps[i])
		h.packets.Add(1)
	}
}

func (h *harness) status() Status {
	source := "test.pcap"
	if p := h.source.Load(); p != nil {
		source = *p
	}
	return Status{Source: source, Live: h.live.Load(), Packets: h.packets.Load(), Bytes: h.packets.Load() * 100,
		KernelAgree: h.agree.Load(), KernelDisagree: h.disagree.Load(), Progress: float64(h.progress.Load()) / 1000}
}

// wait waits for cond, failing the test after a while.
func (h *harness) wait(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// tick makes the UI take a new snapshot and waits until it is drawn.
func (h *harness) tick() {
	h.t.Helper()
	before := h.drawn.Load()
	select {
	case h.ticks <- struct{}{}:
	case <-time.After(10 * time.Second):
		h.t.Fatal("the builder does not take ticks")
	}
	h.wait("a new frame", func() bool { return h.drawn.Load() > before })
	h.sync()
}

// sync waits until every key injected so far has been handled and the
// frame shown reflects the UI's state.
func (h *harness) sync() {
	h.t.Helper()
	h.screen.InjectKey(barrierKey, 0, tcell.ModNone)
	select {
	case <-h.settled:
	case err := <-h.done:
		h.t.Fatalf("the UI stopped: %v", err)
	case <-time.After(10 * time.Second):
		h.t.Fatal("the UI did not settle")
	}
}

func (h *harness) key(k tcell.Key) {
	h.t.Helper()
	h.screen.InjectKey(k, 0, tcell.ModNone)
	h.sync()
}

func (h *harness) keys(s string) {
	h.t.Helper()
	for _, r := range s {
		h.screen.InjectKey(tcell.KeyRune, r, tcell.ModNone)
	}
	h.sync()
}

// text returns the screen as lines, trailing spaces trimmed. It reads the
// screen between two iterations of the event loop, so never mid-draw.
func (h *harness) text() string {
	h.t.Helper()
	var b strings.Builder
	h.cells(func(cells []tcell.SimCell, w, hgt int) {
		for y := 0; y < hgt; y++ {
			var line strings.Builder
			for x := 0; x < w; x++ {
				c := cells[y*w+x]
				if len(c.Runes) == 0 {
					line.WriteByte(' ')
					continue
				}
				line.WriteString(string(c.Runes))
			}
			b.WriteString(strings.TrimRight(line.String(), " "))
			b.WriteByte('\n')
		}
	})
	return b.String()
}

// cells calls fn with the screen's cells on the event goroutine.
func (h *harness) cells(fn func([]tcell.SimCell, int, int)) {
	h.t.Helper()
	done := make(chan struct{})
	go func() {
		h.u.Load().app.QueueUpdate(func() {
			c, w, hgt := h.screen.GetContents()
			fn(c, w, hgt)
		})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		h.t.Fatal("could not read the screen")
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./ui -update to create it)", err)
	}
	if got == string(want) {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Errorf("%s differs from line %d (go test ./ui -update rewrites it):\ngot:  %q\nwant: %q\n--- got in full:\n%s", name, i+1, gl, wl, got)
			return
		}
	}
}
