package peek

import (
	"bytes"
	"errors"
)

// maxRequestHead bounds the HTTP/1 request head read for its Host header:
// servers refuse heads over 8 KiB by default (nginx's large buffers,
// Apache's LimitRequestFieldSize), so a client's first one fits.
const maxRequestHead = 8 << 10

var errHTTP = errors.New("malformed HTTP/1 request head")

// methods are the request methods of RFC 9110 and RFC 5789 that start an
// HTTP/1 request: a first payload that begins with one of them and a
// space is taken for a request.
var methods = [...]string{"GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "}

// looksHTTP reports whether b could start an HTTP/1 request; with fewer
// bytes than a method, whether it could still become one.
func looksHTTP(b []byte) bool {
	for _, m := range methods {
		n := min(len(b), len(m))
		if n > 0 && string(b[:n]) == m[:n] {
			return true
		}
	}
	return false
}

// requestHost reads the Host of an HTTP/1 request head at the start of b
// (RFC 9112 section 3.2): the Host header, or the authority of a CONNECT
// request without one. complete is false while the head's end (an empty
// line) is not in b; the lines before it are read all the same, so a cut
// head still gives its Host when the header came early. need is the bound
// the caller may wait for.
func requestHost(b []byte) (host string, complete bool, err error) {
	if !looksHTTP(b) {
		return "", false, errHTTP
	}
	end := bytes.Index(b, []byte("\r\n\r\n"))
	complete = end >= 0
	if !complete {
		if end = bytes.Index(b, []byte("\n\n")); end >= 0 {
			complete = true // bare LF line ends, which RFC 9112 lets a server accept
		} else {
			end = len(b)
		}
	}
	head := b[:end]
	line, rest, _ := bytes.Cut(head, []byte("\n"))
	method, target, ok := bytes.Cut(bytes.TrimSuffix(line, []byte("\r")), []byte(" "))
	if !ok {
		if complete {
			return "", true, errHTTP
		}
		return "", false, nil
	}
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\n"))
		if !complete && len(rest) == 0 {
			break // the last line may be cut short
		}
		name, value, ok := bytes.Cut(bytes.TrimSuffix(l, []byte("\r")), []byte(":"))
		if !ok || !bytes.EqualFold(name, []byte("host")) {
			continue
		}
		h, _ := authorityHost(bytes.TrimSpace(value))
		return h, complete, nil
	}
	if string(method) == "CONNECT" {
		t, _, _ := bytes.Cut(target, []byte(" "))
		if h, ok := authorityHost(t); ok {
			return h, complete, nil
		}
	}
	return "", complete, nil
}

// authorityHost returns the host of an authority "host[:port]" if it is
// a name ("" for an address, bracketed or not).
func authorityHost(a []byte) (string, bool) {
	if len(a) > 0 && a[0] == '[' {
		return "", false // an IPv6 literal
	}
	if i := bytes.LastIndexByte(a, ':'); i >= 0 {
		a = a[:i]
	}
	return hostName(a)
}
