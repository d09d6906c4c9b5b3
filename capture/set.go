package capture

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// ExpandPaths turns what the user named with -r into capture files: a
// file as it is, a directory as the capture files in it (by their first
// bytes, not their names; hidden files and subdirectories are left out),
// and a pattern with *, ? or [ as the files it matches (filepath.Glob). It
// returns the files in the order named, each once, and the files of a
// directory that are not captures (to be named, not read).
func ExpandPaths(args []string) (files, notCaptures []string, err error) {
	seen := map[string]bool{}
	add := func(f string) {
		if !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	for _, a := range args {
		if a == "-" || !strings.ContainsAny(a, "*?[") {
			fi, err := os.Stat(a)
			if a == "-" || err != nil || !fi.IsDir() {
				add(a) // OpenFile names what is wrong with it
				continue
			}
			caps, other, err := dirCaptures(a)
			if err != nil {
				return nil, nil, err
			}
			if len(caps) == 0 {
				return nil, nil, newError(ErrNotCapture, nil, "%s: a directory with no pcap or pcapng file in it", a)
			}
			for _, f := range caps {
				add(f)
			}
			notCaptures = append(notCaptures, other...)
			continue
		}
		m, err := filepath.Glob(a)
		if err != nil {
			return nil, nil, newError(ErrNotCapture, err, "%s: bad pattern: %v", a, err)
		}
		if len(m) == 0 {
			return nil, nil, newError(ErrNotCapture, nil, "%s: no file matches the pattern", a)
		}
		for _, f := range m {
			// As a shell does, * and ? do not match a leading dot.
			if strings.HasPrefix(filepath.Base(f), ".") && !strings.HasPrefix(filepath.Base(a), ".") {
				continue
			}
			add(f)
		}
	}
	if len(files) > 1 && seen["-"] {
		return nil, nil, newError(ErrNotCapture, nil, "standard input (-r -) cannot be read with other files")
	}
	return files, notCaptures, nil
}

// dirCaptures lists the capture files in dir, by name, and the other
// regular files.
func dirCaptures(dir string) (caps, other []string, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fileError(dir, err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if looksLikeCapture(p) {
			caps = append(caps, p)
		} else {
			other = append(other, p)
		}
	}
	return caps, other, nil
}

// looksLikeCapture reports whether the file starts as a pcap, pcapng or
// gzip file does.
func looksLikeCapture(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return true // OpenFile will say why it cannot be read
	}
	defer f.Close()
	b := make([]byte, 4)
	if _, err := io.ReadFull(f, b); err != nil {
		return false
	}
	_, pcap := pcapMagic(b)
	return pcap || string(b) == string(magicPcapng) || string(b[:2]) == string(magicGzip)
}

// OpenFiles opens capture files as one capture: their frames are merged by
// timestamp (frames of one file keep their order; equal times go in the
// order the files were named), so a connection that goes on from one file
// into the next is one connection. One file is opened as OpenFile opens it.
//
// Every file is opened first, to read its first frame's time and to check
// it: a file that cannot be opened (not a capture, a link type flowtrack
// cannot decode, unreadable) is left out and named in the error that Next
// returns at the end, as is a file cut short or damaged part-way, after
// the frames before the damage. OpenFiles fails only if no file can be
// read, or the filter is invalid.
//
// A file is opened for the merge only once the merge reaches its first
// frame's time, and closed at its end, so that a rotated set (files that
// follow each other in time) has one or two open at once. When more than
// maxOpen files overlap in time, the one whose next frame is latest is
// closed, with a small read-ahead of its frames kept, and opened again
// where it was when its read-ahead runs out: memory stays bounded
// however many files overlap.
func OpenFiles(paths []string, filter string) (Source, error) {
	if len(paths) == 1 {
		return OpenFile(paths[0], filter)
	}
	if len(paths) == 0 {
		return nil, newError(ErrNotCapture, nil, "no capture file named")
	}
	s := &setSource{filter: filter, maxOpen: maxOpenFiles, named: len(paths)}
	for i, p := range paths {
		f, err := s.probe(i, p)
		if errors.Is(err, ErrFilter) {
			return nil, err
		}
		if err != nil {
			s.errs = append(s.errs, err)
			continue
		}
		s.total += f.size
		s.files = append(s.files, f)
	}
	if len(s.files) == 0 {
		return nil, &SetError{Files: len(paths), Errs: s.errs}
	}
	slices.SortStableFunc(s.files, func(a, b *setFile) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return a.index - b.index
	})
	s.name = fmt.Sprintf("%d files (%s … %s)", len(paths), paths[0], paths[len(paths)-1])
	return s, nil
}

