package engine

import (
	"os"
	"path/filepath"
	"testing"
)

// TestExamplesLoad loads every examples/*.yml and checks that each points at the right
// server: the port and path its engine really uses, ignore_eos only where it is supported.
func TestExamplesLoad(t *testing.T) {
	type want struct {
		requestURL string
		ignoreEOS  bool
		metricsURL string // "" means no metrics block
		engine     string
	}
	expect := map[string][]want{
		"simulator.yml":    {{"http://127.0.0.1:8000/v1/chat/completions", true, "http://127.0.0.1:8000/metrics", "vllm"}},
		"vllm.yml":         {{"http://127.0.0.1:8000/v1/chat/completions", true, "http://127.0.0.1:8000/metrics", "vllm"}},
		"sglang.yml":       {{"http://127.0.0.1:30000/v1/chat/completions", true, "http://127.0.0.1:30000/metrics", "sglang"}},
		"llamacpp.yml":     {{"http://127.0.0.1:8080/v1/chat/completions", true, "http://127.0.0.1:8080/metrics", "llamacpp"}},
		"tgi-messages.yml": {{"http://127.0.0.1:8080/v1/chat/completions", false, "http://127.0.0.1:8080/metrics", "tgi"}},
		"trtllm-serve.yml": {{"http://127.0.0.1:8000/v1/completions", true, "http://127.0.0.1:8000/prometheus/metrics", "trtllm-serve"}},
		"ollama.yml":       {{"http://127.0.0.1:11434/v1/chat/completions", false, "", ""}},
		"tgi.yml":          {{"http://127.0.0.1:8080/generate_stream", false, "http://127.0.0.1:8080/metrics", "tgi"}},
		"triton.yml":       {{"http://127.0.0.1:8000/v2/models/{model}/generate_stream", false, "", ""}},
		"litellm.yml":      {{"http://127.0.0.1:4000/v1/messages", false, "", ""}},
		"multi-target.yml": {
			{"http://127.0.0.1:8000/v1/chat/completions", true, "http://127.0.0.1:8000/metrics", "vllm"},
			{"http://127.0.0.1:30000/v1/chat/completions", false, "http://127.0.0.1:30000/metrics", "sglang"},
			{"https://llm-gateway.example.com/v1/completions", false, "", ""},
		},
	}
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(expect) {
		t.Errorf("found %d examples, want %d: %v", len(files), len(expect), files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// Give every key variable the examples name a value, as the user would.
			parsed, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, tg := range parsed.Targets {
				if tg.APIKeyEnv != "" {
					t.Setenv(tg.APIKeyEnv, "example-key")
				}
			}
			c, err := Load(f)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			ws, ok := expect[filepath.Base(f)]
			if !ok {
				t.Fatalf("no expectations for %s: add them to this test", f)
			}
			if len(c.Targets) != len(ws) {
				t.Fatalf("%d targets, want %d", len(c.Targets), len(ws))
			}
			for i, w := range ws {
				tg := c.Targets[i]
				if got := tg.RequestURL(); got != w.requestURL {
					t.Errorf("targets[%d] request URL = %q, want %q", i, got, w.requestURL)
				}
				if tg.Request.IgnoreEOS != w.ignoreEOS {
					t.Errorf("targets[%d] ignore_eos = %v, want %v", i, tg.Request.IgnoreEOS, w.ignoreEOS)
				}
				switch {
				case w.metricsURL == "" && tg.Metrics != nil:
					t.Errorf("targets[%d] has a metrics block; the server has no Prometheus endpoint", i)
				case w.metricsURL != "" && (tg.Metrics == nil || tg.Metrics.URL != w.metricsURL || tg.Metrics.Engine != w.engine):
					t.Errorf("targets[%d] metrics = %+v, want url %q engine %q", i, tg.Metrics, w.metricsURL, w.engine)
				}
				if tg.APIKeyEnv != "" && tg.APIKey.Value() != "example-key" {
					t.Errorf("targets[%d] key not loaded from %s", i, tg.APIKeyEnv)
				}
			}
		})
	}
}
