package integration

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// k8sDir holds the Kubernetes manifests, relative to this package.
const k8sDir = "../deploy/k8s"

// Only the fields the checks read are declared; the rest of each manifest is ignored.

type objectMeta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type k8sObject struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	// file is where the object was read, for messages.
	file string
	node *yaml.Node
}

type k8sService struct {
	Spec struct {
		ClusterIP string            `yaml:"clusterIP"`
		Selector  map[string]string `yaml:"selector"`
		Ports     []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
			Protocol   string `yaml:"protocol"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sWorkload struct {
	Spec struct {
		ServiceName string `yaml:"serviceName"`
		Replicas    *int   `yaml:"replicas"`
		Selector    struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata objectMeta `yaml:"metadata"`
			Spec     podSpec    `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata objectMeta `yaml:"metadata"`
			Spec     struct {
				AccessModes []string `yaml:"accessModes"`
			} `yaml:"spec"`
		} `yaml:"volumeClaimTemplates"`
		PVCRetention struct {
			WhenDeleted string `yaml:"whenDeleted"`
		} `yaml:"persistentVolumeClaimRetentionPolicy"`
	} `yaml:"spec"`
}

// claimTemplates returns the names of a StatefulSet's volumeClaimTemplates.
func (w k8sWorkload) claimTemplates() []string {
	var names []string
	for _, ct := range w.Spec.VolumeClaimTemplates {
		names = append(names, ct.Metadata.Name)
	}
	return names
}

type podSpec struct {
	SecurityContext struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
		FSGroup      *int  `yaml:"fsGroup"`
	} `yaml:"securityContext"`
	Containers []k8sContainer `yaml:"containers"`
	Volumes    []k8sVolume    `yaml:"volumes"`
}

type k8sVolume struct {
	Name                  string `yaml:"name"`
	PersistentVolumeClaim *struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name     string `yaml:"name"`
			Optional bool   `yaml:"optional"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	} `yaml:"ports"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

// manifests is every object of the manifest folder, by "Kind/name".
type manifests map[string]k8sObject

// decode fills v from the object named key, failing the test when it is absent.
func (m manifests) decode(t *testing.T, key string, v any) {
	t.Helper()
	o, ok := m[key]
	if !ok {
		t.Fatalf("no %s in %s", key, k8sDir)
	}
	if err := o.node.Decode(v); err != nil {
		t.Fatalf("%s: %s: %v", o.file, key, err)
	}
}

// loadManifests reads every YAML document of every .yaml file in dir.
func loadManifests(t *testing.T, dir string) manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("manifests in %s: %v (%d files)", dir, err, len(files))
	}
	m := make(manifests)
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for doc := 1; ; doc++ {
			var node yaml.Node
			if err := dec.Decode(&node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: document %d: %v", file, doc, err)
			}
			o := k8sObject{file: filepath.Base(file), node: &node}
			if err := node.Decode(&o); err != nil {
				t.Fatalf("%s: document %d: %v", file, doc, err)
			}
			key := o.Kind + "/" + o.Metadata.Name
			if o.Kind == "" || o.Metadata.Name == "" && o.Kind != "Kustomization" {
				t.Fatalf("%s: document %d has no kind or no metadata.name", file, doc)
			}
			if prev, dup := m[key]; dup {
				t.Fatalf("%s: %s is also in %s", file, key, prev.file)
			}
			m[key] = o
		}
	}
	return m
}

// k8sObjects are the objects of the manifests, by kind and name, sorted.
var k8sObjects = []string{
	"ConfigMap/skipgrid-job", "Job/coordinator", "Job/worker", "NetworkPolicy/skipgrid",
	"PersistentVolumeClaim/skipgrid-corpus", "PersistentVolumeClaim/skipgrid-out",
	"Service/coordinator", "Service/ps", "StatefulSet/ps",
}

