package engine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/traffic"
)

// FuzzParse drives configuration through every registry's checks: Parse never panics, every
// failure is a non-empty config.Errors whose entries all say something, and every config it
// accepts validates again, builds a plan for each target (the registry that checked it can
// construct it) and, for open-loop kinds, yields non-decreasing arrivals.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "examples", "*.yml"))
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		base("    traffic: {pacer: gamma, rate: 2, burstiness: 0.5, seed: 7}"),
		base("    traffic: {pacer: concurrent, concurrency: 8}"),
		base("    traffic:", "      pacer: stages",
			"      stages: [{rate: 1, duration: 10m}, {rate: 5, duration: 2m, pacer: poisson}, {concurrency: 16, duration: 1m}]"),
		base("    traffic: {pacer: stages, stages: [{rate: 1, concurrency: 2, duration: 0s, pacer: gamma}]}"),
		base("    request: {lora_traffic_split: [{name: a, split: 0.5}, {name: b, split: 0.5}]}"),
		"base_seed: 3\n" + base("    api: openai-completions", "    metrics: {engine: sglang}"),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			var errs config.Errors
			if c != nil || !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("Parse returned %v, %v", c, err)
			}
			for _, e := range errs {
				if e.Msg == "" {
					t.Fatalf("error without a message: %+v", e)
				}
			}
			return
		}
		if err := c.Validate(Extensions()...); err != nil {
			t.Fatalf("Parse returned a config that fails Validate: %v", err)
		}
		for _, tg := range c.Targets {
			seed, _, _ := TargetSeed(c.BaseSeed, tg)
			p, err := traffic.PlanFor(tg.Traffic, seed)
			if err != nil {
				t.Fatalf("target %q passed validation but builds no plan: %v", tg.Name, err)
			}
			for _, ph := range p.Phases {
				arr := ph.Arrivals(0)
				var prev int64
				for n := uint64(0); n < 50; n++ {
					at, ok := arr.Next(n)
					if !ok {
						break
					}
					if int64(at) < prev {
						t.Fatalf("target %q: arrivals go back: %v after %v", tg.Name, at, prev)
					}
					prev = int64(at)
				}
			}
		}
	})
}
