package main

// inject: send one TCP RST into a recorded connection from a raw socket,
// as an attacker, a middlebox or a delayed duplicate would: the
// recordings of impaired scenarios use it to show which RSTs a Linux
// receiver accepts.
//
//	netns-record inject -packets FILE -port N -from c|s -seq old|next|ahead
//
// It reads the capture made so far (-packets, the scenario's tcpdump file)
// for the connection's addresses and sequence numbers and sends, from the
// namespace it runs in, an RST from that side (-from) with sequence number
// one past its SYN (old: long acknowledged by the peer), its next
// sequence number (next), or 1000 past it (ahead: in the peer's window, but
// not exact). IPv4 only.

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"syscall"
)

// injectCmd is the inject subcommand: it returns the process's exit code.
func injectCmd(packets string, port int, from, which string) int {
	p := readPcap(packets)
	im := &impairer{port: uint16(port), p: p}
	var isn, next uint32
	var src, dst net.IP
	var sp, dp uint16
	found := false
	for i, rec := range p.recs {
		side, s := im.side(i)
		if side != from {
			continue
		}
		if s.flags&tcpSYN != 0 {
			isn = s.seq
		}
		end := s.seq + uint32(s.payload)
		if s.flags&(tcpSYN|tcpFIN) != 0 {
			end++
		}
		if !found || int32(end-next) > 0 {
			next = end
		}
		src, dst, sp, dp, found = net.IP(rec[16+14+12:16+14+16]), net.IP(rec[16+14+16:16+14+20]), s.srcPort, s.dstPort, true
	}
	if !found {
		fmt.Fprintf(os.Stderr, "inject: no frame from %s in %s\n", from, packets)
		return 1
	}
	seq := next
	switch which {
	case "old":
		seq = isn + 1
	case "ahead":
		seq = next + 1000 // in the peer's window, but not its next sequence number
	}
	if err := sendRST(src, dst, sp, dp, seq); err != nil {
		fmt.Fprintf(os.Stderr, "inject: %v\n", err)
		return 1
	}
	fmt.Printf("RST %s:%d > %s:%d seq %d\n", src, sp, dst, dp, seq)
	return 0
}

// sendRST sends an RST (no ACK) from a raw socket; the kernel adds the IP
// header.
func sendRST(src, dst net.IP, sp, dp uint16, seq uint32) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_TCP)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h, sp)
	binary.BigEndian.PutUint16(h[2:], dp)
	binary.BigEndian.PutUint32(h[4:], seq)
	h[12] = 5 << 4
	h[13] = tcpRST
	// checksum over the pseudo-header and the segment
	ph := make([]byte, 0, 32)
	ph = append(ph, src.To4()...)
	ph = append(ph, dst.To4()...)
	ph = append(ph, 0, 6, 0, 20)
	ph = append(ph, h...)
	var sum uint32
	for i := 0; i+1 < len(ph); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ph[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(h[16:], ^uint16(sum))
	var sa syscall.SockaddrInet4
	copy(sa.Addr[:], dst.To4())
	return syscall.Sendto(fd, h, 0, &sa)
}
