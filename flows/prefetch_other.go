//go:build !amd64

package flows

import "unsafe"

// prefetch reads the first and the last byte of the n bytes at p and
// returns their sum: without a prefetch instruction, the load ahead is
// real loads, whose misses wait side by side.
func prefetch(p unsafe.Pointer, n uintptr) uint64 {
	v := uint64(*(*uint8)(p))
	if n > 1 {
		v += uint64(*(*uint8)(unsafe.Add(p, n-1)))
	}
	return v
}

// prefetchConn reads a word from each of c's cache lines (touchAhead),
// for a lane's load ahead (Lanes.applyBatch): fields that timers do not
// write, since the lane loads without the shard's lock.
func prefetchConn(c *conn) uint64 { return c.touchAhead() }

// touchAhead reads a word from each cache line of the conn, for a lane's
// load ahead (Lanes.applyBatch), which runs without the shard's lock
// beside a view that may be running the conn's timers under it: it reads
// no field that timers write (TestTouchConnBesideTimers). A conn in a
// slab starts at any multiple of 8 bytes into a line, and TestConnTouch
// checks that the words fall on every line whichever.
func (c *conn) touchAhead() uint64 {
	return uint64(c.key.addr[0]) + uint64(c.last) + uint64(c.zeek.bits) + uint64(c.ep[0].isn) +
		uint64(c.ep[0].bytes) + uint64(c.ep[1].pkts) + uint64(c.ev.bits) + uint64(c.synOrRTT)
}
