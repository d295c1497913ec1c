// Command generate writes the copies of the alert rules (alerts/*.yml) and the Grafana
// dashboards (dashboards/*.json) that the Helm chart and the kustomizations ship:
//
//	go run ./deploy/generate        # or: make generate; run from the repository root
//
// Helm reads files only from inside the chart and kustomize only from inside its kustomization
// (or a kustomization it lists), so neither can use the files where they are. alerts/ and
// dashboards/ stay the one source: the copies are rewritten from them, never edited, and the
// package's test fails when a copy differs from what this command writes.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Where the copies go, relative to the repository root.
const (
	chartAlerts     = "charts/inferprobe/files/alerts"
	chartDashboards = "charts/inferprobe/files/dashboards"
	kustomizeRules  = "deploy/kubernetes/prometheus-operator/prometheusrule.yaml"
	kustomizeBoards = "deploy/kubernetes/grafana-dashboards.yaml"
)

// generatedDirs are the directories that hold only generated files: a file there that the
// generator does not write (a rules file since deleted from alerts/) is stale.
var generatedDirs = []string{chartAlerts, chartDashboards}

// The labels of the kustomize base's objects, so that they read as part of the central prober.
// Their namespace is the base's too: a component's resources are not in reach of the base's
// namespace transformer.
const baseLabels = `    app.kubernetes.io/name: inferprobe
    app.kubernetes.io/component: prober
`

