package otlp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	promb "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/credentials"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/prober"
)

// pipeline is one configured export: a meter provider with the bridge and the GenAI
// instruments, a tracer provider when traces are on, and the queue and goroutine that turn
// records into measurements and spans. A reload with other settings replaces it whole.
type pipeline struct {
	settings Settings
	meters   *sdkmetric.MeterProvider
	tracer   *sdktrace.TracerProvider // nil without traces
	spans    *spanBatcher             // nil without traces
	recorder *recorder
	queue    *prober.Queue
	done     chan struct{}
	sampleAt uint64 // trace IDs whose low 63 bits are below it are sampled
}

// newPipeline builds and starts a pipeline; nothing is exported before its first interval.
func newPipeline(s Settings, t *Telemetry) (*pipeline, error) {
	tlsCfg, err := tlsConfig(s)
	if err != nil {
		return nil, err
	}
	res, err := newResource(s, t.version)
	if err != nil {
		return nil, err
	}
	headers := make(map[string]string, len(s.Headers))
	for k, v := range s.Headers {
		headers[k] = v.Value()
	}
	mexp, err := newMetricExporter(s, headers, tlsCfg)
	if err != nil {
		return nil, err
	}
	var bridged sdkmetric.Producer = unitProducer{promb.NewMetricProducer(promb.WithGatherer(t.gatherer))}
	if s.Delta {
		bridged = t.delta
	}
	reader := sdkmetric.NewPeriodicReader(&countingMetricExporter{Exporter: mexp, t: t, delta: s.Delta},
		sdkmetric.WithInterval(s.Interval), sdkmetric.WithTimeout(s.Timeout),
		sdkmetric.WithProducer(bridged))
	p := &pipeline{settings: s, done: make(chan struct{})}
	p.meters = sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(reader))
	if p.recorder, err = newRecorder(p.meters.Meter(scopeName), t); err != nil {
		_ = p.meters.Shutdown(context.Background())
		return nil, err
	}
	if s.Traces {
		texp, err := newTraceExporter(s, headers, tlsCfg)
		if err != nil {
			_ = p.meters.Shutdown(context.Background())
			return nil, err
		}
		flushEvery := min(s.Interval, 5*time.Second)
		p.spans = newSpanBatcher(texp, s.Timeout, flushEvery, t)
		p.tracer = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSpanProcessor(p.spans),
			sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithIDGenerator(recordIDs{}))
		p.recorder.tracer = p.tracer.Tracer(scopeName)
		p.sampleAt = sampleBound(s.SamplingRatio)
	}
	q := prober.NewQueue(p.recorder, t.queueLimit)
	p.queue = q
	go func() { defer close(p.done); q.Run(context.Background()) }() // owned: shutdown waits
	return p, nil
}

// shutdown delivers what the queue holds, flushes both providers and stops, within ctx.
func (p *pipeline) shutdown(ctx context.Context) error {
	p.queue.Close(ctx)
	var errs []error
	if p.tracer != nil {
		errs = append(errs, p.tracer.Shutdown(ctx))
	}
	errs = append(errs, p.meters.Shutdown(ctx))
	select {
	case <-p.done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("otlp: the record queue did not drain before the deadline: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

func newMetricExporter(s Settings, headers map[string]string, tlsCfg *tls.Config) (sdkmetric.Exporter, error) {
	ctx := context.Background() // the exporters connect lazily; nothing blocks here
	temporality := sdkmetric.DefaultTemporalitySelector
	if s.Delta {
		temporality = deltaSelector
	}
	u, _ := url.Parse(s.Endpoint)
	if s.Protocol == config.OTelHTTPProtobuf {
		opts := []otlpmetrichttp.Option{otlpmetrichttp.WithEndpointURL(signalURL(u, "v1/metrics")),
			otlpmetrichttp.WithHeaders(headers), otlpmetrichttp.WithTimeout(s.Timeout),
			otlpmetrichttp.WithTemporalitySelector(temporality),
			otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false})}
		if tlsCfg != nil {
			opts = append(opts, otlpmetrichttp.WithTLSClientConfig(tlsCfg))
		}
		return otlpmetrichttp.New(ctx, opts...)
	}
	opts := []otlpmetricgrpc.Option{otlpmetricgrpc.WithEndpointURL(s.Endpoint),
		otlpmetricgrpc.WithHeaders(headers), otlpmetricgrpc.WithTimeout(s.Timeout),
		otlpmetricgrpc.WithTemporalitySelector(temporality),
		otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false})}
	if tlsCfg != nil {
		opts = append(opts, otlpmetricgrpc.WithTLSCredentials(credentials.NewTLS(tlsCfg)))
	}
	return otlpmetricgrpc.New(ctx, opts...)
}