// TestK8sManifests checks the Kubernetes manifests against each other and the binary: the
// objects present, the StatefulSet's headless Service, images, users, every SKIPGRID_*
// variable a flag of the container's role, ports that agree with the listen flags,
// Services that select pods and name their ports, the addresses the nodes dial, and the
// claims that keep the shards' checkpoints and the coordinator's state.
func TestK8sManifests(t *testing.T) {
	m := loadManifests(t, k8sDir)
	flags := roleFlags(t)

	want := slices.Sorted(slices.Values(append([]string{"Kustomization/"}, k8sObjects...)))
	if diff := cmp.Diff(want, slices.Sorted(maps.Keys(m))); diff != "" {
		t.Fatalf("objects (-want +got):\n%s", diff)
	}
	checkKustomization(t, m)

	pods := make(map[string]podInfo)
	for _, key := range []string{"Job/coordinator", "StatefulSet/ps", "Job/worker"} {
		pods[key] = checkWorkload(t, m, key, flags)
	}
	for _, key := range []string{"Service/coordinator", "Service/ps"} {
		checkService(t, m, key, pods)
	}
	checkPSWiring(t, m, pods)
	checkPSCheckpoints(t, m, pods)
	checkCoordinatorAddrs(t, m, pods)
}

// checkKustomization checks that kustomization.yaml lists every other manifest file.
func checkKustomization(t *testing.T, m manifests) {
	t.Helper()
	var k struct {
		Resources []string `yaml:"resources"`
	}
	m.decode(t, "Kustomization/", &k)
	files := make(map[string]bool)
	for key, o := range m {
		if key != "Kustomization/" {
			files[o.file] = true
		}
	}
	if diff := cmp.Diff(slices.Sorted(maps.Keys(files)), slices.Sorted(slices.Values(
		k.Resources))); diff != "" {
		t.Errorf("kustomization.yaml resources (-files +listed):\n%s", diff)
	}
}

// podInfo is what the checks learn of one workload's pods.
type podInfo struct {
	role   string
	labels map[string]string
	// env is the container's environment: literal values, "fieldRef:PATH" for the
	// downward API, and the keys of its ConfigMaps.
	env map[string]string
	// ports maps a container port's name to "number/protocol".
	ports map[string]string
	// mounts maps a mount path to "pvc:CLAIM" or "pvc:CLAIM:ro", or to "template:NAME"
	// for a StatefulSet's claim template (one claim per pod).
	mounts map[string]string
}

// checkWorkload checks one workload's pod template and returns what it learnt.
func checkWorkload(t *testing.T, m manifests, key string,
	flags map[string]map[string]flagInfo) podInfo {
	t.Helper()
	var w k8sWorkload
	m.decode(t, key, &w)
	tpl := w.Spec.Template
	if len(tpl.Spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", key, len(tpl.Spec.Containers))
	}
	c := tpl.Spec.Containers[0]
	if c.Image != "skipgrid:local" || len(c.Command) != 0 || len(c.Args) == 0 {
		t.Fatalf("%s: image %q command %q args %q; want skipgrid:local, the image's "+
			"entrypoint, and the role as first argument", key, c.Image, c.Command, c.Args)
	}
	sc := tpl.Spec.SecurityContext
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("%s: want runAsNonRoot and a numeric runAsUser (the image has no "+
			"/etc/passwd)", key)
	}
	for k, v := range w.Spec.Selector.MatchLabels {
		if tpl.Metadata.Labels[k] != v {
			t.Errorf("%s: selector %s=%s does not match the pod labels", key, k, v)
		}
	}

	p := podInfo{role: c.Args[0], labels: tpl.Metadata.Labels}
	if _, ok := flags[p.role]; !ok {
		t.Fatalf("%s: role %q is not coordinator, ps or worker", key, p.role)
	}
	p.env = containerEnv(t, m, key, c, flags[p.role])
	p.ports = containerPorts(t, key, c, p.env, flags[p.role])
	p.mounts = containerMounts(t, m, key, c, tpl.Spec, w.claimTemplates())
	return p
}

// envRef matches the $(NAME) references Kubernetes expands in env values.
var envRef = regexp.MustCompile(`\$\(([A-Za-z0-9_]+)\)`)

