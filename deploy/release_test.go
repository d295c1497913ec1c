package deploy

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// releaseInputs are the parts of the repository that scripts/release.sh edits, copied for the
// tests so that they never touch the checkout.
var releaseInputs = []string{"charts/inferprobe/Chart.yaml", "charts/inferprobe/examples", "deploy/kubernetes", "docs/deploy.md"}

// copyReleaseInputs copies releaseInputs from the repository into a new directory.
func copyReleaseInputs(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	for _, in := range releaseInputs {
		err := filepath.WalkDir(filepath.Join(repoRoot, in), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(repoRoot, p)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// release runs scripts/release.sh on root.
func release(root, version string) (string, error) {
	out, err := exec.Command("bash", filepath.Join(repoRoot, "scripts/release.sh"), version, root).CombinedOutput()
	return string(out), err
}

// snapshot reads every file under root by its relative path.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestRelease runs `make release`'s script on a copy of the files it edits: afterwards
// TestChartVersion's invariant holds for the new version, and every line it changed is a line
// that named the old version, now naming the new one. A tag that had drifted is set too, and a
// version that is not semantic is refused without touching anything.
func TestRelease(t *testing.T) {
	root := copyReleaseInputs(t)
	old, problems, err := versionProblems(root)
	if err != nil || len(problems) > 0 {
		t.Fatalf("the copy is not consistent before the release: %v %q", err, problems)
	}
	// One kustomization whose tag drifted: the release sets it as well.
	drifted := filepath.Join(root, "deploy/kubernetes/sidecar/kustomization.yaml")
	data, err := os.ReadFile(drifted)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(drifted, []byte(strings.Replace(string(data), `newTag: "`+old+`"`, `newTag: "0.0.9"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, problems, _ := versionProblems(root); len(problems) != 1 || !strings.Contains(problems[0], "sidecar/kustomization.yaml") {
		t.Fatalf("a drifted kustomization tag gives %q, want one problem naming it", problems)
	}
	before := snapshot(t, root)

	for _, bad := range []string{"", "1.2", "v1.2.3", "1.2.3 ", "1.2.3-", "latest"} {
		if out, err := release(root, bad); err == nil || !strings.Contains(out, "not a semantic version") {
			t.Errorf("release %q: %v %s, want it refused", bad, err, out)
		}
	}
	if after := snapshot(t, root); !mapsEqual(after, before) {
		t.Fatal("a refused release changed files")
	}

	for _, version := range []string{"1.2.3-rc.1", "1.2.3"} {
		prev := snapshot(t, root)
		prevVersion, _, _ := versionProblems(root)
		out, err := release(root, version)
		if err != nil {
			t.Fatalf("release %s: %v\n%s", version, err, out)
		}
		got, problems, err := versionProblems(root)
		if err != nil {
			t.Fatal(err)
		}
		if got != version {
			t.Errorf("after release %s the chart's version is %q", version, got)
		}
		for _, p := range problems {
			t.Errorf("after release %s: %s", version, p)
		}
		changed := 0
		for f, after := range snapshot(t, root) {
			a, b := strings.Split(prev[f], "\n"), strings.Split(after, "\n")
			if len(a) != len(b) {
				t.Errorf("release %s: %s went from %d to %d lines", version, f, len(a), len(b))
				continue
			}
			for i := range a {
				if a[i] == b[i] {
					continue
				}
				changed++
				drift := strings.Contains(a[i], `newTag: "0.0.9"`)
				if want := strings.ReplaceAll(a[i], prevVersion, version); b[i] != want && !drift {
					t.Errorf("release %s: %s:%d changed from %q to %q", version, f, i+1, a[i], b[i])
				}
			}
		}
		// Chart.yaml's two lines, three kustomization tags, and at least one example reference.
		if changed < 6 {
			t.Errorf("release %s changed %d lines, want at least 6", version, changed)
		}
	}
}

// mapsEqual compares two snapshots.
func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestVersionProblems shows that the invariant fails where it should: an appVersion that is
// not the version, an example reference to another release, and a release tag that is not
// the chart's version.
func TestVersionProblems(t *testing.T) {
	root := copyReleaseInputs(t)
	version, problems, err := versionProblems(root)
	if err != nil || len(problems) > 0 {
		t.Fatalf("copy: %v %q", err, problems)
	}
	chart := filepath.Join(root, "charts/inferprobe/Chart.yaml")
	data, err := os.ReadFile(chart)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(chart, []byte(strings.Replace(string(data), `appVersion: "`+version+`"`, `appVersion: "9.9.9"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	// The version against the appVersion, then each kustomization tag and example reference.
	if _, problems, _ := versionProblems(root); len(problems) < 5 || !strings.Contains(problems[0], "differ") {
		t.Errorf("appVersion 9.9.9 against version %s: %q", version, problems)
	}
	if err := os.WriteFile(chart, data, 0o644); err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join(root, "docs/deploy.md")
	text, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(doc, append(text, []byte("\nregistry.example.com/platform/inferprobe:0.0.1\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, problems, _ := versionProblems(root); len(problems) != 1 || !strings.Contains(problems[0], "docs/deploy.md") {
		t.Errorf("a stale example reference gives %q", problems)
	}
	if p := tagProblem("v"+version, version); p != "" {
		t.Errorf("tag v%s against %s: %s", version, version, p)
	}
	if p := tagProblem("v9.9.9", version); !strings.Contains(p, "make release VERSION=9.9.9") {
		t.Errorf("tag v9.9.9 against %s: %q", version, p)
	}
}
