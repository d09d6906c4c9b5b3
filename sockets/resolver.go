package sockets

import (
	"context"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// Bounds on what one refresh reads and what a Resolver keeps. At about 150
// bytes a socket (the table entry, its inode in the process scan and its
// row), MaxSockets bounds a Resolver to roughly 150 MiB, and a refresh that
// big takes seconds; typical hosts have hundreds to thousands of sockets.
const (
	MaxSockets   = 1 << 20 // sockets read per refresh, all namespaces and states together; also socket inodes recorded
	MaxProcesses = 1 << 16 // processes scanned per refresh
	MaxNetns     = 1 << 10 // network namespaces read per refresh
	MaxGone      = 1 << 16 // departed sockets remembered
	MaxListeners = 1 << 16 // listening sockets listed per refresh
)

const (
	// DefaultEvery is how often Start refreshes when given no period.
	DefaultEvery = time.Second
	// Linger is how long a socket that left the kernel's table is still
	// found by Lookup, with Gone set: long enough for flowtrack to write out
	// a record after TIME_WAIT and its closed timeout.
	Linger = 5 * time.Minute
	// minGap is the least time between two refreshes, however often
	// Nudge is called.
	minGap = 100 * time.Millisecond
	// fullScanEvery is how often, in refreshes, every process's
	// descriptors are read even though no socket of unknown holder has
	// appeared: a socket can change hands (passed over a Unix socket, left
	// to a child by a parent that exited).
	fullScanEvery = 10
)

// Resolver keeps the table of local TCP sockets and their processes. Create
// one with New; the zero value is not usable. Lookup, LookupKey, Nudge,
// Stats and Warnings are safe for concurrent use and never wait for a
// refresh to finish; refreshes (Refresh, or the goroutine Start runs) are
// serialized.
type Resolver struct {
	// NoFDs, once set, stops refreshes from reading processes' file
	// descriptors: sockets keep the processes earlier refreshes found, and
	// new ones get none. An eBPF source, which names processes itself,
	// sets it after the first refresh.
	NoFDs atomic.Bool
	// TimeWaitEvery, if set, reads the sockets in TIME_WAIT only that
	// often (nanoseconds). In between, a refresh asks the kernel for the
	// other states only; it keeps the TIME_WAIT sockets it last read, and
	// keeps, with their state unknown, the sockets that left the other
	// states, which may be in TIME_WAIT now. A host in a connect storm
	// holds a hundred thousand sockets in TIME_WAIT, which the kernel
	// walks at every read. An eBPF source, which names processes itself,
	// sets it.
	TimeWaitEvery atomic.Int64

	nudge   chan struct{}
	done    chan struct{}
	started atomic.Bool

	refreshMu sync.Mutex // serializes refreshes; guards the following fields
	procRoot  string     // "/proc"
	selfDir   string     // "/proc/thread-self", or "/proc/self" on kernels before 3.17
	runNetns  string     // "/run/netns"
	noNetlink bool       // read /proc/net/tcp{,6} only (tests)
	selfNS    uint64     // flowtrack's own network namespace
	scanner   procScanner
	diag      diagReader
	procNet   procNetReader
	rows      []row
	listeners map[listenKey]int32
	comms     map[int32]string // PID → command name, this refresh
	oldComms  map[int32]string // and the previous one
	nsState   map[uint64]nsOutcome
	goneNow   []sockKey
	warned    map[string]bool
	scanned   bool                // a full scan has been made
	sinceFull int                 // refreshes since the last full scan
	lastTW    time.Time           // when the sockets in TIME_WAIT were last read
	partial   bool                // this refresh does not read them
	forceFull bool                // the next refresh makes a full scan
	unowned   map[uint64]struct{} // socket inodes the scans since the last full one found no holder for
	hot       []int32             // hotPIDs' result
	hotSet    map[int32]struct{}

	// cur is the latest refresh's table: replaced whole, never modified,
	// so lookups read it without a lock.
	cur atomic.Pointer[table]

	mu      sync.RWMutex // guards the following fields
	gone    map[sockKey]Owner
	goneQ   []goneItem // gone's keys, oldest first
	pending []string   // warnings not yet handed out
	stats   Stats
}

// table is one refresh's sockets. Its entries have Seen unset, and lookups
// set it from when, but for those kept from an earlier read (TIME_WAIT not
// read this time), which have their own.
type table struct {
	socks     map[sockKey]Owner
	listening []Listener
	when      time.Time
}

type goneItem struct {
	key sockKey
	at  time.Time
}

type listenKey struct {
	netns uint64
	addr  [16]byte
	port  uint16
}

type nsOutcome uint8

const (
	nsRead   nsOutcome = iota + 1 // its whole table was read
	nsFailed                      // it exists, but its table could not be read, or only in part
)

// Stats describes the most recent refresh.
type Stats struct {
	At         time.Time     // when it finished; zero before the first refresh
	Took       time.Duration // how long it took
	Refreshes  uint64        // refreshes so far
	Sockets    int           // connection sockets in the table (listeners not counted)
	Listeners  int           // listening sockets
	Attributed int           // sockets with a process (Via != ViaNone)
	Remembered int           // departed sockets still found, with Gone set
	Processes  int           // processes scanned
	Scan       string        // whose descriptors were read: "full" (every process), "partial" (those already holding sockets), or "" (none: every socket's holder was known)
	Denied     int           // processes whose descriptors could not be read, in the last full scan
	Netns      int           // network namespaces whose tables were read
	Netlink    bool          // whether flowtrack's own namespace was read through netlink (else /proc/net/tcp)
	Collisions int           // 4-tuples present in more than one namespace
	Truncated  bool          // a bound was reached: some sockets or processes were skipped
	Err        error         // why flowtrack's own namespace could not be read, if it could not
	ReadNetns  []uint64      // inodes of the namespaces read, flowtrack's own first
	DeniedPID  int           // one process whose descriptors could not be read
}

// New returns a Resolver with an empty table; call Start (or Refresh) to
// fill it.
func New() *Resolver {
	r := &Resolver{
		nudge:     make(chan struct{}, 1),
		done:      make(chan struct{}),
		procRoot:  "/proc",
		runNetns:  "/run/netns",
		listeners: make(map[listenKey]int32),
		comms:     make(map[int32]string),
		oldComms:  make(map[int32]string),
		nsState:   make(map[uint64]nsOutcome),
		warned:    make(map[string]bool),
		unowned:   make(map[uint64]struct{}),
		hotSet:    make(map[int32]struct{}),
		gone:      make(map[sockKey]Owner),
	}
	r.scanner.root = r.procRoot
	r.scanner.procfd = -1
	r.selfDir = r.procRoot + "/thread-self"
	if _, err := os.Stat(r.selfDir); err != nil {
		r.selfDir = r.procRoot + "/self"
	}
	r.selfNS = r.nsInode(r.selfDir + "/ns/net")
	return r
}

// Start refreshes the table now and then every period (DefaultEvery if
// every <= 0) on a goroutine of its own, until ctx is done; Wait waits for
// that goroutine to end. Start returns at once; a second call does nothing.
func (r *Resolver) Start(ctx context.Context, every time.Duration) {
	if !r.started.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer close(r.done)
		r.Run(ctx, every)
	}()
}

