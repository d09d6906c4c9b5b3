package capture

import (
	"errors"
	"fmt"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Source is one stream of frames, live or from a file. A Source is used by
// one goroutine at a time, except that Close may be called from another.
type Source interface {
	// Next returns the next frame; data is valid only until the next call
	// (zero-copy). It returns io.EOF at the end of a file, ErrTimeout when
	// a live read timed out with nothing to read (so that the caller can
	// check its context and call again), or another error, an *Error
	// whose message names the source and says what is wrong.
	Next() (data []byte, ci gopacket.CaptureInfo, link layers.LinkType, err error)
	// Stats returns libpcap's counters for a live capture; zeros for a file.
	Stats() (Stats, error)
	// Name returns the interface name or the file path.
	Name() string
	// Close releases the source. Next then returns io.EOF.
	Close()
}

// frameSource is a Source that can also hand out a frame with its capture
// time in Unix nanoseconds and its original length, without building a
// gopacket.CaptureInfo: that struct is too large to be returned in
// registers, and its copies through the stack cost more per frame than
// reading the record.
type frameSource interface {
	nextFrame() (data []byte, ts int64, wire int, link layers.LinkType, err error)
}

// frameReader reads a Source through nextFrame where it has one.
type frameReader struct {
	src Source
	fs  frameSource
}

func readFrames(src Source) frameReader {
	fs, _ := src.(frameSource)
	return frameReader{src, fs}
}

func (f *frameReader) next() (data []byte, ts int64, wire int, link layers.LinkType, err error) {
	if f.fs != nil {
		return f.fs.nextFrame()
	}
	data, ci, link, err := f.src.Next()
	return data, ci.Timestamp.UnixNano(), ci.Length, link, err
}

// Stats are the packet counters of a live capture, as libpcap reports them
// (pcap_stats): what the kernel received for the filter, what it dropped
// because the buffer was full, and what the interface or driver dropped.
type Stats struct {
	PacketsReceived uint64
	PacketsDropped  uint64
	IfDropped       uint64
}

// ErrTimeout is returned by a live Source's Next when its read timeout
// passed without a frame. It is not a failure: call Next again.
var ErrTimeout = errors.New("capture: read timed out with no frame")

// The kinds of Error, for errors.Is.
var (
	ErrNoInterface = errors.New("no such interface")
	ErrPermission  = errors.New("permission denied")
	ErrFilter      = errors.New("invalid capture filter")
	ErrNotCapture  = errors.New("not a capture file")
	ErrTruncated   = errors.New("capture file cut short")
	ErrDamaged     = errors.New("capture file damaged or unsupported")
	ErrLinkType    = errors.New("link type flowtrack cannot decode")
	ErrCapture     = errors.New("capture failed")
)

// Error is an error from opening or reading a Source. Its message is one
// line meant for the user as it is: it names the interface or file, says
// what is wrong and, where there is one, what to do about it.
type Error struct {
	Kind error  // ErrNoInterface, ErrPermission, ErrFilter, ... or an fs error such as fs.ErrNotExist
	Msg  string // the whole message
	Err  error  // the underlying error (libpcap's message, an *fs.PathError), if any
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the error's kind.
func (e *Error) Is(target error) bool { return target != nil && target == e.Kind }

func newError(kind, err error, format string, args ...any) *Error {
	return &Error{Kind: kind, Err: err, Msg: fmt.Sprintf(format, args...)}
}

// LiveConfig configures OpenLive.
type LiveConfig struct {
	// Snaplen is how many bytes of each frame to capture; 0 means
	// DefaultSnaplen.
	Snaplen int
	// Promisc puts the interface into promiscuous mode.
	Promisc bool
	// Timeout bounds how long Next waits for a frame before it returns
	// ErrTimeout; 0 means 100ms. Frames are delivered as they arrive
	// (immediate mode): the timeout never delays them.
	Timeout time.Duration
	// BufferSize is the kernel capture buffer's size in bytes; 0 keeps
	// libpcap's default (2 MiB on Linux).
	BufferSize int
	// Filter is a BPF filter expression (pcap-filter(7)); "" captures all.
	Filter string
	// Method is how to capture: MethodPcap (libpcap, also for ""),
	// MethodAFPacket (AF_PACKET rings read in Go), or MethodAuto
	// (AF_PACKET, unless the interface is "any" or not Ethernet).
	Method string
	// Sockets is how many AF_PACKET sockets share the frames (a fanout
	// group): Run reads and decodes each on a goroutine of its own.
	// 0 means 1. libpcap reads one.
	Sockets int
}

// Defaults of LiveConfig.
const (
	// DefaultSnaplen keeps a connection's first client segments whole,
	// for the names they carry (package peek): a browser's ClientHello is
	// up to about 2.3 KB, in one frame on loopback or after GRO, with the
	// headers of two tunnels around it. The headers alone fit 256 bytes;
	// docs/names.md has the measured cost of the difference.
	DefaultSnaplen = 4096
	// DefaultBufferMB is the kernel buffer that flowtrack asks for by
	// default, sized for DefaultSnaplen: at 256 bytes a frame, 16 MiB
	// held as many frames as 64 MiB do at full size.
	DefaultBufferMB = 64
	DefaultTimeout  = 100 * time.Millisecond
)
