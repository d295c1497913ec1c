package prober

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/internal/h1"
	"github.com/inferprobe/inferprobe/traffic"
)

// vLLM's documented chunk shape with stream_options {include_usage, continuous_usage_stats}:
// every chunk carries cumulative usage; here the server coalesces tokens into chunks of
// 1, 4, 4 and 3 tokens (stream_interval, speculative decoding).
func vllmContinuous(counts ...int) []string {
	var ev []string
	ev = append(ev, `data: {"id":"chatcmpl-2","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":7,"total_tokens":7,"completion_tokens":0}}`+"\n\n")
	cum := 0
	for i, k := range counts {
		cum += k
		finish := "null"
		if i == len(counts)-1 {
			finish = `"length"`
		}
		ev = append(ev, fmt.Sprintf(`data: {"id":"chatcmpl-2","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"%s"},"logprobs":null,"finish_reason":%s}],"usage":{"prompt_tokens":7,"total_tokens":%d,"completion_tokens":%d}}`+"\n\n",
			strings.Repeat(" w", k), finish, 7+cum, cum))
	}
	ev = append(ev, fmt.Sprintf(`data: {"id":"chatcmpl-2","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":7,"total_tokens":%d,"completion_tokens":%d}}`+"\n\n", 7+cum, cum),
		"data: [DONE]\n\n")
	return ev
}

func TestFinishReasonsAndResultClasses(t *testing.T) {
	chunk := func(content, finish string) string {
		f := "null"
		if finish != "" {
			f = `"` + finish + `"`
		}
		return `data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"` + content + `"},"finish_reason":` + f + `}]}` + "\n\n"
	}
	tests := []struct {
		name       string
		events     []string
		allowEmpty bool
		result     string
		finish     string
	}{
		{"vllm length", vllmChat, false, ResultSuccess, FinishLength},
		{"stop", []string{chunk("a", ""), chunk("b", "stop"), "data: [DONE]\n\n"}, false, ResultSuccess, FinishStop},
		// TGI's generate stream names the end of sequence eos_token.
		{"tgi eos_token", []string{chunk("a", "eos_token"), "data: [DONE]\n\n"}, false, ResultSuccess, FinishStop},
		{"tool calls", []string{chunk("a", "tool_calls"), "data: [DONE]\n\n"}, false, ResultSuccess, FinishToolCalls},
		{"unknown reason is other", []string{chunk("a", "matched_banana"), "data: [DONE]\n\n"}, false, ResultSuccess, FinishOther},
		// vLLM ends an aborted request (client gone, preempted and dropped) with abort.
		{"vllm abort", []string{chunk("a", ""), chunk("", "abort"), "data: [DONE]\n\n"}, false, ResultAborted, FinishAbort},
		{"vllm error", []string{chunk("a", ""), chunk("", "error"), "data: [DONE]\n\n"}, false, ResultAborted, FinishError},
		{"only [DONE]", []string{"data: [DONE]\n\n"}, false, ResultEmpty, ""},
		{"finish without tokens", []string{chunk("", "stop"), "data: [DONE]\n\n"}, false, ResultEmpty, FinishStop},
		{"empty allowed", []string{"data: [DONE]\n\n"}, true, ResultSuccess, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(t, transcript(sse, 0, tc.events...), func(tg *config.Target) { tg.Request.AllowEmpty = tc.allowEmpty })
			if rec.Result != tc.result || rec.FinishReason != tc.finish {
				t.Errorf("result %s finish %q (%v), want %s %q", rec.Result, rec.FinishReason, rec.Err, tc.result, tc.finish)
			}
		})
	}
}

