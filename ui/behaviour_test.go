package ui

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/flowtrack/flowtrack/flows"
)

// line returns the first screen line that contains s, and its number.
func (h *harness) line(s string) (string, int) {
	h.t.Helper()
	for i, l := range strings.Split(h.text(), "\n") {
		if strings.Contains(l, s) {
			return l, i
		}
	}
	return "", -1
}

// screenCol is the screen column where s starts in the line l (which must
// hold it).
func screenCol(l, s string) int {
	before, _, _ := strings.Cut(l, s)
	return len([]rune(before))
}

// clickHeader clicks the header of the connection list's column name,
// and returns where it clicked.
func (h *harness) clickHeader(name string) (x, y int) {
	h.t.Helper()
	l, y := h.line("Server st") // abbreviated or not
	if y < 0 || !strings.Contains(l, name) {
		h.t.Fatalf("no column %s in the header %q", name, l)
	}
	x = screenCol(l, name)
	h.screen.InjectMouse(x, y, tcell.Button1, tcell.ModNone)
	h.screen.InjectMouse(x, y, tcell.ButtonNone, tcell.ModNone)
	h.sync()
	return x, y
}

// styleAt returns the style of the cell where s starts on the screen.
func (h *harness) styleAt(s string) tcell.Style {
	h.t.Helper()
	l, y := h.line(s)
	if y < 0 {
		h.t.Fatalf("%q is not on the screen:\n%s", s, h.text())
	}
	x := screenCol(l, s)
	var st tcell.Style
	h.cells(func(cells []tcell.SimCell, w, _ int) { st = cells[y*w+x].Style })
	return st
}

// selected returns the text of the selected row (drawn in reverse).
func (h *harness) selected() string {
	h.t.Helper()
	lines := strings.Split(h.text(), "\n")
	var out string
	h.cells(func(cells []tcell.SimCell, w, hgt int) {
		for y := 3; y < hgt-1; y++ {
			if _, _, a := cells[y*w].Style.Decompose(); a&tcell.AttrReverse != 0 {
				out = lines[y]
				return
			}
		}
	})
	return out
}

func TestSelectionFollowsConnection(t *testing.T) {
	h := newHarness(t, 120, 30, scenario())
	h.key(tcell.KeyDown)
	h.key(tcell.KeyDown)
	sel := h.selected()
	if !strings.Contains(sel, "10.0.0.3:50000") {
		t.Fatalf("third row selected: %q", sel)
	}
	h.keys("S") // newest first: the row moves
	if got := h.selected(); got != sel {
		t.Errorf("after a new sort order, selected %q, want %q", got, sel)
	}
	_, y := h.line("10.0.0.3:50000")
	if y == 5 {
		t.Errorf("the connection did not move: the test proves nothing")
	}
	// New connections arrive before it: it stays selected.
	h.apply(pkt("10.0.0.7:40100", "10.0.0.2:80", flows.SYN, 1000, 0, 0, 3*time.Second))
	h.tick()
	if got := h.selected(); !strings.Contains(got, "10.0.0.3:50000") {
		t.Errorf("after a refresh, selected %q", got)
	}
	h.key(tcell.KeyEnter)
	if l, _ := h.line("Connection #3"); l == "" {
		t.Errorf("Enter did not open the selected connection:\n%s", h.text())
	}
}

func TestMouse(t *testing.T) {
	h := newHarness(t, 120, 30, scenario())
	// Click the Bytes header: sort by it, largest first.
	x, y := h.clickHeader("Bytes")
	if l, _ := h.line("sorted by"); !strings.Contains(l, "sorted by Bytes ↑/↓ ▼") {
		t.Fatalf("a click on the Bytes header: %q", l)
	}
	if _, first := h.line("1.5K/20K"); first != 3 {
		t.Errorf("the largest connection is on line %d, want 3:\n%s", first, h.text())
	}
	// Clicked again at once (a double click): reversed.
	h.screen.InjectMouse(x, y, tcell.Button1, tcell.ModNone)
	h.screen.InjectMouse(x, y, tcell.ButtonNone, tcell.ModNone)
	h.sync()
	if l, _ := h.line("sorted by"); !strings.Contains(l, "sorted by Bytes ↑/↓ ▲") {
		t.Fatalf("a second click on the Bytes header: %q", l)
	}
	// Double-click a row: its details.
	_, y = h.line("10.0.0.9:22")
	for range 2 {
		h.screen.InjectMouse(2, y, tcell.Button1, tcell.ModNone)
		h.screen.InjectMouse(2, y, tcell.ButtonNone, tcell.ModNone)
	}
	h.sync()
	if l, _ := h.line("Connection #6"); l == "" {
		t.Errorf("a double click did not open the connection's details:\n%s", h.text())
	}
}

