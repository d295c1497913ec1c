#!/usr/bin/env bash
# Rule-evaluation benchmark with full windows (docs/benchmarks.md#rule-evaluation): synthetic
# history for TARGETS targets, written as OpenMetrics and turned into TSDB blocks with
# `promtool tsdb create-blocks-from openmetrics`, ending now: 6h of the raw request counters,
# 1h of TTFT and TPOT buckets, 3 days of the 5-minute records the 1d and 3d burn rates read and
# 8 days of the hourly quantiles the regression baselines read, all at 1-minute resolution
# (5 minutes for the quantiles). A Prometheus with only this data and alerts/ then evaluates
# every 15 s; its own rule-group metrics and CPU are reported. No network but loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=${TARGETS:-100}
PROM_ADDR=127.0.0.1:19091
command -v promtool >/dev/null && command -v prometheus >/dev/null && command -v jq >/dev/null ||
  { echo "needs prometheus, promtool (apt-get install prometheus) and jq" >&2; exit 1; }
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
now=$(date +%s)
awk -v T="$TARGETS" -v now="$now" 'BEGIN {
  step = 60
  # the result classes of prober.Results
  split("success http_4xx http_429 http_5xx timeout connection stream_truncated protocol canceled", res, " ")
  nres = 9
  # raw counters: 6h5m at 1m; 1 req/s per target, 2% of them 5xx
  n = 365
  print "# TYPE inferprobe_requests_total gauge"
  for (t = 1; t <= T; t++) for (r = 1; r <= nres; r++) for (i = 0; i < n; i++) {
    ts = now - (n - i) * step; v = (res[r] == "success" ? 0.98 : (res[r] == "http_5xx" ? 0.02 : 0)) * 60 * i
    printf "inferprobe_requests_total{job=\"inferprobe\",instance=\"p:9788\",target=\"t%03d\",model=\"m\",adapter=\"\",result=\"%s\"} %g %d\n", t, res[r], v, ts }
  print "# TYPE inferprobe_warmup_requests_total gauge"
  for (t = 1; t <= T; t++) for (r = 1; r <= nres; r++) for (i = 0; i < n; i++) {
    ts = now - (n - i) * step
    printf "inferprobe_warmup_requests_total{job=\"inferprobe\",instance=\"p:9788\",target=\"t%03d\",model=\"m\",adapter=\"\",result=\"%s\"} 0 %d\n", t, res[r], ts }
  print "# TYPE inferprobe_goodput_requests_total gauge"
  for (t = 1; t <= T; t++) for (i = 0; i < n; i++) {
    ts = now - (n - i) * step
    printf "inferprobe_goodput_requests_total{job=\"inferprobe\",instance=\"p:9788\",target=\"t%03d\",model=\"m\",adapter=\"\"} %g %d\n", t, 0.95 * 60 * i, ts }
  # buckets: 1h5m at 1m, TTFT 26 and TPOT 23 bounds
  split("0.005 0.01 0.02 0.04 0.06 0.08 0.1 0.15 0.2 0.25 0.3 0.4 0.5 0.75 1 1.5 2 3 5 7.5 10 20 30 60 +Inf", tb, " "); ntb = 25
  split("0.001 0.002 0.004 0.006 0.008 0.01 0.0125 0.015 0.02 0.025 0.03 0.04 0.05 0.075 0.1 0.15 0.2 0.3 0.5 1 2.5 +Inf", pb, " "); npb = 22
  n = 65
  print "# TYPE inferprobe_time_to_first_token_seconds_bucket gauge"
  for (t = 1; t <= T; t++) for (b = 1; b <= ntb; b++) for (i = 0; i < n; i++) {
    ts = now - (n - i) * step; f = (b == ntb) ? 1 : (b / ntb)
    printf "inferprobe_time_to_first_token_seconds_bucket{job=\"inferprobe\",instance=\"p:9788\",target=\"t%03d\",model=\"m\",adapter=\"\",le=\"%s\"} %g %d\n", t, tb[b], f * 58.8 * i, ts }
  print "# TYPE inferprobe_time_to_first_token_seconds_count gauge"
  for (t = 1; t <= T; t++) for (i = 0; i < n; i++) printf "inferprobe_time_to_first_token_seconds_count{job=\"inferprobe\",instance=\"p:9788\",target=\"t%03d\",model=\"m\",adapter=\"\"} %g %d\n", t, 58.8 * i, now - (n - i) * step
  print "# TYPE inferprobe_time_per_output_token_seconds_bucket gauge"
  for (t = 1; t <= T; t++) for (b = 1; b <= npb; b++) for (i = 0; i < n; i++) {
    ts = now - (n - i) * step; f = (b == npb) ? 1 : (b / npb)
    printf "inferprobe_time_per_output_token_seconds_bucket{job=\"inferprobe\",instance=\"p:9788\",target=\"t%03d\",model=\"m\",adapter=\"\",le=\"%s\"} %g %d\n", t, pb[b], f * 58.8 * i, ts }
  print "# TYPE inferprobe_time_per_output_token_seconds_count gauge"
  for (t = 1; t <= T; t++) for (i = 0; i < n; i++) printf "inferprobe_time_per_output_token_seconds_count{job=\"inferprobe\",instance=\"p:9788\",target=\"t%03d\",model=\"m\",adapter=\"\"} %g %d\n", t, 58.8 * i, now - (n - i) * step
  # objectives
  n = 400
  print "# TYPE inferprobe_slo_target_ratio gauge"
  for (t = 1; t <= T; t++) for (i = 0; i < n; i++) printf "inferprobe_slo_target_ratio{job=\"inferprobe\",instance=\"p:9788\",target=\"t%03d\",model=\"m\"} 0.99 %d\n", t, now - (n - i) * step
  print "# TYPE inferprobe_slo_window_seconds gauge"
  for (t = 1; t <= T; t++) for (i = 0; i < n; i++) printf "inferprobe_slo_window_seconds{job=\"inferprobe\",instance=\"p:9788\",target=\"t%03d\",model=\"m\"} 2592000 %d\n", t, now - (n - i) * step
  print "# TYPE inferprobe_slo_regression_factor gauge"
  for (t = 1; t <= T; t++) for (i = 0; i < n; i++) printf "inferprobe_slo_regression_factor{job=\"inferprobe\",instance=\"p:9788\",target=\"t%03d\",model=\"m\"} 1.5 %d\n", t, now - (n - i) * step
  # the records the 1d and 3d windows read: 3d at 1m (as a 1-minute evaluation interval writes them)
  n = 3 * 1440 + 5
  split("target:inferprobe_goodput_missed_requests:rate5m target:inferprobe_requests_without_canceled:rate5m target:inferprobe_all_requests_failed:rate5m target:inferprobe_all_requests_without_canceled:rate5m", rec, " ")
  val[1] = 0.05; val[2] = 1; val[3] = 0.02; val[4] = 1
  for (k = 1; k <= 4; k++) {
    printf "# TYPE %s gauge\n", rec[k]
    for (t = 1; t <= T; t++) for (i = 0; i < n; i++) printf "%s{target=\"t%03d\"} %g %d\n", rec[k], t, val[k], now - (n - i) * step }
  # the hourly quantiles the regression baselines read: 8 days at 1m
  n = 8 * 288
  split("target_quantile:inferprobe_time_to_first_token_seconds:quantile1h target_quantile:inferprobe_time_per_output_token_seconds:quantile1h", q, " ")
  for (k = 1; k <= 2; k++) {
    printf "# TYPE %s gauge\n", q[k]
    for (t = 1; t <= T; t++) for (j = 0; j < 2; j++) for (i = 0; i < n; i++) printf "%s{target=\"t%03d\",quantile=\"%s\"} %g %d\n", q[k], t, (j ? "0.99" : "0.5"), 0.1, now - (n - i) * 300 }
  print "# EOF"
}' > "$work/history.om"
promtool tsdb create-blocks-from openmetrics --max-block-duration=216h "$work/history.om" "$work/data" >/dev/null
cat > "$work/prometheus.yml" <<YAML
global: {evaluation_interval: 15s}
rule_files: ["$PWD/alerts/inferprobe.rules.yml"]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" --storage.tsdb.retention.time=30d \
  --web.listen-address=$PROM_ADDR --log.level=warn &
