package traffic

import (
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"unicode"
)

// WeightedAdapter is one LoRA adapter's share of a target's traffic.
type WeightedAdapter struct {
	// Name is the adapter addressed instead of the base model; "" names the base model, so
	// a split like {"", 1}, {"sql-lora", 1} sends half the requests to the base model.
	Name string
	// Weight is the adapter's relative share; shares are normalised over all adapters.
	// Adapters whose weight is not a positive finite number get no traffic.
	Weight float64
}

// PromptOptions configures NewPromptSource.
type PromptOptions struct {
	// Prompt is a fixed prompt. When set it wins over InputTokens.
	Prompt string
	// InputTokens asks for a generated prompt of exactly this many words, which the simulator
	// counts as tokens (real tokenizers see about one token per word of the vocabulary).
	InputTokens int
	// MaxTokens is copied into every request.
	MaxTokens int
	// InputLengths, when set, draws each generated prompt's length instead of InputTokens.
	InputLengths Lengths
	// OutputLengths, when set, draws each request's MaxTokens instead of MaxTokens.
	OutputLengths Lengths
	// Tokenizer, when set, makes generated prompts exactly their length in that model's
	// tokens (see Tokenizer) and counts a fixed Prompt with it.
	Tokenizer *Tokenizer
	// CacheBust makes every prompt unique from its first word on, so prefix caches cannot
	// hide prefill cost.
	CacheBust bool
	// Seed makes the prompts and the adapter choice reproducible.
	Seed uint64
	// Adapters optionally splits the traffic over LoRA adapters; empty sends everything to
	// the base model.
	Adapters []WeightedAdapter
}

// vocabulary holds 256 plain lowercase English words, each with a leading space, so a word is
// picked with 8 random bits and written with one copy. Common short words keep real
// tokenizers close to one token per word.
const vocabulary = "" +
	" apple river stone cloud green table window garden market letter summer winter morning evening yellow silver" +
	" bread water light sound paper music story house field horse bird tree road bridge city train" +
	" walk read write open close carry bring build clean cook drive learn speak teach watch wait" +
	" happy quiet simple early late small large warm cold bright dark soft hard fresh clear gentle" +
	" north south east west left right under over after before between around along inside outside across" +
	" chair door floor wall roof kitchen room lamp clock glass plate spoon knife bottle basket blanket" +
	" mountain valley forest lake ocean island beach desert hill meadow snow rain wind storm friend family" +
	" mother father sister brother child teacher doctor farmer baker driver player singer writer painter red blue" +
	" white black brown orange purple gray pink gold one two three four five six seven eight" +
	" nine ten hundred thousand day night week month year hour minute second today tomorrow sun moon" +
	" star sky earth fire air metal wood sand dog cat fish cow sheep goat duck mouse" +
	" rabbit tiger lion bear wolf fox deer run jump swim climb sing dance play laugh smile" +
	" sleep dream think know feel hear see book pen desk school class lesson test answer question" +
	" idea word page note list map plan car bus boat ship plane bike wheel engine track" +
	" station port street corner park square food rice soup salt sugar milk cheese egg butter honey" +
	" tea coffee juice cake fruit shirt coat hat shoe dress pocket button ring belt good bad"

const (
	vocabularySize = 256
	// noncePrefix starts every cache-busting nonce; 16 hex digits follow.
	noncePrefix = "req-"
	nonceLen    = len(noncePrefix) + 16
)

