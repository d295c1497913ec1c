package prober

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/traffic"
)

// testHTTPTransport is the http_transport of testTarget's targets: "" (the builtin one for
// httptest's http:// servers) except while TestNetHTTPTransport runs the transport-sensitive
// tests again with net/http. No prober test runs in parallel.
var testHTTPTransport string

// TestNetHTTPTransport runs the tests of the shared timing machinery, the error classes and the
// server formats again with http_transport: net/http, so both transports meet the same cases.
func TestNetHTTPTransport(t *testing.T) {
	testHTTPTransport = config.HTTPTransportNetHTTP
	defer func() { testHTTPTransport = "" }()
	for name, test := range map[string]func(*testing.T){
		"ServerFormats": TestOpenAIServerFormats, "ErrorClasses": TestOpenAIErrorClasses,
		"KeepAlives": TestOpenAIKeepAlivesResetIdleTimeout, "BreakAfterFinish": TestOpenAIBreakAfterFinish,
		"Drain": TestOpenAIDrainIsBounded, "Refused": TestOpenAIConnectionRefused,
		"Canceled": TestOpenAICanceledByCaller, "SharedTransport": TestSharedTransportAllFlavours,
		"FlavourErrorClasses": TestFlavourErrorClasses, "Unstreamed": TestUnstreamedAllFlavours,
	} {
		t.Run(name, test)
	}
}

func testTarget(url string, api string) config.Target {
	path := "/v1/chat/completions"
	if api == APIOpenAICompletions {
		path = "/v1/completions"
	}
	return config.Target{
		Name: "t", URL: url, Path: path, API: api, Model: "m",
		Timeout: 5 * time.Second, ConnectTimeout: time.Second, FirstByteTimeout: 5 * time.Second,
		IdleTimeout: 5 * time.Second, MaxResponseBytes: 1 << 20,
		Traffic:       config.Traffic{MaxInFlight: 4},
		Request:       config.Request{MaxTokens: 16},
		HTTPTransport: testHTTPTransport,
	}
}

// transcript serves a fixed SSE body with a pause before each event, like a real server that
// flushes per token.
func transcript(contentType string, pause time.Duration, events ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for _, e := range events {
			time.Sleep(pause)
			_, _ = io.WriteString(w, e)
			w.(http.Flusher).Flush()
		}
	}
}

