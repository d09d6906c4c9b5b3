package flows

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Tuple is the addressing of one packet as it was seen on the wire:
// source and destination address and port, plus the VLAN tags that carried
// it. IPv4 addresses are stored as IPv4-mapped IPv6 addresses with V6 false.
//
// It is a plain comparable value without pointers, rather than a pair of
// netip.AddrPort, because netip.Addr carries a zone pointer: as a map key a
// pointer-free array hashes faster and the garbage collector never scans it.
type Tuple struct {
	Src, Dst         [16]byte
	SrcPort, DstPort uint16
	V6               bool
	VLAN             VLAN
}

// VLAN holds up to two 802.1Q tags (outer and inner), so that the same
// 4-tuple on different VLANs is tracked as different connections.
type VLAN struct {
	Outer, Inner uint16 // 12-bit VLAN IDs
	N            uint8  // number of tags present: 0, 1 or 2
	//lint:ignore U1000 it fills what would be padding, so that keys hash as plain memory
	pad uint8
}

// String returns "" without tags, "42" with one, and "10.20" (outer.inner)
// with two.
func (v VLAN) String() string {
	switch v.N {
	case 0:
		return ""
	case 1:
		return fmt.Sprint(v.Outer)
	default:
		return fmt.Sprintf("%d.%d", v.Outer, v.Inner)
	}
}

// Tags returns the tags, outermost first.
func (v VLAN) Tags() []uint16 {
	switch v.N {
	case 0:
		return nil
	case 1:
		return []uint16{v.Outer}
	default:
		return []uint16{v.Outer, v.Inner}
	}
}

// Push adds a tag; tags beyond the second are ignored.
func (v *VLAN) Push(id uint16) {
	switch v.N {
	case 0:
		v.Outer = id & 0xfff
		v.N = 1
	case 1:
		v.Inner = id & 0xfff
		v.N = 2
	}
}

// SetV4 stores IPv4 source and destination addresses.
func (t *Tuple) SetV4(src, dst []byte) {
	t.V6 = false
	setV4(&t.Src, src)
	setV4(&t.Dst, dst)
}

// setV4 stores IPv4 address a in m, v4-mapped, in two 8-byte stores: the
// decoder calls it twice for every IPv4 packet, and an array built and
// then copied, with a copy of a slice into it, cost more than the rest of
// the IP header's decoding.
func setV4(m *[16]byte, a []byte) {
	if len(a) < 4 {
		*m = v4mapped(a)
		return
	}
	binary.LittleEndian.PutUint64(m[:8], 0)
	binary.BigEndian.PutUint64(m[8:], 0xffff<<32|uint64(binary.BigEndian.Uint32(a)))
}

// SetV6 stores IPv6 source and destination addresses.
func (t *Tuple) SetV6(src, dst []byte) {
	t.V6 = true
	copy(t.Src[:], src)
	copy(t.Dst[:], dst)
}

func v4mapped(a []byte) (m [16]byte) {
	m[10], m[11] = 0xff, 0xff
	copy(m[12:], a)
	return m
}

// SrcAddrPort returns the source as a netip.AddrPort.
func (t Tuple) SrcAddrPort() netip.AddrPort { return addrPort(t.Src, t.SrcPort, t.V6) }

// DstAddrPort returns the destination as a netip.AddrPort.
func (t Tuple) DstAddrPort() netip.AddrPort { return addrPort(t.Dst, t.DstPort, t.V6) }

func addrPort(a [16]byte, port uint16, v6 bool) netip.AddrPort {
	ip := netip.AddrFrom16(a)
	if !v6 {
		ip = ip.Unmap()
	}
	return netip.AddrPortFrom(ip, port)
}

// Key identifies a connection's 4-tuple independent of direction: the lower
// endpoint (by address, then port) comes first, so both halves of a
// connection find the same entry.
//
// Its fields leave no padding (pad is always zero), so that the map hashes
// and compares a Key as one block of memory, which a profile showed to
// matter: with padding, Go hashes it field by field.
type Key struct {
	Addr [2][16]byte
	Port [2]uint16
	VLAN VLAN
	V6   bool
	pad  uint8
}

// Dir says which way a packet travelled relative to its Key: Dir0 from
// endpoint 0 to endpoint 1, Dir1 the reverse.
type Dir uint8

// The two directions of a Key.
const (
	Dir0 Dir = 0
	Dir1 Dir = 1
)

// Key returns the canonical key of the tuple and the direction the packet
// travelled in.
func (t *Tuple) Key() (Key, Dir) {
	var k Key
	d := t.fillKey(&k)
	return k, d
}

// fillKey writes the canonical key of the tuple into k, in place (a Key
// is 44 bytes: building it where it is used saves copies on the per-packet
// path), and returns the direction.
func (t *Tuple) fillKey(k *Key) Dir {
	d := Dir0
	if c := compareAddr(&t.Src, &t.Dst); c > 0 || (c == 0 && t.SrcPort > t.DstPort) {
		d = Dir1
	}
	if d == Dir0 {
		k.Addr[0], k.Addr[1] = t.Src, t.Dst
		k.Port[0], k.Port[1] = t.SrcPort, t.DstPort
	} else {
		k.Addr[0], k.Addr[1] = t.Dst, t.Src
		k.Port[0], k.Port[1] = t.DstPort, t.SrcPort
	}
	k.VLAN, k.V6, k.pad = t.VLAN, t.V6, 0
	return d
}

// compareAddr compares two addresses as big-endian numbers, a word at a
// time.
func compareAddr(a, b *[16]byte) int {
	for i := 0; i < 16; i += 8 {
		x, y := binary.BigEndian.Uint64(a[i:]), binary.BigEndian.Uint64(b[i:])
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// equal reports whether k and o are the same key, as == does. == on the
// whole Key is a call to runtime.memequal, a visible cost per packet;
// field by field (ports first: they tell most keys apart) it compiles to a
// few word compares, and inlines.
func (k *Key) equal(o *Key) bool {
	return k.Port == o.Port && k.Addr[0] == o.Addr[0] && k.Addr[1] == o.Addr[1] &&
		k.VLAN == o.VLAN && k.V6 == o.V6 && k.pad == o.pad
}

// Endpoint returns endpoint i (0 or 1) of the key.
func (k Key) Endpoint(i int) netip.AddrPort { return addrPort(k.Addr[i], k.Port[i], k.V6) }

// hash64 is a cheap hash of the key: its low bits pick the shard, all of
// them place it in the shard's tables. The key is already canonical (both
// directions give the same key), so the hash need not be symmetric; it
// mixes the key a word at a time (a byte-wise FNV was a visible cost per
// packet).
func (k *Key) hash64() uint64 {
	const m = 0xff51afd7ed558ccd
	h := uint64(0x9e3779b97f4a7c15)
	for i := range k.Addr {
		a := &k.Addr[i]
		h = (h ^ binary.LittleEndian.Uint64(a[0:8])) * m
		h = (h ^ binary.LittleEndian.Uint64(a[8:16])) * m
	}
	h = (h ^ (uint64(k.Port[0]) | uint64(k.Port[1])<<16 | uint64(k.VLAN.Outer)<<32 | uint64(k.VLAN.Inner)<<48)) * m
	h ^= h >> 33 // MurmurHash3's finaliser: every bit of the key reaches the low bits
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
