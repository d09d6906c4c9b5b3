package flows

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestConnTableMatchesMap runs random adds, replacements and deletions on
// a connTable and on a Go map side by side, growing and shrinking it, and
// checks that they always hold the same connections, and that the address
// pool holds exactly the addresses of their keys that are not IPv4: keys
// of IPv4, IPv6 (sharing one address, each with one of its own) and, as
// no decoder makes but a Key can hold, an address that V6 false calls
// IPv4 but is not IPv4-mapped.
func TestConnTableMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ct := connTable{slab: new(slab), cold: new(coldStore)}
	ref := map[Key]*conn{}
	keyOf := tableTestKey
	check := func(step int) {
		if ct.len() != len(ref) {
			t.Fatalf("step %d: %d connections, want %d", step, ct.len(), len(ref))
		}
		n := 0
		ct.eachConn(func(c *conn) {
			n++
			if k := c.fullKey(ct.cold); ref[k] != c {
				t.Fatalf("step %d: %v holds conn %d, want %v", step, k.Endpoint(1), c.id, ref[k])
			}
		})
		if n != len(ref) {
			t.Fatalf("step %d: walked %d, want %d", step, n, len(ref))
		}
		if got, want := ct.cold.addrs.len(), pooledAddrs(ref); got != want {
			t.Fatalf("step %d: %d addresses pooled, want %d", step, got, want)
		}
		if len(ct.slots) > 0 && (ct.n*8 > len(ct.slots)*7 || len(ct.slots) > robinMinSlots && ct.n*4 < len(ct.slots)) {
			t.Fatalf("step %d: %d connections in %d slots", step, ct.n, len(ct.slots))
		}
	}
	for step := 1; step <= 200000; step++ {
		span := 3000
		if step > 100000 {
			span = 100
		}
		k := keyOf(rng.IntN(span))
		hash := k.hash64()
		if got := ct.get(&k, hash); got != ref[k] {
			t.Fatalf("step %d: get %v = %v, want %v", step, k.Endpoint(1), got, ref[k])
		}
		switch op := rng.IntN(10); {
		case op < 5 && step <= 100000 || op < 2: // add, or replace
			c := ct.alloc()
			c.id, c.key = uint32(step), compact(&k, &ct.cold.addrs)
			ct.set(c, &k, hash)
			if old := ref[k]; old != nil {
				ct.cold.release(old)
				ct.release(old)
			}
			ref[k] = c
		default:
			if old := ref[k]; old != nil {
				if step%2 == 0 {
					ct.del(&k, hash)
				} else {
					ct.delConn(old)
				}
				ct.cold.release(old)
				ct.release(old)
			}
			delete(ref, k)
		}
		if ct.slab.live != len(ref) {
			t.Fatalf("step %d: %d connections in the slab, want %d", step, ct.slab.live, len(ref))
		}
		if step%997 == 0 {
			check(step)
		}
	}
	check(-1)
}

// tableTestKey returns the i-th key of TestConnTableMatchesMap: IPv4,
// IPv6 or neither (V6 false, not IPv4-mapped), by i modulo 3.
func tableTestKey(i int) Key {
	var k Key
	binary.BigEndian.PutUint32(k.Addr[1][12:], uint32(i))
	switch i % 3 {
	case 0:
		k.Addr[0], k.Addr[1] = v4mapped([]byte{10, 0, 0, 1}), v4mapped(k.Addr[1][12:])
	case 1:
		k.V6, k.Addr[0][0], k.Addr[1][0] = true, 0x20, 0x20
	}
	k.Port[0], k.Port[1] = 443, uint16(i>>16)
	k.VLAN = VLAN{Outer: uint16(i % 5), N: uint8(min(i%5, 1))}
	return k
}

// pooledAddrs returns the number of different addresses of the keys of
// ref that are not IPv4.
func pooledAddrs(ref map[Key]*conn) int {
	addrs := map[[16]byte]bool{}
	for k := range ref {
		if k.V6 || k.Addr[1][10] != 0xff {
			addrs[k.Addr[0]], addrs[k.Addr[1]] = true, true
		}
	}
	return len(addrs)
}

// TestTouchConnBesideTimers has a lane's load ahead (touchConn, without
// the shard's lock) come after a view has run a connection's timers (a
// snapshot, under the lock) with nothing between them to order the two:
// under the race detector, they must share no field. The view does change
// a state here: the client's TIME_WAIT runs out.
func TestTouchConnBesideTimers(t *testing.T) {
	tab := NewTable(Config{TimeWait: 10 * time.Millisecond, SweepEvery: time.Hour})
	for _, p := range []Packet{
		pkt('c', SYN, 100, 0, 0, 0), pkt('s', SYN|ACK, 300, 101, 0, time.Millisecond),
		pkt('c', ACK, 101, 301, 0, 2*time.Millisecond), pkt('c', FIN|ACK, 101, 301, 0, 3*time.Millisecond),
		pkt('s', ACK, 301, 102, 0, 4*time.Millisecond), pkt('s', FIN|ACK, 301, 102, 0, 5*time.Millisecond),
		pkt('c', ACK, 102, 302, 0, 6*time.Millisecond),
	} {
		tab.Apply(&p)
	}
	if r := tab.Snapshot(); len(r) != 1 || r[0].ClientState != StateTimeWait {
		t.Fatalf("want one connection, its client in TIME_WAIT: %+v", r)
	}
	tab.Tick(t0.Add(time.Second)) // the clock passes the deadline, with no packet and no sweep
	p := pkt('c', ACK, 102, 302, 0, 0)
	var k Key
	p.Tuple.fillKey(&k)
	hash := k.hash64()
	sh := &tab.shards[uint32(hash)&tab.mask]
	var wg sync.WaitGroup
	var sink uint64
	wg.Go(func() { _ = tab.Snapshot() })
	wg.Go(func() {
		time.Sleep(20 * time.Millisecond)
		sink = sh.m.touchConn(hash)
	})
	wg.Wait()
	if sink == 0 {
		t.Fatal("touchConn did not find the connection")
	}
	if r := tab.Snapshot(); r[0].ClientState != StateClosed {
		t.Fatalf("the view did not run the timer: client %v", r[0].ClientState)
	}
}
