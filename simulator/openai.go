package simulator

import "strconv"

// Fixed pieces of the SSE events. A chunk is head + one of the choice bodies below, where
// head is `data: {"id":…,"object":…,"created":…,"model":…,"choices":[`.
const (
	chatRoleChoice  = `{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]`
	chatTokenPre    = `{"index":0,"delta":{"content":"`
	chatTokenPost   = `"},"logprobs":null,"finish_reason":null}]`
	chatFinishPre   = `{"index":0,"delta":{},"logprobs":null,"finish_reason":"`
	chatMalformed   = `{"index":0,"delta":{"content":` + "\n\n"
	textTokenPre    = `{"index":0,"text":"`
	textTokenPost   = `","logprobs":null,"finish_reason":null}]`
	textFinishPre   = `{"index":0,"text":"","logprobs":null,"finish_reason":"`
	textMalformed   = `{"index":0,"text":` + "\n\n"
	finishPost      = `"}]`
	chunkEnd        = "}\n\n" // closes a chunk after its choices (and usage)
	eventDone       = "data: [DONE]\n\n"
	contentTypeSSE  = "text/event-stream"
	contentTypeJSON = "application/json"
)

// openaiWire writes OpenAI chat completions or completions, chunk for chunk as vLLM does.
type openaiWire struct{}

func (openaiWire) prepare(j *job, created int64) { j.buildHead(created) }

func (openaiWire) begin(j *job, b []byte) []byte {
	if !j.g.chat {
		return b
	}
	b = append(b, j.head...)
	b = append(b, chatRoleChoice...)
	return j.appendChunkEnd(b)
}

func (openaiWire) malformed(j *job, b []byte) []byte {
	b = append(b, j.head...)
	if j.g.chat {
		return append(b, chatMalformed...)
	}
	return append(b, textMalformed...)
}

func (openaiWire) token(j *job, b, text []byte, _ int) []byte {
	b = append(b, j.head...)
	if j.g.chat {
		b = append(b, chatTokenPre...)
		b = append(b, text...)
		b = append(b, chatTokenPost...)
	} else {
		b = append(b, textTokenPre...)
		b = append(b, text...)
		b = append(b, textTokenPost...)
	}
	return j.appendChunkEnd(b)
}

func (openaiWire) tail(j *job, b []byte) []byte { return j.appendTail(b) }

func (openaiWire) empty(_ *job, b []byte) []byte { return append(b, eventDone...) }

func (openaiWire) errorBody(e *apiError) []byte { return openaiErrorBody(e) }

func (openaiWire) body(j *job, text []byte, created int64) []byte {
	type usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		TotalTokens      int `json:"total_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	}
	type message struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	type choice struct {
		Index        int       `json:"index"`
		Message      *message  `json:"message,omitempty"`
		Text         *string   `json:"text,omitempty"`
		Logprobs     *struct{} `json:"logprobs"`
		FinishReason string    `json:"finish_reason"`
	}
	type response struct {
		ID      string   `json:"id"`
		Object  string   `json:"object"`
		Created int64    `json:"created"`
		Model   string   `json:"model"`
		Choices []choice `json:"choices"`
		Usage   usage    `json:"usage"`
	}
	out := string(text)
	c := choice{FinishReason: j.p.finish}
	obj := "text_completion"
	if j.g.chat {
		obj = "chat.completion"
		c.Message = &message{Role: "assistant", Content: out}
	} else {
		c.Text = &out
	}
	n := j.st.OutputTokens
	return mustJSON(response{
		ID: string(j.appendID(nil)), Object: obj, Created: created, Model: j.g.model,
		Choices: []choice{c},
		Usage:   usage{PromptTokens: j.g.promptTokens, TotalTokens: j.g.promptTokens + n, CompletionTokens: n},
	})
}

// buildHead pre-encodes the part every chunk of this response shares.
func (j *job) buildHead(created int64) {
	model := j.s.modelJSON
	if j.g.model != j.s.cfg.ModelName {
		model = mustJSON(j.g.model)
	}
	h := make([]byte, 0, 128+len(model))
	h = append(h, `data: {"id":"`...)
	h = j.appendID(h)
	h = append(h, `","object":"`...)
	if j.g.chat {
		h = append(h, "chat.completion.chunk"...)
	} else {
		h = append(h, "text_completion"...)
	}
	h = append(h, `","created":`...)
	h = strconv.AppendInt(h, created, 10)
	h = append(h, `,"model":`...)
	h = append(h, model...)
	h = append(h, `,"choices":[`...)
	j.head = h
}

// appendID appends the response id: chatcmpl-/cmpl- and 32 hex digits, like vLLM's.
func (j *job) appendID(b []byte) []byte {
	if j.g.chat {
		b = append(b, "chatcmpl-"...)
	} else {
		b = append(b, "cmpl-"...)
	}
	const hex = "0123456789abcdef"
	for _, v := range j.p.id {
		for shift := 60; shift >= 0; shift -= 4 {
			b = append(b, hex[(v>>shift)&0xf])
		}
	}
	return b
}

// appendTail appends the end of a complete stream: the finish chunk, the usage chunk when
// asked for, and [DONE].
func (j *job) appendTail(b []byte) []byte {
	b = append(b, j.head...)
	if j.g.chat {
		b = append(b, chatFinishPre...)
	} else {
		b = append(b, textFinishPre...)
	}
	b = append(b, j.p.finish...)
	b = append(b, finishPost...)
	b = j.appendChunkEnd(b)
	if j.g.includeUsage {
		b = append(b, j.head...)
		b = append(b, ']')
		b = j.appendUsage(b)
		b = append(b, chunkEnd...)
	}
	return append(b, eventDone...)
}

// appendUsage appends `,"usage":{…}` with the tokens sent so far.
func (j *job) appendUsage(b []byte) []byte {
	b = append(b, `,"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(j.g.promptTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(j.g.promptTokens+j.st.OutputTokens), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(j.st.OutputTokens), 10)
	return append(b, '}')
}

// appendChunkEnd closes a chunk whose choices were written: with continuous usage every chunk
// carries the cumulative usage, as vLLM's continuous_usage_stats does.
func (j *job) appendChunkEnd(b []byte) []byte {
	if j.g.continuousUsage {
		b = j.appendUsage(b)
	}
	return append(b, chunkEnd...)
}
