package peek

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// clientHello returns the bytes a real TLS client (crypto/tls) sends
// first, for the given configuration: its ClientHello records.
func clientHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	c, s := net.Pipe()
	defer s.Close()
	got := make(chan []byte, 1)
	go func() {
		var buf []byte
		b := make([]byte, 64<<10)
		_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			n, err := s.Read(b)
			buf = append(buf, b[:n]...)
			if err != nil || helloDone(buf) {
				break
			}
		}
		got <- buf
		s.Close()
	}()
	cfg.InsecureSkipVerify = true
	tc := tls.Client(c, cfg)
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	go func() { _ = tc.Handshake(); c.Close() }()
	return <-got
}

// helloDone reports whether buf holds a whole first handshake message
// (checked here with the TLS framing alone, not with the code under test).
func helloDone(buf []byte) bool {
	var msg []byte
	for off := 0; off+5 <= len(buf); {
		n := int(buf[off+3])<<8 | int(buf[off+4])
		if off+5+n > len(buf) {
			return false
		}
		msg = append(msg, buf[off+5:off+5+n]...)
		off += 5 + n
		if len(msg) >= 4 && len(msg) >= 4+(int(msg[1])<<16|int(msg[2])<<8|int(msg[3])) {
			return true
		}
	}
	return false
}

func TestHelloFromRealClient(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		want Hello
	}{
		{"tls13", &tls.Config{ServerName: "en.wikipedia.org", NextProtos: []string{"h2", "http/1.1"}}, Hello{ServerName: "en.wikipedia.org", ALPN: "h2,http/1.1"}},
		{"tls12 only", &tls.Config{ServerName: "Example.COM", MaxVersion: tls.VersionTLS12}, Hello{ServerName: "example.com"}},
		{"post-quantum", &tls.Config{ServerName: "pq.test", CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519}}, Hello{ServerName: "pq.test"}},
		{"no sni for an address", &tls.Config{ServerName: "192.0.2.1"}, Hello{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := clientHello(t, tc.cfg)
			msg, complete, _, err := helloMessage(raw, new([]byte))
			if err != nil || !complete {
				t.Fatalf("helloMessage: complete %v, err %v (%d bytes)", complete, err, len(raw))
			}
			h, err := parseHello(msg)
			if err != nil || h != tc.want {
				t.Fatalf("parseHello = %+v, %v; want %+v", h, err, tc.want)
			}
		})
	}
}

// TestHelloSplit feeds a real ClientHello in every split: incomplete
// before its end (asking for more), whole at it.
func TestHelloSplit(t *testing.T) {
	raw := clientHello(t, &tls.Config{ServerName: "split.example", CurvePreferences: []tls.CurveID{tls.X25519MLKEM768}})
	if len(raw) < 1200 {
		t.Fatalf("a post-quantum hello should be over 1200 bytes, got %d", len(raw))
	}
	for n := 1; n < len(raw); n++ {
		msg, complete, need, err := helloMessage(raw[:n], new([]byte))
		if err != nil || complete {
			t.Fatalf("%d of %d bytes: complete %v, err %v", n, len(raw), complete, err)
		}
		if need <= n || need > len(raw) {
			t.Fatalf("%d of %d bytes: need %d", n, len(raw), need)
		}
		if h, err := parseHello(msg); err != nil && len(msg) >= 4 {
			t.Fatalf("%d bytes: a cut hello is no error, got %v (%+v)", n, err, h)
		}
	}
}

// TestHelloAcrossRecords: a handshake message may span records (RFC 8446
// section 5.1); re-framed into 100-byte records it reads the same.
func TestHelloAcrossRecords(t *testing.T) {
	raw := clientHello(t, &tls.Config{ServerName: "records.example", NextProtos: []string{"h2"}})
	body := raw[5:]
	var framed []byte
	for len(body) > 0 {
		n := min(100, len(body))
		framed = append(framed, 22, 3, 1, byte(n>>8), byte(n))
		framed = append(framed, body[:n]...)
		body = body[n:]
	}
	msg, complete, _, err := helloMessage(framed, new([]byte))
	if err != nil || !complete {
		t.Fatalf("complete %v, err %v", complete, err)
	}
	if h, err := parseHello(msg); err != nil || h.ServerName != "records.example" || h.ALPN != "h2" {
		t.Fatalf("got %+v, %v", h, err)
	}
}

