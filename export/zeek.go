package export

import (
	"bufio"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"io"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// ZeekLog writes connection records as Zeek's conn.log: Zeek's ASCII log
// format (tab-separated, with its header lines and #close at the end), with
// the columns and units of the default conn.log of Zeek 8
// (base/protocols/conn/main.zeek's Conn::Info, ip_proto included), so that
// zeek-cut, Zeek's other tools and a diff read it as they read Zeek's. The
// records must come from a table with flows.Config.Zeek; a record without
// Zeek's fields is an error. It is safe for concurrent use.
type ZeekLog struct {
	// Service, if set, names the protocol seen on a connection (Zeek's
	// service column: "http", "ssl", ...), "" for none.
	Service func(*flows.Record) string

	mu  sync.Mutex // guards the following
	w   *bufio.Writer
	buf []byte
	err error
}

// zeekFields and zeekTypes are conn.log's #fields and #types lines.
const (
	zeekFields = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\tip_proto"
	zeekTypes  = "time\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\tcount"
)

// zeekTimeLayout is how Zeek's ASCII writer stamps #open and #close.
const zeekTimeLayout = "2006-01-02-15-04-05"

// NewZeekLog returns a conn.log writer on w, having written the header,
// stamped as opened at open.
func NewZeekLog(w io.Writer, open time.Time) *ZeekLog {
	z := &ZeekLog{w: bufio.NewWriterSize(w, 64<<10)}
	z.writeString("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t" +
		open.Format(zeekTimeLayout) + "\n#fields\t" + zeekFields + "\n#types\t" + zeekTypes + "\n")
	return z
}

func (z *ZeekLog) writeString(s string) {
	if z.err == nil {
		_, z.err = z.w.WriteString(s)
	}
}

// Write writes one row per record.
func (z *ZeekLog) Write(recs []flows.Record) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	for i := range recs {
		r := &recs[i]
		f, ok := r.Zeek()
		if !ok {
			if z.err == nil {
				z.err = errors.New("conn.log: a record without Zeek's fields (the table must be made with flows.Config.Zeek)")
			}
			return z.err
		}
		service := ""
		if z.Service != nil {
			service = z.Service(r)
		}
		z.buf = appendZeekRow(z.buf[:0], r, &f, service)
		if z.err == nil {
			_, z.err = z.w.Write(z.buf)
		}
	}
	return z.err
}

// Flush writes out what is buffered.
func (z *ZeekLog) Flush() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.err == nil {
		z.err = z.w.Flush()
	}
	return z.err
}

// Close writes the #close line, stamped at t, and flushes. Nothing may be
// written after it.
func (z *ZeekLog) Close(t time.Time) error {
	z.mu.Lock()
	z.writeString("#close\t" + t.Format(zeekTimeLayout) + "\n")
	z.mu.Unlock()
	return z.Flush()
}

// appendZeekRow appends one conn.log row. Fields Zeek leaves unset are
// "-": duration, orig_bytes and resp_bytes when the connection's duration
// is 0 (set_conn in base/protocols/conn/main.zeek), service when nothing
// was recognised, history when empty, tunnel_parents (flowtrack does not
// log the tunnels' own connections).
func appendZeekRow(b []byte, r *flows.Record, f *flows.ZeekFields, service string) []byte {
	start := zeekMicros(r.FirstSeen)
	b = appendMicros(b, start)
	b = append(b, '\t')
	b = appendZeekUID(b, r)
	b = append(b, '\t')
	b = appendZeekEndpoint(b, f.Orig)
	b = append(b, '\t')
	b = appendZeekEndpoint(b, f.Resp)
	b = append(b, "\ttcp\t"...)
	b = appendOrUnset(b, service)
	if d := zeekMicros(f.LastTime) - start; d > 0 {
		b = append(b, '\t')
		b = appendMicros(b, d)
		b = append(b, '\t')
		b = strconv.AppendUint(b, f.OrigBytes, 10)
		b = append(b, '\t')
		b = strconv.AppendUint(b, f.RespBytes, 10)
	} else {
		b = append(b, "\t-\t-\t-"...)
	}
	b = append(b, '\t')
	b = append(b, r.ConnState()...)
	b = append(b, '\t')
	b = appendBool(b, zeekLocal(f.Orig.Addr()))
	b = append(b, '\t')
	b = appendBool(b, zeekLocal(f.Resp.Addr()))
	b = append(b, '\t')
	b = strconv.AppendUint(b, f.MissedBytes, 10)
	b = append(b, '\t')
	n := len(b)
	if b = r.AppendHistory(b); len(b) == n {
		b = append(b, '-') // no history: unset
	}
	for _, n := range [...]uint64{f.OrigPkts, f.OrigIPBytes, f.RespPkts, f.RespIPBytes} {
		b = append(b, '\t')
		b = strconv.AppendUint(b, n, 10)
	}
	return append(b, "\t-\t6\n"...)
}

