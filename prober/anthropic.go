package prober

import (
	"fmt"
	"net/http"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/traffic"
)

// APIAnthropicMessages is Anthropic's Messages API, as vLLM, LiteLLM and other gateways serve it.
const APIAnthropicMessages = "anthropic-messages"

// anthropicVersion is the API version header the Messages API requires.
const anthropicVersion = "2023-06-01"

// anthropicDefaultMaxTokens is sent when the target sets no max_tokens: the API requires one.
const anthropicDefaultMaxTokens = 1024

// AnthropicClient speaks the Messages API, POST /v1/messages with stream: true: typed events
// message_start (usage.input_tokens), content_block_delta (text_delta, thinking_delta),
// message_delta (stop_reason, cumulative usage.output_tokens), message_stop, ping, and error
// events ({"type":"error","error":{"type","message"}}).
type AnthropicClient struct{ *httpClient }

type anthropicFlavour struct {
	model     string
	maxTokens int
	tmpl      bodyTemplate
}

// NewAnthropicClient builds a client for a validated target. The API key goes in x-api-key.
func NewAnthropicClient(t config.Target) (*AnthropicClient, error) {
	f := &anthropicFlavour{model: t.Model, maxTokens: t.Request.MaxTokens}
	if f.maxTokens == 0 {
		f.maxTokens = anthropicDefaultMaxTokens
	}
	static := map[string]any{"stream": t.Request.Streaming()}
	if tp := t.Request.Temperature; tp != nil {
		static["temperature"] = *tp
	}
	// No ignore_eos: Anthropic has none, and vLLM's /v1/messages request model drops unknown
	// keys (ConfigExtension.Check refuses request.ignore_eos for this flavour).
	var err error
	if f.tmpl, err = newBodyTemplate(static, t.Request.ExtraBody, "model", "messages", "max_tokens"); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	h := http.Header{}
	h.Set("anthropic-version", anthropicVersion)
	if key := t.APIKey.Value(); key != "" {
		h.Set("x-api-key", key)
	}
	hc, err := newHTTPClient(t, f, h)
	if err != nil {
		return nil, err
	}
	return &AnthropicClient{hc}, nil
}

func (f *anthropicFlavour) appendBody(dst []byte, req traffic.Request) ([]byte, error) {
	model := f.model
	if req.Adapter != "" {
		model = req.Adapter
	}
	dst = append(dst, '{')
	dst = f.tmpl.str(dst, "model", model)
	if d, ok := f.tmpl.key(dst, "messages"); ok {
		dst = append(appendMessages(d, req), ',')
	}
	n := req.MaxTokens
	if n == 0 {
		n = f.maxTokens
	}
	dst = f.tmpl.int(dst, "max_tokens", n)
	return f.tmpl.close(dst), nil
}

// anthropicUsage is a usage object's counts, -1 where absent.
type anthropicUsage struct {
	input, output, cacheRead, cacheCreate int
	seen                                  bool
}

func (u *anthropicUsage) read(w *walker) error {
	u.seen = w.peek() == '{'
	return w.members("usage", func(key []byte) error {
		switch {
		case keyIs(key, "input_tokens"):
			return w.integer(&u.input, "usage.input_tokens")
		case keyIs(key, "output_tokens"):
			return w.integer(&u.output, "usage.output_tokens")
		case keyIs(key, "cache_read_input_tokens"):
			return w.integer(&u.cacheRead, "usage.cache_read_input_tokens")
		case keyIs(key, "cache_creation_input_tokens"):
			return w.integer(&u.cacheCreate, "usage.cache_creation_input_tokens")
		}
		w.skip()
		return nil
	})
}

// apply puts the usage into ev: the prompt is every input token, cached or not (Anthropic's
// input_tokens leaves out cache reads and writes).
func (u *anthropicUsage) apply(ev *StreamEvent) {
	if !u.seen {
		return
	}
	ev.HasUsage = true
	if u.output >= 0 {
		ev.OutputTokens = u.output
	} else {
		ev.HasUsage = false // message_start without output_tokens: nothing to count yet
	}
	if u.input > 0 || u.cacheRead > 0 || u.cacheCreate > 0 {
		ev.PromptTokens = max(u.input, 0) + max(u.cacheRead, 0) + max(u.cacheCreate, 0)
		if !ev.HasUsage {
			ev.HasUsage, ev.OutputTokens = true, 0
		}
	}
	if u.cacheRead >= 0 {
		ev.CachedTokens = u.cacheRead
	}
}

// decode reads one Messages event by its type, or a whole message (stream: false).
func (f *anthropicFlavour) decode(data []byte, _, whole, _ bool, ev *StreamEvent) error {
	ev.Reset()
	w, err := eventObject(data)
	if err != nil {
		return err
	}
	var (
		typ, stop, errType, errMsg, model []byte
		text, thinking                    bool
		usage                             = anthropicUsage{-1, -1, -1, -1, false}
	)
	delta := func(key []byte) error {
		switch {
		case keyIs(key, "text"):
			return w.text(&text, "delta.text")
		case keyIs(key, "partial_json"):
			return w.text(&text, "delta.partial_json") // a tool call's arguments
		case keyIs(key, "thinking"):
			return w.text(&thinking, "delta.thinking")
		case keyIs(key, "stop_reason"):
			var err error
			stop, err = w.rawString("delta.stop_reason")
			return err
		}
		w.skip()
		return nil
	}
	block := func() error {
		return w.members("content[]", delta)
	}
	message := func(key []byte) error {
		switch {
		case keyIs(key, "usage"):
			return usage.read(&w)
		case keyIs(key, "stop_reason"):
			var err error
			stop, err = w.rawString("stop_reason")
			return err
		case keyIs(key, "content"):
			return w.elements("content", block)
		case keyIs(key, "model"):
			var err error
			model, err = w.rawString("message.model")
			return err
		}
		w.skip()
		return nil
	}
	err = w.finish(w.object(func(key []byte) error {
		switch {
		case keyIs(key, "type"):
			var err error
			typ, err = w.rawString("type")
			return err
		case keyIs(key, "message"):
			return w.members("message", message)
		case keyIs(key, "delta"):
			return w.members("delta", delta)
		case keyIs(key, "error"):
			return w.members("error", func(key []byte) error {
				var err error
				switch {
				case keyIs(key, "type"):
					errType, err = w.rawString("error.type")
				case keyIs(key, "message"):
					errMsg, err = w.rawString("error.message")
				default:
					w.skip()
				}
				return err
			})
		}
		return message(key) // usage, stop_reason, content: a whole message's fields
	}))
	if err != nil {
		return err
	}
	ev.Model = modelName(model)
	switch string(typ) {
	case "error":
		ev.Result = classifyErrorType(string(errType))
		ev.Err = fmt.Errorf("error event in stream (%s): %s", unquote(errType), unquote(errMsg))
		return nil
	case "content_block_delta":
		ev.Content, ev.Reasoning = text, thinking
	case "message_stop":
		ev.Done = true
	case "message":
		if whole {
			ev.Content, ev.Reasoning = text, thinking
		}
	}
	if len(stop) > 0 {
		ev.Finish = normaliseFinishBytes(stop, false)
	}
	usage.apply(ev)
	return nil
}
