package deploy

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"go.yaml.in/yaml/v3"
)

// The test runs in deploy/; the repository root is its parent.
const repoRoot = ".."

var (
	// helpFlagRE matches one flag of kingpin's help output: "--name=DEFAULT" or "--[no-]name".
	helpFlagRE = regexp.MustCompile(`(?m)^\s+(?:-[A-Za-z], )?--(\[no-\])?([A-Za-z0-9][A-Za-z0-9._-]*)`)
	// listenDefaultRE finds the default listen address in the daemon's help.
	listenDefaultRE = regexp.MustCompile(`--web\.listen-address=(\S+)`)
	// goDirectiveRE reads go.mod's go directive.
	goDirectiveRE = regexp.MustCompile(`(?m)^go (\d+)\.(\d+)(?:\.\d+)?\s*$`)
	// golangImageRE reads the Go version (and variant) of an official golang image reference.
	golangImageRE = regexp.MustCompile(`^(?:docker\.io/(?:library/)?)?golang:(\d+)\.(\d+)(?:\.\d+)?(?:-(\S+))?$`)
)

// ---------------------------------------------------------------------------------------------
// The real command line

// cli runs the inferprobe binary built from this repository, so that the deployment files are
// checked against the command line and configuration loader as shipped, not against a copy of
// their rules.
type cli struct{ bin string }

// buildCLI builds inferprobe into a temporary directory.
func buildCLI(t *testing.T) cli {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "inferprobe")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return cli{bin: bin}
}

// run runs the binary with args and extra environment variables; it returns stdout, stderr and
// the exit code.
func (c cli) run(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("running %s %q: %v", c.bin, args, err)
	}
	return out.String(), errOut.String(), code
}

// flags returns the long flags the command accepts (its own and the global ones), read from
// `inferprobe help <command>`. A boolean flag is listed as name and no-name.
func (c cli) flags(t *testing.T, command string) map[string]bool {
	t.Helper()
	out, errOut, code := c.run(t, nil, append([]string{"help"}, strings.Fields(command)...)...)
	if code != 0 {
		t.Fatalf("inferprobe help %s: exit code %d\n%s", command, code, errOut)
	}
	flags := map[string]bool{}
	for _, m := range helpFlagRE.FindAllStringSubmatch(out, -1) {
		flags[m[2]] = true
		if m[1] != "" {
			flags["no-"+m[2]] = true
		}
	}
	// Guards the regexp: a help text it cannot read must not pass every flag as unknown or,
	// worse, as known.
	if !flags["help"] || !flags["log.level"] {
		t.Fatalf("could not read the flags of `inferprobe help %s`:\n%s", command, out)
	}
	return flags
}

// defaultListenAddress is the daemon's default --web.listen-address.
func (c cli) defaultListenAddress(t *testing.T) string {
	t.Helper()
	out, _, _ := c.run(t, nil, "help", "daemon")
	m := listenDefaultRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no default --web.listen-address in `inferprobe help daemon`:\n%s", out)
	}
	return m[1]
}

// ---------------------------------------------------------------------------------------------
// Manifests

// doc is one YAML document of a file under deploy/.
type doc struct {
	file string // path relative to deploy/
	n    int    // index of the document in its file
	obj  map[string]any
}

func (d doc) kind() string { return str(d.obj, "kind") }
func (d doc) name() string { return str(d.obj, "metadata", "name") }
func (d doc) String() string {
	return fmt.Sprintf("%s[%d] %s/%s", d.file, d.n, d.kind(), d.name())
}

// get walks nested mappings; it returns nil where the path does not exist.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any, keys ...string) string {
	s, _ := get(v, keys...).(string)
	return s
}

func mapping(v any, keys ...string) map[string]any {
	m, _ := get(v, keys...).(map[string]any)
	return m
}

func list(v any, keys ...string) []any {
	l, _ := get(v, keys...).([]any)
	return l
}

// parseDocs decodes every document of a multi-document YAML file. Empty documents are skipped;
// a document that is not a mapping is an error.
func parseDocs(file string, data []byte) ([]doc, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []doc
	for n := 0; ; n++ {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, n, err)
		}
		if v == nil {
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: document %d is a %T, not a mapping", file, n, v)
		}
		docs = append(docs, doc{file: file, n: n, obj: m})
	}
}

// manifests holds every YAML document under deploy/, by file.
type manifests map[string][]doc

// loadManifests parses every .yaml and .yml file under deploy/ but deploy/tools (the
// Collector builder's manifest there is no Kubernetes object).
func loadManifests(t *testing.T) manifests {
	t.Helper()
	all := manifests{}
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && filepath.ToSlash(p) == "tools" {
			return filepath.SkipDir
		}
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		docs, err := parseDocs(filepath.ToSlash(p), data)
		if err != nil {
			return err
		}
		all[filepath.ToSlash(p)] = docs
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("no YAML files found under deploy/")
	}
	return all
}

