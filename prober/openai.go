package prober

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/traffic"
)

// OpenAIClient speaks the OpenAI-compatible streaming APIs (chat completions and completions)
// as served by vLLM, SGLang, llama.cpp's llama-server, TGI's Messages API, trtllm-serve and
// Ollama: the shared HTTP transport with the OpenAI body and chunk decoder.
type OpenAIClient struct {
	*httpClient
	f *openaiFlavour
}

// openaiFlavour builds OpenAI request bodies and decodes their chunks.
type openaiFlavour struct {
	chat      bool
	model     string
	maxTokens int
	tmpl      bodyTemplate
}

// NewOpenAIClient builds a client for a validated target.
func NewOpenAIClient(t config.Target) (*OpenAIClient, error) {
	f := &openaiFlavour{chat: t.API == APIOpenAIChat, model: t.Model, maxTokens: t.Request.MaxTokens}
	static := map[string]any{"stream": t.Request.Streaming()}
	// Unset means on: exact per-chunk token counts are what per-token ITL needs. Servers
	// refuse stream_options without streaming (vLLM answers 400).
	switch {
	case !t.Request.Streaming():
	case t.Request.ContinuousUsageStats == nil || *t.Request.ContinuousUsageStats:
		static["stream_options"] = map[string]bool{"include_usage": true, "continuous_usage_stats": true}
	default:
		static["stream_options"] = map[string]bool{"include_usage": true}
	}
	if t.Request.IgnoreEOS {
		static["ignore_eos"] = true
	}
	if t.Request.Temperature != nil {
		static["temperature"] = *t.Request.Temperature
	}
	var err error
	if f.tmpl, err = newBodyTemplate(static, t.Request.ExtraBody, "model", "messages", "prompt", "max_tokens"); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	h := http.Header{}
	if key := t.APIKey.Value(); key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	hc, err := newHTTPClient(t, f, h)
	if err != nil {
		return nil, err
	}
	return &OpenAIClient{httpClient: hc, f: f}, nil
}

// Body returns the JSON request body for req.
func (c *OpenAIClient) Body(req traffic.Request) ([]byte, error) { return c.f.appendBody(nil, req) }

func (f *openaiFlavour) appendBody(dst []byte, req traffic.Request) ([]byte, error) {
	model := f.model
	if req.Adapter != "" {
		model = req.Adapter // vLLM and SGLang address a LoRA adapter by its model name
	}
	t := &f.tmpl
	dst = append(dst, '{')
	dst = t.str(dst, "model", model)
	if f.chat {
		if d, ok := t.key(dst, "messages"); ok {
			dst = append(appendMessages(d, req), ',')
		}
	} else {
		dst = t.str(dst, "prompt", req.Prompt)
	}
	maxTokens := req.MaxTokens
	if maxTokens == 0 {
		maxTokens = f.maxTokens
	}
	if maxTokens > 0 {
		dst = t.int(dst, "max_tokens", maxTokens)
	}
	return t.close(dst), nil
}

