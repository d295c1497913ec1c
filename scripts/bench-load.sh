#!/usr/bin/env bash
# Load benchmark (docs/benchmarks.md): a simulator process and the prober engine share this
# machine. Step 1 drives the engine at each rate and prints achieved rate, schedule delay,
# drops, client CPU and RSS; step 1b runs it in closed loop at each concurrency; step 1c runs each
# rate through bench.Run, the loop of `inferprobe run` (report builder, probe collector and
# progress goroutine besides the engine), its figures from the report's load_summary. Step 2 runs the
# real daemon at 1 req/s and reports its RSS and CPU. Step 3 sets the engine's client CPU per
# request against vegeta's (a plain HTTP load generator that reads each streamed body without
# parsing it) at CMP_RATE against the same simulator, in CMP_ROUNDS alternating rounds. Step 3b
# runs each round's two clients side by side instead (the machine's drift then hits both alike,
# so a round's ratio varies far less), for the engine's own client and for the engine with a
# plain reference client (--client=plain: the same bodies, each response read unparsed), which
# splits the gap into the engine's share and the stream measurement's.
# ONLY_CMP=1 runs step 3 and 3b alone.
# Loopback only; every step is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20s}
RATES=${RATES:-100,500,1000,2000}
CONCURRENCY=${CONCURRENCY:-256}
IDLE_SECONDS=${IDLE_SECONDS:-60}
CMP_RATE=${CMP_RATE:-500}
CMP_DURATION=${CMP_DURATION:-20s}
CMP_ROUNDS=${CMP_ROUNDS:-5}
ONLY_CMP=${ONLY_CMP:-0}
SIM_ADDR=127.0.0.1:18000
DAEMON_ADDR=127.0.0.1:19788

[ -x ./inferprobe ] || go build -o inferprobe .
go build -o /tmp/inferprobe-load ./bench/load
# vegeta is its own module (bench/vegeta), so it stays out of inferprobe's dependencies.
(cd bench/vegeta && go build -o /tmp/inferprobe-vegeta .)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

./inferprobe simulate --listen-address=$SIM_ADDR --itl=1ms --itl-jitter=0 --ttft-base=5ms \
  --ttft-per-prompt-token=0s --max-num-seqs=4096 --stats-size=0 --log.level=warn &
pids+=($!)
for _ in $(seq 50); do curl -sf http://$SIM_ADDR/health >/dev/null && break; sleep 0.1; done

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F), load average $(cut -d' ' -f1-3 /proc/loadavg)"

# median prints the median of its arguments.
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {
  printf "%s", (NR % 2 ? a[(NR+1)/2] : sprintf("%.3f", (a[NR/2]+a[NR/2+1])/2)) }'; }

