package bench

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/traffic"
)

// Sweep types.
const (
	SweepLinear    = config.SweepLinear
	SweepGeometric = config.SweepGeometric
)

// Sweep configures a sweep to saturation: a closed-loop probe first finds the rate each
// target sustains (its successful requests per second with ProbeConcurrency requests in
// flight, as inference-perf does), then Stages open-loop stages of StageDuration climb to
// that rate, linearly (R/K, 2R/K, …, R) or geometrically (from R/10 to R, a constant factor
// apart). The knee is the highest stage rate up to which the goodput ratio stays at or above
// the goodput target (Knee). It is the config's `sweep` block (SweepFromConfig) or the
// --sweep.* flags of `inferprobe run`.
type Sweep struct {
	Type             string
	Stages           int
	StageDuration    time.Duration
	ProbeDuration    time.Duration
	ProbeConcurrency int
	// GoodputTarget is the goodput ratio a stage must keep to be at or below the knee; when
	// 0, each target's own slo.target_ratio (0.99 for a target without one).
	GoodputTarget float64
}

// SweepFromConfig returns the sweep of a config's `sweep` block (with its defaults applied).
func SweepFromConfig(c *config.Sweep) Sweep {
	return Sweep{Type: c.Type, Stages: c.Stages, StageDuration: c.StageDuration, ProbeDuration: c.ProbeDuration,
		ProbeConcurrency: c.ProbeConcurrency, GoodputTarget: c.GoodputTarget}
}

// defaultGoodputTarget is the knee's goodput target of a target without an slo.target_ratio
// (a Config built in code without defaults): the config's own default.
const defaultGoodputTarget = 0.99

// Knee returns the index of the knee stage: the last of the stages, in the order they climb,
// up to which every stage's goodput ratio is at least target; −1 when the first stage is
// already below it. A stage that passes after one that failed is not the knee: a server that
// missed the target at a lower rate cannot be said to sustain the higher one.
func Knee(ratios []float64, target float64) int {
	knee := -1
	for k, r := range ratios {
		if !(r >= target) { // NaN fails too
			break
		}
		knee = k
	}
	return knee
}

// SweepResult is one target's sweep in a report.
type SweepResult struct {
	Target string `json:"target"`
	Type   string `json:"type"`
	// ProbeConcurrency and ProbeRate are the saturation probe and the rate it sustained.
	ProbeConcurrency int     `json:"probe_concurrency"`
	ProbeRate        float64 `json:"probe_rate"`
	// Rates are the stages' rates, in order.
	Rates []float64 `json:"rates"`
	// GoodputTarget is the ratio the knee keeps; KneeRate and KneeStage are the highest stage
	// up to which every stage kept it (KneeStage −1 when the first did not).
	GoodputTarget float64 `json:"goodput_target"`
	KneeRate      float64 `json:"knee_rate"`
	KneeStage     int     `json:"knee_stage"`
}

// Check returns why the sweep cannot run (a field out of range), before any traffic.
func (s *Sweep) Check() error {
	switch {
	case s.Type != SweepLinear && s.Type != SweepGeometric:
		return fmt.Errorf("sweep type %q: want %s or %s", s.Type, SweepLinear, SweepGeometric)
	case s.Stages < 1 || (s.Type == SweepGeometric && s.Stages < 2):
		return fmt.Errorf("sweep stages %d: want ≥ 1 (≥ 2 for geometric)", s.Stages)
	case s.StageDuration <= 0 || s.ProbeDuration <= 0:
		return fmt.Errorf("sweep stage and probe durations must be > 0")
	case s.ProbeConcurrency < 1:
		return fmt.Errorf("sweep probe concurrency %d: want ≥ 1", s.ProbeConcurrency)
	case s.GoodputTarget < 0 || s.GoodputTarget > 1:
		return fmt.Errorf("sweep goodput target %g: want > 0 and ≤ 1, or 0 for each target's slo.target_ratio", s.GoodputTarget)
	}
	return nil
}

