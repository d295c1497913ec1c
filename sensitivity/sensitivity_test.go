package sensitivity

import (
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/bench"
	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/engine"
	"github.com/inferprobe/inferprobe/internal/simtest"
	"github.com/inferprobe/inferprobe/simulator"
	"gonum.org/v1/plot/plotter"
)

func TestFitLine(t *testing.T) {
	var pts []Point
	for x := 0.0; x <= 10; x++ {
		pts = append(pts, Point{x, 100 - 2*x})
	}
	f := FitLine(pts)
	if math.Abs(f.Slope+2) > 1e-12 || math.Abs(f.Intercept-100) > 1e-12 || math.Abs(f.R2-1) > 1e-12 ||
		math.Abs(f.SlopeCI95[0]+2) > 1e-9 || math.Abs(f.SlopeCI95[1]+2) > 1e-9 || f.N != 11 {
		t.Fatalf("fit %+v", f)
	}
	// Noise widens the interval around the true slope: residuals ±1 alternate.
	for i := range pts {
		pts[i].Y += float64(1 - 2*(i%2))
	}
	f = FitLine(pts)
	if !(f.SlopeCI95[0] < -2 && f.SlopeCI95[1] > -2) || f.R2 > 0.99 || f.R2 < 0.9 {
		t.Errorf("noisy fit %+v", f)
	}
	// The values, computed independently: slope −2, se 0.10497 with 9 degrees of freedom, so
	// the interval is −2 ± 2.262·se (1.96 would give ±0.2057 and fail), R² = 1 − 10.909/450.909.
	if math.Abs(f.Slope+2) > 1e-9 || math.Abs(f.SlopeCI95[0]+2.23745) > 1e-4 || math.Abs(f.SlopeCI95[1]+1.76255) > 1e-4 ||
		math.Abs(f.R2-0.975806) > 1e-5 {
		t.Errorf("noisy fit %+v, want slope −2, interval [−2.23745, −1.76255], R² 0.975806", f)
	}
	if got := f.At(-1); math.Abs(got-(f.Intercept-f.Slope)) > 1e-12 {
		t.Errorf("At(-1) = %v", got)
	}
}

func TestClassify(t *testing.T) {
	delays := []float64{0, 1e-3, 2e-3, 3e-3, 4e-3, 5e-3}
	analyze := func(means []float64) Analysis {
		var pts []Point
		for i, m := range means {
			pts = append(pts, Point{delays[i], m})
		}
		return Analyze(delays, means, pts)
	}
	cases := []struct {
		name  string
		means []float64
		want  string
		brk   float64
	}{
		{"linear", []float64{1000, 900, 800, 700, 600, 500}, Linear, 0},
		{"none", []float64{1000, 1010, 995, 1002, 990, 1001}, None, 0},
		{"none within noise", []float64{1000, 1060, 950, 1040, 930, 1020}, None, 0},
		{"threshold", []float64{1000, 1005, 995, 700, 450, 200}, Threshold, 2e-3},
		{"sub-linear", []float64{1000, 600, 560, 540, 530, 525}, SubLinear, 0},
	}
	for _, c := range cases {
		a := analyze(c.means)
		if a.Classification != c.want {
			t.Errorf("%s: classified %s (fit %+v, drop %.3f)", c.name, a.Classification, a.Fit, a.Drop)
		}
		if c.want == Threshold && (a.Breakpoint == nil || *a.Breakpoint != c.brk) {
			t.Errorf("%s: breakpoint %v, want %v", c.name, a.Breakpoint, c.brk)
		}
		if a.Advice == "" {
			t.Errorf("%s: no advice", c.name)
		}
	}
	a := analyze(cases[0].means)
	if math.Abs(a.AtZero-1000) > 1e-6 || math.Abs(a.AtNegative-1100) > 1e-6 || !a.Extrapolated || a.NegativeDelay != -1e-3 {
		t.Errorf("extrapolation %+v", a)
	}
}

