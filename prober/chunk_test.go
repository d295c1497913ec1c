package prober

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// referenceFacts is what the reader made of a chunk with encoding/json before decodeChunk:
// the oracle decodeChunk is held to. The model, which decodeChunk keeps as offsets, is
// returned apart.
func referenceFacts(data []byte) (chunkFacts, string, error) {
	var ch streamChunk
	var f chunkFacts
	if err := json.Unmarshal(data, &ch); err != nil {
		return f, "", err
	}
	for i := range ch.Choices {
		c := &ch.Choices[i]
		if c.Delta.Content != "" || c.Text != "" {
			f.content = true
		}
		if c.Delta.ReasoningContent != "" || c.Delta.Reasoning != "" {
			f.reasoning = true
		}
		if c.FinishReason != nil && *c.FinishReason != "" && f.finish == "" {
			f.finish = NormaliseFinishReason(*c.FinishReason)
		}
	}
	if u := ch.Usage; u != nil {
		f.hasUsage, f.promptTokens, f.completionTokens = true, u.PromptTokens, u.CompletionTokens
		if d := u.CompletionTokensDetails; d != nil {
			f.hasReasoningTokens, f.reasoningTokens = true, d.ReasoningTokens
		}
		if d := u.PromptTokensDetails; d != nil {
			f.hasCachedTokens, f.cachedTokens = true, d.CachedTokens
		}
	}
	f.isError = (len(ch.Error) > 0 && string(ch.Error) != "null") || ch.Object == "error"
	return f, ch.Model, nil
}

// splitModel returns decodeChunk's facts without the model offsets, and the model they name.
func splitModel(data []byte, f chunkFacts) (chunkFacts, string) {
	model := string(f.model(data))
	f.modelStart, f.modelEnd, f.modelEscaped = 0, 0, false
	return f, model
}

// chunkCases are every event of the server transcripts plus the edges of the JSON mapping.
func chunkCases() []string {
	var cases []string
	for _, tr := range [][]string{vllmChat, llamacppChat, tgiChat, ollamaChat, reasoningChat, noUsageNoDone,
		vllmCompletions, vllmContinuous(1, 4, 3)} {
		for _, ev := range tr {
			for _, line := range strings.Split(ev, "\n") {
				line = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
				if strings.HasPrefix(line, "{") {
					cases = append(cases, line)
				}
			}
		}
	}
	return append(cases,
		`null`, `{}`, `[]`, `"x"`, `5`, `{"choices":null,"usage":null}`,
		`{"choices":[null,{"delta":null},{"delta":{"content":null}}]}`,
		`{"choices":[{"delta":{"content":"\u0000"}}]}`,
		`{"Choices":[{"Delta":{"CONTENT":"x"}}]}`,
		`{"ch\u006fices":[{"text":"x","finish_reason":"\u0073top"}]}`,
		`{"choices":[{"finish_reason":""},{"finish_reason":"length"},{"finish_reason":"stop"}]}`,
		`{"choices":[{"finish_reason":"eos_token"}]}`,
		`{"choices":[{"finish_reason":5}]}`,
		`{"choices":[5]}`, `{"choices":{}}`, `{"choices":[{"delta":[]}]}`, `{"choices":[{"text":1}]}`,
		`{"usage":{"prompt_tokens":1.5}}`, `{"usage":{"prompt_tokens":1e3}}`, `{"usage":{"prompt_tokens":"3"}}`,
		`{"usage":{"prompt_tokens":-0,"completion_tokens":-7}}`,
		`{"usage":{"completion_tokens":9223372036854775807}}`, `{"usage":{"completion_tokens":9223372036854775808}}`,
		`{"usage":{"completion_tokens":-9223372036854775808}}`, `{"usage":{"completion_tokens":-9223372036854775809}}`,
		`{"usage":{"prompt_tokens_details":null,"completion_tokens_details":{}}}`,
		`{"usage":{"prompt_tokens_details":{"cached_tokens":null}}}`,
		`{"usage":{"prompt_tokens_details":5}}`, `{"usage":[]}`,
		`{"error":null}`, `{"error":{"message":"x","code":429}}`, `{"error":"text"}`,
		`{"object":"error","message":"m","code":400}`, `{"object":5}`, `{"message":5}`, `{"code":{"a":[1,"]"]}}`,
		`{"model":"meta-llama/Llama-3.1-8B"}`, `{"model":"a\/b\"c"}`, `{"model":null}`, `{"model":5}`, `{"model":""}`, `{"MODEL":"x"}`,
		`{"choices":[{"delta":{"content":"a\"b]}"}, "x":[{"y":"}"}]}]}`,
		` { "choices" : [ { "delta" : { "content" : "a" } } ] } `,
		`{"choices":[{"delta":{"content":"a"}}]`, `{"choices":[{"delta":{"content":"a}]}`, `{"a":01}`, ``,
	)
}

func TestDecodeChunkAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range chunkCases() {
		want, wantModel, wantErr := referenceFacts([]byte(c))
		var raw chunkFacts
		gotErr := decodeChunk([]byte(c), &raw, nil)
		if (gotErr != nil) != (wantErr != nil) {
			t.Errorf("%s: error %v, encoding/json %v", c, gotErr, wantErr)
			continue
		}
		got, gotModel := splitModel([]byte(c), raw)
		if wantErr == nil && (got != want || gotModel != wantModel) {
			t.Errorf("%s:\n got %+v model %q\nwant %+v model %q", c, got, gotModel, want, wantModel)
		}
	}
}

// FuzzDecodeChunk holds decodeChunk to encoding/json on arbitrary input: the same error or
// not, and the same facts. Inputs with non-ASCII bytes or \u escapes are left out of the
// comparison (encoding/json folds keys with Unicode rules, "ſ" matching "s"), and so are
// duplicate keys, where encoding/json merges into what it decoded first.
func FuzzDecodeChunk(f *testing.F) {
	for _, c := range chunkCases() {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var raw chunkFacts
		gotErr := decodeChunk(data, &raw, nil) // must not panic
		if bytes.ContainsFunc(data, func(r rune) bool { return r >= 0x80 }) || bytes.Contains(data, []byte(`\u`)) || hasDuplicateKeys(data) {
			return
		}
		want, wantModel, wantErr := referenceFacts(data)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("%q: error %v, encoding/json %v", data, gotErr, wantErr)
		}
		got, gotModel := splitModel(data, raw)
		if wantErr == nil && (got != want || gotModel != wantModel) {
			t.Fatalf("%q:\n got %+v model %q\nwant %+v model %q", data, got, gotModel, want, wantModel)
		}
	})
}

// hasDuplicateKeys reports whether any object in valid JSON repeats a key (case-insensitively,
// as encoding/json matches them). Invalid JSON reports false.
func hasDuplicateKeys(data []byte) bool {
	if !json.Valid(data) {
		return false // (Decoder.More keeps answering true after a syntax error)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func() bool
	walk = func() bool {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return false
				}
				key := strings.ToLower(k.(string))
				if seen[key] {
					return true
				}
				seen[key] = true
				if walk() {
					return true
				}
			}
			_, _ = dec.Token()
		case json.Delim('['):
			for dec.More() {
				if walk() {
					return true
				}
			}
			_, _ = dec.Token()
		}
		return false
	}
	return walk()
}

// fastPathCases are chunks the fast path must take itself (valid, the right types, no
// escaped key), beyond every chunk of the server transcripts: duplicate keys, capitals,
// whitespace, nesting in skipped fields and the usage resets.
var fastPathCases = []string{
	`{}`, `{"choices":null,"usage":null}`, `{"choices":[]}`, `{"choices":[null,{}]}`,
	`{"choices":[null,{"delta":null},{"delta":{"content":null}}]}`,
	`{"Choices":[{"Delta":{"CONTENT":"x"}}]}`, `{"MODEL":"x","Usage":{"Prompt_Tokens":3}}`,
	` { "choices" : [ { "delta" : { "content" : "a" } } ] } `,
	"{\t\"usage\"\n:\r{\"prompt_tokens\" :1 , \"completion_tokens\": 2}}",
	`{"usage":{"prompt_tokens":1},"usage":{"completion_tokens":2}}`,
	`{"usage":{"prompt_tokens":1,"completion_tokens_details":{"reasoning_tokens":4}},"usage":null}`,
	`{"usage":{"prompt_tokens_details":{"cached_tokens":5},"prompt_tokens_details":null}}`,
	`{"usage":{"completion_tokens_details":{},"prompt_tokens_details":{"cached_tokens":null}}}`,
	`{"choices":[{"finish_reason":"","text":""},{"finish_reason":"length"},{"finish_reason":"stop"}]}`,
	`{"choices":[{"finish_reason":"\u0073top"}]}`, `{"model":"a\/b\"c"}`, `{"model":"x","model":null}`,
	`{"error":null}`, `{"error":{"message":"x","code":429}}`, `{"error":"text"}`, `{"error":[1,true,false]}`,
	`{"error":-1.5e3}`, `{"error":false}`, `{"object":"error","message":"m","code":400}`,
	`{"code":{"a":[1,"]",{"b":[[]]}],"text":5,"content":5}}`, `{"text":5,"delta":5,"prompt_tokens":"x"}`,
	`{"choices":[{"delta":{"content":"a\"b]}","role":"assistant"},"x":[{"y":"}"}],"logprobs":null,"index":0}]}`,
	`{"usage":{"completion_tokens":-9223372036854775808,"prompt_tokens":0,"total_tokens":-0.5e-3}}`,
}

