package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// The scenarios: what each side does to drive its sockets into the states
// record.sh captures. Each side then holds its sockets until it is killed
// or its deadline passes.

// serverSide is the server's listener in a scenario.
type serverSide struct {
	ln       net.Listener
	scenario string
}

// accept accepts the next connection and notes its 4-tuple.
func (s *serverSide) accept() net.Conn {
	c, err := s.ln.Accept()
	if err != nil {
		die("accept: %v", err)
	}
	logf("accepted %s -> %s", c.RemoteAddr(), c.LocalAddr())
	tuple(c.RemoteAddr().String(), c.LocalAddr().String())
	held = append(held, c)
	return c
}

// held keeps every connection referenced while the process holds its
// sockets, so that no finalizer closes one the scenario left open.
var held []net.Conn

// greet accepts the next connection and answers the client's 100 bytes
// with 200.
func (s *serverSide) greet() net.Conn {
	c := s.accept()
	recv(c, 100)
	send(c, 200, 'S')
	return c
}

func server(scenario, addr string) {
	play, ok := serverPlays[scenario]
	if !ok {
		die("unknown scenario %q", scenario)
	}
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), network(addr), addr)
	if err != nil {
		die("listen %s: %v", addr, err)
	}
	logf("listening on %s for %s", ln.Addr(), scenario)
	mark("listening")
	play(&serverSide{ln: ln, scenario: scenario})
	hold()
}

// serverPlays are the server's sides of the scenarios.
var serverPlays = map[string]func(s *serverSide){
	// The listener exists but no connection completes: SYNs (or the
	// SYN-ACKs) are dropped by the script's firewall rules.
	"syn-sent": func(*serverSide) {},
	"syn-recv": func(*serverSide) {},
	"http":     func(s *serverSide) { httpServe(s.ln) },

	"established":         serverHold,
	"established6":        serverHold,
	"close-client":        serverCloseOnEOF,
	"close-client6":       serverCloseOnEOF,
	"close-server":        serverClose,
	"half-close":          serverHalfClose,
	"fin-wait-1":          serverFinWait,
	"fin-lost":            serverFinWait,
	"last-ack":            serverLastAck,
	"last-ack6":           serverLastAck,
	"simultaneous-close":  func(s *serverSide) { closeTogether(s.greet()) },
	"rst-client":          serverReset,
	"rst-server":          serverAbort,
	"many":                serverMany,
	"port-reuse-tw":       serverPortReuse,
	"port-reuse-rst":      serverPortReuse,
	"long-transfer":       serverLongTransfer,
	"midstream-halfclose": serverMidstream,
	"midstream-close":     serverMidstream,

	// The impaired scenarios (record.sh --impaired; impaired.go).
	"syn-giveup":         func(*serverSide) {},
	"synack-giveup":      func(*serverSide) {},
	"synack-backoff":     func(*serverSide) {},
	"fin-wait-2-orphan":  serverHold,
	"fin-wait-2-held":    serverHold,
	"rst-old":            serverHold,
	"rst-old-timewait":   serverCloseOnEOF,
	"rst-timewait-exact": serverCloseOnEOF,
	"rst-timewait-ahead": serverCloseOnEOF,
	"fin-lost-once":      serverCloseOnEOF,
	"final-ack-lost":     serverCloseOnEOF,
	"fin-cross-loss":     func(s *serverSide) { closeTogether(s.greet()) },
	"fin-cross-loss-c":   func(s *serverSide) { closeTogether(s.greet()) },
	"synack-lost-before": serverCloseOnEOF,
	"data-lost-before":   serverCloseOnEOF,
}

func serverHold(s *serverSide) {
	s.greet()
	mark("done")
}

func serverCloseOnEOF(s *serverSide) {
	c := s.greet()
	n := drain(c)
	logf("EOF after %d more bytes; closing", n)
	c.Close()
	mark("done")
}

func serverClose(s *serverSide) {
	s.greet().Close()
	mark("done")
}

func serverHalfClose(s *serverSide) {
	c := s.accept()
	n := drain(c)
	logf("EOF after %d bytes; answering on the half-open connection", n)
	send(c, 300, 'S')
	mark("done")
}

func serverFinWait(s *serverSide) {
	c := s.greet()
	if s.scenario == "fin-wait-1" {
		n := drain(c)
		logf("EOF after %d more bytes; not closing", n)
	}
	mark("done")
}