// hello builds a ClientHello message by hand from its extensions.
func hello(exts ...[]byte) []byte {
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...)
	body = append(body, 0)                // session id
	body = append(body, 0, 2, 0x13, 0x01) // one suite
	body = append(body, 1, 0)             // null compression
	var e []byte
	for _, x := range exts {
		e = append(e, x...)
	}
	body = append(body, byte(len(e)>>8), byte(len(e)))
	body = append(body, e...)
	return append([]byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
}

func ext(typ uint16, data []byte) []byte {
	return append([]byte{byte(typ >> 8), byte(typ), byte(len(data) >> 8), byte(len(data))}, data...)
}

func sni(names ...string) []byte {
	var l []byte
	for _, n := range names {
		l = append(l, 0, byte(len(n)>>8), byte(len(n)))
		l = append(l, n...)
	}
	return ext(extServerName, append([]byte{byte(len(l) >> 8), byte(len(l))}, l...))
}

func TestHelloByHand(t *testing.T) {
	for _, tc := range []struct {
		name    string
		msg     []byte
		want    Hello
		wantErr bool
	}{
		{"ech outer", hello(sni("public.example"), ext(extECH, []byte{0, 1, 2})), Hello{ServerName: "public.example", ECH: true}, false},
		{"ech inner type is not on the wire", hello(sni("a.example"), ext(extECH, []byte{1})), Hello{ServerName: "a.example"}, false},
		{"two server_name extensions", hello(sni("a.example"), sni("b.example")), Hello{ServerName: "a.example"}, true},
		{"control bytes are no name", hello(sni("evil\x1b[2J.example")), Hello{}, false},
		{"name over 253", hello(sni(string(bytes.Repeat([]byte("a"), 254)))), Hello{}, false},
		{"trailing dot", hello(sni("dot.example.")), Hello{ServerName: "dot.example"}, false},
		{"first host name wins", hello(sni("one.example", "two.example")), Hello{ServerName: "one.example"}, false},
		{"alpn with a comma dropped", hello(ext(extALPN, []byte{0, 7, 2, 'h', '2', 3, 'a', ',', 'b'})), Hello{ALPN: "h2"}, false},
		{"empty alpn name", hello(ext(extALPN, []byte{0, 1, 0})), Hello{}, true},
		{"not a client hello", []byte{2, 0, 0, 0}, Hello{}, true},
		{"no extensions", hello()[:4+2+32+1+4+2], Hello{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := tc.msg
			if tc.name == "no extensions" {
				msg = append([]byte(nil), msg...)
				n := len(msg) - 4
				msg[1], msg[2], msg[3] = byte(n>>16), byte(n>>8), byte(n)
				tc.wantErr = false
			}
			h, err := parseHello(msg)
			if (err != nil) != tc.wantErr || (!tc.wantErr && h != tc.want) {
				t.Fatalf("got %+v, %v; want %+v, error %v", h, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestHelloMessageRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"alert record", []byte{21, 3, 3, 0, 2, 2, 40}},
		{"zero length record", []byte{22, 3, 1, 0, 0}},
		{"ssl2 style", []byte{0x80, 0x2e, 1, 3, 1}},
		{"server hello", []byte{22, 3, 3, 0, 4, 2, 0, 0, 0}},
		{"over the bound", []byte{22, 3, 1, 0, 4, 1, 0x01, 0, 1}},
	} {
		if _, _, _, err := helloMessage(tc.b, new([]byte)); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestRequestHost(t *testing.T) {
	for _, tc := range []struct {
		in       string
		host     string
		complete bool
		bad      bool
	}{
		{"GET / HTTP/1.1\r\nHost: Example.org:8080\r\nUser-Agent: x\r\n\r\n", "example.org", true, false},
		{"POST /x HTTP/1.1\r\nhOsT:\tapi.example\r\n\r\nbody", "api.example", true, false},
		{"GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n", "", true, false},
		{"GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n", "", true, false},
		{"GET / HTTP/1.1\r\nAccept: */*\r\nHost: early.example\r\nCookie: abc", "early.example", false, false},
		{"GET / HTTP/1.1\r\nHost: cut.exa", "", false, false},
		{"GET / HTTP/1.0\r\n\r\n", "", true, false},
		{"CONNECT tunnel.example:443 HTTP/1.1\r\n\r\n", "tunnel.example", true, false},
		{"GET / HTTP/1.1\nHost: lf.example\n\n", "lf.example", true, false},
		{"SSH-2.0-OpenSSH_9.6\r\n", "", false, true},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "", false, true},
		{"GE", "", false, false},
	} {
		host, complete, err := requestHost([]byte(tc.in))
		if host != tc.host || complete != tc.complete || (err != nil) != tc.bad {
			t.Errorf("%q: got %q, complete %v, err %v", tc.in, host, complete, err)
		}
	}
}

// response builds a DNS response with dnsmessage's own builder.
func response(t testing.TB, q string, build func(b *dnsmessage.Builder)) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, Response: true, RecursionAvailable: true})
	b.EnableCompression()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.StartQuestions())
	must(b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(q), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}))
	must(b.StartAnswers())
	build(&b)
	msg, err := b.Finish()
	must(err)
	return msg
}

