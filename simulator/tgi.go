package simulator

import (
	"bytes"
	"net/http"
	"strconv"
)

// TGI's native API: /generate_stream sends one event per token, the last one with the whole
// generated_text and (with details: true) details; /generate answers one JSON object.

type tgiRequest struct {
	Inputs     *string `json:"inputs"`
	Parameters struct {
		MaxNewTokens *int `json:"max_new_tokens"`
		Details      bool `json:"details"`
	} `json:"parameters"`
}

func parseTGI(stream bool) func(w http.ResponseWriter, r *http.Request, cfg *Config) (*genRequest, *apiError) {
	return func(w http.ResponseWriter, r *http.Request, cfg *Config) (*genRequest, *apiError) {
		var tr tgiRequest
		if err := decodeBody(w, r, &tr); err != nil {
			return nil, err
		}
		if tr.Inputs == nil || *tr.Inputs == "" {
			return nil, &apiError{status: http.StatusUnprocessableEntity, typ: "validation", message: "Input validation error: `inputs` cannot be empty"}
		}
		g := &genRequest{model: cfg.ModelName, stream: stream, details: tr.Parameters.Details, promptTokens: CountTokens(*tr.Inputs)}
		if err := g.limit(tr.Parameters.MaxNewTokens, "max_new_tokens", cfg); err != nil {
			err.status, err.typ = http.StatusUnprocessableEntity, "validation"
			return nil, err
		}
		return g, nil
	}
}

type tgiWire struct{}

func (tgiWire) prepare(*job, int64)           {}
func (tgiWire) begin(_ *job, b []byte) []byte { return b }
func (tgiWire) malformed(_ *job, b []byte) []byte {
	return append(b, "data:{\"index\":1,\"token\":\n\n"...)
}

// token writes one event per word of text: TGI never coalesces tokens.
func (tgiWire) token(j *job, b, text []byte, n int) []byte {
	first := j.st.OutputTokens - n
	for i := range n {
		word := text
		if k := bytes.IndexByte(text[1:], ' '); k >= 0 && i < n-1 {
			word, text = text[:k+1], text[k+1:]
		}
		idx := first + i + 1
		b = append(b, `data:{"index":`...)
		b = strconv.AppendInt(b, int64(idx), 10)
		b = append(b, `,"token":{"id":`...)
		b = strconv.AppendInt(b, int64(100+idx), 10)
		b = append(b, `,"text":"`...)
		b = append(b, word...) // vocabulary words need no JSON escaping
		b = append(b, `","logprob":-0.25,"special":false},`...)
		j.text = append(j.text, word...)
		last := idx == j.p.length && j.p.finish == finishLength && j.p.truncateAfter < 0 && !j.p.resetMid
		if last {
			b = tgiGenerated(j, b)
			b = tgiDetails(j, b, "length", j.st.OutputTokens)
		} else {
			b = append(b, `"generated_text":null,"details":null`...)
		}
		b = append(b, "}\n\n"...)
	}
	return b
}

// tgiGenerated writes the last event's generated_text, the whole output without special
// tokens as TGI repeats it there, and the details key after it.
func tgiGenerated(j *job, b []byte) []byte {
	b = append(b, `"generated_text":"`...)
	b = append(b, j.text...)
	return append(b, `","details":`...)
}

func tgiDetails(j *job, b []byte, reason string, n int) []byte {
	if !j.g.details {
		return append(b, "null"...)
	}
	b = append(b, `{"finish_reason":"`...)
	b = append(b, reason...)
	b = append(b, `","generated_tokens":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `,"seed":null,"input_length":`...)
	b = strconv.AppendInt(b, int64(j.g.promptTokens), 10)
	return append(b, '}')
}

// eos writes the special end-of-sequence token event that ends a stopped generation.
func tgiEOS(j *job, b []byte) []byte {
	idx := j.st.OutputTokens + 1
	b = append(b, `data:{"index":`...)
	b = strconv.AppendInt(b, int64(idx), 10)
	b = append(b, `,"token":{"id":2,"text":"</s>","logprob":-0.01,"special":true},`...)
	b = tgiGenerated(j, b)
	b = tgiDetails(j, b, "eos_token", idx)
	return append(b, "}\n\n"...)
}

func (tgiWire) tail(j *job, b []byte) []byte {
	switch j.p.finish {
	case finishAbort:
		return append(b, "data:{\"error\":\"simulated generation failure\",\"error_type\":\"generation\"}\n\n"...)
	case finishLength:
		return b // the last token carried the details
	}
	return tgiEOS(j, b)
}

func (tgiWire) empty(j *job, b []byte) []byte { return tgiEOS(j, b) }

func (tgiWire) body(j *job, text []byte, _ int64) []byte {
	type details struct {
		FinishReason    string `json:"finish_reason"`
		GeneratedTokens int    `json:"generated_tokens"`
		Seed            *int   `json:"seed"`
	}
	reason := "length"
	if j.p.finish != finishLength {
		reason = "eos_token"
	}
	var d *details
	if j.g.details {
		d = &details{FinishReason: reason, GeneratedTokens: j.st.OutputTokens}
	}
	return mustJSON(struct {
		GeneratedText string   `json:"generated_text"`
		Details       *details `json:"details"`
	}{string(text), d})
}

func (tgiWire) errorBody(e *apiError) []byte {
	typ := e.typ
	switch e.status {
	case http.StatusTooManyRequests:
		typ = "overloaded"
	case http.StatusInternalServerError, http.StatusServiceUnavailable:
		typ = "generation"
	}
	return mustJSON(struct {
		Error     string `json:"error"`
		ErrorType string `json:"error_type"`
	}{e.message, typ})
}