func do(t *testing.T, h http.Handler, mutate func(*config.Target)) *Record {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	tgt := testTarget(srv.URL, APIOpenAIChat)
	if mutate != nil {
		mutate(&tgt)
	}
	c, err := NewOpenAIClient(tgt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec := &Record{}
	c.Do(context.Background(), traffic.Request{Prompt: "a b c", PromptTokens: 3}, rec)
	return rec
}

const sse = "text/event-stream"

// Transcripts written from each server's documented streaming format.
var (
	vllmChat = []string{
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n",
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" Hello"},"logprobs":null,"finish_reason":null}]}` + "\n\n",
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" there"},"logprobs":null,"finish_reason":null}]}` + "\n\n",
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" friend"},"logprobs":null,"finish_reason":null}]}` + "\n\n",
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"length","stop_reason":null}]}` + "\n\n",
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":12,"total_tokens":16,"completion_tokens":4}}` + "\n\n",
		"data: [DONE]\n\n",
	}
	// llama-server: usage and timings ride on the last chunk, which also carries finish_reason.
	llamacppChat = []string{
		`data: {"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],"created":1,"id":"chatcmpl-x","model":"m","system_fingerprint":"b1","object":"chat.completion.chunk"}` + "\n\n",
		`data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Hi"}}],"created":1,"id":"chatcmpl-x","model":"m","object":"chat.completion.chunk"}` + "\n\n",
		`data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"!"}}],"created":1,"id":"chatcmpl-x","model":"m","object":"chat.completion.chunk"}` + "\n\n",
		`data: {"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"created":1,"id":"chatcmpl-x","model":"m","object":"chat.completion.chunk","usage":{"completion_tokens":2,"prompt_tokens":9,"total_tokens":11},"timings":{"prompt_n":9,"predicted_n":2}}` + "\n\n",
		"data: [DONE]\n\n",
	}
	// TGI Messages API: role on every delta, usage null until the last chunk.
	tgiChat = []string{
		`data:{"object":"chat.completion.chunk","id":"","created":1,"model":"m","system_fingerprint":"3.0.0-native","choices":[{"index":0,"delta":{"role":"assistant","content":"Deep"},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n",
		`data:{"object":"chat.completion.chunk","id":"","created":1,"model":"m","system_fingerprint":"3.0.0-native","choices":[{"index":0,"delta":{"role":"assistant","content":" learning"},"logprobs":null,"finish_reason":"length"}],"usage":null}` + "\n\n",
		`data:{"object":"chat.completion.chunk","id":"","created":1,"model":"m","system_fingerprint":"3.0.0-native","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}` + "\n\n",
		"data:[DONE]\n\n",
	}
	// Ollama's OpenAI-compatible API.
	ollamaChat = []string{
		`data: {"id":"chatcmpl-5","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Sure"},"finish_reason":null}]}` + "\n\n",
		`data: {"id":"chatcmpl-5","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"."},"finish_reason":null}]}` + "\n\n",
		`data: {"id":"chatcmpl-5","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}` + "\n\n",
		`data: {"id":"chatcmpl-5","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp_ollama","choices":[],"usage":{"prompt_tokens":26,"completion_tokens":2,"total_tokens":28}}` + "\n\n",
		"data: [DONE]\n\n",
	}
	// A reasoning model (vLLM/SGLang reasoning parser): reasoning_content first, then content.
	reasoningChat = []string{
		`data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n",
		`data: {"choices":[{"index":0,"delta":{"reasoning_content":"Let me think"},"finish_reason":null}]}` + "\n\n",
		`data: {"choices":[{"index":0,"delta":{"reasoning_content":" more"},"finish_reason":null}]}` + "\n\n",
		`data: {"choices":[{"index":0,"delta":{"content":"42"},"finish_reason":"stop"}]}` + "\n\n",
		"data: [DONE]\n\n",
	}
	// No usage and no [DONE]: finish_reason alone ends the stream cleanly.
	noUsageNoDone = []string{
		": keep-alive\r\n\r\n",
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\r\n\r\n",
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\r\n\r\n",
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"c\"},\"finish_reason\":\"stop\"}]}\r\n\r\n",
	}
	vllmCompletions = []string{
		`data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" one","logprobs":null,"finish_reason":null}]}` + "\n\n",
		`data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" two","logprobs":null,"finish_reason":"length"}]}` + "\n\n",
		`data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"total_tokens":5,"completion_tokens":2}}` + "\n\n",
		"data: [DONE]\n\n",
	}
)

func TestOpenAIServerFormats(t *testing.T) {
	const pause = 5 * time.Millisecond
	tests := []struct {
		name           string
		api            string
		events         []string
		chunks, n      int
		nSource        string
		prompt         int
		promptSource   string
		wantFirstAfter int // events before the first token chunk, for the TTFT lower bound
	}{
		{"vllm chat", APIOpenAIChat, vllmChat, 3, 4, SourceUsage, 12, SourceUsage, 2},
		{"llama.cpp usage on last chunk", APIOpenAIChat, llamacppChat, 2, 2, SourceUsage, 9, SourceUsage, 2},
		{"tgi messages api", APIOpenAIChat, tgiChat, 2, 2, SourceUsage, 5, SourceUsage, 1},
		{"ollama", APIOpenAIChat, ollamaChat, 2, 2, SourceUsage, 26, SourceUsage, 1},
		{"reasoning content", APIOpenAIChat, reasoningChat, 3, 3, SourceChunks, 3, SourceEstimate, 2},
		{"no usage, no [DONE], CRLF", APIOpenAIChat, noUsageNoDone, 3, 3, SourceChunks, 3, SourceEstimate, 2},
		{"completions", APIOpenAICompletions, vllmCompletions, 2, 2, SourceUsage, 3, SourceUsage, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(t, transcript(sse, pause, tc.events...), func(tg *config.Target) {
				*tg = testTarget(tg.URL, tc.api)
			})
			if rec.Result != ResultSuccess {
				t.Fatalf("result %s (%v), want success", rec.Result, rec.Err)
			}
			if rec.Chunks != tc.chunks || rec.OutputTokens != tc.n || rec.OutputSource != tc.nSource {
				t.Errorf("chunks=%d N=%d source=%s, want %d %d %s", rec.Chunks, rec.OutputTokens, rec.OutputSource, tc.chunks, tc.n, tc.nSource)
			}
			if rec.PromptTokens != tc.prompt || rec.PromptSource != tc.promptSource {
				t.Errorf("prompt=%d source=%s, want %d %s", rec.PromptTokens, rec.PromptSource, tc.prompt, tc.promptSource)
			}
			if len(rec.Gaps) != rec.Chunks-1 {
				t.Errorf("%d gaps for %d chunks", len(rec.Gaps), rec.Chunks)
			}
			ttft, ok := rec.TTFT()
			if !ok || ttft < time.Duration(tc.wantFirstAfter)*pause {
				t.Errorf("TTFT %v, want at least %v (the server paused before each event)", ttft, time.Duration(tc.wantFirstAfter)*pause)
			}
			// The server cannot send event k before k pauses have passed, so these bounds
			// hold whatever the scheduler does; single gaps can be shorter than a pause when
			// the read before them was late.
			if minEnd := time.Duration(len(tc.events)) * pause; rec.End < minEnd {
				t.Errorf("end %v before the server could have sent its last event (%v)", rec.End, minEnd)
			}
			for _, g := range rec.Gaps {
				if g < 0 {
					t.Errorf("negative gap %v", g)
				}
			}
			if rec.LastToken < rec.FirstToken || rec.End < rec.LastToken {
				t.Errorf("offsets out of order: first %v last %v end %v", rec.FirstToken, rec.LastToken, rec.End)
			}
			if rec.Status != 200 {
				t.Errorf("status %d", rec.Status)
			}
			if want := transcriptModel(tc.events); rec.ResponseModel != want {
				t.Errorf("response model %q, want the transcript's %q", rec.ResponseModel, want)
			}
		})
	}
}

// transcriptModel is the first "model" a transcript's events name, decoded with encoding/json.
func transcriptModel(events []string) string {
	for _, ev := range events {
		for _, line := range strings.Split(ev, "\n") {
			var v struct {
				Model string `json:"model"`
			}
			if data, ok := strings.CutPrefix(strings.TrimSpace(line), "data:"); ok && json.Unmarshal([]byte(data), &v) == nil && v.Model != "" {
				return v.Model
			}
		}
	}
	return ""
}

func TestOpenAIRequestBody(t *testing.T) {
	var got map[string]any
	var header http.Header
	h := func(w http.ResponseWriter, r *http.Request) {
		header = r.Header.Clone()
		if r.URL.Path != "/v1/chat/completions" {
			t.Errorf("path %s", r.URL.Path)
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Error(err)
		}
		transcript(sse, 0, vllmChat...)(w, r)
	}
	temp := 0.5
	rec := do(t, http.HandlerFunc(h), func(tg *config.Target) {
		tg.APIKey = "sk-secret"
		tg.Headers = map[string]string{"X-Team": "sre"}
		tg.Request.IgnoreEOS = true
		tg.Request.Temperature = &temp
		tg.Request.ExtraBody = map[string]any{"top_p": 0.9, "max_tokens": 7}
	})
	if rec.Result != ResultSuccess {
		t.Fatalf("result %s: %v", rec.Result, rec.Err)
	}
	want := map[string]any{
		"model": "m", "stream": true, "ignore_eos": true, "temperature": 0.5, "top_p": 0.9,
		"max_tokens": 7.0, // extra_body wins over the generated key
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("body[%s] = %v, want %v", k, got[k], v)
		}
	}
	if so, _ := got["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Errorf("stream_options = %v, want include_usage true", got["stream_options"])
	}
	msgs, _ := got["messages"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["content"] != "a b c" || msgs[0].(map[string]any)["role"] != "user" {
		t.Errorf("messages = %v", got["messages"])
	}
	if header.Get("Authorization") != "Bearer sk-secret" || header.Get("X-Team") != "sre" ||
		header.Get("Accept") != "text/event-stream" || header.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v", header)
	}
}

func TestOpenAICompletionsBodyAndAdapter(t *testing.T) {
	c, err := NewOpenAIClient(testTarget("http://127.0.0.1:1", APIOpenAICompletions))
	if err != nil {
		t.Fatal(err)
	}
	body, err := c.Body(traffic.Request{Prompt: "p q", Adapter: "sql-lora", MaxTokens: 3})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	_ = json.Unmarshal(body, &got)
	if got["prompt"] != "p q" || got["model"] != "sql-lora" || got["max_tokens"] != 3.0 || got["messages"] != nil || got["ignore_eos"] != nil {
		t.Errorf("body = %s", body)
	}
}

func TestOpenAIErrorClasses(t *testing.T) {
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = io.WriteString(w, `{"error":{"message":"nope","type":"x","code":`+http.StatusText(code)+`}}`)
		}
	}
	stall := func(before time.Duration, events ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", sse)
			w.WriteHeader(200)
			for _, e := range events {
				_, _ = io.WriteString(w, e)
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(before):
			case <-r.Context().Done():
			}
		}
	}
	hangup := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", sse)
		w.WriteHeader(200)
		_, _ = io.WriteString(w, vllmChat[1])
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	short := func(tg *config.Target) {
		tg.IdleTimeout, tg.FirstByteTimeout, tg.Timeout = 150*time.Millisecond, 150*time.Millisecond, 2*time.Second
	}
	tests := []struct {
		name   string
		h      http.HandlerFunc
		mutate func(*config.Target)
		want   string
		status int
	}{
		{"500", status(500), nil, ResultHTTP5xx, 500},
		{"503", status(503), nil, ResultHTTP5xx, 503},
		{"429", status(429), nil, ResultHTTP429, 429},
		{"404", status(404), nil, ResultHTTP4xx, 404},
		{"400", status(400), nil, ResultHTTP4xx, 400},
		{"redirect is not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, nil, ResultProtocol, 307},
		{"truncated: EOF without finish", transcript(sse, 0, vllmChat[:3]...), nil, ResultStreamTruncated, 200},
		{"truncated: connection closed mid-stream", hangup, nil, ResultStreamTruncated, 200},
		{"malformed chunk", transcript(sse, 0, vllmChat[0], "data: {\"choices\":[{\"delta\":\n\n", vllmChat[6]), nil, ResultProtocol, 200},
		{"negative usage", transcript(sse, 0, vllmChat[1], `data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":-1}}`+"\n\n", vllmChat[6]), nil, ResultProtocol, 200},
		{"llama.cpp error field then [DONE]", transcript(sse, 0, llamacppChat[0], `error: {"code":500,"message":"slot unavailable","type":"server_error"}`+"\n\n", "data: [DONE]\n\n"), nil, ResultHTTP5xx, 200},
		{"event: error with a 429 code", transcript(sse, 0, "event: error\ndata: {\"code\":429,\"message\":\"busy\"}\n\n", "data: [DONE]\n\n"), nil, ResultHTTP429, 200},
		{"event: error without a code", transcript(sse, 0, "event: error\ndata: boom\n\n", "data: [DONE]\n\n"), nil, ResultHTTP5xx, 200},
		{"tgi error with http_status_code", transcript(sse, 0, `data:{"error":{"message":"Input validation error","http_status_code":422}}`+"\n\n", "data:[DONE]\n\n"), nil, ResultHTTP4xx, 200},
		{"html page with status 200", transcript("text/html; charset=utf-8", 0, "<html>login</html>"), nil, ResultProtocol, 200},
		{"json instead of a stream", transcript("application/json", 0, `{"choices":[]}`), nil, ResultProtocol, 200},
		{"error event with code", transcript(sse, 0, vllmChat[0], `data: {"error":{"message":"overloaded","code":503}}`+"\n\n"), nil, ResultHTTP5xx, 200},
		{"vllm error object", transcript(sse, 0, `data: {"object":"error","message":"bad","type":"BadRequestError","code":400}`+"\n\n"), nil, ResultHTTP4xx, 200},
		{"idle timeout mid-stream", stall(5*time.Second, vllmChat[0], vllmChat[1]), short, ResultTimeout, 200},
		{"first byte timeout", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client leaving
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		}, short, ResultTimeout, 0},
		{"total timeout", transcript(sse, 40*time.Millisecond, vllmChat...), func(tg *config.Target) { tg.Timeout = 100 * time.Millisecond }, ResultTimeout, 200},
		{"response too large", transcript(sse, 0, vllmChat...), func(tg *config.Target) { tg.MaxResponseBytes = 300 }, ResultProtocol, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(t, tc.h, tc.mutate)
			if rec.Result != tc.want || rec.Status != tc.status {
				t.Fatalf("result %s status %d (err %v), want %s %d", rec.Result, rec.Status, rec.Err, tc.want, tc.status)
			}
			if rec.Err == nil {
				t.Error("a failed request must carry its error for the log")
			}
		})
	}
}

