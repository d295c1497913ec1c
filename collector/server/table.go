package server

// This file is the one place that knows model-server metric names. Everything else in the
// package is engine-agnostic: it reads the table below and nothing more. docs/server-metrics.md
// renders the same table for humans; change both together.

// Engine names: the values of config.Metrics.Engine, and of the `engine` label.
const (
	EngineAuto         = "auto"
	EngineVLLM         = "vllm"
	EngineSGLang       = "sglang"
	EngineTGI          = "tgi"
	EngineLlamaCPP     = "llamacpp"
	EngineTritonTRTLLM = "triton-trtllm"
	EngineTRTLLMServe  = "trtllm-serve"
	// EngineUnknown is reported when auto-detection finds no known family.
	EngineUnknown = "unknown"
)

// Normalised series, labelled target, engine and (where the server reports one) model_name.
const (
	MetricRequestsWaiting       = "inferprobe_server_requests_waiting"
	MetricRequestsRunning       = "inferprobe_server_requests_running"
	MetricKVCacheUsageRatio     = "inferprobe_server_kv_cache_usage_ratio"
	MetricPromptTokensTotal     = "inferprobe_server_prompt_tokens_total"
	MetricGenerationTokensTotal = "inferprobe_server_generation_tokens_total"
	MetricTimeToFirstToken      = "inferprobe_server_time_to_first_token_seconds"
	MetricInterTokenLatency     = "inferprobe_server_inter_token_latency_seconds"
	MetricE2ERequestLatency     = "inferprobe_server_e2e_request_latency_seconds"
	MetricQueueTime             = "inferprobe_server_queue_time_seconds"
	// MetricLoRAAdapterInfo is 1 per adapter the server reports running or waiting (label state).
	MetricLoRAAdapterInfo = "inferprobe_server_lora_adapter_info"
)

// Names the engine-agnostic code needs besides the table.
const (
	processStartTimeFamily       = "process_start_time_seconds"
	labelTarget                  = "target"
	labelEngine                  = "engine"
	labelModelName               = "model_name"
	labelExportedTarget          = "exported_" + labelTarget
	tritonModelLabel             = "model"
	tritonRequestTypeLabel       = "request_type"
	tritonKVBlockTypeLabel       = "kv_cache_block_type"
	tritonFirstResponseHistogram = "nv_inference_first_response_histogram_ms"
	// trtllmUndefinedModel is the model_name trtllm-serve puts on every series.
	trtllmUndefinedModel = "undefined"
)

// engineSpec says how to recognise an engine and where it keeps the model name.
type engineSpec struct {
	name string
	// prefix marks the engine's own families; auto-detection picks the engine whose prefix
	// starts the most samples.
	prefix string
	// modelLabel is the label that carries the served model's name ("" when the engine has none).
	modelLabel string
	// lora, when set, is where the engine lists its running and waiting LoRA adapters.
	lora *loraSpec
}

// loraSpec describes an info-style family whose labels list adapters, comma-separated, and whose
// value is the time it was set: the series with the latest value is the current state.
type loraSpec struct {
	family       string
	runningLabel string
	waitingLabel string
}

// engines lists every supported engine, in the order auto-detection breaks ties.
var engines = []engineSpec{
	{name: EngineVLLM, prefix: "vllm:", modelLabel: labelModelName, lora: &loraSpec{
		family:       "vllm:lora_requests_info",
		runningLabel: "running_lora_adapters",
		waitingLabel: "waiting_lora_adapters",
	}},
	{name: EngineSGLang, prefix: "sglang:", modelLabel: labelModelName},
	{name: EngineTGI, prefix: "tgi_"},
	{name: EngineLlamaCPP, prefix: "llamacpp:"},
	{name: EngineTritonTRTLLM, prefix: "nv_trt_llm_", modelLabel: tritonModelLabel},
	{name: EngineTRTLLMServe, prefix: "trtllm_", modelLabel: labelModelName},
}

// kind is the Prometheus type of a normalised series.
type kind int

const (
	kindGauge kind = iota
	kindCounter
	kindHistogram
)

// aggregation folds the series of one model (e.g. one per vLLM engine index or SGLang rank)
// into one value.
type aggregation int

