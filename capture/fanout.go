package capture

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/flowtrack/flowtrack/flows"
)

// Reading a fanout group. Each socket is read and decoded on a goroutine
// of its own, with a decoder of its own (its fragments, its share of the
// first payloads that name connections), and hands its packets over in
// batches. The goroutine that called Run merges them by capture time and
// applies them: the table sees one sequence of packets, in which each
// socket's come in the order the kernel gave them.
//
// The merge waits for a socket that has nothing to hand over until it
// says how far it has read: a reader whose poll timed out has seen every
// frame the kernel captured up to a block's timeout ago (a TPACKET_V3
// block is handed over at most afBlockTimeout after its first frame).
// Packets of a connection split over two sockets (see afpacket.go) thus
// come in order too, at the cost of a few milliseconds when a socket is
// idle.

// fanBatch is packets that one reader decoded, in its socket's order.
// horizon is the capture time up to which the reader has handed over
// every frame it will: the newest it read, or (on a timeout) a block's
// timeout before the wall clock. done says the reader has stopped. As in
// a file's batches, tick marks an entry that only carries the time of a
// frame that gave no packet (Sink.Advance).
type fanBatch struct {
	from    int
	n       int
	horizon int64
	done    bool
	tick    [batchSize]bool
	p       [batchSize]flows.Packet
}

// afHorizonLag is how far behind the time a read began a reader whose
// read timed out says it has read: a block's timeout, and room for the
// kernel's block timer to fire late on a busy machine.
const afHorizonLag = 10 * afBlockTimeout

// fanBatches is how many batches each reader may have in flight: enough
// for a socket whose packets wait while an idle one is heard from.
const fanBatches = 32

// fanReader is the goroutine of one socket.
type fanReader struct {
	i    int
	s    *afpacketSource
	sk   *afSocket
	d    *Decoder
	c    *Counters
	free chan *fanBatch
	out  chan<- *fanBatch
	l    runCounts
	// handed is the capture time last put in a batch.
	handed int64
}

// fanout is one Run over a fanout group.
type fanout struct {
	s         *afpacketSource
	c         *Counters
	maxFrames uint64
	frames    atomic.Uint64 // frames read by all readers (only with maxFrames)
	stop      atomic.Bool
	readers   []*fanReader
	feeds     []fanFeed
	// read is, per reader, the capture time up to which it has decoded
	// every frame it will: the newest it decoded, or its horizon.
	read    []atomic.Int64
	err     error
	errOnce sync.Once
}

// fanFeed is what the merge holds of one reader.
type fanFeed struct {
	q       []*fanBatch
	at      int // next packet of q[0]
	horizon int64
	done    bool
}

// fanoutOf returns the AF_PACKET source of several sockets that src is
// (or that a Polled wraps), and the Polled.
func fanoutOf(src Source) (*afpacketSource, *Polled) {
	p, _ := src.(*Polled)
	if p != nil {
		src = p.Source
	}
	if s, ok := src.(*afpacketSource); ok && len(s.socks) > 1 {
		return s, p
	}
	return nil, nil
}

// runFanout is Run over a fanout group.
func runFanout(ctx context.Context, s *afpacketSource, polled *Polled, d *Decoder, c *Counters, maxFrames uint64, sink Sink, tk *ticker) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.socks)
	out := make(chan *fanBatch, n*fanBatches)
	f := &fanout{s: s, c: c, maxFrames: maxFrames, feeds: make([]fanFeed, n), read: make([]atomic.Int64, n)}
	var wg sync.WaitGroup
	for i, sk := range s.socks {
		r := &fanReader{i: i, s: s, sk: sk, d: d.fork(), c: c, free: make(chan *fanBatch, fanBatches), out: out}
		if r.d.peek != nil {
			r.d.peek.SetSettled(func(ts int64) bool { return f.readPast(i, ts) })
		}
		for range fanBatches {
			r.free <- new(fanBatch)
		}
		f.readers = append(f.readers, r)
		wg.Go(func() { r.run(f) })
	}
	done := ctx.Done()
	for left := n; left > 0; {
		var b *fanBatch
		select {
		case b = <-out:
		case <-done:
			f.stop.Store(true)
			done = nil
			continue
		}
		if b.done {
			left--
		}
		f.take(b)
		f.merge(sink, polled, tk)
		f.maybeTick(tk)
	}
	wg.Wait()
	for _, r := range f.readers {
		r.l.flush(c, r.d)
		if k := r.d.Flush(); k > 0 {
			c.FragmentsUnmatched.Add(k)
		}
	}
	return f.err
}

// take adds a reader's batch to its feed.
func (f *fanout) take(b *fanBatch) {
	fd := &f.feeds[b.from]
	fd.horizon = max(fd.horizon, b.horizon)
	fd.done = fd.done || b.done
	if b.n > 0 {
		fd.q = append(fd.q, b)
	} else {
		f.readers[b.from].free <- b
	}
}

// merge applies the packets held, oldest first, as far as every reader
// has said it has read.
func (f *fanout) merge(sink Sink, polled *Polled, tk *ticker) {
	for {
		k, ts := -1, int64(math.MaxInt64)
		for i := range f.feeds {
			if fd := &f.feeds[i]; len(fd.q) > 0 {
				if t := fd.q[0].p[fd.at].TS; t < ts {
					k, ts = i, t
				}
			}
		}
		if k < 0 || !f.settled(k, ts) {
			return
		}
		fd := &f.feeds[k]
		b := fd.q[0]
		if b.tick[fd.at] {
			sink.Advance(b.p[fd.at].TS)
		} else {
			sink.Apply(&b.p[fd.at])
		}
		if fd.at++; fd.at == b.n {
			fd.at, fd.q[0] = 0, nil
			fd.q = fd.q[1:]
			b.n = 0
			f.readers[k].free <- b
			if polled != nil {
				polled.poll(time.Now())
			}
		}
		f.maybeTick(tk)
	}
}

