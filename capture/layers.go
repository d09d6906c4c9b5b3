package capture

import (
	"encoding/binary"
	"errors"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/flowtrack/flowtrack/flows"
)

// This file holds the DecodingLayers that Decoder registers with gopacket's
// DecodingLayerParser besides gopacket's own Ethernet, Linux SLL/SLL2,
// Loopback, GRE, ERSPAN II, UDP and VXLAN layers. Some wrap a gopacket layer to note
// what the parser walks through (VLAN tags, the innermost IP header and its
// lengths); the others cover headers for which gopacket has no DecodingLayer
// (PPPoE, PPP, MPLS), or whose gopacket layer allocates per packet (GTP-U,
// IPv6 extension headers, an IPv6 Hop-by-Hop header). None of these
// allocates.

var (
	errShort     = errors.New("header cut short")
	errVersion   = errors.New("IP version does not match the link layer's protocol")
	errIPLength  = errors.New("IP length field smaller than the headers")
	errExtLength = errors.New("extension headers longer than the IP payload")
)

// state is what the layers note about one frame while the parser walks it.
// The IP fields describe the innermost IP header seen so far: a tunnelled
// packet overwrites its carrier's.
type state struct {
	frame []byte // the bytes the parse started from: a frame or a reassembled datagram's start
	// end is where, in frame's coordinates, the innermost layer's data ends
	// by the length fields seen so far: the frame's original length, cut
	// by PPPoE, IP and UDP length fields (tshark's "reported length"). For
	// a reassembled datagram, its length.
	end  int
	vlan flows.VLAN

	afterUDP bool // a UDP header was decoded: what follows is a guess from its ports

	// next is what the last header decoded says follows it (notePayload):
	// if the parse stops there, what it could not look into.
	next Encap

	ipVer    uint8  // 0 (none yet), 4 or 6
	meta     ipMeta // TTL (hop limit) and IPv4 identification
	src, dst []byte // addresses, views into frame
	ipOff    int    // offset of the IP header in frame
	ipHdr    int    // length of the fixed IP header (IPv4 with options)
	l4Len    int    // bytes after the fixed IP header, from its length fields
	extLen   int    // bytes of extension headers (IPv6, AH) after the fixed header
	proto    uint8  // protocol of the bytes after the last header decoded

	fragmented bool   // the innermost IP packet is a fragment (not an atomic one)
	fragOff    int    // its byte offset in the datagram's fragmentable part
	fragMore   bool   // more fragments follow
	fragID     uint32 // identification
	fragHdrEnd int    // IPv6: extension header bytes up to and including the fragment header
	fragData   []byte // the fragment's captured bytes of the fragmentable part

	tcp []byte // the captured TCP header and what follows; nil if the parse did not reach TCP

	dns    []byte // the captured payload of a UDP datagram from port 53 (a DNS response); nil if none
	dnsCut bool   // ... cut short by the snapshot length

	reassembled bool // frame is the start of a reassembled datagram
	reasmCut    bool // ... one of whose fragments the snapshot length cut short
}

// offsetIn returns where sub starts in frame, both being views of one array
// that share its end (every layer slices its payload from the front and at
// most trims its end), or -1 if sub is not inside frame.
func offsetIn(frame, sub []byte) int {
	off := cap(frame) - cap(sub)
	if off < 0 || off > len(frame) {
		return -1
	}
	return off
}

// limit notes that a length field says the data starting at sub is n
// bytes long: nothing past that is part of the packet.
func (st *state) limit(sub []byte, n int) {
	if off := offsetIn(st.frame, sub); off >= 0 && off+n < st.end {
		st.end = off + n
	}
}

// setL4 sets the IP payload length to n (from the IP header's length
// fields), or to what the reported length leaves if n < 0 (IPv4 total
// length 0), limited to what it leaves in any case: a length field can
// claim more than the wire carried, and tshark then counts what there is.
func (st *state) setL4(ip []byte, n int) {
	if st.ipOff >= 0 {
		if room := st.end - st.ipOff - st.ipHdr; n < 0 || n > room {
			n = room
		}
	}
	st.l4Len = n
	st.limit(ip, st.ipHdr+max(n, 0))
}

