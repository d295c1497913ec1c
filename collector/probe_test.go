package collector

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/inferprobe/inferprobe/internal/metricdocs"
	"github.com/inferprobe/inferprobe/prober"
)

const ms = time.Millisecond

func successRecord(t *prober.TargetInfo, adapter string, ttft time.Duration, gaps ...time.Duration) *prober.Record {
	now := time.Now()
	r := &prober.Record{Target: t, Adapter: adapter, Intended: now, Start: now.Add(2 * ms), Result: prober.ResultSuccess,
		Chunks: 1 + len(gaps), FirstToken: ttft, LastToken: ttft, OutputTokens: 1 + len(gaps), OutputSource: prober.SourceUsage,
		PromptTokens: 10, PromptSource: prober.SourceUsage}
	for _, g := range gaps {
		r.LastToken += g
		r.Gaps = append(r.Gaps, g)
	}
	r.End = r.LastToken + ms
	return r
}

// finish hands p a finished record, as the run loop does.
func finish(p *Probe, r *prober.Record) {
	p.Observe(prober.Event{Kind: prober.EventRequestFinished, Target: r.Target, Record: r})
}

func TestProbeRecordsExactly(t *testing.T) {
	tgt := &prober.TargetInfo{Name: "vllm", Model: "llama", SLO: prober.SLO{TTFT: 100 * ms}}
	p := NewProbe()
	p.Register(tgt)

	// Warmup: counted apart, never in the histograms.
	warm := successRecord(tgt, "", 900*ms, 10*ms)
	warm.Warmup = true
	p.Observe(prober.Event{Kind: prober.EventRequestStarted, Target: tgt})
	finish(p, warm)

	// Two measured successes (one misses the TTFT SLO) and one failure.
	for _, r := range []*prober.Record{
		successRecord(tgt, "", 50*ms, 10*ms, 20*ms),
		successRecord(tgt, "", 150*ms, 10*ms),
		{Target: tgt, Result: prober.ResultHTTP429, Status: 429},
	} {
		p.Observe(prober.Event{Kind: prober.EventRequestStarted, Target: tgt})
		finish(p, r)
	}
	p.Observe(prober.Event{Kind: prober.EventRequestDropped, Target: tgt})
	p.Observe(prober.Event{Kind: prober.EventTargetRate, Target: tgt, Value: 2.5})
	p.Observe(prober.Event{Kind: prober.EventWarmup, Target: tgt, Complete: true, Forced: true})

	expect := `
# HELP inferprobe_time_to_first_token_seconds Time from writing the request (t0) to the first SSE event that carries generated text, successful requests after warmup.
# TYPE inferprobe_time_to_first_token_seconds histogram
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="0.005"} 0
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="0.01"} 0
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="0.02"} 0
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="0.04"} 0
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="0.06"} 1
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="0.08"} 1
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="0.1"} 1
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="0.15"} 2
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="0.2"} 2
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="0.25"} 2
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="0.3"} 2
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="0.4"} 2
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="0.5"} 2
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="0.75"} 2
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="1"} 2
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="1.5"} 2
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="2"} 2
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="3"} 2
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="5"} 2
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="7.5"} 2
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="10"} 2
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="20"} 2
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="30"} 2
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="60"} 2
inferprobe_time_to_first_token_seconds_bucket{adapter="",model="llama",target="vllm",le="+Inf"} 2
inferprobe_time_to_first_token_seconds_sum{adapter="",model="llama",target="vllm"} 0.2
inferprobe_time_to_first_token_seconds_count{adapter="",model="llama",target="vllm"} 2
# HELP inferprobe_goodput_requests_total Successful requests after warmup that met every configured SLO (ttft, tpot, e2e).
# TYPE inferprobe_goodput_requests_total counter
inferprobe_goodput_requests_total{adapter="",model="llama",target="vllm"} 1
# HELP inferprobe_requests_dropped_total Requests the pacer released but the in-flight cap refused.
# TYPE inferprobe_requests_dropped_total counter
inferprobe_requests_dropped_total{model="llama",target="vllm"} 1
# HELP inferprobe_in_flight_requests Requests started and not finished.
# TYPE inferprobe_in_flight_requests gauge
inferprobe_in_flight_requests{model="llama",target="vllm"} 0
# HELP inferprobe_target_request_rate The request rate the pacer aims at now, in requests per second (0 for closed loop).
# TYPE inferprobe_target_request_rate gauge
inferprobe_target_request_rate{model="llama",target="vllm"} 2.5
# HELP inferprobe_warmup_complete 1 once the warmup gate opened for the target, else 0.
# TYPE inferprobe_warmup_complete gauge
inferprobe_warmup_complete{model="llama",target="vllm"} 1
# HELP inferprobe_warmup_forced_total Times the warmup gate was forced open because max_duration passed.
# TYPE inferprobe_warmup_forced_total counter
inferprobe_warmup_forced_total{model="llama",target="vllm"} 1
`
	if err := testutil.CollectAndCompare(p, strings.NewReader(expect),
		"inferprobe_time_to_first_token_seconds", "inferprobe_goodput_requests_total", "inferprobe_requests_dropped_total",
		"inferprobe_in_flight_requests", "inferprobe_target_request_rate", "inferprobe_warmup_complete",
		"inferprobe_warmup_forced_total"); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"inferprobe_requests_total", map[string]string{"result": "success"}, 2},
		{"inferprobe_requests_total", map[string]string{"result": "http_429"}, 1},
		{"inferprobe_requests_total", map[string]string{"result": "timeout"}, 0},
		{"inferprobe_warmup_requests_total", map[string]string{"result": "success"}, 1},
		{"inferprobe_output_tokens_total", map[string]string{"source": "usage"}, 5},
		{"inferprobe_output_tokens_total", map[string]string{"source": "chunks"}, 0},
		{"inferprobe_prompt_tokens_total", map[string]string{"source": "usage"}, 20},
		{"inferprobe_inter_token_latency_seconds_count", nil, 3},
		{"inferprobe_inter_token_latency_seconds_sum", nil, 0.04},
		{"inferprobe_time_per_output_token_seconds_count", nil, 2},
		{"inferprobe_schedule_delay_seconds_count", nil, 3},
		{"inferprobe_request_duration_seconds_count", nil, 2},
	} {
		if got := sample(t, reg, c.name, c.labels); !approx(got, c.want) {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func approx(a, b float64) bool { d := a - b; return d < 1e-9 && d > -1e-9 }

// sample returns the value of the one series of name (a counter, gauge, or a histogram's
// _count/_sum) whose labels include want.
func sample(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	base, suffix := name, ""
	for _, s := range []string{"_count", "_sum"} {
		if strings.HasSuffix(name, s) && (strings.Contains(name, "_seconds") || strings.Contains(name, "_per_second")) {
			base, suffix = strings.TrimSuffix(name, s), s
		}
	}
	for _, mf := range mfs {
		if mf.GetName() != base {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case suffix == "_count":
				return float64(m.GetHistogram().GetSampleCount())
			case suffix == "_sum":
				return m.GetHistogram().GetSampleSum()
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, want)
	return 0
}

func TestProbeSLOBucketsAndNative(t *testing.T) {
	tgt := &prober.TargetInfo{Name: "a", Model: "m", SLO: prober.SLO{TTFT: 333 * ms, TPOT: 17 * ms, E2E: 4200 * ms}}
	p := NewProbe()
	finish(p, successRecord(tgt, "", 10*ms, 5*ms))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	wantBound := map[string]float64{
		"inferprobe_time_to_first_token_seconds":   0.333,
		"inferprobe_time_per_output_token_seconds": 0.017,
		"inferprobe_request_duration_seconds":      4.2,
	}
	seen := 0
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_HISTOGRAM {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			if h.GetSchema() == 0 && h.GetZeroThreshold() == 0 {
				t.Errorf("%s has no native histogram part", mf.GetName())
			}
			var bounds []float64
			for _, b := range h.GetBucket() {
				bounds = append(bounds, b.GetUpperBound())
			}
			if !slices.IsSorted(bounds) {
				t.Errorf("%s buckets not sorted: %v", mf.GetName(), bounds)
			}
			if want, ok := wantBound[mf.GetName()]; ok {
				seen++
				if !slices.Contains(bounds, want) {
					t.Errorf("%s: SLO threshold %v is not a bucket boundary: %v", mf.GetName(), want, bounds)
				}
			}
		}
	}
	if seen != 3 {
		t.Fatalf("saw %d of the 3 SLO histograms", seen)
	}
}

func TestProbeForgetAndAdapters(t *testing.T) {
	a := &prober.TargetInfo{Name: "a", Model: "m"}
	b := &prober.TargetInfo{Name: "b", Model: "m"}
	p := NewProbe()
	finish(p, successRecord(a, "sql-lora", 10*ms))
	finish(p, successRecord(b, "", 10*ms))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p)
	if got := sample(t, reg, "inferprobe_requests_total", map[string]string{"target": "a", "adapter": "sql-lora", "result": "success"}); got != 1 {
		t.Fatalf("adapter series = %v", got)
	}
	p.Forget(a)
	n, err := testutil.GatherAndCount(reg, "inferprobe_requests_total")
	if err != nil {
		t.Fatal(err)
	}
	if n != len(prober.Results) { // only b's base-model series remain
		t.Fatalf("%d series after Forget, want %d", n, len(prober.Results))
	}
}

func TestColdStartAbsentUntilMeasured(t *testing.T) {
	tgt := &prober.TargetInfo{Name: "a", Model: "m"}
	p := NewProbe()
	p.Register(tgt)
	if n := testutil.CollectAndCount(p, "inferprobe_cold_start_time_to_first_token_seconds"); n != 0 {
		t.Fatalf("cold start exposed before it was measured (%d series)", n)
	}
	p.Observe(prober.Event{Kind: prober.EventColdStart, Target: tgt, Duration: 1234 * ms})
	if err := testutil.CollectAndCompare(p, strings.NewReader(`
# HELP inferprobe_cold_start_time_to_first_token_seconds TTFT of the first request after start or after the warmup gate re-armed.
# TYPE inferprobe_cold_start_time_to_first_token_seconds gauge
inferprobe_cold_start_time_to_first_token_seconds{model="m",target="a"} 1.234
`), "inferprobe_cold_start_time_to_first_token_seconds"); err != nil {
		t.Fatal(err)
	}
}

func TestProbeMatchesMetricDocs(t *testing.T) {
	docs, err := metricdocs.ParseFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	tgt := &prober.TargetInfo{Name: "a", Model: "m", SLO: prober.SLO{TTFT: 100 * ms, TargetRatio: 0.99,
		Window: 720 * time.Hour, RegressionFactor: 1.5}}
	p := NewProbe()
	p.Register(tgt)
	finish(p, successRecord(tgt, "", 10*ms, 5*ms))
	turn := successRecord(tgt, "", 10*ms, 5*ms)
	turn.Turn = 2 // a conversation's second turn
	finish(p, turn)
	p.Observe(prober.Event{Kind: prober.EventColdStart, Target: tgt, Duration: 10 * ms})
	p.Observe(prober.Event{Kind: prober.EventStage, Target: tgt, Value: 1})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, problem := range metricdocs.Check(docs, mfs, "inferprobe_") {
		t.Error(problem)
	}
	exposed := map[string]bool{}
	for _, mf := range mfs {
		exposed[mf.GetName()] = true
	}
	for name := range docs {
		if strings.HasPrefix(name, "inferprobe_") && !strings.HasPrefix(name, "inferprobe_config_") &&
			!strings.HasPrefix(name, "inferprobe_build_") && !strings.HasPrefix(name, "inferprobe_server_") &&
			!strings.HasPrefix(name, "inferprobe_accelerator_") && !strings.HasPrefix(name, "inferprobe_otel_") && !exposed[name] {
			t.Errorf("%s is documented as a probe series but not exposed", name)
		}
	}
}

func BenchmarkProbeRequestFinished(b *testing.B) {
	tgt := &prober.TargetInfo{Name: "a", Model: "m", SLO: prober.SLO{TTFT: 100 * ms}}
	p := NewProbe()
	// A 16-token request on a reused connection as the daemon records it: gaps around 10 ms,
	// the two phases every request has, a finish reason.
	gaps := make([]time.Duration, 15)
	for i := range gaps {
		gaps[i] = 10*ms + time.Duration(i%5-2)*300*time.Microsecond
	}
	r := successRecord(tgt, "", 50*ms, gaps...)
	r.FinishReason = prober.FinishStop
	r.Phases[prober.PhaseRequestWrite], r.Phases[prober.PhaseFirstByte] = 50*time.Microsecond, 45*ms
	r.PhaseSet = 1<<prober.PhaseRequestWrite | 1<<prober.PhaseFirstByte
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		p.Observe(prober.Event{Kind: prober.EventRequestStarted, Target: tgt})
		finish(p, r)
	}
	// The process's CPU time per request: on a loaded machine ns/op also counts the time other
	// processes held the core, this does not.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

func TestProbeUnknownResultDoesNotCrash(t *testing.T) {
	tgt := &prober.TargetInfo{Name: "a", Model: "m"}
	p := NewProbe()
	finish(p, &prober.Record{Target: tgt, Result: "not-a-class"})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p)
	if got := sample(t, reg, "inferprobe_requests_total", map[string]string{"result": prober.ResultProtocol}); got != 1 {
		t.Fatalf("an unknown class counted %v times as protocol, want 1", got)
	}
}

