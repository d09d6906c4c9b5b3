//go:build unix

package flows

import (
	"syscall"
	"unsafe"
)

// allocEntries returns n zeroed limbo entries outside the Go heap, from an
// anonymous mapping: limbo holds no pointers, so the garbage collector
// need not know of it, and the heap's growth target (twice the live heap
// by default) does not double its cost. Only the pages written take
// memory. free must be called when done with it.
func allocEntries(n int) (s []limboEntry, free func()) {
	size := n * int(unsafe.Sizeof(limboEntry{}))
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil || size == 0 {
		return make([]limboEntry, n), func() {}
	}
	return unsafe.Slice((*limboEntry)(unsafe.Pointer(&b[0])), n), func() { _ = syscall.Munmap(b) }
}
