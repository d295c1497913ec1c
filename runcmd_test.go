package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/bench"
	"github.com/inferprobe/inferprobe/internal/testkit"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/simulator"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	// stderr gets the log and the progress lines from several goroutines, as os.Stderr would.
	var out bytes.Buffer
	errOut := &testkit.LockedBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code = run(ctx, append(args, "--log.level=warn"), &out, errOut)
	return code, out.String(), errOut.String()
}

const benchConfig = `
targets:
  - name: sim
    url: %s
    model: inferprobe-sim
    traffic: {pacer: stages, seed: 2, stages: [{rate: 25, duration: 1s}, {concurrency: 2, duration: 500ms}]}
    request: {input_tokens: 8, max_tokens: 4, ignore_eos: true}
    warmup: {requests: 1, min_duration: 0s}
`

// TestRunCommand: `inferprobe run` with warmup and repeat runs writes a report that parses,
// per-request lines of the measured runs only, and a table; exit 0.
func TestRunCommand(t *testing.T) {
	_, url := startSim(t, func(c *simulator.Config) { c.TTFTBase, c.ITL = 5*time.Millisecond, time.Millisecond })
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(benchConfig, url))
	out := filepath.Join(dir, "out", "nested")
	code, stdout, stderr := runCLI(t, "run", "--config.file="+cfg, "--output="+out, "--output.requests",
		"--warmup-runs=1", "--repeat-runs=2", "--progress.interval=200ms")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	data, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 2 || rep.WarmupRuns != 1 || len(rep.Runs[0].Targets[0].Stages) != 2 || rep.Runs[1].Targets[0].Stages[0].Load.Sent != 25 {
		t.Errorf("report: %d runs, warmup %d, %+v", len(rep.Runs), rep.WarmupRuns, rep.Runs[0].Targets[0].Stages[0].Load)
	}
	// The accelerator collector is on by default: this machine has no GPU, so every stage
	// says it was down, and the run went on.
	for _, st := range rep.Runs[0].Targets[0].Stages {
		if st.Accelerator == nil || st.Accelerator.Up {
			t.Errorf("stage %d accelerator summary %+v, want one that says the collector is down", st.Index, st.Accelerator)
		}
	}
	lines, err := os.ReadFile(filepath.Join(out, "requests.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(lines), "\n"); n < 2*25 || strings.Contains(string(lines), `"run":-1`) {
		t.Errorf("requests.jsonl has %d lines (or warmup-run lines)", n)
	}
	for _, want := range []string{"TTFT p50", "across 2 runs", "ttft_p99"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	for _, f := range []string{"index.html", "latency.png", "latency.svg", "ttft_cdf.svg", "throughput.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("--output lacks %s: %v", f, err)
		}
	}
	for _, want := range []string{"warmup run 1/1: started", "run 2/2: done", "report written to"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, stderr)
		}
	}
	// Without a terminal, the progress is a plain line every --progress.interval.
	if !regexp.MustCompile(`(?m)^inferprobe run: run [12]/2: \d+s, \d+ sent, \d+ finished, \d+ failed$`).MatchString(stderr) {
		t.Errorf("no periodic progress line in:\n%s", stderr)
	}
}

// TestRunCommandServesMetrics: with --web.listen-address, /metrics serves the probe's series
// while the run goes on.
func TestRunCommandServesMetrics(t *testing.T) {
	_, url := startSim(t, func(c *simulator.Config) { c.TTFTBase, c.ITL = 5*time.Millisecond, time.Millisecond })
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`
targets:
  - name: sim
    url: %s
    model: inferprobe-sim
    traffic: {pacer: stages, seed: 3, stages: [{rate: 20, duration: 4s}]}
    request: {input_tokens: 4, max_tokens: 2, ignore_eos: true}
    warmup: {requests: 0, min_duration: 0s}
`, url))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // free for the run to listen on
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, stdout, stderr := runCLI(t, "run", "--config.file="+cfg, "--web.listen-address="+addr)
		done <- result{code, stdout, stderr}
	}()
	var body string
	testkit.WaitFor(t, 30*time.Second, 50*time.Millisecond, "/metrics with request series during the run", func() bool {
		select {
		case r := <-done:
			t.Fatalf("the run ended (exit %d) before /metrics showed requests:\n%s", r.code, r.stderr)
		default:
		}
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return strings.Contains(body, `inferprobe_requests_total{`) && strings.Contains(body, `target="sim"`)
	})
	if r := <-done; r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}

