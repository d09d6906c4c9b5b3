package main

import (
	"net"
	"strconv"
	"time"
)

// The client sides of the impaired scenarios (record.sh --impaired, into
// pcaps/impaired) that the other scenarios have no use for. Their server
// sides are the ones of scenarios.go.

// clientGiveUp connects with no timeout of its own: the kernel gives up on
// its schedule (tcp_syn_retries), and connect() says ETIMEDOUT.
// Its port is fixed (-lport), so that the connection has a row in the ss
// truth once its socket is gone.
func clientGiveUp(c *clientSide) {
	if c.lport == 0 {
		die("%s needs -lport so the tuple is known", c.scenario)
	}
	host := "10.99.0.1"
	if network(c.addr) == "tcp6" {
		host = "fd99::1"
	}
	tuple(net.JoinHostPort(host, strconv.Itoa(c.lport)), c.addr)
	mark("dialing")
	d := dialer(c.lport)
	d.Timeout = 0
	conn, err := d.Dial(network(c.addr), c.addr)
	if err == nil {
		die("connect unexpectedly succeeded: %s", conn.LocalAddr())
	}
	logf("connect: %v", err)
	mark("gaveup")
}

// clientConnectHold connects and sends nothing, so that nothing but its
// ACK of the SYN-ACK (which the script drops) would complete the server's
// side.
func clientConnectHold(c *clientSide) {
	dial(c.addr, c.lport) // held by dial
	mark("done")
}

// clientShutdownHold sends its FIN but keeps its socket: FIN_WAIT_2 lasts.
func clientShutdownHold(c *clientSide) {
	conn := c.greet()
	closeWrite(conn)
	mark("done")
}

// clientCloseWhenTold closes once the script has set up what the close
// meets (a firewall rule).
func clientCloseWhenTold(c *clientSide) {
	conn := c.greet()
	mark("ready")
	await("close")
	conn.Close()
	mark("done")
}

// clientThreeWrites writes 100 bytes three times, 50 ms apart (the script
// drops the first segment before the capture point), then closes once the
// server has answered.
func clientThreeWrites(c *clientSide) {
	conn := dial(c.addr, c.lport)
	for range 3 {
		send(conn, 100, 'C')
		time.Sleep(50 * time.Millisecond)
	}
	recv(conn, 200)
	conn.Close()
	mark("done")
}
