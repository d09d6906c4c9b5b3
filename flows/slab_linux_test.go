package flows

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// vma is what /proc/self/smaps says of one mapping.
type vma struct {
	start, end uint64
	flags      []string // VmFlags: "hg" is MADV_HUGEPAGE
	hugeKB     int      // AnonHugePages
}

// mappingOf returns the mapping holding address p, from /proc/self/smaps.
func mappingOf(t *testing.T, p uintptr) vma {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cur vma
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fields[0], "-"); ok && !strings.HasSuffix(fields[0], ":") {
			if found {
				return cur
			}
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			cur = vma{start: start, end: end}
			found = err1 == nil && err2 == nil && uint64(p) >= start && uint64(p) < end
			continue
		}
		if !found {
			continue
		}
		switch fields[0] {
		case "AnonHugePages:":
			cur.hugeKB, _ = strconv.Atoi(fields[1])
		case "VmFlags:":
			cur.flags = fields[1:]
		}
	}
	if !found {
		t.Fatalf("no mapping holds %#x in /proc/self/smaps", p)
	}
	return cur
}

func (v vma) has(flag string) bool {
	for _, f := range v.flags {
		if f == flag {
			return true
		}
	}
	return false
}

// thpOn reports whether the kernel gives transparent huge pages to a
// mapping that asks for them (enabled is "always" or "madvise").
func thpOn() bool {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		return false
	}
	return !strings.Contains(string(b), "[never]")
}

// TestSlabOnHugePages checks, by the kernel's own account of the process's
// mappings, that a slab's large chunks of connections and of eviction
// links are on memory aligned to a huge page that asks for huge pages
// (and, where the kernel gives them, has them once written), that links
// smaller than a huge page are not, and that unmap gives them all back.
func TestSlabOnHugePages(t *testing.T) {
	s := newSlab(true)
	const big, small = 13, 12 // links of 2 MiB and of 1 MiB
	for _, k := range []int{small, big} {
		s.grow(k)
	}
	chunk := func(k int) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(s.chunks[k])) }
	link := func(k int) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(s.links[k])) }
	huge := []struct {
		name string
		p    unsafe.Pointer
		size int
	}{
		{fmt.Sprintf("conns of chunk %d", small), chunk(small), mappedSize[conn](len(s.chunks[small]))},
		{fmt.Sprintf("conns of chunk %d", big), chunk(big), mappedSize[conn](len(s.chunks[big]))},
		{fmt.Sprintf("links of chunk %d", big), link(big), mappedSize[links](len(s.links[big]))},
	}
	for _, h := range huge {
		if uintptr(h.p)%hugePage != 0 {
			t.Errorf("%s at %#x: not aligned to a huge page", h.name, h.p)
		}
		// Write a value in each huge page, as connections would.
		b := unsafe.Slice((*byte)(h.p), h.size)
		for i := 0; i < len(b); i += hugePage {
			b[i] = 1
		}
		v := mappingOf(t, uintptr(h.p))
		if !v.has("hg") {
			t.Errorf("%s: mapping %#x-%#x does not ask for huge pages (VmFlags %v)", h.name, v.start, v.end, v.flags)
		}
		if thpOn() && v.hugeKB == 0 {
			t.Errorf("%s: mapping %#x-%#x has no huge page once written", h.name, v.start, v.end)
		}
	}
	if v := mappingOf(t, uintptr(link(small))); v.has("hg") {
		t.Errorf("links of chunk %d (1 MiB) ask for huge pages: a huge page would be half empty", small)
	}
	if want := (len(s.chunks[small])+len(s.chunks[big]))*int(unsafe.Sizeof(conn{})) +
		(len(s.links[small])+len(s.links[big]))*int(unsafe.Sizeof(links{})); s.bytesMapped() != want {
		t.Errorf("bytesMapped = %d, want %d", s.bytesMapped(), want)
	}
	s.unmap()
	for _, h := range huge {
		if _, err := resident(unsafe.Slice((*byte)(h.p), hugePage)); err == nil {
			t.Errorf("%s still mapped after unmap: %+v", h.name, mappingOf(t, uintptr(h.p)))
		}
	}
}
