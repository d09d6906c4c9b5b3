package sockets

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/flowtrack/flowtrack/flows"
	"golang.org/x/sys/unix"
)

// nsSource is a network namespace to read, and how to reach it.
type nsSource struct {
	inode uint64
	self  bool   // flowtrack's own
	pid   int32  // a process in it, 0 if none is known
	path  string // its namespace file, for setns
}

// Refresh reads the kernel's socket tables and the processes now, and
// replaces the table Lookup answers from. It returns an error only if
// flowtrack's own namespace could not be read at all; lesser problems go to
// Warnings. Start calls it periodically; calling it directly suits a
// one-shot reading or a test. It blocks for as long as a refresh takes.
func (r *Resolver) Refresh() error {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	start := time.Now()
	var warns []string
	warn := func(kind, format string, a ...any) {
		if !r.warned[kind] {
			r.warned[kind] = true
			warns = append(warns, fmt.Sprintf("sockets: "+format, a...))
		}
	}

	// Processes first, for the namespaces they are in.
	var scan *procScan
	procOK := r.scanner.begin() == nil
	defer r.scanner.end()
	if procOK {
		scan = r.scanner.run(true, false)
	} else {
		warn("proc", "cannot read %s: connections will show no process", r.procRoot)
		scan = &procScan{}
	}
	st := Stats{Processes: scan.processes, Truncated: scan.truncated}
	every := time.Duration(r.TimeWaitEvery.Load())
	r.partial = every > 0 && !r.lastTW.IsZero() && start.Sub(r.lastTW) < every
	if !r.partial {
		r.lastTW = start
	}
	// Then each namespace's sockets, then who holds them.
	rows, selfErr := r.readSockets(scan, &st, warn)
	if procOK && !r.NoFDs.Load() {
		r.scanHolders(rows, &st)
	}
	st.Denied, st.DeniedPID = scan.denied, int(scan.deniedPID)
	st.Truncated = st.Truncated || scan.truncated
	if scan.denied > 0 {
		warn("denied", "cannot read the open files of %d processes (PID %d and others): their connections show the kernel's state but no process; run flowtrack as root to see them", scan.denied, scan.deniedPID)
	}
	if st.Truncated {
		warn("truncated", "more than %d sockets, %d processes or %d network namespaces: the rest are skipped", MaxSockets, MaxProcesses, MaxNetns)
	}
	if selfErr != nil {
		warn("self", "cannot read this host's TCP sockets: %v", selfErr)
		st.Err = selfErr
	}

	now := time.Now()
	old := r.cur.Load()
	socks, listening := r.build(rows, scan, old, &st)
	r.keepUnread(old, socks)
	st.Sockets = len(socks)
	st.Netns = len(st.ReadNetns)
	st.At = now
	st.Took = now.Sub(start)
	r.publish(&table{socks: socks, listening: listening, when: now}, old, &st, warns)
	return selfErr
}

// readSockets reads the sockets of every namespace into r.rows, and notes
// which were read. It returns the rows and the error reading flowtrack's
// own namespace, if any.
func (r *Resolver) readSockets(scan *procScan, st *Stats, warn func(kind, format string, a ...any)) ([]row, error) {
	clear(r.nsState)
	rows := r.rows[:0]
	var selfErr error
	for _, src := range r.namespaces(scan, warn) {
		var err error
		var viaNetlink bool
		rows, viaNetlink, err = r.readNS(src, rows, warn)
		switch {
		case err == nil:
			r.nsState[src.inode] = nsRead
			st.ReadNetns = append(st.ReadNetns, src.inode)
		case errors.Is(err, errFull):
			r.nsState[src.inode] = nsFailed
			st.ReadNetns = append(st.ReadNetns, src.inode)
			st.Truncated = true
		default:
			r.nsState[src.inode] = nsFailed
			switch {
			case src.self:
				selfErr = err
			case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH):
				// its process exited, or it was deleted, since the scan
			default:
				warn("netns", "cannot read the sockets of network namespace %d: %v", src.inode, err)
			}
		}
		if src.self {
			st.Netlink = viaNetlink
		}
		if st.Truncated && len(rows) >= MaxSockets {
			break
		}
	}
	r.rows = rows
	return rows, selfErr
}

