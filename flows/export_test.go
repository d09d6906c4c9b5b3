package flows

// SetChangeLimit sets how many entries each shard's change list holds, so
// that an external test can make them overflow.
func SetChangeLimit(t *Table, n int) { t.chgMax = n }
