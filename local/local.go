// Package local holds what flowtrack knows of a connection beyond the TCP
// headers its table tracks: the name the client asked for (read from the
// wire: a TLS ClientHello, an HTTP Host header, a DNS answer) and, for the
// endpoints on this host, the process that owns the socket and the
// kernel's own state of it. Package main gathers it (from capture/peek and
// sockets); ui and export show it. It is a package of its own because
// those may not import each other (nor sockets), and flows holds only
// facts from the packets' headers.
package local

import "github.com/flowtrack/flowtrack/flows"

// Info is what flowtrack knows of a connection beyond its TCP headers.
// The zero Info knows nothing.
type Info struct {
	// Sockets says that this host's sockets were looked up (a live
	// capture): the process and the kernel states are known, or known to
	// be unknown.
	Sockets bool
	PID     int    // the process of the client's socket if local, else the server's; 0 if unknown
	Process string // its command name; "" if unknown
	// About the process, "" or 0 where unknown: the thread that connected
	// or accepted, its executable and command line, its user (uid, and the
	// name if it has one), its container ("docker:0123456789ab") or else
	// its cgroup v2 path, and how its owning the socket was learnt
	// ("connect", "accept", "listener", "socket table").
	TID                     int
	Exe, Cmdline            string
	UID                     uint32
	User, Container, Cgroup string
	Unit                    string // its systemd unit, "" if none
	Via                     string
	// Details says that the process's details (user, container, cgroup,
	// executable, command line) were read, not only its PID and name.
	Details bool
	// KernelClient and KernelServer are the kernel's states of the
	// client's and the server's sockets.
	KernelClient, KernelServer Kernel

	// ServerName is the name the client asked for ("" if none is known),
	// and NameSource where it was read: "sni" (the TLS ClientHello),
	// "host" (the HTTP/1 Host header), "dns" (a DNS answer for the
	// server's address seen before the connection) or "rdns".
	ServerName, NameSource string
	ALPN                   string   // protocols the ClientHello offered, comma-separated
	ECH                    bool     // the ClientHello offered Encrypted Client Hello
	DNSChain               []string // the DNS answer's names, asked-for name first, when known
}

// Kernel is the kernel's state of one endpoint's socket.
type Kernel struct {
	State flows.State
	// Known is false where the endpoint is not a socket the kernel lists
	// (not of this host, not yet seen, or gone); State is then meaningless.
	Known bool
}

// Lookup returns what flowtrack knows of a record's connection. The
// callers (the UI's builder, export's encoders) may call it from several
// goroutines at once, so it must be safe for concurrent use, and it runs
// per record: it must answer from memory, never block.
type Lookup func(*flows.Record) Info