// scanHolders reads who holds the sockets just read, which therefore
// already exist when their holders' descriptors are read. Every process's
// descriptors are read only every fullScanEvery refreshes; in between,
// only when a socket turns up whose holder no scan has looked for yet, and
// then first those of the processes that already hold sockets (a browser,
// a server), which open most new ones.
func (r *Resolver) scanHolders(rows []row, st *Stats) {
	full := r.forceFull || r.sinceFull >= fullScanEvery-1 || !r.scanned
	if !full && r.unknownInodes(rows) > 0 {
		r.scanner.scanPIDs(r.hotPIDs(r.cur.Load()))
		st.Scan = "partial"
		full = r.unknownInodes(rows) > 0
	}
	if full {
		r.scanner.run(false, true)
		st.Scan = "full"
		r.sinceFull, r.scanned, r.forceFull = 0, true, false
		clear(r.unowned)
	} else {
		r.sinceFull++
	}
	r.markUnowned(rows)
}

// keepUnread keeps in socks, as they were, the sockets of the old table
// whose namespace could not be read this time, and (when this refresh does
// not read TIME_WAIT) those in TIME_WAIT, and those that left the states
// read, with their state unknown until TIME_WAIT is read again. It lists
// in r.goneNow those that are gone (their namespace was read, or is no
// more).
func (r *Resolver) keepUnread(old *table, socks map[sockKey]Owner) {
	r.goneNow = r.goneNow[:0]
	if old == nil {
		return
	}
	for k, o := range old.socks {
		if _, ok := socks[k]; ok {
			continue
		}
		switch {
		case r.nsState[o.Netns] == nsFailed: // unknown: keep it as it was
			if len(socks) < MaxSockets {
				socks[k] = o
			}
		case r.partial && o.Kernel && o.KernelState == flows.StateTimeWait: // as the last read of TIME_WAIT found it
			if len(socks) < MaxSockets {
				if o.Seen.IsZero() {
					o.Seen = old.when
				}
				socks[k] = o
			}
		case r.partial: // in TIME_WAIT now, or gone: the next read of TIME_WAIT tells
			if len(socks) < MaxSockets {
				o.Kernel = false
				socks[k] = o
			}
		default: // its namespace was read, or is no more: the socket is gone
			r.goneNow = append(r.goneNow, k)
		}
	}
}

// publish makes cur the table Lookup answers from, remembers the sockets
// gone since old for Linger (at most MaxGone), and the stats and warnings
// of the refresh.
func (r *Resolver) publish(cur, old *table, st *Stats, warns []string) {
	now := cur.when
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.goneNow {
		o := old.socks[k]
		o.Gone, o.KernelState, o.Seen = true, flows.StateClosed, now
		r.gone[k] = o
		r.goneQ = append(r.goneQ, goneItem{k, now})
	}
	r.cur.Store(cur) // after gone has what it dropped
	for len(r.goneQ) > 0 && (len(r.goneQ) > MaxGone || now.Sub(r.goneQ[0].at) > Linger) {
		it := r.goneQ[0]
		r.goneQ = r.goneQ[1:]
		if o, ok := r.gone[it.key]; ok && o.Seen.Equal(it.at) {
			delete(r.gone, it.key)
		}
	}
	st.Remembered = len(r.gone)
	st.Refreshes = r.stats.Refreshes + 1
	r.stats = *st
	r.pending = append(r.pending, warns...)
}

// namespaces lists the namespaces to read: flowtrack's own first, then
// those of the processes scanned, then those named in /run/netns (which may
// have no process), each once, at most MaxNetns.
func (r *Resolver) namespaces(scan *procScan, warn func(kind, format string, a ...any)) []nsSource {
	srcs := []nsSource{{inode: r.selfNS, self: true}}
	others := make([]nsSource, 0, len(scan.netns))
	for ns, pid := range scan.netns {
		if ns != r.selfNS {
			others = append(others, nsSource{inode: ns, pid: pid, path: r.procRoot + "/" + strconv.Itoa(int(pid)) + "/ns/net"})
		}
	}
	slices.SortFunc(others, func(a, b nsSource) int { return cmp.Compare(a.inode, b.inode) })
	srcs = append(srcs, others...)
	if ents, err := os.ReadDir(r.runNetns); err == nil {
		for _, e := range ents {
			path := r.runNetns + "/" + e.Name()
			ino := r.nsFileInode(path)
			if ino == 0 || slices.ContainsFunc(srcs, func(s nsSource) bool { return s.inode == ino }) {
				continue
			}
			srcs = append(srcs, nsSource{inode: ino, path: path})
		}
	}
	if len(srcs) > MaxNetns {
		srcs = srcs[:MaxNetns]
		warn("truncated", "more than %d network namespaces: the rest are skipped", MaxNetns)
	}
	return srcs
}