// TestRunCommandRejectsBeforeTraffic: an unwritable --output, a plan that never ends and bad
// flags are errors before any request is sent.
func TestRunCommandRejectsBeforeTraffic(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		http.Error(w, "no", 500)
	}))
	defer srv.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(benchConfig, srv.URL))
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	endless := filepath.Join(dir, "endless.yml")
	if err := os.WriteFile(endless, fmt.Appendf(nil, "targets: [{name: a, url: %s, model: m, traffic: {pacer: poisson, rate: 5}}]\n", srv.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	sweepCfg := filepath.Join(dir, "sweep.yml")
	if err := os.WriteFile(sweepCfg, fmt.Appendf(nil, "targets: [{name: a, url: %s, model: m}]\nsweep: {type: geometric, stages: 3}\n", srv.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	badSweep := filepath.Join(dir, "badsweep.yml")
	if err := os.WriteFile(badSweep, fmt.Appendf(nil, "targets: [{name: a, url: %s, model: m}]\nsweep:\n  type: log\n", srv.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--config.file=" + cfg, "--output=" + filepath.Join(blocker, "sub")}, "--output"},
		{[]string{"--config.file=" + sweepCfg, "--sweep.stages=1"}, "sweep stages 1: want ≥ 1 (≥ 2 for geometric)"},
		{[]string{"--config.file=" + sweepCfg, "--shard=0/2"}, "sweep (--sweep.type or the config's sweep block) and --shard cannot be used together"},
		{[]string{"--config.file=" + badSweep}, `sweep.type (line 3): must be linear or geometric, not "log"`},
		{[]string{"--config.file=" + endless}, `target "a": traffic.pacer poisson never ends`},
		{[]string{"--config.file=" + cfg, "--rate=5"}, "need --duration"},
		{[]string{"--config.file=" + cfg, "--rate=5", "--concurrency=2", "--duration=1s"}, "cannot be used together"},
		{[]string{"--config.file=" + cfg, "--shard=2/2"}, "want 0 ≤ I < N"},
		{[]string{"--config.file=" + cfg, "--output.requests"}, "needs --output"},
	} {
		code, _, stderr := runCLI(t, append([]string{"run"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("run %v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests reached the server before the errors", n)
	}
}

// TestRunCommandFailedTarget: a target none of whose requests succeed makes the exit code 1,
// with why.
func TestRunCommandFailedTarget(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close() // nothing listens: every request fails to connect
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(benchConfig, url))
	code, _, stderr := runCLI(t, "run", "--config.file="+cfg)
	if code != 1 || !strings.Contains(stderr, `target "sim": none of`) || !strings.Contains(stderr, "while warming up: map[connection:") {
		t.Errorf("exit %d, stderr:\n%s\nwant 1 naming the target and the failure class", code, stderr)
	}
}

// TestRunShardsAndMerge: two shards through the CLI and `inferprobe report merge` give the
// counts of the whole schedule.
func TestRunShardsAndMerge(t *testing.T) {
	_, url := startSim(t, func(c *simulator.Config) { c.TTFTBase, c.ITL = 2*time.Millisecond, time.Millisecond })
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(benchConfig, url))
	var files []string
	for i := range 2 {
		out := filepath.Join(dir, fmt.Sprint("shard", i))
		if code, stdout, stderr := runCLI(t, "run", "--config.file="+cfg, "--output="+out, fmt.Sprintf("--shard=%d/2", i)); code != 0 {
			t.Fatalf("shard %d: exit %d\n%s\n%s", i, code, stdout, stderr)
		}
		files = append(files, filepath.Join(out, "report.json"))
	}
	merged := filepath.Join(dir, "merged.json")
	code, stdout, stderr := runCLI(t, "report", "merge", "--output="+merged, files[0], files[1])
	if code != 0 {
		t.Fatalf("merge: exit %d\n%s\n%s", code, stdout, stderr)
	}
	data, err := os.ReadFile(merged)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	st := rep.Runs[0].Targets[0].Stages
	if st[0].Load.Sent != 25 || st[0].Rate != 25 || st[1].Concurrency != 2 || rep.Shard != nil {
		t.Errorf("merged stages: sent %d rate %v concurrency %d shard %v", st[0].Load.Sent, st[0].Rate, st[1].Concurrency, rep.Shard)
	}
	if !strings.Contains(stdout, "TTFT p50") {
		t.Errorf("merge printed no table:\n%s", stdout)
	}
	if code, _, stderr := runCLI(t, "report", "merge", files[0]); code != 1 || !strings.Contains(stderr, "shard 0 of 2") {
		t.Errorf("merging one of two shards: exit %d %s", code, stderr)
	}
}

// TestRunCommandSweepFromConfig: the config's sweep block starts a sweep (over a target whose
// own pacer never ends), a --sweep.* flag given overrides its one key and leaves the others,
// and the knee's goodput target defaults to the target's slo.target_ratio; a flag given for the
// goodput target wins over that.
func TestRunCommandSweepFromConfig(t *testing.T) {
	_, url := startSim(t, func(c *simulator.Config) { c.TTFTBase, c.ITL, c.MaxNumSeqs = 5*time.Millisecond, time.Millisecond, 4 })
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`
targets:
  - name: sim
    url: %s
    model: inferprobe-sim
    traffic: {pacer: poisson, rate: 2, seed: 4}
    request: {input_tokens: 4, max_tokens: 2, ignore_eos: true}
    warmup: {requests: 0, min_duration: 0s}
    slo: {e2e: 2s, target_ratio: 0.9}
sweep:
  type: geometric
  stages: 4
  stage_duration: 400ms
  probe_duration: 800ms
  probe_concurrency: 4
`, url))
	for _, tc := range []struct {
		flags      []string
		wantTarget float64
	}{
		{[]string{"--sweep.stages=2"}, 0.9},
		{[]string{"--sweep.stages=2", "--sweep.goodput-target=0.5"}, 0.5},
	} {
		out := filepath.Join(dir, fmt.Sprint("out", tc.wantTarget))
		code, stdout, stderr := runCLI(t, append([]string{"run", "--config.file=" + cfg, "--output=" + out, "--no-output.plots"}, tc.flags...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", tc.flags, code, stdout, stderr)
		}
		data, err := os.ReadFile(filepath.Join(out, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		var rep bench.Report
		if err := json.Unmarshal(data, &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Sweeps) != 1 {
			t.Fatalf("%v: %d sweeps in the report, want 1", tc.flags, len(rep.Sweeps))
		}
		sw, st := rep.Sweeps[0], rep.Runs[0].Targets[0].Stages
		if sw.Type != bench.SweepGeometric || sw.ProbeConcurrency != 4 || len(sw.Rates) != 2 || sw.GoodputTarget != tc.wantTarget {
			t.Errorf("%v: sweep %+v, want geometric, probe concurrency 4 and 2 stages from the block and the flag, goodput target %g",
				tc.flags, sw, tc.wantTarget)
		}
		if len(st) != 2 || st[0].Duration != 0.4 || st[1].Duration != 0.4 || math.Abs(st[0].Rate*10-st[1].Rate) > 1e-9 {
			t.Errorf("%v: stages %+v, want two of 400ms a factor 10 apart", tc.flags, st)
		}
	}
}

// TestRunCommandQuick: --rate and --duration turn a config's stages into one constant-rate
// stage, and without --config.file the embedded simulator is benchmarked the same way (its
// built-in warmup gate holds the first 2 s, so that run is 3 s).
func TestRunCommandQuick(t *testing.T) {
	_, url := startSim(t, func(c *simulator.Config) { c.TTFTBase, c.ITL = 2*time.Millisecond, time.Millisecond })
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(benchConfig, url))
	for _, tc := range []struct {
		name     string
		args     []string
		duration float64
	}{
		{"config", []string{"--config.file=" + cfg, "--duration=1s"}, 1},
		{"embedded simulator", []string{"--duration=3s"}, 3},
	} {
		out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		args := append([]string{"run", "--rate=40", "--output=" + out, "--no-output.plots"}, tc.args...)
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", tc.name, code, stdout, stderr)
		}
		data, err := os.ReadFile(filepath.Join(out, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		var rep bench.Report
		if err := json.Unmarshal(data, &rep); err != nil {
			t.Fatal(err)
		}
		st := rep.Runs[0].Targets[0].Stages
		// A constant pacer sends exactly rate × duration; a Poisson one would not.
		if want := int64(40 * tc.duration); len(st) != 1 || st[0].Rate != 40 || st[0].Duration != tc.duration || st[0].Load.Sent != want ||
			st[0].Requests[prober.ResultSuccess] == 0 {
			t.Errorf("%s: stages %+v, want one of 40 req/s for %v s that sent %d, some measured", tc.name, st, tc.duration, want)
		}
	}
}
