package prober

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/traffic"
)

// maxEventBytes bounds one SSE event; real chunks are well under 64 KiB.
const maxEventBytes = 1 << 20

// OpenAIClient speaks the OpenAI-compatible streaming APIs (chat completions and completions)
// as served by vLLM, SGLang, llama.cpp's llama-server, TGI's Messages API, trtllm-serve and
// Ollama.
type OpenAIClient struct {
	http      *http.Client
	transport *http.Transport
	url       string
	chat      bool
	model     string
	header    http.Header
	maxBytes  int64
	timeout   time.Duration
	firstByte time.Duration
	idle      time.Duration

	maxTokens       int
	ignoreEOS       bool
	continuousUsage bool // ask for usage on every chunk (vLLM's continuous_usage_stats)
	allowEmpty      bool // a stream without token chunks is a success (max_tokens-0 style probes)
	temperature     *float64
	extraBody       map[string]any

	readers sync.Pool // *SSEReader, reused across requests
}

// NewOpenAIClient builds a client for a validated target.
func NewOpenAIClient(t config.Target) (*OpenAIClient, error) {
	tr, err := NewTransport(t)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	for k, v := range t.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "text/event-stream")
	if key := t.APIKey.Value(); key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	return &OpenAIClient{
		http:      &http.Client{Transport: tr, CheckRedirect: noRedirects},
		transport: tr,
		url:       strings.TrimRight(t.URL, "/") + t.Path,
		chat:      t.API == APIOpenAIChat,
		model:     t.Model,
		header:    h,
		maxBytes:  t.MaxResponseBytes,
		timeout:   t.Timeout,
		firstByte: t.FirstByteTimeout,
		idle:      t.IdleTimeout,
		maxTokens: t.Request.MaxTokens,
		ignoreEOS: t.Request.IgnoreEOS,
		// Unset means on: exact per-chunk token counts are what per-token ITL needs.
		continuousUsage: t.Request.ContinuousUsageStats == nil || *t.Request.ContinuousUsageStats,
		allowEmpty:      t.Request.AllowEmpty,
		temperature:     t.Request.Temperature,
		extraBody:       t.Request.ExtraBody,
	}, nil
}

// noRedirects makes a redirect a visible failure: a POST that is redirected is not measured.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Close releases idle connections.
func (c *OpenAIClient) Close() { c.transport.CloseIdleConnections() }

// Body returns the JSON request body for req.
func (c *OpenAIClient) Body(req traffic.Request) ([]byte, error) {
	model := c.model
	if req.Adapter != "" {
		model = req.Adapter // vLLM and SGLang address a LoRA adapter by its model name
	}
	body := make(map[string]any, 8+len(c.extraBody))
	body["model"] = model
	switch {
	case c.chat && len(req.Messages) > 0:
		body["messages"] = req.Messages
	case c.chat:
		body["messages"] = []map[string]string{{"role": "user", "content": req.Prompt}}
	default:
		body["prompt"] = req.Prompt
	}
	maxTokens := req.MaxTokens
	if maxTokens == 0 {
		maxTokens = c.maxTokens
	}
	if maxTokens > 0 {
		body["max_tokens"] = maxTokens
	}
	body["stream"] = true
	if c.continuousUsage {
		body["stream_options"] = map[string]bool{"include_usage": true, "continuous_usage_stats": true}
	} else {
		body["stream_options"] = map[string]bool{"include_usage": true}
	}
	if c.ignoreEOS {
		body["ignore_eos"] = true
	}
	if c.temperature != nil {
		body["temperature"] = *c.temperature
	}
	for k, v := range c.extraBody {
		body[k] = v
	}
	return json.Marshal(body)
}

