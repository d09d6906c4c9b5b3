package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// scenario is one way a connection goes wrong, made with real kernel
// sockets: what its two processes do, the firewall rules and sysctls it
// needs, and the problems flowtrack must name in its capture, derived
// from the design (not from a run).
type scenario struct {
	name, desc string
	port       int
	cliSysctls []string // set in the client's namespace
	// flags are the thresholds flowtrack judges the capture with (its
	// command-line flags), where a default would need minutes of capture.
	flags []string
	// expect lists the problems, in the grammar of SCENARIOS.tsv: "N:kind/side,..."
	// for connection N (in the order they started; "N-M" for a range),
	// "kind/side~words" to require words in its detail (with _ for a
	// space), "conns=N", and
	// "service:kind" or "service:leak" for the service's.
	expect string
	server func(e *env) // nil: nothing listens
	client func(e *env)
}

// env is what a role process has: the server's address, its control
// directory, and a log.
type env struct {
	server string // HOST:PORT
	ctl    string
	log    io.Writer
}

func (e *env) logf(format string, a ...any) {
	fmt.Fprintf(e.log, time.Now().Format("15:04:05.000 ")+format+"\n", a...)
}

// fail ends the role with an error the orchestrator reports.
func (e *env) fail(format string, a ...any) {
	e.logf("FAILED: "+format, a...)
	mark(e.ctl, "failed")
	os.Exit(1)
}

// nft adds a rule to the input chain of the role's own namespace.
func (e *env) nft(rule string) {
	if out, err := exec.Command("nft", "add rule inet diag16 in "+rule).CombinedOutput(); err != nil {
		e.fail("nft %s: %v %s", rule, err, out)
	}
}

// unnft removes every rule of the input chain.
func (e *env) unnft() {
	if out, err := exec.Command("nft", "flush chain inet diag16 in").CombinedOutput(); err != nil {
		e.fail("nft flush: %v %s", err, out)
	}
}

// listen listens on the server's address and marks server.ready.
func (e *env) listen() net.Listener {
	ln, err := net.Listen("tcp4", e.server)
	if err != nil {
		e.fail("listen: %v", err)
	}
	mark(e.ctl, "server.ready")
	return ln
}

// accept accepts one connection.
func (e *env) accept(ln net.Listener) *net.TCPConn {
	c, err := ln.Accept()
	if err != nil {
		e.fail("accept: %v", err)
	}
	return c.(*net.TCPConn)
}

// dial connects from local port lport (0: any), with SO_REUSEADDR when
// bound, giving up after timeout.
func (e *env) dial(lport int, timeout time.Duration) (*net.TCPConn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: -1}
	if lport != 0 {
		d.LocalAddr = &net.TCPAddr{Port: lport}
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	c, err := d.Dial("tcp4", e.server)
	if err != nil {
		return nil, err
	}
	e.logf("connected %v", c.LocalAddr())
	return c.(*net.TCPConn), nil
}

func (e *env) mustDial(lport int) *net.TCPConn {
	c, err := e.dial(lport, 10*time.Second)
	if err != nil {
		e.fail("dial: %v", err)
	}
	return c
}

func (e *env) write(c net.Conn, n int) {
	if _, err := c.Write(make([]byte, n)); err != nil {
		e.fail("write %d bytes: %v", n, err)
	}
}

func (e *env) read(c net.Conn, n int) {
	if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
		e.fail("read %d bytes: %v", n, err)
	}
}

// drain reads until EOF (or an error) and returns how much it read.
func drain(c net.Conn) int64 {
	n, _ := io.Copy(io.Discard, c)
	return n
}

// hold keeps the process, and so its sockets, until it is killed.
func hold() { select {} }

// exchange is a request of req bytes and a response of resp bytes.
func (e *env) exchange(c net.Conn, req, resp int) {
	e.write(c, req)
	e.read(c, resp)
}

// serveEach accepts connections and hands each to fn on its own
// goroutine; it returns at once.
func (e *env) serveEach(fn func(c *net.TCPConn)) {
	ln := e.listen()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go fn(c.(*net.TCPConn))
		}
	}()
}

// respond reads a request of req bytes and writes resp bytes.
func (e *env) respond(c net.Conn, req, resp int) {
	e.read(c, req)
	e.write(c, resp)
}

// quickack asks the kernel to acknowledge what c received at once
// (TCP_QUICKACK), instead of delaying the ACK to ride on the next segment.
func (e *env) quickack(c *net.TCPConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		e.fail("quickack: %v", err)
	}
	_ = rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1) })
}

// errNoPort says connect found no local port (EADDRNOTAVAIL).
var errNoPort = syscall.EADDRNOTAVAIL

func isNoPort(err error) bool { return errors.Is(err, errNoPort) }
