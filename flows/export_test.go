package flows

// SetChangeLimit sets how many entries each shard's change list holds, so
// that an external test can make them overflow.
func SetChangeLimit(t *Table, n int) { t.chgMax = n }

// SetSplitAbove sets how many connections l's table holds before its
// shards are shared out among the lanes, so that a test's small table is.
func SetSplitAbove(l *Lanes, n uint64) { l.splitAbove = n }
