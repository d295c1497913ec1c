package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"golang.org/x/term"

	"github.com/inferprobe/inferprobe/bench"
	"github.com/inferprobe/inferprobe/collector"
	"github.com/inferprobe/inferprobe/collector/accelerator"
	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/engine"
)

// runOptions are the flags of `inferprobe run`.
type runOptions struct {
	configFile       string
	output           string
	outputRequests   bool
	outputPlots      bool
	listen           string
	warmupRuns       int
	repeatRuns       int
	repeatUntilCV    float64
	cvFigure         string
	rate             float64
	concurrency      int
	duration         time.Duration
	progressInterval time.Duration
	shard            string
	sweep            bench.Sweep
	sweepSet         sweepFlagsSet
}

// sweepFlagsSet records which --sweep.* flags the command line gave: those override the
// config's sweep block, the others leave it be.
type sweepFlagsSet struct {
	typ, stages, stageDuration, probeDuration, probeConcurrency, goodputTarget bool
}

// sweepFor returns the sweep to run, if any: the config's sweep block with every --sweep.*
// flag given on the command line over it, or the flags alone (with their defaults, which are
// the block's) when --sweep.type is given without a block.
func (o *runOptions) sweepFor(cfg *config.Config) (bench.Sweep, bool) {
	if cfg.Sweep == nil {
		return o.sweep, o.sweep.Type != ""
	}
	sw, f, set := bench.SweepFromConfig(cfg.Sweep), o.sweep, o.sweepSet
	if set.typ {
		sw.Type = f.Type
	}
	if set.stages {
		sw.Stages = f.Stages
	}
	if set.stageDuration {
		sw.StageDuration = f.StageDuration
	}
	if set.probeDuration {
		sw.ProbeDuration = f.ProbeDuration
	}
	if set.probeConcurrency {
		sw.ProbeConcurrency = f.ProbeConcurrency
	}
	if set.goodputTarget {
		sw.GoodputTarget = f.GoodputTarget
	}
	return sw, true
}

func addRunFlags(cmd *kingpin.CmdClause) *runOptions {
	o := &runOptions{}
	cmd.Flag("config.file", "Configuration file; each target's stages run once per pass. Without one, the embedded simulator is benchmarked.").
		PlaceHolder("FILE").StringVar(&o.configFile)
	cmd.Flag("output", "Directory for report.json (and requests.jsonl with --output.requests); created if missing.").
		PlaceHolder("DIR").StringVar(&o.output)
	cmd.Flag("output.requests", "Also write every measured request as a JSON line to DIR/requests.jsonl.").BoolVar(&o.outputRequests)
	cmd.Flag("output.plots", "Also draw the plots (PNG and SVG) and an index.html showing them with the table into DIR.").Default("true").BoolVar(&o.outputPlots)
	cmd.Flag("web.listen-address", "Serve /metrics here while the run goes on (off by default).").PlaceHolder("ADDR").StringVar(&o.listen)
	cmd.Flag("warmup-runs", "Whole passes run first and not reported.").Default("0").IntVar(&o.warmupRuns)
	cmd.Flag("repeat-runs", "Measured passes; with 2 or more the report has mean, stddev, CV and a 95% interval of every headline figure.").Default("1").IntVar(&o.repeatRuns)
	cmd.Flag("repeat-until-cv", "Stop repeating once the coefficient of variation of --repeat-until-cv.figure is below this (at most --repeat-runs passes).").Default("0").Float64Var(&o.repeatUntilCV)
	cmd.Flag("repeat-until-cv.figure", "The headline figure --repeat-until-cv watches.").Default(bench.FigureOutputTokPerS).EnumVar(&o.cvFigure, bench.FigureNames()...)
	cmd.Flag("rate", "Quick run: every target at this rate (req/s) for --duration.").Default("0").Float64Var(&o.rate)
	cmd.Flag("concurrency", "Quick run: every target in closed loop at this concurrency for --duration.").Default("0").IntVar(&o.concurrency)
	cmd.Flag("duration", "Quick run: one stage of this length per target, at its own traffic unless --rate or --concurrency is given.").Default("0s").DurationVar(&o.duration)
	cmd.Flag("progress.interval", "Time between progress lines on stderr.").Default("10s").DurationVar(&o.progressInterval)
	cmd.Flag("sweep.type", "Sweep to saturation instead of running the configured stages: linear or geometric stages up to the rate a closed-loop probe sustains. Each --sweep.* flag given overrides the config's sweep block.").
		IsSetByUser(&o.sweepSet.typ).EnumVar(&o.sweep.Type, bench.SweepLinear, bench.SweepGeometric)
	cmd.Flag("sweep.stages", "Number of sweep stages.").Default(strconv.Itoa(config.DefaultSweepStages)).
		IsSetByUser(&o.sweepSet.stages).IntVar(&o.sweep.Stages)
	cmd.Flag("sweep.stage-duration", "Length of each sweep stage.").Default(config.DefaultSweepStageDuration.String()).
		IsSetByUser(&o.sweepSet.stageDuration).DurationVar(&o.sweep.StageDuration)
	cmd.Flag("sweep.probe-duration", "Length of the saturation probe.").Default(config.DefaultSweepProbeDuration.String()).
		IsSetByUser(&o.sweepSet.probeDuration).DurationVar(&o.sweep.ProbeDuration)
	cmd.Flag("sweep.probe-concurrency", "Requests in flight during the saturation probe.").Default(strconv.Itoa(config.DefaultSweepProbeConcurrency)).
		IsSetByUser(&o.sweepSet.probeConcurrency).IntVar(&o.sweep.ProbeConcurrency)
	cmd.Flag("sweep.goodput-target", "Goodput ratio a stage must keep to be at or below the knee; 0: each target's slo.target_ratio.").Default("0").
		IsSetByUser(&o.sweepSet.goodputTarget).Float64Var(&o.sweep.GoodputTarget)
	cmd.Flag("shard", "Run shard I of N (e.g. 0/4): 1/N of each stage's arrivals and concurrency, disjoint from the other shards; merge the reports with `inferprobe report merge`.").
		PlaceHolder("I/N").StringVar(&o.shard)
	return o
}

