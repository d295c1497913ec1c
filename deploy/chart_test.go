package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/inferprobe/inferprobe/internal/testkit"
)

// chartDir is the Helm chart, relative to deploy/.
const chartDir = "../charts/inferprobe"

// helmTemplate renders the chart as `helm install inferprobe` into the namespace "inferprobe"
// would, for the Kubernetes version the schemas are for.
func helmTemplate(t *testing.T, ts toolset, args ...string) []byte {
	t.Helper()
	return runTool(t, chartDir, ts.helm(t), append([]string{"template", "inferprobe", ".",
		"--namespace", "inferprobe", "--kube-version", kubernetesVersion(t, ts)}, args...)...)
}

// readYAML decodes one YAML file into a generic value.
func readYAML(t *testing.T, file string) map[string]any {
	t.Helper()
	v, err := decodeYAMLFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestHelmLint(t *testing.T) {
	ts := tools(t)
	helm := ts.helm(t)
	for _, values := range []string{"", "ci/full-values.yaml", "examples/vllm-sidecar/inferprobe-values.yaml"} {
		args := []string{"lint", "--strict", ".", "--kube-version", kubernetesVersion(t, ts)}
		if values != "" {
			args = append(args, "-f", values)
		}
		out := runTool(t, chartDir, helm, args...)
		if !bytes.Contains(out, []byte("1 chart(s) linted, 0 chart(s) failed")) {
			t.Errorf("helm %s:\n%s", strings.Join(args, " "), out)
		}
	}
}

// chartCase is one rendering of the chart and what it must contain.
type chartCase struct {
	name string
	args []string
	// kinds are the kinds rendered, each "Kind/name", sorted.
	kinds []string
	// cluster are objects the values expect to exist already (the Secret the API keys come
	// from), added to the unit for the reference checks but not validated or counted.
	cluster string
}

var chartCases = []chartCase{
	{
		name: "default values",
		kinds: []string{"ConfigMap/inferprobe", "Deployment/inferprobe", "Service/inferprobe",
			"ServiceAccount/inferprobe"},
	},
	{
		name: "full values",
		args: []string{"-f", "ci/full-values.yaml"},
		kinds: []string{"ConfigMap/llm-probe", "ConfigMap/llm-probe-dashboards", "Deployment/llm-probe",
			"NetworkPolicy/llm-probe", "PrometheusRule/llm-probe-inferprobe-rules", "Service/llm-probe",
			"ServiceAccount/llm-probe-sa", "ServiceMonitor/llm-probe"},
		cluster: `apiVersion: v1
kind: Secret
metadata: {name: llm-api-keys, namespace: inferprobe}
stringData: {vllm-api-key: placeholder, tgi-api-key: placeholder}
`,
	},
	{
		name: "PodMonitor",
		args: []string{"-f", "ci/full-values.yaml", "--set", "serviceMonitor.enabled=false,podMonitor.enabled=true"},
		kinds: []string{"ConfigMap/llm-probe", "ConfigMap/llm-probe-dashboards", "Deployment/llm-probe",
			"NetworkPolicy/llm-probe", "PodMonitor/llm-probe", "PrometheusRule/llm-probe-inferprobe-rules",
			"Service/llm-probe", "ServiceAccount/llm-probe-sa"},
		cluster: `apiVersion: v1
kind: Secret
metadata: {name: llm-api-keys, namespace: inferprobe}
stringData: {vllm-api-key: placeholder, tgi-api-key: placeholder}
`,
	},
}

// TestChartRenders renders the chart with the default values, with values that set every
// documented value, and with the PodMonitor instead of the ServiceMonitor; it runs the checks
// of the raw manifests on each (flags against the real command line, check-config on the
// configuration as mounted, hardening, references) and validates every object against the
// API's schemas and the CRDs.
func TestChartRenders(t *testing.T) {
	ts := tools(t)
	c := buildCLI(t)
	for _, tc := range chartCases {
		t.Run(tc.name, func(t *testing.T) {
			out := helmTemplate(t, ts, tc.args...)
			unit, err := parseDocs("helm template ("+tc.name+")", out)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, d := range unit {
				kinds = append(kinds, d.kind()+"/"+d.name())
				if !strings.HasPrefix(str(d.obj, "metadata", "labels", "helm.sh/chart"), "inferprobe-") {
					t.Errorf("%s: no helm.sh/chart label", d)
				}
			}
			slices.Sort(kinds)
			if !slices.Equal(kinds, tc.kinds) {
				t.Errorf("rendered %q,\nwant     %q", kinds, tc.kinds)
			}
			extra, err := parseDocs("cluster", []byte(tc.cluster))
			if err != nil {
				t.Fatal(err)
			}
			if cfgs := checkUnit(t, c, append(slices.Clone(unit), extra...)); len(cfgs) != 1 {
				t.Errorf("inferprobe containers read configurations %v, want one", cfgs)
			}
			validate(t, ts, stream{"helm template (" + tc.name + ")", out})
		})
	}
}

// TestChartSidecarRecipe checks the documented sidecar recipe as one pod: the chart without the
// prober (examples/vllm-sidecar/inferprobe-values.yaml) and a vLLM Deployment, as a model-server
// chart would render it, with the container and volume of model-server-values.yaml added. The
// sidecar's flags, configuration (from the chart's ConfigMap), hardening and probes are checked
// like every other inferprobe container, the PodMonitor against the pod, and every object is
// validated.
func TestChartSidecarRecipe(t *testing.T) {
	ts := tools(t)
	c := buildCLI(t)
	out := helmTemplate(t, ts, "--namespace", "llm-serving", "-f", "examples/vllm-sidecar/inferprobe-values.yaml")
	unit, err := parseDocs("helm template (sidecar)", out)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, d := range unit {
		kinds = append(kinds, d.kind())
	}
	slices.Sort(kinds)
	if want := []string{"ConfigMap", "ConfigMap", "PodMonitor", "PrometheusRule"}; !slices.Equal(kinds, want) {
		t.Errorf("without the prober the chart renders %q, want %q", kinds, want)
	}

	extra := readYAML(t, filepath.Join(chartDir, "examples/vllm-sidecar/model-server-values.yaml"))
	vllm := map[string]any{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0",
		"args":  []any{"Qwen/Qwen2.5-7B-Instruct", "--port=8000"},
		"ports": []any{map[string]any{"name": "http", "containerPort": 8000}}}
	labels := map[string]any{"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "vllm"}
	deployment := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "vllm", "namespace": "llm-serving", "labels": labels},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{
					"containers": append([]any{vllm}, list(extra, "extraContainers")...),
					"volumes":    list(extra, "extraVolumes"),
				},
			},
		},
	}
	if len(list(extra, "extraContainers")) != 1 || len(list(extra, "extraVolumes")) != 1 {
		t.Fatalf("model-server-values.yaml: want one extra container and one extra volume")
	}
	text, err := yaml.Marshal(deployment)
	if err != nil {
		t.Fatal(err)
	}
	server, err := parseDocs("model server", text)
	if err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(unit), server...)
	if cfgs := checkUnit(t, c, all); len(cfgs) != 1 {
		t.Errorf("the sidecar reads configurations %v, want the chart's ConfigMap", cfgs)
	}
	for _, d := range all {
		if d.kind() == "PodMonitor" && !slices.Equal(list(d.obj, "spec", "namespaceSelector", "matchNames"), []any{"llm-serving"}) {
			t.Errorf("PodMonitor looks in %v, the model server is in llm-serving", list(d.obj, "spec", "namespaceSelector", "matchNames"))
		}
	}
	validate(t, ts, stream{"sidecar recipe: chart", out}, stream{"sidecar recipe: model server", text})
}