// maxOpenFiles bounds the files a set keeps open at once.
const maxOpenFiles = 16

// parkAhead bounds the frames and bytes kept of a file closed for want of
// a place among the open files.
const (
	parkAheadFrames = 256
	parkAheadBytes  = 64 << 10
)

// setFile is one file of a set.
type setFile struct {
	path  string
	index int   // order named
	size  int64 // bytes
	first int64 // time of its first frame, ns
	empty bool  // no frame at all

	src      Source   // nil when not open
	consumed uint64   // frames read from the file so far (to find the place again)
	offset   int64    // for a classic pcap file: where reading had got to
	head     setFrame // the next frame to hand out
	ahead    []setFrame
	done     bool
}

// setFrame is one frame read from a file; data is a copy only in a read-ahead.
type setFrame struct {
	data []byte
	ci   gopacket.CaptureInfo
	link layers.LinkType
	ts   int64
}

// setSource merges the frames of several files by time.
type setSource struct {
	name    string
	named   int // files named, read or not
	filter  string
	files   []*setFile // by first frame's time, then as named
	next    int        // files[next:] have not been opened yet
	h       fileHeap   // files with a head frame
	last    *setFile   // the file whose head was handed out last
	open    int
	maxOpen int
	total   int64 // bytes of all files
	doneB   int64 // bytes of the files finished
	doneF   int
	errs    []error
	closed  bool
}

// probe opens a file to check it and read its first frame's time.
func (s *setSource) probe(i int, path string) (*setFile, error) {
	src, err := OpenFile(path, s.filter)
	if err != nil {
		return nil, err
	}
	if s.filter != "" { // the first frame, not the first that matches: a filter may match late or never
		src.Close()
		if src, err = OpenFile(path, ""); err != nil {
			return nil, err
		}
	}
	defer src.Close()
	f := &setFile{path: path, index: i}
	if fi, err := os.Stat(path); err == nil {
		f.size = fi.Size()
	}
	_, ci, _, err := src.Next()
	switch {
	case errors.Is(err, io.EOF):
		f.empty = true
	case err != nil:
		return nil, err
	default:
		f.first = ci.Timestamp.UnixNano()
	}
	return f, nil
}

func (s *setSource) Name() string          { return s.name }
func (s *setSource) Stats() (Stats, error) { return Stats{}, nil }

func (s *setSource) Close() {
	for _, f := range s.files {
		if f.src != nil {
			f.src.Close()
			f.src = nil
		}
	}
	s.h = nil
	s.closed = true
}

// Next returns the earliest head frame among the files open, once every
// file whose first frame is no later has been opened.
func (s *setSource) Next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	if s.closed {
		return nil, gopacket.CaptureInfo{}, 0, io.EOF
	}
	if f := s.last; f != nil {
		s.last = nil
		s.advance(f)
	}
	for s.next < len(s.files) && (len(s.h) == 0 || s.files[s.next].first <= s.h[0].head.ts) {
		f := s.files[s.next]
		s.next++
		if f.empty {
			s.finish(f, nil)
			continue
		}
		if s.fill(f) {
			heap.Push(&s.h, f)
		}
	}
	if len(s.h) == 0 {
		if len(s.errs) > 0 {
			return nil, gopacket.CaptureInfo{}, 0, &SetError{Files: s.named, Errs: s.errs}
		}
		return nil, gopacket.CaptureInfo{}, 0, io.EOF
	}
	f := s.h[0]
	s.last = f
	return f.head.data, f.head.ci, f.head.link, nil
}

// advance moves f, at the top of the heap, to its next frame.
func (s *setSource) advance(f *setFile) {
	if s.fill(f) {
		heap.Fix(&s.h, 0)
		return
	}
	heap.Pop(&s.h)
}

// fill reads f's next frame into its head, from its read-ahead or its
// file (opened if need be). It reports false at the file's end or on an
// error, which it records; the file is then finished.
func (s *setSource) fill(f *setFile) bool {
	if len(f.ahead) > 0 {
		f.head, f.ahead = f.ahead[0], f.ahead[1:]
		return true
	}
	if f.src == nil {
		if err := s.reopen(f); err != nil {
			s.finish(f, err)
			return false
		}
	}
	data, ci, link, err := f.src.Next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = nil
		}
		s.finish(f, err)
		return false
	}
	f.consumed++
	f.head = setFrame{data: data, ci: ci, link: link, ts: ci.Timestamp.UnixNano()}
	return true
}

