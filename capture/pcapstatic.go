//go:build linux && pcapstatic

package capture

// With the build tag pcapstatic (make build sets it where the static
// libraries are installed), libpcap and the libdbus that Debian's libpcap
// uses for D-Bus capture are linked into the binary: it then needs only
// the C library on the host it runs on, and starts without the dynamic
// loader opening nine shared libraries (libpcap, libdbus, libsystemd and
// theirs), a large part of a short replay's time (docs/performance.md).
// The flags come before gopacket's own -lpcap on the linker's command
// line, so they decide where libpcap comes from.
//
// libdbus refers to two functions of libsystemd, which has no static
// library. It calls them only in a bus daemon started by systemd's socket
// activation, never as the client libpcap makes of it; they are defined
// here to answer as libsystemd does in a process given no sockets.

/*
#cgo LDFLAGS: -Wl,-Bstatic -lpcap -ldbus-1 -Wl,-Bdynamic
int sd_listen_fds(int unset_environment) { return 0; }
int sd_is_socket(int fd, int family, int type, int listening) { return 0; }
*/
import "C"
