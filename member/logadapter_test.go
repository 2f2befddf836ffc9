package member

import (
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseLogLine(t *testing.T) {
	// Lines as memberlist prints them (see its net.go and state.go), with
	// the level and message expected by hand.
	tests := []struct {
		line      string
		wantLevel slog.Level
		wantMsg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:5000\n", slog.LevelDebug,
			"Stream connection from=127.0.0.1:5000"},
		{"[INFO] memberlist: Suspect n2 has failed, no acks received\n", slog.LevelInfo,
			"Suspect n2 has failed, no acks received"},
		{"[WARN] memberlist: Got ping for unexpected node n9\n", slog.LevelWarn,
			"Got ping for unexpected node n9"},
		{"[ERR] memberlist: Decrypt packet failed: No installed keys could decrypt the message",
			slog.LevelError, "Decrypt packet failed: No installed keys could decrypt the message"},
		{"[ERROR] memberlist: Failed to encrypt local state: x\r\n", slog.LevelError,
			"Failed to encrypt local state: x"},
		{"Err: Could not set the deadline: closed\n", slog.LevelError,
			"Could not set the deadline: closed"},
		{"[warning] lower case tag\n", slog.LevelWarn, "lower case tag"},
		// No known tag: the whole line at info.
		{"[NOTICE] memberlist: odd\n", slog.LevelInfo, "[NOTICE] memberlist: odd"},
		{"plain text\n", slog.LevelInfo, "plain text"},
		{"[", slog.LevelInfo, "["},
		{"\n", slog.LevelInfo, ""},
	}
	for _, tc := range tests {
		level, msg := parseLogLine(tc.line)
		if level != tc.wantLevel || msg != tc.wantMsg {
			t.Errorf("parseLogLine(%q) = %v %q, want %v %q", tc.line, level, msg,
				tc.wantLevel, tc.wantMsg)
		}
	}
}

func TestMemberlistLoggerRoutesToSlog(t *testing.T) {
	rec := newRecorder(t)
	l := newMemberlistLogger(slog.New(recHandler{r: rec}))

	// Each Printf is one record; a Write with two lines gives two.
	l.Printf("[WARN] memberlist: Got invalid checksum for UDP packet: %x, %x", 1, 2)
	l.Printf("[DEBUG] memberlist: Using dynamic bind port %d", 4000)
	two := []byte("[ERR] memberlist: one\n[INFO] memberlist: two\n")
	if _, err := l.Writer().Write(two); err != nil {
		t.Fatal(err)
	}

	attrs := map[string]string{"component": "memberlist"}
	want := []logRecord{
		{slog.LevelWarn, "Got invalid checksum for UDP packet: 1, 2", attrs},
		{slog.LevelDebug, "Using dynamic bind port 4000", attrs},
		{slog.LevelError, "one", attrs},
		{slog.LevelInfo, "two", attrs},
	}
	if diff := cmp.Diff(want, rec.all()); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func FuzzParseLogLine(f *testing.F) {
	f.Add("[ERR] memberlist: x")
	f.Add("Err: y")
	f.Add("[]")
	f.Fuzz(func(t *testing.T, line string) {
		level, _ := parseLogLine(line)
		switch level {
		case slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError:
		default:
			t.Errorf("parseLogLine(%q) level %v is not one of the four", line, level)
		}
	})
}
