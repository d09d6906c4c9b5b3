package sockets

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Config chooses how a Tracker names processes.
type Config struct {
	// NoEBPF keeps to the socket table (flowtrack --no-ebpf).
	NoEBPF bool
	// Ring is the eBPF ring buffer's size in bytes: a power of two, at
	// least a page (0: DefaultRing).
	Ring int
	// Keep is how long the owner of a closed socket is kept when no
	// record retires it (0: an hour, flowtrack's default idle timeout).
	Keep time.Duration
	// Grace is how long the owners of a connection are kept after Retire
	// (0: a minute), for views that still show retired records.
	Grace time.Duration
	// Every is how often the socket table is read (0: DefaultEvery).
	Every time.Duration
	// MaxOwners bounds the sockets whose owners are kept (0: MaxOwners).
	MaxOwners int

	tracepoint bool // tests: the tracepoint names connecting processes, not fexit
	noAccept   bool // tests: on the tracepoint path, listeners name what they accept
	acceptBTF  bool // tests: on the tracepoint path, accepts traced from sys_exit, not the trace events
}

// Tracker names the process behind every local TCP socket and reports the
// kernel's state of each. Its sources:
//
//   - eBPF, where the kernel and flowtrack's privileges allow: the process
//     that connects, accepts or listens is reported by the kernel at that
//     moment, however short-lived the connection (see bpf/tracer.bpf.c);
//   - the socket table (a Resolver), read every second: the kernel's states,
//     the sockets that existed before the Tracker started, and the owners
//     when eBPF cannot be used.
//
// Lookups are safe for concurrent use and never wait for the kernel.
type Tracker struct {
	cfg     Config
	res     *Resolver
	procs   *procCache
	bpf     *bpfTracer    // nil without eBPF
	owners  *ownerTable   // nil without eBPF
	unavail *Unavailable  // why eBPF is not used, nil if it is
	boot    time.Time     // wall-clock time of CLOCK_MONOTONIC's zero
	events  atomic.Uint64 // events read
	lost    atomic.Uint64 // events the ring had no room for, as last read
	bad     uint64        // records too short to be events (reader goroutine only)
	started atomic.Bool
	wg      sync.WaitGroup
	closeMu sync.Mutex
	closed  bool
}

// NewTracker makes a Tracker and, unless cfg.NoEBPF, loads and attaches
// its eBPF programs now: call it before dropping root. It never fails:
// without eBPF it names processes from the socket table, and Source says
// why.
func NewTracker(cfg Config) *Tracker {
	if cfg.Keep <= 0 {
		cfg.Keep = time.Hour
	}
	if cfg.Grace <= 0 {
		cfg.Grace = time.Minute
	}
	if cfg.MaxOwners <= 0 {
		cfg.MaxOwners = MaxOwners
	}
	t := &Tracker{cfg: cfg, res: New()}
	t.procs = newProcCache(t.res.procRoot)
	if cfg.NoEBPF {
		t.unavail = &Unavailable{Reason: "--no-ebpf"}
		return t
	}
	b, err := loadBPF(loadOptions{ring: cfg.Ring, tracepoint: cfg.tracepoint, noAccept: cfg.noAccept, acceptBTF: cfg.acceptBTF})
	if err != nil {
		t.unavail = unavailable(err)
		return t
	}
	t.bpf, t.boot = b, monotonicEpoch()
	t.owners = newOwnerTable(t.res.selfNS, cfg.MaxOwners, cfg.Keep, cfg.Grace)
	return t
}

// timeWaitEvery is how often the sockets in TIME_WAIT are read once events
// name processes: they have no process, and their state changes once, at
// the end.
const timeWaitEvery = 5 * time.Second

// Start reads the socket table once (the sockets that exist already, and
// their processes), then goes on in the background until ctx is done:
// reading the eBPF events, and the socket table every cfg.Every. Wait
// waits for it to end. A second call does nothing.
func (t *Tracker) Start(ctx context.Context) {
	if !t.started.CompareAndSwap(false, true) {
		return
	}
	_ = t.res.Refresh() // its error is in Stats and Warnings
	if t.bpf != nil {
		// Events name every socket from now on; the table is read for
		// the kernel's states, and for processes again only if events
		// are lost, or if accepts are not traced (a listener's process
		// may not be the one that accepts).
		t.res.NoFDs.Store(t.bpf.acceptExact)
		t.res.TimeWaitEvery.Store(int64(timeWaitEvery))
		t.seedListeners()
		t.wg.Add(2)
		go func() {
			defer t.wg.Done()
			_ = t.bpf.read(t.handle, &t.bad) // ends when Close closes the reader
		}()
		go func() {
			defer t.wg.Done()
			t.housekeep(ctx)
		}()
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.res.Run(ctx, t.cfg.Every)
		t.Close()
	}()
}

// Wait returns once what Start started has ended.
func (t *Tracker) Wait() { t.wg.Wait() }

// Close detaches the eBPF programs and stops reading events; lookups go on
// answering from what is known. Start's context ending calls it.
func (t *Tracker) Close() {
	t.closeMu.Lock()
	defer t.closeMu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	if t.bpf != nil {
		t.lost.Store(t.bpf.lostEvents())
		t.bpf.close()
	}
}

// handle records one event (on the reader goroutine).
func (t *Tracker) handle(ev *tracerEvent) {
	se := decode(ev, t.boot)
	switch se.kind {
	case kindConnect, kindConnected, kindAccept, kindListen:
		se.proc = t.procs.event(int32(ev.Tgid), ev.Pstart, commString(&ev.Comm), ev.Uid, ev.Cgroup)
	}
	t.owners.apply(&se)
	t.events.Add(1)
}

