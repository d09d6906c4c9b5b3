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
	base := func() uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(ht.slots))) }

	fillHalf(&ht, 0, 100) // past robinMapAt: mapped, with room
	if ht.free == nil {
		t.Fatalf("a table of %d slots is on the heap", len(ht.slots))
	}
	at, room := base(), cap(ht.slots)
	fillHalf(&ht, 100, 3000)
	holdsHalf(t, "grown", &ht, 0, 3000)
	if base() != at || cap(ht.slots) != room {
		t.Fatalf("the table moved as it grew (%d slots, room %d)", len(ht.slots), room)
	}
	grown := len(ht.slots)

	for i := range 2900 { // it shrinks
		k := halfKey(i)
		ht.del(&k, k.hash64())
	}
	holdsHalf(t, "shrunk", &ht, 2900, 3000)
	if len(ht.slots) >= grown/4 || base() != at {
		t.Fatalf("shrunk to %d of %d slots, moved %v", len(ht.slots), grown, base() != at)
	}
	checkTailGone(t, &ht, grown)

	fillHalf(&ht, 3000, 6000) // grows back over the pages it gave back
	holdsHalf(t, "grown again", &ht, 2900, 6000)
	if base() != at {
		t.Fatal("the table moved as it grew again")
	}

	fillHalf(&ht, 6000, 6000+room) // past its room: it moves
	holdsHalf(t, "moved", &ht, 2900, 6000+room)
	if base() == at || cap(ht.slots) <= room {
		t.Fatalf("a table of %d entries did not move from its room of %d", ht.len(), room)
	}
	ht.giveBack()
}

// halfKey returns the i-th key of TestRobinGrowsInPlace.
func halfKey(i int) Key {
	var k Key
	binary.BigEndian.PutUint32(k.Addr[0][12:], uint32(i))
	k.Port[0], k.Port[1] = uint16(i>>3), 443
	return k
}

// fillHalf adds the keys from to to, each with its number as its ISN.
func fillHalf(ht *halfTable, from, to int) {
	for i := from; i < to; i++ {
		k := halfKey(i)
		ht.put(&k, k.hash64(), halfOpen{isn: uint32(i)})
	}
}

// holdsHalf checks that ht holds exactly the keys from to to, as added.
func holdsHalf(t *testing.T, what string, ht *halfTable, from, to int) {
	t.Helper()
	if ht.len() != to-from {
		t.Fatalf("%s: %d entries, want %d", what, ht.len(), to-from)
	}
	for i := from; i < to; i++ {
		k := halfKey(i)
		if h, ok := ht.get(&k, k.hash64()); !ok || h.isn != uint32(i) {
			t.Fatalf("%s: entry %d is %+v, %v", what, i, h, ok)
		}
	}
}

// checkTailGone checks that the whole pages of ht's slots past its end, up
// to grown slots, are not in memory, and that those slots read as free
// (distance 0).
func checkTailGone(t *testing.T, ht *halfTable, grown int) {
	t.Helper()
	const page = 4096
	size := int(unsafe.Sizeof(halfSlot{}))
	all := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(ht.slots))), grown*size)
	end := len(ht.slots) * size
	skip := int((page - (uintptr(unsafe.Pointer(&all[0]))+uintptr(end))%page) % page)
	tail := all[end+skip:]
	tail = tail[:len(tail)/page*page]
	if r, err := resident(tail); err != nil || r != 0 || len(tail) < 10*page {
		t.Fatalf("%d of the %d bytes past the shrunk table's end are in memory (%v)", r, len(tail), err)
	}
	for i, s := range ht.slots[:grown][len(ht.slots):] {
		if s.dist != 0 {
			t.Fatalf("slot %d past the end holds distance %d", len(ht.slots)+i, s.dist)
		}
	}
}
