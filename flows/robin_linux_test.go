package flows

import (
	"encoding/binary"
	"testing"
	"unsafe"
)

// TestRobinGrowsInPlace checks that a half table outside the heap grows
// within the room it reserved, at the same address, holding every entry;
// that when it shrinks the pages past its new end go back to the system
// and read as free slots; that it grows back over them; and that past its
// room it moves, still holding every entry.
func TestRobinGrowsInPlace(t *testing.T) {
	var ht halfTable
	keyOf := func(i int) Key {
		var k Key
		binary.BigEndian.PutUint32(k.Addr[0][12:], uint32(i))
		k.Port[0], k.Port[1] = uint16(i>>3), 443
		return k
	}
	fill := func(from, to int) {
		for i := from; i < to; i++ {
			k := keyOf(i)
			ht.put(&k, k.hash64(), halfOpen{isn: uint32(i)})
		}
	}
	holds := func(what string, from, to int) {
		t.Helper()
		if ht.len() != to-from {
			t.Fatalf("%s: %d entries, want %d", what, ht.len(), to-from)
		}
		for i := from; i < to; i++ {
			k := keyOf(i)
			if h, ok := ht.get(&k, k.hash64()); !ok || h.isn != uint32(i) {
				t.Fatalf("%s: entry %d is %+v, %v", what, i, h, ok)
			}
		}
	}
	base := func() uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(ht.slots))) }
	slotBytes := int(unsafe.Sizeof(halfSlot{}))

	fill(0, 100) // past robinMapAt: mapped, with room
	if ht.free == nil {
		t.Fatalf("a table of %d slots of %d bytes is on the heap", len(ht.slots), slotBytes)
	}
	at, room := base(), cap(ht.slots)
	fill(100, 3000)
	holds("grown", 0, 3000)
	if base() != at || cap(ht.slots) != room {
		t.Fatalf("the table moved as it grew (%d slots, room %d)", len(ht.slots), room)
	}
	grown := len(ht.slots)

	for i := range 2900 { // it shrinks
		k := keyOf(i)
		ht.del(&k, k.hash64())
	}
	holds("shrunk", 2900, 3000)
	if len(ht.slots) >= grown/4 || base() != at {
		t.Fatalf("shrunk to %d of %d slots, moved %v", len(ht.slots), grown, base() != at)
	}
	// The whole pages past its end (mincore wants a page's start).
	const page = 4096
	all := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(ht.slots))), grown*slotBytes)
	end := len(ht.slots) * slotBytes
	skip := int((page - (uintptr(unsafe.Pointer(&all[0]))+uintptr(end))%page) % page)
	tail := all[end+skip:]
	tail = tail[:len(tail)/page*page]
	if r, err := resident(tail); err != nil || r != 0 || len(tail) < 10*page {
		t.Fatalf("%d of the %d bytes past the shrunk table's end are in memory (%v)", r, len(tail), err)
	}
	for i, d := range ht.dist[:grown][len(ht.dist):] {
		if d != 0 {
			t.Fatalf("slot %d past the end holds distance %d", len(ht.dist)+i, d)
		}
	}

	fill(3000, 6000) // grows back over the pages it gave back
	holds("grown again", 2900, 6000)
	if base() != at {
		t.Fatal("the table moved as it grew again")
	}

	fill(6000, 6000+room) // past its room: it moves
	holds("moved", 2900, 6000+room)
	if base() == at || cap(ht.slots) <= room {
		t.Fatalf("a table of %d entries did not move from its room of %d", ht.len(), room)
	}
	ht.giveBack()
}