// readNS appends the sockets of one namespace to rows: through netlink
// where permitted, else from /proc/<pid>/net/tcp{,6}.
func (r *Resolver) readNS(src nsSource, rows []row, warn func(kind, format string, a ...any)) ([]row, bool, error) {
	before := len(rows)
	var nlErr error
	if !r.noNetlink {
		var fd int
		if src.self {
			fd, nlErr = openDiag()
		} else {
			fd, nlErr = openDiagIn(src.path)
		}
		states := uint32(allStates)
		if r.partial {
			states &^= 1 << tcpTimeWait
		}
		if nlErr == nil {
			rows, nlErr = r.diag.dump(fd, unix.AF_INET, states, src.inode, rows, MaxSockets)
			if nlErr == nil {
				rows, nlErr = r.diag.dump(fd, unix.AF_INET6, states, src.inode, rows, MaxSockets)
			}
			unix.Close(fd)
		}
		if nlErr == nil || errors.Is(nlErr, errFull) {
			return rows, true, nlErr
		}
		rows = rows[:before]
		if src.self {
			warn("netlink", "netlink sock_diag refused (%v): reading %s/net/tcp instead", nlErr, r.procRoot)
		} else if src.pid != 0 {
			warn("setns", "cannot enter network namespace %d (%v): reading %s/%d/net/tcp instead", src.inode, nlErr, r.procRoot, src.pid)
		}
	}
	var dir string
	switch {
	case src.self:
		dir = r.selfDir + "/net/"
	case src.pid != 0:
		dir = r.procRoot + "/" + strconv.Itoa(int(src.pid)) + "/net/"
	default:
		return rows, false, nlErr
	}
	var err error
	rows, err = r.procNet.read(dir+"tcp", src.inode, rows, MaxSockets)
	if err == nil {
		rows, err = r.procNet.read(dir+"tcp6", src.inode, rows, MaxSockets)
		if err != nil && !errors.Is(err, errFull) && errors.Is(err, unix.ENOENT) {
			err = nil // a kernel without IPv6
		}
	}
	if err != nil && !errors.Is(err, errFull) {
		rows = rows[:before]
	}
	return rows, false, err
}

// build makes the table of connection sockets from rows, with processes
// from the scan and, for sockets that no process holds now, from the
// previous table old (nil for the first refresh).
func (r *Resolver) build(rows []row, scan *procScan, old *table, st *Stats) (map[sockKey]Owner, []Listener) {
	var listening []Listener
	clear(r.listeners)
	r.comms, r.oldComms = r.oldComms, r.comms
	clear(r.comms)
	size := len(rows)
	if old != nil {
		size = max(size, len(old.socks))
	}
	socks := make(map[sockKey]Owner, size)
	for i := range rows {
		rw := &rows[i]
		if _, listen, _ := kernelState(rw.state); !listen {
			continue
		}
		st.Listeners++
		lo := Owner{Netns: rw.netns, UID: rw.uid, Inode: rw.inode, Kernel: true}
		if pid, ok := scan.owner[rw.inode]; ok && rw.inode != 0 {
			lk := listenKey{netns: rw.netns, addr: rw.key.local, port: rw.key.lport}
			if _, dup := r.listeners[lk]; !dup {
				r.listeners[lk] = pid
			}
			lo.PID, lo.Via, lo.Comm = int(pid), ViaListener, r.comm(pid)
		}
		if len(listening) < MaxListeners {
			listening = append(listening, Listener{Addr: addrPortOf(rw.key.local, rw.key.lport), Owner: lo})
		}
	}
	for i := range rows {
		rw := &rows[i]
		state, listen, ok := kernelState(rw.state)
		if !ok || listen {
			continue
		}
		o := Owner{KernelState: state, Netns: rw.netns, UID: rw.uid, Inode: rw.inode, Kernel: true}
		if pid, ok := scan.owner[rw.inode]; ok && rw.inode != 0 {
			o.PID, o.Via, o.Comm = int(pid), ViaFD, r.comm(pid)
		} else if prev, ok := old.prev(rw.key, rw.netns); ok && prev.PID != 0 {
			switch {
			case rw.inode != 0 && prev.Inode == rw.inode && prev.Via == ViaFD:
				// the same socket; its holder's descriptors were not
				// readable this time
				o.PID, o.Via, o.Comm = prev.PID, ViaFD, prev.Comm
			case rw.inode == 0 && (prev.Via == ViaFD || prev.Via == ViaFormer):
				o.PID, o.Via, o.Comm = prev.PID, ViaFormer, prev.Comm
			}
		}
		if o.Via == ViaNone && rw.inode == 0 && (state == flows.StateSynReceived || state == flows.StateEstablished || state == flows.StateCloseWait) {
			if pid, ok := r.listener(rw.netns, rw.key); ok {
				o.PID, o.Via, o.Comm = int(pid), ViaListener, r.comm(pid)
			}
		}
		if e, dup := socks[rw.key]; dup {
			st.Collisions++
			if e.Netns == r.selfNS || (rw.netns != r.selfNS && e.Netns < rw.netns) {
				continue
			}
		}
		socks[rw.key] = o
	}
	for _, o := range socks {
		if o.Via != ViaNone {
			st.Attributed++
		}
	}
	return socks, listening
}

