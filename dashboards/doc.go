// Package dashboards holds inferprobe's Grafana dashboards: inferprobe-overview.json (probe
// latency, errors, goodput, the prober's own health, the model server's view and the GPUs) and
// inferprobe-gpu.json (per-GPU detail). It has no code; its Go tests check the JSON (panel ids,
// the templated data source, layout), parse every query with promtool and hold every metric
// name to docs/metrics.md. docs/dashboards.md describes each panel and its PromQL.
package dashboards
