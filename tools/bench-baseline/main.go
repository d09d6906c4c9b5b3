// Command bench-baseline is the "bare map loop" that scripts/bench.sh
// measures flowtrack against: it walks the records of a classic pcap file
// with encoding/binary, takes the 4-tuple of every TCP segment over
// Ethernet (optionally 802.1Q-tagged) and IPv4 or IPv6, and counts it in a
// plain Go map keyed by the 4-tuple, the same for both directions. No
// decoding library, no state machine, no output but a summary line: the
// least work any 4-tuple tracker must do.
//
// Usage:
//
//	bench-baseline FILE.pcap
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
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

// stats is what a walk counts.
type stats struct {
	packets, tcp, other uint64
	conns               map[key]uint32
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: bench-baseline FILE.pcap")
		os.Exit(2)
	}
	st, err := walkFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-baseline:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "bench-baseline: %d packets, %d TCP, %d other, %d 4-tuples\n",
		st.packets, st.tcp, st.other, len(st.conns))
}

// walkFile walks the capture file at path.
func walkFile(path string) (stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return stats{}, err
	}
	defer f.Close()
	return walk(f)
}

// walk reads a classic pcap stream (either byte order, micro- or
// nanosecond timestamps; Ethernet link type).
func walk(r io.Reader) (stats, error) {
	st := stats{conns: make(map[key]uint32)}
	br := bufio.NewReaderSize(r, 1<<20)
	var gh [24]byte
	if _, err := io.ReadFull(br, gh[:]); err != nil {
		return st, fmt.Errorf("pcap header: %w", err)
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(gh[:]) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return st, errors.New("not a classic pcap file (pcapng is not read)")
	}
	if lt := bo.Uint32(gh[20:]) & 0xffff; lt != 1 {
		return st, fmt.Errorf("link type %d, not Ethernet", lt)
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
		st.packets++
		if k, ok := tuple(frame); ok {
			st.tcp++
			st.conns[k]++
		} else {
			st.other++
		}
		if _, err := br.Discard(n); err != nil {
			return st, fmt.Errorf("record %d: %w", st.packets, err)
		}
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