// renderUnit renders the chart and parses the result.
func renderUnit(t *testing.T, ts toolset, args ...string) []doc {
	t.Helper()
	unit, err := parseDocs("helm template", helmTemplate(t, ts, args...))
	if err != nil {
		t.Fatal(err)
	}
	return unit
}

// one returns the only object of a kind in a unit.
func one(t *testing.T, unit []doc, kind string) doc {
	t.Helper()
	var found []doc
	for _, d := range unit {
		if d.kind() == kind {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s, want 1", len(found), kind)
	}
	return found[0]
}

// TestChartValues checks what individual values do to the rendered objects.
func TestChartValues(t *testing.T) {
	ts := tools(t)
	def := renderUnit(t, ts)
	full := renderUnit(t, ts, "-f", "ci/full-values.yaml")
	fullValues := readYAML(t, filepath.Join(chartDir, "ci/full-values.yaml"))
	chart := readYAML(t, filepath.Join(chartDir, "Chart.yaml"))

	ctr := func(unit []doc) map[string]any {
		cs := list(one(t, unit, "Deployment").obj, "spec", "template", "spec", "containers")
		if len(cs) != 1 {
			t.Fatalf("%d containers, want 1", len(cs))
		}
		return cs[0].(map[string]any)
	}
	args := func(unit []doc) []any { return list(ctr(unit), "args") }

	// The image: appVersion by default, the digest where one is given.
	if got, want := str(ctr(def), "image"), "registry.example.com/platform/inferprobe:"+str(chart, "appVersion"); got != want {
		t.Errorf("default image %q, want %q", got, want)
	}
	if got := str(ctr(full), "image"); got != "registry.example.com/platform/inferprobe@"+str(fullValues, "image", "digest") {
		t.Errorf("image with a digest %q", got)
	}
	// The accelerator collector: off by default (a central prober has no GPU).
	if !slices.Contains(args(def), any("--no-collector.accelerator")) || !slices.Contains(args(full), any("--collector.accelerator")) {
		t.Errorf("accelerator flags: default %v, enabled %v", args(def), args(full))
	}
	// otel: no OTEL_* variables by default; with an endpoint, the exporter's variables and the
	// downward-API resource attributes, each variable defined before one that refers to it.
	envOf := func(unit []doc) (names []string, vals map[string]any) {
		vals = map[string]any{}
		for _, e := range list(ctr(unit), "env") {
			m := e.(map[string]any)
			names = append(names, str(m, "name"))
			if v, ok := m["value"]; ok {
				vals[str(m, "name")] = v
			} else {
				vals[str(m, "name")] = str(m, "valueFrom", "fieldRef", "fieldPath")
			}
		}
		return names, vals
	}
	if names, _ := envOf(def); slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "OTEL_") }) {
		t.Errorf("default values set OTel variables %v", names)
	}
	names, vals := envOf(full)
	want := map[string]any{"OTEL_EXPORTER_OTLP_ENDPOINT": str(fullValues, "otel", "endpoint"), "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER_ARG": "0.1", "POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace",
		"NODE_NAME":                "spec.nodeName",
		"OTEL_RESOURCE_ATTRIBUTES": "k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE),k8s.node.name=$(NODE_NAME)"}
	for k, v := range want {
		if vals[k] != v {
			t.Errorf("env %s = %v, want %v", k, vals[k], v)
		}
	}
	if i := slices.Index(names, "OTEL_RESOURCE_ATTRIBUTES"); i < 0 || slices.Index(names, "POD_NAME") > i || slices.Index(names, "NODE_NAME") > i ||
		!slices.Contains(names, "TGI_API_KEY") {
		t.Errorf("env order %v: the downward-API variables must come before OTEL_RESOURCE_ATTRIBUTES, extraEnv kept", names)
	}
	// configText is the file as given, comments included.
	cms := find(full, "ConfigMap", "llm-probe")
	if len(cms) != 1 {
		t.Fatalf("%d ConfigMaps llm-probe, want 1", len(cms))
	}
	if got := str(cms[0].obj, "data", "inferprobe.yml"); got != str(fullValues, "configText") {
		t.Errorf("the ConfigMap does not hold configText as given:\n%s", got)
	}
	// restartOnConfigChange: a checksum of the configuration in the pod template, or none.
	checksum := func(unit []doc) string {
		return str(one(t, unit, "Deployment").obj, "spec", "template", "metadata", "annotations", "checksum/config")
	}
	if len(checksum(def)) != 64 || checksum(full) != "" {
		t.Errorf("checksum/config annotation: default %q, restartOnConfigChange=false %q", checksum(def), checksum(full))
	}
	other := renderUnit(t, ts, "--set", "config.targets[0].traffic.rate=0.5")
	if checksum(other) == checksum(def) {
		t.Errorf("a changed configuration leaves checksum/config at %q", checksum(def))
	}
	// The monitors scrape the metrics port of the release's pods, in the release's namespace.
	sm := one(t, full, "ServiceMonitor")
	if str(sm.obj, "metadata", "namespace") != "monitoring" || !slices.Equal(list(sm.obj, "spec", "namespaceSelector", "matchNames"), []any{"inferprobe"}) {
		t.Errorf("ServiceMonitor in %q selecting namespaces %v", str(sm.obj, "metadata", "namespace"), list(sm.obj, "spec", "namespaceSelector", "matchNames"))
	}
	if get(sm.obj, "metadata", "labels", "release") != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor labels %v lack serviceMonitor.labels", mapping(sm.obj, "metadata", "labels"))
	}
	// The NetworkPolicy admits the given peers to the metrics port, and DNS plus the given
	// rules out.
	np := one(t, full, "NetworkPolicy")
	if !subset(mapping(np.obj, "spec", "podSelector", "matchLabels"), mapping(one(t, full, "Deployment").obj, "spec", "template", "metadata", "labels")) {
		t.Errorf("NetworkPolicy does not select the pod")
	}
	if got := list(np.obj, "spec", "egress"); len(got) != 2 {
		t.Errorf("NetworkPolicy egress %v, want DNS and the one rule of the values", got)
	}
	// Both monitors at once would scrape every series twice: refused.
	_, errOut, err := runToolErr(t, chartDir, ts.helm(t), "template", "x", ".", "--kube-version", kubernetesVersion(t, ts), "--set", "serviceMonitor.enabled=true,podMonitor.enabled=true")
	if err == nil || !bytes.Contains(errOut, []byte("both enabled")) {
		t.Errorf("serviceMonitor and podMonitor both enabled: err %v\n%s", err, errOut)
	}
}