// containerEnv checks a container's environment (every SKIPGRID_* a flag of the role, every
// $(NAME) defined before its use, ConfigMaps that exist, the optional secrets every node
// shares) and returns it.
func containerEnv(t *testing.T, m manifests, key string, c k8sContainer,
	fi map[string]flagInfo) map[string]string {
	t.Helper()
	env := make(map[string]string)
	secret := false
	for _, ef := range c.EnvFrom {
		if s := ef.SecretRef; s != nil {
			secret = true
			if s.Name != "skipgrid-secrets" || !s.Optional {
				t.Errorf("%s: secretRef %+v; want the optional skipgrid-secrets (the "+
					"manifests do not ship it; deploy/README.md shows how to make it)", key, *s)
			}
		}
		if ef.ConfigMapRef == nil {
			continue
		}
		var cm struct {
			Data map[string]string `yaml:"data"`
		}
		m.decode(t, "ConfigMap/"+ef.ConfigMapRef.Name, &cm)
		maps.Copy(env, cm.Data)
	}
	for _, e := range c.Env {
		for _, ref := range envRef.FindAllStringSubmatch(e.Value, -1) {
			if _, ok := env[ref[1]]; !ok {
				t.Errorf("%s: %s uses $(%s) before it is defined", key, e.Name, ref[1])
			}
		}
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			env[e.Name] = "fieldRef:" + e.ValueFrom.FieldRef.FieldPath
		default:
			env[e.Name] = e.Value
		}
	}
	if !secret {
		t.Errorf("%s: no envFrom secretRef skipgrid-secrets: the gossip key cannot reach "+
			"this node", key)
	}
	for name := range env {
		flag, ok := envFlag(name)
		if !ok {
			continue
		}
		if _, ok := fi[flag]; !ok {
			t.Errorf("%s: %s names --%s, which the container's role does not have", key,
				name, flag)
		}
	}
	return env
}

// containerPorts checks that each listen flag (grpc-addr, http-addr, gossip-addr) has a
// container port of the same number named for it (grpc, http, gossip), and that a
// NAME-udp port repeats NAME's number over UDP. It returns the ports by name.
func containerPorts(t *testing.T, key string, c k8sContainer, env map[string]string,
	fi map[string]flagInfo) map[string]string {
	t.Helper()
	ports := make(map[string]string)
	for _, p := range c.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = "TCP"
		}
		ports[p.Name] = strconv.Itoa(p.ContainerPort) + "/" + proto
	}
	for flag := range fi {
		name, ok := strings.CutSuffix(flag, "-addr")
		if !ok || flagValue(env, fi, flag) == "" {
			continue // not a listen flag, or one switched off
		}
		port := listenPort(t, env, fi, flag)
		if got := ports[name]; got != port+"/TCP" {
			t.Errorf("%s: --%s listens on port %s; container port %q is %q", key, flag, port,
				name, got)
		}
		if name == "gossip" && ports["gossip-udp"] != port+"/UDP" {
			t.Errorf("%s: gossip-udp is %q, want %s/UDP", key, ports["gossip-udp"], port)
		}
	}
	return ports
}

// containerMounts checks that every mount names a volume backed by an existing claim, or
// one of the workload's claim templates, and returns the mounts by path.
func containerMounts(t *testing.T, m manifests, key string, c k8sContainer,
	spec podSpec, templates []string) map[string]string {
	t.Helper()
	mounts := make(map[string]string)
	for _, vm := range c.VolumeMounts {
		i := slices.IndexFunc(spec.Volumes, func(v k8sVolume) bool { return v.Name == vm.Name })
		if i < 0 && slices.Contains(templates, vm.Name) {
			mounts[vm.MountPath] = "template:" + vm.Name
			if vm.ReadOnly {
				mounts[vm.MountPath] += ":ro"
			}
			continue
		}
		if i < 0 || spec.Volumes[i].PersistentVolumeClaim == nil {
			t.Errorf("%s: mount %s: no persistent volume named %q", key, vm.MountPath, vm.Name)
			continue
		}
		claim := spec.Volumes[i].PersistentVolumeClaim.ClaimName
		if _, ok := m["PersistentVolumeClaim/"+claim]; !ok {
			t.Errorf("%s: volume %s: no PersistentVolumeClaim %q", key, vm.Name, claim)
		}
		mounts[vm.MountPath] = "pvc:" + claim
		if vm.ReadOnly {
			mounts[vm.MountPath] += ":ro"
		}
	}
	return mounts
}

