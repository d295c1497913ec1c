package otlp_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/inferprobe/inferprobe/collector/otlp"
	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/engine"
	"github.com/inferprobe/inferprobe/internal/testkit"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/simulator"
	"github.com/inferprobe/inferprobe/traffic"
)

// tracedSim serves the simulator and keeps the traceparent of every request it received.
type tracedSim struct {
	URL string
	mu  sync.Mutex
	tp  map[string]bool
}

func startTracedSim(t testing.TB) *tracedSim {
	t.Helper()
	cfg := simulator.DefaultConfig()
	cfg.Seed = 7
	sim, err := simulator.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tracedSim{tp: map[string]bool{}}
	h := sim.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get("traceparent"); v != "" {
			ts.mu.Lock()
			ts.tp[v] = true
			ts.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { sim.Close(); srv.CloseClientConnections(); srv.Close() })
	ts.URL = srv.URL
	return ts
}

// recordSink keeps the finished records' schedule delays and warmup flags (inline; cheap).
type recordSink struct {
	mu       sync.Mutex
	finished int
	warmup   int
	maxDelay time.Duration
	sumDelay time.Duration
	delays   []time.Duration // schedule delay of each non-warmup request
	maxEnd   time.Duration   // the longest request (t0 to end)
}

func (s *recordSink) Observe(ev prober.Event) {
	if ev.Kind != prober.EventRequestFinished {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finished++
	if ev.Record.Warmup {
		s.warmup++
	}
	d := ev.Record.ScheduleDelay()
	s.sumDelay += d
	s.maxDelay = max(s.maxDelay, d)
	if !ev.Record.Warmup {
		s.delays = append(s.delays, d)
	}
	s.maxEnd = max(s.maxEnd, ev.Record.End)
}

// p99 returns the 99th percentile of the non-warmup requests' schedule delays.
func (s *recordSink) p99() time.Duration {
	s.mu.Lock()
	d := slices.Clone(s.delays)
	s.mu.Unlock()
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[(len(d)*99)/100]
}

func (s *recordSink) get() (finished, warmup int, maxDelay, meanDelay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished > 0 {
		meanDelay = s.sumDelay / time.Duration(s.finished)
	}
	return s.finished, s.warmup, s.maxDelay, meanDelay
}

// harness runs one target against the simulator with OTLP export to endpoint.
type harness struct {
	reg  *prometheus.Registry
	tel  *otlp.Telemetry
	set  *engine.Set
	sink *recordSink
}

// startHarness probes at rate; with once, for one stage of that many seconds, then stops
// (the series stay registered until stop).
func startHarness(t testing.TB, simURL string, o *config.OTel, rate float64, once time.Duration) *harness {
	t.Helper()
	cfg := engine.DefaultConfig(simURL)
	cfg.Targets[0].Traffic.Rate = rate
	if once > 0 {
		cfg.Targets[0].Traffic.Pacer = traffic.KindStages
		cfg.Targets[0].Traffic.Stages = []config.Stage{{Rate: rate, Duration: once, Pacer: traffic.KindConstant}}
	}
	cfg.Targets[0].Request.MaxTokens = 8
	cfg.Targets[0].Warmup = config.Warmup{Requests: 2, MaxDuration: time.Minute}
	cfg.Targets[0].Metrics = nil
	cfg.OTel = o
	h := &harness{reg: prometheus.NewRegistry(), sink: &recordSink{}}
	h.tel = otlp.New(otlp.Options{Gatherer: h.reg, Version: "test", QueueLimit: 256})
	h.set = engine.New(context.Background(), engine.Options{Inline: []prober.Observer{h.tel, h.sink}, Trace: h.tel.StartTrace, Once: once > 0})
	h.reg.MustRegister(h.set.Probe(), h.tel)
	pr, err := h.tel.Prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Export first, so that the first request already has its trace context.
	h.tel.Commit(context.Background(), pr)
	if err := h.set.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.stop() })
	return h
}

var stopOnce sync.Map

