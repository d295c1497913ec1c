// Package bench runs one-shot benchmarks on the engine the daemon uses, so that a number in a
// report and a number on a dashboard mean the same: each target's stages run once per pass,
// after optional warmup passes that are not reported, for one or more measured passes whose
// headline figures get repeat statistics. Distributions are DDSketches with exact summary
// statistics (RelativeAccuracy bounds every percentile), so reports of shards merge exactly.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/schollz/progressbar/v3"

	"github.com/inferprobe/inferprobe/collector"
	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/engine"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/traffic"
)

// Options configure Run.
type Options struct {
	// WarmupRuns are whole passes run first and not reported (JIT and graph capture stay out
	// of the measured runs); the warmup gate still applies inside every pass.
	WarmupRuns int
	// RepeatRuns is how many measured passes to run (at least 1).
	RepeatRuns int
	// RepeatUntilCV, when > 0, stops after a measured pass once the coefficient of variation
	// of CVFigure (of every target's every stage) is below it; at least two passes run, at
	// most RepeatRuns.
	RepeatUntilCV float64
	// CVFigure names the headline figure RepeatUntilCV watches (FigureNames); default
	// FigureOutputTokPerS.
	CVFigure string
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
	// Progress, when set, receives a plain progress line every ProgressInterval (10 s by
	// default) and one per pass; with ProgressBar, a progress bar instead of the periodic
	// lines (for a terminal).
	Progress         io.Writer
	ProgressInterval time.Duration
	ProgressBar      bool
	// Requests, when set, receives every request of every measured pass as a JSON line.
	Requests io.Writer
	// Probe, when set, is the Prometheus collector the runs report to (a /metrics endpoint
	// served while the run goes on).
	Probe *collector.Probe
	// Version is written into the report.
	Version string
	// Accelerator, when set, is the accelerator collector (NVML) to summarise per stage.
	Accelerator prometheus.Collector
	// Shard, when set, runs only that shard of every target (traffic.Shard) and marks the
	// report as partial; Merge joins the shards' reports.
	Shard *Shard
}

// Check returns why cfg cannot run as a one-shot benchmark: every target's plan must end (a
// stages pacer, or see Quick), before any traffic is sent.
func Check(cfg *config.Config) error {
	var errs []error
	for _, t := range cfg.Targets {
		plan, err := traffic.PlanFor(t.Traffic, 0)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("target %q: %w", t.Name, err))
		case plan.Length() == 0 && plan.Replay == nil: // a trace, run once, ends after its rows
			errs = append(errs, fmt.Errorf("target %q: traffic.pacer %s never ends; a one-shot run needs pacer: stages, or --duration for a quick run", t.Name, t.Traffic.Pacer))
		}
	}
	return errors.Join(errs...)
}

// Quick turns every target's traffic into one stage of duration d: at the target's own rate
// and pacer, or, when rate or concurrency is given (> 0), at that one instead. It is what the
// --rate, --concurrency and --duration flags of `inferprobe run` do.
func Quick(cfg *config.Config, rate float64, concurrency int, d time.Duration) {
	for i := range cfg.Targets {
		tr := &cfg.Targets[i].Traffic
		st := config.Stage{Duration: d}
		switch {
		case concurrency > 0:
			st.Concurrency = concurrency
		case rate > 0:
			st.Rate, st.Pacer = rate, traffic.KindConstant
			if tr.Pacer == traffic.KindPoisson || tr.Pacer == traffic.KindGamma {
				st.Pacer, st.Burstiness = tr.Pacer, tr.Burstiness
			}
		case tr.Pacer == traffic.KindConcurrent:
			st.Concurrency = tr.Concurrency
		case tr.Pacer == traffic.KindStages || tr.Pacer == traffic.KindTrace:
			continue // already a plan that ends (a trace, run once, ends after its rows)
		default:
			st.Rate, st.Pacer = tr.Rate, tr.Pacer
			if tr.Pacer == traffic.KindGamma {
				st.Burstiness = tr.Burstiness
			}
		}
		tr.Pacer, tr.Rate, tr.Burstiness, tr.Concurrency = traffic.KindStages, 0, 0, 0
		tr.Stages = []config.Stage{st}
		tr.MaxInFlight = max(tr.MaxInFlight, st.Concurrency)
	}
}

