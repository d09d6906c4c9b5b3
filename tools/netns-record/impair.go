package main

// impair: make an impaired copy of a recorded capture, as a capture point
// that misses, reorders or duplicates packets, or sees one direction only,
// would have recorded it. The kernels' truth (NAME.ss) is unchanged by
// it: only what the capture shows differs.
//
//	netns-record impair -port N -in FILE -out FILE OP...
//
// -port is the server's port (a frame from it is the server's). Each OP
// applies in turn to the frames left by the ones before it:
//
//	oneway=c|s    keep only the client's (c) or the server's (s) TCP frames
//	drop=SEL      remove the selected frame
//	ackfirst=SEL  move the first later frame of the other side whose ACK
//	              covers the selected frame's FIN to just before it (the
//	              capture saw the ACK one frame before the FIN)
//	dup           capture every TCP frame twice
//
// SEL is SIDE:KIND or SIDE:KIND#N (the N-th such frame, from 1; #last
// the last): SIDE c or s; KIND S (SYN), SA (SYN-ACK), F (any FIN), R (any
// RST), A (an ACK alone: no SYN, FIN, RST or payload) or D (payload).
// Frames that are not TCP (the heartbeats of the impaired recordings)
// are kept as they are.

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// segment is what impair needs of a TCP frame.
type segment struct {
	srcPort, dstPort uint16
	seq, ack         uint32
	flags            uint8 // TCP flags byte: FIN 1, SYN 2, RST 4, ACK 16
	payload          int
}

const (
	tcpFIN = 1
	tcpSYN = 2
	tcpRST = 4
	tcpACK = 16
)

// parseSegment decodes the TCP segment of a pcap record (Ethernet, IPv4
// or IPv6 without extension headers, as the recordings are).
func parseSegment(rec []byte) (segment, bool) {
	b := rec[16:]
	if len(b) < 14 {
		return segment{}, false
	}
	et := binary.BigEndian.Uint16(b[12:])
	b = b[14:]
	var ipPayload int
	switch et {
	case 0x0800:
		if len(b) < 20 || b[9] != 6 {
			return segment{}, false
		}
		ihl := int(b[0]&0xf) * 4
		ipPayload = int(binary.BigEndian.Uint16(b[2:])) - ihl
		if len(b) < ihl {
			return segment{}, false
		}
		b = b[ihl:]
	case 0x86dd:
		if len(b) < 40 || b[6] != 6 {
			return segment{}, false
		}
		ipPayload = int(binary.BigEndian.Uint16(b[4:]))
		b = b[40:]
	default:
		return segment{}, false
	}
	if len(b) < 20 {
		return segment{}, false
	}
	s := segment{
		srcPort: binary.BigEndian.Uint16(b), dstPort: binary.BigEndian.Uint16(b[2:]),
		seq: binary.BigEndian.Uint32(b[4:]), ack: binary.BigEndian.Uint32(b[8:]),
		flags: b[13],
	}
	s.payload = ipPayload - int(b[12]>>4)*4
	return s, true
}

// kind reports whether s is of KIND k (see the package comment).
func (s segment) kind(k string) bool {
	switch k {
	case "S":
		return s.flags&(tcpSYN|tcpACK) == tcpSYN
	case "SA":
		return s.flags&(tcpSYN|tcpACK) == tcpSYN|tcpACK
	case "F":
		return s.flags&tcpFIN != 0
	case "R":
		return s.flags&tcpRST != 0
	case "A":
		return s.flags&(tcpSYN|tcpFIN|tcpRST) == 0 && s.flags&tcpACK != 0 && s.payload == 0
	case "D":
		return s.payload > 0
	}
	return false
}

// impairer holds a capture's frames while impair works on them.
type impairer struct {
	port uint16
	p    *pcapFile
}

// side returns "s" for a frame of the server, "c" for one of the client,
// "" for a frame that is not TCP.
func (im *impairer) side(i int) (string, segment) {
	s, ok := parseSegment(im.p.recs[i])
	switch {
	case !ok:
		return "", s
	case s.srcPort == im.port:
		return "s", s
	}
	return "c", s
}

