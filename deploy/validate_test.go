package deploy

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// kubernetesVersion is the release whose schemas the objects are validated against, from the
// pinned k8s.io/kubernetes module version ("v1.34.4" validates as "1.34").
func kubernetesVersion(t *testing.T, ts toolset) string {
	t.Helper()
	v := strings.TrimPrefix(ts.versions["KUBERNETES_VERSION"], "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		t.Fatalf("KUBERNETES_VERSION %q is not vMAJOR.MINOR.PATCH", ts.versions["KUBERNETES_VERSION"])
	}
	return parts[0] + "." + parts[1]
}

// validatorArgs are kubectl-validate's arguments before the files. The schemas of every
// built-in group-version come from --local-schemas (the pinned Kubernetes release) and those of
// the CRDs from --local-crds; both take precedence over anything else. --version only picks the
// built-in schema set kubectl-validate falls back to for a group-version in neither, and must
// name one it embeds (1.23 to 1.30 in v0.0.4): without one it would ask GitHub. Nothing here
// falls back: resource.k8s.io/v1, which 1.30 does not have, validates, and an invalid object of
// it is rejected (TestValidatorRejects), so the local schemas are the ones in use.
func validatorArgs(t *testing.T, ts toolset) []string {
	return []string{"--version", "1.30", "--local-schemas", ts.schemas(t), "--local-crds", ts.crds(t), "--output", "json"}
}

// validatorStatus is what kubectl-validate reports for one document (a metav1.Status).
type validatorStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// runValidator runs kubectl-validate once on several multi-document files (one run loads the
// schemas once) and returns its verdict per file and document, in order.
func runValidator(t *testing.T, ts toolset, files ...string) map[string][]validatorStatus {
	t.Helper()
	bin := ts.kubectlValidate(t)
	out, errOut, err := runToolErr(t, filepath.Dir(files[0]), bin, append(validatorArgs(t, ts), files...)...)
	var res map[string][]validatorStatus
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		t.Fatalf("kubectl-validate: %v; output is not JSON (%v):\n%s%s", err, jerr, out, errOut)
	}
	if len(res) != len(files) {
		t.Fatalf("kubectl-validate reported on %d files, want %d:\n%s", len(res), len(files), out)
	}
	return res
}

// stream is a multi-document YAML stream to validate, with a name for messages.
type stream struct {
	name string
	data []byte
}

// validate checks every object of multi-document YAML streams, as they are (not re-encoded),
// against the Kubernetes API's OpenAPI schemas and the Prometheus Operator's CRDs with
// kubectl-validate, offline: unknown fields, wrong types, missing required fields and the CRDs'
// validation rules fail, as the API server's strict field validation would reject them. The
// number of documents it reports on must be the number of objects each stream holds, so that an
// empty or misread stream cannot pass.
func validate(t *testing.T, ts toolset, streams ...stream) {
	t.Helper()
	dir := t.TempDir()
	var files []string
	docs := map[string][]doc{}
	for i, s := range streams {
		ds, err := parseDocs(s.name, s.data)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			t.Fatalf("%s: no objects", s.name)
		}
		f := filepath.Join(dir, strconv.Itoa(i)+".yaml")
		if err := os.WriteFile(f, s.data, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		docs[f] = ds
	}
	res := runValidator(t, ts, files...)
	for i, f := range files {
		st := res[f]
		if len(st) != len(docs[f]) {
			t.Errorf("%s: kubectl-validate reported on %d documents, want %d", streams[i].name, len(st), len(docs[f]))
			continue
		}
		for j, s := range st {
			if s.Status != "Success" {
				t.Errorf("%s: %s: %s", streams[i].name, docs[f][j], s.Message)
			}
		}
	}
}

// TestValidatorRejects makes sure the validator checks something, offline: objects with the
// faults it must catch, of built-in and CRD kinds, are each rejected, and the same objects
// without the faults pass.
func TestValidatorRejects(t *testing.T) {
	ts := tools(t)
	bad := map[string]string{
		"unknown field": `apiVersion: v1
kind: Service
metadata: {name: x}
spec:
  selector: {a: b}
  ports: [{port: 80, targetPrt: 80}]
`,
		"wrong type": `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replicas: one
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: c, image: i}]}
`,
		"missing required field": `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: c, image: i}]}
`,
		"CRD missing required field": `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: x}
spec:
  groups:
    - name: g
      rules: [{alert: A}]
`,
		"CRD unknown field": `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: x}
spec:
  groups:
    - name: g
      rules: [{alert: A, expr: up == 0, fore: 5m}]
`,
		"CRD wrong type": `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: x}
spec:
  selector: {}
  endpoints: [{port: metrics, interval: 15}]
`,
		"resource.k8s.io v1 unknown field": `apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: x}
spec:
  spec:
    devices:
      requests: [{name: gpu, deviceClassName: gpu.nvidia.com}]
`,
		"unknown group-version": `apiVersion: example.com/v1
kind: Nothing
metadata: {name: x}
`,
	}
	dir := t.TempDir()
	names := map[string]string{}
	var files []string
	for name, text := range bad {
		f := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
		if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		names[f] = name
		files = append(files, f)
	}
	for f, st := range runValidator(t, ts, files...) {
		if len(st) != 1 || st[0].Status == "Success" {
			t.Errorf("%s: kubectl-validate accepts\n%s\n%+v", names[f], bad[names[f]], st)
		}
	}
	good := `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: x}
spec:
  groups:
    - name: g
      rules: [{alert: A, expr: up == 0, for: 5m}]
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: x}
spec:
  selector: {}
  endpoints: [{port: metrics, interval: 15s}]
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: x}
spec:
  spec:
    devices:
      requests: [{name: gpu, exactly: {deviceClassName: gpu.nvidia.com}}]
---
apiVersion: v1
kind: Service
metadata: {name: x}
spec:
  selector: {a: b}
  ports: [{port: 80, targetPort: 80}]
`
	if n := len(strings.Split(good, "\n---\n")); n != 4 {
		t.Fatalf("%d valid objects, want 4", n)
	}
	validate(t, ts, stream{"valid objects", []byte(good)})
}

// TestRawManifestsValidate validates every object under deploy/ as written, the optional files
// that no kustomization lists included. Patches are fragments: they are validated as applied,
// in TestKustomizeOutput.
func TestRawManifestsValidate(t *testing.T) {
	ts := tools(t)
	all := loadManifests(t)
	patches := map[string]bool{}
	for _, dir := range all.dirs() {
		if k, ok := all.kustomizationOf(t, dir); ok {
			for _, p := range k.patches {
				patches[path.Join(dir, p)] = true
			}
		}
	}
	var streams []stream
	for _, dir := range all.dirs() {
		for _, f := range all.filesIn(dir) {
			if patches[f] || slices.ContainsFunc(all[f], isKustomizeKind) {
				continue
			}
			data, err := os.ReadFile(filepath.FromSlash(f))
			if err != nil {
				t.Fatal(err)
			}
			streams = append(streams, stream{f, data})
		}
	}
	if len(streams) < 10 {
		t.Fatalf("%d files to validate, the walk must have gone wrong", len(streams))
	}
	validate(t, ts, streams...)
}
