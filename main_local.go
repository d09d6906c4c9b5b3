package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
	"github.com/flowtrack/flowtrack/sockets"
	"github.com/flowtrack/flowtrack/ui"
)

// localSockets names the processes behind a live capture's connections and
// compares flowtrack's states with the kernel's, for endpoints on this
// host. The kernel is read in the background (eBPF events, and the socket
// table every second), never per packet.
type localSockets struct {
	tr *sockets.Tracker

	mu       sync.Mutex // guards the following
	compared map[uint64]uint8

	agree, disagree atomic.Uint64
}

// newTracker loads what names processes for a live capture: eBPF where it
// can (this needs privileges, so before root is dropped), else the socket
// table. nil for a replay.
func newTracker(o *options) *sockets.Tracker {
	if o.iface == "" {
		return nil
	}
	return sockets.NewTracker(sockets.Config{
		NoEBPF: o.noEBPF,
		// A closed socket's owner is kept as long as its connection's
		// record may wait to be retired.
		Keep: o.table.IdleTimeout + o.table.ClosedTimeout + o.table.TimeWait,
	})
}

func startLocalSockets(ctx context.Context, tr *sockets.Tracker) *localSockets {
	if tr == nil {
		tr = sockets.NewTracker(sockets.Config{NoEBPF: true})
	}
	l := &localSockets{tr: tr, compared: make(map[uint64]uint8)}
	tr.Start(ctx)
	return l
}

// owners finds both ends of a record.
func (l *localSockets) owners(r *flows.Record) (cl, sv sockets.Owner, cok, sok bool) {
	cl, cok = l.tr.Lookup(r.Client, r.Server)
	sv, sok = l.tr.Lookup(r.Server, r.Client)
	return
}

// owner picks the end whose process a record shows: the client's if it
// is local, else the server's.
func owner(cl, sv *sockets.Owner, cok, sok bool) *sockets.Owner {
	switch {
	case cok && cl.PID != 0:
		return cl
	case sok && sv.PID != 0:
		return sv
	}
	return nil
}

// fill sets what this host knows of r's endpoints in out: the process
// behind the connection, with what is known of it, and the kernel's
// states of its sockets; and counts the kernel's verdicts on r's states.
func (l *localSockets) fill(out *local.Info, r *flows.Record) {
	out.Sockets = true
	cl, sv, cok, sok := l.owners(r)
	if o := owner(&cl, &sv, cok, sok); o != nil {
		out.PID, out.Process, out.UID = o.PID, o.Comm, o.UID
		out.TID, out.Via = o.TID, viaText(o.Via)
		if p := o.Proc; p != nil {
			out.Details = true
			out.UID, out.User, out.Container, out.Cgroup = p.UID, p.User, p.Container, p.Cgroup
			out.Exe, out.Cmdline, out.Unit = p.Exe, p.Cmdline, p.Unit
		}
	}
	out.KernelClient = local.Kernel{State: cl.KernelState, Known: cok && cl.Kernel && !cl.Gone}
	out.KernelServer = local.Kernel{State: sv.KernelState, Known: sok && sv.Kernel && !sv.Gone}
	l.count(r.ID, 1, cl.Compare(r.ClientState, r.LastSeen, cok))
	l.count(r.ID, 2, sv.Compare(r.ServerState, r.LastSeen, sok))
}

// annotator is the local.Lookup of a capture: the names its connections
// asked for (names) and, live, what this host knows of their endpoints
// (sock, nil for a replay).
func annotator(sock *localSockets, names *connNames) local.Lookup {
	return func(r *flows.Record) local.Info {
		var l local.Info
		if sock != nil {
			sock.fill(&l, r)
		}
		names.fill(&l, r)
		return l
	}
}

// viaText says how a socket's owner was learnt, for people.
func viaText(v sockets.Via) string {
	switch v {
	case sockets.ViaConnect:
		return "connect"
	case sockets.ViaAccept:
		return "accept"
	case sockets.ViaListener:
		return "listener"
	case sockets.ViaFD, sockets.ViaFormer:
		return "socket table"
	}
	return ""
}

// listeners lists this host's listening sockets for the Services view.
func (l *localSockets) listeners() []ui.Listener {
	ls := l.tr.Listeners()
	out := make([]ui.Listener, 0, len(ls))
	for _, s := range ls {
		u := ui.Listener{Addr: s.Addr, PID: s.Owner.PID, Process: s.Owner.Comm}
		if p := s.Owner.Proc; p != nil && p.Container != "" {
			u.Process += " " + p.Container
		}
		out = append(out, u)
	}
	return out
}

// status fills the header's account of how processes are named.
func (l *localSockets) status(st *ui.Status) {
	st.Processes = l.tr.Source()
	st.ProcessesShort = "processes: eBPF"
	if !l.tr.EBPF() {
		st.ProcessesShort, st.ProcessesWarn = "processes: socket table, no eBPF", true
	}
	st.LostEvents = l.tr.Stats().Lost
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

// report prints which source named processes (and, without eBPF, why and
// what to do), the events lost, how often the kernel agreed, and the
// socket table's warnings.
func (l *localSockets) report(w io.Writer) {
	fmt.Fprintln(w, "flowtrack:", l.tr.Source())
	if st := l.tr.Stats(); l.tr.EBPF() {
		fmt.Fprintf(w, "local sockets: %d eBPF events, %d lost (the ring buffer was full)\n", st.Events, st.Lost)
	}
	if a, d := l.agree.Load(), l.disagree.Load(); a+d > 0 {
		fmt.Fprintf(w, "local sockets: the kernel agreed with %d inferred states and disagreed with %d\n", a, d)
	}
	for _, warn := range l.tr.Resolver().Warnings() {
		fmt.Fprintln(w, "flowtrack:", warn)
	}
}

// hook makes cfg's OnChange also ask for an early read of the kernel's
// sockets when a connection opens (without eBPF: a connection shorter than
// the socket table's period may still find its process), and cfg's
// OnRetire tell the tracker that a record is written out, so that it
// forgets its owners.
func (l *localSockets) hook(cfg *flows.Config) {
	prevChange := cfg.OnChange
	cfg.OnChange = func(ev flows.Event) {
		if ev.Kind == flows.EventOpen {
			l.tr.Nudge()
		}
		if prevChange != nil {
			prevChange(ev)
		}
	}
	prevRetire := cfg.OnRetire
	cfg.OnRetire = func(recs []flows.Record) {
		if prevRetire != nil {
			prevRetire(recs) // writes them, looking their owners up
		}
		for i := range recs {
			l.tr.Retire(recs[i].Client, recs[i].Server)
		}
	}
}
