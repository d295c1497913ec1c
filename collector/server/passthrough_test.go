package server

import (
	"bytes"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// TestPassthrough: matching families come back unchanged but for the target label; patterns
// match whole names; reserved names are never passed through.
func TestPassthrough(t *testing.T) {
	body := `# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="m"} 3
# TYPE vllm:iteration_tokens_total histogram
vllm:iteration_tokens_total_bucket{engine="0",le="1"} 2
vllm:iteration_tokens_total_bucket{engine="0",le="+Inf"} 5
vllm:iteration_tokens_total_sum{engine="0"} 40
vllm:iteration_tokens_total_count{engine="0"} 5
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m",target="gpu-7"} 2
# TYPE vllm:num_requests_running_extra gauge
vllm:num_requests_running_extra 9
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1.7e9
# TYPE go_goroutines gauge
go_goroutines 12
# TYPE inferprobe_server_up gauge
inferprobe_server_up 1
# TYPE summary_thing summary
summary_thing{quantile="0.5"} 1
summary_thing_sum 10
summary_thing_count 4
`
	srv := newFakeServer(t, response{contentType: ctText, body: []byte(body)})
	s := newTestScraper(t, srv.URL, func(o *Options) {
		o.Config.Passthrough = []string{
			"vllm:num_preemptions_total", "vllm:iteration_.*", "vllm:num_requests_running",
			"process_.*", "go_goroutines", "inferprobe_.*", "summary_thing",
		}
	})
	scrapeOK(t, s)
	want := `# HELP summary_thing ` + passthroughHelp + `
# TYPE summary_thing summary
summary_thing{target="t",quantile="0.5"} 1
summary_thing_sum{target="t"} 10
summary_thing_count{target="t"} 4
# HELP vllm:iteration_tokens_total ` + passthroughHelp + `
# TYPE vllm:iteration_tokens_total histogram
vllm:iteration_tokens_total_bucket{engine="0",target="t",le="1"} 2
vllm:iteration_tokens_total_bucket{engine="0",target="t",le="+Inf"} 5
vllm:iteration_tokens_total_sum{engine="0",target="t"} 40
vllm:iteration_tokens_total_count{engine="0",target="t"} 5
# HELP vllm:num_preemptions_total ` + passthroughHelp + `
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="m",target="t"} 3
# HELP vllm:num_requests_running ` + passthroughHelp + `
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{exported_target="gpu-7",model_name="m",target="t"} 2
`
	names := []string{"summary_thing", "vllm:iteration_tokens_total", "vllm:num_preemptions_total", "vllm:num_requests_running",
		"vllm:num_requests_running_extra", "process_start_time_seconds", "go_goroutines", "inferprobe_server_up"}
	// inferprobe_server_up is compared too: it must hold only inferprobe's own series.
	want += "# HELP inferprobe_server_up 1 if the last scrape of the model server's metrics succeeded, else 0.\n" +
		"# TYPE inferprobe_server_up gauge\ninferprobe_server_up{target=\"t\"} 1\n"
	if err := testutil.CollectAndCompare(s, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// A family both normalised and passed through is read for both.
	if got := value(t, s, MetricRequestsRunning, nil); got != 2 {
		t.Errorf("requests_running = %v, want 2", got)
	}
}

// TestPassthroughCollisions: whatever the servers expose, gathering inferprobe never fails:
// families that would clash (same name with another type, or a histogram's _count beside it)
// are left out, the first target in name order keeping its own.
func TestPassthroughCollisions(t *testing.T) {
	// Target a speaks protobuf, which (unlike text) can hold a histogram and a gauge named like
	// its _count.
	var protoA bytes.Buffer
	enc := expfmt.NewEncoder(&protoA, expfmt.NewFormat(expfmt.TypeProtoDelim))
	one, countV := 1.0, uint64(1)
	for _, f := range []*dto.MetricFamily{
		{Name: new("shared"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: &one}}}},
		{Name: new("lat"), Type: dto.MetricType_HISTOGRAM.Enum(), Metric: []*dto.Metric{{Histogram: &dto.Histogram{SampleCount: &countV, SampleSum: &one}}}},
		{Name: new("lat_count"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: &one}}}},
		{Name: new("other_total"), Type: dto.MetricType_COUNTER.Enum(), Metric: []*dto.Metric{{Counter: &dto.Counter{Value: &one}}}},
		{Name: new("bad_mix"), Type: dto.MetricType_COUNTER.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: &one}}}},
	} {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	a := newFakeServer(t, response{contentType: ctProto, body: protoA.Bytes()})
	b := newFakeServer(t, response{contentType: ctText, body: []byte(
		"# TYPE shared counter\nshared 2\n# TYPE other_total counter\nother_total 5\n# TYPE lat_sum gauge\nlat_sum 3\n")})
	everything := func(o *Options) { o.Config.Passthrough = []string{".*"} }
	sa := newTestScraper(t, a.URL, func(o *Options) { everything(o); o.Target = "a" })
	sb := newTestScraper(t, b.URL, func(o *Options) { everything(o); o.Target = "b" })
	scrapeOK(t, sa)
	scrapeOK(t, sb)
	c := NewCollector()
	c.Add(sb)
	c.Add(sa)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather failed: %v", err)
	}
	got := map[string]int{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "target" {
					got[f.GetName()+"/"+lp.GetValue()]++
				}
			}
		}
	}
	for key, want := range map[string]int{
		"shared/a": 1, "shared/b": 0, // b's counter clashes with a's gauge
		"lat/a": 1, "lat_count/a": 0, // a histogram's _count beside it
		"lat_sum/b":     0,                     // and another target's
		"other_total/a": 1, "other_total/b": 1, // same type: both targets
		"bad_mix/a": 0, // a counter family holding a gauge
	} {
		if got[key] != want {
			t.Errorf("%s: %d series, want %d", key, got[key], want)
		}
	}
}

