package flows

import (
	"testing"
	"time"
)

// A fastStep is a packet of a hand-built sequence and whether header
// prediction takes it: a plain ACK, in order, of an established connection
// that changes no state, history letter or evidence but its counters.
type fastStep struct {
	from     byte // 'c' client, 's' server
	flags    Flags
	seq, ack uint32 // relative to the sender's and the receiver's ISN
	len      uint32
	at       time.Duration
	window   uint16 // 0: the usual 1000; zeroWindow for 0
	fast     bool
}

const zeroWindow = 1<<16 - 1 // (a fastStep's window field: advertise 0)

// fastBase opens a connection and sends 100 bytes each way. The first
// packet of each kind of each side adds a letter to Zeek's history (the
// originator's data 'D', the responder's ACK 'a' and data 'd'): only the
// client's ACK after them is predicted.
var fastBase = []fastStep{
	{'c', SYN, 0, 0, 0, 0, 0, false},
	{'s', SYN | ACK, 0, 1, 0, ms(1), 0, false},
	{'c', ACK, 1, 1, 0, ms(2), 0, false}, // the client's end of the handshake
	{'c', PSH | ACK, 1, 1, 100, ms(3), 0, false},
	{'s', ACK, 1, 101, 0, ms(4), 0, false},
	{'s', PSH | ACK, 1, 101, 100, ms(5), 0, false},
	{'c', ACK, 101, 101, 0, ms(6), 0, true},
	{'c', PSH | ACK, 101, 101, 100, ms(7), 0, true},
	{'s', ACK, 101, 201, 0, ms(8), 0, true},
}

// TestFastPathBoundaries runs hand-built sequences at the edges of header
// prediction through the table with the fast path and without, compares
// the connection after every packet, and checks which packets the fast
// path took.
func TestFastPathBoundaries(t *testing.T) {
	tests := []struct {
		name  string
		cISN  uint32
		sISN  uint32
		steps []fastStep
	}{
		{"in order", 1000, 5000, nil},
		{"out of order, then the gap filled", 1000, 5000, []fastStep{
			{'c', PSH | ACK, 301, 101, 100, ms(10), 0, false}, // a gap before it
			{'c', PSH | ACK, 201, 101, 100, ms(11), 0, false}, // fills it: Zeek counts a 'T', a run starts
			{'s', ACK, 101, 401, 0, ms(12), 0, false},         // ends the run
			{'c', PSH | ACK, 401, 101, 100, ms(13), 0, true},
		}},
		{"retransmission", 1000, 5000, []fastStep{
			{'c', PSH | ACK, 201, 101, 100, ms(10), 0, true},
			{'c', PSH | ACK, 201, 101, 100, ms(300), 0, false}, // resent after a timeout
			{'s', ACK, 101, 301, 0, ms(301), 0, false},         // ends the run of resends
			{'c', PSH | ACK, 301, 101, 100, ms(302), 0, true},
		}},
		{"zero window and a probe", 1000, 5000, []fastStep{
			{'s', ACK, 101, 201, 0, ms(10), zeroWindow, false},
			{'c', ACK, 200, 101, 0, ms(200), 0, false}, // Linux's probe, one below the next
			{'s', ACK, 101, 201, 0, ms(201), 0, false}, // the window opens
			{'c', PSH | ACK, 201, 101, 100, ms(202), 0, true},
		}},
		{"FIN right after", 1000, 5000, []fastStep{
			{'c', FIN | ACK, 201, 101, 0, ms(10), 0, false},
			{'s', ACK, 101, 202, 0, ms(11), 0, false},
			{'s', PSH | ACK, 101, 202, 100, ms(12), 0, false}, // half-closed: not predicted
		}},
		{"RST right after", 1000, 5000, []fastStep{
			{'c', PSH | ACK, 201, 101, 100, ms(10), 0, true},
			{'c', RST | ACK, 301, 101, 0, ms(11), 0, false},
			{'s', PSH | ACK, 101, 301, 100, ms(12), 0, false},
		}},
		{"an ACK of what was not seen sent", 1000, 5000, []fastStep{
			{'s', ACK, 101, 301, 0, ms(10), 0, false},
			{'c', PSH | ACK, 301, 101, 100, ms(11), 0, false}, // the data before it was missed
		}},
		{"the same packet twice", 1000, 5000, []fastStep{
			{'s', ACK, 101, 201, 0, ms(10), 0, false}, // the capture's copy of the last one
			{'c', PSH | ACK, 201, 101, 100, ms(11), 0, true},
		}},
		{"sequence numbers wrap at 2^32", 1<<32 - 150, 1<<32 - 120, []fastStep{
			{'c', PSH | ACK, 201, 101, 100, ms(10), 0, true}, // crosses 0
			{'s', PSH | ACK, 101, 301, 100, ms(11), 0, true}, // crosses 0
			{'c', ACK, 301, 201, 0, ms(12), 0, true},
		}},
		{"a packet after 60 s idle, before a sweep", 1000, 5000, []fastStep{
			{'c', PSH | ACK, 201, 101, 100, time.Minute + ms(9), 0, false}, // a new connection, mid-stream
			{'s', ACK, 101, 301, 0, time.Minute + ms(10), 0, false},
		}},
	}
	for _, tt := range tests {
		steps := append(append([]fastStep(nil), fastBase...), tt.steps...)
		pkts := make([]Packet, len(steps))
		for i, s := range steps {
			own, peer := tt.cISN, tt.sISN
			if s.from == 's' {
				own, peer = peer, own
			}
			ack := peer + s.ack
			if s.flags&ACK == 0 {
				ack = 0
			}
			pkts[i] = pkt(s.from, s.flags, own+s.seq, ack, s.len, s.at)
			switch s.window {
			case zeroWindow:
				pkts[i].Window = 0
			case 0:
			default:
				pkts[i].Window = s.window
			}
		}
		// Connections idle for 60 s end, and sweeps come seldom: expiry
		// is then found at the next packet (Table.retireEnded).
		took, err := FastSlowDiff(pkts, Config{IdleTimeout: time.Minute, SweepEvery: time.Hour})
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		for i, s := range steps {
			if took[i] != s.fast {
				t.Errorf("%s: step %d (%c %v seq +%d ack +%d len %d): fast path %v, want %v",
					tt.name, i+1, s.from, s.flags, s.seq, s.ack, s.len, took[i], s.fast)
			}
		}
	}
}