// checkService checks that a Service selects exactly one workload and that every target
// port is a port of that workload's container, with the same protocol.
func checkService(t *testing.T, m manifests, key string, pods map[string]podInfo) {
	t.Helper()
	var s k8sService
	m.decode(t, key, &s)
	var selected []string
	for wk, p := range pods {
		matches := len(s.Spec.Selector) > 0
		for k, v := range s.Spec.Selector {
			matches = matches && p.labels[k] == v
		}
		if matches {
			selected = append(selected, wk)
		}
	}
	if len(selected) != 1 {
		t.Fatalf("%s selects %q, want exactly one workload", key, selected)
	}
	p := pods[selected[0]]
	for _, sp := range s.Spec.Ports {
		proto := sp.Protocol
		if proto == "" {
			proto = "TCP"
		}
		if got := p.ports[sp.TargetPort]; got != strconv.Itoa(sp.Port)+"/"+proto {
			t.Errorf("%s: port %s (%d/%s) targets %q, which %s has as %q", key, sp.Name,
				sp.Port, proto, sp.TargetPort, selected[0], got)
		}
	}
}

// checkPSWiring checks the shards: the StatefulSet's serviceName is the headless Service
// ps, the shard count is the coordinator's --ps, each pod takes its name and --shard from
// its own identity, and it advertises the DNS name the headless Service gives it.
func checkPSWiring(t *testing.T, m manifests, pods map[string]podInfo) {
	t.Helper()
	var sts k8sWorkload
	m.decode(t, "StatefulSet/ps", &sts)
	var svc k8sService
	m.decode(t, "Service/"+sts.Spec.ServiceName, &svc)
	if svc.Spec.ClusterIP != "None" {
		t.Errorf("Service/%s: clusterIP %q; a StatefulSet's service must be headless (None)",
			sts.Spec.ServiceName, svc.Spec.ClusterIP)
	}
	coordPS := pods["Job/coordinator"].env["SKIPGRID_PS"]
	if sts.Spec.Replicas == nil || strconv.Itoa(*sts.Spec.Replicas) != coordPS {
		t.Errorf("StatefulSet/ps replicas %v, the coordinator's SKIPGRID_PS %q", sts.Spec.Replicas,
			coordPS)
	}

	ps := pods["StatefulSet/ps"]
	want := map[string]string{
		"SKIPGRID_NAME":  "fieldRef:metadata.name",
		"SKIPGRID_SHARD": "fieldRef:metadata.labels['apps.kubernetes.io/pod-index']",
		"SKIPGRID_ADVERTISE": "$(SKIPGRID_NAME)." + sts.Spec.ServiceName + ":" +
			strings.TrimSuffix(ps.ports["grpc"], "/TCP"),
	}
	for k, v := range want {
		if ps.env[k] != v {
			t.Errorf("StatefulSet/ps: %s %q, want %q", k, ps.env[k], v)
		}
	}
}

// checkPSCheckpoints checks that a restarted shard pod gets its checkpoints back: its
// --checkpoint-dir is on a writable mount of one of the StatefulSet's claim templates (a
// claim per pod that outlives it; a pod volume, or one claim for all shards, would not do),
// the pods' fsGroup lets the non-root shard write there, and deleting the StatefulSet
// deletes the claims, so that the next job does not restore this one's checkpoints.
func checkPSCheckpoints(t *testing.T, m manifests, pods map[string]podInfo) {
	t.Helper()
	var sts k8sWorkload
	m.decode(t, "StatefulSet/ps", &sts)
	ps := pods["StatefulSet/ps"]
	dir := ps.env["SKIPGRID_CHECKPOINT_DIR"]
	if !strings.HasPrefix(dir, "/") {
		t.Errorf("StatefulSet/ps: SKIPGRID_CHECKPOINT_DIR %q; want an absolute path on a "+
			"claim, or a restarted shard comes back empty", dir)
	} else if mount := mountFor(ps.mounts, dir); !strings.HasPrefix(mount, "template:") ||
		strings.HasSuffix(mount, ":ro") {
		t.Errorf("StatefulSet/ps: checkpoint dir %s is on %q, want a writable mount of a "+
			"volumeClaimTemplate (templates: %q)", dir, mount, sts.claimTemplates())
	}
	for _, ct := range sts.Spec.VolumeClaimTemplates {
		if !slices.Contains(ct.Spec.AccessModes, "ReadWriteOnce") {
			t.Errorf("StatefulSet/ps: claim template %s has access modes %q, want "+
				"ReadWriteOnce (one shard writes each claim)", ct.Metadata.Name,
				ct.Spec.AccessModes)
		}
	}
	if fs := sts.Spec.Template.Spec.SecurityContext.FSGroup; fs == nil || *fs == 0 {
		t.Errorf("StatefulSet/ps: no fsGroup: a fresh claim belongs to root and the shard, " +
			"not root, could not write its checkpoints")
	}
	if got := sts.Spec.PVCRetention.WhenDeleted; got != "Delete" {
		t.Errorf("StatefulSet/ps: persistentVolumeClaimRetentionPolicy.whenDeleted %q, want "+
			"Delete: the claims would outlive the job, and its checkpoints fail the next", got)
	}
}

