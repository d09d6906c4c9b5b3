package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/term"

	"github.com/flowtrack/flowtrack/capture"
	"github.com/flowtrack/flowtrack/export"
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
	local := s.local
	if local == nil && s.Live {
		lctx, stopLocal := context.WithCancel(ctx)
		local = startLocalSockets(lctx, s.tracker)
		defer local.tr.Wait()
		defer stopLocal()
	}

	retired := ui.NewRetired(0)
	cfg := s.Table
	cfg.Transitions = uiTransitions
	cfg.Changes = true // frames copy only what changed (ui/incremental.go)
	cfg.OnRetire = retired.Add
	if local != nil {
		local.hook(&cfg)
	}
	table := flows.NewTable(cfg)
	counters := &capture.Counters{}
	wire := newConnNames()

	name := s.Src.Name() // a Source is not for concurrent use: name it before the capture starts
	src := newPolled(s.Src, s.Live)
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
		err := capture.Run(capCtx, src, wire.decoder(), counters, s.MaxFrames, table.Apply)
		mu.Lock()
		capErr = err
		mu.Unlock()
		done.Store(true)
	}()

	status := func() ui.Status { // on the UI's builder goroutine
		st := ui.Status{
			Source:    setName(name, counters),
			Filter:    s.Filter,
			Live:      s.Live,
			Packets:   counters.Frames.Load(),
			Bytes:     counters.Bytes.Load(),
			Malformed: counters.Malformed.Load(),
			Dropped:   src.drops.Load(),
			Progress:  math.Float64frombits(src.progress.Load()),
			Done:      done.Load(),
		}
		if local != nil {
			st.KernelAgree, st.KernelDisagree = local.agree.Load(), local.disagree.Load()
			mu.Lock()
			local.status(&st)
			warnings = append(warnings, local.tr.Resolver().Warnings()...)
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
	ucfg.Processes = local != nil
	ucfg.Local = func(r *flows.Record) ui.Local {
		var l ui.Local
		if local != nil {
			l = local.uiLocal(r) // counts the kernel's verdicts too
		}
		var e export.Local
		wire.fill(&e, r)
		l.ServerName, l.NameSource, l.ALPN, l.ECH = e.ServerName, e.NameSource, e.ALPN, e.ECH
		return l
	}
	if local != nil {
		ucfg.Listeners = local.listeners
	}
	uiErr := ui.Run(ctx, ucfg)
	stopCapture()
	<-finished
	if local != nil && s.Report != nil {
		for _, w := range warnings {
			fmt.Fprintln(s.Report, "flowtrack:", w)
		}
		local.report(s.Report)
	}
	return table, counters, errors.Join(uiErr, capErr)
}

// polled is a Source that reads, on the capture goroutine (a Source is not
// safe for concurrent use), what the UI's header shows of it: a live
// capture's kernel and interface drops every second, and the fraction of
// a file read every tenth of a second, if the Source reports it with a
// Progress method (optional: a file Source, or a Pacer over one, may).
type polled struct {
	capture.Source
	live      bool
	reporter  interface{ Progress() float64 } // nil if the Source has no progress
	nextStats time.Time
	nextProg  time.Time
	drops     atomic.Uint64
	progress  atomic.Uint64 // math.Float64bits of the last Progress
}

func newPolled(src capture.Source, live bool) *polled {
	p := &polled{Source: src, live: live}
	if r, ok := src.(interface{ Progress() float64 }); ok && !live {
		p.reporter = r
	}
	return p
}

// ReadProgress passes on the source's progress, for capture.Run.
func (p *polled) ReadProgress() capture.Progress {
	if r, ok := p.Source.(interface{ ReadProgress() capture.Progress }); ok {
		return r.ReadProgress()
	}
	return capture.Progress{}
}

func (p *polled) Next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	if p.live || p.reporter != nil {
		now := time.Now()
		if p.live && now.After(p.nextStats) {
			p.nextStats = now.Add(time.Second)
			if st, err := p.Source.Stats(); err == nil {
				p.drops.Store(st.PacketsDropped + st.IfDropped)
			}
		}
		if p.reporter != nil && now.After(p.nextProg) {
			p.nextProg = now.Add(100 * time.Millisecond)
			if f := p.reporter.Progress(); f > 0 && f <= 1 {
				p.progress.Store(math.Float64bits(f))
			}
		}
	}
	return p.Source.Next()
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