// TestOpenAIKeepAlivesResetIdleTimeout: a server that only sends keep-alive comments while the
// request waits in its queue (TGI sends one every 15 s) is alive; the idle timeout counts from
// the last bytes received, not from the last event.
func TestOpenAIKeepAlivesResetIdleTimeout(t *testing.T) {
	queued := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", sse)
		w.WriteHeader(200)
		for range 6 { // 600ms of queueing, twice the idle timeout
			_, _ = io.WriteString(w, ": keep-alive\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
		for _, e := range vllmChat {
			_, _ = io.WriteString(w, e)
		}
	}
	rec := do(t, http.HandlerFunc(queued), func(tg *config.Target) { tg.IdleTimeout = 300 * time.Millisecond })
	if rec.Result != ResultSuccess {
		t.Fatalf("result %s (%v), want success", rec.Result, rec.Err)
	}
	if ttft, _ := rec.TTFT(); ttft < 600*time.Millisecond {
		t.Errorf("TTFT %v, want at least the 600ms spent queued", ttft)
	}
}

// TestOpenAIBreakAfterFinish: the generation finished (finish_reason and usage came) and only
// the closing [DONE] was lost to a broken connection: the request succeeded.
func TestOpenAIBreakAfterFinish(t *testing.T) {
	h := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", sse)
		w.WriteHeader(200)
		for _, e := range vllmChat[:6] {
			_, _ = io.WriteString(w, e)
		}
		w.(http.Flusher).Flush()
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	}
	rec := do(t, http.HandlerFunc(h), nil)
	if rec.Result != ResultSuccess || rec.OutputTokens != 4 || rec.OutputSource != SourceUsage {
		t.Fatalf("result %s N=%d from %s (%v), want success with N=4 from usage", rec.Result, rec.OutputTokens, rec.OutputSource, rec.Err)
	}
}

