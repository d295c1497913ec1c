// Package collector exposes what inferprobe measured: the probe metrics of every target (this
// file), and in sub-packages the model-server scrape and the accelerator metrics.
package collector

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferprobe/inferprobe/prober"
)

// Classic bucket layouts. Each starts at the floor the contract sets (5 ms for TTFT, 1 ms for
// ITL and TPOT); every configured SLO threshold is added as a boundary so SLO ratios are exact.
var (
	ttftBuckets  = []float64{0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 20, 30, 60}
	tokenBuckets = []float64{0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5}
	e2eBuckets   = []float64{0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300}
	delayBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
	// phaseBuckets start at 100 µs: a loopback dial or a cached lookup is that fast, while a
	// remote TLS handshake or a gateway's time to headers runs to seconds.
	phaseBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	// rateBuckets are tokens per second of one request, from a slow CPU model to a fast
	// speculative-decoding server.
	rateBuckets = []float64{1, 2, 5, 10, 15, 20, 30, 40, 50, 60, 75, 100, 125, 150, 200, 300, 500, 1000, 2000, 5000}
)

// Native histogram settings shared by every histogram: 1.1 growth factor (about 5% relative
// error), a bounded bucket count, and an hourly reset to keep resolution after outliers.
const (
	nativeFactor     = 1.1
	nativeMaxBuckets = 160
	nativeMinReset   = time.Hour
)

// Probe is the Prometheus collector for probe metrics and the prober's Observer. It keeps one
// set of series per target generation; a reload that replaces a target calls Forget on the old
// one so its series disappear.
type Probe struct {
	mu      sync.RWMutex
	targets map[*prober.TargetInfo]*targetMetrics
}

// NewProbe returns an empty probe collector.
func NewProbe() *Probe {
	return &Probe{targets: map[*prober.TargetInfo]*targetMetrics{}}
}

var _ prober.Observer = (*Probe)(nil)

// targetMetrics are the series of one target. Histograms and result counters carry the
// adapter label; target-level gauges do not.
type targetMetrics struct {
	ttft, tpot, e2e, delay       *histFamily
	itl, itc                     *histFamily
	ttfo, phase                  *histFamily
	decodeRate, e2eRate          *histFamily
	requests, warmupRequests     *prometheus.CounterVec
	goodput                      *prometheus.CounterVec
	promptTokens, outputTokens   *prometheus.CounterVec
	reasoningTokens, cachedToken *prometheus.CounterVec
	finishReasons                *prometheus.CounterVec
	dropped, warmupForced        prometheus.Counter
	retries                      prometheus.Counter
	traceSkipped, datasetSkipped prometheus.Counter
	turnTTFT                     *prometheus.HistogramVec // labels adapter, turn
	inFlight, targetRate         prometheus.Gauge
	targetConcurrency, stage     prometheus.Gauge
	warmupComplete               prometheus.Gauge
	coldStart                    prometheus.Gauge
	coldStartSet                 bool // guarded by Probe.mu (write lock)
	stageSet                     bool // guarded by Probe.mu (write lock)

	collectors []prometheus.Collector

	adaptersMu sync.RWMutex
	adapters   map[string]*adapterSeries
}

// adapterSeries caches the resolved series of one adapter so the per-request path does no
// label hashing. Its histograms share mu, taken once per request.
type adapterSeries struct {
	mu                         sync.Mutex
	ttft, tpot, e2e, delay     *fastHist
	itl, itc                   *fastHist
	ttfo                       *fastHist
	decodeRate, e2eRate        *fastHist
	phases                     [prober.NumPhases]*fastHist
	results, warmupResults     counters
	goodput                    prometheus.Counter
	promptTokens, outputTokens counters
	requestedPrompt            prometheus.Counter
	reasoningTokens, cached    counters
	finishReasons              counters
}

// counters are one adapter's series of a counter family by label value (after adapter). A
// handful of short values, the common one first, are found quicker by comparing than by a
// map's hash.
type counters struct {
	values []string
	series []prometheus.Counter
}

func newCounters(vec *prometheus.CounterVec, adapter string, values ...string) counters {
	c := counters{values: values}
	for _, v := range values {
		c.series = append(c.series, vec.WithLabelValues(adapter, v))
	}
	return c
}

