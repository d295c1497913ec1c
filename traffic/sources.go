package traffic

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/inferprobe/inferprobe/config"
)

// Request sources, as the configuration chooses them (SourceKinds lists them for the docs).
const (
	// SourceGenerated is the default: a fixed prompt or generated words (request.prompt,
	// input_tokens).
	SourceGenerated = "generated"
	// SourceTrace sends the lengths of the trace rows the trace pacer replays.
	SourceTrace = "trace"
	// SourceDataset sends prompts sampled from request.dataset.
	SourceDataset = "dataset"
	// SourceSharedPrefix sends request.shared_prefix's groups of prompts.
	SourceSharedPrefix = "shared_prefix"
)

// SourceKind is one registered request source: its name, the request key that selects it and
// what it is. Like the pacers, validation (through ConfigExtension) and construction
// (NewSource) read the one table.
type SourceKind struct {
	// Name identifies the source.
	Name string
	// Key is the request (or traffic) key that selects it; "" for the default.
	Key string
	// Summary is the one-line description docs/configuration.md carries.
	Summary string
	// Tokenized reports that the source generates its words, so request.tokenizer can make
	// its lengths exact (a dataset's prompts are the file's text).
	Tokenized bool

	selected func(t config.Target) bool
	check    func(t config.Target, report config.Reporter)
	build    func(t config.Target, plan Plan, o sourceOptions) (Source, error)
}

// sourceOptions are what every source shares: the seed, the adapters, cache busting and the
// tokenizer (nil without request.tokenizer).
type sourceOptions struct {
	seed      uint64
	adapters  []WeightedAdapter
	cacheBust bool
	tokenizer *Tokenizer
}

func sourceKinds() []SourceKind {
	return []SourceKind{
		{Name: SourceTrace, Key: "traffic.trace", Summary: "Each request sends its trace row's input length (generated words, Mooncake hash ids as shared blocks) and output length; chosen by `pacer: trace`.",
			Tokenized: true,
			selected:  func(t config.Target) bool { return t.Traffic.Pacer == KindTrace },
			check:     func(config.Target, config.Reporter) {},
			build: func(_ config.Target, plan Plan, o sourceOptions) (Source, error) {
				if plan.Replay == nil {
					return nil, fmt.Errorf("traffic: the trace source needs the trace plan")
				}
				return NewReplaySource(plan.Replay, ReplaySourceOptions{CacheBust: o.cacheBust, Tokenizer: o.tokenizer, Seed: o.seed, Adapters: o.adapters}), nil
			}},
		{Name: SourceDataset, Key: "request.dataset", Summary: "Prompts sampled from a ShareGPT or JSONL file, with their output lengths.",
			selected: func(t config.Target) bool { return t.Request.Dataset != nil },
			check:    checkDataset, build: buildDataset},
		{Name: SourceSharedPrefix, Key: "request.shared_prefix", Summary: "Groups of prompts sharing a system prompt, to exercise prefix caches.",
			Tokenized: true,
			selected:  func(t config.Target) bool { return t.Request.SharedPrefix != nil },
			check:     checkSharedPrefix, build: buildSharedPrefix},
		{Name: SourceGenerated, Summary: "A fixed `prompt`, or generated prompts of `input_tokens` words (a number or a distribution), with `max_tokens` or `output_tokens`.",
			Tokenized: true,
			selected:  func(config.Target) bool { return true },
			check: func(t config.Target, report config.Reporter) {
				if c := t.Request.Conversation; c != nil && (c.Turns < 2 || c.Turns > MaxTurns) {
					report("request.conversation.turns", "must be ≥ 2 and ≤ %d (it bounds the turn label), not %d", MaxTurns, c.Turns)
				}
			},
			build: func(t config.Target, _ Plan, o sourceOptions) (Source, error) {
				opts := PromptOptions{Tokenizer: o.tokenizer, Prompt: t.Request.Prompt, InputTokens: t.Request.InputTokens.N,
					MaxTokens: t.Request.MaxTokens, CacheBust: o.cacheBust, Seed: o.seed, Adapters: o.adapters,
					InputLengths: lengthsOf(t.Request.InputTokens, o.seed, "input_tokens"), OutputLengths: lengthsOf(t.Request.OutputTokens, o.seed, "output_tokens")}
				if t.Request.OutputTokens.Dist == nil && t.Request.OutputTokens.N > 0 {
					opts.MaxTokens = t.Request.OutputTokens.N
				}
				return NewPromptSource(opts), nil
			}},
	}
}

// SourceKinds returns the registered request sources, in the order they are chosen.
func SourceKinds() []SourceKind { return sourceKinds() }

// sourceFor returns the source t selects: the first in registry order.
func sourceFor(t config.Target) SourceKind {
	kinds := sourceKinds()
	for _, k := range kinds {
		if k.selected(t) {
			return k
		}
	}
	return kinds[len(kinds)-1]
}