func serverLastAck(s *serverSide) {
	c := s.greet()
	n := drain(c)
	logf("EOF after %d more bytes", n)
	mark("eof")
	await("close")
	c.Close()
	mark("done")
}

// closeTogether half-closes c when the script says, just after a filler
// datagram that holds its FIN back on the way: both sides do, and their
// FINs cross.
func closeTogether(c net.Conn) {
	mark("ready")
	await("close")
	filler(fillerAddr)
	closeWrite(c)
	mark("done")
}

func serverReset(s *serverSide) {
	expectReset(s.greet())
	mark("done")
}

func serverAbort(s *serverSide) {
	abort(s.greet())
	mark("done")
}

func serverMany(s *serverSide) {
	const total, closing = 8, 3
	done := make(chan bool, total)
	for range total {
		c := s.accept()
		go func(c net.Conn) {
			recv(c, 100)
			send(c, 200, 'S')
			n, err := io.Copy(io.Discard, c)
			if err == nil {
				logf("EOF on %s after %d bytes; closing", c.RemoteAddr(), n)
				c.Close()
				done <- true
			}
		}(c)
	}
	for range closing {
		<-done
	}
	mark("done")
}

// serverPortReuse: the client ends the first connection (port-reuse-tw: the
// server closes first, so its side goes to TIME_WAIT; port-reuse-rst: the
// client resets it), then opens another from the same port.
func serverPortReuse(s *serverSide) {
	c := s.greet()
	if s.scenario == "port-reuse-tw" {
		c.Close()
	} else {
		expectReset(c)
	}
	s.greet()
	mark("done")
}

func serverLongTransfer(s *serverSide) {
	c := s.accept()
	if _, err := io.CopyN(io.Discard, c, 1<<20); err != nil {
		die("upload: %v", err)
	}
	send(c, 2<<20, 'S')
	m := drain(c)
	logf("EOF after %d more bytes; closing", m)
	c.Close()
	mark("done")
}

func serverMidstream(s *serverSide) {
	c := s.accept()
	for range 20 {
		recv(c, 1000)
		send(c, 1000, 'S')
	}
	n := drain(c)
	logf("EOF after %d more bytes", n)
	if s.scenario == "midstream-close" {
		c.Close()
	} else {
		send(c, 500, 'T') // data after the client's FIN
	}
	mark("done")
}

// clientSide is the client's end of a scenario: where it connects, from
// which local port (0: any).
type clientSide struct {
	addr     string
	lport    int
	scenario string
}

// greet connects, sends 100 bytes and reads the server's 200.
func (c *clientSide) greet() net.Conn {
	conn := dial(c.addr, c.lport)
	send(conn, 100, 'C')
	recv(conn, 200)
	return conn
}

func client(scenario, addr string, lport int) {
	play, ok := clientPlays[scenario]
	if !ok {
		die("unknown scenario %q", scenario)
	}
	play(&clientSide{addr: addr, lport: lport, scenario: scenario})
	hold()
}

// clientPlays are the client's sides of the scenarios.
var clientPlays = map[string]func(c *clientSide){
	"syn-sent":            clientUnanswered,
	"syn-recv":            clientUnanswered,
	"refused":             clientRefused,
	"established":         clientHold,
	"established6":        clientHold,
	"close-client":        clientClose,
	"close-client6":       clientClose,
	"close-server":        clientCloseOnEOF,
	"half-close":          clientHalfClose,
	"fin-wait-1":          clientFinWait,
	"fin-lost":            clientFinWait,
	"last-ack":            clientLastAck,
	"last-ack6":           clientLastAck,
	"simultaneous-close":  func(c *clientSide) { closeTogether(c.greet()) },
	"rst-client":          clientAbort,
	"rst-server":          clientReset,
	"http":                func(c *clientSide) { httpClient(c.addr, c.lport); mark("done") },
	"many":                clientMany,
	"port-reuse-tw":       clientPortReuse,
	"port-reuse-rst":      clientPortReuse,
	"long-transfer":       clientLongTransfer,
	"midstream-halfclose": clientMidstream,
	"midstream-close":     clientMidstream,

	// The impaired scenarios (record.sh --impaired; impaired.go).
	"syn-giveup":         clientGiveUp,
	"synack-giveup":      clientGiveUp,
	"synack-backoff":     clientConnectHold,
	"fin-wait-2-orphan":  clientClose,
	"fin-wait-2-held":    clientShutdownHold,
	"rst-old":            clientHold,
	"rst-old-timewait":   clientCloseWhenTold,
	"rst-timewait-exact": clientCloseWhenTold,
	"rst-timewait-ahead": clientCloseWhenTold,
	"fin-lost-once":      clientCloseWhenTold,
	"final-ack-lost":     clientCloseWhenTold,
	"fin-cross-loss":     func(c *clientSide) { closeTogether(c.greet()) },
	"fin-cross-loss-c":   func(c *clientSide) { closeTogether(c.greet()) },
	"synack-lost-before": clientClose,
	"data-lost-before":   clientThreeWrites,
}