// FuzzFastPathSameAsSlow compares the fast path with the slow path on
// arbitrary sequences of packets on two 4-tuples, most of them in order
// (where the fast path may take them), some out of order, with other
// flags, zero windows, copies and long silences.
func FuzzFastPathSameAsSlow(f *testing.F) {
	f.Add([]byte{
		0, 2, 0, 0, 0, 0, 1, 0x10, // SYN
		1, 3, 0, 0, 0, 0, 1, 0x10, // SYN-ACK
		0, 0, 15, 0, 0, 0, 1, 0x10, // ACK
		0, 1, 15, 0, 0, 40, 1, 0x10, // data
		1, 0, 15, 0, 0, 0, 1, 0x10, // ACK
		1, 1, 15, 0, 0, 40, 1, 0x10, // data
		0, 0, 15, 0, 0, 0, 1, 0x10, // ACK
		0, 1, 15, 0, 0, 40, 1, 0x10, // data
		1, 0, 15, 0, 0, 0, 0, 0x10, // zero window
		0, 4, 15, 0, 0, 0, 1, 0x10, // FIN
	})
	f.Add(make([]byte, 96))
	f.Fuzz(func(t *testing.T, data []byte) {
		flags := [...]Flags{ACK, PSH | ACK, SYN, SYN | ACK, FIN | ACK, RST, RST | ACK, ACK}
		cfg := Config{IdleTimeout: 2 * time.Second, SweepEvery: time.Minute, Zeek: len(data)%2 == 1}
		var next [2][2]uint32 // per connection, per direction
		var pkts []Packet
		at := time.Duration(0)
		for ; len(data) >= 8; data = data[8:] {
			b := data[:8]
			d, k := int(b[0]&1), int(b[0]>>1&1)
			fl := flags[b[1]&7]
			seq, ack := next[k][d], next[k][1-d]
			if b[2]&3 == 0 {
				seq += uint32(int8(b[3]))
			}
			if b[2]&12 == 0 {
				ack += uint32(int8(b[4]))
			}
			n := uint32(b[5] & 0x3f)
			at += time.Duration(b[7]>>4) * 50 * time.Millisecond
			p := pkt("cs"[d], fl, seq, ack, n, at)
			p.Tuple.SrcPort += uint16(k) * uint16(1-d) // the second connection's client port
			p.Tuple.DstPort += uint16(k) * uint16(d)
			if b[6] == 0 {
				p.Window = 0
			}
			p.TTL = 64 + b[7]&1
			if fl&SYN != 0 {
				n++
			}
			if fl&FIN != 0 {
				n++
			}
			if end := seq + n; int32(end-next[k][d]) > 0 || b[2]&3 == 0 {
				next[k][d] = end
			}
			pkts = append(pkts, p)
		}
		if _, err := FastSlowDiff(pkts, cfg); err != nil {
			t.Fatal(err)
		}
	})
}