// TestDecodeChunkFastPath: the fast path takes every chunk of the server transcripts and the
// cases above, with the walker's facts; and it leaves to the walker what the walker refuses.
func TestDecodeChunkFastPath(t *testing.T) {
	var cases []string
	for _, c := range chunkCases() {
		if strings.HasPrefix(c, `{"id"`) {
			cases = append(cases, c) // the transcripts' events
		}
	}
	if len(cases) < 15 {
		t.Fatalf("only %d transcript chunks", len(cases))
	}
	for _, c := range append(cases, fastPathCases...) {
		var fast, slow chunkFacts
		if !decodeChunkFast([]byte(c), &fast, nil) {
			t.Errorf("%s: the fast path left it to the walker", c)
			continue
		}
		if err := decodeChunkWalker([]byte(c), &slow); err != nil || fast != slow {
			t.Errorf("%s:\nfast   %+v\nwalker %+v (%v)", c, fast, slow, err)
		}
	}
	for _, c := range chunkCases() {
		var f chunkFacts
		if decodeChunkWalker([]byte(c), &f) != nil && decodeChunkFast([]byte(c), &f, nil) {
			t.Errorf("%s: the fast path took a chunk the walker refuses", c)
		}
	}
}

// FuzzDecodeChunkPaths holds the fast path to the walker on arbitrary input, duplicate keys
// and escapes included: wherever it takes a chunk, the walker accepts it with the same facts.
func FuzzDecodeChunkPaths(f *testing.F) {
	for _, c := range append(chunkCases(), fastPathCases...) {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, slow chunkFacts
		if !decodeChunkFast(data, &fast, nil) {
			return
		}
		if err := decodeChunkWalker(data, &slow); err != nil || fast != slow {
			t.Fatalf("%q:\nfast   %+v\nwalker %+v (%v)", data, fast, slow, err)
		}
	})
}

// chunkStreams are the server transcripts' chunks, stream by stream.
func chunkStreams() [][]string {
	var streams [][]string
	for _, tr := range [][]string{vllmChat, llamacppChat, tgiChat, ollamaChat, reasoningChat, noUsageNoDone,
		vllmCompletions, vllmContinuous(1, 4, 3), vllmContinuous(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)} {
		var chunks []string
		for _, ev := range tr {
			for _, line := range strings.Split(ev, "\n") {
				line = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
				if strings.HasPrefix(line, "{") {
					chunks = append(chunks, line)
				}
			}
		}
		streams = append(streams, chunks)
	}
	return streams
}

// TestDecodeChunkMemo: every transcript's chunks read in turn through one memo give what each
// gives alone, and the memo is used: vLLM's chunks after the first text one start from it.
func TestDecodeChunkMemo(t *testing.T) {
	streams := chunkStreams()
	for n, stream := range streams {
		memo := &chunkMemo{}
		for _, c := range stream {
			var got, want chunkFacts
			gotErr, wantErr := decodeChunk([]byte(c), &got, memo), decodeChunk([]byte(c), &want, nil)
			if (gotErr != nil) != (wantErr != nil) || got != want {
				t.Errorf("stream %d, %s:\nmemo %+v (%v)\nalone %+v (%v)", n, c, got, gotErr, want, wantErr)
			}
		}
		if n == len(streams)-1 && memo.hits < 14 {
			t.Errorf("the 16-token vLLM stream started %d chunks from the memo, want at least 14", memo.hits)
		}
	}
}

// FuzzDecodeChunkMemo holds a chunk read through the memo another chunk left to the same chunk
// read alone: the same error or not and the same facts, whatever the two are.
func FuzzDecodeChunkMemo(f *testing.F) {
	for _, stream := range chunkStreams() {
		for i := 1; i < len(stream); i++ {
			f.Add([]byte(stream[i-1]), []byte(stream[i]))
		}
	}
	cases := append(chunkCases(), fastPathCases...)
	for i := 1; i < len(cases); i++ {
		f.Add([]byte(cases[i-1]), []byte(cases[i]))
	}
	f.Fuzz(func(t *testing.T, first, second []byte) {
		// Mutated apart, the two seldom share a prefix, which is what the memo acts on: so
		// second is also tried after the start of first (its length picks how much).
		k := 0
		if len(first) > 0 {
			k = len(second) % (len(first) + 1)
		}
		for _, next := range [][]byte{second, append(first[:k:k], second...)} {
			memo := &chunkMemo{}
			var got, want chunkFacts
			_ = decodeChunk(first, &got, memo)
			gotErr, wantErr := decodeChunk(next, &got, memo), decodeChunk(next, &want, nil)
			if (gotErr != nil) != (wantErr != nil) || gotErr == nil && got != want {
				t.Fatalf("%q after %q:\nmemo %+v (%v)\nalone %+v (%v)", next, first, got, gotErr, want, wantErr)
			}
		}
	})
}
