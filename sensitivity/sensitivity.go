// Package sensitivity runs the slowdown ("speed bump") experiment: throughput against a delay
// injected into the server, level by level, on the engine the daemon and one-shot runs use.
// For each level it applies the delay (starting the server with the level's environment, or
// telling a running one through an HTTP hook), waits until the server is ready, runs the
// configured load for a warmup and a measured window per repeat, and stops the server; then it
// fits throughput against delay and classifies the result (linear, sub-linear, none,
// threshold), which says whether the code the delay was injected into is on the critical path.
package sensitivity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/inferprobe/inferprobe/bench"
	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/traffic"
)

// SchemaVersion is the version of the report format (docs/sensitivity.md).
const SchemaVersion = 1

// Report is the experiment's result.
type Report struct {
	SchemaVersion int       `json:"schema_version"`
	Tool          string    `json:"tool"`
	Version       string    `json:"version"`
	StartedAt     time.Time `json:"started_at"`
	FinishedAt    time.Time `json:"finished_at"`
	// Levels in configuration order (a failed level has Error and no measurements).
	Levels []Level `json:"levels"`
	// Analysis is computed over the levels that were measured.
	Analysis Analysis `json:"analysis"`
	// Overhead is the experiment's own time: everything between StartedAt and FinishedAt that
	// is not a warmup or measured window, with its main parts (seconds).
	Overhead Overhead `json:"overhead"`
	// Subsystems ranks the target-pattern files by throughput drop at one delay, largest
	// first; empty without experiment.subsystems.
	Subsystems []Subsystem `json:"subsystems,omitempty"`
}

// Subsystem is one target-pattern file compared at the subsystem delay.
type Subsystem struct {
	File    string `json:"file"`
	DelayNS int64  `json:"delay_ns"`
	Error   string `json:"error,omitempty"`
	// OutputTokensPerSecond is its throughput; Drop the relative drop from the baseline
	// (the first level, when it is 0, else a measurement without delay).
	OutputTokensPerSecond bench.Stat `json:"output_tokens_per_second"`
	Drop                  float64    `json:"drop"`
	Rank                  int        `json:"rank"`
}

// Level is one injected delay.
type Level struct {
	Index   int     `json:"index"`
	DelayNS int64   `json:"delay_ns"`
	Delay   string  `json:"delay"`
	Error   string  `json:"error,omitempty"`
	Ready   float64 `json:"ready_seconds"`
	// Repeats are the measurements; OutputTokensPerSecond and RequestsPerSecond their
	// statistics.
	Repeats               []Measurement `json:"repeats"`
	OutputTokensPerSecond bench.Stat    `json:"output_tokens_per_second"`
	RequestsPerSecond     bench.Stat    `json:"requests_per_second"`
}

// Measurement is one repeat's measured window, summed over targets.
type Measurement struct {
	OutputTokensPerSecond float64 `json:"output_tokens_per_second"`
	RequestsPerSecond     float64 `json:"requests_per_second"`
	Requests              int64   `json:"requests"`
	Failed                int64   `json:"failed"`
	E2EMean               float64 `json:"e2e_mean_seconds"`
}

// Overhead is the time the experiment spent outside its warmup and measured windows. Total is
// the whole of it (wall time less the windows), so nothing goes uncounted; Start, Stop, Repeat
// and Output are its main parts and the rest (analysis, bookkeeping) is what they leave.
type Overhead struct {
	// StartSeconds is starting the servers (or calling the hook) and waiting until ready.
	StartSeconds float64 `json:"start_seconds"`
	// StopSeconds is stopping the servers.
	StopSeconds float64 `json:"stop_seconds"`
	// RepeatSeconds is each repeat's time around its windows: building the engine, the
	// requests still in flight when the measured window ends, tearing it down.
	RepeatSeconds float64 `json:"repeat_seconds"`
	// OutputSeconds is drawing the plot (AddOutput), when there is one.
	OutputSeconds float64 `json:"output_seconds"`
	// WindowsSeconds is the warmup and measured windows that ran, summed.
	WindowsSeconds float64 `json:"windows_seconds"`
	// WallSeconds is FinishedAt − StartedAt.
	WallSeconds float64 `json:"wall_seconds"`
	// TotalSeconds is WallSeconds − WindowsSeconds.
	TotalSeconds float64 `json:"total_seconds"`
}

