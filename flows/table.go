package flows

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Config sets a Table's timers (all on capture time) and its output.
// Zero fields take the defaults named.
type Config struct {
	// Shards is the number of lock shards, rounded up to a power of two
	// (default 64, on every machine: see setDefaults).
	Shards int
	// TimeWait is how long an endpoint stays in TIME_WAIT (default 60s,
	// Linux's TCP_TIMEWAIT_LEN).
	TimeWait time.Duration
	// HandshakeTimeout, if set, is how long after its last packet an
	// unanswered handshake lasts before its endpoints give up and are
	// CLOSED. By default (0) they give up on Kernel's schedules: a
	// connecting socket after its SYN retries (131 s after the first SYN
	// with Linux's defaults), a listener after its SYN-ACK retries (63 s).
	HandshakeTimeout time.Duration
	// Kernel is the TCP configuration of the hosts, whose timers the
	// states follow (default, when zero: Linux, a Linux kernel's
	// defaults). Set every field when setting one.
	Kernel Kernel
	// IdleTimeout retires a connection that has carried no packet for this
	// long (default 1h).
	IdleTimeout time.Duration
	// ClosedTimeout retires a connection this long after its last packet
	// once both endpoints are CLOSED (default 30s), so that late
	// retransmissions still find it.
	ClosedTimeout time.Duration
	// SweepEvery is how often, in capture time, expired connections are
	// looked for (default 1s).
	SweepEvery time.Duration
	// MaxConns bounds the number of connections tracked at once (default
	// 0: no bound). Each of the Shards shards holds at most its share;
	// when a new connection finds its shard full, one is evicted (see
	// evict.go) and handed to OnRetire with End set to EndEvicted.
	MaxConns int
	// Transitions is how many state changes to keep per connection, for
	// a detailed view (default 0: none, which saves memory).
	Transitions int
	// OnChange, if set, receives an event when a connection is opened
	// and whenever a packet changes the state of one of its endpoints. It
	// is called without any table lock held, possibly from several
	// goroutines at once; it must not call back into the table.
	OnChange func(Event)
	// Changes keeps, per shard, which connections changed and which left
	// since the last EachChange or EachSnapshot, so that a view can copy
	// only those (see changes.go).
	Changes bool
	// Zeek makes records begin and end where Zeek's conn.log records
	// would (zeektable.go), instead of following the kernel's lifetimes:
	// TIME_WAIT, ClosedTimeout, IdleTimeout and HandshakeTimeout then
	// end no record, and every record carries the fields of Zeek's
	// conn.log (Record.Zeek). A Zeek table applies its packets one at a
	// time even through Lanes.
	Zeek bool
	// OnRetire, if set, receives the records of connections that ended
	// and expired, or were replaced by a new connection on the same
	// 4-tuple, in the order they started. It is called without any table
	// lock held, possibly from several goroutines at once. It must not keep
	// the slice (copy what it keeps): the table reuses it.
	OnRetire func([]Record)

	// Kernel's schedules, worked out once by setDefaults.
	synIntervals, synAckIntervals []time.Duration
	// logs holds the transition logs, if Transitions is set, and cold
	// the connections' cold evidence; shared by the copies of the Config.
	logs *transitionLogs
	cold *coldStore
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.TimeWait, 60*time.Second)
	def(&c.IdleTimeout, time.Hour)
	def(&c.ClosedTimeout, 30*time.Second)
	def(&c.SweepEvery, time.Second)
	if c.Kernel == (Kernel{}) {
		c.Kernel = Linux
	}
	c.synIntervals, c.synAckIntervals = c.Kernel.SynIntervals(), c.Kernel.SynAckIntervals()
	if c.Transitions > 0 {
		c.logs = &transitionLogs{m: map[*conn][]transition{}}
	}
	c.cold = new(coldStore)
	if c.Shards <= 0 {
		// A fixed count, not one per core: under MaxConns the bound and
		// the choice of whom to evict are per shard, and a replay must
		// give the same records on every machine.
		c.Shards = defaultShards
	}
	n := 1
	for n < c.Shards {
		n <<= 1
	}
	c.Shards = n
}

// Table tracks connections keyed by 4-tuple. It is safe for concurrent use.
//
// Its jobs each have a file: apply.go takes a packet through its shard,
// evict.go keeps a shard under its bound, sweep.go retires what expired,
// flush.go retires everything at the end, snapshot.go copies the table
// out, and changes.go tells a view what changed.
type Table struct {
	cfg       Config
	shards    []shard
	mask      uint32
	zk        *zeekClock   // Config.Zeek's timers, or nil: beside mask, which every packet reads too
	now       atomic.Int64 // newest packet time applied, or Tick's time if later
	seen      atomic.Int64 // newest packet time applied
	nextSweep atomic.Int64
	sweepMu   sync.Mutex // serialises sweeps, and guards sweepNext
	sweepNext int        // the first shard the next sweep looks at
	// The counters change often, and from every lane (lanes.go): they
	// share no cache line with the clocks, which every packet reads.
	_       [64]byte
	opened  atomic.Uint64
	retired atomic.Uint64
	evicted atomic.Uint64
	_       [64]byte
	chgMax  int // entries a shard's change list may hold (changes.go)
	// slab holds the full connections (slab.go); Flush moves the shards
	// to a new one.
	slab *atomic.Pointer[slab]
	// With Lanes, IDs are packet numbers, and settled is the last packet
	// that every lane has applied (IDMark).
	laned   atomic.Bool
	settled atomic.Uint64

	// retirePool holds one-record slices for OnRetire: under a SYN flood
	// every new connection evicts one, and a fresh slice each time was
	// most of the garbage.
	retirePool sync.Pool
}

