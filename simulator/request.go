package simulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"unicode"
	"unicode/utf8"
)

// maxBodyBytes bounds a request body; long-context prompts fit with room to spare.
const maxBodyBytes = 32 << 20

// CountTokens is the simulator's tokenizer: one token per whitespace-separated word (runs of
// Unicode white space separate words; leading and trailing space count for nothing). The
// probe's prompt generator emits words, so both sides agree on prompt lengths, and every
// output token the simulator sends is one word, so output text counts back to its length.
func CountTokens(s string) int {
	n := 0
	inWord := false
	for i := 0; i < len(s); {
		c := s[i]
		var space bool
		if c < utf8.RuneSelf {
			space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
			i++
		} else {
			r, size := utf8.DecodeRuneInString(s[i:])
			space = unicode.IsSpace(r)
			i += size
		}
		if !space && !inWord {
			n++
		}
		inWord = !space
	}
	return n
}

// apiError is an error answered with an OpenAI-style JSON body.
type apiError struct {
	status  int
	typ     string
	param   string
	message string
}

func (e *apiError) Error() string { return e.message }

func badRequest(param, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "BadRequestError", param: param, message: fmt.Sprintf(format, args...)}
}

// wireRequest is the part of an OpenAI chat or completions request the simulator reads.
// Unknown fields are ignored, as vLLM does.
type wireRequest struct {
	Model               string          `json:"model"`
	Messages            []wireMessage   `json:"messages"`
	Prompt              json.RawMessage `json:"prompt"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	MinTokens           int             `json:"min_tokens"`
	N                   *int            `json:"n"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage         bool `json:"include_usage"`
		ContinuousUsageStats bool `json:"continuous_usage_stats"`
	} `json:"stream_options"`
	IgnoreEOS bool `json:"ignore_eos"`
}

type wireMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type wirePart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// genRequest is a validated generation request.
type genRequest struct {
	chat         bool
	model        string
	promptTokens int
	maxTokens    int
	minTokens    int
	stream       bool
	includeUsage bool
	// continuousUsage puts cumulative usage on every chunk, as vLLM does with
	// stream_options.continuous_usage_stats.
	continuousUsage bool
	ignoreEOS       bool
	// details asks TGI for the details object (finish reason, token counts).
	details bool
	// returnFinish and returnCounts are the vLLM Triton backend's return_finish_reason and
	// return_num_output_tokens inputs: every response then carries finish_reason ("None" until
	// the last) and num_output_tokens (that response's tokens).
	returnFinish, returnCounts bool
}

// parseRequest reads and validates a request body. Model acceptance is checked by the caller.
func parseRequest(w http.ResponseWriter, r *http.Request, chat bool, cfg *Config) (*genRequest, *apiError) {
	var wr wireRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(&wr); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &apiError{status: http.StatusRequestEntityTooLarge, typ: "BadRequestError", message: fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit)}
		}
		return nil, badRequest("", "invalid JSON body: %v", err)
	}
	if dec.More() {
		return nil, badRequest("", "invalid JSON body: data after the top-level value")
	}

	g := &genRequest{chat: chat, model: wr.Model, stream: wr.Stream, ignoreEOS: wr.IgnoreEOS, minTokens: wr.MinTokens}
	if g.model == "" {
		g.model = cfg.ModelName
	}
	if wr.StreamOptions != nil {
		if !wr.Stream {
			return nil, badRequest("stream_options", "stream_options can only be set when stream is true")
		}
		g.includeUsage = wr.StreamOptions.IncludeUsage
		g.continuousUsage = wr.StreamOptions.ContinuousUsageStats
	}
	if wr.N != nil && *wr.N != 1 {
		return nil, badRequest("n", "n=%d is not supported by the simulator; only n=1", *wr.N)
	}

	var err *apiError
	if chat {
		g.promptTokens, err = chatPromptTokens(wr.Messages)
	} else {
		g.promptTokens, err = completionPromptTokens(wr.Prompt)
	}
	if err != nil {
		return nil, err
	}

	// vLLM prefers max_completion_tokens when both are present.
	limit, param := wr.MaxCompletionTokens, "max_completion_tokens"
	if limit == nil {
		limit, param = wr.MaxTokens, "max_tokens"
	}
	if err := g.limit(limit, param, cfg); err != nil {
		return nil, err
	}
	return g, nil
}