func TestPerChunkUsageGivesTokensPerChunk(t *testing.T) {
	rec := do(t, transcript(sse, 2*time.Millisecond, vllmContinuous(1, 4, 4, 3)...), nil)
	if rec.Result != ResultSuccess {
		t.Fatalf("result %s: %v", rec.Result, rec.Err)
	}
	if !rec.TokensPerChunk || rec.FirstChunkTokens != 1 || rec.OutputTokens != 12 || rec.Chunks != 4 {
		t.Fatalf("per-chunk %v k1 %d N %d chunks %d", rec.TokensPerChunk, rec.FirstChunkTokens, rec.OutputTokens, rec.Chunks)
	}
	want := []int{4, 4, 3}
	for i, w := range want {
		if rec.GapTokenCount(i) != w {
			t.Errorf("gap %d carried %d tokens, want %d", i, rec.GapTokenCount(i), w)
		}
	}
	tpot, ok := rec.TPOT()
	if want := (rec.LastToken - rec.FirstToken) / 11; !ok || tpot != want {
		t.Errorf("TPOT %v, want (last-first)/(N-k1) = %v", tpot, want)
	}
	// The first chunk carrying several tokens moves k1.
	rec = do(t, transcript(sse, time.Millisecond, vllmContinuous(3, 2, 2)...), nil)
	if rec.FirstChunkTokens != 3 {
		t.Errorf("k1 = %d, want 3", rec.FirstChunkTokens)
	}
	if tpot, _ := rec.TPOT(); tpot != (rec.LastToken-rec.FirstToken)/4 {
		t.Errorf("TPOT %v, want span/(7-3)", tpot)
	}
	// Usage only at the end (llama.cpp): per-chunk counts are unknown, each chunk is one.
	rec = do(t, transcript(sse, 0, llamacppChat...), nil)
	if rec.TokensPerChunk || rec.GapTokenCount(0) != 1 || rec.FirstChunkTokens != 1 {
		t.Errorf("llama.cpp: per-chunk %v gap tokens %d k1 %d", rec.TokensPerChunk, rec.GapTokenCount(0), rec.FirstChunkTokens)
	}
}

