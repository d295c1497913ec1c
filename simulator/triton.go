package simulator

import (
	"net/http"
	"strconv"
)

// Triton's generate extension: /v2/models/{model}/generate_stream sends one event per response
// of the decoupled model ({"model_name","model_version","text_output"}) and no closing event;
// /v2/models/{model}/generate answers one object. Inputs are top-level keys, named as the
// TensorRT-LLM ensemble names them; return_finish_reason and return_num_output_tokens add the
// vLLM backend's finish_reason and num_output_tokens outputs to every response.

type tritonRequest struct {
	TextInput *string `json:"text_input"`
	MaxTokens *int    `json:"max_tokens"`
	Stream    bool    `json:"stream"`
	// The vLLM backend's optional outputs (docs: vllm_backend additional_outputs).
	ReturnFinishReason    bool `json:"return_finish_reason"`
	ReturnNumOutputTokens bool `json:"return_num_output_tokens"`
}

func parseTriton(stream bool) func(w http.ResponseWriter, r *http.Request, cfg *Config) (*genRequest, *apiError) {
	return func(w http.ResponseWriter, r *http.Request, cfg *Config) (*genRequest, *apiError) {
		var tr tritonRequest
		if err := decodeBody(w, r, &tr); err != nil {
			return nil, err
		}
		if tr.TextInput == nil {
			return nil, badRequest("text_input", "expected 'text_input' in the request")
		}
		g := &genRequest{model: r.PathValue("model"), stream: stream, promptTokens: CountTokens(*tr.TextInput),
			returnFinish: tr.ReturnFinishReason, returnCounts: tr.ReturnNumOutputTokens}
		if err := g.limit(tr.MaxTokens, "max_tokens", cfg); err != nil {
			return nil, err
		}
		return g, nil
	}
}

type tritonWire struct{}

func (tritonWire) prepare(j *job, _ int64) {
	h := append([]byte(nil), `data: {"model_name":`...)
	h = append(h, mustJSON(j.g.model)...)
	j.head = append(h, `,"model_version":"1","sequence_end":false,"sequence_id":0,"sequence_start":false,"text_output":"`...)
}
func (tritonWire) begin(_ *job, b []byte) []byte { return b }
func (tritonWire) malformed(_ *job, b []byte) []byte {
	return append(b, "data: {\"text_output\":\n\n"...)
}

func (tritonWire) token(j *job, b, text []byte, n int) []byte {
	b = append(b, j.head...)
	b = append(b, text...)
	b = append(b, '"')
	if j.g.returnFinish {
		// The backend sends str() of vLLM's finish reason: "None" until the response that
		// ends the generation.
		reason := "None"
		if j.st.OutputTokens == j.p.length && j.p.truncateAfter < 0 && !j.p.resetMid && j.p.finish != finishAbort {
			reason = j.p.finish // finishLength or finishStop, vLLM's own names
		}
		b = append(b, `,"finish_reason":"`...)
		b = append(b, reason...)
		b = append(b, '"')
	}
	if j.g.returnCounts {
		b = append(b, `,"num_output_tokens":`...)
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return append(b, "}\n\n"...)
}

func (tritonWire) tail(j *job, b []byte) []byte {
	if j.p.finish == finishAbort {
		return append(b, "data: {\"error\":\"simulated generation failure\"}\n\n"...)
	}
	return b // the end of the body ends the stream
}

func (tritonWire) empty(_ *job, b []byte) []byte { return b }

func (tritonWire) body(j *job, text []byte, _ int64) []byte {
	type answer struct {
		ModelName       string  `json:"model_name"`
		ModelVersion    string  `json:"model_version"`
		TextOutput      string  `json:"text_output"`
		FinishReason    *string `json:"finish_reason,omitempty"`
		NumOutputTokens *int    `json:"num_output_tokens,omitempty"`
	}
	a := answer{ModelName: j.g.model, ModelVersion: "1", TextOutput: string(text)}
	if j.g.returnFinish {
		reason := finishStop
		if j.p.finish == finishLength {
			reason = finishLength
		}
		a.FinishReason = &reason
	}
	if j.g.returnCounts {
		a.NumOutputTokens = &j.st.OutputTokens
	}
	return mustJSON(a)
}

func (tritonWire) errorBody(e *apiError) []byte {
	return mustJSON(struct {
		Error string `json:"error"`
	}{e.message})
}
