package prober

import (
	"fmt"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/traffic"
)

// APIOpenAIResponses is OpenAI's Responses API.
const APIOpenAIResponses = "openai-responses"

// ResponsesClient speaks the Responses API, POST /v1/responses with stream: true: typed events,
// of which response.output_text.delta (and the reasoning text deltas) carry tokens,
// response.completed or response.incomplete end the stream with the response and its usage,
// and response.failed or error report a failure.
type ResponsesClient struct{ *httpClient }

type responsesFlavour struct {
	model     string
	maxTokens int
	tmpl      bodyTemplate
}

// NewResponsesClient builds a client for a validated target.
func NewResponsesClient(t config.Target) (*ResponsesClient, error) {
	f := &responsesFlavour{model: t.Model, maxTokens: t.Request.MaxTokens}
	// store: false, since the API stores every response by default (OpenAI, and vLLM when
	// its store is enabled): a prober would fill the server's store with its probes.
	static := map[string]any{"stream": t.Request.Streaming(), "store": false}
	if tp := t.Request.Temperature; tp != nil {
		static["temperature"] = *tp
	}
	if t.Request.IgnoreEOS {
		static["ignore_eos"] = true // vLLM's extension (ResponsesRequest.ignore_eos)
	}
	var err error
	if f.tmpl, err = newBodyTemplate(static, t.Request.ExtraBody, "model", "input", "max_output_tokens"); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	hc, err := newHTTPClient(t, f, apiKeyHeader(t.APIKey.Value()))
	if err != nil {
		return nil, err
	}
	return &ResponsesClient{hc}, nil
}

func (f *responsesFlavour) appendBody(dst []byte, req traffic.Request) ([]byte, error) {
	model := f.model
	if req.Adapter != "" {
		model = req.Adapter
	}
	dst = append(dst, '{')
	dst = f.tmpl.str(dst, "model", model)
	if len(req.Messages) > 0 {
		if d, ok := f.tmpl.key(dst, "input"); ok {
			dst = append(appendMessages(d, req), ',')
		}
	} else {
		dst = f.tmpl.str(dst, "input", req.Prompt)
	}
	n := req.MaxTokens
	if n == 0 {
		n = f.maxTokens
	}
	if n > 0 {
		dst = f.tmpl.int(dst, "max_output_tokens", n)
	}
	return f.tmpl.close(dst), nil
}

// responsesFacts is what one event (or a whole response object) holds.
type responsesFacts struct {
	// model is the response's model (response.model, or a whole response's).
	model                                 []byte
	typ, delta, status, reason, code, msg []byte
	hasOutputText, hasReasoning, failed   bool
	usage                                 bool
	input, output, cached, reasoningN     int
}

// response reads a response object's fields.
func (r *responsesFacts) response(w *walker, key []byte) error {
	switch {
	case keyIs(key, "model"):
		var err error
		r.model, err = w.rawString("response.model")
		return err
	case keyIs(key, "status"):
		var err error
		r.status, err = w.rawString("response.status")
		return err
	case keyIs(key, "incomplete_details"):
		return w.members("incomplete_details", func(key []byte) error {
			if keyIs(key, "reason") {
				var err error
				r.reason, err = w.rawString("incomplete_details.reason")
				return err
			}
			w.skip()
			return nil
		})
	case keyIs(key, "error"):
		if w.peek() == '{' {
			r.failed = true
		}
		return r.errorObject(w)
	case keyIs(key, "usage"):
		r.usage = w.peek() == '{'
		return w.members("usage", func(key []byte) error {
			switch {
			case keyIs(key, "input_tokens"):
				return w.integer(&r.input, "usage.input_tokens")
			case keyIs(key, "output_tokens"):
				return w.integer(&r.output, "usage.output_tokens")
			case keyIs(key, "input_tokens_details"):
				var has bool
				return w.details(&has, &r.cached, "cached_tokens")
			case keyIs(key, "output_tokens_details"):
				var has bool
				return w.details(&has, &r.reasoningN, "reasoning_tokens")
			}
			w.skip()
			return nil
		})
	case keyIs(key, "output"):
		// A whole response (stream: false): output items with output_text or reasoning parts.
		return w.elements("output", func() error {
			return w.members("output[]", func(key []byte) error {
				switch {
				case keyIs(key, "content"), keyIs(key, "summary"):
					reasoningItem := keyIs(key, "summary")
					return w.elements("output[].content", func() error {
						return w.members("output[].content[]", func(key []byte) error {
							if keyIs(key, "text") {
								if reasoningItem {
									return w.text(&r.hasReasoning, "text")
								}
								return w.text(&r.hasOutputText, "text")
							}
							w.skip()
							return nil
						})
					})
				}
				w.skip()
				return nil
			})
		})
	}
	w.skip()
	return nil
}