// get returns the series of value v, or nil for a value outside the set.
func (c counters) get(v string) prometheus.Counter {
	for i, have := range c.values {
		if have == v {
			return c.series[i]
		}
	}
	return nil
}

func withSLO(base []float64, slo []float64) []float64 {
	b := append(slices.Clone(base), slo...)
	slices.Sort(b)
	return slices.Compact(b)
}

func newTargetMetrics(t *prober.TargetInfo) *targetMetrics {
	labels := prometheus.Labels{"target": t.Name, "model": t.Model}
	hist := func(name, help string, buckets []float64, extra ...string) *histFamily {
		return newHistFamily(name, help, labels, buckets, extra...)
	}
	counter := func(name, help string, extra ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			append([]string{"adapter"}, extra...))
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels})
	}
	ttftSLO, tpotSLO, e2eSLO := t.SLO.Thresholds()
	m := &targetMetrics{
		ttft: hist("inferprobe_time_to_first_token_seconds",
			"Time from writing the request (t0) to the first SSE event that carries generated text, successful requests after warmup.",
			withSLO(ttftBuckets, ttftSLO)),
		itl: hist("inferprobe_inter_token_latency_seconds",
			"Time between output tokens, per token: a chunk carrying k tokens after a gap g counts k times g/k (k from per-chunk usage, else 1), successful requests after warmup.",
			tokenBuckets),
		itc: hist("inferprobe_inter_chunk_latency_seconds",
			"Each gap between consecutive token chunks (SSE events with text) of a successful request after warmup, one observation per gap.",
			tokenBuckets),
		ttfo: hist("inferprobe_time_to_first_output_token_seconds",
			"Time from t0 to the first chunk with answer text (not reasoning), successful requests after warmup; equals TTFT for a non-reasoning answer.",
			withSLO(ttftBuckets, ttftSLO)),
		tpot: hist("inferprobe_time_per_output_token_seconds",
			"(t(last token chunk) - t(first token chunk)) / (N - k1), k1 = tokens of the first chunk (1 unless per-chunk usage says otherwise), per successful request with N > k1 in at least two token chunks, after warmup.",
			withSLO(tokenBuckets, tpotSLO)),
		decodeRate: hist("inferprobe_decode_rate_tokens_per_second",
			"Decode throughput of one successful request after warmup: (N - k1) / (t(last token chunk) - t(first token chunk)).",
			rateBuckets),
		e2eRate: hist("inferprobe_end_to_end_rate_tokens_per_second",
			"End-to-end throughput of one successful request after warmup: N / (t(end of stream) - t0).",
			rateBuckets),
		phase: hist("inferprobe_http_phase_duration_seconds",
			"HTTP phases of each request after warmup, by phase: dns, connect, tls, request_write (connection to request written), first_byte (request written to first response byte). Phases that did not happen are not observed.",
			phaseBuckets, "phase"),
		e2e: hist("inferprobe_request_duration_seconds",
			"Time from writing the request (t0) to the end of the stream, successful requests after warmup.",
			withSLO(e2eBuckets, e2eSLO)),
		delay: hist("inferprobe_schedule_delay_seconds",
			"t0 minus the time the pacer intended for the request (client-side lateness), requests after warmup.",
			delayBuckets),
		turnTTFT: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "inferprobe_conversation_time_to_first_token_seconds",
			Help:        "TTFT of successful multi-turn conversation requests after warmup, by turn (from 1; bounded by request.conversation.turns).",
			ConstLabels: labels, Buckets: withSLO(ttftBuckets, ttftSLO),
			NativeHistogramBucketFactor: nativeFactor, NativeHistogramMaxBucketNumber: nativeMaxBuckets,
			NativeHistogramMinResetDuration: nativeMinReset,
		}, []string{"adapter", "turn"}),
		requests: counter("inferprobe_requests_total",
			"Requests finished after the warmup gate opened, by result (success or an error class).", "result"),
		warmupRequests: counter("inferprobe_warmup_requests_total",
			"Requests finished while the warmup gate was closed, by result; never in the latency histograms.", "result"),
		goodput: counter("inferprobe_goodput_requests_total",
			"Successful requests after warmup that met every configured SLO (ttft, tpot, e2e)."),
		promptTokens: counter("inferprobe_prompt_tokens_total",
			"Prompt tokens of successful requests after warmup, by source: usage (server-reported), estimate (the request source's count, when the server sent no usage) and requested (the request source's count, always: compare it with usage for the drift).", "source"),
		outputTokens: counter("inferprobe_output_tokens_total",
			"Output tokens of successful requests after warmup, by source: usage (server-reported) or chunks (token chunks counted).", "source"),
		reasoningTokens: counter("inferprobe_reasoning_tokens_total",
			"Reasoning tokens of successful requests after warmup, by source: usage (completion_tokens_details.reasoning_tokens) or chunks (reasoning chunks counted).", "source"),
		cachedToken: counter("inferprobe_cached_prompt_tokens_total",
			"Prompt tokens served from the server's prefix cache (usage.prompt_tokens_details.cached_tokens), successful requests after warmup, by source (usage).", "source"),
		finishReasons: counter("inferprobe_finish_reasons_total",
			"Requests that ended with a finish_reason, warmup or not, by reason: stop, length, tool_calls, content_filter, abort, error or other.", "reason"),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "inferprobe_request_retries_total",
			Help: "Requests sent again because the first send never reached the server (its connection failed before any byte was written), warmup or not.", ConstLabels: labels}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "inferprobe_requests_dropped_total",
			Help: "Requests the pacer released but the in-flight cap refused.", ConstLabels: labels}),
		warmupForced: prometheus.NewCounter(prometheus.CounterOpts{Name: "inferprobe_warmup_forced_total",
			Help: "Times the warmup gate was forced open because max_duration passed.", ConstLabels: labels}),
		traceSkipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "inferprobe_trace_rows_skipped_total",
			Help: "Malformed rows of the target's trace left out with skip_invalid, counted when the trace is loaded.", ConstLabels: labels}),
		datasetSkipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "inferprobe_dataset_rows_skipped_total",
			Help: "Malformed entries of the target's data set left out with skip_invalid, counted when the data set is loaded.", ConstLabels: labels}),
		inFlight:   gauge("inferprobe_in_flight_requests", "Requests started and not finished."),
		targetRate: gauge("inferprobe_target_request_rate", "The request rate the pacer aims at now, in requests per second (0 for closed loop)."),
		targetConcurrency: gauge("inferprobe_target_concurrency",
			"The number of requests a closed-loop pacer keeps in flight now (0 for open loop)."),
		stage:          gauge("inferprobe_stage", "Index (from 0) of the configured traffic stage running now; absent without stages."),
		warmupComplete: gauge("inferprobe_warmup_complete", "1 once the warmup gate opened for the target, else 0."),
		coldStart: gauge("inferprobe_cold_start_time_to_first_token_seconds",
			"TTFT of the first request after start or after the warmup gate re-armed."),
		adapters: map[string]*adapterSeries{},
	}
	m.collectors = []prometheus.Collector{m.e2e, m.delay, m.e2eRate, m.phase, m.requests,
		m.warmupRequests, m.goodput, m.promptTokens, m.outputTokens, m.reasoningTokens,
		m.cachedToken, m.finishReasons, m.dropped, m.warmupForced, m.retries, m.inFlight,
		m.targetRate, m.targetConcurrency, m.warmupComplete, m.traceSkipped, m.datasetSkipped}
	if !t.Unstreamed {
		// Without a stream no first token or chunk is timed: these series are absent, not a
		// zero that would read as a measurement.
		m.collectors = append(m.collectors, m.ttft, m.itl, m.tpot, m.itc, m.ttfo, m.decodeRate, m.turnTTFT)
	}
	m.collectors = append(m.collectors, objectiveSeries(t, labels)...)
	m.traceSkipped.Add(float64(t.TraceRowsSkipped))
	m.datasetSkipped.Add(float64(t.DatasetRowsSkipped))
	if len(t.Adapters) == 0 {
		m.series("") // the base model's series exist from the start, at zero
	}
	for _, a := range t.Adapters {
		m.series(a) // so does every adapter of a split
	}
	return m
}