// binary builds inferprobe once for the tests that start it as the server under test.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "inferprobe")
	cmd := exec.Command("go", "build", "-o", bin, "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// experiment is a configuration that starts the simulator per level with the given slack: one
// repeat of 0.3 s warmup and 1.5 s measured per level.
func experiment(t *testing.T, bin string, slack time.Duration, argvPrefix string, extra ...string) *config.Config {
	t.Helper()
	return experimentShaped(t, bin, slack, argvPrefix, 1, 300*time.Millisecond, 1500*time.Millisecond, extra...)
}

// experimentShaped is experiment with the given repeats and windows.
func experimentShaped(t *testing.T, bin string, slack time.Duration, argvPrefix string, repeats int, warmup, measure time.Duration, extra ...string) *config.Config {
	t.Helper()
	port := freePort(t)
	sim := fmt.Sprintf("%s simulate --listen-address=127.0.0.1:%d --ttft-base=10ms --ttft-per-prompt-token=0s --itl=2ms --itl-jitter=0 --max-num-seqs=64 --speed-bump.slack=%s --log.level=warn",
		bin, port, slack)
	argv := fmt.Sprintf("[%s]", strings.Join(strings.Fields(sim), ", "))
	if argvPrefix != "" {
		argv = fmt.Sprintf("[sh, -c, '%s exec %s']", argvPrefix, sim)
	}
	y := fmt.Sprintf(`
targets: [{name: sim, url: "http://127.0.0.1:%d", model: inferprobe-sim, request: {input_tokens: 4, max_tokens: 16, ignore_eos: true}}]
experiment:
  levels: [0, 500us, 1ms, 1500us, 2ms]
  repeats: %d
  warmup: %s
  measure: %s
  load: {concurrency: 8}
  command:
    argv: %s
    env: {SPEED_BUMP_DELAY_NS: "{{.DelayNS}}", SPEED_BUMP_TARGETS: "{{.TargetsFile}}"}
    ready_url: http://127.0.0.1:%d/health
    ready_timeout: 20s
    stop_timeout: 2s
%s`, port, repeats, warmup, measure, argv, port, strings.Join(extra, "\n"))
	c, err := engine.Parse([]byte(y))
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	return c
}

// TestClassifiesSimulatorConfigurations: a host-bound simulator is linear with the slope the
// timing model predicts (within 10%), a device-bound one none, one with a 1 ms slack a
// threshold at 1 ms (within one level); a level whose server fails to start is reported and
// the others are measured.
func TestClassifiesSimulatorConfigurations(t *testing.T) {
	bin := binary(t)
	ctx := context.Background()

	// Two subsystems: a target file naming one hot call site and one naming three.
	dir := t.TempDir()
	one, three := filepath.Join(dir, "one.txt"), filepath.Join(dir, "three.txt")
	_ = os.WriteFile(one, []byte("vllm.model_executor:*\n"), 0o600)
	_ = os.WriteFile(three, []byte("# the scheduler and the sampler too\nvllm.model_executor:*\nvllm.core.scheduler:*\nvllm.sampling:*\n"), 0o600)
	hostCfg := experiment(t, bin, 0, "", "  subsystems:", "    delay: 500us", "    files: ["+one+", "+three+"]")
	began := time.Now()
	host, err := Run(ctx, hostCfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkOverhead(t, "host-bound", host, hostCfg.Experiment, time.Since(began))
	if s := host.Subsystems; len(s) != 2 || s[0].File != three || s[0].Rank != 1 || s[1].File != one || !(s[0].Drop > s[1].Drop+0.1) || s[1].Drop < 0.05 {
		t.Errorf("subsystems %+v, want three.txt first with the larger drop", s)
	}
	if host.Analysis.Classification != Linear {
		t.Errorf("host-bound: classified %s: %+v", host.Analysis.Classification, host.Analysis)
	}
	// The model: 8 requests in flight, each 16 tokens taking T0 + 15·d, so throughput is
	// 8·16/(T0 + 15·d) with T0 the measured request time without delay.
	t0 := host.Levels[0].Repeats[0].E2EMean
	var model []Point
	for _, l := range host.Levels {
		d := float64(l.DelayNS) / 1e9
		model = append(model, Point{d, 8 * 16 / (t0 + 15*d)})
	}
	want := FitLine(model).Slope
	got := host.Analysis.Fit.Slope
	t.Logf("host-bound slope %.4g tok/s per s of delay, model %.4g (T0 %.1f ms)", got, want, t0*1000)
	if math.Abs(got-want)/math.Abs(want) > 0.10 {
		t.Errorf("host-bound slope %.4g, want the model's %.4g ± 10%%", got, want)
	}

	devCfg := experiment(t, bin, time.Second, `if [ "$SPEED_BUMP_DELAY_NS" = 500000 ]; then exit 3; fi;`)
	began = time.Now()
	dev, err := Run(ctx, devCfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkOverhead(t, "device-bound", dev, devCfg.Experiment, time.Since(began))
	if dev.Analysis.Classification != None {
		t.Errorf("device-bound: classified %s: %+v", dev.Analysis.Classification, dev.Analysis)
	}
	if l := dev.Levels[1]; l.Error == "" || !strings.Contains(l.Error, "exited before") || len(l.Repeats) != 0 {
		t.Errorf("level 1 (server exits): %+v", l)
	}
	for _, i := range []int{0, 2, 3, 4} {
		if len(dev.Levels[i].Repeats) != 1 {
			t.Errorf("level %d was not measured after level 1 failed: %+v", i, dev.Levels[i])
		}
	}

	slackCfg := experiment(t, bin, time.Millisecond, "")
	began = time.Now()
	slack, err := Run(ctx, slackCfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkOverhead(t, "slack", slack, slackCfg.Experiment, time.Since(began))
	a := slack.Analysis
	if a.Classification != Threshold || a.Breakpoint == nil || math.Abs(*a.Breakpoint-1e-3) > 0.5e-3+1e-9 {
		t.Errorf("slack 1 ms: classified %s, breakpoint %v: %+v", a.Classification, a.Breakpoint, a)
	}
	for _, r := range []*Report{host, dev, slack} {
		t.Logf("drop %.1f%% %s", 100*r.Analysis.Drop, r.Analysis.Classification)
	}
	dir = t.TempDir()
	files, err := host.WritePlot(dir)
	if err != nil || len(files) != 2 {
		t.Fatalf("plot: %v %v", files, err)
	}
	var sb strings.Builder
	if err := host.WriteSummary(&sb); err != nil || !strings.Contains(sb.String(), "classification: linear") || !strings.Contains(sb.String(), "critical path") {
		t.Errorf("summary:\n%s", sb.String())
	}
	o := host.Overhead
	if want := fmt.Sprintf("experiment overhead: %.2fs of %.2fs wall outside %.2fs of warmup and measured windows", o.TotalSeconds, o.WallSeconds, o.WindowsSeconds); !strings.Contains(sb.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, sb.String())
	}
}

// Per server started (start, ready, stop) and per repeat (engine setup and drain), the
// experiment's own time may take at most this much: loose for a loaded two-core machine, tight
// enough to catch a stop that waits out stop_timeout (2 s) each time, a ready wait seconds
// late, or an engine that drains for seconds after each window.
const (
	overheadPerServer = time.Second
	overheadPerRepeat = 250 * time.Millisecond
)

// checkOverhead holds rep's overhead to its definition: the windows are what ran, the total is
// all of the wall time the caller saw outside them (so no part goes uncounted), the parts fit
// in the total, and the total stays within overheadPerServer and overheadPerRepeat.
func checkOverhead(t *testing.T, name string, rep *Report, exp *config.Experiment, wall time.Duration) {
	t.Helper()
	o := rep.Overhead
	servers, repeats := len(rep.Levels)+len(rep.Subsystems), 0
	if len(exp.Levels) > 0 && exp.Levels[0] != 0 && len(rep.Subsystems) > 0 {
		servers++ // the subsystem baseline
	}
	for _, l := range rep.Levels {
		repeats += len(l.Repeats)
	}
	for _, s := range rep.Subsystems {
		repeats += s.OutputTokensPerSecond.N
	}
	windows := float64(repeats) * (exp.Warmup + exp.Measure).Seconds()
	bound := (time.Duration(servers)*overheadPerServer + time.Duration(repeats)*overheadPerRepeat).Seconds()
	t.Logf("%s: %d servers, %d repeats, wall %.2fs (caller %.2fs), windows %.2fs, overhead %.2fs (start %.2fs, stop %.2fs, repeats %.2fs), bound %.2fs",
		name, servers, repeats, o.WallSeconds, wall.Seconds(), o.WindowsSeconds, o.TotalSeconds, o.StartSeconds, o.StopSeconds, o.RepeatSeconds, bound)
	switch {
	case math.Abs(o.WindowsSeconds-windows) > 1e-6:
		t.Errorf("%s: windows %.3fs, want %d repeats × %s = %.3fs", name, o.WindowsSeconds, repeats, exp.Warmup+exp.Measure, windows)
	case math.Abs(o.WallSeconds-rep.FinishedAt.Sub(rep.StartedAt).Seconds()) > 1e-6 || math.Abs(o.TotalSeconds-(o.WallSeconds-o.WindowsSeconds)) > 1e-6:
		t.Errorf("%s: total %.3fs is not wall %.3fs − windows %.3fs", name, o.TotalSeconds, o.WallSeconds, o.WindowsSeconds)
	case o.WallSeconds > wall.Seconds() || wall.Seconds()-windows > o.TotalSeconds+0.1:
		t.Errorf("%s: the caller saw %.3fs, %.3fs outside the windows; the report accounts for %.3fs of overhead", name, wall.Seconds(), wall.Seconds()-windows, o.TotalSeconds)
	case o.StartSeconds <= 0 || o.StopSeconds <= 0 || o.RepeatSeconds <= 0:
		t.Errorf("%s: an overhead part is not positive: %+v", name, o)
	case o.StartSeconds+o.StopSeconds+o.RepeatSeconds > o.TotalSeconds+1e-6:
		t.Errorf("%s: the parts (%.3fs) exceed the total %.3fs", name, o.StartSeconds+o.StopSeconds+o.RepeatSeconds, o.TotalSeconds)
	case o.TotalSeconds > bound:
		t.Errorf("%s: overhead %.2fs exceeds %.2fs (%d servers × %s + %d repeats × %s)", name, o.TotalSeconds, bound, servers, overheadPerServer, repeats, overheadPerRepeat)
	}
}

// TestFiveByThreeFitsBudget: the 5-level × 3-repeat experiment of the issue (short windows)
// takes its 15 windows plus the reported overhead, and the overhead stays within the per-server
// and per-repeat bound; every level gets its 3 repeats, with a spread.
func TestFiveByThreeFitsBudget(t *testing.T) {
	bin := binary(t)
	cfg := experimentShaped(t, bin, 0, "", 3, 100*time.Millisecond, 300*time.Millisecond)
	began := time.Now()
	rep, err := Run(context.Background(), cfg, Options{})
	wall := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	checkOverhead(t, "5×3", rep, cfg.Experiment, wall)
	budget := 15*(cfg.Experiment.Warmup+cfg.Experiment.Measure) + 5*overheadPerServer + 15*overheadPerRepeat
	if wall > budget {
		t.Errorf("5×3 took %v, over its budget %v", wall, budget)
	}
	for _, l := range rep.Levels {
		if s := l.OutputTokensPerSecond; l.Error != "" || s.N != 3 || len(l.Repeats) != 3 || !(s.Stddev > 0) || !(s.CI95[0] < s.Mean && s.Mean < s.CI95[1]) {
			t.Errorf("level %d: %+v", l.Index, l)
		}
	}
}

// TestStopKillsWhatIgnoresSIGTERM: a server that ignores SIGTERM is killed after stop_timeout,
// its whole process group with it.
func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	ready := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer ready.Close()
	pidFile := filepath.Join(t.TempDir(), "pid")
	c := &config.ExperimentCommand{
		Argv:     []string{"sh", "-c", `trap "" TERM; echo $$ > ` + pidFile + `; (trap "" TERM; sleep 60) & while true; do sleep 0.05; done`},
		ReadyURL: ready.URL, ReadyTimeout: 5 * time.Second, StopTimeout: 300 * time.Millisecond,
	}
	stop, err := startServer(context.Background(), c, config.LevelVars{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	for range 50 {
		if b, err := os.ReadFile(pidFile); err == nil && len(b) > 1 {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pid == 0 {
		t.Fatal("the server never wrote its pid")
	}
	start := time.Now()
	stop()
	if took := time.Since(start); took < 250*time.Millisecond || took > 5*time.Second {
		t.Errorf("stop took %v, want about the 300 ms stop_timeout", took)
	}
	// Killed children may linger as zombies until init reaps them: count only live ones.
	time.Sleep(50 * time.Millisecond)
	if live := liveInGroup(t, pid); len(live) > 0 {
		t.Errorf("process group %d still has live processes after stop: %v", pid, live)
	}
	if err := syscall.Kill(-pid, 0); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(-%d, 0): %v", pid, err)
	}
}

// liveInGroup lists the processes of group pgid that are not zombies, from /proc.
func liveInGroup(t *testing.T, pgid int) []string {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var live []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp …; comm may hold spaces, so split after the last ')'.
		s := string(b)
		rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(rest) < 3 {
			continue
		}
		if g, _ := strconv.Atoi(rest[2]); g == pgid && rest[0] != "Z" {
			live = append(live, strings.TrimSpace(s[:strings.LastIndexByte(s, ')')+1]))
		}
	}
	return live
}

// TestReadyTimeoutIsReported: a server that never gets ready is reported, and stopped with
// its whole process group.
func TestReadyTimeoutIsReported(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	c := &config.ExperimentCommand{Argv: []string{"sh", "-c", "echo $$ > " + pidFile + "; sleep 30 & exec sleep 30"},
		ReadyURL: "http://127.0.0.1:1/health", ReadyTimeout: 300 * time.Millisecond, StopTimeout: time.Second}
	_, err := startServer(context.Background(), c, config.LevelVars{}, nil)
	if err == nil || !strings.Contains(err.Error(), "not ready within 300ms") {
		t.Errorf("err %v", err)
	}
	pid := readPID(t, pidFile)
	time.Sleep(50 * time.Millisecond)
	if live := liveInGroup(t, pid); len(live) > 0 {
		t.Errorf("process group %d still has live processes after the ready timeout: %v", pid, live)
	}
}

// TestHookSetsTheDelay: with a hook instead of a command, each level is one rendered HTTP
// request to a running server, and the levels are measured against it.
func TestHookSetsTheDelay(t *testing.T) {
	bin := binary(t)
	port := freePort(t)
	sim := exec.Command(bin, "simulate", fmt.Sprintf("--listen-address=127.0.0.1:%d", port), "--ttft-base=5ms",
		"--itl=1ms", "--itl-jitter=0", "--log.level=warn")
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sim.Process.Kill(); _ = sim.Wait() }()
	var (
		mu     sync.Mutex
		bodies []string
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := new(strings.Builder)
		_, _ = io.Copy(b, r.Body)
		mu.Lock()
		bodies = append(bodies, r.Method+" "+r.URL.RawQuery+" "+b.String())
		mu.Unlock()
	}))
	defer hook.Close()
	for range 50 {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port)); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := engine.Parse([]byte(fmt.Sprintf(`
targets: [{name: sim, url: "http://127.0.0.1:%d", model: inferprobe-sim, request: {input_tokens: 4, max_tokens: 8, ignore_eos: true}}]
experiment:
  levels: [0, 1ms]
  repeats: 2
  warmup: 100ms
  measure: 500ms
  load: {concurrency: 2}
  hook: {url: "%s/delay?level={{.Level}}", method: PUT, body: '{"delay_ns": {{.DelayNS}}} {{.Repeats}} {{.WarmupMS}} {{.MeasureMS}} {{.WindowsMS}}'}
`, port, hook.URL)))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`PUT level=0 {"delay_ns": 0} 2 100 500 1200`, `PUT level=1 {"delay_ns": 1000000} 2 100 500 1200`}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(bodies, "|") != strings.Join(want, "|") {
		t.Errorf("hook requests %q, want %q", bodies, want)
	}
	// Two repeats each: the level's statistics are over both, with their spread.
	for _, l := range rep.Levels {
		s := l.OutputTokensPerSecond
		if l.Error != "" || len(l.Repeats) != 2 || l.Repeats[0].Requests == 0 || l.Repeats[1].Requests == 0 ||
			s.N != 2 || !(s.Stddev > 0) || math.Abs(s.Mean-(l.Repeats[0].OutputTokensPerSecond+l.Repeats[1].OutputTokensPerSecond)/2) > 1e-9 {
			t.Errorf("level %d: %+v", l.Index, l)
		}
	}
	if o := rep.Overhead; o.WindowsSeconds != 4*0.6 || o.StartSeconds <= 0 || o.RepeatSeconds <= 0 {
		t.Errorf("hook overhead %+v, want 4 × 0.6 s of windows and the hook calls and repeats counted", o)
	}
}

