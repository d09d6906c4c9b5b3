package flows

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// TestIndexArena checks where a table's shards' indexes go in their arena:
// from robinArenaAt bytes of slots together, shard i's index as the i-th
// column of chunks of robinChunk slots, on a mapping the kernel is asked
// to back with huge pages; that the bytes the table reports cover the
// arena's pages in memory; and that a flush gives those pages back.
func TestIndexArena(t *testing.T) {
	if a := NewTable(Config{}).index; a == nil || a.from*len(NewTable(Config{}).shards) != robinArenaAt {
		t.Fatalf("a table's indexes go in their arena from %d bytes each, want %d in all", a.from, robinArenaAt)
	}
	tab := NewTable(Config{})
	a := tab.index
	a.from = robinMapAt
	fillEstablished(tab, 40_000)
	col := 0
	for i := range tab.shards {
		m := &tab.shards[i].m
		if !m.inArena || m.col != i {
			t.Fatalf("shard %d's index of %d slots: in the arena %v, column %d", i, m.size, m.inArena, m.col)
		}
		for _, j := range []int{0, 1, robinChunk - 1, robinChunk, m.size/2 + 3, m.size - 1} {
			want := &a.mem[j/robinChunk*a.row+i*a.chunk+j%robinChunk*int(unsafe.Sizeof(connSlot{}))]
			if unsafe.Pointer(m.at(j)) != unsafe.Pointer(want) {
				t.Fatalf("shard %d's slot %d is at %p, want %p", i, j, m.at(j), want)
			}
		}
		col = max(col, m.extent*int(unsafe.Sizeof(connSlot{})))
	}
	if !strings.Contains(vmFlags(t, a.mem), " hg") {
		t.Error("the arena is not marked for huge pages (MADV_HUGEPAGE)")
	}
	in, err := resident(a.mem[:a.bytesMapped(col)+a.row])
	if err != nil || in == 0 || in > a.bytesMapped(col) {
		t.Fatalf("%d bytes of the arena in memory (%v), more than the %d counted", in, err, a.bytesMapped(col))
	}
	if n := len(tab.Flush()); n != 40_000 {
		t.Fatalf("flushed %d connections, want 40000", n)
	}
	if in, err := resident(a.mem[:a.bytesMapped(col)]); err != nil || in != 0 {
		t.Fatalf("%d bytes of the arena in memory after the flush (%v)", in, err)
	}
}

// TestIndexArenaColumnReused checks that an index that leaves its arena
// while another stays, and comes back, finds its column empty: exactly
// the entries added since; and that an index shrinks in its column.
func TestIndexArenaColumnReused(t *testing.T) {
	a := newRobinArena(2, int(unsafe.Sizeof(keySlot{})))
	a.from = robinMapAt
	defer a.unmap()
	var r [2]robin[keySlot, *keySlot]
	for i := range r {
		r[i].arena, r[i].col = a, i
	}
	addKeys(&r[0], 0, 3000)
	addKeys(&r[1], 3000, 6000)
	for i := range r {
		if !r[i].inArena {
			t.Fatalf("table %d of %d slots is not in the arena", i, r[i].size)
		}
	}
	holdsKeys(t, "first", &r[0], 0, 3000)
	holdsKeys(t, "second", &r[1], 3000, 6000)
	r[0].giveBack()
	addKeys(&r[0], 6000, 7000)
	holdsKeys(t, "first, again", &r[0], 6000, 7000)
	holdsKeys(t, "second, still", &r[1], 3000, 6000)
	grown := r[1].size
	for k := uint32(3000); k < 5900; k++ {
		r[1].delAt(findKey(&r[1], k))
	}
	if r[1].size >= grown/4 || !r[1].inArena {
		t.Fatalf("the second table shrank from %d to %d slots, in the arena %v", grown, r[1].size, r[1].inArena)
	}
	holdsKeys(t, "second, shrunk", &r[1], 5900, 6000)
	holdsKeys(t, "first, still", &r[0], 6000, 7000)
	r[0].giveBack()
	r[1].giveBack()
}

// keySlot is a slot of TestIndexArenaColumnReused's tables: a key.
type keySlot struct {
	dist uint8
	_    [3]byte
	k    uint32
}

func (s *keySlot) keyHash() uint64 { return uint64(s.k+1) * 0x9e3779b97f4a7c15 }

// addKeys adds the keys from to to to r.
func addKeys(r *robin[keySlot, *keySlot], from, to uint32) {
	for k := from; k < to; k++ {
		s := keySlot{k: k}
		r.add(s, s.keyHash())
	}
}

// findKey returns the slot of key k in r, or -1.
func findKey(r *robin[keySlot, *keySlot], k uint32) int {
	if r.size == 0 {
		return -1
	}
	want := keySlot{k: k}
	for i, d := r.home(want.keyHash()), uint8(1); ; d++ {
		s := r.at(i)
		if s.dist < d {
			return -1
		}
		if s.dist == d && s.k == k {
			return i
		}
		if i++; i == r.size {
			i = 0
		}
	}
}

// holdsKeys checks that r holds exactly the keys from to to: each found,
// and no other in its slots.
func holdsKeys(t *testing.T, what string, r *robin[keySlot, *keySlot], from, to uint32) {
	t.Helper()
	n := 0
	r.each(func(s *keySlot) {
		if s.k < from || s.k >= to {
			t.Fatalf("%s: holds key %d, want %d to %d", what, s.k, from, to)
		}
		n++
	})
	if n != int(to-from) || r.len() != n {
		t.Fatalf("%s: %d entries in the slots, %d counted, want %d", what, n, r.len(), to-from)
	}
	for k := from; k < to; k++ {
		if findKey(r, k) < 0 {
			t.Fatalf("%s: key %d not found", what, k)
		}
	}
}

// vmFlags returns the VmFlags line of the mapping holding b (smaps(5)).
func vmFlags(t *testing.T, b []byte) string {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	at := uintptr(unsafe.Pointer(&b[0]))
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(sc.Text(), "%x-%x", &lo, &hi); n == 2 && !strings.HasPrefix(sc.Text(), "VmFlags") {
			in = lo <= at && at < hi
		}
		if in && strings.HasPrefix(sc.Text(), "VmFlags:") {
			return sc.Text()
		}
	}
	t.Fatalf("no mapping holds %p", &b[0])
	return ""
}
