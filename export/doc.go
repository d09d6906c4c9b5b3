// Package export writes connection records for people and programs: a
// netstat-like text table and NDJSON, one object per connection. It is a
// view of package flows, beside the interactive ui.
package export