// TestProbeExposesObjectives checks that each configured objective becomes exactly one series
// with its value in seconds or as a ratio, that an unset one exposes nothing, and that a new
// target generation (a reload) replaces the old values.
func TestProbeExposesObjectives(t *testing.T) {
	p := NewProbe()
	old := &prober.TargetInfo{Name: "a", Model: "m", SLO: prober.SLO{TTFT: 250 * ms, E2E: 4 * time.Second,
		TargetRatio: 0.995, Window: 7 * 24 * time.Hour, RegressionFactor: 2}}
	p.Register(old)
	names := []string{"inferprobe_slo_objective_seconds", "inferprobe_slo_target_ratio",
		"inferprobe_slo_window_seconds", "inferprobe_slo_regression_factor"}
	want := `
# HELP inferprobe_slo_objective_seconds The configured per-request latency objective of the target (slo.ttft, slo.tpot, slo.e2e), by sli; absent for a measure with no objective.
# TYPE inferprobe_slo_objective_seconds gauge
inferprobe_slo_objective_seconds{model="m",sli="e2e",target="a"} 4
inferprobe_slo_objective_seconds{model="m",sli="ttft",target="a"} 0.25
# HELP inferprobe_slo_regression_factor The configured ratio to its baseline above which a latency quantile is a regression (slo.regression_factor).
# TYPE inferprobe_slo_regression_factor gauge
inferprobe_slo_regression_factor{model="m",target="a"} 2
# HELP inferprobe_slo_target_ratio The configured share of requests that must be good over the SLO window (slo.target_ratio); the error budget is 1 minus it.
# TYPE inferprobe_slo_target_ratio gauge
inferprobe_slo_target_ratio{model="m",target="a"} 0.995
# HELP inferprobe_slo_window_seconds The configured period the error budget covers (slo.window), in seconds; burn-rate thresholds scale with it.
# TYPE inferprobe_slo_window_seconds gauge
inferprobe_slo_window_seconds{model="m",target="a"} 604800
`
	if err := testutil.CollectAndCompare(p, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}

	// A reload: the old generation is forgotten, the new one has a TPOT objective only.
	p.Forget(old)
	p.Register(&prober.TargetInfo{Name: "a", Model: "m", SLO: prober.SLO{TPOT: 40 * ms}})
	if err := testutil.CollectAndCompare(p, strings.NewReader(`
# HELP inferprobe_slo_objective_seconds The configured per-request latency objective of the target (slo.ttft, slo.tpot, slo.e2e), by sli; absent for a measure with no objective.
# TYPE inferprobe_slo_objective_seconds gauge
inferprobe_slo_objective_seconds{model="m",sli="tpot",target="a"} 0.04
`), names...); err != nil {
		t.Fatal(err)
	}
}

