package traffic

import (
	"os"
	"path/filepath"

	"github.com/inferprobe/inferprobe/config"
)

// The trace pacer's registry functions: defaults, checks and the plan, which reads the file.

func defaultTrace(t *config.Traffic, given func(string) bool) {
	tr := t.Trace
	if tr == nil {
		return
	}
	if tr.TimeScale == 0 && !given("trace.time_scale") {
		tr.TimeScale = 1
	}
	if tr.Loop == nil {
		loop := true
		tr.Loop = &loop
	}
	if tr.Format == "" && !given("trace.format") {
		tr.Format = TraceFormatFor(tr.File)
	}
}

// checkTrace checks the trace block. The file itself is only checked to be a readable regular
// file here: its rows are read (with file:line errors) when the target is built, so that a
// bad trace at a reload keeps the running configuration.
func checkTrace(t config.Traffic, report config.Reporter) {
	tr := t.Trace
	if tr == nil {
		report("trace", "is required for pacer trace, e.g. {file: traces/azure-conv.csv, time_scale: 10}")
		return
	}
	switch {
	case tr.File == "":
		report("trace.file", "is required: the trace to replay (an Azure CSV or a Mooncake JSONL file)")
	default:
		if fi, err := os.Stat(tr.File); err != nil {
			report("trace.file", "cannot be read: %v", err)
		} else if !fi.Mode().IsRegular() {
			report("trace.file", "%s is not a regular file", config.Quote(tr.File))
		}
	}
	switch tr.Format {
	case TraceAzure, TraceMooncake:
	case "":
		report("trace.format", "is required: the extension of %s implies no format (azure for .csv, mooncake for .jsonl)", config.Quote(filepath.Base(tr.File)))
	default:
		report("trace.format", "must be %s or %s, not %s", TraceAzure, TraceMooncake, config.Quote(tr.Format))
	}
	if !(tr.TimeScale > 0 && tr.TimeScale <= MaxTimeScale) {
		report("trace.time_scale", "must be > 0 and ≤ %g (10 replays ten times faster), not %g", float64(MaxTimeScale), tr.TimeScale)
	}
	if tr.StartOffset < 0 {
		report("trace.start_offset", "must be ≥ 0 (trace time to skip from the first row), not %v", tr.StartOffset)
	}
}

func tracePlan(t config.Traffic, _ uint64) (Plan, error) {
	tr := t.Trace
	trace, err := LoadTrace(tr.File, tr.Format, tr.SkipInvalid)
	if err != nil {
		return Plan{}, err
	}
	r, err := NewReplay(trace, tr.TimeScale, tr.StartOffset, tr.Loop == nil || *tr.Loop)
	if err != nil {
		return Plan{}, err
	}
	return r.Plan(), nil
}