// reopen opens f again where it was left, first closing another file if
// the set has as many open as it may.
func (s *setSource) reopen(f *setFile) error {
	if s.open >= s.maxOpen {
		s.park()
	}
	src, err := OpenFile(f.path, s.filter)
	if err != nil {
		return err
	}
	if m, ok := src.(*pcapSource); ok && f.offset > 0 {
		if err := m.seek(f.offset); err != nil {
			src.Close()
			return err
		}
	} else {
		for i := uint64(0); i < f.consumed; i++ {
			if _, _, _, err := src.Next(); err != nil {
				src.Close()
				return readError(f.path, fmt.Errorf("reading it again: %w", err))
			}
		}
	}
	f.src = src
	s.open++
	return nil
}

// park closes the open file whose next frame is latest, keeping its head
// and a read-ahead of copies.
func (s *setSource) park() {
	var victim *setFile
	for _, g := range s.h {
		if g.src != nil && g != s.last && (victim == nil || g.head.ts > victim.head.ts) {
			victim = g
		}
	}
	if victim == nil {
		return
	}
	victim.head = copied(victim.head)
	n := len(victim.head.data)
	for len(victim.ahead) < parkAheadFrames && n < parkAheadBytes {
		data, ci, link, err := victim.src.Next()
		if err != nil {
			break // read again, and met again, after the read-ahead
		}
		victim.consumed++
		fr := copied(setFrame{data: data, ci: ci, link: link, ts: ci.Timestamp.UnixNano()})
		victim.ahead = append(victim.ahead, fr)
		n += len(data)
	}
	if m, ok := victim.src.(*pcapSource); ok {
		victim.offset = m.pos()
	}
	victim.src.Close()
	victim.src = nil
	s.open--
}

func copied(fr setFrame) setFrame {
	fr.data = append([]byte(nil), fr.data...)
	return fr
}

// finish closes f for good, recording err if it ended in one.
func (s *setSource) finish(f *setFile, err error) {
	if f.src != nil {
		f.src.Close()
		f.src = nil
		s.open--
	}
	if err != nil {
		s.errs = append(s.errs, err)
	}
	f.done = true
	s.doneB += f.size
	s.doneF++
}

// progress reports how far the set has got, for Run.
func (s *setSource) ReadProgress() Progress {
	p := Progress{Files: len(s.files), FilesDone: s.doneF, Bytes: s.total, BytesDone: s.doneB}
	for _, f := range s.h {
		if f.src == nil {
			continue
		}
		if r, ok := f.src.(progressReporter); ok {
			fp := r.ReadProgress()
			p.BytesDone += fp.BytesDone
		}
	}
	switch {
	case s.last != nil:
		p.File = s.last.path
	case len(s.h) > 0:
		p.File = s.h[0].path
	case s.next < len(s.files):
		p.File = s.files[s.next].path
	}
	return p
}

// Progress returns the fraction of the set's bytes read.
func (s *setSource) Progress() float64 {
	p := s.ReadProgress()
	if p.Bytes <= 0 {
		return 0
	}
	return float64(p.BytesDone) / float64(p.Bytes)
}

// SetError is the error at the end of a set of files, naming each file
// that could not be read whole.
type SetError struct {
	Files int     // files in the set
	Errs  []error // one per file, each naming it
}

func (e *SetError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	if len(e.Errs) == e.Files {
		return fmt.Sprintf("none of the %d files could be read: %s", e.Files, strings.Join(msgs, "; "))
	}
	return fmt.Sprintf("%d of %d files could not be read whole (everything else was read): %s", len(e.Errs), e.Files, strings.Join(msgs, "; "))
}

// Unwrap returns the files' errors, for errors.Is and errors.As.
func (e *SetError) Unwrap() []error { return e.Errs }

// fileHeap orders files by their head frame's time, then as named.
type fileHeap []*setFile

func (h fileHeap) Len() int { return len(h) }
func (h fileHeap) Less(i, j int) bool {
	if h[i].head.ts != h[j].head.ts {
		return h[i].head.ts < h[j].head.ts
	}
	return h[i].index < h[j].index
}
func (h fileHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *fileHeap) Push(x any)   { *h = append(*h, x.(*setFile)) }
func (h *fileHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	*h = old[:len(old)-1]
	return f
}
