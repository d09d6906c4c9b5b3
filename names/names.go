// Package names resolves IP addresses to host names (reverse DNS) in the
// background, with a bounded cache and a bounded number of lookups in
// flight, for a view that must never wait for the network.
package names

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Defaults of New.
const (
	DefaultCache    = 65536
	DefaultInFlight = 8
	DefaultTimeout  = 2 * time.Second
)

// Resolver answers from its cache at once and looks unknown addresses up in
// the background. It is safe for concurrent use.
type Resolver struct {
	lookup  func(ctx context.Context, addr string) ([]string, error)
	timeout time.Duration
	sem     chan struct{}
	limit   int

	mu      sync.Mutex // guards the following
	cache   map[netip.Addr]string
	order   []netip.Addr // insertion order, for eviction
	pending map[netip.Addr]bool
	version uint64 // bumped when a name arrives
}

// New returns a resolver that keeps at most cache names (0: DefaultCache)
// and runs at most inFlight lookups at once (0: DefaultInFlight), each
// bounded by timeout (0: DefaultTimeout).
func New(cache, inFlight int, timeout time.Duration) *Resolver {
	if cache <= 0 {
		cache = DefaultCache
	}
	if inFlight <= 0 {
		inFlight = DefaultInFlight
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Resolver{
		lookup:  net.DefaultResolver.LookupAddr,
		timeout: timeout,
		sem:     make(chan struct{}, inFlight),
		limit:   cache,
		cache:   make(map[netip.Addr]string),
		pending: make(map[netip.Addr]bool),
	}
}

// Name returns the cached name of a ("" if it has none), and whether the
// answer is known. An unknown address is looked up in the background if a
// lookup slot is free; it never blocks.
func (r *Resolver) Name(a netip.Addr) (string, bool) {
	a = a.Unmap()
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.cache[a]; ok {
		return n, true
	}
	if r.pending[a] {
		return "", false
	}
	select {
	case r.sem <- struct{}{}:
	default:
		return "", false // all slots busy: ask again on a later frame
	}
	r.pending[a] = true
	go r.resolve(a)
	return "", false
}

// Version changes whenever a new name has arrived, so that a view knows
// when to redraw.
func (r *Resolver) Version() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.version
}

func (r *Resolver) resolve(a netip.Addr) {
	defer func() { <-r.sem }()
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	names, err := r.lookup(ctx, a.String())
	cancel()
	name := ""
	if err == nil && len(names) > 0 {
		name = strings.TrimSuffix(names[0], ".")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pending, a)
	if len(r.order) >= r.limit {
		old := r.order[0]
		r.order = r.order[1:]
		delete(r.cache, old)
	}
	r.cache[a] = name // "" is cached too: an address without a name
	r.order = append(r.order, a)
	r.version++
}

// Format returns "name:port" when the address has a known name, else the
// numeric ap.String().
func (r *Resolver) Format(ap netip.AddrPort) string {
	if n, ok := r.Name(ap.Addr()); ok && n != "" {
		return net.JoinHostPort(n, itoa(ap.Port()))
	}
	return ap.String()
}

func itoa(p uint16) string {
	var b [5]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + p%10)
		p /= 10
		if p == 0 {
			return string(b[i:])
		}
	}
}