// dirs returns the directories holding YAML files, sorted.
func (m manifests) dirs() []string {
	var dirs []string
	for f := range m {
		if d := path.Dir(f); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	slices.Sort(dirs)
	return dirs
}

// filesIn returns the YAML files directly in dir, sorted.
func (m manifests) filesIn(dir string) []string {
	var files []string
	for f := range m {
		if path.Dir(f) == dir {
			files = append(files, f)
		}
	}
	slices.Sort(files)
	return files
}

// kustomization is what the test uses of a kustomization.yaml.
type kustomization struct {
	dir       string
	component bool     // a kustomize Component: applied on top of a kustomization that lists it
	resources []string // relative to dir: files, or directories holding a kustomization
	patches   []string // files, relative to dir
	images    []string // image names the images transformer replaces
}

// kustomizationOf returns dir's kustomization, if it has one.
func (m manifests) kustomizationOf(t *testing.T, dir string) (kustomization, bool) {
	t.Helper()
	for _, f := range []string{"kustomization.yaml", "kustomization.yml"} {
		docs, ok := m[path.Join(dir, f)]
		if !ok {
			continue
		}
		if len(docs) != 1 {
			t.Fatalf("%s: %d documents, want 1", path.Join(dir, f), len(docs))
		}
		obj := docs[0].obj
		k := kustomization{dir: dir, component: str(obj, "kind") == "Component"}
		for _, r := range list(obj, "resources") {
			s, _ := r.(string)
			k.resources = append(k.resources, s)
		}
		for _, p := range list(obj, "patches") {
			if s := str(p, "path"); s != "" {
				k.patches = append(k.patches, s)
			}
		}
		for _, p := range list(obj, "patchesStrategicMerge") {
			if s, ok := p.(string); ok {
				k.patches = append(k.patches, s)
			}
		}
		for _, i := range list(obj, "images") {
			k.images = append(k.images, str(i, "name"))
		}
		return k, true
	}
	return kustomization{}, false
}

// isKustomizeKind reports whether a document is kustomize's own rather than a Kubernetes object.
func isKustomizeKind(d doc) bool {
	return strings.HasPrefix(str(d.obj, "apiVersion"), "kustomize.config.k8s.io/")
}

// rawUnit returns the objects a directory defines before kustomize runs: every manifest file in
// it (optional ones its kustomization leaves out included, so that they are checked against the
// rest), and the units of the directories it lists as resources. Patches are left out: they are
// fragments, checked in their rendered form by TestKustomizeOutput. A Component is checked with
// the kustomization of the directory it sits in, the one it is written for.
func (m manifests) rawUnit(t *testing.T, dir string, visiting []string) []doc {
	t.Helper()
	if slices.Contains(visiting, dir) {
		t.Fatalf("kustomization cycle: %v -> %s", visiting, dir)
	}
	visiting = append(visiting, dir)
	k, hasK := m.kustomizationOf(t, dir)
	var unit []doc
	for _, f := range m.filesIn(dir) {
		if hasK && slices.Contains(k.patches, path.Base(f)) {
			continue
		}
		for _, d := range m[f] {
			if !isKustomizeKind(d) {
				unit = append(unit, d)
			}
		}
	}
	for _, r := range k.resources {
		if p := path.Clean(path.Join(dir, r)); len(m.filesIn(p)) > 0 {
			unit = append(unit, m.rawUnit(t, p, visiting)...)
		}
	}
	if k.component {
		if _, ok := m.kustomizationOf(t, path.Dir(dir)); ok {
			unit = append(unit, m.rawUnit(t, path.Dir(dir), visiting)...)
		}
	}
	return unit
}

// ---------------------------------------------------------------------------------------------
// Pods and containers

// pod is a pod template (or a Pod) of a unit, with the object that holds it.
type pod struct {
	owner  doc
	labels map[string]any
	spec   map[string]any
}

// pods returns every pod template of a unit.
func pods(unit []doc) []pod {
	var ps []pod
	for _, d := range unit {
		var tmpl map[string]any
		switch d.kind() {
		case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
			tmpl = mapping(d.obj, "spec", "template")
		case "CronJob":
			tmpl = mapping(d.obj, "spec", "jobTemplate", "spec", "template")
		case "Pod":
			tmpl = d.obj
		default:
			continue
		}
		ps = append(ps, pod{owner: d, labels: mapping(tmpl, "metadata", "labels"), spec: mapping(tmpl, "spec")})
	}
	return ps
}

// containers returns the pod's containers and init containers.
func (p pod) containers() []map[string]any {
	var cs []map[string]any
	for _, key := range []string{"initContainers", "containers"} {
		for _, c := range list(p.spec, key) {
			if m, ok := c.(map[string]any); ok {
				cs = append(cs, m)
			}
		}
	}
	return cs
}

// isInferprobe reports whether a container runs inferprobe: by name, or by the image's
// repository name (whatever the registry and tag).
func isInferprobe(c map[string]any) bool {
	if str(c, "name") == "inferprobe" {
		return true
	}
	img := str(c, "image")
	img = img[strings.LastIndex(img, "/")+1:]
	if i := strings.IndexAny(img, ":@"); i >= 0 {
		img = img[:i]
	}
	return img == "inferprobe"
}

// subset reports whether every key and value of sel is in labels (an empty selector selects
// nothing here: every selector in these manifests must say what it selects).
func subset(sel, labels map[string]any) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// containerPort resolves a probe's or Service's target port (a name or a number) against a
// container's ports; it returns the port number, or 0 when it does not resolve.
func containerPort(c map[string]any, port any) int {
	for _, p := range list(c, "ports") {
		n, _ := get(p, "containerPort").(int)
		switch want := port.(type) {
		case string:
			if str(p, "name") == want {
				return n
			}
		case int:
			if n == want {
				return n
			}
		}
	}
	return 0
}

// find returns the objects of a kind and name in a unit.
func find(unit []doc, kind, name string) []doc {
	var out []doc
	for _, d := range unit {
		if d.kind() == kind && d.name() == name {
			out = append(out, d)
		}
	}
	return out
}

// ---------------------------------------------------------------------------------------------
// Checks of a unit

// checkUnit checks the objects of one unit against each other and every inferprobe container
// in it against the real command line. It returns the ConfigMap keys inferprobe containers read
// their configuration from ("name/key").
func checkUnit(t *testing.T, c cli, unit []doc) map[string]bool {
	t.Helper()
	configs := map[string]bool{}
	ps := pods(unit)
	for _, p := range ps {
		checkPod(t, unit, p)
		for _, ctr := range p.containers() {
			if isInferprobe(ctr) {
				if cfg := checkInferprobe(t, c, unit, p, ctr); cfg != "" {
					configs[cfg] = true
				}
			}
		}
	}
	for _, d := range unit {
		switch d.kind() {
		case "Service":
			checkService(t, d, ps)
		case "ServiceMonitor":
			checkServiceMonitor(t, d, unit)
		case "PodMonitor":
			checkPodMonitor(t, d, ps)
		}
	}
	return configs
}

// checkPod checks a pod template's references: selector, volumes, claims and probe ports.
func checkPod(t *testing.T, unit []doc, p pod) {
	t.Helper()
	// A Job's selector is generated from its pods unless manualSelector is set.
	if k := p.owner.kind(); k != "Pod" && (k != "Job" || get(p.owner.obj, "spec", "manualSelector") == true) {
		if sel := mapping(p.owner.obj, "spec", "selector", "matchLabels"); !subset(sel, p.labels) {
			t.Errorf("%s: selector %v does not select its own pod template labels %v", p.owner, sel, p.labels)
		}
	}
	volumes := map[string]bool{}
	for _, v := range list(p.spec, "volumes") {
		volumes[str(v, "name")] = true
		if optional, _ := get(v, "configMap", "optional").(bool); !optional {
			if name := str(v, "configMap", "name"); name != "" && len(find(unit, "ConfigMap", name)) == 0 {
				t.Errorf("%s: volume %q: ConfigMap %q is not defined", p.owner, str(v, "name"), name)
			}
		}
		if optional, _ := get(v, "secret", "optional").(bool); !optional {
			if name := str(v, "secret", "secretName"); name != "" && len(find(unit, "Secret", name)) == 0 {
				t.Errorf("%s: volume %q: Secret %q is not defined", p.owner, str(v, "name"), name)
			}
		}
	}
	claims := map[string]bool{}
	for _, rc := range list(p.spec, "resourceClaims") {
		claims[str(rc, "name")] = true
		if tmpl := str(rc, "resourceClaimTemplateName"); tmpl != "" && len(find(unit, "ResourceClaimTemplate", tmpl)) == 0 {
			t.Errorf("%s: resource claim %q: ResourceClaimTemplate %q is not defined", p.owner, str(rc, "name"), tmpl)
		}
	}
	for _, ctr := range p.containers() {
		name := str(ctr, "name")
		for _, vm := range list(ctr, "volumeMounts") {
			if !volumes[str(vm, "name")] {
				t.Errorf("%s: container %q mounts undefined volume %q", p.owner, name, str(vm, "name"))
			}
		}
		for _, cl := range list(ctr, "resources", "claims") {
			if !claims[str(cl, "name")] {
				t.Errorf("%s: container %q uses undefined resource claim %q", p.owner, name, str(cl, "name"))
			}
		}
		for _, probe := range []string{"startupProbe", "readinessProbe", "livenessProbe"} {
			for _, handler := range []string{"httpGet", "tcpSocket", "grpc"} {
				port := get(ctr, probe, handler, "port")
				if port != nil && containerPort(ctr, port) == 0 {
					t.Errorf("%s: container %q: %s port %v is not one of its ports", p.owner, name, probe, port)
				}
			}
		}
	}
}

// checkService checks that a Service selects a pod of its unit and that its target ports exist.
func checkService(t *testing.T, svc doc, ps []pod) {
	t.Helper()
	sel := mapping(svc.obj, "spec", "selector")
	var matched []pod
	for _, p := range ps {
		if subset(sel, p.labels) {
			matched = append(matched, p)
		}
	}
	if len(matched) == 0 {
		t.Errorf("%s: selector %v matches no pod template", svc, sel)
		return
	}
	for _, sp := range list(svc.obj, "spec", "ports") {
		target := get(sp, "targetPort")
		if target == nil {
			target = get(sp, "port")
		}
		for _, p := range matched {
			found := false
			for _, ctr := range p.containers() {
				found = found || containerPort(ctr, target) != 0
			}
			if !found {
				t.Errorf("%s: port %q: target port %v is not a container port of %s", svc, str(sp, "name"), target, p.owner)
			}
		}
	}
}

// checkServiceMonitor checks that a ServiceMonitor selects a Service of its unit by labels and
// scrapes one of its named ports.
func checkServiceMonitor(t *testing.T, sm doc, unit []doc) {
	t.Helper()
	sel := mapping(sm.obj, "spec", "selector", "matchLabels")
	var svcs []doc
	for _, d := range unit {
		if d.kind() == "Service" && subset(sel, mapping(d.obj, "metadata", "labels")) {
			svcs = append(svcs, d)
		}
	}
	if len(svcs) == 0 {
		t.Errorf("%s: selector %v matches no Service's labels", sm, sel)
		return
	}
	for _, ep := range list(sm.obj, "spec", "endpoints") {
		port := str(ep, "port")
		for _, svc := range svcs {
			if !slices.ContainsFunc(list(svc.obj, "spec", "ports"), func(p any) bool { return str(p, "name") == port }) {
				t.Errorf("%s: endpoint port %q is not a port name of %s", sm, port, svc)
			}
		}
	}
}

// checkPodMonitor checks that a PodMonitor selects a pod template of its unit by labels and
// scrapes a named port of one of its containers.
func checkPodMonitor(t *testing.T, pm doc, ps []pod) {
	t.Helper()
	sel := mapping(pm.obj, "spec", "selector", "matchLabels")
	var matched []pod
	for _, p := range ps {
		if subset(sel, p.labels) {
			matched = append(matched, p)
		}
	}
	if len(matched) == 0 {
		t.Errorf("%s: selector %v matches no pod template", pm, sel)
		return
	}
	for _, ep := range list(pm.obj, "spec", "podMetricsEndpoints") {
		port := str(ep, "port")
		for _, p := range matched {
			found := false
			for _, ctr := range p.containers() {
				found = found || containerPort(ctr, port) != 0
			}
			if !found {
				t.Errorf("%s: endpoint port %q is not a container port name of %s", pm, port, p.owner)
			}
		}
	}
}

// flagValues returns the values given to --name in args ("--name=v" or "--name v").
func flagValues(args []string, name string) []string {
	var vals []string
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			vals = append(vals, v)
		} else if a == "--"+name && i+1 < len(args) {
			vals = append(vals, args[i+1])
		}
	}
	return vals
}

