package flows

import (
	"syscall"
	"unsafe"
)

// mapHuge returns n zeroed values of T, which holds no pointer, outside
// the Go heap, on memory aligned to a huge page, for which it asks the
// kernel for transparent huge pages (which it gives under its default
// "madvise" setting), and true; or, if the mapping fails, n on the heap
// and false.
//
// The kernel backs only the whole, aligned 2 MiB stretches of a mapping
// with huge pages, so the mapping is made a huge page larger and trimmed
// to start on one.
func mapHuge[T any](n int) ([]T, bool) {
	size := mappedSize[T](n)
	b, err := syscall.Mmap(-1, 0, size+hugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]T, n), false
	}
	skip := (hugePage - int(uintptr(unsafe.Pointer(&b[0]))%hugePage)) % hugePage
	if skip > 0 {
		_ = munmap(b[:skip])
	}
	if tail := b[skip+size:]; len(tail) > 0 {
		_ = munmap(tail)
	}
	b = b[skip : skip+size]
	// A hint: without huge pages it works as well, if slower.
	_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE)
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n), true
}

// unmapHuge unmaps values that mapHuge mapped.
func unmapHuge[T any](s []T) {
	_ = munmap(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), mappedSize[T](len(s))))
}

// munmap unmaps the pages of b, which may be part of a mapping: the
// syscall package's Munmap takes only a whole mapping that its own Mmap
// made, and refuses (EINVAL) the trimmed ends and the aligned middle that
// mapHuge keeps.
func munmap(b []byte) error {
	_, _, e := syscall.Syscall(syscall.SYS_MUNMAP, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// dontNeed gives the pages of b back to the system; the mapping stays,
// and they read as zeros after.
func dontNeed(b []byte) error { return syscall.Madvise(b, syscall.MADV_DONTNEED) }
