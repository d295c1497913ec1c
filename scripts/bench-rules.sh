#!/usr/bin/env bash
# Rule-evaluation benchmark (docs/benchmarks.md#rule-evaluation): the whole rule file of
# alerts/ for 100 targets. A simulator process, the daemon probing it with 100 targets
# (0.5 req/s each, model-server scrape on) and a Prometheus loading alerts/inferprobe.rules.yml
# share this machine; after DURATION Prometheus's own rule-group metrics say how long each
# group's evaluation took. Loopback only; bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=${TARGETS:-100}
DURATION=${DURATION:-180}
SCRAPE=${SCRAPE:-5s}
EVAL=${EVAL:-15s}
# RULES=0 runs the same without the rule file: the difference in Prometheus's CPU is the rules'.
RULES=${RULES:-1}
SIM_ADDR=127.0.0.1:18001
DAEMON_ADDR=127.0.0.1:19789
PROM_ADDR=127.0.0.1:19090

[ -x ./inferprobe ] || go build -o inferprobe .
command -v prometheus >/dev/null || { echo "prometheus is missing: apt-get install prometheus" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is missing: apt-get install jq" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

./inferprobe simulate --listen-address=$SIM_ADDR --itl=2ms --ttft-base=20ms --error-500-rate=0.02 \
  --max-num-seqs=4096 --stats-size=0 --log.level=warn &
pids+=($!)
for _ in $(seq 50); do curl -sf http://$SIM_ADDR/health >/dev/null && break; sleep 0.1; done

{
  echo "targets:"
  for i in $(seq -w 1 "$TARGETS"); do
    cat <<YAML
  - name: t$i
    url: http://$SIM_ADDR
    model: inferprobe-sim
    traffic: {rate: 0.5}
    request: {input_tokens: 32, max_tokens: 8, ignore_eos: true}
    warmup: {requests: 1, min_duration: 0s}
    slo: {ttft: 500ms, tpot: 50ms, e2e: 1500ms}
    metrics: {interval: 15s, engine: vllm}
YAML
  done
} > "$work/inferprobe.yml"
./inferprobe --config.file="$work/inferprobe.yml" --web.listen-address=$DAEMON_ADDR --log.level=warn &
pids+=($!)

cat > "$work/prometheus.yml" <<YAML
global: {scrape_interval: $SCRAPE, evaluation_interval: $EVAL}
rule_files: [$([ "$RULES" = 1 ] && echo "\"$PWD/alerts/inferprobe.rules.yml\"")]
scrape_configs:
  - job_name: inferprobe
    static_configs: [{targets: ["$DAEMON_ADDR"]}]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address=$PROM_ADDR --log.level=warn &
pids+=($!)

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F), $(prometheus --version 2>&1 | head -1)"
echo "== $TARGETS targets, scrape every $SCRAPE, rules every $EVAL (rule file loaded: $RULES), ${DURATION}s"
sleep 30
cpu0=$(curl -sf "http://$PROM_ADDR/metrics" | awk '/^process_cpu_seconds_total/ { print $2 }')
sleep "$((DURATION - 30))"
cpu1=$(curl -sf "http://$PROM_ADDR/metrics" | awk '/^process_cpu_seconds_total/ { print $2 }')
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); Prometheus CPU over the last $((DURATION - 30))s: $(awk -v a="$cpu0" -v b="$cpu1" -v s="$((DURATION - 30))" 'BEGIN { printf "%.1f%% of one core", (b-a)/s*100 }')"
series=$(curl -sf "http://$PROM_ADDR/api/v1/query?query=count(%7Bjob%3D%22inferprobe%22%7D)" | sed -E 's/.*"value":\[[^,]*,"([^"]*)".*/\1/')
echo "scraped series: $series"
curl -sf "http://$PROM_ADDR/metrics" > "$work/prom.txt"
echo "group | rules | last evaluation (ms)"
group_values() { sed -nE "s/^$1\{rule_group=\"[^;]*;([^\"]*)\"\} (.*)$/\1 \2/p" "$work/prom.txt" | sort; }
join <(group_values prometheus_rule_group_rules) <(group_values prometheus_rule_group_last_duration_seconds) |
  awk '{ printf "%s | %d | %.2f\n", $1, $2, $3*1000; total += $3 } END { printf "all groups | | %.2f\n", total*1000 }'
sed -nE 's/^prometheus_rule_group_duration_seconds\{quantile="([^"]*)"\} (.*)$/\1 \2/p' "$work/prom.txt" |
  awk '{ printf "any group, quantile %s: %.2f ms\n", $1, $2*1000 }'
awk '/^prometheus_rule_evaluation_failures_total/ { s += $2 } END { printf "rule evaluation failures: %d\n", s }' "$work/prom.txt"
echo "slowest rules (last evaluation):"
curl -sf "http://$PROM_ADDR/api/v1/rules" |
  jq -r '[.data.groups[].rules[] | {n: .name, t: .evaluationTime}] | sort_by(-.t) | .[:10][] | "  \(.t * 1000 | floor) ms  \(.n)"'
