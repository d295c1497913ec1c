package prober

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/internal/simtest"
	"github.com/inferprobe/inferprobe/simulator"
	"github.com/inferprobe/inferprobe/traffic"
)

// httpFlavours are the SSE flavours besides OpenAI chat and completions, with their golden
// capture of the protocol's documented event stream (prober/testdata/<api>.sse).
var httpFlavours = []string{APIOpenAIResponses, APIAnthropicMessages, APITGI, APITritonGenerate}

// golden returns a flavour's documented stream, one string per SSE event.
func golden(t testing.TB, api string) []string {
	t.Helper()
	return goldenFile(t, "testdata/"+api+".sse")
}

// captures lists a flavour's further documented cases, testdata/<api>.<case>.sse.
func captures(t testing.TB, api string) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/" + api + ".*.sse")
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// goldenFile reads a capture, one string per SSE event.
func goldenFile(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, e := range strings.SplitAfter(string(b), "\n\n") {
		if strings.TrimSpace(e) != "" {
			events = append(events, e)
		}
	}
	return events
}

// flavourTarget is testTarget for any registered flavour, with its default path.
func flavourTarget(url, api string) config.Target {
	tgt := testTarget(url, APIOpenAIChat)
	a, _ := LookupAPI(api)
	tgt.API, tgt.Path = api, a.DefaultPath(tgt.Request.Streaming())
	return tgt
}

