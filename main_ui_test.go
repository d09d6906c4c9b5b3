package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/flowtrack/flowtrack/capture"
	"github.com/flowtrack/flowtrack/internal/testenv"
	"github.com/flowtrack/flowtrack/sockets"
)

// shotScreen is a simulated terminal that keeps the text of the last
// screen shown, so that a test can read it without racing the UI.
type shotScreen struct {
	tcell.SimulationScreen
	w, h int        // the size once initialised; 0: the simulation's default
	mu   sync.Mutex // guards text
	text string
}

func (s *shotScreen) Init() error {
	if err := s.SimulationScreen.Init(); err != nil {
		return err
	}
	if s.w > 0 {
		s.SetSize(s.w, s.h)
	}
	return nil
}

func (s *shotScreen) Show() {
	s.SimulationScreen.Show()
	cells, w, _ := s.GetContents()
	var b strings.Builder
	for i, c := range cells {
		if len(c.Runes) > 0 {
			b.WriteString(string(c.Runes))
		} else {
			b.WriteByte(' ')
		}
		if i%w == w-1 {
			b.WriteByte('\n')
		}
	}
	s.mu.Lock()
	s.text = b.String()
	s.mu.Unlock()
}

func (s *shotScreen) shown() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.text
}

// TestInteractive runs the interactive session on a bundled capture on a
// simulated terminal: the capture runs to the end of the file behind the
// UI, the final table stays on screen, and q quits.
func TestInteractive(t *testing.T) {
	src, err := capture.OpenFile("pcaps/wikipedia.pcap", "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	screen := &shotScreen{SimulationScreen: tcell.NewSimulationScreen("UTF-8")}
	type result struct {
		frames, conns uint64
		err           error
	}
	done := make(chan result, 1)
	go func() {
		table, counters, err := interactive(context.Background(), uiSession{Src: src, Linger: 5 * time.Second, Screen: screen})
		done <- result{counters.Frames.Load(), table.Opened(), err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(screen.shown(), "end of input") {
		if time.Now().After(deadline) {
			t.Fatalf("the end of the file never showed:\n%s", screen.shown())
		}
		time.Sleep(10 * time.Millisecond)
	}
	text := screen.shown()
	// The last row is a lone SYN-ACK: not sent again in the 3.7 s of
	// capture after it (the capture's other traffic), it was
	// acknowledged; but the client's side was never captured, so
	// neither state is certain.
	for _, want := range []string{" wikipedia.pcap ", "10 active / 10 connections", "208.80.152.3:80", "ESTAB", "173.192.163.128:80 ESTAB?     ESTAB?", "q quit"} {
		if !strings.Contains(text, want) {
			t.Errorf("the screen lacks %q:\n%s", want, text)
		}
	}
	screen.InjectKey(tcell.KeyRune, 'q', tcell.ModNone)
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.frames != 136 || r.conns != 10 {
			t.Errorf("%d frames and %d connections, want 136 and 10", r.frames, r.conns)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("q did not end the session")
	}
}

// fakeLive is a live Source over frames the test queues: it returns each
// once, stamped with the time it is read, then ErrTimeout, as a quiet
// interface does.
type fakeLive struct {
	frames chan []byte
	read   atomic.Int64
	// progress, if set, makes it report its progress as a file does.
	progress func() float64
}

func (f *fakeLive) Next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	select {
	case b, ok := <-f.frames:
		if !ok {
			return nil, gopacket.CaptureInfo{}, 0, io.EOF
		}
		f.read.Add(1)
		ci := gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: len(b), Length: len(b)}
		return b, ci, layers.LinkTypeEthernet, nil
	case <-time.After(20 * time.Millisecond):
		return nil, gopacket.CaptureInfo{}, 0, capture.ErrTimeout
	}
}

func (f *fakeLive) Stats() (capture.Stats, error) { return capture.Stats{PacketsDropped: 3}, nil }
func (f *fakeLive) Name() string                  { return "fake0" }
func (f *fakeLive) Close()                        {}

// fakeFile is a fakeLive with a Progress method, as a file Source may
// have.
type fakeFile struct{ *fakeLive }

func (f fakeFile) Progress() float64 { return f.progress() }

// tcpFrame builds an Ethernet frame of one TCP segment from src to dst.
func tcpFrame(t *testing.T, src, dst netip.AddrPort, syn, ack bool, seq, ackn uint32) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: seq, Ack: ackn, SYN: syn, ACK: ack, Window: 65535}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// waitScreen waits until the screen shows every one of want.
func waitScreen(t *testing.T, screen *shotScreen, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		text := screen.shown()
		missing := ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q never showed:\n%s", missing, text)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loopbackConn opens a connection of the test's own on loopback, for the
// length of the test, and returns its ends and what this host's kernel
// says of the client's socket.
func loopbackConn(t *testing.T) (client, server netip.AddrPort, owner sockets.Owner) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		testenv.Missing(t, "no loopback: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	cl, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl.Close()
		if c := <-accepted; c != nil {
			c.Close()
		}
	})
	client = netip.MustParseAddrPort(cl.LocalAddr().String())
	server = netip.MustParseAddrPort(ln.Addr().String())
	probe := sockets.New()
	_ = probe.Refresh()
	owner, ok := probe.Lookup(client, server)
	if !ok || owner.PID != os.Getpid() || owner.Comm == "" {
		testenv.Missing(t, "this host's sockets cannot be read here (%v): no process to show", probe.Warnings())
	}
	return client, server, owner
}

