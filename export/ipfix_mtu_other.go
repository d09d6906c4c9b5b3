//go:build !linux

package export

import "net"

// pathMTU is not known on this system: messages take the default size.
func pathMTU(net.Conn) (mtu int, v6, ok bool) { return 0, false, false }
