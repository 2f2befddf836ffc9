package integration

import (
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// flagInfo is one flag of a skipgrid command, as its --help prints it.
type flagInfo struct {
	// Type is the value type pflag prints ("string", "int", "duration", ...); empty for a
	// bool flag.
	Type string
	// Default is the printed default, unquoted; empty where pflag prints none (the zero
	// value).
	Default string
}

// helpFlagLine matches a flag line of cobra's help: "  -h, --name type   usage (default x)".
var helpFlagLine = regexp.MustCompile(
	`^\s+(?:-\w, )?--([a-z0-9-]+)(?: ([a-zA-Z0-9]+))?\s{2,}(.*?)(?: \(default (.*)\))?$`)

var (
	roleFlagsOnce sync.Once
	roleFlagsMap  map[string]map[string]flagInfo
	roleFlagsErr  error
)

// roleFlags returns the flags of `skipgrid ROLE` for each role of a multi-process cluster,
// global flags included, read from the built binary's --help.
func roleFlags(t *testing.T) map[string]map[string]flagInfo {
	t.Helper()
	roleFlagsOnce.Do(func() {
		roleFlagsMap = make(map[string]map[string]flagInfo)
		for _, role := range []string{"coordinator", "ps", "worker"} {
			out, err := exec.Command(binary, role, "--help").Output()
			if err != nil {
				roleFlagsErr = err
				return
			}
			roleFlagsMap[role] = parseHelpFlags(string(out))
		}
	})
	if roleFlagsErr != nil {
		t.Fatalf("skipgrid --help: %v", roleFlagsErr)
	}
	return roleFlagsMap
}

// parseHelpFlags reads the flag lines of a command's help text.
func parseHelpFlags(help string) map[string]flagInfo {
	flags := make(map[string]flagInfo)
	for line := range strings.SplitSeq(help, "\n") {
		m := helpFlagLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		flags[m[1]] = flagInfo{Type: m[2], Default: strings.Trim(m[4], `"`)}
	}
	return flags
}

// envFlag returns the flag that a SKIPGRID_* environment variable sets (SKIPGRID_MIN_COUNT
// sets --min-count, as viper's key replacer maps it), and whether name has the prefix.
func envFlag(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "SKIPGRID_")
	if !ok {
		return "", false
	}
	return strings.ReplaceAll(strings.ToLower(rest), "_", "-"), true
}

// isZeroDefault tells whether value is the zero value that pflag leaves unprinted as the
// default of a flag of type typ.
func isZeroDefault(typ, value string) bool {
	switch typ {
	case "int", "int64", "uint", "uint64", "float", "float64":
		return value == "0"
	case "duration":
		return value == "0" || value == "0s"
	case "":
		return value == "false"
	}
	return value == ""
}
