package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/exporter-toolkit/web"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/inferprobe/inferprobe/collector/accelerator"
	"github.com/inferprobe/inferprobe/internal/metricdocs"
	"github.com/inferprobe/inferprobe/internal/simtest"
	"github.com/inferprobe/inferprobe/internal/testkit"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/simulator"
)

// recorder keeps what the tests need of every finished record.
type recorder struct {
	mu         sync.Mutex
	finished   map[string][]recorded // by target
	dropped    map[string]int
	coldStarts map[string]int
}

type recorded struct {
	warmup         bool
	result         string
	ttft           time.Duration
	hasTTFT        bool
	gaps           []time.Duration
	n              int
	nSource        string
	scheduleDelay  time.Duration
	promptTokens   int
	promptSource   string
	intendedOffset time.Time
	err            string
	end            time.Duration
}

func newRecorder() *recorder {
	return &recorder{finished: map[string][]recorded{}, dropped: map[string]int{}, coldStarts: map[string]int{}}
}

// Observe implements prober.Observer; the daemon hands it events through a queue.
func (r *recorder) Observe(ev prober.Event) {
	switch ev.Kind {
	case prober.EventRequestDropped:
		r.mu.Lock()
		r.dropped[ev.Target.Name]++
		r.mu.Unlock()
	case prober.EventColdStart:
		r.mu.Lock()
		r.coldStarts[ev.Target.Name]++
		r.mu.Unlock()
	case prober.EventRequestFinished:
		rec := ev.Record
		ttft, ok := rec.TTFT()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.finished[rec.Target.Name] = append(r.finished[rec.Target.Name], recorded{
			warmup: rec.Warmup, result: rec.Result, ttft: ttft, hasTTFT: ok, gaps: slices.Clone(rec.Gaps),
			n: rec.OutputTokens, nSource: rec.OutputSource, scheduleDelay: rec.ScheduleDelay(),
			promptTokens: rec.PromptTokens, promptSource: rec.PromptSource, intendedOffset: rec.Intended,
			end: rec.End, err: fmt.Sprint(rec.Err),
		})
	}
}

func (r *recorder) records(target string) []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.finished[target])
}

// count returns how many records of target match keep.
func (r *recorder) count(target string, keep func(recorded) bool) int {
	n := 0
	for _, rec := range r.records(target) {
		if keep(rec) {
			n++
		}
	}
	return n
}

// testDaemon is a daemon running in-process on a loopback port.
type testDaemon struct {
	base   string
	logs   *testkit.LockedBuffer
	rec    *recorder
	cancel context.CancelFunc
	done   chan error
}

// startDaemon runs the daemon with configFile ("" = embedded simulator) until the test ends.
func startDaemon(t *testing.T, configFile string) *testDaemon {
	t.Helper()
	return startDaemonWeb(t, configFile, "")
}

// startDaemonWeb is startDaemon with an exporter-toolkit web config file.
func startDaemonWeb(t *testing.T, configFile, webConfig string) *testDaemon {
	t.Helper()
	return startDaemonOpts(t, configFile, webConfig, false)
}

// startDaemonOpts is startDaemonWeb with the lifecycle API (POST /-/reload) off when
// disableLifecycle is set.
func startDaemonOpts(t *testing.T, configFile, webConfig string, disableLifecycle bool) *testDaemon {
	t.Helper()
	return startDaemonWith(t, configFile, webConfig, disableLifecycle, nil)
}

// startDaemonWith is startDaemonOpts with more options set by mutate (nil for none).
func startDaemonWith(t *testing.T, configFile, webConfig string, disableLifecycle bool, mutate func(*daemonOptions)) *testDaemon {
	t.Helper()
	logs := &testkit.LockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	addrs := make(chan []net.Addr, 1)
	listen, systemd := []string{"127.0.0.1:0"}, false
	rec := newRecorder()
	acc := accelerator.DefaultOptions() // on, as by default: no GPU here, so it must report down
	opts := daemonOptions{
		accelerator:   &acc,
		configFile:    configFile,
		telemetryPath: "/metrics",
		web:           &web.FlagConfig{WebListenAddresses: &listen, WebSystemdSocket: &systemd, WebConfigFile: &webConfig},
		onListen:      func(a []net.Addr) { addrs <- a },
		observer:      rec,
		// The tests reload over HTTP; TestReloadNeedsLifecycleFlag covers the default.
		enableLifecycle: !disableLifecycle,
	}
	if mutate != nil {
		mutate(&opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &testDaemon{logs: logs, rec: rec, cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- runDaemon(ctx, opts, logger) }()
	select {
	case a := <-addrs:
		d.base = "http://" + a[0].String()
	case err := <-d.done:
		cancel()
		t.Fatalf("daemon exited at start: %v\nlogs:\n%s", err, logs)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("daemon did not start listening")
	}
	t.Cleanup(func() { d.stop(t) })
	return d
}

func (d *testDaemon) stop(t *testing.T) {
	t.Helper()
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.cancel = nil
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("daemon returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop")
	}
}

var testClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := testClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// scrape parses the daemon's /metrics.
func (d *testDaemon) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	body := get(t, d.base+"/metrics")
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, timeout, 50*time.Millisecond, what, cond)
}

