package capture

import (
	"context"
	"errors"
	"io"
	"math"
	"sync/atomic"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// Counters counts what Run saw. Every field is updated atomically, so
// another goroutine may read them while Run goes on. Each frame lands in
// exactly one of TCP, NonTCP, Malformed, Undecoded and FragmentsHeld.
type Counters struct {
	Frames    atomic.Uint64 // frames read from the source
	Bytes     atomic.Uint64 // their original (wire) lengths, summed
	TCP       atomic.Uint64 // frames that gave a TCP packet (for a fragmented datagram, its completing fragment)
	NonTCP    atomic.Uint64 // well-formed frames that are not TCP
	Malformed atomic.Uint64 // frames that could not be decoded
	// Undecoded counts well-formed frames whose contents flowtrack does
	// not decode; Counters.UndecodedKinds says what they were.
	Undecoded atomic.Uint64
	// FragmentsHeld counts IP fragments held for reassembly; of these,
	// FragmentsUnmatched were dropped without their datagram completing
	// (expired after 30 s of capture time, evicted from a full table, or
	// still incomplete when Run returned).
	FragmentsHeld      atomic.Uint64
	FragmentsUnmatched atomic.Uint64
	Timeouts           atomic.Uint64 // live reads that timed out with nothing to read

	kinds    encapCounts
	progress atomic.Pointer[Progress]
}

// Progress is how far the reading of a file, or of a set of files, has
// got: the file being read, and files and bytes read of the total.
type Progress struct {
	File             string
	Files, FilesDone int
	Bytes, BytesDone int64
}

// Progress returns how far Run has read its file or set of files, as of a
// few thousand frames ago; false for a source that does not tell (a live
// capture, standard input, a file read by libpcap).
func (c *Counters) Progress() (Progress, bool) {
	if p := c.progress.Load(); p != nil {
		return *p, true
	}
	return Progress{}, false
}

// progressReporter is a Source that can say how far it has read: the
// file readers, a set of files, and a Pacer or other wrapper over one.
type progressReporter interface{ ReadProgress() Progress }

// progressEvery is how many frames go by between two reports of progress.
const progressEvery = 4096

// Sink takes what Run reads: each TCP packet (Apply, which must not keep
// the pointer) and the capture time of every other frame (Advance), on one
// goroutine, in capture order. *flows.Table and *flows.Lanes are Sinks.
type Sink interface {
	Apply(p *flows.Packet)
	Advance(ts int64)
}

// PacketFunc is a Sink that hands each TCP packet to a function and
// ignores the time of other frames.
type PacketFunc func(p *flows.Packet)

// Apply calls f.
func (f PacketFunc) Apply(p *flows.Packet) { f(p) }

// Advance does nothing.
func (PacketFunc) Advance(int64) {}

// Run reads src until the end of the file, an error, ctx being done, or
// maxFrames frames (0: no limit), decoding each frame with d and handing
// each TCP packet to sink.Apply. The time of a frame that gives no packet
// (other traffic, a fragment held, a frame it cannot decode) goes to
// sink.Advance, once the capture's clock has moved a millisecond since
// the last packet or time handed over: a table's timers run on the time
// of every frame captured, not only TCP's.
//
// Run returns nil at the end of a file, after maxFrames frames, and when
// ctx is done (a requested stop is no failure: check ctx.Err() to tell);
// otherwise the source's error, after every frame before it was applied. A
// live capture stops within its read timeout of ctx being done.
//
// A file is read and decoded on a goroutine of its own, which hands the
// packets over in batches, so that reading and decoding run beside the
// table's updates on another core; sink is still called from the calling
// goroutine only, in capture order. A live source is read on the calling
// goroutine, so that no packet waits for a batch to fill; but the sockets
// of an AF_PACKET fanout group are each read and decoded on a goroutine of
// their own, and their packets merged by capture time (fanout.go).
func Run(ctx context.Context, src Source, d *Decoder, c *Counters, maxFrames uint64, sink Sink) error {
	return RunTicking(ctx, src, d, c, maxFrames, sink, nil)
}

// TickEvery is how often RunTicking calls its tick function.
const TickEvery = 100 * time.Millisecond

// RunTicking is Run that also calls tick (if not nil) on the calling
// goroutine, between two packets, every TickEvery of wall-clock time or a
// little more, with the time: also when no frame comes (a live read timed
// out, a replay is paused). A caller that applies packets in batches
// (flows.Lanes) hands their records on from there, and a live capture runs
// its timers on the wall clock.
func RunTicking(ctx context.Context, src Source, d *Decoder, c *Counters, maxFrames uint64, sink Sink, tick func(time.Time)) error {
	tk := &ticker{tick: tick}
	tk.start()
	defer tk.end()
	switch src.(type) {
	case *pcapSource, *pcapngSource, *fileSource, *setSource:
		if _, lanes := sink.(*flows.Lanes); lanes {
			// The lanes update the table on goroutines of their own
			// already: a goroutine between reading and routing would
			// move every packet from one core's cache to another's once
			// more, which on two cores cost more than it gained.
			return run(ctx, src, d, c, maxFrames, sink, tk)
		}
		return runPipelined(ctx, src, d, c, maxFrames, sink, tk)
	}
	if fan, polled := fanoutOf(src); fan != nil {
		return runFanout(ctx, fan, polled, d, c, maxFrames, sink, tk)
	}
	return run(ctx, src, d, c, maxFrames, sink, tk)
}

// ticker calls tick every TickEvery, when asked between packets: a timer
// raises a flag, which costs a packet one load to look at.
type ticker struct {
	tick func(time.Time)
	due  atomic.Bool
	end  func() // stops the timer
}

// start starts the timer, if there is a tick to call.
func (t *ticker) start() {
	t.end = func() {}
	if t.tick == nil {
		return
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tk := time.NewTicker(TickEvery)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				t.due.Store(true)
			}
		}
	}()
	t.end = func() { close(done); <-stopped }
}