func TestRequestAsksForContinuousUsage(t *testing.T) {
	for _, on := range []*bool{nil, ptr(true), ptr(false)} {
		var got map[string]any
		h := func(w http.ResponseWriter, r *http.Request) {
			_ = json.NewDecoder(r.Body).Decode(&got)
			transcript(sse, 0, vllmChat...)(w, r)
		}
		do(t, http.HandlerFunc(h), func(tg *config.Target) { tg.Request.ContinuousUsageStats = on })
		so, _ := got["stream_options"].(map[string]any)
		want := on == nil || *on
		if so["include_usage"] != true || (so["continuous_usage_stats"] == true) != want {
			t.Errorf("continuous_usage_stats=%v: stream_options %v", on, so)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestReasoningCachedTokensAndTTFO(t *testing.T) {
	// OpenAI-style usage details (vLLM with --enable-prompt-tokens-details, SGLang, OpenAI).
	events := append(append([]string{}, reasoningChat[:4]...),
		`data: {"choices":[],"usage":{"prompt_tokens":40,"completion_tokens":9,"total_tokens":49,"prompt_tokens_details":{"cached_tokens":32},"completion_tokens_details":{"reasoning_tokens":6}}}`+"\n\n",
		"data: [DONE]\n\n")
	rec := do(t, transcript(sse, 2*time.Millisecond, events...), nil)
	if rec.Result != ResultSuccess {
		t.Fatalf("result %s: %v", rec.Result, rec.Err)
	}
	if rec.ReasoningTokens != 6 || rec.ReasoningSource != SourceUsage || rec.CachedTokens != 32 || rec.CachedSource != SourceUsage {
		t.Errorf("reasoning %d/%s cached %d/%s", rec.ReasoningTokens, rec.ReasoningSource, rec.CachedTokens, rec.CachedSource)
	}
	ttfo, ok := rec.TTFO()
	if ttft, _ := rec.TTFT(); !ok || ttfo <= ttft || ttfo != rec.LastToken {
		t.Errorf("TTFO %v (ok %v), want after TTFT %v, at the content chunk %v", ttfo, ok, ttft, rec.LastToken)
	}
	// Without usage details, reasoning chunks are counted.
	rec = do(t, transcript(sse, 0, reasoningChat...), nil)
	if rec.ReasoningTokens != 2 || rec.ReasoningSource != SourceChunks || rec.CachedSource != "" {
		t.Errorf("reasoning %d/%s cached source %q", rec.ReasoningTokens, rec.ReasoningSource, rec.CachedSource)
	}
	// A plain answer: TTFO is TTFT.
	rec = do(t, transcript(sse, 0, vllmChat...), nil)
	if a, _ := rec.TTFO(); a != rec.FirstToken || rec.ReasoningSource != "" {
		t.Errorf("TTFO %v, TTFT %v, reasoning source %q", a, rec.FirstToken, rec.ReasoningSource)
	}
}

func TestHTTPPhases(t *testing.T) {
	rec := do(t, transcript(sse, 0, vllmChat...), nil)
	for _, p := range []int{PhaseConnect, PhaseRequestWrite, PhaseFirstByte} {
		if d, ok := rec.Phase(p); !ok || d < 0 || d > rec.End {
			t.Errorf("phase %s = %v (%v), want within the request (%v)", PhaseNames[p], d, ok, rec.End)
		}
	}
	// 127.0.0.1 needs no lookup and plain HTTP no handshake.
	for _, p := range []int{PhaseDNS, PhaseTLS} {
		if _, ok := rec.Phase(p); ok {
			t.Errorf("phase %s observed for a plain-HTTP IP URL", PhaseNames[p])
		}
	}
	// "localhost" is looked up.
	srv := httptest.NewServer(transcript(sse, 0, vllmChat...))
	defer srv.Close()
	c, err := NewOpenAIClient(testTarget(strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), APIOpenAIChat))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec = &Record{}
	c.Do(context.Background(), traffic.Request{Prompt: "x"}, rec)
	if rec.Result != ResultSuccess {
		t.Fatalf("localhost: %s %v", rec.Result, rec.Err)
	}
	if _, ok := rec.Phase(PhaseDNS); !ok {
		t.Errorf("no dns phase for localhost")
	}
	// A second request reuses the connection: no connect phase.
	rec.Reset()
	c.Do(context.Background(), traffic.Request{Prompt: "x"}, rec)
	if _, ok := rec.Phase(PhaseConnect); ok {
		t.Errorf("connect phase on a reused connection")
	}
}

// TestHTTPPhasesTLSAndKnownDelay holds the phases to known truths: an HTTPS target (trusted
// through tls.ca_file) has a TLS handshake phase, and a server that waits 50 ms after reading
// the request before its headers shows a first_byte phase of at least that; the phases of one
// request, which follow each other, sum to no more than the request.
func TestHTTPPhasesTLSAndKnownDelay(t *testing.T) {
	const wait = 50 * time.Millisecond
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(wait)
		transcript(sse, 0, vllmChat...).ServeHTTP(w, r)
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tgt := testTarget(srv.URL, APIOpenAIChat)
	tgt.TLS.CAFile = ca
	c, err := NewOpenAIClient(tgt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec := &Record{}
	c.Do(context.Background(), traffic.Request{Prompt: "x"}, rec)
	if rec.Result != ResultSuccess {
		t.Fatalf("https: %s %v", rec.Result, rec.Err)
	}
	var sum time.Duration
	for _, p := range []int{PhaseConnect, PhaseTLS, PhaseRequestWrite, PhaseFirstByte} {
		d, ok := rec.Phase(p)
		if !ok || d <= 0 {
			t.Errorf("phase %s = %v (observed %v), want a positive duration", PhaseNames[p], d, ok)
		}
		sum += d
	}
	if d, _ := rec.Phase(PhaseFirstByte); d < wait {
		t.Errorf("first_byte %v, but the server waited %v before its headers", d, wait)
	}
	if sum > rec.End {
		t.Errorf("phases sum to %v, more than the request's %v", sum, rec.End)
	}
	// The reused connection has neither a dial nor a handshake.
	rec.Reset()
	c.Do(context.Background(), traffic.Request{Prompt: "x"}, rec)
	for _, p := range []int{PhaseConnect, PhaseTLS} {
		if _, ok := rec.Phase(p); ok || rec.Result != ResultSuccess {
			t.Errorf("reused connection: phase %s observed (%s)", PhaseNames[p], rec.Result)
		}
	}
}

// failFirstWrite fails the first write on every connection it wraps before writing a byte, like
// a connection the server already closed.
type failFirstWrite struct {
	*countingConn
	failed bool
}

func (f *failFirstWrite) Write(p []byte) (int, error) {
	if !f.failed {
		f.failed = true
		return 0, &net.OpError{Op: "write", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return f.countingConn.Write(p)
}

// TestRetryWhenNothingWasWritten runs with both HTTP transports: the resend rule is the shared
// client's, whichever transport failed.
func TestRetryWhenNothingWasWritten(t *testing.T) {
	for _, transport := range []string{config.HTTPTransportBuiltin, config.HTTPTransportNetHTTP} {
		t.Run(transport, func(t *testing.T) {
			var served atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				served.Add(1)
				transcript(sse, 0, vllmChat...)(w, r)
			}))
			defer srv.Close()
			c, err := NewOpenAIClient(withTransport(testTarget(srv.URL, APIOpenAIChat), transport))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var dials atomic.Int32
			inner := c.netTransport.DialContext
			c.netTransport.DialContext = func(ctx context.Context, n, a string) (net.Conn, error) {
				conn, err := inner(ctx, n, a)
				if err != nil {
					return nil, err
				}
				if dials.Add(1) == 1 {
					return &failFirstWrite{countingConn: conn.(*countingConn)}, nil
				}
				return conn, nil
			}
			rec := &Record{}
			c.Do(context.Background(), traffic.Request{Prompt: "x"}, rec)
			if rec.Result != ResultSuccess || rec.Retries != 1 || served.Load() != 1 {
				t.Fatalf("result %s (%v) retries %d served %d, want success after one retry", rec.Result, rec.Err, rec.Retries, served.Load())
			}

			// A server that read the request and then broke the connection may have acted on it:
			// no retry.
			broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
			}))
			defer broken.Close()
			c2, err := NewOpenAIClient(withTransport(testTarget(broken.URL, APIOpenAIChat), transport))
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			rec.Reset()
			c2.Do(context.Background(), traffic.Request{Prompt: "x"}, rec)
			if rec.Result != ResultConnection || rec.Retries != 0 {
				t.Errorf("result %s retries %d, want connection without a retry", rec.Result, rec.Retries)
			}
			// A refused dial is not retried either.
			l, _ := net.Listen("tcp", "127.0.0.1:0")
			addr := l.Addr().String()
			l.Close()
			c3, _ := NewOpenAIClient(withTransport(testTarget("http://"+addr, APIOpenAIChat), transport))
			rec.Reset()
			c3.Do(context.Background(), traffic.Request{Prompt: "x"}, rec)
			if rec.Result != ResultConnection || rec.Retries != 0 {
				t.Errorf("refused: result %s retries %d", rec.Result, rec.Retries)
			}
		})
	}
}

