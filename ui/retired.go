package ui

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// DefaultRetiredLimit is the bound NewRetired uses for a limit of zero or
// less.
const DefaultRetiredLimit = 20000

// Retired collects the records of connections that left the flow table, so
// that the UI can keep showing them, dimmed, for a while (Config.Linger).
// Plug its Add method into flows.Config.OnRetire. It holds at most its limit
// of records, dropping the oldest first. It is safe for concurrent use.
type Retired struct {
	limit   int
	clock   atomic.Pointer[func() time.Time] // capture clock for stamps; set by Run
	dropped atomic.Uint64

	mu      sync.Mutex // guards the following
	pending []retiredRec
}

// retiredRec is a retired record and the capture time it left the table
// (zero when not known yet).
type retiredRec struct {
	rec   flows.Record
	at    int64
	shown bool // it has its row (incremental.go)
}

// NewRetired returns an empty sink that keeps at most limit records
// (DefaultRetiredLimit if limit <= 0).
func NewRetired(limit int) *Retired {
	if limit <= 0 {
		limit = DefaultRetiredLimit
	}
	return &Retired{limit: limit}
}

// Add keeps copies of recs. Its signature fits flows.Config.OnRetire.
func (r *Retired) Add(recs []flows.Record) {
	if len(recs) == 0 {
		return
	}
	var at int64
	if c := r.clock.Load(); c != nil {
		at = (*c)().UnixNano()
	}
	r.mu.Lock()
	for i := range recs {
		r.pending = append(r.pending, retiredRec{rec: recs[i], at: at})
	}
	if n := len(r.pending); n > 2*r.limit {
		// Amortised: trim only when twice over the limit.
		drop := n - r.limit
		copy(r.pending, r.pending[drop:])
		clear(r.pending[r.limit:])
		r.pending = r.pending[:r.limit]
		r.dropped.Add(uint64(drop))
	}
	r.mu.Unlock()
}

// Dropped returns how many records were dropped, unseen, because more than
// the limit arrived between two refreshes of the UI.
func (r *Retired) Dropped() uint64 { return r.dropped.Load() }

// take appends the records added since the last call to dst, at most the
// limit (the newest), and forgets them.
func (r *Retired) take(dst []retiredRec) []retiredRec {
	r.mu.Lock()
	p := r.pending
	if len(p) > r.limit {
		r.dropped.Add(uint64(len(p) - r.limit))
		p = p[len(p)-r.limit:]
	}
	dst = append(dst, p...)
	clear(r.pending)
	r.pending = r.pending[:0]
	r.mu.Unlock()
	return dst
}

// waiting returns how many records wait to be taken.
func (r *Retired) waiting() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

func (r *Retired) setClock(now func() time.Time) { r.clock.Store(&now) }
