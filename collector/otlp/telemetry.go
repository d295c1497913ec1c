package otlp

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promb "go.opentelemetry.io/contrib/bridges/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/prober"
)

// scopeName is the instrumentation scope of the GenAI metrics and the spans.
const scopeName = "github.com/inferprobe/inferprobe/collector/otlp"

// Signals: the `signal` label of the export error and drop counters.
const (
	SignalMetrics = "metrics"
	SignalTraces  = "traces"
)

// logEvery bounds how often export failures are logged, per signal; the counters count all.
const logEvery = 30 * time.Second

// Options configure a Telemetry.
type Options struct {
	// Gatherer is the Prometheus registry whose series are pushed (the one /metrics serves).
	Gatherer prometheus.Gatherer
	// Logger receives the rate-limited export errors; nil discards them.
	Logger *slog.Logger
	// Version is the service.version resource attribute.
	Version string
	// QueueLimit bounds the records waiting for the exporter goroutine (DefaultQueueLimit
	// when ≤ 0); past it records are dropped and counted.
	QueueLimit int
	// Getenv reads the OTEL_* environment; nil means none (tests), the daemon passes os.Getenv.
	Getenv func(string) string
}

// Telemetry is the OTLP export of one process. It lives as long as the daemon: Prepare and
// Commit replace its pipeline on a reload whose settings differ, while Observe and
// StartTrace (what the engine holds) and the Prometheus counters stay. Off (no endpoint), it
// costs an atomic load per event.
type Telemetry struct {
	gatherer   prometheus.Gatherer
	logger     *slog.Logger
	version    string
	queueLimit int
	getenv     func(string) string

	cur     atomic.Pointer[pipeline]
	targets atomic.Pointer[map[string]targetAttrs]
	// delta turns the bridged series into deltas for pipelines with delta temporality. It
	// outlives pipelines, so an export replaced by a reload does not send again what the
	// one before it sent.
	delta *deltaProducer

	exportErrors *prometheus.CounterVec
	dropped      *prometheus.CounterVec
	queueDesc    *prometheus.Desc
	retiredDrops atomic.Uint64 // queue drops of pipelines already replaced

	logMu   sync.Mutex
	lastLog map[string]time.Time
	skipped map[string]int
}

// New returns a Telemetry with export off; Prepare and Commit turn it on.
func New(o Options) *Telemetry {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.QueueLimit <= 0 {
		o.QueueLimit = DefaultQueueLimit
	}
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	t := &Telemetry{gatherer: o.Gatherer, logger: o.Logger, version: o.Version, queueLimit: o.QueueLimit, getenv: o.Getenv,
		exportErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "inferprobe_otel_export_errors_total",
			Help: "OTLP exports that failed (collector unreachable, slow past the timeout, or refusing), by signal."}, []string{"signal"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "inferprobe_otel_dropped_total",
			Help: "Data points and spans lost to failed exports or a full span buffer, by signal."}, []string{"signal"}),
		queueDesc: prometheus.NewDesc("inferprobe_otel_dropped_records_total",
			"Request records dropped before becoming GenAI measurements and spans because the OTLP queue was full.", nil, nil),
		lastLog: map[string]time.Time{}, skipped: map[string]int{},
	}
	for _, s := range []string{SignalMetrics, SignalTraces} {
		t.exportErrors.WithLabelValues(s)
		t.dropped.WithLabelValues(s)
	}
	empty := map[string]targetAttrs{}
	t.targets.Store(&empty)
	t.delta = newDeltaProducer(unitProducer{promb.NewMetricProducer(promb.WithGatherer(t.gatherer))})
	return t
}

// Describe implements prometheus.Collector.
func (t *Telemetry) Describe(ch chan<- *prometheus.Desc) {
	t.exportErrors.Describe(ch)
	t.dropped.Describe(ch)
	ch <- t.queueDesc
}

// Collect implements prometheus.Collector.
func (t *Telemetry) Collect(ch chan<- prometheus.Metric) {
	t.exportErrors.Collect(ch)
	t.dropped.Collect(ch)
	n := t.retiredDrops.Load()
	if p := t.cur.Load(); p != nil {
		n += p.queue.Dropped()
	}
	ch <- prometheus.MustNewConstMetric(t.queueDesc, prometheus.CounterValue, float64(n))
}

// Enabled reports whether a pipeline is exporting.
func (t *Telemetry) Enabled() bool { return t.cur.Load() != nil }

// Prepared is a pipeline built for a configuration but not yet in force (see Prepare).
type Prepared struct {
	p       *pipeline
	off     bool // the configuration turns export off
	same    bool // the running pipeline already has these settings
	targets map[string]targetAttrs
}

