package sockets

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// procNetReader parses /proc/net/tcp and /proc/net/tcp6 (or
// /proc/<pid>/net/tcp{,6} for another namespace), the fallback when netlink
// is refused. It reuses its buffer between reads.
type procNetReader struct {
	buf []byte
}

// read appends the sockets listed in the file at path to rows, stopping
// with errFull at max rows.
func (p *procNetReader) read(path string, netns uint64, rows []row, max int) ([]row, error) {
	data, err := p.slurp(path)
	if err != nil {
		return rows, err
	}
	return parseProcNet(data, netns, rows, max)
}

// slurp reads a whole file into p.buf with raw system calls (no *os.File).
func (p *procNetReader) slurp(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	if p.buf == nil {
		p.buf = make([]byte, 0, 64<<10)
	}
	b := p.buf[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if n == 0 {
			break
		}
		b = b[:len(b)+n]
	}
	p.buf = b
	return b, nil
}

// parseProcNet parses the lines of /proc/net/tcp{,6}:
//
//	sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
//	0: 0100007F:1F90 0100007F:C35A 01 00000000:00000000 00:00000000 00000000 1000 0 123456 ...
//
// Addresses are hex 32-bit words in host byte order (one for IPv4, four for
// IPv6), ports and the state are hex, uid and inode decimal. Lines that do
// not parse are skipped.
func parseProcNet(data []byte, netns uint64, rows []row, max int) ([]row, error) {
	first := true
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if first { // the header
			first = false
			continue
		}
		var f [10][]byte
		n := 0
		for n < len(f) {
			line = bytes.TrimLeft(line, " ")
			if len(line) == 0 {
				break
			}
			end := bytes.IndexByte(line, ' ')
			if end < 0 {
				end = len(line)
			}
			f[n], line = line[:end], line[end:]
			n++
		}
		if n < len(f) {
			continue
		}
		r := row{netns: netns}
		var ok1, ok2 bool
		r.key.local, r.key.lport, ok1 = parseProcAddr(f[1])
		r.key.remote, r.key.rport, ok2 = parseProcAddr(f[2])
		st, ok3 := parseUint(f[3], 16, 8)
		uid, ok4 := parseUint(f[7], 10, 32)
		inode, ok5 := parseUint(f[9], 10, 64)
		if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
			continue
		}
		r.state, r.uid, r.inode = uint8(st), uint32(uid), inode
		if len(rows) >= max {
			return rows, errFull
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// parseProcAddr parses "0100007F:1F90" (IPv4) or 32 hex digits, a colon and
// the port (IPv6).
func parseProcAddr(s []byte) (a [16]byte, port uint16, ok bool) {
	i := bytes.IndexByte(s, ':')
	if i < 0 {
		return a, 0, false
	}
	p, ok := parseUint(s[i+1:], 16, 16)
	if !ok {
		return a, 0, false
	}
	h := s[:i]
	switch len(h) {
	case 8:
		w, ok := parseUint(h, 16, 32)
		if !ok {
			return a, 0, false
		}
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], uint32(w))
		a = v4mapped(b[:])
	case 32:
		for j := 0; j < 4; j++ {
			w, ok := parseUint(h[8*j:8*j+8], 16, 32)
			if !ok {
				return a, 0, false
			}
			binary.NativeEndian.PutUint32(a[4*j:], uint32(w))
		}
	default:
		return a, 0, false
	}
	return a, uint16(p), true
}

// parseUint parses an unsigned number in base 10 or 16 that fits in bits,
// without allocating (strconv.ParseUint would need a string).
func parseUint(s []byte, base, bits int) (uint64, bool) {
	if len(s) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range s {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if v > (1<<64-1-d)/uint64(base) {
			return 0, false
		}
		v = v*uint64(base) + d
	}
	if bits < 64 && v >= 1<<bits {
		return 0, false
	}
	return v, true
}
