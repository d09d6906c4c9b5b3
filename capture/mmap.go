package capture

import (
	"encoding/binary"
	"errors"
	"io"
	"math/bits"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
)

// pcapSource reads a classic pcap file (version 2.4, either byte order,
// micro- or nanosecond timestamps) through a window, handing out each
// frame as a slice of it, good until the next call to Next.
//
// It is one of flowtrack's two hand-written readers (with pcapngSource):
// reading through libpcap costs a cgo call and a copy per frame, the
// largest single cost of a replay (docs/performance-notes-ui.md). Standard
// input and a header that is not plain version 2.4 go
// through libpcap as before. Records are checked as libpcap checks them.
type pcapSource struct {
	window
	// asLE is all ones for a little-endian file, zero for a big-endian
	// one: u32 picks the byte order without a call through
	// binary.ByteOrder per field, or a branch (see u32).
	asLE uint32
	nsec bool
	link layers.LinkType
	snap uint32 // the file's snapshot length, as libpcap adjusts it
	bpf  *pcap.BPF
	err  error // sticky
}

// window reads a capture file front to back into a buffer that is used
// again and again, so that the bytes a reader parses are in the caches: a
// mapping of the file (which these readers used before) made every record
// a cache miss, or several, however sequential the walk (docs/performance.md).
// A slice that peek returns stays good until the next peek that must read.
type window struct {
	path  string
	f     *os.File
	size  int64  // the file's size when opened: reading stops there
	buf   []byte // buf[:n] holds the file from offset start
	start int64
	off   int   // where reading has got to in buf
	n     int   // bytes of buf read from the file
	err   error // the read error that stopped reading, io.EOF at size
}

// windowSize is the buffer's size, a few times a cache of the second
// level's; a block larger than it (a frame of up to maxCaplen, a pcapng
// block of up to ngMaxBlock) grows the buffer.
const windowSize = 256 << 10

// openWindow opens the regular file at path, of the given size.
func openWindow(path string, size int64) (window, error) {
	f, err := os.Open(path)
	if err != nil {
		return window{}, fileError(path, err)
	}
	return window{path: path, f: f, size: size, buf: make([]byte, windowSize)}, nil
}

// peek returns the next k bytes of the file, or fewer at its end (w.err
// then says why), without moving past them.
func (w *window) peek(k int) []byte {
	if w.n-w.off >= k {
		return w.buf[w.off : w.off+k : w.off+k]
	}
	return w.fill(k)
}

// fill reads until k bytes are in the window or reading stops.
func (w *window) fill(k int) []byte {
	if w.off+k > len(w.buf) {
		buf := w.buf
		if k > len(buf) {
			buf = make([]byte, max(k, 2*len(buf)))
		}
		w.n = copy(buf, w.buf[w.off:w.n])
		w.start += int64(w.off)
		w.buf, w.off = buf, 0
	}
	for w.n-w.off < k && w.err == nil {
		room := min(int64(len(w.buf)-w.n), w.size-w.start-int64(w.n))
		if room <= 0 {
			w.err = io.EOF
			break
		}
		m, err := w.f.Read(w.buf[w.n : w.n+int(room)])
		w.n += m
		if err != nil {
			w.err = err
		} else if m == 0 {
			w.err = io.ErrUnexpectedEOF
		}
	}
	end := min(w.off+k, w.n)
	return w.buf[w.off:end:end]
}

// skip moves past k bytes that peek returned.
func (w *window) skip(k int) { w.off += k }

// pos is the offset in the file reading has got to.
func (w *window) pos() int64 { return w.start + int64(w.off) }

// back moves reading back to p, an offset no earlier than where the last
// peek began.
func (w *window) back(p int64) { w.off = int(p - w.start) }

// seek moves reading to offset p of the file.
func (w *window) seek(p int64) error {
	if _, err := w.f.Seek(p, io.SeekStart); err != nil {
		return fileError(w.path, err)
	}
	w.start, w.off, w.n, w.err = p, 0, 0, nil
	return nil
}

// readErr is the error that stopped reading before the file's end, if any.
func (w *window) readErr() error {
	if w.err == nil || errors.Is(w.err, io.EOF) {
		return nil
	}
	return newError(ErrDamaged, w.err, "%s: cannot read the file: %v", w.path, w.err)
}

func (w *window) Name() string { return w.path }

// Progress returns the fraction of the file read so far.
func (w *window) Progress() float64 {
	if w.size == 0 {
		return 1
	}
	return float64(w.pos()) / float64(w.size)
}

func (w *window) Stats() (Stats, error) { return Stats{}, nil }

