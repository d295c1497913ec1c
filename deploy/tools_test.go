package deploy

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The real tools the manifests and the chart are checked with: helm, kustomize and
// kubectl-validate, with the Kubernetes API's schemas and the Prometheus Operator's CRDs.
// deploy/tools/install.sh puts them, at the versions deploy/tools/versions pins, in one
// directory ($INFERPROBE_TOOLS, else $(go env GOPATH)/inferprobe-tools); .ci/run runs it before
// `make test`. Where they are missing the tests that need them skip, except in CI (CI=true),
// where they fail: CI must never pass without having run them.

// toolset is the tool directory and the pinned versions.
type toolset struct {
	dir      string
	versions map[string]string
}

var (
	toolsOnce sync.Once
	toolsSet  toolset
	toolsErr  error
)

// tools reads deploy/tools/versions and finds the tool directory.
func tools(t *testing.T) toolset {
	t.Helper()
	toolsOnce.Do(func() {
		toolsSet.versions, toolsErr = readVersions(filepath.Join("tools", "versions"))
		if toolsErr != nil {
			return
		}
		toolsSet.dir = os.Getenv("INFERPROBE_TOOLS")
		if toolsSet.dir == "" {
			var out []byte
			out, toolsErr = exec.Command("go", "env", "GOPATH").Output()
			toolsSet.dir = filepath.Join(strings.TrimSpace(string(out)), "inferprobe-tools")
		}
	})
	if toolsErr != nil {
		t.Fatal(toolsErr)
	}
	return toolsSet
}

// readVersions reads the KEY=VALUE lines of the versions file (comments and blank lines aside).
func readVersions(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vs := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			vs[k] = v
		}
	}
	return vs, sc.Err()
}

// path returns the path install.sh gives an entry, "<name>-<version of key>[/file]"; it fails
// the test in CI, and skips it elsewhere, when that path does not exist.
func (ts toolset) path(t *testing.T, name, key, file string) string {
	t.Helper()
	v := ts.versions[key]
	if v == "" {
		t.Fatalf("deploy/tools/versions sets no %s", key)
	}
	p := filepath.Join(ts.dir, name+"-"+v)
	if file != "" {
		p = filepath.Join(p, file)
	}
	if _, err := os.Stat(p); err != nil {
		msg := p + " is missing: run deploy/tools/install.sh (`make tools`)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI runs it in .ci/run, and these checks never skip in CI")
		}
		t.Skip(msg)
	}
	return p
}

func (ts toolset) helm(t *testing.T) string {
	return ts.path(t, "helm", "HELM_VERSION", "helm")
}

func (ts toolset) kustomize(t *testing.T) string {
	return ts.path(t, "kustomize", "KUSTOMIZE_VERSION", "kustomize")
}

func (ts toolset) kubectlValidate(t *testing.T) string {
	return ts.path(t, "kubectl-validate", "KUBECTL_VALIDATE_VERSION", "kubectl-validate")
}

func (ts toolset) schemas(t *testing.T) string {
	return ts.path(t, "kubernetes-openapi", "KUBERNETES_VERSION", "")
}

func (ts toolset) crds(t *testing.T) string {
	return ts.path(t, "prometheus-operator-crds", "PROMETHEUS_OPERATOR_VERSION", "")
}

// offlineEnv is the environment the tools run in: no cluster (no kubeconfig), no Helm state of
// the user's, and every HTTP(S) request sent to a closed port on this machine, so that a tool
// that would fetch something (kubectl-validate falls back to GitHub for schemas it lacks) fails
// instead of reaching the network.
func offlineEnv(t *testing.T) []string {
	dir := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "KUBECONFIG", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME":
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"KUBECONFIG="+filepath.Join(dir, "no-kubeconfig"),
		"HOME="+dir,
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_CACHE_HOME="+filepath.Join(dir, "cache"),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9",
		"http_proxy=http://127.0.0.1:9", "https_proxy=http://127.0.0.1:9",
		"NO_PROXY=", "no_proxy=",
	)
}

// runTool runs a tool offline and returns its standard output; a failure fails the test with
// the tool's standard error.
func runTool(t *testing.T, dir string, bin string, args ...string) []byte {
	t.Helper()
	out, errOut, err := runToolErr(t, dir, bin, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(bin), strings.Join(args, " "), err, errOut, out)
	}
	return out
}

// runToolErr is runTool for a run that may fail.
func runToolErr(t *testing.T, dir string, bin string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = offlineEnv(t)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.Bytes(), errOut.Bytes(), err
}
