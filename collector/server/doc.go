// Package server scrapes model servers' own Prometheus metrics and re-exposes them under
// engine-independent inferprobe_server_* names.
//
// One Scraper per target fetches the server's exposition on its own schedule (content
// negotiation like Prometheus: protobuf, OpenMetrics, text), maps the engine's names through the
// normalisation table in table.go (vLLM, SGLang, TGI, llama.cpp, Triton TensorRT-LLM,
// trtllm-serve; the engine is configured or detected), detects server restarts and tells the
// target's warmup gate through the Rearmer interface, and keeps the result as an immutable
// snapshot. A Collector serves the snapshots of all targets to a Prometheus registry without
// ever waiting for a model server. docs/server-metrics.md describes the series.
package server
