package server

import (
	"strings"
	"testing"
)

// TestGoldenPerEngine serves each engine's documented exposition, in each format, and compares
// the normalised output with a golden file. The OpenMetrics and protobuf forms of a fixture must
// give exactly the text form's output.
func TestGoldenPerEngine(t *testing.T) {
	tests := []struct {
		fixture string
		format  string // text, openmetrics or protobuf
		engine  string
		golden  string
	}{
		{"vllm.txt", "text", EngineAuto, "vllm.golden"},
		{"vllm.txt", "text", EngineVLLM, "vllm.golden"},
		{"vllm.om", "openmetrics", EngineAuto, "vllm.golden"},
		{"vllm.txt", "protobuf", EngineAuto, "vllm.golden"},
		{"vllm_v0.txt", "text", EngineAuto, "vllm_v0.golden"},
		{"sglang.txt", "text", EngineAuto, "sglang.golden"},
		{"sglang.txt", "text", EngineSGLang, "sglang.golden"},
		{"sglang.om", "openmetrics", EngineAuto, "sglang.golden"},
		{"tgi.txt", "text", EngineAuto, "tgi.golden"},
		{"tgi.txt", "protobuf", EngineTGI, "tgi.golden"},
		{"llamacpp.txt", "text", EngineAuto, "llamacpp.golden"},
		{"llamacpp.txt", "text", EngineLlamaCPP, "llamacpp.golden"},
		{"triton_trtllm.txt", "text", EngineAuto, "triton_trtllm.golden"},
		{"triton_trtllm.txt", "text", EngineTritonTRTLLM, "triton_trtllm.golden"},
		{"trtllm_serve.txt", "text", EngineAuto, "trtllm_serve.golden"},
		{"trtllm_serve.txt", "text", EngineTRTLLMServe, "trtllm_serve.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture+"/"+tt.format+"/"+tt.engine, func(t *testing.T) {
			if *update && (tt.format != "text" || tt.engine != EngineAuto) {
				t.Skip("goldens are written from the text form with auto-detection")
			}
			body := readFixture(t, tt.fixture)
			ct := ctText
			switch tt.format {
			case "openmetrics":
				ct = ctOM
			case "protobuf":
				ct, body = ctProto, toProto(t, body)
			}
			srv := newFakeServer(t, response{contentType: ct, body: body})
			s := newTestScraper(t, srv.URL, func(o *Options) { o.Config.Engine = tt.engine })
			scrapeOK(t, s)
			compareGolden(t, s, tt.golden)
		})
	}
}

// TestAutoDetection checks the engine chosen for each fixture and for mixed or foreign
// expositions.
func TestAutoDetection(t *testing.T) {
	tgiLines := "# TYPE tgi_queue_size gauge\ntgi_queue_size 1\n"
	tests := []struct {
		name string
		body string
		want string
	}{
		{"vllm", string(readFixture(t, "vllm.txt")), EngineVLLM},
		{"vllm v0", string(readFixture(t, "vllm_v0.txt")), EngineVLLM},
		{"sglang", string(readFixture(t, "sglang.txt")), EngineSGLang},
		{"tgi", string(readFixture(t, "tgi.txt")), EngineTGI},
		{"llamacpp", string(readFixture(t, "llamacpp.txt")), EngineLlamaCPP},
		{"triton", string(readFixture(t, "triton_trtllm.txt")), EngineTritonTRTLLM},
		{"trtllm-serve", string(readFixture(t, "trtllm_serve.txt")), EngineTRTLLMServe},
		{"mostly vllm with a stray tgi family", string(readFixture(t, "vllm.txt")) + tgiLines, EngineVLLM},
		{"plain Go process", "# TYPE go_goroutines gauge\ngo_goroutines 12\n", EngineUnknown},
		{"empty", "", EngineUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t, response{contentType: ctText, body: []byte(tt.body)})
			s := newTestScraper(t, srv.URL, nil)
			scrapeOK(t, s)
			if got := value(t, s, MetricEngineInfo, map[string]string{"engine": tt.want}); got != 1 {
				t.Errorf("engine_info{engine=%q} = %v, want 1", tt.want, got)
			}
		})
	}
}

// TestUnknownExposition: a server inferprobe has no table for is up, with engine "unknown" and
// no normalised series.
func TestUnknownExposition(t *testing.T) {
	body := "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n" +
		"http_requests_total{code=\"200\"} 1027\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 1.7e9\n"
	srv := newFakeServer(t, response{contentType: ctText, body: []byte(body)})
	s := newTestScraper(t, srv.URL, nil)
	scrapeOK(t, s)
	compareGolden(t, s, "unknown.golden")
	if n := count(t, s, normalisedNames...); n != 1 { // engine_info only
		t.Errorf("%d normalised series, want only engine_info", n)
	}
}

// TestPartialExposition: engines that lack a series simply lack it.
func TestPartialExposition(t *testing.T) {
	var b strings.Builder
	for _, l := range strings.SplitAfter(string(readFixture(t, "vllm.txt")), "\n") {
		if strings.Contains(l, "vllm:num_requests_running") || strings.Contains(l, "vllm:prompt_tokens_total") ||
			strings.Contains(l, "vllm:e2e_request_latency_seconds") {
			b.WriteString(l)
		}
	}
	srv := newFakeServer(t, response{contentType: ctText, body: []byte(b.String())})
	s := newTestScraper(t, srv.URL, nil)
	scrapeOK(t, s)
	compareGolden(t, s, "partial.golden")
}

// TestConfiguredEngineIgnoresOthers: with an explicit engine, another engine's families are not
// read (they are not even parsed), and engine_info still names the configured engine.
func TestConfiguredEngineIgnoresOthers(t *testing.T) {
	srv := newFakeServer(t, response{contentType: ctText, body: readFixture(t, "vllm.txt")})
	s := newTestScraper(t, srv.URL, func(o *Options) { o.Config.Engine = EngineSGLang })
	scrapeOK(t, s)
	if got := value(t, s, MetricEngineInfo, map[string]string{"engine": EngineSGLang}); got != 1 {
		t.Errorf("engine_info = %v", got)
	}
	if n := count(t, s, normalisedNames...); n != 1 {
		t.Errorf("%d normalised series from a vLLM exposition read as SGLang, want only engine_info", n)
	}
}
