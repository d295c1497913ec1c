package traffic

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// MaxTimeScale bounds traffic.trace.time_scale: beyond it even a day-long trace is replayed
// in under a tenth of a second, which is a typo rather than a replay.
const MaxTimeScale = 1e6

// Replay is a trace prepared for one target: the rows from the start offset on, with their
// gaps divided by the time scale. It gives the open-loop arrivals (Pacer, Plan) and, through
// NewReplaySource, each request's lengths, so arrivals and sizes come from the same rows.
// Request n of a replay is row Row(n): passes over the rows follow one another, and pass c's
// offsets are pass 0's plus c × Span.
type Replay struct {
	trace *Trace
	first int     // the first row replayed
	base  int64   // the replay's start point in trace time (ns from the first row)
	scale float64 // trace gaps are divided by it
	span  time.Duration
	loop  bool
}

// NewReplay prepares t for replay: the rows at or after startOffset (trace time, from the first
// row), at scale times the trace's speed, looping forever when loop is set.
//
// One pass lasts Span: from the start point to the last row, plus the mean gap between the
// replayed rows, so a looping replay keeps the trace's mean rate and a pass never starts at the
// instant the last one ended with a request. Looping needs at least two rows that are not all
// at the same instant.
func NewReplay(t *Trace, scale float64, startOffset time.Duration, loop bool) (*Replay, error) {
	if !(scale > 0 && scale <= MaxTimeScale) {
		return nil, fmt.Errorf("trace %s: time_scale must be > 0 and ≤ %g, not %g", t.Name, float64(MaxTimeScale), scale)
	}
	if startOffset < 0 {
		return nil, fmt.Errorf("trace %s: start_offset must be ≥ 0, not %v", t.Name, startOffset)
	}
	first := 0
	for first < len(t.at) && t.at[first] < int64(startOffset) {
		first++
	}
	rows := len(t.at) - first
	if rows == 0 {
		return nil, fmt.Errorf("trace %s: start_offset %v is past the last row (at %v)", t.Name, startOffset, time.Duration(t.at[len(t.at)-1]))
	}
	r := &Replay{trace: t, first: first, base: int64(startOffset), scale: scale, loop: loop}
	last := t.at[len(t.at)-1]
	var meanGap float64
	if rows > 1 {
		meanGap = float64(last-t.at[first]) / float64(rows-1)
	}
	r.span = time.Duration(math.Round((float64(last-r.base) + meanGap) / scale))
	if loop && (rows < 2 || meanGap/scale < float64(time.Microsecond) || r.offset(len(t.at)-1) >= r.span) {
		return nil, fmt.Errorf("trace %s: cannot loop: it needs at least two rows from start_offset on, spread over time (mean gap after scaling ≥ 1µs)", t.Name)
	}
	return r, nil
}

// Trace returns the replayed trace.
func (r *Replay) Trace() *Trace { return r.trace }

// Rows returns the number of rows one pass replays.
func (r *Replay) Rows() int { return len(r.trace.at) - r.first }

// Span returns the scaled length of one pass.
func (r *Replay) Span() time.Duration { return r.span }

// Loop reports whether the replay repeats forever.
func (r *Replay) Loop() bool { return r.loop }

// Row returns the trace row that request n sends (its lengths and hash ids).
func (r *Replay) Row(n uint64) int { return r.first + int(n%uint64(r.Rows())) }

// Rate returns the replay's mean rate in requests per second.
func (r *Replay) Rate() float64 {
	if r.span <= 0 {
		return 0
	}
	return float64(r.Rows()) / r.span.Seconds()
}

// offset returns trace row i's scaled offset from the replay's start point.
func (r *Replay) offset(i int) time.Duration {
	return time.Duration(math.Round(float64(r.trace.at[i]-r.base) / r.scale))
}

// Pacer returns the arrivals of one pass: request n (n < Rows) is due at its row's scaled
// offset, and the pacer ends after the last row. Looping is the plan's (see Plan). Next is an
// array read and a division: no allocation, O(1) for any n.
func (r *Replay) Pacer() Pacer { return tracePacer{r} }