// maybeTick calls the tick if it is due, no later than settledUpTo.
func (f *fanout) maybeTick(tk *ticker) {
	if tk.due.Load() {
		tk.maybeBy(f.settledUpTo())
	}
}

// settledUpTo returns the capture time before which every frame of every
// reader has been applied: the oldest packet held, or the horizon of a
// reader that holds none. A live capture's clock moves to the wall clock
// between packets (RunTicking), and its timers run out on it; here it may
// not pass that time, or a timer would run out on packets the merge still
// holds, which libpcap's capture would have applied first (a FIN taken
// for unanswered, a handshake for slow).
func (f *fanout) settledUpTo() int64 {
	t := int64(math.MaxInt64)
	for i := range f.feeds {
		switch fd := &f.feeds[i]; {
		case len(fd.q) > 0:
			t = min(t, fd.q[0].p[fd.at].TS)
		case !fd.done:
			t = min(t, fd.horizon)
		}
	}
	return t
}

// settled reports whether a packet of reader k at capture time ts may be
// applied: every other reader has handed over what it holds up to ts, or
// has stopped.
func (f *fanout) settled(k int, ts int64) bool {
	for i := range f.feeds {
		if fd := &f.feeds[i]; i != k && len(fd.q) == 0 && !fd.done && fd.horizon < ts {
			return false
		}
	}
	return true
}

// readPast reports whether every reader but reader i has decoded every
// frame it will before capture time ts: a DNS answer sent before a SYN
// that reader i read has then been read, whichever socket it came through.
func (f *fanout) readPast(i int, ts int64) bool {
	for j := range f.read {
		if j != i && f.read[j].Load() < ts {
			return false
		}
	}
	return true
}

// hasRead records that reader i has decoded every frame before ts.
func (f *fanout) hasRead(i int, ts int64) {
	if ts > f.read[i].Load() {
		f.read[i].Store(ts)
	}
}

// fail keeps the first error of a reader, and stops the others.
func (f *fanout) fail(err error) {
	f.errOnce.Do(func() { f.err = err })
	f.stop.Store(true)
}

// run reads the reader's socket until the fanout stops, the source is
// closed, an error, or maxFrames frames in all.
func (r *fanReader) run(f *fanout) {
	b := <-r.free
	defer func() {
		f.hasRead(r.i, math.MaxInt64)
		b.from, b.done = r.i, true
		r.out <- b
	}()
	var first int64 // capture time of the batch's first packet
	// asOf is a time before the read in progress began. A read that timed
	// out saw no block handed over since then, so every frame captured
	// before asOf less a block's timeout (and the kernel timer's delay) was
	// in a block handed over already. Taken after the read instead, a
	// goroutine descheduled on a loaded machine claimed frames still in a
	// block, and the merge put them after newer ones.
	asOf := time.Now()
	for n := 0; !f.stop.Load() && !r.s.closing.Load(); n++ {
		if n%64 == 0 {
			r.l.flush(r.c, r.d)
			asOf = time.Now()
		}
		data, ci, link, err := r.s.read(r.sk)
		switch {
		case errors.Is(err, ErrTimeout):
			r.c.Timeouts.Add(1)
			horizon := asOf.Add(-afHorizonLag).UnixNano()
			f.hasRead(r.i, horizon)
			if r.d.peek != nil {
				r.d.peek.Retry()
			}
			b = r.send(b, horizon)
			asOf = time.Now()
			continue
		case err != nil:
			f.fail(err)
			return
		}
		last, over := f.counted()
		if over {
			f.stop.Store(true)
			return
		}
		if r.add(b, link, data, ci) && b.n == 1 {
			first = b.p[0].TS
		}
		f.hasRead(r.i, ci.Timestamp.UnixNano())
		if last {
			f.stop.Store(true)
			return
		}
		if ts := b.p[max(b.n-1, 0)].TS; b.n == batchSize || b.n > 0 && ts-first >= int64(time.Millisecond) {
			b = r.send(b, ts)
		}
	}
}

// counted counts a frame read against maxFrames (if any): whether it is
// the last to read, or one too many. The reader that reads the last hands
// it over and stops the others, so that a capture of maxFrames ends once
// they are read, not at the frame after them.
func (f *fanout) counted() (last, over bool) {
	if f.maxFrames == 0 {
		return false, false
	}
	k := f.frames.Add(1)
	return k == f.maxFrames, k > f.maxFrames
}

// add decodes a frame into the next entry of b, and reports whether it
// did: a frame without TCP only carries its time, at most once a
// millisecond, as in run.
func (r *fanReader) add(b *fanBatch, link layers.LinkType, data []byte, ci gopacket.CaptureInfo) bool {
	r.l.frames++
	r.l.bytes += uint64(max(ci.Length, len(data)))
	p := &b.p[b.n]
	b.tick[b.n] = false
	if !r.l.count(r.d.Decode(link, data, ci, p), r.d) {
		ts := ci.Timestamp.UnixNano()
		if ts <= r.handed+int64(time.Millisecond) {
			return false
		}
		*p, b.tick[b.n] = flows.Packet{TS: ts}, true
	}
	r.handed = p.TS
	b.n++
	return true
}

// send hands a batch over with its horizon, and returns an empty one.
func (r *fanReader) send(b *fanBatch, horizon int64) *fanBatch {
	b.from = r.i
	b.horizon = horizon
	r.out <- b
	return <-r.free
}