// TestOpenAIDrainIsBounded: a server that keeps the body open after [DONE] does not hold the
// request (and its in-flight slot) until the idle timeout.
func TestOpenAIDrainIsBounded(t *testing.T) {
	h := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", sse)
		w.WriteHeader(200)
		for _, e := range vllmChat {
			_, _ = io.WriteString(w, e)
		}
		w.(http.Flusher).Flush()
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(h))
	defer srv.Close()
	c, err := NewOpenAIClient(testTarget(srv.URL, APIOpenAIChat))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	rec := &Record{}
	c.Do(context.Background(), traffic.Request{Prompt: "x"}, rec)
	if rec.Result != ResultSuccess {
		t.Fatalf("result %s (%v)", rec.Result, rec.Err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Do returned after %v; the drain after [DONE] must be bounded (idle timeout is 5s)", took)
	}
}

func TestOpenAIConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c, err := NewOpenAIClient(testTarget("http://"+addr, APIOpenAIChat))
	if err != nil {
		t.Fatal(err)
	}
	rec := &Record{}
	c.Do(context.Background(), traffic.Request{Prompt: "x"}, rec)
	if rec.Result != ResultConnection {
		t.Fatalf("result %s (%v), want connection", rec.Result, rec.Err)
	}
}

func TestOpenAICanceledByCaller(t *testing.T) {
	started := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", sse)
		_, _ = io.WriteString(w, vllmChat[1])
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
	}))
	defer srv.Close()
	c, err := NewOpenAIClient(testTarget(srv.URL, APIOpenAIChat))
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
}

