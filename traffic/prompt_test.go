package traffic

import (
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var nonceRE = regexp.MustCompile(`^req-[0-9a-f]{16}$`)

func vocabularySet(t *testing.T) map[string]bool {
	t.Helper()
	words := strings.Fields(vocabulary)
	set := make(map[string]bool, len(words))
	for _, w := range words {
		set[w] = true
	}
	return set
}

func TestVocabulary(t *testing.T) {
	words := strings.Fields(vocabulary)
	if len(words) != vocabularySize {
		t.Fatalf("vocabulary has %d words, want %d", len(words), vocabularySize)
	}
	if len(vocabularySet(t)) != vocabularySize {
		t.Errorf("vocabulary repeats words")
	}
	if strings.Join(words, " ") != vocabulary[1:] || vocabulary[0] != ' ' {
		t.Errorf("vocabulary must be single-space separated words, each after a space")
	}
	for _, w := range words {
		if strings.Trim(w, "abcdefghijklmnopqrstuvwxyz") != "" {
			t.Errorf("word %q is not plain lowercase", w)
		}
	}
}

func TestGeneratedPromptWordCount(t *testing.T) {
	vocab := vocabularySet(t)
	for _, tokens := range []int{1, 2, 7, 8, 9, 16, 128, 1000, 1024} {
		for _, bust := range []bool{false, true} {
			src := NewPromptSource(PromptOptions{InputTokens: tokens, MaxTokens: 64, CacheBust: bust, Seed: 5})
			for n := range uint64(20) {
				r := src.Next(n)
				words := strings.Fields(r.Prompt)
				name := "tokens " + strconv.Itoa(tokens) + " bust " + strconv.FormatBool(bust) + " n " + strconv.FormatUint(n, 10)
				if len(words) != tokens || r.PromptTokens != tokens {
					t.Fatalf("%s: %d words, PromptTokens %d; want %d", name, len(words), r.PromptTokens, tokens)
				}
				if strings.Join(words, " ") != r.Prompt {
					t.Fatalf("%s: prompt is not single-space separated: %q", name, r.Prompt)
				}
				if r.MaxTokens != 64 || r.Adapter != "" {
					t.Fatalf("%s: MaxTokens %d, Adapter %q", name, r.MaxTokens, r.Adapter)
				}
				body := words
				if bust {
					if !nonceRE.MatchString(words[0]) {
						t.Fatalf("%s: first word %q is not a nonce", name, words[0])
					}
					body = words[1:]
				}
				for _, w := range body {
					if !vocab[w] {
						t.Fatalf("%s: word %q is not in the vocabulary", name, w)
					}
				}
			}
		}
	}
}

func TestCacheBustMakesPromptsUnique(t *testing.T) {
	tests := []struct {
		name string
		opts PromptOptions
	}{
		{"generated", PromptOptions{InputTokens: 4, CacheBust: true, Seed: 1}},
		{"fixed prompt", PromptOptions{Prompt: "say hi", CacheBust: true, Seed: 1}},
		{"empty prompt", PromptOptions{CacheBust: true, Seed: 1}},
	}
	for _, tc := range tests {
		src := NewPromptSource(tc.opts)
		seen := make(map[string]uint64)
		for n := range uint64(100_000) {
			nonce, _, _ := strings.Cut(src.Next(n).Prompt, " ")
			if !nonceRE.MatchString(nonce) {
				t.Fatalf("%s: n=%d starts with %q, not a nonce", tc.name, n, nonce)
			}
			if prev, dup := seen[nonce]; dup {
				t.Fatalf("%s: requests %d and %d share nonce %s", tc.name, prev, n, nonce)
			}
			seen[nonce] = n
		}
	}
}

func TestCacheBustVariesTheBody(t *testing.T) {
	src := NewPromptSource(PromptOptions{InputTokens: 64, CacheBust: true, Seed: 1})
	_, a, _ := strings.Cut(src.Next(0).Prompt, " ")
	_, b, _ := strings.Cut(src.Next(1).Prompt, " ")
	if a == b {
		t.Errorf("requests 0 and 1 share the words after the nonce: %q", a)
	}
}

func TestWithoutCacheBustPromptsRepeat(t *testing.T) {
	for _, opts := range []PromptOptions{
		{InputTokens: 32, Seed: 1},
		{Prompt: "  Explain\tKV caches \n briefly ", Seed: 1},
	} {
		src := NewPromptSource(opts)
		first := src.Next(0)
		for n := uint64(1); n < 50; n++ {
			if r := src.Next(n); !reflect.DeepEqual(r, first) {
				t.Fatalf("%+v: request %d = %+v, request 0 = %+v", opts, n, r, first)
			}
		}
	}
	a := NewPromptSource(PromptOptions{InputTokens: 32, Seed: 1}).Next(0).Prompt
	b := NewPromptSource(PromptOptions{InputTokens: 32, Seed: 2}).Next(0).Prompt
	if a == b {
		t.Errorf("seeds 1 and 2 generated the same fixed prompt")
	}
}

func TestFixedPrompt(t *testing.T) {
	tests := []struct {
		opts       PromptOptions
		wantTokens int
	}{
		{PromptOptions{Prompt: "  Explain\tKV caches \n briefly ", InputTokens: 500}, 4},
		{PromptOptions{Prompt: "  Explain\tKV caches \n briefly ", CacheBust: true}, 5},
		{PromptOptions{Prompt: "日本語 の テキスト"}, 3},
		{PromptOptions{}, 0},
		{PromptOptions{CacheBust: true}, 1},
		{PromptOptions{InputTokens: -3}, 0},
	}
	for _, tc := range tests {
		r := NewPromptSource(tc.opts).Next(9)
		if r.PromptTokens != tc.wantTokens || len(strings.Fields(r.Prompt)) != tc.wantTokens {
			t.Errorf("%+v: PromptTokens %d, %d words; want %d", tc.opts, r.PromptTokens, len(strings.Fields(r.Prompt)), tc.wantTokens)
		}
		if !strings.HasSuffix(r.Prompt, tc.opts.Prompt) {
			t.Errorf("%+v: prompt %q lost the configured text", tc.opts, r.Prompt)
		}
	}
}

func TestPromptSourceDeterminism(t *testing.T) {
	opts := PromptOptions{
		InputTokens: 48, CacheBust: true, Seed: 77,
		Adapters: []WeightedAdapter{{"a", 1}, {"b", 1}, {"c", 1}},
	}
	a, b := NewPromptSource(opts), NewPromptSource(opts)
	opts.Seed = 78
	c := NewPromptSource(opts)
	want := make([]Request, 300)
	for n := range want {
		want[n] = a.Next(uint64(n))
	}
	samePrompt, sameAdapter := 0, 0
	for i := len(want) - 1; i >= 0; i-- { // backwards: no hidden dependence on call order
		n := uint64(i)
		if got := b.Next(n); !reflect.DeepEqual(got, want[n]) {
			t.Fatalf("same seed, request %d: %+v, want %+v", n, got, want[n])
		}
		if got := a.Next(n); !reflect.DeepEqual(got, want[n]) {
			t.Fatalf("asked again, request %d: %+v, want %+v", n, got, want[n])
		}
		other := c.Next(n)
		if other.Prompt == want[n].Prompt {
			samePrompt++
		}
		if other.Adapter == want[n].Adapter {
			sameAdapter++
		}
	}
	// Adapters agree by chance a third of the time (100 ± 8 of 300); prompts never should.
	if samePrompt > 0 || sameAdapter > len(want)/2 {
		t.Errorf("seed 78 matched seed 77 in %d prompts and %d adapters of %d requests", samePrompt, sameAdapter, len(want))
	}
}

func TestAdapterSplit(t *testing.T) {
	const draws = 10_000
	tests := []struct {
		name     string
		adapters []WeightedAdapter
		want     map[string]float64
	}{
		{name: "none", want: map[string]float64{"": 1}},
		{name: "one", adapters: []WeightedAdapter{{"sql", 3}}, want: map[string]float64{"sql": 1}},
		{
			name:     "base and two adapters",
			adapters: []WeightedAdapter{{"", 1}, {"sql", 2}, {"chat", 1}},
			want:     map[string]float64{"": 0.25, "sql": 0.5, "chat": 0.25},
		},
		{
			name:     "skewed",
			adapters: []WeightedAdapter{{"big", 0.9}, {"small", 0.1}},
			want:     map[string]float64{"big": 0.9, "small": 0.1},
		},
		{
			name:     "unusable weights get nothing",
			adapters: []WeightedAdapter{{"zero", 0}, {"neg", -1}, {"nan", math.NaN()}, {"inf", math.Inf(1)}, {"x", 1}, {"y", 1}},
			want:     map[string]float64{"x": 0.5, "y": 0.5},
		},
		{
			name:     "all weights unusable",
			adapters: []WeightedAdapter{{"zero", 0}, {"neg", -1}},
			want:     map[string]float64{"": 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := NewPromptSource(PromptOptions{Prompt: "hi", Seed: 3, Adapters: tc.adapters})
			counts := make(map[string]int)
			for n := range uint64(draws) {
				counts[src.Next(n).Adapter]++
			}
			for name, c := range counts {
				if _, ok := tc.want[name]; !ok {
					t.Errorf("adapter %q chosen %d times, want never", name, c)
				}
			}
			// ±0.02 is four standard errors for a share of 0.5 over 10,000 draws.
			for name, share := range tc.want {
				if got := float64(counts[name]) / draws; math.Abs(got-share) > 0.02 {
					t.Errorf("adapter %q share %.4f, want %.2f ± 0.02", name, got, share)
				}
			}
		})
	}
}

func TestAdapterChoiceIsSeeded(t *testing.T) {
	adapters := []WeightedAdapter{{"a", 1}, {"b", 1}}
	seq := func(seed uint64) string {
		src := NewPromptSource(PromptOptions{Seed: seed, Adapters: adapters})
		var b strings.Builder
		for n := range uint64(200) {
			b.WriteString(src.Next(n).Adapter)
		}
		return b.String()
	}
	if first, again := seq(1), seq(1); first != again {
		t.Errorf("same seed chose different adapters")
	}
	if seq(1) == seq(2) {
		t.Errorf("seeds 1 and 2 chose the same 200 adapters")
	}
	// The choice has its own stream: changing the prompt options keeps the split.
	a := NewPromptSource(PromptOptions{Seed: 1, Adapters: adapters, InputTokens: 10, CacheBust: true})
	b := NewPromptSource(PromptOptions{Seed: 1, Adapters: adapters, Prompt: "hello"})
	for n := range uint64(200) {
		if a.Next(n).Adapter != b.Next(n).Adapter {
			t.Fatalf("request %d: adapter depends on the prompt options", n)
		}
	}
}

func TestPromptSourceCopiesAdapters(t *testing.T) {
	adapters := []WeightedAdapter{{"a", 1}}
	src := NewPromptSource(PromptOptions{Adapters: adapters})
	adapters[0].Name = "changed"
	if got := src.Next(0).Adapter; got != "a" {
		t.Errorf("Adapter = %q after the caller changed its slice; want a", got)
	}
}

func BenchmarkPromptSourceNext(b *testing.B) {
	for _, tokens := range []int{128, 1024} {
		for _, bust := range []bool{true, false} {
			name := "input_tokens=" + strconv.Itoa(tokens) + "/cache_bust=" + strconv.FormatBool(bust)
			b.Run(name, func(b *testing.B) {
				src := NewPromptSource(PromptOptions{
					InputTokens: tokens, MaxTokens: 128, CacheBust: bust, Seed: 1,
					Adapters: []WeightedAdapter{{"", 1}, {"a", 1}},
				})
				b.ReportAllocs()
				var n uint64
				for b.Loop() {
					src.Next(n)
					n++
				}
			})
		}
	}
}
