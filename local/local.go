// Package local describes what this host knows about a connection's
// endpoints that the wire cannot tell: the process that owns a local socket
// and the kernel's own state of it. Package sockets finds it out; ui and
// export show it. It is a package of its own because those may not import
// each other (nor sockets), and flows holds only facts from the wire.
package local

import "github.com/flowtrack/flowtrack/flows"

// Info is what this host's kernel says about a connection whose endpoints
// are (some of them) its sockets. The zero Info knows nothing.
type Info struct {
	PID     int    // the process of the client's socket if local, else the server's; 0 if unknown
	Process string // its command name; "" if unknown
	// KernelClient and KernelServer are the kernel's states of the client's
	// and the server's sockets.
	KernelClient, KernelServer Kernel
}

// Kernel is the kernel's state of one endpoint's socket.
type Kernel struct {
	State flows.State
	// Known is false where the endpoint is not a socket the kernel lists
	// (not of this host, not yet seen, or gone); State is then meaningless.
	Known bool
}

// Lookup returns what this host knows about a record's endpoints. The
// callers (the UI's builder, export's encoders) may call it from several
// goroutines at once, so it must be safe for concurrent use, and it runs
// per record: it must answer from memory, never block.
type Lookup func(*flows.Record) Info
