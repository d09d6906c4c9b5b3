package capture

import (
	"io"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// countingSource returns n empty frames, then io.EOF, and counts the
// calls to its Stats and Progress.
type countingSource struct {
	n               int
	stats, progress int
}

func (s *countingSource) Next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	if s.n == 0 {
		return nil, gopacket.CaptureInfo{}, 0, io.EOF
	}
	s.n--
	return []byte{}, gopacket.CaptureInfo{}, layers.LinkTypeEthernet, nil
}

func (s *countingSource) Stats() (Stats, error) {
	s.stats++
	return Stats{PacketsReceived: 10, PacketsDropped: 3, IfDropped: 2}, nil
}
func (s *countingSource) Name() string { return "counting" }
func (s *countingSource) Close()       {}

type progressSource struct{ *countingSource }

func (s progressSource) Progress() float64 { s.progress++; return 0.25 }

// TestPolled: a live source's drops and a file's progress are read on the
// first frame, then at most once a second (drops) or ten times a second
// (progress), never per frame; a file has no drops, a live capture no
// progress.
func TestPolled(t *testing.T) {
	live := &countingSource{n: 1000}
	p := NewPolled(live, true)
	if k, i := p.Drops(); k != 0 || i != 0 {
		t.Fatalf("drops %d, %d before any frame", k, i)
	}
	for {
		if _, _, _, err := p.Next(); err != nil {
			break
		}
	}
	if k, i := p.Drops(); k != 3 || i != 2 {
		t.Errorf("live drops %d (kernel), %d (interface), want 3, 2", k, i)
	}
	if live.stats < 1 || live.stats > 2 {
		t.Errorf("Stats read %d times for 1000 frames", live.stats)
	}
	if p.Progress() != 0 {
		t.Errorf("a live capture has progress %v", p.Progress())
	}

	file := progressSource{&countingSource{n: 1000}}
	p = NewPolled(file, false)
	for {
		if _, _, _, err := p.Next(); err != nil {
			break
		}
	}
	if p.Progress() != 0.25 {
		t.Errorf("progress %v, want 0.25", p.Progress())
	}
	if k, i := p.Drops(); k != 0 || i != 0 || file.stats != 0 {
		t.Errorf("a file's drops read (%d calls): %d, %d", file.stats, k, i)
	}
	if file.progress < 1 || file.progress > 20 {
		t.Errorf("Progress read %d times for 1000 frames", file.progress)
	}
}
