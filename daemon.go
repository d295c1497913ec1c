package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/inferprobe/inferprobe/collector"
	"github.com/inferprobe/inferprobe/collector/accelerator"
	"github.com/inferprobe/inferprobe/collector/server"
	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/simulator"
	"github.com/inferprobe/inferprobe/traffic"
)

// daemonOptions are the daemon command's flags plus test hooks.
type daemonOptions struct {
	configFile    string
	telemetryPath string
	web           *web.FlagConfig
	accelerator   *accelerator.Options
	// onListen, when set, receives the addresses the HTTP server listens on (tests use :0).
	onListen func([]net.Addr)
	// observer, when set, also receives every probe event (tests record per-request values).
	observer prober.Observer
}

// daemon owns the running targets and the reload logic.
type daemon struct {
	logger   *slog.Logger
	opts     daemonOptions
	probe    *collector.Probe
	server   *server.Collector
	observer prober.Observer // probe, plus opts.observer when set
	builtin  *config.Config  // the no-file configuration, nil when a file is used
	ctx      context.Context
	started  time.Time
	reloadOK prometheus.Gauge
	reloadTS prometheus.Gauge

	reloadMu sync.Mutex // serialises reloads: load, apply and the reload gauges

	mu      sync.Mutex
	targets map[string]*runningTarget
	order   []string // target names in configuration order, for the landing page
}

// runningTarget is one target generation: its config and the goroutine probing it.
type runningTarget struct {
	cfg         config.Target
	fingerprint string
	seed        uint64
	info        *prober.TargetInfo
	gate        *prober.Gate
	runner      *prober.Runner
	client      prober.Client
	scraper     *server.Scraper // nil without a metrics block
	// scrapeTransport is the scraper's; closed with the target.
	scrapeTransport *http.Transport
	logger          *slog.Logger
	cancel          context.CancelFunc
	done            chan struct{} // closed when the runner and the scraper have returned
}

