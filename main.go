// Command inferprobe is a Prometheus exporter and continuous synthetic prober for LLM inference
// endpoints. See README.md for the quick start and docs/ for the reference.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"
	"google.golang.org/grpc"

	"github.com/inferprobe/inferprobe/collector/accelerator"
	"github.com/inferprobe/inferprobe/engine"
	"github.com/inferprobe/inferprobe/simulator"
)

const appName = "inferprobe"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, stop catching: a second one ends a stuck shutdown at once.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args and runs the chosen command until ctx ends; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := kingpin.New(appName, "Prometheus exporter and continuous synthetic prober for LLM inference endpoints.")
	app.Version(version.Print(appName))
	app.HelpFlag.Short('h')
	app.UsageWriter(stdout).ErrorWriter(stderr)
	exit := -1
	app.Terminate(func(code int) {
		if exit < 0 {
			exit = code
		}
	})
	logConfig := &promslog.Config{Writer: stderr}
	promslogflag.AddFlags(app, logConfig)

	daemonCmd := app.Command("daemon", "Probe the configured targets continuously and serve /metrics (the default command).").Default()
	var opts daemonOptions
	daemonCmd.Flag("config.file", "Configuration file; without one, inferprobe starts its embedded simulator on loopback and probes it.").
		PlaceHolder("FILE").StringVar(&opts.configFile)
	daemonCmd.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&opts.telemetryPath)
	opts.web = kingpinflag.AddFlags(daemonCmd, ":9788")
	daemonCmd.Flag("web.enable-lifecycle", "Enable reloading the configuration over HTTP (POST /-/reload), as Prometheus does; SIGHUP always reloads.").
		Default("false").BoolVar(&opts.enableLifecycle)

	daemonCmd.Flag("otel.endpoint", "OTLP collector base URL (http:// plaintext, https:// TLS); pushes the /metrics series, GenAI client metrics and optional spans. Default: the otel block, else OTEL_EXPORTER_OTLP_ENDPOINT; none: no export.").
		PlaceHolder("URL").StringVar(&opts.otel.endpoint)
	daemonCmd.Flag("otel.protocol", "OTLP protocol: grpc or http/protobuf (default: the otel block, else OTEL_EXPORTER_OTLP_PROTOCOL, else grpc).").
		EnumVar(&opts.otel.protocol, "grpc", "http/protobuf")
	daemonCmd.Flag("otel.interval", "OTLP metric export interval (default: the otel block, else OTEL_METRIC_EXPORT_INTERVAL, else 10s).").
		DurationVar(&opts.otel.interval)
	daemonCmd.Flag("otel.traces.sampling-ratio", "Record a span per probe request for this fraction of requests (0-1) and send their traceparent; negative: only when the otel block has traces.").
		Default("-1").Float64Var(&opts.otel.samplingRatio)

	simCmd := app.Command("simulate", "Run the OpenAI-compatible streaming simulator standalone.")
	simCfg := simulator.AddFlags(simCmd)
	simAddr := simCmd.Flag("listen-address", "Address the simulator listens on.").Default("127.0.0.1:8000").String()
	simGRPCAddr := simCmd.Flag("grpc-listen-address", "Address the simulator also serves the KServe v2 gRPC service (ModelStreamInfer, api kserve-grpc) on; empty serves none.").Default("").String()

	opts.accelerator = accelerator.AddFlags(app)
	accelCmd := app.Command("accelerators", "Read the GPUs once through NVML and print what the accelerator collector exports (a check to run on a GPU machine).")

	runCmd := app.Command("run", "Run a one-shot benchmark: each target's stages once per pass (plus warmup and repeat passes), then a table and a JSON report.")
	runOpts := addRunFlags(runCmd)

	sensCmd := app.Command("sensitivity", "Measure throughput against a delay injected into the server (the speed-bump method), level by level, and classify it.")
	sensOpts := addSensitivityFlags(sensCmd)

	reportCmd := app.Command("report", "Work with one-shot reports.")
	mergeCmd := reportCmd.Command("merge", "Merge the reports of the shards of one run (inferprobe run --shard) into the report of the whole run.")
	mergeFiles := mergeCmd.Arg("reports", "Shard report files (report.json), one per shard.").Required().ExistingFiles()
	mergeOutput := mergeCmd.Flag("output", "Write the merged report here (and the table to stdout) instead of the report to stdout.").PlaceHolder("FILE").String()

	checkCmd := app.Command("check-config", "Check configuration files for errors (exit code 1 on any).")
	checkFiles := checkCmd.Arg("config-files", "Configuration files to check.").Required().Strings()

	cmd, err := app.Parse(args)
	if exit >= 0 {
		return exit // --help or --version
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", appName, err)
		return 2
	}
	logger := promslog.New(logConfig)

	if err := opts.accelerator.Validate(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", appName, err)
		return 2
	}

	switch cmd {
	case accelCmd.FullCommand():
		if err := accelerator.DryRun(ctx, accelerator.NewLibrary(), *opts.accelerator, stdout); err != nil {
			fmt.Fprintf(stderr, "%s accelerators: %v\n", appName, err)
			return 1
		}
		return 0
	case checkCmd.FullCommand():
		return checkConfig(*checkFiles, stdout, stderr)
	case sensCmd.FullCommand():
		return runSensitivity(ctx, sensOpts, stdout, stderr, logger)
	case mergeCmd.FullCommand():
		return mergeReports(*mergeFiles, *mergeOutput, stdout, stderr)
	case runCmd.FullCommand():
		return runBench(ctx, runOpts, opts.accelerator, stdout, stderr, logger)
	case simCmd.FullCommand():
		if err := runSimulator(ctx, *simCfg, *simAddr, *simGRPCAddr, logger); err != nil {
			logger.Error("simulator failed", "err", err)
			return 1
		}
		return 0
	default:
		if err := validTelemetryPath(opts.telemetryPath); err != nil {
			fmt.Fprintf(stderr, "%s: --web.telemetry-path: %v\n", appName, err)
			return 2
		}
		logger.Info("starting "+appName, "version", version.Info(), "build_context", version.BuildContext())
		if err := runDaemon(ctx, opts, logger); err != nil {
			logger.Error(appName+" failed", "err", err)
			return 1
		}
		return 0
	}
}