// checkInferprobe checks one inferprobe container: its arguments against the real command line,
// its ports and probes against the listen address, its hardening, and the configuration it
// reads against `inferprobe check-config`. It returns the configuration's "ConfigMap/key".
func checkInferprobe(t *testing.T, c cli, unit []doc, p pod, ctr map[string]any) string {
	t.Helper()
	where := fmt.Sprintf("%s: container %q", p.owner, str(ctr, "name"))

	var args []string
	if cmd := list(ctr, "command"); cmd != nil {
		// The image's ENTRYPOINT is /bin/inferprobe; a command must name the same binary.
		if len(cmd) == 0 || cmd[0] != "/bin/inferprobe" {
			t.Errorf("%s: command %v does not run /bin/inferprobe", where, cmd)
			return ""
		}
		for _, a := range cmd[1:] {
			s, _ := a.(string)
			args = append(args, s)
		}
	}
	for _, a := range list(ctr, "args") {
		s, ok := a.(string)
		if !ok {
			t.Errorf("%s: argument %v is a %T, not a string", where, a, a)
			return ""
		}
		args = append(args, s)
	}

	// The command is every leading word that is not a flag: "run", "report merge".
	var words []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") || strings.HasPrefix(a, "/") {
			break
		}
		words = append(words, a)
	}
	command := "daemon"
	if len(words) > 0 {
		command = strings.Join(words, " ")
	}
	flags := c.flags(t, command)
	for _, a := range args {
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "=")
		if !flags[name] {
			t.Errorf("%s: flag --%s is not a flag of `inferprobe %s`", where, name, command)
		}
	}
	// kingpin's own parser, with the arguments as given: --help stops it before anything runs,
	// after it has rejected unknown commands and flags.
	if _, errOut, code := c.run(t, nil, append(slices.Clone(args), "--help")...); code != 0 {
		t.Errorf("%s: inferprobe rejects the arguments %q (exit code %d): %s", where, args, code, errOut)
	}
	if command == "run" {
		// A one-shot run: no port, no probes; its configuration is checked like the daemon's.
		checkHardening(t, where, p, ctr)
		if paths := flagValues(args, "config.file"); len(paths) == 1 {
			return checkConfig(t, c, unit, p, ctr, where, paths[0])
		}
		t.Errorf("%s: a run needs exactly one --config.file", where)
		return ""
	}
	if command != "daemon" {
		return ""
	}

	// The port the daemon listens on must be the container port the probes and Services use.
	listen := c.defaultListenAddress(t)
	if vals := flagValues(args, "web.listen-address"); len(vals) > 0 {
		listen = vals[0]
	}
	_, portStr, err := splitHostPort(listen)
	if err != nil {
		t.Errorf("%s: listen address %q: %v", where, listen, err)
		return ""
	}
	port, _ := strconv.Atoi(portStr)
	if containerPort(ctr, port) == 0 {
		t.Errorf("%s: the daemon listens on %s but no container port is %d", where, listen, port)
	}
	for probe, want := range map[string]string{"readinessProbe": "/-/ready", "livenessProbe": "/-/healthy"} {
		if got := str(ctr, probe, "httpGet", "path"); got != want {
			t.Errorf("%s: %s path %q, want %q", where, probe, got, want)
		}
		if got := containerPort(ctr, get(ctr, probe, "httpGet", "port")); got != port {
			t.Errorf("%s: %s goes to port %d, the daemon listens on %d", where, probe, got, port)
		}
	}

	checkHardening(t, where, p, ctr)

	paths := flagValues(args, "config.file")
	if len(paths) != 1 {
		// Without a file the daemon probes its embedded simulator: a demo, not a deployment.
		t.Errorf("%s: want exactly one --config.file, got %q", where, paths)
		return ""
	}
	return checkConfig(t, c, unit, p, ctr, where, paths[0])
}

