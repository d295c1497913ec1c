#!/usr/bin/env bash
# Soak test (docs/benchmarks.md): the daemon probes a simulator with every fault on at 50 req/s
# for DURATION, sampling its RSS and goroutine count every INTERVAL. It passes when nothing grows
# after the warm-up part (WARM) beyond noise: RSS at most 25% + 8 MiB over its value at WARM, and
# goroutines at most 50 over theirs (in-flight requests and stalls come and go). `make soak` runs
# an hour; `make test` runs a 2-minute version. Loopback only, bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-3600}   # seconds
INTERVAL=${INTERVAL:-60}
WARM=${WARM:-300}
RATE=${RATE:-50}
SIM_ADDR=${SIM_ADDR:-127.0.0.1:18100}
DAEMON_ADDR=${DAEMON_ADDR:-127.0.0.1:19800}
bin=$(mktemp -d)/inferprobe
go build -o "$bin" .

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$(dirname "$bin")"; }
trap cleanup EXIT

"$bin" simulate --listen-address=$SIM_ADDR --ttft-base=10ms --itl=2ms --max-num-seqs=256 --stats-size=0 \
  --error-500-rate=0.02 --error-429-rate=0.02 --stall-rate=0.01 --stall-duration=2s --truncate-rate=0.01 \
  --malformed-rate=0.01 --abort-rate=0.01 --empty-rate=0.01 --reset-rate=0.01 --reset-mid-stream-rate=0.01 \
  --log.level=error &
pids+=($!)
cfg=$(mktemp --suffix=.yml)
cat > "$cfg" <<YAML
targets:
  - name: soak
    url: http://$SIM_ADDR
    model: inferprobe-sim
    timeout: 5s
    idle_timeout: 1s
    traffic: {pacer: poisson, rate: $RATE, seed: 1}
    request: {input_tokens: 32, max_tokens: 16, ignore_eos: true}
    warmup: {requests: 5, min_duration: 1s}
    metrics: {interval: 5s, engine: vllm}
YAML
"$bin" --config.file="$cfg" --web.listen-address=$DAEMON_ADDR --no-collector.accelerator --log.level=error &
dpid=$!
pids+=($dpid)
for _ in $(seq 50); do curl -sf "http://$DAEMON_ADDR/-/ready" >/dev/null && break; sleep 0.1; done

metric() { curl -sf "http://$DAEMON_ADDR/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
sum() { curl -sf "http://$DAEMON_ADDR/metrics" | awk -v re="$1" '$0 ~ re {s += $2} END {printf "%d", s}'; }
requests() { sum '^inferprobe_(warmup_)?requests_total[{]'; }
# In flight and dropped show the load the daemon met: on a busy machine requests stay in
# flight longer, each with its goroutines, so the goroutine count follows in_flight.
printf "%8s %10s %11s %10s %9s %8s\n" elapsed rss_MiB goroutines requests in_flight dropped
base_rss="" base_g="" max_rss=0 max_g=0 samples=""
for ((t = INTERVAL; t <= DURATION; t += INTERVAL)); do
  sleep "$INTERVAL"
  kill -0 "$dpid" 2>/dev/null || { echo "FAIL: the daemon exited"; exit 1; }
  rss=$(awk '/VmRSS/{print $2}' /proc/$dpid/status)
  g=$(metric go_goroutines)
  printf "%7ss %10.1f %11s %10s %9s %8s\n" "$t" "$(awk -v r="$rss" 'BEGIN {print r/1024}')" "$g" "$(requests)" \
    "$(sum '^inferprobe_in_flight_requests[{]')" "$(sum '^inferprobe_requests_dropped_total[{]')"
  if [ -z "$base_rss" ] && [ "$t" -ge "$WARM" ]; then base_rss=$rss base_g=$g; continue; fi
  if [ -n "$base_rss" ]; then
    samples+="$t $rss"$'\n'
    [ "$rss" -gt "$max_rss" ] && max_rss=$rss
    [ "${g%.*}" -gt "$max_g" ] && max_g=${g%.*}
  fi
done
rm -f "$cfg"
limit_rss=$(( base_rss * 125 / 100 + 8192 ))
limit_g=$(( ${base_g%.*} + 50 ))
echo "after ${WARM}s: RSS $((base_rss/1024)) MiB, goroutines ${base_g%.*}; later maximum RSS $((max_rss/1024)) MiB (limit $((limit_rss/1024))), goroutines $max_g (limit $limit_g)"
# The RSS trend after the warm-up, least squares over the samples (reported, not judged).
printf '%s' "$samples" | awk '{n++; x += $1; y += $2 / 1024; xx += $1 * $1; xy += $1 * $2 / 1024}
  END {if (n > 1 && n * xx != x * x) printf "RSS trend after %ss: %+.2f MiB per hour over %d samples\n", '"$WARM"', 3600 * (n * xy - x * y) / (n * xx - x * x), n}'
if [ "$max_rss" -gt "$limit_rss" ] || [ "$max_g" -gt "$limit_g" ]; then
  echo "soak: FAIL: growth beyond noise"
  exit 1
fi
echo "soak: PASS"