// vlanLayer is an 802.1Q or 802.1ad tag. Each tag pushes its VLAN ID, so a
// QinQ frame records both although the parser reuses one layer for both.
type vlanLayer struct {
	layers.Dot1Q
	st *state
}

func (l *vlanLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if err := l.Dot1Q.DecodeFromBytes(data, df); err != nil {
		return err
	}
	l.st.vlan.Push(l.VLANIdentifier)
	l.st.notePayload(EncapEtherType, uint32(l.Type))
	return nil
}

func (l *vlanLayer) NextLayerType() gopacket.LayerType {
	if l.Type == layers.EthernetTypeLLC {
		return layers.LayerTypeLLC
	}
	return etherNext(uint16(l.Type))
}

// ip4Layer is gopacket's IPv4 layer, noting the header in state.
type ip4Layer struct {
	layers.IPv4
	st *state
}

func (l *ip4Layer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) > 0 && data[0]>>4 != 4 {
		return errVersion
	}
	if err := l.IPv4.DecodeFromBytes(data, df); err != nil {
		return err
	}
	st := l.st
	hl := int(l.IHL) * 4
	st.ipVer, st.meta = 4, ipMeta{ttl: data[8], id: binary.BigEndian.Uint16(data[4:6])}
	st.src, st.dst = data[12:16], v4Destination(data, hl)
	st.ipOff = offsetIn(st.frame, data)
	st.ipHdr = hl
	if total := int(binary.BigEndian.Uint16(data[2:4])); total != 0 {
		st.setL4(data, total-hl)
	} else {
		// BIG TCP (and TSO on some drivers) leaves the total length 0 for
		// a datagram over 64 KiB: the frame's length tells.
		st.setL4(data, -1)
	}
	if st.l4Len < 0 {
		return errIPLength
	}
	st.extLen = 0
	st.proto = data[9]
	st.notePayload(EncapIPProto, uint32(st.proto))
	ff := binary.BigEndian.Uint16(data[6:8])
	st.fragMore = ff&0x2000 != 0
	st.fragOff = int(ff&0x1fff) * 8
	st.fragmented = st.fragMore || st.fragOff != 0
	st.fragID = uint32(binary.BigEndian.Uint16(data[4:6]))
	st.fragHdrEnd = 0
	st.fragData = l.Payload
	st.tcp = nil
	return nil
}

// ip6Layer is gopacket's IPv6 layer, noting the header in state. A packet
// whose first extension header is Hop-by-Hop it decodes itself: gopacket's
// layer decodes that header with it (for the Jumbo Payload option of BIG
// TCP), allocating for each option, and BIG TCP is a steady stream of such
// packets. The Hop-by-Hop header counts as an extension header.
type ip6Layer struct {
	layers.IPv6
	st *state

	own        bool // decoded here, not by gopacket: next and payload hold
	ownNext    uint8
	ownPayload []byte
}

const optJumbo = 0xc2 // IPv6 Jumbo Payload option type (RFC 2675)

var (
	errJumbo   = errors.New("IPv6 payload length 0 without a valid Jumbo Payload option")
	errNoJumbo = errors.New("IPv6 Jumbo Payload option with a non-zero payload length")
)

func (l *ip6Layer) NextLayerType() gopacket.LayerType {
	if l.own {
		return layers.IPProtocol(l.ownNext).LayerType()
	}
	return l.IPv6.NextLayerType()
}

func (l *ip6Layer) LayerPayload() []byte {
	if l.own {
		return l.ownPayload
	}
	return l.IPv6.LayerPayload()
}

func (l *ip6Layer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) > 0 && data[0]>>4 != 6 {
		return errVersion
	}
	st := l.st
	l.own = len(data) >= 40 && data[6] == uint8(layers.IPProtocolIPv6HopByHop)
	if l.own {
		plen, hbh, err := decodeHopByHop(data, df)
		if err != nil {
			return err
		}
		l.ownNext, l.ownPayload = data[40], data[40+hbh:min(len(data), 40+max(plen, hbh))]
		st.extLen, st.proto = hbh, data[40]
		st.ipOff = offsetIn(st.frame, data)
		st.ipHdr = 40
		st.setL4(data, plen)
	} else {
		if err := l.IPv6.DecodeFromBytes(data, df); err != nil {
			return err
		}
		st.extLen, st.proto = 0, data[6]
		st.ipOff = offsetIn(st.frame, data)
		st.ipHdr = 40
		st.setL4(data, int(l.Length))
	}
	st.ipVer, st.meta = 6, ipMeta{ttl: data[7]}
	st.src, st.dst = data[8:24], data[24:40]
	st.notePayload(EncapIPProto, uint32(st.proto))
	if st.l4Len < st.extLen {
		return errExtLength
	}
	st.fragmented = false
	st.fragOff, st.fragMore, st.fragID, st.fragHdrEnd = 0, false, 0, 0
	st.fragData = nil
	st.tcp = nil
	return nil
}