// splitHostPort splits a listen address such as ":9788" or "[::]:9788".
func splitHostPort(addr string) (host, port string, err error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", errors.New("no port")
	}
	if _, err := strconv.Atoi(addr[i+1:]); err != nil {
		return "", "", fmt.Errorf("port %q is not a number", addr[i+1:])
	}
	return addr[:i], addr[i+1:], nil
}

// checkHardening checks the container runs as it is documented to: non-root, read-only root
// file system, no privilege escalation, no capabilities, the runtime's seccomp profile, and with
// requests and limits.
func checkHardening(t *testing.T, where string, p pod, ctr map[string]any) {
	t.Helper()
	either := func(keys ...string) any {
		if v := get(ctr, append([]string{"securityContext"}, keys...)...); v != nil {
			return v
		}
		return get(p.spec, append([]string{"securityContext"}, keys...)...)
	}
	if v, _ := either("runAsNonRoot").(bool); !v {
		t.Errorf("%s: runAsNonRoot is not true", where)
	}
	if uid, ok := either("runAsUser").(int); ok && uid == 0 {
		t.Errorf("%s: runs as uid 0", where)
	}
	if v, _ := either("seccompProfile", "type").(string); v != "RuntimeDefault" && v != "Localhost" {
		t.Errorf("%s: seccompProfile.type %q, want RuntimeDefault", where, v)
	}
	if v, ok := get(ctr, "securityContext", "allowPrivilegeEscalation").(bool); !ok || v {
		t.Errorf("%s: allowPrivilegeEscalation is not false", where)
	}
	if v, _ := get(ctr, "securityContext", "readOnlyRootFilesystem").(bool); !v {
		t.Errorf("%s: readOnlyRootFilesystem is not true", where)
	}
	if !slices.Contains(list(ctr, "securityContext", "capabilities", "drop"), any("ALL")) {
		t.Errorf("%s: capabilities.drop does not hold ALL", where)
	}
	for _, kind := range []string{"requests", "limits"} {
		for _, res := range []string{"cpu", "memory"} {
			if get(ctr, "resources", kind, res) == nil {
				t.Errorf("%s: no resources.%s.%s", where, kind, res)
			}
		}
	}
}

// fileSource is where a file inside a container comes from: a key of a ConfigMap or Secret.
type fileSource struct{ kind, name, key string }

// resolveFile finds which ConfigMap or Secret key a container sees at file (an absolute path),
// through its volume mounts.
func resolveFile(p pod, ctr map[string]any, file string) (fileSource, error) {
	var mount map[string]any
	for _, vm := range list(ctr, "volumeMounts") {
		mp := path.Clean(str(vm, "mountPath"))
		if file == mp || strings.HasPrefix(file, mp+"/") {
			if mount == nil || len(mp) > len(path.Clean(str(mount, "mountPath"))) {
				mount = vm.(map[string]any)
			}
		}
	}
	if mount == nil {
		return fileSource{}, fmt.Errorf("%s is not under any volume mount", file)
	}
	mp := path.Clean(str(mount, "mountPath"))
	rel := strings.TrimPrefix(strings.TrimPrefix(file, mp), "/")
	if sub := str(mount, "subPath"); sub != "" {
		if rel != "" {
			return fileSource{}, fmt.Errorf("%s: mount %s is a single file", file, mp)
		}
		rel = sub
	}
	var vol map[string]any
	for _, v := range list(p.spec, "volumes") {
		if str(v, "name") == str(mount, "name") {
			vol = v.(map[string]any)
		}
	}
	var src fileSource
	var items []any
	switch {
	case mapping(vol, "configMap") != nil:
		src = fileSource{kind: "ConfigMap", name: str(vol, "configMap", "name")}
		items = list(vol, "configMap", "items")
	case mapping(vol, "secret") != nil:
		src = fileSource{kind: "Secret", name: str(vol, "secret", "secretName")}
		items = list(vol, "secret", "items")
	default:
		return fileSource{}, fmt.Errorf("%s: volume %q is neither a ConfigMap nor a Secret", file, str(mount, "name"))
	}
	src.key = rel
	if items != nil {
		src.key = ""
		for _, it := range items {
			if str(it, "path") == rel {
				src.key = str(it, "key")
			}
		}
		if src.key == "" {
			return fileSource{}, fmt.Errorf("%s: no item of volume %q has path %q", file, str(mount, "name"), rel)
		}
	}
	return src, nil
}

