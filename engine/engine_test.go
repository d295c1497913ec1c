package engine

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/internal/simtest"
	"github.com/inferprobe/inferprobe/internal/testkit"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/simulator"
	"github.com/inferprobe/inferprobe/traffic"
)

// startSim serves a simulator on a loopback port until the test ends.
func startSim(t testing.TB, mutate func(*simulator.Config)) string {
	t.Helper()
	_, url := simtest.Start(t, 7, mutate)
	return url
}

// parseConfig parses y against the registries.
func parseConfig(t testing.TB, y string) *config.Config {
	t.Helper()
	c, err := Parse([]byte(y))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y)
	}
	return c
}

// records keeps copies of finished records.
type records struct {
	mu   sync.Mutex
	recs []prober.Record
	drop int
}

func (r *records) Observe(ev prober.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev.Kind {
	case prober.EventRequestFinished:
		var cp prober.Record
		ev.Record.CopyTo(&cp)
		r.recs = append(r.recs, cp)
	case prober.EventRequestDropped:
		r.drop++
	}
}

func (r *records) all() []prober.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.recs)
}

// runOnce runs cfg as a one-shot set until its plans end, then closes the set.
func runOnce(t *testing.T, cfg *config.Config, obs ...prober.Observer) *Set {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	set := New(ctx, Options{Observers: obs, Once: true})
	if err := set.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if err := set.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	set.Close(ctx)
	return set
}

// recordingServer answers every streaming request with a short valid SSE stream and keeps
// each request's body in arrival order.
type recordingServer struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (s *recordingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, body)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	for _, ev := range []string{
		`{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}`,
		`{"choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"length"}]}`,
		`{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}`,
		`[DONE]`,
	} {
		fmt.Fprintf(w, "data: %s\n\n", ev)
	}
}

// sent is what one run sent: each request's intended offset and adapter in sequence order,
// and the bodies the target received, sorted. Bodies are not paired with sequence numbers
// by arrival order: on a loaded machine two close requests can reach the server swapped.
type sent struct {
	offsets  []time.Duration
	adapters []string
	bodies   []string
}

// runRecorded runs y once against a fresh recording server and returns what was sent.
func runRecorded(t *testing.T, y string) sent {
	t.Helper()
	rs := &recordingServer{}
	srv := httptest.NewServer(rs)
	defer srv.Close()
	cfg := parseConfig(t, strings.ReplaceAll(y, "URL", srv.URL))
	rec := &records{}
	runOnce(t, cfg, rec)
	recs := rec.all()
	slices.SortFunc(recs, func(a, b prober.Record) int { return int(a.Seq) - int(b.Seq) })
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(recs) != len(rs.bodies) || len(recs) < 50 {
		t.Fatalf("%d records, %d bodies; want the same number, at least 50", len(recs), len(rs.bodies))
	}
	start := recs[0].Intended
	var out sent
	for i, r := range recs {
		if r.Result != prober.ResultSuccess || r.Seq != uint64(i) {
			t.Fatalf("record %d: seq %d result %s (%v)", i, r.Seq, r.Result, r.Err)
		}
		out.offsets = append(out.offsets, r.Intended.Sub(start).Round(time.Millisecond))
		out.adapters = append(out.adapters, r.Adapter)
	}
	for _, b := range rs.bodies {
		out.bodies = append(out.bodies, string(b))
	}
	slices.Sort(out.bodies)
	return out
}

