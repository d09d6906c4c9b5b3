package capture

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// recFrame is a frame as a test compares it.
type recFrame struct {
	data string
	ts   int64
	wire int
	link layers.LinkType
}

func readSet(t *testing.T, src Source) ([]recFrame, error) {
	t.Helper()
	var out []recFrame
	for {
		data, ci, link, err := src.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, recFrame{string(data), ci.Timestamp.UnixNano(), ci.Length, link})
	}
}

func framesOf(t *testing.T, path string) []recFrame {
	t.Helper()
	src, err := OpenFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fr, err := readSet(t, src)
	if err != nil {
		t.Fatal(err)
	}
	return fr
}

// writeCapture writes frames as a pcap file (ng: a pcapng file), with the
// given snapshot length in its header.
func writeCapture(t *testing.T, path string, frames []recFrame, ng bool, snaplen uint32) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ci := func(fr recFrame) gopacket.CaptureInfo {
		return gopacket.CaptureInfo{Timestamp: time.Unix(0, fr.ts), CaptureLength: len(fr.data), Length: fr.wire}
	}
	if ng {
		w, err := pcapgo.NewNgWriter(f, frames[0].link)
		if err != nil {
			t.Fatal(err)
		}
		for _, fr := range frames {
			if err := w.WritePacket(ci(fr), []byte(fr.data)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return
	}
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(snaplen, frames[0].link); err != nil {
		t.Fatal(err)
	}
	for _, fr := range frames {
		if err := w.WritePacket(ci(fr), []byte(fr.data)); err != nil {
			t.Fatal(err)
		}
	}
}

// split writes frames into files of n frames each, in dir, named so that
// their names do not sort in time order; every third is pcapng.
func split(t *testing.T, dir, stem string, frames []recFrame, n int) []string {
	t.Helper()
	var paths []string
	for i := 0; i*n < len(frames); i++ {
		p := filepath.Join(dir, fmt.Sprintf("%s-%d.cap", stem, (i*7)%11+100*i))
		writeCapture(t, p, frames[i*n:min((i+1)*n, len(frames))], i%3 == 2, uint32(65535-i))
		paths = append(paths, p)
	}
	slices.Reverse(paths)
	return paths
}

// mergeByTime is the order a set must give: by time, frames of one file
// in their order, equal times in the order the files were named.
func mergeByTime(files [][]recFrame) []recFrame {
	var out []recFrame
	pos := make([]int, len(files))
	for {
		best := -1
		for i, f := range files {
			if pos[i] < len(f) && (best < 0 || f[pos[i]].ts < files[best][pos[best]].ts) {
				best = i
			}
		}
		if best < 0 {
			return out
		}
		out = append(out, files[best][pos[best]])
		pos[best]++
	}
}

// A capture cut into files (pcap and pcapng, other snapshot lengths, names
// out of time order) reads back as the capture itself.
func TestOpenFilesRotatedSet(t *testing.T) {
	want := framesOf(t, filepath.Join(pcapDir, "ssh-many.pcap"))
	dir := t.TempDir()
	paths := split(t, dir, "rot", want, 97)
	src, err := OpenFiles(paths, "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, err := readSet(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%d frames from %d files; want the capture's %d in its order", len(got), len(paths), len(want))
	}
	s := src.(*setSource)
	if s.open != 0 || s.doneF != len(paths) {
		t.Errorf("at the end %d files open, %d done; want 0 and %d", s.open, s.doneF, len(paths))
	}
}

// Files that overlap in time (captures of several links, of several link
// types) are merged by time; with fewer places than files, files are
// closed and opened again where they were, and the result is the same.
func TestOpenFilesOverlapping(t *testing.T) {
	inputs := []string{"wikipedia.pcap", "sll-resp-15conn.pcap", "nmap-scan.pcap", "tls-google-8conn.pcap", "null-lo6-http.pcap"}
	dir := t.TempDir()
	var paths []string
	var files [][]recFrame
	base := int64(1_300_000_000) * 1e9
	for i, in := range inputs {
		fr := framesOf(t, filepath.Join(pcapDir, in))
		// Move each capture to start at the same moment, interleaving them.
		off := base - fr[0].ts + int64(i)*1000
		for j := range fr {
			fr[j].ts += off
		}
		// And cut each in three files: 15 files, all overlapping.
		n := (len(fr) + 2) / 3
		for k := 0; k*n < len(fr); k++ {
			part := fr[k*n : min((k+1)*n, len(fr))]
			p := filepath.Join(dir, fmt.Sprintf("%d-%d", i, k))
			mixed := slices.ContainsFunc(part, func(f recFrame) bool { return f.link != part[0].link })
			writeCapture(t, p, part, k == 1 || mixed, 262144)
			paths = append(paths, p)
			files = append(files, part)
		}
	}
	want := mergeByTime(files)
	for _, maxOpen := range []int{maxOpenFiles, 3, 1} {
		t.Run(fmt.Sprint("open ", maxOpen), func(t *testing.T) {
			src, err := OpenFiles(paths, "")
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			s := src.(*setSource)
			s.maxOpen = maxOpen
			most := 0
			var got []recFrame
			for {
				data, ci, link, err := src.Next()
				if err != nil {
					if !errors.Is(err, io.EOF) {
						t.Fatal(err)
					}
					break
				}
				most = max(most, s.open)
				got = append(got, recFrame{string(data), ci.Timestamp.UnixNano(), ci.Length, link})
			}
			if most > maxOpen {
				t.Errorf("%d files open at once; the bound is %d", most, maxOpen)
			}
			if len(got) != len(want) {
				t.Fatalf("%d frames, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("frame %d: %+v\nwant %+v", i, got[i].ts, want[i].ts)
				}
			}
		})
	}
}