func (r *responsesFacts) errorObject(w *walker) error {
	return w.members("error", func(key []byte) error {
		var err error
		switch {
		case keyIs(key, "code"), keyIs(key, "type") && r.code == nil:
			if w.peek() == '"' {
				r.code = w.str()
				return nil
			}
			w.skip()
		case keyIs(key, "message"):
			r.msg, err = w.rawString("error.message")
		default:
			w.skip()
		}
		return err
	})
}

// decode reads one Responses event by its type, or a whole response (stream: false).
func (f *responsesFlavour) decode(data []byte, isError, whole, _ bool, ev *StreamEvent) error {
	ev.Reset()
	w, err := eventObject(data)
	if err != nil {
		return err
	}
	r := responsesFacts{input: -1, output: -1, cached: -1, reasoningN: -1}
	err = w.finish(w.object(func(key []byte) error {
		switch {
		case keyIs(key, "type"):
			var err error
			r.typ, err = w.rawString("type")
			return err
		case keyIs(key, "delta"):
			var err error
			r.delta, err = w.rawString("delta")
			return err
		case keyIs(key, "response"):
			return w.members("response", func(key []byte) error { return r.response(&w, key) })
		case keyIs(key, "code"):
			if w.peek() == '"' {
				r.code = w.str()
				return nil
			}
			w.skip()
			return nil
		case keyIs(key, "message"):
			var err error
			r.msg, err = w.rawString("message")
			return err
		case keyIs(key, "error") && !whole:
			return r.errorObject(&w) // {"type":"error","error":{...}}
		}
		return r.response(&w, key) // a whole response's fields
	}))
	if err != nil {
		return err
	}
	ev.Model = modelName(r.model)
	typ := string(r.typ)
	switch {
	case typ == "error" || isError:
		ev.Result = classifyErrorType(string(r.code))
		ev.Err = fmt.Errorf("error event in stream (%s): %s", unquote(r.code), unquote(r.msg))
		return nil
	case typ == "response.failed" || (whole && r.failed):
		ev.Result = classifyErrorType(string(r.code))
		ev.Err = fmt.Errorf("the response failed (%s): %s", unquote(r.code), unquote(r.msg))
		return nil
	case typ == "response.output_text.delta", typ == "response.refusal.delta", typ == "response.function_call_arguments.delta":
		ev.Content = len(r.delta) > 0
	case typ == "response.reasoning_text.delta", typ == "response.reasoning_summary_text.delta":
		ev.Reasoning = len(r.delta) > 0
	case typ == "response.completed", typ == "response.incomplete", whole:
		ev.Done = true
		ev.Finish = FinishStop
		if len(r.reason) > 0 {
			ev.Finish = normaliseFinishBytes(r.reason, false)
		} else if string(r.status) == "incomplete" {
			ev.Finish = FinishOther
		}
		if whole {
			ev.Content, ev.Reasoning = r.hasOutputText, r.hasReasoning
		}
	}
	if r.usage && r.output >= 0 {
		ev.HasUsage = true
		ev.OutputTokens = r.output
		ev.PromptTokens = max(r.input, 0)
		ev.CachedTokens, ev.ReasoningTokens = r.cached, r.reasoningN
	}
	return nil
}