// TestInteractiveLocal runs a live session over a connection of the test's
// own on loopback, its handshake fed to the UI as captured frames: the
// Process column names this process (the sockets are read from the kernel
// in the background), the header counts the kernel's agreement with both
// ends' states, and the report says so once the UI ends.
func TestInteractiveLocal(t *testing.T) {
	client, server, owner := loopbackConn(t)
	src := &fakeLive{frames: make(chan []byte, 3)}
	src.frames <- tcpFrame(t, client, server, true, false, 1000, 0)
	src.frames <- tcpFrame(t, server, client, true, true, 5000, 1001)
	src.frames <- tcpFrame(t, client, server, false, true, 1001, 5001)

	screen := &shotScreen{SimulationScreen: tcell.NewSimulationScreen("UTF-8"), w: 160, h: 30}
	var report bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, _, err := interactive(context.Background(), uiSession{Src: src, Live: true, Linger: 5 * time.Second, Screen: screen, Report: &report})
		done <- err
	}()
	self := owner.Comm + "[" + strconv.Itoa(os.Getpid()) + "]"
	text := waitScreen(t, screen, "Process", self, "kernel agreed 2/2", "dropped 3")
	if !strings.Contains(text, client.String()) {
		t.Errorf("the connection is not listed:\n%s", text)
	}
	// The filter matches the process.
	screen.InjectKey(tcell.KeyRune, '/', tcell.ModNone)
	for _, r := range owner.Comm {
		screen.InjectKey(tcell.KeyRune, r, tcell.ModNone)
	}
	screen.InjectKey(tcell.KeyEnter, 0, tcell.ModNone)
	waitScreen(t, screen, "Connections 1 ", "filter: "+owner.Comm)
	// The details show the kernel's states.
	screen.InjectKey(tcell.KeyEnter, 0, tcell.ModNone)
	text = waitScreen(t, screen, "kernel: ESTABLISHED", "process         "+self)
	if n := strings.Count(text, "kernel: ESTABLISHED"); n != 2 {
		t.Errorf("the kernel's state shown for %d ends, want both:\n%s", n, text)
	}
	screen.InjectKey(tcell.KeyRune, 'q', tcell.ModNone)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("q did not end the session")
	}
	if !strings.Contains(report.String(), "the kernel agreed with 2 inferred states and disagreed with 0") {
		t.Errorf("report: %q", report.String())
	}
}

// TestInteractiveProgress: a Source that reports its progress has it in
// the header of a replay.
func TestInteractiveProgress(t *testing.T) {
	var frac atomic.Uint64
	frac.Store(37)
	src := fakeFile{&fakeLive{frames: make(chan []byte, 1), progress: func() float64 { return float64(frac.Load()) / 100 }}}
	a, b := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	src.frames <- tcpFrame(t, a, b, true, false, 1000, 0)
	screen := &shotScreen{SimulationScreen: tcell.NewSimulationScreen("UTF-8"), w: 120, h: 20}
	done := make(chan error, 1)
	go func() {
		_, _, err := interactive(context.Background(), uiSession{Src: src, Replay: &stillReplay{}, Screen: screen})
		done <- err
	}()
	waitScreen(t, screen, "replay 1x 37%")
	if strings.Contains(screen.shown(), "Process") {
		t.Errorf("a replay has a Process column:\n%s", screen.shown())
	}
	frac.Store(64)
	src.frames <- tcpFrame(t, b, a, true, true, 5000, 1001) // progress is read as frames are
	waitScreen(t, screen, "replay 1x 64%")
	screen.InjectKey(tcell.KeyRune, 'q', tcell.ModNone)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// stillReplay is a ui.Replay at 1x that does nothing.
type stillReplay struct{}

func (stillReplay) Speed() float64   { return 1 }
func (stillReplay) SetSpeed(float64) {}
func (stillReplay) Paused() bool     { return false }
func (stillReplay) SetPaused(bool)   {}
func (stillReplay) Step()            {}

func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) || isTerminal(&strings.Builder{}) {
		t.Error("a pipe or a buffer taken for a terminal")
	}
}

