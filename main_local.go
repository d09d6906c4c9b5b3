package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
	"github.com/flowtrack/flowtrack/sockets"
)

// localSockets names the processes behind a live capture's connections and
// compares flowtrack's states with the kernel's, for endpoints on this
// host. The kernel is read in the background, never per packet.
type localSockets struct {
	res *sockets.Resolver

	mu       sync.Mutex // guards the following
	compared map[uint64]uint8

	agree, disagree atomic.Uint64
}

func startLocalSockets(ctx context.Context) *localSockets {
	l := &localSockets{res: sockets.New(), compared: make(map[uint64]uint8)}
	l.res.Start(ctx, time.Second)
	return l
}

// lookup looks a record up, and counts the kernel's verdicts on its
// states; it is the local.Lookup of the UI, export.JSON and WriteTable.
func (l *localSockets) lookup(r *flows.Record) local.Info {
	var out local.Info
	cl, cok := l.res.Lookup(r.Client, r.Server)
	sv, sok := l.res.Lookup(r.Server, r.Client)
	switch {
	case cok && cl.PID != 0:
		out.PID, out.Process = cl.PID, cl.Comm
	case sok && sv.PID != 0:
		out.PID, out.Process = sv.PID, sv.Comm
	}
	out.KernelClient = local.Kernel{State: cl.KernelState, Known: cok && !cl.Gone}
	out.KernelServer = local.Kernel{State: sv.KernelState, Known: sok && !sv.Gone}
	l.count(r.ID, 1, cl.Compare(r.ClientState, r.LastSeen, cok))
	l.count(r.ID, 2, sv.Compare(r.ServerState, r.LastSeen, sok))
	return out
}

// count counts a verdict once per connection and endpoint (bit).
func (l *localSockets) count(id uint64, bit uint8, v sockets.Verdict) {
	if v != sockets.Agree && v != sockets.Disagree {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.compared[id]&bit != 0 || len(l.compared) >= 1<<20 {
		return
	}
	l.compared[id] |= bit
	if v == sockets.Agree {
		l.agree.Add(1)
	} else {
		l.disagree.Add(1)
	}
}

// report prints how often the kernel agreed, and the resolver's warnings.
func (l *localSockets) report(w io.Writer) {
	if a, d := l.agree.Load(), l.disagree.Load(); a+d > 0 {
		fmt.Fprintf(w, "local sockets: the kernel agreed with %d inferred states and disagreed with %d\n", a, d)
	}
	for _, warn := range l.res.Warnings() {
		fmt.Fprintln(w, "flowtrack:", warn)
	}
}

// hook makes cfg's OnChange also ask the resolver for an early read of the
// kernel's sockets when a connection opens, so that a connection shorter
// than the resolver's period still finds its process (the resolver
// remembers a socket's owner after the process lets go of it).
func (l *localSockets) hook(cfg *flows.Config) {
	prev := cfg.OnChange
	cfg.OnChange = func(ev flows.Event) {
		if ev.Kind == flows.EventOpen {
			l.res.Nudge()
		}
		if prev != nil {
			prev(ev)
		}
	}
}
