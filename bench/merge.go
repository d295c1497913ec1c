package bench

import (
	"fmt"
	"time"
)

// Merge joins the reports of the shards of one run into the report of the whole run. Counts
// add up exactly; distributions merge their sketches (so percentiles keep RelativeAccuracy,
// never an average of percentiles); throughputs and achieved rates add up, since the shards
// ran side by side. Every shard 0..N−1 must be there once, with the same runs, targets and
// stages.
func Merge(reports ...*Report) (*Report, error) {
	if len(reports) == 0 {
		return nil, fmt.Errorf("merge: no reports")
	}
	first := reports[0]
	n := len(reports)
	seen := make([]bool, n)
	for i, r := range reports {
		switch {
		case r.SchemaVersion != SchemaVersion:
			return nil, fmt.Errorf("merge: report %d has schema_version %d, want %d", i, r.SchemaVersion, SchemaVersion)
		case r.Shard == nil:
			return nil, fmt.Errorf("merge: report %d is not a shard report (run with --shard)", i)
		case r.Shard.Count != n:
			return nil, fmt.Errorf("merge: report %d is shard %d of %d, but %d reports were given", i, r.Shard.Index, r.Shard.Count, n)
		case r.Shard.Index < 0 || r.Shard.Index >= n || seen[r.Shard.Index]:
			return nil, fmt.Errorf("merge: shard %d given twice or out of range", r.Shard.Index)
		case len(r.Runs) != len(first.Runs):
			return nil, fmt.Errorf("merge: shard %d has %d runs, shard %d has %d", r.Shard.Index, len(r.Runs), first.Shard.Index, len(first.Runs))
		}
		seen[r.Shard.Index] = true
	}
	out := &Report{SchemaVersion: SchemaVersion, Tool: first.Tool, Version: first.Version,
		StartedAt: first.StartedAt, FinishedAt: first.FinishedAt, SketchRelativeAccuracy: first.SketchRelativeAccuracy,
		WarmupRuns: first.WarmupRuns}
	for _, r := range reports {
		out.StartedAt = minTime(out.StartedAt, r.StartedAt)
		if r.FinishedAt.After(out.FinishedAt) {
			out.FinishedAt = r.FinishedAt
		}
	}
	for ri := range first.Runs {
		pass := Pass{Index: first.Runs[ri].Index}
		for ti, t := range first.Runs[ri].Targets {
			mt := Target{Name: t.Name, Model: t.Model, Seed: t.Seed}
			for si, st := range t.Stages {
				ms := Stage{Index: st.Index, Rate: 0, Concurrency: 0, Duration: st.Duration, Figures: *newFigures(),
					Load: LoadSummary{ScheduleDelay: NewDist()}}
				for _, r := range reports {
					if ti >= len(r.Runs[ri].Targets) || r.Runs[ri].Targets[ti].Name != t.Name || si >= len(r.Runs[ri].Targets[ti].Stages) {
						return nil, fmt.Errorf("merge: shard %d: run %d does not have target %q stage %d", r.Shard.Index, ri, t.Name, si)
					}
					o := r.Runs[ri].Targets[ti].Stages[si]
					ms.Rate += o.Rate
					ms.Concurrency += o.Concurrency
					if err := ms.Figures.merge(&o.Figures); err != nil {
						return nil, err
					}
					for name, f := range o.Adapters {
						if ms.Adapters == nil {
							ms.Adapters = map[string]*Figures{}
						}
						if ms.Adapters[name] == nil {
							ms.Adapters[name] = newFigures()
						}
						if err := ms.Adapters[name].merge(f); err != nil {
							return nil, err
						}
					}
					l := &ms.Load
					l.RequestedRate += o.Load.RequestedRate
					l.AchievedRate += o.Load.AchievedRate
					l.Sent += o.Load.Sent
					l.Dropped += o.Load.Dropped
					l.SendDuration = max(l.SendDuration, o.Load.SendDuration)
					if err := l.ScheduleDelay.Merge(o.Load.ScheduleDelay); err != nil {
						return nil, err
					}
				}
				mt.Stages = append(mt.Stages, ms)
			}
			pass.Targets = append(pass.Targets, mt)
		}
		out.Runs = append(out.Runs, pass)
	}
	out.Repeats = repeatStats(out.Runs)
	return out, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