// limit sets the output length from the request's limit (nil: the server's default) and
// checks it against the context, as vLLM does.
func (g *genRequest) limit(limit *int, param string, cfg *Config) *apiError {
	room := cfg.MaxModelLen - g.promptTokens
	switch {
	case limit != nil && *limit < 1:
		return badRequest(param, "%s must be at least 1, got %d", param, *limit)
	case limit != nil:
		g.maxTokens = *limit
	default:
		g.maxTokens = min(cfg.DefaultMaxTokens, room)
	}
	if g.maxTokens < 1 || g.promptTokens+g.maxTokens > cfg.MaxModelLen {
		return badRequest(param, "This model's maximum context length is %d tokens. However, you requested %d tokens (%d in the prompt, %d in the completion). Please reduce the length of the prompt or completion.",
			cfg.MaxModelLen, g.promptTokens+max(g.maxTokens, 0), g.promptTokens, max(g.maxTokens, 0))
	}
	if g.minTokens < 0 || g.minTokens > g.maxTokens {
		return badRequest("min_tokens", "min_tokens must be between 0 and max_tokens (%d), got %d", g.maxTokens, g.minTokens)
	}
	return nil
}

// decodeBody reads a JSON request body into v, bounded in size.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) *apiError {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &apiError{status: http.StatusRequestEntityTooLarge, typ: "BadRequestError", message: fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit)}
		}
		return badRequest("", "invalid JSON body: %v", err)
	}
	if dec.More() {
		return badRequest("", "invalid JSON body: data after the top-level value")
	}
	return nil
}

func chatPromptTokens(msgs []wireMessage) (int, *apiError) {
	if len(msgs) == 0 {
		return 0, badRequest("messages", "messages must be a non-empty list")
	}
	n := 0
	for i, m := range msgs {
		c := bytes.TrimSpace(m.Content)
		switch {
		case len(c) == 0 || string(c) == "null":
		case c[0] == '"':
			var s string
			if err := json.Unmarshal(c, &s); err != nil {
				return 0, badRequest("messages", "messages[%d].content: %v", i, err)
			}
			n += CountTokens(s)
		case c[0] == '[':
			var parts []wirePart
			if err := json.Unmarshal(c, &parts); err != nil {
				return 0, badRequest("messages", "messages[%d].content: %v", i, err)
			}
			for _, p := range parts {
				if p.Type == "text" {
					n += CountTokens(p.Text)
				}
			}
		default:
			return 0, badRequest("messages", "messages[%d].content must be a string or a list of parts", i)
		}
	}
	return n, nil
}

// completionPromptTokens counts a completions prompt: a string, a list with one string, a
// list of token ids, or a list with one list of token ids. Batched prompts are refused.
func completionPromptTokens(raw json.RawMessage) (int, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, badRequest("prompt", "prompt is required")
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, badRequest("prompt", "prompt: %v", err)
		}
		return CountTokens(s), nil
	}
	var ids []int
	if json.Unmarshal(raw, &ids) == nil {
		if len(ids) == 0 {
			return 0, badRequest("prompt", "prompt must not be empty")
		}
		return len(ids), nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return 0, badRequest("prompt", "prompt must be a string, a list of strings or a list of token ids")
	}
	if len(list) != 1 {
		return 0, badRequest("prompt", "batched prompts (%d) are not supported by the simulator; send one per request", len(list))
	}
	return completionPromptTokens(list[0])
}
