package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
)

// frame is what a Source hands out for one frame.
type frame struct {
	data []byte
	ci   gopacket.CaptureInfo
	link layers.LinkType
}

// readAll reads src to its end, copying the frames, and returns the final
// error (nil at the end of the file).
func readAll(src Source) ([]frame, error) {
	var fs []frame
	for {
		data, ci, link, err := src.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return fs, err
		}
		fs = append(fs, frame{bytes.Clone(data), ci, link})
	}
}

// libpcapFrames reads a file as flowtrack did before the mapped pcapng
// reader: libpcap, then pcapgo where libpcap gives up.
func libpcapFrames(t *testing.T, path string) ([]frame, error, bool) {
	t.Helper()
	h, err := pcap.OpenOffline(path)
	if err != nil {
		return nil, nil, false
	}
	src, err := newFileSource(path, h, "", true, true)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fs, err := readAll(src)
	return fs, err, true
}

// sameFrames compares the mapped reader's frames with libpcap's: bytes,
// times, lengths and link types, and the error at the end.
func sameFrames(t *testing.T, path string) *pcapngSource {
	t.Helper()
	want, wantErr, ok := libpcapFrames(t, path)
	src, err := OpenFile(path, "")
	if !ok {
		if err == nil {
			t.Fatalf("%s: opened, but libpcap refuses it", path)
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ng, isNg := src.(*pcapngSource)
	if !isNg {
		t.Fatalf("%s: read by %T, want the mapped pcapng reader", path, src)
	}
	got, gotErr := readAll(src)
	sameAsLibpcap(t, path, got, want)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("%s: ends with %v, libpcap with %v", path, gotErr, wantErr)
	}
	return ng
}

// TestMmapNgMatchesLibpcap: every bundled pcapng file gives, frame for
// frame, what libpcap (and pcapgo after it) gives, and ends the same way.
func TestMmapNgMatchesLibpcap(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(pcapDir, "*.pcapng"))
	if len(paths) < 5 {
		t.Fatalf("only %d pcapng files bundled", len(paths))
	}
	for _, p := range paths {
		sameFrames(t, p)
	}
}

// ngFile builds a little-endian pcapng file from blocks.
type ngFile struct{ b []byte }

func (f *ngFile) block(typ uint32, body []byte) *ngFile {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	n := uint32(12 + len(body))
	f.b = binary.LittleEndian.AppendUint32(f.b, typ)
	f.b = binary.LittleEndian.AppendUint32(f.b, n)
	f.b = append(f.b, body...)
	f.b = binary.LittleEndian.AppendUint32(f.b, n)
	return f
}

func (f *ngFile) shb() *ngFile {
	b := binary.LittleEndian.AppendUint32(nil, 0x1a2b3c4d)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint64(b, ^uint64(0))
	return f.block(ngSHB, b)
}