func newTraceExporter(s Settings, headers map[string]string, tlsCfg *tls.Config) (sdktrace.SpanExporter, error) {
	ctx := context.Background()
	u, _ := url.Parse(s.Endpoint)
	if s.Protocol == config.OTelHTTPProtobuf {
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(signalURL(u, "v1/traces")),
			otlptracehttp.WithHeaders(headers), otlptracehttp.WithTimeout(s.Timeout),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false})}
		if tlsCfg != nil {
			opts = append(opts, otlptracehttp.WithTLSClientConfig(tlsCfg))
		}
		return otlptracehttp.New(ctx, opts...)
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(s.Endpoint),
		otlptracegrpc.WithHeaders(headers), otlptracegrpc.WithTimeout(s.Timeout),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false})}
	if tlsCfg != nil {
		opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tlsCfg)))
	}
	return otlptracegrpc.New(ctx, opts...)
}

// signalURL appends an OTLP/HTTP signal path to the base endpoint, as the exporter
// specification does for OTEL_EXPORTER_OTLP_ENDPOINT.
func signalURL(base *url.URL, signal string) string {
	u := *base
	u.Path = path.Join("/", u.Path, signal)
	return u.String()
}

// deltaSelector is the OTLP exporter specification's "delta" preference: counters and
// histograms delta, up-down counters cumulative.
func deltaSelector(k sdkmetric.InstrumentKind) metricdata.Temporality {
	switch k {
	case sdkmetric.InstrumentKindUpDownCounter, sdkmetric.InstrumentKindObservableUpDownCounter:
		return metricdata.CumulativeTemporality
	}
	return metricdata.DeltaTemporality
}

// tlsConfig returns the TLS configuration of an https endpoint; nil for http.
func tlsConfig(s Settings) (*tls.Config, error) {
	if !strings.HasPrefix(s.Endpoint, "https://") {
		return nil, nil
	}
	c := s.TLS
	cfg := &tls.Config{ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // explicitly configured
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("otel tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("otel tls.ca_file: no PEM certificates in %s", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("otel tls.cert_file/key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// newResource is OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, then the configured
// attributes over them; service.name is inferprobe when nothing names it.
func newResource(s Settings, version string) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{attribute.String("service.version", version)}
	for k, v := range s.Resource {
		attrs = append(attrs, attribute.String(k, v))
	}
	env, err := resource.New(context.Background(), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	base := resource.NewSchemaless(attribute.String("service.name", DefaultServiceName))
	merged, err := resource.Merge(base, env)
	if err != nil {
		return nil, err
	}
	if merged, err = resource.Merge(merged, resource.NewSchemaless(attrs...)); err != nil {
		return nil, err
	}
	// An empty service.name (OTEL_RESOURCE_ATTRIBUTES=service.name=) names nothing: the
	// default stands (found by FuzzResourceAttributes).
	if v, ok := merged.Set().Value("service.name"); !ok || v.AsString() == "" {
		return resource.Merge(merged, base)
	}
	return merged, nil
}

// unitProducer sets the unit of each bridged series from its name's Prometheus unit suffix
// (the bridge leaves Unit empty), so OTel back ends see s and {token} as the GenAI metrics
// carry them.
type unitProducer struct{ sdkmetric.Producer }

// Produce implements sdkmetric.Producer.
func (u unitProducer) Produce(ctx context.Context) ([]metricdata.ScopeMetrics, error) {
	sms, err := u.Producer.Produce(ctx)
	for i := range sms {
		for j := range sms[i].Metrics {
			m := &sms[i].Metrics[j]
			if m.Unit == "" {
				m.Unit = UnitOf(m.Name)
			}
		}
	}
	return sms, err
}

// UnitOf returns the UCUM unit of a Prometheus series name from its unit suffix, "" when it
// has none that maps.
func UnitOf(name string) string {
	name = strings.TrimSuffix(name, "_total")
	switch {
	case strings.HasSuffix(name, "_seconds"):
		return "s"
	case strings.HasSuffix(name, "_tokens"), strings.HasSuffix(name, "_tokens_per_second"):
		if strings.HasSuffix(name, "_per_second") {
			return "{token}/s"
		}
		return "{token}"
	case strings.HasSuffix(name, "_bytes"):
		return "By"
	case strings.HasSuffix(name, "_ratio"):
		return "1"
	case strings.HasSuffix(name, "_requests"):
		return "{request}"
	}
	return ""
}