// parseShard reads "I/N".
func parseShard(s string) (*bench.Shard, error) {
	var sh bench.Shard
	if _, err := fmt.Sscanf(s, "%d/%d", &sh.Index, &sh.Count); err != nil || fmt.Sprintf("%d/%d", sh.Index, sh.Count) != s {
		return nil, fmt.Errorf("--shard %q: want I/N, e.g. 0/4", s)
	}
	if sh.Count < 1 || sh.Index < 0 || sh.Index >= sh.Count {
		return nil, fmt.Errorf("--shard %s: want 0 ≤ I < N", s)
	}
	return &sh, nil
}

// mergeReports runs `inferprobe report merge`: it joins shard reports into one.
func mergeReports(files []string, output string, stdout, stderr io.Writer) int {
	var reports []*bench.Report
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "%s report merge: %v\n", appName, err)
			return 2
		}
		var r bench.Report
		if err := json.Unmarshal(data, &r); err != nil {
			fmt.Fprintf(stderr, "%s report merge: %s: %v\n", appName, f, err)
			return 2
		}
		reports = append(reports, &r)
	}
	merged, err := bench.Merge(reports...)
	if err != nil {
		fmt.Fprintf(stderr, "%s report merge: %v\n", appName, err)
		return 1
	}
	out := stdout
	if output != "" {
		f, err := os.Create(output)
		if err != nil {
			fmt.Fprintf(stderr, "%s report merge: %v\n", appName, err)
			return 2
		}
		defer f.Close()
		out = f
		defer func() { _ = merged.WriteTable(stdout) }()
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(merged); err != nil {
		fmt.Fprintf(stderr, "%s report merge: %v\n", appName, err)
		return 1
	}
	return 0
}

