// Package testkit holds the few helpers that several packages' tests share: a log buffer safe
// for concurrent writes, polling for a condition, finding an external tool the tests need, and
// reading one sample out of parsed metric families.
package testkit

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// LockedBuffer is a bytes.Buffer safe for a logger's goroutines and the test's.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WaitFor polls cond every poll until it holds, and fails the test once timeout has passed.
func WaitFor(t testing.TB, timeout, poll time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(poll)
	}
}

// SharedFile finds rel (e.g. "traces/azure-llm-2023-conv.csv") in the project's shared/
// directory, which lives beside the repository (../shared from its root): it looks in
// shared/ of every directory above the test's package, so it is found from a checkout at any
// depth below the directory that holds shared/ (a clone beside it, or a worktree further
// down). A missing file fails the test in CI (CI set) and skips it elsewhere.
func SharedFile(t testing.TB, rel string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
		p := filepath.Join(dir, "shared", rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("shared/%s not found above the package: CI checks out shared/ beside the repository", rel)
	}
	t.Skipf("shared/%s is not beside the repository", rel)
	return ""
}

// Tool finds an external program a test needs. CI installs every such program (.ci/run), so
// when the CI environment variable is set a missing one fails the test; elsewhere the test is
// skipped with install, the hint for getting it.
func Tool(t testing.TB, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found; .ci/run installs it (%s)", name, install)
	}
	t.Skipf("%s not installed (%s); CI runs this test", name, install)
	return ""
}

// Value returns the value of the first series of family name whose labels include want: a
// counter's or gauge's value, or a histogram's sample count.
func Value(families map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf, ok := families[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		have := make(map[string]string, len(m.GetLabel()))
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if got, ok := have[k]; !ok || got != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}
