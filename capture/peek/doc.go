// Package peek names connections by what their applications asked for:
// the server name of a TLS ClientHello (with its ALPN), the Host of an
// HTTP/1 request, and the DNS answers seen before a connection started.
//
// It reads only a connection's first client payload, and DNS responses;
// nothing after that, so the cost per packet stays flat.
package peek
