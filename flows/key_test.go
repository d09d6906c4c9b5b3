package flows

import (
	"net/netip"
	"testing"
	"unsafe"
)

// TestSetV4MapsAddress checks that SetV4 stores an IPv4 address as its
// IPv4-mapped IPv6 form (RFC 4291 2.5.5.2), as netip does, whatever the
// array held before.
func TestSetV4MapsAddress(t *testing.T) {
	for _, s := range []string{"10.0.0.1", "255.255.255.255", "0.0.0.0", "192.168.1.2"} {
		a := netip.MustParseAddr(s)
		b := a.As4()
		var tp Tuple
		for i := range tp.Src {
			tp.Src[i], tp.Dst[i] = 0xaa, 0x55
		}
		tp.V6 = true
		tp.SetV4(b[:], b[:])
		want := netip.AddrFrom4(b).As16()
		if tp.Src != want || tp.Dst != want || tp.V6 {
			t.Errorf("%s: got %v %v (v6 %v), want %v", s, tp.Src, tp.Dst, tp.V6, want)
		}
	}
}

// TestKeyEqual checks Key.equal against == : two keys that differ in any
// one byte of their memory (padding included) are not equal, and a copy
// is.
func TestKeyEqual(t *testing.T) {
	var k Key
	b := (*[unsafe.Sizeof(k)]byte)(unsafe.Pointer(&k))
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	o := k
	if !k.equal(&o) || k != o {
		t.Fatal("a key differs from its copy")
	}
	ob := (*[unsafe.Sizeof(o)]byte)(unsafe.Pointer(&o))
	for i := range ob {
		ob[i] ^= 0x10
		if k.equal(&o) || k == o {
			t.Errorf("keys that differ in byte %d are equal", i)
		}
		ob[i] ^= 0x10
	}
}