// unknownInodes counts the sockets in rows whose holder no scan has
// looked for yet.
func (r *Resolver) unknownInodes(rows []row) int {
	n := 0
	for i := range rows {
		ino := rows[i].inode
		if ino == 0 {
			continue
		}
		if _, ok := r.scanner.scan.owner[ino]; ok {
			continue
		}
		if _, ok := r.unowned[ino]; !ok {
			n++
		}
	}
	return n
}

// markUnowned records the sockets in rows that the scans just made found
// no holder for (their holders' descriptors are unreadable, or they were
// opened after the scan), so that they alone do not make every later
// refresh scan again; the next full scan looks for them again.
func (r *Resolver) markUnowned(rows []row) {
	for i := range rows {
		ino := rows[i].inode
		if ino == 0 || len(r.unowned) >= MaxSockets {
			continue
		}
		if _, ok := r.scanner.scan.owner[ino]; !ok {
			r.unowned[ino] = struct{}{}
		}
	}
}

// hotPIDs lists the processes that held sockets in table t.
func (r *Resolver) hotPIDs(t *table) []int32 {
	r.hot = r.hot[:0]
	if t == nil {
		return r.hot
	}
	clear(r.hotSet)
	for _, o := range t.socks {
		if o.Via != ViaFD && o.Via != ViaListener {
			continue
		}
		if _, ok := r.hotSet[int32(o.PID)]; !ok {
			r.hotSet[int32(o.PID)] = struct{}{}
			r.hot = append(r.hot, int32(o.PID))
		}
	}
	return r.hot
}

// prev returns the previous refresh's entry for key if it was in netns.
func (t *table) prev(key sockKey, netns uint64) (Owner, bool) {
	if t == nil {
		return Owner{}, false
	}
	o, ok := t.socks[key]
	return o, ok && o.Netns == netns
}

// listener returns the process holding the listening socket that a
// connection to key's local endpoint in netns is accepted from: one bound
// to that address, else to the wildcard address (0.0.0.0, or :: which also
// takes IPv4).
func (r *Resolver) listener(netns uint64, key sockKey) (int32, bool) {
	lk := listenKey{netns: netns, addr: key.local, port: key.lport}
	if pid, ok := r.listeners[lk]; ok {
		return pid, true
	}
	if isV4Mapped(key.local) {
		lk.addr = v4mapped([]byte{0, 0, 0, 0})
		if pid, ok := r.listeners[lk]; ok {
			return pid, true
		}
	}
	lk.addr = [16]byte{}
	pid, ok := r.listeners[lk]
	return pid, ok
}

func isV4Mapped(a [16]byte) bool {
	return a[10] == 0xff && a[11] == 0xff && a == v4mapped(a[12:])
}

// comm returns pid's command name, read once per refresh.
func (r *Resolver) comm(pid int32) string {
	if c, ok := r.comms[pid]; ok {
		return c
	}
	c := r.scanner.comm(pid, r.oldComms[pid])
	if c == "" {
		r.forceFull = true // the process is gone: who holds its sockets now?
	}
	r.comms[pid] = c
	return c
}

// nsInode returns the namespace inode a /proc/<pid>/ns/net link names.
func (r *Resolver) nsInode(link string) uint64 {
	s, err := os.Readlink(link)
	if err != nil || len(s) < 7 || s[:5] != "net:[" || s[len(s)-1] != ']' {
		return 0
	}
	v, _ := strconv.ParseUint(s[5:len(s)-1], 10, 64)
	return v
}

// nsFileInode returns the namespace inode of a bind-mounted namespace file
// (/run/netns/NAME), 0 if it is not one (a file left behind by a namespace
// that is gone is on another file system than nsfs).
func (r *Resolver) nsFileInode(path string) uint64 {
	var self, st unix.Stat_t
	if unix.Stat(r.selfDir+"/ns/net", &self) != nil || unix.Stat(path, &st) != nil || st.Dev != self.Dev {
		return 0
	}
	return st.Ino
}
