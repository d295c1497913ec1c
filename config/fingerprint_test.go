package config

import (
	"strings"
	"testing"
	"time"
)

func TestFingerprintChangesWithEverySetting(t *testing.T) {
	mk := func() Target {
		c := mustParse(t, base(
			"    headers: {X-A: '1'}",
			"    metrics: {}",
			"    request:",
			"      temperature: 0.5",
			"      extra_body: {top_k: 5, nested: {a: [1, 2]}}",
		))
		tg := c.Targets[0]
		tg.APIKey = "k1"
		return tg
	}
	ref := mk().Fingerprint()
	if ref == "" {
		t.Fatal("empty fingerprint")
	}
	if again := mk().Fingerprint(); again != ref {
		t.Fatalf("equal targets parsed twice have different fingerprints: pointers leak into it")
	}
	mutations := []struct {
		name string
		f    func(*Target)
	}{
		{"name", func(tg *Target) { tg.Name = "u" }},
		{"url", func(tg *Target) { tg.URL = "http://127.0.0.1:8001" }},
		{"path", func(tg *Target) { tg.Path = "/v2" }},
		{"header value", func(tg *Target) { tg.Headers["X-A"] = "2" }},
		{"api key env name", func(tg *Target) { tg.APIKeyEnv = "X" }},
		{"secret", func(tg *Target) { tg.APIKey = "k2" }},
		{"timeout", func(tg *Target) { tg.Timeout = time.Second }},
		{"tls", func(tg *Target) { tg.TLS.InsecureSkipVerify = true }},
		{"rate", func(tg *Target) { tg.Traffic.Rate = 2 }},
		{"seed", func(tg *Target) { tg.Traffic.Seed = 7 }},
		{"temperature value", func(tg *Target) { *tg.Request.Temperature = 0.6 }},
		{"temperature unset", func(tg *Target) { tg.Request.Temperature = nil }},
		{"cache bust", func(tg *Target) { *tg.Request.CacheBust = false }},
		{"nested extra body", func(tg *Target) {
			tg.Request.ExtraBody["nested"].(map[string]any)["a"].([]any)[1] = int64(3)
		}},
		{"warmup", func(tg *Target) { tg.Warmup.StableWithin = 0.1 }},
		{"slo", func(tg *Target) { tg.SLO.TTFT = time.Second }},
		{"slo objective", func(tg *Target) { tg.SLO.TargetRatio = 0.999 }},
		{"metrics engine", func(tg *Target) { tg.Metrics.Engine = "vllm" }},
		{"metrics removed", func(tg *Target) { tg.Metrics = nil }},
	}
	for _, m := range mutations {
		tg := mk()
		m.f(&tg)
		if got := tg.Fingerprint(); got == ref {
			t.Errorf("changing %s left the fingerprint unchanged", m.name)
		}
	}
}

func TestFingerprintHidesSecret(t *testing.T) {
	tg := Target{Name: "t", APIKey: testSecret}
	if fp := tg.Fingerprint(); strings.Contains(fp, testSecret) || len(fp) != 64 {
		t.Errorf("fingerprint %q: want a 64-hex-digit digest that does not contain the key", fp)
	}
}

func TestFingerprintOfUnencodableTargetIsEmpty(t *testing.T) {
	tg := Target{Request: Request{ExtraBody: map[string]any{"c": make(chan int)}}}
	if fp := tg.Fingerprint(); fp != "" {
		t.Errorf("fingerprint = %q, want empty", fp)
	}
	c := &Config{Targets: []Target{{Name: "x", URL: "http://h:1", Model: "m", Request: tg.Request}}}
	c.ApplyDefaults()
	checkErrors(t, asErrors(t, c.Validate()), []wantErr{{"targets[0].request.extra_body", 0, "cannot be encoded as JSON"}})
}
