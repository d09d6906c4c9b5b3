package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/flowtrack/flowtrack/capture"
)

// shotScreen is a simulated terminal that keeps the text of the last
// screen shown, so that a test can read it without racing the UI.
type shotScreen struct {
	tcell.SimulationScreen
	mu   sync.Mutex // guards text
	text string
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
	for _, want := range []string{"pcaps/wikipedia.pcap", "10/10 conns", "208.80.152.3:80", "ESTAB", "SYN_RECV", "q quit"} {
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
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed; the end-to-end test of the UI in a terminal needs it")
	}
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	bin := filepath.Join(t.TempDir(), "flowtrack")
	if out, err := exec.Command(gocmd, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if help, _ := exec.Command(bin, "-h").CombinedOutput(); !strings.Contains(string(help), "-linger") {
		t.Skip("main.go does not start the interactive UI yet (its flags have no -linger)")
	}
	pcap, err := filepath.Abs("pcaps/wikipedia.pcap")
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range [][2]int{{80, 24}, {200, 50}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			tm := &tmuxSession{t: t, tmux: tmux, socket: filepath.Join(t.TempDir(), "tmux")}
			tm.start(size[0], size[1], fmt.Sprintf("%s -r %s --speed max; echo \"exit status $?\"; sleep 60", bin, pcap))
			tm.waitFor("end of file")
			tm.waitFor("Connections 10 ")
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
			tm.keys("Tab", "g", "Enter")
			tm.waitFor("Transitions")
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
