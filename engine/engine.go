// Package engine composes inferprobe: it builds each target's pipeline (pacer plan, request
// source, client, warmup gate, run loop, model-server scraper and their transports) from its
// config.Target, and runs a set of targets with all-or-nothing apply and reload. It is the one
// place that wiring and construction-time defaults live; the daemon, one-shot runs, benchmarks
// and library users all ask it.
//
// Library use, in short:
//
//	cfg, err := engine.Load("inferprobe.yml")       // every registry's checks included
//	set := engine.New(ctx, engine.Options{Observers: []prober.Observer{myReport}})
//	err = set.Apply(cfg)                             // starts probing
//	...
//	set.Close()                                      // stops, then delivers what is queued
//
// Observers passed in Options each get every event through a prober.Queue of their own, so a
// slow one never delays the pacer; the Prometheus probe collector observes inline.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/inferprobe/inferprobe/collector"
	"github.com/inferprobe/inferprobe/collector/server"
	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/traffic"
)

// Extensions returns the configuration extensions of every registry: API flavours, pacers and
// model-server engines. Load and Parse use them; pass them to config functions called directly.
func Extensions() []config.Extension {
	return []config.Extension{prober.ConfigExtension{}, traffic.ConfigExtension{}, server.ConfigExtension{}}
}

// Load reads, checks and defaults a configuration file against every registry (see
// config.Load).
func Load(path string) (*config.Config, error) { return config.Load(path, Extensions()...) }

// Parse parses a configuration held in memory against every registry (see config.Parse).
func Parse(data []byte) (*config.Config, error) { return config.Parse(data, Extensions()...) }

// DefaultConfig returns the configuration the daemon runs when it is given no file: one
// target, "simulator", probing the embedded simulator at simulatorURL (e.g.
// "http://127.0.0.1:8000") gently enough that a newcomer sees every series within seconds.
func DefaultConfig(simulatorURL string) *config.Config {
	c := &config.Config{Targets: []config.Target{{
		Name:    "simulator",
		URL:     simulatorURL,
		API:     prober.APIOpenAIChat,
		Model:   "inferprobe-sim",
		Traffic: config.Traffic{Pacer: traffic.KindConstant, Rate: 1},
		Request: config.Request{InputTokens: config.FixedTokens(128), MaxTokens: 32, IgnoreEOS: true},
		Warmup:  config.Warmup{Requests: 3, MinDuration: 2 * time.Second, MaxDuration: time.Minute},
		// The simulator serves vLLM-style metrics, so the server-side series show up too.
		Metrics: &config.Metrics{Engine: server.EngineVLLM},
	}}}
	c.ApplyDefaults(Extensions()...)
	return c
}

// Seed sources, as TargetStatus reports them.
const (
	SeedFromTarget = "traffic.seed"
	SeedFromBase   = "base_seed"
	SeedRandom     = "random"
)

// TargetSeed returns the seed a target's requests are drawn from and where it came from: its
// own traffic.seed, else one derived from the configuration's base_seed and the target name,
// else (ok false) none, and the caller picks a random one.
func TargetSeed(base int64, t config.Target) (seed uint64, source string, ok bool) {
	switch {
	case t.Traffic.Seed != 0:
		return uint64(t.Traffic.Seed), SeedFromTarget, true
	case base != 0:
		return traffic.SubSeed(uint64(base), "target", t.Name), SeedFromBase, true
	}
	return 0, SeedRandom, false
}

// randomSeed draws a non-zero seed for a target that has none, so the run can be replayed
// with it (it is logged and shown on /).
func randomSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) | 1
}

// Pipeline is one target's pipeline, built and not yet started. Build makes one; a Set runs
// them.
type Pipeline struct {
	// Config is the target it was built from.
	Config config.Target
	// Seed is the seed every random choice was drawn from; SeedSource says where it came from.
	Seed       uint64
	SeedSource string
	// Info identifies the target in every event.
	Info *prober.TargetInfo
	// Plan is the traffic the runner sends.
	Plan traffic.Plan
	// Gate is the warmup gate.
	Gate *prober.Gate
	// Runner is the run loop.
	Runner *prober.Runner
	// Scraper is the model-server scrape, nil without a metrics block.
	Scraper *server.Scraper

	client          prober.Client
	scrapeTransport *http.Transport
	fingerprint     string
}

