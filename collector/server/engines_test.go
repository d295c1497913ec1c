package server

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestLlamaCPPWithoutKVGauge: today's llama-server (after ggml-org/llama.cpp PR #13660) has no
// KV-cache usage gauge. Its other series map, the KV series is absent rather than a stand-in,
// and a build that still has llamacpp:kv_cache_usage_ratio is read.
func TestLlamaCPPWithoutKVGauge(t *testing.T) {
	current := string(readFixture(t, "llamacpp.txt"))
	if strings.Contains(current, "kv_cache") {
		t.Fatal("the fixture should be today's exposition, without KV-cache series")
	}
	srv := newFakeServer(t, okText(current).resp)
	s := newTestScraper(t, srv.URL, nil)
	scrapeOK(t, s)
	if got := value(t, s, MetricRequestsRunning, map[string]string{"engine": EngineLlamaCPP}); got != 2 {
		t.Errorf("requests_running = %v, want 2", got)
	}
	if got := value(t, s, MetricGenerationTokensTotal, nil); got != 2048 {
		t.Errorf("generation tokens = %v, want 2048", got)
	}
	if n := count(t, s, MetricKVCacheUsageRatio); n != 0 {
		t.Errorf("%d KV-cache series from a server that exposes none", n)
	}
	old := current + "# HELP llamacpp:kv_cache_usage_ratio KV-cache usage. 1 means 100 percent usage.\n" +
		"# TYPE llamacpp:kv_cache_usage_ratio gauge\nllamacpp:kv_cache_usage_ratio 0.125\n"
	srv.set(okText(old).resp)
	scrapeOK(t, s)
	if got := value(t, s, MetricKVCacheUsageRatio, nil); got != 0.125 {
		t.Errorf("older build: kv usage = %v, want 0.125", got)
	}
}

// TestTRTLLMServeUndefinedModel: trtllm-serve labels its series model_name="undefined"; the
// configured model takes its place. A real name is kept, and other engines are left alone.
func TestTRTLLMServeUndefinedModel(t *testing.T) {
	fixture := string(readFixture(t, "trtllm_serve.txt"))
	undefined := strings.ReplaceAll(fixture, `model_name="nvidia/Llama-3.1-8B-Instruct-FP8"`, `model_name="undefined"`)
	srv := newFakeServer(t, okText(undefined).resp)
	s := newTestScraper(t, srv.URL, func(o *Options) { o.Model = "llama-8b" })
	scrapeOK(t, s)
	for _, name := range []string{MetricTimeToFirstToken, MetricKVCacheUsageRatio} {
		if got := labelValues(t, s, name, "model_name"); !slices.Equal(got, []string{"llama-8b"}) {
			t.Errorf("%s model names %q, want the configured llama-8b", name, got)
		}
	}
	srv.set(okText(fixture).resp)
	scrapeOK(t, s)
	if got := labelValues(t, s, MetricTimeToFirstToken, "model_name"); !slices.Equal(got, []string{"nvidia/Llama-3.1-8B-Instruct-FP8"}) {
		t.Errorf("a real model name was replaced: %q", got)
	}

	vllm := strings.ReplaceAll(string(readFixture(t, "vllm.txt")), `model_name="`, `model_name="undefined`)
	other := newFakeServer(t, okText(vllm).resp)
	v := newTestScraper(t, other.URL, func(o *Options) { o.Model = "llama-8b" })
	scrapeOK(t, v)
	names := labelValues(t, v, MetricGenerationTokensTotal, "model_name")
	if len(names) == 0 || slices.Contains(names, "llama-8b") {
		t.Errorf("vLLM model names %q: want its own, never the configured model", names)
	}
}

// labelValues returns the values of label on every series of name.
func labelValues(t *testing.T, c prometheus.Collector, name, label string) []string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label {
					out = append(out, lp.GetValue())
				}
			}
		}
	}
	return out
}
