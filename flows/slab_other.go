//go:build !linux

package flows

import "errors"

// mapConns returns n connections on the heap (see slab_linux.go).
func mapConns(n int) ([]conn, bool) { return make([]conn, n), false }

// mapHuge returns n values of T on the heap (see slab_linux.go).
func mapHuge[T any](n int) ([]T, bool) { return make([]T, n), false }

// unmapHuge is never called where mapHuge maps nothing.
func unmapHuge[T any]([]T) {}

// unmapConns is never called where mapConns maps nothing.
func unmapConns([]conn) {}

// dropPages is never called where mapConns maps nothing.
func dropPages([]byte) {}

// dontNeed cannot give pages back here: the caller clears them instead.
func dontNeed([]byte) error { return errors.ErrUnsupported }
