package main

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"go.yaml.in/yaml/v3"
)

// The test runs in deploy/generate; the repository root is two levels up.
const repoRoot = "../.."

// TestGeneratedFilesAreCurrent is the drift test: every generated file must be what `make
// generate` would write from alerts/ and dashboards/ now, and no generated file may be left
// without a source.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	fsys := os.DirFS(repoRoot)
	want, err := render(fsys)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sortedKeys(want) {
		got, err := os.ReadFile(path.Join(repoRoot, f))
		if err != nil {
			t.Errorf("%s: %v (run `make generate`)", f, err)
			continue
		}
		if !bytes.Equal(got, want[f]) {
			t.Errorf("%s differs from what `make generate` writes from alerts/ and dashboards/: run it", f)
		}
	}
	stale, err := staleFiles(fsys, want)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range stale {
		t.Errorf("%s has no source in alerts/ or dashboards/ any more: run `make generate`", f)
	}
}

// TestRenderedObjectsCarryTheSources decodes what the kustomize overlay gets and compares it
// with the sources as YAML and as bytes, so that the text-level indenting cannot change a rule
// or a dashboard.
func TestRenderedObjectsCarryTheSources(t *testing.T) {
	fsys := os.DirFS(repoRoot)
	out, err := render(fsys)
	if err != nil {
		t.Fatal(err)
	}

	rules := decodeAll(t, out[kustomizeRules])
	var names []string
	for _, obj := range rules {
		m := obj.(map[string]any)
		if m["kind"] != "PrometheusRule" {
			t.Errorf("%s: kind %v", kustomizeRules, m["kind"])
		}
		names = append(names, m["metadata"].(map[string]any)["name"].(string))
	}
	if !slices.Equal(names, []string{"inferprobe-rules"}) {
		t.Fatalf("PrometheusRules %q, want one per rules file of alerts/: [inferprobe-rules]", names)
	}
	src, err := os.ReadFile(path.Join(repoRoot, "alerts/inferprobe.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	wantSpec := decodeAll(t, src)[0]
	if got := rules[0].(map[string]any)["spec"]; !reflect.DeepEqual(got, wantSpec) {
		t.Errorf("the PrometheusRule's spec is not alerts/inferprobe.rules.yml")
	}
	if groups, _ := wantSpec.(map[string]any)["groups"].([]any); len(groups) == 0 {
		t.Errorf("alerts/inferprobe.rules.yml has no groups")
	}

	cms := decodeAll(t, out[kustomizeBoards])
	if len(cms) != 1 {
		t.Fatalf("%s: %d documents, want 1", kustomizeBoards, len(cms))
	}
	cm := cms[0].(map[string]any)
	if l := cm["metadata"].(map[string]any)["labels"].(map[string]any); l["grafana_dashboard"] != "1" {
		t.Errorf("dashboards ConfigMap labels %v: the Grafana sidecar looks for grafana_dashboard: \"1\"", l)
	}
	data := cm["data"].(map[string]any)
	boards, err := filepath.Glob(filepath.Join(repoRoot, "dashboards", "*.json"))
	if err != nil || len(boards) < 3 {
		t.Fatalf("dashboards/*.json: %v %v", boards, err)
	}
	for _, b := range boards {
		f := filepath.Base(b)
		src, err := os.ReadFile(path.Join(repoRoot, "dashboards", f))
		if err != nil {
			t.Fatal(err)
		}
		if data[f] != string(src) {
			t.Errorf("dashboards ConfigMap key %s is not dashboards/%s", f, f)
		}
		if got := out[path.Join(chartDashboards, f)]; !bytes.Equal(got, src) {
			t.Errorf("the chart's copy of %s differs from dashboards/%s", f, f)
		}
	}
	if len(data) != len(boards) {
		t.Errorf("dashboards ConfigMap has keys %v, want one per dashboards/*.json (%d)", slices.Sorted(maps.Keys(data)), len(boards))
	}
	if got := out[path.Join(chartAlerts, "inferprobe.rules.yml")]; !bytes.HasSuffix(got, src) || !bytes.HasPrefix(got, []byte("# Generated")) {
		t.Errorf("the chart's copy of the rules is not a marked copy of alerts/inferprobe.rules.yml")
	}
	if _, ok := out[path.Join(chartAlerts, "inferprobe.rules.test.yml")]; ok {
		t.Errorf("promtool's test file was copied as a rules file")
	}
}

// TestDashboardsFitClientSideApply checks that the kustomize base's dashboards ConfigMap can be
// applied with client-side `kubectl apply -k` (render refuses one that cannot), and that the
// check measures what it should: one more dashboard of the size of the rest must not fit.
func TestDashboardsFitClientSideApply(t *testing.T) {
	out, err := render(os.DirFS(repoRoot))
	if err != nil {
		t.Fatal(err)
	}
	n, err := lastAppliedSize(out[kustomizeBoards])
	if err != nil {
		t.Fatal(err)
	}
	// The JSON of the dashboards, escaped once more as strings, is larger than the YAML file.
	if yamlSize := len(out[kustomizeBoards]); n < yamlSize/2 || n > annotationLimit {
		t.Errorf("%s: last-applied annotation %d bytes (YAML %d), want at most %d", kustomizeBoards, n, yamlSize, annotationLimit)
	}
	t.Logf("%s: last-applied annotation %d of %d bytes", kustomizeBoards, n, annotationLimit)

	// Sources with a dashboard as large as the limit: render must refuse them.
	fsys := fstest.MapFS{"alerts/a.yml": {Data: []byte("groups: []\n")}}
	boards, err := filepath.Glob(filepath.Join(repoRoot, "dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range boards {
		data, err := os.ReadFile(b)
		if err != nil {
			t.Fatal(err)
		}
		fsys["dashboards/"+filepath.Base(b)] = &fstest.MapFile{Data: data}
	}
	fsys["dashboards/zz-large.json"] = &fstest.MapFile{Data: []byte(`{"title": "` + strings.Repeat("x", annotationLimit) + `"}` + "\n")}
	if _, err := render(fsys); err == nil || !strings.Contains(err.Error(), lastApplied) {
		t.Errorf("render of a dashboards ConfigMap over the annotation limit: %v", err)
	}
}

// TestLiteral covers the block scalar's edge cases: no final newline, blank lines, lines that
// would mean something else at the top level.
func TestLiteral(t *testing.T) {
	for _, s := range []string{"{\n  \"a\": 1\n}\n", "{}", "x\n\n\ny\n", "# not a comment\n- not a list\n", "a: b\n\n"[:5]} {
		doc := "k: " + literal([]byte(s), "  ")
		var got map[string]string
		if err := yaml.Unmarshal([]byte(doc), &got); err != nil {
			t.Errorf("%q: %v\n%s", s, err, doc)
			continue
		}
		if got["k"] != s {
			t.Errorf("literal(%q) reads back as %q", s, got["k"])
		}
	}
}

// TestRenderRejects covers sources the generator cannot use.
func TestRenderRejects(t *testing.T) {
	board := &fstest.MapFile{Data: []byte("{}\n")}
	for name, fsys := range map[string]fstest.MapFS{
		"no rules":      {"dashboards/a.json": board, "alerts/a.rules.test.yml": {Data: []byte("tests: []\n")}},
		"no dashboards": {"alerts/a.yml": {Data: []byte("groups: []\n")}, "dashboards/README": {}},
		"not groups":    {"alerts/a.yml": {Data: []byte("# c\nrules: []\n")}, "dashboards/a.json": board},
	} {
		if _, err := render(fsys); err == nil {
			t.Errorf("%s: render succeeded", name)
		}
	}
	out, err := render(fstest.MapFS{"alerts/a.b.yml": {Data: []byte("# c\n\ngroups:\n  - name: g\n    rules: []\n")}, "dashboards/a.json": board})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(out[kustomizeRules]); !strings.Contains(s, "name: a-b\n") || !strings.Contains(s, "spec:\n  groups:\n    - name: g\n") {
		t.Errorf("PrometheusRule from a.b.yml:\n%s", s)
	}
}

// decodeAll decodes every YAML document of data.
func decodeAll(t *testing.T, data []byte) []any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []any
	for {
		var v any
		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				return docs
			}
			t.Fatalf("decoding: %v\n%s", err, data)
		}
		docs = append(docs, v)
	}
}