// startSim serves a simulator on a loopback port until the test ends.
func startSim(t *testing.T, mutate func(*simulator.Config)) (*simulator.Server, string) {
	t.Helper()
	return simtest.Start(t, 7, mutate)
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "inferprobe.yml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestTimingMatchesSimulatorGroundTruth is the core promise: what the daemon measures is what
// the server did, within 2 ms on loopback.
func TestTimingMatchesSimulatorGroundTruth(t *testing.T) {
	sim, url := startSim(t, func(c *simulator.Config) {
		c.TTFTBase = 40 * time.Millisecond
		c.TTFTPerPromptToken = 100 * time.Microsecond
		c.ITL = 8 * time.Millisecond
		c.ITLJitter = 0.25
	})
	cfg := writeConfig(t, t.TempDir(), fmt.Sprintf(`
targets:
  - name: sim
    url: %s
    model: inferprobe-sim
    traffic: {pacer: poisson, rate: 15, seed: 42}
    request: {input_tokens: 200, max_tokens: 12, ignore_eos: true}
    warmup: {requests: 5, min_duration: 0s, max_duration: 1m}
    slo: {ttft: 5s}
`, url))
	d := startDaemon(t, cfg)
	measured := func(r recorded) bool { return !r.warmup && r.result == prober.ResultSuccess }
	waitFor(t, 30*time.Second, "60 measured requests", func() bool { return d.rec.count("sim", measured) >= 60 })

	// /metrics holds the same requests: read the recorder, scrape, read again.
	before := d.rec.count("sim", measured)
	mfs := d.scrape(t)
	after := d.rec.count("sim", measured)
	d.stop(t)

	labels := map[string]string{"target": "sim", "model": "inferprobe-sim", "adapter": ""}
	if n, _ := testkit.Value(mfs, "inferprobe_time_to_first_token_seconds", labels); n < float64(before) || n > float64(after) {
		t.Errorf("TTFT histogram count %v outside [%d, %d] measured successes", n, before, after)
	}
	if w, _ := testkit.Value(mfs, "inferprobe_warmup_requests_total", map[string]string{"target": "sim", "result": "success"}); w != 5 {
		t.Errorf("warmup requests = %v, want 5", w)
	}
	if g, _ := testkit.Value(mfs, "inferprobe_goodput_requests_total", labels); g < float64(before) {
		t.Errorf("goodput %v < %d successes, all of which met a 5s TTFT SLO", g, before)
	}
	if c, ok := testkit.Value(mfs, "inferprobe_cold_start_time_to_first_token_seconds", nil); !ok || c <= 0.040 {
		t.Errorf("cold start TTFT %v (present %v), want above the 40ms base", c, ok)
	}

	recs := d.rec.records("sim")
	var ttfts, gaps []time.Duration
	for i, r := range recs {
		if r.result == prober.ResultCanceled && i >= after {
			continue // in flight when the daemon stopped
		}
		if r.result != prober.ResultSuccess {
			t.Fatalf("request %d: %s", i, r.result)
		}
		if r.warmup != (i < 5) {
			t.Errorf("request %d warmup=%v; the first 5 and only they are warmup", i, r.warmup)
		}
		if r.n != 12 || r.nSource != prober.SourceUsage {
			t.Errorf("request %d: N=%d from %s, want 12 from usage", i, r.n, r.nSource)
		}
		if r.promptTokens != 200 || r.promptSource != prober.SourceUsage {
			t.Errorf("request %d: prompt %d from %s, want 200 from usage", i, r.promptTokens, r.promptSource)
		}
		ttfts = append(ttfts, r.ttft)
		gaps = append(gaps, r.gaps...)
	}
	truth := sim.Stats()
	simTTFT, simITL := simulator.Median(truth.TTFTs()), simulator.Median(truth.Gaps())
	clientTTFT, clientITL := median(ttfts), median(gaps)
	t.Logf("TTFT median client %v server %v; ITL median client %v server %v (%d requests, %d gaps)",
		clientTTFT, simTTFT, clientITL, simITL, len(ttfts), len(gaps))
	if len(truth.TTFTs()) != len(ttfts) {
		t.Errorf("server saw %d successful streams, client %d", len(truth.TTFTs()), len(ttfts))
	}
	if diff := absDur(clientTTFT - simTTFT); diff > 2*time.Millisecond {
		t.Errorf("TTFT median differs by %v (client %v, server %v), want ≤ 2ms", diff, clientTTFT, simTTFT)
	}
	if diff := absDur(clientITL - simITL); diff > 2*time.Millisecond {
		t.Errorf("ITL median differs by %v (client %v, server %v), want ≤ 2ms", diff, clientITL, simITL)
	}
	// Sanity against the configured model: 40ms + 200×0.1ms = 60ms prefill.
	if clientTTFT < 60*time.Millisecond || clientTTFT > 120*time.Millisecond {
		t.Errorf("TTFT median %v, want about 60ms", clientTTFT)
	}
}

// TestFaultsAreClassedAndRateKept runs one target per fault and checks its result class, and
// that a failing server does not slow the pacer.
func TestFaultsAreClassedAndRateKept(t *testing.T) {
	faults := []struct {
		name   string
		mutate func(*simulator.Config)
		result string
	}{
		{"e500", func(c *simulator.Config) { c.Error500Rate = 1 }, prober.ResultHTTP5xx},
		{"e429", func(c *simulator.Config) { c.Error429Rate = 1 }, prober.ResultHTTP429},
		{"truncate", func(c *simulator.Config) { c.TruncateRate = 1 }, prober.ResultStreamTruncated},
		{"malformed", func(c *simulator.Config) { c.MalformedRate = 1 }, prober.ResultProtocol},
		{"stall", func(c *simulator.Config) { c.StallRate = 1; c.StallDuration = 5 * time.Second }, prober.ResultTimeout},
	}
	var sb strings.Builder
	sb.WriteString("targets:\n")
	for _, f := range faults {
		_, url := startSim(t, func(c *simulator.Config) { c.ITL = 2 * time.Millisecond; f.mutate(c) })
		fmt.Fprintf(&sb, `  - name: %s
    url: %s
    model: inferprobe-sim
    idle_timeout: 1s
    traffic: {rate: 10, max_in_flight: 64}
    request: {input_tokens: 16, max_tokens: 8, ignore_eos: true}
    warmup: {requests: 0, min_duration: 0s}
`, f.name, url)
	}
	d := startDaemon(t, writeConfig(t, t.TempDir(), sb.String()))
	start := time.Now()
	waitFor(t, 30*time.Second, "every fault class", func() bool {
		for _, f := range faults {
			if d.rec.count(f.name, func(r recorded) bool { return r.result == f.result }) < 5 {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second) // let the stall target build up in-flight requests
	elapsed := time.Since(start).Seconds()
	mfs := d.scrape(t)
	for _, f := range faults {
		recs := d.rec.records(f.name)
		for _, r := range recs {
			if r.result != f.result {
				t.Errorf("%s: a request finished %s (%s after %v), want %s", f.name, r.result, r.err, r.end, f.result)
				break
			}
		}
		got, _ := testkit.Value(mfs, "inferprobe_requests_total", map[string]string{"target": f.name, "result": f.result})
		if got < 5 {
			t.Errorf("%s: inferprobe_requests_total{result=%q} = %v", f.name, f.result, got)
		}
		// Open loop: released = finished + in flight + dropped ≈ rate × elapsed, however the
		// server fails. Allow for the time before the first scrape and the last poll.
		inflight, _ := testkit.Value(mfs, "inferprobe_in_flight_requests", map[string]string{"target": f.name})
		dropped, _ := testkit.Value(mfs, "inferprobe_requests_dropped_total", map[string]string{"target": f.name})
		finished := 0.0
		for _, res := range prober.Results {
			v, _ := testkit.Value(mfs, "inferprobe_requests_total", map[string]string{"target": f.name, "result": res})
			finished += v
		}
		released := finished + inflight + dropped
		if want := 10 * elapsed; released < 0.85*want || released > 1.15*want+2 {
			t.Errorf("%s: %v requests released in %.1fs, want about %.0f at 10 req/s", f.name, released, elapsed, want)
		}
	}
}

func TestReloadKeepsRunningConfigOnError(t *testing.T) {
	_, url := startSim(t, func(c *simulator.Config) { c.ITL = time.Millisecond })
	dir := t.TempDir()
	good := fmt.Sprintf(`
targets:
  - name: a
    url: %s
    model: inferprobe-sim
    traffic: {rate: 20}
    request: {input_tokens: 8, max_tokens: 4}
    warmup: {requests: 2, min_duration: 0s}
`, url)
	path := writeConfig(t, dir, good)
	d := startDaemon(t, path)
	waitFor(t, 20*time.Second, "warmup to finish", func() bool {
		v, _ := testkit.Value(d.scrape(t), "inferprobe_warmup_complete", map[string]string{"target": "a"})
		return v == 1
	})

	// A broken config: the reload fails, the old config keeps running.
	writeConfig(t, dir, good+"    bogus_key: 1\n")
	resp, err := testClient.Post(d.base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || strings.Contains(string(body), "bogus_key") {
		t.Errorf("bad reload answered %d %q; want 500 without the config error", resp.StatusCode, body)
	}
	if !strings.Contains(d.logs.String(), "bogus_key") {
		t.Error("the reload error is not in the log")
	}
	mfs := d.scrape(t)
	if v, _ := testkit.Value(mfs, "inferprobe_config_last_reload_successful", nil); v != 0 {
		t.Errorf("reload_successful = %v after a bad reload", v)
	}
	// A config the registries reject (a gamma pacer with burstiness 0): the same.
	writeConfig(t, dir, strings.Replace(good, "traffic: {rate: 20}", "traffic: {pacer: gamma, rate: 20, burstiness: 0}", 1))
	resp, err = testClient.Post(d.base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || strings.Contains(string(body), "burstiness") {
		t.Errorf("bad reload answered %d %q; want 500 without the config error", resp.StatusCode, body)
	}
	if !strings.Contains(d.logs.String(), "targets[0].traffic.burstiness (line 6)") {
		t.Errorf("the registry's error, with field and line, is not in the log:\n%s", d.logs.String())
	}
	if page := get(t, d.base+"/"); !strings.Contains(page, "constant at 20 req/s") || !strings.Contains(page, "(random)") {
		t.Errorf("landing page does not show the running traffic and its seed:\n%s", page)
	}
	n0 := d.rec.count("a", func(recorded) bool { return true })
	waitFor(t, 10*time.Second, "probing to go on", func() bool { return d.rec.count("a", func(recorded) bool { return true }) > n0+5 })

	// A good config adding a target: a keeps its warmup state, b starts.
	writeConfig(t, dir, good+strings.ReplaceAll(strings.SplitN(good, "targets:\n", 2)[1], "name: a", "name: b"))
	resp, err = testClient.Post(d.base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("good reload answered %d", resp.StatusCode)
	}
	mfs = d.scrape(t)
	if v, _ := testkit.Value(mfs, "inferprobe_config_last_reload_successful", nil); v != 1 {
		t.Errorf("reload_successful = %v after a good reload", v)
	}
	if v, _ := testkit.Value(mfs, "inferprobe_warmup_complete", map[string]string{"target": "a"}); v != 1 {
		t.Error("unchanged target a lost its warmup state on reload")
	}
	if w, _ := testkit.Value(mfs, "inferprobe_warmup_requests_total", map[string]string{"target": "a", "result": "success"}); w != 2 {
		t.Errorf("target a warmup requests = %v, want still 2 (not restarted)", w)
	}
	if _, ok := testkit.Value(mfs, "inferprobe_requests_total", map[string]string{"target": "b"}); !ok {
		t.Error("new target b not exposed after reload")
	}
	if page := get(t, d.base+"/"); !strings.Contains(page, "<td>b</td>") || !strings.Contains(page, "<td>a</td>") {
		t.Error("landing page does not list both targets")
	}

	// Removing a target removes its series.
	writeConfig(t, dir, good)
	resp, err = testClient.Post(d.base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, ok := testkit.Value(d.scrape(t), "inferprobe_requests_total", map[string]string{"target": "b"}); ok {
		t.Error("removed target b still exposed")
	}
	// SIGHUP reloads too: a new rate for a replaces the target.
	writeConfig(t, dir, strings.Replace(good, "rate: 20", "rate: 7", 1))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "SIGHUP to apply the new rate", func() bool {
		v, _ := testkit.Value(d.scrape(t), "inferprobe_target_request_rate", map[string]string{"target": "a"})
		return v == 7
	})
	if resp, err := testClient.Get(d.base + "/-/reload"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET /-/reload answered %d, want 405", resp.StatusCode)
		}
	}
}

func TestAPIKeyNeverExposed(t *testing.T) {
	const key = "sk-test-0123456789abcdef-SECRET"
	var sawKey sync.Once
	saw := make(chan struct{})
	_, simURL := startSim(t, nil)
	// A proxy in front of the simulator checks that the key is sent as a bearer token.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer "+key {
			sawKey.Do(func() { close(saw) })
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, simURL+r.URL.Path, r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			_, _ = w.Write(buf[:n])
			w.(http.Flusher).Flush()
			if err != nil {
				return
			}
		}
	}))
	defer proxy.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, fmt.Sprintf(`
targets:
  - name: secret
    url: %s
    model: inferprobe-sim
    api_key_file: key
    traffic: {rate: 10}
    request: {input_tokens: 8, max_tokens: 4}
    warmup: {requests: 1, min_duration: 0s}
`, proxy.URL))
	d := startDaemon(t, cfg)
	select {
	case <-saw:
	case <-time.After(10 * time.Second):
		t.Fatal("the key never reached the server as a bearer token")
	}
	// Make the reload path log too, then look everywhere a key could leak.
	resp, err := testClient.Post(d.base+"/-/reload", "", nil)
	if err == nil {
		resp.Body.Close()
	}
	pages := map[string]string{
		"/metrics": get(t, d.base+"/metrics"),
		"/":        get(t, d.base+"/"),
	}
	d.stop(t)
	pages["logs"] = d.logs.String()
	for where, text := range pages {
		if strings.Contains(text, key) || strings.Contains(text, "0123456789abcdef") {
			t.Errorf("the API key appears in %s", where)
		}
	}
	if !strings.Contains(pages["logs"], "target=secret") {
		t.Error("logs hold nothing about the target; the leak check would prove nothing")
	}
}

