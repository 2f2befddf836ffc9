// Package integration starts real skipgrid clusters, as separate processes on loopback, and
// checks what they produce. The tests build the skipgrid binary once (TestMain) and run it.
//
// They run with `go test ./...` and are skipped under -short. Every test has a deadline and
// kills the processes it started, whatever happens.
package integration
