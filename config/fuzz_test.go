package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, that every failure is a non-empty Errors whose
// entries all say something, and that every Config it returns passes its own validation and
// can be fingerprinted and encoded.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "examples", "*.yml"))
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		"",
		"targets: []",
		base(),
		base("    traffic: {rate: 0.5, pacer: poisson}", "    metrics: {interval: 5s}"),
		base("    request:", "      extra_body: {a: [1, {b: c}], d: .inf}"),
		base("    <<: {timeout: 5s}", "    warmup: {min_duration: 1m}"),
		base("    slo: {ttft: 1s, target_ratio: 0.999, window: 168h, regression_factor: 2}"),
		base("sweep: {type: geometric, stages: 4, stage_duration: 1m, probe_concurrency: 8, goodput_target: 0.9}"),
		"x-a: &a {name: t, url: 'http://h:1', model: m}\ntargets: [*a, *a]\n",
		"targets:\n  - &t {name: t, url: 'http://h:1', model: m, headers: *t}\n",
		"targets: [{name: t, url: 'http://h:1', model: m, timeout: 5, api: 1}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Fatal("config returned with an error")
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %v is not a non-empty Errors", err)
			}
			for _, e := range errs {
				if e.Msg == "" {
					t.Fatalf("error without a message: %+v", e)
				}
			}
			return
		}
		if c == nil {
			t.Fatal("nil config without an error")
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse returned a config that fails Validate: %v", err)
		}
		for _, tg := range c.Targets {
			if tg.Fingerprint() == "" {
				t.Fatalf("target %q cannot be fingerprinted", tg.Name)
			}
		}
		if _, err := json.Marshal(c); err != nil {
			t.Fatalf("config cannot be encoded: %v", err)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "examples", "multi-target.yml"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFingerprint(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "examples", "multi-target.yml"))
	if err != nil {
		b.Fatal(err)
	}
	c, err := Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, tg := range c.Targets {
			_ = tg.Fingerprint()
		}
	}
}
