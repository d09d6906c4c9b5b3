package flows

import (
	"math"
	"reflect"
	"testing"
	"unsafe"
)

// TestHalfSlotSize keeps a half-open connection's slot at 88 bytes: robin's
// distance byte, the 44-byte key and a halfOpen needing only 4-byte
// alignment.
func TestHalfSlotSize(t *testing.T) {
	if n := unsafe.Sizeof(halfSlot{}); n != 88 {
		t.Fatalf("halfSlot is %d bytes, want 88", n)
	}
}

// TestHalfOpenBytes derives what a half-open connection costs in its
// shard's half table from the slot's size, as halftable.go states it: a
// slot (holding its distance byte), at robin's load (grown by a quarter when
// more than 7/8 full, so between 70% and 87.5% full). A half-open
// connection must take at most 128 bytes (the target for a SYN flood's
// connections).
func TestHalfOpenBytes(t *testing.T) {
	const maxLoad = 7.0 / 8
	const minLoad = maxLoad / 1.25
	perSlot := float64(unsafe.Sizeof(halfSlot{}))
	lo, hi := math.Round(perSlot/maxLoad), math.Round(perSlot/minLoad)
	if lo != 101 || hi != 126 {
		t.Errorf("a half-open connection takes %.0f to %.0f bytes: update halftable.go's 101 to 126", lo, hi)
	}
	if hi > 128 {
		t.Errorf("a half-open connection takes up to %.0f bytes, more than 128", hi)
	}
}

// TestConnSize keeps a conn at 216 bytes: with its 8-byte slot at the
// index's load, and the slab's slack, within the 256 bytes that issue 17
// allows an established connection (BenchmarkMemoryPerConn measures it),
// and small enough for a million connections in 300 MB.
// It is what the state machine, Zeek's emulation and the evidence that
// every packet writes need, and the index of the rest (TestEvidenceSize).
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(conn{}); n != 216 {
		t.Fatalf("conn is %d bytes, want 216", n)
	}
	if n := unsafe.Sizeof(endpoint{}); n != 48 {
		t.Fatalf("endpoint is %d bytes, want 48", n)
	}
	if n := unsafe.Sizeof(connSlot{}); n != 8 {
		t.Fatalf("connSlot is %d bytes, want 8", n)
	}
}

// TestConnLayout checks that a conn's first 40 bytes hold what every
// packet compares, reads and writes besides the endpoints, Zeek's state
// and the hot evidence: its key, marks, cold index and first and last
// times, in the first cache line whichever of the multiples of 8 bytes in
// a line it starts at (up to 24).
func TestConnLayout(t *testing.T) {
	var c conn
	for name, end := range map[string]uintptr{
		"key":   unsafe.Offsetof(c.key) + unsafe.Sizeof(c.key),
		"marks": unsafe.Offsetof(c.marks) + unsafe.Sizeof(c.marks),
		"cold":  unsafe.Offsetof(c.cold) + unsafe.Sizeof(c.cold),
		"last":  unsafe.Offsetof(c.last) + unsafe.Sizeof(c.last),
		"first": unsafe.Offsetof(c.first) + unsafe.Sizeof(c.first),
	} {
		if end > 40 {
			t.Errorf("%s ends at byte %d, beyond the first 40", name, end)
		}
	}
}

// TestConnHasNoPointers keeps conn free of pointers, so that the garbage
// collector never scans a slab (slab.go), and slabs can live outside the
// Go heap.
func TestConnHasNoPointers(t *testing.T) {
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		switch typ.Kind() {
		case reflect.Pointer, reflect.UnsafePointer, reflect.Map, reflect.Slice, reflect.String,
			reflect.Chan, reflect.Func, reflect.Interface:
			t.Errorf("%s is a %s: conn must hold no pointer", path, typ.Kind())
		case reflect.Array:
			walk(typ.Elem(), path+"[]")
		case reflect.Struct:
			for i := range typ.NumField() {
				f := typ.Field(i)
				walk(f.Type, path+"."+f.Name)
			}
		}
	}
	walk(reflect.TypeFor[conn](), "conn")
}

// TestConnTouch checks that conn.touch and conn.touchAhead read a word
// from every cache line of a conn, wherever in a line it starts (at a
// multiple of 8 bytes: a slab's chunks start on a page).
func TestConnTouch(t *testing.T) {
	var c conn
	ep := unsafe.Offsetof(c.ep)
	size := unsafe.Sizeof(endpoint{})
	keyAt, evAt := unsafe.Offsetof(c.key), unsafe.Offsetof(c.ev)
	words := map[string][]uintptr{
		"touch": {
			keyAt, unsafe.Offsetof(c.last), unsafe.Offsetof(c.zeek) + unsafe.Offsetof(c.zeek.bits),
			ep + unsafe.Offsetof(c.ep[0].state), ep + unsafe.Offsetof(c.ep[0].bytes),
			ep + size + unsafe.Offsetof(c.ep[1].pkts), evAt + unsafe.Offsetof(c.ev.bits), unsafe.Offsetof(c.synOrRTT),
		},
		"touchAhead": {
			keyAt, unsafe.Offsetof(c.last), unsafe.Offsetof(c.zeek) + unsafe.Offsetof(c.zeek.bits),
			ep + unsafe.Offsetof(c.ep[0].isn), ep + unsafe.Offsetof(c.ep[0].bytes),
			ep + size + unsafe.Offsetof(c.ep[1].pkts), evAt + unsafe.Offsetof(c.ev.bits), unsafe.Offsetof(c.synOrRTT),
		},
	}
	for name, offsets := range words {
		for start := uintptr(0); start < 64; start += 8 {
			lines := map[uintptr]bool{}
			for _, off := range offsets {
				lines[(start+off)/64] = true
			}
			for l := start / 64; l <= (start+unsafe.Sizeof(c)-1)/64; l++ {
				if !lines[l] {
					t.Errorf("%s reads nothing on line %d of a conn starting at byte %d of a line", name, l, start)
				}
			}
		}
	}
}

// TestEvidenceSize keeps a connection's evidence (evidence.go) at 24
// bytes in the conn and 72 in its cold record, which is 176 bytes with
// what only trouble writes of the endpoints and of Zeek's emulation, and
// what outgrows the conn's 32-bit ID and SYN time or RTT (connwide.go),
// for a connection that needs one; a Record carries the 96 of evidence.
func TestEvidenceSize(t *testing.T) {
	if n := unsafe.Sizeof(evHot{}); n != 24 {
		t.Fatalf("evHot is %d bytes, want 24", n)
	}
	if n := unsafe.Sizeof(evCold{}); n != 72 {
		t.Fatalf("evCold is %d bytes, want 72", n)
	}
	if n := unsafe.Sizeof(coldRec{}); n != 176 {
		t.Fatalf("coldRec is %d bytes, want 176", n)
	}
}

// TestShardSize keeps a shard a whole number of cache lines, so that two
// goroutines locking neighbouring shards do not share one.
func TestShardSize(t *testing.T) {
	if n := unsafe.Sizeof(shard{}); n%64 != 0 {
		t.Fatalf("shard is %d bytes, not a multiple of 64", n)
	}
}
