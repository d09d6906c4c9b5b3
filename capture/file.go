package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
	"github.com/gopacket/gopacket/pcapgo"
)

// File magic numbers.
var (
	magicGzip   = []byte{0x1f, 0x8b}
	magicPcapng = []byte{0x0a, 0x0d, 0x0d, 0x0a}
)

// pcapMagic reports whether b starts with one of the four pcap magic numbers
// (micro- or nanosecond timestamps, either byte order), and its byte order.
func pcapMagic(b []byte) (binary.ByteOrder, bool) {
	if len(b) < 4 {
		return nil, false
	}
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		return binary.LittleEndian, true
	case 0xd4c3b2a1, 0x4d3cb2a1:
		return binary.BigEndian, true
	}
	return nil, false
}

// compressedAs names the compression format b starts with, if any.
func compressedAs(b []byte) string {
	switch {
	case bytes.HasPrefix(b, magicGzip):
		return "gzip"
	case bytes.HasPrefix(b, []byte("BZh")):
		return "bzip2"
	case bytes.HasPrefix(b, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return "xz"
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	case bytes.HasPrefix(b, []byte("PK\x03\x04")):
		return "zip"
	}
	return ""
}

// checkHeader looks at the first bytes of a file (up to 24) and returns an
// error if they are not the start of a pcap or pcapng file that libpcap can
// be trusted to read.
func checkHeader(path string, b []byte) error {
	if len(b) == 0 {
		return newError(ErrNotCapture, nil, "%s is empty, not a pcap or pcapng file", path)
	}
	if bytes.HasPrefix(b, magicPcapng) {
		return nil
	}
	order, ok := pcapMagic(b)
	if !ok {
		if c := compressedAs(b); c != "" {
			return newError(ErrNotCapture, nil, "%s is %s-compressed: decompress it first", path, c)
		}
		return newError(ErrNotCapture, nil, "%s is not a pcap or pcapng file", path)
	}
	if len(b) < 24 {
		return newError(ErrTruncated, nil, "%s: file is cut short in its header (truncated capture?)", path)
	}
	// The link-type field's bits 16-25 are reserved and must be zero; a
	// libpcap older than 1.10.2 ignores them, tshark rejects the file.
	if lt := order.Uint32(b[20:24]); lt&0x03ff0000 != 0 {
		return newError(ErrDamaged, nil, "%s: the pcap header's link-type field 0x%08x has reserved bits set: damaged file", path, lt)
	}
	return nil
}

// OpenFile opens a pcap or pcapng capture file (micro- or nanosecond
// timestamps, either byte order, gzip-compressed or not) for reading.
// filter, if not "", is a BPF filter expression (pcap-filter(7)) that
// frames must match.
//
// A classic pcap file, and a pcapng file in its common shape, is read by
// a reader of flowtrack's own (pcapSource, pcapngSource); other files are
// read by libpcap. A pcapng file whose interfaces have different link
// types or snapshot lengths, which libpcap refuses, and a gzip-compressed
// file are read by gopacket's pcapgo instead.
func OpenFile(path, filter string) (Source, error) {
	src, err := openFile(path, filter)
	if err != nil {
		return nil, err
	}
	if lt, ok := firstLinkType(src); ok && !CanDecode(lt) {
		src.Close()
		return nil, linkTypeError(src.Name(), lt)
	}
	return src, nil
}

// firstLinkType returns the link type of a file's header (a pcapng file's
// first interface); frames of an interface of another link type that
// flowtrack cannot decode are counted by Run as undecoded.
func firstLinkType(src Source) (layers.LinkType, bool) {
	switch s := src.(type) {
	case *pcapSource:
		return s.link, true
	case *pcapngSource:
		return s.first, true
	case *fileSource:
		switch {
		case s.h != nil:
			return s.link, true
		case s.alt != nil && s.alt.pr != nil:
			return s.alt.pr.LinkType(), true
		case s.alt != nil && s.alt.ng != nil:
			return s.alt.ng.LinkType(), true
		}
	}
	return 0, false
}

func openFile(path, filter string) (Source, error) {
	if path == "" {
		return nil, newError(ErrNotCapture, nil, "no capture file named")
	}
	if path == "-" { // standard input, as tcpdump -r - reads it: libpcap only
		h, err := pcap.OpenOffline(path)
		if err != nil {
			return nil, libpcapOpenError("standard input", err)
		}
		return newFileSource("-", h, filter, false, false)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fileError(path, err)
	}
	if fi.IsDir() {
		return nil, newError(ErrNotCapture, nil, "%s is a directory, not a capture file", path)
	}
	var head []byte
	if fi.Mode().IsRegular() {
		f, err := os.Open(path)
		if err != nil {
			return nil, fileError(path, err)
		}
		head = make([]byte, 24)
		n, err := io.ReadFull(f, head)
		f.Close()
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return nil, fileError(path, err)
		}
		head = head[:n]
		if bytes.HasPrefix(head, magicGzip) {
			return openGzip(path, filter)
		}
		if err := checkHeader(path, head); err != nil {
			return nil, err
		}
		if src, err := openPcapFile(path, head, fi.Size(), filter); src != nil || err != nil {
			return src, err
		}
		if filter == "" && bytes.HasPrefix(head, magicPcapng) {
			if src, err := openPcapngFile(path, head, fi.Size()); src != nil || err != nil {
				return src, err
			}
		}
	}
	h, err := pcap.OpenOffline(path)
	if err != nil {
		return nil, libpcapOpenError(path, err)
	}
	return newFileSource(path, h, filter, bytes.HasPrefix(head, magicPcapng), fi.Mode().IsRegular())
}

