package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestCountTokens(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"   \t\n", 0},
		{"one", 1},
		{" one two  three ", 3},
		{"a\tb\nc\r\nd", 4},
		{"héllo wörld", 2},
		{"x\u00a0y", 2},   // no-break space separates
		{"x\u3000y z", 3}, // ideographic space separates
		{"日本語 テキスト", 2},   // non-Latin words are single tokens when unspaced
	}
	for _, tt := range tests {
		if got := CountTokens(tt.in); got != tt.want {
			t.Errorf("CountTokens(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestStreamFormat reads whole streams line by line and checks every event against vLLM's
// layout: role chunk (chat only), one chunk per token, the finish chunk, the usage chunk only
// when asked for, then [DONE].
func TestStreamFormat(t *testing.T) {
	_, ts := startServer(t, fastConfig())
	tests := []struct {
		name  string
		path  string
		chat  bool
		usage bool
		max   int
	}{
		{"chat", "/v1/chat/completions", true, false, 5},
		{"chat usage", "/v1/chat/completions", true, true, 3},
		{"chat one token", "/v1/chat/completions", true, true, 1},
		{"completions", "/v1/completions", false, false, 4},
		{"completions usage", "/v1/completions", false, true, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prompt := "one two three four five six seven"
			body := map[string]any{"model": "inferprobe-sim", "max_tokens": tt.max, "ignore_eos": true, "stream": true}
			if tt.chat {
				body["messages"] = []map[string]any{{"role": "user", "content": prompt}}
			} else {
				body["prompt"] = prompt
			}
			if tt.usage {
				body["stream_options"] = map[string]any{"include_usage": true}
			}
			resp := post(t, context.Background(), ts, tt.path, body)
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Fatalf("Content-Type %q", ct)
			}
			events, err := readSSE(resp.Body)
			if err != nil {
				t.Fatalf("read: %v", err)
			}

			want := tt.max + 2 // tokens, finish, [DONE]
			if tt.chat {
				want++
			}
			if tt.usage {
				want++
			}
			if len(events) != want {
				t.Fatalf("got %d events, want %d: %v", len(events), want, events)
			}
			if last := events[len(events)-1].data; last != "[DONE]" {
				t.Fatalf("last event %q, want [DONE]", last)
			}

			object := "text_completion"
			if tt.chat {
				object = "chat.completion.chunk"
			}
			var id string
			var created int64
			i := 0
			chunk := func(data string) (map[string]any, wireChunk) {
				t.Helper()
				var m map[string]any
				var c wireChunk
				if err := json.Unmarshal([]byte(data), &m); err != nil {
					t.Fatalf("event %d: %v in %q", i, err, data)
				}
				_ = json.Unmarshal([]byte(data), &c)
				if i == 0 {
					id, created = c.ID, c.Created
				}
				prefix := "cmpl-"
				if tt.chat {
					prefix = "chatcmpl-"
				}
				if c.ID != id || !strings.HasPrefix(id, prefix) || len(id) != len(prefix)+32 {
					t.Errorf("event %d: id %q (first %q)", i, c.ID, id)
				}
				if c.Object != object || c.Created != created || created == 0 || c.Model != "inferprobe-sim" {
					t.Errorf("event %d: header fields %q %d %q", i, c.Object, c.Created, c.Model)
				}
				return m, c
			}
			choiceKeys := func(m map[string]any) []string {
				ch := m["choices"].([]any)[0].(map[string]any)
				var keys []string
				for k := range ch {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				return keys
			}
			tokenKey := "text"
			if tt.chat {
				tokenKey = "delta"
			}
			wantKeys := []string{"finish_reason", "index", "logprobs", tokenKey}
			slices.Sort(wantKeys)

			if tt.chat {
				m, c := chunk(events[i].data)
				d := c.Choices[0].Delta
				if d == nil || d.Role == nil || *d.Role != "assistant" || d.Content == nil || *d.Content != "" || c.Choices[0].FinishReason != nil {
					t.Errorf("role chunk wrong: %s", events[i].data)
				}
				if !slices.Equal(choiceKeys(m), wantKeys) {
					t.Errorf("role chunk choice keys %v", choiceKeys(m))
				}
				i++
			}
			var text string
			for k := 0; k < tt.max; k, i = k+1, i+1 {
				m, c := chunk(events[i].data)
				txt, ok := c.tokenText()
				if !ok || !strings.HasPrefix(txt, " ") || CountTokens(txt) != 1 || c.Choices[0].FinishReason != nil {
					t.Errorf("token chunk %d wrong: %s", k, events[i].data)
				}
				if c.Choices[0].Index != 0 || string(c.Choices[0].Logprobs) != "null" || c.Usage != nil {
					t.Errorf("token chunk %d fields: %s", k, events[i].data)
				}
				if tt.chat && c.Choices[0].Delta.Role != nil {
					t.Errorf("token chunk %d repeats the role", k)
				}
				if !slices.Equal(choiceKeys(m), wantKeys) {
					t.Errorf("token chunk choice keys %v", choiceKeys(m))
				}
				text += txt
			}
			if CountTokens(text) != tt.max {
				t.Errorf("text %q has %d tokens, want %d", text, CountTokens(text), tt.max)
			}

			_, c := chunk(events[i].data)
			if _, ok := c.tokenText(); ok || c.Choices[0].FinishReason == nil || *c.Choices[0].FinishReason != "length" {
				t.Errorf("finish chunk wrong: %s", events[i].data)
			}
			if tt.chat && (c.Choices[0].Delta == nil || c.Choices[0].Delta.Role != nil || c.Choices[0].Delta.Content != nil) {
				t.Errorf("finish chunk delta not empty: %s", events[i].data)
			}
			i++

			if tt.usage {
				m, c := chunk(events[i].data)
				if ch, ok := m["choices"].([]any); !ok || len(ch) != 0 {
					t.Errorf("usage chunk choices %v, want []", m["choices"])
				}
				u := c.Usage
				if u == nil || u.PromptTokens != CountTokens(prompt) || u.CompletionTokens != tt.max || u.TotalTokens != u.PromptTokens+tt.max {
					t.Errorf("usage chunk wrong: %s", events[i].data)
				}
			}
		})
	}
}

// TestOutputLength checks ignore_eos gives exactly max_tokens and that otherwise the length
// stays in [max(1, min_tokens), max_tokens] with a matching finish_reason.
func TestOutputLength(t *testing.T) {
	cfg := fastConfig()
	cfg.ITL = 0
	cfg.TTFTBase = 0
	_, ts := startServer(t, cfg)
	tests := []struct {
		name      string
		body      map[string]any
		lo, hi    int
		exact     bool
		wantShort bool // some answers should end early with "stop"
	}{
		{"ignore_eos 1", map[string]any{"max_tokens": 1, "ignore_eos": true}, 1, 1, true, false},
		{"ignore_eos 37", map[string]any{"max_tokens": 37, "ignore_eos": true}, 37, 37, true, false},
		{"max_completion_tokens wins", map[string]any{"max_tokens": 5, "max_completion_tokens": 9, "ignore_eos": true}, 9, 9, true, false},
		{"eos 40", map[string]any{"max_tokens": 40}, 1, 40, false, true},
		{"eos min_tokens", map[string]any{"max_tokens": 40, "min_tokens": 35}, 35, 40, false, false},
		{"default max tokens", map[string]any{"ignore_eos": true}, cfg.DefaultMaxTokens, cfg.DefaultMaxTokens, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			short := 0
			for range 20 {
				tt.body["messages"] = []map[string]any{{"role": "user", "content": "hi"}}
				tt.body["stream_options"] = map[string]any{"include_usage": true}
				sum := stream(context.Background(), ts, "/v1/chat/completions", tt.body)
				if sum.status != http.StatusOK || sum.readErr != nil || !sum.done {
					t.Fatalf("bad stream: %+v", sum)
				}
				if sum.tokens < tt.lo || sum.tokens > tt.hi || sum.usage != sum.tokens {
					t.Fatalf("got %d tokens (usage %d), want %d..%d", sum.tokens, sum.usage, tt.lo, tt.hi)
				}
				wantFinish := "stop"
				if sum.tokens == tt.hi {
					wantFinish = "length"
				}
				if sum.finish != wantFinish {
					t.Fatalf("%d tokens finished with %q, want %q", sum.tokens, sum.finish, wantFinish)
				}
				if sum.tokens < tt.hi {
					short++
				}
			}
			if tt.exact && short > 0 {
				t.Errorf("%d answers shorter than max_tokens with ignore_eos", short)
			}
			if tt.wantShort && short == 0 {
				t.Errorf("no answer ended with EOS in 20 tries")
			}
		})
	}
}

func TestNonStreaming(t *testing.T) {
	_, ts := startServer(t, fastConfig())
	tests := []struct {
		name string
		path string
		body map[string]any
	}{
		{"chat", "/v1/chat/completions", map[string]any{"messages": []map[string]any{{"role": "user", "content": []map[string]any{{"type": "text", "text": "a b"}, {"type": "image_url", "image_url": map[string]any{"url": "x"}}, {"type": "text", "text": "c"}}}}}},
		{"completions", "/v1/completions", map[string]any{"prompt": "a b c"}},
		{"completions token ids", "/v1/completions", map[string]any{"prompt": []int{1, 2, 3}}},
		{"completions one-element list", "/v1/completions", map[string]any{"prompt": []string{"a b c"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.body["max_tokens"] = 6
			tt.body["ignore_eos"] = true
			tt.body["model"] = "inferprobe-sim"
			resp := post(t, context.Background(), ts, tt.path, tt.body)
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			var r struct {
				ID      string `json:"id"`
				Object  string `json:"object"`
				Created int64  `json:"created"`
				Model   string `json:"model"`
				Choices []struct {
					Index   int `json:"index"`
					Message *struct {
						Role    string `json:"role"`
						Content string `json:"content"`
					} `json:"message"`
					Text         *string `json:"text"`
					FinishReason string  `json:"finish_reason"`
				} `json:"choices"`
				Usage struct {
					PromptTokens     int `json:"prompt_tokens"`
					CompletionTokens int `json:"completion_tokens"`
					TotalTokens      int `json:"total_tokens"`
				} `json:"usage"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
				t.Fatalf("decode: %v", err)
			}
			chat := tt.path == "/v1/chat/completions"
			wantObj, wantPrefix := "text_completion", "cmpl-"
			if chat {
				wantObj, wantPrefix = "chat.completion", "chatcmpl-"
			}
			if r.Object != wantObj || !strings.HasPrefix(r.ID, wantPrefix) || r.Created == 0 || r.Model != "inferprobe-sim" || len(r.Choices) != 1 {
				t.Fatalf("bad response: %+v", r)
			}
			c := r.Choices[0]
			var text string
			switch {
			case chat && c.Message != nil && c.Message.Role == "assistant" && c.Text == nil:
				text = c.Message.Content
			case !chat && c.Text != nil && c.Message == nil:
				text = *c.Text
			default:
				t.Fatalf("bad choice: %+v", c)
			}
			if CountTokens(text) != 6 || c.FinishReason != "length" {
				t.Errorf("text %q finish %q", text, c.FinishReason)
			}
			if r.Usage.PromptTokens != 3 || r.Usage.CompletionTokens != 6 || r.Usage.TotalTokens != 9 {
				t.Errorf("usage %+v", r.Usage)
			}
		})
	}
}

// TestErrors covers requests the server refuses, and the OpenAI-style error body.
func TestErrors(t *testing.T) {
	cfg := fastConfig()
	cfg.AcceptAnyModel = false
	cfg.Adapters = []string{"lora-a"}
	cfg.MaxModelLen = 100
	s, ts := startServer(t, cfg)
	msgs := []map[string]any{{"role": "user", "content": "hi"}}
	tests := []struct {
		name   string
		path   string
		body   any
		status int
		param  string
	}{
		{"bad JSON", "/v1/chat/completions", `{"messages": [`, 400, ""},
		{"trailing data", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]} {}`, 400, ""},
		{"no messages", "/v1/chat/completions", map[string]any{}, 400, "messages"},
		{"bad content", "/v1/chat/completions", map[string]any{"messages": []map[string]any{{"role": "user", "content": 5}}}, 400, "messages"},
		{"no prompt", "/v1/completions", map[string]any{"max_tokens": 3}, 400, "prompt"},
		{"batched prompt", "/v1/completions", map[string]any{"prompt": []string{"a", "b"}}, 400, "prompt"},
		{"max_tokens 0", "/v1/chat/completions", map[string]any{"messages": msgs, "max_tokens": 0}, 400, "max_tokens"},
		{"too long", "/v1/completions", map[string]any{"prompt": words(90), "max_tokens": 20}, 400, "max_tokens"},
		{"prompt fills context", "/v1/completions", map[string]any{"prompt": words(100)}, 400, "max_tokens"},
		{"min_tokens above max", "/v1/chat/completions", map[string]any{"messages": msgs, "max_tokens": 2, "min_tokens": 3}, 400, "min_tokens"},
		{"n=2", "/v1/chat/completions", map[string]any{"messages": msgs, "n": 2}, 400, "n"},
		{"stream_options without stream", "/v1/chat/completions", map[string]any{"messages": msgs, "stream_options": map[string]any{"include_usage": true}}, 400, "stream_options"},
		{"unknown model", "/v1/chat/completions", map[string]any{"model": "nope", "messages": msgs}, 404, "model"},
		{"adapter accepted", "/v1/chat/completions", map[string]any{"model": "lora-a", "messages": msgs, "max_tokens": 1}, 200, ""},
		{"default model", "/v1/chat/completions", map[string]any{"messages": msgs, "max_tokens": 1}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, context.Background(), ts, tt.path, tt.body)
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if tt.status == 200 {
				return
			}
			var e struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Param   *string `json:"param"`
					Code    int     `json:"code"`
				} `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("error body: %v", err)
			}
			if e.Error.Code != tt.status || e.Error.Message == "" || e.Error.Type == "" {
				t.Errorf("error body %+v", e.Error)
			}
			if got := ""; e.Error.Param != nil {
				got = *e.Error.Param
				if got != tt.param {
					t.Errorf("param %q, want %q", got, tt.param)
				}
			} else if tt.param != "" {
				t.Errorf("param null, want %q", tt.param)
			}
		})
	}
	st := s.Stats()
	if st.Outcomes[OutcomeBadRequest] != 12 || st.Outcomes[OutcomeNotFound] != 1 || st.Outcomes[OutcomeSuccess] != 2 {
		t.Errorf("outcomes %v", st.Outcomes)
	}
}

func TestOtherEndpoints(t *testing.T) {
	cfg := fastConfig()
	cfg.Adapters = []string{"lora-a"}
	_, ts := startServer(t, cfg)
	tests := []struct {
		method, path string
		status       int
		check        func(t *testing.T, body []byte)
	}{
		{"GET", "/health", 200, nil},
		{"GET", "/v1/models", 200, func(t *testing.T, body []byte) {
			var r struct {
				Object string `json:"object"`
				Data   []struct {
					ID     string  `json:"id"`
					Object string  `json:"object"`
					Parent *string `json:"parent"`
				} `json:"data"`
			}
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			if r.Object != "list" || len(r.Data) != 2 || r.Data[0].ID != "inferprobe-sim" || r.Data[0].Parent != nil ||
				r.Data[1].ID != "lora-a" || r.Data[1].Parent == nil || *r.Data[1].Parent != "inferprobe-sim" {
				t.Errorf("models: %s", body)
			}
		}},
		{"GET", "/v1/chat/completions", 405, nil},
		{"POST", "/health", 405, nil},
		{"GET", "/nope", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, ts.URL+tt.path, nil)
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.check != nil {
				tt.check(t, body)
			}
		})
	}
}

// TestTGIStreamErrors: TGI's /generate_stream answers every error as one event of a 200
// stream ({"error", "error_type"}), as its router does; /generate answers with the status.
func TestTGIStreamErrors(t *testing.T) {
	cfg := fastConfig()
	_, ts := startServer(t, cfg)
	cfg429 := fastConfig()
	cfg429.Error429Rate = 1
	_, ts429 := startServer(t, cfg429)
	tests := []struct {
		name    string
		ts      *httptest.Server
		path    string
		status  int
		errType string
	}{
		{"stream validation", ts, "/generate_stream", 200, "validation"},
		{"stream overloaded", ts429, "/generate_stream", 200, "overloaded"},
		{"whole validation", ts, "/generate", 422, "validation"},
		{"whole overloaded", ts429, "/generate", 429, "overloaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := map[string]any{"inputs": "", "parameters": map[string]any{"max_new_tokens": 2}}
			if tt.errType == "overloaded" {
				body["inputs"] = "hello there"
			}
			resp := post(t, context.Background(), tt.ts, tt.path, body)
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			data := b
			if tt.status == 200 {
				if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
					t.Errorf("content type %q", ct)
				}
				rest, ok := bytes.CutPrefix(b, []byte("data:"))
				if !ok || !bytes.HasSuffix(rest, []byte("\n\n")) || bytes.Count(b, []byte("data:")) != 1 {
					t.Fatalf("want one data event, got %q", b)
				}
				data = bytes.TrimSpace(rest)
			}
			var e struct {
				Error     string `json:"error"`
				ErrorType string `json:"error_type"`
			}
			if err := json.Unmarshal(data, &e); err != nil || e.Error == "" || e.ErrorType != tt.errType {
				t.Errorf("error %+v (%v), want error_type %s: %s", e, err, tt.errType, b)
			}
		})
	}
}

// TestTGIGeneratedText: /generate_stream's last event repeats the whole output in
// generated_text (the text of every token that is not special), whether the generation ran to
// max_new_tokens or ended with the EOS token; every earlier event has it null.
func TestTGIGeneratedText(t *testing.T) {
	_, ts := startServer(t, fastConfig())
	reasons := map[string]int{}
	for i := range 30 {
		resp := post(t, context.Background(), ts, "/generate_stream", map[string]any{
			"inputs": fmt.Sprintf("request %d of the test", i), "parameters": map[string]any{"max_new_tokens": 8, "details": true}})
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		// TGI writes "data:" without the space readSSE wants.
		var events []string
		for _, e := range strings.Split(strings.TrimSpace(string(raw)), "\n\n") {
			data, ok := strings.CutPrefix(e, "data:")
			if !ok {
				t.Fatalf("request %d: event %q is not one data line", i, e)
			}
			events = append(events, data)
		}
		var text strings.Builder
		for k, e := range events {
			var ev struct {
				Token struct {
					Text    string `json:"text"`
					Special bool   `json:"special"`
				} `json:"token"`
				GeneratedText *string `json:"generated_text"`
				Details       *struct {
					FinishReason string `json:"finish_reason"`
				} `json:"details"`
			}
			if err := json.Unmarshal([]byte(e), &ev); err != nil {
				t.Fatalf("request %d event %d: %v in %q", i, k, err, e)
			}
			if !ev.Token.Special {
				text.WriteString(ev.Token.Text)
			}
			last := k == len(events)-1
			switch {
			case !last && ev.GeneratedText != nil:
				t.Fatalf("request %d event %d of %d has generated_text %q, want null before the last", i, k, len(events), *ev.GeneratedText)
			case last && (ev.GeneratedText == nil || ev.Details == nil):
				t.Fatalf("request %d: last event %q lacks generated_text or details", i, e)
			case last:
				if *ev.GeneratedText != text.String() || text.Len() == 0 {
					t.Errorf("request %d: generated_text %q, want the tokens' text %q", i, *ev.GeneratedText, text.String())
				}
				reasons[ev.Details.FinishReason]++
			}
		}
	}
	if reasons["length"] == 0 || reasons["eos_token"] == 0 {
		t.Errorf("finish reasons %v: want both length and eos_token among 30 requests", reasons)
	}
}

// TestTritonVLLMOutputs: with the vLLM backend's return_finish_reason and
// return_num_output_tokens, every generate_stream response carries its own token count and
// finish_reason "None" but the last, which has the real reason; /generate carries the total.
// Without them neither field is sent.
func TestTritonVLLMOutputs(t *testing.T) {
	_, ts := startServer(t, fastConfig())
	type answer struct {
		TextOutput      string  `json:"text_output"`
		FinishReason    *string `json:"finish_reason"`
		NumOutputTokens *int    `json:"num_output_tokens"`
	}
	for _, outputs := range []bool{true, false} {
		body := map[string]any{"text_input": "one two three", "max_tokens": 6}
		if outputs {
			body["return_finish_reason"], body["return_num_output_tokens"] = true, true
		}
		resp := post(t, context.Background(), ts, "/v2/models/inferprobe-sim/generate_stream", body)
		events, err := readSSE(resp.Body)
		resp.Body.Close()
		if err != nil || len(events) == 0 {
			t.Fatalf("outputs %v: %d events, %v", outputs, len(events), err)
		}
		sum := 0
		for k, e := range events {
			var a answer
			if err := json.Unmarshal([]byte(e.data), &a); err != nil {
				t.Fatalf("event %d: %v in %q", k, err, e.data)
			}
			if !outputs {
				if a.FinishReason != nil || a.NumOutputTokens != nil {
					t.Errorf("event %d %q: vLLM outputs sent unasked", k, e.data)
				}
				continue
			}
			if a.FinishReason == nil || a.NumOutputTokens == nil || *a.NumOutputTokens != len(strings.Fields(a.TextOutput)) {
				t.Fatalf("event %d %q: want finish_reason and num_output_tokens counting its words", k, e.data)
			}
			sum += *a.NumOutputTokens
			last := k == len(events)-1
			if got := *a.FinishReason; (got == "None") == last || (last && got != "length" && got != "stop") {
				t.Errorf("event %d of %d: finish_reason %q", k, len(events), got)
			}
		}
		if outputs && (sum == 0 || sum > 6) {
			t.Errorf("num_output_tokens sum to %d, want 1..6", sum)
		}

		resp = post(t, context.Background(), ts, "/v2/models/inferprobe-sim/generate", body)
		var a answer
		err = json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case outputs && (a.NumOutputTokens == nil || *a.NumOutputTokens != len(strings.Fields(a.TextOutput)) || a.FinishReason == nil):
			t.Errorf("/generate %+v: want the total count and a finish reason", a)
		case !outputs && (a.NumOutputTokens != nil || a.FinishReason != nil):
			t.Errorf("/generate %+v: vLLM outputs sent unasked", a)
		}
	}
}
