package flows

import (
	"testing"
	"unsafe"
)

// TestHalfSlotSize keeps a half-open connection's slot at 84 bytes: the
// key and a halfOpen needing only 4-byte alignment. At 70% to 87.5% full
// that is 96 to 120 bytes per connection, under issue 5's 128.
func TestHalfSlotSize(t *testing.T) {
	if n := unsafe.Sizeof(halfSlot{}); n != 84 {
		t.Fatalf("halfSlot is %d bytes, want 84", n)
	}
}

// TestConnSize keeps a conn at 384 bytes, a size class of Go's allocator:
// one byte more and each connection would take 448.
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(conn{}); n != 384 {
		t.Fatalf("conn is %d bytes, want 384", n)
	}
	if n := unsafe.Sizeof(endpoint{}); n != 96 {
		t.Fatalf("endpoint is %d bytes, want 96", n)
	}
}

// TestShardSize keeps a shard a whole number of cache lines, so that two
// goroutines locking neighbouring shards do not share one.
func TestShardSize(t *testing.T) {
	if n := unsafe.Sizeof(shard{}); n%64 != 0 {
		t.Fatalf("shard is %d bytes, not a multiple of 64", n)
	}
}
