//go:build !linux

package flows

import "errors"

// mapHuge returns n values of T on the heap (see slab_linux.go).
func mapHuge[T any](n int) ([]T, bool) { return make([]T, n), false }

// unmapHuge is never called where mapHuge maps nothing.
func unmapHuge[T any]([]T) {}

// dontNeed cannot give pages back here: the caller clears them instead.
func dontNeed([]byte) error { return errors.ErrUnsupported }
