package sockets_test

import (
	"context"
	"fmt"
	"time"

	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/sockets"
)

// A live capture starts one Resolver and looks up each record's endpoints
// when it shows or writes the record: the client's socket is the one whose
// local end is the client, the server's the reverse. Either, both (a
// loopback connection) or neither may be on this host.
func ExampleResolver() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := sockets.New()
	res.Start(ctx, time.Second)
	defer res.Wait() // after cancel

	var rec flows.Record // from Snapshot, or the retire callback
	client, cok := res.Lookup(rec.Client, rec.Server)
	server, sok := res.Lookup(rec.Server, rec.Client)
	if cok && client.PID != 0 {
		fmt.Println("pid", client.PID, "process", client.Comm)
	}
	if cok && !client.Gone {
		fmt.Println("kernel_client_state", client.KernelState)
	}
	if sok && !server.Gone {
		fmt.Println("kernel_server_state", server.KernelState)
	}
	// Count a disagreement once per connection and endpoint, and only once
	// the kernel was read after the connection's last packet.
	if client.Compare(rec.ClientState, rec.LastSeen, cok) == sockets.Disagree {
		fmt.Println("the kernel says", client.KernelState, "flowtrack says", rec.ClientState)
	}
	for _, w := range res.Warnings() { // to the status line, or stderr
		fmt.Println(w)
	}
}
