package capture

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// fakeSource hands out empty frames at fixed capture times.
type fakeSource struct {
	ts []time.Time
	i  int
}

func (f *fakeSource) Next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	if f.i >= len(f.ts) {
		return nil, gopacket.CaptureInfo{}, 0, io.EOF
	}
	f.i++
	return []byte{1}, gopacket.CaptureInfo{Timestamp: f.ts[f.i-1]}, layers.LinkTypeEthernet, nil
}
func (f *fakeSource) Stats() (Stats, error) { return Stats{}, nil }
func (f *fakeSource) Name() string          { return "fake" }
func (f *fakeSource) Close()                {}

// fakeClock is a wall clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestPacerFollowsCaptureTime(t *testing.T) {
	t0 := time.Unix(1000, 0)
	src := &fakeSource{ts: []time.Time{t0, t0.Add(time.Second), t0.Add(3 * time.Second)}}
	clock := &fakeClock{t: time.Unix(5000, 0)}
	p := NewPacer(src, 2)
	p.now = clock.now
	next := func() error { _, _, _, err := p.Next(); return err }

	if err := next(); err != nil {
		t.Fatalf("first frame: %v", err)
	}
	// At speed 2 the frame 1 s later in capture time is due 0.5 s later.
	if err := next(); !errors.Is(err, ErrTimeout) {
		t.Fatalf("second frame before it is due: %v, want ErrTimeout", err)
	}
	clock.t = clock.t.Add(500 * time.Millisecond)
	if err := next(); err != nil {
		t.Fatalf("second frame when due: %v", err)
	}
	// Paused: nothing comes, however late; a step lets one frame through.
	p.SetPaused(true)
	clock.t = clock.t.Add(time.Hour)
	if err := next(); !errors.Is(err, ErrTimeout) {
		t.Fatalf("while paused: %v, want ErrTimeout", err)
	}
	p.Step()
	if err := next(); err != nil {
		t.Fatalf("after a step: %v", err)
	}
	if got := p.Position(); !got.Equal(t0.Add(3 * time.Second)) {
		t.Fatalf("position %v", got)
	}
	if err := next(); !errors.Is(err, io.EOF) {
		t.Fatalf("at the end: %v, want EOF", err)
	}
}

func TestPacerMaxSpeed(t *testing.T) {
	t0 := time.Unix(1000, 0)
	src := &fakeSource{ts: []time.Time{t0, t0.Add(time.Hour), t0.Add(2 * time.Hour)}}
	p := NewPacer(src, 0)
	for i := 0; i < 3; i++ {
		if _, _, _, err := p.Next(); err != nil {
			t.Fatalf("frame %d at speed 0: %v", i, err)
		}
	}
}
