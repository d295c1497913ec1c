package collector

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferprobe/inferprobe/prober"
)

// TestProbePerTokenITL: a request whose chunks carry 1, 4, 4 and 4 tokens 40 ms apart is 10 ms
// per token: ITL counts 12 observations of 10 ms, the inter-chunk series 3 of 40 ms, and TPOT
// divides by N − k₁.
func TestProbePerTokenITL(t *testing.T) {
	tgt := &prober.TargetInfo{Name: "a", Model: "m"}
	p := NewProbe()
	r := successRecord(tgt, "", 50*ms, 40*ms, 40*ms, 40*ms)
	r.TokensPerChunk, r.FirstChunkTokens = true, 1
	r.GapTokens = []int32{4, 4, 4}
	r.OutputTokens = 13
	p.Observe(prober.Event{Kind: prober.EventRequestStarted, Target: tgt})
	finish(p, r)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p)
	base := map[string]string{"target": "a"}
	if n, sum := sample(t, reg, "inferprobe_inter_token_latency_seconds_count", base), sample(t, reg, "inferprobe_inter_token_latency_seconds_sum", base); n != 12 || !approx(sum, 0.120) {
		t.Errorf("ITL count %v sum %v, want 12 observations summing to 120 ms", n, sum)
	}
	if n, sum := sample(t, reg, "inferprobe_inter_chunk_latency_seconds_count", base), sample(t, reg, "inferprobe_inter_chunk_latency_seconds_sum", base); n != 3 || !approx(sum, 0.120) {
		t.Errorf("inter-chunk count %v sum %v, want 3 gaps summing to 120 ms", n, sum)
	}
	if sum := sample(t, reg, "inferprobe_time_per_output_token_seconds_sum", base); !approx(sum, 0.010) {
		t.Errorf("TPOT %v, want 10 ms = 120 ms / (13 − 1)", sum)
	}
	if sum := sample(t, reg, "inferprobe_decode_rate_tokens_per_second_sum", base); !approx(sum, 100) {
		t.Errorf("decode rate %v, want 100 tokens/s", sum)
	}
	if sum := sample(t, reg, "inferprobe_end_to_end_rate_tokens_per_second_sum", base); !approx(sum, 13/r.End.Seconds()) {
		t.Errorf("e2e rate %v, want %v", sum, 13/r.End.Seconds())
	}
}

func TestProbeFinishReasonsPhasesAndTokens(t *testing.T) {
	tgt := &prober.TargetInfo{Name: "a", Model: "m"}
	p := NewProbe()
	warm := successRecord(tgt, "", 50*ms, 10*ms)
	warm.Warmup, warm.FinishReason, warm.Retries = true, prober.FinishLength, 1
	aborted := &prober.Record{Target: tgt, Result: prober.ResultAborted, FinishReason: prober.FinishAbort}
	aborted.Phases[prober.PhaseConnect], aborted.PhaseSet = 2*ms, 1<<prober.PhaseConnect
	ok := successRecord(tgt, "", 80*ms, 10*ms)
	ok.FinishReason = "made-up" // not one of the set: counted as other
	ok.ContentSeen, ok.FirstContent = true, 70*ms
	ok.ReasoningTokens, ok.ReasoningSource = 3, prober.SourceUsage
	ok.CachedTokens, ok.CachedSource = 8, prober.SourceUsage
	for _, r := range []*prober.Record{warm, aborted, ok} {
		p.Observe(prober.Event{Kind: prober.EventRequestStarted, Target: tgt})
		finish(p, r)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"inferprobe_finish_reasons_total", map[string]string{"reason": "length"}, 1}, // warmup counts
		{"inferprobe_finish_reasons_total", map[string]string{"reason": "abort"}, 1},
		{"inferprobe_finish_reasons_total", map[string]string{"reason": "other"}, 1},
		{"inferprobe_finish_reasons_total", map[string]string{"reason": "stop"}, 0},
		{"inferprobe_request_retries_total", nil, 1},
		{"inferprobe_requests_total", map[string]string{"result": "aborted"}, 1},
		{"inferprobe_requests_total", map[string]string{"result": "empty"}, 0},
		{"inferprobe_http_phase_duration_seconds_count", map[string]string{"phase": "connect"}, 1},
		{"inferprobe_http_phase_duration_seconds_count", map[string]string{"phase": "tls"}, 0},
		{"inferprobe_time_to_first_output_token_seconds_sum", nil, 0.070},
		{"inferprobe_reasoning_tokens_total", map[string]string{"source": "usage"}, 3},
		{"inferprobe_cached_prompt_tokens_total", map[string]string{"source": "usage"}, 8},
	}
	for _, c := range checks {
		if got := sample(t, reg, c.name, c.labels); !approx(got, c.want) {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