// TestDefaultRunProbesEmbeddedSimulator is the quick start: no config, real series at once.
func TestDefaultRunProbesEmbeddedSimulator(t *testing.T) {
	d := startDaemon(t, "")
	var mfs map[string]*dto.MetricFamily
	waitFor(t, 20*time.Second, "TTFT observations from the embedded simulator", func() bool {
		mfs = d.scrape(t)
		n, _ := testkit.Value(mfs, "inferprobe_time_to_first_token_seconds", map[string]string{"target": "simulator"})
		return n >= 1
	})
	for _, name := range []string{"inferprobe_inter_token_latency_seconds", "inferprobe_time_per_output_token_seconds",
		"inferprobe_request_duration_seconds", "inferprobe_schedule_delay_seconds"} {
		if n, _ := testkit.Value(mfs, name, map[string]string{"target": "simulator"}); n < 1 {
			t.Errorf("%s has no observations", name)
		}
	}
	if v, _ := testkit.Value(mfs, "inferprobe_target_request_rate", map[string]string{"target": "simulator"}); v != 1 {
		t.Errorf("target rate %v, want 1 req/s", v)
	}
	if !strings.Contains(d.logs.String(), "warmup gate opened") {
		t.Error("the log does not say the warmup gate opened")
	}
	page := get(t, d.base+"/")
	if !strings.Contains(page, "embedded simulator") || !strings.Contains(page, "measuring") {
		t.Errorf("landing page lacks the target state:\n%s", page)
	}
	if get(t, d.base+"/-/healthy") == "" || get(t, d.base+"/-/ready") == "" {
		t.Error("health endpoints empty")
	}
	// No GPU and no libnvidia-ml on CI: the collector says so and probing went on regardless.
	if up, ok := testkit.Value(mfs, "inferprobe_accelerator_up", nil); !ok {
		t.Error("inferprobe_accelerator_up missing")
	} else if up == 0 {
		if e, _ := testkit.Value(mfs, "inferprobe_accelerator_errors_total", map[string]string{"call": "init"}); e != 1 {
			t.Errorf("accelerator down but init errors = %v, want 1", e)
		}
	}
	checkAgainstDocs(t, mfs)
}

