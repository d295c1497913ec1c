package simulator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Finish reasons: the finish_reason of a response and the finished_reason label of
// vllm:request_success_total. abort covers requests that ended without finishing (client
// gone, injected truncation, server closed).
const (
	finishStop   = "stop"
	finishLength = "length"
	finishAbort  = "abort"
)

// tokenBuckets returns 1, 2, 5, 10, 20, 50, ... up to max, vLLM's layout for token counts.
func tokenBuckets(max int) []float64 {
	var b []float64
	for scale := 1; ; scale *= 10 {
		for _, m := range []int{1, 2, 5} {
			v := m * scale
			if v > max {
				return b
			}
			b = append(b, float64(v))
		}
	}
}

// metrics is the server's vLLM-style instrumentation on its own registry.
type metrics struct {
	reg *prometheus.Registry

	promptTokens     prometheus.Counter
	generationTokens prometheus.Counter
	ttft             prometheus.Histogram
	itl              prometheus.Histogram
	tpot             prometheus.Histogram
	e2e              prometheus.Histogram
	queue            prometheus.Histogram
	prefill          prometheus.Histogram
	decode           prometheus.Histogram
	promptHist       prometheus.Histogram
	generationHist   prometheus.Histogram
	success          map[string]prometheus.Counter // by finish reason
}

func newMetrics(cfg *Config, sched *scheduler, start time.Time) *metrics {
	// Bucket layouts follow vLLM's, so dashboards built against a real server read the same.
	ttftBuckets := []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
		1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560}
	itlBuckets := []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1,
		2.5, 5, 7.5, 10, 20, 40, 80}
	requestLatencyBuckets := []float64{0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50,
		60, 120, 240, 480, 960, 1920, 7680}

	labels := prometheus.Labels{"model_name": cfg.ModelName}
	m := &metrics{reg: prometheus.NewRegistry(), success: map[string]prometheus.Counter{}}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels})
		m.reg.MustRegister(c)
		return c
	}
	histogram := func(name, help string, buckets []float64) prometheus.Histogram {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, ConstLabels: labels, Buckets: buckets})
		m.reg.MustRegister(h)
		return h
	}
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f))
	}

	m.promptTokens = counter("vllm:prompt_tokens_total", "Prompt tokens prefilled.")
	m.generationTokens = counter("vllm:generation_tokens_total", "Output tokens generated.")
	m.ttft = histogram("vllm:time_to_first_token_seconds", "From request arrival to its first output token sent.", ttftBuckets)
	m.itl = histogram("vllm:inter_token_latency_seconds", "Gap between two consecutive output tokens.", itlBuckets)
	m.tpot = histogram("vllm:request_time_per_output_token_seconds", "Mean gap between output tokens of a request.", itlBuckets)
	m.e2e = histogram("vllm:e2e_request_latency_seconds", "From request arrival to its end.", requestLatencyBuckets)
	m.queue = histogram("vllm:request_queue_time_seconds", "Time a request waited for admission.", requestLatencyBuckets)
	m.prefill = histogram("vllm:request_prefill_time_seconds", "From admission to the first output token.", requestLatencyBuckets)
	m.decode = histogram("vllm:request_decode_time_seconds", "From the first to the last output token.", requestLatencyBuckets)
	m.promptHist = histogram("vllm:request_prompt_tokens", "Prompt length of admitted requests.", tokenBuckets(cfg.MaxModelLen))
	m.generationHist = histogram("vllm:request_generation_tokens", "Output length of finished requests.", tokenBuckets(cfg.MaxModelLen))

	success := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vllm:request_success_total", Help: "Requests that ended, by finish reason.", ConstLabels: labels,
	}, []string{"finished_reason"})
	m.reg.MustRegister(success)
	for _, r := range []string{finishStop, finishLength, finishAbort} {
		m.success[r] = success.WithLabelValues(r)
	}

	capacity := float64(cfg.KVCacheTokens)
	gauge("vllm:num_requests_running", "Sequences running (prefill or decode).", func() float64 {
		r, _, _ := sched.counts()
		return float64(r)
	})
	gauge("vllm:num_requests_waiting", "Requests queued for admission.", func() float64 {
		_, w, _ := sched.counts()
		return float64(w)
	})
	gauge("vllm:kv_cache_usage_perc", "KV cache tokens held by running sequences over capacity (0..1).", func() float64 {
		_, _, h := sched.counts()
		return float64(h) / capacity
	})

	// Per server, not per process: a restart detector sees a new value for each new Server,
	// even within one process (as tests create them).
	st := prometheus.NewGauge(prometheus.GaugeOpts{Name: "process_start_time_seconds", Help: "Start time of the simulated server since the Unix epoch in seconds."})
	st.Set(float64(start.UnixNano()) / 1e9)
	m.reg.MustRegister(st)
	return m
}