// stop stops probing, then flushes the export (the final export carries the frozen values).
func (h *harness) stop() {
	if _, done := stopOnce.LoadOrStore(h, true); done {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.set.Close(ctx)
	h.tel.Close(ctx)
}

// drain waits until no request is in flight: the run loop has returned, its last requests
// may not have.
func (h *harness) drain(t testing.TB) {
	t.Helper()
	// The sink observes after the exporter: once it counted every request the probe counted,
	// the exporter has every record.
	testkit.WaitFor(t, 30*time.Second, 10*time.Millisecond, "no request in flight", func() bool {
		fams := h.gather(t)
		v, ok := testkit.Value(fams, "inferprobe_in_flight_requests", map[string]string{"target": "simulator"})
		var total float64
		for _, name := range []string{"inferprobe_requests_total", "inferprobe_warmup_requests_total"} {
			for _, m := range fams[name].GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
		n, _, _, _ := h.sink.get()
		return ok && v == 0 && int(total) == n
	})
}

func (h *harness) gather(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		m[f.GetName()] = f
	}
	return m
}

func labelKey(labels []*dto.LabelPair) string {
	var b strings.Builder
	for _, l := range labels {
		fmt.Fprintf(&b, "%s=%s,", l.GetName(), l.GetValue())
	}
	return b.String()
}

func attrKey(attrs []*commonpb.KeyValue) string {
	var b strings.Builder
	for _, a := range attrs {
		fmt.Fprintf(&b, "%s=%s,", a.Key, a.Value.GetStringValue())
	}
	return b.String()
}

func attrs(kv []*commonpb.KeyValue) map[string]*commonpb.AnyValue {
	m := map[string]*commonpb.AnyValue{}
	for _, a := range kv {
		m[a.Key] = a.Value
	}
	return m
}

func TestExportAgreesWithMetrics(t *testing.T) {
	for _, protocol := range []string{config.OTelGRPC, config.OTelHTTPProtobuf} {
		t.Run(strings.ReplaceAll(protocol, "/", "_"), func(t *testing.T) {
			rcv := startReceiver(t, protocol, false)
			sim := startTracedSim(t)
			ratio := 1.0
			h := startHarness(t, sim.URL, &config.OTel{Endpoint: rcv.URL, Protocol: protocol, Interval: 200 * time.Millisecond,
				Timeout: 200 * time.Millisecond, Resource: map[string]string{"deployment.environment.name": "test"},
				Traces: &config.OTelTraces{SamplingRatio: &ratio}}, 20, time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := h.set.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			h.drain(t)
			// Probing is over: the shutdown's final export and /metrics hold the same values.
			closeCtx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancelClose()
			h.tel.Close(closeCtx)
			finished, warmup, _, _ := h.sink.get()
			fams := h.gather(t)
			got, res := rcv.lastMetrics()
			if finished < 12 {
				t.Fatalf("only %d requests finished", finished)
			}

			if res["service.name"] != "inferprobe" || res["service.version"] != "test" || res["deployment.environment.name"] != "test" {
				t.Errorf("resource attributes %v", res)
			}
			// Every probe series of /metrics arrives with the same type, labels and values.
			compared := 0
			for name, f := range fams {
				if !strings.HasPrefix(name, "inferprobe_") || strings.HasPrefix(name, "inferprobe_otel_") {
					continue
				}
				m, ok := got[name]
				if !ok {
					t.Errorf("%s is on /metrics but was not exported", name)
					continue
				}
				compareFamily(t, f, m)
				compared++
			}
			if compared < 10 {
				t.Fatalf("only %d inferprobe_ families compared", compared)
			}
			if u := got["inferprobe_request_duration_seconds"].GetUnit(); u != "s" {
				t.Errorf("unit of inferprobe_request_duration_seconds %q, want s", u)
			}
			if u := got["inferprobe_output_tokens_total"].GetUnit(); u != "{token}" {
				t.Errorf("unit of inferprobe_output_tokens_total %q, want {token}", u)
			}

			// GenAI client metrics: names, units, buckets, attributes, counts.
			steady := finished - warmup
			dur := got["gen_ai.client.operation.duration"]
			if dur.GetUnit() != "s" || dur.GetHistogram() == nil {
				t.Fatalf("gen_ai.client.operation.duration: %v", dur)
			}
			var n uint64
			for _, dp := range dur.GetHistogram().DataPoints {
				n += dp.GetCount()
				a := attrs(dp.Attributes)
				for k, want := range map[string]string{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
					"gen_ai.request.model": "inferprobe-sim", "gen_ai.response.model": "inferprobe-sim", "server.address": "127.0.0.1"} {
					if a[k].GetStringValue() != want {
						t.Errorf("duration attribute %s = %v, want %s", k, a[k], want)
					}
				}
				if a["server.port"].GetIntValue() == 0 {
					t.Errorf("no server.port")
				}
				if fmt.Sprint(dp.ExplicitBounds) != fmt.Sprint(otlp.DurationBuckets) {
					t.Errorf("duration buckets %v", dp.ExplicitBounds)
				}
			}
			if int(n) != steady {
				t.Errorf("gen_ai.client.operation.duration counts %d requests, %d finished after warmup", n, steady)
			}
			for _, name := range []string{"gen_ai.client.operation.time_to_first_chunk", "gen_ai.client.operation.time_per_output_chunk"} {
				if m := got[name]; m.GetUnit() != "s" || len(m.GetHistogram().GetDataPoints()) == 0 {
					t.Errorf("%s: %v", name, m)
				}
			}
			types := map[string]uint64{}
			for _, dp := range got["gen_ai.client.token.usage"].GetHistogram().GetDataPoints() {
				types[attrs(dp.Attributes)["gen_ai.token.type"].GetStringValue()] += dp.GetCount()
			}
			if types["input"] != uint64(steady) || types["output"] != uint64(steady) {
				t.Errorf("token usage counts %v, want %d of input and output", types, steady)
			}
			if u := got["gen_ai.client.token.usage"].GetUnit(); u != "{token}" {
				t.Errorf("token usage unit %q", u)
			}

			// One span per request, joined to what the server received.
			spans := rcv.spans()
			if len(spans) != finished {
				t.Fatalf("%d spans for %d requests", len(spans), finished)
			}
			marked := 0
			sim.mu.Lock()
			defer sim.mu.Unlock()
			for _, sp := range spans {
				tp := fmt.Sprintf("00-%x-%x-01", sp.TraceId, sp.SpanId)
				if !sim.tp[tp] {
					t.Errorf("span %s: the server never saw traceparent %s", sp.Name, tp)
				}
				if sp.Name != "chat inferprobe-sim" || sp.Kind.String() != "SPAN_KIND_CLIENT" {
					t.Errorf("span name %q kind %v", sp.Name, sp.Kind)
				}
				a := attrs(sp.Attributes)
				if a["inferprobe.warmup"].GetBoolValue() {
					marked++
				}
				if a["inferprobe.result"].GetStringValue() != prober.ResultSuccess || a["gen_ai.usage.output_tokens"].GetIntValue() == 0 ||
					a["gen_ai.usage.input_tokens"].GetIntValue() == 0 {
					t.Errorf("span attributes %v", a)
				}
				var names []string
				for _, e := range sp.Events {
					names = append(names, e.Name)
				}
				if fmt.Sprint(names) != fmt.Sprint([]string{otlp.EventFirstToken, otlp.EventLastToken}) {
					t.Errorf("span events %v", names)
				}
				if len(sp.Events) == 2 && !(sp.StartTimeUnixNano < sp.Events[0].TimeUnixNano && sp.Events[0].TimeUnixNano <= sp.Events[1].TimeUnixNano && sp.Events[1].TimeUnixNano <= sp.EndTimeUnixNano) {
					t.Errorf("span times out of order: start %d, events %d %d, end %d", sp.StartTimeUnixNano, sp.Events[0].TimeUnixNano, sp.Events[1].TimeUnixNano, sp.EndTimeUnixNano)
				}
			}
			if marked != warmup || warmup == 0 {
				t.Errorf("%d spans marked warmup, %d warmup requests", marked, warmup)
			}
			if v, _ := testkit.Value(fams, "inferprobe_otel_export_errors_total", map[string]string{"signal": "metrics"}); v != 0 {
				t.Errorf("%v metric export errors against a working receiver", v)
			}
		})
	}
}

// compareFamily checks one exported metric against its /metrics family.
func compareFamily(t *testing.T, f *dto.MetricFamily, m *metricspb.Metric) {
	t.Helper()
	switch f.GetType() {
	case dto.MetricType_COUNTER:
		sum := m.GetSum()
		if sum == nil || !sum.IsMonotonic || sum.AggregationTemporality != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
			t.Errorf("%s: counter exported as %T", f.GetName(), m.Data)
			return
		}
		want := map[string]float64{}
		for _, s := range f.Metric {
			want[labelKey(s.Label)] = s.GetCounter().GetValue()
		}
		for _, dp := range sum.DataPoints {
			k := attrKey(dp.Attributes)
			if dp.GetAsDouble() != want[k] {
				t.Errorf("%s{%s} = %v over OTLP, %v on /metrics", f.GetName(), k, dp.GetAsDouble(), want[k])
			}
			delete(want, k)
		}
		if len(want) > 0 {
			t.Errorf("%s: series missing over OTLP: %v", f.GetName(), want)
		}
	case dto.MetricType_GAUGE:
		if m.GetGauge() == nil || len(m.GetGauge().DataPoints) != len(f.Metric) {
			t.Errorf("%s: gauge exported as %T", f.GetName(), m.Data)
		}
	case dto.MetricType_HISTOGRAM:
		type cs struct {
			count uint64
			sum   float64
		}
		want := map[string]cs{}
		native := false
		for _, s := range f.Metric {
			h := s.GetHistogram()
			want[labelKey(s.Label)] = cs{h.GetSampleCount(), h.GetSampleSum()}
			native = native || h.GetZeroThreshold() > 0 || len(h.GetPositiveSpan()) > 0
		}
		check := func(k string, count uint64, sum float64) {
			w, ok := want[k]
			if !ok || w.count != count || math.Abs(w.sum-sum) > 1e-9*math.Max(1, math.Abs(w.sum)) {
				t.Errorf("%s{%s}: count %d sum %v over OTLP, /metrics %+v", f.GetName(), k, count, sum, w)
			}
		}
		if native {
			if m.GetExponentialHistogram() == nil {
				t.Errorf("%s: native histogram exported as %T", f.GetName(), m.Data)
				return
			}
			for _, dp := range m.GetExponentialHistogram().DataPoints {
				check(attrKey(dp.Attributes), dp.Count, dp.GetSum())
			}
			return
		}
		if m.GetHistogram() == nil {
			t.Errorf("%s: classic histogram exported as %T", f.GetName(), m.Data)
			return
		}
		for _, dp := range m.GetHistogram().DataPoints {
			check(attrKey(dp.Attributes), dp.Count, dp.GetSum())
		}
	}
}

// A dead endpoint and a collector that accepts and never answers: probing keeps its rate
// and schedule, while the failures are counted. Each case is compared with a control run
// without OTel in the same test, one after the other: the OTel run's schedule delay p99, its
// achieved requests and the requests the in-flight cap dropped must be those of the control
// within a tolerance. On a loaded 2-core machine (and under -race) both runs suffer alike;
// a pair is retried up to three times before the case fails (best of three).
func TestUnreachableOrStalledCollector(t *testing.T) {
	dead := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr
	}
	cases := []struct {
		name, protocol string
		endpoint       func(t *testing.T) string
	}{
		{"dead_grpc", config.OTelGRPC, dead},
		{"dead_http", config.OTelHTTPProtobuf, dead},
		{"stalled_grpc", config.OTelGRPC, func(t *testing.T) string { return startReceiver(t, config.OTelGRPC, true).URL }},
		{"stalled_http", config.OTelHTTPProtobuf, func(t *testing.T) string { return startReceiver(t, config.OTelHTTPProtobuf, true).URL }},
	}
	const rate, window = 40, 3 * time.Second // 120 requests a run

	// run probes for one window and returns what it measured.
	type result struct {
		finished   int
		p99, maxRq time.Duration
		dropped    float64
	}
	run := func(t *testing.T, o *config.OTel) (result, *harness) {
		sim := startTracedSim(t)
		h := startHarness(t, sim.URL, o, rate, window)
		testkit.WaitFor(t, window+30*time.Second, 20*time.Millisecond, "the window's requests", func() bool {
			n, _, _, _ := h.sink.get()
			return n >= 2+int(rate*window.Seconds())*8/10
		})
		h.drain(t)
		fams := h.gather(t)
		dropped, _ := testkit.Value(fams, "inferprobe_requests_dropped_total", map[string]string{"target": "simulator"})
		n, _, _, _ := h.sink.get()
		h.sink.mu.Lock()
		maxRq := h.sink.maxEnd
		h.sink.mu.Unlock()
		return result{finished: n, p99: h.sink.p99(), maxRq: maxRq, dropped: dropped}, h
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var problems []string
			for attempt := range 3 {
				ctl, _ := run(t, nil)
				ratio := 1.0
				got, h := run(t, &config.OTel{Endpoint: c.endpoint(t), Protocol: c.protocol, Interval: 100 * time.Millisecond,
					Timeout: 100 * time.Millisecond, Traces: &config.OTelTraces{SamplingRatio: &ratio}})
				// The failures are seen and counted (a window holds ~30 metric exports).
				fams := h.gather(t)
				m, _ := testkit.Value(fams, "inferprobe_otel_export_errors_total", map[string]string{"signal": "metrics"})
				tr, _ := testkit.Value(fams, "inferprobe_otel_export_errors_total", map[string]string{"signal": "traces"})
				lost, _ := testkit.Value(fams, "inferprobe_otel_dropped_total", map[string]string{"signal": "metrics"})
				if m < 3 || tr < 1 || lost == 0 {
					t.Fatalf("export errors metrics %v traces %v, metric points lost %v: the failures were not counted", m, tr, lost)
				}
				start := time.Now()
				h.stop() // the shutdown flush gives up at its deadline, not later
				if d := time.Since(start); d > 10*time.Second {
					t.Fatalf("shutdown took %v", d)
				}

				problems = problems[:0]
				if got.finished < ctl.finished*9/10 {
					problems = append(problems, fmt.Sprintf("%d requests, control %d", got.finished, ctl.finished))
				}
				if got.p99 > 2*ctl.p99+25*time.Millisecond {
					problems = append(problems, fmt.Sprintf("schedule delay p99 %v, control %v", got.p99, ctl.p99))
				}
				if got.dropped > ctl.dropped {
					problems = append(problems, fmt.Sprintf("%v requests dropped by the in-flight cap (longest request %v), control %v (longest %v)",
						got.dropped, got.maxRq, ctl.dropped, ctl.maxRq))
				}
				if len(problems) == 0 {
					return
				}
				t.Logf("attempt %d: %s", attempt+1, strings.Join(problems, "; "))
			}
			t.Errorf("with a failing collector, in each of three attempts against a control without OTel: %s", strings.Join(problems, "; "))
		})
	}
}

