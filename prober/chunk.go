package prober

import (
	"encoding/json"
	"errors"
	"fmt"
)

// chunkFacts is what the per-chunk path needs of one streamed chunk. decodeChunk fills it
// without allocating, so a long stream costs no garbage per token; encoding/json into
// streamChunk allocated about ten times per chunk (the choices slice, every string, the usage
// pointer, reflection state).
type chunkFacts struct {
	// content and reasoning say whether a choice carried answer text (delta.content or text)
	// or reasoning text (delta.reasoning_content or delta.reasoning).
	content, reasoning bool
	// finish is the first non-empty finish_reason of the chunk's choices, normalised.
	finish string
	// hasUsage is set when usage was an object; the counts are then as sent (0 if absent).
	hasUsage                       bool
	promptTokens, completionTokens int
	// hasReasoningTokens and hasCachedTokens say the usage details were objects.
	hasReasoningTokens, hasCachedTokens bool
	reasoningTokens, cachedTokens       int
	// isError marks an error chunk ({"error": ...} not null, or "object": "error"); the rare
	// error path decodes it again with encoding/json.
	isError bool
	// modelStart and modelEnd delimit the raw "model" string in the chunk's bytes (offsets,
	// so the facts stay comparable and allocation-free); modelEscaped says it has escapes.
	modelStart, modelEnd int
	modelEscaped         bool
}

// model returns the chunk's "model" value (nil if none); it aliases data unless escaped.
func (f *chunkFacts) model(data []byte) []byte {
	raw := data[f.modelStart:f.modelEnd]
	if !f.modelEscaped || len(raw) == 0 {
		return raw
	}
	var s string // the rare escaped name: let encoding/json unescape it
	if err := json.Unmarshal(data[f.modelStart-1:f.modelEnd+1], &s); err != nil {
		return nil
	}
	return []byte(s)
}

// errChunkType is a value of the wrong JSON type for a field inferprobe reads, which
// encoding/json would refuse too.
var errChunkType = errors.New("a field has the wrong JSON type")

// decodeChunk reads one chunk into f. It accepts exactly what decoding into streamChunk with
// encoding/json accepts (valid JSON, an object or null at the top, the right types for the
// fields read) and reads the same values: keys match case-insensitively (ASCII) and escaped
// keys are unescaped. It differs for duplicate keys, where encoding/json merges into what it
// decoded before and this decoder takes the union, and for keys that match a field only under
// Unicode case folding ("uſage", with ſ for s), which encoding/json folds and this decoder,
// folding ASCII only, does not; no server sends either.
// memo is the stream's chunkMemo, nil for none.
func decodeChunk(data []byte, f *chunkFacts, memo *chunkMemo) error {
	if decodeChunkFast(data, f, memo) {
		return nil
	}
	return decodeChunkWalker(data, f)
}

// decodeChunkWalker is decodeChunk with the walker: every chunk the fast path leaves, errors
// included (chunkfast.go).
func decodeChunkWalker(data []byte, f *chunkFacts) error {
	*f = chunkFacts{}
	w := walker{b: data}
	var err error
	switch w.peek() {
	case 'n':
		w.skip()
	case '{':
		err = f.top(&w)
	default:
		w.skip() // a syntax error in it is reported before the type
		err = fmt.Errorf("chunk is not a JSON object: %w", errChunkType)
	}
	return w.finish(err)
}

// The readers below loop over their objects with open, member and more rather than through
// walker.object's callback: this is the per-chunk path, and the indirect calls were a good
// part of its time. Each stops at its first type error (the walk ends there; finish then
// checks the syntax of the rest), and a syntax error ends every loop at once.

