package integration

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// composePath is the repository's compose file, relative to this package.
const composePath = "../docker-compose.yml"

// composeFile is the part of a compose file that the checks read.
type composeFile struct {
	Version  string                    `yaml:"version"`
	Services map[string]composeService `yaml:"services"`
	Networks map[string]any            `yaml:"networks"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	User        string            `yaml:"user"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []struct {
		Target    int    `yaml:"target"`
		Published int    `yaml:"published"`
		Mode      string `yaml:"mode"`
	} `yaml:"ports"`
	Restart  string   `yaml:"restart"`
	Networks []string `yaml:"networks"`
	Deploy   struct {
		EndpointMode  string `yaml:"endpoint_mode"`
		Replicas      int    `yaml:"replicas"`
		RestartPolicy struct {
			Condition string `yaml:"condition"`
		} `yaml:"restart_policy"`
	} `yaml:"deploy"`
}

// composeVar matches the interpolations the compose file uses: ${NAME} and ${NAME:-default}.
var composeVar = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::-([^}]*))?\}`)

// interpolate replaces each ${NAME:-default} of text with env[NAME] when set and not empty,
// else with the default, as compose does.
func interpolate(text string, env map[string]string) string {
	return composeVar.ReplaceAllStringFunc(text, func(m string) string {
		sub := composeVar.FindStringSubmatch(m)
		if v := env[sub[1]]; v != "" {
			return v
		}
		return sub[2]
	})
}

// loadCompose reads the compose file with every variable at its default.
func loadCompose(t *testing.T) (composeFile, string) {
	t.Helper()
	raw, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal([]byte(interpolate(string(raw), nil)), &f); err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	return f, string(raw)
}

// TestComposeFile checks docker-compose.yml against the binary: the cluster's shape, every
// SKIPGRID_* variable a flag of the node's role, defaults equal to the flags' own,
// addresses and ports that agree with the listen flags, and the shared volumes.
func TestComposeFile(t *testing.T) {
	f, raw := loadCompose(t)
	flags := roleFlags(t)

	var names []string
	for name := range f.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	want := []string{"coordinator", "ps-0", "ps-1", "worker-0", "worker-1", "worker-2"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Fatalf("services (-want +got):\n%s", diff)
	}
	if f.Version != "3.8" {
		t.Errorf("version %q: docker-compose 1.29 and docker stack deploy want \"3.8\"",
			f.Version)
	}

	for _, name := range names {
		checkComposeNode(t, name, f.Services[name], flags)
	}
	checkComposeDefaults(t, raw, flags)
	checkComposeWiring(t, f, flags)
}

// roleOf gives the role a service runs, from its name: coordinator, ps-N or worker-N.
func roleOf(service string) string {
	role, _, _ := strings.Cut(service, "-")
	return role
}

// checkComposeNode checks what every node shares: the image, a numeric user (the image has
// no /etc/passwd), the role's command, flags that exist and the private network.
func checkComposeNode(t *testing.T, name string, s composeService,
	flags map[string]map[string]flagInfo) {
	t.Helper()
	role := roleOf(name)
	if s.Image != "skipgrid:local" {
		t.Errorf("%s: image %q, want skipgrid:local", name, s.Image)
	}
	if uid, gid, ok := strings.Cut(s.User, ":"); !ok || !isNumber(uid) || !isNumber(gid) {
		t.Errorf("%s: user %q, want numeric uid:gid", name, s.User)
	}
	if !slices.Equal(s.Command, []string{role}) {
		t.Errorf("%s: command %q, want [%s]", name, s.Command, role)
	}
	if !slices.Equal(s.Networks, []string{"cluster"}) {
		t.Errorf("%s: networks %q, want [cluster]", name, s.Networks)
	}
	for key := range s.Environment {
		flag, ok := envFlag(key)
		if !ok {
			t.Errorf("%s: environment %s is not a SKIPGRID_* setting", name, key)
			continue
		}
		if _, ok := flags[role][flag]; !ok {
			t.Errorf("%s: environment %s names --%s, which `skipgrid %s` does not have",
				name, key, flag, role)
		}
	}
	if s.Deploy.Replicas != 1 || s.Deploy.EndpointMode != "dnsrr" {
		t.Errorf("%s: deploy.replicas %d, endpoint_mode %q; want 1 (one node per service) "+
			"and dnsrr (gossip reaches each node at its own address)", name,
			s.Deploy.Replicas, s.Deploy.EndpointMode)
	}
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// composeChosen lists the flags whose compose default is the file's own choice: the
// binary has none for them (a job must name its corpus).
var composeChosen = map[string]bool{"corpus": true}

// checkComposeDefaults checks that each ${SKIPGRID_X:-default} of the file defaults to the
// flag's own default, so that the file with no variables set runs the binary's defaults.
func checkComposeDefaults(t *testing.T, raw string, flags map[string]map[string]flagInfo) {
	t.Helper()
	for _, m := range composeVar.FindAllStringSubmatch(raw, -1) {
		name, def := m[1], m[2]
		flag, ok := envFlag(name)
		if !ok {
			if !strings.HasPrefix(name, "SG_") {
				t.Errorf("variable %s: host settings are named SG_*, flags SKIPGRID_*", name)
			}
			continue
		}
		found := false
		for _, role := range []string{"coordinator", "ps", "worker"} {
			fi, has := flags[role][flag]
			if !has {
				continue
			}
			found = true
			if composeChosen[flag] {
				continue
			}
			if def != fi.Default && (fi.Default != "" || !isZeroDefault(fi.Type, def)) {
				t.Errorf("${%s:-%s}: `skipgrid %s --%s` defaults to %q", name, def, role,
					flag, fi.Default)
			}
		}
		if !found {
			t.Errorf("variable %s names --%s, which no role has", name, flag)
		}
	}
}

// flagValue returns the value a node gets for flag: its SKIPGRID_* variable in env when
// set, else the flag's default.
func flagValue(env map[string]string, fi map[string]flagInfo, flag string) string {
	if v, ok := env["SKIPGRID_"+strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))]; ok {
		return v
	}
	return fi[flag].Default
}

// listenPort returns the port of a role's listen flag (grpc-addr, http-addr, gossip-addr)
// as flagValue gives it.
func listenPort(t *testing.T, env map[string]string, fi map[string]flagInfo,
	flag string) string {
	t.Helper()
	addr := flagValue(env, fi, flag)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("--%s %q: %v", flag, addr, err)
	}
	return port
}

// checkComposeWiring checks that the nodes find each other: shard indexes and advertised
// addresses, the coordinator's addresses, the shard count, the shared corpus, the output
// volume, the published status port and the restart policies.
func checkComposeWiring(t *testing.T, f composeFile, flags map[string]map[string]flagInfo) {
	t.Helper()
	coord := f.Services["coordinator"]
	grpcPort := listenPort(t, coord.Environment, flags["coordinator"], "grpc-addr")
	gossipPort := listenPort(t, coord.Environment, flags["coordinator"], "gossip-addr")
	httpPort := listenPort(t, coord.Environment, flags["coordinator"], "http-addr")

	if got := coord.Environment["SKIPGRID_PS"]; got != "2" {
		t.Errorf("coordinator: SKIPGRID_PS %q, want 2 (services ps-0 and ps-1)", got)
	}
	if coord.Build == nil || coord.Build.Context != "./deploy" {
		t.Errorf("coordinator: build %+v, want context ./deploy", coord.Build)
	} else if _, err := os.Stat(filepath.Join("..", "deploy", coord.Build.Dockerfile)); err != nil {
		t.Errorf("coordinator: build dockerfile: %v", err)
	}
	if len(coord.Ports) != 1 || strconv.Itoa(coord.Ports[0].Target) != httpPort ||
		coord.Ports[0].Mode != "host" {
		t.Errorf("coordinator: ports %+v; want the status port %s alone, in host mode "+
			"(dnsrr services cannot use the routing mesh)", coord.Ports, httpPort)
	}
	if coord.Restart != "no" || coord.Deploy.RestartPolicy.Condition != "none" {
		t.Errorf("coordinator: restart %q, swarm condition %q; want no and none (a finished "+
			"job must not start again)", coord.Restart, coord.Deploy.RestartPolicy.Condition)
	}
	checkComposeVolumes(t, f)

	for _, name := range []string{"ps-0", "ps-1", "worker-0", "worker-1", "worker-2"} {
		s := f.Services[name]
		want := map[string]string{
			"SKIPGRID_NAME":        name,
			"SKIPGRID_COORDINATOR": "coordinator:" + grpcPort,
			"SKIPGRID_JOIN":        "coordinator:" + gossipPort,
		}
		if roleOf(name) == "ps" {
			want["SKIPGRID_SHARD"] = strings.TrimPrefix(name, "ps-")
			want["SKIPGRID_ADVERTISE"] = name + ":" + listenPort(t, s.Environment,
				flags["ps"], "grpc-addr")
		}
		for key, v := range want {
			if got := s.Environment[key]; got != v {
				t.Errorf("%s: %s %q, want %q", name, key, got, v)
			}
		}
		if s.Restart != "on-failure" || s.Deploy.RestartPolicy.Condition != "on-failure" {
			t.Errorf("%s: restart %q, swarm condition %q; want on-failure for both", name,
				s.Restart, s.Deploy.RestartPolicy.Condition)
		}
	}
}

// checkComposeVolumes checks that the coordinator writes SKIPGRID_OUT into a writable
// volume and that it and every worker mount the corpus at the same path.
func checkComposeVolumes(t *testing.T, f composeFile) {
	t.Helper()
	coord := f.Services["coordinator"]
	out := coord.Environment["SKIPGRID_OUT"]
	if m, ok := volumeFor(coord.Volumes, out); !ok || strings.HasSuffix(m, ":ro") {
		t.Errorf("coordinator: SKIPGRID_OUT %s is not in a writable volume of %q", out,
			coord.Volumes)
	}
	for _, path := range strings.Fields(coord.Environment["SKIPGRID_CORPUS"]) {
		cm, ok := volumeFor(coord.Volumes, path)
		if !ok {
			t.Errorf("coordinator: corpus %s is in none of its volumes %q", path, coord.Volumes)
			continue
		}
		for _, name := range []string{"worker-0", "worker-1", "worker-2"} {
			if wm, _ := volumeFor(f.Services[name].Volumes, path); wm != cm {
				t.Errorf("%s: corpus %s mounted as %q, the coordinator's as %q", name, path,
					wm, cm)
			}
		}
	}
}

// volumeFor returns the volume (source:target[:mode]) whose target holds path.
func volumeFor(volumes []string, path string) (string, bool) {
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			continue
		}
		if target := parts[1]; path == target || strings.HasPrefix(path, target+"/") {
			return v, true
		}
	}
	return "", false
}

// TestComposeHelpers checks interpolate and parseHelpFlags on cases worked out by hand.
func TestComposeHelpers(t *testing.T) {
	env := map[string]string{"A": "x", "EMPTY": ""}
	tests := []struct{ in, want string }{
		{"${A:-d}", "x"},            // set: the value
		{"${B:-d}", "d"},            // unset: the default
		{"${EMPTY:-d}", "d"},        // empty counts as unset with :-
		{"${B}", ""},                // unset, no default: empty
		{"p/${A}/${B:-q}", "p/x/q"}, // several in one string
		{"${SG_OUT:-./out}:/out", "./out:/out"},
	}
	for _, tc := range tests {
		if got := interpolate(tc.in, env); got != tc.want {
			t.Errorf("interpolate(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// A typed flag with a default, a quoted default, and a bool flag with a short form.
	help := "      --min-count uint   drop words (default 5)\n" +
		"      --values string    f32 or f16 (default \"f32\")\n" +
		"  -h, --help             help for ps\n"
	want := map[string]flagInfo{"min-count": {Type: "uint", Default: "5"},
		"values": {Type: "string", Default: "f32"}, "help": {}}
	if diff := cmp.Diff(want, parseHelpFlags(help)); diff != "" {
		t.Errorf("parseHelpFlags (-want +got):\n%s", diff)
	}
}
