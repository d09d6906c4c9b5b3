package flows

import (
	"syscall"
	"unsafe"
)

// mapConns returns n zeroed connections outside the Go heap (see slab),
// asking the kernel for transparent huge pages for them (which it gives
// under its default "madvise" setting), and true; or, if the mapping
// fails, n on the heap and false. unmapConns gives mapped ones back.
func mapConns(n int) ([]conn, bool) {
	size := n * int(unsafe.Sizeof(conn{}))
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]conn, n), false
	}
	// A hint: without huge pages it works as well, if slower.
	_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE)
	return unsafe.Slice((*conn)(unsafe.Pointer(&b[0])), n), true
}

// unmapConns unmaps connections that mapConns mapped.
func unmapConns(s []conn) {
	_ = syscall.Munmap(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(conn{}))))
}