// validTelemetryPath rejects paths that would shadow the landing page or the /-/ endpoints.
func validTelemetryPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q must start with /", p)
	case p == "/" || p == "/-" || strings.HasPrefix(p, "/-/"):
		return fmt.Errorf("%q is taken by the landing page or the /-/ endpoints", p)
	}
	return nil
}

// checkConfig validates files like `promtool check config`: a line per file, errors below it.
func checkConfig(files []string, stdout, stderr io.Writer) int {
	code := 0
	for _, f := range files {
		fmt.Fprintf(stdout, "Checking %s\n", f)
		cfg, err := engine.Load(f)
		if err != nil {
			fmt.Fprintf(stderr, "  FAILED:\n%s\n", indent(err.Error(), "    "))
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "  SUCCESS: %d targets found\n", len(cfg.Targets))
		for _, w := range cfg.Warnings { // valid, but will not work as meant
			fmt.Fprintf(stdout, "  WARNING: %s\n", w)
		}
	}
	return code
}

// runSimulator serves the simulator until ctx ends: HTTP on addr and, when grpcAddr is not
// empty, the KServe v2 gRPC service on grpcAddr.
func runSimulator(ctx context.Context, cfg simulator.Config, addr, grpcAddr string, logger *slog.Logger) error {
	bump, err := cfg.SpeedBump.FromEnv(nil)
	if err != nil {
		return err
	}
	cfg.SpeedBump = bump
	if bump.Delay > 0 {
		logger.Info("speed bump", "delay", bump.Delay, "frequency", bump.Frequency, "calls_per_step", bump.CallsPerStep, "slack", bump.Slack)
	}
	sim, err := simulator.New(cfg, logger)
	if err != nil {
		return err
	}
	defer sim.Close()
	// Close the simulator first on stop, so open streams end and the graceful shutdown of the
	// HTTP server does not wait on them.
	stopSim := context.AfterFunc(ctx, sim.Close)
	defer stopSim()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	logger.Info("simulator listening", "address", l.Addr().String(), "model", cfg.ModelName)
	if grpcAddr != "" {
		gl, err := net.Listen("tcp", grpcAddr)
		if err != nil {
			_ = l.Close()
			return err
		}
		gs := grpc.NewServer()
		sim.RegisterKServe(gs)
		done := make(chan struct{})
		go func() { defer close(done); _ = gs.Serve(gl) }() // ends with Stop below
		defer func() { sim.Close(); gs.Stop(); <-done }()
		logger.Info("simulator serving KServe v2 gRPC", "address", gl.Addr().String())
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return serveUntil(ctx, srv, func() error { return srv.Serve(l) })
}

// serveUntil runs serve (which serves srv) until ctx ends, then shuts srv down gracefully.
func serveUntil(ctx context.Context, srv *http.Server, serve func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }() // owned by serveUntil: Shutdown makes serve return
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

func indent(s, prefix string) string {
	out := prefix
	for _, r := range s {
		out += string(r)
		if r == '\n' {
			out += prefix
		}
	}
	return out
}
