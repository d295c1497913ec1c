package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"go.opentelemetry.io/otel"

	"github.com/inferprobe/inferprobe/collector/accelerator"
	"github.com/inferprobe/inferprobe/collector/otlp"
	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/engine"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/recent"
	"github.com/inferprobe/inferprobe/simulator"
)

// daemonOptions are the daemon command's flags plus test hooks.
type daemonOptions struct {
	configFile    string
	telemetryPath string
	web           *web.FlagConfig
	accelerator   *accelerator.Options
	// nvml, when set, replaces NVML for the accelerator collector (tests pass a fake GPU).
	nvml accelerator.Library
	// enableLifecycle allows POST /-/reload (--web.enable-lifecycle); off, only SIGHUP reloads.
	enableLifecycle bool
	// onListen, when set, receives the addresses the HTTP server listens on (tests use :0).
	onListen func([]net.Addr)
	// observer, when set, also receives every probe event, through a queue (tests record
	// per-request values).
	observer prober.Observer
	// otel holds the --otel.* flags: the otel block of the no-config case, and the fields a
	// file's otel block leaves empty.
	otel otelFlags
	// getenv reads the OTEL_* environment (os.Getenv; tests pass their own).
	getenv func(string) string
	// targetsApplied, when set, is called each time the targets applied, before apply
	// returns (tests widen the moment between the targets starting and the export's commit).
	targetsApplied func()
}

// otelFlags are the --otel.* flags.
type otelFlags struct {
	endpoint, protocol string
	interval           time.Duration
	samplingRatio      float64 // < 0: no traces unless the file asks for them
}

// withOTelFlags returns cfg with the flags filling what its otel block leaves empty.
func withOTelFlags(cfg *config.Config, f otelFlags) *config.Config {
	if f.endpoint == "" && f.protocol == "" && f.interval == 0 && f.samplingRatio < 0 {
		return cfg
	}
	c := *cfg
	o := config.OTel{}
	if cfg.OTel != nil {
		o = *cfg.OTel
	}
	if o.Endpoint == "" {
		o.Endpoint = f.endpoint
	}
	if o.Protocol == "" {
		o.Protocol = f.protocol
	}
	if o.Interval == 0 {
		o.Interval = f.interval
	}
	if o.Traces == nil && f.samplingRatio >= 0 {
		r := f.samplingRatio
		o.Traces = &config.OTelTraces{SamplingRatio: &r}
	}
	c.OTel = &o
	return &c
}

// daemon owns the engine's target set and the reload logic.
type daemon struct {
	logger   *slog.Logger
	opts     daemonOptions
	set      *engine.Set
	recent   *recent.Store // the landing page's recent requests and figures
	otel     *otlp.Telemetry
	builtin  *config.Config // the no-file configuration, nil when a file is used
	started  time.Time
	reloadOK prometheus.Gauge
	reloadTS prometheus.Gauge

	reloadMu sync.Mutex // serialises reloads: load, apply and the reload gauges
}