func TestRecordTimingMath(t *testing.T) {
	ms := time.Millisecond
	r := &Record{Chunks: 4, FirstToken: 100 * ms, LastToken: 160 * ms, OutputTokens: 4, End: 170 * ms}
	if v, ok := r.TTFT(); !ok || v != 100*ms {
		t.Errorf("TTFT %v %v", v, ok)
	}
	if v, ok := r.TPOT(); !ok || v != 20*ms {
		t.Errorf("TPOT %v %v, want 20ms = 60ms/3", v, ok)
	}
	// N from usage differs from the chunk count (a server that batches tokens per chunk).
	r.OutputTokens = 7
	if v, _ := r.TPOT(); v != 10*ms {
		t.Errorf("TPOT %v, want 10ms = 60ms/6", v)
	}
	r.OutputTokens = 1
	if _, ok := r.TPOT(); ok {
		t.Error("TPOT defined for N=1")
	}
	oneChunk := &Record{Chunks: 1, FirstToken: 100 * ms, LastToken: 100 * ms, OutputTokens: 8}
	if v, ok := oneChunk.TPOT(); ok {
		t.Errorf("TPOT %v defined for 8 tokens in one chunk; nothing between tokens was observed", v)
	}
	empty := &Record{OutputTokens: 3}
	if _, ok := empty.TTFT(); ok {
		t.Error("TTFT defined without a token chunk")
	}
	if _, ok := empty.TPOT(); ok {
		t.Error("TPOT defined without a token chunk")
	}
	now := time.Now()
	late := &Record{Intended: now, Start: now.Add(3 * ms)}
	early := &Record{Intended: now, Start: now.Add(-ms)}
	if late.ScheduleDelay() != 3*ms || early.ScheduleDelay() != 0 {
		t.Errorf("schedule delay %v %v", late.ScheduleDelay(), early.ScheduleDelay())
	}
}