func rh(name string, ttl uint32) dnsmessage.ResourceHeader {
	return dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Class: dnsmessage.ClassINET, TTL: ttl}
}

func TestParseDNS(t *testing.T) {
	msg := response(t, "en.wikipedia.org.", func(b *dnsmessage.Builder) {
		_ = b.CNAMEResource(rh("en.wikipedia.org.", 600), dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("dyna.wikimedia.org.")})
		_ = b.AResource(rh("dyna.wikimedia.org.", 300), dnsmessage.AResource{A: [4]byte{198, 51, 100, 7}})
		_ = b.AAAAResource(rh("dyna.wikimedia.org.", 200), dnsmessage.AAAAResource{AAAA: netip.MustParseAddr("2001:db8::7").As16()})
		_ = b.TXTResource(rh("dyna.wikimedia.org.", 5), dnsmessage.TXTResource{TXT: []string{"x"}})
	})
	got, err := parseDNS(msg, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []answer{
		{netip.MustParseAddr("198.51.100.7"), []string{"en.wikipedia.org", "dyna.wikimedia.org"}, 300},
		{netip.MustParseAddr("2001:db8::7"), []string{"en.wikipedia.org", "dyna.wikimedia.org"}, 200},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i].addr != want[i].addr || !slices.Equal(got[i].chain, want[i].chain) || got[i].ttl != want[i].ttl {
			t.Errorf("answer %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseDNSCNAMELoop(t *testing.T) {
	msg := response(t, "a.example.", func(b *dnsmessage.Builder) {
		_ = b.CNAMEResource(rh("a.example.", 60), dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("b.example.")})
		_ = b.CNAMEResource(rh("b.example.", 60), dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("a.example.")})
		_ = b.CNAMEResource(rh("c.example.", 60), dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("b.example.")})
		_ = b.AResource(rh("b.example.", 60), dnsmessage.AResource{A: [4]byte{192, 0, 2, 1}})
	})
	got, err := parseDNS(msg, false)
	if err != nil || len(got) != 1 {
		t.Fatalf("got %+v, %v", got, err)
	}
	if c := got[0].chain; len(c) > maxChain || c[len(c)-1] != "b.example" || c[0] != "a.example" {
		t.Fatalf("chain %v", c)
	}
}

func TestParseDNSRejects(t *testing.T) {
	ok := response(t, "x.example.", func(b *dnsmessage.Builder) {
		_ = b.AResource(rh("x.example.", 60), dnsmessage.AResource{A: [4]byte{192, 0, 2, 9}})
	})
	query := append([]byte(nil), ok...)
	query[2] &^= 0x80 // QR = 0
	nx := append([]byte(nil), ok...)
	nx[3] = nx[3]&0xf0 | 3 // NXDOMAIN
	loop := append([]byte(nil), ok[:12]...)
	loop[5] = 1                               // one question
	loop = append(loop, 0xc0, 12, 0, 1, 0, 1) // a name pointing at itself
	for name, m := range map[string][]byte{"query": query, "nxdomain": nx, "pointer loop": loop, "cut": ok[:len(ok)-3], "empty": nil} {
		if a, err := parseDNS(m, false); err == nil {
			t.Errorf("%s: no error, got %+v", name, a)
		}
	}
}
