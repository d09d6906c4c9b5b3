package capture

import (
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
