package flows

import (
	"encoding/binary"
	"errors"
	"reflect"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// establishedTable returns a table of n established connections, started a
// microsecond apart in the order of their slab entries.
func establishedTable(n int) *Table {
	tab := NewTable(Config{})
	steps := seq(handshake, []step{
		{'c', PSH | ACK, 1001, 5001, 100, ms(3), ES, ES},
		{'s', PSH | ACK, 5001, 1101, 100, ms(4), ES, ES},
	})
	for i := range n {
		for _, s := range steps {
			p := pkt(s.from, s.flags, s.seq, s.ack, s.len, s.at+time.Duration(i)*time.Microsecond)
			binary.BigEndian.PutUint32(p.Tuple.Src[12:], uint32(i))
			if s.from == 's' {
				binary.BigEndian.PutUint32(p.Tuple.Dst[12:], uint32(i))
				p.Tuple.Src = pkt('s', 0, 0, 0, 0, 0).Tuple.Src
			}
			tab.Apply(&p)
		}
	}
	return tab
}

// resident returns how many bytes of b are in memory, as the kernel says
// (mincore(2)), or the error it gives (ENOMEM if b is not mapped).
func resident(b []byte) (int, error) {
	const page = 4096
	vec := make([]byte, (len(b)+page-1)/page)
	_, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
	if e != 0 {
		return 0, e
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n * page, nil
}

// slabResident returns the bytes in memory of sl's chunks outside the heap.
func slabResident(t *testing.T, sl *slab) int {
	t.Helper()
	n := 0
	for k, ch := range sl.chunks {
		if sl.onMap&(1<<k) == 0 {
			continue
		}
		r, err := resident(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(ch))), mappedSize(len(ch))))
		if err != nil {
			t.Fatalf("mincore of chunk %d: %v", k, err)
		}
		n += r
	}
	return n
}

// TestFlushGivesSlabPagesBack checks that a flush gives the slab's pages
// back to the system as it makes their connections' records, and that the
// records are those of a flush that keeps every page to the end. Three
// quarters through, the pages of the first 75,000 of 100,000 connections
// are back: 8 of the 11 huge pages (the slab's chunks of 1 MiB and more
// start at connection 8,160; a page holds about 9,000).
func TestFlushGivesSlabPagesBack(t *testing.T) {
	const n = 100_000
	flushDropsPages = false
	want := establishedTable(n).Flush()
	flushDropsPages = true
	if len(want) != n {
		t.Fatalf("%d records, want %d", len(want), n)
	}
	tab := establishedTable(n)
	sl := tab.slab.Load()
	before := slabResident(t, sl)
	if before < 8*hugePage {
		t.Fatalf("the slab has %d bytes in memory, want at least 8 huge pages outside the heap", before)
	}
	var got []Record
	part := -1
	tab.FlushEach(func(b []Record) {
		got = append(got, b...)
		if part < 0 && len(got) >= n*3/4 {
			part = slabResident(t, sl)
		}
	})
	if part > before*4/10 {
		t.Errorf("three quarters through the flush %d of the slab's %d bytes are in memory, want at most 40%%", part, before)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("the records differ from those of a flush that keeps its pages")
	}
}

// TestFlushGivesIndexBack checks that a large table's index is outside the
// heap and that a flush unmaps it before it hands on the first records.
func TestFlushGivesIndexBack(t *testing.T) {
	tab := establishedTable(100_000)
	var maps [][]byte
	for i := range tab.shards {
		m := &tab.shards[i].m
		if m.free == nil {
			t.Fatalf("shard %d's index of %d connections is on the heap", i, m.len())
		}
		maps = append(maps, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(m.slots))), len(m.slots)*int(unsafe.Sizeof(connSlot{}))))
		if r, err := resident(maps[i]); err != nil || r == 0 {
			t.Fatalf("shard %d's index: %d bytes in memory (%v), want its slots", i, r, err)
		}
	}
	checked := false
	tab.FlushEach(func([]Record) {
		if checked {
			return
		}
		checked = true
		for i, b := range maps {
			if _, err := resident(b); !errors.Is(err, syscall.ENOMEM) {
				t.Errorf("shard %d's index is still mapped at the first records (mincore: %v)", i, err)
			}
		}
	})
	if !checked {
		t.Fatal("the flush handed on no records")
	}
}