// Run runs cfg as a one-shot benchmark and returns its report. cfg must be validated (engine.Load
// or engine.Parse) and pass Check.
func Run(ctx context.Context, cfg *config.Config, opts Options) (*Report, error) {
	if err := Check(cfg); err != nil {
		return nil, err
	}
	if opts.RepeatRuns < 1 {
		opts.RepeatRuns = 1
	}
	if opts.CVFigure == "" {
		opts.CVFigure = FigureOutputTokPerS
	}
	if _, ok := headlines(newFigures())[opts.CVFigure]; !ok {
		return nil, fmt.Errorf("repeat-until-cv figure %q is not one of %v", opts.CVFigure, FigureNames())
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 10 * time.Second
	}
	rep := &Report{SchemaVersion: SchemaVersion, Tool: "inferprobe", Version: opts.Version,
		StartedAt: time.Now().UTC(), SketchRelativeAccuracy: RelativeAccuracy, WarmupRuns: opts.WarmupRuns, Shard: opts.Shard}
	if sh := opts.Shard; sh != nil && (sh.Count < 1 || sh.Index < 0 || sh.Index >= sh.Count) {
		return nil, fmt.Errorf("shard %d/%d: want 0 ≤ index < count", sh.Index, sh.Count)
	}
	total := opts.WarmupRuns + opts.RepeatRuns
	for pass := 0; pass < total; pass++ {
		measured := pass >= opts.WarmupRuns
		label := fmt.Sprintf("warmup run %d/%d", pass+1, opts.WarmupRuns)
		var requests io.Writer
		if measured {
			label = fmt.Sprintf("run %d/%d", pass-opts.WarmupRuns+1, opts.RepeatRuns)
			requests = opts.Requests
		}
		run, err := runPass(ctx, cfg, opts, pass-opts.WarmupRuns, label, requests)
		if err != nil {
			return nil, err
		}
		if measured {
			rep.Runs = append(rep.Runs, run)
			if opts.RepeatUntilCV > 0 && len(rep.Runs) >= 2 && settled(rep.Runs, opts.CVFigure, opts.RepeatUntilCV) {
				progressf(opts.Progress, "%s of %s is below %g after %d runs: stopping", "the coefficient of variation", opts.CVFigure, opts.RepeatUntilCV, len(rep.Runs))
				break
			}
		}
	}
	rep.Repeats = repeatStats(rep.Runs)
	rep.FinishedAt = time.Now().UTC()
	return rep, nil
}

// settled reports whether figure's CV is below limit for every target and stage.
func settled(runs []Pass, figure string, limit float64) bool {
	for _, rs := range repeatStats(runs) {
		if st := rs.Figures[figure]; !(st.CV < limit) {
			return false
		}
	}
	return true
}

// counter counts a pass's requests for progress lines.
type counter struct{ sent, done, failed atomic.Int64 }

func (c *counter) Observe(ev prober.Event) {
	switch ev.Kind {
	case prober.EventRequestStarted:
		c.sent.Add(1)
	case prober.EventRequestFinished:
		c.done.Add(1)
		if ev.Record.Result != prober.ResultSuccess {
			c.failed.Add(1)
		}
	}
}

