package capture

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
)

// OpenLive starts a capture on interface iface ("eth0", "any", ...),
// through libpcap or AF_PACKET as cfg.Method says. Frames are delivered as
// they arrive (immediate mode) and Next returns ErrTimeout after
// cfg.Timeout without one, so a reader never blocks for longer than that.
//
// Its errors are *Error values with a one-line message: an unknown
// interface (ErrNoInterface, listing the real ones), missing privileges
// (ErrPermission, saying how to get them), an invalid filter (ErrFilter,
// with libpcap's message and the filter).
func OpenLive(iface string, cfg LiveConfig) (Source, error) {
	if cfg.Snaplen <= 0 {
		cfg.Snaplen = DefaultSnaplen
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	n := max(1, cfg.Sockets)
	switch cfg.Method {
	case "", MethodPcap:
		return openPcap(iface, cfg)
	case MethodAFPacket:
		if iface == "any" {
			return nil, newError(ErrCapture, nil, "AF_PACKET capture takes one interface, not any: use --capture pcap to capture on all of them")
		}
		return openAFPacket(iface, cfg, n)
	case MethodAuto:
		if iface == "any" || iface == "" {
			return openPcap(iface, cfg)
		}
		src, err := openAFPacket(iface, cfg, n)
		if errors.Is(err, ErrLinkType) {
			return openPcap(iface, cfg) // not Ethernet: libpcap knows its link type
		}
		return src, err
	}
	return nil, newError(ErrCapture, nil, "unknown capture method %q: use auto, afpacket or pcap", cfg.Method)
}

// openPcap starts a capture through libpcap.
func openPcap(iface string, cfg LiveConfig) (Source, error) {
	if iface == "" {
		return nil, newError(ErrNoInterface, nil, "no interface named: %s", interfaceList())
	}
	if devs, err := pcap.FindAllDevs(); err == nil && !hasDevice(devs, iface) {
		return nil, noInterface(iface)
	}
	in, err := pcap.NewInactiveHandle(iface)
	if err != nil {
		return nil, activateError(iface, err)
	}
	defer in.CleanUp()
	for _, err := range []error{
		in.SetSnapLen(cfg.Snaplen),
		in.SetPromisc(cfg.Promisc),
		in.SetTimeout(cfg.Timeout),
		in.SetImmediateMode(true),
	} {
		if err != nil {
			return nil, activateError(iface, err)
		}
	}
	if cfg.BufferSize > 0 {
		if err := in.SetBufferSize(cfg.BufferSize); err != nil {
			return nil, activateError(iface, err)
		}
	}
	h, err := in.Activate()
	if err != nil {
		return nil, activateError(iface, err)
	}
	if cfg.Filter != "" {
		if err := h.SetBPFFilter(cfg.Filter); err != nil {
			h.Close()
			return nil, filterError(cfg.Filter, err)
		}
	}
	return &liveSource{h: h, name: iface, link: h.LinkType()}, nil
}

func hasDevice(devs []pcap.Interface, name string) bool {
	for _, d := range devs {
		if d.Name == name {
			return true
		}
	}
	return false
}

// interfaceList names the interfaces libpcap can capture on.
func interfaceList() string {
	devs, err := pcap.FindAllDevs()
	if err != nil || len(devs) == 0 {
		return "no interface to capture on was found"
	}
	names := make([]string, len(devs))
	for i, d := range devs {
		names[i] = d.Name
	}
	return "the interfaces are " + strings.Join(names, ", ")
}

func noInterface(iface string) error {
	return newError(ErrNoInterface, nil, "no interface %q: %s (flowtrack -D lists them)", iface, interfaceList())
}

// activateError turns libpcap's complaint about an interface into an *Error.
func activateError(iface string, err error) error {
	msg := err.Error()
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, "permission") || strings.Contains(low, "not permitted") ||
		strings.Contains(msg, "-11"): // PCAP_ERROR_PROMISC_PERM_DENIED
		return newError(ErrPermission, err, "capturing on %s needs root: run with sudo, or give the binary the capabilities: sudo setcap cap_net_raw,cap_net_admin+eip $(which flowtrack)", iface)
	case strings.Contains(low, "no such device"):
		return noInterface(iface)
	case strings.Contains(low, "not up"):
		return newError(ErrCapture, err, "interface %s is down: bring it up first (ip link set %s up)", iface, iface)
	}
	return newError(ErrCapture, err, "cannot capture on %s: %s", iface, msg)
}

