#!/usr/bin/env bash
# Daemon cost against the number of targets (docs/benchmarks.md, "Daemon CPU and memory per
# target"): a simulator process and the daemon share this machine; for each count in COUNTS
# the daemon probes the simulator with that many targets (RATE req/s each, SLOs on every SLI,
# model-server scrape every 15 s, as scripts/bench-rules.sh configures them), /metrics is
# scraped every SCRAPE seconds as Prometheus would, and after WARM seconds the daemon's CPU
# over MEASURE seconds and its RSS are read from /proc. Loopback only; bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNTS=${COUNTS:-1,10,100}
RATE=${RATE:-0.5}
WARM=${WARM:-20}
MEASURE=${MEASURE:-60}
SCRAPE=${SCRAPE:-15}
SIM_ADDR=127.0.0.1:18002
DAEMON_ADDR=127.0.0.1:19790

[ -x ./inferprobe ] || go build -o inferprobe .
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

./inferprobe simulate --listen-address=$SIM_ADDR --itl=2ms --ttft-base=20ms \
  --max-num-seqs=4096 --stats-size=0 --log.level=warn &
pids+=($!)
for _ in $(seq 50); do curl -sf http://$SIM_ADDR/health >/dev/null && break; sleep 0.1; done

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $RATE req/s per target, /metrics every ${SCRAPE}s, ${WARM}s warm, ${MEASURE}s measured"
# RSS is anonymous memory (heap, stacks) plus file-backed pages (the binary's text, which the
# kernel can drop and read again): both count against a container's memory limit.
printf '%-8s %-10s %-14s %-10s %-10s %-10s %-10s %-10s %s\n' targets req/s "cpu_%_of_core" rss_MiB peak_MiB anon_MiB file_MiB series load
ticks=$(getconf CLK_TCK)
IFS=, read -ra counts <<<"$COUNTS"
for n in "${counts[@]}"; do
  {
    echo "targets:"
    for i in $(seq -w 1 "$n"); do
      cat <<YAML
  - name: t$i
    url: http://$SIM_ADDR
    model: inferprobe-sim
    traffic: {rate: $RATE}
    request: {input_tokens: 32, max_tokens: 8, ignore_eos: true}
    warmup: {requests: 1, min_duration: 0s}
    slo: {ttft: 500ms, tpot: 50ms, e2e: 1500ms}
    metrics: {interval: 15s, engine: vllm}
YAML
    done
  } > "$work/inferprobe.yml"
  ./inferprobe --config.file="$work/inferprobe.yml" --web.listen-address=$DAEMON_ADDR --log.level=warn &
  dpid=$!
  pids+=($dpid)
  for _ in $(seq 100); do curl -sf http://$DAEMON_ADDR/-/ready >/dev/null && break; sleep 0.1; done
  scrape() { curl -sf "http://$DAEMON_ADDR/metrics" -o "$work/metrics.txt"; }
  end=$((SECONDS + WARM))
  while (( SECONDS < end )); do scrape; sleep "$SCRAPE" & wait $!; done
  cpu0=$(awk '{print $14+$15}' /proc/$dpid/stat)
  t0=$(date +%s.%N)
  end=$((SECONDS + MEASURE))
  while (( SECONDS < end )); do scrape; sleep "$SCRAPE" & wait $!; done
  cpu1=$(awk '{print $14+$15}' /proc/$dpid/stat)
  t1=$(date +%s.%N)
  scrape
  series=$(grep -cv '^#' "$work/metrics.txt")
  hwm=$(awk '/VmHWM/{print $2}' /proc/$dpid/status)
  rss=$(awk '/VmRSS/{print $2}' /proc/$dpid/status)
  anon=$(awk '/RssAnon/{print $2}' /proc/$dpid/status)
  file=$(awk '/RssFile/{print $2}' /proc/$dpid/status)
  awk -v n="$n" -v r="$RATE" -v c0="$cpu0" -v c1="$cpu1" -v t="$ticks" -v s0="$t0" -v s1="$t1" \
    -v h="$hwm" -v m="$rss" -v a="$anon" -v f="$file" -v k="$series" -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
    printf "%-8d %-10.1f %-14.2f %-10.1f %-10.1f %-10.1f %-10.1f %-10d %s\n", n, n*r, (c1-c0)/t/(s1-s0)*100, m/1024, h/1024, a/1024, f/1024, k, l }'
  kill "$dpid"
  wait "$dpid" 2>/dev/null || true
done
