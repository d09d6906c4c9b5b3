package ui

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/flowtrack/flowtrack/flows"
)

// service aggregates the connections of one server endpoint (address and
// port): one service, with one socket per connection.
type service struct {
	ep     endpoint
	name   uint32 // grouped by name: the name, an index in the frame's procs (ep is zero)
	proc   string // the process listening, "" if unknown (Config.Listeners)
	conns  int
	groups [4]int // connections by connGroup
	probs  int    // connections with a problem
	pkts   uint64
	bytes  [2]uint64
	rate   [2]float64
}

// svcCol names a column of the services table.
type svcCol uint8

const (
	scServer svcCol = iota
	scConns
	scConnecting
	scEstablished
	scClosing
	scClosed
	scProblems
	scPkts
	scBytes
	scRate
	numSvcCols
)

var svcColumns = [numSvcCols]column{
	scServer:      {name: "Server", help: "the service: server address and port"},
	scConns:       {name: "Conns", width: 5, right: true, desc: true, help: "connections to it (sockets on the server side)"},
	scConnecting:  {name: "Connecting", width: 10, right: true, desc: true, help: "connections whose handshake is under way"},
	scEstablished: {name: "Established", width: 11, right: true, desc: true, help: "connections ESTABLISHED at both ends"},
	scClosing:     {name: "Closing", width: 7, right: true, keep: 2, desc: true, help: "connections being closed (one end not yet CLOSED)"},
	scClosed:      {name: "Closed", width: 6, right: true, keep: 3, desc: true, help: "connections CLOSED at both ends (reset, refused...)"},
	scProblems:    {name: "Problems", width: 8, right: true, keep: 2, desc: true, help: "connections with a problem (the Problems view says which)"},
	scPkts:        {name: "Pkts", width: 5, right: true, keep: 5, desc: true, help: "packets, both directions"},
	scBytes:       {name: "Bytes ↑/↓", width: 11, right: true, keep: 1, desc: true, help: "bytes to / from the service"},
	scRate:        {name: "Rate ↑/↓", width: 11, right: true, keep: 4, desc: true, help: "bytes per second to / from the service"},
}

// connGroup classifies a connection by both its endpoints' states, as the
// services' columns count them: 0 connecting (a handshake under way), 1
// established (both ends), 2 closing (the rest: one end closing or already
// closed), 3 closed (both ends).
func connGroup(r *row) int {
	c, s := r.cst.Group(), r.sst.Group()
	switch {
	case c == flows.GroupConnecting || s == flows.GroupConnecting:
		return 0
	case c == flows.GroupEstablished && s == flows.GroupEstablished:
		return 1
	case c == flows.GroupClosed && s == flows.GroupClosed:
		return 3
	default:
		return 2
	}
}

func (s *service) key() svcKey { return svcKey{s.ep, s.name} }

// aggregate groups rows (the indices in idx) by server endpoint, or by
// name with byName.
func aggregate(rows []row, idx []int32, hint int, byName bool) []service {
	m := make(map[svcKey]int32, hint)
	var svcs []service
	for _, i := range idx {
		r := &rows[i]
		k := keyOf(r, byName)
		j, ok := m[k]
		if !ok {
			j = int32(len(svcs))
			m[k] = j
			svcs = append(svcs, service{ep: k.ep, name: k.name})
		}
		s := &svcs[j]
		s.conns++
		s.groups[connGroup(r)]++
		if r.probs != 0 {
			s.probs++
		}
		s.pkts += r.pkts
		s.bytes[0] += r.bytes[0]
		s.bytes[1] += r.bytes[1]
		s.rate[0] += float64(r.rate[0])
		s.rate[1] += float64(r.rate[1])
	}
	return svcs
}

// sortServices sorts by column c, ties by name and endpoint.
func sortServices(svcs []service, c svcCol, desc bool, procs *procNames) {
	slices.SortStableFunc(svcs, func(a, b service) int {
		r := cmpService(&a, &b, c, procs)
		if desc {
			r = -r
		}
		if r != 0 {
			return r
		}
		return cmpService(&a, &b, scServer, procs)
	})
}

func cmpService(a, b *service, c svcCol, procs *procNames) int {
	switch c {
	case scServer:
		switch {
		case a.name != 0 && b.name != 0:
			return strings.Compare(procs.lower[a.name], procs.lower[b.name])
		case a.name != 0:
			return -1 // names first
		case b.name != 0:
			return 1
		}
		return cmpEndpoint(a.ep, b.ep)
	case scConns:
		return cmp.Compare(a.conns, b.conns)
	case scConnecting, scEstablished, scClosing, scClosed:
		g := int(c - scConnecting)
		return cmp.Compare(a.groups[g], b.groups[g])
	case scProblems:
		return cmp.Compare(a.probs, b.probs)
	case scPkts:
		return cmp.Compare(a.pkts, b.pkts)
	case scBytes:
		return cmp.Compare(a.bytes[0]+a.bytes[1], b.bytes[0]+b.bytes[1])
	case scRate:
		return cmp.Compare(a.rate[0]+a.rate[1], b.rate[0]+b.rate[1])
	}
	return 0
}