// top reads the chunk's top-level object, at w.i.
func (f *chunkFacts) top(w *walker) error {
	for ok := w.open('}'); ok; ok = w.more('}') {
		key, ok := w.member()
		if !ok {
			break
		}
		var err error
		switch {
		case keyIs(key, "choices"):
			err = f.choices(w)
		case keyIs(key, "usage"):
			switch w.peek() {
			case 'n':
				w.skip()
				f.hasUsage, f.promptTokens, f.completionTokens = false, 0, 0
				f.hasReasoningTokens, f.reasoningTokens, f.hasCachedTokens, f.cachedTokens = false, 0, false, 0
			case '{':
				f.hasUsage = true
				err = f.usage(w)
			default:
				err = fmt.Errorf("usage: %w", errChunkType)
			}
		case keyIs(key, "error"):
			if w.peek() != 'n' {
				f.isError = true
			}
			w.skip()
		case keyIs(key, "object"):
			var raw []byte
			if raw, ok, err = w.stringOrNull("object"); ok && string(raw) == "error" {
				f.isError = true
			}
		case keyIs(key, "message"):
			_, _, err = w.stringOrNull("message")
		case keyIs(key, "model"):
			var raw []byte
			if raw, ok, err = w.stringOrNull("model"); ok {
				// w.i is past the closing quote.
				f.modelEnd = w.i - 1
				f.modelStart = f.modelEnd - len(raw)
				f.modelEscaped = w.lastEscaped
			}
		default:
			w.skip() // "code" (any JSON) and every field inferprobe does not read
		}
		if err != nil {
			return err
		}
	}
	w.leave()
	return nil
}

// choices reads the choices array (or null), at w.i.
func (f *chunkFacts) choices(w *walker) error {
	switch w.peek() {
	case 'n':
		w.skip()
		return nil
	case '[':
	default:
		return fmt.Errorf("choices: %w", errChunkType)
	}
	for ok := w.open(']'); ok; ok = w.more(']') {
		switch w.peek() {
		case 'n':
			w.skip()
		case '{':
			if err := f.choice(w); err != nil {
				return err
			}
		default:
			return fmt.Errorf("choices[]: %w", errChunkType)
		}
	}
	w.leave()
	return nil
}

// choice reads one choice object, at w.i.
func (f *chunkFacts) choice(w *walker) error {
	for ok := w.open('}'); ok; ok = w.more('}') {
		key, ok := w.member()
		if !ok {
			break
		}
		var err error
		switch {
		case keyIs(key, "delta"):
			err = f.delta(w)
		case keyIs(key, "text"):
			err = w.text(&f.content, "text")
		case keyIs(key, "finish_reason"):
			var raw []byte
			raw, ok, err = w.stringOrNull("finish_reason")
			if ok && len(raw) > 0 && f.finish == "" {
				f.finish = normaliseFinishBytes(raw, w.lastEscaped)
			}
		default:
			w.skip()
		}
		if err != nil {
			return err
		}
	}
	w.leave()
	return nil
}

// delta reads a choice's delta object (or null), at w.i.
func (f *chunkFacts) delta(w *walker) error {
	switch w.peek() {
	case 'n':
		w.skip()
		return nil
	case '{':
	default:
		return fmt.Errorf("delta: %w", errChunkType)
	}
	for ok := w.open('}'); ok; ok = w.more('}') {
		key, ok := w.member()
		if !ok {
			break
		}
		var err error
		switch {
		case keyIs(key, "content"):
			err = w.text(&f.content, "delta.content")
		case keyIs(key, "reasoning_content"):
			err = w.text(&f.reasoning, "delta.reasoning_content")
		case keyIs(key, "reasoning"):
			err = w.text(&f.reasoning, "delta.reasoning")
		default:
			w.skip()
		}
		if err != nil {
			return err
		}
	}
	w.leave()
	return nil
}

