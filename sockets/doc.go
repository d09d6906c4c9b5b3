// Package sockets asks the local kernel which process owns a TCP socket and
// what state the kernel reports for it.
//
// A Resolver keeps a table of the host's TCP sockets, keyed by local and
// remote address, with each socket's kernel state and owning process. A
// background goroutine (Start) refreshes it, every second by default; lookups
// (Lookup, LookupKey) never wait for a refresh and cost one map lookup, so
// they can be made per connection per UI frame. The table is never touched
// per packet.
//
// # Sources
//
// The socket table comes from NETLINK_SOCK_DIAG (inet_diag, what ss uses),
// for IPv4 and IPv6. Where netlink is refused (a seccomp profile, a kernel
// without inet_diag) the same rows are parsed from /proc/net/tcp and
// /proc/net/tcp6. IPv4 addresses, and IPv4-mapped addresses of dual-stack
// IPv6 sockets, are both keyed as IPv4-mapped IPv6 addresses, as flows.Tuple
// stores them, so a lookup with a plain IPv4 address finds either.
//
// Processes are found the way ss -p and lsof find them: every
// /proc/<pid>/fd/* link reading socket:[INODE] names a process that holds
// the socket with that inode, and /proc/<pid>/comm gives its command name.
// Reading every descriptor of every process is most of a refresh's cost, so
// it is done in full only every tenth refresh (a socket can change hands: be
// passed over a Unix socket, or left to a child when its parent exits). In
// between, descriptors are read only when a socket appears whose holder is
// not known yet: first those of the processes that already hold sockets,
// then, if that was not enough, everyone's. A refresh reads the sockets
// before the descriptors, so a new socket is credited by the refresh that
// first sees it. A socket held by several processes (after fork) is credited
// to the one with the lowest PID (by a full scan; by a partial one, to the
// first holder found).
//
// A socket that no process holds any more (FIN_WAIT_2 or TIME_WAIT after
// close, LAST_ACK) keeps the process that held it when an earlier refresh saw
// it (ViaFormer). A connection still waiting in a listener's accept queue,
// or a SYN_RECEIVED request, is credited to the process holding the listener
// (ViaListener). A socket that has left the kernel's table is remembered for
// Linger with Gone set and the kernel state CLOSED, so that a record written
// out after its connection ended still names its process.
//
// # Network namespaces
//
// Processes are grouped by their network namespace (the inode of
// /proc/<pid>/ns/net); the namespaces named under /run/netns are added. Each
// namespace's table is read through a netlink socket opened inside it (setns
// on a locked OS thread that is thrown away afterwards), or, where that is
// refused, from /proc/<pid>/net/tcp{,6} of a process in it. Owner.Netns says
// which namespace a socket is in. The same 4-tuple can exist in two
// namespaces (loopback connections, overlapping container addresses); a
// lookup then finds the socket in flowtrack's own namespace, else the one in
// the namespace with the lowest inode, and Stats.Collisions counts them.
//
// # Permissions
//
// Without root, the kernel still lists every socket, but /proc/<pid>/fd of
// other users' processes cannot be read: their sockets are returned with
// their kernel state and no process. Such limits are reported once each
// through Warnings; a Resolver never panics and never blocks its callers on
// them.
//
// # Bounds
//
// Each refresh reads at most MaxSockets sockets (all namespaces together),
// scans at most MaxProcesses processes and MaxNetns namespaces, and records
// at most MaxSockets socket inodes; at most MaxGone departed sockets are
// remembered. Past a bound the rest is skipped and Stats.Truncated is set.
//
// The package is Linux-only.
package sockets