// idb adds an Ethernet interface with the given options (code, value).
func (f *ngFile) idb(snaplen uint32, opts ...[]byte) *ngFile {
	b := binary.LittleEndian.AppendUint16(nil, 1)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, snaplen)
	for _, o := range opts {
		b = append(b, o...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	if len(opts) > 0 {
		b = append(b, 0, 0, 0, 0)
	}
	return f.block(ngIDB, b)
}

func opt(code uint16, v ...byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// epb adds a 60-byte Ethernet frame (an IPv4 TCP SYN) on interface 0.
func (f *ngFile) epb(ts uint64, caplen int) *ngFile {
	fr := make([]byte, 60)
	binary.BigEndian.PutUint16(fr[12:], 0x0800)
	fr[14], fr[23] = 0x45, 6
	b := binary.LittleEndian.AppendUint32(nil, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(ts>>32))
	b = binary.LittleEndian.AppendUint32(b, uint32(ts))
	b = binary.LittleEndian.AppendUint32(b, uint32(caplen))
	b = binary.LittleEndian.AppendUint32(b, 60)
	return f.block(ngEPB, append(b, fr[:caplen]...))
}

// TestMmapNgHandsOver: files the mapped reader does not take whole give
// libpcap's frames and errors all the same, whether the reader takes them
// (nanosecond and millisecond resolutions, statistics blocks) or hands
// them to libpcap part way (a second section, a Simple Packet Block, a
// timestamp offset, a frame over the snapshot length, a file cut short).
func TestMmapNgHandsOver(t *testing.T) {
	ts := uint64(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).UnixMicro())
	cases := []struct {
		name     string
		file     *ngFile
		handOver bool
	}{
		{"plain", new(ngFile).shb().idb(0).epb(ts, 60).epb(ts+1, 60), false},
		{"nanoseconds", new(ngFile).shb().idb(0, opt(ngOptTSResol, 9)).epb(ts*1000+7, 60), false},
		{"milliseconds", new(ngFile).shb().idb(0, opt(ngOptTSResol, 3)).epb(ts/1000, 60), false},
		{"statistics block", new(ngFile).shb().idb(65535).epb(ts, 60).block(5, make([]byte, 12)).epb(ts+1, 60), false},
		{"binary resolution", new(ngFile).shb().idb(0, opt(ngOptTSResol, 0x80|20)).epb(ts, 60), true},
		{"timestamp offset", new(ngFile).shb().idb(0, opt(ngOptTSOffset, 1, 0, 0, 0, 0, 0, 0, 0)).epb(ts, 60), true},
		{"second section", new(ngFile).shb().idb(0).epb(ts, 60).shb().idb(0).epb(ts+1, 60), true},
		{"simple packet block", new(ngFile).shb().idb(0).epb(ts, 60).block(ngSPB, append(binary.LittleEndian.AppendUint32(nil, 60), make([]byte, 60)...)), true},
		{"over the snapshot length", new(ngFile).shb().idb(40).epb(ts, 60), true},
		{"unknown interface", new(ngFile).shb().idb(0).epb(ts, 60).block(ngEPB, binary.LittleEndian.AppendUint32(nil, 5)), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.pcapng")
			if err := os.WriteFile(path, c.file.b, 0o600); err != nil {
				t.Fatal(err)
			}
			ng := sameFrames(t, path)
			if ng == nil {
				t.Fatal("libpcap refused the file")
			}
			if got := ng.rest != nil; got != c.handOver {
				t.Fatalf("handed over to libpcap: %v, want %v", got, c.handOver)
			}
		})
	}
	t.Run("cut short", func(t *testing.T) {
		f := new(ngFile).shb().idb(0).epb(ts, 60).epb(ts+1, 60)
		path := filepath.Join(t.TempDir(), "x.pcapng")
		if err := os.WriteFile(path, f.b[:len(f.b)-30], 0o600); err != nil {
			t.Fatal(err)
		}
		if ng := sameFrames(t, path); ng == nil || ng.rest == nil {
			t.Fatal("a file cut short was not handed to libpcap")
		}
	})
}

// FuzzMmapNg: for any file libpcap opens as pcapng, the mapped reader gives
// libpcap's frames and final error.
func FuzzMmapNg(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(pcapDir, "*.pcapng"))
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil && len(data) <= 64<<10 {
			f.Add(data)
		}
	}
	ts := uint64(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).UnixMicro())
	f.Add(new(ngFile).shb().idb(0, opt(ngOptTSResol, 9)).epb(ts, 60).block(5, make([]byte, 12)).epb(ts+1, 60).b)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if !bytes.HasPrefix(data, magicPcapng) {
			return
		}
		path := filepath.Join(dir, "in.pcapng")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := libpcapFrames(t, path); !ok {
			return
		}
		src, err := OpenFile(path, "")
		if err != nil {
			t.Fatalf("libpcap opens it, OpenFile: %v", err)
		}
		_, isNg := src.(*pcapngSource)
		src.Close()
		if isNg {
			sameFrames(t, path)
		}
	})
}

// TestMmapNgWindow: a file larger than the reader's buffer, with Enhanced
// Packet Blocks of every size up to libpcap's largest frame and other
// blocks larger than the buffer (which grows for them), gives libpcap's
// frames.
func TestMmapNgWindow(t *testing.T) {
	f := (&ngFile{}).shb().idb(0)
	sizes := []int{maxCaplen, 0, 1, 1514, windowSize - 40, 9000, maxCaplen - 3}
	for i := range 300 {
		sizes = append(sizes, (i*7919)%5000)
	}
	for i, n := range sizes {
		if i == 5 {
			f.block(0x0bad, make([]byte, windowSize+100)) // a custom block, skipped
		}
		b := binary.LittleEndian.AppendUint32(nil, 0)
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(1_700_000_000_000_000+i*1000))
		b = binary.LittleEndian.AppendUint32(b, uint32(n))
		b = binary.LittleEndian.AppendUint32(b, uint32(n+i))
		for j := range n {
			b = append(b, byte(i*j))
		}
		f.block(ngEPB, b)
	}
	path := filepath.Join(t.TempDir(), "window.pcapng")
	if err := os.WriteFile(path, f.b, 0o600); err != nil {
		t.Fatal(err)
	}
	ng := sameFrames(t, path)
	if ng == nil || ng.rest != nil || ng.read != uint64(len(sizes)) {
		t.Fatalf("the pcapng reader handed the file over or read too few frames: %+v", ng)
	}
}
