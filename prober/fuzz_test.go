package prober

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzOpenAIStream feeds arbitrary response bodies to the stream reader: it must never panic,
// and every record it produces must be consistent (a known result class, one gap per pair of
// token chunks, ordered offsets, N with its source on success).
func FuzzOpenAIStream(f *testing.F) {
	for _, tr := range [][]string{vllmChat, llamacppChat, tgiChat, ollamaChat, reasoningChat, noUsageNoDone, vllmCompletions} {
		f.Add([]byte(strings.Join(tr, "")))
	}
	f.Add([]byte("data: {\"error\":{\"message\":\"x\",\"code\":\"429\"}}\n\n"))
	f.Add([]byte("data: {\"choices\":[],\"usage\":{\"completion_tokens\":-3}}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":null}\n\n"))
	f.Add([]byte(strings.Join(vllmContinuous(1, 4, 4, 3), "")))
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":\"abort\"}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2,\"prompt_tokens_details\":{\"cached_tokens\":-1},\"completion_tokens_details\":{\"reasoning_tokens\":-5}}}\n\ndata: [DONE]\n\n"))
	c, err := NewOpenAIClient(testTarget("http://127.0.0.1:1", APIOpenAIChat))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ctx := context.Background()
		rec := &Record{Start: time.Now()}
		c.readStream(ctx, ctx, NewSSEReader(bytes.NewReader(body), maxEventBytes), &StreamEvent{}, rec)
		if !slices.Contains(Results, rec.Result) {
			t.Fatalf("result %q is not a known class", rec.Result)
		}
		if rec.Chunks > 0 && len(rec.Gaps) != rec.Chunks-1 {
			t.Fatalf("%d gaps for %d chunks", len(rec.Gaps), rec.Chunks)
		}
		if rec.LastToken < rec.FirstToken || (rec.Chunks > 0 && rec.End < rec.LastToken) {
			t.Fatalf("offsets out of order: %v %v %v", rec.FirstToken, rec.LastToken, rec.End)
		}
		if rec.OutputTokens < 0 || rec.PromptTokens < 0 || rec.ReasoningTokens < 0 || rec.CachedTokens < 0 {
			t.Fatalf("negative token counts %d/%d/%d/%d would panic a Prometheus counter", rec.OutputTokens, rec.PromptTokens, rec.ReasoningTokens, rec.CachedTokens)
		}
		if rec.FinishReason != "" && !slices.Contains(FinishReasons, rec.FinishReason) {
			t.Fatalf("finish reason %q is not in the bounded set", rec.FinishReason)
		}
		if rec.TokensPerChunk && (len(rec.GapTokens) != len(rec.Gaps) || rec.FirstChunkTokens < 1 || slices.ContainsFunc(rec.GapTokens, func(k int32) bool { return k < 1 })) {
			t.Fatalf("per-chunk counts inconsistent: k1 %d, %v for %d gaps", rec.FirstChunkTokens, rec.GapTokens, len(rec.Gaps))
		}
		if rec.FirstChunkTokens < 1 && rec.Chunks > 0 {
			t.Fatalf("k1 = %d", rec.FirstChunkTokens)
		}
		if rec.Result == ResultSuccess && rec.OutputSource == "" {
			t.Fatal("success without an output token source")
		}
		if rec.Result != ResultSuccess && rec.Err == nil {
			t.Fatal("failure without an error for the log")
		}
	})
}
