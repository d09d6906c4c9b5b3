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
func offHeap[T any](n int) (s []T, free func()) {
	var zero T
	size := n * int(unsafe.Sizeof(zero))
	if size == 0 {
		return nil, func() {}
	}
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]T, n), func() {}
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n), func() { _ = syscall.Munmap(b) }
}