// usage reads the usage object, at w.i.
func (f *chunkFacts) usage(w *walker) error {
	for ok := w.open('}'); ok; ok = w.more('}') {
		key, ok := w.member()
		if !ok {
			break
		}
		var err error
		switch {
		case keyIs(key, "prompt_tokens"):
			err = w.integer(&f.promptTokens, "usage.prompt_tokens")
		case keyIs(key, "completion_tokens"):
			err = w.integer(&f.completionTokens, "usage.completion_tokens")
		case keyIs(key, "completion_tokens_details"):
			err = w.details(&f.hasReasoningTokens, &f.reasoningTokens, "reasoning_tokens")
		case keyIs(key, "prompt_tokens_details"):
			err = w.details(&f.hasCachedTokens, &f.cachedTokens, "cached_tokens")
		default:
			w.skip()
		}
		if err != nil {
			return err
		}
	}
	w.leave()
	return nil
}

// normaliseFinishBytes is NormaliseFinishReason without converting to a string (the switch
// on string(raw) does not allocate); an escaped value, never sent in practice, is unquoted.
func normaliseFinishBytes(raw []byte, escaped bool) string {
	if escaped {
		var s string
		_ = json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s)
		return NormaliseFinishReason(s)
	}
	switch string(raw) {
	case FinishStop, "eos_token", "stop_sequence", "end_turn":
		return FinishStop
	case FinishLength, "max_tokens", "max_output_tokens":
		return FinishLength
	case FinishToolCalls, "function_call", "tool_use":
		return FinishToolCalls
	case FinishContentFilter, "refusal":
		return FinishContentFilter
	case FinishAbort, "cancelled", "canceled":
		return FinishAbort
	case FinishError:
		return FinishError
	}
	return FinishOther
}

// keyIs reports whether an object key equals name, ASCII case-insensitively, as encoding/json
// matches struct fields. name is lowercase.
func keyIs(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	if string(key) == name {
		return true // the usual case, one comparison
	}
	for i := range len(key) {
		c := key[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// stringOrNull reads a string field: its raw content, or ok=false for null.
func (w *walker) stringOrNull(field string) (raw []byte, ok bool, err error) {
	switch w.peek() {
	case 'n':
		w.skip()
		return nil, false, nil
	case '"':
		return w.str(), true, nil
	}
	return nil, false, fmt.Errorf("%s: %w", field, errChunkType)
}

// text sets *seen when a string field is not empty (an escape is at least one character).
func (w *walker) text(seen *bool, field string) error {
	raw, ok, err := w.stringOrNull(field)
	if ok && len(raw) > 0 {
		*seen = true
	}
	return err
}

// integer reads an int field as encoding/json does: null leaves it, a fraction, an exponent or
// an out-of-range value is an error.
func (w *walker) integer(v *int, field string) error {
	c := w.peek()
	if c == 'n' {
		w.skip()
		return nil
	}
	if c != '-' && (c < '0' || c > '9') {
		return fmt.Errorf("%s: %w", field, errChunkType)
	}
	start := w.i
	w.skip()
	n, ok := parseInt(w.b[start:w.i])
	if !ok {
		return fmt.Errorf("%s: %w", field, errChunkType)
	}
	*v = n
	return nil
}

// parseInt parses a JSON number that must be an integer within int64, without allocating
// (strconv.ParseInt would need a string).
func parseInt(b []byte) (int, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false // a fraction or an exponent: encoding/json refuses it for an int
		}
		if u > (1<<63)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
		if u > 1<<63 {
			return 0, false
		}
	}
	if neg {
		return int(-int64(u)), true // -(1<<63) wraps to itself, the minimum
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int(u), true
}

// details reads a usage details object ({"reasoning_tokens": n} or {"cached_tokens": n}).
func (w *walker) details(has *bool, v *int, name string) error {
	switch w.peek() {
	case 'n':
		w.skip()
		*has, *v = false, 0
		return nil
	case '{':
	default:
		return fmt.Errorf("%s details: %w", name, errChunkType)
	}
	*has = true
	for ok := w.open('}'); ok; ok = w.more('}') {
		key, ok := w.member()
		if !ok {
			break
		}
		if !keyIs(key, name) {
			w.skip()
		} else if err := w.integer(v, name); err != nil {
			return err
		}
	}
	w.leave()
	return nil
}