// decodeHopByHop reads an IPv6 header (at least 40 bytes) followed by a
// Hop-by-Hop header, and returns the payload length (the Jumbo Payload
// option's if the header's is 0) and the Hop-by-Hop header's length.
func decodeHopByHop(data []byte, df gopacket.DecodeFeedback) (plen, hbh int, err error) {
	plen = int(binary.BigEndian.Uint16(data[4:6]))
	h := data[40:]
	if len(h) < 8 {
		df.SetTruncated()
		return 0, 0, errShort
	}
	hbh = (int(h[1]) + 1) * 8
	if len(h) < hbh {
		df.SetTruncated()
		return 0, 0, errShort
	}
	jumbo := -1
	for o := h[2:hbh]; len(o) > 0; {
		if o[0] == 0 { // Pad1
			o = o[1:]
			continue
		}
		if len(o) < 2 || len(o) < 2+int(o[1]) {
			return 0, 0, errShort
		}
		if o[0] == optJumbo && o[1] == 4 {
			jumbo = int(binary.BigEndian.Uint32(o[2:6]))
		}
		o = o[2+int(o[1]):]
	}
	switch {
	case plen == 0 && jumbo <= 0xffff:
		return 0, 0, errJumbo
	case plen != 0 && jumbo >= 0:
		return 0, 0, errNoJumbo
	case plen == 0:
		plen = jumbo
	}
	if plen < hbh {
		return 0, 0, errExtLength
	}
	return plen, hbh, nil
}

// extLayer is one IPv6 extension header (Hop-by-Hop after the first header,
// Routing, Fragment, Destination Options) or an IPsec Authentication Header
// (IPv4 or IPv6). It adds its length to state.extLen; the Fragment header
// also notes the fragment.
type extLayer struct {
	layers.BaseLayer
	typ  gopacket.LayerType
	next uint8
	frag bool // a Fragment header of a real (not atomic) fragment
	st   *state
}

func (l *extLayer) CanDecode() gopacket.LayerClass { return l.typ }

func (l *extLayer) NextLayerType() gopacket.LayerType {
	if l.frag {
		return gopacket.LayerTypeFragment
	}
	return layers.IPProtocol(l.next).LayerType()
}

func (l *extLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		df.SetTruncated()
		return errShort
	}
	var n int
	switch l.typ {
	case layers.LayerTypeIPSecAH:
		n = (int(data[1]) + 2) * 4
	case layers.LayerTypeIPv6Fragment:
		n = 8
	default:
		n = (int(data[1]) + 1) * 8
	}
	if len(data) < n {
		df.SetTruncated()
		return errShort
	}
	st := l.st
	l.next = data[0]
	l.frag = false
	st.extLen += n
	st.proto = data[0]
	st.notePayload(EncapIPProto, uint32(st.proto))
	if st.extLen > st.l4Len {
		return errExtLength
	}
	if l.typ == layers.LayerTypeIPv6Fragment {
		off := int(binary.BigEndian.Uint16(data[2:4]) &^ 7)
		more := data[3]&1 != 0
		if off != 0 || more {
			l.frag = true
			st.fragmented = true
			st.fragOff, st.fragMore = off, more
			st.fragID = binary.BigEndian.Uint32(data[4:8])
			st.fragHdrEnd = st.extLen
			st.fragData = data[n:]
		}
	}
	l.BaseLayer = layers.BaseLayer{Contents: data[:n], Payload: data[n:]}
	return nil
}

// tcpLayer ends the parse at a TCP header, which Decoder reads itself: it
// needs only the fixed header and the window scale option, and must take a
// header whose options the snapshot length cut off.
type tcpLayer struct {
	st *state
}