const (
	// aggSum adds: right for counts, counters and histograms.
	aggSum aggregation = iota
	// aggMax keeps the largest: right for a ratio such as KV-cache usage, where the most loaded
	// engine is the one that preempts, and where ranks may repeat the same figure.
	aggMax
)

// part says what to read from a source series.
type part int

const (
	// partValue is the sample value of a gauge, counter or untyped series.
	partValue part = iota
	// partHistogramSum is the _sum of a histogram, or of a summary (TGI counts tokens only in
	// histograms, which some exporter settings render as summaries).
	partHistogramSum
	// partHistogram is the whole classic histogram, buckets kept.
	partHistogram
)

// source is where one engine keeps one normalised series.
type source struct {
	family string // family name as decoded: counters include _total
	// label and value, when set, select only the series whose label has that value.
	label, value string
	part         part
	// scale converts the engine's unit to the normalised one (values, sums and bucket bounds);
	// 0 means 1.
	scale float64
	// per, when set, makes the output the ratio sum(this) / sum(per), per model.
	per *source
}

func val(family string) source           { return source{family: family, part: partValue} }
func histogram(family string) source     { return source{family: family, part: partHistogram} }
func histogramSum(family string) source  { return source{family: family, part: partHistogramSum} }
func ratio(numerator, per source) source { numerator.per = &per; return numerator }

func (s source) where(label, value string) source { s.label, s.value = label, value; return s }
func (s source) scaled(by float64) source         { s.scale = by; return s }

// row is one normalised series and, per engine, where to find it. Within a cell the sources are
// tried in order and the first one present in a scrape wins, so list the current name before
// its deprecated twin: a server that exposes both is read once.
type row struct {
	name string
	help string
	kind kind
	agg  aggregation
	from map[string][]source
}