// TestDeltaTemporalitySumsToMetrics: with temporality delta the bridged counters and
// histograms arrive as deltas, and the deltas of every export add up to what /metrics holds
// at the end, series by series.
func TestDeltaTemporalitySumsToMetrics(t *testing.T) {
	rcv := startReceiver(t, config.OTelGRPC, false)
	sim := startTracedSim(t)
	h := startHarness(t, sim.URL, &config.OTel{Endpoint: rcv.URL, Protocol: config.OTelGRPC, Interval: 100 * time.Millisecond,
		Timeout: 500 * time.Millisecond, Temporality: config.OTelDelta}, 20, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.set.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	h.drain(t)
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelClose()
	h.tel.Close(closeCtx)
	fams := h.gather(t)

	counters := map[string]float64{}  // series → sum of the exported deltas
	histograms := map[string]uint64{} // series → sum of the exported counts
	exports := 0
	rcv.mu.Lock()
	for _, req := range rcv.metrics {
		exports++
		for _, rm := range req.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					switch {
					case m.Name == "inferprobe_requests_total":
						s := m.GetSum()
						if s.GetAggregationTemporality() != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA {
							t.Errorf("%s temporality %v", m.Name, s.GetAggregationTemporality())
						}
						for _, dp := range s.DataPoints {
							counters[attrKey(dp.Attributes)] += dp.GetAsDouble()
						}
					case m.Name == "inferprobe_request_duration_seconds" && m.GetExponentialHistogram() != nil:
						e := m.GetExponentialHistogram()
						if e.GetAggregationTemporality() != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA {
							t.Errorf("%s temporality %v", m.Name, e.GetAggregationTemporality())
						}
						for _, dp := range e.DataPoints {
							histograms[attrKey(dp.Attributes)] += dp.GetCount()
						}
					case m.Name == "inferprobe_request_duration_seconds" && m.GetHistogram() != nil:
						e := m.GetHistogram()
						if e.GetAggregationTemporality() != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA {
							t.Errorf("%s temporality %v", m.Name, e.GetAggregationTemporality())
						}
						for _, dp := range e.DataPoints {
							histograms[attrKey(dp.Attributes)] += dp.GetCount()
						}
					}
				}
			}
		}
	}
	rcv.mu.Unlock()
	if exports < 3 {
		t.Fatalf("only %d exports", exports)
	}
	checked := 0
	for _, m := range fams["inferprobe_requests_total"].GetMetric() {
		want := m.GetCounter().GetValue()
		if got := counters[labelKey(m.GetLabel())]; got != want {
			t.Errorf("inferprobe_requests_total{%s}: deltas add up to %v, /metrics says %v", labelKey(m.GetLabel()), got, want)
		}
		if want > 0 {
			checked++
		}
	}
	for _, m := range fams["inferprobe_request_duration_seconds"].GetMetric() {
		want := m.GetHistogram().GetSampleCount()
		if got := histograms[labelKey(m.GetLabel())]; got != want {
			t.Errorf("inferprobe_request_duration_seconds{%s}: delta counts add up to %d, /metrics says %d", labelKey(m.GetLabel()), got, want)
		}
		if want > 0 {
			checked++
		}
	}
	if checked < 2 {
		t.Fatalf("only %d series with requests compared", checked)
	}
}
