package traffic

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/sugarme/tokenizer"
	"github.com/sugarme/tokenizer/pretrained"
)

// MaxTokenizerBytes bounds a tokenizer.json (Llama-3's is 9 MB, Qwen3's 11 MB).
const MaxTokenizerBytes = 64 << 20

// Tokenizer counts tokens the way one model does, from its Hugging Face tokenizer.json (read
// with github.com/sugarme/tokenizer). It is used to make generated prompts exactly as long as
// requested: NewPromptSource then draws only the vocabulary words that are one token each,
// both after a space and at the start of a prompt, and makes its cache-busting nonce of such
// words, so a prompt of N words is N tokens. Byte-level BPE tokenizers (Llama 3, Qwen) split
// text at spaces before merging, so a prompt's count is the sum of its words' counts; the
// tests check the whole prompt against the tokenizer.
//
// A Tokenizer is read once when a target is built; sources keep only the words it selected.
type Tokenizer struct {
	// Name is the file it came from.
	Name string

	tk *tokenizer.Tokenizer
	// ones lists the vocabulary words (by index) that are one token with and without their
	// leading space.
	ones []uint8
}

// lookaheadSplit is the whitespace clause of the GPT-4-style pre-tokenizer regex that Llama 3
// and Qwen declare. Go's regexp has no lookahead, so it is replaced by `\s+`: the clause only
// decides how a run of several white-space characters splits, and the generated prompts have
// single spaces between words, where both split the same.
const lookaheadSplit = `|\\s+(?!\\S)|\\s+`

// LoadTokenizer reads a Hugging Face tokenizer.json. A tokenizer the library cannot build is
// an error naming the file, never a panic.
func LoadTokenizer(path string) (*Tokenizer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxTokenizerBytes+1))
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	if len(data) > MaxTokenizerBytes {
		return nil, fmt.Errorf("tokenizer %s: larger than %d bytes", path, MaxTokenizerBytes)
	}
	return ParseTokenizer(path, data)
}

// ParseTokenizer builds a Tokenizer from the content of a tokenizer.json; name is used in
// errors.
func ParseTokenizer(name string, data []byte) (t *Tokenizer, err error) {
	data = bytes.ReplaceAll(data, []byte(lookaheadSplit), []byte(`|\\s+`))
	defer func() {
		// The library panics on some files (a regex Go cannot compile, a model it does not
		// know); that is a bad input, not a crash.
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("tokenizer %s: cannot be read: %v", name, r)
		}
	}()
	tk, err := pretrained.FromReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", name, err)
	}
	t = &Tokenizer{Name: name, tk: tk}
	off := vocabularyOffsets()
	for i := 0; i < vocabularySize; i++ {
		w := vocabulary[off[i]:off[i+1]] // with its leading space
		if t.Count(w) == 1 && t.Count(w[1:]) == 1 {
			t.ones = append(t.ones, uint8(i))
		}
	}
	// A nonce is 8 such words, so fewer than 16 would leave it under 32 bits of uniqueness.
	if len(t.ones) < 16 {
		return nil, fmt.Errorf("tokenizer %s: only %d of the prompt vocabulary's %d words are one token each; exact prompt lengths need at least 16", name, len(t.ones), vocabularySize)
	}
	return t, nil
}

// Count returns the number of tokens s encodes to, without special tokens (0 if the library
// cannot encode it).
func (t *Tokenizer) Count(s string) int {
	en, err := t.tk.EncodeSingle(s, false)
	if err != nil {
		return 0
	}
	return len(en.Ids)
}

// ids returns the token ids s encodes to, without special tokens (nil if the library cannot
// encode it); the tests compare them with the reference tokenizers'.
func (t *Tokenizer) ids(s string) []int {
	en, err := t.tk.EncodeSingle(s, false)
	if err != nil {
		return nil
	}
	return en.Ids
}

// SingleTokenWords returns how many vocabulary words the prompts draw from.
func (t *Tokenizer) SingleTokenWords() int { return len(t.ones) }
