package capture

import (
	"syscall"
	"unsafe"

	"github.com/gopacket/gopacket/layers"
)

// madvPopulateRead is Linux's MADV_POPULATE_READ (5.14): map the pages of
// a range for reading, in one call.
const madvPopulateRead = 22

// gopacket's layers hold two tables of 65536 entries (by EtherType and
// by PPP type), 5 MB of zeroed globals with pointers, that the decoders
// look up a few entries of. The garbage collector scans them whole at
// every collection, and its first scan reads pages never touched: a page
// fault each, over a thousand of them, which on a virtual machine made a
// short replay's first collection several times its later ones. Mapping
// them in one call costs a fraction of that, and nothing in memory: an
// untouched page maps the kernel's shared zero page. A kernel before 5.14
// refuses the call, and the faults come as before.
func init() {
	populate(unsafe.Pointer(&layers.EthernetTypeMetadata), unsafe.Sizeof(layers.EthernetTypeMetadata))
	populate(unsafe.Pointer(&layers.PPPTypeMetadata), unsafe.Sizeof(layers.PPPTypeMetadata))
}

// populate maps the whole pages of the n bytes at p.
func populate(p unsafe.Pointer, n uintptr) {
	page := uintptr(syscall.Getpagesize())
	start := (uintptr(p) + page - 1) &^ (page - 1)
	end := (uintptr(p) + n) &^ (page - 1)
	if end <= start {
		return
	}
	_ = syscall.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, start-uintptr(p))), end-start), madvPopulateRead)
}
