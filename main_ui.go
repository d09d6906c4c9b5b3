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
	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/names"
	"github.com/flowtrack/flowtrack/sockets"
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
	// Problems are the thresholds the view judges problems with (-o
	// table's, --problems's).
	Problems diag.Config
	// Report, if set, gets the local sockets' report of a live capture
	// (how often the kernel agreed with the inferred states, what could
	// not be seen) once the terminal is restored.
	Report io.Writer
	// local replaces the local sockets' lookup of a live capture (tests).
	local *localSockets
	// tracker names the processes of a live capture, loaded before root
	// was dropped; nil: a socket-table one is made.
	tracker *sockets.Tracker
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
		sock = startLocalSockets(lctx, s.tracker)
		defer sock.tr.Wait()
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
	c := &uiCapture{s: &s, sock: sock, names: newConnNames(), table: flows.NewTable(cfg)}
	c.start(ctx)
	defer c.stop()
	ucfg := ui.Config{
		Table:     c.table,
		Retired:   retired,
		Status:    c.status,
		Replay:    s.Replay,
		Linger:    s.Linger,
		Screen:    s.Screen,
		Names:     names.New(0, 0, 0),
		ShowNames: s.Names,
		Judge:     diag.New(s.Problems),
	}
	ucfg.Local = annotator(sock, c.names)
	ucfg.Processes = sock != nil
	if sock != nil {
		ucfg.Listeners = sock.listeners
	}
	uiErr := ui.Run(ctx, ucfg)
	c.stop()
	if sock != nil && s.Report != nil {
		for _, w := range c.warnings {
			fmt.Fprintln(s.Report, "flowtrack:", w)
		}
		sock.report(s.Report)
	}
	return c.table, &c.counters, errors.Join(uiErr, c.err)
}

// uiCapture is the capture that runs behind the interactive view, and
// what the view's header shows of it.
type uiCapture struct {
	s        *uiSession
	sock     *localSockets // a live capture's; nil for a replay
	names    *connNames
	table    *flows.Table
	name     string
	src      *capture.Polled
	counters capture.Counters
	done     atomic.Bool
	cancel   context.CancelFunc
	finished chan struct{}

	mu       sync.Mutex // guards err and warnings
	err      error      // the capture's, once done
	warnings []string   // the resolver's, each said once
}

// start runs the capture into the table on a goroutine of its own, until
// it ends, ctx is done or stop is called.
func (c *uiCapture) start(ctx context.Context) {
	c.name = c.s.Src.Name() // a Source is not for concurrent use: name it before the capture starts
	c.src = capture.NewPolled(c.s.Src, c.s.Live)
	ctx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	if c.s.Duration > 0 {
		var stopTimer context.CancelFunc
		ctx, stopTimer = context.WithTimeout(ctx, c.s.Duration)
		c.cancel = func() { stopTimer(); cancel() }
	}
	c.finished = make(chan struct{})
	go func() {
		defer close(c.finished)
		// The table is updated on every core; the ticks hand on what the
		// lanes hold, so that the view lags the capture by a tick at most.
		lanes := flows.NewLanes(c.table, tableLanes())
		err := capture.RunTicking(ctx, c.src, c.names.decoder(), &c.counters, c.s.MaxFrames, lanes,
			laneTicks(lanes, c.s.Live, nil))
		lanes.Close()
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		c.done.Store(true)
	}()
}

// stop stops the capture and waits for it to return.
func (c *uiCapture) stop() {
	c.cancel()
	<-c.finished
}

// status is the header's view of the capture; the UI calls it on its
// builder goroutine.
func (c *uiCapture) status() ui.Status {
	kernel, iface := c.src.Drops()
	st := ui.Status{
		Source:    setName(c.name, &c.counters),
		Filter:    c.s.Filter,
		Live:      c.s.Live,
		Packets:   c.counters.Frames.Load(),
		Bytes:     c.counters.Bytes.Load(),
		Malformed: c.counters.Malformed.Load(),
		Dropped:   kernel + iface,
		Progress:  c.src.Progress(),
		Done:      c.done.Load(),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sock != nil {
		st.KernelAgree, st.KernelDisagree = c.sock.agree.Load(), c.sock.disagree.Load()
		c.sock.status(&st)
		c.warnings = append(c.warnings, c.sock.tr.Resolver().Warnings()...)
		if len(c.warnings) > 0 {
			st.Warning = c.warnings[len(c.warnings)-1]
		}
	}
	if st.Done && c.err != nil {
		st.Err = c.err.Error()
	}
	return st
}

// isTerminal reports whether w is a terminal, where the interactive UI
// can run.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// setName is the header's name of the capture: for a set of files, the
// file being read and how many of the set have been read.
func setName(name string, c *capture.Counters) string {
	if p, ok := c.Progress(); ok && p.Files > 1 {
		return fmt.Sprintf("%s (file %d of %d)", p.File, min(p.FilesDone+1, p.Files), p.Files)
	}
	return name
}
