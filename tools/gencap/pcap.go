package main

import (
	"bufio"
	"encoding/binary"
	"io"
)

// Frame layout constants.
const (
	ethLen    = 14
	ipv4Len   = 20
	ipv6Len   = 40
	tcpLen    = 20
	minFrame  = 60 // Ethernet minimum without FCS: shorter frames are padded
	maxSnap   = 65535
	linkEther = 1
)

// TCP flags.
const (
	fFIN = 0x01
	fSYN = 0x02
	fRST = 0x04
	fPSH = 0x08
	fACK = 0x10
)

// TCP option layouts a segment carries.
const (
	optNone    = iota
	optTS      // NOP NOP TS: 12 bytes
	optSYNFull // MSS SACK_PERM TS NOP WS (Linux): 20 bytes
	optSYNWin  // MSS NOP WS NOP NOP SACK_PERM (Windows): 12 bytes
	optSYNMSS  // MSS only: 4 bytes
)

var optLen = [...]int{optNone: 0, optTS: 12, optSYNFull: 20, optSYNWin: 12, optSYNMSS: 4}

// pcapWriter writes classic pcap records (little-endian, Ethernet).
type pcapWriter struct {
	w       *bufio.Writer
	nano    bool
	snaplen int
	zero    [minFrame]byte
}

func newPcapWriter(w io.Writer, snaplen int, nano bool) (*pcapWriter, error) {
	if snaplen <= 0 || snaplen > maxSnap {
		snaplen = maxSnap
	}
	p := &pcapWriter{w: bufio.NewWriterSize(w, 1<<20), nano: nano, snaplen: snaplen}
	var h [24]byte
	magic := uint32(0xa1b2c3d4)
	if nano {
		magic = 0xa1b23c4d
	}
	binary.LittleEndian.PutUint32(h[0:], magic)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], uint32(snaplen))
	binary.LittleEndian.PutUint32(h[20:], linkEther)
	_, err := p.w.Write(h[:])
	return p, err
}

// trunc returns the timestamp ts (ns since the epoch) truncated to the
// file's precision.
func (p *pcapWriter) trunc(ts int64) int64 {
	if p.nano {
		return ts
	}
	return ts - ts%1000
}

// record writes one record: hdr holds the record header's room (16 bytes)
// followed by the frame's headers; payload follows them, then zero padding
// up to pad bytes, all cut at the snapshot length.
func (p *pcapWriter) record(ts int64, hdr []byte, payload []byte, pad int) {
	frame := len(hdr) - 16
	orig := frame + len(payload) + pad
	capl := min(orig, p.snaplen)
	sec, frac := ts/1e9, ts%1e9
	if !p.nano {
		frac /= 1000
	}
	binary.LittleEndian.PutUint32(hdr[0:], uint32(sec))
	binary.LittleEndian.PutUint32(hdr[4:], uint32(frac))
	binary.LittleEndian.PutUint32(hdr[8:], uint32(capl))
	binary.LittleEndian.PutUint32(hdr[12:], uint32(orig))
	if capl <= frame {
		p.w.Write(hdr[:16+capl])
		return
	}
	p.w.Write(hdr)
	capl -= frame
	if capl <= len(payload) {
		p.w.Write(payload[:capl])
		return
	}
	p.w.Write(payload)
	p.w.Write(p.zero[:capl-len(payload)])
}

func (p *pcapWriter) flush() error { return p.w.Flush() }

// pattern holds the bytes payloads are cut from, with prefix sums of its
// 16-bit words at even and odd offsets so that a payload's contribution to
// the TCP checksum costs O(1).
type pattern struct {
	b        []byte
	even     []uint64 // even[k]: sum of words b[2i:2i+2] for i < k
	odd      []uint64 // odd[k]: sum of words b[2i+1:2i+3] for i < k
	serverAt int      // stream offset of the response text
}

const (
	patMod = 1 << 16 // stream positions wrap at this
	patLen = patMod + maxSnap
)

func newPattern(fill func([]byte)) *pattern {
	p := &pattern{b: make([]byte, patLen+2), serverAt: 8192}
	fill(p.b)
	req := "GET /static/app.js?v=1 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n" +
		"Accept: */*\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\nCookie: session=0123456789abcdef\r\n\r\n"
	resp := "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 48213\r\n" +
		"Connection: keep-alive\r\nCache-Control: max-age=3600\r\n\r\n<!doctype html><html><head><title>example</title>"
	for i := 0; i < 4096; i += len(req) {
		copy(p.b[i:4096], req)
	}
	for i := 8192; i < 8192+2048; i += len(resp) {
		copy(p.b[i:8192+2048], resp)
	}
	n := len(p.b) / 2
	p.even = make([]uint64, n+1)
	p.odd = make([]uint64, n)
	for i := 0; i < n; i++ {
		p.even[i+1] = p.even[i] + (uint64(p.b[2*i])<<8 | uint64(p.b[2*i+1]))
		if i+1 < n {
			p.odd[i+1] = p.odd[i] + (uint64(p.b[2*i+1])<<8 | uint64(p.b[2*i+2]))
		}
	}
	return p
}

// at returns the payload of length n at stream position pos (wrapped), and
// its sum of 16-bit words as the checksum sees it (starting at an even
// offset of the segment).
func (p *pattern) at(pos uint32, n int) ([]byte, uint64) {
	off := int(pos % patMod)
	b := p.b[off : off+n]
	m := n / 2
	var s uint64
	if off%2 == 0 {
		s = p.even[off/2+m] - p.even[off/2]
	} else {
		s = p.odd[off/2+m] - p.odd[off/2]
	}
	if n%2 == 1 {
		s += uint64(b[n-1]) << 8
	}
	return b, s
}

// sum16 adds b's big-endian 16-bit words (b has even length).
func sum16(b []byte) uint64 {
	var s uint64
	for i := 0; i+1 < len(b); i += 2 {
		s += uint64(b[i])<<8 | uint64(b[i+1])
	}
	return s
}

func fold(s uint64) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
