// Package export writes connection records for people and programs: a
// netstat-like text table, NDJSON (one object per connection, or one per
// event with --follow), IPFIX records to a collector (RFC 7011, over UDP
// or TCP), and Prometheus metrics of the whole table. It is a view of
// package flows, beside the interactive ui.
package export
