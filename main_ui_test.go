package main

import (
	"context"
	"os"
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
