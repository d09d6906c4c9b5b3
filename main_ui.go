package main

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/term"

	"github.com/flowtrack/flowtrack/capture"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/ui"
)

// uiSession is what the interactive UI needs from the command line.
type uiSession struct {
	Src    capture.Source // open; for a replay, the pacer over the file
	Replay ui.Replay      // the same pacer for a replay; nil for a live capture
	Live   bool           // a live capture (its kernel drops are shown)
	Filter string         // the BPF filter, to show
	// Table holds the timers; interactive sets Transitions and OnRetire.
	Table     flows.Config
	Linger    time.Duration // how long ended connections stay on screen (capture time)
	MaxFrames uint64        // stop the capture after this many frames (0: no limit)
	Duration  time.Duration // stop a live capture after this long (0: no limit)
	Screen    tcell.Screen  // nil: the terminal (tests pass a simulation screen)
}

// uiTransitions is how many state changes per connection the table keeps
// for the detail view.
const uiTransitions = 32

// interactive captures into a new flow table in the background and shows it
// in the terminal UI until the user quits (q or Ctrl-C) or ctx is done. The
// capture may stop first (end of the file, -c, --duration, an error): the
// final table then stays on screen, with the error if any, until the user
// quits. It returns the table and the counters, for the summary line to
// print once the terminal is restored, and the UI's or the capture's error.
func interactive(ctx context.Context, s uiSession) (*flows.Table, *capture.Counters, error) {
	retired := ui.NewRetired(0)
	cfg := s.Table
	cfg.Transitions = uiTransitions
	cfg.OnRetire = retired.Add
	table := flows.NewTable(cfg)
	counters := &capture.Counters{}

	src, name := s.Src, s.Src.Name() // a Source is not for concurrent use: name it before the capture starts
	var drops *dropCounter
	if s.Live {
		drops = &dropCounter{Source: src}
		src = drops
	}
	capCtx, stopCapture := context.WithCancel(ctx)
	defer stopCapture()
	if s.Duration > 0 {
		var cancel context.CancelFunc
		capCtx, cancel = context.WithTimeout(capCtx, s.Duration)
		defer cancel()
	}
	var (
		mu     sync.Mutex // guards capErr
		capErr error
		done   atomic.Bool
	)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		err := capture.Run(capCtx, src, capture.NewDecoder(), counters, s.MaxFrames, table.Apply)
		mu.Lock()
		capErr = err
		mu.Unlock()
		done.Store(true)
	}()

	status := func() ui.Status {
		st := ui.Status{
			Source:    name,
			Filter:    s.Filter,
			Live:      s.Live,
			Packets:   counters.Frames.Load(),
			Bytes:     counters.Bytes.Load(),
			Malformed: counters.Malformed.Load(),
			Done:      done.Load(),
		}
		if drops != nil {
			st.Dropped = drops.n.Load()
		}
		if st.Done {
			mu.Lock()
			if capErr != nil {
				st.Err = capErr.Error()
			}
			mu.Unlock()
		}
		return st
	}
	uiErr := ui.Run(ctx, ui.Config{
		Table:   table,
		Retired: retired,
		Status:  status,
		Replay:  s.Replay,
		Linger:  s.Linger,
		Screen:  s.Screen,
	})
	stopCapture()
	<-finished
	return table, counters, errors.Join(uiErr, capErr)
}

// dropCounter is a live Source that reads the kernel's drop counters
// every second, on the capture goroutine (a Source is not safe for
// concurrent use), for the UI's header.
type dropCounter struct {
	capture.Source
	next time.Time
	n    atomic.Uint64
}

func (d *dropCounter) Next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	if now := time.Now(); now.After(d.next) {
		d.next = now.Add(time.Second)
		if st, err := d.Source.Stats(); err == nil {
			d.n.Store(st.PacketsDropped + st.IfDropped)
		}
	}
	return d.Source.Next()
}

// isTerminal reports whether w is a terminal, where the interactive UI
// can run.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
