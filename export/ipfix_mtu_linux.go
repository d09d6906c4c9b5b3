package export

import (
	"net"
	"syscall"
)

// pathMTU returns the path MTU the kernel knows for a connected UDP
// socket's peer (IP_MTU, IPV6_MTU), and whether the peer is IPv6.
func pathMTU(conn net.Conn) (mtu int, v6, ok bool) {
	uc, isUDP := conn.(*net.UDPConn)
	if !isUDP {
		return 0, false, false
	}
	ra, _ := uc.RemoteAddr().(*net.UDPAddr)
	if ra == nil {
		return 0, false, false
	}
	v6 = ra.IP.To4() == nil
	rc, err := uc.SyscallConn()
	if err != nil {
		return 0, v6, false
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if v6 {
			mtu, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_MTU)
		} else {
			mtu, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_MTU)
		}
	})
	if err != nil || serr != nil || mtu <= 0 {
		return 0, v6, false
	}
	return mtu, v6, true
}