// checkAgainstDocs holds every inferprobe_ family on /metrics to docs/metrics.md.
func checkAgainstDocs(t *testing.T, mfs map[string]*dto.MetricFamily) {
	t.Helper()
	docs, err := metricdocs.ParseFile("docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, problem := range metricdocs.Check(docs, slices.Collect(maps.Values(mfs)), "inferprobe_") {
		t.Error(problem)
	}
}

func TestCheckConfigCommand(t *testing.T) {
	dir := t.TempDir()
	good := writeConfig(t, dir, "targets:\n  - name: a\n    url: http://127.0.0.1:8000\n    model: m\n")
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("targets:\n  - name: a\n    url: http://127.0.0.1:8000\n    model: m\n    traffic:\n      rate: -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"check-config", good}, &out, &errOut); code != 0 {
		t.Fatalf("good config: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "SUCCESS") {
		t.Errorf("no SUCCESS line: %s", out.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"check-config", good, bad}, &out, &errOut); code != 1 {
		t.Fatalf("bad config: exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "targets[0].traffic.rate") || !strings.Contains(errOut.String(), "line 6") {
		t.Errorf("error does not name the field and line:\n%s", errOut.String())
	}
	// A warmup that cannot complete at its rate passes, with a warning naming field and line.
	slow := writeConfig(t, dir, "targets:\n  - name: a\n    url: http://127.0.0.1:8000\n    model: m\n    traffic: {rate: 0.01}\n    warmup:\n      requests: 5\n")
	out.Reset()
	if code := run(context.Background(), []string{"check-config", slow}, &out, &errOut); code != 0 {
		t.Fatalf("slow warmup: exit %d, want 0 (a warning, not an error)", code)
	}
	if !strings.Contains(out.String(), "WARNING: targets[0].warmup.requests (line 7)") {
		t.Errorf("no warning naming warmup.requests and its line:\n%s", out.String())
	}
}

func TestVersionAndHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, &out, &errOut); code != 0 {
		t.Fatalf("--version exit %d", code)
	}
	if !strings.Contains(out.String()+errOut.String(), "inferprobe, version") {
		t.Errorf("--version printed %q %q", out.String(), errOut.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"--nonsense"}, &out, &errOut); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
}

