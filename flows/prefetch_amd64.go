package flows

import "unsafe"

// prefetch asks the processor to bring the cache lines of the n bytes at p
// (at least the line of p) into its caches, and returns 0. A prefetch
// instruction waits on nothing and holds up nothing, where a load ahead
// whose value nobody uses still takes a place in the processor's window of
// instructions until its miss is served: a lane's load ahead of 16 packets'
// slots and connections filled that window and waited there. A prefetch of
// an address that is not mapped does nothing. Go has no prefetch of its
// own outside the runtime.
//
//go:noescape
func prefetch(p unsafe.Pointer, n uintptr) uint64

// prefetchConn brings c's cache lines into the caches, for a lane's load
// ahead (Lanes.applyBatch); it reads nothing of c.
func prefetchConn(c *conn) uint64 { return prefetch(unsafe.Pointer(c), unsafe.Sizeof(*c)) }