// NewPromptSource returns a Source that builds each request from opts as a pure function of
// (opts, n); it keeps no state between calls, so it is also safe for concurrent use.
//
// Prompts:
//   - Generated (InputTokens > 0, no Prompt): InputTokens words drawn uniformly from a fixed
//     vocabulary of plain lowercase English words, separated by single spaces, and
//     PromptTokens = InputTokens exactly (the simulator counts one token per
//     whitespace-separated word). With CacheBust the first word is a nonce and the other
//     words are drawn afresh for every n, so no two prompts share a prefix (or, in practice,
//     any long run of words); without it every request carries the same prompt, derived
//     from the seed, so a prefix cache sees repeats — which is what turning CacheBust off
//     asks for.
//   - Fixed (Prompt set): the prompt as given, with PromptTokens its number of
//     whitespace-separated words (an estimate for real tokenizers). CacheBust prepends the
//     nonce and a space, adding one word.
//   - Neither: an empty prompt, or the nonce alone with CacheBust.
//
// The nonce is "req-" and 16 lowercase hex digits: a bijective hash of n keyed by the seed, so
// it never repeats within one source. Real tokenizers split it into several tokens, so for
// real servers PromptTokens undercounts by a few tokens with CacheBust on.
//
// Adapter is chosen per n from Adapters by weight with its own seeded stream, independent of
// the prompt text; it is "" (the base model) when no adapter has a positive weight.
func NewPromptSource(opts PromptOptions) Source {
	s := &promptSource{
		inputLengths:  opts.InputLengths,
		outputLengths: opts.OutputLengths,
		inputTokens:   max(opts.InputTokens, 0),
		maxTokens:     opts.MaxTokens,
		prompt:        opts.Prompt,
		promptWords:   countWords(opts.Prompt),
		cacheBust:     opts.CacheBust,
		wordKey:       opts.Seed,
		nonceKey:      mix64(opts.Seed ^ streamNonce),
	}
	s.wordTable = newWordTable(opts.Tokenizer)
	if tk := opts.Tokenizer; tk != nil {
		if opts.Prompt != "" {
			// After a nonce the prompt follows a space, which byte-level tokenizers count
			// with its first word.
			if s.cacheBust {
				s.promptWords = tk.Count(" " + opts.Prompt)
			} else {
				s.promptWords = tk.Count(opts.Prompt)
			}
		}
	}

	s.split = newAdapterSplit(opts.Adapters, mix64(opts.Seed^streamAdapters))

	if !s.cacheBust {
		switch {
		case s.prompt != "":
			s.fixed, s.fixedTokens = s.prompt, s.promptWords
		case s.inputLengths != nil:
			// Drawn lengths: every prompt is a prefix of the one fixed word sequence.
		case s.inputTokens > 0:
			var p rand.PCG
			seedPCG(&p, s.wordKey, streamFixed)
			s.fixed, s.fixedTokens = s.generate(p, false, 0, s.inputTokens), s.inputTokens
		}
	}
	return s
}

type promptSource struct {
	inputLengths, outputLengths Lengths
	// wordTable picks the words: the vocabulary, or with a tokenizer its single-token words.
	wordTable

	inputTokens int
	maxTokens   int
	prompt      string
	promptWords int
	cacheBust   bool

	wordKey, nonceKey uint64

	// fixed is the prompt of every request when it does not vary with n.
	fixed       string
	fixedTokens int

	split adapterSplit
}

// adapterSplit picks a request's LoRA adapter by weight from its own seeded stream.
type adapterSplit struct {
	key uint64
	// names[i] is chosen when a uniform draw falls below cum[i] (and not below cum[i-1]).
	names []string
	cum   []float64
}

// newAdapterSplit keeps the adapters whose weight is a positive finite number, normalised.
func newAdapterSplit(adapters []WeightedAdapter, key uint64) adapterSplit {
	s := adapterSplit{key: key}
	total := 0.0
	for _, a := range adapters {
		if a.Weight > 0 && !math.IsInf(a.Weight, 1) {
			total += a.Weight
		}
	}
	if total > 0 && !math.IsInf(total, 1) {
		acc := 0.0
		for _, a := range adapters {
			if a.Weight > 0 && !math.IsInf(a.Weight, 1) {
				acc += a.Weight
				s.names = append(s.names, a.Name)
				s.cum = append(s.cum, acc/total)
			}
		}
		s.cum[len(s.cum)-1] = 1 // rounding must never leave a draw past the last adapter
	}
	return s
}

// pick returns request n's adapter, "" (the base model) when no adapter has a weight.
func (s *adapterSplit) pick(n uint64) string {
	switch len(s.names) {
	case 0:
		return ""
	case 1:
		return s.names[0]
	}
	u := float64(hashIndex(s.key, n)>>11) * 0x1p-53
	return s.names[sort.Search(len(s.cum), func(i int) bool { return u < s.cum[i] })]
}

// vocabularyOffsets returns where the vocabulary's words start: word i with its leading space
// is vocabulary[off[i]:off[i+1]].
func vocabularyOffsets() (off [vocabularySize + 1]uint16) {
	k := 0
	for i := 0; i < len(vocabulary); i++ {
		if vocabulary[i] == ' ' {
			off[k] = uint16(i)
			k++
		}
	}
	off[vocabularySize] = uint16(len(vocabulary))
	return off
}