func newFileSource(path string, h *pcap.Handle, filter string, pcapng, regular bool) (Source, error) {
	s := &fileSource{path: path, h: h, link: h.LinkType(), filter: filter, pcapng: pcapng, regular: regular}
	if filter != "" {
		var err error
		if s.bpf, err = h.NewBPF(filter); err != nil {
			h.Close()
			return nil, filterError(filter, err)
		}
	}
	return s, nil
}

func fileError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return newError(fs.ErrNotExist, err, "%s: no such file", path)
	case errors.Is(err, fs.ErrPermission):
		return newError(fs.ErrPermission, err, "%s: permission denied: cannot read the file", path)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return newError(nil, err, "%s: cannot read the file: %v", path, pe.Err)
	}
	return newError(nil, err, "%s: cannot read the file: %v", path, err)
}

func libpcapOpenError(path string, err error) error {
	msg := err.Error()
	if strings.Contains(msg, "truncated") {
		return newError(ErrTruncated, err, "%s: file is cut short in its header (truncated capture?)", path)
	}
	if strings.Contains(msg, "unknown file format") {
		return newError(ErrNotCapture, err, "%s is not a pcap or pcapng file", path)
	}
	return newError(ErrDamaged, err, "%s: libpcap cannot read it: %s", path, msg)
}

func filterError(filter string, err error) error {
	return newError(ErrFilter, err, "invalid capture filter %q: %v", filter, err)
}

// readError turns a reader's error in the middle of a file into an *Error.
func readError(path string, err error) error {
	return readErrorIn(path, "the middle of a packet", err)
}

func readErrorIn(path, where string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "truncated") {
		return newError(ErrTruncated, err, "%s: file is cut short in %s (truncated capture?)", path, where)
	}
	return newError(ErrDamaged, err, "%s: damaged capture file: %v", path, err)
}

// fileSource reads a capture file with libpcap, and switches to pcapgo if
// libpcap gives up on a pcapng file with mixed interfaces.
type fileSource struct {
	path    string
	h       *pcap.Handle
	link    layers.LinkType
	filter  string
	bpf     *pcap.BPF // applied here rather than in libpcap, so that read counts every record
	pcapng  bool
	regular bool
	read    uint64 // records libpcap returned
	alt     *goReader
	err     error // sticky
}

func (s *fileSource) Name() string          { return s.path }
func (s *fileSource) Stats() (Stats, error) { return Stats{}, nil }

func (s *fileSource) Close() {
	if s.h != nil {
		s.h.Close()
	}
	if s.alt != nil {
		s.alt.close()
	}
	if s.err == nil {
		s.err = io.EOF
	}
}

func (s *fileSource) Next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	if s.err != nil {
		return nil, gopacket.CaptureInfo{}, 0, s.err
	}
	if s.alt != nil {
		data, ci, link, err := s.alt.next()
		if err != nil {
			s.err = err
		}
		return data, ci, link, err
	}
	for {
		data, ci, err := s.h.ZeroCopyReadPacketData()
		if err == nil {
			s.read++
			if s.bpf != nil && !s.bpf.Matches(ci, data) {
				continue
			}
			return data, ci, s.link, nil
		}
		if errors.Is(err, io.EOF) {
			s.err = io.EOF
			return nil, ci, 0, io.EOF
		}
		msg := err.Error()
		if errors.Is(err, pcap.NextErrorReadError) {
			msg = s.h.Error().Error()
		}
		if s.pcapng && s.regular && strings.Contains(msg, "different from") {
			// libpcap reads a pcapng file only while all its interfaces
			// have the same link type and snapshot length.
			if err := s.fallBack(); err != nil {
				s.err = err
				return nil, ci, 0, err
			}
			return s.Next()
		}
		s.err = readError(s.path, errors.New(msg))
		return nil, ci, 0, s.err
	}
}

