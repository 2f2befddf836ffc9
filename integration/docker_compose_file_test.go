package integration

import (
	"maps"
	"net"
	"os"
	"path"
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

// dockerfilePath is the image's Dockerfile, relative to this package.
const dockerfilePath = "../deploy/Dockerfile"

// composeFile is the part of a compose file that the checks read.
type composeFile struct {
	Version  string                    `yaml:"version"`
	Services map[string]composeService `yaml:"services"`
	Networks map[string]any            `yaml:"networks"`
	Volumes  map[string]any            `yaml:"volumes"`
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
	return parseCompose(t, string(raw), nil), string(raw)
}

// parseCompose parses the compose file's text with the variables of env.
func parseCompose(t *testing.T, raw string, env map[string]string) composeFile {
	t.Helper()
	var f composeFile
	if err := yaml.Unmarshal([]byte(interpolate(raw, env)), &f); err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	return f
}

// TestComposeFile checks docker-compose.yml against the binary: the cluster's shape, every
// SKIPGRID_* variable a flag of the node's role, defaults equal to the flags' own,
// addresses and ports that agree with the listen flags, the shared volumes, and a
// checkpoint volume of its own for every shard.
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

	// The shards' user must own their volumes whatever user the host picks for the others
	// (deploy/up.sh picks the caller's).
	checkComposeCheckpoints(t, parseCompose(t, raw, map[string]string{"SG_UID": "1000",
		"SG_GID": "1000"}), readFile(t, dockerfilePath))
}

// readFile returns a file's text.
func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
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
// binary has none for them (a job must name its corpus), or the binary's does not suit a
// deployment (checkpoints at epoch ends only would lose a whole long epoch to a crash).
var composeChosen = map[string]bool{"corpus": true, "checkpoint-every": true}

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
// addresses, every node's gossip address advertised as its own service name, the
// coordinator's addresses, the shard count, the shared corpus, the output volume, the
// published status port and the restart policies.
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
	checkComposeGossipAdvertise(t, f, flags)

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

// checkComposeGossipAdvertise checks that every node advertises its gossip address as its own
// service name and gossip port. The name resolves to the node's address on the cluster
// network; left unset, a Swarm node would advertise its docker_gwbridge address instead,
// which gossip from other containers does not reach.
func checkComposeGossipAdvertise(t *testing.T, f composeFile,
	flags map[string]map[string]flagInfo) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(f.Services)) {
		s := f.Services[name]
		want := name + ":" + listenPort(t, s.Environment, flags[roleOf(name)], "gossip-addr")
		if got, ok := s.Environment["SKIPGRID_GOSSIP_ADVERTISE"]; got != want {
			t.Errorf("%s: SKIPGRID_GOSSIP_ADVERTISE %q (set %v), want %q: its own service name, "+
				"which resolves to its address on the cluster network", name, got, ok, want)
		}
	}
}

// checkComposeVolumes checks that the coordinator writes SKIPGRID_OUT (its outputs and its
// saved state, OUT/.state) into a writable volume and that it and every worker mount the
// corpus at the same path.
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

// checkComposeCheckpoints checks that every shard keeps its checkpoints, so that a
// restarted container restores them: SKIPGRID_CHECKPOINT_DIR is in a writable named volume
// (declared under the top-level volumes, so neither a bind mount nor an anonymous volume
// that a new container would not get back) that no other shard mounts, and the image
// creates the mount point owned by the shard's user, whom a fresh named volume's root then
// belongs to.
func checkComposeCheckpoints(t *testing.T, f composeFile, dockerfile string) {
	t.Helper()
	owner := make(map[string]string) // named volume -> the shard that mounts it
	for _, name := range slices.Sorted(maps.Keys(f.Services)) {
		s := f.Services[name]
		if roleOf(name) != "ps" {
			continue
		}
		dir := s.Environment["SKIPGRID_CHECKPOINT_DIR"]
		if !path.IsAbs(dir) {
			t.Errorf("%s: SKIPGRID_CHECKPOINT_DIR %q; want an absolute path in a volume, or a "+
				"restarted shard comes back empty", name, dir)
			continue
		}
		v, ok := volumeFor(s.Volumes, dir)
		if !ok {
			t.Errorf("%s: checkpoint dir %s is in none of its volumes %q", name, dir, s.Volumes)
			continue
		}
		parts := strings.Split(v, ":")
		source, target := parts[0], parts[1]
		if _, named := f.Volumes[source]; !named {
			t.Errorf("%s: checkpoint dir %s is on %q, want a named volume declared under the "+
				"top-level volumes", name, dir, v)
		}
		if len(parts) > 2 && parts[2] == "ro" {
			t.Errorf("%s: checkpoint volume %q is read-only", name, v)
		}
		if other, shared := owner[source]; shared {
			t.Errorf("%s and %s share the checkpoint volume %s; each shard needs its own",
				other, name, source)
		}
		owner[source] = name
		if got := imageOwner(dockerfile, target); got != s.User {
			t.Errorf("%s: runs as %q, but the image's %s belongs to %q: a fresh named volume "+
				"there takes that owner, and the shard could not write its checkpoints", name,
				s.User, target, got)
		}
	}
	if shards := f.Services["coordinator"].Environment["SKIPGRID_PS"]; strconv.Itoa(
		len(owner)) != shards {
		t.Errorf("%d shards checkpoint into volumes of their own, want %s", len(owner), shards)
	}
}

