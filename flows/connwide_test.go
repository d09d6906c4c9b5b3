package flows

import (
	"testing"
	"time"
)

// TestRTTPast32Bits checks handshakes whose round trip (SYN to the ACK of
// the SYN-ACK) is about the 2^32 ns that fit in the conn: up to 2^32 - 2
// it is kept there, from 2^32 - 1 (the mark of a value kept in the cold
// record) in the cold record. Either way the record has it to the
// nanosecond.
func TestRTTPast32Bits(t *testing.T) {
	for _, rtt := range []time.Duration{
		ms(2), 1<<32 - 2, 1<<32 - 1, 1 << 32, 5 * time.Second,
	} {
		tab := NewTable(Config{})
		for _, p := range []Packet{
			pkt('c', SYN, 1000, 0, 0, 0),
			pkt('s', SYN|ACK, 5000, 1001, 0, ms(1)),
			pkt('c', ACK, 1001, 5001, 0, rtt),
		} {
			tab.Apply(&p)
		}
		if got := tab.Flush()[0].RTT; got != rtt {
			t.Errorf("round trip of %d ns: the record has %d ns", rtt, got)
		}
	}
}

// TestSYNTimePast32Bits resends the SYN at times about 2^32 ns after the
// connection's first packet: the conn keeps the latest SYN's time as one
// more than its offset from the first packet where that fits in 32 bits
// (up to 2^32 - 3 ns), in the cold record after. The round trip, from
// that SYN to the ACK of the SYN-ACK 3 ms later, must be 3 ms whichever.
func TestSYNTimePast32Bits(t *testing.T) {
	for _, resend := range []time.Duration{
		time.Second, 1<<32 - 3, 1<<32 - 2, 1<<32 - 1, 5 * time.Second,
	} {
		tab := NewTable(Config{})
		for _, p := range []Packet{
			pkt('c', SYN, 1000, 0, 0, 0),
			pkt('c', SYN, 1000, 0, 0, resend),
			pkt('s', SYN|ACK, 5000, 1001, 0, resend+ms(1)),
			pkt('c', ACK, 1001, 5001, 0, resend+ms(3)),
		} {
			tab.Apply(&p)
		}
		if got := tab.Flush()[0].RTT; got != ms(3) {
			t.Errorf("SYN resent after %d ns: round trip %v, want 3ms", resend, got)
		}
	}
}