// openaiUsage is an OpenAI usage object, streamed or whole.
type openaiUsage struct {
	PromptTokens            int `json:"prompt_tokens"`
	CompletionTokens        int `json:"completion_tokens"`
	CompletionTokensDetails *struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
	PromptTokensDetails *struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

// streamChunk is the part of a chat.completion.chunk or text_completion chunk we read, plus
// the two error shapes servers put in a stream (OpenAI's {"error":{...}} and vLLM's
// {"object":"error",...}). The per-chunk path reads chunks with decodeChunk, which holds to
// what encoding/json makes of this type; encoding/json itself decodes only error chunks.
type streamChunk struct {
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Delta struct {
			Content          string `json:"content"`
			ReasoningContent string `json:"reasoning_content"`
			Reasoning        string `json:"reasoning"`
		} `json:"delta"`
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage   *openaiUsage    `json:"usage"`
	Error   json.RawMessage `json:"error"`
	Message string          `json:"message"`
	Code    json.RawMessage `json:"code"`
}

// decode reads one chunk; the per-chunk path allocates nothing (decodeChunk).
func (f *openaiFlavour) decode(data []byte, isError, whole, capture bool, ev *StreamEvent) error {
	ev.Reset()
	if isError {
		ev.Result, ev.Err = errorEvent(data)
		return nil
	}
	if whole {
		return decodeWholeOpenAI(data, capture, ev)
	}
	if string(bytes.TrimSpace(data)) == "[DONE]" {
		ev.Done = true
		return nil
	}
	var facts chunkFacts
	if ev.memo == nil {
		ev.memo = &chunkMemo{} // once per pooled event: it lives as long as the event
	}
	if err := decodeChunk(data, &facts, ev.memo); err != nil {
		return err
	}
	if facts.isError {
		// Rare: decode the error object in full to class it by its code.
		var chunk streamChunk
		if err := json.Unmarshal(data, &chunk); err != nil {
			return err
		}
		if result, err := chunkError(&chunk); result != "" {
			ev.Result, ev.Err = result, err
			return nil
		}
	}
	if capture && facts.content {
		// A conversation turn keeps its answer (without reasoning) for the next turn to
		// resend; only then is the chunk decoded in full, so the usual path stays
		// allocation-free.
		var chunk streamChunk
		if json.Unmarshal(data, &chunk) == nil {
			for _, ch := range chunk.Choices {
				ev.Text = append(append(ev.Text, ch.Delta.Content...), ch.Text...)
			}
		}
	}
	ev.Content, ev.Reasoning, ev.Finish = facts.content, facts.reasoning, facts.finish
	ev.Model = facts.model(data)
	if facts.hasUsage {
		ev.HasUsage = true
		ev.PromptTokens, ev.OutputTokens = facts.promptTokens, facts.completionTokens
		if facts.hasReasoningTokens && facts.reasoningTokens >= 0 {
			ev.ReasoningTokens = facts.reasoningTokens
		}
		if facts.hasCachedTokens && facts.cachedTokens >= 0 {
			ev.CachedTokens = facts.cachedTokens
		}
	}
	return nil
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
		return ClassifyStatus(n)
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

// openaiWhole is the part of a non-streaming chat.completion or text_completion we read.
type openaiWhole struct {
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content          string `json:"content"`
			ReasoningContent string `json:"reasoning_content"`
			Reasoning        string `json:"reasoning"`
		} `json:"message"`
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *openaiUsage    `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// decodeWholeOpenAI reads a non-streaming response (stream: false), once per request.
func decodeWholeOpenAI(data []byte, capture bool, ev *StreamEvent) error {
	var r openaiWhole
	if err := json.Unmarshal(data, &r); err != nil {
		return err
	}
	if len(r.Error) > 0 && string(r.Error) != "null" {
		ev.Result, ev.Err = errorEvent(data)
		return nil
	}
	if r.Model != "" {
		ev.Model = []byte(r.Model)
	}
	for _, ch := range r.Choices {
		ev.Content = ev.Content || ch.Message.Content != "" || ch.Text != ""
		ev.Reasoning = ev.Reasoning || ch.Message.ReasoningContent != "" || ch.Message.Reasoning != ""
		if ch.FinishReason != nil && ev.Finish == "" {
			ev.Finish = NormaliseFinishReason(*ch.FinishReason)
		}
		if capture {
			ev.Text = append(append(ev.Text, ch.Message.Content...), ch.Text...)
		}
	}
	if u := r.Usage; u != nil {
		ev.HasUsage, ev.PromptTokens, ev.OutputTokens = true, u.PromptTokens, u.CompletionTokens
		if d := u.CompletionTokensDetails; d != nil && d.ReasoningTokens >= 0 {
			ev.ReasoningTokens = d.ReasoningTokens
		}
		if d := u.PromptTokensDetails; d != nil && d.CachedTokens >= 0 {
			ev.CachedTokens = d.CachedTokens
		}
	}
	return nil
}
