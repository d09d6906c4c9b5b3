package capture

import (
	"encoding/binary"
	"errors"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// This file holds the link layers and tunnels that gopacket has no
// DecodingLayer for, or whose gopacket layer allocates per packet (RadioTap
// keeps a slice of its present words, Dot11 allocates its QoS and data
// layers, Geneve its options) or rejects valid frames (LinuxSLL and
// LinuxSLL2 refuse an address length over 8, which the kernel writes for
// hardware addresses longer than the field: the field then holds the first
// 8 bytes). Each is written from its specification, cited at its type.

// Link types that gopacket has no constant for.
const (
	linkTypeIPoIB layers.LinkType = 242 // LINKTYPE_IPOIB
	linkTypeNFLOG layers.LinkType = 239 // LINKTYPE_NFLOG
)

// UDP ports of the tunnels decoded after UDP.
const (
	portVXLAN     = 4789
	portGTPU      = 2152
	portGeneve    = 6081
	portGREinUDP  = 4754 // RFC 8086
	portTeredo    = 3544 // RFC 4380
	portAYIYA     = 5072
	etherTypePBB  = 0x88e7 // 802.1ah I-tag
	etherTypeVNT  = 0x8926 // VN-Tag
	etherTypeTEB  = 0x6558 // transparent Ethernet bridging
	arubaGREFirst = 0x8200 // Aruba's GRE protocol types carrying 802.11 frames,
	arubaGRELast  = 0x8300 // as Wireshark and Zeek decode them
)

// The layer types flowtrack registers for its own layers.
var (
	layerTypeNFLOG       = gopacket.RegisterLayerType(2901, gopacket.LayerTypeMetadata{Name: "NFLOG", Decoder: notDecoder})
	layerTypeCHDLC       = gopacket.RegisterLayerType(2902, gopacket.LayerTypeMetadata{Name: "CiscoHDLC", Decoder: notDecoder})
	layerTypeIPoIB       = gopacket.RegisterLayerType(2903, gopacket.LayerTypeMetadata{Name: "IPoIB", Decoder: notDecoder})
	layerTypeARCnet      = gopacket.RegisterLayerType(2904, gopacket.LayerTypeMetadata{Name: "ARCnet", Decoder: notDecoder})
	layerTypePBB         = gopacket.RegisterLayerType(2905, gopacket.LayerTypeMetadata{Name: "PBB", Decoder: notDecoder})
	layerTypeVNTag       = gopacket.RegisterLayerType(2906, gopacket.LayerTypeMetadata{Name: "VNTag", Decoder: notDecoder})
	layerTypeTeredo      = gopacket.RegisterLayerType(2907, gopacket.LayerTypeMetadata{Name: "Teredo", Decoder: notDecoder})
	layerTypeAYIYA       = gopacket.RegisterLayerType(2908, gopacket.LayerTypeMetadata{Name: "AYIYA", Decoder: notDecoder})
	layerTypeARCnetLinux = gopacket.RegisterLayerType(2909, gopacket.LayerTypeMetadata{Name: "ARCnetLinux", Decoder: notDecoder})
)

// notDecoder is the packet decoder of flowtrack's layer types: they are
// only ever decoded by a DecodingLayerParser.
var notDecoder = gopacket.DecodeFunc(func([]byte, gopacket.PacketBuilder) error {
	return errors.New("flowtrack's layers decode only in a DecodingLayerParser")
})

var (
	errNotTunnel = errors.New("not the tunnel header its port suggests")
	errBadHeader = errors.New("header contradicts itself")
)

// etherNext is the layer that an Ethernet type names, with the types
// gopacket does not know (802.1ah, VN-Tag) added.
func etherNext(et uint16) gopacket.LayerType {
	switch et {
	case etherTypePBB:
		return layerTypePBB
	case etherTypeVNT:
		return layerTypeVNTag
	case etherTypeTEB:
		return layers.LayerTypeEthernet
	}
	return layers.EthernetType(et).LayerType()
}

// notePayload records the header field that names what follows, so that
// a parse that stops there can say what it stopped at. A layer whose
// payload is known not to hold IP sets st.next to the zero Encap.
func (st *state) notePayload(f EncapField, v uint32) { st.next = Encap{f, v} }

// ethLayer is gopacket's Ethernet layer, reading 802.1ah and VN-Tag too.
type ethLayer struct {
	layers.Ethernet
	st *state
}

func (l *ethLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if err := l.Ethernet.DecodeFromBytes(data, df); err != nil {
		return err
	}
	l.st.notePayload(EncapEtherType, uint32(l.EthernetType))
	return nil
}

func (l *ethLayer) NextLayerType() gopacket.LayerType {
	if l.EthernetType == layers.EthernetTypeLLC {
		return layers.LayerTypeLLC
	}
	return etherNext(uint16(l.EthernetType))
}

// sllLayer is a Linux cooked header, version 1 (LINKTYPE_LINUX_SLL, 16
// bytes) or 2 (LINKTYPE_LINUX_SLL2, 20 bytes), as libpcap's pcap-linktype
// documents it. The address field is 8 bytes whatever the address length
// says: a longer hardware address (InfiniBand's is 20) is cut to 8, and the
// frame is as valid as any.
type sllLayer struct {
	layers.BaseLayer
	v2       bool
	proto    uint16
	hardware uint16 // ARPHRD_ type
	st       *state
}

// ARPHRD_ types whose cooked frames are not what the protocol field says.
const (
	arphrdNetlink   = 824
	arphrdRadiotap  = 803
	arphrdIEEE80211 = 801
)

func (l *sllLayer) CanDecode() gopacket.LayerClass {
	if l.v2 {
		return layers.LayerTypeLinuxSLL2
	}
	return layers.LayerTypeLinuxSLL
}

func (l *sllLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	n := 16
	if l.v2 {
		n = 20
	}
	if len(data) < n {
		df.SetTruncated()
		return errShort
	}
	if l.v2 {
		l.proto, l.hardware = binary.BigEndian.Uint16(data), binary.BigEndian.Uint16(data[8:])
	} else {
		l.hardware, l.proto = binary.BigEndian.Uint16(data[2:]), binary.BigEndian.Uint16(data[14:])
	}
	l.BaseLayer = layers.BaseLayer{Contents: data[:n], Payload: data[n:]}
	switch {
	case l.hardware == arphrdNetlink:
		l.st.next = Encap{} // netlink messages: known, not IP
	case l.proto == 0x0001: // ETH_P_802_3: Novell's raw 802.3, IPX
		l.st.notePayload(EncapLLC, 0xff)
	default:
		l.st.notePayload(EncapEtherType, uint32(l.proto))
	}
	return nil
}

func (l *sllLayer) NextLayerType() gopacket.LayerType {
	switch {
	case l.hardware == arphrdNetlink:
		return gopacket.LayerTypePayload
	case l.hardware == arphrdRadiotap:
		return layers.LayerTypeRadioTap
	case l.hardware == arphrdIEEE80211:
		return layers.LayerTypeDot11
	case l.proto == 0x0001:
		return gopacket.LayerTypePayload
	case l.proto == 0x0004: // ETH_P_802_2: an LLC header follows
		return layers.LayerTypeLLC
	}
	return etherNext(l.proto)
}

// etherTagLayer is a header that ends with an Ethernet type naming what
// follows: Cisco HDLC (LINKTYPE_C_HDLC: address, control, protocol), IP
// over InfiniBand (LINKTYPE_IPOIB: tcpdump's 44-byte header, the type at
// byte 40), VN-Tag (4 bytes of tag, then the type) and Geneve (RFC 8926:
// 8 bytes and the options' length).
type etherTagLayer struct {
	layers.BaseLayer
	typ   gopacket.LayerType
	proto uint16
	st    *state
}

func (l *etherTagLayer) CanDecode() gopacket.LayerClass    { return l.typ }
func (l *etherTagLayer) NextLayerType() gopacket.LayerType { return etherNext(l.proto) }

func (l *etherTagLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	var n, at int // header length, offset of the type
	switch l.typ {
	case layerTypeCHDLC:
		n, at = 4, 2
	case layerTypeIPoIB:
		n, at = 44, 40
	case layerTypeVNTag:
		n, at = 6, 4
	case layers.LayerTypeGeneve:
		if len(data) < 8 {
			df.SetTruncated()
			return errShort
		}
		if data[0]>>6 != 0 { // version 0 is the only one
			return errNotTunnel
		}
		n, at = 8+int(data[0]&0x3f)*4, 2
	}
	if len(data) < n {
		df.SetTruncated()
		return errShort
	}
	l.proto = binary.BigEndian.Uint16(data[at:])
	l.st.notePayload(EncapEtherType, uint32(l.proto))
	l.BaseLayer = layers.BaseLayer{Contents: data[:n], Payload: data[n:]}
	return nil
}

// pbbLayer is an 802.1ah I-tag (4 bytes: priority, flags, service ID); the
// customer's Ethernet frame follows, addresses first.
type pbbLayer struct{ layers.BaseLayer }

func (l *pbbLayer) CanDecode() gopacket.LayerClass    { return layerTypePBB }
func (l *pbbLayer) NextLayerType() gopacket.LayerType { return layers.LayerTypeEthernet }
func (l *pbbLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 4+14 {
		df.SetTruncated()
		return errShort
	}
	l.BaseLayer = layers.BaseLayer{Contents: data[:4], Payload: data[4:]}
	return nil
}

// snapLayer is gopacket's SNAP layer: an organisation code of 0 means the
// type is an Ethernet type (RFC 1042); others are vendors' protocols (Cisco's
// CDP, VTP, ...), which do not carry IP.
type snapLayer struct {
	layers.SNAP
	st *state
}

func (l *snapLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if err := l.SNAP.DecodeFromBytes(data, df); err != nil {
		return err
	}
	if l.isEther() {
		l.st.notePayload(EncapEtherType, uint32(l.Type))
	} else {
		l.st.next = Encap{} // a vendor's protocol: known, not IP
	}
	return nil
}

func (l *snapLayer) isEther() bool {
	oc := l.OrganizationalCode
	return len(oc) == 3 && oc[0] == 0 && oc[1] == 0 && (oc[2] == 0 || oc[2] == 0xf8) // 00-00-f8: 802.1H bridge tunnel
}

func (l *snapLayer) NextLayerType() gopacket.LayerType {
	if !l.isEther() {
		return gopacket.LayerTypePayload
	}
	return etherNext(uint16(l.Type))
}

// llcLayer is gopacket's 802.2 LLC layer, noting the service access point.
type llcLayer struct {
	layers.LLC
	st *state
}

func (l *llcLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if err := l.LLC.DecodeFromBytes(data, df); err != nil {
		return err
	}
	l.st.notePayload(EncapLLC, uint32(l.DSAP))
	return nil
}

func (l *llcLayer) NextLayerType() gopacket.LayerType {
	if l.DSAP == 0xaa && l.SSAP == 0xaa {
		return layers.LayerTypeSNAP
	}
	return gopacket.LayerTypePayload
}

// greLayer is gopacket's GRE layer, reading Aruba's protocol types (802.11
// frames from an access point to its controller) too.
type greLayer struct {
	layers.GRE
	st *state
}

func (l *greLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if err := l.GRE.DecodeFromBytes(data, df); err != nil {
		return err
	}
	l.st.notePayload(EncapEtherType, uint32(l.Protocol))
	return nil
}

func (l *greLayer) NextLayerType() gopacket.LayerType {
	if p := uint16(l.Protocol); p >= arubaGREFirst && p <= arubaGRELast {
		return layers.LayerTypeDot11
	}
	if l.Protocol == layers.EthernetTypeERSPAN || l.Protocol == layers.EthernetTypePPP {
		return l.GRE.NextLayerType()
	}
	return etherNext(uint16(l.Protocol))
}

// radiotapLayer is a radiotap header (LINKTYPE_IEEE802_11_RADIOTAP): a
// version of 0, a pad byte and the header's length, little-endian; an
// 802.11 frame follows. Its fields say nothing the decoder needs.
type radiotapLayer struct{ layers.BaseLayer }

func (l *radiotapLayer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeRadioTap }
func (l *radiotapLayer) NextLayerType() gopacket.LayerType { return layers.LayerTypeDot11 }
func (l *radiotapLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		df.SetTruncated()
		return errShort
	}
	n := int(binary.LittleEndian.Uint16(data[2:]))
	if data[0] != 0 || n < 8 {
		return errBadHeader
	}
	if len(data) < n {
		df.SetTruncated()
		return errShort
	}
	l.BaseLayer = layers.BaseLayer{Contents: data[:n], Payload: data[n:]}
	return nil
}