func cmpEndpoint(a, b endpoint) int {
	if a.v6 != b.v6 {
		if !a.v6 {
			return -1
		}
		return 1
	}
	if c := slices.Compare(a.addr[:], b.addr[:]); c != 0 {
		return c
	}
	if c := cmp.Compare(a.port, b.port); c != 0 {
		return c
	}
	return cmp.Compare(uint32(a.vlan.Outer)<<16|uint32(a.vlan.Inner), uint32(b.vlan.Outer)<<16|uint32(b.vlan.Inner))
}

// text returns the text of column c for service s.
func (s *service) text(c svcCol) string {
	switch c {
	case scServer:
		if s.proc != "" {
			return s.ep.String() + "  " + s.proc
		}
		return s.ep.String()
	case scConns:
		return fmtCount(uint64(s.conns))
	case scConnecting, scEstablished, scClosing, scClosed:
		return fmtCount(uint64(s.groups[c-scConnecting]))
	case scProblems:
		return fmtCount(uint64(s.probs))
	case scPkts:
		return fmtCount(s.pkts)
	case scBytes:
		return fmtPair(fmtCount(s.bytes[0]), fmtCount(s.bytes[1]))
	case scRate:
		return fmtPair(fmtRate(s.rate[0]), fmtRate(s.rate[1]))
	}
	return ""
}

// svcState is the builder's copy of the services it last aggregated, so
// that an incremental frame (incremental.go) can update them from the rows
// that changed instead of aggregating every row again.
type svcState struct {
	list    []service      // in no order
	idx     map[svcKey]int // index in list
	rowsSeq uint64         // the rows they aggregate (frame.rowsSeq)
	req     request        // the settings that chose the rows (filter, hideClosed, names)
}

// set makes svcs, aggregated from the rows of frame rowsSeq, the state.
func (s *svcState) set(svcs []service, rowsSeq uint64, req *request) {
	s.list = append(s.list[:0], svcs...)
	s.idx = make(map[svcKey]int, len(svcs))
	for i := range s.list {
		s.idx[s.list[i].key()] = i
	}
	s.rowsSeq, s.req = rowsSeq, *req
}

// follows reports whether the state aggregates prev's rows as req chooses
// them.
func (s *svcState) follows(prev *frame, req *request) bool {
	return s.idx != nil && s.rowsSeq == prev.rowsSeq &&
		s.req.filter == req.filter && s.req.hideClosed == req.hideClosed && s.req.names == req.names &&
		s.req.problems == req.problems &&
		s.req.svcByName == req.svcByName
}

// update brings the state from prev's rows to f's: changed are the rows
// (by index in f, ascending) that changed in either frame, inserted the
// indices of rows new in the middle (when moved). A row's old version
// leaves its service, its new one joins; then the rates, which only
// changed rows have, are summed again in row order, as aggregate sums
// them, so that they come out the same to the bit.
func (s *svcState) update(f, prev *frame, changed []uint32, inserted []int32, moved bool, req *request, flt *filter) {
	rows, old := f.rows, prev.rows
	add := func(r *row, sign int) {
		k := keyOf(r, req.svcByName)
		j, ok := s.idx[k]
		if !ok {
			j = len(s.list)
			s.idx[k] = j
			s.list = append(s.list, service{ep: k.ep, name: k.name})
		}
		v := &s.list[j]
		v.conns += sign
		v.groups[connGroup(r)] += sign
		if r.probs != 0 {
			v.probs += sign
		}
		if sign > 0 {
			v.pkts += r.pkts
			v.bytes[0] += r.bytes[0]
			v.bytes[1] += r.bytes[1]
		} else {
			v.pkts -= r.pkts
			v.bytes[0] -= r.bytes[0]
			v.bytes[1] -= r.bytes[1]
		}
	}
	for _, i := range changed {
		o := int(i)
		if moved {
			// Its index before the insertions, unless it is one of them.
			k, found := slices.BinarySearch(inserted, int32(i))
			if found {
				o = -1
			} else {
				o -= k
			}
		}
		if o >= 0 && o < len(old) && req.lists(&old[o], flt) {
			add(&old[o], -1)
		}
		if req.lists(&rows[i], flt) {
			add(&rows[i], +1)
		}
	}
	// A service without connections is gone, as aggregate would not list
	// it.
	keep := s.list[:0]
	for _, v := range s.list {
		if v.conns > 0 {
			keep = append(keep, v)
		}
	}
	if len(keep) != len(s.list) {
		clear(s.list[len(keep):])
		s.list = keep
		clear(s.idx)
		for i := range s.list {
			s.idx[s.list[i].key()] = i
		}
	}
	for i := range s.list {
		s.list[i].rate = [2]float64{}
	}
	for _, i := range changed {
		r := &rows[i]
		if r.rate != [2]float32{} && req.lists(r, flt) {
			v := &s.list[s.idx[keyOf(r, req.svcByName)]]
			v.rate[0] += float64(r.rate[0])
			v.rate[1] += float64(r.rate[1])
		}
	}
	s.rowsSeq = f.rowsSeq
}

