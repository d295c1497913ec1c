package simulator

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestChunkTokensAndContinuousUsage: with ChunkTokens 4, 10 tokens come as chunks of 4, 4 and
// 2 words, each chunk with cumulative usage when continuous_usage_stats is asked for, and the
// chunks are about 4 ITLs apart.
func TestChunkTokensAndContinuousUsage(t *testing.T) {
	cfg := fastConfig()
	cfg.ChunkTokens = 4
	cfg.ITL = 5 * time.Millisecond
	_, ts := startServer(t, cfg)
	sum := stream(context.Background(), ts, "/v1/chat/completions", map[string]any{
		"model": cfg.ModelName, "messages": []map[string]any{{"role": "user", "content": "hi"}},
		"max_tokens": 10, "ignore_eos": true,
		"stream_options": map[string]any{"include_usage": true, "continuous_usage_stats": true},
	})
	if sum.readErr != nil || !sum.done || sum.finish != "length" {
		t.Fatalf("stream: err %v done %v finish %q", sum.readErr, sum.done, sum.finish)
	}
	if sum.tokens != 3 || CountTokens(sum.text) != 10 || sum.usage != 10 {
		t.Fatalf("%d token chunks with %d words, usage %d; want 3 chunks, 10 words, usage 10", sum.tokens, CountTokens(sum.text), sum.usage)
	}
	var cums []int
	for _, raw := range sum.eventsRaw {
		if raw == "[DONE]" {
			continue
		}
		var c wireChunk
		if err := json.Unmarshal([]byte(raw), &c); err != nil {
			t.Fatalf("chunk %q: %v", raw, err)
		}
		if c.Usage == nil {
			t.Fatalf("chunk without usage: %s", raw)
		}
		if _, ok := c.tokenText(); ok {
			cums = append(cums, c.Usage.CompletionTokens)
		}
	}
	if len(cums) != 3 || cums[0] != 4 || cums[1] != 8 || cums[2] != 10 {
		t.Errorf("cumulative usage at the token chunks %v, want [4 8 10]", cums)
	}
	if gap := sum.tokTimes[1].Sub(sum.tokTimes[0]); gap < 4*cfg.ITL-cfg.ITL/2 {
		t.Errorf("chunks %v apart, want about 4 ITLs (%v)", gap, 4*cfg.ITL)
	}
	// Without continuous usage, only the last chunk has usage.
	sum = stream(context.Background(), ts, "/v1/chat/completions", map[string]any{
		"model": cfg.ModelName, "messages": []map[string]any{{"role": "user", "content": "hi"}},
		"max_tokens": 4, "ignore_eos": true, "stream_options": map[string]any{"include_usage": true},
	})
	withUsage := 0
	for _, raw := range sum.eventsRaw {
		if strings.Contains(raw, `"usage"`) {
			withUsage++
		}
	}
	if withUsage != 1 || sum.tokens != 1 {
		t.Errorf("%d chunks with usage, %d token chunks; want 1 and 1", withUsage, sum.tokens)
	}
}

func TestStreamFaultsAbortEmptyReset(t *testing.T) {
	req := func() map[string]any {
		return map[string]any{"model": "inferprobe-sim", "messages": []map[string]any{{"role": "user", "content": "hi"}}, "max_tokens": 3}
	}
	for _, tc := range []struct {
		name    string
		set     func(*Config)
		outcome Outcome
		check   func(t *testing.T, s streamSummary)
	}{
		{"abort", func(c *Config) { c.AbortRate = 1 }, OutcomeAborted, func(t *testing.T, s streamSummary) {
			if s.finish != "abort" || s.tokens == 0 || !s.done {
				t.Errorf("finish %q tokens %d done %v", s.finish, s.tokens, s.done)
			}
		}},
		{"empty", func(c *Config) { c.EmptyRate = 1 }, OutcomeEmpty, func(t *testing.T, s streamSummary) {
			if len(s.eventsRaw) != 1 || !s.done {
				t.Errorf("events %v, want only [DONE]", s.eventsRaw)
			}
		}},
		{"reset before headers", func(c *Config) { c.ResetRate = 1 }, OutcomeReset, func(t *testing.T, s streamSummary) {
			if s.status != 0 || s.readErr == nil {
				t.Errorf("status %d err %v, want no response", s.status, s.readErr)
			}
		}},
		{"reset mid-stream", func(c *Config) { c.ResetMidStreamRate = 1 }, OutcomeReset, func(t *testing.T, s streamSummary) {
			if s.status != 200 || s.tokens != 1 || s.done || s.readErr == nil {
				t.Errorf("status %d tokens %d done %v err %v, want one token then a broken stream", s.status, s.tokens, s.done, s.readErr)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fastConfig()
			tc.set(&cfg)
			s, ts := startServer(t, cfg)
			sum := stream(context.Background(), ts, "/v1/chat/completions", req())
			tc.check(t, sum)
			waitFor(t, "the outcome", 2*time.Second, func() bool { return s.Stats().Outcomes[tc.outcome] == 1 })
		})
	}
}
