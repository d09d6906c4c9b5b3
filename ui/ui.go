package ui

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// Status is the capture's state, as the header line shows it.
type Status struct {
	Source string // interface or file name
	Filter string // BPF filter, if any
	Live   bool
	// Packets and Bytes count the frames read (every protocol) and their
	// wire lengths; the header shows their rates over capture time.
	Packets, Bytes uint64
	Malformed      uint64 // frames that could not be decoded
	Dropped        uint64 // packets the kernel or interface dropped (live)
	// CaptureTime is the newest packet's timestamp; zero means the
	// table's clock (flows.Table.Now).
	CaptureTime time.Time
	// Progress is the fraction of the file read, in (0, 1]; zero if
	// unknown or live.
	Progress float64
	Done     bool   // the end of the file was reached, or the capture stopped
	Err      string // a capture error to show, if any
	// KernelAgree and KernelDisagree count the local endpoints whose
	// inferred state the kernel confirmed or contradicted, once each per
	// connection and endpoint (live, with Config.Local).
	KernelAgree, KernelDisagree uint64
	// Warning is the latest thing the process lookup could not see (for
	// example, without root, other users' processes); the detail view
	// shows it for connections without a process.
	Warning string
	// Processes says which source names the processes behind
	// connections and, when it is not eBPF, why and what to do
	// (ProcessesWarn set); ProcessesShort says it in a word or two, for a
	// narrow header. LostEvents counts the eBPF events lost (a full ring).
	Processes, ProcessesShort string
	ProcessesWarn             bool
	LostEvents                uint64
}

// Listener is a listening socket of this host.
type Listener struct {
	Addr    netip.AddrPort // unspecified address for a wildcard
	PID     int            // 0 if unknown
	Process string         // its command name, with its container if any
}

// Names gives host names for addresses (reverse DNS), as names.Resolver
// does. Its methods are called from the UI's goroutines, including the
// event goroutine for the rows on screen, so they must be safe for
// concurrent use and must never block: Name answers at once, with ok false
// while the name is not known yet (asking for it in the background), and
// Version changes whenever new names have arrived.
type Names interface {
	Name(netip.Addr) (name string, ok bool)
	Version() uint64
}

// Replay controls the pacing of a file replay. Its methods are called from
// the UI's goroutines (so they must be safe for concurrent use) and must
// not block.
type Replay interface {
	// Speed returns the replay speed: 1 is real time, 0 as fast as
	// possible.
	Speed() float64
	SetSpeed(float64)
	Paused() bool
	SetPaused(bool)
	// Step reads one more packet while paused.
	Step()
}

// Config is what Run needs.
type Config struct {
	Table *flows.Table // required; set flows.Config.Transitions for the detail view's log, and Changes for cheap frames at scale
	// Retired receives the records of connections that leave the table
	// (wire its Add to flows.Config.OnRetire), so that they stay visible
	// for Linger. Nil: connections vanish when they leave the table.
	Retired *Retired
	// Status is polled on every refresh, off the UI goroutine. Nil shows
	// only what the table knows.
	Status func() Status
	Replay Replay // nil for live capture
	// Linger is how long, in capture time, connections that left the table
	// stay on screen, dimmed.
	Linger time.Duration
	// Screen is the terminal; nil opens the real one. Tests pass a
	// tcell.SimulationScreen (not yet initialised).
	Screen tcell.Screen
	// Local, if set, looks up a connection's name and, with Processes,
	// its local process and kernel states; the connection list then has a
	// Name column (while names are shown) and, with Processes, a Process
	// column. It is called on the builder goroutine for every row of every
	// snapshot, so it must be fast (a lookup in memory, no I/O) and safe
	// for concurrent use.
	Local local.Lookup
	// Processes says that Local names local processes (a live capture).
	Processes bool
	// Listeners, if set, lists this host's listening sockets (live): the
	// Services view shows every one, with its process, even with no
	// connection yet. Called on the builder goroutine, once per frame of
	// that view.
	Listeners func() []Listener
	// Names, if set, names hosts; the n key shows or hides the names.
	Names Names
	// ShowNames starts with the names shown; else addresses are numeric
	// until n is pressed (as with -n).
	ShowNames bool
	// Judge judges what is wrong with each connection: the Problem
	// column, the Problems view and the detail view's problems. Nil:
	// diag's default thresholds.
	Judge *diag.Judge
}

// Run shows the UI until the user quits (q or Ctrl-C) or ctx is done, then
// restores the terminal. It returns an error only if the terminal could not
// be used.
func Run(ctx context.Context, cfg Config) error {
	return run(ctx, cfg, options{})
}

// options are knobs for tests.
type options struct {
	clock func() time.Time // wall clock for new-row highlights; default time.Now
	tick  time.Duration    // refresh interval; default 100 ms
	// ticks, if set, replaces the refresh timer: a frame is built on each
	// receive (tests).
	ticks <-chan struct{}
	// drawn, if set, is called on the event goroutine after each draw
	// with the sequence number of the frame drawn.
	drawn func(seq uint64)
	// barrier, if not zero, is a key that calls settled once every earlier
	// key has been handled and the frame shown reflects the UI's state.
	barrier tcell.Key
	settled func()
	// ready, if set, gets the UI before it starts.
	ready func(*ui)
	// incremental builds frames from the table's changes whatever its
	// size, as it does from incrementalFrom connections (tests).
	incremental bool
}

// errNoTable is returned by Run without a table.
var errNoTable = errors.New("ui: Config.Table is nil")
