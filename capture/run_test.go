package capture

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"

	"github.com/flowtrack/flowtrack/flows"
)

// event is one call Run made to a Sink: a packet (its time) or the time
// of another frame.
type event struct {
	ts   int64
	tick bool
}

// eventSink records the calls Run makes.
type eventSink struct{ events []event }

func (s *eventSink) Apply(p *flows.Packet) { s.events = append(s.events, event{p.TS, false}) }
func (s *eventSink) Advance(ts int64)      { s.events = append(s.events, event{ts, true}) }

// wrapped hides a Source's type, so that Run reads it on the calling
// goroutine instead of pipelining it.
type wrapped struct{ Source }

// TestRunAdvancesOnEveryFrame replays a recording whose heartbeats (UDP)
// go on after its last TCP packet, and requires every frame's time to
// reach the sink: each TCP packet in Apply, and the time of every other
// frame at least a millisecond after the last time handed over in
// Advance, in capture order, the same whether the file is read on its own
// goroutine (in batches) or on the caller's.
func TestRunAdvancesOnEveryFrame(t *testing.T) {
	path := pcapDir + "/impaired/final-ack-lost.pcap"
	// What the sink must get, worked out frame by frame.
	src := mustOpen(t, path)
	d := NewDecoder()
	var want []event
	var handed int64
	var p flows.Packet
	for {
		data, ci, link, err := src.Next()
		if err != nil {
			break
		}
		ts := ci.Timestamp.UnixNano()
		switch {
		case d.Decode(link, data, ci, &p) == ResultTCP:
			want = append(want, event{p.TS, false})
			handed = p.TS
		case ts > handed+int64(time.Millisecond):
			want = append(want, event{ts, true})
			handed = ts
		}
	}
	ticks := 0
	for i, e := range want {
		if e.tick {
			ticks++
		}
		if i > 0 && e.ts < want[i-1].ts {
			t.Fatalf("event %d goes back in time", i)
		}
	}
	if ticks < 10 || !want[len(want)-1].tick {
		t.Fatalf("%d frames of other traffic, the last event a packet: the recording has no heartbeats after its last packet", ticks)
	}
	for _, how := range []struct {
		name string
		src  Source
	}{{"pipelined", mustOpen(t, path)}, {"direct", wrapped{mustOpen(t, path)}}} {
		var got eventSink
		var c Counters
		if err := Run(context.Background(), how.src, NewDecoder(), &c, 0, &got); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.events, want) {
			t.Errorf("%s: the sink got %d events (%d expected); first difference at %d", how.name, len(got.events), len(want), firstDiff(got.events, want))
		}
		if c.NonTCP.Load() == 0 {
			t.Errorf("%s: no frame counted as other traffic", how.name)
		}
	}
}

func firstDiff(a, b []event) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// slowSource hands out a frame, or a read timeout, every 10 ms, as a quiet
// live capture does.
type slowSource struct{ timeouts bool }

func (s *slowSource) Next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	time.Sleep(10 * time.Millisecond)
	if s.timeouts {
		return nil, gopacket.CaptureInfo{}, layers.LinkTypeEthernet, ErrTimeout
	}
	return make([]byte, 60), gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: 60, Length: 60}, layers.LinkTypeEthernet, nil
}
func (s *slowSource) Stats() (Stats, error) { return Stats{}, nil }
func (s *slowSource) Name() string          { return "slow" }
func (s *slowSource) Close()                {}

// TestRunTicks runs a slow source for half a second: RunTicking must call
// its tick every TickEvery or so, whether frames come (at most 64,
// the frames between two looks at the context: no count of frames may
// gate it) or only timeouts, and on the
// goroutine that calls apply (the count they share is not atomic: the
// race detector would see two goroutines).
func TestRunTicks(t *testing.T) {
	for _, timeouts := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		calls, ticks := 0, 0
		var c Counters
		err := RunTicking(ctx, &slowSource{timeouts: timeouts}, NewDecoder(), &c, 0,
			PacketFunc(func(*flows.Packet) { calls++ }),
			func(now time.Time) {
				if time.Since(now) > time.Second {
					t.Errorf("tick at %v, long ago", now)
				}
				calls++
				ticks++
			})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if ticks < 4 || ticks > 8 {
			t.Errorf("timeouts %v: %d ticks in 0.5 s (every %v), %d frames", timeouts, ticks, TickEvery, c.Frames.Load())
		}
		if !timeouts && (c.Frames.Load() == 0 || c.Frames.Load() > 64) {
			t.Errorf("%d frames read", c.Frames.Load())
		}
	}
}

