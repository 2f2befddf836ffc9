package member

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
)

// newMemberlistLogger returns the *log.Logger handed to memberlist: every
// line it prints goes to l at the level its prefix names.
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	w := &logWriter{log: l.With("component", "memberlist")}
	return log.New(w, "", 0)
}

// logWriter turns memberlist's text lines into slog records. log.Logger
// calls Write once per line, but a Write holding several lines is handled
// too.
type logWriter struct {
	log *slog.Logger
}

// Write implements io.Writer; it never fails.
func (w *logWriter) Write(p []byte) (int, error) {
	for line := range bytes.Lines(p) {
		level, msg := parseLogLine(string(line))
		if msg == "" {
			continue
		}
		w.log.Log(context.Background(), level, msg)
	}
	return len(p), nil
}

// levelTags maps memberlist's bracketed prefixes (and the variants seen in
// its source) to slog levels.
var levelTags = map[string]slog.Level{
	"TRACE":   slog.LevelDebug,
	"DEBUG":   slog.LevelDebug,
	"INFO":    slog.LevelInfo,
	"WARN":    slog.LevelWarn,
	"WARNING": slog.LevelWarn,
	"ERR":     slog.LevelError,
	"ERROR":   slog.LevelError,
}

// parseLogLine splits one memberlist line such as
// "[WARN] memberlist: Got ping for unexpected node" into its level and the
// message without the prefixes. A line with no known prefix is kept whole
// at info level; "Err: " (which memberlist also prints) is an error.
func parseLogLine(line string) (slog.Level, string) {
	line = strings.TrimRight(line, "\r\n")
	level := slog.LevelInfo
	rest := line

	if strings.HasPrefix(line, "[") {
		if end := strings.IndexByte(line, ']'); end > 0 {
			if l, ok := levelTags[strings.ToUpper(line[1:end])]; ok {
				level, rest = l, line[end+1:]
			}
		}
	} else if len(line) >= 4 && strings.EqualFold(line[:4], "err:") {
		level, rest = slog.LevelError, line[4:]
	}

	rest = strings.TrimSpace(rest)
	rest = strings.TrimPrefix(rest, "memberlist:")
	return level, strings.TrimSpace(rest)
}
