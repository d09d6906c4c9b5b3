package flows

// SetChangeLimit sets how many entries each shard's change list holds, so
// that an external test can make them overflow.
func SetChangeLimit(t *Table, n int) { t.chgMax = n }

// SetLaneThresholds sets how many connections l's table holds before its
// shards are shared out among the lanes, and before the lanes load ahead,
// so that a test's small table does both.
func SetLaneThresholds(l *Lanes, split, touch uint64) { l.splitAbove, l.touchAbove = split, touch }