// TestTmux runs the real binary in tmux, a real terminal, on a bundled
// capture at 80x24 and 200x50, drives it with keys and reads the pane.
func TestTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no end-to-end run in tmux")
	}
	replayInTmux(t, "pcaps/wikipedia.pcap", nil, func(t *testing.T, tm *tmuxSession, size [2]int) {
		tm.waitFor("end of file")
		tm.waitFor("Connections 10 ")
		// The capture's path is as long as the clone's: the header
		// shortens it, not the counts.
		tm.waitFor("10 active / 10 connections")
		tm.keys("s")
		tm.waitGone("sorted by Age ▼")
		tm.keys("S")
		tm.keys("/")
		tm.literal("208.80.152.2:")
		tm.keys("Enter")
		tm.waitFor("Connections 2 ")
		tm.waitFor("filter: 208.80.152.2:")
		tm.keys("Escape")
		tm.waitFor("Connections 10 ")
		tm.keys("Tab")
		tm.waitFor("Services 4 ")
		tm.waitFor("Established")
		tm.keys("Enter")
		tm.waitFor("service 208.80.152.3:80")
		tm.waitFor("Connections 6 ")
		tm.keys("Escape")
		tm.waitFor("Services 4 ")
		tm.keys("BTab", "g", "Enter") // Shift-Tab: back from the services to the connections
		if size[1] > 24 {
			tm.waitFor("Transitions")
		} else {
			// Sorted by bytes here, the first row is the lone
			// SYN-ACK: the detail view says why neither state is
			// certain, and its transitions are off the pane.
			tm.waitFor("uncertain       client: none of its packets were captured")
		}
		tm.waitFor("roles")
		tm.keys("Escape", "?")
		tm.waitFor("Everywhere")
		tm.keys("Escape", "Space")
		tm.waitFor("FROZEN")
		tm.keys("Space")
		tm.waitGone("FROZEN")
		if size[0] == 80 {
			tm.resize(120, 30)
			tm.waitFor("10 active / 10 connections")
		}
		tm.keys("q")
		tm.waitFor("exit status 0")
		tm.waitFor("136 packets")
	})
}

// tmuxSession is one tmux server and session of a test's own, on a socket
// in the test's temporary directory; the test kills only that session.
type tmuxSession struct {
	t            *testing.T
	tmux, socket string
}