// housekeep forgets expired owners and watches for lost events, every
// second: once any are lost, the socket table names processes again
// (for the sockets still open), and is read at once.
func (t *Tracker) housekeep(ctx context.Context) {
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tk.C:
			t.owners.sweep(now)
			t.seedListeners()
			t.closeMu.Lock()
			if !t.closed {
				if n := t.bpf.lostEvents(); n > t.lost.Load() {
					t.lost.Store(n)
					t.res.NoFDs.Store(false)
					t.res.Nudge()
				}
			}
			t.closeMu.Unlock()
		}
	}
}

// seedListeners adds the listeners the socket table names a process for
// and the events have not reported (they listened before the Tracker
// started), so that a connection to them that is never accepted, or
// whose accept no event reports, is named after its listener.
func (t *Tracker) seedListeners() {
	for _, l := range t.res.Listeners() {
		if l.Owner.PID == 0 {
			continue
		}
		o := l.Owner
		o.Proc = t.procs.pid(int32(o.PID), o.Comm, o.UID)
		t.owners.seedListener(l.Addr, o)
	}
}

// Lookup returns what is known of the local socket whose local endpoint
// is local and whose peer is remote: its process from the events where
// they named it, else from the socket table; the kernel's state from the
// socket table (Kernel set). ok is false if neither knows the socket.
func (t *Tracker) Lookup(local, remote netip.AddrPort) (Owner, bool) {
	k := keyOf(local, remote)
	o, ok := t.res.lookup(k)
	if t.owners != nil {
		if e, found := t.owners.lookup(k); found && (e.Via != ViaListener || o.PID == 0) {
			if !ok {
				o.Netns, o.UID = e.Netns, e.UID
			}
			o.PID, o.TID, o.Comm, o.Proc, o.Via = e.PID, e.TID, e.Comm, e.Proc, e.Via
			if !o.Kernel {
				o.Seen = e.Seen
			}
			ok = true
		}
	}
	if ok && o.PID != 0 && o.Proc == nil {
		o.Proc = t.procs.pid(int32(o.PID), o.Comm, o.UID)
	}
	return o, ok
}

// Listeners returns the listening sockets of this host, in every network
// namespace read: those of the latest socket table, and those the events
// reported since, with their processes.
func (t *Tracker) Listeners() []Listener {
	ls := t.res.Listeners()
	if t.owners != nil {
		type lk struct {
			netns uint64
			addr  netip.AddrPort
		}
		at := make(map[lk]int, len(ls))
		for i := range ls {
			at[lk{ls[i].Owner.Netns, ls[i].Addr}] = i
		}
		for _, l := range t.owners.listening(nil) {
			if i, ok := at[lk{l.Owner.Netns, l.Addr}]; ok {
				if ls[i].Owner.PID == 0 {
					o := &ls[i].Owner
					o.PID, o.Comm, o.Proc, o.Via, o.TID = l.Owner.PID, l.Owner.Comm, l.Owner.Proc, ViaListener, l.Owner.TID
				}
				continue
			}
			ls = append(ls, l)
		}
	}
	for i := range ls {
		if o := &ls[i].Owner; o.PID != 0 && o.Proc == nil {
			o.Proc = t.procs.pid(int32(o.PID), o.Comm, o.UID)
		}
	}
	return ls
}

// Retire says that the record of the connection between a and b has been
// retired and written out: the owners the events named for it are
// forgotten cfg.Grace later.
func (t *Tracker) Retire(a, b netip.AddrPort) {
	if t.owners != nil {
		t.owners.retire(a, b, time.Now())
	}
}

// Nudge asks for an early read of the socket table when a connection of
// unknown owner appears; with eBPF (and no event lost) it does nothing:
// the events name it.
func (t *Tracker) Nudge() {
	if t.bpf == nil || t.lost.Load() > 0 {
		t.res.Nudge()
	}
}

// EBPF reports whether the eBPF source is in use.
func (t *Tracker) EBPF() bool { return t.bpf != nil }

// Unavailable says why eBPF is not used; nil if it is.
func (t *Tracker) Unavailable() *Unavailable { return t.unavail }

// Source says in one line which source names processes and, without eBPF,
// why and what to do about it.
func (t *Tracker) Source() string {
	if t.bpf != nil {
		s := "processes from eBPF (" + strings.Join(t.bpf.hooks, "; ") + ")"
		if t.bpf.fexitErr != nil {
			s += "; fexit refused (" + errText(t.bpf.fexitErr) + ")"
		}
		if !t.bpf.acceptExact {
			s += "; accepting processes named by their listener"
			if t.bpf.acceptErr != nil {
				s += " (accept not traced: " + t.bpf.acceptErr.Error() + ")"
			}
		}
		return s
	}
	s := "processes from the socket table, read every second: short connections may show none (eBPF not used: " + t.unavail.Reason
	if t.unavail.Fix != "" {
		s += "; " + t.unavail.Fix
	}
	return s + ")"
}

// TrackerStats counts what the eBPF source has done.
type TrackerStats struct {
	Events  uint64 // events read
	Lost    uint64 // events lost: the ring buffer was full
	Owners  int    // sockets whose owners are kept
	Evicted uint64 // owners forgotten to stay within MaxOwners
}

// Stats returns the eBPF source's counts (zero without eBPF).
func (t *Tracker) Stats() TrackerStats {
	st := TrackerStats{Events: t.events.Load(), Lost: t.lost.Load()}
	if t.owners != nil {
		st.Owners, st.Evicted = t.owners.size()
	}
	return st
}

// Resolver returns the socket table reader, for its Stats and Warnings.
func (t *Tracker) Resolver() *Resolver { return t.res }

// errText is the last part of an error's text: its cause, without the
// chain of what was being done.
func errText(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}