func TestProbeTraceRowsSkipped(t *testing.T) {
	p := NewProbe()
	tgt := &prober.TargetInfo{Name: "a", Model: "m", TraceRowsSkipped: 3}
	p.Register(tgt)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p)
	if got := sample(t, reg, "inferprobe_trace_rows_skipped_total", nil); got != 3 {
		t.Fatalf("inferprobe_trace_rows_skipped_total = %v, want the 3 rows the trace skipped", got)
	}
}

// TestProbeRequestedPromptTokens: the source's requested prompt length is counted beside the
// server's, so their ratio is the approximation's drift.
func TestProbeRequestedPromptTokens(t *testing.T) {
	tgt := &prober.TargetInfo{Name: "a", Model: "m"}
	p := NewProbe()
	p.Register(tgt)
	for _, requested := range []int{8, 0, 4} { // 0: the source did not know its length
		r := successRecord(tgt, "", 10*ms)
		r.RequestedPromptTokens = requested
		finish(p, r)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p)
	usage := sample(t, reg, "inferprobe_prompt_tokens_total", map[string]string{"source": prober.SourceUsage})
	req := sample(t, reg, "inferprobe_prompt_tokens_total", map[string]string{"source": prober.SourceRequested})
	if usage != 30 || req != 12 {
		t.Fatalf("prompt tokens: usage %v, requested %v; want 30 and 12", usage, req)
	}
}