// TestSeedReproducesRequests: the same configuration and seed send the same sequence of
// intended offsets and adapters and the same bodies byte for byte, prompts included;
// another seed does not.
func TestSeedReproducesRequests(t *testing.T) {
	const y = `
base_seed: %d
targets:
  - name: repro
    url: URL
    model: base
    traffic:
      pacer: stages
      stages: [{rate: 20, duration: 2s, pacer: gamma, burstiness: 16}, {rate: 40, duration: 1s, pacer: gamma, burstiness: 16}]
    request:
      input_tokens: 12
      max_tokens: 2
      lora_traffic_split: [{name: base, split: 0.5}, {name: sql-lora, split: 0.3}, {name: chat-lora, split: 0.2}]
    warmup: {requests: 0, min_duration: 0s}
`
	a := runRecorded(t, fmt.Sprintf(y, 42))
	b := runRecorded(t, fmt.Sprintf(y, 42))
	if !slices.Equal(a.offsets, b.offsets) || !slices.Equal(a.adapters, b.adapters) {
		for i := range min(len(a.offsets), len(b.offsets)) {
			if a.offsets[i] != b.offsets[i] || a.adapters[i] != b.adapters[i] {
				t.Fatalf("request %d differs between two runs of one seed: %v %s, then %v %s", i, a.offsets[i], a.adapters[i], b.offsets[i], b.adapters[i])
			}
		}
		t.Fatalf("runs of one seed sent %d and %d requests", len(a.offsets), len(b.offsets))
	}
	for i := range a.bodies {
		if a.bodies[i] != b.bodies[i] {
			t.Fatalf("runs of one seed sent different bodies:\n%s\n%s", a.bodies[i], b.bodies[i])
		}
	}
	adapters := map[string]int{}
	for _, body := range a.bodies {
		for _, name := range []string{"base", "sql-lora", "chat-lora"} {
			if strings.Contains(body, `"model":"`+name+`"`) {
				adapters[name]++
			}
		}
	}
	for _, name := range a.adapters {
		adapters[name]--
	}
	if len(adapters) != 3 || adapters["base"] != 0 || adapters["sql-lora"] != 0 || adapters["chat-lora"] != 0 {
		t.Errorf("bodies name adapters other than the records do (body count minus record count: %v), or not all three are used", adapters)
	}
	c := runRecorded(t, fmt.Sprintf(y, 43))
	cBodies := map[string]bool{}
	for _, body := range c.bodies {
		cBodies[body] = true
	}
	sameBodies, sameOffsets := 0, 0
	for _, body := range a.bodies {
		if cBodies[body] {
			sameBodies++
		}
	}
	for i := range min(len(a.offsets), len(c.offsets)) {
		if a.offsets[i] == c.offsets[i] {
			sameOffsets++
		}
	}
	if sameBodies > 0 || sameOffsets > len(a.offsets)/2 {
		t.Errorf("another seed repeated %d bodies and %d of %d offsets", sameBodies, sameOffsets, len(a.offsets))
	}
}

// TestClosedLoopKeepsConcurrency: against a slow simulator, a concurrent pacer keeps exactly N
// requests in flight, achieves N / mean latency, and drops nothing.
func TestClosedLoopKeepsConcurrency(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) }) // after the simulator's cleanup
	url := startSim(t, func(c *simulator.Config) {
		c.TTFTBase, c.TTFTPerPromptToken, c.ITL, c.ITLJitter = 40*time.Millisecond, 0, 6*time.Millisecond, 0
	})
	const n = 8
	cfg := parseConfig(t, fmt.Sprintf(`
targets:
  - name: closed
    url: %s
    model: inferprobe-sim
    traffic: {pacer: stages, stages: [{concurrency: %d, duration: 3s}], seed: 3}
    request: {input_tokens: 8, max_tokens: 10, ignore_eos: true}
    warmup: {requests: 0, min_duration: 0s}
`, url, n))
	rec := &records{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	set := New(ctx, Options{Observers: []prober.Observer{rec}, Once: true})
	if err := set.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	// Sample the in-flight count through the middle of the stage.
	time.Sleep(500 * time.Millisecond)
	var samples []int
	for range 100 {
		samples = append(samples, set.Targets()[0].InFlight)
		time.Sleep(20 * time.Millisecond)
	}
	if err := set.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	set.Close(ctx)
	for _, s := range samples {
		if s != n {
			t.Fatalf("in flight %d, want exactly %d (samples %v)", s, n, samples)
		}
	}
	recs := rec.all()
	if rec.drop != 0 {
		t.Errorf("%d requests dropped in closed loop", rec.drop)
	}
	var sum time.Duration
	first, last := recs[0].Start, recs[0].Start
	for _, r := range recs {
		if r.Result != prober.ResultSuccess {
			t.Fatalf("request failed: %s %v", r.Result, r.Err)
		}
		sum += r.End
		if r.Start.Before(first) {
			first = r.Start
		}
		if r.Start.After(last) {
			last = r.Start
		}
	}
	mean := sum / time.Duration(len(recs))
	achieved := float64(len(recs)-n) / last.Sub(first).Seconds()
	want := n / mean.Seconds()
	t.Logf("%d requests, mean latency %v, achieved %.1f req/s, N/latency %.1f", len(recs), mean, achieved, want)
	if math.Abs(achieved-want)/want > 0.05 {
		t.Errorf("achieved %.2f req/s, want N / mean latency = %.2f ± 5%%", achieved, want)
	}
}

