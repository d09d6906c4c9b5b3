//go:build !unix

package flows

// allocEntries returns n zeroed limbo slots (see offheap_unix.go).
func allocEntries(n int) (s []halfSlot, free func()) { return offHeap[halfSlot](n) }

// offHeap returns n zeroed values of T (see offheap_unix.go).
func offHeap[T any](n int) (s []T, free func()) {
	return make([]T, n), func() {}
}

// offHeapRoom returns n zeroed values of T, with no room to grow in place
// (see offheap_unix.go).
func offHeapRoom[T any](n, _ int) (s []T, free func()) { return offHeap[T](n) }

// dropTail zeroes s (see offheap_unix.go).
func dropTail[T any](s []T) { clear(s) }