// clientUnanswered dials a server whose answer the firewall drops: the
// connect must fail, and the process ends.
func clientUnanswered(c *clientSide) {
	mark("dialing")
	conn, err := dialer(c.lport).Dial(network(c.addr), c.addr)
	if err == nil {
		die("connect unexpectedly succeeded: %s", conn.LocalAddr())
	}
	die("connect: %v", err)
}

func clientRefused(c *clientSide) {
	if c.lport == 0 {
		die("refused needs -lport so the tuple is known")
	}
	host := "10.99.0.1"
	if network(c.addr) == "tcp6" {
		host = "fd99::1"
	}
	tuple(net.JoinHostPort(host, fmt.Sprint(c.lport)), c.addr)
	_, err := dialer(c.lport).Dial(network(c.addr), c.addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		die("wanted connection refused, got %v", err)
	}
	logf("connect: %v (as expected)", err)
	mark("done")
}

func clientHold(c *clientSide) {
	c.greet()
	mark("done")
}

func clientClose(c *clientSide) {
	c.greet().Close()
	mark("done")
}

func clientCloseOnEOF(c *clientSide) {
	conn := c.greet()
	n := drain(conn)
	logf("EOF after %d more bytes; closing", n)
	conn.Close()
	mark("done")
}

func clientHalfClose(c *clientSide) {
	conn := dial(c.addr, c.lport)
	send(conn, 100, 'C')
	closeWrite(conn)
	recv(conn, 300)
	mark("done")
}

func clientFinWait(c *clientSide) {
	conn := c.greet()
	mark("ready")
	await("close")
	closeWrite(conn)
	mark("done")
}

func clientLastAck(c *clientSide) {
	conn := c.greet()
	closeWrite(conn)
	n := drain(conn)
	logf("EOF after %d more bytes (server's FIN)", n)
	mark("done")
}

func clientAbort(c *clientSide) {
	abort(c.greet())
	mark("done")
}

func clientReset(c *clientSide) {
	expectReset(c.greet())
	mark("done")
}

func clientMany(c *clientSide) {
	var conns []net.Conn
	for range 8 {
		conns = append(conns, c.greet())
	}
	for _, conn := range conns[:3] {
		conn.Close()
	}
	mark("done")
}

// clientPortReuse ends the first connection (port-reuse-tw: once the
// server has closed; port-reuse-rst: with a reset), then connects again
// from the same port when the script says.
func clientPortReuse(c *clientSide) {
	if c.lport == 0 {
		die("port-reuse needs -lport")
	}
	conn := c.greet()
	if c.scenario == "port-reuse-tw" {
		n := drain(conn)
		logf("EOF after %d more bytes; closing", n)
		conn.Close()
	} else {
		abort(conn)
	}
	mark("first")
	await("second")
	c.greet()
	mark("done")
}

func clientLongTransfer(c *clientSide) {
	conn := dial(c.addr, c.lport)
	send(conn, 1<<20, 'C')
	recv(conn, 2<<20)
	conn.Close()
	mark("done")
}

func clientMidstream(c *clientSide) {
	conn := dial(c.addr, c.lport)
	for i := range 20 {
		if i == 10 {
			// The script starts the capture now, mid-stream.
			mark("ready")
			await("continue")
		}
		send(conn, 1000, 'C')
		recv(conn, 1000)
	}
	if c.scenario == "midstream-close" {
		conn.Close()
	} else {
		closeWrite(conn)
		recv(conn, 500)
	}
	mark("done")
}
