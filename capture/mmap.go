package capture

import (
	"encoding/binary"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
)

// mmapSource reads a classic pcap file (version 2.4, either byte order,
// micro- or nanosecond timestamps) that is mapped into memory, handing out
// each frame as a slice of the mapping.
//
// It is one of flowtrack's two hand-written readers (with mmapNgSource):
// reading through libpcap costs a cgo call and a copy per frame, the
// largest single cost of a replay (docs/performance-notes-ui.md). Standard
// input and a header that is not plain version 2.4 go
// through libpcap as before. Records are checked as libpcap checks them.
type mmapSource struct {
	mapping
	order binary.ByteOrder
	nsec  bool
	link  layers.LinkType
	bpf   *pcap.BPF
	err   error // sticky
}

// mapping is a capture file mapped into memory and read front to back.
type mapping struct {
	path  string
	data  []byte // the whole file
	off   int    // where reading has got to
	freed int    // the mapping before this offset has been released
}

// mapFile maps the regular file at path, of the given size. It returns
// false, and no error, when the file cannot be mapped (e.g. a file system
// without mmap): libpcap reads it then.
func mapFile(path string, size int64) (mapping, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return mapping{}, false, fileError(path, err)
	}
	defer f.Close()
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return mapping{}, false, nil
	}
	_ = syscall.Madvise(data, syscall.MADV_SEQUENTIAL)
	return mapping{path: path, data: data}, true, nil
}

func (m *mapping) Name() string { return m.path }

// Progress returns the fraction of the file read so far.
func (m *mapping) Progress() float64 {
	if len(m.data) == 0 {
		return 1
	}
	return float64(m.off) / float64(len(m.data))
}

func (m *mapping) Stats() (Stats, error) { return Stats{}, nil }

// progress reports the bytes read, for Run.
func (m *mapping) ReadProgress() Progress {
	return Progress{File: m.path, Files: 1, Bytes: int64(len(m.data)), BytesDone: int64(m.off)}
}

// release lets the pages behind what has been read go, a few MiB at a time,
// so that the process's resident size stays small however large the file
// (the pages stay in the page cache). It keeps the last quarter-window: a
// frame handed out earlier may still be in use until the next read.
func (m *mapping) release() {
	if m.off-m.freed >= releaseEvery+releaseEvery/4 {
		end := (m.off - releaseEvery/4) &^ (os.Getpagesize() - 1)
		_ = syscall.Madvise(m.data[m.freed:end], syscall.MADV_DONTNEED)
		m.freed = end
	}
}

// unmap releases the mapping.
func (m *mapping) unmap() {
	if m.data != nil {
		_ = syscall.Munmap(m.data)
		m.data = nil
	}
}

// releaseEvery is how much of the mapping is read before the pages behind
// it are released (mapping.release).
const releaseEvery = 4 << 20

// maxCaplen is libpcap's MAXIMUM_SNAPLEN: no record may say it captured more.
const maxCaplen = 262144

// openMmap maps a regular file whose 24-byte header is b. It returns nil
// and no error when the file is better left to libpcap.
func openMmap(path string, b []byte, size int64, filter string) (Source, error) {
	order, ok := pcapMagic(b)
	if !ok || len(b) < 24 || order.Uint16(b[4:]) != 2 || order.Uint16(b[6:]) != 4 || size > 1<<40 || size < 24 {
		return nil, nil
	}
	m, ok, err := mapFile(path, size)
	if !ok {
		return nil, err
	}
	magic := order.Uint32(m.data)
	m.off = 24
	s := &mmapSource{
		mapping: m,
		order:   order,
		nsec:    magic == 0xa1b23c4d,
		link:    layers.LinkType(order.Uint32(m.data[20:]) & 0xffff),
	}
	if filter != "" {
		if s.bpf, err = pcap.NewBPF(dltOf(s.link), maxCaplen, filter); err != nil {
			s.Close()
			return nil, filterError(filter, err)
		}
	}
	return s, nil
}

func (s *mmapSource) Close() {
	s.unmap()
	if s.err == nil {
		s.err = io.EOF
	}
}

func (s *mmapSource) Next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	for s.err == nil {
		rest := len(s.data) - s.off
		if rest == 0 {
			s.err = io.EOF
			break
		}
		if rest < 16 {
			s.err = newError(ErrTruncated, nil, "%s: file is cut short in the middle of a packet header (truncated capture?)", s.path)
			break
		}
		h := s.data[s.off : s.off+16]
		caplen := s.order.Uint32(h[8:])
		if caplen > maxCaplen {
			s.err = newError(ErrDamaged, nil, "%s: damaged capture file: invalid packet capture length %d, bigger than maximum of %d", s.path, caplen, maxCaplen)
			break
		}
		if int(caplen) > rest-16 {
			s.err = newError(ErrTruncated, nil, "%s: file is cut short in the middle of a packet (truncated capture?)", s.path)
			break
		}
		sec, frac := int64(s.order.Uint32(h)), int64(s.order.Uint32(h[4:]))
		if !s.nsec {
			frac *= 1000
		}
		ci := gopacket.CaptureInfo{
			Timestamp:     time.Unix(sec, frac),
			CaptureLength: int(caplen),
			Length:        int(s.order.Uint32(h[12:])),
		}
		data := s.data[s.off+16 : s.off+16+int(caplen) : s.off+16+int(caplen)]
		s.off += 16 + int(caplen)
		s.release()
		if s.bpf != nil && !s.bpf.Matches(ci, data) {
			continue
		}
		return data, ci, s.link, nil
	}
	return nil, gopacket.CaptureInfo{}, 0, s.err
}