// AddOutput books d, the time spent writing the experiment's outputs after Run (the plot), as
// overhead and moves FinishedAt to now, so that the report written last accounts for it.
func (r *Report) AddOutput(d time.Duration) {
	r.Overhead.OutputSeconds += d.Seconds()
	r.finish()
}

// finish stamps FinishedAt and closes the overhead's books.
func (r *Report) finish() {
	r.FinishedAt = time.Now().UTC()
	r.Overhead.WallSeconds = r.FinishedAt.Sub(r.StartedAt).Seconds()
	r.Overhead.TotalSeconds = r.Overhead.WallSeconds - r.Overhead.WindowsSeconds
}

// Options configure Run.
type Options struct {
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
	// Progress receives a line per level and repeat.
	Progress io.Writer
	// ServerOutput receives the started servers' stdout and stderr (nil discards them).
	ServerOutput io.Writer
	// TargetsFile is passed to templates as .TargetsFile.
	TargetsFile string
	// Version is written into the report.
	Version string
}

// Run runs cfg's experiment. A level whose server fails to start is reported (Level.Error) and
// the experiment goes on; servers are always stopped, their whole process group.
func Run(ctx context.Context, cfg *config.Config, opts Options) (*Report, error) {
	exp := cfg.Experiment
	if exp == nil {
		return nil, errors.New("sensitivity: the configuration has no experiment block")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ServerOutput == nil {
		opts.ServerOutput = io.Discard
	}
	rep := &Report{SchemaVersion: SchemaVersion, Tool: "inferprobe", Version: opts.Version, StartedAt: time.Now().UTC()}
	load := loadConfig(cfg, exp)
	var delays, means []float64
	var pts []Point
	for i, d := range exp.Levels {
		vars := exp.Vars(i, d, opts.TargetsFile)
		lvl := Level{Index: i, DelayNS: vars.DelayNS, Delay: vars.Delay}
		start := time.Now()
		stop, err := apply(ctx, exp, vars, opts.ServerOutput)
		lvl.Ready = time.Since(start).Seconds()
		rep.Overhead.StartSeconds += lvl.Ready
		if err != nil {
			lvl.Error = err.Error()
			progressf(opts.Progress, "level %d (%s): %v; going on", i, vars.Delay, err)
			rep.Levels = append(rep.Levels, lvl)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		var tputs, rps []float64
		for r := range exp.Repeats {
			m, err := rep.measure(ctx, exp, load, opts)
			if err != nil {
				lvl.Error = fmt.Sprintf("repeat %d: %v", r, err)
				break
			}
			lvl.Repeats = append(lvl.Repeats, m)
			tputs = append(tputs, m.OutputTokensPerSecond)
			rps = append(rps, m.RequestsPerSecond)
			pts = append(pts, Point{X: d.Seconds(), Y: m.OutputTokensPerSecond})
			progressf(opts.Progress, "level %d (%s) repeat %d/%d: %.1f output tok/s, %.2f req/s, %d failed",
				i, vars.Delay, r+1, exp.Repeats, m.OutputTokensPerSecond, m.RequestsPerSecond, m.Failed)
		}
		stopStart := time.Now()
		stop()
		rep.Overhead.StopSeconds += time.Since(stopStart).Seconds()
		lvl.OutputTokensPerSecond, lvl.RequestsPerSecond = bench.NewStat(tputs), bench.NewStat(rps)
		if len(tputs) > 0 {
			delays = append(delays, d.Seconds())
			means = append(means, lvl.OutputTokensPerSecond.Mean)
		}
		rep.Levels = append(rep.Levels, lvl)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if len(means) == 0 {
		rep.finish()
		return rep, errors.New("sensitivity: no level could be measured")
	}
	rep.Analysis = Analyze(delays, means, pts)
	if sub := exp.Subsystems; sub != nil {
		base := 0.0
		if len(exp.Levels) > 0 && exp.Levels[0] == 0 && len(rep.Levels[0].Repeats) > 0 {
			base = rep.Levels[0].OutputTokensPerSecond.Mean
		} else {
			lvl := runLevel(ctx, exp, load, exp.Vars(-1, 0, ""), opts, rep)
			if lvl.Error != "" {
				rep.finish()
				return rep, fmt.Errorf("sensitivity: the subsystem baseline (no delay): %s", lvl.Error)
			}
			base = lvl.OutputTokensPerSecond.Mean
		}
		for i, f := range sub.Files {
			vars := exp.Vars(len(exp.Levels)+i, sub.Delay, f)
			lvl := runLevel(ctx, exp, load, vars, opts, rep)
			s := Subsystem{File: f, DelayNS: vars.DelayNS, Error: lvl.Error, OutputTokensPerSecond: lvl.OutputTokensPerSecond}
			if lvl.Error == "" && base > 0 {
				s.Drop = (base - s.OutputTokensPerSecond.Mean) / base
			}
			rep.Subsystems = append(rep.Subsystems, s)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
		order := make([]int, len(rep.Subsystems))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int {
			x, y := rep.Subsystems[a], rep.Subsystems[b]
			switch {
			case (x.Error == "") != (y.Error == ""):
				if x.Error == "" {
					return -1
				}
				return 1
			case x.Drop > y.Drop:
				return -1
			case x.Drop < y.Drop:
				return 1
			}
			return 0
		})
		for rank, i := range order {
			rep.Subsystems[i].Rank = rank + 1
		}
		slices.SortStableFunc(rep.Subsystems, func(a, b Subsystem) int { return a.Rank - b.Rank })
	}
	rep.finish()
	return rep, nil
}

// runLevel applies vars, measures every repeat and undoes the level, for the subsystem
// comparison; its overhead counts into rep.
func runLevel(ctx context.Context, exp *config.Experiment, load *config.Config, vars config.LevelVars, opts Options, rep *Report) Level {
	lvl := Level{Index: vars.Level, DelayNS: vars.DelayNS, Delay: vars.Delay}
	start := time.Now()
	stop, err := apply(ctx, exp, vars, opts.ServerOutput)
	rep.Overhead.StartSeconds += time.Since(start).Seconds()
	if err != nil {
		lvl.Error = err.Error()
		progressf(opts.Progress, "subsystem %s: %v; going on", vars.TargetsFile, err)
		return lvl
	}
	var tputs []float64
	for r := range exp.Repeats {
		m, err := rep.measure(ctx, exp, load, opts)
		if err != nil {
			lvl.Error = fmt.Sprintf("repeat %d: %v", r, err)
			break
		}
		lvl.Repeats = append(lvl.Repeats, m)
		tputs = append(tputs, m.OutputTokensPerSecond)
		progressf(opts.Progress, "subsystem %q at %s repeat %d/%d: %.1f output tok/s", vars.TargetsFile, vars.Delay, r+1, exp.Repeats, m.OutputTokensPerSecond)
	}
	stopStart := time.Now()
	stop()
	rep.Overhead.StopSeconds += time.Since(stopStart).Seconds()
	lvl.OutputTokensPerSecond = bench.NewStat(tputs)
	return lvl
}

// loadConfig turns every target's traffic into the experiment's load: a warmup stage (when
// set) and the measured stage; the warmup gate is off (the warmup window takes its place).
func loadConfig(cfg *config.Config, exp *config.Experiment) *config.Config {
	c := *cfg
	c.Experiment = nil
	c.Targets = append([]config.Target(nil), cfg.Targets...)
	for i := range c.Targets {
		t := &c.Targets[i]
		st := config.Stage{Concurrency: exp.Load.Concurrency}
		if exp.Load.Rate > 0 {
			st = config.Stage{Rate: exp.Load.Rate, Pacer: traffic.KindPoisson}
		}
		t.Traffic.Pacer, t.Traffic.Rate, t.Traffic.Burstiness, t.Traffic.Concurrency = traffic.KindStages, 0, 0, 0
		t.Traffic.Stages = nil
		if exp.Warmup > 0 {
			w := st
			w.Duration = exp.Warmup
			t.Traffic.Stages = append(t.Traffic.Stages, w)
		}
		st.Duration = exp.Measure
		t.Traffic.Stages = append(t.Traffic.Stages, st)
		t.Traffic.MaxInFlight = max(t.Traffic.MaxInFlight, exp.Load.Concurrency)
		t.Warmup = config.Warmup{MaxDuration: time.Minute} // opens at once: no requests, no minimum
	}
	return &c
}

// measure runs one repeat, sums the measured (last) stage over targets and books the repeat's
// time: its windows when they ran, the rest as overhead.
func (r *Report) measure(ctx context.Context, exp *config.Experiment, load *config.Config, opts Options) (Measurement, error) {
	start := time.Now()
	rep, err := bench.Run(ctx, load, bench.Options{Logger: opts.Logger})
	took := time.Since(start).Seconds()
	if err != nil {
		// The windows did not run to the end: all of it is the experiment's own time.
		r.Overhead.RepeatSeconds += took
		return Measurement{}, err
	}
	windows := (exp.Warmup + exp.Measure).Seconds()
	r.Overhead.WindowsSeconds += windows
	r.Overhead.RepeatSeconds += took - windows
	return sumPass(rep.Runs[0])
}

// sumPass sums the measured (last) stage of every target of a pass: throughput and requests
// add up, the mean end-to-end latency is weighted by each target's successful requests.
func sumPass(p bench.Pass) (Measurement, error) {
	var m Measurement
	var e2eSum float64
	var e2eN int64
	for _, t := range p.Targets {
		st := t.Stages[len(t.Stages)-1]
		m.OutputTokensPerSecond += st.Throughput.OutputTokensPerSec
		m.RequestsPerSecond += st.Throughput.SuccessfulPerSecond
		for k, v := range st.Requests {
			m.Requests += v
			if k != "success" {
				m.Failed += v
			}
		}
		s := st.E2E.Summary()
		e2eSum += s.Mean * float64(s.Count)
		e2eN += s.Count
	}
	if e2eN > 0 {
		m.E2EMean = e2eSum / float64(e2eN)
	}
	if m.Requests == m.Failed {
		return m, fmt.Errorf("none of %d requests succeeded", m.Requests)
	}
	return m, nil
}

// apply puts a level in force and returns how to undo it.
func apply(ctx context.Context, exp *config.Experiment, vars config.LevelVars, out io.Writer) (func(), error) {
	if h := exp.Hook; h != nil {
		return func() {}, callHook(ctx, h, vars)
	}
	return startServer(ctx, exp.Command, vars, out)
}

func callHook(ctx context.Context, h *config.ExperimentHook, vars config.LevelVars) error {
	u, err := config.Render(h.URL, vars)
	if err != nil {
		return err
	}
	body, err := config.Render(h.Body, vars)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, h.Method, u, strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("hook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("hook: %s answered %s", u, resp.Status)
	}
	return nil
}

// startServer starts the level's server in a process group of its own and waits until its
// ready URL answers 2xx. The returned stop sends the group SIGTERM, then SIGKILL after
// StopTimeout, and waits for the process; on error the server is already stopped.
func startServer(ctx context.Context, c *config.ExperimentCommand, vars config.LevelVars, out io.Writer) (func(), error) {
	argv := make([]string, len(c.Argv))
	for i, a := range c.Argv {
		var err error
		if argv[i], err = config.Render(a, vars); err != nil {
			return func() {}, err
		}
	}
	env := os.Environ()
	for k, v := range c.Env {
		r, err := config.Render(v, vars)
		if err != nil {
			return func() {}, err
		}
		env = append(env, k+"="+r)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = env, c.Dir, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return func() {}, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // owned by stop, which waits for it
	stop := func() {
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(c.StopTimeout):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
		}
		// Children that outlived the leader are in the same group: make sure of them too.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	if err := waitReady(ctx, c.ReadyURL, c.ReadyTimeout, exited); err != nil {
		stop()
		return func() {}, err
	}
	return stop, nil
}

// waitReady polls url until it answers 2xx, the process exits, or timeout passes.
func waitReady(ctx context.Context, url string, timeout time.Duration, exited chan error) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
		}
		select {
		case err := <-exited:
			exited <- err // stop waits for it too
			return fmt.Errorf("the server exited before %s was ready: %v", url, exitText(err))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s", url, timeout)
		}
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func progressf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, "inferprobe sensitivity: "+format+"\n", args...)
	}
}

