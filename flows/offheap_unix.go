//go:build unix

package flows

import (
	"syscall"
	"unsafe"
)

// allocEntries returns n zeroed limbo slots outside the Go heap (see
// offHeap): limbo holds no pointers, so the garbage collector need not
// know of it. free must be called when done with it.
func allocEntries(n int) (s []halfSlot, free func()) { return offHeap[halfSlot](n) }

// offHeap returns n zeroed values of T outside the Go heap, from an
// anonymous mapping, so that the heap's growth target (twice the live heap
// by default) does not double their cost; only the pages written take
// memory. T must hold no pointer: the garbage collector does not scan the
// mapping. free must be called when done with them; if the mapping fails,
// they are on the heap.
func offHeap[T any](n int) (s []T, free func()) { return offHeapRoom[T](n, n) }

// offHeapRoom is offHeap with room for up to room values (cap(s) is at
// least n and at most room): s can grow in place, by reslicing, up to its
// capacity. The values past len(s) are zero, and take no memory until
// written; the room is address space only (MAP_NORESERVE), so that it
// does not count against the system's commit limit either.
func offHeapRoom[T any](n, room int) (s []T, free func()) {
	var zero T
	size := max(n, room) * int(unsafe.Sizeof(zero))
	if size == 0 {
		return nil, func() {}
	}
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE|syscall.MAP_NORESERVE)
	if err != nil {
		return make([]T, n), func() {}
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), max(n, room))[:n], func() { _ = syscall.Munmap(b) }
}

// dropTail zeroes s, the part of a slice from offHeapRoom past its new
// length, no longer used: the whole pages in it go back to the system
// (and read as zeros), the rest is cleared. Its last page goes back whole
// if the room holds it: past s, nothing was written.
func dropTail[T any](s []T) {
	if len(s) == 0 {
		return
	}
	var zero T
	size := uintptr(unsafe.Sizeof(zero))
	page := uintptr(syscall.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	end, room := start+uintptr(len(s))*size, start+uintptr(cap(s))*size
	lo, hi := (start+page-1)/page*page, (end+page-1)/page*page
	if hi > room {
		hi = end / page * page
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), room-start)
	if hi <= lo || dontNeed(b[lo-start:hi-start]) != nil {
		clear(b[:end-start])
		return
	}
	clear(b[:lo-start])
	if hi < end {
		clear(b[hi-start : end-start])
	}
}
