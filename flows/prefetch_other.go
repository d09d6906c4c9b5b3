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