// maybe calls tick if it is due.
func (t *ticker) maybe() { t.maybeBy(math.MaxInt64) }

// maybeBy calls tick if it is due, with the wall clock's time or limit
// (nanoseconds since 1970), whichever is earlier.
func (t *ticker) maybeBy(limit int64) {
	if t.due.Load() {
		t.due.Store(false)
		now := time.Now()
		if limit < now.UnixNano() {
			now = time.Unix(0, limit)
		}
		t.tick(now)
	}
}

// batchSize is how many packets the reading goroutine hands over at once.
const batchSize = 256

// batch is what the reading goroutine hands over: packets, and the times
// of frames that gave none (tick).
type batch struct {
	n    int
	tick [batchSize]bool // p only carries the time of another frame (Sink.Advance)
	p    [batchSize]flows.Packet
}

// batcher is the reading goroutine's Sink: it fills batches and hands
// them over when full.
type batcher struct {
	b          *batch
	full, free chan *batch
}

func (bt *batcher) Apply(p *flows.Packet) { bt.add(p, false) }

func (bt *batcher) Advance(ts int64) { bt.add(&flows.Packet{TS: ts}, true) }

func (bt *batcher) add(p *flows.Packet, tick bool) {
	b := bt.b
	b.p[b.n], b.tick[b.n] = *p, tick
	if b.n++; b.n == batchSize {
		bt.full <- b
		bt.b = <-bt.free
		bt.b.n = 0
	}
}