func (s *promptSource) Next(n uint64) Request {
	r := Request{MaxTokens: s.maxTokens, Adapter: s.adapter(n)}
	if s.outputLengths != nil {
		r.MaxTokens = s.outputLengths.Length(n)
	}
	switch {
	case s.inputLengths != nil && s.prompt == "":
		length := s.inputLengths.Length(n)
		var p rand.PCG
		if s.cacheBust {
			seedPCG(&p, hashIndex(s.wordKey, n), streamWords)
		} else {
			seedPCG(&p, s.wordKey, streamFixed)
		}
		r.Prompt, r.PromptTokens = s.generate(p, s.cacheBust, n, length), length
	case !s.cacheBust:
		r.Prompt, r.PromptTokens = s.fixed, s.fixedTokens
	case s.prompt != "":
		var b strings.Builder
		b.Grow(nonceLen + 1 + len(s.prompt))
		k := s.nonce(&b, n, nonceWords)
		b.WriteByte(' ')
		b.WriteString(s.prompt)
		r.Prompt, r.PromptTokens = b.String(), s.promptWords+k
	case s.inputTokens > 0:
		var p rand.PCG
		seedPCG(&p, hashIndex(s.wordKey, n), streamWords)
		r.Prompt, r.PromptTokens = s.generate(p, true, n, s.inputTokens), s.inputTokens
	default:
		var b strings.Builder
		b.Grow(nonceLen)
		r.PromptTokens = s.nonce(&b, n, nonceWords)
		r.Prompt = b.String()
	}
	return r
}

// nonceWords is the length of a nonce made of words (with a tokenizer): 8 draws from at least
// 16 single-token words, so at least 32 bits tell requests apart.
const nonceWords = 8

// generate builds a prompt of words words from p's draws, starting with the nonce for n if
// nonce is set (one word, or with a tokenizer up to nonceWords single-token words). It runs the
// generator twice from the same state: once to size the buffer exactly, once to fill it, so
// the prompt costs a single allocation.
func (s *promptSource) generate(p rand.PCG, nonce bool, n uint64, words int) string {
	body := words
	size := 0
	k := 0 // the nonce's words
	if nonce {
		k = 1
		if s.wordNonce {
			k = min(nonceWords, words)
		}
		body -= k
		size = s.nonceSize(n, k)
	}
	sizer := p // a copy replays the same draws
	for left := body; left > 0; {
		x := sizer.Uint64()
		for j := 0; j < 8 && left > 0; j++ {
			w := int(s.remap[x&0xff])
			size += int(s.off[w+1] - s.off[w])
			x >>= 8
			left--
		}
	}
	if !nonce {
		size-- // the first word goes without its leading space
	}

	var b strings.Builder
	b.Grow(size)
	if nonce {
		s.nonce(&b, n, k)
	}
	for left := body; left > 0; {
		x := p.Uint64()
		for j := 0; j < 8 && left > 0; j++ {
			i := int(s.remap[x&0xff])
			w := vocabulary[s.off[i]:s.off[i+1]]
			if b.Len() == 0 {
				w = w[1:]
			}
			b.WriteString(w)
			x >>= 8
			left--
		}
	}
	return b.String()
}

// nonceSize returns the bytes nonce writes for n with k words.
func (s *promptSource) nonceSize(n uint64, k int) int {
	if !s.wordNonce {
		return nonceLen
	}
	size := -1 // the first word's leading space is not written
	v := hashIndex(s.nonceKey, n)
	for range k {
		w := int(s.remap[v&0xff])
		size += int(s.off[w+1] - s.off[w])
		v >>= 8
	}
	return size
}

// nonce writes request n's nonce of k words at the start of b and returns its length in
// tokens (see wordTable.writeNonce).
func (s *promptSource) nonce(b *strings.Builder, n uint64, k int) int {
	return s.writeNonce(b, hashIndex(s.nonceKey, n), k)
}

func (s *promptSource) adapter(n uint64) string { return s.split.pick(n) }

// Turn implements TurnSource: turn k > 0 is the request of a sequence number derived from
// (n, k), so it has words and a nonce of its own, with request n's adapter.
func (s *promptSource) Turn(n uint64, turn int) Request {
	if turn == 0 {
		return s.Next(n)
	}
	r := s.Next(hashIndex(mix64(s.wordKey^streamTurn^mix64(uint64(turn))), n))
	r.Adapter = s.adapter(n)
	return r
}

// countWords counts whitespace-separated words without allocating.
func countWords(s string) int {
	words, in := 0, false
	for _, r := range s {
		space := unicode.IsSpace(r)
		if !space && !in {
			words++
		}
		in = !space
	}
	return words
}
