package capture

import (
	"context"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/flowtrack/flowtrack/flows"
)

// slowSource hands out a frame, or a read timeout, every 10 ms, as a quiet
// live capture does.
type slowSource struct{ timeouts bool }

func (s *slowSource) Next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	time.Sleep(10 * time.Millisecond)
	if s.timeouts {
		return nil, gopacket.CaptureInfo{}, layers.LinkTypeEthernet, ErrTimeout
	}
	return make([]byte, 60), gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: 60, Length: 60}, layers.LinkTypeEthernet, nil
}
func (s *slowSource) Stats() (Stats, error) { return Stats{}, nil }
func (s *slowSource) Name() string          { return "slow" }
func (s *slowSource) Close()                {}

// TestRunTicks runs a slow source for half a second: RunTicking must call
// its tick every TickEvery or so, whether frames come (at most 64,
// the frames between two looks at the context: no count of frames may
// gate it) or only timeouts, and on the
// goroutine that calls apply (the count they share is not atomic: the
// race detector would see two goroutines).
func TestRunTicks(t *testing.T) {
	for _, timeouts := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		calls, ticks := 0, 0
		var c Counters
		err := RunTicking(ctx, &slowSource{timeouts: timeouts}, NewDecoder(), &c, 0,
			func(*flows.Packet) { calls++ },
			func(now time.Time) {
				if time.Since(now) > time.Second {
					t.Errorf("tick at %v, long ago", now)
				}
				calls++
				ticks++
			})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if ticks < 4 || ticks > 8 {
			t.Errorf("timeouts %v: %d ticks in 0.5 s (every %v), %d frames", timeouts, ticks, TickEvery, c.Frames.Load())
		}
		if !timeouts && (c.Frames.Load() == 0 || c.Frames.Load() > 64) {
			t.Errorf("%d frames read", c.Frames.Load())
		}
	}
}
