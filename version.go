package main

import (
	"runtime/debug"

	"github.com/prometheus/common/version"
)

// init gives `go build` and `go run .` a version: without -ldflags (the Makefile sets them)
// version.Version is empty, and --version, the log and inferprobe_build_info would show
// nothing. The module build info has what the Go toolchain stamped instead.
func init() {
	if bi, ok := debug.ReadBuildInfo(); ok {
		version.Version = fallbackVersion(version.Version, bi)
	}
}

// fallbackVersion returns set when -ldflags gave one; else the module version (a tagged
// `go install`), else "devel-" and the first 12 digits of vcs.revision, with "-dirty" for a
// modified tree, else "devel".
func fallbackVersion(set string, bi *debug.BuildInfo) string {
	if set != "" {
		return set
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel-" + rev
}