// imageOwner returns the --chown owner of the Dockerfile COPY whose destination is dir, or
// "" when no COPY with --chown makes it.
func imageOwner(dockerfile, dir string) string {
	for _, line := range strings.Split(dockerfile, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 || !strings.EqualFold(fields[0], "COPY") ||
			path.Clean(fields[len(fields)-1]) != path.Clean(dir) {
			continue
		}
		for _, f := range fields[1 : len(fields)-1] {
			if owner, ok := strings.CutPrefix(f, "--chown="); ok {
				return owner
			}
		}
	}
	return ""
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

// swarmOverridePath adds to the compose file for a Swarm of several hosts.
const swarmOverridePath = "../deploy/swarm-multihost.yml"

// TestComposeSwarmOverride checks deploy/swarm-multihost.yml against the compose file: it
// names only services of it, makes the cluster network an attachable overlay that is not
// internal (an internal one would drop the published status port; the advertised service
// names already give gossip the overlay address), and pins the coordinator and every shard
// to nodes of their own label, where their state stays.
func TestComposeSwarmOverride(t *testing.T) {
	base, _ := loadCompose(t)
	var o struct {
		Services map[string]struct {
			Deploy struct {
				Placement struct {
					Constraints []string `yaml:"constraints"`
				} `yaml:"placement"`
			} `yaml:"deploy"`
		} `yaml:"services"`
		Networks map[string]struct {
			Driver     string `yaml:"driver"`
			Internal   bool   `yaml:"internal"`
			Attachable bool   `yaml:"attachable"`
		} `yaml:"networks"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, swarmOverridePath)), &o); err != nil {
		t.Fatalf("%s: %v", swarmOverridePath, err)
	}

	if n, ok := o.Networks["cluster"]; !ok || n.Driver != "overlay" || n.Internal ||
		!n.Attachable {
		t.Errorf("network cluster %+v (present %v); want an attachable overlay, not internal "+
			"(which would publish nothing, the status page included)", n, ok)
	}
	pinned := make(map[string]string) // constraint -> service
	for name, s := range o.Services {
		if _, ok := base.Services[name]; !ok {
			t.Errorf("service %s is not in %s", name, composePath)
		}
		c := s.Deploy.Placement.Constraints
		if role := roleOf(name); role == "coordinator" || role == "ps" {
			if len(c) != 1 {
				t.Errorf("%s: constraints %q; want one node label of its own", name, c)
				continue
			}
			if other, dup := pinned[c[0]]; dup {
				t.Errorf("%s and %s are pinned alike (%s)", other, name, c[0])
			}
			pinned[c[0]] = name
		}
	}
	for name := range base.Services {
		if role := roleOf(name); role == "coordinator" || role == "ps" {
			if _, ok := o.Services[name]; !ok {
				t.Errorf("%s is not pinned: Swarm could move it away from its state", name)
			}
		}
	}
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
	// The owner of a directory the image makes: the COPY whose destination it is, with or
	// without a trailing slash; another COPY's owner or one without --chown does not count.
	dockerfile := "FROM scratch\nCOPY bin/x /x\nCOPY --from=d --chown=1:2 /c /c/\n" +
		"copy --chown=3:4 a /other\n"
	for dir, want := range map[string]string{"/c": "1:2", "/c/": "1:2", "/x": "",
		"/other": "3:4", "/none": ""} {
		if got := imageOwner(dockerfile, dir); got != want {
			t.Errorf("imageOwner(%q) = %q, want %q", dir, got, want)
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