// runBench runs `inferprobe run`; it returns the exit code.
func runBench(ctx context.Context, o *runOptions, accel *accelerator.Options, stdout, stderr io.Writer, logger *slog.Logger) int {
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(stderr, "%s run: "+format+"\n", append([]any{appName}, args...)...)
		return code
	}
	switch {
	case o.rate < 0 || o.concurrency < 0 || o.duration < 0:
		return fail(2, "--rate, --concurrency and --duration must not be negative")
	case o.rate > 0 && o.concurrency > 0:
		return fail(2, "--rate and --concurrency cannot be used together: a quick run is open or closed loop")
	case (o.rate > 0 || o.concurrency > 0) && o.duration == 0:
		return fail(2, "--rate and --concurrency need --duration")
	case o.repeatRuns < 1 || o.warmupRuns < 0:
		return fail(2, "--repeat-runs must be ≥ 1 and --warmup-runs ≥ 0")
	case o.outputRequests && o.output == "":
		return fail(2, "--output.requests needs --output")
	}
	var shard *bench.Shard
	if o.shard != "" {
		var err error
		if shard, err = parseShard(o.shard); err != nil {
			return fail(2, "%v", err)
		}
	}

	var cfg *config.Config
	if o.configFile == "" {
		stopSim, url, err := startEmbeddedSimulator(ctx, logger)
		if err != nil {
			return fail(1, "starting the embedded simulator: %v", err)
		}
		defer stopSim()
		cfg = engine.DefaultConfig(url)
		if o.duration == 0 {
			o.duration = 10 * time.Second
		}
	} else {
		var err error
		if cfg, err = engine.Load(o.configFile); err != nil {
			return fail(2, "loading %s:\n%s", o.configFile, indent(err.Error(), "  "))
		}
	}
	if o.duration > 0 {
		bench.Quick(cfg, o.rate, o.concurrency, o.duration)
		if err := cfg.Validate(engine.Extensions()...); err != nil {
			return fail(2, "quick run: %v", err)
		}
	}
	sweep, sweeping := o.sweepFor(cfg)
	if !sweeping {
		if err := bench.Check(cfg); err != nil {
			return fail(2, "%v", err)
		}
	} else if err := sweep.Check(); err != nil {
		return fail(2, "%v", err)
	} else if shard != nil {
		return fail(2, "a sweep (--sweep.type or the config's sweep block) and --shard cannot be used together: each shard would probe its own saturation")
	}

	// Everything that can fail goes before any traffic: the output directory first.
	var reportFile, requestsFile *os.File
	if o.output != "" {
		if err := os.MkdirAll(o.output, 0o755); err != nil {
			return fail(2, "--output: %v", err)
		}
		var err error
		if reportFile, err = os.Create(filepath.Join(o.output, "report.json")); err != nil {
			return fail(2, "--output: %v", err)
		}
		defer reportFile.Close()
		if o.outputRequests {
			if requestsFile, err = os.Create(filepath.Join(o.output, "requests.jsonl")); err != nil {
				return fail(2, "--output: %v", err)
			}
			defer requestsFile.Close()
		}
	}
	probe := collector.NewProbe()
	if o.listen != "" {
		l, err := net.Listen("tcp", o.listen)
		if err != nil {
			return fail(2, "--web.listen-address: %v", err)
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(probe)
		srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
		srvCtx, stopSrv := context.WithCancel(ctx)
		defer stopSrv()
		go func() { _ = serveUntil(srvCtx, srv, func() error { return srv.Serve(l) }) }() // owned: stopSrv ends it
		logger.Info("serving /metrics during the run", "address", l.Addr().String())
	}

	opts := bench.Options{WarmupRuns: o.warmupRuns, RepeatRuns: o.repeatRuns, RepeatUntilCV: o.repeatUntilCV,
		CVFigure: o.cvFigure, Logger: logger, Progress: stderr, ProgressInterval: o.progressInterval,
		Probe: probe, Version: version.Version, Shard: shard}
	if requestsFile != nil {
		opts.Requests = requestsFile
	}
	// The accelerator collector, when on (the default), is summarised per stage; without a
	// GPU it reports itself down and the run goes on.
	if accel != nil && accel.Enabled {
		acc := accelerator.New(accelerator.NewLibrary(), *accel, logger.With("collector", "accelerator"))
		accCtx, stopAcc := context.WithCancel(ctx)
		accDone := make(chan struct{})
		go func() { defer close(accDone); acc.Run(accCtx) }() // owned by runBench: stopped below
		defer func() {
			stopAcc()
			select {
			case <-accDone:
			case <-time.After(5 * time.Second): // an NVML call cannot be interrupted
			}
		}()
		opts.Accelerator = acc
	}
	// A terminal gets a progress bar; a log (CI, a file) plain lines.
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		opts.ProgressBar = true
	}
	var rep *bench.Report
	var err error
	if sweeping {
		rep, err = bench.RunSweep(ctx, cfg, opts, sweep)
	} else {
		rep, err = bench.Run(ctx, cfg, opts)
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fail(1, "interrupted: %v", err)
		}
		return fail(1, "%v", err)
	}
	if err := rep.WriteTable(stdout); err != nil {
		return fail(1, "writing the table: %v", err)
	}
	if reportFile != nil {
		enc := json.NewEncoder(reportFile)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fail(1, "writing %s: %v", reportFile.Name(), err)
		}
		fmt.Fprintf(stderr, "%s run: report written to %s\n", appName, reportFile.Name())
		if o.outputPlots {
			files, err := rep.WritePlots(o.output)
			if err != nil {
				return fail(1, "%v", err)
			}
			fmt.Fprintf(stderr, "%s run: %d plot files and %s written\n", appName, len(files)-1, filepath.Join(o.output, "index.html"))
		}
	}
	if failures := rep.Failures(); len(failures) > 0 {
		for _, f := range failures {
			fmt.Fprintf(stderr, "%s run: %s\n", appName, f)
		}
		return 1
	}
	return 0
}
