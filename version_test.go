package main

import (
	"runtime/debug"
	"testing"

	"github.com/prometheus/common/version"
)

func TestFallbackVersion(t *testing.T) {
	rev := []debug.BuildSetting{{Key: "vcs.revision", Value: "4aba078c0ffee1234567890"}, {Key: "vcs.modified", Value: "false"}}
	dirty := []debug.BuildSetting{{Key: "vcs.revision", Value: "4aba078c0ffee1234567890"}, {Key: "vcs.modified", Value: "true"}}
	for _, tc := range []struct {
		name, set, main string
		settings        []debug.BuildSetting
		want            string
	}{
		{"ldflags win", "v1.2.3", "(devel)", rev, "v1.2.3"},
		{"go install of a tag", "", "v0.4.0", rev, "v0.4.0"},
		// Go 1.24 and later stamp a clean checkout's build with a pseudo-version.
		{"go build in a clean clone", "", "v0.0.0-20261202030818-16d3cbc2703b", rev, "v0.0.0-20261202030818-16d3cbc2703b"},
		{"go build in a checkout", "", "(devel)", rev, "devel-4aba078c0ffe"},
		{"modified tree", "", "(devel)", dirty, "devel-4aba078c0ffe-dirty"},
		{"no vcs info", "", "(devel)", nil, "devel"},
	} {
		bi := &debug.BuildInfo{Main: debug.Module{Version: tc.main}, Settings: tc.settings}
		if got := fallbackVersion(tc.set, bi); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	// The test binary itself has build info: whatever it holds, the version is not empty.
	if version.Version == "" {
		t.Error("version.Version empty after init")
	}
}

func TestFallbackRevision(t *testing.T) {
	rev := []debug.BuildSetting{{Key: "vcs.revision", Value: "4aba078c0ffee1234567890"}, {Key: "vcs.modified", Value: "false"}}
	dirty := []debug.BuildSetting{{Key: "vcs.revision", Value: "4aba078c0ffee1234567890"}, {Key: "vcs.modified", Value: "true"}}
	for _, tc := range []struct {
		name, set string
		settings  []debug.BuildSetting
		want      string
	}{
		{"ldflags win", "abc123", rev, "abc123"},
		{"go build in a checkout", "", rev, "4aba078c0ffee1234567890"},
		{"modified tree", "", dirty, "4aba078c0ffee1234567890-dirty"},
		{"no vcs info", "", nil, ""},
	} {
		if got := fallbackRevision(tc.set, &debug.BuildInfo{Settings: tc.settings}); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