// runPass runs every target's plan once.
func runPass(ctx context.Context, cfg *config.Config, opts Options, index int, label string, requests io.Writer) (Pass, error) {
	b, err := NewBuilder(cfg, index, requests, opts.Shard)
	if err != nil {
		return Pass{}, err
	}
	count := &counter{}
	// The counter is atomic adds, cheap enough for the request path: inline, not a second queue.
	eo := engine.Options{Logger: opts.Logger, Probe: opts.Probe, Once: true, Observers: []prober.Observer{b}, Inline: []prober.Observer{count}}
	if opts.Shard != nil {
		eo.Shard, eo.Shards = opts.Shard.Index, opts.Shard.Count
	}
	set := engine.New(ctx, eo)
	serverReg := prometheus.NewRegistry()
	serverReg.MustRegister(set.Server())
	b.SetServer(serverReg)
	if opts.Accelerator != nil {
		accelReg := prometheus.NewRegistry()
		if err := accelReg.Register(opts.Accelerator); err == nil {
			b.SetAccelerator(accelReg)
		}
	}
	start := time.Now()
	if err := set.Apply(cfg); err != nil {
		set.Close(ctx)
		return Pass{}, err
	}
	seeds := map[string]uint64{}
	for _, t := range set.Targets() {
		seeds[t.Name] = t.Seed
	}
	progressf(opts.Progress, "%s: started", label)
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	var bar *progressbar.ProgressBar
	interval := opts.ProgressInterval
	if opts.ProgressBar && opts.Progress != nil {
		bar = progressbar.NewOptions(int(passLength(cfg)/time.Millisecond), progressbar.OptionSetWriter(opts.Progress),
			progressbar.OptionSetWidth(30), progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish(),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetDescription(label))
		interval = 200 * time.Millisecond
	}
	go func() { // owned by runPass: stopped below
		defer close(progressDone)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-tick.C:
				status := fmt.Sprintf("%d sent, %d finished, %d failed", count.sent.Load(), count.done.Load(), count.failed.Load())
				if bar != nil {
					bar.Describe(label + ": " + status)
					_ = bar.Set(int(time.Since(start) / time.Millisecond))
					continue
				}
				progressf(opts.Progress, "%s: %s, %s", label, time.Since(start).Round(time.Second), status)
			}
		}
	}()
	waitErr := set.Wait(ctx)
	b.EndServer()
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	set.Close(closeCtx) // delivers every queued event to the builder
	cancel()
	close(stopProgress)
	<-progressDone
	if bar != nil {
		_ = bar.Finish()
	}
	if waitErr != nil {
		return Pass{}, fmt.Errorf("%s: %w", label, waitErr)
	}
	if d := set.QueueDropped(); d > 0 {
		return Pass{}, fmt.Errorf("%s: the report builder fell %d events behind and lost them", label, d)
	}
	progressf(opts.Progress, "%s: done in %s, %d requests, %d failed", label,
		time.Since(start).Round(10*time.Millisecond), count.done.Load(), count.failed.Load())
	return b.Pass(seeds), nil
}

// passLength is how long one pass's longest target plan lasts.
func passLength(cfg *config.Config) time.Duration {
	var longest time.Duration
	for _, t := range cfg.Targets {
		if p, err := traffic.PlanFor(t.Traffic, 0); err == nil {
			longest = max(longest, p.Length())
		}
	}
	return max(longest, time.Millisecond)
}

func progressf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, "inferprobe run: "+format+"\n", args...)
	}
}

// Failures returns why each target that did not work failed: a target none of whose measured
// requests succeeded in some run. An empty result means every target worked.
func (r *Report) Failures() []string {
	var out []string
	for _, run := range r.Runs {
		for _, t := range run.Targets {
			var ok, all int64
			results, warmup := map[string]int64{}, map[string]int64{}
			for _, st := range t.Stages {
				for k, v := range st.Requests {
					results[k] += v
					all += v
				}
				for k, v := range st.WarmupResults {
					warmup[k] += v
				}
				ok += st.Requests[prober.ResultSuccess]
			}
			if ok == 0 {
				out = append(out, fmt.Sprintf("run %d, target %q: none of %d measured requests succeeded %v; while warming up: %v",
					run.Index, t.Name, all, results, warmup))
			}
		}
	}
	return out
}
