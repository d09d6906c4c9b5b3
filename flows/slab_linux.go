package flows

import (
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page on x86-64 and arm64
// (with 4 KiB base pages).
const hugePage = 2 << 20

// mapConns returns n zeroed connections outside the Go heap (see slab),
// on memory aligned to a huge page, for which it asks the kernel for
// transparent huge pages (which it gives under its default "madvise"
// setting), and true; or, if the mapping fails, n on the heap and false.
// unmapConns gives mapped ones back.
//
// The kernel backs only the whole, aligned 2 MiB stretches of a mapping
// with huge pages, so the mapping is made a huge page larger and trimmed
// to start on one.
func mapConns(n int) ([]conn, bool) {
	size := mappedSize(n)
	b, err := syscall.Mmap(-1, 0, size+hugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]conn, n), false
	}
	skip := (hugePage - int(uintptr(unsafe.Pointer(&b[0]))%hugePage)) % hugePage
	if skip > 0 {
		_ = syscall.Munmap(b[:skip])
	}
	if tail := b[skip+size:]; len(tail) > 0 {
		_ = syscall.Munmap(tail)
	}
	b = b[skip : skip+size]
	// A hint: without huge pages it works as well, if slower.
	_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE)
	return unsafe.Slice((*conn)(unsafe.Pointer(&b[0])), n), true
}

// mappedSize returns the bytes mapConns maps for n connections: whole
// huge pages.
func mappedSize(n int) int {
	size := n * int(unsafe.Sizeof(conn{}))
	return (size + hugePage - 1) / hugePage * hugePage
}

// unmapConns unmaps connections that mapConns mapped.
func unmapConns(s []conn) {
	_ = syscall.Munmap(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), mappedSize(len(s))))
}

// dropPages gives the memory of b, mapped by mapConns and no longer used,
// back to the system; the mapping stays (and reads as zeros).
func dropPages(b []byte) { _ = syscall.Madvise(b, syscall.MADV_DONTNEED) }
