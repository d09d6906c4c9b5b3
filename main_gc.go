package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"sync"
)

// gcPercent is the garbage collector's goal (GOGC), unless the user set
// one. The table's connections, indexes and cold records are outside the
// Go heap (flows' slab), so what the heap holds is buffers and the
// garbage of records, a few megabytes: the default goal of twice that
// would be memory the table needs, and a collection of so small a heap
// costs little.
const gcPercent = 50

// firstGCPercent is the goal until the first collection: 16 MiB of heap
// (the runtime's least goal is 4 MiB at 100). Every collection reads the
// 5 MB of pointers that gopacket's layers keep in globals (a decoder for
// each of 65536 EtherTypes and PPP types), and the first reads them, and
// the collector's own structures, cold: on a short replay it cost as much
// as the replay. At gcPercent the first came at 2 MiB, before the first
// packet; at this goal a replay of 1.5 M packets of 3 k connections finishes
// without one.
const firstGCPercent = 400

// gc is the goal the first collection hands over to, and whether it has.
var gc struct {
	sync.Mutex
	goal      int
	firstDone bool
}

// gcSentinel is garbage from the start, so the first collection finds it
// unreachable and runs its cleanup. It is too large, and has a pointer,
// to be batched with other small objects.
type gcSentinel struct {
	_ *byte
	_ [24]byte
}

// setGC sets the garbage collector's goal, unless the user set GOGC.
func setGC() {
	if os.Getenv("GOGC") != "" {
		return
	}
	gc.goal = gcPercent
	debug.SetGCPercent(firstGCPercent)
	runtime.AddCleanup(new(gcSentinel), func(struct{}) {
		gc.Lock()
		defer gc.Unlock()
		gc.firstDone = true
		debug.SetGCPercent(gc.goal)
	}, struct{}{})
}

// flushGCPercent is the garbage collector's goal (GOGC) while the table's
// last connections are written. The records, their problems and the
// encoders' buffers are garbage that would let the heap grow to twice
// what it holds, just when the table is at its largest (its connections
// are outside the heap and go as they are written, flows.Table.FlushEach);
// the heap is small then, so a collection costs little.
const flushGCPercent = 25

// flushGC sets the garbage collector's goal for the final flush, unless
// the user set GOGC, and returns what restores it. It also gives the
// heap's free pages back to the system: the heap's retained pages follow
// the run's larger goal, and the runtime would return them only slowly,
// while the flush's records come on top of the table at its largest.
// Before the first collection the heap is small and the table too: all
// stays as it is, so that a short replay makes no collection.
func flushGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	gc.Lock()
	defer gc.Unlock()
	old := gc.goal
	gc.goal = flushGCPercent
	if gc.firstDone {
		debug.SetGCPercent(flushGCPercent)
		debug.FreeOSMemory()
	}
	return func() {
		gc.Lock()
		defer gc.Unlock()
		gc.goal = old
		if gc.firstDone {
			debug.SetGCPercent(old)
		}
	}
}