func runPipelined(ctx context.Context, src Source, d *Decoder, c *Counters, maxFrames uint64, sink Sink, tk *ticker) error {
	const inFlight = 8
	full := make(chan *batch, inFlight)
	free := make(chan *batch, inFlight+2)
	for i := 0; i < inFlight+2; i++ {
		free <- new(batch)
	}
	errc := make(chan error, 1)
	go func() {
		defer close(full)
		bt := &batcher{b: <-free, full: full, free: free}
		err := run(ctx, src, d, c, maxFrames, bt, &ticker{})
		if bt.b.n > 0 {
			full <- bt.b
		}
		errc <- err
	}()
	for b := range full {
		for i := 0; i < b.n; i++ {
			if b.tick[i] {
				sink.Advance(b.p[i].TS)
				continue
			}
			sink.Apply(&b.p[i])
		}
		b.n = 0
		free <- b
		tk.maybe()
	}
	return <-errc
}

// run is Run on the calling goroutine.
func run(ctx context.Context, src Source, d *Decoder, c *Counters, maxFrames uint64, sink Sink, tk *ticker) error {
	var l runCounts
	pr, _ := src.(progressReporter)
	defer func() {
		l.flush(c, d)
		if n := d.Flush(); n > 0 {
			c.FragmentsUnmatched.Add(n)
		}
		reportProgress(pr, c)
	}()
	done := ctx.Done()
	fr := readFrames(src)
	var p flows.Packet
	var handed int64 // the capture time last handed to sink
	for n := uint64(0); maxFrames == 0 || n < maxFrames; {
		if n%64 == 0 {
			l.flush(c, d)
			if n%progressEvery == 0 {
				reportProgress(pr, c)
			}
			select {
			case <-done:
				return nil
			default:
			}
		}
		data, ts, wire, link, err := fr.next()
		if err != nil {
			if errors.Is(err, ErrTimeout) {
				c.Timeouts.Add(1)
				l.flush(c, d)
				tk.maybe()
				select {
				case <-done:
					return nil
				default:
				}
				continue
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		n++
		l.frames++
		l.bytes += uint64(max(wire, len(data)))
		if l.count(d.decodeFrame(link, data, ts, wire, &p), d) {
			sink.Apply(&p)
			handed = p.TS
		} else if ts > handed+int64(time.Millisecond) {
			sink.Advance(ts)
			handed = ts
		}
		tk.maybe()
	}
	return nil
}

// runCounts are the counts run keeps and adds to Counters every few
// frames: an atomic add per counter per frame would cost every frame of a
// replay.
type runCounts struct {
	frames, bytes, tcp, nonTCP, held, malformed, undecoded uint64
	kinds                                                  map[Encap]uint64 // undecoded frames by kind, made at the first
}

// count counts a frame's result, and reports whether it gave a packet.
func (l *runCounts) count(r Result, d *Decoder) bool {
	switch r {
	case ResultTCP:
		l.tcp++
		return true
	case ResultNonTCP:
		l.nonTCP++
	case ResultFragmentPending:
		l.held++
	case ResultUndecoded:
		l.undecoded++
		if l.kinds == nil {
			l.kinds = make(map[Encap]uint64)
		}
		l.kinds[d.Undecoded()]++
	default:
		l.malformed++
	}
	return false
}

// flush adds the counts to c, with the fragments d dropped, and zeroes them.
func (l *runCounts) flush(c *Counters, d *Decoder) {
	c.Frames.Add(l.frames)
	c.Bytes.Add(l.bytes)
	c.TCP.Add(l.tcp)
	c.NonTCP.Add(l.nonTCP)
	c.FragmentsHeld.Add(l.held)
	c.Malformed.Add(l.malformed)
	if l.undecoded > 0 {
		c.kinds.add(l.kinds)
		clear(l.kinds)
		c.Undecoded.Add(l.undecoded)
	}
	kinds := l.kinds
	*l = runCounts{kinds: kinds}
	if d.unmatched > 0 {
		c.FragmentsUnmatched.Add(d.unmatched)
		d.unmatched = 0
	}
}

// reportProgress publishes how far pr (if not nil) has read.
func reportProgress(pr progressReporter, c *Counters) {
	if pr != nil {
		p := pr.ReadProgress()
		c.progress.Store(&p)
	}
}