// Plan returns the replay as a plan: one open-loop phase of the pass's arrivals, lasting Span
// and repeated forever when looping (the run loop starts pass c at c × Span, so pass c's
// offsets are pass 0's plus c × Span), or open-ended and ending after the last row otherwise.
func (r *Replay) Plan() Plan {
	ph := Phase{Rate: r.Rate(), pacer: r.Pacer()}
	if r.loop {
		ph.Duration = r.span
	}
	return Plan{Phases: []Phase{ph}, Loop: r.loop, Replay: r}
}

type tracePacer struct{ r *Replay }

func (p tracePacer) Next(n uint64) (time.Duration, bool) {
	if n >= uint64(p.r.Rows()) {
		return 0, false
	}
	return p.r.offset(p.r.first + int(n)), true
}

func (p tracePacer) Rate(time.Duration) float64 { return p.r.Rate() }

// ReplaySourceOptions configure NewReplaySource.
type ReplaySourceOptions struct {
	// CacheBust starts every prompt without shared blocks with a unique nonce; without it,
	// such prompts are prefixes of one fixed word sequence (a prefix cache sees reuse).
	CacheBust bool
	// Tokenizer, when set, makes every word one of its tokens (see Tokenizer), so a row's
	// prompt is exactly its input length in that model's tokens and a Mooncake block exactly
	// MooncakeBlockTokens of them; the nonce is then words too.
	Tokenizer *Tokenizer
	// Seed makes the prompts and the adapter choice reproducible.
	Seed uint64
	// Adapters optionally splits the traffic over LoRA adapters.
	Adapters []WeightedAdapter
}

// NewReplaySource returns the Source of a replay: request n sends row Row(n) with a generated
// prompt of exactly the row's input length in words (PromptTokens the same; the simulator
// counts one token per word, and with a Tokenizer each word is one of its tokens) and
// MaxTokens the row's output length.
//
// A Mooncake row's prompt is made of its hash ids' blocks: block k covers words
// [512k, 512(k+1)) and its words are a pure function of (seed, tokenizer, hash id), so requests
// with equal leading hash ids share exactly those blocks as a prompt prefix (a row's last block
// may be partial: it is then a prefix of the full block). Words beyond the blocks, and the
// prompts of rows without hash ids, are drawn per request (after a nonce, with CacheBust).
func NewReplaySource(r *Replay, opts ReplaySourceOptions) Source {
	return &replaySource{
		r:         r,
		cacheBust: opts.CacheBust,
		wordKey:   opts.Seed,
		nonceKey:  mix64(opts.Seed ^ streamNonce),
		split:     newAdapterSplit(opts.Adapters, mix64(opts.Seed^streamAdapters)),
		words:     newWordTable(opts.Tokenizer),
	}
}

type replaySource struct {
	r                 *Replay
	cacheBust         bool
	wordKey, nonceKey uint64
	split             adapterSplit
	words             wordTable
}

func (s *replaySource) Next(n uint64) Request {
	row := s.r.Row(n)
	_, in, out := s.r.trace.Row(row)
	hashes := s.r.trace.HashIDs(row)
	var b strings.Builder
	b.Grow(in * 7) // the vocabulary's mean word is about 5.5 bytes with its space
	left := in
	var p rand.PCG
	for _, h := range hashes {
		k := min(left, MooncakeBlockTokens)
		seedPCG(&p, hashIndex(s.wordKey, h), streamBlock)
		s.words.appendWords(&b, &p, k)
		left -= k
	}
	switch {
	case left == 0:
	case len(hashes) > 0 || s.cacheBust:
		seedPCG(&p, hashIndex(s.wordKey, n), streamWords)
		if len(hashes) == 0 {
			k := s.words.nonceWordsFor(left)
			s.words.writeNonce(&b, hashIndex(s.nonceKey, n), k)
			left -= k
		}
		s.words.appendWords(&b, &p, left)
	default:
		seedPCG(&p, s.wordKey, streamFixed)
		s.words.appendWords(&b, &p, left)
	}
	return Request{Prompt: b.String(), PromptTokens: in, MaxTokens: out, Adapter: s.split.pick(n)}
}
