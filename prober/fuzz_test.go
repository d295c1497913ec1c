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
	c, err := NewOpenAIClient(testTarget("http://127.0.0.1:1", APIOpenAIChat))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ctx := context.Background()
		rec := &Record{Start: time.Now()}
		c.readStream(ctx, ctx, NewSSEReader(bytes.NewReader(body), maxEventBytes), rec)
		if !slices.Contains(Results, rec.Result) {
			t.Fatalf("result %q is not a known class", rec.Result)
		}
		if rec.Chunks > 0 && len(rec.Gaps) != rec.Chunks-1 {
			t.Fatalf("%d gaps for %d chunks", len(rec.Gaps), rec.Chunks)
		}
		if rec.LastToken < rec.FirstToken || (rec.Chunks > 0 && rec.End < rec.LastToken) {
			t.Fatalf("offsets out of order: %v %v %v", rec.FirstToken, rec.LastToken, rec.End)
		}
		if rec.OutputTokens < 0 || rec.PromptTokens < 0 {
			t.Fatalf("negative token counts %d/%d would panic a Prometheus counter", rec.OutputTokens, rec.PromptTokens)
		}
		if rec.Result == ResultSuccess && rec.OutputSource == "" {
			t.Fatal("success without an output token source")
		}
		if rec.Result != ResultSuccess && rec.Err == nil {
			t.Fatal("failure without an error for the log")
		}
	})
}
