//go:build !unix

package flows

// allocEntries returns n zeroed limbo entries (see offheap_unix.go).
func allocEntries(n int) (s []limboEntry, free func()) {
	return make([]limboEntry, n), func() {}
}