// series returns the cached series of one adapter, creating them on first use.
func (m *targetMetrics) series(adapter string) *adapterSeries {
	m.adaptersMu.RLock()
	s := m.adapters[adapter]
	m.adaptersMu.RUnlock()
	if s != nil {
		return s
	}
	m.adaptersMu.Lock()
	defer m.adaptersMu.Unlock()
	if s = m.adapters[adapter]; s != nil {
		return s
	}
	s = &adapterSeries{
		results:         newCounters(m.requests, adapter, prober.Results...),
		warmupResults:   newCounters(m.warmupRequests, adapter, prober.Results...),
		goodput:         m.goodput.WithLabelValues(adapter),
		promptTokens:    newCounters(m.promptTokens, adapter, prober.SourceUsage, prober.SourceEstimate, prober.SourceRequested),
		outputTokens:    newCounters(m.outputTokens, adapter, prober.SourceUsage, prober.SourceChunks),
		reasoningTokens: newCounters(m.reasoningTokens, adapter, prober.SourceUsage, prober.SourceChunks),
		cached:          newCounters(m.cachedToken, adapter, prober.SourceUsage),
		finishReasons:   newCounters(m.finishReasons, adapter, prober.FinishReasons...),
	}
	s.requestedPrompt = s.promptTokens.get(prober.SourceRequested)
	for _, h := range []struct {
		to *(*fastHist)
		f  *histFamily
	}{{&s.ttft, m.ttft}, {&s.itl, m.itl}, {&s.tpot, m.tpot}, {&s.e2e, m.e2e}, {&s.delay, m.delay},
		{&s.itc, m.itc}, {&s.ttfo, m.ttfo}, {&s.decodeRate, m.decodeRate}, {&s.e2eRate, m.e2eRate}} {
		*h.to = h.f.child(&s.mu, adapter)
	}
	for i, name := range prober.PhaseNames {
		s.phases[i] = m.phase.child(&s.mu, adapter, name)
	}
	m.adapters[adapter] = s
	return s
}

