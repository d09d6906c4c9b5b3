package main

import (
	"fmt"
	"io"

	"github.com/flowtrack/flowtrack/capture"
	"github.com/flowtrack/flowtrack/capture/peek"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// connNames names one capture's connections by what their applications
// asked for (package capture/peek): the capture's decoder feeds it the
// first client payloads and the DNS responses; the outputs look the
// names up when they write a connection.
type connNames struct {
	peek *peek.Peeker
}

func newConnNames() *connNames { return &connNames{peek: peek.New(peek.Config{})} }

// decoder returns a capture decoder that feeds the names.
func (n *connNames) decoder() *capture.Decoder {
	d := capture.NewDecoder()
	d.SetPeeker(n.peek)
	return d
}

// release gives back what the names needed only while packets came
// (peek.Peeker.Release): the final flush's records come on top of the
// table at its largest.
func (n *connNames) release() { n.peek.Release() }

// fill sets l's name fields for r.
func (n *connNames) fill(l *local.Info, r *flows.Record) {
	nm := n.peek.Store().Lookup(r)
	l.ServerName, l.NameSource = nm.Server, nm.Source.String()
	l.ALPN, l.ECH, l.DNSChain = nm.ALPN, nm.ECH, nm.Chain
}

// report prints one line on what the names came from, and what their
// bounds dropped, if anything was seen.
func (n *connNames) report(w io.Writer) {
	st := &n.peek.Stats
	sni, host, dns := st.SNI.Load(), st.Host.Load(), st.DNSResponses.Load()
	if sni+host+dns+st.Malformed.Load() == 0 {
		return
	}
	fmt.Fprintf(w, "names: %d connections by TLS server name, %d by HTTP Host; %d DNS responses (%d addresses)", sni, host, dns, st.DNSAnswers.Load())
	if e := st.ECH.Load(); e > 0 {
		fmt.Fprintf(w, "; %d hellos offered ECH", e)
	}
	if m := st.Malformed.Load(); m > 0 {
		fmt.Fprintf(w, "; %d unreadable", m)
	}
	_, stored, _ := n.evictions()
	if ev, _, _ := n.evictions(); ev > 0 || stored > 0 {
		fmt.Fprintf(w, "; dropped by the bounds: %d waiting connections, %d names", ev, stored)
	}
	if _, _, addrs := n.evictions(); addrs > 0 {
		fmt.Fprintf(w, ", %d DNS addresses", addrs)
	}
	fmt.Fprintln(w)
}

// evictions returns what the bounds dropped: connections waiting for
// their first payload, connections' names, and addresses of the DNS cache.
func (n *connNames) evictions() (pending, names, addrs uint64) {
	_, names = n.peek.Store().Len()
	_, addrs, _ = n.peek.DNSCache()
	return n.peek.Stats.Evicted.Load(), names, addrs
}