# Step 3: client CPU per request, inferprobe's engine against vegeta, same server, same body.
compare() {
  local body ratios=() ip vg
  body=$(mktemp --suffix=.json)
  /tmp/inferprobe-load --url=http://$SIM_ADDR --max-tokens=16 --body-out="$body"
  echo "== step 3: client CPU per request at ${CMP_RATE} req/s, ${CMP_DURATION} per client, ${CMP_ROUNDS} alternating rounds"
  printf '%-6s %-22s %-22s %s\n' round "vegeta cpu_s/1000" "inferprobe cpu_s/1000" "ratio"
  for r in $(seq "$CMP_ROUNDS"); do
    # Alternate which client goes first, so a drift in the machine's load favours neither.
    if (( r % 2 )); then
      vg=$(/tmp/inferprobe-vegeta --url=http://$SIM_ADDR/v1/chat/completions --body="$body" \
        --rate="$CMP_RATE" --duration="$CMP_DURATION" | awk 'NR==2{print $4, $3}')
      ip=$(/tmp/inferprobe-load --url=http://$SIM_ADDR --rates="$CMP_RATE" --duration="$CMP_DURATION" \
        --max-tokens=16 | awk 'NR==2{print $9, $8}')
    else
      ip=$(/tmp/inferprobe-load --url=http://$SIM_ADDR --rates="$CMP_RATE" --duration="$CMP_DURATION" \
        --max-tokens=16 | awk 'NR==2{print $9, $8}')
      vg=$(/tmp/inferprobe-vegeta --url=http://$SIM_ADDR/v1/chat/completions --body="$body" \
        --rate="$CMP_RATE" --duration="$CMP_DURATION" | awk 'NR==2{print $4, $3}')
    fi
    # vg: cpu success-ratio; ip: cpu error-count. A round where either failed requests is
    # reported but not compared.
    read -r vcpu vok <<<"$vg"
    read -r icpu ierr <<<"$ip"
    if [ "$vok" != "1.0000" ] || [ "$ierr" != "0" ]; then
      printf '%-6s %-22s %-22s %s\n' "$r" "$vcpu (success $vok)" "$icpu ($ierr errors)" "not compared"
      continue
    fi
    ratio=$(awk -v a="$icpu" -v b="$vcpu" 'BEGIN{printf "%.3f", a/b}')
    ratios+=("$ratio")
    printf '%-6s %-22s %-22s %s\n' "$r" "$vcpu" "$icpu" "$ratio"
  done
  rm -f "$body"
  if [ ${#ratios[@]} -gt 0 ]; then
    local sorted
    mapfile -t sorted < <(printf '%s\n' "${ratios[@]}" | sort -n)
    echo "inferprobe / vegeta CPU per request over ${#sorted[@]} rounds: min ${sorted[0]}, median $(median "${ratios[@]}"), max ${sorted[-1]}"
  fi
}

# Step 3b: each round runs vegeta and the engine at CMP_RATE at the same time, against the same
# simulator; the ratio of a round is the engine's CPU per request over vegeta's in that round.
paired() {
  local body client r vf pf vp pp vcpu vok icpu ierr ratios
  body=$(mktemp --suffix=.json)
  /tmp/inferprobe-load --url=http://$SIM_ADDR --max-tokens=16 --body-out="$body"
  echo "== step 3b: client CPU per request at ${CMP_RATE} req/s each, the two clients side by side for ${CMP_DURATION}, ${CMP_ROUNDS} rounds"
  for client in inferprobe plain; do
    ratios=()
    for r in $(seq "$CMP_ROUNDS"); do
      vf=$(mktemp) pf=$(mktemp)
      /tmp/inferprobe-vegeta --url=http://$SIM_ADDR/v1/chat/completions --body="$body" \
        --rate="$CMP_RATE" --duration="$CMP_DURATION" | awk 'NR==2{print $4, $3}' >"$vf" &
      vp=$!
      /tmp/inferprobe-load --url=http://$SIM_ADDR --rates="$CMP_RATE" --duration="$CMP_DURATION" \
        --max-tokens=16 --client="$client" | awk 'NR==2{print $9, $8}' >"$pf" &
      pp=$!
      wait "$vp" "$pp"
      read -r vcpu vok <"$vf"
      read -r icpu ierr <"$pf"
      rm -f "$vf" "$pf"
      if [ "$vok" != "1.0000" ] || [ "$ierr" != "0" ]; then
        echo "round $r: vegeta $vcpu (success $vok), $client $icpu ($ierr errors): not compared"
        continue
      fi
      ratios+=("$(awk -v a="$icpu" -v b="$vcpu" 'BEGIN{printf "%.3f", a/b}')")
    done
    if [ ${#ratios[@]} -gt 0 ]; then
      echo "engine with the $client client / vegeta, side by side: rounds ${ratios[*]}, median $(median "${ratios[@]}")"
    fi
  done
  rm -f "$body"
}

if [ "$ONLY_CMP" = 1 ]; then
  compare
  paired
  exit 0
fi

echo "== step 1: engine against the simulator, ${DURATION} per rate, 16 output tokens, 32 prompt tokens"
/tmp/inferprobe-load --url=http://$SIM_ADDR --rates="$RATES" --duration="$DURATION"
echo "== step 1b: engine in closed loop, ${DURATION} per concurrency"
/tmp/inferprobe-load --url=http://$SIM_ADDR --concurrency="$CONCURRENCY" --duration="$DURATION"

echo "== step 1c: inferprobe run's loop (bench.Run) against the simulator, ${DURATION} per rate"
/tmp/inferprobe-load --url=http://$SIM_ADDR --rates="$RATES" --duration="$DURATION" --via=run

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
kill "$dpid" 2>/dev/null || true

compare
paired