// BuildOptions configure Build.
type BuildOptions struct {
	// BaseSeed is the configuration's base_seed.
	BaseSeed int64
	// Seed, when not 0, is used instead of TargetSeed's (a reload keeps a random seed).
	Seed uint64
	// Observer receives the runner's events; it must not block.
	Observer prober.Observer
	// Once runs stages once instead of looping.
	Once bool
	// Shard and Shards, with Shards > 1, build shard Shard of Shards: the target's plan split
	// with traffic.Shard, so that the shards together send exactly the unsharded schedule.
	Shard, Shards int
	// Logger is the target's logger.
	Logger *slog.Logger
	// Trace, when set, gives each request its W3C trace context (the traceparent header).
	Trace prober.TraceStarter
	// NewClient, when set, builds the target's client instead of the API registry
	// (prober.NewClient): a benchmark's reference client or a test's. Everything else of the
	// pipeline is built as usual.
	NewClient func(config.Target) (prober.Client, error)
}

// Build constructs t's pipeline from the registries without starting anything, so a target
// that cannot be built leaves whatever runs alone. t must be validated (Load, Parse).
func Build(t config.Target, opts BuildOptions) (*Pipeline, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Observer == nil {
		opts.Observer = prober.Observers(nil)
	}
	seed, source, ok := TargetSeed(opts.BaseSeed, t)
	switch {
	case opts.Seed != 0:
		seed = opts.Seed
	case !ok:
		seed = randomSeed()
	}
	plan, err := traffic.PlanFor(t.Traffic, traffic.SubSeed(seed, "pacer"))
	if err != nil {
		return nil, err
	}
	if opts.Once {
		plan.Loop = false
	}
	if opts.Shards > 1 {
		if plan, err = traffic.Shard(plan, opts.Shard, opts.Shards); err != nil {
			return nil, err
		}
	}
	newClient := prober.NewClient
	if opts.NewClient != nil {
		newClient = opts.NewClient
	}
	client, err := newClient(t)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{Config: t, Seed: seed, SeedSource: source, Plan: plan, client: client,
		fingerprint: fingerprint(t, opts.BaseSeed)}

	info := &prober.TargetInfo{Name: t.Name, Model: t.Model, Unstreamed: !t.Request.Streaming(),
		SLO: prober.SLO{TTFT: t.SLO.TTFT, TPOT: t.SLO.TPOT, E2E: t.SLO.E2E,
			TargetRatio: t.SLO.TargetRatio, Window: t.SLO.Window, RegressionFactor: t.SLO.RegressionFactor}}
	for _, a := range t.Request.LoRATrafficSplit {
		info.Adapters = append(info.Adapters, a.Name)
	}
	p.Info = info
	if plan.Replay != nil {
		info.TraceRowsSkipped = plan.Replay.Trace().Skipped
	}
	// The source reads the same plan: a trace drives both when and what.
	src, err := traffic.NewSource(t, plan, traffic.SubSeed(seed, "source"))
	if err != nil {
		p.Release()
		return nil, err
	}
	info.DatasetRowsSkipped = traffic.DatasetRowsSkipped(src)
	src = traffic.ShardSource(src, opts.Shard, opts.Shards)
	p.Gate = prober.NewGate(prober.WarmupConfig{
		Requests:     t.Warmup.Requests,
		MinDuration:  t.Warmup.MinDuration,
		MaxDuration:  t.Warmup.MaxDuration,
		StableWithin: t.Warmup.StableWithin,
		// 0 (off) also when a Config built in code left it unset.
		RecoveryFailures: derefInt(t.Warmup.RecoveryFailures),
	}, nil)
	p.Runner = prober.NewRunner(prober.RunnerConfig{
		Target: info, Plan: plan, Source: src, Client: client, Gate: p.Gate,
		Observer: opts.Observer, MaxInFlight: t.Traffic.MaxInFlight, Logger: opts.Logger,
		Conversation: conversation(t.Request.Conversation), Trace: opts.Trace,
		Secrets: prober.TargetSecrets(t),
	})
	if t.Metrics != nil {
		if p.Scraper, p.scrapeTransport, err = newScraper(t, p.Gate, opts.Logger); err != nil {
			p.Release()
			return nil, err
		}
		p.Gate.SetRecoveryHook(p.Scraper.ScrapeNow) // a probe-path re-arm scrapes at once
	}
	return p, nil
}