// liveSource reads a live capture.
type liveSource struct {
	h    *pcap.Handle
	name string
	link layers.LinkType
	once sync.Once
}

func (s *liveSource) Name() string { return s.name }

func (s *liveSource) Next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	data, ci, err := s.h.ZeroCopyReadPacketData()
	switch {
	case err == nil:
		return data, ci, s.link, nil
	case errors.Is(err, pcap.NextErrorTimeoutExpired):
		return nil, ci, s.link, ErrTimeout
	case errors.Is(err, io.EOF):
		return nil, ci, s.link, io.EOF
	}
	msg := err.Error()
	if errors.Is(err, pcap.NextErrorReadError) {
		msg = s.h.Error().Error()
	}
	return nil, ci, s.link, newError(ErrCapture, err, "capture on %s failed: %s", s.name, msg)
}

func (s *liveSource) Stats() (Stats, error) {
	st, err := s.h.Stats()
	if err != nil {
		return Stats{}, newError(ErrCapture, err, "statistics of %s: %v", s.name, err)
	}
	return Stats{
		PacketsReceived: uint64(st.PacketsReceived),
		PacketsDropped:  uint64(st.PacketsDropped),
		IfDropped:       uint64(st.PacketsIfDropped),
	}, nil
}

// Close stops the capture; a Next blocked in another goroutine returns.
func (s *liveSource) Close() { s.once.Do(s.h.Close) }

// Interface is a network interface that libpcap can capture on.
type Interface struct {
	Index       int // 1-based, in libpcap's order, as tcpdump -D numbers them
	Name        string
	Description string
	Addresses   []string // CIDR notation: "192.0.2.7/24", "fe80::1/64"
	Flags       []string // "Up", "Running", "Loopback", "Wireless", "Connected", "Disconnected"
}

// String formats the interface as tcpdump -D does:
// "1.eth0 (description) [Up, Running, Connected]".
func (i Interface) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d.%s", i.Index, i.Name)
	if i.Description != "" {
		fmt.Fprintf(&b, " (%s)", i.Description)
	}
	if len(i.Flags) > 0 {
		fmt.Fprintf(&b, " [%s]", strings.Join(i.Flags, ", "))
	}
	return b.String()
}

// libpcap's PCAP_IF_ flags.
const (
	ifLoopback     = 0x01
	ifUp           = 0x02
	ifRunning      = 0x04
	ifWireless     = 0x08
	ifStatusMask   = 0x30
	ifConnected    = 0x10
	ifDisconnected = 0x20
)

// Interfaces lists the interfaces libpcap can capture on, for flowtrack -D.
func Interfaces() ([]Interface, error) {
	devs, err := pcap.FindAllDevs()
	if err != nil {
		return nil, newError(ErrCapture, err, "cannot list the interfaces: %v", err)
	}
	out := make([]Interface, 0, len(devs))
	for i, d := range devs {
		it := Interface{Index: i + 1, Name: d.Name, Description: d.Description}
		for _, a := range d.Addresses {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			bits := ip.BitLen()
			if a.Netmask != nil {
				if ones, total := net.IPMask(a.Netmask).Size(); total == bits || (total == 128 && bits == 32) {
					bits = ones
					if total == 128 && ip.Is4() {
						bits = max(ones-96, 0)
					}
				}
			}
			if pfx, err := ip.Prefix(bits); err == nil {
				it.Addresses = append(it.Addresses, netip.PrefixFrom(ip, pfx.Bits()).String())
			}
		}
		if d.Flags&ifUp != 0 {
			it.Flags = append(it.Flags, "Up")
		}
		if d.Flags&ifRunning != 0 {
			it.Flags = append(it.Flags, "Running")
		}
		if d.Flags&ifWireless != 0 {
			it.Flags = append(it.Flags, "Wireless")
		}
		if d.Flags&ifLoopback != 0 {
			it.Flags = append(it.Flags, "Loopback")
		} else {
			switch d.Flags & ifStatusMask {
			case ifConnected:
				it.Flags = append(it.Flags, "Connected")
			case ifDisconnected:
				it.Flags = append(it.Flags, "Disconnected")
			}
		}
		out = append(out, it)
	}
	return out, nil
}
