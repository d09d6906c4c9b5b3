package capture

import (
	"context"
	"errors"
	"io"
	"sync/atomic"

	"github.com/flowtrack/flowtrack/flows"
)

// Counters counts what Run saw. Every field is updated atomically, so
// another goroutine may read them while Run goes on. Each frame lands in
// exactly one of TCP, NonTCP, Malformed and FragmentsHeld.
type Counters struct {
	Frames    atomic.Uint64 // frames read from the source
	Bytes     atomic.Uint64 // their original (wire) lengths, summed
	TCP       atomic.Uint64 // frames that gave a TCP packet (for a fragmented datagram, its completing fragment)
	NonTCP    atomic.Uint64 // well-formed frames that are not TCP
	Malformed atomic.Uint64 // frames that could not be decoded
	// FragmentsHeld counts IP fragments held for reassembly; of these,
	// FragmentsUnmatched were dropped without their datagram completing
	// (expired after 30 s of capture time, evicted from a full table, or
	// still incomplete when Run returned).
	FragmentsHeld      atomic.Uint64
	FragmentsUnmatched atomic.Uint64
	Timeouts           atomic.Uint64 // live reads that timed out with nothing to read
}

// Run reads src until the end of the file, an error, ctx being done, or
// maxFrames frames (0: no limit), decoding each frame with d and calling
// apply for each TCP packet. apply must not keep the pointer it is given.
//
// Run returns nil at the end of a file, after maxFrames frames, and when
// ctx is done (a requested stop is no failure: check ctx.Err() to tell);
// otherwise the source's error, after every frame before it was applied. A
// live capture stops within its read timeout of ctx being done.
func Run(ctx context.Context, src Source, d *Decoder, c *Counters, maxFrames uint64, apply func(*flows.Packet)) error {
	defer func() {
		if n := d.Flush(); n > 0 {
			c.FragmentsUnmatched.Add(n)
		}
	}()
	done := ctx.Done()
	var p flows.Packet
	for n := uint64(0); maxFrames == 0 || n < maxFrames; {
		select {
		case <-done:
			return nil
		default:
		}
		data, ci, link, err := src.Next()
		if err != nil {
			if errors.Is(err, ErrTimeout) {
				c.Timeouts.Add(1)
				continue
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		n++
		c.Frames.Add(1)
		c.Bytes.Add(uint64(max(ci.Length, len(data))))
		switch d.Decode(link, data, ci, &p) {
		case ResultTCP:
			c.TCP.Add(1)
			apply(&p)
		case ResultNonTCP:
			c.NonTCP.Add(1)
		case ResultFragmentPending:
			c.FragmentsHeld.Add(1)
		default:
			c.Malformed.Add(1)
		}
		if d.unmatched > 0 {
			c.FragmentsUnmatched.Add(d.unmatched)
			d.unmatched = 0
		}
	}
	return nil
}