// target returns the metrics of t, creating them on first use.
func (p *Probe) target(t *prober.TargetInfo) *targetMetrics {
	p.mu.RLock()
	m := p.targets[t]
	p.mu.RUnlock()
	if m != nil {
		return m
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if m = p.targets[t]; m == nil {
		m = newTargetMetrics(t)
		p.targets[t] = m
	}
	return m
}

// Register creates t's series now, so they are exposed (at zero) before the first request.
func (p *Probe) Register(t *prober.TargetInfo) { p.target(t) }

// Forget removes every series of t (a target removed or replaced by a reload).
func (p *Probe) Forget(t *prober.TargetInfo) {
	p.mu.Lock()
	delete(p.targets, t)
	p.mu.Unlock()
}

// Describe sends nothing: the series set changes with the configuration, so Probe is an
// unchecked collector.
func (p *Probe) Describe(chan<- *prometheus.Desc) {}

// Collect sends every target's series.
func (p *Probe) Collect(ch chan<- prometheus.Metric) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, m := range p.targets {
		for _, c := range m.collectors {
			c.Collect(ch)
		}
		if m.coldStartSet {
			m.coldStart.Collect(ch)
		}
		if m.stageSet {
			m.stage.Collect(ch)
		}
	}
}

// Observe implements prober.Observer. Every event updates counters and gauges only, so it
// never blocks the run loop.
func (p *Probe) Observe(ev prober.Event) {
	switch ev.Kind {
	case prober.EventRequestStarted:
		p.target(ev.Target).inFlight.Inc()
	case prober.EventRequestFinished:
		p.requestFinished(ev.Record)
	case prober.EventRequestDropped:
		p.target(ev.Target).dropped.Inc()
	case prober.EventTargetRate:
		p.target(ev.Target).targetRate.Set(ev.Value)
	case prober.EventTargetConcurrency:
		p.target(ev.Target).targetConcurrency.Set(ev.Value)
	case prober.EventStage:
		m := p.target(ev.Target)
		m.stage.Set(ev.Value)
		p.mu.Lock()
		m.stageSet = true
		p.mu.Unlock()
	case prober.EventWarmup:
		p.warmupChanged(ev.Target, ev.Complete, ev.Forced)
	case prober.EventColdStart:
		p.coldStartSeen(ev.Target, ev.Duration)
	}
}