// TestWebConfigBasicAuth: --web.config.file (exporter-toolkit) protects every endpoint.
func TestWebConfigBasicAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	webCfg := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webCfg, []byte("basic_auth_users:\n  prom: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemonWeb(t, "", webCfg)
	for _, tc := range []struct {
		user, pass string
		want       int
	}{
		{"", "", http.StatusUnauthorized},
		{"prom", "wrong", http.StatusUnauthorized},
		{"prom", "s3cret-pass", http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodGet, d.base+"/metrics", nil)
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		resp, err := testClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("user %q: status %d, want %d", tc.user, resp.StatusCode, tc.want)
		}
	}
}

// restartableSim serves a simulator on a fixed loopback address that can be replaced by a new
// instance, like a model server restarting.
type restartableSim struct {
	addr string
	sim  *simulator.Server
	srv  *http.Server
	done chan struct{}
}

func (r *restartableSim) start(t *testing.T) {
	t.Helper()
	cfg := simulator.DefaultConfig()
	cfg.ITL = 2 * time.Millisecond
	sim, err := simulator.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var l net.Listener
	waitFor(t, 10*time.Second, "the port to be free again", func() bool {
		l, err = net.Listen("tcp", addr)
		return err == nil
	})
	r.addr, r.sim = l.Addr().String(), sim
	r.srv = &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 5 * time.Second}
	r.done = make(chan struct{})
	go func() { defer close(r.done); _ = r.srv.Serve(l) }()
}