// Prepare resolves cfg's otel block against the environment and builds what it needs,
// without touching the running export, so that a reload that fails elsewhere changes nothing.
// Unchanged settings keep the running pipeline (its cumulative series go on).
func (t *Telemetry) Prepare(cfg *config.Config) (*Prepared, error) {
	s, ok, err := Resolve(cfg.OTel, t.getenv)
	if err != nil {
		return nil, err
	}
	pr := &Prepared{targets: targetsOf(cfg.Targets)}
	switch cur := t.cur.Load(); {
	case !ok:
		pr.off = true
	case cur != nil && reflect.DeepEqual(cur.settings, s):
		pr.same = true
	default:
		if pr.p, err = newPipeline(s, t); err != nil {
			return nil, err
		}
	}
	return pr, nil
}

// Discard releases a Prepared that will not be committed.
func (t *Telemetry) Discard(pr *Prepared) {
	if pr != nil && pr.p != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = pr.p.shutdown(ctx)
	}
}

// Commit puts a Prepared in force; the pipeline it replaces is flushed and stopped within
// ctx. Serialise Prepare and Commit (the daemon's reload lock does).
func (t *Telemetry) Commit(ctx context.Context, pr *Prepared) {
	t.targets.Store(&pr.targets)
	if pr.same {
		return
	}
	old := t.cur.Swap(pr.p) // nil when pr.off
	if old != nil {
		t.retire(ctx, old)
	}
	if pr.p != nil {
		t.logger.Info("OTLP export on", "endpoint", pr.p.settings.Endpoint, "protocol", pr.p.settings.Protocol,
			"interval", pr.p.settings.Interval, "traces", pr.p.settings.Traces, "sampling_ratio", pr.p.settings.SamplingRatio)
	}
}

// Close flushes and stops the running pipeline within ctx (the shutdown deadline).
func (t *Telemetry) Close(ctx context.Context) {
	if old := t.cur.Swap(nil); old != nil {
		t.retire(ctx, old)
	}
}

func (t *Telemetry) retire(ctx context.Context, p *pipeline) {
	if err := p.shutdown(ctx); err != nil {
		t.logger.Warn("OTLP export did not flush completely at shutdown", "err", err)
	}
	t.retiredDrops.Add(p.queue.Dropped())
}

// Observe implements prober.Observer: finished records go to the pipeline's bounded queue,
// everything else is ignored. It never blocks.
func (t *Telemetry) Observe(ev prober.Event) {
	if ev.Kind != prober.EventRequestFinished {
		return
	}
	if p := t.cur.Load(); p != nil {
		p.queue.Observe(ev)
	}
}

// StartTrace gives a record a W3C trace context (a prober.TraceStarter) when traces are on:
// random IDs, sampled as TraceIDRatioBased would decide on the trace ID. Unsampled requests
// still carry a traceparent (flag 00), so the server does not sample them either.
func (t *Telemetry) StartTrace(rec *prober.Record) {
	p := t.cur.Load()
	if p == nil || p.tracer == nil {
		return
	}
	tc := &rec.Trace
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		tc.TraceID[i] = byte(hi >> (56 - 8*i))
		tc.TraceID[8+i] = byte(lo >> (56 - 8*i))
	}
	sid := rand.Uint64() | 1 // never all zeros
	for i := range 8 {
		tc.SpanID[i] = byte(sid >> (56 - 8*i))
	}
	tc.Sampled = lo>>1 < p.sampleAt
}

// sampleBound is TraceIDRatioBased's bound on the trace ID's low 63 bits.
func sampleBound(ratio float64) uint64 {
	if ratio >= 1 {
		return 1 << 63
	}
	if ratio <= 0 {
		return 0
	}
	return uint64(ratio * (1 << 63))
}

// exportFailed counts a failed export and what it lost, and logs at a bounded rate.
func (t *Telemetry) exportFailed(signal string, err error, lost int) {
	t.exportErrors.WithLabelValues(signal).Inc()
	t.dropped.WithLabelValues(signal).Add(float64(lost))
	t.logLimited(signal, "OTLP export failed", "signal", signal, "lost", lost, "err", err)
}

// HandleError is meant for the OTel SDK's global error handler (otel.SetErrorHandler, which
// the daemon sets; a library does not touch process-wide state): what the SDK reports outside
// our exporter wrappers is logged at the bounded rate of the export errors, and what is an
// export error (an OTLP partial success, a failed upload) is counted in
// inferprobe_otel_export_errors_total under its signal as well.
func (t *Telemetry) HandleError(err error) {
	if err == nil {
		return
	}
	if signal := exportSignal(err); signal != "" {
		t.exportErrors.WithLabelValues(signal).Inc()
		t.logLimited("sdk-"+signal, "OTLP export failed", "signal", signal, "err", err)
		return
	}
	t.logLimited("sdk", "OpenTelemetry SDK error", "err", err)
}

// exportSignal returns the signal of an SDK error that is an export error, "" for others.
// The OTLP exporters' error types are internal, so their messages decide: a partial success
// names what was rejected ("… spans rejected", "… metric data points rejected"), a failed
// export is wrapped as "traces export: …" or "failed to upload [incomplete] metrics …".
func exportSignal(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "traces export:"),
		strings.Contains(msg, "OTLP partial success") && strings.Contains(msg, " spans rejected)"):
		return SignalTraces
	case strings.Contains(msg, "failed to upload metrics"), strings.Contains(msg, "failed to upload incomplete metrics"),
		strings.Contains(msg, "OTLP partial success") && strings.Contains(msg, " metric data points rejected)"):
		return SignalMetrics
	}
	return ""
}