func (p *Probe) warmupChanged(t *prober.TargetInfo, complete, forced bool) {
	m := p.target(t)
	if complete {
		m.warmupComplete.Set(1)
	} else {
		m.warmupComplete.Set(0)
	}
	if forced {
		m.warmupForced.Inc()
	}
}

func (p *Probe) coldStartSeen(t *prober.TargetInfo, ttft time.Duration) {
	m := p.target(t)
	m.coldStart.Set(ttft.Seconds())
	p.mu.Lock()
	m.coldStartSet = true
	p.mu.Unlock()
}

// requestFinished records one finished request: the per-request hot path. Availability-side
// facts (result, finish reason, retries) count every request, warmup or not (warmup results in
// their own counter); latency, throughput and token series only measured requests.
func (p *Probe) requestFinished(r *prober.Record) {
	m := p.target(r.Target)
	m.inFlight.Dec()
	s := m.series(r.Adapter)
	result := r.Result
	counter := s.results.get(result)
	if counter == nil {
		result = prober.ResultProtocol // a client that sets no known class must not crash the exporter
		counter = s.results.get(result)
	}
	if r.FinishReason != "" {
		if c := s.finishReasons.get(r.FinishReason); c != nil {
			c.Inc()
		} else {
			s.finishReasons.get(prober.FinishOther).Inc()
		}
	}
	if r.Retries > 0 {
		m.retries.Add(float64(r.Retries))
	}
	if r.Warmup {
		s.warmupResults.get(result).Inc()
		return
	}
	counter.Inc()
	s.mu.Lock()
	s.delay.add(seconds(r.ScheduleDelay()), 1)
	for i := range prober.NumPhases {
		if d, ok := r.Phase(i); ok {
			s.phases[i].add(seconds(d), 1)
		}
	}
	if r.Result != prober.ResultSuccess {
		s.mu.Unlock()
		return
	}
	ttft, hasTTFT := r.TTFT()
	if hasTTFT {
		s.ttft.add(seconds(ttft), 1)
	}
	if ttfo, ok := r.TTFO(); ok {
		s.ttfo.add(seconds(ttfo), 1)
	}
	// Per token: a chunk of k tokens after gap g stands for k tokens that each took g/k, the
	// even split being all a client can know; so the ITL observations of a request sum to
	// t_last − t_first and their mean is its TPOT.
	for i, gap := range r.Gaps {
		addGap(s.itc, s.itl, seconds(gap), r.GapTokenCount(i))
	}
	if tpot, ok := r.TPOT(); ok {
		s.tpot.add(seconds(tpot), 1)
	}
	if rate, ok := r.DecodeRate(); ok {
		s.decodeRate.add(rate, 1)
	}
	if rate, ok := r.E2ERate(); ok {
		s.e2eRate.add(rate, 1)
	}
	s.e2e.add(seconds(r.End), 1)
	s.mu.Unlock()
	if hasTTFT && r.Turn > 0 {
		m.turnTTFT.WithLabelValues(r.Adapter, strconv.Itoa(r.Turn)).Observe(ttft.Seconds())
	}
	if r.Target.SLO.Met(r) {
		s.goodput.Inc()
	}
	if c := s.outputTokens.get(r.OutputSource); c != nil {
		c.Add(float64(r.OutputTokens))
	}
	if c := s.promptTokens.get(r.PromptSource); c != nil {
		c.Add(float64(r.PromptTokens))
	}
	if r.ReasoningSource != "" {
		if c := s.reasoningTokens.get(r.ReasoningSource); c != nil {
			c.Add(float64(r.ReasoningTokens))
		}
	}
	if r.CachedSource != "" {
		if c := s.cached.get(r.CachedSource); c != nil {
			c.Add(float64(r.CachedTokens))
		}
	}
	if r.RequestedPromptTokens > 0 {
		s.requestedPrompt.Add(float64(r.RequestedPromptTokens))
	}
}

// seconds is Duration.Seconds without its integer division: the same value to within a
// rounding step, cheaper on the per-request path.
func seconds(d time.Duration) float64 { return float64(d) / 1e9 }
