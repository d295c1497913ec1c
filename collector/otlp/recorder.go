package otlp

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/semconv/v1.41.0/genaiconv"
	"go.opentelemetry.io/otel/trace"

	"github.com/inferprobe/inferprobe/prober"
)

// GenAI client metrics of semantic conventions v1.41.0 (all of stability "development"; the
// last release of the main conventions that holds them: later GenAI conventions live in their
// own repository under other names). The boundaries are the conventions' recommended ones.
var (
	// DurationBuckets are the recommended boundaries of gen_ai.client.operation.duration,
	// also used for time_to_first_chunk and time_per_output_chunk, in seconds.
	DurationBuckets = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
	// TokenBuckets are the recommended boundaries of gen_ai.client.token.usage.
	TokenBuckets = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}
)

// recorder turns finished records into GenAI measurements and spans. It runs on the
// pipeline queue's goroutine only, so its attribute cache needs no lock.
type recorder struct {
	t        *Telemetry
	duration genaiconv.ClientOperationDuration
	ttfc     genaiconv.ClientOperationTimeToFirstChunk
	tpoc     genaiconv.ClientOperationTimePerOutputChunk
	tokens   genaiconv.ClientTokenUsage
	tracer   trace.Tracer // nil without traces

	sets map[setKey]*attrSets
}

type setKey struct {
	target *prober.TargetInfo
	result string
	// adapter and responseModel are bounded: a target's adapters, and the models its server
	// answers as (usually one).
	adapter, responseModel string
}

// attrSets are the precomputed attribute options of one target and result class.
type attrSets struct {
	op, input, output metric.MeasurementOption
	span              []attribute.KeyValue
}

func newRecorder(m metric.Meter, t *Telemetry) (*recorder, error) {
	r := &recorder{t: t, sets: map[setKey]*attrSets{}}
	var err error
	if r.duration, err = genaiconv.NewClientOperationDuration(m, metric.WithExplicitBucketBoundaries(DurationBuckets...)); err != nil {
		return nil, err
	}
	if r.ttfc, err = genaiconv.NewClientOperationTimeToFirstChunk(m, metric.WithExplicitBucketBoundaries(DurationBuckets...)); err != nil {
		return nil, err
	}
	if r.tpoc, err = genaiconv.NewClientOperationTimePerOutputChunk(m, metric.WithExplicitBucketBoundaries(DurationBuckets...)); err != nil {
		return nil, err
	}
	if r.tokens, err = genaiconv.NewClientTokenUsage(m, metric.WithExplicitBucketBoundaries(TokenBuckets...)); err != nil {
		return nil, err
	}
	return r, nil
}

// Observe implements prober.Observer (behind the pipeline's queue).
func (r *recorder) Observe(ev prober.Event) {
	rec := ev.Record
	if ev.Kind != prober.EventRequestFinished || rec == nil || rec.Target == nil {
		return
	}
	a := r.attrs(rec)
	if r.tracer != nil && rec.Trace.Sampled && rec.Trace.Valid() {
		r.span(rec, a)
	}
	// Warmup requests are marked on their span but kept out of the metrics, as the
	// Prometheus latency histograms keep them out.
	if rec.Warmup {
		return
	}
	ctx := context.Background()
	r.duration.Float64Histogram.Record(ctx, rec.End.Seconds(), a.op)
	if ttft, ok := rec.TTFT(); ok {
		r.ttfc.Float64Histogram.Record(ctx, ttft.Seconds(), a.op)
	}
	for _, g := range rec.Gaps {
		r.tpoc.Float64Histogram.Record(ctx, g.Seconds(), a.op)
	}
	if rec.PromptTokens > 0 {
		r.tokens.Int64Histogram.Record(ctx, int64(rec.PromptTokens), a.input)
	}
	if rec.OutputTokens > 0 {
		r.tokens.Int64Histogram.Record(ctx, int64(rec.OutputTokens), a.output)
	}
}

