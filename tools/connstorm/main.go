// Command connstorm makes a bounded storm of short TCP connections on
// loopback, for measuring what naming their processes costs flowtrack
// (scripts/connstorm.sh): it listens on 127.0.0.1, then connects to itself
// from 250 addresses of 127.0.1.0/24
// -rate times a second for -for, each connection sending one byte and
// closing at once; the accepting side reads the byte and closes. It stops
// by itself, and prints how many connections it made and accepted, and
// its PID (the process every connection must be named after), and how
// long the storm took: a machine that cannot keep the rate takes longer.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	rate := flag.Int("rate", 20000, "connections per second")
	dur := flag.Duration("for", 5*time.Second, "how long (at most 60s)")
	workers := flag.Int("workers", 8, "connecting goroutines")
	flag.Parse()
	if *dur > time.Minute || *rate <= 0 || *rate > 100000 || *workers <= 0 {
		fmt.Fprintln(os.Stderr, "connstorm: -rate 1..100000, -for up to 60s, -workers > 0")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "connstorm:", err)
		os.Exit(1)
	}
	var accepted atomic.Uint64
	go serve(ln, &accepted)
	start := time.Now()
	made, failed := storm(ln.Addr().String(), *rate, *dur, *workers)
	secs := time.Since(start).Seconds()
	deadline := time.Now().Add(5 * time.Second)
	for accepted.Load() < made && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ln.Close()
	fmt.Printf("pid %d made %d failed %d accepted %d secs %.2f\n", os.Getpid(), made, failed, accepted.Load(), secs)
}

func serve(ln net.Listener, accepted *atomic.Uint64) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		accepted.Add(1)
		go func() {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			var b [1]byte
			c.Read(b[:])
			c.Close()
		}()
	}
}

// storm connects rate times a second for dur, paced in 1 ms ticks shared
// out among the workers.
func storm(addr string, rate int, dur time.Duration, workers int) (made, failed uint64) {
	var m, f atomic.Uint64
	total := uint64(float64(rate) * dur.Seconds())
	var next atomic.Uint64
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				// Connection i is due at i/rate seconds.
				if d := time.Duration(float64(i)/float64(rate)*1e9) - time.Since(start); d > 0 {
					time.Sleep(d)
				}
				// Source addresses spread over 127.0.1.0/24 so that no
				// 4-tuple is reused within the storm (a port's TIME_WAIT).
				d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%250))}}
				c, err := d.Dial("tcp4", addr)
				if err != nil {
					f.Add(1)
					continue
				}
				c.Write([]byte{'x'})
				c.Close()
				m.Add(1)
			}
		}()
	}
	wg.Wait()
	return m.Load(), f.Load()
}
