// Command bench-baseline is the bare loop that scripts/bench.sh measures
// flowtrack against: it walks the records of a classic pcap file with
// encoding/binary, takes the 4-tuple of every TCP segment over Ethernet
// (optionally 802.1Q-tagged) and IPv4 or IPv6, and counts it in a table
// keyed by the 4-tuple, the same for both directions. No decoding
// library, no state machine, no output but a summary line: the least work
// any 4-tuple tracker must do.
//
// It has two tables, behind the same reader. -table map (the default) is
// a plain Go map. -table open is what the fastest hand-written tracker
// would use: a flat, power-of-two table of small slots with no pointers
// (a hash tag, the count and the key), probed linearly, the 4-tuple
// compared in the slot, so that a packet costs one cache miss. Both read
// the file through one buffer: a memory mapping was slower here
// (docs/performance.md).
//
// Usage:
//
//	bench-baseline [-table map|open] FILE.pcap
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// key is a 4-tuple, the lower endpoint first; IPv4 addresses fill the
// first four bytes.
type key struct {
	a, b   [16]byte
	pa, pb uint16
}

// counter counts packets per 4-tuple.
type counter interface {
	add(k key)
	len() int
}

// mapCounter is a plain Go map.
type mapCounter map[key]uint32

func (m mapCounter) add(k key) { m[k]++ }
func (m mapCounter) len() int  { return len(m) }

// stats is what a walk counts.
type stats struct {
	packets, tcp, other uint64
	conns               counter
}

func main() {
	table := flag.String("table", "map", "the table that counts the 4-tuples: map (a Go map) or open (open addressing)")
	flag.Usage = func() { fmt.Fprintln(os.Stderr, "usage: bench-baseline [-table map|open] FILE.pcap") }
	flag.Parse()
	if flag.NArg() != 1 || *table != "map" && *table != "open" {
		flag.Usage()
		os.Exit(2)
	}
	var c counter = mapCounter{}
	if *table == "open" {
		c = newOpenTable()
	}
	st, err := walkFile(flag.Arg(0), c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-baseline:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "bench-baseline: %d packets, %d TCP, %d other, %d 4-tuples (%s table)\n",
		st.packets, st.tcp, st.other, st.conns.len(), *table)
}

// walkFile walks the capture file at path, counting into c.
func walkFile(path string, c counter) (stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return stats{}, err
	}
	defer f.Close()
	return walk(f, c)
}

// walk reads a classic pcap stream (either byte order, micro- or
// nanosecond timestamps; Ethernet link type).
func walk(r io.Reader, c counter) (stats, error) {
	st := stats{conns: c}
	br := bufio.NewReaderSize(r, 1<<20)
	var gh [24]byte
	if _, err := io.ReadFull(br, gh[:]); err != nil {
		return st, fmt.Errorf("pcap header: %w", err)
	}
	bo, err := fileHeader(gh[:])
	if err != nil {
		return st, err
	}
	var rh [16]byte
	for {
		if _, err := io.ReadFull(br, rh[:]); err != nil {
			if err == io.EOF {
				return st, nil
			}
			return st, fmt.Errorf("record %d: %w", st.packets, err)
		}
		n := int(bo.Uint32(rh[8:]))
		frame, err := br.Peek(n)
		if err != nil {
			if n <= br.Size() {
				return st, fmt.Errorf("record %d: %w", st.packets, err)
			}
			// Larger than the buffer: skip it uncounted as TCP.
			frame = nil
		}
		st.count(frame)
		if _, err := br.Discard(n); err != nil {
			return st, fmt.Errorf("record %d: %w", st.packets, err)
		}
	}
}

// fileHeader checks a pcap file header and returns its byte order.
func fileHeader(gh []byte) (binary.ByteOrder, error) {
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(gh) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return nil, errors.New("not a classic pcap file (pcapng is not read)")
	}
	if lt := bo.Uint32(gh[20:]) & 0xffff; lt != 1 {
		return nil, fmt.Errorf("link type %d, not Ethernet", lt)
	}
	return bo, nil
}

// count counts one frame.
func (st *stats) count(frame []byte) {
	st.packets++
	if k, ok := tuple(frame); ok {
		st.tcp++
		st.conns.add(k)
	} else {
		st.other++
	}
}

// tuple returns the 4-tuple of an Ethernet frame carrying TCP.
func tuple(f []byte) (key, bool) {
	var k key
	if len(f) < 14 {
		return k, false
	}
	et := binary.BigEndian.Uint16(f[12:])
	p := f[14:]
	for (et == 0x8100 || et == 0x88a8) && len(p) >= 4 {
		et = binary.BigEndian.Uint16(p[2:])
		p = p[4:]
	}
	var tcp []byte
	switch et {
	case 0x0800:
		if len(p) < 20 || p[9] != 6 {
			return k, false
		}
		if off := binary.BigEndian.Uint16(p[6:]) & 0x1fff; off != 0 {
			return k, false
		}
		ihl := int(p[0]&0x0f) * 4
		if ihl < 20 || len(p) < ihl+4 {
			return k, false
		}
		copy(k.a[:4], p[12:16])
		copy(k.b[:4], p[16:20])
		tcp = p[ihl:]
	case 0x86dd:
		if len(p) < 44 || p[6] != 6 {
			return k, false
		}
		copy(k.a[:], p[8:24])
		copy(k.b[:], p[24:40])
		tcp = p[40:]
	default:
		return k, false
	}
	k.pa = binary.BigEndian.Uint16(tcp)
	k.pb = binary.BigEndian.Uint16(tcp[2:])
	if c := compare(k.a, k.b); c > 0 || c == 0 && k.pa > k.pb {
		k.a, k.b = k.b, k.a
		k.pa, k.pb = k.pb, k.pa
	}
	return k, true
}

func compare(a, b [16]byte) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}