pid=$!
echo "== machine: $(nproc) cores, $(date -u +%F), $(prometheus --version 2>&1 | head -1)"
echo "== $TARGETS targets, history ending now, rules every 15s, no scraping"
sleep 20
c0=$(curl -sf http://$PROM_ADDR/metrics | awk '/^process_cpu_seconds_total/ { print $2 }')
sleep 60
c1=$(curl -sf http://$PROM_ADDR/metrics | awk '/^process_cpu_seconds_total/ { print $2 }')
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); Prometheus CPU over 60s: $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.1f%% of one core", (b-a)/60*100 }')"
curl -sf http://$PROM_ADDR/metrics > "$work/prom.txt"
sed -nE 's/^prometheus_rule_group_last_duration_seconds\{rule_group="[^;]*;([^"]*)"\} (.*)$/\1 \2/p' "$work/prom.txt" |
  awk '{ printf "%s | %.1f ms\n", $1, $2*1000; s += $2 } END { printf "all groups | %.1f ms\n", s*1000 }'
awk '/^prometheus_rule_evaluation_failures_total/ { s += $2 } END { printf "rule evaluation failures: %d\n", s }' "$work/prom.txt"
echo "slowest rules (last evaluation):"
curl -sf http://$PROM_ADDR/api/v1/rules |
  jq -r '[.data.groups[].rules[] | {n: .name, t: .evaluationTime}] | sort_by(-.t) | .[:10][] | "  \(.t * 1000 | floor) ms  \(.n)"'
for q in 'count(target:inferprobe_goodput_burn:rate3d)' 'count(target_quantile_baseline:inferprobe_time_to_first_token_seconds:quantile1h_ratio)'; do
  echo "$q = $(curl -sf --data-urlencode "query=$q" http://$PROM_ADDR/api/v1/query | jq -r '.data.result[0].value[1] // "none"')"
done