// TestProbeConversationTurns: each successful turn of a conversation is observed in the per-turn
// TTFT under its own turn label, and requests outside conversations (turn 0) and failed turns
// are not.
func TestProbeConversationTurns(t *testing.T) {
	tgt := &prober.TargetInfo{Name: "chat", Model: "m"}
	p := NewProbe()
	p.Register(tgt)
	// Turn k of each of 2 sessions has a TTFT of k × 10 ms; turn 3 of a third session failed.
	for range 2 {
		for turn := 1; turn <= 3; turn++ {
			r := successRecord(tgt, "", time.Duration(turn)*10*ms)
			r.Turn = turn
			finish(p, r)
		}
	}
	failed := successRecord(tgt, "", 99*ms)
	failed.Turn, failed.Result = 3, prober.ResultHTTP5xx
	finish(p, failed)
	finish(p, successRecord(tgt, "", 50*ms)) // not in a conversation
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p)
	const name = "inferprobe_conversation_time_to_first_token_seconds"
	for turn := 1; turn <= 3; turn++ {
		labels := map[string]string{"target": "chat", "turn": strconv.Itoa(turn)}
		count, sum := sample(t, reg, name+"_count", labels), sample(t, reg, name+"_sum", labels)
		if want := 2 * float64(turn) * 0.010; count != 2 || !approx(sum, want) {
			t.Errorf("turn %d: %v observations summing to %v s, want 2 summing to %v", turn, count, sum, want)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) != 3 {
			t.Errorf("%d turn series, want 3 (no turn 0)", len(mf.GetMetric()))
		}
	}
}

// TestProbeDatasetRowsSkipped: the data set entries a target's source skipped are exposed from
// registration on, apart from the trace's.
func TestProbeDatasetRowsSkipped(t *testing.T) {
	p := NewProbe()
	tgt := &prober.TargetInfo{Name: "a", Model: "m", DatasetRowsSkipped: 2}
	p.Register(tgt)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p)
	if got := sample(t, reg, "inferprobe_dataset_rows_skipped_total", nil); got != 2 {
		t.Fatalf("inferprobe_dataset_rows_skipped_total = %v, want the 2 entries the data set skipped", got)
	}
	if got := sample(t, reg, "inferprobe_trace_rows_skipped_total", nil); got != 0 {
		t.Fatalf("inferprobe_trace_rows_skipped_total = %v, want 0 without a trace", got)
	}
}