// find returns the index of the frame SEL names.
func (im *impairer) find(sel string) (int, error) {
	side, k, ok := strings.Cut(sel, ":")
	nth := "1"
	if k2, n, found := strings.Cut(k, "#"); found {
		k, nth = k2, n
	}
	if !ok || side != "c" && side != "s" {
		return 0, fmt.Errorf("bad selector %q: want c:KIND or s:KIND", sel)
	}
	var hits []int
	for i := range im.p.recs {
		if sd, s := im.side(i); sd == side && s.kind(k) {
			hits = append(hits, i)
		}
	}
	if len(hits) == 0 {
		return 0, fmt.Errorf("no frame matches %q", sel)
	}
	if nth == "last" {
		return hits[len(hits)-1], nil
	}
	n, err := strconv.Atoi(nth)
	if err != nil || n < 1 || n > len(hits) {
		return 0, fmt.Errorf("%q: %d frames match, no frame #%s", sel, len(hits), nth)
	}
	return hits[n-1], nil
}

// remove deletes frame i.
func (im *impairer) remove(i int) {
	im.p.recs = append(im.p.recs[:i], im.p.recs[i+1:]...)
	im.p.ts = append(im.p.ts[:i], im.p.ts[i+1:]...)
}

// insert puts rec, stamped ts, before frame i.
func (im *impairer) insert(i int, rec []byte, ts int64) {
	im.p.recs = append(im.p.recs[:i], append([][]byte{rec}, im.p.recs[i:]...)...)
	im.p.ts = append(im.p.ts[:i], append([]int64{ts}, im.p.ts[i:]...)...)
}

// ackFirst moves the first later frame of the other side that covers the
// FIN of frame i to just before it, stamped with frame i's time.
func (im *impairer) ackFirst(i int) error {
	side, fin := im.side(i)
	if fin.flags&tcpFIN == 0 {
		return fmt.Errorf("frame %d is no FIN", i+1)
	}
	end := fin.seq + uint32(fin.payload) + 1
	for j := i + 1; j < len(im.p.recs); j++ {
		sd, s := im.side(j)
		if sd == "" || sd == side || s.flags&tcpACK == 0 || int32(s.ack-end) < 0 {
			continue
		}
		rec := append([]byte(nil), im.p.recs[j]...)
		im.remove(j)
		// The moved frame keeps the file in time order: it takes the
		// FIN's time (the record header's first 8 bytes).
		copy(rec[:8], im.p.recs[i][:8])
		im.insert(i, rec, im.p.ts[i])
		return nil
	}
	return fmt.Errorf("no frame acknowledges the FIN of frame %d", i+1)
}

// apply runs one OP.
func (im *impairer) apply(op string) error {
	name, arg, _ := strings.Cut(op, "=")
	switch name {
	case "oneway":
		if arg != "c" && arg != "s" {
			return fmt.Errorf("oneway=%s: want c or s", arg)
		}
		for i := 0; i < len(im.p.recs); {
			if sd, _ := im.side(i); sd != "" && sd != arg {
				im.remove(i)
				continue
			}
			i++
		}
	case "drop", "ackfirst":
		i, err := im.find(arg)
		if err != nil {
			return err
		}
		if name == "drop" {
			im.remove(i)
			return nil
		}
		return im.ackFirst(i)
	case "dup":
		for i := 0; i < len(im.p.recs); i++ {
			if sd, _ := im.side(i); sd != "" {
				im.insert(i+1, append([]byte(nil), im.p.recs[i]...), im.p.ts[i])
				i++
			}
		}
	default:
		return fmt.Errorf("unknown operation %q", op)
	}
	return nil
}

// impairCmd is the impair subcommand: it returns the process's exit code.
func impairCmd(port int, in, out string, ops []string) int {
	if port <= 0 || in == "" || out == "" || len(ops) == 0 {
		fmt.Fprintln(os.Stderr, "usage: netns-record impair -port N -in FILE -out FILE OP...")
		return 2
	}
	im := &impairer{port: uint16(port), p: readPcap(in)}
	for _, op := range ops {
		if err := im.apply(op); err != nil {
			fmt.Fprintf(os.Stderr, "impair %s: %s: %v\n", in, op, err)
			return 1
		}
	}
	buf := append([]byte(nil), im.p.header...)
	for _, r := range im.p.recs {
		buf = append(buf, r...)
	}
	if err := os.WriteFile(out, buf, 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "impair: %v\n", err)
		return 1
	}
	return 0
}