// TestLoRA: the newest lora_requests_info series wins; adapters are split, trimmed and
// deduplicated, one info series per adapter and state.
func TestLoRA(t *testing.T) {
	body := `# TYPE vllm:lora_requests_info gauge
vllm:lora_requests_info{max_lora="4",running_lora_adapters="old",waiting_lora_adapters=""} 100
vllm:lora_requests_info{max_lora="4",running_lora_adapters="sql, chat,,sql",waiting_lora_adapters="chat ,math"} 300
vllm:lora_requests_info{max_lora="4",running_lora_adapters="older",waiting_lora_adapters="x"} 200
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 1
`
	srv := newFakeServer(t, response{contentType: ctText, body: []byte(body)})
	s := newTestScraper(t, srv.URL, nil)
	scrapeOK(t, s)
	want := `# HELP inferprobe_server_lora_adapter_info LoRA adapters the model server reports, 1 per adapter and state (running or waiting).
# TYPE inferprobe_server_lora_adapter_info gauge
inferprobe_server_lora_adapter_info{adapter="chat",state="running",target="t"} 1
inferprobe_server_lora_adapter_info{adapter="chat",state="waiting",target="t"} 1
inferprobe_server_lora_adapter_info{adapter="math",state="waiting",target="t"} 1
inferprobe_server_lora_adapter_info{adapter="sql",state="running",target="t"} 1
`
	if err := testutil.CollectAndCompare(s, strings.NewReader(want), MetricLoRAAdapterInfo); err != nil {
		t.Error(err)
	}

	// No adapters loaded: no series at all.
	srv.serve(ctText, []byte("# TYPE vllm:lora_requests_info gauge\nvllm:lora_requests_info{max_lora=\"4\",running_lora_adapters=\"\",waiting_lora_adapters=\"\"} 1\n"))
	scrapeOK(t, s)
	if n := count(t, s, MetricLoRAAdapterInfo); n != 0 {
		t.Errorf("%d LoRA series with no adapters", n)
	}
}

// TestCollectorAddRemove: one collector serves many targets; Add replaces a target's scraper,
// Remove drops its series.
func TestCollectorAddRemove(t *testing.T) {
	srv := newFakeServer(t, response{contentType: ctText, body: readFixture(t, "llamacpp.txt")})
	mk := func(target string) *Scraper {
		s := newTestScraper(t, srv.URL, func(o *Options) { o.Target = target })
		scrapeOK(t, s)
		return s
	}
	c := NewCollector()
	a, b := mk("a"), mk("b")
	c.Add(b)
	c.Add(a)
	if got := count(t, c, MetricUp); got != 2 {
		t.Fatalf("%d up series, want 2", got)
	}
	if c.Get("a") != a || c.Get("zzz") != nil {
		t.Error("Get does not find what was added")
	}
	a2 := newTestScraper(t, srv.URL, func(o *Options) { o.Target = "a" }) // not scraped yet: up 0
	c.Add(a2)
	if got := value(t, c, MetricUp, map[string]string{"target": "a"}); got != 0 {
		t.Errorf("replaced target still serves the old scraper")
	}
	if removed := c.Remove("b"); removed != b {
		t.Error("Remove did not return the removed scraper")
	}
	if c.Remove("b") != nil {
		t.Error("second Remove found something")
	}
	if got := count(t, c, MetricRequestsRunning); got != 0 {
		t.Errorf("%d requests_running series after removing the only scraped target", got)
	}
	if got := count(t, c, MetricUp); got != 1 {
		t.Errorf("%d up series, want 1", got)
	}
}
