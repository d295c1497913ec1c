package traffic

import (
	"math/rand/v2"
	"strings"
)

// wordTable turns random draws into prompt words. A drawn byte picks a vocabulary word: the
// byte itself without a tokenizer, or with one a word that is a single token of it (the byte
// indexes its single-token words, wrapping), so every generator of the package (prompts,
// trace rows, shared prefixes) makes N words that are N tokens when a tokenizer is set. It is
// a value of a few hundred bytes, copied into each source and never written after.
type wordTable struct {
	off [vocabularySize + 1]uint16
	// remap turns a drawn byte into a vocabulary index.
	remap [vocabularySize]uint8
	// wordNonce makes nonces nonceWords single-token words instead of "req-" and hex.
	wordNonce bool
}

// newWordTable returns the identity table, or tk's single-token words when tk is set.
func newWordTable(tk *Tokenizer) wordTable {
	w := wordTable{off: vocabularyOffsets()}
	for i := range w.remap {
		w.remap[i] = uint8(i)
	}
	if tk != nil {
		for i := range w.remap {
			w.remap[i] = tk.ones[i%len(tk.ones)]
		}
		w.wordNonce = true
	}
	return w
}

// word returns the word the low byte of x picks, with its leading space.
func (w *wordTable) word(x uint64) string {
	i := int(w.remap[x&0xff])
	return vocabulary[w.off[i]:w.off[i+1]]
}

// appendWords appends count words drawn from p to b, each after a space unless b is empty.
func (w *wordTable) appendWords(b *strings.Builder, p *rand.PCG, count int) {
	for count > 0 {
		x := p.Uint64()
		for j := 0; j < 8 && count > 0; j++ {
			s := w.word(x)
			if b.Len() == 0 {
				s = s[1:]
			}
			b.WriteString(s)
			x >>= 8
			count--
		}
	}
}

// nonceWordsFor returns how many words a nonce takes out of a prompt of words words: one
// ("req-" and hex), or with a tokenizer nonceWords single-token words (fewer if the prompt is
// shorter).
func (w *wordTable) nonceWordsFor(words int) int {
	if w.wordNonce {
		return min(nonceWords, words)
	}
	return 1
}

// writeNonce writes the nonce of hash v (a bijective hash of the request's number) to b, after
// a space unless b is empty, and returns its length in tokens: "req-" and 16 hex digits of v
// (one word), or with a tokenizer k single-token words chosen by v's bytes.
func (w *wordTable) writeNonce(b *strings.Builder, v uint64, k int) int {
	if w.wordNonce {
		for range k {
			s := w.word(v)
			if b.Len() == 0 {
				s = s[1:]
			}
			b.WriteString(s)
			v >>= 8
		}
		return k
	}
	const hex = "0123456789abcdef"
	var buf [nonceLen + 1]byte
	buf[0] = ' '
	copy(buf[1:], noncePrefix)
	for i := nonceLen; i > len(noncePrefix); i-- {
		buf[i] = hex[v&0xf]
		v >>= 4
	}
	if b.Len() == 0 {
		b.Write(buf[1:])
	} else {
		b.Write(buf[:])
	}
	return 1
}
