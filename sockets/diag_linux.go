package sockets

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// row is one socket as a table source reports it.
type row struct {
	key   sockKey
	netns uint64
	inode uint64
	uid   uint32
	state uint8 // Linux TCP state
}

// errFull says a bound was reached: the rows read so far are kept.
var errFull = errors.New("sockets: table bound reached")

// Netlink message layout (linux/netlink.h, linux/inet_diag.h). The request
// and the replies are fixed-size C structs, written and read here by offset.
const (
	nlHdrLen       = 16 // struct nlmsghdr
	diagReqLen     = 56 // struct inet_diag_req_v2
	diagMsgLen     = 72 // struct inet_diag_msg
	nlmDone        = unix.NLMSG_DONE
	nlmError       = unix.NLMSG_ERROR
	sockDiagFamily = unix.SOCK_DIAG_BY_FAMILY
	// every state from ESTABLISHED (1) to NEW_SYN_RECV (12); not
	// BOUND_INACTIVE (13), bound sockets that never connected or listened
	allStates = 1<<13 - 2
	// the kernel caps a dump's message batch at 32 KiB
	diagBufLen = 64 << 10
)

// openDiag opens a NETLINK_SOCK_DIAG socket in the calling thread's network
// namespace. Replies that take longer than a few seconds fail the read rather
// than block a refresh forever.
func openDiag() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return -1, fmt.Errorf("netlink socket: %w", err)
	}
	tv := unix.Timeval{Sec: 3}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("netlink socket: %w", err)
	}
	return fd, nil
}

// openDiagIn opens a NETLINK_SOCK_DIAG socket inside the network namespace
// at nsPath (/proc/<pid>/ns/net or /run/netns/NAME). A netlink socket stays
// in the namespace it was created in, so only its creation needs setns,
// done on an OS thread locked to one goroutine and switched back after.
//
// That thread is never the process's main thread: /proc/self/net and
// /proc/self/ns/net describe the main thread, and should switching back
// fail, the runtime cannot discard the main thread as it discards any other
// thread whose goroutine ends locked to it.
func openDiagIn(nsPath string) (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	work := func() {
		fd, restored, err := openDiagInLocked(nsPath)
		if restored {
			runtime.UnlockOSThread()
		} // else the thread ends with its goroutine
		ch <- result{fd, err}
	}
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			work()
			return
		}
		// The main thread: hold it while another goroutine, which
		// therefore runs on another thread, does the work.
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread()
			work()
		}()
		<-done
		runtime.UnlockOSThread()
	}()
	r := <-ch
	return r.fd, r.err
}

// openDiagInLocked does openDiagIn's work on the locked thread; restored
// says whether the thread is back in its own namespace.
func openDiagInLocked(nsPath string) (fd int, restored bool, err error) {
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, true, fmt.Errorf("open own namespace: %w", err)
	}
	defer unix.Close(orig)
	ns, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, true, fmt.Errorf("open %s: %w", nsPath, err)
	}
	err = unix.Setns(ns, unix.CLONE_NEWNET)
	unix.Close(ns)
	if err != nil {
		return -1, true, fmt.Errorf("setns %s: %w", nsPath, err)
	}
	fd, err = openDiag()
	restored = unix.Setns(orig, unix.CLONE_NEWNET) == nil
	return fd, restored, err
}

// diagReader dumps TCP sockets through a NETLINK_SOCK_DIAG socket into
// rows, reusing its buffers between dumps.
type diagReader struct {
	buf []byte
	req [nlHdrLen + diagReqLen]byte
	seq uint32
}

// dump appends the TCP sockets of family (AF_INET or AF_INET6) in fd's
// namespace in the states of the mask (bit n: Linux state n) to rows,
// stopping with errFull at max rows. The kernel filters the states.
func (d *diagReader) dump(fd int, family uint8, states uint32, netns uint64, rows []row, max int) ([]row, error) {
	if d.buf == nil {
		d.buf = make([]byte, diagBufLen)
	}
	if err := d.request(fd, family, states); err != nil {
		return rows, err
	}
	dd := dumpState{netns: netns, rows: rows, max: max}
	for !dd.done {
		n, err := unix.Read(fd, d.buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return dd.rows, fmt.Errorf("netlink receive: %w", err)
		}
		if err := d.receive(&dd, d.buf[:n]); err != nil {
			return dd.rows, err
		}
	}
	if dd.full {
		return dd.rows, errFull
	}
	return dd.rows, nil
}

// request sends a new dump request, numbered, for the TCP sockets of
// family in the states of the mask.
func (d *diagReader) request(fd int, family uint8, states uint32) error {
	d.seq++
	ne := binary.NativeEndian
	req := d.req[:]
	clear(req)
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], sockDiagFamily)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], d.seq)
	b := req[nlHdrLen:]
	b[0] = family
	b[1] = unix.IPPROTO_TCP
	ne.PutUint32(b[4:], states)
	if _, err := unix.Write(fd, req); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	return nil
}

// dumpState is where a dump is: the rows read so far, and whether the
// dump is done or had more sockets than max.
type dumpState struct {
	netns      uint64
	rows       []row
	max        int
	full, done bool
}

// receive reads the netlink messages of one read, msgs.
func (d *diagReader) receive(dd *dumpState, msgs []byte) error {
	ne := binary.NativeEndian
	for len(msgs) >= nlHdrLen && !dd.done {
		l := int(ne.Uint32(msgs[0:]))
		if l < nlHdrLen || l > len(msgs) {
			return fmt.Errorf("netlink receive: bad message length %d", l)
		}
		typ, seq := ne.Uint16(msgs[4:]), ne.Uint32(msgs[8:])
		body := msgs[nlHdrLen:l]
		if a := (l + 3) &^ 3; a < len(msgs) {
			msgs = msgs[a:]
		} else {
			msgs = nil
		}
		if seq != d.seq {
			continue // a late reply to an earlier, abandoned dump
		}
		switch typ {
		case nlmDone:
			dd.done = true
		case nlmError:
			if len(body) >= 4 {
				if e := int32(ne.Uint32(body)); e < 0 {
					return fmt.Errorf("netlink sock_diag: %w", unix.Errno(-e))
				}
			}
		case sockDiagFamily:
			switch {
			case len(body) < diagMsgLen || dd.full:
			case len(dd.rows) >= dd.max:
				dd.full = true // drain the dump so the socket stays usable, then report
			default:
				dd.rows = append(dd.rows, parseDiagMsg(body, dd.netns))
			}
		}
	}
	return nil
}

// parseDiagMsg decodes a struct inet_diag_msg: family, state, timer,
// retrans; the socket id (ports big-endian, then source and destination
// addresses, 16 bytes each, interface, cookie); then expires, rqueue,
// wqueue, uid and inode in host order.
func parseDiagMsg(b []byte, netns uint64) row {
	ne := binary.NativeEndian
	r := row{
		netns: netns,
		state: b[1],
		uid:   ne.Uint32(b[64:]),
		inode: uint64(ne.Uint32(b[68:])),
	}
	r.key.lport = binary.BigEndian.Uint16(b[4:])
	r.key.rport = binary.BigEndian.Uint16(b[6:])
	if b[0] == unix.AF_INET {
		r.key.local = v4mapped(b[8:12])
		r.key.remote = v4mapped(b[24:28])
	} else {
		copy(r.key.local[:], b[8:24])
		copy(r.key.remote[:], b[24:40])
	}
	return r
}

func v4mapped(a []byte) (m [16]byte) {
	m[10], m[11] = 0xff, 0xff
	copy(m[12:], a)
	return m
}
