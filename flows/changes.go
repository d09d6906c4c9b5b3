package flows

// Change tracking. A view that refreshes a table of a million connections
// several times a second cannot copy them all each time: with
// Config.Changes set, each shard lists the connections that changed since
// the view last asked, and the IDs of those that left, and EachChange
// hands over only these. The lists are bounded:
// when more changes than are worth listing pile up, a shard gives up its
// list and the view takes a whole snapshot instead.

// changes is one shard's change list. It is guarded by the shard's lock.
type changes struct {
	conns  []*conn  // changed full connections, each once (mDirty)
	halves []Key    // changed half-open connections (may repeat)
	gone   []uint64 // IDs of connections that left the table
	over   bool     // too much changed: the lists were dropped
	// freed holds connections that left the table while conns may still
	// point to them: the slab is shared by the shards, and another shard
	// given one back would write it under its own lock while this one
	// reads it under this one's. They go back once the list is emptied.
	freed []*conn
}

// maxChanges bounds the entries a table's change lists hold in all, beyond
// which a whole snapshot is cheaper.
const maxChanges = 1 << 18

// room reports whether the shard may list one more change.
func (t *Table) room(sh *shard) bool {
	ch := &sh.chg
	if ch.over {
		return false
	}
	if len(ch.conns)+len(ch.halves)+len(ch.gone) >= t.chgMax {
		ch.drop()
		sh.releaseFreed()
		ch.over = true
		return false
	}
	return true
}

// releaseFreed gives the connections held for the change list back to
// the slab, once the list no longer holds them. sh.mu is held.
func (sh *shard) releaseFreed() {
	for _, c := range sh.chg.freed {
		sh.m.release(c)
	}
	clear(sh.chg.freed)
	sh.chg.freed = sh.chg.freed[:0]
}

// drop empties the lists, clearing the listed connections' marks.
func (ch *changes) drop() {
	for _, c := range ch.conns {
		c.marks &^= mDirty
	}
	clear(ch.conns)
	ch.conns, ch.halves, ch.gone = ch.conns[:0], ch.halves[:0], ch.gone[:0]
}

// changed lists a full connection that changed; changedHalf a half-open
// one; left the ID of a full connection that left the table, taking it
// off the list, and leftHalf a half-open one's. sh.mu is held. changed
// runs for every packet, so it inlines to a test when Config.Changes is
// off; left and leftHalf read the ID only when it is on.
func (t *Table) changed(sh *shard, c *conn) {
	if t.cfg.Changes {
		t.listConn(sh, c)
	}
}

func (t *Table) changedHalf(sh *shard, k *Key) {
	if t.cfg.Changes {
		t.listHalf(sh, k)
	}
}

func (t *Table) left(sh *shard, c *conn) {
	if t.cfg.Changes {
		t.listGone(sh, c, c.ident(t.cfg.cold))
	}
}

func (t *Table) leftHalf(sh *shard, h *halfOpen) {
	if t.cfg.Changes {
		t.listGone(sh, nil, h.ident())
	}
}

func (t *Table) listConn(sh *shard, c *conn) {
	if !c.is(mDirty) && t.room(sh) {
		c.marks |= mDirty
		sh.chg.conns = append(sh.chg.conns, c)
	}
}

func (t *Table) listHalf(sh *shard, k *Key) {
	if t.room(sh) {
		sh.chg.halves = append(sh.chg.halves, *k)
	}
}

func (t *Table) listGone(sh *shard, c *conn, id uint64) {
	if c != nil {
		c.marks &^= mDirty // its entry in conns is skipped
	}
	if t.room(sh) {
		sh.chg.gone = append(sh.chg.gone, id)
	}
}

// changedConns hands over the listed full connections of shard sh, as
// EachChange does, keeping those opened after upto. sh.mu is held.
func (t *Table) changedConns(sh *shard, upto uint64, now, seen int64, r *Record, changed func(*Record)) {
	ch := &sh.chg
	keep := ch.conns[:0]
	for _, c := range ch.conns {
		switch {
		case !c.is(mDirty):
			// It left the table (or was listed again as a new one).
		case c.ident(t.cfg.cold) > upto:
			keep = append(keep, c)
		default:
			c.marks &^= mDirty
			c.expireTimers(now, seen, &t.cfg)
			c.fill(r, EndNone, &t.cfg, false)
			changed(r)
		}
	}
	clear(ch.conns[len(keep):])
	ch.conns = keep
	sh.releaseFreed() // keep holds none of them: they are not dirty
}

// TracksChanges reports whether the table keeps change lists
// (Config.Changes).
func (t *Table) TracksChanges() bool { return t.cfg.Changes }

// EachChange hands over what changed since the last EachChange or
// EachSnapshot: it calls gone with the ID of each connection that left the
// table, then changed with the record of each connection that is new or
// changed (as EachSnapshot would give it; the record is reused once
// changed returns). Connections with IDs above upto (opened after the
// caller read Opened) are kept for the next call, so that each call's new
// connections all have higher IDs than the last one's.
//
// It returns false if too much changed to be listed in some shard, or if
// Config.Changes is off: the caller must then take a whole snapshot with
// EachSnapshot, which starts the lists afresh. The callbacks run with a
// shard's lock held, as EachSnapshot's.
func (t *Table) EachChange(upto uint64, gone func(id uint64), changed func(*Record)) bool {
	if !t.cfg.Changes {
		return false
	}
	now, seen := t.now.Load(), t.seen.Load()
	noLog := t.cfg
	noLog.Transitions = 0
	var r Record
	ok := true
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		ch := &sh.chg
		if ch.over {
			ch.over, ok = false, false
		}
		if !ok {
			ch.drop()
			sh.releaseFreed()
			sh.mu.Unlock()
			continue
		}
		for _, id := range ch.gone {
			gone(id)
		}
		t.changedConns(sh, upto, now, seen, &r, changed)
		keepH := ch.halves[:0]
		for _, k := range ch.halves {
			hash := k.hash64()
			h, found := sh.half.get(&k, hash)
			switch {
			case !found:
				// It left, or became a full connection (listed as one).
			case h.ident() > upto:
				keepH = append(keepH, k)
			default:
				c := h.conn(k, &noLog, &sh.tmp)
				c.expireTimers(now, seen, &noLog)
				c.fill(&r, EndNone, &t.cfg, false)
				changed(&r)
			}
		}
		ch.halves = keepH
		ch.gone = ch.gone[:0]
		sh.mu.Unlock()
	}
	return ok
}
