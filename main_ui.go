package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gdamore/tcell/v2"
	"golang.org/x/term"

	"github.com/flowtrack/flowtrack/capture"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/names"
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
	// Names starts the UI with host names (reverse DNS, looked up in the
	// background) in place of addresses; false starts numeric, as -n asks.
	// Either way the n key toggles them.
	Names bool
	// Report, if set, gets the local sockets' report of a live capture
	// (how often the kernel agreed with the inferred states, what could
	// not be seen) once the terminal is restored.
	Report io.Writer
	// local replaces the local sockets' lookup of a live capture (tests).
	local *localSockets
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
	// A live capture names the processes behind its local sockets, and
	// compares its states with the kernel's, as headless output does
	// (main_local.go); the kernel is read in the background, once a
	// second and when a connection opens, and looked up when the UI builds
	// its rows.
	sock := s.local
	if sock == nil && s.Live {
		lctx, stopLocal := context.WithCancel(ctx)
		sock = startLocalSockets(lctx)
		defer sock.res.Wait()
		defer stopLocal()
	}

	retired := ui.NewRetired(0)
	cfg := s.Table
	cfg.Transitions = uiTransitions
	cfg.Changes = true // frames copy only what changed (ui/incremental.go)
	cfg.OnRetire = retired.Add
	if sock != nil {
		sock.hook(&cfg)
	}
	table := flows.NewTable(cfg)
	counters := &capture.Counters{}

	name := s.Src.Name() // a Source is not for concurrent use: name it before the capture starts
	src := capture.NewPolled(s.Src, s.Live)
	var warnings []string // the resolver's, each said once
	capCtx, stopCapture := context.WithCancel(ctx)
	defer stopCapture()
	if s.Duration > 0 {
		var cancel context.CancelFunc
		capCtx, cancel = context.WithTimeout(capCtx, s.Duration)
		defer cancel()
	}
	var (
		mu     sync.Mutex // guards capErr and warnings
		capErr error
		done   atomic.Bool
	)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		if s.Live {
			stop := tickLive(table, nil)
			defer stop()
		}
		err := capture.Run(capCtx, src, capture.NewDecoder(), counters, s.MaxFrames, table.Apply)
		mu.Lock()
		capErr = err
		mu.Unlock()
		done.Store(true)
	}()

	status := func() ui.Status { // on the UI's builder goroutine
		kernel, iface := src.Drops()
		st := ui.Status{
			Source:    name,
			Filter:    s.Filter,
			Live:      s.Live,
			Packets:   counters.Frames.Load(),
			Bytes:     counters.Bytes.Load(),
			Malformed: counters.Malformed.Load(),
			Dropped:   kernel + iface,
			Progress:  src.Progress(),
			Done:      done.Load(),
		}
		if sock != nil {
			st.KernelAgree, st.KernelDisagree = sock.agree.Load(), sock.disagree.Load()
			mu.Lock()
			warnings = append(warnings, sock.res.Warnings()...)
			if len(warnings) > 0 {
				st.Warning = warnings[len(warnings)-1]
			}
			mu.Unlock()
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
	ucfg := ui.Config{
		Table:     table,
		Retired:   retired,
		Status:    status,
		Replay:    s.Replay,
		Linger:    s.Linger,
		Screen:    s.Screen,
		Names:     names.New(0, 0, 0),
		ShowNames: s.Names,
	}
	if sock != nil {
		ucfg.Local = sock.lookup
	}
	uiErr := ui.Run(ctx, ucfg)
	stopCapture()
	<-finished
	if sock != nil && s.Report != nil {
		for _, w := range warnings {
			fmt.Fprintln(s.Report, "flowtrack:", w)
		}
		sock.report(s.Report)
	}
	return table, counters, errors.Join(uiErr, capErr)
}

// isTerminal reports whether w is a terminal, where the interactive UI
// can run.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