// runDaemon runs the daemon until ctx ends.
func runDaemon(ctx context.Context, opts daemonOptions, logger *slog.Logger) error {
	recentStore := recent.New(recent.Options{})
	reg := prometheus.NewRegistry()
	if opts.getenv == nil {
		opts.getenv = os.Getenv
	}
	tel := otlp.New(otlp.Options{Gatherer: reg, Logger: logger.With("component", "otlp"), Version: version.Version, Getenv: opts.getenv})
	// The OTel SDK reports through process-wide hooks that default to the standard library's
	// log: route them to our logger, errors rate limited and export errors counted by tel.
	// Process state, so it is set here in the daemon, not in a library.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(tel.HandleError))
	otel.SetLogger(logr.FromSlogHandler(logger.With("component", "otel").Handler()))
	// Runs after the targets stopped (deferred first), so their last records are exported.
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tel.Close(ctx)
	}()
	engOpts := engine.Options{Logger: logger, Observers: []prober.Observer{recentStore},
		Inline: []prober.Observer{tel}, Trace: tel.StartTrace}
	if opts.observer != nil {
		engOpts.Observers = append(engOpts.Observers, opts.observer)
	}
	d := &daemon{
		logger:  logger,
		opts:    opts,
		recent:  recentStore,
		otel:    tel,
		set:     engine.New(ctx, engOpts),
		started: time.Now(),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "inferprobe_config_last_reload_successful",
			Help: "Whether the last configuration reload attempt was successful."}),
		reloadTS: prometheus.NewGauge(prometheus.GaugeOpts{Name: "inferprobe_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload."}),
	}

	// SIGHUP is caught from the start: one arriving before the reload loop runs waits for it
	// instead of killing the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var cfg *config.Config
	if opts.configFile == "" {
		stopSim, url, err := startEmbeddedSimulator(ctx, logger)
		if err != nil {
			return fmt.Errorf("starting the embedded simulator: %w", err)
		}
		defer stopSim()
		d.builtin = engine.DefaultConfig(url)
		cfg = d.builtin
		logger.Info("no --config.file given: probing the embedded simulator", "url", url)
	} else {
		var err error
		if cfg, err = d.load(); err != nil {
			return fmt.Errorf("loading %s: %w", opts.configFile, err)
		}
	}

	reg.MustRegister(tel,

		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector(appName),
		d.set.Probe(), d.set.Server(), d.reloadOK, d.reloadTS,
	)

	if opts.accelerator != nil && opts.accelerator.Enabled {
		lib := opts.nvml
		if lib == nil {
			lib = accelerator.NewLibrary()
		}
		acc := accelerator.New(lib, *opts.accelerator, logger.With("collector", "accelerator"))
		reg.MustRegister(acc)
		accDone := make(chan struct{})
		accCtx, stopAcc := context.WithCancel(ctx)
		go func() { defer close(accDone); acc.Run(accCtx) }() // owned by runDaemon
		defer func() {
			stopAcc()
			// An NVML call in progress cannot be interrupted; do not let a wedged driver
			// hold the process at exit.
			select {
			case <-accDone:
			case <-time.After(5 * time.Second):
				logger.Warn("accelerator poller still in an NVML call at exit")
			}
		}()
	}

	if err := d.apply(cfg); err != nil {
		return err
	}
	d.reloadOK.Set(1)
	d.reloadTS.SetToCurrentTime()
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.set.Close(closeCtx)
	}()

	sigCtx, stopSig := context.WithCancel(ctx)
	sigDone := make(chan struct{})
	go func() { // owned by runDaemon: stopped and waited for below, before the targets stop
		defer close(sigDone)
		for {
			select {
			case <-sigCtx.Done():
				return
			case <-hup:
				_ = d.reload()
			}
		}
	}()
	defer func() {
		stopSig()
		<-sigDone
	}()

	srv := &http.Server{Handler: d.routes(reg), ReadHeaderTimeout: 10 * time.Second}
	if opts.web.WebSystemdSocket != nil && *opts.web.WebSystemdSocket {
		return serveUntil(ctx, srv, func() error { return web.ListenAndServe(srv, opts.web, logger) })
	}
	listeners, err := listen(*opts.web.WebListenAddresses)
	if err != nil {
		return err
	}
	if opts.onListen != nil {
		addrs := make([]net.Addr, len(listeners))
		for i, l := range listeners {
			addrs[i] = l.Addr()
		}
		opts.onListen(addrs)
	}

	return serveUntil(ctx, srv, func() error { return web.ServeMultiple(listeners, srv, opts.web, logger) })
}

// listen opens every listen address before serving, so the bound ports are known (":0").
func listen(addrs []string) ([]net.Listener, error) {
	var ls []net.Listener
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			for _, o := range ls {
				o.Close()
			}
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// startEmbeddedSimulator serves the simulator on a loopback port until stop is called.
func startEmbeddedSimulator(ctx context.Context, logger *slog.Logger) (stop func(), url string, err error) {
	simCfg := simulator.DefaultConfig()
	simCfg.StatsSize = 0 // ground-truth records are for tests
	sim, err := simulator.New(simCfg, logger.With("component", "simulator"))
	if err != nil {
		return nil, "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sim.Close()
		return nil, "", err
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	stop = func() {
		sim.Close() // ends open streams at once, so the shutdown below does not wait on them
		shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutCtx)
		srv.Close()
		<-done
	}
	return stop, "http://" + l.Addr().String(), nil
}

// load reads the configuration file, secrets included.
func (d *daemon) load() (*config.Config, error) {
	if d.opts.configFile == "" {
		return d.builtin, nil
	}
	cfg, err := engine.Load(d.opts.configFile)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		d.logger.Warn("configuration warning", "file", d.opts.configFile, "warning", w.Error())
	}
	return cfg, nil
}

// reload loads the configuration again and applies it; on error the running one stays. Reloads
// are serialised (a SIGHUP and a POST may race), so the last one to finish is the one in force.
func (d *daemon) reload() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cfg, err := d.load()
	if err == nil {
		err = d.apply(cfg)
	}
	if err != nil {
		d.reloadOK.Set(0)
		d.logger.Error("reload failed; keeping the running configuration", "file", d.opts.configFile, "err", err)
		return err
	}
	d.reloadOK.Set(1)
	d.reloadTS.SetToCurrentTime()
	d.logger.Info("configuration reloaded", "file", d.opts.configFile, "targets", len(cfg.Targets))
	return nil
}

// apply puts a configuration in force. While export is off (the first start, or a reload
// turning it on) the new export is committed before the targets apply, so their very first
// requests already carry a traceparent; a failed apply turns it off again. While export is
// on it is prepared first and committed only once the targets applied, so a reload that
// fails anywhere leaves both as they were.
func (d *daemon) apply(cfg *config.Config) error {
	pr, err := d.otel.Prepare(withOTelFlags(cfg, d.opts.otel))
	if err != nil {
		return fmt.Errorf("otel: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	early := !d.otel.Enabled()
	if early {
		d.otel.Commit(ctx, pr)
	}
	if err := d.set.Apply(cfg); err != nil {
		if early {
			d.otel.Close(ctx)
		} else {
			d.otel.Discard(pr)
		}
		return err
	}
	if d.opts.targetsApplied != nil {
		d.opts.targetsApplied()
	}
	if !early {
		d.otel.Commit(ctx, pr)
	}
	return nil
}
