package ui

import (
	"strconv"
	"strings"

	"github.com/flowtrack/flowtrack/flows"
)

// procTable interns the command names of the Process column, so that a
// row holds an index rather than a string: a frame of a million rows then
// still holds no pointer for the garbage collector to scan. Only the
// builder appends to it. Frames hold slices of it (procNames), and since
// an append never writes below a slice's length, the event goroutine reads
// a frame's names while the builder adds more.
type procTable struct {
	idx   map[string]uint32
	names []string // names[0] is "", for rows without a process
	lower []string // the same in lower case, for the filter
}

// maxProcNames bounds the table: past it, the next snapshot starts a new
// one (the frames shown keep theirs). A host rarely runs more than a few
// hundred distinct commands; the server names its connections asked for
// (which the table interns too) are rarely more than a few thousand.
const maxProcNames = 1 << 16

func (p *procTable) reset() {
	p.idx = make(map[string]uint32)
	p.names, p.lower = []string{""}, []string{""}
}

// intern returns the index of name, adding it if need be.
func (p *procTable) intern(name string) uint32 {
	if name == "" {
		return 0
	}
	if i, ok := p.idx[name]; ok {
		return i
	}
	if p.idx == nil {
		p.reset()
	}
	i := uint32(len(p.names))
	p.idx[name] = i
	p.names = append(p.names, name)
	p.lower = append(p.lower, strings.ToLower(name))
	return i
}

// procNames is a frame's view of the process names.
type procNames struct {
	names, lower []string
}

func (p *procTable) view() procNames { return procNames{p.names, p.lower} }

// setLocal looks up the local process of rec for its row, when the UI has
// a process lookup. It runs on the builder goroutine.
func (b *builder) setLocal(r *row, rec *flows.Record) {
	if b.local == nil {
		return
	}
	l := b.local(rec)
	if l.ServerName != "" {
		r.name = b.procs.intern(l.ServerName)
		r.nsrc = nameMark(l.NameSource)
		r.wid[widName] = uint8(min(2+len(l.ServerName), 255))
	}
	if l.PID > 0 {
		r.pid = int32(min(l.PID, 1<<31-1))
	}
	r.proc = b.procs.intern(l.Process)
	r.ctr = b.procs.intern(l.Container)
	r.wid[widProc] = uint8(min(r.procWidth(b.procs.names), 255))
}

// procText is the Process column's text: "comm[PID]", then the
// container if any, or "-" when no local process is known.
func (r *row) procText(p *procNames) string {
	s := ""
	switch {
	case r.pid == 0 && r.proc == 0:
		return "-"
	case r.pid == 0:
		s = p.names[r.proc]
	default:
		s = p.names[r.proc] + "[" + strconv.Itoa(int(r.pid)) + "]"
	}
	if r.ctr != 0 {
		s += " " + p.names[r.ctr]
	}
	return s
}

// procWidth is len(procText) without formatting.
func (r *row) procWidth(names []string) int {
	n := 0
	if r.pid != 0 {
		n = digits(uint32(r.pid)) + 2
	}
	if r.proc != 0 {
		n += strlen(names[r.proc])
	}
	if r.ctr != 0 {
		n += 1 + strlen(names[r.ctr])
	}
	return max(n, 1)
}

// appendProc appends the Process column's text in lower case, for the
// filter; nothing when no process is known.
func (r *row) appendProc(b []byte, p *procNames) []byte {
	if r.proc != 0 {
		b = append(b, p.lower[r.proc]...)
	}
	if r.pid != 0 {
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(r.pid), 10)
		b = append(b, ']')
	}
	if r.ctr != 0 {
		b = append(b, ' ')
		b = append(b, p.lower[r.ctr]...)
	}
	return b
}

// procKey is the sort key of the Process column: the first eight bytes of
// the command name in lower case; rows with equal keys are refined by the
// whole name and the PID. Rows without a process sort last.
func (r *row) procKey(p *procNames) (k uint64, missing bool) {
	if r.pid == 0 && r.proc == 0 {
		return 0, true
	}
	var b [8]byte
	copy(b[:], p.lower[r.proc])
	return be64(b[:]), false
}

// cmpProc orders two rows by command name, then PID.
func cmpProc(a, b *row, p *procNames) int {
	if c := strings.Compare(p.lower[a.proc], p.lower[b.proc]); c != 0 {
		return c
	}
	return int(a.pid) - int(b.pid)
}
