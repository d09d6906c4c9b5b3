package main

import (
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// gcPercentNow returns the collector's goal.
func gcPercentNow() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestGCGoals follows the goal through a run: firstGCPercent until the
// first collection, gcPercent after it, flushGCPercent while flushing,
// and no change at the flush of a run that made no collection.
func TestGCGoals(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(gcPercentNow())
	setGC()
	if p := gcPercentNow(); p != firstGCPercent {
		t.Fatalf("goal after setGC = %d, want %d", p, firstGCPercent)
	}
	restore := flushGC()
	if p := gcPercentNow(); p != firstGCPercent {
		t.Errorf("goal at a flush before any collection = %d, want %d kept", p, firstGCPercent)
	}
	restore()
	runtime.GC()
	deadline := time.Now().Add(5 * time.Second)
	for gcPercentNow() != gcPercent && time.Now().Before(deadline) {
		runtime.GC() // the cleanup runs on its own goroutine, after a collection
		time.Sleep(time.Millisecond)
	}
	if p := gcPercentNow(); p != gcPercent {
		t.Fatalf("goal after the first collection = %d, want %d", p, gcPercent)
	}
	restore = flushGC()
	if p := gcPercentNow(); p != flushGCPercent {
		t.Errorf("goal while flushing = %d, want %d", p, flushGCPercent)
	}
	restore()
	if p := gcPercentNow(); p != gcPercent {
		t.Errorf("goal after the flush = %d, want %d", p, gcPercent)
	}
}

// TestShortReplayMakesNoCollection replays the largest bundled capture
// (a few thousand packets) and reads the runtime's trace: a collection
// there would read gopacket's 5 MB of globals cold, as long as the
// replay.
func TestShortReplayMakesNoCollection(t *testing.T) {
	bin := buildFlowtrack(t)
	cmd := exec.Command(bin, "-r", "pcaps/zerowin-ooo-http.pcap", "-o", "json")
	cmd.Env = append(cmd.Environ(), "GODEBUG=gctrace=1", "GOGC=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("flowtrack: %v\n%s", err, out)
	}
	for l := range strings.Lines(string(out)) {
		if strings.HasPrefix(l, "gc ") {
			t.Errorf("a collection: %s", l)
		}
	}
}