func (l *tcpLayer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeTCP }
func (l *tcpLayer) NextLayerType() gopacket.LayerType { return gopacket.LayerTypeZero }
func (l *tcpLayer) LayerPayload() []byte              { return nil }
func (l *tcpLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	l.st.tcp = data
	return nil
}

// udpLayer is gopacket's UDP layer, noting that a UDP header was passed:
// what follows it is a tunnel only by the port number's say-so.
type udpLayer struct {
	layers.UDP
	st *state
}

func (l *udpLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if err := l.UDP.DecodeFromBytes(data, df); err != nil {
		return err
	}
	l.st.afterUDP = true
	l.st.next = Encap{}
	if l.Length >= 8 {
		l.st.limit(data, int(l.Length))
	}
	if l.SrcPort == 53 {
		l.st.dns = l.Payload
		l.st.dnsCut = int(l.Length) > len(data)
	} else {
		l.st.dns = nil // the datagram inside a tunnel is not the carrier
	}
	return nil
}

// NextLayerType is the tunnel that the destination port, or else the
// source port, names; gopacket's table of ports names many protocols that
// carry no packets, and none of flowtrack's own tunnel layers.
func (l *udpLayer) NextLayerType() gopacket.LayerType {
	if t := udpTunnel(uint16(l.DstPort)); t != gopacket.LayerTypePayload {
		return t
	}
	return udpTunnel(uint16(l.SrcPort))
}

func udpTunnel(port uint16) gopacket.LayerType {
	switch port {
	case portVXLAN:
		return layers.LayerTypeVXLAN
	case portGTPU:
		return layers.LayerTypeGTPv1U
	case portGeneve:
		return layers.LayerTypeGeneve
	case portGREinUDP:
		return layers.LayerTypeGRE
	case portTeredo:
		return layerTypeTeredo
	case portAYIYA:
		return layerTypeAYIYA
	}
	return gopacket.LayerTypePayload
}

// routeDestination returns the final destination of an IPv4 loose or
// strict source route option among opts (the options after the fixed
// header), or nil if there is none or the route is complete. Until the
// route's last hop, the header's destination is the next hop and the
// route's last address is where the packet goes: TCP's pseudo-header, and
// so the connection, use that one (RFC 791 3.1, RFC 1122 4.2.2.7).
func routeDestination(opts []byte) []byte {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0: // end of options
			return nil
		case 1: // no operation
			i++
			continue
		}
		if i+1 >= len(opts) {
			return nil
		}
		n := int(opts[i+1])
		if n < 2 || i+n > len(opts) {
			return nil
		}
		if t := opts[i]; (t == 0x83 || t == 0x89) && n >= 7 {
			ptr := int(opts[i+2]) // 1-based offset of the next address, within the option
			last := i + 3 + (n-3)/4*4 - 4
			if ptr >= 4 && ptr <= n-3 {
				return opts[last : last+4]
			}
		}
		i += n
	}
	return nil
}

// pppoeLayer is a PPPoE header (RFC 2516). Session packets (code 0) carry
// PPP; discovery packets carry nothing of interest.
type pppoeLayer struct {
	layers.BaseLayer
	code uint8
	st   *state
}

func (l *pppoeLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypePPPoE }
func (l *pppoeLayer) NextLayerType() gopacket.LayerType {
	if l.code != 0 {
		return gopacket.LayerTypePayload
	}
	return layers.LayerTypePPP
}

func (l *pppoeLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 6 {
		df.SetTruncated()
		return errShort
	}
	l.code = data[1]
	l.st.next = Encap{} // discovery: known, not IP
	end := 6 + int(binary.BigEndian.Uint16(data[4:6]))
	l.st.limit(data, end)
	if end > len(data) {
		df.SetTruncated() // snapshot length: carry on with what there is
		end = len(data)
	}
	l.BaseLayer = layers.BaseLayer{Contents: data[:6], Payload: data[6:end]}
	return nil
}

// pppLayer is a PPP header: an optional HDLC address and control field
// (ff 03) and a one- or two-byte protocol number.
type pppLayer struct {
	layers.BaseLayer
	proto uint16
	st    *state
}

func (l *pppLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypePPP }
func (l *pppLayer) NextLayerType() gopacket.LayerType {
	switch l.proto {
	case 0x0021:
		return layers.LayerTypeIPv4
	case 0x0057:
		return layers.LayerTypeIPv6
	}
	return gopacket.LayerTypePayload
}