// TestChartShipsTheSources checks that the chart's PrometheusRule and dashboards ConfigMap hold
// alerts/ and dashboards/ as they are (the copies' drift is deploy/generate's test; this is the
// templates' wiring).
func TestChartShipsTheSources(t *testing.T) {
	ts := tools(t)
	full := renderUnit(t, ts, "-f", "ci/full-values.yaml")
	rule := one(t, full, "PrometheusRule")
	want := readYAML(t, filepath.Join(repoRoot, "alerts", "inferprobe.rules.yml"))
	if !reflect.DeepEqual(rule.obj["spec"], any(want)) {
		t.Errorf("the PrometheusRule's spec is not alerts/inferprobe.rules.yml")
	}
	// The Operator's admission webhook parses the rules before it accepts the object; promtool
	// runs the same parser (and Prometheus's checks of names and labels) on the spec as
	// rendered, and on the kustomize Component's copy.
	promtool := testkit.Tool(t, "promtool", "apt-get install prometheus")
	if err := checkRules(t, promtool, rule.obj); err != nil {
		t.Errorf("helm template: PrometheusRule: %v", err)
	}
	kust, err := os.ReadFile(filepath.Join(repoRoot, "deploy/kubernetes/prometheus-operator/prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kdocs, err := parseDocs("prometheus-operator/prometheusrule.yaml", kust)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range kdocs {
		if err := checkRules(t, promtool, d.obj); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
	// The check fails on a rule Prometheus would not load.
	broken := map[string]any{"spec": map[string]any{"groups": []any{map[string]any{"name": "g",
		"rules": []any{map[string]any{"record": "job:x:rate5m", "expr": "sum(rate(x[5m])"}}}}}}
	if err := checkRules(t, promtool, broken); err == nil {
		t.Error("promtool accepted an unbalanced expression")
	}
	if get(rule.obj, "metadata", "labels", "release") != "kube-prometheus-stack" {
		t.Errorf("PrometheusRule labels %v lack prometheusRule.labels", mapping(rule.obj, "metadata", "labels"))
	}
	var boards doc
	for _, d := range full {
		if d.kind() == "ConfigMap" && strings.HasSuffix(d.name(), "-dashboards") {
			boards = d
		}
	}
	if boards.obj == nil {
		t.Fatal("no dashboards ConfigMap")
	}
	if get(boards.obj, "metadata", "labels", "grafana_dashboard") != "1" || str(boards.obj, "metadata", "namespace") != "grafana" {
		t.Errorf("dashboards ConfigMap labels %v in %q", mapping(boards.obj, "metadata", "labels"), str(boards.obj, "metadata", "namespace"))
	}
	files, err := filepath.Glob(filepath.Join(repoRoot, "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("dashboards: %v %v", files, err)
	}
	data := mapping(boards.obj, "data")
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if data[filepath.Base(f)] != string(src) {
			t.Errorf("dashboards ConfigMap key %s is not %s", filepath.Base(f), f)
		}
	}
	if len(data) != len(files) {
		t.Errorf("dashboards ConfigMap has %d keys, dashboards/ %d files", len(data), len(files))
	}
}

// checkRules writes a PrometheusRule's spec as a Prometheus rules file and runs `promtool
// check rules` (the path of promtool is bin) on it.
func checkRules(t *testing.T, bin string, obj map[string]any) error {
	t.Helper()
	spec := mapping(obj, "spec")
	if len(list(spec, "groups")) == 0 {
		return errors.New("no rule groups in the spec")
	}
	data, err := yaml.Marshal(spec)
	if err != nil {
		return err
	}
	file := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return err
	}
	if out, err := exec.Command(bin, "check", "rules", file).CombinedOutput(); err != nil {
		return fmt.Errorf("promtool check rules: %v\n%s", err, out)
	}
	return nil
}

// leafPaths returns the dotted paths of a values tree's leaves: scalars, lists and empty maps.
func leafPaths(prefix string, v any) []string {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return []string{prefix}
	}
	var out []string
	for k, sub := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		out = append(out, leafPaths(p, sub)...)
	}
	slices.Sort(out)
	return out
}

