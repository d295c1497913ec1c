package prober

import (
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

// decode reads one generate response: text_output carries the new text; {"error": "..."} is
// Triton's error shape, in a stream and in a body alike.
func (f *tritonFlavour) decode(data []byte, _, _, _ bool, ev *StreamEvent) error {
	ev.Reset()
	w, err := eventObject(data)
	if err != nil {
		return err
	}
	var errMsg []byte
	isErr := false
	err = w.object(func(key []byte) error {
		switch {
		case keyIs(key, "text_output"):
			return w.text(&ev.Content, "text_output")
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
	})
	if err != nil {
		return err
	}
	if isErr {
		ev.Content = false
		ev.Result, ev.Err = ResultHTTP5xx, fmt.Errorf("error event in stream: %s", unquote(errMsg))
	}
	return nil
}
