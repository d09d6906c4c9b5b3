package sockets

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// procScan is what passes over /proc found: which process holds each
// socket inode, and one process in each network namespace.
type procScan struct {
	owner     map[uint64]int32 // socket inode → PID holding it, from the last full scan and the partial ones since; at most MaxSockets
	netns     map[uint64]int32 // namespace inode → lowest PID in it, this pass; at most MaxNetns
	processes int              // processes seen this pass
	denied    int              // processes whose descriptors could not be read, in the last full scan
	deniedPID int32            // one of them, for the warning
	truncated bool
}

// procScanner walks /proc with raw system calls on reused buffers, so that
// a scan allocates nothing per process or descriptor: names come straight
// out of the getdents buffer, where the kernel NUL-terminates them.
type procScanner struct {
	root    string // "/proc"
	procBuf []byte // getdents of /proc
	fdBuf   []byte // getdents of /proc/<pid>/fd
	link    []byte // readlink target
	procfd  int    // /proc, open from begin to end
	scan    procScan
}

var (
	nameNsNet = []byte("ns/net\x00")
	nameFd    = []byte("fd\x00")
	nameComm  = []byte("comm\x00")
)

// begin opens /proc for a refresh: run, then any comm calls, then end.
func (p *procScanner) begin() error {
	fd, err := unix.Open(p.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		p.procfd = -1
		return err
	}
	p.procfd = fd
	return nil
}

// end closes what begin opened.
func (p *procScanner) end() {
	if p.procfd >= 0 {
		unix.Close(p.procfd)
		p.procfd = -1
	}
}

// run passes over every process, recording its network namespace if ns is
// set, and if fds is set (a full scan) the sockets it holds, replacing what
// earlier scans found. Processes come in /proc's order, ascending PID, so a
// full scan credits a shared socket to the lowest PID holding it.
func (p *procScanner) run(ns, fds bool) *procScan {
	if p.procBuf == nil {
		p.procBuf = make([]byte, 32<<10)
		p.fdBuf = make([]byte, 32<<10)
		p.link = make([]byte, 128)
		p.scan.owner = make(map[uint64]int32)
		p.scan.netns = make(map[uint64]int32)
	}
	s := &p.scan
	if ns {
		clear(s.netns)
	}
	if fds {
		clear(s.owner)
		s.denied, s.deniedPID = 0, 0
	}
	s.processes, s.truncated = 0, false
	procfd := p.procfd
	if procfd < 0 {
		return s
	}
	if _, err := unix.Seek(procfd, 0, 0); err != nil {
		return s
	}
	for {
		n, err := unix.Getdents(procfd, p.procBuf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return s
		}
		for b := p.procBuf[:n]; len(b) >= 19; {
			reclen := int(binary.NativeEndian.Uint16(b[16:]))
			if reclen < 19 || reclen > len(b) {
				return s
			}
			name := b[19:reclen]
			b = b[reclen:]
			pid, ok := atoiName(name)
			if !ok {
				continue
			}
			if s.processes >= MaxProcesses {
				s.truncated = true
				return s
			}
			s.processes++
			p.process(name, int32(pid), ns, fds)
		}
	}
}

// scanPIDs reads the descriptors of the given processes only, adding the
// sockets they hold to what earlier scans found: a partial scan.
func (p *procScanner) scanPIDs(pids []int32) {
	if p.procfd < 0 || p.procBuf == nil {
		return
	}
	var name [16]byte
	for _, pid := range pids {
		b := append(strconv.AppendInt(name[:0], int64(pid), 10), 0)
		p.process(b, pid, false, true)
	}
}

// process records the network namespace (if ns) and the socket
// descriptors (if fds) of one process; name is its NUL-terminated /proc
// entry.
func (p *procScanner) process(name []byte, pid int32, ns, fds bool) {
	s := &p.scan
	dir, err := openat(p.procfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return // exited meanwhile
	}
	defer unix.Close(dir)
	if ns {
		if ino, ok := p.readInode(dir, nameNsNet, "net:["); ok {
			if _, seen := s.netns[ino]; !seen {
				if len(s.netns) < MaxNetns {
					s.netns[ino] = pid
				} else {
					s.truncated = true
				}
			}
		}
	}
	if !fds {
		return
	}
	fdDir, err := openat(dir, nameFd, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			if s.denied == 0 {
				s.deniedPID = pid
			}
			s.denied++
		}
		return
	}
	defer unix.Close(fdDir)
	for {
		n, err := unix.Getdents(fdDir, p.fdBuf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		for b := p.fdBuf[:n]; len(b) >= 19; {
			reclen := int(binary.NativeEndian.Uint16(b[16:]))
			if reclen < 19 || reclen > len(b) {
				return
			}
			name := b[19:reclen]
			b = b[reclen:]
			if name[0] == '.' {
				continue
			}
			ino, ok := p.readInode(fdDir, name, "socket:[")
			if !ok {
				continue
			}
			if _, seen := s.owner[ino]; seen {
				continue
			}
			if len(s.owner) >= MaxSockets {
				s.truncated = true
				return
			}
			s.owner[ino] = pid
		}
	}
}

// readInode reads the link dir/name and parses it as prefix + "INODE]",
// as in "socket:[1234]" and "net:[4026531840]".
func (p *procScanner) readInode(dir int, name []byte, prefix string) (uint64, bool) {
	n, err := readlinkat(dir, name, p.link)
	if err != nil || n <= len(prefix)+1 || n >= len(p.link) {
		return 0, false
	}
	l := p.link[:n]
	if string(l[:len(prefix)]) != prefix || l[n-1] != ']' {
		return 0, false
	}
	return parseUint(l[len(prefix):n-1], 10, 64)
}

// comm returns the command name of pid, or "" if it cannot be read. old is
// reused when the name has not changed, to avoid allocating a string.
func (p *procScanner) comm(pid int32, old string) string {
	var path [32]byte
	b := strconv.AppendInt(path[:0], int64(pid), 10)
	b = append(b, '/')
	b = append(b, nameComm...)
	if p.procfd < 0 {
		return ""
	}
	fd, err := openat(p.procfd, b, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	var buf [64]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil || n <= 0 {
		return ""
	}
	c := bytes.TrimSuffix(buf[:n], []byte{'\n'})
	if string(c) == old {
		return old
	}
	return string(c)
}

// atoiName parses a NUL-terminated directory entry name made only of
// digits (a PID).
func atoiName(name []byte) (int, bool) {
	v := 0
	for i, c := range name {
		if c == 0 {
			return v, i > 0
		}
		if c < '0' || c > '9' || v > 1<<30 {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return 0, false
}

// openat and readlinkat take NUL-terminated names, unlike unix.Openat and
// unix.Readlinkat, whose string arguments are copied into a new allocation
// on every call: a scan makes one call per process and per descriptor.
func openat(dir int, name []byte, flags int) (int, error) {
	for {
		r, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dir), uintptr(unsafe.Pointer(&name[0])), uintptr(flags), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(r), nil
	}
}

func readlinkat(dir int, name, buf []byte) (int, error) {
	r, _, e := unix.Syscall6(unix.SYS_READLINKAT, uintptr(dir), uintptr(unsafe.Pointer(&name[0])), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