// A file cut short in the middle of a set, one that is not a capture and
// one of a link type flowtrack cannot decode are named at the end; every
// frame of the others, and of the cut one up to the cut, is read.
func TestOpenFilesBadFiles(t *testing.T) {
	all := framesOf(t, filepath.Join(pcapDir, "ssh-many.pcap"))
	dir := t.TempDir()
	paths := split(t, dir, "set", all, 300)
	slices.Sort(paths)
	// Cut the second file (in time) inside its last frame.
	var cut string
	var lost int
	for _, p := range paths {
		if fr := framesOf(t, p); fr[0] == all[300] {
			cut, lost = p, 1
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b[:len(b)-5], 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	notCap := filepath.Join(dir, "notes.cap")
	if err := os.WriteFile(notCap, []byte("not a capture at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	user0 := filepath.Join(dir, "user0.pcap")
	writeCapture(t, user0, []recFrame{{data: "x", ts: all[0].ts, wire: 1, link: 147}}, false, 65535)
	src, err := OpenFiles(append(paths, notCap, user0), "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := readSet(t, src)
	src.Close()
	var se *SetError
	if !errors.As(err, &se) || len(se.Errs) != 3 || se.Files != len(paths)+2 {
		t.Fatalf("error %v: want a SetError naming 3 files of %d", err, len(paths)+2)
	}
	if !errors.Is(err, ErrTruncated) || !errors.Is(err, ErrNotCapture) || !errors.Is(err, ErrLinkType) {
		t.Errorf("error %q: want a cut file, a file that is not a capture and a link type", err)
	}
	for _, name := range []string{cut, notCap, user0, "link type 147 (USER0) is not one flowtrack can decode"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	if len(got) != len(all)-lost {
		t.Errorf("%d frames read, want all %d but the %d cut", len(got), len(all), lost)
	}
}

// A single file of a link type flowtrack cannot decode fails at open.
func TestOpenFileUnknownLinkType(t *testing.T) {
	p := filepath.Join(t.TempDir(), "user0.pcap")
	writeCapture(t, p, []recFrame{{data: "x", ts: 1, wire: 1, link: 147}}, false, 65535)
	for _, ng := range []bool{false, true} {
		writeCapture(t, p, []recFrame{{data: "x", ts: 1, wire: 1, link: 147}}, ng, 65535)
		_, err := OpenFile(p, "")
		if !errors.Is(err, ErrLinkType) || !strings.HasPrefix(err.Error(), p+": link type 147 (USER0) is not one flowtrack can decode; it reads Ethernet") {
			t.Errorf("pcapng %v: error %v", ng, err)
		}
	}
}

func TestExpandPaths(t *testing.T) {
	dir := t.TempDir()
	fr := framesOf(t, filepath.Join(pcapDir, "eth-http-get.pcap"))
	for _, n := range []string{"b.pcap", "a.dump", ".hidden.pcap"} {
		writeCapture(t, filepath.Join(dir, n), fr, false, 65535)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("notes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	files, other, err := ExpandPaths([]string{dir, filepath.Join(dir, "*.pcap")})
	want := []string{filepath.Join(dir, "a.dump"), filepath.Join(dir, "b.pcap")}
	if err != nil || !slices.Equal(files, want) || !slices.Equal(other, []string{filepath.Join(dir, "README")}) {
		t.Errorf("got %q, %q, %v; want %q and the README", files, other, err, want)
	}
	if _, _, err := ExpandPaths([]string{filepath.Join(dir, "*.nothing")}); err == nil || !strings.Contains(err.Error(), "no file matches") {
		t.Errorf("a pattern matching nothing: %v", err)
	}
	if _, _, err := ExpandPaths([]string{filepath.Join(dir, "sub")}); err == nil || !strings.Contains(err.Error(), "no pcap or pcapng file") {
		t.Errorf("an empty directory: %v", err)
	}
}