// callSink records every call Run makes to a Sink, packets in full.
type callSink struct {
	packets []flows.Packet
	advance []int64
}

func (s *callSink) Apply(p *flows.Packet) { s.packets = append(s.packets, *p) }
func (s *callSink) Advance(ts int64)      { s.advance = append(s.advance, ts) }

// TestRunFramesMatchLibpcap: Run reads a classic pcap or pcapng file
// through the reader's own frames (frameSource), without a
// gopacket.CaptureInfo; over every bundled one, with and without a filter, the packets, the times of
// other frames and the counters are those of a Run over libpcap's reading
// of the same file.
func TestRunFramesMatchLibpcap(t *testing.T) {
	paths, err := filepath.Glob(pcapDir + "/*.pcap")
	ng, _ := filepath.Glob(pcapDir + "/*.pcapng")
	if err != nil || len(paths) < 50 || len(ng) < 5 {
		t.Fatalf("%d pcap and %d pcapng files bundled: %v", len(paths), len(ng), err)
	}
	paths = append(paths, ng...)
	compared, comparedNG := 0, 0
	for _, p := range paths {
		for _, filter := range []string{"", "tcp[13] & 2 == 0"} {
			src, err := OpenFile(p, filter)
			if err != nil {
				continue // refused (TestOpenFileErrors)
			}
			if _, ok := src.(frameSource); !ok {
				src.Close()
				continue
			}
			h, err := pcap.OpenOffline(p)
			if err != nil {
				src.Close()
				continue
			}
			isNG := strings.HasSuffix(p, ".pcapng")
			ref, err := newFileSource(p, h, filter, isNG, true)
			if err != nil {
				t.Fatal(err)
			}
			got, gotC, gotErr := runAll(src)
			want, wantC, wantErr := runAll(wrapped{ref})
			src.Close()
			ref.Close()
			compared++
			if isNG {
				comparedNG++
			}
			if !slices.Equal(got.packets, want.packets) || !slices.Equal(got.advance, want.advance) {
				t.Errorf("%s (filter %q): %d packets, %d other times; libpcap's %d, %d, or they differ",
					p, filter, len(got.packets), len(got.advance), len(want.packets), len(want.advance))
			}
			if gotC != wantC || (gotErr == nil) != (wantErr == nil) {
				t.Errorf("%s (filter %q): counters %v, err %v; libpcap's %v, %v", p, filter, gotC, gotErr, wantC, wantErr)
			}
		}
	}
	if compared < 100 || comparedNG < 6 {
		t.Errorf("compared %d runs, %d of pcapng files", compared, comparedNG)
	}
}

// FuzzRunFrames: on arbitrary pcap and pcapng files that the readers take,
// Run through its frames (frameSource) hands the sink what Run through
// Source.Next and a gopacket.CaptureInfo hands it, up to the error where
// both stop. (Against libpcap, TestRunFramesMatchLibpcap: on damaged
// records the two readers differ, as TestPcapMatchesLibpcap allows, e.g. a
// microsecond field past a million.)
func FuzzRunFrames(f *testing.F) {
	addCaptureSeeds(f, 16<<10)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		src, ok := openFuzzed(t, dir, data)
		if !ok {
			return
		}
		defer src.Close()
		if _, ok := src.(frameSource); !ok {
			return
		}
		ref, err := OpenFile(filepath.Join(dir, "in.pcap"), "")
		if err != nil {
			t.Fatal(err)
		}
		defer ref.Close()
		got, gotC, gotErr := runAll(src)
		want, wantC, wantErr := runAll(wrapped{ref})
		if !slices.Equal(got.packets, want.packets) || !slices.Equal(got.advance, want.advance) || gotC != wantC ||
			(gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%d packets, %d other times, counters %v, error %v; through Next %d, %d, %v, %v",
				len(got.packets), len(got.advance), gotC, gotErr, len(want.packets), len(want.advance), wantC, wantErr)
		}
	})
}

// runAll runs a fresh decoder over src, and returns the sink's calls and
// the frame counters.
func runAll(src Source) (*callSink, [6]uint64, error) {
	var c Counters
	s := &callSink{}
	err := Run(context.Background(), src, NewDecoder(), &c, 0, s)
	return s, [6]uint64{c.Frames.Load(), c.Bytes.Load(), c.TCP.Load(), c.NonTCP.Load(), c.Malformed.Load(), c.FragmentsHeld.Load()}, err
}
