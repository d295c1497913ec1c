#!/usr/bin/env bash
# Load benchmark (docs/benchmarks.md): a simulator process and the prober engine share this
# machine. Step 1 drives the engine at each rate and prints achieved rate, schedule delay,
# drops, client CPU and RSS; step 1b runs it in closed loop at each concurrency. Step 2 runs the
# real daemon at 1 req/s and reports its RSS and CPU.
# Loopback only; every step is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20s}
RATES=${RATES:-100,500,1000,2000}
CONCURRENCY=${CONCURRENCY:-256}
IDLE_SECONDS=${IDLE_SECONDS:-60}
SIM_ADDR=127.0.0.1:18000
DAEMON_ADDR=127.0.0.1:19788

[ -x ./inferprobe ] || go build -o inferprobe .
go build -o /tmp/inferprobe-load ./bench/load

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

./inferprobe simulate --listen-address=$SIM_ADDR --itl=1ms --itl-jitter=0 --ttft-base=5ms \
  --ttft-per-prompt-token=0s --max-num-seqs=4096 --stats-size=0 --log.level=warn &
pids+=($!)
for _ in $(seq 50); do curl -sf http://$SIM_ADDR/health >/dev/null && break; sleep 0.1; done

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
echo "== step 1: engine against the simulator, ${DURATION} per rate, 16 output tokens, 32 prompt tokens"
/tmp/inferprobe-load --url=http://$SIM_ADDR --rates="$RATES" --duration="$DURATION"
echo "== step 1b: engine in closed loop, ${DURATION} per concurrency"
/tmp/inferprobe-load --url=http://$SIM_ADDR --concurrency="$CONCURRENCY" --duration="$DURATION"

echo "== step 2: the daemon at 1 req/s for ${IDLE_SECONDS}s"
cfg=$(mktemp --suffix=.yml)
cat > "$cfg" <<YAML
targets:
  - name: idle
    url: http://$SIM_ADDR
    model: inferprobe-sim
    traffic: {rate: 1}
    request: {input_tokens: 128, max_tokens: 32, ignore_eos: true}
    warmup: {requests: 3, min_duration: 2s}
YAML
./inferprobe --config.file="$cfg" --web.listen-address=$DAEMON_ADDR --log.level=warn &
dpid=$!
pids+=($dpid)
sleep 5 # past start-up and warmup
ticks=$(getconf CLK_TCK)
cpu0=$(awk '{print $14+$15}' /proc/$dpid/stat)
sleep "$IDLE_SECONDS"
cpu1=$(awk '{print $14+$15}' /proc/$dpid/stat)
curl -sf http://$DAEMON_ADDR/metrics >/dev/null # a scrape, as Prometheus would
hwm=$(awk '/VmHWM/{print $2}' /proc/$dpid/status)
rss=$(awk '/VmRSS/{print $2}' /proc/$dpid/status)
awk -v c0="$cpu0" -v c1="$cpu1" -v t="$ticks" -v s="$IDLE_SECONDS" -v h="$hwm" -v r="$rss" 'BEGIN {
  printf "daemon at 1 req/s: CPU %.2f%% of one core, RSS %.1f MiB (peak %.1f MiB)\n", (c1-c0)/t/s*100, r/1024, h/1024 }'
rm -f "$cfg"