func TestNarrowScreen(t *testing.T) {
	h := newHarness(t, 120, 30, scenario())
	for _, w := range []int{80, 66, 50} {
		h.resize(w, 20)
		head, _ := h.line("Client")
		for _, col := range []string{"Client", "Server"} {
			if !strings.Contains(head, col) {
				t.Errorf("width %d: no %s column: %q", w, col, head)
			}
		}
		if l, _ := h.line(".5:40010"); !strings.Contains(l, "CLOSE_WAIT") || !strings.Contains(l, "FIN_WAIT_2") {
			t.Errorf("width %d: states missing: %q", w, l)
		}
		for _, l := range strings.Split(h.text(), "\n") {
			if n := len([]rune(l)); n > w {
				t.Errorf("width %d: a line of %d: %q", w, n, l)
			}
		}
	}
	h.resize(200, 50)
	if l, _ := h.line("Client"); !strings.Contains(l, "conn_state") {
		t.Errorf("200 wide: not every column: %q", l)
	}
}

func TestStyles(t *testing.T) {
	h := newHarness(t, 120, 30, scenario())
	fg := func(s tcell.Style) tcell.Color { c, _, _ := s.Decompose(); return c }
	if c := fg(h.styleAt("ESTABLISHED")); c != tcell.ColorLime {
		t.Errorf("ESTABLISHED in %v, want lime", c)
	}
	if c := fg(h.styleAt("SYN_SENT")); c != tcell.ColorYellow {
		t.Errorf("SYN_SENT in %v, want yellow", c)
	}
	if c := fg(h.styleAt("CLOSE_WAIT")); c != tcell.ColorOrange {
		t.Errorf("CLOSE_WAIT in %v, want orange", c)
	}
	if c := fg(h.styleAt("10.0.0.4:51000")); c != tcell.ColorGray {
		t.Errorf("a closed row in %v, want gray", c)
	}
	if _, bg, _ := h.styleAt("10.0.0.5:40010").Decompose(); bg == tcell.ColorNavy {
		t.Errorf("a row of the first frame is highlighted as new")
	}
	h.apply(pkt("10.0.0.7:40100", "10.0.0.2:80", flows.SYN, 1000, 0, 0, 3*time.Second))
	h.tick()
	if _, bg, _ := h.styleAt("10.0.0.7:40100").Decompose(); bg != tcell.ColorNavy {
		t.Errorf("a new connection is not highlighted (background %v)", bg)
	}
}

func TestNoColor(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	h := newHarness(t, 120, 30, scenario())
	for _, s := range []string{"ESTABLISHED", "SYN_SENT", "10.0.0.4:51000", "Client state", "q quit"} {
		if fg, bg, _ := h.styleAt(s).Decompose(); fg != tcell.ColorDefault || bg != tcell.ColorDefault {
			t.Errorf("%s drawn in colour (%v on %v) with NO_COLOR set", s, fg, bg)
		}
	}
	if _, _, a := h.styleAt("10.0.0.4:51000").Decompose(); a&tcell.AttrDim == 0 {
		t.Errorf("a closed row is not dim without colour")
	}
}

func TestReplayKeys(t *testing.T) {
	h := newHarness(t, 120, 30, scenario())
	h.keys("++")
	if s := h.replay.Speed(); s != 5 {
		t.Errorf("speed %v after ++ from 1, want 5", s)
	}
	h.keys("-")
	if l, _ := h.line("replay"); !strings.Contains(l, "replay 2x") {
		t.Errorf("header: %q", l)
	}
	h.keys("++++++++")
	if s := h.replay.Speed(); s != 0 {
		t.Errorf("speed %v at the top, want 0 (as fast as possible)", s)
	}
	if l, _ := h.line("replay"); !strings.Contains(l, "replay max") {
		t.Errorf("header: %q", l)
	}
	h.keys("p")
	if !h.replay.Paused() {
		t.Error("p did not pause")
	}
	if l, _ := h.line("PAUSED"); l == "" {
		t.Errorf("no PAUSED in the header:\n%s", h.text())
	}
	h.keys("p.")
	if !h.replay.Paused() || h.replay.steps != 1 {
		t.Errorf(". gave paused %v and %d steps, want paused and 1", h.replay.Paused(), h.replay.steps)
	}
}

