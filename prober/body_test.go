package prober

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/inferprobe/inferprobe/traffic"
)

// FuzzJSONString: the hand-written string encoder must decode back to what encoding/json's
// own encoding of the same string decodes to, for any input.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "plain words", "quote \" back \\ slash", "nl\n cr\r tab\t \x00 \x1f", "é ☃ 𝄞", "\xff\xfe bad", "\u2028 <>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ours := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(ours, &got); err != nil {
			t.Fatalf("%q encoded as invalid JSON %s: %v", s, ours, err)
		}
		theirs, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(theirs, &want)
		if got != want {
			t.Fatalf("%q: decodes to %q, encoding/json's to %q", s, got, want)
		}
	})
}

// TestBodyTemplateExtraWins: extra_body replaces generated keys, constant and per-request
// alike, and the body stays one valid object without duplicate keys.
func TestBodyTemplateExtraWins(t *testing.T) {
	tgt := testTarget("http://127.0.0.1:1", APIOpenAIChat)
	tgt.Request.ExtraBody = map[string]any{"model": "other", "stream": false, "top_k": 3, "messages": []any{}}
	c, err := NewOpenAIClient(tgt)
	if err != nil {
		t.Fatal(err)
	}
	body, err := c.Body(traffic.Request{Prompt: "x", Messages: []traffic.Message{{Role: "user", Content: "a\"b"}}})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	if got["model"] != "other" || got["stream"] != false || got["top_k"] != 3.0 || len(got["messages"].([]any)) != 0 || got["max_tokens"] != 16.0 {
		t.Errorf("body %s", body)
	}
	// Duplicate keys would be accepted by encoding/json above; count them in the raw bytes.
	dec := json.NewDecoder(bytesReader(body))
	seen := map[string]bool{}
	_, _ = dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		if seen[k.(string)] {
			t.Errorf("duplicate key %s in %s", k, body)
		}
		seen[k.(string)] = true
		var v json.RawMessage
		_ = dec.Decode(&v)
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
