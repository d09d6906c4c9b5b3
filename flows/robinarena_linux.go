package flows

import (
	"syscall"
	"unsafe"
)

// arenas says whether indexes go in arenas (robinArena) here.
const arenas = true

// mapArena returns size bytes of address space, aligned to a huge page,
// for which it asks the kernel for transparent huge pages (mapConns), or
// nil if it cannot be mapped. Only the pages written take memory.
func mapArena(size int) []byte {
	b, err := syscall.Mmap(-1, 0, size+hugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE|syscall.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	skip := (hugePage - int(uintptr(unsafe.Pointer(&b[0]))%hugePage)) % hugePage
	if skip > 0 {
		_ = syscall.Munmap(b[:skip])
	}
	if tail := b[skip+size:]; len(tail) > 0 {
		_ = syscall.Munmap(tail)
	}
	b = b[skip : skip+size]
	_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE) // a hint: without, it works as well, if slower
	return b
}

// dropArena gives the memory of b, part of an arena, back to the system;
// it reads as zeros after.
func dropArena(b []byte) {
	if len(b) > 0 && syscall.Madvise(b, syscall.MADV_DONTNEED) != nil {
		clear(b)
	}
}

// unmapArena unmaps an arena that mapArena mapped.
func unmapArena(b []byte) { _ = syscall.Munmap(b) }