func TestLingerAndRetiredDetail(t *testing.T) {
	h := newHarness(t, 120, 40, scenario())
	// The first connection retired at 1 s (its port was reused); select it.
	h.keys("g")
	if sel := h.selected(); !strings.Contains(sel, "10.0.0.1:40001") || !strings.Contains(sel, "CLOSED       CLOSED") {
		t.Fatalf("selected %q, want the retired 10.0.0.1:40001", sel)
	}
	h.key(tcell.KeyEnter)
	text := h.text()
	for _, want := range []string{"left the table: a new SYN reused its 4-tuple", "client  ESTABLISHED → FIN_WAIT_1", "server  LAST_ACK → CLOSED", "CLOSED → SYN_SENT", "conn_state      SF"} {
		if !strings.Contains(text, want) {
			t.Errorf("the retired connection's details lack %q:\n%s", want, text)
		}
	}
	h.key(tcell.KeyEscape)
	// It retired before the UI started, so its linger counts from the
	// first frame, at 2 s of capture time: it goes at 7 s. The clock moves
	// with packets of 10.0.0.1:40002.
	lines := func(at time.Duration, want int, why string) {
		t.Helper()
		h.apply(pkt("10.0.0.1:40002", "10.0.0.2:80", flows.ACK, 2301, 25001, 0, at))
		h.tick()
		if n := strings.Count(h.text(), "10.0.0.1:40001"); n != want {
			t.Errorf("10.0.0.1:40001 on %d lines at %v, want %d (%s)", n, at, want, why)
		}
	}
	lines(6900*time.Millisecond, 2, "retired and new")
	lines(7100*time.Millisecond, 1, "the new one")
	// A connection that retires while the UI runs lingers from then: the
	// new 10.0.0.1:40001 is reset at 7.2 s, retired 30 s later.
	h.apply(pkt("10.0.0.1:40001", "10.0.0.2:80", flows.RST, 90001, 0, 0, 7200*time.Millisecond))
	lines(38*time.Second, 1, "retired at 38 s")
	lines(43100*time.Millisecond, 0, "its linger is over")
}

func TestRates(t *testing.T) {
	h := newHarness(t, 120, 30, scenario())
	// 10 KB more each way in the next second of capture time.
	h.apply(
		pkt("10.0.0.1:40002", "10.0.0.2:80", flows.ACK|flows.PSH, 2301, 25001, 10000-54, 2500*time.Millisecond),
		pkt("10.0.0.2:80", "10.0.0.1:40002", flows.ACK|flows.PSH, 25001, 12247, 10000-54, 3*time.Second),
	)
	h.tick()
	l, _ := h.line("10.0.0.1:40002")
	if !strings.Contains(l, "9.8K/9.8K") {
		t.Errorf("rate of the busy connection: %q, want 9.8K/9.8K (10000 B in 1 s each way)", l)
	}
	if hd, _ := h.line("pkt/s"); !strings.Contains(hd, "2 pkt/s 200B/s") {
		t.Errorf("header: %q", hd)
	}
}

func TestQuit(t *testing.T) {
	for _, k := range []struct {
		name string
		key  tcell.Key
		r    rune
	}{{"q", tcell.KeyRune, 'q'}, {"Ctrl-C", tcell.KeyCtrlC, 0}} {
		t.Run(k.name, func(t *testing.T) {
			h := newHarness(t, 80, 24, scenario())
			h.screen.InjectKey(k.key, k.r, tcell.ModNone)
			select {
			case err := <-h.done:
				if err != nil {
					t.Fatal(err)
				}
				h.done <- nil
			case <-time.After(10 * time.Second):
				t.Fatal("the UI did not quit")
			}
		})
	}
	t.Run("context", func(t *testing.T) {
		h := newHarness(t, 80, 24, scenario())
		h.cancel()
		select {
		case err := <-h.done:
			if err != nil {
				t.Fatal(err)
			}
			h.done <- nil
		case <-time.After(10 * time.Second):
			t.Fatal("the UI did not stop with its context")
		}
	})
}

func TestClicks(t *testing.T) {
	h := newHarness(t, 120, 30, scenario())
	click := func(s string) {
		t.Helper()
		l, y := h.line(s)
		if y < 0 {
			t.Fatalf("no %q on the screen", s)
		}
		x := screenCol(l, s)
		h.screen.InjectMouse(x+1, y, tcell.Button1, tcell.ModNone)
		h.screen.InjectMouse(x+1, y, tcell.ButtonNone, tcell.ModNone)
		h.sync()
	}
	click("Services")
	if l, _ := h.line("Connecting"); !strings.Contains(l, "Established") {
		t.Fatalf("a click on the Services tab:\n%s", h.text())
	}
	click("Connections")
	if l, _ := h.line("Client state"); l == "" {
		t.Fatalf("a click on the Connections tab:\n%s", h.text())
	}
	click("? help")
	if l, _ := h.line("Everywhere"); l == "" {
		t.Fatalf("a click on the help hint:\n%s", h.text())
	}
}

