//go:build !linux

package flows

// arenas says whether indexes go in arenas (robinArena) here: not but on
// Linux, whose huge pages they are for.
const arenas = false

func mapArena(int) []byte { return nil }

func dropArena(b []byte) { clear(b) }

func unmapArena([]byte) {}