// TestLoRASplitShares: over 5,000 requests each adapter's share is within 2% of its split,
// and every probe series carries the adapter.
func TestLoRASplitShares(t *testing.T) {
	url := startSim(t, func(c *simulator.Config) {
		c.TTFTBase, c.TTFTPerPromptToken, c.ITL, c.AcceptAnyModel = 0, 0, 0, true
	})
	cfg := parseConfig(t, fmt.Sprintf(`
targets:
  - name: lora
    url: %s
    model: inferprobe-sim
    traffic: {pacer: concurrent, concurrency: 16, seed: 11}
    request:
      input_tokens: 4
      max_tokens: 1
      lora_traffic_split: [{name: inferprobe-sim, split: 0.5}, {name: sql-lora, split: 0.3}, {name: chat-lora, split: 0.2}]
    warmup: {requests: 0, min_duration: 0s}
`, url))
	split := map[string]float64{"inferprobe-sim": 0.5, "sql-lora": 0.3, "chat-lora": 0.2}
	rec := &records{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	set := New(ctx, Options{Observers: []prober.Observer{rec}})
	if err := set.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(set.Probe())
	// Adapter series exist before any request.
	mfs := gather(t, reg)
	for name := range split {
		if _, ok := testkit.Value(mfs, "inferprobe_requests_total", map[string]string{"adapter": name, "result": "success"}); !ok {
			t.Errorf("no requests_total series for adapter %s at start", name)
		}
	}
	testkit.WaitFor(t, 90*time.Second, 20*time.Millisecond, "5,000 requests", func() bool {
		return len(rec.all()) >= 5000
	})
	mfs = gather(t, reg)
	set.Close(ctx)
	counts := map[string]int{}
	recs := rec.all()[:5000]
	for _, r := range recs {
		if r.Result != prober.ResultSuccess {
			t.Fatalf("request for %q failed: %s %v", r.Adapter, r.Result, r.Err)
		}
		counts[r.Adapter]++
	}
	for name, share := range split {
		got := float64(counts[name]) / float64(len(recs))
		if math.Abs(got-share) > 0.02 {
			t.Errorf("adapter %s: share %.4f, want %.2f ± 0.02", name, got, share)
		}
		v, ok := testkit.Value(mfs, "inferprobe_requests_total", map[string]string{"adapter": name, "result": "success"})
		if !ok || v < float64(counts[name]) {
			t.Errorf("adapter %s: requests_total %v (%v), want at least %d", name, v, ok, counts[name])
		}
		if _, ok := testkit.Value(mfs, "inferprobe_time_to_first_token_seconds", map[string]string{"adapter": name}); !ok {
			t.Errorf("adapter %s has no TTFT series", name)
		}
	}
	if len(counts) != len(split) {
		t.Errorf("adapters sent %v", counts)
	}
}

// gather collects reg's families by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	list, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range list {
		out[mf.GetName()] = mf
	}
	return out
}

// blocker is an observer that blocks on its first event until released: the worst slow
// consumer (a report builder stuck on a full disk, an exporter whose collector hangs).
type blocker struct{ release chan struct{} }

func (b blocker) Observe(prober.Event) { <-b.release }

// TestBlockingObserverAddsNoScheduleDelay: two sets probe at 200 req/s side by side, one with
// an observer that blocks for the whole run. The blocked set still releases every request and
// ends with the other (an observer the run loop waited on would stall it outright), and its
// schedule delay p99 matches the other set's within 1 ms, or within a tenth of the control's
// p99 when a loaded machine makes both larger (under -race, beside other test binaries, two
// sets of in-process streaming requests can saturate two cores). Timing on a shared machine is
// noisy, so the p99 comparison must hold in one of three trials; the counts in every one.
func TestBlockingObserverAddsNoScheduleDelay(t *testing.T) {
	url := startSim(t, func(c *simulator.Config) { c.TTFTBase, c.TTFTPerPromptToken, c.ITL = time.Millisecond, 0, 0 })
	var report []string
	for trial := range 3 {
		sp, fp, ok := blockingTrial(t, url, trial)
		tolerance := max(time.Millisecond, fp/10)
		report = append(report, fmt.Sprintf("trial %d: p99 %v blocked, %v control (tolerance %v)", trial, sp, fp, tolerance))
		if !ok {
			return // blockingTrial failed the test
		}
		if d := sp - fp; d <= tolerance {
			t.Log(strings.Join(report, "\n"))
			return
		}
	}
	t.Errorf("schedule delay p99 with a blocked observer exceeded the control's in every trial:\n%s", strings.Join(report, "\n"))
}