type shard struct {
	// A multiple of 64 bytes: neighbours share no cache line (TestShardSize).
	// (First: a zero-size last field would be given padding.)
	_ [(64 - unsafe.Sizeof(shardFields{})%64) % 64]byte
	shardFields
}

type shardFields struct {
	mu    sync.Mutex // guards the following
	m     connTable  // full connections (conntable.go)
	half  halfTable  // connections with SYNs from one side only (half.go)
	lists [2]list    // by conn's mCheap; see evict.go
	tmp   conn       // scratch for replaying a halfOpen
	limbo limbo      // evicted half-open connections, for a while (limbo.go)
	max   int        // connections this shard may hold (0: no limit)
	chg   changes    // what changed since the last EachChange (changes.go)
}

// NewTable returns an empty table.
func NewTable(cfg Config) *Table {
	cfg.setDefaults()
	t := &Table{cfg: cfg, shards: make([]shard, cfg.Shards), mask: uint32(cfg.Shards - 1)}
	t.chgMax = max(64, maxChanges/cfg.Shards)
	if cfg.Zeek {
		t.zk = newZeekClock(cfg.Shards)
	}
	sl := newSlab(cfg.MaxConns > 0)
	t.slab = &atomic.Pointer[slab]{}
	t.slab.Store(sl)
	for i := range t.shards {
		t.shards[i].m.slab = sl
		t.shards[i].m.cold = t.cfg.cold
	}
	// The slab's memory outside the heap goes back to the system once the
	// table is unreachable: no conn is reachable but through it.
	runtime.AddCleanup(t, func(p *atomic.Pointer[slab]) { p.Load().unmap() }, t.slab)
	// Likewise the cold records'.
	runtime.AddCleanup(t, func(s *coldStore) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.unmap()
	}, t.cfg.cold)
	// And the shards' indexes'.
	runtime.AddCleanup(t, func(shards []shard) {
		for i := range shards {
			shards[i].m.giveBack()
			shards[i].half.giveBack()
		}
	}, t.shards)
	for i := range t.shards {
		if cfg.MaxConns > 0 {
			t.shards[i].max = max(1, (cfg.MaxConns+cfg.Shards-1)/cfg.Shards)
			t.shards[i].limbo = newLimbo(min(2*t.shards[i].max, max(limboMax/cfg.Shards, 1)))
		}
	}
	return t
}

// Tick moves the table's clock to now if that is later than the newest
// packet, and sweeps when a sweep is due. A live capture calls it every
// second, so that timers (TIME_WAIT, handshakes, idle connections) run out
// on a quiet network too; a replay never does, its clock is its packets.
func (t *Table) Tick(now time.Time) {
	advance(&t.now, now.UnixNano())
	if t.zk != nil {
		t.zeekAdvance(now.UnixNano())
	}
	if next := t.nextSweep.Load(); next != 0 && t.now.Load() >= next {
		t.Sweep()
	}
}

// advance moves clock forward to ts, never back.
func advance(clock *atomic.Int64, ts int64) {
	for {
		cur := clock.Load()
		if ts <= cur || clock.CompareAndSwap(cur, ts) {
			return
		}
	}
}

// Now returns the capture time of the newest packet applied.
func (t *Table) Now() time.Time { return time.Unix(0, t.now.Load()).UTC() }

// Len returns the number of connections in the table. It is not consistent
// with concurrent updates; it is meant for status lines and metrics.
func (t *Table) Len() int {
	n := 0
	t.eachShardLocked(func(sh *shard) { n += sh.m.len() + sh.half.len() })
	return n
}

// eachShardLocked calls fn with each shard, its lock held.
func (t *Table) eachShardLocked(fn func(sh *shard)) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		fn(sh)
		sh.mu.Unlock()
	}
}

// Opened returns how many connection records have been started.
func (t *Table) Opened() uint64 { return t.opened.Load() }

// IDMark returns a connection ID up to which every connection has been
// opened (it is in the table, or has left it): a view that follows the
// table with EachChange or EachSnapshotUpTo cuts at this mark, so that the
// connections of its next look all have higher IDs. Without Lanes, IDs
// count the connections opened, and the mark is Opened; with them, IDs
// are the numbers of the packets that opened them, and the mark is the
// last packet every lane has applied, which follows the packets by up to an
// epoch (Lanes.Sync).
func (t *Table) IDMark() uint64 {
	if t.laned.Load() {
		return t.settled.Load()
	}
	return t.opened.Load()
}

// Evicted returns how many connections were evicted to respect MaxConns.
// An evicted handshake that came back from limbo (limbo.go) is no longer
// counted, so the count can go down.
func (t *Table) Evicted() uint64 { return t.evicted.Load() }

// slabBytes returns the bytes of the slab, of the shards' indexes and of
// the cold records mapped outside the Go heap (for BenchmarkMemoryPerConn,
// which reads the heap's size).
func (t *Table) slabBytes() int {
	n := t.slab.Load().bytesMapped() + t.cfg.cold.bytesMapped()
	t.eachShardLocked(func(sh *shard) { n += sh.m.bytesMapped() + sh.half.bytesMapped() })
	return n
}

// defaultShards is Config.Shards's default.
const defaultShards = 64