// fallBack reopens the file with pcapgo and skips the records libpcap
// already returned.
func (s *fileSource) fallBack() error {
	s.h.Close()
	s.h = nil
	f, err := os.Open(s.path)
	if err != nil {
		return fileError(s.path, err)
	}
	g, err := newGoReader(s.path, f, bufio.NewReader(f), s.filter)
	if err != nil {
		f.Close()
		return err
	}
	for i := uint64(0); i < s.read; i++ {
		if _, _, _, err := g.readRecord(); err != nil {
			g.close()
			return readError(s.path, err)
		}
	}
	s.alt = g
	return nil
}

// openGzip reads a gzip-compressed capture file with pcapgo.
func openGzip(path, filter string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileError(path, err)
	}
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		f.Close()
		return nil, readError(path, fmt.Errorf("gzip: %w", err))
	}
	g, err := newGoReader(path, f, bufio.NewReader(zr), filter)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fileSource{path: path, alt: g, filter: filter}, nil
}

// goReader reads a capture with gopacket's pure Go readers: a pcapng file
// of mixed link types (each packet's link type is its interface's) or a
// decompressed stream. It applies the BPF filter itself, compiled once per
// link type.
type goReader struct {
	path   string
	f      *os.File
	ng     *pcapgo.NgReader
	pr     *pcapgo.Reader
	filter string
	bpf    map[layers.LinkType]*pcap.BPF
}

func newGoReader(path string, f *os.File, r *bufio.Reader, filter string) (*goReader, error) {
	g := &goReader{path: path, f: f, filter: filter}
	head, perr := r.Peek(24)
	if perr != nil && perr != io.EOF {
		return nil, readErrorIn(path, "its header", perr)
	}
	if !bytes.HasPrefix(head, magicPcapng) {
		if _, ok := pcapMagic(head); !ok {
			return nil, newError(ErrNotCapture, nil, "%s is gzip-compressed, but what it holds is not a pcap or pcapng file", path)
		}
		if err := checkHeader(path, head); err != nil {
			return nil, err
		}
	}
	var err error
	if bytes.HasPrefix(head, magicPcapng) {
		g.ng, err = pcapgo.NewNgReader(r, pcapgo.NgReaderOptions{WantMixedLinkType: true})
	} else {
		g.pr, err = pcapgo.NewReader(r)
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, newError(ErrTruncated, err, "%s: file is cut short in its header (truncated capture?)", path)
		}
		return nil, newError(ErrDamaged, err, "%s: cannot read it: %v", path, err)
	}
	if filter != "" {
		// Check the filter now, for the link type known up front.
		lt := layers.LinkTypeEthernet
		if g.pr != nil {
			lt = g.pr.LinkType()
		}
		if _, err := g.bpfFor(lt); err != nil {
			return nil, err
		}
	}
	return g, nil
}

func (g *goReader) close() {
	if g.f != nil {
		g.f.Close()
		g.f = nil
	}
}

// dltOf maps a file's LINKTYPE_ value to the DLT_ value libpcap's filter
// compiler expects, where they differ on this platform.
func dltOf(lt layers.LinkType) layers.LinkType {
	if lt == layers.LinkTypeRaw {
		return linkTypeRawAlt1 // LINKTYPE_RAW 101 is DLT_RAW 12 on Linux
	}
	return lt
}

func (g *goReader) bpfFor(lt layers.LinkType) (*pcap.BPF, error) {
	if b, ok := g.bpf[lt]; ok {
		return b, nil
	}
	b, err := pcap.NewBPF(dltOf(lt), 262144, g.filter)
	if err != nil {
		return nil, newError(ErrFilter, err, "invalid capture filter %q for %s's link type %s: %v", g.filter, g.path, lt, err)
	}
	if g.bpf == nil {
		g.bpf = make(map[layers.LinkType]*pcap.BPF)
	}
	g.bpf[lt] = b
	return b, nil
}

// readRecord reads the next record, filter or not.
func (g *goReader) readRecord() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	if g.ng != nil {
		data, ci, err := g.ng.ZeroCopyReadPacketData()
		if err != nil {
			return nil, ci, 0, err
		}
		var lt layers.LinkType
		if len(ci.AncillaryData) > 0 {
			lt, _ = ci.AncillaryData[0].(layers.LinkType)
		}
		return data, ci, lt, nil
	}
	data, ci, err := g.pr.ZeroCopyReadPacketData()
	return data, ci, g.pr.LinkType(), err
}

func (g *goReader) next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	for {
		data, ci, lt, err := g.readRecord()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, ci, 0, io.EOF
			}
			return nil, ci, 0, readError(g.path, err)
		}
		if g.filter != "" {
			b, err := g.bpfFor(lt)
			if err != nil {
				return nil, ci, 0, err
			}
			if !b.Matches(ci, data) {
				continue
			}
		}
		return data, ci, lt, nil
	}
}
