//go:build !linux

package flows

// mapConns returns n connections on the heap (see slab_linux.go).
func mapConns(n int) ([]conn, bool) { return make([]conn, n), false }

// unmapConns is never called where mapConns maps nothing.
func unmapConns([]conn) {}

// dropPages is never called where mapConns maps nothing.
func dropPages([]byte) {}