// doFlavour sends one request of api to h and returns its record.
func doFlavour(t *testing.T, api string, h http.Handler, mutate func(*config.Target)) *Record {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	tgt := flavourTarget(srv.URL, api)
	if mutate != nil {
		mutate(&tgt)
	}
	c, err := NewClient(tgt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.(interface{ Close() }).Close()
	rec := &Record{}
	c.Do(context.Background(), traffic.Request{Prompt: "a b c", PromptTokens: 3}, rec)
	return rec
}

// TestFlavourGoldenRecords: each flavour's documented stream, served with a pause before each
// event, gives the right timing record: TTFT no earlier than the events before the first
// token, one gap per later token chunk, N and its source, the prompt and the finish.
func TestFlavourGoldenRecords(t *testing.T) {
	const pause = 5 * time.Millisecond
	tests := []struct {
		api               string
		chunks, n         int
		nSource           string
		prompt            int
		promptSource      string
		finish            string
		perChunk          bool
		eventsBeforeFirst int
		model             string // the response's model; TGI's events name none
	}{
		{APIOpenAIResponses, 3, 3, SourceUsage, 37, SourceUsage, FinishStop, false, 5, "gpt-4.1"},
		{APIAnthropicMessages, 2, 15, SourceUsage, 25, SourceUsage, FinishStop, false, 4, "claude-sonnet-4-5"},
		// One TGI event is one token; generated_tokens counts the special EOS token.
		{APITGI, 3, 4, SourceUsage, 5, SourceUsage, FinishStop, true, 1, ""},
		// Triton sends no usage and no finish: N counts events, the end of the body ends it.
		{APITritonGenerate, 3, 3, SourceChunks, 3, SourceEstimate, "", false, 1, "ensemble"},
	}
	for _, tc := range tests {
		t.Run(tc.api, func(t *testing.T) {
			events := golden(t, tc.api)
			rec := doFlavour(t, tc.api, transcript(sse, pause, events...), nil)
			if rec.Result != ResultSuccess {
				t.Fatalf("result %s (%v), want success", rec.Result, rec.Err)
			}
			if rec.Chunks != tc.chunks || rec.OutputTokens != tc.n || rec.OutputSource != tc.nSource {
				t.Errorf("chunks=%d N=%d source=%s, want %d %d %s", rec.Chunks, rec.OutputTokens, rec.OutputSource, tc.chunks, tc.n, tc.nSource)
			}
			if rec.PromptTokens != tc.prompt || rec.PromptSource != tc.promptSource {
				t.Errorf("prompt=%d %s, want %d %s", rec.PromptTokens, rec.PromptSource, tc.prompt, tc.promptSource)
			}
			if rec.FinishReason != tc.finish {
				t.Errorf("finish %q, want %q", rec.FinishReason, tc.finish)
			}
			if rec.ResponseModel != tc.model {
				t.Errorf("response model %q, want %q", rec.ResponseModel, tc.model)
			}
			if rec.TokensPerChunk != tc.perChunk {
				t.Errorf("TokensPerChunk %v, want %v", rec.TokensPerChunk, tc.perChunk)
			}
			if len(rec.Gaps) != rec.Chunks-1 || len(rec.GapTokens) != len(rec.Gaps) {
				t.Errorf("%d gaps, %d gap counts for %d chunks", len(rec.Gaps), len(rec.GapTokens), rec.Chunks)
			}
			for i := range rec.Gaps {
				if k := rec.GapTokenCount(i); k != 1 {
					t.Errorf("gap %d carried %d tokens, want 1", i, k)
				}
				if rec.Gaps[i] < 0 {
					t.Errorf("negative gap %v", rec.Gaps[i])
				}
			}
			if ttft, ok := rec.TTFT(); !ok || ttft < time.Duration(tc.eventsBeforeFirst)*pause {
				t.Errorf("TTFT %v, want at least %v", ttft, time.Duration(tc.eventsBeforeFirst)*pause)
			}
			if _, ok := rec.TPOT(); !ok {
				t.Error("TPOT undefined for a stream of several token chunks")
			}
			if minEnd := time.Duration(len(events)) * pause; rec.End < minEnd || rec.End < rec.LastToken {
				t.Errorf("end %v, want at least %v and after the last token %v", rec.End, minEnd, rec.LastToken)
			}
		})
	}
}

// TestFlavourDocumentedCaptures: the further documented cases of each flavour
// (testdata/<api>.<case>.sse, sources in testdata/README.md) give the right record: result
// class, finish, N and its source, the prompt, the per-chunk counts. Every capture has a row,
// so a new capture without expectations fails.
func TestFlavourDocumentedCaptures(t *testing.T) {
	type want struct {
		result, finish string
		chunks, n      int
		nSource        string
		prompt         int // 0: not checked
		perChunk       bool
		gapTokens      []int // per later chunk, when perChunk
	}
	tests := map[string]want{
		// finish length: the last token is an ordinary one carrying details; a keep-alive
		// comment comes first.
		"tgi.length":     {ResultSuccess, FinishLength, 3, 3, SourceUsage, 7, true, []int{1, 1}},
		"tgi.validation": {result: ResultHTTP4xx}, // in the stream, with status 200
		"tgi.generation": {result: ResultHTTP5xx},
		"tgi.incomplete": {result: ResultStreamTruncated},
		// The TensorRT-LLM ensemble's event carries every output tensor; no count, no finish.
		"triton-generate.trtllm": {ResultSuccess, "", 3, 3, SourceChunks, 0, false, nil},
		// The vLLM backend with return_finish_reason and return_num_output_tokens: per-response
		// counts (one response of two tokens), "None" until the last.
		"triton-generate.vllm":  {ResultSuccess, FinishLength, 3, 4, SourceUsage, 0, true, []int{2, 1}},
		"triton-generate.error": {result: ResultHTTP5xx},
		// vLLM's /v1/messages: output_tokens 0 at message_start, input_tokens repeated on
		// message_delta, no ping.
		"anthropic-messages.vllm":       {ResultSuccess, FinishLength, 3, 3, SourceUsage, 12, false, nil},
		"anthropic-messages.overloaded": {result: ResultHTTP5xx}, // 529 outside a stream
		"anthropic-messages.internal":   {result: ResultHTTP5xx},
		"openai-responses.incomplete":   {ResultSuccess, FinishLength, 2, 2, SourceUsage, 9, false, nil},
		"openai-responses.failed":       {result: ResultHTTP5xx},
		"openai-responses.error":        {result: ResultHTTP429},
	}
	seen := 0
	for _, api := range httpFlavours {
		for _, path := range captures(t, api) {
			name := strings.TrimSuffix(filepath.Base(path), ".sse")
			t.Run(name, func(t *testing.T) {
				w, ok := tests[name]
				if !ok {
					t.Fatalf("no expectations for %s", path)
				}
				seen++
				rec := doFlavour(t, api, transcript(sse, time.Millisecond, goldenFile(t, path)...), nil)
				if rec.Result != w.result {
					t.Fatalf("result %s (%v), want %s", rec.Result, rec.Err, w.result)
				}
				if w.result != ResultSuccess {
					if rec.Err == nil {
						t.Error("a failure must carry its error for the log")
					}
					return
				}
				if rec.FinishReason != w.finish || rec.Chunks != w.chunks || rec.OutputTokens != w.n || rec.OutputSource != w.nSource {
					t.Errorf("finish %q, %d chunks, N=%d from %s; want %q, %d, %d from %s", rec.FinishReason, rec.Chunks, rec.OutputTokens, rec.OutputSource, w.finish, w.chunks, w.n, w.nSource)
				}
				if w.prompt > 0 && (rec.PromptTokens != w.prompt || rec.PromptSource != SourceUsage) {
					t.Errorf("prompt %d from %s, want %d from usage", rec.PromptTokens, rec.PromptSource, w.prompt)
				}
				if rec.TokensPerChunk != w.perChunk {
					t.Errorf("TokensPerChunk %v, want %v", rec.TokensPerChunk, w.perChunk)
				}
				if len(rec.Gaps) != rec.Chunks-1 {
					t.Errorf("%d gaps for %d chunks", len(rec.Gaps), rec.Chunks)
				}
				if w.perChunk {
					for i, k := range w.gapTokens {
						if i >= len(rec.Gaps) || rec.GapTokenCount(i) != k {
							t.Errorf("gap %d tokens: got %v, want %v", i, rec.GapTokens, w.gapTokens)
							break
						}
					}
				}
				if _, ok := rec.TTFT(); !ok {
					t.Error("TTFT undefined")
				}
			})
		}
	}
	if seen != len(tests) {
		t.Errorf("%d captures found for %d expectations", seen, len(tests))
	}
}

// TestFlavourErrorClasses: each flavour's in-stream errors, truncations, malformed events
// and HTTP statuses map to result classes.
func TestFlavourErrorClasses(t *testing.T) {
	tgi, tri, ant, rsp := golden(t, APITGI), golden(t, APITritonGenerate), golden(t, APIAnthropicMessages), golden(t, APIOpenAIResponses)
	status := func(code int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = w.Write([]byte(body))
		}
	}
	tests := []struct {
		api, name string
		h         http.Handler
		want      string
	}{
		{APITGI, "overloaded", transcript(sse, 0, tgi[0], `data:{"error":"Model is overloaded","error_type":"overloaded"}`+"\n\n"), ResultHTTP429},
		{APITGI, "validation", transcript(sse, 0, `data:{"error":"Input validation error: inputs must have less than 1024 tokens","error_type":"validation"}`+"\n\n"), ResultHTTP4xx},
		{APITGI, "generation", transcript(sse, 0, tgi[0], `data:{"error":"CUDA out of memory","error_type":"generation"}`+"\n\n"), ResultHTTP5xx},
		{APITGI, "truncated before details", transcript(sse, 0, tgi[:2]...), ResultStreamTruncated},
		{APITGI, "malformed", transcript(sse, 0, tgi[0], "data:{\"token\":\n\n"), ResultProtocol},
		{APITGI, "only the EOS token", transcript(sse, 0, tgi[3]), ResultEmpty},
		{APITGI, "429 status", status(429, `{"error":"Model is overloaded","error_type":"overloaded"}`), ResultHTTP429},
		{APITGI, "422 status", status(422, `{"error":"Input validation error","error_type":"validation"}`), ResultHTTP4xx},
		{APITritonGenerate, "error event", transcript(sse, 0, tri[0], `data: {"error":"in ensemble 'ensemble', Encountered error for requestId 1"}`+"\n\n"), ResultHTTP5xx},
		{APITritonGenerate, "malformed", transcript(sse, 0, tri[0], "data: {\"text_output\":\n\n"), ResultProtocol},
		{APITritonGenerate, "no events", transcript(sse, 0), ResultEmpty},
		{APITritonGenerate, "400 status", status(400, `{"error":"Unable to parse 'text_input'"}`), ResultHTTP4xx},
		{APIAnthropicMessages, "overloaded_error", transcript(sse, 0, ant[0], ant[3], "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"), ResultHTTP5xx},
		{APIAnthropicMessages, "rate_limit_error", transcript(sse, 0, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}\n\n"), ResultHTTP429},
		{APIAnthropicMessages, "invalid_request_error", transcript(sse, 0, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"bad\"}}\n\n"), ResultHTTP4xx},
		{APIAnthropicMessages, "truncated before message_delta", transcript(sse, 0, ant[:5]...), ResultStreamTruncated},
		{APIAnthropicMessages, "finished, message_stop lost", transcript(sse, 0, ant[:7]...), ResultSuccess},
		{APIAnthropicMessages, "no content", transcript(sse, 0, ant[0], ant[6], ant[7]), ResultEmpty},
		{APIAnthropicMessages, "529 status", status(529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`), ResultHTTP5xx},
		{APIOpenAIResponses, "error event", transcript(sse, 0, rsp[0], "event: error\ndata: {\"type\":\"error\",\"code\":\"rate_limit_exceeded\",\"message\":\"slow down\",\"param\":null,\"sequence_number\":1}\n\n"), ResultHTTP429},
		{APIOpenAIResponses, "response.failed", transcript(sse, 0, rsp[0], rsp[4], "event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":5,\"response\":{\"id\":\"resp_1\",\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"The model failed\"},\"usage\":null}}\n\n"), ResultHTTP5xx},
		{APIOpenAIResponses, "truncated before completed", transcript(sse, 0, rsp[:6]...), ResultStreamTruncated},
		{APIOpenAIResponses, "malformed", transcript(sse, 0, rsp[0], "data: {\"type\":\"response.output_text.delta\",\"delta\":\n\n"), ResultProtocol},
		{APIOpenAIResponses, "404 status", status(404, `{"error":{"message":"no such model","type":"invalid_request_error","code":"model_not_found"}}`), ResultHTTP4xx},
	}
	for _, tc := range tests {
		t.Run(tc.api+"/"+tc.name, func(t *testing.T) {
			rec := doFlavour(t, tc.api, tc.h, nil)
			if rec.Result != tc.want {
				t.Fatalf("result %s (%v), want %s", rec.Result, rec.Err, tc.want)
			}
			if tc.want != ResultSuccess && rec.Err == nil {
				t.Error("a failure must carry its error for the log")
			}
		})
	}
}

// TestFlavourIncompleteIsLength: the Responses API ends a capped answer with
// response.incomplete (reason max_output_tokens): a success with finish length.
func TestFlavourIncompleteIsLength(t *testing.T) {
	rsp := golden(t, APIOpenAIResponses)
	last := strings.NewReplacer("response.completed", "response.incomplete", `"status":"completed","error":null,"incomplete_details":null`, `"status":"incomplete","error":null,"incomplete_details":{"reason":"max_output_tokens"}`).Replace(rsp[len(rsp)-1])
	rec := doFlavour(t, APIOpenAIResponses, transcript(sse, 0, append(rsp[:len(rsp)-1:len(rsp)-1], last)...), nil)
	if rec.Result != ResultSuccess || rec.FinishReason != FinishLength || rec.OutputTokens != 3 {
		t.Fatalf("result %s finish %s N %d (%v), want success, length, 3", rec.Result, rec.FinishReason, rec.OutputTokens, rec.Err)
	}
}

// TestSharedTransportAllFlavours: the machinery every HTTP flavour shares — the first-byte,
// idle and total timeouts, the response size cap and the caller's cancellation — classes the
// same for all of them.
func TestSharedTransportAllFlavours(t *testing.T) {
	short := func(tg *config.Target) {
		tg.IdleTimeout, tg.FirstByteTimeout, tg.Timeout = 150*time.Millisecond, 150*time.Millisecond, 2*time.Second
	}
	stallAfter := func(events ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", sse)
			w.WriteHeader(200)
			for _, e := range events {
				_, _ = w.Write([]byte(e))
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		}
	}
	// No headers at all: the first-byte bound (stallAfter sends headers, then nothing).
	stallBeforeHeaders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body, so the server watches the connection and ends r's context when
		// the client gives up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	for _, api := range append([]string{APIOpenAIChat}, httpFlavours...) {
		var events []string
		if api == APIOpenAIChat {
			events = vllmChat
		} else {
			events = golden(t, api)
		}
		cases := []struct {
			name    string
			h       http.Handler
			mutate  func(*config.Target)
			want    string
			wantErr error // the error's cause, if it must be one
		}{
			{"first byte timeout", stallBeforeHeaders, func(tg *config.Target) {
				short(tg)
				tg.FirstByteTimeout = 100 * time.Millisecond
			}, ResultTimeout, errFirstByteTimeout},
			{"idle timeout", stallAfter(events[:2]...), short, ResultTimeout, errIdleTimeout},
			{"total timeout", transcript(sse, 60*time.Millisecond, events...), func(tg *config.Target) { tg.Timeout = 100 * time.Millisecond }, ResultTimeout, errTotalTimeout},
			{"size cap", transcript(sse, 0, events...), func(tg *config.Target) { tg.MaxResponseBytes = 200 }, ResultProtocol, errTooLarge},
			{"not an event stream", transcript("text/html", 0, "<html></html>"), nil, ResultProtocol, nil},
		}
		for _, tc := range cases {
			t.Run(api+"/"+tc.name, func(t *testing.T) {
				rec := doFlavour(t, api, tc.h, tc.mutate)
				if rec.Result != tc.want || rec.Err == nil || tc.wantErr != nil && !errors.Is(rec.Err, tc.wantErr) {
					t.Fatalf("result %s (%v), want %s with an error (%v)", rec.Result, rec.Err, tc.want, tc.wantErr)
				}
			})
		}
		t.Run(api+"/canceled", func(t *testing.T) {
			started := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", sse)
				_, _ = w.Write([]byte(events[0]))
				w.(http.Flusher).Flush()
				close(started)
				<-r.Context().Done()
			}))
			defer srv.Close()
			c, err := NewClient(flavourTarget(srv.URL, api))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			go func() { <-started; cancel() }()
			rec := &Record{}
			c.Do(ctx, traffic.Request{Prompt: "x"}, rec)
			if rec.Result != ResultCanceled {
				t.Fatalf("result %s (%v), want canceled", rec.Result, rec.Err)
			}
		})
	}
}

// TestFlavoursAgainstSimulator: every flavour end to end against the simulator speaking it:
// success, N as the server counted it, one chunk per token the server flushed, TTFT and the
// last token no earlier than the server's schedule.
func TestFlavoursAgainstSimulator(t *testing.T) {
	sim, url := simtest.Start(t, 7, func(c *simulator.Config) { c.ITLJitter = 0 })
	type flavourCase struct {
		name, api string
		extra     map[string]any
	}
	var cases []flavourCase
	for _, api := range append([]string{APIOpenAIChat, APIOpenAICompletions}, httpFlavours...) {
		cases = append(cases, flavourCase{name: api, api: api})
	}
	// Triton with the vLLM backend's optional outputs: each response's own token count and the
	// finish reason on the last.
	vllmOutputs := map[string]any{"return_num_output_tokens": true, "return_finish_reason": true}
	cases = append(cases, flavourCase{name: APITritonGenerate + "/vllm-outputs", api: APITritonGenerate, extra: vllmOutputs})
	for _, tc := range cases {
		api := tc.api
		countsChunks := api == APITritonGenerate && tc.extra == nil
		t.Run(tc.name, func(t *testing.T) {
			tgt := flavourTarget(url, api)
			tgt.Model = "inferprobe-sim"
			tgt.Request.MaxTokens = 8
			tgt.Request.ExtraBody = tc.extra
			c, err := NewClient(tgt)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				before := len(sim.Stats().Requests)
				rec := &Record{}
				c.Do(context.Background(), traffic.Request{Prompt: "one two three four", PromptTokens: 4}, rec)
				if rec.Result != ResultSuccess {
					t.Fatalf("request %d: result %s (%v)", i, rec.Result, rec.Err)
				}
				reqs := sim.Stats().Requests
				if len(reqs) != before+1 {
					t.Fatalf("the simulator recorded %d requests, want %d", len(reqs), before+1)
				}
				truth := reqs[len(reqs)-1]
				wantN, wantSource := truth.OutputTokens, SourceUsage
				switch {
				case countsChunks:
					wantSource = SourceChunks
				case api == APITGI:
					if truth.FinishReason == "stop" {
						wantN++ // generated_tokens counts the EOS token
					}
				}
				if rec.OutputTokens != wantN || rec.OutputSource != wantSource || rec.Chunks != truth.OutputTokens {
					t.Errorf("N=%d from %s over %d chunks, want %d from %s over %d", rec.OutputTokens, rec.OutputSource, rec.Chunks, wantN, wantSource, truth.OutputTokens)
				}
				if !countsChunks && rec.FinishReason != truth.FinishReason {
					t.Errorf("finish %q, the server's %q", rec.FinishReason, truth.FinishReason)
				}
				if rec.PromptTokens != 4 {
					t.Errorf("prompt %d, want 4", rec.PromptTokens)
				}
				if ttft, _ := rec.TTFT(); ttft < 20*time.Millisecond {
					t.Errorf("TTFT %v below the server's 20ms base", ttft)
				}
				if len(rec.Gaps) != rec.Chunks-1 {
					t.Errorf("%d gaps for %d chunks", len(rec.Gaps), rec.Chunks)
				}
				// The server cannot flush token n before its schedule (base + (n-1) gaps); a
				// late read only makes the client see it later, so this holds under load.
				if floor := 20*time.Millisecond + time.Duration(truth.OutputTokens-1)*10*time.Millisecond; rec.LastToken < floor {
					t.Errorf("last token at %v, before the server's schedule allows (%v)", rec.LastToken, floor)
				}
			}
		})
	}
}

// TestUnstreamedAllFlavours: stream: false against the simulator, for every flavour: e2e and
// tokens only; no chunk, so TTFT, TTFO, TPOT and the gaps are undefined (absent, not zero).
func TestUnstreamedAllFlavours(t *testing.T) {
	sim, url := simtest.Start(t, 11, nil)
	off := false
	for _, api := range append([]string{APIOpenAIChat, APIOpenAICompletions}, httpFlavours...) {
		t.Run(api, func(t *testing.T) {
			tgt := testTarget(url, APIOpenAIChat)
			tgt.Request.Stream = &off
			a, _ := LookupAPI(api)
			tgt.API, tgt.Path, tgt.Model = api, a.DefaultPath(false), "inferprobe-sim"
			tgt.Request.MaxTokens = 6
			c, err := NewClient(tgt)
			if err != nil {
				t.Fatal(err)
			}
			rec := &Record{}
			c.Do(context.Background(), traffic.Request{Prompt: "one two three", PromptTokens: 3}, rec)
			if rec.Result != ResultSuccess {
				t.Fatalf("result %s (%v)", rec.Result, rec.Err)
			}
			reqs := sim.Stats().Requests
			truth := reqs[len(reqs)-1]
			if truth.Stream {
				t.Fatal("the simulator saw a streaming request")
			}
			if _, ok := rec.TTFT(); ok {
				t.Error("TTFT defined without a stream")
			}
			if _, ok := rec.TTFO(); ok {
				t.Error("TTFO defined without a stream")
			}
			if _, ok := rec.TPOT(); ok || rec.Chunks != 0 || len(rec.Gaps) != 0 {
				t.Errorf("TPOT defined or chunks (%d) and gaps (%d) recorded without a stream", rec.Chunks, len(rec.Gaps))
			}
			if rec.End < 20*time.Millisecond {
				t.Errorf("e2e %v below the server's 20ms TTFT base", rec.End)
			}
			wantN, wantSource := truth.OutputTokens, SourceUsage
			if api == APITritonGenerate {
				wantN, wantSource = 0, "" // no usage, and no chunks to count: N unknown
			}
			if rec.OutputTokens != wantN || rec.OutputSource != wantSource {
				t.Errorf("N=%d from %q, want %d from %q", rec.OutputTokens, rec.OutputSource, wantN, wantSource)
			}
		})
	}
}

// TestStreamFalseConfig: request.stream parses, picks the non-streaming default path, and an
// objective on the first token with it is an error naming the field.
func TestStreamFalseConfig(t *testing.T) {
	cfg, err := config.Parse([]byte("targets:\n  - name: t\n    url: http://127.0.0.1:1\n    api: tgi\n    model: m\n    request:\n      stream: false\n"), ConfigExtension{})
	if err != nil {
		t.Fatal(err)
	}
	if tg := cfg.Targets[0]; tg.Request.Streaming() || tg.Path != "/generate" {
		t.Errorf("streaming %v, path %s; want false and /generate", tg.Request.Streaming(), tg.Path)
	}
	_, err = config.Parse([]byte("targets:\n  - name: t\n    url: http://127.0.0.1:1\n    model: m\n    slo:\n      ttft: 1s\n    request:\n      stream: false\n"), ConfigExtension{})
	if err == nil || !strings.Contains(err.Error(), "slo.ttft") {
		t.Errorf("error %v, want one naming slo.ttft", err)
	}
}

// TestFlavourRequestChecks: anthropic-messages refuses ignore_eos (no Messages server honours
// it), naming the field; openai-responses asks the server not to store the probe.
func TestFlavourRequestChecks(t *testing.T) {
	_, err := config.Parse([]byte("targets:\n  - name: t\n    url: http://127.0.0.1:1\n    api: anthropic-messages\n    model: m\n    request:\n      ignore_eos: true\n"), ConfigExtension{})
	if err == nil || !strings.Contains(err.Error(), "request.ignore_eos") {
		t.Errorf("error %v, want one naming request.ignore_eos", err)
	}
	var body []byte
	rec := doFlavour(t, APIOpenAIResponses, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		transcript(sse, 0, golden(t, APIOpenAIResponses)...)(w, r)
	}), nil)
	if rec.Result != ResultSuccess {
		t.Fatalf("result %s (%v)", rec.Result, rec.Err)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil || got["store"] != false || got["stream"] != true {
		t.Errorf("body %s (%v): want store false and stream true", body, err)
	}
}

// TestFlavourFaultClassesAgainstSimulator: the simulator's 429 and 500 faults, answered in
// each protocol's own way (a status, or TGI's error event on a 200 stream), reach every
// flavour's record as the same result class.
func TestFlavourFaultClassesAgainstSimulator(t *testing.T) {
	for _, fault := range []struct {
		name   string
		set    func(*simulator.Config)
		result string
	}{
		{"429", func(c *simulator.Config) { c.Error429Rate = 1 }, ResultHTTP429},
		{"500", func(c *simulator.Config) { c.Error500Rate = 1 }, ResultHTTP5xx},
	} {
		_, url := simtest.Start(t, 3, fault.set)
		for _, api := range append([]string{APIOpenAIChat, APIOpenAICompletions}, httpFlavours...) {
			tgt := flavourTarget(url, api)
			tgt.Model = "inferprobe-sim"
			tgt.Request.MaxTokens = 4
			c, err := NewClient(tgt)
			if err != nil {
				t.Fatal(err)
			}
			rec := &Record{}
			c.Do(context.Background(), traffic.Request{Prompt: "one two three", PromptTokens: 3}, rec)
			c.(interface{ Close() }).Close()
			if rec.Result != fault.result || rec.Err == nil {
				t.Errorf("%s, fault %s: result %s (%v), want %s", api, fault.name, rec.Result, rec.Err, fault.result)
			}
		}
	}
}
