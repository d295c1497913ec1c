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

	maxTokens   int
	ignoreEOS   bool
	temperature *float64
	extraBody   map[string]any

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
		http:        &http.Client{Transport: tr, CheckRedirect: noRedirects},
		transport:   tr,
		url:         strings.TrimRight(t.URL, "/") + t.Path,
		chat:        t.API == APIOpenAIChat,
		model:       t.Model,
		header:      h,
		maxBytes:    t.MaxResponseBytes,
		timeout:     t.Timeout,
		firstByte:   t.FirstByteTimeout,
		idle:        t.IdleTimeout,
		maxTokens:   t.Request.MaxTokens,
		ignoreEOS:   t.Request.IgnoreEOS,
		temperature: t.Request.Temperature,
		extraBody:   t.Request.ExtraBody,
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
	body["stream_options"] = map[string]bool{"include_usage": true}
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
// {"object":"error",...}).
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
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
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

	hreq, err := http.NewRequestWithContext(reqCtx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		rec.Start = time.Now()
		rec.Result, rec.Err = ResultProtocol, err
		return
	}
	hreq.Header = c.header.Clone()

	rec.Start = time.Now()
	resp, err := c.http.Do(hreq)
	if err != nil {
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
		chunk    streamChunk
		finished bool          // a finish_reason was seen
		finishAt time.Duration // when
		usageOut = -1
		prev     time.Duration
	)
	for {
		data, err := sse.Next()
		now := time.Since(rec.Start)
		if err != nil {
			switch {
			case finished && ctx.Err() == nil:
				// The generation ended (finish_reason) and only the closing [DONE] or the
				// end of the body went missing or broke: the request succeeded.
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
		chunk = streamChunk{} // fresh: json would leave stale fields in reused slice elements
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
		text := false
		for i := range chunk.Choices {
			ch := &chunk.Choices[i]
			if ch.Delta.Content != "" || ch.Delta.ReasoningContent != "" || ch.Delta.Reasoning != "" || ch.Text != "" {
				text = true
			}
			if rec.CaptureText { // the answer, without reasoning: what a next turn resends
				rec.Text = append(append(rec.Text, ch.Delta.Content...), ch.Text...)
			}
			if ch.FinishReason != nil && *ch.FinishReason != "" && !finished {
				finished, finishAt = true, now
			}
		}
		if text {
			if rec.Chunks == 0 {
				rec.FirstToken = now
			} else {
				rec.Gaps = append(rec.Gaps, now-prev)
			}
			rec.LastToken, prev = now, now
			rec.Chunks++
		}
		if chunk.Usage != nil {
			if chunk.Usage.CompletionTokens < 0 || chunk.Usage.PromptTokens < 0 {
				rec.End = now
				rec.Result, rec.Err = ResultProtocol, errors.New("negative token count in usage")
				return
			}
			// Usage may come on its own chunk or on the last content chunk (llama.cpp); the
			// last one seen wins.
			usageOut = chunk.Usage.CompletionTokens
			if chunk.Usage.PromptTokens > 0 {
				rec.PromptTokens, rec.PromptSource = chunk.Usage.PromptTokens, SourceUsage
			}
		}
	}
}

// finish records a cleanly ended stream: N from usage when the server sent it, else chunks.
func (c *OpenAIClient) finish(rec *Record, usageOut int) {
	rec.Result = ResultSuccess
	if usageOut >= 0 {
		rec.OutputTokens, rec.OutputSource = usageOut, SourceUsage
	} else {
		rec.OutputTokens, rec.OutputSource = rec.Chunks, SourceChunks
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