// derefInt reads an optional integer setting, 0 when unset.
func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// scrapeRecovery is warmup.recovery_failures for the scraper, the same threshold as the probe
// path: 0 (off) is negative there, since the scraper takes 0 as 1.
func scrapeRecovery(p *int) int {
	if n := derefInt(p); n > 0 {
		return n
	}
	return -1
}

// conversation is the run loop's view of request.conversation (none when nil).
func conversation(c *config.Conversation) prober.Conversation {
	if c == nil {
		return prober.Conversation{}
	}
	return prober.Conversation{Turns: c.Turns, ThinkTime: c.ThinkTime}
}

// fingerprint identifies a target's settings for reloads: the target's own, plus the base
// seed when its seed derives from it.
func fingerprint(t config.Target, base int64) string {
	f := t.Fingerprint()
	if t.Traffic.Seed == 0 && base != 0 {
		f += "/" + strconv.FormatInt(base, 10)
	}
	return f
}

// Release frees what Build made (idle connections); it is safe on a partial pipeline and
// after the pipeline ran.
func (p *Pipeline) Release() {
	if c, ok := p.client.(interface{ Close() }); ok {
		c.Close()
	}
	if p.scrapeTransport != nil {
		p.scrapeTransport.CloseIdleConnections()
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
		Header:           header,
		Rearmer:          gate,
		Model:            t.Model, // for trtllm-serve's model_name="undefined"
		RecoveryFailures: scrapeRecovery(t.Warmup.RecoveryFailures),
		Logger:           logger.With("collector", "server"),
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

// RedactURL hides any password in a URL's user info, for logs and pages.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Options configure a Set.
type Options struct {
	// Logger receives the set's and the targets' logs; nil discards them.
	Logger *slog.Logger
	// Probe is the Prometheus probe collector every target reports to (inline: it only
	// updates counters); nil makes one, available from Set.Probe.
	Probe *collector.Probe
	// Server collects the model-server scrapes; nil makes one, available from Set.Server.
	Server *server.Collector
	// Observers each get every event through a prober.Queue of their own, so a slow one
	// (a report builder, an exporter) never delays the pacer.
	Observers []prober.Observer
	// QueueLimit bounds each observer's queue (prober.DefaultQueueLimit when ≤ 0).
	QueueLimit int
	// Inline observers get every event directly, after the probe: each must already never
	// block (the OTLP exporter, which keeps a bounded queue of its own and counts its drops).
	Inline []prober.Observer
	// Once runs each target's stages once instead of looping them (one-shot runs).
	Once bool
	// Shard and Shards, with Shards > 1, run shard Shard of Shards of every target (see
	// BuildOptions).
	Shard, Shards int
	// Trace, when set, gives each request its W3C trace context (see BuildOptions).
	Trace prober.TraceStarter
	// NewClient, when set, builds every target's client instead of the API registry (see
	// BuildOptions).
	NewClient func(config.Target) (prober.Client, error)
}

// Set runs a set of targets. Apply makes the running targets match a configuration; Close
// stops them. A Set is safe for concurrent use; applies are serialised.
type Set struct {
	ctx           context.Context
	logger        *slog.Logger
	probe         *collector.Probe
	server        *server.Collector
	once          bool
	shard, shards int
	trace         prober.TraceStarter
	newClient     func(config.Target) (prober.Client, error)
	observer      prober.Observer // the probe, then every queue
	queues        []*prober.Queue
	queueWG       sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	targets map[string]*running
	order   []string // target names in configuration order
}

// running is one target generation: its pipeline and the goroutines probing it.
type running struct {
	p      *Pipeline
	logger *slog.Logger
	cancel context.CancelFunc
	done   chan struct{} // closed when the runner and the scraper have returned
}

// New returns an empty set whose targets run until ctx ends or Close is called.
func New(ctx context.Context, opts Options) *Set {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Probe == nil {
		opts.Probe = collector.NewProbe()
	}
	if opts.Server == nil {
		opts.Server = server.NewCollector()
	}
	s := &Set{ctx: ctx, logger: opts.Logger, probe: opts.Probe, server: opts.Server, once: opts.Once,
		shard: opts.Shard, shards: opts.Shards, trace: opts.Trace, newClient: opts.NewClient, targets: map[string]*running{}}
	obs := prober.Observers{opts.Probe}
	obs = append(obs, opts.Inline...)
	for _, o := range opts.Observers {
		q := prober.NewQueue(o, opts.QueueLimit)
		s.queues = append(s.queues, q)
		obs = append(obs, q)
		// Owned by the set: Close closes the queue, and Run returns once it has delivered.
		s.queueWG.Go(func() { q.Run(context.Background()) })
	}
	s.observer = obs
	return s
}

// Probe returns the Prometheus probe collector the targets report to.
func (s *Set) Probe() *collector.Probe { return s.probe }

// Server returns the Prometheus collector of the model-server scrapes.
func (s *Set) Server() *server.Collector { return s.server }

// Apply makes the running targets match cfg: targets whose settings did not change keep
// running (and keep their warmup state and seed); the others are stopped, started or
// replaced. Every new or changed target is built first; if any cannot be, nothing changes and
// the error names each target that failed.
func (s *Set) Apply(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.ctx.Err() != nil {
		return nil // shutting down: start nothing new
	}
	want := map[string]bool{}
	order := make([]string, 0, len(cfg.Targets))
	var (
		prepared []*running
		errs     []error
	)
	for _, t := range cfg.Targets {
		want[t.Name] = true
		order = append(order, t.Name)
		old, exists := s.targets[t.Name]
		if exists && old.p.fingerprint == fingerprint(t, cfg.BaseSeed) {
			continue
		}
		logger := s.logger.With("target", t.Name)
		p, err := Build(t, BuildOptions{BaseSeed: cfg.BaseSeed, Observer: s.observer, Once: s.once,
			Shard: s.shard, Shards: s.shards, Logger: logger, Trace: s.trace, NewClient: s.newClient})
		if err != nil {
			errs = append(errs, fmt.Errorf("target %q: %w", t.Name, err))
			continue
		}
		prepared = append(prepared, &running{p: p, logger: logger})
	}
	if len(errs) > 0 {
		for _, rt := range prepared {
			rt.p.Release()
		}
		return errors.Join(errs...)
	}

	replaced := map[string]*server.Scraper{}
	for name, rt := range s.targets {
		if want[name] && !slices.ContainsFunc(prepared, func(p *running) bool { return p.p.Config.Name == name }) {
			continue // unchanged
		}
		s.stop(rt)
		delete(s.targets, name)
		// A replaced target's scraper hands its counters and restart baseline to the new
		// one, so a reload is not mistaken for a server restart.
		if prev := s.server.Remove(name); prev != nil && want[name] {
			replaced[name] = prev
		}
	}
	for _, rt := range prepared {
		s.launch(rt, replaced[rt.p.Config.Name])
		s.targets[rt.p.Config.Name] = rt
	}
	s.order = order
	return nil
}

// launch starts a built target: its run loop and, with a metrics block, its scraper, which
// first inherits from the scraper of the generation it replaces (nil if none).
func (s *Set) launch(rt *running, prevScraper *server.Scraper) {
	p := rt.p
	s.probe.Register(p.Info)
	ctx, cancel := context.WithCancel(s.ctx)
	rt.cancel, rt.done = cancel, make(chan struct{})
	var wg sync.WaitGroup
	runnerDone := make(chan struct{})
	wg.Go(func() {
		defer close(runnerDone)
		p.Runner.Run(ctx)
	})
	if p.Scraper != nil {
		p.Scraper.Inherit(prevScraper)
		// A one-shot run's scraper stops with its runner; the daemon's with the target.
		scrapeCtx := ctx
		if s.once {
			var stopScrape context.CancelFunc
			scrapeCtx, stopScrape = context.WithCancel(ctx)
			wg.Go(func() {
				select {
				case <-runnerDone:
				case <-ctx.Done():
				}
				stopScrape()
			})
		}
		wg.Go(func() { p.Scraper.Run(scrapeCtx) })
		s.server.Add(p.Scraper)
	}
	go func() { // owned by the set through rt.cancel and rt.done
		wg.Wait()
		close(rt.done)
	}()
	t := p.Config
	rt.logger.Info("probing target", "url", RedactURL(t.URL), "api", t.API, "model", t.Model,
		"pacer", t.Traffic.Pacer, "rate", t.Traffic.Rate, "concurrency", t.Traffic.Concurrency,
		"stages", len(t.Traffic.Stages), "seed", p.Seed, "seed_source", p.SeedSource,
		"warmup_requests", t.Warmup.Requests, "warmup_min_duration", t.Warmup.MinDuration)
}

// stop ends one target generation and removes its series.
func (s *Set) stop(rt *running) {
	rt.cancel()
	<-rt.done
	rt.p.Release()
	s.probe.Forget(rt.p.Info)
	rt.logger.Info("stopped probing target")
}

// Wait blocks until every running target's run loop and scraper have returned (a one-shot
// set, whose plans end) or ctx ends.
func (s *Set) Wait(ctx context.Context) error {
	s.mu.Lock()
	var dones []chan struct{}
	for _, rt := range s.targets {
		dones = append(dones, rt.done)
	}
	s.mu.Unlock()
	for _, d := range dones {
		select {
		case <-d:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close stops every target, then lets each observer's queue deliver what it holds (waiting at
// most until ctx ends). The set runs nothing after it.
func (s *Set) Close(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	for name, rt := range s.targets {
		s.stop(rt)
		delete(s.targets, name)
		s.server.Remove(name)
	}
	s.mu.Unlock()
	for _, q := range s.queues {
		q.Close(ctx)
	}
	done := make(chan struct{})
	go func() { s.queueWG.Wait(); close(done) }() // owned by Close: ends with the queues
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// QueueDropped returns how many events the observers' queues dropped (full or closed).
func (s *Set) QueueDropped() uint64 {
	var n uint64
	for _, q := range s.queues {
		n += q.Dropped()
	}
	return n
}

// TargetStatus is what a landing page shows of one configured target. It holds nothing
// secret: the URL is redacted, headers and keys are left out.
type TargetStatus struct {
	Name, URL, API, Model, Pacer string
	// Running is false for a target the last apply could not start.
	Running bool
	// Rate and Concurrency are the configured traffic (0 where the pacer has none); Stages
	// counts the configured stages.
	Rate        float64
	Concurrency int
	Stages      int
	// Seed reproduces the target's request sequence; SeedSource says where it came from.
	Seed       uint64
	SeedSource string
	// WarmupOpen and WarmupForced are the gate's state.
	WarmupOpen, WarmupForced bool
	// InFlight counts requests started and not finished.
	InFlight int
}

// Targets returns the status of every configured target in configuration order.
func (s *Set) Targets() []TargetStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TargetStatus, 0, len(s.order))
	for _, name := range s.order {
		rt, ok := s.targets[name]
		if !ok {
			out = append(out, TargetStatus{Name: name})
			continue
		}
		t := rt.p.Config
		open, forced := rt.p.Gate.IsOpen()
		out = append(out, TargetStatus{
			Name: name, URL: RedactURL(t.URL), API: t.API, Model: t.Model, Pacer: t.Traffic.Pacer,
			Running: true, Rate: openRate(t.Traffic), Concurrency: t.Traffic.Concurrency, Stages: len(t.Traffic.Stages),
			Seed: rt.p.Seed, SeedSource: rt.p.SeedSource, WarmupOpen: open, WarmupForced: forced,
			InFlight: rt.p.Runner.InFlight(),
		})
	}
	return out
}

// openRate is the configured rate of an open-loop pacer, 0 for the others.
func openRate(t config.Traffic) float64 {
	if t.Pacer == traffic.KindConcurrent || t.Pacer == traffic.KindStages {
		return 0
	}
	return t.Rate
}