func TestLiveClock(t *testing.T) {
	h := newHarness(t, 120, 30, scenario())
	h.live.Store(true)
	h.clock.Store(t0.Add(10 * time.Second).UnixNano())
	h.tick()
	// The last packet of 10.0.0.1:40002 was at 2 s; live, time goes on
	// without packets.
	if l, _ := h.line("10.0.0.1:40002"); !strings.Contains(l, "10.0s   8.0s") {
		t.Errorf("live, age and idle do not follow the clock: %q", l)
	}
	if l, _ := h.line("test.pcap"); !strings.Contains(l, "(live)") || !strings.Contains(l, "03:04:15.000") {
		t.Errorf("live header: %q", l)
	}
}

func TestGrowingTableKeepsTop(t *testing.T) {
	// The table starts shorter than the screen, then grows past it: the
	// view stays at the top with the selection, not at the end.
	h := newHarness(t, 100, 20, scenario()[:3])
	for i := range 40 {
		h.apply(pkt(fmt.Sprintf("10.1.0.%d:40000", i+1), "10.0.0.2:80", flows.SYN, 1000, 0, 0, time.Second+time.Duration(i)*time.Millisecond))
	}
	h.tick()
	if _, y := h.line("10.0.0.1:40001"); y != 3 {
		t.Errorf("the first connection is on line %d, want 3:\n%s", y, h.text())
	}
	if sel := h.selected(); !strings.Contains(sel, "10.0.0.1:40001") {
		t.Errorf("selected %q", sel)
	}
}

func TestNoSnapshotWithoutChange(t *testing.T) {
	tab := flows.NewTable(flows.Config{})
	ps := scenario()
	for i := range ps {
		tab.Apply(&ps[i])
	}
	var packets atomic.Uint64
	packets.Store(uint64(len(ps)))
	b := newBuilder(&Config{Table: tab, Status: func() Status { return Status{Packets: packets.Load()} }}, func() time.Time { return t0 })
	b.commit(b.full(&request{}))
	if b.changed() {
		t.Error("changed with no new packet")
	}
	p := pkt("10.0.0.7:40100", "10.0.0.2:80", flows.SYN, 1000, 0, 0, 3*time.Second)
	tab.Apply(&p)
	packets.Add(1)
	if !b.changed() {
		t.Error("not changed after a new packet")
	}
}

// TestUncertainState: a state the packets cannot tell for sure is marked
// with '?' in its column (abbreviated if it would not fit), and the detail
// view says why; a state that is sure has no mark.
func TestUncertainState(t *testing.T) {
	var ps []flows.Packet
	const A, F = flows.ACK, flows.FIN
	// The client's FIN, not acknowledged yet: FIN_WAIT_1?, CLOSE_WAIT.
	(&conv{c: "10.0.0.1:40001", s: "10.0.0.2:80", out: &ps}).handshake().
		send(true, F|A, 1001, 5001, 0, ms(5))
	// A SYN-ACK not acknowledged yet: SYN_RECEIVED? fits only abbreviated.
	(&conv{c: "10.0.0.1:40002", s: "10.0.0.2:80", out: &ps}).
		send(true, flows.SYN, 1000, 0, 0, 0).
		send(false, flows.SYN|A, 5000, 1001, 0, ms(1))
	sortPackets(ps)
	h := newHarness(t, 120, 30, ps)
	for _, want := range []string{"FIN_WAIT_1?  CLOSE_WAIT ", "ESTABLISHED  SYN_RECV? "} {
		if l, _ := h.line(want); l == "" {
			t.Errorf("no row with %q:\n%s", want, h.text())
		}
	}
	h.keys("g")
	if sel := h.selected(); !strings.Contains(sel, "10.0.0.1:40001") {
		t.Fatalf("selected %q, want 10.0.0.1:40001", sel)
	}
	h.key(tcell.KeyEnter)
	text := h.text()
	if !strings.Contains(text, "uncertain") || !strings.Contains(text, "client: its answer (to a SYN, SYN-ACK or FIN) may not be in the capture yet") {
		t.Errorf("the detail view does not say why the client's state is uncertain:\n%s", text)
	}
	if strings.Contains(text, "server: ") {
		t.Errorf("the detail view calls the server's CLOSE_WAIT uncertain:\n%s", text)
	}
}
