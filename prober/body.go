package prober

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/inferprobe/inferprobe/traffic"
)

// bodyTemplate builds JSON request bodies from a constant part, encoded once when a client is
// built, and the few keys that change per request (model, prompt, length), appended by hand:
// a request costs one buffer instead of a map, reflection and a copy per key.
type bodyTemplate struct {
	// static is the constant members, `"k":v,` each with its comma, in key order; the
	// target's extra_body is merged in and wins over generated keys.
	static []byte
	// over holds the per-request keys extra_body sets: their generated value is left out.
	// Read-only once built.
	over map[string]bool
}

// newBodyTemplate encodes the constant members and the extra members that win over them and
// over the per-request keys named in dynamic.
func newBodyTemplate(static, extra map[string]any, dynamic ...string) (bodyTemplate, error) {
	merged := make(map[string]any, len(static)+len(extra))
	for k, v := range static {
		merged[k] = v
	}
	t := bodyTemplate{over: map[string]bool{}}
	for k, v := range extra {
		merged[k] = v
	}
	for _, k := range dynamic {
		if _, ok := extra[k]; ok {
			t.over[k] = true
		}
	}
	if len(merged) == 0 {
		return t, nil
	}
	b, err := json.Marshal(merged) // sorted keys: the same bytes every time
	if err != nil {
		return t, err
	}
	if len(b) > 2 {
		t.static = append(b[1:len(b)-1:len(b)-1], ',')
	}
	return t, nil
}

// key appends `"name":` unless extra_body replaces name; ok false means skip the value.
func (t *bodyTemplate) key(dst []byte, name string) ([]byte, bool) {
	if t.over[name] {
		return dst, false
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	return append(dst, '"', ':'), true
}

// str appends a string member unless extra_body replaces it.
func (t *bodyTemplate) str(dst []byte, name, v string) []byte {
	dst, ok := t.key(dst, name)
	if !ok {
		return dst
	}
	return append(appendJSONString(dst, v), ',')
}

// int appends an integer member unless extra_body replaces it.
func (t *bodyTemplate) int(dst []byte, name string, v int) []byte {
	dst, ok := t.key(dst, name)
	if !ok {
		return dst
	}
	return append(strconv.AppendInt(dst, int64(v), 10), ',')
}

// close appends the constant members and ends the object that dst began with '{'.
func (t *bodyTemplate) close(dst []byte) []byte {
	dst = append(dst, t.static...)
	if n := len(dst); n > 0 && dst[n-1] == ',' {
		dst = dst[:n-1]
	}
	return append(dst, '}')
}

// appendMessages appends a chat message list: req's conversation, or its prompt as one user
// message.
func appendMessages(dst []byte, req traffic.Request) []byte {
	dst = append(dst, '[')
	if len(req.Messages) == 0 {
		dst = append(dst, `{"role":"user","content":`...)
		dst = appendJSONString(dst, req.Prompt)
		return append(dst, '}', ']')
	}
	for i, m := range req.Messages {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"role":`...)
		dst = appendJSONString(dst, m.Role)
		dst = append(dst, `,"content":`...)
		dst = appendJSONString(dst, m.Content)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// appendJSONString appends s as a JSON string, as encoding/json decodes it back: quotes,
// backslashes and control characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