func main() {
	root := flag.String("root", ".", "the repository root")
	flag.Parse()
	if err := write(*root); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

// write renders the copies from the files under root and writes them there, removing generated
// files that no longer have a source.
func write(root string) error {
	out, err := render(os.DirFS(root))
	if err != nil {
		return err
	}
	stale, err := staleFiles(os.DirFS(root), out)
	if err != nil {
		return err
	}
	for _, f := range stale {
		if err := os.Remove(filepath.Join(root, filepath.FromSlash(f))); err != nil {
			return err
		}
	}
	for _, f := range sortedKeys(out) {
		p := filepath.Join(root, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, out[f], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// staleFiles returns the files in the generated directories that render does not produce.
func staleFiles(fsys fs.FS, out map[string][]byte) ([]string, error) {
	var stale []string
	for _, dir := range generatedDirs {
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		for _, e := range entries {
			if f := path.Join(dir, e.Name()); !e.IsDir() && out[f] == nil {
				stale = append(stale, f)
			}
		}
	}
	return stale, nil
}

// render returns every generated file's content by its path relative to the repository root.
func render(fsys fs.FS) (map[string][]byte, error) {
	rules, err := sources(fsys, "alerts", ".yml")
	if err != nil {
		return nil, err
	}
	// promtool's unit tests of the rules sit beside them; they are not rules.
	rules = slices.DeleteFunc(rules, func(f string) bool { return strings.HasSuffix(f, ".test.yml") })
	boards, err := sources(fsys, "dashboards", ".json")
	if err != nil {
		return nil, err
	}
	if len(rules) == 0 || len(boards) == 0 {
		return nil, fmt.Errorf("found %d rules files in alerts/ and %d dashboards in dashboards/; want some of each", len(rules), len(boards))
	}

	out := map[string][]byte{}
	var ruleDocs [][]byte
	for _, f := range rules {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		out[path.Join(chartAlerts, path.Base(f))] = append(header("#", f), data...)
		doc, err := prometheusRule(f, data)
		if err != nil {
			return nil, err
		}
		ruleDocs = append(ruleDocs, doc)
	}
	out[kustomizeRules] = bytes.Join(ruleDocs, []byte("---\n"))

	var cm bytes.Buffer
	cm.Write(header("#", "dashboards/*.json"))
	cm.WriteString(`# Grafana's dashboard sidecar (k8s-sidecar) loads every ConfigMap with the label below, one
# dashboard per key; docs/deploy.md says how to point it at this namespace.
apiVersion: v1
kind: ConfigMap
metadata:
  name: inferprobe-dashboards
  namespace: inferprobe
  labels:
` + baseLabels + `    grafana_dashboard: "1"
data:
`)
	for _, f := range boards {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		// JSON has no comments, so the chart's copy is the file as it is.
		out[path.Join(chartDashboards, path.Base(f))] = data
		cm.WriteString("  " + path.Base(f) + ": " + literal(data, "    "))
	}
	out[kustomizeBoards] = cm.Bytes()
	if err := fitsClientSideApply(kustomizeBoards, out[kustomizeBoards]); err != nil {
		return nil, err
	}
	return out, nil
}

// annotationLimit is the API server's limit on the total size of an object's annotations
// (apimachinery's TotalAnnotationSizeLimitB).
const annotationLimit = 256 << 10

// lastApplied is the annotation in which client-side `kubectl apply` keeps the object it applied.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// fitsClientSideApply checks that an object can be applied with client-side `kubectl apply`
// (the default of `kubectl apply -k`), which stores the whole object as JSON in an
// annotation: a dashboards ConfigMap that outgrows it is refused by the API server only when
// someone applies it.
func fitsClientSideApply(name string, doc []byte) error {
	n, err := lastAppliedSize(doc)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if n > annotationLimit {
		return fmt.Errorf("%s: its %s annotation would be %d bytes, over the API server's %d for all annotations: "+
			"split dashboards/ into more ConfigMaps or document `kubectl apply --server-side`", name, lastApplied, n, annotationLimit)
	}
	return nil
}

// lastAppliedSize returns the bytes the last-applied annotation of the YAML object doc takes:
// its key and the object as JSON.
func lastAppliedSize(doc []byte) (int, error) {
	var obj any
	if err := yaml.Unmarshal(doc, &obj); err != nil {
		return 0, err
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return 0, err
	}
	return len(lastApplied) + len(data), nil
}

// sources returns the files in dir with the extension, sorted.
func sources(fsys fs.FS, dir, ext string) ([]string, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ext) {
			files = append(files, path.Join(dir, e.Name()))
		}
	}
	return files, nil
}

// header is the line that marks a generated file and names its source.
func header(comment, src string) []byte {
	return []byte(comment + " Generated by `make generate` from " + src + "; edit that, not this file.\n")
}

// prometheusRule wraps a Prometheus rules file in a PrometheusRule object for the kustomize
// overlay. The file's top level (groups:) is the object's spec; it is indented as text rather
// than decoded and encoded again, so its comments (the thresholds are marked in them) stay.
func prometheusRule(src string, data []byte) ([]byte, error) {
	lines := strings.SplitAfter(string(data), "\n")
	// Drop the file's opening comment (how to load it into Prometheus), which does not apply
	// to the object.
	start := 0
	for start < len(lines) && (strings.HasPrefix(lines[start], "#") || strings.TrimSpace(lines[start]) == "") {
		start++
	}
	if start == len(lines) || !strings.HasPrefix(lines[start], "groups:") {
		return nil, fmt.Errorf("%s: the first line after the opening comment is not \"groups:\"", src)
	}
	name := strings.ReplaceAll(strings.TrimSuffix(path.Base(src), ".yml"), ".", "-")
	var b bytes.Buffer
	b.Write(header("#", src))
	b.WriteString(`apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: ` + name + `
  namespace: inferprobe
  labels:
` + baseLabels + `spec:
`)
	for _, l := range lines[start:] {
		if strings.TrimSpace(l) == "" {
			b.WriteString(strings.TrimLeft(l, " \t"))
			continue
		}
		b.WriteString("  " + l)
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
		b.WriteString("\n")
	}
	return b.Bytes(), nil
}

// literal renders data as a YAML literal block scalar whose lines are indented by indent, with
// the chomping indicator that keeps its final line break (or its absence) exact.
func literal(data []byte, indent string) string {
	s := string(data)
	chomp := "|-"
	if strings.HasSuffix(s, "\n") {
		chomp, s = "|", strings.TrimSuffix(s, "\n")
	}
	var b strings.Builder
	b.WriteString(chomp + "\n")
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			b.WriteString(indent + l)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// sortedKeys returns the map's keys in order, so that files are written in a stable order.
func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
