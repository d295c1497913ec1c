#!/usr/bin/env bash
# Measures the trace replay's raw send lag (BenchmarkTraceReplayLag: the shared Azure trace at
# time_scale 20 against the simulator, 30 s per run) and the machine's wake-up lateness beside
# it, with the load average before and after, for docs/benchmarks.md. Argument: the number of
# runs (default 3). Needs ../shared/traces/azure-llm-2023-conv.csv beside the repository.
set -euo pipefail
count=${1:-3}
cd "$(dirname "$0")/.."
echo "date $(date -u +%FT%TZ), $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
go test -run '^$' -bench '^BenchmarkTraceReplayLag$' -benchtime=1x -count="$count" ./engine/
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
