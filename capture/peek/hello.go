package peek

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"
)

// TLS constants (RFC 8446, RFC 6066, RFC 7301, RFC 9849).
const (
	recordHandshake   = 22 // TLS record content type
	handshakeHello    = 1  // client_hello
	extServerName     = 0
	extALPN           = 16
	extECH            = 0xfe0d // encrypted_client_hello
	sniHostName       = 0      // ServerName name_type host_name
	maxRecordFragment = 1<<14 + 256
	// maxHello bounds the ClientHello kept: the largest seen in practice
	// (post-quantum key shares, big session tickets) are a few KiB; one
	// full TLS record is the protocol's own bound for a message that
	// fits one record.
	maxHello = 1 << 14
	// maxALPN bounds the offered protocols kept: the names are short
	// ("h2", "http/1.1"), and a list longer than this is not a browser's.
	maxALPN = 64
)

var (
	errNotTLS   = errors.New("not a TLS handshake record")
	errNotHello = errors.New("handshake message is not a ClientHello")
	errTooBig   = errors.New("ClientHello longer than the bound")
	errHello    = errors.New("malformed ClientHello")
)

// Hello is what a ClientHello says about the server the client wants.
type Hello struct {
	ServerName string // SNI host_name, lower case; "" if absent or not a host name
	ALPN       string // offered application protocols, comma-separated ("h2,http/1.1")
	// ECH: the hello offers Encrypted Client Hello (RFC 9849). Its
	// server_name is then the client-facing server's public name, or, for
	// a GREASE offer (which looks the same on purpose), the real one.
	ECH bool
	// Truncated: the message ended before its length said; what was read
	// up to there is kept.
	Truncated bool
}

// looksTLS reports whether b could start a TLS handshake record (the
// first bytes a TLS client sends). One byte is enough to say no.
func looksTLS(b []byte) bool {
	return len(b) > 0 && b[0] == recordHandshake && (len(b) < 2 || b[1] == 3)
}

// helloMessage gathers the first handshake message from the start of a
// client's byte stream b: the fragments of the handshake records in b,
// joined (into *scratch, grown as needed, when the message spans
// records). complete is false
// while b does not hold all of it; need is then how many stream bytes at
// least are needed (0 if unknown). err says that b does not start with a
// ClientHello, or that it is over the bound.
func helloMessage(b []byte, scratch *[]byte) (msg []byte, complete bool, need int, err error) {
	total := -1 // handshake message length with its 4-byte header, once known
	joined := false
	off := 0
	for off < len(b) {
		if len(b)-off < 5 {
			return msg, false, off + 5, nil
		}
		h := b[off : off+5]
		if h[0] != recordHandshake || h[1] != 3 {
			return nil, false, 0, errNotTLS
		}
		n := int(h[3])<<8 | int(h[4])
		if n == 0 || n > maxRecordFragment {
			return nil, false, 0, errNotTLS
		}
		frag := b[off+5 : min(off+5+n, len(b))]
		switch {
		case msg == nil:
			msg = frag
		default:
			if !joined {
				*scratch = append((*scratch)[:0], msg...)
				joined = true
			}
			*scratch = append(*scratch, frag...)
			msg = *scratch
		}
		if total < 0 && len(msg) >= 4 {
			if msg[0] != handshakeHello {
				return nil, false, 0, errNotHello
			}
			total = 4 + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3]))
			if total > maxHello {
				return msg, false, 0, errTooBig
			}
		}
		if total >= 0 && len(msg) >= total {
			return msg[:total], true, 0, nil
		}
		if off+5+n > len(b) {
			// This record is cut: the rest of it is needed, and more
			// if the message goes on past it.
			return msg, false, off + 5 + n, nil
		}
		off += 5 + n
	}
	return msg, false, off + 5, nil
}

