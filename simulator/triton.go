package simulator

import (
	"net/http"
)

// Triton's generate extension: /v2/models/{model}/generate_stream sends one event per response
// of the decoupled model ({"model_name","model_version","text_output"}) and no closing event;
// /v2/models/{model}/generate answers one object. Inputs are top-level keys, named as the
// TensorRT-LLM ensemble names them.

type tritonRequest struct {
	TextInput *string `json:"text_input"`
	MaxTokens *int    `json:"max_tokens"`
	Stream    bool    `json:"stream"`
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
		g := &genRequest{model: r.PathValue("model"), stream: stream, promptTokens: CountTokens(*tr.TextInput)}
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

func (tritonWire) token(j *job, b, text []byte, _ int) []byte {
	b = append(b, j.head...)
	b = append(b, text...)
	return append(b, "\"}\n\n"...)
}

func (tritonWire) tail(j *job, b []byte) []byte {
	if j.p.finish == finishAbort {
		return append(b, "data: {\"error\":\"simulated generation failure\"}\n\n"...)
	}
	return b // the end of the body ends the stream
}

func (tritonWire) empty(_ *job, b []byte) []byte { return b }

func (tritonWire) body(j *job, text []byte, _ int64) []byte {
	return mustJSON(struct {
		ModelName    string `json:"model_name"`
		ModelVersion string `json:"model_version"`
		TextOutput   string `json:"text_output"`
	}{j.g.model, "1", string(text)})
}

func (tritonWire) errorBody(e *apiError) []byte {
	return mustJSON(struct {
		Error string `json:"error"`
	}{e.message})
}