// sweepRates returns the stage rates up to r.
func sweepRates(typ string, k int, r float64) []float64 {
	rates := make([]float64, k)
	for i := range k {
		if typ == SweepLinear {
			rates[i] = r * float64(i+1) / float64(k)
		} else {
			rates[i] = r * math.Pow(10, float64(i-(k-1))/float64(k-1))
		}
	}
	return rates
}

// RunSweep runs a sweep to saturation of every target of cfg and returns the report of the
// stage runs, with the sweep's findings in Report.Sweeps. Warmup and repeat options apply to
// the stage runs.
func RunSweep(ctx context.Context, cfg *config.Config, opts Options, sw Sweep) (*Report, error) {
	if err := sw.Check(); err != nil {
		return nil, err
	}
	probeCfg := cloneConfig(cfg)
	Quick(probeCfg, 0, sw.ProbeConcurrency, sw.ProbeDuration)
	progressf(opts.Progress, "sweep: probing saturation with %d requests in flight for %s", sw.ProbeConcurrency, sw.ProbeDuration)
	probeOpts := opts
	probeOpts.WarmupRuns, probeOpts.RepeatRuns, probeOpts.RepeatUntilCV, probeOpts.Requests = 0, 1, 0, nil
	probe, err := Run(ctx, probeCfg, probeOpts)
	if err != nil {
		return nil, fmt.Errorf("sweep probe: %w", err)
	}
	stagesCfg := cloneConfig(cfg)
	var results []SweepResult
	for i, t := range probe.Runs[0].Targets {
		r := t.Stages[0].Throughput.SuccessfulPerSecond
		if r <= 0 {
			return nil, fmt.Errorf("sweep probe: target %q completed no request", t.Name)
		}
		rates := sweepRates(sw.Type, sw.Stages, r)
		tr := &stagesCfg.Targets[i].Traffic
		tr.Pacer, tr.Rate, tr.Burstiness, tr.Concurrency, tr.Stages = traffic.KindStages, 0, 0, 0, nil
		for _, rate := range rates {
			tr.Stages = append(tr.Stages, config.Stage{Rate: rate, Duration: sw.StageDuration, Pacer: traffic.KindPoisson})
		}
		target := sw.GoodputTarget
		if target == 0 {
			target = cfg.Targets[i].SLO.TargetRatio
		}
		if target == 0 {
			target = defaultGoodputTarget
		}
		results = append(results, SweepResult{Target: t.Name, Type: sw.Type, ProbeConcurrency: sw.ProbeConcurrency,
			ProbeRate: r, Rates: rates, GoodputTarget: target, KneeStage: -1})
		progressf(opts.Progress, "sweep: target %s sustained %.2f req/s; stages at %v", t.Name, r, rates)
	}
	rep, err := Run(ctx, stagesCfg, opts)
	if err != nil {
		return nil, err
	}
	for i := range results {
		// The knee from the mean goodput ratio of each stage over the measured runs.
		ratios := make([]float64, len(results[i].Rates))
		for k := range ratios {
			for _, run := range rep.Runs {
				ratios[k] += run.Targets[i].Stages[k].GoodputRatio / float64(len(rep.Runs))
			}
		}
		if k := Knee(ratios, results[i].GoodputTarget); k >= 0 {
			results[i].KneeStage, results[i].KneeRate = k, results[i].Rates[k]
		}
	}
	rep.Sweeps = results
	return rep, nil
}

// cloneConfig copies the parts of cfg a sweep rewrites (the targets and their traffic).
func cloneConfig(cfg *config.Config) *config.Config {
	c := *cfg
	c.Targets = append([]config.Target(nil), cfg.Targets...)
	for i := range c.Targets {
		c.Targets[i].Traffic.Stages = append([]config.Stage(nil), cfg.Targets[i].Traffic.Stages...)
	}
	return &c
}