// streamChunk is the part of a chat.completion.chunk or text_completion chunk we read, plus
// the two error shapes servers put in a stream (OpenAI's {"error":{...}} and vLLM's
// {"object":"error",...}). The per-chunk path reads chunks with decodeChunk, which holds to
// what encoding/json makes of this type; encoding/json itself decodes only error chunks.
type streamChunk struct {
	Object  string `json:"object"`
	Choices []struct {
		Delta struct {
			Content          string `json:"content"`
			ReasoningContent string `json:"reasoning_content"`
			Reasoning        string `json:"reasoning"`
		} `json:"delta"`
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens            int `json:"prompt_tokens"`
		CompletionTokens        int `json:"completion_tokens"`
		CompletionTokensDetails *struct {
			ReasoningTokens int `json:"reasoning_tokens"`
		} `json:"completion_tokens_details"`
		PromptTokensDetails *struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
	Error   json.RawMessage `json:"error"`
	Message string          `json:"message"`
	Code    json.RawMessage `json:"code"`
}

// Do sends req and records its timing in rec.
func (c *OpenAIClient) Do(ctx context.Context, req traffic.Request, rec *Record) {
	body, err := c.Body(req)
	if err != nil {
		rec.Start = time.Now()
		rec.Result, rec.Err = ResultProtocol, fmt.Errorf("encoding request: %w", err)
		return
	}
	if req.PromptTokens > 0 {
		rec.PromptTokens, rec.PromptSource = req.PromptTokens, SourceEstimate
	}

	reqCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	totalTimer := time.AfterFunc(c.timeout, func() { cancel(errTotalTimeout) })
	defer totalTimer.Stop()
	// One timer serves the first-byte bound and then the idle bound between reads.
	var headersSeen atomic.Bool
	watchdog := time.AfterFunc(c.firstByte, func() {
		if headersSeen.Load() {
			cancel(errIdleTimeout)
		} else {
			cancel(errFirstByteTimeout)
		}
	})
	defer watchdog.Stop()

	var resp *http.Response
	for attempt := 0; ; attempt++ {
		// A trace per send: hooks of an abandoned send may still run on transport goroutines.
		tr := &phaseTrace{}
		hreq, err := http.NewRequestWithContext(httptrace.WithClientTrace(reqCtx, tr.trace()), http.MethodPost, c.url, bytes.NewReader(body))
		if err != nil {
			rec.Start = time.Now()
			rec.Result, rec.Err = ResultProtocol, err
			return
		}
		hreq.Header = c.header.Clone()
		setTraceparent(hreq.Header, rec)

		rec.Start = time.Now()
		tr.begin(rec.Start)
		resp, err = c.http.Do(hreq)
		tr.end(rec)
		if err == nil {
			break
		}
		// A request that never reached the server (a connection was handed out and failed
		// before one byte of the request went into it — the keep-alive race with a server
		// closing idle connections) is safe to send again, once; a dial that failed is a
		// real connection failure and is not retried.
		if attempt == 0 && tr.neverWritten() && ctx.Err() == nil && reqCtx.Err() == nil {
			rec.Retries++
			continue
		}
		rec.End = time.Since(rec.Start)
		rec.Result, rec.Err = classify(ctx, reqCtx, err, false), errCause(reqCtx, err)
		return
	}
	defer resp.Body.Close()
	rec.Status = resp.StatusCode
	headersSeen.Store(true)
	watchdog.Reset(c.idle)

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		rec.End = time.Since(rec.Start)
		rec.Result = classifyStatus(resp.StatusCode)
		rec.Err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
		return
	}
	if ct := resp.Header.Get("Content-Type"); !eventStreamType(ct) {
		rec.End = time.Since(rec.Start)
		rec.Result, rec.Err = ResultProtocol, fmt.Errorf("server answered with %q, not an event stream (does it support stream: true?)", ct)
		return
	}

	sse, _ := c.readers.Get().(*SSEReader)
	if sse == nil {
		sse = NewSSEReader(nil, maxEventBytes)
	}
	sse.Reset(&limitedBody{r: resp.Body, left: c.maxBytes, onData: func() { watchdog.Reset(c.idle) }})
	defer func() {
		sse.Reset(nil) // drop the body before pooling the reader
		c.readers.Put(sse)
	}()
	c.readStream(ctx, reqCtx, sse, rec)
	if rec.Result == ResultSuccess {
		// Let the connection be reused: read what is left after [DONE] (usually just the
		// chunked terminator), but do not hold the request slot if the server keeps the body
		// open.
		headersSeen.Store(true)
		watchdog.Reset(drainTimeout)
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	}
}

// drainTimeout bounds reading the rest of a body after the stream's end.
const drainTimeout = 100 * time.Millisecond

