package simulator

import (
	"net/http"
	"strconv"
)

// Anthropic's Messages API, /v1/messages: message_start (input usage), content_block_start,
// ping, one content_block_delta per chunk, content_block_stop, message_delta (stop_reason and
// the cumulative output usage) and message_stop; an error event for a server-side failure.

type anthropicRequest struct {
	Model     string        `json:"model"`
	MaxTokens *int          `json:"max_tokens"`
	Messages  []wireMessage `json:"messages"`
	Stream    bool          `json:"stream"`
	IgnoreEOS bool          `json:"ignore_eos"`
}

func parseAnthropic(w http.ResponseWriter, r *http.Request, cfg *Config) (*genRequest, *apiError) {
	var ar anthropicRequest
	if err := decodeBody(w, r, &ar); err != nil {
		return nil, err
	}
	if ar.MaxTokens == nil {
		return nil, badRequest("max_tokens", "max_tokens: Field required")
	}
	g := &genRequest{chat: true, model: ar.Model, stream: ar.Stream, ignoreEOS: ar.IgnoreEOS}
	if g.model == "" {
		g.model = cfg.ModelName
	}
	var err *apiError
	if g.promptTokens, err = chatPromptTokens(ar.Messages); err != nil {
		return nil, err
	}
	if err := g.limit(ar.MaxTokens, "max_tokens", cfg); err != nil {
		return nil, err
	}
	return g, nil
}

type anthropicWire struct{}

// prepare keeps the message id in head.
func (anthropicWire) prepare(j *job, _ int64) {
	j.head = append(append([]byte(nil), "msg_"...), j.appendID(nil)[len("chatcmpl-"):]...)
}

func (anthropicWire) begin(j *job, b []byte) []byte {
	b = append(b, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\""...)
	b = append(b, j.head...)
	b = append(b, `","type":"message","role":"assistant","model":`...)
	b = append(b, mustJSON(j.g.model)...)
	b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":`...)
	b = strconv.AppendInt(b, int64(j.g.promptTokens), 10)
	b = append(b, `,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`+"\n\n"...)
	b = append(b, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"...)
	return append(b, "event: ping\ndata: {\"type\": \"ping\"}\n\n"...)
}

func (anthropicWire) malformed(_ *job, b []byte) []byte {
	return append(b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":\n\n"...)
}

func (anthropicWire) token(_ *job, b, text []byte, _ int) []byte {
	b = append(b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\""...)
	b = append(b, text...)
	return append(b, "\"}}\n\n"...)
}

func (w anthropicWire) tail(j *job, b []byte) []byte {
	if j.p.finish == finishAbort {
		return append(b, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"...)
	}
	b = append(b, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"...)
	return w.end(j, b)
}

func (anthropicWire) end(j *job, b []byte) []byte {
	b = append(b, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\""...)
	b = append(b, anthropicStop(j.p.finish)...)
	b = append(b, `","stop_sequence":null},"usage":{"output_tokens":`...)
	b = strconv.AppendInt(b, int64(j.st.OutputTokens), 10)
	b = append(b, "}}\n\n"...)
	return append(b, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
}

func anthropicStop(finish string) string {
	if finish == finishLength {
		return "max_tokens"
	}
	return "end_turn"
}

func (w anthropicWire) empty(j *job, b []byte) []byte { return w.end(j, w.begin(j, b)) }

func (anthropicWire) body(j *job, text []byte, _ int64) []byte {
	type block struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	type usage struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	}
	return mustJSON(struct {
		ID         string  `json:"id"`
		Type       string  `json:"type"`
		Role       string  `json:"role"`
		Model      string  `json:"model"`
		Content    []block `json:"content"`
		StopReason string  `json:"stop_reason"`
		Usage      usage   `json:"usage"`
	}{string(j.head), "message", "assistant", j.g.model, []block{{"text", string(text)}}, anthropicStop(j.p.finish),
		usage{j.g.promptTokens, j.st.OutputTokens}})
}

func (anthropicWire) errorBody(e *apiError) []byte {
	typ := "api_error"
	switch e.status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		typ = "invalid_request_error"
	case http.StatusNotFound:
		typ = "not_found_error"
	case http.StatusTooManyRequests:
		typ = "rate_limit_error"
	case http.StatusServiceUnavailable:
		typ = "overloaded_error"
	}
	type detail struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	return mustJSON(struct {
		Type  string `json:"type"`
		Error detail `json:"error"`
	}{"error", detail{typ, e.message}})
}