// zeekMicros is a time as Zeek holds a packet's: libpcap's microseconds.
func zeekMicros(t time.Time) int64 {
	ns := t.UnixNano()
	us := ns / 1000
	if ns < 0 && ns%1000 != 0 {
		us-- // floor, as libpcap scales a nanosecond time down
	}
	return us
}

// appendMicros appends microseconds as seconds with six decimals, as Zeek
// writes times and intervals.
func appendMicros(b []byte, us int64) []byte {
	if us < 0 {
		b = append(b, '-')
		us = -us
	}
	b = strconv.AppendInt(b, us/1e6, 10)
	frac := us % 1e6
	b = append(b, '.')
	for d := int64(1e5); d > 0; d /= 10 {
		b = append(b, byte('0'+frac/d%10))
	}
	return b
}

func appendZeekEndpoint(b []byte, ap netip.AddrPort) []byte {
	b = ap.Addr().Unmap().AppendTo(b)
	b = append(b, '\t')
	return strconv.AppendUint(b, uint64(ap.Port()), 10)
}

func appendOrUnset(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 'T')
	}
	return append(b, 'F')
}

// appendZeekUID appends a uid in Zeek's form ("C" and 96 bits in base 62)
// made from what identifies the record, so that a replay's uids are the
// same every time. Zeek draws its uids at random: they match no Zeek log.
func appendZeekUID(b []byte, r *flows.Record) []byte {
	h := fnv.New128a()
	var buf [8]byte
	h.Write(r.Key.Addr[0][:])
	h.Write(r.Key.Addr[1][:])
	binary.BigEndian.PutUint16(buf[:], r.Key.Port[0])
	binary.BigEndian.PutUint16(buf[2:], r.Key.Port[1])
	h.Write(buf[:4])
	binary.BigEndian.PutUint64(buf[:], uint64(r.FirstSeen.UnixNano()))
	h.Write(buf[:])
	binary.BigEndian.PutUint64(buf[:], r.ID)
	h.Write(buf[:])
	sum := h.Sum(nil)
	b = append(b, 'C')
	for _, w := range [...]uint64{binary.BigEndian.Uint64(sum[:8]), uint64(binary.BigEndian.Uint32(sum[8:12]))} {
		b = appendBase62(b, w)
	}
	return b
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func appendBase62(b []byte, v uint64) []byte {
	var d [11]byte
	i := len(d)
	for {
		i--
		d[i] = base62[v%62]
		if v /= 62; v == 0 {
			break
		}
	}
	return append(b, d[i:]...)
}

// zeekPrivate is Site::private_address_space (base/utils/site.zeek), which
// a default Zeek counts as local (Site::private_address_space_is_local):
// local_orig and local_resp are T for these addresses.
var zeekPrivate = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "2002::/24", "10.0.0.0/8", "2002:a00::/24", "100.64.0.0/10", "2002:6440::/26",
		"127.0.0.0/8", "2002:7f00::/24", "169.254.0.0/16", "2002:a9fe::/32", "172.16.0.0/12", "2002:ac10::/28",
		"192.0.0.0/24", "2002:c000::/40", "192.0.2.0/24", "2002:c000:200::/40", "192.168.0.0/16", "2002:c0a8::/32",
		"198.18.0.0/15", "2002:c612::/31", "198.51.100.0/24", "2002:c633:6400::/40", "203.0.113.0/24",
		"2002:cb00:7100::/40", "240.0.0.0/4", "2002:f000::/20", "255.255.255.255/32", "2002:ffff:ffff::/48",
		"::/128", "::1/128", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:2::/48", "2001:db8::/32",
		"fc00::/7", "fe80::/10",
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

// zeekLocal reports whether a default Zeek takes a to be local.
func zeekLocal(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range zeekPrivate {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
