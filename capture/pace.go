package capture

import (
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Pacer replays a file Source in capture time: it hands out each frame only
// when the wall clock has caught up with the frame's timestamp, scaled by a
// speed. It can be paused, single-stepped and sped up while it runs, which
// is what the interactive replay does.
//
// Next waits at most a tenth of a second before returning ErrTimeout, so
// that Run keeps checking its context while a replay is paused or waiting
// out a long gap. Speed, SetSpeed, Paused, SetPaused and Step may be called
// from any goroutine; Next from one.
type Pacer struct {
	src  Source
	now  func() time.Time
	wake chan struct{}

	mu      sync.Mutex // guards the following
	speed   float64    // capture seconds per wall second; 0 is as fast as possible
	paused  bool
	steps   int       // frames to let through while paused
	anchorW time.Time // wall time at which ...
	anchorC int64     // ... capture time anchorC (ns) was due; anchorC 0: not anchored
	last    int64     // capture time of the last frame handed out

	// The frame read from src but not yet due.
	held     bool
	heldData []byte
	heldCI   gopacket.CaptureInfo
	heldLink layers.LinkType
}

// NewPacer returns a Pacer over src at the given speed (1 is real time, 0
// as fast as possible).
func NewPacer(src Source, speed float64) *Pacer {
	return &Pacer{src: src, now: time.Now, wake: make(chan struct{}, 1), speed: max(speed, 0)}
}

const pacerPoll = 100 * time.Millisecond

// Next returns the next frame once it is due.
func (p *Pacer) Next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	if !p.held {
		data, ci, link, err := p.src.Next()
		if err != nil {
			return data, ci, link, err
		}
		p.held, p.heldData, p.heldCI, p.heldLink = true, data, ci, link
	}
	deadline := time.Now().Add(pacerPoll) // real time: how long this call may block
	for {
		wait, ok := p.due(p.heldCI.Timestamp.UnixNano())
		if ok {
			p.held = false
			return p.heldData, p.heldCI, p.heldLink, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, gopacket.CaptureInfo{}, 0, ErrTimeout
		}
		t := time.NewTimer(min(wait, left))
		select {
		case <-t.C:
		case <-p.wake:
			t.Stop()
		}
	}
}

// due reports whether a frame of capture time ts may go now, or how long
// to wait for it.
func (p *Pacer) due(ts int64) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		if p.steps == 0 {
			return pacerPoll, false
		}
		p.steps--
		p.last, p.anchorC = ts, 0
		return 0, true
	}
	if p.speed == 0 {
		p.last = ts
		return 0, true
	}
	now := p.now()
	if p.anchorC == 0 || ts < p.anchorC {
		p.anchorW, p.anchorC = now, ts
	}
	at := p.anchorW.Add(time.Duration(float64(ts-p.anchorC) / p.speed))
	if wait := at.Sub(now); wait > 0 {
		return wait, false
	}
	p.last = ts
	return 0, true
}

// reanchor makes the replay go on from the last frame handed out, now;
// called with mu held whenever the speed or pause changes.
func (p *Pacer) reanchor() {
	if p.last != 0 {
		p.anchorW, p.anchorC = p.now(), p.last
	} else {
		p.anchorC = 0
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Speed returns the replay speed (0: as fast as possible).
func (p *Pacer) Speed() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.speed
}

// SetSpeed changes the replay speed from the current position on.
func (p *Pacer) SetSpeed(s float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.speed = max(s, 0)
	p.reanchor()
}

// Paused reports whether the replay is paused.
func (p *Pacer) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}

// SetPaused pauses or resumes the replay.
func (p *Pacer) SetPaused(paused bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused, p.steps = paused, 0
	p.reanchor()
}

// Step lets one more frame through while paused (pausing if it was not).
func (p *Pacer) Step() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
	p.steps++
	p.reanchor()
}

// Position returns the capture time of the last frame handed out.
func (p *Pacer) Position() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Unix(0, p.last).UTC()
}

// Stats returns the underlying source's statistics.
func (p *Pacer) Stats() (Stats, error) { return p.src.Stats() }

// Progress returns the fraction of the file read, if the underlying source
// knows it (a mapped pcap file), else 0.
func (p *Pacer) Progress() float64 {
	if s, ok := p.src.(interface{ Progress() float64 }); ok {
		return s.Progress()
	}
	return 0
}

// ReadProgress returns how far the underlying source has read, if it
// tells (a mapped file, a set of files); else a zero Progress.
func (p *Pacer) ReadProgress() Progress {
	if s, ok := p.src.(progressReporter); ok {
		return s.ReadProgress()
	}
	return Progress{}
}

// Name returns the underlying source's name.
func (p *Pacer) Name() string { return p.src.Name() }

// Close closes the underlying source.
func (p *Pacer) Close() { p.src.Close() }
