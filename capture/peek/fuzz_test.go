package peek

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/flowtrack/flowtrack/flows"
)

// The seed corpora are in testdata/fuzz; these add a few made here.

func FuzzHello(f *testing.F) {
	f.Add(clientHello(f, &tls.Config{ServerName: "seed.example", NextProtos: []string{"h2", "http/1.1"}}))
	f.Add(recordOf(hello(sni("a.example"), ext(extECH, []byte{0, 1})), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		var scratch []byte
		msg, complete, need, err := helloMessage(b, &scratch)
		if complete && (err != nil || len(msg) < 4) {
			t.Fatalf("complete with err %v, %d bytes", err, len(msg))
		}
		if !complete && err == nil && need != 0 && need <= len(b) {
			t.Fatalf("incomplete, but needs only %d of %d bytes", need, len(b))
		}
		h, _ := parseHello(msg)
		if len(h.ServerName) > maxName || len(h.ALPN) > maxALPN {
			t.Fatalf("over the bounds: %+v", h)
		}
		if h.ServerName != "" {
			if n, ok := hostName([]byte(h.ServerName)); !ok || n != h.ServerName {
				t.Fatalf("server name %q is not a clean host name", h.ServerName)
			}
		}
	})
}

func FuzzRequestHost(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"))
	f.Add([]byte("CONNECT a.example:443 HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		host, _, err := requestHost(b)
		if err != nil && host != "" {
			t.Fatalf("a host %q with an error", host)
		}
		if host != "" {
			if n, ok := hostName([]byte(host)); !ok || n != host {
				t.Fatalf("host %q is not a clean host name", host)
			}
		}
	})
}

func FuzzDNS(f *testing.F) {
	f.Add(dnsAnswer(f, "a.example.", []string{"a.example", "b.example"}, netip.MustParseAddr("192.0.2.1"), 60))
	f.Fuzz(func(t *testing.T, b []byte) {
		answers, err := parseDNS(b, false)
		if err != nil && len(answers) > 0 {
			t.Fatal("answers with an error")
		}
		if len(answers) > maxAnswers {
			t.Fatalf("%d answers", len(answers))
		}
		for _, a := range answers {
			if len(a.chain) == 0 || len(a.chain) > maxChain {
				t.Fatalf("chain %v", a.chain)
			}
		}
		k := New(Config{Pending: 8, Conns: 8, DNSAddrs: 4})
		k.DNS(1, b, false)
		k.DNS(1, b, true)
	})
}

// FuzzPeeker feeds arbitrary segments of a few connections: any order,
// any sequence numbers, any payload. Nothing may panic, the buffers taken
// must all come back, and the tables stay within their bounds.
func FuzzPeeker(f *testing.F) {
	raw := clientHello(f, &tls.Config{ServerName: "fuzz.example", CurvePreferences: []tls.CurveID{tls.X25519MLKEM768}})
	seed := []byte{0, byte(flows.SYN), 0, 0, 0, 0}
	seed = append(seed, 0, byte(flows.ACK), 0, 0, 0, 1)
	seed = append(seed, byte(len(raw)/2>>8), byte(len(raw)/2))
	seed = append(seed, raw[:len(raw)/2]...)
	f.Add(seed)
	f.Add([]byte("\x00\x02\x00\x00\x00\x00\x01\x10\x00\x00\x00\x01\x00\x10GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k := New(Config{Pending: 4, Conns: 4, DNSAddrs: 4})
		r := bytes.NewReader(b)
		var ts int64
		for r.Len() >= 6 {
			var h struct {
				Conn  uint8
				Flags uint8
				Seq   uint32
			}
			_ = binary.Read(r, binary.BigEndian, &h)
			var payload []byte
			if h.Flags&0x80 != 0 || h.Flags&byte(flows.ACK) != 0 {
				var n uint16
				if binary.Read(r, binary.BigEndian, &n) != nil {
					break
				}
				payload = make([]byte, min(int(n), r.Len()))
				_, _ = r.Read(payload)
			}
			ts++
			p := flows.Packet{TS: ts, Seq: h.Seq, Flags: flows.Flags(h.Flags & 0x3f), PayloadLen: uint32(len(payload))}
			if h.Flags&0x40 != 0 {
				p.PayloadLen += 100 // cut by the snapshot length
			}
			cl := netip.AddrPortFrom(client.Addr(), 1000+uint16(h.Conn%6))
			p.Tuple = tuple(cl, web)
			if h.Conn&0x80 != 0 {
				p.Tuple = tuple(web, cl)
			}
			k.TCP(&p, payload)
			if k.busy < 0 || k.busy > maxReassembling {
				t.Fatalf("%d reassemblies", k.busy)
			}
		}
		k.Flush()
		if k.busy != 0 {
			t.Fatalf("%d reassemblies left after Flush", k.busy)
		}
		if n, _ := k.Store().Len(); n > 4 {
			t.Fatalf("store holds %d names past its bound of 4", n)
		}
	})
}