func TestSLOMet(t *testing.T) {
	ms := time.Millisecond
	ok := &Record{Result: ResultSuccess, Chunks: 3, FirstToken: 50 * ms, LastToken: 70 * ms, OutputTokens: 3, End: 80 * ms}
	tests := []struct {
		name string
		slo  SLO
		rec  *Record
		want bool
	}{
		{"no SLO", SLO{}, ok, true},
		{"all met", SLO{TTFT: 50 * ms, TPOT: 10 * ms, E2E: 80 * ms}, ok, true},
		{"ttft missed", SLO{TTFT: 49 * ms}, ok, false},
		{"tpot missed", SLO{TPOT: 9 * ms}, ok, false},
		{"e2e missed", SLO{E2E: 79 * ms}, ok, false},
		{"failure never meets", SLO{}, &Record{Result: ResultHTTP5xx}, false},
		{"ttft SLO without a token", SLO{TTFT: time.Second}, &Record{Result: ResultSuccess}, false},
	}
	for _, tc := range tests {
		if got := tc.slo.Met(tc.rec); got != tc.want {
			t.Errorf("%s: Met = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func BenchmarkOpenAIStream(b *testing.B) {
	events := []string{vllmChat[0]}
	for i := 0; i < 16; i++ {
		events = append(events, vllmChat[1])
	}
	events = append(events, vllmChat[4], vllmChat[5], vllmChat[6])
	body := strings.Join(events, "")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", sse)
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	c, err := NewOpenAIClient(testTarget(srv.URL, APIOpenAIChat))
	if err != nil {
		b.Fatal(err)
	}
	rec := &Record{}
	req := traffic.Request{Prompt: strings.Repeat("word ", 128)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec.Reset()
		c.Do(context.Background(), req, rec)
		if rec.Result != ResultSuccess {
			b.Fatal(rec.Result, rec.Err)
		}
	}
}
