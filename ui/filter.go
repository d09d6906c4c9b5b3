package ui

import (
	"bytes"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
)

// filter is a compiled filter expression: words separated by spaces, all of
// which must match a row. A word matches when it is part of the client's or
// the server's "address:port", of either endpoint's state name, of the
// conn_state, of the Process column ("PID/comm") or, when names are shown,
// of either endpoint's "name:port", and of the name the client asked for
// (the Name column, with the server's reverse DNS name where it has no
// other), ignoring case. ":443" matches port 443 exactly, "10.0.0.0/8"
// addresses in that prefix, "proc:NAME" the connections whose local
// process's command name (or container) contains NAME, "name:wiki" only
// the Name column, "problem:KIND" the connections with a problem of that
// kind (any kind whose name contains KIND; problem:any, any problem), and
// a leading "!" negates a word.
type filter struct {
	terms []term
	procs *procNames // the frame's process names; nil: none
	names Names      // host names, when shown; nil: numeric
}

type term struct {
	text   []byte // lower case
	neg    bool
	states uint32 // states whose names contain text
	zeek   uint32 // conn_state codes that contain text
	addr   bool   // text could be part of an address
	port   int    // >= 0: exact port match
	prefix netip.Prefix
	name   bool     // "name:text": only the Name column
	str    string   // text, as a string
	proc   bool     // proc:NAME: the process name only
	ptext  string   // NAME
	prob   bool     // problem:KIND: the row's problems only
	probs  diag.Set // the kinds it takes
}

func compileFilter(expr string) *filter {
	f := &filter{}
	for _, w := range strings.Fields(expr) {
		t := term{port: -1}
		if len(w) > 1 && w[0] == '!' {
			t.neg, w = true, w[1:]
		}
		w = strings.ToLower(w)
		if n, ok := strings.CutPrefix(w, "name:"); ok && n != "" {
			t.name, t.text, t.str = true, []byte(n), n
			f.terms = append(f.terms, t)
			continue
		}
		if k, ok := strings.CutPrefix(w, "problem:"); ok {
			t.prob, t.probs = true, problemKinds(k)
			f.terms = append(f.terms, t)
			continue
		}
		if p, ok := strings.CutPrefix(w, "proc:"); ok {
			t.proc, t.ptext = true, p
			f.terms = append(f.terms, t)
			continue
		}
		t.text, t.str = []byte(w), w
		if p, ok := strings.CutPrefix(w, ":"); ok {
			if n, err := strconv.ParseUint(p, 10, 16); err == nil {
				t.port = int(n)
			}
		}
		if p, err := netip.ParsePrefix(w); err == nil {
			t.prefix = p.Masked()
		}
		st := strings.ReplaceAll(w, "-", "_")
		for s := flows.StateClosed; s <= flows.StateTimeWait; s++ {
			if strings.Contains(strings.ToLower(s.String()), st) || strings.Contains(strings.ToLower(shortStates[s]), st) {
				t.states |= 1 << s
			}
		}
		for i, z := range zeekStates {
			if i > 0 && strings.Contains(strings.ToLower(z), w) {
				t.zeek |= 1 << i
			}
		}
		t.addr = t.port < 0 && strings.Trim(w, "0123456789abcdef.:[]") == ""
		f.terms = append(f.terms, t)
	}
	// The words are all needed, in any order: those that need the
	// addresses formatted go last, so that a cheaper one can rule a row out
	// first.
	slices.SortStableFunc(f.terms, func(a, b term) int {
		switch {
		case !a.addr && b.addr:
			return -1
		case a.addr && !b.addr:
			return 1
		}
		return 0
	})
	return f
}

// empty reports whether the filter matches everything.
func (f *filter) empty() bool { return len(f.terms) == 0 }

// match reports whether row r matches every word of the filter.
func (f *filter) match(r *row) bool {
	var buf [2][64]byte
	var text [2][]byte
	formatted := false
	var procBuf [64]byte
	var proc []byte
	procDone := false
	for i := range f.terms {
		t := &f.terms[i]
		if t.name {
			if f.connNameContains(r, t.str) == t.neg {
				return false
			}
			continue
		}
		if t.prob {
			if (r.probs&t.probs != 0) == t.neg {
				return false
			}
			continue
		}
		if t.proc {
			m := f.procs != nil && (r.proc != 0 || r.ctr != 0) &&
				(strings.Contains(f.procs.lower[r.proc], t.ptext) || strings.Contains(f.procs.lower[r.ctr], t.ptext))
			if m == t.neg {
				return false
			}
			continue
		}
		m := t.states&(1<<r.cst|1<<r.sst) != 0 || t.zeek&(1<<r.zeek) != 0
		if !m && t.port >= 0 {
			m = int(r.key.Port[0]) == t.port || int(r.key.Port[1]) == t.port
		}
		if !m && t.prefix.IsValid() {
			m = t.prefix.Contains(r.client().Addr()) || t.prefix.Contains(r.server().Addr())
		}
		if !m && t.addr {
			if !formatted {
				text[0] = r.client().AppendTo(buf[0][:0])
				text[1] = r.server().AppendTo(buf[1][:0])
				formatted = true
			}
			m = bytes.Contains(text[0], t.text) || bytes.Contains(text[1], t.text)
		}
		if !m && f.procs != nil && (r.pid != 0 || r.proc != 0) {
			if !procDone {
				proc, procDone = r.appendProc(procBuf[:0], f.procs), true
			}
			m = bytes.Contains(proc, t.text)
		}
		if !m && f.names != nil {
			m = f.nameContains(r.client(), t.text) || f.nameContains(r.server(), t.text) || f.connNameContains(r, t.str)
		}
		if m == t.neg {
			return false
		}
	}
	return true
}

// nameContains reports whether the "name:port" of ap, in lower case,
// contains text (lower case); false when its name is not known.
func (f *filter) nameContains(ap netip.AddrPort, text []byte) bool {
	name, ok := f.names.Name(ap.Addr())
	if !ok || name == "" {
		return false
	}
	var buf [272]byte
	b := buf[:0]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	b = append(b, ':')
	b = strconv.AppendUint(b, uint64(ap.Port()), 10)
	return bytes.Contains(b, text)
}

// connNameContains reports whether the Name column of r contains text
// (lower case): the name its client asked for or, while host names are
// shown, its server's reverse DNS name when it has no other.
func (f *filter) connNameContains(r *row, text string) bool {
	if r.name != 0 && f.procs != nil {
		return strings.Contains(f.procs.lower[r.name], text)
	}
	if f.names == nil {
		return false
	}
	name, ok := f.names.Name(r.server().Addr())
	return ok && name != "" && strings.Contains(strings.ToLower(name), text)
}

// problemKinds returns the kinds a problem:NAME word takes: those whose
// name, or name in the Problem column, contains NAME; every kind for
// "any" or nothing.
func problemKinds(name string) diag.Set {
	var s diag.Set
	for k := range diag.NumKinds {
		if name == "" || name == "any" || strings.Contains(k.String(), name) || strings.Contains(shortKind(k), name) {
			s = s.Add(k)
		}
	}
	return s
}