func withTransport(t config.Target, transport string) config.Target {
	t.HTTPTransport = transport
	return t
}

// TestTransportChoice: http:// targets get the builtin transport unless http_transport says
// net/http; https:// targets always get net/http.
func TestTransportChoice(t *testing.T) {
	for _, c := range []struct {
		url, setting string
		builtin      bool
	}{
		{"http://127.0.0.1:1", "", true},
		{"http://127.0.0.1:1", config.HTTPTransportBuiltin, true},
		{"http://127.0.0.1:1", config.HTTPTransportNetHTTP, false},
		{"HTTP://127.0.0.1:1", "", true},
		{"https://127.0.0.1:1", "", false},
	} {
		c2, err := NewOpenAIClient(withTransport(testTarget(c.url, APIOpenAIChat), c.setting))
		if err != nil {
			t.Fatal(err)
		}
		_, isBuiltin := c2.transport.(*h1.Transport)
		_, isNet := c2.transport.(*http.Transport)
		if isBuiltin != c.builtin || isNet == c.builtin || c2.builtin != c.builtin {
			t.Errorf("%s with %q: builtin %v, net/http %v, want builtin %v", c.url, c.setting, isBuiltin, isNet, c.builtin)
		}
		c2.Close()
	}
}

func TestIdleConnTimeoutBelowUvicorn(t *testing.T) {
	var c config.Config
	c.Targets = []config.Target{{Name: "a", URL: "http://127.0.0.1:1", Model: "m"}}
	c.ApplyDefaults(ConfigExtension{}, traffic.ConfigExtension{})
	tr, err := NewTransport(c.Targets[0])
	if err != nil {
		t.Fatal(err)
	}
	if tr.IdleConnTimeout <= 0 || tr.IdleConnTimeout >= 5*time.Second {
		t.Errorf("default idle connection timeout %v, want below uvicorn's 5s", tr.IdleConnTimeout)
	}
	c.Targets[0].IdleConnTimeout = 2 * time.Second
	if tr, _ := NewTransport(c.Targets[0]); tr.IdleConnTimeout != 2*time.Second {
		t.Errorf("configured idle connection timeout not used: %v", tr.IdleConnTimeout)
	}
}