// dot11Layer is an 802.11 MAC header (IEEE 802.11-2020 9.2.4). Only data
// frames carry IP, after an LLC/SNAP header; management and control
// frames, and data frames without data, are traffic that is not TCP;
// protected (encrypted) frames and A-MSDUs are named, not decoded.
type dot11Layer struct {
	layers.BaseLayer
	next gopacket.LayerType
	st   *state
}

func (l *dot11Layer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeDot11 }
func (l *dot11Layer) NextLayerType() gopacket.LayerType { return l.next }
func (l *dot11Layer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 2 {
		df.SetTruncated()
		return errShort
	}
	fc0, fc1 := data[0], data[1]
	if fc0&3 != 0 { // protocol version 0 is the only one
		return errBadHeader
	}
	l.next = gopacket.LayerTypePayload
	l.st.next = Encap{} // management, control, no data: known, not IP
	if (fc0>>2)&3 != 2 {
		l.BaseLayer = layers.BaseLayer{Contents: data, Payload: nil}
		return nil
	}
	sub := fc0 >> 4
	n := 24
	if fc1&3 == 3 { // to and from the distribution system: a fourth address
		n += 6
	}
	qos := sub&0x8 != 0
	if qos {
		n += 2
		if fc1&0x80 != 0 { // +HTC: an HT control field
			n += 4
		}
	}
	if len(data) < n {
		df.SetTruncated()
		return errShort
	}
	l.BaseLayer = layers.BaseLayer{Contents: data[:n], Payload: data[n:]}
	switch {
	case sub&0x4 != 0: // no data (null function)
	case fc1&0x40 != 0:
		l.st.notePayload(Encap80211, dot11Protected)
	case qos && data[n-2-btoi(fc1&0x80 != 0)*4]&0x80 != 0:
		l.st.notePayload(Encap80211, dot11AMSDU)
	default:
		l.next = layers.LayerTypeLLC
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// nflogLayer is a Linux NFLOG header (LINKTYPE_NFLOG): address family,
// version, resource ID, then type-length-value attributes in the capturing
// host's byte order, each padded to 4 bytes; the packet is the payload
// attribute (NFULA_PAYLOAD, type 9). As Wireshark does, the byte order is
// told from the first attribute, which is always the 8-byte packet header.
type nflogLayer struct {
	layers.BaseLayer
	next gopacket.LayerType
	st   *state
}

const nfulaPayload = 9

func (l *nflogLayer) CanDecode() gopacket.LayerClass    { return layerTypeNFLOG }
func (l *nflogLayer) NextLayerType() gopacket.LayerType { return l.next }
func (l *nflogLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 4 {
		df.SetTruncated()
		return errShort
	}
	var order binary.ByteOrder = binary.BigEndian
	if len(data) >= 6 && data[5] == 0 && data[4] != 0 {
		order = binary.LittleEndian
	}
	family := uint32(data[0])
	l.st.notePayload(EncapFamily, family)
	l.next = gopacket.LayerTypePayload
	l.BaseLayer = layers.BaseLayer{Contents: data, Payload: nil}
	for off := 4; off+4 <= len(data); {
		n, typ := int(order.Uint16(data[off:])), order.Uint16(data[off+2:])&0x7fff
		if n < 4 {
			return errBadHeader
		}
		if typ != nfulaPayload {
			off += (n + 3) &^ 3
			continue
		}
		l.st.limit(data[off+4:], n-4)
		end := min(off+n, len(data))
		if end < off+n {
			df.SetTruncated() // the snapshot length: carry on with what there is
		}
		l.BaseLayer = layers.BaseLayer{Contents: data[:off+4], Payload: data[off+4 : end]}
		switch family {
		case 2: // AF_INET
			l.next = layers.LayerTypeIPv4
		case 10: // AF_INET6
			l.next = layers.LayerTypeIPv6
		}
		return nil
	}
	// No payload attribute: a log entry without the packet.
	l.st.next = Encap{}
	return nil
}

// arcnetLayer is an ARCnet header, as tcpdump's print-arcnet.c reads it:
// BSD's (LINKTYPE_ARCNET_BSD: source, destination, protocol, then for the
// RFC 1201 protocols a split flag and a sequence number, with 4 more bytes
// in an exception frame) or Linux's (LINKTYPE_ARCNET_LINUX: an offset
// field after the addresses, and reassembled packets only). A middle
// fragment of a split packet carries no header of its own.
type arcnetLayer struct {
	layers.BaseLayer
	linux bool
	next  gopacket.LayerType
	st    *state
}

// ARCnet protocol IDs (RFC 1201, RFC 1051, tcpdump's arcnet.h).
const (
	arcIP     = 0xd4
	arcIPOld  = 0xf0
	arcIPv6   = 0xc4
	arcARPOld = 0xf1
	arcDiag   = 0x80
)

func (l *arcnetLayer) CanDecode() gopacket.LayerClass {
	if l.linux {
		return layerTypeARCnetLinux
	}
	return layerTypeARCnet
}
func (l *arcnetLayer) NextLayerType() gopacket.LayerType { return l.next }
func (l *arcnetLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	at := 2 // where the protocol ID is
	if l.linux {
		at = 4
	}
	if len(data) < at+1 {
		df.SetTruncated()
		return errShort
	}
	proto := data[at]
	n := at + 1
	split := 0
	if proto != arcIPOld && proto != arcARPOld && proto != arcDiag {
		n += 3 // split flag and sequence number
		if len(data) < n {
			df.SetTruncated()
			return errShort
		}
		split = int(data[at+1])
		if !l.linux && split == 0xff { // an exception frame: the flag and number come again
			n += 4
			if len(data) < n {
				df.SetTruncated()
				return errShort
			}
			split = int(data[at+5])
		}
		if l.linux {
			split = 0 // Linux hands over reassembled packets
		}
	}
	l.BaseLayer = layers.BaseLayer{Contents: data[:n], Payload: data[n:]}
	l.st.notePayload(EncapARCnet, uint32(proto))
	l.next = gopacket.LayerTypePayload
	if split != 0 && split&1 == 0 {
		return nil // a middle fragment
	}
	switch proto {
	case arcIP, arcIPOld:
		l.next = layers.LayerTypeIPv4
	case arcIPv6:
		l.next = layers.LayerTypeIPv6
	}
	return nil
}

// teredoLayer is Teredo (RFC 4380 5.1.1): an IPv6 packet in UDP, after an
// optional authentication indicator (type 1) and an optional origin
// indication (type 0). A datagram whose payload is no IPv6 header is not
// Teredo, whatever its port.
type teredoLayer struct{ layers.BaseLayer }

func (l *teredoLayer) CanDecode() gopacket.LayerClass    { return layerTypeTeredo }
func (l *teredoLayer) NextLayerType() gopacket.LayerType { return layers.LayerTypeIPv6 }
func (l *teredoLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	off := 0
	if len(data) >= 4 && data[0] == 0 && data[1] == 1 { // authentication: ID and value lengths, nonce, confirmation
		off = 4 + int(data[2]) + int(data[3]) + 8 + 1
	}
	if len(data) >= off+8 && data[off] == 0 && data[off+1] == 0 { // origin indication: port and address
		off += 8
	}
	if len(data) < off+40 {
		df.SetTruncated()
		return errShort
	}
	if data[off]>>4 != 6 {
		return errNotTunnel
	}
	l.BaseLayer = layers.BaseLayer{Contents: data[:off], Payload: data[off:]}
	return nil
}

// ayiyaLayer is AYIYA ("Anything In Anything", the SixXS tunnel protocol,
// UDP port 5072): identity length (a power of two) and type, signature
// length (in 4-byte words) and hash, authentication and operation codes,
// next header, epoch, then the identity and the signature. Only a Forward
// operation (1) carries a packet, of the next header's protocol.
type ayiyaLayer struct {
	layers.BaseLayer
	next gopacket.LayerType
	st   *state
}

func (l *ayiyaLayer) CanDecode() gopacket.LayerClass    { return layerTypeAYIYA }
func (l *ayiyaLayer) NextLayerType() gopacket.LayerType { return l.next }
func (l *ayiyaLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		df.SetTruncated()
		return errShort
	}
	n := 8 + 1<<(data[0]>>4) + int(data[1]>>4)*4
	if len(data) < n {
		df.SetTruncated()
		return errShort
	}
	l.BaseLayer = layers.BaseLayer{Contents: data[:n], Payload: data[n:]}
	l.next = gopacket.LayerTypePayload
	if data[2]&0x0f != 1 {
		return nil // not a forwarded packet: a heartbeat or an echo
	}
	l.st.notePayload(EncapIPProto, uint32(data[3]))
	switch data[3] {
	case 4:
		l.next = layers.LayerTypeIPv4
	case 41:
		l.next = layers.LayerTypeIPv6
	}
	return nil
}