// parseHello reads a ClientHello handshake message (its 4-byte header
// included) that may be cut short: what was read before the cut is kept,
// and Truncated says so. Only a message that contradicts itself before
// the cut is an error.
func parseHello(msg []byte) (Hello, error) {
	var h Hello
	if len(msg) < 4 || msg[0] != handshakeHello {
		return h, errNotHello
	}
	total := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
	body := msg[4:]
	if len(body) < total {
		h.Truncated = true
	} else {
		body = body[:total]
	}
	s := cryptobyte.String(body)
	var sessionID, suites, compression cryptobyte.String
	if !s.Skip(2+32) || !s.ReadUint8LengthPrefixed(&sessionID) ||
		!s.ReadUint16LengthPrefixed(&suites) || !s.ReadUint8LengthPrefixed(&compression) {
		if h.Truncated {
			return h, nil // cut before the extensions: nothing to name
		}
		return h, errHello
	}
	if len(sessionID) > 32 || len(suites)%2 != 0 || len(compression) == 0 {
		return h, errHello
	}
	if s.Empty() {
		return h, nil // a hello without extensions (SSL 3.0 style)
	}
	var extLen uint16
	if !s.ReadUint16(&extLen) {
		return h, ifTruncated(h, errHello)
	}
	exts := s
	if int(extLen) < len(s) {
		exts = s[:extLen]
	} else if int(extLen) > len(s) && !h.Truncated {
		return h, errHello
	}
	return h, readExtensions(&h, exts)
}

func ifTruncated(h Hello, err error) error {
	if h.Truncated {
		return nil
	}
	return err
}

// readExtensions reads the extensions in s into h; an extension cut short
// by a truncated message ends the reading without error.
func readExtensions(h *Hello, s cryptobyte.String) error {
	seen := [3]bool{} // server_name, ALPN, ECH: each at most once (RFC 8446 4.2)
	for !s.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !s.ReadUint16(&typ) || !s.ReadUint16LengthPrefixed(&data) {
			return ifTruncated(*h, errHello)
		}
		var err error
		switch typ {
		case extServerName:
			if seen[0] {
				return errHello
			}
			seen[0] = true
			err = readSNI(h, data)
		case extALPN:
			if seen[1] {
				return errHello
			}
			seen[1] = true
			err = readALPN(h, data)
		case extECH:
			if seen[2] {
				return errHello
			}
			seen[2] = true
			// Only the outer hello travels in the clear (type 0);
			// type 1 is the inner one, never on the wire.
			var kind uint8
			h.ECH = data.ReadUint8(&kind) && kind == 0
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readSNI reads a server_name extension (RFC 6066 section 3): the first
// host_name entry that is a valid host name.
func readSNI(h *Hello, data cryptobyte.String) error {
	var list cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&list) || !data.Empty() {
		return errHello
	}
	for !list.Empty() {
		var typ uint8
		var name cryptobyte.String
		if !list.ReadUint8(&typ) || !list.ReadUint16LengthPrefixed(&name) {
			return errHello
		}
		if typ == sniHostName && h.ServerName == "" {
			// A name that is not a host name (an address, control
			// characters) names nothing; the rest of the hello still
			// counts.
			h.ServerName, _ = hostName(name)
		}
	}
	return nil
}

// readALPN reads an application_layer_protocol_negotiation extension
// (RFC 7301 section 3.1): the offered protocols, as far as they are
// printable and fit maxALPN bytes.
func readALPN(h *Hello, data cryptobyte.String) error {
	var list cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&list) || !data.Empty() {
		return errHello
	}
	var b []byte
	for !list.Empty() {
		var p cryptobyte.String
		if !list.ReadUint8LengthPrefixed(&p) || len(p) == 0 {
			return errHello
		}
		if !printable(p) || len(b)+1+len(p) > maxALPN {
			continue
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = append(b, p...)
	}
	h.ALPN = string(b)
	return nil
}

// printable reports whether p is visible ASCII without a comma (the
// separator of Hello.ALPN) or a quote.
func printable(p []byte) bool {
	for _, c := range p {
		if c <= ' ' || c >= 0x7f || c == ',' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