// WriteSummary writes the per-level table and what the analysis concludes.
func (r *Report) WriteSummary(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%-6s %-10s %14s %10s %10s %s\n", "level", "delay", "out tok/s", "stddev", "req/s", "note")
	for _, l := range r.Levels {
		note := ""
		if l.Error != "" {
			note = "failed: " + l.Error
		}
		fmt.Fprintf(&b, "%-6d %-10s %14.1f %10.1f %10.2f %s\n", l.Index, l.Delay, l.OutputTokensPerSecond.Mean,
			l.OutputTokensPerSecond.Stddev, l.RequestsPerSecond.Mean, note)
	}
	a := r.Analysis
	fmt.Fprintf(&b, "\nfit: %.4g tok/s per µs of delay (95%% CI %.4g to %.4g), R² %.3f over %d measurements\n",
		a.Fit.Slope*1e-6, a.Fit.SlopeCI95[0]*1e-6, a.Fit.SlopeCI95[1]*1e-6, a.Fit.R2, a.Fit.N)
	fmt.Fprintf(&b, "throughput at no delay %.1f tok/s; extrapolated to %s faster: %.1f tok/s (an extrapolation beyond the measured range)\n",
		a.AtZero, time.Duration(-a.NegativeDelay*1e9), a.AtNegative)
	fmt.Fprintf(&b, "drop over the levels: %.1f%%; classification: %s", 100*a.Drop, a.Classification)
	if a.Breakpoint != nil {
		fmt.Fprintf(&b, " (breakpoint at %s)", time.Duration(*a.Breakpoint*1e9))
	}
	fmt.Fprintf(&b, "\n%s\n", a.Advice)
	if len(r.Subsystems) > 0 {
		fmt.Fprintf(&b, "\nsubsystems at %s, by throughput drop:\n", time.Duration(r.Subsystems[0].DelayNS))
		for _, s := range r.Subsystems {
			if s.Error != "" {
				fmt.Fprintf(&b, "  %d. %s: failed: %s\n", s.Rank, s.File, s.Error)
				continue
			}
			fmt.Fprintf(&b, "  %d. %s: %.1f%% drop (%.1f tok/s)\n", s.Rank, s.File, 100*s.Drop, s.OutputTokensPerSecond.Mean)
		}
	}
	o := r.Overhead
	fmt.Fprintf(&b, "\nexperiment overhead: %.2fs of %.2fs wall outside %.2fs of warmup and measured windows (starting and ready %.2fs, stopping %.2fs, around repeats %.2fs, plot %.2fs, other %.2fs)\n",
		o.TotalSeconds, o.WallSeconds, o.WindowsSeconds, o.StartSeconds, o.StopSeconds, o.RepeatSeconds, o.OutputSeconds,
		o.TotalSeconds-o.StartSeconds-o.StopSeconds-o.RepeatSeconds-o.OutputSeconds)
	_, err := w.Write(b.Bytes())
	return err
}