// publish gives f a sorted copy of the services, with the listeners
// (when the filter is empty: a listener has no connection to match it
// against), and the width of their names.
func (s *svcState) publish(f *frame, req *request, listeners []Listener) {
	f.svcs = slices.Clone(s.list)
	if req.filter == "" {
		f.svcs = addListeners(f.svcs, listeners)
	}
	sortServices(f.svcs, req.svcSort, req.svcDesc, &f.procs)
	f.svcW = 0
	for i := range f.svcs {
		if n := f.svcs[i].name; n != 0 {
			f.svcW = max(f.svcW, strlen(f.procs.names[n]))
			continue
		}
		ep := &f.svcs[i].ep
		w := apWidth(&ep.addr, ep.port, ep.v6)
		if p := f.svcs[i].proc; p != "" {
			w += 2 + strlen(p)
		}
		if ep.vlan.N > 0 {
			w += len(" vlan ") + len(ep.vlan.String())
		}
		f.svcW = max(f.svcW, w)
	}
}

// svcKey is what the Services view groups connections by: the server
// endpoint, or, grouping by name, the name the clients asked for (an
// index in the frame's procs; connections without a name are grouped by
// endpoint).
type svcKey struct {
	ep   endpoint
	name uint32
}

// keyOf is the service of r.
func keyOf(r *row, byName bool) svcKey {
	if byName && r.name != 0 {
		return svcKey{name: r.name}
	}
	return svcKey{ep: r.serverEndpoint()}
}

// scope is the service the connection list is limited to: an endpoint,
// or a name (kept as text: the index of a name changes when the builder
// starts a new table of names).
type scope struct {
	ep   endpoint
	name string
}

// has reports whether r belongs to the scope; every row does to a nil
// one.
func (s *scope) has(r *row, procs *procNames) bool {
	switch {
	case s == nil:
		return true
	case s.name != "":
		return r.name != 0 && procs.names[r.name] == s.name
	}
	return r.serverEndpoint() == s.ep
}

// String names the scope for the header.
func (s *scope) String() string {
	if s.name != "" {
		return s.name
	}
	return s.ep.String()
}

// addListeners names the services that listeners serve after their
// processes, and adds a service with no connections for each listener
// that serves none: a listener on the wildcard address serves every
// service on its port (of its address family).
func addListeners(svcs []service, listeners []Listener) []service {
	if len(listeners) == 0 {
		return svcs
	}
	type portKey struct {
		port uint16
		v6   bool
	}
	byPort := make(map[portKey][]int, len(svcs))
	for i := range svcs {
		k := portKey{svcs[i].ep.port, svcs[i].ep.v6}
		byPort[k] = append(byPort[k], i)
	}
	for _, l := range listeners {
		a := l.Addr.Addr()
		v6 := a.Is6() && !a.Is4In6()
		ep := endpoint{addr: a.As16(), port: l.Addr.Port(), v6: v6}
		if !v6 {
			ep.addr = netip.AddrFrom4(a.Unmap().As4()).As16()
		}
		proc := l.Process
		if l.PID != 0 {
			proc += "[" + strconv.Itoa(l.PID) + "]"
		}
		served := false
		// "::" takes IPv4 connections too (unless IPV6_V6ONLY).
		cands := byPort[portKey{ep.port, v6}]
		if v6 && a.IsUnspecified() {
			cands = append(slices.Clip(cands), byPort[portKey{ep.port, false}]...)
		}
		for _, i := range cands {
			if svcs[i].ep.addr == ep.addr || a.IsUnspecified() {
				served = true
				if svcs[i].proc == "" {
					svcs[i].proc = proc
				}
			}
		}
		if !served {
			svcs = append(svcs, service{ep: ep, proc: proc})
		}
	}
	return svcs
}