// table maps every engine's names onto inferprobe_server_*. Names marked "unverified" in
// docs/server-metrics.md are best knowledge, not checked against a running server.
var table = []row{
	{
		name: MetricRequestsWaiting, kind: kindGauge, agg: aggSum,
		help: "Requests queued in the model server, waiting to be scheduled (server's own view).",
		from: map[string][]source{
			EngineVLLM:         {val("vllm:num_requests_waiting")},
			EngineSGLang:       {val("sglang:num_queue_reqs")},
			EngineTGI:          {val("tgi_queue_size")},
			EngineLlamaCPP:     {val("llamacpp:requests_deferred")},
			EngineTritonTRTLLM: {val("nv_trt_llm_request_metrics").where(tritonRequestTypeLabel, "waiting")},
			EngineTRTLLMServe:  {val("trtllm_num_requests_waiting")},
		},
	},
	{
		name: MetricRequestsRunning, kind: kindGauge, agg: aggSum,
		help: "Requests the model server is running now (its batch), by its own count.",
		from: map[string][]source{
			EngineVLLM:         {val("vllm:num_requests_running")},
			EngineSGLang:       {val("sglang:num_running_reqs")},
			EngineTGI:          {val("tgi_batch_current_size")},
			EngineLlamaCPP:     {val("llamacpp:requests_processing")},
			EngineTritonTRTLLM: {val("nv_trt_llm_request_metrics").where(tritonRequestTypeLabel, "active")},
			EngineTRTLLMServe:  {val("trtllm_num_requests_running")},
		},
	},
	{
		name: MetricKVCacheUsageRatio, kind: kindGauge, agg: aggMax,
		help: "KV-cache usage of the model server, 0 to 1 (the most used engine or rank when there are several).",
		from: map[string][]source{
			// vLLM documents both as "1 means 100 percent usage": already a ratio despite "perc".
			EngineVLLM:   {val("vllm:kv_cache_usage_perc"), val("vllm:gpu_cache_usage_perc")},
			EngineSGLang: {val("sglang:token_usage")},
			// Only builds from before its removal (ggml-org/llama.cpp PR #13660) have it; today's
			// llama-server exposes no KV-cache usage (llamacpp:n_tokens_max is the largest
			// sequence seen, not usage), so the series is absent for it rather than made up.
			EngineLlamaCPP: {val("llamacpp:kv_cache_usage_ratio")},
			EngineTritonTRTLLM: {
				val("nv_trt_llm_kv_cache_block_metrics").where(tritonKVBlockTypeLabel, "fraction"),
				ratio(
					val("nv_trt_llm_kv_cache_block_metrics").where(tritonKVBlockTypeLabel, "used"),
					val("nv_trt_llm_kv_cache_block_metrics").where(tritonKVBlockTypeLabel, "max"),
				),
			},
			EngineTRTLLMServe: {val("trtllm_kv_cache_utilization")},
		},
	},
	{
		name: MetricPromptTokensTotal, kind: kindCounter, agg: aggSum,
		help: "Prompt (prefill) tokens the model server processed, by its own count.",
		from: map[string][]source{
			EngineVLLM:         {val("vllm:prompt_tokens_total")},
			EngineSGLang:       {val("sglang:prompt_tokens_total")},
			EngineTGI:          {histogramSum("tgi_request_input_length")},
			EngineLlamaCPP:     {val("llamacpp:prompt_tokens_total")},
			EngineTritonTRTLLM: {histogramSum("nv_llm_input_token_len")},
			EngineTRTLLMServe:  {val("trtllm_prompt_tokens_total")},
		},
	},
	{
		name: MetricGenerationTokensTotal, kind: kindCounter, agg: aggSum,
		help: "Generated (output) tokens the model server produced, by its own count.",
		from: map[string][]source{
			EngineVLLM:         {val("vllm:generation_tokens_total")},
			EngineSGLang:       {val("sglang:generation_tokens_total")},
			EngineTGI:          {histogramSum("tgi_request_generated_tokens")},
			EngineLlamaCPP:     {val("llamacpp:tokens_predicted_total")},
			EngineTritonTRTLLM: {histogramSum("nv_llm_output_token_len")},
			EngineTRTLLMServe:  {val("trtllm_generation_tokens_total")},
		},
	},
	{
		name: MetricTimeToFirstToken, kind: kindHistogram, agg: aggSum,
		help: "Time to first token measured by the model server, its own buckets.",
		from: map[string][]source{
			EngineVLLM:   {histogram("vllm:time_to_first_token_seconds")},
			EngineSGLang: {histogram("sglang:time_to_first_token_seconds")},
			// Triton reports it in milliseconds, and only with --metrics-config histogram_latencies=true.
			EngineTritonTRTLLM: {histogram(tritonFirstResponseHistogram).scaled(0.001)},
			EngineTRTLLMServe:  {histogram("trtllm_time_to_first_token_seconds")},
		},
	},
	{
		name: MetricInterTokenLatency, kind: kindHistogram, agg: aggSum,
		help: "Inter-token latency measured by the model server, its own buckets.",
		from: map[string][]source{
			EngineVLLM: {histogram("vllm:inter_token_latency_seconds"), histogram("vllm:time_per_output_token_seconds")},
			EngineSGLang: {
				histogram("sglang:inter_token_latency_seconds"),
				histogram("sglang:time_per_output_token_seconds"),
			},
			// One observation per request (its mean gap), not one per gap: see the docs.
			EngineTGI:         {histogram("tgi_request_mean_time_per_token_duration")},
			EngineTRTLLMServe: {histogram("trtllm_time_per_output_token_seconds")},
		},
	},
	{
		name: MetricE2ERequestLatency, kind: kindHistogram, agg: aggSum,
		help: "End-to-end request latency measured by the model server, its own buckets.",
		from: map[string][]source{
			EngineVLLM:        {histogram("vllm:e2e_request_latency_seconds")},
			EngineSGLang:      {histogram("sglang:e2e_request_latency_seconds")},
			EngineTGI:         {histogram("tgi_request_duration")},
			EngineTRTLLMServe: {histogram("trtllm_e2e_request_latency_seconds")},
		},
	},
	{
		name: MetricQueueTime, kind: kindHistogram, agg: aggSum,
		help: "Time requests spent queued in the model server, its own buckets.",
		from: map[string][]source{
			EngineVLLM:        {histogram("vllm:request_queue_time_seconds")},
			EngineSGLang:      {histogram("sglang:queue_time_seconds")},
			EngineTGI:         {histogram("tgi_request_queue_duration")},
			EngineTRTLLMServe: {histogram("trtllm_request_queue_time_seconds")},
		},
	},
}

// engineByName returns the spec of a named engine.
func engineByName(name string) (engineSpec, bool) {
	for _, e := range engines {
		if e.name == name {
			return e, true
		}
	}
	return engineSpec{}, false
}
