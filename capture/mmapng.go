package capture

import (
	"encoding/binary"
	"io"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
)

// pcapngSource reads a pcapng file through a window, handing out the frame
// of each Enhanced Packet Block as a slice of it, good until the next call
// to Next.
//
// Like pcapSource, it exists because libpcap reads pcapng with a cgo call
// per frame, the largest cost of reading a replay, and gopacket's pure Go
// pcapng reader is no faster (docs/performance-notes-ui.md has the
// profile's figures). It reads what libpcap reads alone —
// one section, interfaces of one link type and snapshot length — in its
// common shape: decimal timestamp resolutions, Enhanced Packet Blocks. At
// the first block it does not take (a second section, a Simple or obsolete
// Packet Block, a timestamp offset, an interface of another link type,
// options or a record that libpcap would refuse or truncate, a file cut
// short) it hands the rest of the file to libpcap, which skips the packets
// already read, then reads on and names what is wrong as it always has.
type pcapngSource struct {
	window
	order   binary.ByteOrder
	ifs     []ngIface
	first   layers.LinkType // the first interface's, as libpcap read it at open
	read    uint64          // packets handed out
	rest    Source          // libpcap's reader, once it has taken over
	ifIndex int             // the interface of the frame handed out last
	err     error           // sticky
}

// ngIface is what an Interface Description Block says that matters here.
type ngIface struct {
	link    layers.LinkType
	snaplen uint32
	units   uint64 // timestamp units per second: 10^n, n <= 9
	scale   int64  // nanoseconds per unit
}

// Block types and options read here.
const (
	ngSHB = 0x0a0d0d0a
	ngIDB = 1
	ngPB  = 2 // obsolete Packet Block
	ngSPB = 3
	ngEPB = 6

	ngMaxBlock = 16 << 20 // libpcap's largest block

	ngOptEnd      = 0
	ngOptTSResol  = 9
	ngOptTSOffset = 14
)

// openPcapngFile opens a regular pcapng file whose first bytes are b. It returns
// nil and no error when the file is better left to libpcap from the start.
func openPcapngFile(path string, b []byte, size int64) (Source, error) {
	if len(b) < 12 || size > 1<<40 {
		return nil, nil
	}
	var order binary.ByteOrder
	switch binary.LittleEndian.Uint32(b[8:]) {
	case 0x1a2b3c4d:
		order = binary.LittleEndian
	case 0x4d3c2b1a:
		order = binary.BigEndian
	default:
		return nil, nil
	}
	// libpcap checks the section header and the first interfaces when it
	// opens a file: what it refuses there, it names as before.
	h, err := pcap.OpenOffline(path)
	if err != nil {
		return nil, nil
	}
	first := h.LinkType()
	h.Close()
	w, err := openWindow(path, size)
	if err != nil {
		return nil, err
	}
	s := &pcapngSource{window: w, order: order, first: first}
	// The section header: version 1, and a length that fits.
	if _, body, ok := s.block(ngSHB); !ok || len(body) < 16 || order.Uint16(body[4:]) != 1 {
		s.close()
		return nil, nil
	}
	return s, nil
}

// block returns the type and body of the block where reading has got to,
// if it is well formed (and of type want, if want is not 0), and moves
// past it.
func (s *pcapngSource) block(want uint32) (uint32, []byte, bool) {
	head := s.peek(12)
	if len(head) < 12 {
		return 0, nil, false
	}
	typ, n := s.order.Uint32(head), s.order.Uint32(head[4:])
	if want != 0 && typ != want || n < 12 || n%4 != 0 || n > ngMaxBlock {
		return 0, nil, false
	}
	b := s.peek(int(n))
	if len(b) < int(n) || s.order.Uint32(b[n-4:]) != n {
		return 0, nil, false
	}
	s.skip(int(n))
	return typ, b[8 : n-4], true
}

// Progress returns the fraction of the file read so far.
func (s *pcapngSource) Progress() float64 {
	if r, ok := s.rest.(interface{ Progress() float64 }); ok {
		return r.Progress()
	}
	return s.window.Progress()
}

func (s *pcapngSource) Close() {
	if s.rest != nil {
		s.rest.Close()
	}
	s.close()
	if s.err == nil {
		s.err = io.EOF
	}
}

func (s *pcapngSource) Next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	if data, t, wire, link, ok := s.own(); ok {
		ci := gopacket.CaptureInfo{Timestamp: t, CaptureLength: len(data), Length: wire, InterfaceIndex: s.ifIndex}
		return data, ci, link, nil
	}
	if s.rest != nil {
		return s.rest.Next()
	}
	return nil, gopacket.CaptureInfo{}, 0, s.err
}

// nextFrame is Next without a gopacket.CaptureInfo (see frameSource).
func (s *pcapngSource) nextFrame() (data []byte, ts int64, wire int, link layers.LinkType, err error) {
	if data, t, wire, link, ok := s.own(); ok {
		return data, t.UnixNano(), wire, link, nil
	}
	if s.rest != nil {
		data, ci, link, err := s.rest.Next()
		return data, ci.Timestamp.UnixNano(), ci.Length, link, err
	}
	return nil, 0, 0, 0, s.err
}

