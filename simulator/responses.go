package simulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// OpenAI's Responses API, /v1/responses: response.created, response.output_item.added,
// response.content_part.added, one response.output_text.delta per chunk, then
// response.completed (or response.incomplete at max_output_tokens) with usage; response.failed
// for a server-side failure.

type responsesRequest struct {
	Model           string          `json:"model"`
	Input           json.RawMessage `json:"input"`
	MaxOutputTokens *int            `json:"max_output_tokens"`
	Stream          bool            `json:"stream"`
	IgnoreEOS       bool            `json:"ignore_eos"`
}

func parseResponses(w http.ResponseWriter, r *http.Request, cfg *Config) (*genRequest, *apiError) {
	var rr responsesRequest
	if err := decodeBody(w, r, &rr); err != nil {
		return nil, err
	}
	g := &genRequest{chat: true, model: rr.Model, stream: rr.Stream, ignoreEOS: rr.IgnoreEOS}
	if g.model == "" {
		g.model = cfg.ModelName
	}
	in := bytes.TrimSpace(rr.Input)
	switch {
	case len(in) > 0 && in[0] == '"':
		var s string
		if err := json.Unmarshal(in, &s); err != nil {
			return nil, badRequest("input", "input: %v", err)
		}
		g.promptTokens = CountTokens(s)
	case len(in) > 0 && in[0] == '[':
		var msgs []wireMessage
		if err := json.Unmarshal(in, &msgs); err != nil {
			return nil, badRequest("input", "input: %v", err)
		}
		var err *apiError
		if g.promptTokens, err = chatPromptTokens(msgs); err != nil {
			return nil, err
		}
	default:
		return nil, badRequest("input", "input must be a string or a list of messages")
	}
	if err := g.limit(rr.MaxOutputTokens, "max_output_tokens", cfg); err != nil {
		return nil, err
	}
	return g, nil
}

type responsesWire struct{}

// prepare keeps the response id in head.
func (responsesWire) prepare(j *job, _ int64) {
	j.head = append(append([]byte(nil), "resp_"...), j.appendID(nil)[len("chatcmpl-"):]...)
}

func appendSeq(b []byte, typ string, seq int) []byte {
	b = append(b, "event: "...)
	b = append(b, typ...)
	b = append(b, "\ndata: {\"type\":\""...)
	b = append(b, typ...)
	b = append(b, `","sequence_number":`...)
	return strconv.AppendInt(b, int64(seq), 10)
}

func (w responsesWire) begin(j *job, b []byte) []byte {
	b = appendSeq(b, "response.created", 0)
	b = append(b, `,"response":`...)
	b = w.response(j, b, "in_progress", false)
	b = append(b, "}\n\n"...)
	b = appendSeq(b, "response.output_item.added", 1)
	b = append(b, `,"output_index":0,"item":{"id":"msg_`...)
	b = append(b, j.head[len("resp_"):]...)
	b = append(b, `","type":"message","status":"in_progress","role":"assistant","content":[]}}`+"\n\n"...)
	b = appendSeq(b, "response.content_part.added", 2)
	b = append(b, `,"item_id":"msg_`...)
	b = append(b, j.head[len("resp_"):]...)
	return append(b, `","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}`+"\n\n"...)
}

// response appends a response object; with usage, the tokens sent so far.
func (responsesWire) response(j *job, b []byte, status string, usage bool) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, j.head...)
	b = append(b, `","object":"response","status":"`...)
	b = append(b, status...)
	b = append(b, `","model":`...)
	b = append(b, mustJSON(j.g.model)...)
	b = append(b, `,"output":[],"incomplete_details":`...)
	if status == "incomplete" {
		b = append(b, `{"reason":"max_output_tokens"}`...)
	} else {
		b = append(b, "null"...)
	}
	if !usage {
		return append(b, `,"usage":null}`...)
	}
	b = append(b, `,"usage":{"input_tokens":`...)
	b = strconv.AppendInt(b, int64(j.g.promptTokens), 10)
	b = append(b, `,"input_tokens_details":{"cached_tokens":0},"output_tokens":`...)
	b = strconv.AppendInt(b, int64(j.st.OutputTokens), 10)
	b = append(b, `,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":`...)
	b = strconv.AppendInt(b, int64(j.g.promptTokens+j.st.OutputTokens), 10)
	return append(b, "}}"...)
}

func (responsesWire) malformed(_ *job, b []byte) []byte {
	return append(b, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\n\n"...)
}

func (responsesWire) token(j *job, b, text []byte, _ int) []byte {
	b = appendSeq(b, "response.output_text.delta", 2+j.st.OutputTokens)
	b = append(b, `,"item_id":"msg_`...)
	b = append(b, j.head[len("resp_"):]...)
	b = append(b, `","output_index":0,"content_index":0,"delta":"`...)
	b = append(b, text...)
	return append(b, `","logprobs":[]}`+"\n\n"...)
}

func (w responsesWire) tail(j *job, b []byte) []byte {
	seq := 3 + j.st.OutputTokens
	switch j.p.finish {
	case finishAbort:
		b = appendSeq(b, "response.failed", seq)
		b = append(b, `,"response":{"id":"`...)
		b = append(b, j.head...)
		return append(b, `","object":"response","status":"failed","error":{"code":"server_error","message":"simulated generation failure"},"usage":null}}`+"\n\n"...)
	case finishLength:
		b = appendSeq(b, "response.incomplete", seq)
		b = append(b, `,"response":`...)
		b = w.response(j, b, "incomplete", true)
	default:
		b = appendSeq(b, "response.completed", seq)
		b = append(b, `,"response":`...)
		b = w.response(j, b, "completed", true)
	}
	return append(b, "}\n\n"...)
}

func (w responsesWire) empty(j *job, b []byte) []byte {
	b = w.begin(j, b)
	b = appendSeq(b, "response.completed", 3)
	b = append(b, `,"response":`...)
	b = w.response(j, b, "completed", true)
	return append(b, "}\n\n"...)
}

func (responsesWire) body(j *job, text []byte, _ int64) []byte {
	type part struct {
		Type        string   `json:"type"`
		Text        string   `json:"text"`
		Annotations []string `json:"annotations"`
	}
	type item struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Status  string `json:"status"`
		Role    string `json:"role"`
		Content []part `json:"content"`
	}
	status := "completed"
	if j.p.finish == finishLength {
		status = "incomplete"
	}
	var resp map[string]any
	_ = json.Unmarshal(responsesWire{}.response(j, nil, status, true), &resp)
	resp["output"] = []item{{ID: "msg_" + string(j.head[len("resp_"):]), Type: "message", Status: "completed", Role: "assistant",
		Content: []part{{Type: "output_text", Text: string(text), Annotations: []string{}}}}}
	return mustJSON(resp)
}

func (responsesWire) errorBody(e *apiError) []byte { return openaiErrorBody(e) }
