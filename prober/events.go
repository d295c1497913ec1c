package prober

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Helpers shared by the event decoders of the non-OpenAI flavours: they read one event with
// the single-pass walker of walker.go.

// eventObject returns a walker at the start of the JSON object in data, or the error that it
// is not one; the decoder walks the object and ends with finish, which reports a syntax error
// anywhere in data first.
func eventObject(data []byte) (walker, error) {
	w := walker{b: data}
	if w.peek() != '{' {
		w.skip()
		return walker{}, w.finish(fmt.Errorf("event is not a JSON object: %w", errChunkType))
	}
	return w, nil
}

// members calls member for each key of the object (or null) at w.i; anything else is a type
// error naming field.
func (w *walker) members(field string, member func(key []byte) error) error {
	switch w.peek() {
	case 'n':
		w.skip()
		return nil
	case '{':
		return w.object(member)
	}
	return fmt.Errorf("%s: %w", field, errChunkType)
}

// elements calls elem for each element of the array (or null) at w.i.
func (w *walker) elements(field string, elem func() error) error {
	switch w.peek() {
	case 'n':
		w.skip()
		return nil
	case '[':
		return w.array(elem)
	}
	return fmt.Errorf("%s: %w", field, errChunkType)
}

// boolean reads a bool field (null leaves it).
func (w *walker) boolean(v *bool, field string) error {
	switch w.peek() {
	case 'n':
		w.skip()
		return nil
	case 't':
		w.skip()
		*v = true
		return nil
	case 'f':
		w.skip()
		*v = false
		return nil
	}
	return fmt.Errorf("%s: %w", field, errChunkType)
}

// rawString reads a string field's raw content (escapes left in; nil for null).
func (w *walker) rawString(field string) ([]byte, error) {
	raw, _, err := w.stringOrNull(field)
	return raw, err
}

// modelName returns the model a response named, from a raw string the walker returned: the
// raw bytes themselves (no allocation) unless they hold escapes.
func modelName(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	return []byte(unquote(raw))
}

// unquote returns the text of a raw string the walker returned (escapes resolved): only for
// the rare paths (error messages), it allocates.
func unquote(raw []byte) string {
	var s string
	if json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s) != nil {
		return string(raw)
	}
	return s
}

// classifyErrorType classes an error a server named by type or code inside a stream, as the
// HTTP status the same server answers it with outside one:
//   - Anthropic's error.type (docs.anthropic.com/en/api/errors): rate_limit_error 429,
//     overloaded_error 529 and api_error 500 (5xx), the rest 4xx; vLLM's /v1/messages sends
//     internal_error;
//   - OpenAI's Responses error.code (openai-python types/responses/response_error.py):
//     rate_limit_exceeded, server_error, invalid_prompt and the image codes;
//   - TGI's error_type (router/src/infer/mod.rs, error_type; statuses in server.rs): overloaded
//     429, validation and the template and tool errors 422, generation 424 (the model failed:
//     5xx), incomplete_generation_stream (the generation ended without its last token: a cut
//     stream).
//
// An unknown or missing one is the server's own failure.
func classifyErrorType(typ string) string {
	switch typ {
	case "rate_limit_error", "rate_limit_exceeded", "overloaded", "too_many_requests":
		return ResultHTTP429
	case "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
		"request_too_large", "billing_error", "invalid_prompt", "validation", "template_error",
		"missing_template_variable", "tool_error", "context_length_exceeded", "invalid_request",
		"bad_request":
		return ResultHTTP4xx
	case "incomplete_generation_stream":
		return ResultStreamTruncated
	}
	if strings.HasPrefix(typ, "invalid_image") || strings.HasPrefix(typ, "image_") {
		return ResultHTTP4xx // Responses' image codes: the request's input was refused
	}
	return ResultHTTP5xx
}

// apiKeyHeader returns the Authorization header of a bearer key, or none.
func apiKeyHeader(key string) http.Header {
	h := http.Header{}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	return h
}