// attrs returns the cached attribute sets of a record's target and result.
func (r *recorder) attrs(rec *prober.Record) *attrSets {
	k := setKey{rec.Target, rec.Result, rec.Adapter, rec.ResponseModel}
	if a, ok := r.sets[k]; ok {
		return a
	}
	if len(r.sets) > 4096 { // reloads leave old targets behind: start over rather than grow
		clear(r.sets)
	}
	ta := (*r.t.targets.Load())[rec.Target.Name]
	base := []attribute.KeyValue{
		attribute.String("gen_ai.operation.name", ta.operation),
		attribute.String("gen_ai.provider.name", ta.provider),
		attribute.String("gen_ai.request.model", requestModel(rec)),
	}
	if rec.ResponseModel != "" {
		base = append(base, attribute.String("gen_ai.response.model", rec.ResponseModel))
	}
	if ta.address != "" {
		base = append(base, attribute.String("server.address", ta.address), attribute.Int("server.port", ta.port))
	}
	if rec.Result != prober.ResultSuccess {
		base = append(base, attribute.String("error.type", rec.Result))
	}
	with := func(extra ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(append(append([]attribute.KeyValue(nil), base...), extra...)...))
	}
	a := &attrSets{
		op:     with(),
		input:  with(attribute.String("gen_ai.token.type", "input")),
		output: with(attribute.String("gen_ai.token.type", "output")),
		span:   append(append([]attribute.KeyValue(nil), base...), attribute.String("inferprobe.target", rec.Target.Name), attribute.Bool("gen_ai.request.stream", !rec.Target.Unstreamed)),
	}
	r.sets[k] = a
	return a
}

// Span event names: the first and the last token chunk of the stream.
const (
	EventFirstToken = "gen_ai.first_token"
	EventLastToken  = "gen_ai.last_token"
)

// span records the request as a GenAI client span with the record's own trace context, from
// t0 to the end of the stream, with events at the first and last token chunks.
func (r *recorder) span(rec *prober.Record, a *attrSets) {
	ctx := context.WithValue(context.Background(), traceKey{}, rec.Trace)
	name := a.span[0].Value.AsString() + " " + requestModel(rec)
	_, sp := r.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(rec.Start),
		trace.WithAttributes(a.span...))
	attrs := make([]attribute.KeyValue, 0, 10)
	attrs = append(attrs, attribute.String("inferprobe.result", rec.Result), attribute.Bool("inferprobe.warmup", rec.Warmup),
		attribute.Int64("inferprobe.seq", int64(rec.Seq)), attribute.Int("inferprobe.stage", rec.Stage))
	if rec.Status != 0 {
		attrs = append(attrs, attribute.Int("http.response.status_code", rec.Status))
	}
	if rec.PromptTokens > 0 {
		attrs = append(attrs, attribute.Int("gen_ai.usage.input_tokens", rec.PromptTokens))
	}
	if rec.OutputTokens > 0 {
		attrs = append(attrs, attribute.Int("gen_ai.usage.output_tokens", rec.OutputTokens))
	}
	if rec.FinishReason != "" {
		attrs = append(attrs, attribute.StringSlice("gen_ai.response.finish_reasons", []string{rec.FinishReason}))
	}
	if ttft, ok := rec.TTFT(); ok {
		attrs = append(attrs, attribute.Float64("gen_ai.response.time_to_first_chunk", ttft.Seconds()))
		sp.AddEvent(EventFirstToken, trace.WithTimestamp(rec.Start.Add(rec.FirstToken)))
		sp.AddEvent(EventLastToken, trace.WithTimestamp(rec.Start.Add(rec.LastToken)),
			trace.WithAttributes(attribute.Int("inferprobe.chunks", rec.Chunks)))
	}
	sp.SetAttributes(attrs...)
	if rec.Result != prober.ResultSuccess {
		sp.SetStatus(codes.Error, rec.Result)
	}
	end := rec.Start.Add(rec.End)
	if rec.Start.IsZero() {
		end = time.Now()
	}
	sp.End(trace.WithTimestamp(end))
}

// requestModel is the model the request named: the LoRA adapter when the traffic is split
// over adapters (servers address an adapter by the request's model), else the target's model.
func requestModel(rec *prober.Record) string {
	if rec.Adapter != "" {
		return rec.Adapter
	}
	return rec.Target.Model
}