func (s *tmuxSession) run(args ...string) string {
	s.t.Helper()
	out, err := exec.Command(s.tmux, append([]string{"-f", "/dev/null", "-S", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// replayInTmux builds flowtrack and replays pcap (a path in the repo) in
// its interactive view in tmux, with flags, at 80x24 and at 200x50, and
// drives each run with drive.
func replayInTmux(t *testing.T, pcap string, flags []string, drive func(t *testing.T, tm *tmuxSession, size [2]int)) {
	t.Helper()
	tmux := testenv.LookPath(t, "tmux", "tmux")
	bin := filepath.Join(t.TempDir(), "flowtrack")
	if out, err := exec.Command(testenv.LookPath(t, "go", "golang"), "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	abs, err := filepath.Abs(pcap)
	if err != nil {
		t.Fatal(err)
	}
	command := shellQuote(bin) + " -n -r " + shellQuote(abs) + " --speed max"
	for _, f := range flags {
		command += " " + shellQuote(f)
	}
	for _, size := range [][2]int{{80, 24}, {200, 50}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			tm := &tmuxSession{t: t, tmux: tmux, socket: filepath.Join(t.TempDir(), "tmux")}
			tm.start(size[0], size[1], command+"; echo \"exit status $?\"; sleep 60")
			drive(t, tm, size)
		})
	}
}

// shellQuote quotes a path for the shell tmux runs a command with: the
// repository may lie in a directory whose name has spaces.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (s *tmuxSession) start(w, h int, command string) {
	s.t.Helper()
	s.run("new-session", "-d", "-s", "ui", "-x", strconv.Itoa(w), "-y", strconv.Itoa(h), command)
	s.t.Cleanup(func() {
		_ = exec.Command(s.tmux, "-f", "/dev/null", "-S", s.socket, "kill-session", "-t", "ui").Run()
	})
}

func (s *tmuxSession) pane() string { return s.run("capture-pane", "-p", "-t", "ui") }

// keys sends keys one at a time, pausing after Escape so that the terminal
// does not read it and the next key as one Alt-key.
func (s *tmuxSession) keys(keys ...string) {
	s.t.Helper()
	for _, k := range keys {
		s.run("send-keys", "-t", "ui", k)
		if k == "Escape" {
			time.Sleep(150 * time.Millisecond)
		}
	}
}

func (s *tmuxSession) literal(text string) {
	s.t.Helper()
	s.run("send-keys", "-t", "ui", "-l", text)
}

func (s *tmuxSession) resize(w, h int) {
	s.t.Helper()
	s.run("resize-window", "-t", "ui", "-x", strconv.Itoa(w), "-y", strconv.Itoa(h))
}

func (s *tmuxSession) waitFor(text string)  { s.t.Helper(); s.wait(text, true) }
func (s *tmuxSession) waitGone(text string) { s.t.Helper(); s.wait(text, false) }

func (s *tmuxSession) wait(text string, present bool) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := s.pane()
		if strings.Contains(p, text) == present {
			return
		}
		if time.Now().After(deadline) {
			what := "never showed"
			if !present {
				what = "never went"
			}
			s.t.Fatalf("%q %s; the pane:\n%s", text, what, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTmuxProblems runs the real binary in tmux on a capture of real
// sockets whose server never closes (pcaps/problems/close-wait.pcap:
// four connections left in CLOSE_WAIT, a clean fifth), with the
// thresholds its scenario names, as a person would: Tab to the Problems
// view, Enter on the leak to its connections, Enter on one for the
// problem and its packets, and back. The thresholds must reach the view:
// with the defaults (60 s) the capture's 6 s show no problem.
func TestTmuxProblems(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no end-to-end run in tmux")
	}
	replayInTmux(t, "pcaps/problems/close-wait.pcap", []string{"--close-wait", "2s", "--fin-wait-2", "2s"}, func(t *testing.T, tm *tmuxSession, size [2]int) {
		tm.waitFor("end of file")
		tm.waitFor("Problem ") // the column: four rows have one
		tm.keys("Tab", "Tab")
		tm.waitFor("Problems 2 ")
		p := tm.waitMatch(`(?m)^close-wait +4 +0 +1 +now 10\.99\.0\.2:7107 *$`)
		if !regexp.MustCompile(`(?m)^fin-wait-2 +4 +0 +1 +now 10\.99\.0\.2:7107 *$`).MatchString(p) {
			t.Errorf("no fin-wait-2 row for the four clients:\n%s", p)
		}
		tm.keys("Enter")
		tm.waitFor("Connections 4 ")
		tm.waitFor("filter: problem:close-wait")
		tm.keys("Enter")
		p = tm.waitMatch(`(?m)^ close-wait +the server, since \d\d:\d\d:\d\d\.\d{3} \(6\.0s ago\)`)
		for _, want := range []string{
			"the server has been in CLOSE_WAIT for",
			"client→server  F.   seq ",
			"fin-wait-2      the client, since",
		} {
			if !strings.Contains(p, want) {
				t.Errorf("the detail lacks %q:\n%s", want, p)
			}
		}
		tm.keys("Escape", "Escape")
		tm.waitFor("Problems 2 ")
		tm.keys("Tab", "!")
		tm.waitFor("problems only")
		tm.waitFor("Connections 4 ")
		tm.keys("q")
		tm.waitFor("exit status 0")
	})
}

// waitMatch waits until the pane matches re, and returns the pane.
func (s *tmuxSession) waitMatch(re string) string {
	s.t.Helper()
	r := regexp.MustCompile(re)
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := s.pane()
		if r.MatchString(p) {
			return p
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s never showed; the pane:\n%s", re, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