// runDaemon runs the daemon until ctx ends.
func runDaemon(ctx context.Context, opts daemonOptions, logger *slog.Logger) error {
	d := &daemon{
		logger:  logger,
		opts:    opts,
		probe:   collector.NewProbe(),
		server:  server.NewCollector(),
		ctx:     ctx,
		started: time.Now(),
		targets: map[string]*runningTarget{},
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

	d.observer = d.probe
	if opts.observer != nil {
		d.observer = prober.Observers{d.probe, opts.observer}
	}

	var cfg *config.Config
	if opts.configFile == "" {
		stopSim, url, err := startEmbeddedSimulator(ctx, logger)
		if err != nil {
			return fmt.Errorf("starting the embedded simulator: %w", err)
		}
		defer stopSim()
		d.builtin = config.Default(url)
		cfg = d.builtin
		logger.Info("no --config.file given: probing the embedded simulator", "url", url)
	} else {
		var err error
		if cfg, err = d.load(); err != nil {
			return fmt.Errorf("loading %s: %w", opts.configFile, err)
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector(appName),
		d.probe, d.server, d.reloadOK, d.reloadTS,
	)

	if opts.accelerator != nil && opts.accelerator.Enabled {
		acc := accelerator.New(accelerator.NewLibrary(), *opts.accelerator, logger.With("collector", "accelerator"))
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
	defer d.stopAll()

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
	cfg, err := config.Load(d.opts.configFile)
	if err != nil {
		return nil, err
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

// apply makes the running targets match cfg: targets whose settings did not change keep
// running (and keep their warmup state); the others are stopped, started or replaced. Every
// new or changed target is built first; if any cannot be, nothing changes and the error says
// which.
func (d *daemon) apply(cfg *config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx.Err() != nil {
		return nil // shutting down: start nothing new
	}
	want := map[string]bool{}
	order := make([]string, 0, len(cfg.Targets))
	var (
		prepared []*runningTarget
		errs     []error
	)
	for _, t := range cfg.Targets {
		want[t.Name] = true
		order = append(order, t.Name)
		if rt, ok := d.targets[t.Name]; ok && rt.fingerprint == t.Fingerprint() {
			continue
		}
		rt, err := d.prepare(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("target %q: %w", t.Name, err))
			continue
		}
		prepared = append(prepared, rt)
	}
	if len(errs) > 0 {
		for _, rt := range prepared {
			rt.release()
		}
		return errors.Join(errs...)
	}

	replaced := map[string]*server.Scraper{}
	for name, rt := range d.targets {
		if want[name] && !slices.ContainsFunc(prepared, func(p *runningTarget) bool { return p.cfg.Name == name }) {
			continue // unchanged
		}
		d.stop(rt)
		delete(d.targets, name)
		// A replaced target's scraper hands its counters and restart baseline to the new
		// one, so a reload is not mistaken for a server restart.
		if prev := d.server.Remove(name); prev != nil && want[name] {
			replaced[name] = prev
		}
	}
	for _, rt := range prepared {
		d.launch(rt, replaced[rt.cfg.Name])
		d.targets[rt.cfg.Name] = rt
	}
	d.order = order
	return nil
}

// prepare builds one target generation (client, pacer, source, gate, run loop, scraper)
// without starting anything, so a target that cannot be built leaves the running one alone.
func (d *daemon) prepare(t config.Target) (*runningTarget, error) {
	client, err := prober.NewClient(t)
	if err != nil {
		return nil, err
	}
	rt := &runningTarget{cfg: t, fingerprint: t.Fingerprint(), client: client}
	rt.seed = uint64(t.Traffic.Seed)
	if rt.seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		rt.seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	pacer, err := traffic.New(t.Traffic.Pacer, t.Traffic.Rate, traffic.SubSeed(rt.seed, t.Name, "pacer"))
	if err != nil {
		rt.release()
		return nil, err
	}
	source := traffic.NewPromptSource(traffic.PromptOptions{
		Prompt:      t.Request.Prompt,
		InputTokens: t.Request.InputTokens,
		MaxTokens:   t.Request.MaxTokens,
		CacheBust:   t.Request.CacheBust == nil || *t.Request.CacheBust,
		Seed:        traffic.SubSeed(rt.seed, t.Name, "source"),
	})
	rt.info = &prober.TargetInfo{Name: t.Name, Model: t.Model,
		SLO: prober.SLO{TTFT: t.SLO.TTFT, TPOT: t.SLO.TPOT, E2E: t.SLO.E2E,
			TargetRatio: t.SLO.TargetRatio, Window: t.SLO.Window, RegressionFactor: t.SLO.RegressionFactor}}
	rt.gate = prober.NewGate(prober.WarmupConfig{
		Requests:     t.Warmup.Requests,
		MinDuration:  t.Warmup.MinDuration,
		MaxDuration:  t.Warmup.MaxDuration,
		StableWithin: t.Warmup.StableWithin,
	}, nil)
	rt.logger = d.logger.With("target", t.Name)
	rt.runner = prober.NewRunner(prober.RunnerConfig{
		Target: rt.info, Pacer: pacer, Source: source, Client: client, Gate: rt.gate,
		Observer: d.observer, MaxInFlight: t.Traffic.MaxInFlight, Logger: rt.logger,
	})
	if t.Metrics != nil {
		if rt.scraper, rt.scrapeTransport, err = newScraper(t, rt.gate, rt.logger); err != nil {
			rt.release()
			return nil, err
		}
	}
	return rt, nil
}

// launch starts a prepared target: its run loop and, with a metrics block, its scraper, which
// first inherits from the scraper of the generation it replaces (nil if none).
func (d *daemon) launch(rt *runningTarget, prevScraper *server.Scraper) {
	d.probe.Register(rt.info)
	ctx, cancel := context.WithCancel(d.ctx)
	rt.cancel, rt.done = cancel, make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { rt.runner.Run(ctx) })
	if rt.scraper != nil {
		rt.scraper.Inherit(prevScraper)
		wg.Go(func() { rt.scraper.Run(ctx) })
		d.server.Add(rt.scraper)
	}
	go func() { // owned by the daemon through rt.cancel and rt.done
		wg.Wait()
		close(rt.done)
	}()
	t := rt.cfg
	rt.logger.Info("probing target", "url", redactURL(t.URL), "api", t.API, "model", t.Model,
		"pacer", t.Traffic.Pacer, "rate", t.Traffic.Rate, "seed", rt.seed,
		"warmup_requests", t.Warmup.Requests, "warmup_min_duration", t.Warmup.MinDuration)
}

// release frees what prepare built (idle connections); it is safe on a partial target.
func (rt *runningTarget) release() {
	if c, ok := rt.client.(interface{ Close() }); ok {
		c.Close()
	}
	if rt.scrapeTransport != nil {
		rt.scrapeTransport.CloseIdleConnections()
	}
}

// newScraper builds the model-server scrape of t. It shares the target's TLS settings; the
// target's headers and API key go along only when /metrics is on the same origin as the API,
// and redirects are not followed, so they cannot carry those headers elsewhere.
func newScraper(t config.Target, gate *prober.Gate, logger *slog.Logger) (*server.Scraper, *http.Transport, error) {
	tr, err := prober.NewTransport(t)
	if err != nil {
		return nil, nil, err
	}
	var header http.Header
	if sameOrigin(t.URL, t.Metrics.URL) {
		header = http.Header{}
		for k, v := range t.Headers {
			header.Set(k, v)
		}
		if key := t.APIKey.Value(); key != "" {
			header.Set("Authorization", "Bearer "+key)
		}
	}
	s, err := server.NewScraper(server.Options{
		Target: t.Name,
		Config: *t.Metrics,
		Client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		Header:  header,
		Rearmer: gate,
		Logger:  logger.With("collector", "server"),
	})
	if err != nil {
		tr.CloseIdleConnections()
		return nil, nil, err
	}
	return s, tr, nil
}

// sameOrigin reports whether two URLs share scheme, host and port.
func sameOrigin(a, b string) bool {
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	return errA == nil && errB == nil && ua.Scheme == ub.Scheme && ua.Host == ub.Host
}

// stop ends one target generation and removes its series.
func (d *daemon) stop(rt *runningTarget) {
	rt.cancel()
	<-rt.done
	rt.release()
	d.probe.Forget(rt.info)
	d.logger.Info("stopped probing target", "target", rt.cfg.Name)
}

// stopAll stops every target (daemon shutdown).
func (d *daemon) stopAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, rt := range d.targets {
		d.stop(rt)
		delete(d.targets, name)
	}
}
