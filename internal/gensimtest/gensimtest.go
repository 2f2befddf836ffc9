// Package gensimtest lets tests use gensim, Debian's python3-gensim, as a reference peer.
package gensimtest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Python is the interpreter that has Debian's gensim. The python3 first on PATH can be
// another build without it.
const Python = "/usr/bin/python3"

// Require skips the test when gensim cannot be found, or fails it when the environment
// variable CI is set (CI installs python3-gensim). why ends the message ("to check ...").
// Finding the module is quicker than importing it; a broken install fails later.
func Require(t testing.TB, why string) {
	t.Helper()
	find := "import importlib.util, sys; sys.exit(importlib.util.find_spec('gensim') is None)"
	out, err := exec.Command(Python, "-c", find).CombinedOutput()
	if err == nil {
		return
	}
	msg := "gensim is not importable by " + Python + " (" + err.Error() + " " +
		strings.TrimSpace(string(out)) + "); install python3-gensim " + why
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