// ReadProgress reports the bytes read, for Run.
func (w *window) ReadProgress() Progress {
	return Progress{File: w.path, Files: 1, Bytes: w.size, BytesDone: w.pos()}
}

// close closes the file.
func (w *window) close() {
	if w.f != nil {
		_ = w.f.Close()
		w.f = nil
	}
}

// maxCaplen is libpcap's MAXIMUM_SNAPLEN: no record may say it captured more.
const maxCaplen = 262144

// openPcapFile opens a regular file whose 24-byte header is b. It returns
// nil and no error when the file is better left to libpcap.
func openPcapFile(path string, b []byte, size int64, filter string) (Source, error) {
	order, ok := pcapMagic(b)
	if !ok || len(b) < 24 || order.Uint16(b[4:]) != 2 || order.Uint16(b[6:]) != 4 || size > 1<<40 || size < 24 {
		return nil, nil
	}
	w, err := openWindow(path, size)
	if err != nil {
		return nil, err
	}
	w.skip(len(w.peek(24)))
	s := &pcapSource{
		window: w,
		asLE:   -uint32(b2u(order == binary.LittleEndian)),
		nsec:   order.Uint32(b) == 0xa1b23c4d,
		link:   layers.LinkType(order.Uint32(b[20:]) & 0xffff),
		snap:   order.Uint32(b[16:]),
	}
	if s.snap == 0 || s.snap > maxCaplen {
		s.snap = maxCaplen // pcap_adjust_snapshot
	}
	if filter != "" {
		if s.bpf, err = pcap.NewBPF(dltOf(s.link), maxCaplen, filter); err != nil {
			s.Close()
			return nil, filterError(filter, err)
		}
	}
	return s, nil
}

func (s *pcapSource) Close() {
	s.close()
	if s.err == nil {
		s.err = io.EOF
	}
}

// u32 reads a field of a record header in the file's byte order. Both
// orders are read, and a mask picks one: a branch per field, in the few
// bytes of the frame loop, made its speed depend on where the linker
// happened to place it (docs/performance.md).
func (s *pcapSource) u32(b []byte) uint32 {
	le := binary.LittleEndian.Uint32(b)
	be := bits.ReverseBytes32(le)
	return be ^ (le^be)&s.asLE
}

// b2u is 1 for true, 0 for false.
func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

func (s *pcapSource) Next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	data, ts, wire, link, err := s.nextFrame()
	if err != nil {
		return nil, gopacket.CaptureInfo{}, 0, err
	}
	return data, gopacket.CaptureInfo{Timestamp: time.Unix(0, ts), CaptureLength: len(data), Length: wire}, link, nil
}

// nextFrame is Next without a gopacket.CaptureInfo (see frameSource). wire
// is the record's original length, as the file says.
func (s *pcapSource) nextFrame() (data []byte, ts int64, wire int, link layers.LinkType, err error) {
	for s.err == nil {
		h := s.peek(16)
		if len(h) < 16 {
			s.err = s.readErr()
			switch {
			case s.err != nil:
			case len(h) == 0:
				s.err = io.EOF
			default:
				s.err = newError(ErrTruncated, nil, "%s: file is cut short in the middle of a packet header (truncated capture?)", s.path)
			}
			break
		}
		caplen := s.u32(h[8:])
		if caplen > maxCaplen {
			s.err = newError(ErrDamaged, nil, "%s: damaged capture file: invalid packet capture length %d, bigger than maximum of %d", s.path, caplen, maxCaplen)
			break
		}
		rec := s.peek(16 + int(caplen))
		if len(rec) < 16+int(caplen) {
			if s.err = s.readErr(); s.err == nil {
				s.err = newError(ErrTruncated, nil, "%s: file is cut short in the middle of a packet (truncated capture?)", s.path)
			}
			break
		}
		sec, frac := int64(s.u32(rec)), int64(s.u32(rec[4:]))
		if !s.nsec {
			frac *= 1000
		}
		// time.Unix(sec, frac).UnixNano(), without building the time.Time:
		// both fields are 32-bit, so neither overflows.
		ts, wire = sec*1e9+frac, int(s.u32(rec[12:]))
		data = rec[16:]
		if caplen > s.snap {
			// libpcap cuts such a record (written by old Solaris, or
			// damaged) to the file's snapshot length and skips the rest.
			data = data[:s.snap:s.snap]
		}
		s.skip(len(rec))
		if s.bpf != nil && !s.bpf.Matches(gopacket.CaptureInfo{Timestamp: time.Unix(0, ts), CaptureLength: len(data), Length: wire}, data) {
			continue
		}
		return data, ts, wire, s.link, nil
	}
	return nil, 0, 0, 0, s.err
}