func (r *restartableSim) stop() {
	r.sim.Close()
	r.srv.Close()
	<-r.done
}

// TestServerRestartRearmsWarmup: the model-server scrape sees the simulator restart (a new
// process start time, counters back to zero), counts it, and re-arms the warmup gate, so the
// requests right after the restart are warmup again and a new cold start is measured.
func TestServerRestartRearmsWarmup(t *testing.T) {
	sim := &restartableSim{}
	sim.start(t)
	defer func() { sim.stop() }()
	cfg := writeConfig(t, t.TempDir(), fmt.Sprintf(`
targets:
  - name: sim
    url: http://%s
    model: inferprobe-sim
    traffic: {rate: 10}
    request: {input_tokens: 16, max_tokens: 8, ignore_eos: true}
    warmup: {requests: 3, min_duration: 0s}
    metrics: {interval: 200ms, timeout: 150ms}
`, sim.addr))
	d := startDaemon(t, cfg)
	labels := map[string]string{"target": "sim"}
	waitFor(t, 20*time.Second, "warmup complete and the server scraped", func() bool {
		mfs := d.scrape(t)
		w, _ := testkit.Value(mfs, "inferprobe_warmup_complete", labels)
		up, _ := testkit.Value(mfs, "inferprobe_server_up", labels)
		gen, _ := testkit.Value(mfs, "inferprobe_server_generation_tokens_total", labels)
		return w == 1 && up == 1 && gen > 0
	})
	mfs := d.scrape(t)
	if r, _ := testkit.Value(mfs, "inferprobe_server_restarts_total", labels); r != 0 {
		t.Fatalf("restarts = %v before any restart", r)
	}
	warmBefore, _ := testkit.Value(mfs, "inferprobe_warmup_requests_total", map[string]string{"target": "sim", "result": "success"})
	coldBefore := d.rec.count("sim", func(r recorded) bool { return r.warmup })

	sim.stop()
	sim.start(t) // same address, new process start time, counters from zero

	waitFor(t, 20*time.Second, "the restart to be detected", func() bool {
		r, _ := testkit.Value(d.scrape(t), "inferprobe_server_restarts_total", labels)
		return r >= 1
	})
	waitFor(t, 20*time.Second, "the gate to open again", func() bool {
		w, _ := testkit.Value(d.scrape(t), "inferprobe_warmup_complete", labels)
		return w == 1
	})
	mfs = d.scrape(t)
	if r, _ := testkit.Value(mfs, "inferprobe_server_restarts_total", labels); r != 1 {
		t.Errorf("restarts = %v, want exactly 1", r)
	}
	warmAfter, _ := testkit.Value(mfs, "inferprobe_warmup_requests_total", map[string]string{"target": "sim", "result": "success"})
	if warmAfter < warmBefore+3 {
		t.Errorf("warmup successes %v → %v; the re-armed gate should have held back 3 more", warmBefore, warmAfter)
	}
	if n := d.rec.count("sim", func(r recorded) bool { return r.warmup }); n <= coldBefore {
		t.Errorf("no request was flagged warmup after the restart")
	}
	d.rec.mu.Lock()
	colds := d.rec.coldStarts["sim"]
	d.rec.mu.Unlock()
	if colds != 2 {
		t.Errorf("%d cold starts measured, want 2 (at start and after the restart)", colds)
	}
	if !strings.Contains(d.logs.String(), "warmup gate re-armed") {
		t.Error("the log does not say the gate re-armed")
	}
}

