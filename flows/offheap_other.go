//go:build !unix

package flows

// allocEntries returns n zeroed limbo slots (see offheap_unix.go).
func allocEntries(n int) (s []halfSlot, free func()) { return offHeap[halfSlot](n) }

// offHeap returns n zeroed values of T (see offheap_unix.go).
func offHeap[T any](n int) (s []T, free func()) {
	return make([]T, n), func() {}
}