// NewSource builds the request source of a validated target from the registry: plan is the
// target's plan (a trace plan's source reads its rows), seed the source's seed. Sources that
// read files read them here, so a bad file fails the build (and a reload keeps what runs).
func NewSource(t config.Target, plan Plan, seed uint64) (Source, error) {
	var adapters []WeightedAdapter
	for _, a := range t.Request.LoRATrafficSplit {
		adapters = append(adapters, WeightedAdapter{Name: a.Name, Weight: a.Split})
	}
	o := sourceOptions{seed: seed, adapters: adapters, cacheBust: t.Request.CacheBust == nil || *t.Request.CacheBust}
	kind := sourceFor(t)
	if kind.Tokenized && t.Request.Tokenizer != "" {
		var err error
		if o.tokenizer, err = LoadTokenizer(t.Request.Tokenizer); err != nil {
			return nil, err
		}
	}
	return kind.build(t, plan, o)
}

// checkSources reports sources that exclude each other and each selected source's own fields.
func checkSources(t *config.Target, given func(string) bool, report config.Reporter) {
	var chosen []string
	for _, k := range sourceKinds() {
		if k.Key != "" && k.selected(*t) {
			chosen = append(chosen, k.Key)
		}
	}
	if len(chosen) > 1 {
		report(chosen[1], "cannot be used together with %s: choose one request source", chosen[0])
		return
	}
	kind := sourceFor(*t)
	if len(chosen) == 1 {
		for _, f := range []string{"request.prompt", "request.input_tokens", "request.output_tokens", "request.tokenizer", "request.conversation"} {
			if f == "request.tokenizer" && kind.Tokenized {
				continue // it makes the source's generated words exact
			}
			if given(f) {
				report(f, "is not used with %s: the prompts come from there", chosen[0])
			}
		}
	}
	if kind.Tokenized && t.Request.Tokenizer != "" {
		checkFile("request.tokenizer", t.Request.Tokenizer, report)
	}
	kind.check(*t, report)
}

func checkDataset(t config.Target, report config.Reporter) {
	ds := t.Request.Dataset
	checkFile("request.dataset.file", ds.File, report)
	format := ds.Format
	switch format {
	case DatasetShareGPT, DatasetJSONL:
	case "":
		if DatasetFormatFor(ds.File) == "" {
			report("request.dataset.format", "is required: the extension of %s implies no format (sharegpt for .json, jsonl for .jsonl)", config.Quote(filepath.Base(ds.File)))
		}
	default:
		report("request.dataset.format", "must be %s or %s, not %s", DatasetShareGPT, DatasetJSONL, config.Quote(format))
	}
	bound := func(field string, lo, hi int) {
		if lo < 0 || lo > config.MaxTokensLimit {
			report("request.dataset.min_"+field, "must be ≥ 0 and ≤ %d", config.MaxTokensLimit)
		}
		if hi < 0 || hi > config.MaxTokensLimit {
			report("request.dataset.max_"+field, "must be ≥ 0 and ≤ %d", config.MaxTokensLimit)
		} else if hi > 0 && hi < lo {
			report("request.dataset.max_"+field, "%d is below min_%s (%d)", hi, field, lo)
		}
	}
	bound("input_tokens", ds.MinInputTokens, ds.MaxInputTokens)
	bound("output_tokens", ds.MinOutputTokens, ds.MaxOutputTokens)
}

// checkFile reports a file that cannot be read; its content is read when the target is built.
func checkFile(field, path string, report config.Reporter) {
	if path == "" {
		report(field, "is required")
		return
	}
	if fi, err := os.Stat(path); err != nil {
		report(field, "cannot be read: %v", err)
	} else if !fi.Mode().IsRegular() {
		report(field, "%s is not a regular file", config.Quote(path))
	}
}

func buildDataset(t config.Target, _ Plan, o sourceOptions) (Source, error) {
	ds := t.Request.Dataset
	d, err := LoadDataset(ds.File, ds.Format, DatasetFilter{MinInput: ds.MinInputTokens, MaxInput: ds.MaxInputTokens,
		MinOutput: ds.MinOutputTokens, MaxOutput: ds.MaxOutputTokens}, nil, ds.SkipInvalid)
	if err != nil {
		return nil, err
	}
	return NewDatasetSource(d, DatasetSourceOptions{MaxTokens: t.Request.MaxTokens, CacheBust: o.cacheBust, Seed: o.seed, Adapters: o.adapters}), nil
}

// MaxTurns bounds request.conversation.turns: the turn label of the per-turn TTFT takes one
// value per turn.
const MaxTurns = 64

