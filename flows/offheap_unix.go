//go:build unix

package flows

import (
	"syscall"
	"unsafe"
)

// allocEntries returns n zeroed limbo slots outside the Go heap, from an
// anonymous mapping: limbo holds no pointers, so the garbage collector
// need not know of it, and the heap's growth target (twice the live heap
// by default) does not double its cost. Only the pages written take
// memory. free must be called when done with it.
func allocEntries(n int) (s []halfSlot, free func()) {
	size := n * int(unsafe.Sizeof(halfSlot{}))
	if size == 0 {
		return nil, func() {}
	}
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]halfSlot, n), func() {}
	}
	return unsafe.Slice((*halfSlot)(unsafe.Pointer(&b[0])), n), func() { _ = syscall.Munmap(b) }
}
