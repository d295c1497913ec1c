package server

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestNormaliseRules covers the folding rules on small expositions: sums and maxima per model,
// histograms that cannot be added, ratios, summaries standing in for histograms.
func TestNormaliseRules(t *testing.T) {
	tests := []struct {
		name   string
		engine string
		body   string
		names  []string
		want   string
	}{
		{
			name: "per model, summed over other labels, max for KV", engine: EngineVLLM,
			body: `vllm:num_requests_running{model_name="a",engine="0"} 1
vllm:num_requests_running{model_name="a",engine="1"} 2
vllm:num_requests_running{model_name="b",engine="0"} 4
vllm:kv_cache_usage_perc{model_name="a",engine="0"} 0.5
vllm:kv_cache_usage_perc{model_name="a",engine="1"} 0.25
`,
			names: []string{MetricRequestsRunning, MetricKVCacheUsageRatio},
			want: `# HELP inferprobe_server_kv_cache_usage_ratio KV-cache usage of the model server, 0 to 1 (the most used engine or rank when there are several).
# TYPE inferprobe_server_kv_cache_usage_ratio gauge
inferprobe_server_kv_cache_usage_ratio{engine="vllm",model_name="a",target="t"} 0.5
# HELP inferprobe_server_requests_running Requests the model server is running now (its batch), by its own count.
# TYPE inferprobe_server_requests_running gauge
inferprobe_server_requests_running{engine="vllm",model_name="a",target="t"} 3
inferprobe_server_requests_running{engine="vllm",model_name="b",target="t"} 4
`,
		},
		{
			name: "histograms with different buckets are not added", engine: EngineVLLM,
			body: `# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{model_name="a",engine="0",le="0.1"} 1
vllm:time_to_first_token_seconds_bucket{model_name="a",engine="0",le="+Inf"} 1
vllm:time_to_first_token_seconds_count{model_name="a",engine="0"} 1
vllm:time_to_first_token_seconds_sum{model_name="a",engine="0"} 0.05
vllm:time_to_first_token_seconds_bucket{model_name="a",engine="1",le="0.2"} 1
vllm:time_to_first_token_seconds_bucket{model_name="a",engine="1",le="+Inf"} 1
vllm:time_to_first_token_seconds_count{model_name="a",engine="1"} 1
vllm:time_to_first_token_seconds_sum{model_name="a",engine="1"} 0.05
vllm:time_to_first_token_seconds_bucket{model_name="b",engine="0",le="0.1"} 2
vllm:time_to_first_token_seconds_bucket{model_name="b",engine="0",le="+Inf"} 3
vllm:time_to_first_token_seconds_count{model_name="b",engine="0"} 3
vllm:time_to_first_token_seconds_sum{model_name="b",engine="0"} 0.5
`,
			names: []string{MetricTimeToFirstToken},
			want: `# HELP inferprobe_server_time_to_first_token_seconds Time to first token measured by the model server, its own buckets.
# TYPE inferprobe_server_time_to_first_token_seconds histogram
inferprobe_server_time_to_first_token_seconds_bucket{engine="vllm",model_name="b",target="t",le="0.1"} 2
inferprobe_server_time_to_first_token_seconds_bucket{engine="vllm",model_name="b",target="t",le="+Inf"} 3
inferprobe_server_time_to_first_token_seconds_sum{engine="vllm",model_name="b",target="t"} 0.5
inferprobe_server_time_to_first_token_seconds_count{engine="vllm",model_name="b",target="t"} 3
`,
		},
		{
			name: "float counts stay float", engine: EngineSGLang,
			body: `# TYPE sglang:e2e_request_latency_seconds histogram
sglang:e2e_request_latency_seconds_bucket{le="1"} 0.5
sglang:e2e_request_latency_seconds_bucket{le="+Inf"} 1.5
sglang:e2e_request_latency_seconds_count 1.5
sglang:e2e_request_latency_seconds_sum 2
`,
			names: []string{MetricE2ERequestLatency},
			want: `# HELP inferprobe_server_e2e_request_latency_seconds End-to-end request latency measured by the model server, its own buckets.
# TYPE inferprobe_server_e2e_request_latency_seconds histogram
inferprobe_server_e2e_request_latency_seconds_bucket{engine="sglang",target="t",le="1"} 0.5
inferprobe_server_e2e_request_latency_seconds_bucket{engine="sglang",target="t",le="+Inf"} 1.5
inferprobe_server_e2e_request_latency_seconds_sum{engine="sglang",target="t"} 2
inferprobe_server_e2e_request_latency_seconds_count{engine="sglang",target="t"} 1.5
`,
		},
		{
			name: "ratio of used to max; no max, no ratio", engine: EngineTritonTRTLLM,
			body: `nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="used",model="a",version="1"} 10
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="max",model="a",version="1"} 40
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="used",model="b",version="1"} 10
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="max",model="b",version="1"} 0
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="used",model="c",version="1"} 10
`,
			names: []string{MetricKVCacheUsageRatio},
			want: `# HELP inferprobe_server_kv_cache_usage_ratio KV-cache usage of the model server, 0 to 1 (the most used engine or rank when there are several).
# TYPE inferprobe_server_kv_cache_usage_ratio gauge
inferprobe_server_kv_cache_usage_ratio{engine="triton-trtllm",model_name="a",target="t"} 0.25
`,
		},
		{
			name: "the fraction wins over used/max", engine: EngineTritonTRTLLM,
			body: `nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="used",model="a",version="1"} 10
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="max",model="a",version="1"} 40
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction",model="a",version="1"} 0.3
`,
			names: []string{MetricKVCacheUsageRatio},
			want: `# HELP inferprobe_server_kv_cache_usage_ratio KV-cache usage of the model server, 0 to 1 (the most used engine or rank when there are several).
# TYPE inferprobe_server_kv_cache_usage_ratio gauge
inferprobe_server_kv_cache_usage_ratio{engine="triton-trtllm",model_name="a",target="t"} 0.3
`,
		},
		{
			name: "token totals from summaries", engine: EngineTGI,
			body: `# TYPE tgi_request_input_length summary
tgi_request_input_length{quantile="0.5"} 100
tgi_request_input_length_sum 2500
tgi_request_input_length_count 20
`,
			names: []string{MetricPromptTokensTotal, MetricE2ERequestLatency},
			want: `# HELP inferprobe_server_prompt_tokens_total Prompt (prefill) tokens the model server processed, by its own count.
# TYPE inferprobe_server_prompt_tokens_total counter
inferprobe_server_prompt_tokens_total{engine="tgi",target="t"} 2500
`,
		},
		{
			name: "a deprecated name is read only when the current one is absent", engine: EngineSGLang,
			body: `# TYPE sglang:time_per_output_token_seconds histogram
sglang:time_per_output_token_seconds_bucket{le="0.1"} 4
sglang:time_per_output_token_seconds_bucket{le="+Inf"} 4
sglang:time_per_output_token_seconds_count 4
sglang:time_per_output_token_seconds_sum 0.2
`,
			names: []string{MetricInterTokenLatency},
			want: `# HELP inferprobe_server_inter_token_latency_seconds Inter-token latency measured by the model server, its own buckets.
# TYPE inferprobe_server_inter_token_latency_seconds histogram
inferprobe_server_inter_token_latency_seconds_bucket{engine="sglang",target="t",le="0.1"} 4
inferprobe_server_inter_token_latency_seconds_bucket{engine="sglang",target="t",le="+Inf"} 4
inferprobe_server_inter_token_latency_seconds_sum{engine="sglang",target="t"} 0.2
inferprobe_server_inter_token_latency_seconds_count{engine="sglang",target="t"} 4
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t, response{contentType: ctText, body: []byte(tt.body)})
			s := newTestScraper(t, srv.URL, func(o *Options) { o.Config.Engine = tt.engine })
			scrapeOK(t, s)
			if err := testutil.CollectAndCompare(s, strings.NewReader(tt.want), tt.names...); err != nil {
				t.Error(err)
			}
		})
	}
}
