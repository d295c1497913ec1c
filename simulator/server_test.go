package simulator

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	dto "github.com/prometheus/client_model/go"

	"github.com/inferprobe/inferprobe/internal/testkit"
)

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		field string
		set   func(*Config)
	}{
		{"ModelName", func(c *Config) { c.ModelName = "" }},
		{"Adapters[1]", func(c *Config) { c.Adapters = []string{"a", ""} }},
		{"TTFTBase", func(c *Config) { c.TTFTBase = -1 }},
		{"TTFTPerPromptToken", func(c *Config) { c.TTFTPerPromptToken = -1 }},
		{"ITL", func(c *Config) { c.ITL = -time.Millisecond }},
		{"ITLPerRunningSeq", func(c *Config) { c.ITLPerRunningSeq = -1 }},
		{"ITLJitter", func(c *Config) { c.ITLJitter = 1.5 }},
		{"Error500Rate", func(c *Config) { c.Error500Rate = -0.1 }},
		{"Error429Rate", func(c *Config) { c.Error429Rate = 2 }},
		{"StallRate", func(c *Config) { c.StallRate = 1.1 }},
		{"StallDuration", func(c *Config) { c.StallRate, c.StallDuration = 0.5, 0 }},
		{"TruncateRate", func(c *Config) { c.TruncateRate = 3 }},
		{"MalformedRate", func(c *Config) { c.MalformedRate = -1 }},
		{"MaxNumSeqs", func(c *Config) { c.MaxNumSeqs = 0 }},
		{"KVCacheTokens", func(c *Config) { c.KVCacheTokens = 0 }},
		{"MaxModelLen", func(c *Config) { c.MaxModelLen = c.KVCacheTokens + 1 }},
		{"DefaultMaxTokens", func(c *Config) { c.DefaultMaxTokens = 0 }},
		{"StatsSize", func(c *Config) { c.StatsSize = -1 }},
	}
	if _, err := New(DefaultConfig(), nil); err != nil {
		t.Fatalf("default config rejected: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.set(&cfg)
			_, err := New(cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.field+" (--") {
				t.Errorf("error %v does not name %s", err, tt.field)
			}
		})
	}
}

func TestAddFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want func(*Config)
	}{
		{"defaults", nil, func(*Config) {}},
		{"all set", []string{
			"--model=m", "--no-accept-any-model", "--lora-adapter=a", "--lora-adapter=b",
			"--ttft-base=5ms", "--ttft-per-prompt-token=1us", "--itl=2ms", "--itl-jitter=0.5",
			"--itl-per-running-seq=3us", "--max-num-seqs=8", "--kv-cache-tokens=1000",
			"--max-model-len=500", "--default-max-tokens=16", "--seed=9", "--error-500-rate=0.1",
			"--error-429-rate=0.2", "--stall-rate=0.3", "--stall-duration=4s", "--truncate-rate=0.4",
			"--malformed-rate=0.5", "--stats-size=7", "--speed-bump.calls-per-step=3", "--speed-bump.slack=40us",
		}, func(c *Config) {
			*c = Config{
				ModelName: "m", Adapters: []string{"a", "b"}, TTFTBase: 5 * time.Millisecond,
				TTFTPerPromptToken: time.Microsecond, ITL: 2 * time.Millisecond, ITLJitter: 0.5,
				ITLPerRunningSeq: 3 * time.Microsecond, MaxNumSeqs: 8, KVCacheTokens: 1000,
				MaxModelLen: 500, DefaultMaxTokens: 16, Seed: 9, Error500Rate: 0.1, Error429Rate: 0.2,
				StallRate: 0.3, StallDuration: 4 * time.Second, TruncateRate: 0.4, MalformedRate: 0.5,
				StatsSize: 7, SpeedBump: SpeedBump{Frequency: 1, CallsPerStep: 3, Slack: 40 * time.Microsecond},
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := kingpin.New("inferprobe", "")
			cmd := app.Command("simulate", "")
			got := AddFlags(cmd)
			if _, err := app.Parse(append([]string{"simulate"}, tt.args...)); err != nil {
				t.Fatal(err)
			}
			want := DefaultConfig()
			tt.want(&want)
			if len(got.Adapters) == 0 {
				got.Adapters = nil
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("parsed\n%+v\nwant\n%+v", *got, want)
			}
		})
	}
}