// eventStreamType accepts text/event-stream and, leniently, a missing type; anything else
// (a JSON answer to a streaming request, a proxy's HTML page) is not a stream.
func eventStreamType(contentType string) bool {
	if contentType == "" {
		return true
	}
	ct, _, err := mime.ParseMediaType(contentType)
	return err == nil && ct == "text/event-stream"
}

func (c *OpenAIClient) readStream(ctx, reqCtx context.Context, sse *SSEReader, rec *Record) {
	var (
		facts    chunkFacts
		finished bool          // a finish_reason was seen
		finishAt time.Duration // when
		usageOut = -1
		prev     time.Duration
		// Per-chunk token counts: usage.completion_tokens is cumulative when the server sends
		// it on every chunk, so a token chunk carried cum − cum at the previous token chunk
		// (tokens of chunks without text, held back by a detokenizer, go to the next one).
		perChunk     = true
		cumAtText    int
		reasoningN   int // reasoning chunks, the fallback count of reasoning tokens
		reasoningUse = -1
	)
	defer func() {
		rec.TokensPerChunk = perChunk && rec.Chunks > 0
		if !rec.TokensPerChunk {
			rec.FirstChunkTokens = 1
		}
		switch {
		case reasoningUse >= 0:
			rec.ReasoningTokens, rec.ReasoningSource = reasoningUse, SourceUsage
		case reasoningN > 0:
			rec.ReasoningTokens, rec.ReasoningSource = reasoningN, SourceChunks
		}
	}()
	for {
		data, err := sse.Next()
		now := time.Since(rec.Start)
		if err != nil {
			switch {
			case finished && ctx.Err() == nil:
				// The generation ended (finish_reason) and only the closing [DONE] or the
				// end of the body went missing or broke: the request ended as finished.
				rec.End = max(finishAt, rec.LastToken)
				c.finish(rec, usageOut)
			case err == io.EOF:
				rec.End = now
				rec.Result, rec.Err = ResultStreamTruncated, errors.New("stream ended without a finish_reason or [DONE]")
			default:
				rec.End = now
				rec.Result, rec.Err = classify(ctx, reqCtx, err, true), errCause(reqCtx, err)
			}
			return
		}
		if sse.IsError() {
			rec.End = now
			rec.Result, rec.Err = errorEvent(data)
			return
		}
		if string(bytes.TrimSpace(data)) == "[DONE]" {
			rec.End = now
			c.finish(rec, usageOut)
			return
		}
		if err := decodeChunk(data, &facts); err != nil {
			rec.End = now
			rec.Result, rec.Err = ResultProtocol, fmt.Errorf("malformed chunk: %w", err)
			return
		}
		if facts.isError {
			// Rare: decode the error object in full to class it by its code.
			var chunk streamChunk
			if err := json.Unmarshal(data, &chunk); err != nil {
				rec.End = now
				rec.Result, rec.Err = ResultProtocol, fmt.Errorf("malformed chunk: %w", err)
				return
			}
			if result, err := chunkError(&chunk); result != "" {
				rec.End = now
				rec.Result, rec.Err = result, err
				return
			}
		}
		if rec.CaptureText && facts.content {
			// A conversation turn keeps its answer (without reasoning) for the next turn to
			// resend; only then is the chunk decoded in full, so the usual path stays
			// allocation-free.
			var chunk streamChunk
			if json.Unmarshal(data, &chunk) == nil {
				for _, ch := range chunk.Choices {
					rec.Text = append(append(rec.Text, ch.Delta.Content...), ch.Text...)
				}
			}
		}
		content, reasoning := facts.content, facts.reasoning
		if facts.finish != "" && !finished {
			finished, finishAt = true, now
			rec.FinishReason = facts.finish
		}
		if facts.hasUsage {
			if facts.completionTokens < 0 || facts.promptTokens < 0 {
				rec.End = now
				rec.Result, rec.Err = ResultProtocol, errors.New("negative token count in usage")
				return
			}
			// Usage may come on its own chunk, on the last content chunk (llama.cpp) or on
			// every chunk (continuous usage); the last one seen wins.
			usageOut = facts.completionTokens
			if facts.promptTokens > 0 {
				rec.PromptTokens, rec.PromptSource = facts.promptTokens, SourceUsage
			}
			if facts.hasReasoningTokens && facts.reasoningTokens >= 0 {
				reasoningUse = facts.reasoningTokens
			}
			if facts.hasCachedTokens && facts.cachedTokens >= 0 {
				rec.CachedTokens, rec.CachedSource = facts.cachedTokens, SourceUsage
			}
		}
		if content || reasoning {
			k := int32(0)
			if facts.hasUsage {
				k = int32(facts.completionTokens - cumAtText)
				cumAtText = facts.completionTokens
			}
			if k <= 0 {
				perChunk = false // a token chunk without (or with inconsistent) usage
			}
			if rec.Chunks == 0 {
				rec.FirstToken = now
				rec.FirstChunkTokens = int(k)
			} else {
				rec.Gaps = append(rec.Gaps, now-prev)
				rec.GapTokens = append(rec.GapTokens, k)
			}
			if content && !rec.ContentSeen {
				rec.FirstContent, rec.ContentSeen = now, true
			}
			if reasoning {
				reasoningN++
			}
			rec.LastToken, prev = now, now
			rec.Chunks++
		}
	}
}

