package member

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// validConfig is a Config that Validate accepts; cases change one thing.
func validConfig() Config {
	cfg := DefaultConfig()
	cfg.Name = "w1"
	cfg.Meta = Meta{Role: "worker"}
	return cfg
}

func TestDefaultConfigNeedsOnlyARole(t *testing.T) {
	cfg := validConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config with name and role: %v", err)
	}

	// The documented defaults.
	want := Config{Name: "w1", BindAddr: "0.0.0.0", BindPort: 7946, Profile: ProfileLAN,
		Meta: Meta{Role: "worker"}}
	if diff := cmp.Diff(want, cfg, cmp.Comparer(func(a, b func(Meta)) bool {
		return a == nil && b == nil
	})); diff != "" {
		t.Errorf("DefaultConfig (-want +got):\n%s", diff)
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{"empty profile means lan", func(c *Config) { c.Profile = "" }},
		{"local profile", func(c *Config) { c.Profile = ProfileLocal }},
		{"24-byte key", func(c *Config) { c.SecretKey = make([]byte, 24) }},
		{"meta name equal", func(c *Config) { c.Meta.Name = "w1" }},
		{"seeds", func(c *Config) { c.Join = []string{"10.0.0.1:7946", "seed.local:7946"} }},
	}
	for _, tc := range tests {
		cfg := validConfig()
		tc.change(&cfg)
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: Validate: %v, want nil", tc.name, err)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // fragments the error must contain, one per problem
	}{
		{"no name", func(c *Config) { c.Name = "" }, []string{"name is empty"}},
		{"bind host name", func(c *Config) { c.BindAddr = "localhost" },
			[]string{`bind address "localhost"`}},
		{"ports", func(c *Config) { c.BindPort, c.AdvertisePort = -1, 65536 },
			[]string{"bind port -1", "advertise port 65536"}},
		{"advertise", func(c *Config) { c.AdvertiseAddr = "host" },
			[]string{`advertise address "host"`}},
		{"seed without port", func(c *Config) { c.Join = []string{"10.0.0.1:1", "10.0.0.2"} },
			[]string{`join entry 1 "10.0.0.2"`}},
		{"15-byte key", func(c *Config) { c.SecretKey = make([]byte, 15) },
			[]string{"secret key is 15 bytes"}},
		{"profile", func(c *Config) { c.Profile = "wan" }, []string{`profile "wan"`}},
		{"no role", func(c *Config) { c.Meta.Role = "" }, []string{"meta role is empty"}},
		{"meta name differs", func(c *Config) { c.Meta.Name = "w2" },
			[]string{`meta name "w2" differs from node name "w1"`}},
		{"grpc", func(c *Config) { c.Meta.GRPCAddr = "nowhere" },
			[]string{`meta gRPC address "nowhere"`}},
		{"shard", func(c *Config) { c.Meta.Shard = -2 }, []string{"meta shard -2"}},
		// Every problem at once.
		{"all", func(c *Config) {
			c.Name, c.BindAddr, c.SecretKey, c.Meta.Role = "", "", []byte{1}, ""
		}, []string{"name is empty", `bind address ""`, "secret key is 1 bytes",
			"meta role is empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			tc.change(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate: %v, want ErrInvalidConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate error %q does not contain %q", err, w)
				}
			}
			// One line per problem: errors.Join separates them by newlines.
			if lines := strings.Count(err.Error(), "\n") + 1; lines != len(tc.want) {
				t.Errorf("Validate reported %d problems, want %d:\n%v", lines, len(tc.want),
					err)
			}
		})
	}
}

func TestMetaSize(t *testing.T) {
	// JSON of Meta{Role: R, Name: "n1"} is {"role":"R","name":"n1","grpc":"","shard":0}:
	// 9 bytes before R and 34 after, so 43+len(R) bytes. 469 fits the 512 limit
	// exactly; 470 is one byte over.
	tests := []struct {
		roleLen int
		wantErr bool
	}{
		{1, false},
		{469, false},
		{470, true},
		{1000, true},
	}
	for _, tc := range tests {
		cfg := validConfig()
		cfg.Name = "n1"
		cfg.Meta.Role = strings.Repeat("r", tc.roleLen)
		err := cfg.Validate()
		if got := errors.Is(err, ErrMetaTooLarge); got != tc.wantErr {
			t.Errorf("role of %d bytes: Validate error %v, want ErrMetaTooLarge %v",
				tc.roleLen, err, tc.wantErr)
		}
	}

	// The same boundary from the encoder, counting the bytes it produced.
	b, err := encodeMeta(wireMeta{Meta: Meta{Role: strings.Repeat("r", 469), Name: "n1"}})
	if err != nil || len(b) != 512 {
		t.Errorf("encodeMeta(469-byte role) = %d bytes, %v; want 512 bytes", len(b), err)
	}

	// The leaving flag adds `,"leaving":true` (15 bytes) before the closing
	// brace: 43+454+15 = 512 fits, one more byte of role does not.
	leaving := func(n int) wireMeta {
		return wireMeta{Meta: Meta{Role: strings.Repeat("r", n), Name: "n1"}, Leaving: true}
	}
	if b, err := encodeMeta(leaving(454)); err != nil || len(b) != 512 {
		t.Errorf("encodeMeta(454-byte role, leaving) = %d bytes, %v; want 512", len(b), err)
	}
	if _, err := encodeMeta(leaving(455)); !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("encodeMeta(455-byte role, leaving) = %v, want ErrMetaTooLarge", err)
	}
}

func TestDecodeMeta(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    wireMeta
		wantErr string
	}{
		{"full", `{"role":"ps","name":"p0","grpc":"10.0.0.5:7000","shard":3}`,
			wireMeta{Meta: Meta{Role: "ps", Name: "p0", GRPCAddr: "10.0.0.5:7000", Shard: 3}},
			""},
		{"leaving", `{"role":"worker","name":"w","grpc":"","shard":0,"leaving":true}`,
			wireMeta{Meta: Meta{Role: "worker", Name: "w"}, Leaving: true}, ""},
		// A newer node may add fields; they are ignored.
		{"unknown field", `{"role":"worker","name":"w","zone":"b"}`,
			wireMeta{Meta: Meta{Role: "worker", Name: "w"}}, ""},
		{"empty", ``, wireMeta{}, "empty"},
		{"not json", `role=ps`, wireMeta{}, "decode node metadata"},
		{"wrong type", `{"shard":"one"}`, wireMeta{}, "decode node metadata"},
		{"too long", `{"role":"` + strings.Repeat("x", 600) + `"}`, wireMeta{}, "limit 512"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeMeta([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("decodeMeta error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decodeMeta (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add([]byte(`{"role":"ps","name":"p0","grpc":"10.0.0.5:7000","shard":3}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"shard":1e99}`))
	f.Add([]byte("{\"name\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}

		// Whatever was accepted survives a JSON round trip unchanged.
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", m, err)
		}
		var back wireMeta
		if err := json.Unmarshal(again, &back); err != nil {
			t.Fatalf("decode %q: %v", again, err)
		}
		if diff := cmp.Diff(m, back); diff != "" {
			t.Errorf("round trip of %q (-first +second):\n%s", b, diff)
		}
	})
}