// drop counts spans lost without an export attempt (the span buffer was full).
func (t *Telemetry) drop(signal string, n int) {
	t.dropped.WithLabelValues(signal).Add(float64(n))
	t.logLimited(signal+"-buffer", "OTLP span buffer full: spans dropped", "signal", signal, "dropped", n)
}

func (t *Telemetry) logLimited(key, msg string, args ...any) {
	t.logMu.Lock()
	now := time.Now()
	if last, ok := t.lastLog[key]; ok && now.Sub(last) < logEvery {
		t.skipped[key]++
		t.logMu.Unlock()
		return
	}
	skipped := t.skipped[key]
	t.lastLog[key], t.skipped[key] = now, 0
	t.logMu.Unlock()
	t.logger.Warn(msg, append(args, "similar_messages_suppressed", skipped)...)
}

// countingMetricExporter counts failed metric exports and the points they carried. It
// returns nil after counting, so the SDK's global error handler does not log each failure
// again (ours is rate limited).
type countingMetricExporter struct {
	sdkmetric.Exporter
	t     *Telemetry
	delta bool // the pipeline exports deltas
}

// Export implements sdkmetric.Exporter. An export that the periodic reader itself canceled (its
// shutdown, at the daemon's stop or when a reload retires the pipeline, stops the export in
// flight) did not fail at the receiver: the shutdown's final export that follows carries the
// cumulative totals again, so it is no export error; with delta temporality its points are lost
// and counted as dropped.
func (e *countingMetricExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	err := e.Exporter.Export(ctx, rm)
	switch {
	case err == nil:
	case errors.Is(ctx.Err(), context.Canceled):
		if e.delta {
			e.t.dropped.WithLabelValues(SignalMetrics).Add(float64(countPoints(rm)))
		}
	default:
		e.t.exportFailed(SignalMetrics, err, countPoints(rm))
	}
	return nil
}

// countPoints counts the data points in rm.
func countPoints(rm *metricdata.ResourceMetrics) int {
	n := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Gauge[float64]:
				n += len(d.DataPoints)
			case metricdata.Gauge[int64]:
				n += len(d.DataPoints)
			case metricdata.Sum[float64]:
				n += len(d.DataPoints)
			case metricdata.Sum[int64]:
				n += len(d.DataPoints)
			case metricdata.Histogram[float64]:
				n += len(d.DataPoints)
			case metricdata.Histogram[int64]:
				n += len(d.DataPoints)
			case metricdata.ExponentialHistogram[float64]:
				n += len(d.DataPoints)
			case metricdata.ExponentialHistogram[int64]:
				n += len(d.DataPoints)
			case metricdata.Summary:
				n += len(d.DataPoints)
			}
		}
	}
	return n
}

// targetAttrs is what a target contributes to the GenAI attributes.
type targetAttrs struct {
	operation, provider, address string
	port                         int
}

// genAIKind gives an API flavour's gen_ai.operation.name and gen_ai.provider.name: the
// semantic conventions' well-known values where one applies (openai, anthropic; chat,
// text_completion), else the name of the protocol's server (TGI, Triton), as the conventions
// allow for providers they do not list. ok is false for a flavour it does not know.
func genAIKind(api string) (a targetAttrs, ok bool) {
	switch api {
	case prober.APIOpenAIChat, prober.APIOpenAIResponses:
		return targetAttrs{operation: "chat", provider: "openai"}, true
	case prober.APIOpenAICompletions:
		return targetAttrs{operation: "text_completion", provider: "openai"}, true
	case prober.APIAnthropicMessages:
		return targetAttrs{operation: "chat", provider: "anthropic"}, true
	case prober.APITGI:
		return targetAttrs{operation: "text_completion", provider: "tgi"}, true
	case prober.APITritonGenerate, prober.APIKServeGRPC:
		return targetAttrs{operation: "text_completion", provider: "triton"}, true
	}
	return targetAttrs{operation: "chat", provider: "openai"}, false
}

// targetsOf maps each target name to its GenAI attributes: the operation and provider by API
// flavour (genAIKinds), server address and port from the URL.
func targetsOf(ts []config.Target) map[string]targetAttrs {
	m := make(map[string]targetAttrs, len(ts))
	for _, t := range ts {
		a, _ := genAIKind(t.API)
		if u, err := url.Parse(t.URL); err == nil {
			a.address = u.Hostname()
			if p := u.Port(); p != "" {
				a.port, _ = strconv.Atoi(p)
			} else if u.Scheme == "https" {
				a.port = 443
			} else {
				a.port = 80
			}
		}
		m[t.Name] = a
	}
	return m
}
