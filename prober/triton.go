package prober

import (
	"errors"
	"fmt"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/traffic"
)

// APITritonGenerate is Triton Inference Server's generate extension.
const APITritonGenerate = "triton-generate"

// TritonClient speaks Triton's generate extension: POST /v2/models/{model}/generate_stream
// (generate without streaming) with the model's inputs as top-level JSON keys, as the
// TensorRT-LLM ensemble names them (text_input, max_tokens, stream), answered with one SSE
// event per response of the decoupled model ({"model_name", "model_version", "text_output"}).
// The protocol has no closing event and no usage: the end of the body is the end, and N is
// the number of token events.
type TritonClient struct{ *httpClient }

// tritonFlavour builds Triton generate bodies and decodes their events.
type tritonFlavour struct {
	maxTokens int
	tmpl      bodyTemplate
}

// NewTritonClient builds a client for a validated target.
func NewTritonClient(t config.Target) (*TritonClient, error) {
	f := &tritonFlavour{maxTokens: t.Request.MaxTokens}
	static := map[string]any{"stream": t.Request.Streaming()}
	if tp := t.Request.Temperature; tp != nil {
		static["temperature"] = *tp
	}
	var err error
	if f.tmpl, err = newBodyTemplate(static, t.Request.ExtraBody, "text_input", "max_tokens"); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	hc, err := newHTTPClient(t, f, apiKeyHeader(t.APIKey.Value()))
	if err != nil {
		return nil, err
	}
	return &TritonClient{hc}, nil
}

func (tritonFlavour) eofEnds() bool { return true }

func (f *tritonFlavour) appendBody(dst []byte, req traffic.Request) ([]byte, error) {
	dst = append(dst, '{')
	dst = f.tmpl.str(dst, "text_input", req.Prompt)
	n := req.MaxTokens
	if n == 0 {
		n = f.maxTokens
	}
	if n > 0 {
		dst = f.tmpl.int(dst, "max_tokens", n)
	}
	return f.tmpl.close(dst), nil
}

// decode reads one generate response: text_output carries the new text (the vLLM backend
// sends deltas when streaming); with the vLLM backend's return_finish_reason and
// return_num_output_tokens inputs set (extra_body), finish_reason ("None" until the last
// response) and num_output_tokens (the tokens of this response, not a running total) come as
// scalars, since Triton unwraps one-element tensors. {"error": "..."} is Triton's error shape,
// in a stream and in a body alike.
func (f *tritonFlavour) decode(data []byte, _, _, _ bool, ev *StreamEvent) error {
	ev.Reset()
	w, err := eventObject(data)
	if err != nil {
		return err
	}
	var errMsg []byte
	isErr := false
	err = w.finish(w.object(func(key []byte) error {
		switch {
		case keyIs(key, "text_output"):
			return w.text(&ev.Content, "text_output")
		case keyIs(key, "finish_reason"):
			raw, err := w.rawString("finish_reason")
			if len(raw) > 0 && string(raw) != "None" {
				ev.Finish = normaliseFinishBytes(raw, w.lastEscaped)
			}
			return err
		case keyIs(key, "num_output_tokens"):
			return w.integer(&ev.Tokens, "num_output_tokens")
		case keyIs(key, "model_name"):
			raw, err := w.rawString("model_name")
			ev.Model = modelName(raw)
			return err
		case keyIs(key, "error"):
			if w.peek() != 'n' {
				isErr = true
			}
			if w.peek() == '"' {
				errMsg = w.str()
				return nil
			}
			w.skip()
			return nil
		}
		w.skip()
		return nil
	}))
	if err != nil {
		return err
	}
	if ev.Tokens < 0 {
		return errors.New("num_output_tokens: negative")
	}
	if isErr {
		ev.Content, ev.Finish, ev.Tokens = false, "", 0
		ev.Result, ev.Err = ResultHTTP5xx, fmt.Errorf("error event in stream: %s", unquote(errMsg))
	}
	return nil
}