// has reports whether a values tree sets the dotted path.
func has(v map[string]any, p string) bool {
	var cur any = v
	for _, k := range strings.Split(p, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[k]; !ok {
			return false
		}
	}
	return true
}

// TestChartValuesDocumented checks that the full values file sets every value of values.yaml
// (so that TestChartRenders renders every one), that every value is used by a template, and that
// every value a template reads is in values.yaml.
func TestChartValuesDocumented(t *testing.T) {
	defaults := readYAML(t, filepath.Join(chartDir, "values.yaml"))
	full := readYAML(t, filepath.Join(chartDir, "ci/full-values.yaml"))
	var templates strings.Builder
	entries, err := os.ReadDir(filepath.Join(chartDir, "templates"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(chartDir, "templates", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		templates.Write(data)
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\.Values\.([A-Za-z0-9_.]+)`).FindAllStringSubmatch(templates.String(), -1) {
		used[m[1]] = true
	}
	leaves := leafPaths("", defaults)
	if len(leaves) < 50 {
		t.Fatalf("values.yaml has %d values, the reading must have gone wrong", len(leaves))
	}
	for _, p := range leaves {
		// config is the daemon's file, one value whatever its content.
		if strings.HasPrefix(p, "config.") {
			p = "config"
		}
		if !has(full, p) {
			t.Errorf("ci/full-values.yaml does not set %s", p)
		}
		// A value is used when it, or a map above it (rendered whole with toYaml), is read.
		usedHere := false
		parts := strings.Split(p, ".")
		for i := len(parts); i > 0 && !usedHere; i-- {
			usedHere = used[strings.Join(parts[:i], ".")]
		}
		if !usedHere {
			t.Errorf("values.yaml documents %s, which no template reads", p)
		}
	}
	for u := range used {
		if !has(defaults, u) {
			t.Errorf("a template reads .Values.%s, which values.yaml does not document", u)
		}
	}
}

// TestChartVersion ties the chart to releases: its version is the appVersion, the image tag
// it deploys by default, the tag every kustomization under deploy/kubernetes sets and the one
// every example image reference names (versionProblems); and when HEAD carries a release tag
// vX.Y.Z, X.Y.Z is that version. scripts/release.sh (`make release`) sets them all.
func TestChartVersion(t *testing.T) {
	version, problems, err := versionProblems(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	// No tag at HEAD (or no git) is a commit between releases: nothing to compare with.
	if tag, err := exec.Command("git", "-C", repoRoot, "describe", "--exact-match", "--tags", "--match", "v[0-9]*", "HEAD").Output(); err == nil {
		if p := tagProblem(strings.TrimSpace(string(tag)), version); p != "" {
			t.Error(p)
		}
	}
}

// exampleImage is how docs and examples name a released image.
var exampleImage = regexp.MustCompile(`registry\.example\.com/platform/inferprobe:([0-9A-Za-z.+-]+)`)

// versionProblems reads the release version of the repository at root (Chart.yaml's
// version) and returns every place that disagrees with it.
func versionProblems(root string) (version string, problems []string, err error) {
	chart, err := decodeYAMLFile(filepath.Join(root, "charts/inferprobe/Chart.yaml"))
	if err != nil {
		return "", nil, err
	}
	version, app := str(chart, "version"), str(chart, "appVersion")
	if !regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`).MatchString(version) {
		problems = append(problems, fmt.Sprintf("Chart.yaml version %q is not a semantic version", version))
	}
	if version != app {
		problems = append(problems, fmt.Sprintf("Chart.yaml version %q and appVersion %q differ: a chart release is an inferprobe release", version, app))
	}
	tags := 0
	var files []string
	for _, dir := range []string{"deploy/kubernetes", "charts/inferprobe/examples"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			return "", nil, err
		}
	}
	files = append(files, filepath.Join(root, "docs/deploy.md"))
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		rel = filepath.ToSlash(rel)
		data, err := os.ReadFile(f)
		if err != nil {
			return "", nil, err
		}
		for _, m := range exampleImage.FindAllSubmatch(data, -1) {
			if string(m[1]) != app {
				problems = append(problems, fmt.Sprintf("%s names %s, the chart's appVersion is %q", rel, m[0], app))
			}
		}
		if base := path.Base(rel); base != "kustomization.yaml" && base != "kustomization.yml" {
			continue
		}
		docs, err := parseDocs(rel, data)
		if err != nil {
			return "", nil, err
		}
		for _, d := range docs {
			for _, img := range list(d.obj, "images") {
				if str(img, "name") == "inferprobe" {
					tags++
					if tag := str(img, "newTag"); tag != app {
						problems = append(problems, fmt.Sprintf("%s: image tag %q, the chart's appVersion is %q", rel, tag, app))
					}
				}
			}
		}
	}
	if tags == 0 {
		problems = append(problems, "no kustomization under deploy/kubernetes sets the inferprobe image")
	}
	return version, problems, nil
}

// tagProblem compares a release tag (vX.Y.Z) with the chart's version.
func tagProblem(tag, version string) string {
	if tag != "v"+version {
		return fmt.Sprintf("HEAD is tagged %s, but the chart's version is %q: run `make release VERSION=%s` before tagging", tag, version, strings.TrimPrefix(tag, "v"))
	}
	return ""
}

// decodeYAMLFile decodes one YAML file into a generic value.
func decodeYAMLFile(file string) (map[string]any, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return v, nil
}