// content returns the value of a ConfigMap or Secret key defined in the unit.
func content(unit []doc, src fileSource) (string, error) {
	objs := find(unit, src.kind, src.name)
	if len(objs) != 1 {
		return "", fmt.Errorf("%d %ss named %q, want 1", len(objs), src.kind, src.name)
	}
	obj := objs[0].obj
	if v, ok := get(obj, "data", src.key).(string); ok {
		if src.kind == "Secret" {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return "", fmt.Errorf("Secret %q: data.%s is not base64: %w", src.name, src.key, err)
			}
			return string(b), nil
		}
		return v, nil
	}
	if v, ok := get(obj, "stringData", src.key).(string); ok && src.kind == "Secret" {
		return v, nil
	}
	return "", fmt.Errorf("%s %q has no key %q", src.kind, src.name, src.key)
}

// isFileField reports whether a configuration key names a file the daemon reads.
func isFileField(key string) bool {
	switch key {
	case "api_key_file", "ca_file", "cert_file", "key_file":
		return true
	}
	return false
}

// walkPairs calls fn for every key/value pair of every mapping under n. Aliases are not
// followed: the anchored node they point to is walked where it is defined.
func walkPairs(n *yaml.Node, fn func(k, v *yaml.Node) error) error {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			if err := walkPairs(c, fn); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := fn(n.Content[i], n.Content[i+1]); err != nil {
				return err
			}
			if err := walkPairs(n.Content[i+1], fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkConfig runs `inferprobe check-config` on the configuration the container reads at
// cfgPath, as the container would see it. It returns the configuration's "ConfigMap/key".
func checkConfig(t *testing.T, c cli, unit []doc, p pod, ctr map[string]any, where, cfgPath string) string {
	t.Helper()
	if !path.IsAbs(cfgPath) {
		t.Errorf("%s: --config.file=%s is not absolute (the image has no working directory of its own)", where, cfgPath)
		return ""
	}
	src, err := resolveFile(p, ctr, cfgPath)
	if err != nil {
		t.Errorf("%s: --config.file: %v", where, err)
		return ""
	}
	if src.kind != "ConfigMap" {
		t.Errorf("%s: --config.file comes from a %s, want a ConfigMap", where, src.kind)
	}
	text, err := content(unit, src)
	if err != nil {
		t.Errorf("%s: --config.file: %v", where, err)
		return ""
	}

	// The files the configuration names (API keys, TLS files) are paths inside the container,
	// mounted from Secrets or ConfigMaps. Each is resolved through the container's mounts to the
	// object and key it comes from, its content is written to a temporary file, and the path in
	// the configuration is rewritten to that file; a reference that does not resolve is an
	// error, as it would be in the cluster. The API key is the Secret's placeholder value (no
	// real key is in the repository): check-config checks its form, not its validity.
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Errorf("%s: %s: %v", where, cfgPath, err)
		return ""
	}
	dir := t.TempDir()
	var env []string
	n := 0
	err = walkPairs(&doc, func(k, v *yaml.Node) error {
		if k.Value == "api_key_env" && v.Kind == yaml.ScalarNode {
			if !slices.ContainsFunc(list(ctr, "env"), func(e any) bool { return str(e, "name") == v.Value }) {
				return fmt.Errorf("api_key_env %s (line %d): the container sets no such variable", v.Value, v.Line)
			}
			env = append(env, v.Value+"=dummy-key-for-check-config")
			return nil
		}
		if !isFileField(k.Value) || v.Kind != yaml.ScalarNode || v.Value == "" {
			return nil
		}
		inCtr := v.Value
		if !path.IsAbs(inCtr) {
			inCtr = path.Join(path.Dir(cfgPath), inCtr) // relative to the configuration file
		}
		fsrc, err := resolveFile(p, ctr, inCtr)
		if err != nil {
			return fmt.Errorf("%s (line %d): %w", k.Value, v.Line, err)
		}
		data, err := content(unit, fsrc)
		if err != nil {
			return fmt.Errorf("%s (line %d): %w", k.Value, v.Line, err)
		}
		n++
		local := filepath.Join(dir, fmt.Sprintf("file-%d", n))
		if err := os.WriteFile(local, []byte(data), 0o600); err != nil {
			return err
		}
		v.Value = local
		return nil
	})
	if err != nil {
		t.Errorf("%s: %s: %v", where, cfgPath, err)
		return ""
	}
	rewritten, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(dir, path.Base(cfgPath))
	if err := os.WriteFile(local, rewritten, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := c.run(t, env, "check-config", local)
	if code != 0 || !strings.Contains(out, "SUCCESS") {
		t.Errorf("%s: inferprobe check-config on %s/%s (exit code %d):\n%s%s", where, src.name, src.key, code, out, errOut)
	}
	return src.name + "/" + src.key
}

// ---------------------------------------------------------------------------------------------
// Tests of the manifests

func TestManifestsAreKubernetesObjects(t *testing.T) {
	all := loadManifests(t)
	kinds := map[string]int{}
	for f, docs := range all {
		if len(docs) == 0 {
			t.Errorf("%s: no documents", f)
		}
		for _, d := range docs {
			if str(d.obj, "apiVersion") == "" || d.kind() == "" {
				t.Errorf("%s: apiVersion and kind are required", d)
			}
			if !isKustomizeKind(d) && d.name() == "" {
				t.Errorf("%s: metadata.name is required", d)
			}
			kinds[d.kind()]++
		}
	}
	// What docs/deploy.md describes must be there, so an empty or half-read tree cannot pass.
	for _, k := range []string{"Kustomization", "Component", "Namespace", "ConfigMap", "Secret", "Deployment", "Service", "ServiceMonitor", "PrometheusRule", "ResourceClaimTemplate"} {
		if kinds[k] == 0 {
			t.Errorf("no %s under deploy/", k)
		}
	}
}

func TestKustomizationReferences(t *testing.T) {
	all := loadManifests(t)
	found := 0
	for _, dir := range all.dirs() {
		k, ok := all.kustomizationOf(t, dir)
		if !ok {
			continue
		}
		found++
		for _, r := range k.resources {
			p := path.Clean(path.Join(dir, r))
			_, isFile := all[p]
			_, isKDir := all.kustomizationOf(t, p)
			if !isFile && !isKDir {
				t.Errorf("%s: resource %q is neither a manifest file nor a directory with a kustomization", dir, r)
			}
		}
		unit := all.rawUnit(t, dir, nil)
		for _, pf := range k.patches {
			docs, ok := all[path.Join(dir, pf)]
			if !ok {
				t.Errorf("%s: patch %q does not exist", dir, pf)
				continue
			}
			for _, d := range docs {
				if len(find(unit, d.kind(), d.name())) == 0 {
					t.Errorf("%s: patch %s targets nothing the kustomization defines", dir, d)
				}
			}
		}
		// An images entry that names no container image silently does nothing.
		for _, img := range k.images {
			used := false
			for _, p := range pods(unit) {
				for _, c := range p.containers() {
					used = used || str(c, "image") == img || strings.HasPrefix(str(c, "image"), img+":")
				}
			}
			if !used {
				t.Errorf("%s: images entry %q matches no container image", dir, img)
			}
		}
	}
	if found == 0 {
		t.Fatal("no kustomization under deploy/")
	}
}

func TestManifestsAgainstCLI(t *testing.T) {
	all := loadManifests(t)
	c := buildCLI(t)
	used := map[string]bool{}
	for _, dir := range all.dirs() {
		t.Run(dir, func(t *testing.T) {
			for cfg := range checkUnit(t, c, all.rawUnit(t, dir, nil)) {
				used[cfg] = true
			}
		})
	}
	if len(used) == 0 {
		t.Fatal("no inferprobe container reads a configuration from a ConfigMap")
	}
	// Every inferprobe configuration in a ConfigMap is read by some container, so none is an
	// unchecked example that drifts.
	for _, docs := range all {
		for _, d := range docs {
			if d.kind() != "ConfigMap" {
				continue
			}
			for key := range mapping(d.obj, "data") {
				if (strings.HasSuffix(key, ".yml") || strings.HasSuffix(key, ".yaml")) && !used[d.name()+"/"+key] {
					t.Errorf("%s: key %q is not the --config.file of any inferprobe container", d, key)
				}
			}
		}
	}
}

// kustomizeBuild is one thing `kustomize build` renders: a kustomization, or a Component on top
// of the kustomization of the directory it sits in (a temporary overlay: kustomize refuses an
// overlay inside its base's directory).
type kustomizeBuild struct {
	name string // the directory under deploy/
	dir  string // what to build
}

// kustomizeBuilds returns every kustomization and Component under deploy/ as a build.
func kustomizeBuilds(t *testing.T, all manifests) []kustomizeBuild {
	t.Helper()
	var builds []kustomizeBuild
	for _, dir := range all.dirs() {
		k, ok := all.kustomizationOf(t, dir)
		if !ok {
			continue
		}
		if !k.component {
			builds = append(builds, kustomizeBuild{name: dir, dir: dir})
			continue
		}
		base := path.Dir(dir)
		if _, ok := all.kustomizationOf(t, base); !ok {
			t.Fatalf("%s: a Component whose directory's parent has no kustomization to apply it to", dir)
		}
		overlay := t.TempDir()
		rel := func(p string) string {
			abs, err := filepath.Abs(p)
			if err != nil {
				t.Fatal(err)
			}
			r, err := filepath.Rel(overlay, abs)
			if err != nil {
				t.Fatal(err)
			}
			return filepath.ToSlash(r)
		}
		text := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\ncomponents:\n  - %s\n", rel(base), rel(dir))
		if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		builds = append(builds, kustomizeBuild{name: base + "+" + path.Base(dir), dir: overlay})
	}
	return builds
}

// TestKustomizeOutput renders every kustomization (and every Component on its base) with the
// pinned kustomize, runs the same checks as on the raw manifests on the output (patches and
// images applied), and validates every rendered object against the API's schemas and CRDs.
func TestKustomizeOutput(t *testing.T) {
	ts := tools(t)
	kustomize := ts.kustomize(t)
	all := loadManifests(t)
	c := buildCLI(t)
	builds := kustomizeBuilds(t, all)
	// What docs/deploy.md describes, so that a missing directory cannot pass unnoticed.
	var names []string
	for _, b := range builds {
		names = append(names, b.name)
	}
	for _, want := range []string{"kubernetes", "kubernetes+prometheus-operator", "kubernetes/sidecar", "kubernetes/sidecar-dra"} {
		if !slices.Contains(names, want) {
			t.Errorf("no kustomize build %s (have %q)", want, names)
		}
	}
	for _, b := range builds {
		t.Run(b.name, func(t *testing.T) {
			abs, err := filepath.Abs(b.dir)
			if err != nil {
				t.Fatal(err)
			}
			out := runTool(t, "", kustomize, "build", abs)
			unit, err := parseDocs("kustomize("+b.name+")", out)
			if err != nil {
				t.Fatal(err)
			}
			if len(unit) == 0 {
				t.Fatal("kustomize rendered nothing")
			}
			checkUnit(t, c, unit)
			for _, p := range pods(unit) {
				for _, ctr := range p.containers() {
					// The images transformer must have replaced the placeholder name.
					if isInferprobe(ctr) && !strings.Contains(str(ctr, "image"), "/") {
						t.Errorf("%s: inferprobe image %q was not set by the kustomization", p.owner, str(ctr, "image"))
					}
				}
			}
			validate(t, ts, stream{"kustomize build " + b.name, out})
		})
	}
}

// TestResolveFile covers the mount resolution the configuration check relies on.
func TestResolveFile(t *testing.T) {
	p := pod{spec: map[string]any{"volumes": []any{
		map[string]any{"name": "cfg", "configMap": map[string]any{"name": "cm"}},
		map[string]any{"name": "keys", "secret": map[string]any{"secretName": "sec",
			"items": []any{map[string]any{"key": "k1", "path": "renamed"}}}},
		map[string]any{"name": "empty", "emptyDir": map[string]any{}},
	}}}
	ctr := map[string]any{"volumeMounts": []any{
		map[string]any{"name": "cfg", "mountPath": "/etc/app"},
		map[string]any{"name": "keys", "mountPath": "/etc/app/keys"},
		map[string]any{"name": "cfg", "mountPath": "/single.yml", "subPath": "x.yml"},
		map[string]any{"name": "empty", "mountPath": "/tmp"},
	}}
	tests := []struct {
		file    string
		want    fileSource
		wantErr bool
	}{
		{file: "/etc/app/a.yml", want: fileSource{"ConfigMap", "cm", "a.yml"}},
		{file: "/etc/app/keys/renamed", want: fileSource{"Secret", "sec", "k1"}}, // the longer mount wins
		{file: "/etc/app/keys/k1", wantErr: true},                                // items hide other keys
		{file: "/single.yml", want: fileSource{"ConfigMap", "cm", "x.yml"}},
		{file: "/etc/application/a.yml", wantErr: true}, // a prefix that is not a directory
		{file: "/tmp/x", wantErr: true},
		{file: "/nowhere", wantErr: true},
	}
	for _, tt := range tests {
		got, err := resolveFile(p, ctr, tt.file)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("resolveFile(%q) = %+v, %v; want %+v, error %v", tt.file, got, err, tt.want, tt.wantErr)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

// parseDockerfile reads the repository's Dockerfile with BuildKit's own parser and instruction
// decoder, the code `docker build` runs, so that the checks below see the stages and
// instructions as the builder does (continuations, comments, exec and shell forms, flags). Parser
// and lint warnings (BuildKit's build checks that apply at parse time) fail the test.
func parseDockerfile(t *testing.T, data []byte) []instructions.Stage {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		t.Errorf("Dockerfile: %s (line %d)", w.Short, line)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		t.Errorf("Dockerfile: build check %s: %s (line %d)", rule, msg, firstLine(loc))
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return stages
}

// firstLine is the line a parser location starts on, 0 if there is none.
func firstLine(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages := parseDockerfile(t, data)
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	// The builder's Go is go.mod's (major.minor): an older one cannot build the module, and
	// the image sets GOTOOLCHAIN=local, so it would not fetch a newer one.
	mod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goDir := goDirectiveRE.FindSubmatch(mod)
	if goDir == nil {
		t.Fatal("no go directive in go.mod")
	}
	img := golangImageRE.FindStringSubmatch(build.BaseName)
	if img == nil {
		t.Fatalf("build stage FROM %q is not an official golang image", build.BaseName)
	}
	if img[1] != string(goDir[1]) || img[2] != string(goDir[2]) {
		t.Errorf("build stage uses Go %s.%s, go.mod says go %s.%s", img[1], img[2], goDir[1], goDir[2])
	}
	// The cgo binary needs the runtime's glibc to be at least the builder's: build on the same
	// Debian release as the runtime image.
	runtimeImage := final.BaseName
	if strings.Contains(runtimeImage, "debian12") && img[3] != "bookworm" {
		t.Errorf("build stage variant %q, runtime %q is Debian 12: build on bookworm for glibc compatibility", img[3], runtimeImage)
	}
	if !strings.Contains(runtimeImage, "base") && !strings.Contains(runtimeImage, "cc") {
		// distroless/static has no glibc, which the cgo build links against.
		t.Errorf("runtime image %q: want a distroless image with glibc (base or cc)", runtimeImage)
	}

	var buildRun string
	for _, cmd := range build.Commands {
		if run, ok := cmd.(*instructions.RunCommand); ok {
			buildRun += strings.Join(run.CmdLine, " ") + "\n"
		}
	}
	for _, want := range []string{"CGO_ENABLED=1", "make build", `VERSION="$VERSION"`, `REVISION="$REVISION"`} {
		if !strings.Contains(buildRun, want) {
			t.Errorf("the build stage's RUN does not contain %q", want)
		}
	}
	makefile, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nbuild:", "version.Version=$(VERSION)", "version.Revision=$(REVISION)", "-o $(BIN)"} {
		if !bytes.Contains(makefile, []byte(want)) {
			t.Errorf("Makefile does not contain %q, which the Dockerfile's `make build` relies on", want)
		}
	}

	// The final stage: the binary where ENTRYPOINT runs it, a non-root user, the daemon's port.
	var entrypoint *instructions.EntrypointCommand
	var copied, user string
	var exposed []string
	for _, cmd := range final.Commands {
		switch c := cmd.(type) {
		case *instructions.EntrypointCommand:
			entrypoint = c
		case *instructions.CopyCommand:
			if c.From == build.Name {
				copied = c.DestPath
			}
		case *instructions.UserCommand:
			user = c.User
		case *instructions.ExposeCommand:
			exposed = append(exposed, c.Ports...)
		case *instructions.CmdCommand:
			t.Errorf("%s: a default CMD; without arguments the daemon should probe its embedded simulator", c)
		}
	}
	switch {
	case entrypoint == nil:
		t.Errorf("the final stage has no ENTRYPOINT")
	case entrypoint.PrependShell:
		t.Errorf("ENTRYPOINT is in shell form; the image has no shell: use the exec (JSON) form")
	case len(entrypoint.CmdLine) == 0 || entrypoint.CmdLine[0] != copied:
		t.Errorf("ENTRYPOINT %q does not run the binary copied from the build stage to %q", entrypoint.CmdLine, copied)
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("USER %q: want a non-root user", user)
	}

	c := buildCLI(t)
	_, port, err := splitHostPort(c.defaultListenAddress(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(exposed, port) && !slices.Contains(exposed, port+"/tcp") {
		t.Errorf("EXPOSE %q, the daemon's default port is %s", exposed, port)
	}
}

// TestDockerfileChecksCanFail feeds the checks' inputs a Dockerfile with the faults they look
// for, so that a parser that saw nothing could not pass TestDockerfile.
func TestDockerfileChecksCanFail(t *testing.T) {
	stages := parseDockerfile(t, []byte("FROM golang:1.26-bookworm AS build\nRUN CGO_ENABLED=1 \\\n  # inside a continuation\n  make build\nFROM scratch\nCOPY --from=build /out/x /bin/x\nENTRYPOINT /bin/x\nUSER root\nEXPOSE 1/tcp 2\n"))
	if len(stages) != 2 || stages[0].Name != "build" || stages[1].BaseName != "scratch" {
		t.Fatalf("stages %+v", stages)
	}
	run := stages[0].Commands[0].(*instructions.RunCommand)
	if got := strings.Join(run.CmdLine, " "); !strings.Contains(got, "CGO_ENABLED=1") || !strings.Contains(got, "make build") || strings.Contains(got, "continuation") {
		t.Errorf("RUN reads as %q", got)
	}
	cmds := stages[1].Commands
	if cp := cmds[0].(*instructions.CopyCommand); cp.From != "build" || cp.DestPath != "/bin/x" {
		t.Errorf("COPY reads as from %q to %q", cp.From, cp.DestPath)
	}
	if ep := cmds[1].(*instructions.EntrypointCommand); !ep.PrependShell {
		t.Errorf("a shell-form ENTRYPOINT reads as exec form %q", ep.CmdLine)
	}
	if u := cmds[2].(*instructions.UserCommand); u.User != "root" {
		t.Errorf("USER reads as %q", u.User)
	}
	if e := cmds[3].(*instructions.ExposeCommand); !slices.Equal(e.Ports, []string{"1/tcp", "2"}) {
		t.Errorf("EXPOSE reads as %q", e.Ports)
	}
}

// ---------------------------------------------------------------------------------------------
// .dockerignore

// dockerignore reads .dockerignore patterns and matches files the way the Docker CLI and
// BuildKit do, with their own libraries (moby/patternmatcher): patterns are anchored at the
// context root, "**" crosses directories, a "!" line re-includes, the last matching line wins,
// and a pattern that matches a directory leaves out everything in it.
type dockerignore struct {
	pm *patternmatcher.PatternMatcher
}

func parseDockerignore(data string) (dockerignore, error) {
	patterns, err := ignorefile.ReadAll(strings.NewReader(data))
	if err != nil {
		return dockerignore{}, err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return dockerignore{}, err
	}
	return dockerignore{pm}, nil
}

// ignored reports whether a file (slash-separated, relative to the context root) is left out
// of the build context. The directories above it are matched first, as the builder walks the
// context, so that "dir" followed by "!dir/keep" behaves as it does there.
func (d dockerignore) ignored(file string) (bool, error) {
	var info patternmatcher.MatchInfo
	var dirs []string
	for dir := path.Dir(file); dir != "."; dir = path.Dir(dir) {
		dirs = append(dirs, dir)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		var err error
		if _, info, err = d.pm.MatchesUsingParentResults(dirs[i], info); err != nil {
			return false, err
		}
	}
	out, _, err := d.pm.MatchesUsingParentResults(file, info)
	return out, err
}

// TestDockerignoreMatching pins the matching semantics the checks below rely on, so that a
// misuse of the library (unanchored paths, parents not consulted) shows here first.
func TestDockerignoreMatching(t *testing.T) {
	tests := []struct {
		patterns string
		file     string
		want     bool
	}{
		{"docs", "docs/a.md", true},
		{"docs", "mydocs/a.md", false},
		{"docs", "sub/docs/a.md", false}, // anchored at the root, unlike .gitignore
		{"/inferprobe", "inferprobe", true},
		{"inferprobe", "collector/inferprobe", false},
		{"*.yml", "a.yml", true},
		{"*.yml", "examples/a.yml", false},
		{"**/*.test", "x.test", true},
		{"**/*.test", "a/b/x.test", true},
		{"**/*.test", "a/b/x.testdata", false},
		{"bench/**", "bench/a/b", true},
		{"a?c", "abc", true},
		{"a?c", "a/c", false},
		{"[a-c].go", "b.go", true},
		{"[^a-c].go", "b.go", false},
		{"bench\n!bench/keep.go", "bench/keep.go", false},
		{"bench\n!bench/keep.go", "bench/other.go", true},
		{"!x\nx", "x", true}, // the last matching line wins
		{"# docs\n\n", "docs/a.md", false},
	}
	for _, tt := range tests {
		d, err := parseDockerignore(tt.patterns)
		if err != nil {
			t.Fatalf("%q: %v", tt.patterns, err)
		}
		if got, err := d.ignored(tt.file); err != nil || got != tt.want {
			t.Errorf("patterns %q, file %q: ignored = %v, %v; want %v", tt.patterns, tt.file, got, err, tt.want)
		}
	}
}

// TestDockerignoreKeepsBuildInputs checks that every file `make build` needs reaches the build
// context, and that what should stay out does.
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := parseDockerignore(string(data))
	if err != nil {
		t.Fatal(err)
	}
	ignored := func(f string) bool {
		out, err := ps.ignored(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		return out
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}

	// The source files of the main package and of every package of this module it imports,
	// as the Dockerfile builds it (cgo on).
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const format = `{{if and .Module .Module.Main}}{{$d := .Dir}}` +
		`{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .CgoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}` +
		`{{range .CFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .HFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}` +
		`{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}`
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-f", format, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	inputs := []string{"go.mod", "go.sum", "Makefile"}
	for _, f := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, filepath.ToSlash(rel))
	}
	if len(inputs) < 10 || !slices.Contains(inputs, "main.go") {
		t.Fatalf("go list found too few build inputs: %q", inputs)
	}
	for _, f := range inputs {
		if ignored(f) {
			t.Errorf("%s is a build input but .dockerignore leaves it out", f)
		}
	}
	for _, f := range []string{".git/HEAD", "inferprobe", "inferprobe.yml", "deploy/deploy_test.go", "charts/inferprobe/files/dashboards/inferprobe-overview.json", "docs/deploy.md", "bench/results/x.json", "collector/server/x.test"} {
		if !ignored(f) {
			t.Errorf("%s reaches the build context; .dockerignore should leave it out", f)
		}
	}
}