// own reads the next frame this reader hands out itself, its capture time
// and its original length; false once it has stopped (s.err) or handed the
// file over to libpcap (s.rest).
func (s *pcapngSource) own() (data []byte, t time.Time, wire int, link layers.LinkType, ok bool) {
	for s.err == nil && s.rest == nil {
		if len(s.peek(1)) == 0 && s.readErr() == nil {
			s.err = io.EOF
			break
		}
		start := s.pos()
		typ, body, ok := s.block(0)
		if !ok {
			s.handOver()
			break
		}
		switch typ {
		case ngEPB:
			data, t, wire, link, ok := s.packet(body)
			if !ok {
				s.back(start)
				s.handOver()
				continue
			}
			s.read++
			return data, t, wire, link, true
		case ngIDB:
			if !s.iface(body) {
				s.back(start)
				s.handOver()
			}
		case ngSHB, ngPB, ngSPB:
			s.back(start)
			s.handOver()
		}
		// Any other block (statistics, name resolution, custom) says
		// nothing about packets.
	}
	return nil, time.Time{}, 0, 0, false
}

// packet reads an Enhanced Packet Block's body, if libpcap would hand out
// its frame as it stands.
func (s *pcapngSource) packet(b []byte) (data []byte, t time.Time, wire int, link layers.LinkType, ok bool) {
	if len(b) < 20 {
		return nil, time.Time{}, 0, 0, false
	}
	id, caplen := s.order.Uint32(b), s.order.Uint32(b[12:])
	if uint64(id) >= uint64(len(s.ifs)) || caplen > maxCaplen || uint64(caplen) > uint64(len(b)-20) {
		return nil, time.Time{}, 0, 0, false
	}
	ifc := &s.ifs[id]
	if ifc.snaplen != 0 && caplen > ifc.snaplen {
		return nil, time.Time{}, 0, 0, false // libpcap would cut it to the snapshot length
	}
	ts := uint64(s.order.Uint32(b[4:]))<<32 | uint64(s.order.Uint32(b[8:]))
	t = time.Unix(int64(ts/ifc.units), int64(ts%ifc.units)*ifc.scale)
	s.ifIndex = int(id)
	return b[20 : 20+caplen : 20+caplen], t, int(s.order.Uint32(b[16:])), ifc.link, true
}

// iface reads an Interface Description Block's body; false if it has what
// this reader leaves to libpcap (a binary or finer than nanosecond
// timestamp resolution, a timestamp offset).
func (s *pcapngSource) iface(b []byte) bool {
	if len(b) < 8 {
		return false
	}
	ifc := ngIface{link: layers.LinkType(s.order.Uint16(b)), snaplen: s.order.Uint32(b[4:]), units: 1_000_000, scale: 1000}
	// Options as libpcap checks them, or stricter: anything odd is libpcap's
	// to judge.
	resol := false
	for opts := b[8:]; len(opts) > 0; {
		if len(opts) < 4 {
			return false
		}
		code, n := s.order.Uint16(opts), int(s.order.Uint16(opts[2:]))
		if 4+n > len(opts) {
			return false
		}
		switch code {
		case ngOptEnd:
			return n == 0 && s.addIface(ifc)
		case ngOptTSResol:
			if resol || n != 1 || opts[4]&0x80 != 0 || opts[4] > 9 {
				return false
			}
			resol = true
			ifc.units, ifc.scale = 1, 1_000_000_000
			for range opts[4] {
				ifc.units *= 10
				ifc.scale /= 10
			}
		case ngOptTSOffset:
			return false
		}
		next := 4 + (n+3)&^3
		if next > len(opts) {
			return false
		}
		opts = opts[next:]
	}
	return s.addIface(ifc)
}

// addIface adds an interface. It returns false for one whose link type or
// snapshot length differs from the first's: libpcap gives up there, and
// pcapgo reads on (fileSource), which judges the blocks that follow (the
// options of packets, too) by its own rules.
func (s *pcapngSource) addIface(ifc ngIface) bool {
	if len(s.ifs) > 0 && (ifc.link != s.ifs[0].link || ifc.snaplen != s.ifs[0].snaplen) {
		return false
	}
	s.ifs = append(s.ifs, ifc)
	return true
}

// handOver gives the file to libpcap (fileSource, which turns to pcapgo
// where libpcap gives up), past the packets already handed out.
func (s *pcapngSource) handOver() {
	h, err := pcap.OpenOffline(s.path)
	if err != nil {
		s.err = libpcapOpenError(s.path, err)
		return
	}
	src, err := newFileSource(s.path, h, "", true, true)
	if err != nil {
		s.err = err
		return
	}
	for i := uint64(0); i < s.read; i++ {
		if _, _, _, err := src.Next(); err != nil {
			src.Close()
			s.err = readError(s.path, err)
			return
		}
	}
	s.rest = src
}