// finish records a cleanly ended stream: N from usage when the server sent it, else chunks.
// It is a success only with at least one token chunk (unless allow_empty) and a finish that is
// not the server's own abort or error.
func (c *OpenAIClient) finish(rec *Record, usageOut int) {
	if usageOut >= 0 {
		rec.OutputTokens, rec.OutputSource = usageOut, SourceUsage
	} else {
		rec.OutputTokens, rec.OutputSource = rec.Chunks, SourceChunks
	}
	switch {
	case rec.FinishReason == FinishAbort || rec.FinishReason == FinishError:
		rec.Result = ResultAborted
		rec.Err = fmt.Errorf("the server ended the generation with finish_reason %s", rec.FinishReason)
	case rec.Chunks == 0 && !c.allowEmpty:
		rec.Result = ResultEmpty
		rec.Err = errors.New("the stream finished without any token chunk")
	default:
		rec.Result = ResultSuccess
	}
}

// chunkError recognises an error object sent inside the stream and classes it by its code.
func chunkError(ch *streamChunk) (string, error) {
	var code json.RawMessage
	var msg string
	switch {
	case len(ch.Error) > 0 && string(ch.Error) != "null":
		var e struct {
			Message        string          `json:"message"`
			Code           json.RawMessage `json:"code"`
			HTTPStatusCode json.RawMessage `json:"http_status_code"` // TGI
		}
		if json.Unmarshal(ch.Error, &e) != nil {
			// {"error": "text"}
			_ = json.Unmarshal(ch.Error, &e.Message)
		}
		code, msg = e.Code, e.Message
		if len(e.HTTPStatusCode) > 0 {
			code = e.HTTPStatusCode
		}
	case ch.Object == "error":
		code, msg = ch.Code, ch.Message
	default:
		return "", nil
	}
	return classifyErrorCode(code), fmt.Errorf("error event in stream (code %s): %s", code, msg)
}

// classifyErrorCode classes an error reported inside a stream by its HTTP-like code; a server
// that reports an error without one failed on its side.
func classifyErrorCode(code json.RawMessage) string {
	if n, _ := strconv.Atoi(strings.Trim(string(code), `"`)); n >= 400 {
		return classifyStatus(n)
	}
	return ResultHTTP5xx
}

// errorEvent classes an SSE error event ("event: error", or llama.cpp's "error:" field), whose
// payload is an error object or a message.
func errorEvent(data []byte) (string, error) {
	var ch streamChunk
	if json.Unmarshal(data, &ch) == nil {
		if result, err := chunkError(&ch); result != "" {
			return result, err
		}
	}
	var e struct {
		Code           json.RawMessage `json:"code"`
		HTTPStatusCode json.RawMessage `json:"http_status_code"`
	}
	_ = json.Unmarshal(data, &e)
	code := e.Code
	if len(e.HTTPStatusCode) > 0 {
		code = e.HTTPStatusCode
	}
	return classifyErrorCode(code), fmt.Errorf("error event in stream: %s", bytes.TrimSpace(data))
}

// errCause prefers the timeout cause we set over the transport's generic "context canceled".
func errCause(reqCtx context.Context, err error) error {
	if cause := context.Cause(reqCtx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}