// checkCoordinatorAddrs checks the addresses that shards and workers dial (the coordinator
// Service's grpc and gossip ports), the gossip address each pod advertises (its own IP),
// and that the coordinator and workers read the corpus from the same claim and the
// coordinator writes into a writable one.
func checkCoordinatorAddrs(t *testing.T, m manifests, pods map[string]podInfo) {
	t.Helper()
	var svc k8sService
	m.decode(t, "Service/coordinator", &svc)
	svcPort := func(target string) string {
		for _, p := range svc.Spec.Ports {
			if p.TargetPort == target {
				return strconv.Itoa(p.Port)
			}
		}
		return "none"
	}
	for _, key := range []string{"StatefulSet/ps", "Job/worker"} {
		env := pods[key].env
		want := map[string]string{
			"SKIPGRID_COORDINATOR": net.JoinHostPort("coordinator", svcPort("grpc")),
			"SKIPGRID_JOIN":        net.JoinHostPort("coordinator", svcPort("gossip")),
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("%s: %s %q, want %q", key, k, env[k], v)
			}
		}
	}
	for key, p := range pods {
		if p.env["POD_IP"] != "fieldRef:status.podIP" ||
			p.env["SKIPGRID_GOSSIP_ADVERTISE"] != "$(POD_IP):"+listenPort(t, p.env,
				roleFlags(t)[p.role], "gossip-addr") {
			t.Errorf("%s: gossip must advertise the pod IP ($(POD_IP) from status.podIP) "+
				"on the gossip port", key)
		}
	}

	coord, workers := pods["Job/coordinator"], pods["Job/worker"]
	if mount := mountFor(coord.mounts, coord.env["SKIPGRID_OUT"]); !strings.HasPrefix(mount,
		"pvc:skipgrid-out") || strings.HasSuffix(mount, ":ro") {
		t.Errorf("Job/coordinator: SKIPGRID_OUT %q is on %q, want the writable claim "+
			"skipgrid-out", coord.env["SKIPGRID_OUT"], mount)
	}
	for _, path := range strings.Fields(coord.env["SKIPGRID_CORPUS"]) {
		cm, wm := mountFor(coord.mounts, path), mountFor(workers.mounts, path)
		if cm == "" || cm != wm {
			t.Errorf("corpus %s: the coordinator reads it from %q, the workers from %q", path,
				cm, wm)
		}
	}
}

// mountFor returns the mount that holds path, or "".
func mountFor(mounts map[string]string, path string) string {
	for mp, v := range mounts {
		if path == mp || strings.HasPrefix(path, mp+"/") {
			return v
		}
	}
	return ""
}

// TestK8sKustomize builds the manifests with `kubectl kustomize` where kubectl is installed
// (it needs no cluster) and checks it yields every object once.
func TestK8sKustomize(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed; the manifests are still checked by TestK8sManifests")
	}
	out, err := exec.Command(kubectl, "kustomize", k8sDir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v", k8sDir, err)
	}
	var kinds []string
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o k8sObject
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("kustomize output: %v", err)
		}
		kinds = append(kinds, o.Kind+"/"+o.Metadata.Name)
	}
	slices.Sort(kinds)
	if diff := cmp.Diff(k8sObjects, kinds); diff != "" {
		t.Errorf("kustomize objects (-want +got):\n%s", diff)
	}
}
