package capture

import (
	"encoding/binary"

	"github.com/flowtrack/flowtrack/flows"
)

// fastEthernet decodes the common case by hand: an Ethernet frame, with up
// to two VLAN tags, carrying an unfragmented IPv4 or IPv6 packet whose
// payload is a TCP segment (IPv4 options allowed, no IPv6 extension
// headers). It reports false for anything else, which then goes through
// the gopacket layers (tunnels, PPPoE, MPLS, fragments, extension headers,
// BIG TCP, odd lengths). gopacket's layer dispatch is a large part of a
// replay's cost (docs/performance-notes-ui.md); this path gives the same
// Packet as the layers do (TestFastPathMatchesLayers checks every bundled
// frame). It also returns the TCP payload bytes captured.
func fastEthernet(data []byte, wire int, ts int64, p *flows.Packet) (payload []byte, ok bool) {
	if len(data) < 14 {
		return nil, false
	}
	var vlan flows.VLAN
	off := 12
	et := binary.BigEndian.Uint16(data[off:])
	for i := 0; i < 2 && (et == 0x8100 || et == 0x88a8); i++ {
		if len(data) < off+6 {
			return nil, false
		}
		vlan.Push(binary.BigEndian.Uint16(data[off+2:]) & 0x0fff)
		off += 4
		et = binary.BigEndian.Uint16(data[off:])
	}
	ipOff := off + 2
	ip := data[ipOff:]
	var l4, ipHdr int
	var (
		src, dst []byte
		meta     ipMeta
	)
	v6 := et == 0x86dd
	switch et {
	case 0x0800:
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != 6 {
			return nil, false
		}
		ipHdr = int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if ipHdr < 20 || total < ipHdr || len(ip) < ipHdr || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
			return nil, false // options cut short, BIG TCP, a fragment
		}
		l4 = total - ipHdr
		src, dst, meta = ip[12:16], v4Destination(ip, ipHdr), ipMeta{ttl: ip[8], id: binary.BigEndian.Uint16(ip[4:])}
	case 0x86dd:
		if len(ip) < 40 || ip[0]>>4 != 6 || ip[6] != 6 {
			return nil, false
		}
		ipHdr = 40
		l4 = int(binary.BigEndian.Uint16(ip[4:]))
		if l4 == 0 {
			return nil, false // a jumbogram, or nothing
		}
		src, dst, meta = ip[8:24], ip[24:40], ipMeta{ttl: ip[7]}
	default:
		return nil, false
	}
	if room := wire - ipOff - ipHdr; l4 > room {
		l4 = room // the IP length claims more than the wire carried
	}
	tcp := ip[ipHdr:]
	if len(tcp) > l4 {
		tcp = tcp[:max(l4, 0)]
	}
	if len(tcp) < 20 {
		return nil, false
	}
	hl := int(tcp[12]>>4) * 4
	if hl < 20 || l4 < hl {
		return nil, false
	}
	if v6 {
		p.Tuple.SetV6(src, dst)
	} else {
		p.Tuple.SetV4(src, dst)
	}
	setTCP(p, tcp, hl, l4-hl, ts, uint64(wire), uint64(ipHdr+l4), vlan, meta)
	return tcp[min(hl, len(tcp)):], true
}

// v4Destination is an IPv4 header's destination, or the final destination
// of its source route (routeDestination), as the layers take it.
func v4Destination(ip []byte, hl int) []byte {
	if hl > 20 {
		if d := routeDestination(ip[20:hl]); d != nil {
			return d
		}
	}
	return ip[16:20]
}
