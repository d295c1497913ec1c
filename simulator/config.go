package simulator

import (
	"fmt"
	"strconv"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

// Config describes the simulated model server: its name, its timing model, its capacity and
// the faults it injects. The zero value is not useful; start from DefaultConfig.
type Config struct {
	// ModelName is the served model name: accepted in requests, listed by /v1/models and used
	// as the model_name label on /metrics.
	ModelName string
	// AcceptAnyModel answers requests for any model name (echoing the name back), as if every
	// name were a LoRA adapter of ModelName. When false, names other than ModelName and
	// Adapters get a 404 like vLLM's.
	AcceptAnyModel bool
	// Adapters are extra model names (LoRA adapters) that are always accepted and are listed
	// by /v1/models with ModelName as their parent.
	Adapters []string

	// TTFTBase is the prefill time of an empty prompt, counted from admission.
	TTFTBase time.Duration
	// TTFTPerPromptToken is the prefill time added per prompt token (see CountTokens).
	TTFTPerPromptToken time.Duration
	// ITL is the mean gap between two output tokens.
	ITL time.Duration
	// ITLJitter spreads each gap uniformly over ITL·(1±ITLJitter); 0 ≤ ITLJitter ≤ 1.
	ITLJitter float64
	// ITLPerRunningSeq is added to every gap per running sequence, a crude model of decode
	// batches slowing down as they grow; 0 disables it.
	ITLPerRunningSeq time.Duration

	// MaxNumSeqs caps the sequences running at once; later requests wait in a FIFO queue and
	// their wait counts into their TTFT (vLLM's --max-num-seqs).
	MaxNumSeqs int
	// KVCacheTokens is the KV cache capacity in tokens. A request is admitted only when its
	// prompt plus its max_tokens fits beside the reservations of the running ones, so no
	// preemption is ever needed; vllm:kv_cache_usage_perc reports the tokens actually held
	// (prompt plus generated so far) over this capacity.
	KVCacheTokens int
	// MaxModelLen is the context length: prompt plus max_tokens beyond it is a 400, like
	// vLLM's. It must not exceed KVCacheTokens.
	MaxModelLen int
	// DefaultMaxTokens is the output cap of requests that set neither max_tokens nor
	// max_completion_tokens (clamped to what the context leaves).
	DefaultMaxTokens int

	// Seed seeds the one random source that decides every request's faults, output length,
	// words and jitter, so a seed and an arrival order reproduce the same behaviour.
	Seed uint64

	// Error500Rate is the probability that a request is answered with a 500 before streaming.
	Error500Rate float64
	// Error429Rate is the probability that a request (not already failed with 500) is answered
	// with a 429 before streaming.
	Error429Rate float64
	// StallRate is the probability that a response pauses for StallDuration in the middle of
	// generation (before its first token when it has only one).
	StallRate float64
	// StallDuration is how long a stall lasts.
	StallDuration time.Duration
	// TruncateRate is the probability that a response ends midway: a stream stops without a
	// finish_reason, usage or [DONE]; a non-streaming body is cut short of its Content-Length.
	TruncateRate float64
	// MalformedRate is the probability that a stream carries one event whose JSON is invalid,
	// after which it goes on normally; a non-streaming body is invalid JSON instead.
	MalformedRate float64

	// AbortRate is the probability that a stream ends with finish_reason "abort" after its
	// tokens, as vLLM ends a request it aborted.
	AbortRate float64
	// EmptyRate is the probability that a stream carries no token at all: only "data: [DONE]".
	EmptyRate float64
	// ResetRate is the probability that the connection is dropped before the response headers.
	ResetRate float64
	// ResetMidStreamRate is the probability that the connection is dropped after the first
	// token chunk, without a finish.
	ResetMidStreamRate float64

	// ChunkTokens is how many tokens each SSE chunk carries (vLLM's and SGLang's
	// stream_interval, speculative decoding, a gateway that coalesces flushes): tokens are
	// produced one per ITL and sent when ChunkTokens of them are ready (the last chunk may be
	// shorter). 0 or 1 sends every token at once.
	ChunkTokens int

	// StatsSize is how many recent requests Stats keeps (a ring); 0 keeps none.
	StatsSize int

	// SpeedBump is the host overhead a speed-bump delay is injected into (SpeedBump).
	SpeedBump SpeedBump
}

// DefaultConfig returns the configuration the `inferprobe simulate` flags default to: a small
// fast model with 20 ms base TTFT, 10 ms ITL and no faults.
func DefaultConfig() Config {
	return Config{
		ModelName:          "inferprobe-sim",
		AcceptAnyModel:     true,
		TTFTBase:           20 * time.Millisecond,
		TTFTPerPromptToken: 50 * time.Microsecond,
		ITL:                10 * time.Millisecond,
		ITLJitter:          0.1,
		MaxNumSeqs:         64,
		KVCacheTokens:      262144,
		MaxModelLen:        32768,
		DefaultMaxTokens:   64,
		StallDuration:      time.Second,
		StatsSize:          10000,
		SpeedBump:          SpeedBump{Frequency: 1, CallsPerStep: 1},
	}
}

// validate checks every field and names the first bad one (with its flag) in the error.
func (c *Config) validate() error {
	bad := func(field, flag, format string, args ...any) error {
		return fmt.Errorf("simulator: %s (--%s) %s", field, flag, fmt.Sprintf(format, args...))
	}
	if c.ModelName == "" {
		return bad("ModelName", "model", "must not be empty")
	}
	for i, a := range c.Adapters {
		if a == "" {
			return bad(fmt.Sprintf("Adapters[%d]", i), "lora-adapter", "must not be empty")
		}
	}
	durations := []struct {
		field, flag string
		v           time.Duration
	}{
		{"TTFTBase", "ttft-base", c.TTFTBase},
		{"TTFTPerPromptToken", "ttft-per-prompt-token", c.TTFTPerPromptToken},
		{"ITL", "itl", c.ITL},
		{"ITLPerRunningSeq", "itl-per-running-seq", c.ITLPerRunningSeq},
		{"StallDuration", "stall-duration", c.StallDuration},
	}
	for _, d := range durations {
		if d.v < 0 {
			return bad(d.field, d.flag, "must not be negative, got %s", d.v)
		}
	}
	ratios := []struct {
		field, flag string
		v           float64
	}{
		{"ITLJitter", "itl-jitter", c.ITLJitter},
		{"Error500Rate", "error-500-rate", c.Error500Rate},
		{"Error429Rate", "error-429-rate", c.Error429Rate},
		{"StallRate", "stall-rate", c.StallRate},
		{"TruncateRate", "truncate-rate", c.TruncateRate},
		{"MalformedRate", "malformed-rate", c.MalformedRate},
		{"AbortRate", "abort-rate", c.AbortRate},
		{"EmptyRate", "empty-rate", c.EmptyRate},
		{"ResetRate", "reset-rate", c.ResetRate},
		{"ResetMidStreamRate", "reset-mid-stream-rate", c.ResetMidStreamRate},
	}
	for _, r := range ratios {
		// The negated form also rejects NaN.
		if !(r.v >= 0 && r.v <= 1) {
			return bad(r.field, r.flag, "must be between 0 and 1, got %v", r.v)
		}
	}
	if c.StallRate > 0 && c.StallDuration == 0 {
		return bad("StallDuration", "stall-duration", "must be positive when StallRate is set")
	}
	if c.MaxNumSeqs < 1 {
		return bad("MaxNumSeqs", "max-num-seqs", "must be at least 1, got %d", c.MaxNumSeqs)
	}
	if c.KVCacheTokens < 1 {
		return bad("KVCacheTokens", "kv-cache-tokens", "must be at least 1, got %d", c.KVCacheTokens)
	}
	if c.MaxModelLen < 1 || c.MaxModelLen > c.KVCacheTokens {
		return bad("MaxModelLen", "max-model-len", "must be between 1 and KVCacheTokens (%d), got %d", c.KVCacheTokens, c.MaxModelLen)
	}
	if c.DefaultMaxTokens < 1 {
		return bad("DefaultMaxTokens", "default-max-tokens", "must be at least 1, got %d", c.DefaultMaxTokens)
	}
	if c.ChunkTokens < 0 {
		return bad("ChunkTokens", "chunk-tokens", "must not be negative, got %d", c.ChunkTokens)
	}
	if c.StatsSize < 0 {
		return bad("StatsSize", "stats-size", "must not be negative, got %d", c.StatsSize)
	}
	return nil
}

// AddFlags registers the simulator's flags on cmd (the `inferprobe simulate` subcommand),
// with defaults from DefaultConfig, and returns the Config they fill in when the command line
// is parsed. Pass it to New after parsing.
func AddFlags(cmd *kingpin.CmdClause) *Config {
	cfg := DefaultConfig()
	d := func(v time.Duration) string { return v.String() }
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	i := strconv.Itoa

	cmd.Flag("model", "Served model name (accepted, listed by /v1/models, model_name label).").
		Default(cfg.ModelName).StringVar(&cfg.ModelName)
	cmd.Flag("accept-any-model", "Answer for any requested model name, as if it were a LoRA adapter; otherwise unknown names get 404.").
		Default(strconv.FormatBool(cfg.AcceptAnyModel)).BoolVar(&cfg.AcceptAnyModel)
	cmd.Flag("lora-adapter", "Extra accepted model name listed by /v1/models (repeatable).").
		StringsVar(&cfg.Adapters)
	cmd.Flag("ttft-base", "Prefill time of an empty prompt, from admission to the first token.").
		Default(d(cfg.TTFTBase)).DurationVar(&cfg.TTFTBase)
	cmd.Flag("ttft-per-prompt-token", "Prefill time added per prompt token (one token per whitespace-separated word).").
		Default(d(cfg.TTFTPerPromptToken)).DurationVar(&cfg.TTFTPerPromptToken)
	cmd.Flag("itl", "Mean inter-token latency.").
		Default(d(cfg.ITL)).DurationVar(&cfg.ITL)
	cmd.Flag("itl-jitter", "Uniform jitter of each gap as a ratio of --itl (0..1).").
		Default(f(cfg.ITLJitter)).FloatVar(&cfg.ITLJitter)
	cmd.Flag("itl-per-running-seq", "Added to every gap per running sequence (batch slowdown); 0 disables.").
		Default(d(cfg.ITLPerRunningSeq)).DurationVar(&cfg.ITLPerRunningSeq)
	cmd.Flag("max-num-seqs", "Sequences running at once; the rest wait in a FIFO queue.").
		Default(i(cfg.MaxNumSeqs)).IntVar(&cfg.MaxNumSeqs)
	cmd.Flag("kv-cache-tokens", "KV cache capacity in tokens.").
		Default(i(cfg.KVCacheTokens)).IntVar(&cfg.KVCacheTokens)
	cmd.Flag("max-model-len", "Context length: prompt plus max_tokens beyond it is rejected with 400.").
		Default(i(cfg.MaxModelLen)).IntVar(&cfg.MaxModelLen)
	cmd.Flag("default-max-tokens", "Output cap of requests that set no max_tokens.").
		Default(i(cfg.DefaultMaxTokens)).IntVar(&cfg.DefaultMaxTokens)
	cmd.Flag("seed", "Seed of the random source behind lengths, words, jitter and faults.").
		Default(strconv.FormatUint(cfg.Seed, 10)).Uint64Var(&cfg.Seed)
	cmd.Flag("error-500-rate", "Probability of answering 500 before streaming.").
		Default(f(cfg.Error500Rate)).FloatVar(&cfg.Error500Rate)
	cmd.Flag("error-429-rate", "Probability of answering 429 before streaming.").
		Default(f(cfg.Error429Rate)).FloatVar(&cfg.Error429Rate)
	cmd.Flag("stall-rate", "Probability of pausing a response for --stall-duration mid-generation.").
		Default(f(cfg.StallRate)).FloatVar(&cfg.StallRate)
	cmd.Flag("stall-duration", "Length of an injected stall.").
		Default(d(cfg.StallDuration)).DurationVar(&cfg.StallDuration)
	cmd.Flag("truncate-rate", "Probability of ending a response midway (no finish_reason, no [DONE]).").
		Default(f(cfg.TruncateRate)).FloatVar(&cfg.TruncateRate)
	cmd.Flag("malformed-rate", "Probability of sending one event with invalid JSON in a stream.").
		Default(f(cfg.MalformedRate)).FloatVar(&cfg.MalformedRate)
	cmd.Flag("abort-rate", "Probability of ending a stream with finish_reason abort.").
		Default(f(cfg.AbortRate)).FloatVar(&cfg.AbortRate)
	cmd.Flag("empty-rate", "Probability of a stream with no token, only data: [DONE].").
		Default(f(cfg.EmptyRate)).FloatVar(&cfg.EmptyRate)
	cmd.Flag("reset-rate", "Probability of dropping the connection before the response headers.").
		Default(f(cfg.ResetRate)).FloatVar(&cfg.ResetRate)
	cmd.Flag("reset-mid-stream-rate", "Probability of dropping the connection after the first token chunk.").
		Default(f(cfg.ResetMidStreamRate)).FloatVar(&cfg.ResetMidStreamRate)
	cmd.Flag("chunk-tokens", "Tokens per SSE chunk (stream_interval); 1 sends each token at once.").
		Default(i(cfg.ChunkTokens)).IntVar(&cfg.ChunkTokens)
	cmd.Flag("stats-size", "Recent requests kept for ground-truth statistics; 0 keeps none.").
		Default(i(cfg.StatsSize)).IntVar(&cfg.StatsSize)
	addSpeedBumpFlags(cmd, &cfg.SpeedBump)
	return &cfg
}