func (l *pppLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	n := 0
	if len(data) >= 2 && data[0] == 0xff && data[1] == 0x03 {
		n = 2
	}
	if len(data) < n+1 {
		df.SetTruncated()
		return errShort
	}
	if data[n]&1 == 1 { // protocol field compression (RFC 1661 6.5)
		l.proto = uint16(data[n])
		n++
	} else {
		if len(data) < n+2 {
			df.SetTruncated()
			return errShort
		}
		l.proto = binary.BigEndian.Uint16(data[n:])
		n += 2
	}
	l.st.notePayload(EncapPPP, uint32(l.proto))
	l.BaseLayer = layers.BaseLayer{Contents: data[:n], Payload: data[n:]}
	return nil
}

// mplsLayer is an MPLS label stack; after the bottom label the first nibble
// tells IPv4 from IPv6, as tshark guesses too.
type mplsLayer struct {
	layers.BaseLayer
	next gopacket.LayerType
	st   *state
}

func (l *mplsLayer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeMPLS }
func (l *mplsLayer) NextLayerType() gopacket.LayerType { return l.next }
func (l *mplsLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	n := 0
	for {
		if len(data) < n+4 {
			df.SetTruncated()
			return errShort
		}
		bottom := data[n+2]&1 != 0
		n += 4
		if bottom {
			break
		}
	}
	l.next = gopacket.LayerTypePayload
	l.st.notePayload(EncapMPLS, 0)
	if len(data) > n {
		switch data[n] >> 4 {
		case 4:
			l.next = layers.LayerTypeIPv4
		case 6:
			l.next = layers.LayerTypeIPv6
		}
	}
	l.BaseLayer = layers.BaseLayer{Contents: data[:n], Payload: data[n:]}
	return nil
}

// gtpLayer is a GTP-U (GTPv1-U, UDP port 2152) header. A G-PDU (message
// type 255) carries a user IP packet. Unlike gopacket's GTPv1U it neither
// allocates for extension headers nor requires the whole message to have
// been captured.
type gtpLayer struct {
	layers.BaseLayer
	next gopacket.LayerType
	st   *state
}

func (l *gtpLayer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeGTPv1U }
func (l *gtpLayer) NextLayerType() gopacket.LayerType { return l.next }
func (l *gtpLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		df.SetTruncated()
		return errShort
	}
	if data[0]>>5 != 1 || data[0]&0x10 == 0 {
		return errors.New("not a GTPv1 header")
	}
	n := 8
	if data[0]&0x07 != 0 { // E, S or PN: the optional 4 bytes are present
		n = 12
		if len(data) < n {
			df.SetTruncated()
			return errShort
		}
		next := data[11]
		if data[0]&0x04 == 0 {
			next = 0
		}
		for next != 0 {
			if len(data) < n+1 {
				df.SetTruncated()
				return errShort
			}
			ext := int(data[n]) * 4
			if ext == 0 {
				return errors.New("GTP extension header of length 0")
			}
			if len(data) < n+ext {
				df.SetTruncated()
				return errShort
			}
			next = data[n+ext-1]
			n += ext
		}
	}
	end := 8 + int(binary.BigEndian.Uint16(data[2:4]))
	if end < n {
		return errors.New("GTP message length shorter than its header")
	}
	l.st.limit(data, end)
	if end > len(data) {
		end = len(data)
	}
	l.next = gopacket.LayerTypePayload
	l.st.next = Encap{} // signalling: known, not IP
	if data[1] == 255 && end > n {
		switch data[n] >> 4 {
		case 4:
			l.next = layers.LayerTypeIPv4
		case 6:
			l.next = layers.LayerTypeIPv6
		}
	}
	l.BaseLayer = layers.BaseLayer{Contents: data[:n], Payload: data[n:end]}
	return nil
}

// loopLayer is gopacket's BSD loopback layer, noting the address family.
type loopLayer struct {
	layers.Loopback
	st *state
}

func (l *loopLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if err := l.Loopback.DecodeFromBytes(data, df); err != nil {
		return err
	}
	l.st.notePayload(EncapFamily, uint32(l.Family))
	return nil
}
