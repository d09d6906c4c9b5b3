package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMmapRecordChecks feeds the mapped reader records that libpcap would
// reject: a captured length over libpcap's maximum, and records cut short
// in their header or data. Each gives one clear error after the good
// records before it.
func TestMmapRecordChecks(t *testing.T) {
	head := make([]byte, 24)
	binary.LittleEndian.PutUint32(head, 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(head[4:], 2)
	binary.LittleEndian.PutUint16(head[6:], 4)
	binary.LittleEndian.PutUint32(head[16:], 65535)
	binary.LittleEndian.PutUint32(head[20:], 1)
	rec := func(caplen, have int) []byte {
		r := make([]byte, 16+have)
		binary.LittleEndian.PutUint32(r[8:], uint32(caplen))
		binary.LittleEndian.PutUint32(r[12:], uint32(caplen))
		return r
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"caplen over the maximum", cat(head, rec(60, 60), rec(maxCaplen+1, 64)), "bigger than maximum"},
		{"cut in a record's data", cat(head, rec(60, 60), rec(60, 30)), "cut short in the middle of a packet"},
		{"cut in a record's header", cat(head, rec(60, 60), rec(60, 60)[:10]), "cut short in the middle of a packet header"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.pcap")
			if err := os.WriteFile(path, c.file, 0o600); err != nil {
				t.Fatal(err)
			}
			src, err := OpenFile(path, "")
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if _, ok := src.(*pcapSource); !ok {
				t.Fatalf("read by %T, want the mapped reader", src)
			}
			n := 0
			for {
				_, _, _, err := src.Next()
				if err == nil {
					n++
					continue
				}
				if errors.Is(err, io.EOF) || !strings.Contains(err.Error(), c.want) || n != 1 {
					t.Fatalf("after %d frames: %v; want 1 frame, then %q", n, err, c.want)
				}
				break
			}
		})
	}
}

// TestPcapMatchesLibpcap: every bundled classic pcap file (both byte
// orders, micro- and nanosecond timestamps, files cut short) gives, frame
// for frame, what libpcap gives, and ends in an error where libpcap does.
func TestPcapMatchesLibpcap(t *testing.T) {
	var paths []string
	err := filepath.WalkDir(pcapDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".pcap") {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil || len(paths) < 100 {
		t.Fatalf("%d pcap files bundled: %v", len(paths), err)
	}
	orders := map[string]int{}
	compared := 0
	for _, p := range paths {
		head, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr, ok := libpcapFrames(t, p)
		if !ok {
			continue // refused (see TestOracle)
		}
		src, err := OpenFile(p, "")
		if err != nil {
			continue // refused by flowtrack: a damaged header (TestOpenFileErrors)
		}
		if _, ok := src.(*pcapSource); !ok {
			src.Close()
			continue // left to libpcap: an odd header
		}
		orders[string(head[:4])]++
		compared++
		got, gotErr := readAll(src)
		src.Close()
		sameAsLibpcap(t, p, got, want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Errorf("%s: ends with %v, libpcap with %v", p, gotErr, wantErr)
		}
	}
	if compared < 100 {
		t.Errorf("compared %d files with libpcap", compared)
	}
	if len(orders) < 3 {
		t.Errorf("read %d kinds of pcap header (%v), want both byte orders and nanoseconds", len(orders), orders)
	}
}

// TestPcapWindow: records of every size, up to libpcap's largest, read
// across the reader's buffer and past its size (which grows for a record
// larger than it), give libpcap's frames.
func TestPcapWindow(t *testing.T) {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, 0xa1b2c3d4) // big-endian, microseconds
	b = binary.BigEndian.AppendUint16(b, 2)
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = binary.BigEndian.AppendUint32(b, maxCaplen)
	b = binary.BigEndian.AppendUint32(b, 1)
	sizes := []int{0, 1, 60, 1514, windowSize - 16, windowSize - 15, maxCaplen, 9000, maxCaplen - 1, 54}
	for i := range 400 {
		sizes = append(sizes, (i*7919)%4000)
	}
	for i, n := range sizes {
		b = binary.BigEndian.AppendUint32(b, uint32(1_700_000_000+i))
		b = binary.BigEndian.AppendUint32(b, uint32(i*1000%1_000_000))
		b = binary.BigEndian.AppendUint32(b, uint32(n))
		b = binary.BigEndian.AppendUint32(b, uint32(n+i))
		for j := range n {
			b = append(b, byte(i+j))
		}
	}
	path := filepath.Join(t.TempDir(), "window.pcap")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	want, wantErr, ok := libpcapFrames(t, path)
	if !ok || wantErr != nil || len(want) != len(sizes) {
		t.Fatalf("libpcap read %d frames of %d: %v", len(want), len(sizes), wantErr)
	}
	src, err := OpenFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, ok := src.(*pcapSource); !ok {
		t.Fatalf("read by %T", src)
	}
	got, err := readAll(src)
	if err != nil {
		t.Fatal(err)
	}
	sameAsLibpcap(t, path, got, want)
}

func sameAsLibpcap(t *testing.T, path string, got, want []frame) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d frames, libpcap %d", path, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if !bytes.Equal(g.data, w.data) || !g.ci.Timestamp.Equal(w.ci.Timestamp) ||
			g.ci.CaptureLength != w.ci.CaptureLength || g.ci.Length != w.ci.Length || g.link != w.link && dltOf(g.link) != w.link {
			t.Fatalf("%s: frame %d differs:\n got %v %d/%d link %d\nwant %v %d/%d link %d", path, i,
				g.ci.Timestamp, g.ci.CaptureLength, g.ci.Length, g.link, w.ci.Timestamp, w.ci.CaptureLength, w.ci.Length, w.link)
		}
	}
}