// TestCancelStopsTheServer: cancelling the experiment while it measures stops the level's
// server, its whole process group, and Run returns the cancellation.
func TestCancelStopsTheServer(t *testing.T) {
	_, url := simtest.Start(t, 3, func(c *simulator.Config) { c.TTFTBase, c.ITL = 2*time.Millisecond, time.Millisecond })
	ready := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer ready.Close()
	pidFile := filepath.Join(t.TempDir(), "pid")
	c, err := engine.Parse([]byte(fmt.Sprintf(`
targets: [{name: sim, url: %q, model: inferprobe-sim, request: {input_tokens: 4, max_tokens: 4, ignore_eos: true}}]
experiment:
  levels: [0, 1ms]
  measure: 30s
  load: {concurrency: 2}
  command:
    argv: [sh, -c, 'echo $$ > %s; trap "" TERM; (trap "" TERM; sleep 60) & while true; do sleep 0.05; done']
    ready_url: %s
    stop_timeout: 300ms
`, url, pidFile, ready.URL)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := Run(ctx, c, Options{}); done <- err }()
	pid := readPID(t, pidFile)
	time.Sleep(200 * time.Millisecond) // into the measured window
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want the cancellation", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the cancellation")
	}
	time.Sleep(50 * time.Millisecond)
	if live := liveInGroup(t, pid); len(live) > 0 {
		t.Errorf("process group %d still has live processes after the cancellation: %v", pid, live)
	}
}