// MaxSharedPrefixGroups bounds shared_prefix.groups and prompts_per_group.
const MaxSharedPrefixGroups = 1 << 20

func checkSharedPrefix(t config.Target, report config.Reporter) {
	sp := t.Request.SharedPrefix
	for _, f := range []struct {
		name  string
		v     int
		limit int
	}{
		{"groups", sp.Groups, MaxSharedPrefixGroups},
		{"prompts_per_group", sp.PromptsPerGroup, MaxSharedPrefixGroups},
		{"system_prompt_tokens", sp.SystemPromptTokens, config.MaxTokensLimit},
		{"question_tokens", sp.QuestionTokens, config.MaxTokensLimit},
	} {
		if f.v < 1 || f.v > f.limit {
			report("request.shared_prefix."+f.name, "must be ≥ 1 and ≤ %d, not %d", f.limit, f.v)
		}
	}
}

func buildSharedPrefix(t config.Target, _ Plan, o sourceOptions) (Source, error) {
	sp := t.Request.SharedPrefix
	return NewSharedPrefixSource(SharedPrefixOptions{Groups: sp.Groups, PromptsPerGroup: sp.PromptsPerGroup,
		SystemPromptTokens: sp.SystemPromptTokens, QuestionTokens: sp.QuestionTokens, MaxTokens: t.Request.MaxTokens,
		Tokenizer: o.tokenizer, CacheBust: o.cacheBust, Seed: o.seed, Adapters: o.adapters}), nil
}

// SharedPrefixOptions configure NewSharedPrefixSource.
type SharedPrefixOptions struct {
	// Groups is the number of distinct system prompts; PromptsPerGroup the number of distinct
	// questions per group (without cache busting).
	Groups, PromptsPerGroup int
	// SystemPromptTokens and QuestionTokens are the two parts' lengths in words (with a
	// Tokenizer, in its tokens: every word is one).
	SystemPromptTokens, QuestionTokens int
	// Tokenizer, when set, makes every word one of its tokens (see Tokenizer), the nonce
	// included, so both parts are exactly their lengths in that model's tokens.
	Tokenizer *Tokenizer
	// MaxTokens is copied into every request.
	MaxTokens int
	// CacheBust makes every question unique (it starts with a nonce); the system prompts are
	// shared either way, which is the point.
	CacheBust bool
	// Seed makes the words and the adapter choice reproducible.
	Seed uint64
	// Adapters optionally splits the traffic over LoRA adapters.
	Adapters []WeightedAdapter
}

// NewSharedPrefixSource returns a Source of prompts made of a group's system prompt and a
// question: request n belongs to group n mod Groups (so consecutive requests cycle through the
// groups) and asks question (n / Groups) mod PromptsPerGroup of it. Chat APIs get a system and
// a user message; Prompt holds both joined by a space. Requests of one group share exactly the
// system prompt's words as a prefix. It is a pure function of (options, n).
func NewSharedPrefixSource(opts SharedPrefixOptions) Source {
	return &sharedPrefixSource{opts: opts, words: newWordTable(opts.Tokenizer), nonceKey: mix64(opts.Seed ^ streamNonce),
		split: newAdapterSplit(opts.Adapters, mix64(opts.Seed^streamAdapters))}
}

type sharedPrefixSource struct {
	opts     SharedPrefixOptions
	words    wordTable
	nonceKey uint64
	split    adapterSplit
}

func (s *sharedPrefixSource) Next(n uint64) Request {
	groups, per := uint64(max(s.opts.Groups, 1)), uint64(max(s.opts.PromptsPerGroup, 1))
	g, q := n%groups, (n/groups)%per
	var p rand.PCG
	var sys, question strings.Builder
	sys.Grow(s.opts.SystemPromptTokens * 7)
	seedPCG(&p, hashIndex(s.opts.Seed, g), streamBlock)
	s.words.appendWords(&sys, &p, s.opts.SystemPromptTokens)
	left := s.opts.QuestionTokens
	question.Grow(left * 7)
	if s.opts.CacheBust && left > 0 {
		k := s.words.nonceWordsFor(left)
		s.words.writeNonce(&question, hashIndex(s.nonceKey, n), k)
		left -= k
		seedPCG(&p, hashIndex(s.opts.Seed, n), streamWords)
	} else {
		seedPCG(&p, hashIndex(s.opts.Seed, g*per+q), streamFixed)
	}
	s.words.appendWords(&question, &p, left)
	return Request{
		Prompt:       sys.String() + " " + question.String(),
		Messages:     []Message{{Role: "system", Content: sys.String()}, {Role: "user", Content: question.String()}},
		PromptTokens: s.opts.SystemPromptTokens + s.opts.QuestionTokens,
		MaxTokens:    s.opts.MaxTokens,
		Adapter:      s.split.pick(n),
	}
}