// blockingTrial runs one side-by-side trial and returns both p99s; ok is false when it failed
// the test.
func blockingTrial(t *testing.T, url string, trial int) (blockedP99, controlP99 time.Duration, ok bool) {
	t.Helper()
	y := func(name string) *config.Config {
		return parseConfig(t, fmt.Sprintf(`
targets:
  - name: %s
    url: %s
    model: inferprobe-sim
    traffic: {pacer: stages, stages: [{rate: 200, duration: 2s}], max_in_flight: 1000}
    request: {input_tokens: 4, max_tokens: 2, ignore_eos: true}
    warmup: {requests: 0, min_duration: 0s}
`, name, url))
	}
	block := blocker{release: make(chan struct{})}
	defer close(block.release)
	slow, fast := &records{}, &records{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	slowSet := New(ctx, Options{Observers: []prober.Observer{block, slow}, Once: true})
	fastSet := New(ctx, Options{Observers: []prober.Observer{fast}, Once: true})
	sets := []*Set{slowSet, fastSet}
	cfgs := []*config.Config{y("slow"), y("fast")}
	if trial%2 == 1 { // alternate which starts first
		sets[0], sets[1], cfgs[0], cfgs[1] = sets[1], sets[0], cfgs[1], cfgs[0]
	}
	start := time.Now()
	for i, s := range sets {
		if err := s.Apply(cfgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	var took, tookFast time.Duration
	var wg sync.WaitGroup
	wg.Go(func() { _ = slowSet.Wait(ctx); took = time.Since(start) })
	wg.Go(func() { _ = fastSet.Wait(ctx); tookFast = time.Since(start) })
	wg.Wait()
	// The blocker never returns while the trial runs: close its set without waiting on it.
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	slowSet.Close(short)
	stop()
	fastSet.Close(ctx)
	p99 := func(r *records) (time.Duration, int) {
		var ds []time.Duration
		for _, rec := range r.all() {
			ds = append(ds, rec.ScheduleDelay())
		}
		slices.Sort(ds)
		if len(ds) == 0 {
			return 0, 0
		}
		return ds[len(ds)*99/100], len(ds)
	}
	sp, sn := p99(slow)
	fp, fn := p99(fast)
	if sn != 400 || fn != 400 {
		t.Errorf("requests finished: %d with the blocked observer and %d without, want 400 each", sn, fn)
		return sp, fp, false
	}
	// Both runs share the machine, so a loaded machine slows both alike.
	if took > tookFast+tookFast/10+100*time.Millisecond {
		t.Errorf("the run with a blocked observer took %v, the one without %v", took, tookFast)
		return sp, fp, false
	}
	return sp, fp, true
}

// TestApplyIsAllOrNothing: when one new or changed target cannot be built, Apply changes
// nothing — the running targets keep running — and says which target failed.
func TestApplyIsAllOrNothing(t *testing.T) {
	url := startSim(t, func(c *simulator.Config) { c.ITL = time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	set := New(ctx, Options{})
	defer set.Close(ctx)
	target := func(name, api string) config.Target {
		c := &config.Config{Targets: []config.Target{{Name: name, URL: url, API: api, Model: "inferprobe-sim"}}}
		c.ApplyDefaults(Extensions()...)
		return c.Targets[0]
	}
	if err := set.Apply(&config.Config{Targets: []config.Target{target("a", prober.APIOpenAIChat)}}); err != nil {
		t.Fatal(err)
	}
	before := set.Targets()
	a2 := target("a", prober.APIOpenAIChat)
	a2.Traffic.Rate = 3 // a change: a would be replaced
	err := set.Apply(&config.Config{Targets: []config.Target{a2, target("b", "bogus-api")}})
	if err == nil || !strings.Contains(err.Error(), `target "b"`) || !strings.Contains(err.Error(), "openai-chat") {
		t.Fatalf("apply = %v, want an error naming target b and the registered flavours", err)
	}
	after := set.Targets()
	if len(after) != 1 || after[0].Rate != 1 || after[0].Seed != before[0].Seed || !after[0].Running {
		t.Fatalf("a failed apply changed the running targets: %+v -> %+v", before, after)
	}
}

// TestReloadKeepsRandomSeed: a target without a seed gets a random one, shown in its status;
// an apply that does not change the target keeps it, and base_seed derives a stable one.
func TestReloadKeepsRandomSeed(t *testing.T) {
	url := startSim(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	set := New(ctx, Options{})
	defer set.Close(ctx)
	y := fmt.Sprintf("targets: [{name: a, url: %s, model: inferprobe-sim, traffic: {rate: 0.5}}]\n", url)
	if err := set.Apply(parseConfig(t, y)); err != nil {
		t.Fatal(err)
	}
	first := set.Targets()[0]
	if first.Seed == 0 || first.SeedSource != SeedRandom {
		t.Fatalf("status %+v, want a random seed", first)
	}
	if err := set.Apply(parseConfig(t, y)); err != nil {
		t.Fatal(err)
	}
	if got := set.Targets()[0]; got.Seed != first.Seed {
		t.Errorf("an unchanged target's seed went from %d to %d", first.Seed, got.Seed)
	}
	if err := set.Apply(parseConfig(t, "base_seed: 9\n"+y)); err != nil {
		t.Fatal(err)
	}
	derived := set.Targets()[0]
	if derived.SeedSource != SeedFromBase || derived.Seed == first.Seed {
		t.Errorf("status %+v after setting base_seed", derived)
	}
	if seed, src, ok := TargetSeed(9, parseConfig(t, y).Targets[0]); !ok || seed != derived.Seed || src != SeedFromBase {
		t.Errorf("TargetSeed = %d %s %v, want %d", seed, src, ok, derived.Seed)
	}
}

// fakeClient answers every request at once with a marked record and counts what it was
// asked.
type fakeClient struct {
	mu      sync.Mutex
	targets []string
	prompts int
}

func (f *fakeClient) Do(_ context.Context, req traffic.Request, rec *prober.Record) {
	f.mu.Lock()
	if req.Prompt != "" || len(req.Messages) > 0 {
		f.prompts++
	}
	f.mu.Unlock()
	rec.Start = time.Now()
	rec.Status, rec.Result = 299, prober.ResultSuccess
	rec.End = time.Microsecond
}

// TestNewClientOverride: Options.NewClient builds the client of every target, from the
// validated target, and the rest of the pipeline (pacer, source, observers) runs as usual; no
// request reaches the target's URL.
func TestNewClientOverride(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	cfg := parseConfig(t, fmt.Sprintf(`
targets:
  - name: faked
    url: %s
    model: m
    traffic: {pacer: stages, stages: [{rate: 100, duration: 200ms}]}
    request: {input_tokens: 4, max_tokens: 2}
    warmup: {requests: 0, min_duration: 0s}
`, srv.URL))
	fake := &fakeClient{}
	got := &records{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	set := New(ctx, Options{Observers: []prober.Observer{got}, Once: true,
		NewClient: func(t config.Target) (prober.Client, error) {
			fake.mu.Lock()
			defer fake.mu.Unlock()
			fake.targets = append(fake.targets, t.Name+" "+t.Model)
			return fake, nil
		}})
	if err := set.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	_ = set.Wait(ctx)
	set.Close(ctx)
	recs := got.all()
	if len(recs) != 20 {
		t.Fatalf("%d records, want the stage's 20", len(recs))
	}
	for _, r := range recs {
		if r.Status != 299 {
			t.Fatalf("record %d has status %d: not from the fake client", r.Seq, r.Status)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests reached the target's URL, want none", n)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if !slices.Equal(fake.targets, []string{"faked m"}) || fake.prompts != 20 {
		t.Errorf("built for %q with %d prompts, want one client for \"faked m\" and 20 prompts", fake.targets, fake.prompts)
	}
}