// readPID waits for a server to write its pid to path.
func readPID(t *testing.T, path string) int {
	t.Helper()
	for range 250 {
		if b, err := os.ReadFile(path); err == nil && len(b) > 1 {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the server never wrote its pid")
	return 0
}

// TestWritePlot: the plot of a synthetic linear experiment is a PNG that decodes and an SVG
// with both parts of the fit, and its y axis runs from 0 to above the extrapolated throughput.
func TestWritePlot(t *testing.T) {
	rep := &Report{}
	var delays, means []float64
	var pts []Point
	for i, d := range []float64{0, 1e-3, 2e-3} {
		y := 3000 - 1e6*d
		rep.Levels = append(rep.Levels, Level{Index: i, DelayNS: int64(d * 1e9), Repeats: []Measurement{{OutputTokensPerSecond: y}}})
		delays, means, pts = append(delays, d), append(means, y), append(pts, Point{d, y})
	}
	rep.Analysis = Analyze(delays, means, pts)
	var xy plotter.XYs
	for _, p := range pts {
		xy = append(xy, plotter.XY{X: p.X, Y: p.Y})
	}
	if lo, hi := yRange(xy, rep.Analysis.Fit, rep.Analysis.NegativeDelay, 2e-3); lo != 0 || hi < rep.Analysis.AtNegative || rep.Analysis.AtNegative != 4000 {
		t.Errorf("y range %v to %v, want 0 to above the extrapolated %v", lo, hi, rep.Analysis.AtNegative)
	}
	dir := t.TempDir()
	files, err := rep.WritePlot(dir)
	if err != nil || len(files) != 2 {
		t.Fatalf("plot: %v %v", files, err)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if img, err := png.Decode(f); err != nil || img.Bounds().Dx() < 100 {
		t.Errorf("%s: %v", files[0], err)
	}
	svg, err := os.ReadFile(files[1])
	if err != nil || !strings.Contains(string(svg), "<svg") || !strings.Contains(string(svg), "fit extrapolated") || !strings.Contains(string(svg), "stroke-dasharray") {
		t.Errorf("%s (%v) lacks the svg element, the extrapolated fit's legend or its dashes", files[1], err)
	}
}

// TestSumPassAddsTargets: a repeat's figures are the sum over targets of their measured (last)
// stage, the warmup stage left out, and the mean end-to-end latency is weighted by requests.
func TestSumPassAddsTargets(t *testing.T) {
	stage := func(tok, rps float64, ok, failed int64, e2e float64) bench.Stage {
		d := bench.NewDist() // of the successful requests, as the report keeps it
		d.AddN(e2e, int(ok))
		return bench.Stage{Figures: bench.Figures{Throughput: bench.Throughput{OutputTokensPerSec: tok, SuccessfulPerSecond: rps},
			Requests: map[string]int64{"success": ok, "timeout": failed}, E2E: d}}
	}
	warm := stage(1e6, 1e6, 1000, 1000, 100)
	p := bench.Pass{Targets: []bench.Target{
		{Name: "a", Stages: []bench.Stage{warm, stage(300, 20, 10, 2, 0.5)}},
		{Name: "b", Stages: []bench.Stage{warm, stage(100, 5, 3, 1, 1.3)}},
	}}
	m, err := sumPass(p)
	want := Measurement{OutputTokensPerSecond: 400, RequestsPerSecond: 25, Requests: 16, Failed: 3, E2EMean: (10*0.5 + 3*1.3) / 13}
	if err != nil || m.OutputTokensPerSecond != want.OutputTokensPerSecond || m.RequestsPerSecond != want.RequestsPerSecond ||
		m.Requests != want.Requests || m.Failed != want.Failed || math.Abs(m.E2EMean-want.E2EMean)/want.E2EMean > 0.02 {
		t.Errorf("sum %+v (%v), want %+v", m, err, want)
	}
	p.Targets = []bench.Target{{Stages: []bench.Stage{stage(0, 0, 0, 5, 1)}}}
	if _, err := sumPass(p); err == nil || !strings.Contains(err.Error(), "none of 5 requests succeeded") {
		t.Errorf("all failed: %v", err)
	}
}
