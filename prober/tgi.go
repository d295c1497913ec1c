package prober

import (
	"errors"
	"fmt"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/traffic"
)

// APITGI is Hugging Face text-generation-inference's native API.
const APITGI = "tgi"

// TGIClient speaks TGI's native /generate_stream (and /generate without streaming): one SSE
// event per generated token ({"token":{"text","special"},...}), the last one with details
// (finish_reason, generated_tokens, input_length) when the request asks for details.
type TGIClient struct{ *httpClient }

// tgiFlavour builds {"inputs", "parameters": {...}} bodies and decodes token events.
type tgiFlavour struct {
	maxTokens int
	top       bodyTemplate // top-level keys
	params    bodyTemplate // the parameters object
}

// NewTGIClient builds a client for a validated target. extra_body is merged at the top
// level, except its parameters object, which is merged into the generated parameters.
func NewTGIClient(t config.Target) (*TGIClient, error) {
	f := &tgiFlavour{maxTokens: t.Request.MaxTokens}
	params := map[string]any{"details": true}
	if tp := t.Request.Temperature; tp != nil && *tp > 0 {
		// TGI refuses a temperature of 0; greedy decoding is its default without one.
		params["temperature"], params["do_sample"] = *tp, true
	}
	extra := map[string]any{}
	var extraParams map[string]any
	for k, v := range t.Request.ExtraBody {
		if m, ok := v.(map[string]any); ok && k == "parameters" {
			extraParams = m
			continue
		}
		extra[k] = v
	}
	var err error
	if f.params, err = newBodyTemplate(params, extraParams, "max_new_tokens"); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	if f.top, err = newBodyTemplate(nil, extra, "inputs"); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	hc, err := newHTTPClient(t, f, apiKeyHeader(t.APIKey.Value()))
	if err != nil {
		return nil, err
	}
	return &TGIClient{hc}, nil
}

func (f *tgiFlavour) appendBody(dst []byte, req traffic.Request) ([]byte, error) {
	dst = append(dst, '{')
	dst = f.top.str(dst, "inputs", req.Prompt)
	dst = append(dst, `"parameters":{`...)
	n := req.MaxTokens
	if n == 0 {
		n = f.maxTokens
	}
	if n > 0 {
		dst = f.params.int(dst, "max_new_tokens", n)
	}
	dst = append(f.params.close(dst), ',')
	return f.top.close(dst), nil
}

// decode reads one TGI event: a token, the last token with details, or an error
// ({"error": "...", "error_type": "overloaded"|"validation"|"generation"|...}). A whole body
// (/generate) is {"generated_text": "...", "details": {...}}.
func (f *tgiFlavour) decode(data []byte, _, whole, _ bool, ev *StreamEvent) error {
	ev.Reset()
	w, err := eventObject(data)
	if err != nil {
		return err
	}
	var (
		text, special, last, hasDetails bool
		errMsg, errType                 []byte
		isErr                           bool
	)
	err = w.finish(w.object(func(key []byte) error {
		switch {
		case keyIs(key, "token"):
			return w.members("token", func(key []byte) error {
				switch {
				case keyIs(key, "text"):
					return w.text(&text, "token.text")
				case keyIs(key, "special"):
					return w.boolean(&special, "token.special")
				}
				w.skip()
				return nil
			})
		case keyIs(key, "generated_text"):
			raw, ok, err := w.stringOrNull("generated_text")
			if ok {
				last = true
				if whole && len(raw) > 0 {
					text = true
				}
			}
			return err
		case keyIs(key, "details"):
			if w.peek() == '{' {
				hasDetails = true
			}
			return w.members("details", func(key []byte) error {
				switch {
				case keyIs(key, "finish_reason"):
					raw, err := w.rawString("details.finish_reason")
					if len(raw) > 0 {
						ev.Finish = normaliseFinishBytes(raw, w.lastEscaped)
					}
					return err
				case keyIs(key, "generated_tokens"):
					ev.OutputTokens = -1
					return w.integer(&ev.OutputTokens, "details.generated_tokens")
				case keyIs(key, "input_length"):
					return w.integer(&ev.PromptTokens, "details.input_length")
				}
				w.skip()
				return nil
			})
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
		case keyIs(key, "error_type"):
			var err error
			errType, err = w.rawString("error_type")
			return err
		}
		w.skip()
		return nil
	}))
	if err != nil {
		return err
	}
	if isErr {
		ev.Result = classifyErrorType(string(errType))
		ev.Err = fmt.Errorf("error event in stream (%s): %s", unquote(errType), unquote(errMsg))
		return nil
	}
	if hasDetails {
		if ev.OutputTokens == -1 {
			return errors.New("details.generated_tokens: missing")
		}
		ev.HasUsage = true
	}
	// A special token (the EOS) is generated but carries no text: it is no token chunk.
	ev.Content = text && !special
	if !whole {
		ev.Tokens = 1
	}
	ev.Done = last || hasDetails
	return nil
}