// Wait returns once the goroutine Start started has ended (after its
// context is done), or at once if Start was not called.
func (r *Resolver) Wait() {
	if r.started.Load() {
		<-r.done
	}
}

// Run refreshes the table now, then every period (DefaultEvery if every <=
// 0) and soon after each Nudge, until ctx is done. It is Start without the
// goroutine, for callers that run their own (an errgroup).
func (r *Resolver) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultEvery
	}
	every = max(every, minGap)
	tick := time.NewTimer(0)
	defer tick.Stop()
	gap := time.NewTimer(0)
	defer gap.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-r.nudge:
		}
		_ = r.Refresh() // its error is in Stats and Warnings
		tick.Reset(every)
		gap.Reset(minGap)
		select { // coalesce nudges: never refresh twice within minGap
		case <-ctx.Done():
			return
		case <-gap.C:
		}
	}
}

// Nudge asks the goroutine Start started for an early refresh (at most one
// per 100 ms), for example when a connection from a local address appears
// that Lookup does not know yet. It never blocks.
func (r *Resolver) Nudge() {
	select {
	case r.nudge <- struct{}{}:
	default:
	}
}

// Lookup returns the local socket whose local endpoint is local and whose
// peer is remote. IPv4 addresses match IPv4 sockets and IPv4-mapped
// addresses of dual-stack IPv6 sockets alike; zones are ignored. A socket
// that left the kernel's table less than Linger ago is still found, with
// Gone set.
func (r *Resolver) Lookup(local, remote netip.AddrPort) (Owner, bool) {
	return r.lookup(keyOf(local, remote))
}

// LookupKey looks up both endpoints of a connection: owners[i] and
// found[i] are Lookup(k.Endpoint(i), k.Endpoint(1-i)), the local socket at
// endpoint i, if that endpoint is on this host. Both are found for a
// connection between two local sockets (over loopback, or between
// namespaces). The VLAN tags are ignored.
func (r *Resolver) LookupKey(k flows.Key) (owners [2]Owner, found [2]bool) {
	owners[0], found[0] = r.lookup(sockKey{local: k.Addr[0], remote: k.Addr[1], lport: k.Port[0], rport: k.Port[1]})
	owners[1], found[1] = r.lookup(sockKey{local: k.Addr[1], remote: k.Addr[0], lport: k.Port[1], rport: k.Port[0]})
	return owners, found
}

// lookup finds k in the current table without locking, else among the
// departed sockets. A refresh adds the sockets it finds gone before it
// publishes the table without them, so a socket is never missing from both.
func (r *Resolver) lookup(k sockKey) (Owner, bool) {
	if t := r.cur.Load(); t != nil {
		if o, ok := t.socks[k]; ok {
			if o.Seen.IsZero() {
				o.Seen = t.when
			}
			return o, true
		}
	}
	r.mu.RLock()
	o, ok := r.gone[k]
	r.mu.RUnlock()
	return o, ok
}

// Listeners returns the listening sockets the latest refresh found, in
// every namespace read, with the process holding each where known (Via
// ViaListener), at most MaxListeners.
func (r *Resolver) Listeners() []Listener {
	t := r.cur.Load()
	if t == nil {
		return nil
	}
	out := make([]Listener, len(t.listening))
	copy(out, t.listening)
	for i := range out {
		out[i].Owner.Seen = t.when
	}
	return out
}

// Stats returns a description of the most recent refresh.
func (r *Resolver) Stats() Stats {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := r.stats
	s.ReadNetns = append([]uint64(nil), s.ReadNetns...)
	return s
}

// Warnings returns what the Resolver could not see that it has not
// reported yet (for example, without root, other users' processes), one
// sentence each. Each kind of problem is reported once per Resolver, so the
// result suits a status line or stderr; it is nil when there is nothing new.
func (r *Resolver) Warnings() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.pending
	r.pending = nil
	return w
}
