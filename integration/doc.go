// Package integration starts real skipgrid clusters and checks what they produce: separate
// processes on loopback (every test here), and containers through docker-compose where a
// Docker engine answers (skipped with a message where none does). The tests build the
// skipgrid binary once (TestMain) and run it.
//
// They run with `go test ./...` and are skipped under -short. Every test has a deadline and
// kills the processes and containers it started, whatever happens. README.md beside this file
// records what the fault tests measured.
package integration