// TestMetrics parses /metrics after one request and checks the vLLM names, the model_name
// label and the values that request implies.
func TestMetrics(t *testing.T) {
	s, ts := startServer(t, fastConfig())
	sum := stream(context.Background(), ts, "/v1/chat/completions", map[string]any{
		"messages": []map[string]any{{"role": "user", "content": "one two three"}}, "max_tokens": 4, "ignore_eos": true,
	})
	if !sum.done {
		t.Fatalf("request failed: %+v", sum)
	}
	waitFor(t, "the request to be recorded", 2*time.Second, func() bool { return len(s.Stats().Requests) == 1 })
	fams := scrape(t, ts)
	model := map[string]string{"model_name": "inferprobe-sim"}
	tests := []struct {
		name   string
		typ    dto.MetricType
		labels map[string]string
		want   float64 // sample count for histograms
	}{
		{"vllm:num_requests_running", dto.MetricType_GAUGE, model, 0},
		{"vllm:num_requests_waiting", dto.MetricType_GAUGE, model, 0},
		{"vllm:kv_cache_usage_perc", dto.MetricType_GAUGE, model, 0},
		{"vllm:prompt_tokens_total", dto.MetricType_COUNTER, model, 3},
		{"vllm:generation_tokens_total", dto.MetricType_COUNTER, model, 4},
		{"vllm:time_to_first_token_seconds", dto.MetricType_HISTOGRAM, model, 1},
		{"vllm:inter_token_latency_seconds", dto.MetricType_HISTOGRAM, model, 3},
		{"vllm:request_time_per_output_token_seconds", dto.MetricType_HISTOGRAM, model, 1},
		{"vllm:e2e_request_latency_seconds", dto.MetricType_HISTOGRAM, model, 1},
		{"vllm:request_queue_time_seconds", dto.MetricType_HISTOGRAM, model, 1},
		{"vllm:request_prefill_time_seconds", dto.MetricType_HISTOGRAM, model, 1},
		{"vllm:request_decode_time_seconds", dto.MetricType_HISTOGRAM, model, 1},
		{"vllm:request_prompt_tokens", dto.MetricType_HISTOGRAM, model, 1},
		{"vllm:request_generation_tokens", dto.MetricType_HISTOGRAM, model, 1},
		{"vllm:request_success_total", dto.MetricType_COUNTER, map[string]string{"model_name": "inferprobe-sim", "finished_reason": "length"}, 1},
		{"vllm:request_success_total", dto.MetricType_COUNTER, map[string]string{"model_name": "inferprobe-sim", "finished_reason": "stop"}, 0},
		{"vllm:request_success_total", dto.MetricType_COUNTER, map[string]string{"model_name": "inferprobe-sim", "finished_reason": "abort"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name+labelString(tt.labels), func(t *testing.T) {
			f, ok := fams[tt.name]
			if !ok {
				t.Fatal("missing")
			}
			if f.GetType() != tt.typ || f.GetHelp() == "" {
				t.Errorf("type %v help %q", f.GetType(), f.GetHelp())
			}
			got, ok := testkit.Value(fams, tt.name, tt.labels)
			if !ok || got != tt.want {
				t.Errorf("value %v (found %v), want %v", got, ok, tt.want)
			}
		})
	}

	// Bucket layouts are vLLM's.
	h := fams["vllm:time_to_first_token_seconds"].GetMetric()[0].GetHistogram()
	if b := h.GetBucket(); len(b) < 22 || b[0].GetUpperBound() != 0.001 || b[21].GetUpperBound() != 2560 {
		t.Errorf("TTFT buckets %v", b)
	}

	// Each Server is a new "process" for restart detection.
	st1, ok := testkit.Value(fams, "process_start_time_seconds", nil)
	if !ok || st1 <= 0 {
		t.Fatalf("process_start_time_seconds %v %v", st1, ok)
	}
	time.Sleep(time.Millisecond)
	_, ts2 := startServer(t, fastConfig())
	st2, _ := testkit.Value(scrape(t, ts2), "process_start_time_seconds", nil)
	if st2 <= st1 {
		t.Errorf("second server's start time %v not after the first's %v", st2, st1)
	}
}

func labelString(l map[string]string) string {
	if r, ok := l["finished_reason"]; ok {
		return "{" + r + "}"
	}
	return ""
}

// TestStatsMatchClient checks the ground truth against the configured timing model and
// against what a loopback client measures; the prober's end-to-end tests rely on both.
func TestStatsMatchClient(t *testing.T) {
	// A loaded host's late wake-ups are transient: a round whose medians disagree is tried
	// again, up to three rounds; a simulator or client that is really off fails all three.
	var problems []string
	for round := range 3 {
		problems = statsMatchClientRound(t)
		if len(problems) == 0 {
			return
		}
		t.Logf("round %d: %v", round+1, problems)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// statsMatchClientRound runs ten requests against a fresh simulator and returns how the
// medians disagree with the model and with each other.
func statsMatchClientRound(t *testing.T) []string {
	cfg := DefaultConfig() // 20 ms + 50 µs/token TTFT, 10 ms ITL with 10% jitter
	s, ts := startServer(t, cfg)
	const promptWords, n, requests = 100, 6, 10
	wantTTFT := cfg.TTFTBase + promptWords*cfg.TTFTPerPromptToken

	var clientTTFT, clientGaps []time.Duration
	for range requests {
		sum := stream(context.Background(), ts, "/v1/completions", map[string]any{"prompt": words(promptWords), "max_tokens": n, "ignore_eos": true})
		if !sum.done || sum.tokens != n {
			t.Fatalf("request failed: %+v", sum)
		}
		clientTTFT = append(clientTTFT, sum.firstTok.Sub(sum.sent))
		for i := 1; i < len(sum.tokTimes); i++ {
			clientGaps = append(clientGaps, sum.tokTimes[i].Sub(sum.tokTimes[i-1]))
		}
	}
	waitFor(t, "all requests recorded", 2*time.Second, func() bool { return len(s.Stats().Requests) == requests })
	st := s.Stats()
	serverTTFT, serverGaps := st.TTFTs(), st.Gaps()
	if len(serverTTFT) != requests || len(serverGaps) != requests*(n-1) {
		t.Fatalf("%d TTFTs and %d gaps recorded", len(serverTTFT), len(serverGaps))
	}

	// Timers may fire late on a loaded host, so the model gets some slack; the client must
	// agree with the server within the 2 ms the prober's end-to-end tests rely on.
	const modelTol, clientTol = 5 * time.Millisecond, 2 * time.Millisecond
	checks := []struct {
		name         string
		got, want    time.Duration
		below, above time.Duration
	}{
		// Timers never fire early; they may fire late on a busy host.
		{"server TTFT vs model", Median(serverTTFT), wantTTFT, 0, modelTol},
		{"server ITL vs model", Median(serverGaps), cfg.ITL, modelTol, modelTol},
		{"client TTFT vs server", Median(clientTTFT), Median(serverTTFT), clientTol, clientTol},
		{"client ITL vs server", Median(clientGaps), Median(serverGaps), clientTol, clientTol},
	}
	var problems []string
	for _, c := range checks {
		if c.got < c.want-c.below || c.got > c.want+c.above {
			problems = append(problems, fmt.Sprintf("%s: median %s, want %s (-%s/+%s)", c.name, c.got, c.want, c.below, c.above))
		}
	}
	return problems
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{5}, 5},
		{[]time.Duration{9, 1, 5}, 5},
		{[]time.Duration{4, 1, 3, 2}, 2},
	}
	for _, tt := range tests {
		in := append([]time.Duration(nil), tt.in...)
		if got := Median(tt.in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if !reflect.DeepEqual(in, tt.in) {
			t.Errorf("Median modified its input")
		}
	}
}

func TestStatsRing(t *testing.T) {
	r := newStatsRing(3)
	for i := range 5 {
		r.record(&RequestStats{OutputTokens: i, Outcome: OutcomeSuccess})
	}
	r.record(&RequestStats{OutputTokens: 5, Outcome: OutcomeCanceled})
	st := r.snapshot()
	var got []int
	for _, q := range st.Requests {
		got = append(got, q.OutputTokens)
	}
	if !reflect.DeepEqual(got, []int{3, 4, 5}) || st.Outcomes[OutcomeSuccess] != 5 || st.Outcomes[OutcomeCanceled] != 1 {
		t.Errorf("ring holds %v, outcomes %v", got, st.Outcomes)
	}
	if st := newStatsRing(0); func() bool { st.record(&RequestStats{}); return len(st.snapshot().Requests) != 0 }() {
		t.Error("size 0 kept a request")
	}
}

func TestSpeedBump(t *testing.T) {
	env := map[string]string{EnvSpeedBumpDelayNS: "20000", EnvSpeedBumpFrequency: "0.5"}
	b, err := SpeedBump{Frequency: 1, CallsPerStep: 4, Slack: 10 * time.Microsecond}.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	// 4 calls × 20 µs × half of them = 40 µs of host time, 10 µs of it hidden: 30 µs added.
	if b.Delay != 20*time.Microsecond || b.Frequency != 0.5 || b.added() != 30*time.Microsecond {
		t.Errorf("bump %+v adds %v, want 30µs", b, b.added())
	}
	if (SpeedBump{Delay: time.Millisecond, Frequency: 1, CallsPerStep: 1, Slack: time.Second}).added() != 0 {
		t.Error("a delay under the slack adds time")
	}
	for _, bad := range []map[string]string{{EnvSpeedBumpDelayNS: "-1"}, {EnvSpeedBumpDelayNS: "1ms"}, {EnvSpeedBumpFrequency: "2"},
		{EnvSpeedBumpStartMS: "-5"}, {EnvSpeedBumpStartMS: "1.5"}, {EnvSpeedBumpDurationMS: "10s"}, {EnvSpeedBumpDurationMS: "99999999999999999"}} {
		if _, err := (SpeedBump{}).FromEnv(func(k string) string { return bad[k] }); err == nil || !strings.Contains(err.Error(), "SPEED_BUMP_") {
			t.Errorf("%v: err %v, want one naming the variable", bad, err)
		}
	}
}

// TestSpeedBumpWindow: SPEED_BUMP_START_MS and SPEED_BUMP_DURATION_MS keep the bump to a window
// after the server's start; without them it acts from the start to the end.
func TestSpeedBumpWindow(t *testing.T) {
	env := map[string]string{EnvSpeedBumpDelayNS: "1000", EnvSpeedBumpStartMS: "200", EnvSpeedBumpDurationMS: "300"}
	b, err := SpeedBump{Frequency: 1, CallsPerStep: 1}.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if b.Start != 200*time.Millisecond || b.Duration != 300*time.Millisecond {
		t.Fatalf("window %v + %v, want 200ms + 300ms", b.Start, b.Duration)
	}
	for _, c := range []struct {
		ms   int
		want bool
	}{{0, false}, {199, false}, {200, true}, {499, true}, {500, false}, {10_000, false}} {
		if got := b.activeAt(time.Duration(c.ms) * time.Millisecond); got != c.want {
			t.Errorf("active at %d ms = %v, want %v", c.ms, got, c.want)
		}
	}
	if open := (SpeedBump{Start: time.Second}); !open.activeAt(time.Hour) || open.activeAt(0) {
		t.Error("a window without a duration does not run from its start to the end")
	}
	// addedSince against the server's start: the windows are hours wide, so no clock jitter
	// moves a step across an edge.
	bump := SpeedBump{Delay: time.Microsecond, Frequency: 1, CallsPerStep: 3}
	now := time.Now()
	for _, c := range []struct {
		start, duration, ago time.Duration
		want                 time.Duration
	}{
		{0, 0, 0, 3 * time.Microsecond},                                // no window: always
		{time.Hour, 0, 0, 0},                                           // not yet
		{time.Hour, 0, 2 * time.Hour, 3 * time.Microsecond},            // from the start on
		{0, time.Hour, 0, 3 * time.Microsecond},                        // inside
		{0, time.Hour, 2 * time.Hour, 0},                               // over
		{time.Hour, time.Hour, 90 * time.Minute, 3 * time.Microsecond}, // inside a later window
	} {
		w := bump
		w.Start, w.Duration = c.start, c.duration
		if got := w.addedSince(now.Add(-c.ago)); got != c.want {
			t.Errorf("window %v+%v, started %v ago: adds %v, want %v", c.start, c.duration, c.ago, got, c.want)
		}
	}
}