// TestDeadMetricsEndpointIsDownProbingGoesOn: a model server whose /metrics is unreachable is
// reported as down, and probing it goes on.
func TestDeadMetricsEndpointIsDownProbingGoesOn(t *testing.T) {
	_, url := startSim(t, func(c *simulator.Config) { c.ITL = time.Millisecond })
	dead := "http://" + freePort(t) // nothing listens there
	d := startDaemon(t, writeConfig(t, t.TempDir(), fmt.Sprintf(`
targets:
  - name: sim
    url: %s
    model: inferprobe-sim
    traffic: {rate: 20}
    request: {input_tokens: 8, max_tokens: 4}
    warmup: {requests: 1, min_duration: 0s}
    metrics: {url: %s/metrics, interval: 100ms, timeout: 100ms}
`, url, dead)))
	labels := map[string]string{"target": "sim"}
	waitFor(t, 20*time.Second, "failed scrapes and successful probes", func() bool {
		mfs := d.scrape(t)
		errs, _ := testkit.Value(mfs, "inferprobe_server_scrape_errors_total", map[string]string{"target": "sim", "reason": "connection"})
		ok, _ := testkit.Value(mfs, "inferprobe_requests_total", map[string]string{"target": "sim", "result": "success"})
		return errs >= 3 && ok >= 10
	})
	mfs := d.scrape(t)
	if up, ok := testkit.Value(mfs, "inferprobe_server_up", labels); !ok || up != 0 {
		t.Errorf("server_up = %v (present %v), want 0", up, ok)
	}
	if _, ok := testkit.Value(mfs, "inferprobe_server_requests_running", labels); ok {
		t.Error("normalised series present although the endpoint never answered")
	}
}

