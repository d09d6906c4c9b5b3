package flows

import (
	"math"
	"sync/atomic"
)

// Snapshot returns a copy of every connection in the table, in no
// particular order, without transition logs (see Lookup). Each shard is
// copied under its own lock, so the copy is consistent per connection, not
// across the table.
func (t *Table) Snapshot() []Record { return t.AppendSnapshot(nil) }

// AppendSnapshot is Snapshot appending to dst, so that a caller refreshing
// a view many times a second can reuse one buffer.
func (t *Table) AppendSnapshot(dst []Record) []Record {
	t.EachSnapshot(func(r *Record) { dst = append(dst, *r) })
	return dst
}

// EachSnapshot calls fn with each connection's record, as Snapshot would
// return them, without holding them all: fn's record is reused once fn
// returns. A view that keeps a smaller copy of each connection thus needs
// no room for a whole table's Records at once. fn runs with a shard's lock
// held: it must be quick, and must not call into the table.
func (t *Table) EachSnapshot(fn func(*Record)) { t.EachSnapshotUpTo(math.MaxUint64, fn) }

// EachSnapshotUpTo is EachSnapshot for a view that follows the table with
// EachChange (Config.Changes): it starts the change lists afresh, and
// lists the connections with IDs above upto as changed instead of handing
// them to fn, so that the next EachChange gives them. Without
// Config.Changes it is EachSnapshot.
func (t *Table) EachSnapshotUpTo(upto uint64, fn func(*Record)) {
	if !t.cfg.Changes {
		upto = math.MaxUint64
	}
	now, seen := t.now.Load(), t.seen.Load()
	var r Record
	noLog := t.cfg
	noLog.Transitions = 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		sh.chg.drop() // what changed before is in this snapshot
		sh.releaseFreed()
		sh.chg.over = false
		sh.eachConn(func(c *conn) {
			if c.ident(t.cfg.cold) > upto {
				t.changed(sh, c)
				return
			}
			c.expireTimers(now, seen, &t.cfg) // states as of now, even without a packet since
			c.fill(&r, EndNone, &t.cfg, false)
			fn(&r)
		})
		sh.half.each(func(s *halfSlot) {
			if s.h.ident() > upto {
				t.changedHalf(sh, &s.key)
				return
			}
			c := s.h.conn(s.key, &noLog, &sh.tmp)
			c.expireTimers(now, seen, &noLog)
			c.fill(&r, EndNone, &t.cfg, false)
			fn(&r)
		})
		sh.mu.Unlock()
	}
}

// eachConn calls fn for every connection of the shard (sh.mu is held), in
// groups whose connections are all fetched before fn sees any: a walk of a
// large table waits on memory at each connection, and the fetches of a
// group overlap. fn must not change sh.m.
func (sh *shard) eachConn(fn func(c *conn)) {
	var conns [32]*conn
	var touched uint32
	n := 0
	run := func() {
		for _, c := range conns[:n] {
			touched += c.touch()
		}
		for _, c := range conns[:n] {
			fn(c)
		}
		n = 0
	}
	sh.m.eachConn(func(c *conn) {
		conns[n] = c
		if n++; n == len(conns) {
			run()
		}
	})
	run()
	fetched.Store(touched)
}

// fetched keeps eachConn's fetches from being optimised away.
var fetched atomic.Uint32

// Lookup returns the current record of the connection with the given key
// and ID, with its transition log, if it is still in the table.
func (t *Table) Lookup(key Key, id uint64) (Record, bool) {
	hash := key.hash64()
	sh := &t.shards[uint32(hash)&t.mask]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c := sh.m.get(&key, hash); c != nil && c.ident(t.cfg.cold) == id {
		return c.record(EndNone, &t.cfg, true), true
	}
	if h, ok := sh.half.get(&key, hash); ok && h.ident() == id {
		now, seen := t.now.Load(), t.seen.Load()
		return h.record(key, &t.cfg, &sh.tmp, now, seen, EndNone, true), true
	}
	return Record{}, false
}
