package capture

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Polled is a Source that reads, on the goroutine that reads its packets,
// the figures that other goroutines (a UI's header, a metrics scrape) show
// of it, since a Source is not safe for concurrent use: a live capture's
// kernel and interface drops once a second, and the fraction of a file read
// ten times a second if the Source has a Progress method (a file Source,
// or a Pacer over one, may). Its Drops and Progress are safe for
// concurrent use.
type Polled struct {
	Source
	live      bool
	reporter  interface{ Progress() float64 } // nil if the Source has no progress, or is live
	nextStats time.Time
	nextProg  time.Time
	kernel    atomic.Uint64
	iface     atomic.Uint64
	progress  atomic.Uint64 // math.Float64bits of the last Progress
}

// NewPolled wraps src; live says whether it is a live capture (whose
// drops are read) or a file (whose progress is, if it reports one).
func NewPolled(src Source, live bool) *Polled {
	p := &Polled{Source: src, live: live}
	if r, ok := src.(interface{ Progress() float64 }); ok && !live {
		p.reporter = r
	}
	return p
}

// Next reads the next frame, after the figures if they are due.
func (p *Polled) Next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	if p.live || p.reporter != nil {
		p.poll(time.Now())
	}
	return p.Source.Next()
}

func (p *Polled) poll(now time.Time) {
	if p.live && now.After(p.nextStats) {
		p.nextStats = now.Add(time.Second)
		if st, err := p.Source.Stats(); err == nil {
			p.kernel.Store(st.PacketsDropped)
			p.iface.Store(st.IfDropped)
		}
	}
	if p.reporter != nil && now.After(p.nextProg) {
		p.nextProg = now.Add(100 * time.Millisecond)
		if f := p.reporter.Progress(); f > 0 && f <= 1 {
			p.progress.Store(math.Float64bits(f))
		}
	}
}

// ReadProgress passes on the source's progress, for Run.
func (p *Polled) ReadProgress() Progress {
	if r, ok := p.Source.(progressReporter); ok {
		return r.ReadProgress()
	}
	return Progress{}
}

// Drops returns the packets the kernel and the interface dropped, as last
// read (zeros for a file).
func (p *Polled) Drops() (kernel, iface uint64) { return p.kernel.Load(), p.iface.Load() }

// Progress returns the fraction of the file read, as last read: in (0, 1],
// or 0 if unknown or live.
func (p *Polled) Progress() float64 { return math.Float64frombits(p.progress.Load()) }