func TestTelemetryPathValidated(t *testing.T) {
	for _, p := range []string{"/", "/-/reload", "metrics"} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"--web.telemetry-path=" + p, "--web.listen-address=127.0.0.1:0"}, &out, &errOut); code != 2 {
			t.Errorf("--web.telemetry-path=%s: exit %d, want 2 (%s)", p, code, errOut.String())
		}
	}
}

// TestReloadNeedsLifecycleFlag: without --web.enable-lifecycle, POST /-/reload is refused and
// nothing is re-read; SIGHUP still reloads.
func TestReloadNeedsLifecycleFlag(t *testing.T) {
	_, url := startSim(t, func(c *simulator.Config) { c.ITL = time.Millisecond })
	dir := t.TempDir()
	cfg := fmt.Sprintf(`
targets:
  - name: a
    url: %s
    model: inferprobe-sim
    traffic: {rate: 5}
    request: {input_tokens: 8, max_tokens: 4}
`, url)
	path := writeConfig(t, dir, cfg)
	d := startDaemonOpts(t, path, "", true)
	writeConfig(t, dir, strings.Replace(cfg, "rate: 5", "rate: 7", 1))
	resp, err := testClient.Post(d.base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /-/reload without the flag answered %d, want 403", resp.StatusCode)
	}
	time.Sleep(200 * time.Millisecond)
	if v, _ := testkit.Value(d.scrape(t), "inferprobe_target_request_rate", map[string]string{"target": "a"}); v != 5 {
		t.Errorf("rate %v after a refused reload, want 5 (not re-read)", v)
	}
}

// TestProbePathRearmsAtOnce: a model server restarts between two metrics scrapes (the
// interval here is an hour, so only the probe path can notice). After connection failures the
// first success re-arms the gate, the scrape runs at once and counts the restart, and that
// request is the new cold start — instead of warm requests on the fresh process entering the
// histograms until the next scrape.
func TestProbePathRearmsAtOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	serve := func(l net.Listener, ttft time.Duration) (stop func()) {
		cfg := simulator.DefaultConfig()
		cfg.TTFTBase, cfg.ITL, cfg.StatsSize = ttft, time.Millisecond, 0
		sim, err := simulator.New(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 5 * time.Second}
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(l) }()
		return func() { sim.Close(); _ = srv.Close(); <-done }
	}
	stop := serve(l, 2*time.Millisecond)
	dir := t.TempDir()
	path := writeConfig(t, dir, fmt.Sprintf(`
targets:
  - name: a
    url: http://%s
    model: inferprobe-sim
    traffic: {rate: 20}
    request: {input_tokens: 8, max_tokens: 4}
    warmup: {requests: 2, min_duration: 0s, recovery_failures: 2}
    metrics: {engine: vllm, interval: 1h}
`, addr))
	d := startDaemon(t, path)
	value := func(name string) float64 {
		v, _ := testkit.Value(d.scrape(t), name, map[string]string{"target": "a"})
		return v
	}
	waitFor(t, 20*time.Second, "warmup to finish", func() bool { return value("inferprobe_warmup_complete") == 1 })
	if got := value("inferprobe_server_restarts_total"); got != 0 {
		t.Fatalf("restarts_total = %v before the restart", got)
	}

	stop() // the server goes away: connection refused
	waitFor(t, 10*time.Second, "connection failures", func() bool {
		return d.rec.count("a", func(r recorded) bool { return r.result == prober.ResultConnection }) >= 3
	})
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	defer serve(l2, 150*time.Millisecond)() // the fresh process: a slow first token
	waitFor(t, 10*time.Second, "the restart counted by the scrape the probe path asked for", func() bool {
		return value("inferprobe_server_restarts_total") == 1
	})
	if cold := value("inferprobe_cold_start_time_to_first_token_seconds"); cold < 0.15 {
		t.Errorf("cold start %v s, want the first request on the new process (TTFT ≥ 150 ms)", cold)
	}
	if !strings.Contains(d.logs.String(), prober.RestartProbeRecovery) {
		t.Error("the log does not say the probe path re-armed the gate")
	}
}
