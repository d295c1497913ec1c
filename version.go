package main

import (
	"runtime/debug"

	"github.com/prometheus/common/version"
)

// init gives `go build` and `go run .` a version and a revision: without -ldflags (the
// Makefile sets them) version.Version and version.Revision are empty, and --version, the log
// and inferprobe_build_info would show nothing. The module build info has what the Go
// toolchain stamped instead: in a clean clone Go 1.24+ stamps a pseudo-version
// (v0.0.0-<time>-<12 digits>) and vcs.revision; in a git worktree (.git a file) it stamps
// neither, so such a build says "devel" with no revision.
func init() {
	if bi, ok := debug.ReadBuildInfo(); ok {
		version.Version = fallbackVersion(version.Version, bi)
		version.Revision = fallbackRevision(version.Revision, bi)
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
	rev, dirty := vcs(bi)
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

// fallbackRevision returns set when -ldflags gave one, else the whole vcs.revision with
// "-dirty" for a modified tree, else "": the revision label of inferprobe_build_info and of
// --version.
func fallbackRevision(set string, bi *debug.BuildInfo) string {
	if set != "" {
		return set
	}
	rev, dirty := vcs(bi)
	if rev != "" && dirty {
		rev += "-dirty"
	}
	return rev
}

// vcs returns the revision the toolchain stamped and whether the tree was modified.
func vcs(bi *debug.BuildInfo) (rev string, dirty bool) {
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	return rev, dirty
}
