package main

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// frame builds an Ethernet frame with TCP from src:sp to dst:dp.
func frame(v6 bool, src, dst []byte, sp, dp uint16) []byte {
	f := make([]byte, 14, 80)
	if v6 {
		binary.BigEndian.PutUint16(f[12:], 0x86dd)
		ip := make([]byte, 40)
		ip[0], ip[6] = 0x60, 6
		copy(ip[8:], src)
		copy(ip[24:], dst)
		f = append(f, ip...)
	} else {
		binary.BigEndian.PutUint16(f[12:], 0x0800)
		ip := make([]byte, 20)
		ip[0], ip[9] = 0x45, 6
		copy(ip[12:], src)
		copy(ip[16:], dst)
		f = append(f, ip...)
	}
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp, sp)
	binary.BigEndian.PutUint16(tcp[2:], dp)
	return append(f, tcp...)
}

func pcap(order binary.ByteOrder, frames ...[]byte) []byte {
	var b bytes.Buffer
	h := make([]byte, 24)
	order.PutUint32(h, 0xa1b2c3d4)
	order.PutUint32(h[16:], 65535)
	order.PutUint32(h[20:], 1)
	b.Write(h)
	for _, f := range frames {
		r := make([]byte, 16)
		order.PutUint32(r[8:], uint32(len(f)))
		order.PutUint32(r[12:], uint32(len(f)))
		b.Write(r)
		b.Write(f)
	}
	return b.Bytes()
}

func TestWalk(t *testing.T) {
	a, b := []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}
	a6, b6 := bytes.Repeat([]byte{0x20}, 16), bytes.Repeat([]byte{0x30}, 16)
	arp := make([]byte, 60)
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, c := range []counter{mapCounter{}, newOpenTable()} {
			st, err := walk(bytes.NewReader(pcap(order,
				frame(false, a, b, 40000, 80), frame(false, b, a, 80, 40000), frame(false, a, b, 40001, 80),
				frame(true, a6, b6, 5000, 443), frame(true, b6, a6, 443, 5000), arp)), c)
			if err != nil {
				t.Fatal(err)
			}
			if st.packets != 6 || st.tcp != 5 || st.other != 1 || st.conns.len() != 3 {
				t.Errorf("%v %T: %d packets, %d TCP, %d other, %d 4-tuples; want 6, 5, 1, 3", order, c, st.packets, st.tcp, st.other, st.conns.len())
			}
		}
	}
}

// TestOpenTableMatchesMap counts random 4-tuples (a few thousand, many
// times each, through several doublings) in the open table and in a Go
// map: every count must agree.
func TestOpenTableMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ot, ref := newOpenTable(), mapCounter{}
	keys := make([]key, 5000)
	for i := range keys {
		k := &keys[i]
		if i%3 == 0 { // IPv6
			for j := 0; j < 16; j += 8 {
				binary.LittleEndian.PutUint64(k.a[j:], rng.Uint64())
				binary.LittleEndian.PutUint64(k.b[j:], rng.Uint64())
			}
		} else {
			binary.BigEndian.PutUint32(k.a[:], rng.Uint32())
			binary.BigEndian.PutUint32(k.b[:], uint32(i%7))
		}
		k.pa, k.pb = uint16(rng.Uint32()), uint16(i%3)
	}
	for range 100_000 {
		k := keys[rng.IntN(len(keys))]
		ot.add(k)
		ref.add(k)
	}
	if ot.len() != len(ref) {
		t.Fatalf("%d keys, the map %d", ot.len(), len(ref))
	}
	for k, n := range ref {
		i := hash(&k) & ot.mask
		for ot.slots[i].tag != 0 && ot.slots[i].k != k {
			i = (i + 1) & ot.mask
		}
		if got := ot.slots[i].count; got != n {
			t.Fatalf("key %v: count %d, the map %d", k, got, n)
		}
	}
}
