// Package config defines inferprobe's YAML configuration: its schema, defaults, strict parsing
// and validation. Every error names the field path and the line it comes from.
package config

import (
	"time"
)

// Config is the whole configuration file.
//
// The kinds that other packages register — API flavours (prober), pacers (traffic) and
// model-server engines (collector/server) — are not known here: their names, the defaults
// that depend on them and their checks come in through Extensions (see Extension), which the
// engine package supplies to Load and Parse.
type Config struct {
	// BaseSeed, when not 0, derives the seed of every target that sets no traffic.seed of its
	// own (from the base seed and the target name), so one number reproduces every target's
	// request sequence.
	BaseSeed int64 `yaml:"base_seed"`
	// Targets are the endpoints to probe, each with its own traffic.
	Targets []Target `yaml:"targets"`
	// Experiment is read by `inferprobe sensitivity` only; nil when absent.
	Experiment *Experiment `yaml:"experiment"`
	// Sweep is read by `inferprobe run` only: a sweep to saturation instead of each target's
	// stages; nil when absent.
	Sweep *Sweep `yaml:"sweep"`
	// OTel configures the OTLP export (metrics, and spans when traces is set); nil when
	// absent, when the OTEL_EXPORTER_OTLP_* environment variables alone decide.
	OTel *OTel `yaml:"otel"`
	// Warnings lists settings that are valid but cannot work as meant (for example a warmup
	// that cannot complete at the configured rate), each naming its field and line. Validation
	// fills it; the daemon logs it at load.
	Warnings Errors `yaml:"-" json:"-"`
}

// Target is one inference endpoint and the traffic sent to it.
type Target struct {
	// Name identifies the target; it becomes the `target` label and must be unique.
	Name string `yaml:"name"`
	// URL is the server root, e.g. http://127.0.0.1:8000 (the API path is appended).
	URL string `yaml:"url"`
	// Path overrides the API path appended to URL (default by API: /v1/chat/completions or /v1/completions).
	Path string `yaml:"path"`
	// API is the request flavour, one of the names the prober registers (e.g. openai-chat).
	API string `yaml:"api"`
	// Model is the model name sent in each request and the `model` label.
	Model string `yaml:"model"`
	// Headers are extra HTTP headers sent with every request.
	Headers map[string]string `yaml:"headers"`
	// APIKeyFile names a file whose trimmed content is sent as a bearer token.
	APIKeyFile string `yaml:"api_key_file"`
	// APIKeyEnv names an environment variable whose value is sent as a bearer token.
	APIKeyEnv string `yaml:"api_key_env"`
	// APIKey is the loaded secret (from APIKeyFile or APIKeyEnv); never set from YAML, never printed.
	APIKey Secret `yaml:"-"`

	// Timeout bounds a whole request, from write to end of stream.
	Timeout time.Duration `yaml:"timeout"`
	// ConnectTimeout bounds dialing (and the TLS handshake).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// FirstByteTimeout bounds the wait for response headers after the request is written.
	FirstByteTimeout time.Duration `yaml:"first_byte_timeout"`
	// IdleTimeout bounds the gap between two reads of the response body (including before the first token).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// IdleConnTimeout is how long an idle keep-alive connection is kept for the next request.
	// It defaults below the 5 s after which uvicorn-based servers (SGLang, trtllm-serve, many
	// gateways) close idle connections, so a request is not sent on a closing one.
	IdleConnTimeout time.Duration `yaml:"idle_conn_timeout"`
	// MaxResponseBytes caps the size of one response body.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
	// HTTPTransport picks the HTTP client of an http:// target: builtin (the default there),
	// inferprobe's own HTTP/1.1 transport that reads each response on the request's goroutine,
	// or net/http, Go's standard one. https:// targets always use net/http (TLS, HTTP/2).
	HTTPTransport string `yaml:"http_transport"`

	// TLS configures the client side of TLS.
	TLS TLS `yaml:"tls"`
	// Traffic says when to send.
	Traffic Traffic `yaml:"traffic"`
	// Request says what to send.
	Request Request `yaml:"request"`
	// KServe configures the tensors of api kserve-grpc.
	KServe KServe `yaml:"kserve"`
	// Warmup configures the gate that holds measurement back until the server is warm.
	Warmup Warmup `yaml:"warmup"`
	// SLO holds the thresholds a successful request must meet to count as goodput.
	SLO SLO `yaml:"slo"`
	// Metrics configures the scrape of the model server's own /metrics (optional).
	Metrics *Metrics `yaml:"metrics"`
}

// TLS is the client TLS configuration of a target.
type TLS struct {
	// CAFile is a PEM bundle of CAs to trust instead of the system pool.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and key for mutual TLS.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM key for CertFile.
	KeyFile string `yaml:"key_file"`
	// ServerName overrides the name checked in the server certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate verification.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Traffic configures the arrival process of one target.
type Traffic struct {
	// Pacer is the arrival process, one of the kinds the traffic package registers
	// (constant, poisson, gamma, concurrent, stages).
	Pacer string `yaml:"pacer"`
	// Rate is the mean request rate in requests per second (open-loop pacers).
	Rate float64 `yaml:"rate"`
	// Burstiness is the gamma pacer's shape: 1 is Poisson, below 1 burstier, above 1 more regular.
	Burstiness float64 `yaml:"burstiness"`
	// Concurrency is the number of requests the concurrent (closed-loop) pacer keeps in flight.
	Concurrency int `yaml:"concurrency"`
	// Stages are the steps of the stages pacer, run one after another (looping in the daemon).
	Stages []Stage `yaml:"stages"`
	// Trace is the file the trace pacer replays: its rows give the arrivals and each
	// request's input and output lengths.
	Trace *Trace `yaml:"trace"`
	// MaxInFlight caps concurrent requests; arrivals beyond it are dropped and counted.
	MaxInFlight int `yaml:"max_in_flight"`
	// Seed makes arrivals and generated prompts reproducible; 0 picks one at start (and logs it).
	Seed int64 `yaml:"seed"`
}

// Stage is one step of the stages pacer: either an open-loop rate or a closed-loop
// concurrency, for a duration.
type Stage struct {
	// Rate is the stage's mean request rate in requests per second (open loop).
	Rate float64 `yaml:"rate"`
	// Concurrency is the number of requests kept in flight during the stage (closed loop).
	Concurrency int `yaml:"concurrency"`
	// Duration is how long the stage lasts.
	Duration time.Duration `yaml:"duration"`
	// Pacer is the arrival process of a rate stage (constant, poisson or gamma; default constant).
	Pacer string `yaml:"pacer"`
	// Burstiness is the gamma shape of a gamma stage.
	Burstiness float64 `yaml:"burstiness"`
}

// Trace configures the replay of a request trace (the trace pacer).
type Trace struct {
	// File is the trace on disk; relative to the configuration file's directory.
	File string `yaml:"file"`
	// Format is azure (the AzurePublicDataset CSV) or mooncake (JSONL); by default it follows
	// the file's extension (.csv is azure, .jsonl mooncake).
	Format string `yaml:"format"`
	// TimeScale divides the trace's gaps: 10 replays ten times faster. Default 1.
	TimeScale float64 `yaml:"time_scale"`
	// StartOffset skips the rows of the first StartOffset of trace time (before scaling).
	StartOffset time.Duration `yaml:"start_offset"`
	// Loop replays the trace forever, each pass starting where the last ended. Default true
	// (one-shot runs replay it once).
	Loop *bool `yaml:"loop"`
	// SkipInvalid skips (and counts) malformed rows instead of rejecting the file.
	SkipInvalid bool `yaml:"skip_invalid"`
}

// LoRAAdapter is one entry of a LoRA traffic split.
type LoRAAdapter struct {
	// Name is the adapter sent as the request's model (the base model may be an entry too).
	Name string `yaml:"name"`
	// Split is the entry's share of the requests; the shares of a split sum to 1.
	Split float64 `yaml:"split"`
}

// Request configures the body of each request.
type Request struct {
	// Prompt is a fixed prompt; exclusive with InputTokens.
	Prompt string `yaml:"prompt"`
	// InputTokens asks for a generated prompt of about this many tokens: a number, or a
	// distribution each request draws its length from.
	InputTokens Tokens `yaml:"input_tokens"`
	// MaxTokens caps the output (max_tokens).
	MaxTokens int `yaml:"max_tokens"`
	// Tokenizer is a Hugging Face tokenizer.json on disk; with it, generated, trace and
	// shared-prefix prompts are exactly their lengths in that model's tokens instead of
	// words. Relative to the configuration file's directory.
	Tokenizer string `yaml:"tokenizer"`
	// OutputTokens, when given, sets each request's max_tokens from a number or a
	// distribution (with ignore_eos, the output length); exclusive with MaxTokens.
	OutputTokens Tokens `yaml:"output_tokens"`
	// IgnoreEOS asks servers that support it (vLLM, SGLang, TGI) to generate exactly MaxTokens.
	IgnoreEOS bool `yaml:"ignore_eos"`
	// ContinuousUsageStats asks for usage on every chunk (stream_options.continuous_usage_stats,
	// vLLM and SGLang), so each chunk's token count is exact and ITL is per token even when a
	// chunk carries several. Default true; set false for a server that rejects the option.
	ContinuousUsageStats *bool `yaml:"continuous_usage_stats"`
	// Stream, true unless set, asks for a streamed answer; false sends a non-streaming request,
	// which measures end-to-end latency and tokens only (no TTFT, TPOT or ITL).
	Stream *bool `yaml:"stream"`
	// AllowEmpty makes a cleanly finished stream without any token chunk a success (for probes
	// that expect no output); by default it is the result class empty.
	AllowEmpty bool `yaml:"allow_empty"`
	// Temperature is the sampling temperature; nil leaves it to the server.
	Temperature *float64 `yaml:"temperature"`
	// ExtraBody is merged into the JSON body at the top level (it wins over generated keys).
	ExtraBody map[string]any `yaml:"extra_body"`
	// CacheBust prefixes every prompt with a unique nonce so prefix caches cannot hide prefill
	// cost. Default true.
	CacheBust *bool `yaml:"cache_bust"`
	// LoRATrafficSplit spreads the requests over LoRA adapters by share; each request picks
	// one from the target's seed and sends its name as the model (label `adapter`).
	LoRATrafficSplit []LoRAAdapter `yaml:"lora_traffic_split"`
	// Dataset sends prompts sampled from a data set file instead of generated ones.
	Dataset *Dataset `yaml:"dataset"`
	// SharedPrefix sends groups of prompts that share a system prompt, to exercise prefix caches.
	SharedPrefix *SharedPrefix `yaml:"shared_prefix"`
	// Conversation makes every request a multi-turn session that resends the whole history.
	Conversation *Conversation `yaml:"conversation"`
}

// Conversation configures multi-turn sessions: turn k sends the prompt, every earlier
// question and the server's real answers, so the server can reuse turn k-1's KV cache.
type Conversation struct {
	// Turns is the number of requests per session.
	Turns int `yaml:"turns"`
	// ThinkTime is the pause between an answer and the next turn.
	ThinkTime time.Duration `yaml:"think_time"`
}

// Tokens is a length in tokens: a plain number in the file, or a distribution given as a
// mapping ({dist, mean, stddev, min, max}) from which each request draws its own length.
type Tokens struct {
	// N is the length given as a number; 0 when a distribution is given or nothing is.
	N int
	// Dist is the distribution given as a mapping; nil for a number.
	Dist *LengthDist
}

// FixedTokens returns the length n as a plain number.
func FixedTokens(n int) Tokens { return Tokens{N: n} }

// IsZero reports whether neither a number nor a distribution is given.
func (t Tokens) IsZero() bool { return t.N == 0 && t.Dist == nil }

// LengthDist is a distribution of lengths in tokens. Draws are rounded to whole tokens and
// kept within [Min, Max].
type LengthDist struct {
	// Dist is fixed (always Mean), uniform (between Min and Max), normal or lognormal (with
	// Mean and Stddev the mean and standard deviation of the lengths themselves).
	Dist string `yaml:"dist"`
	// Mean is the mean length (fixed, normal, lognormal).
	Mean float64 `yaml:"mean"`
	// Stddev is the standard deviation (normal, lognormal).
	Stddev float64 `yaml:"stddev"`
	// Min is the least length (default 1); required for uniform.
	Min int `yaml:"min"`
	// Max is the greatest length (default MaxTokensLimit); required for uniform.
	Max int `yaml:"max"`
}

// Dataset is a file of prompts (nothing is downloaded at run time); each request sends an
// entry sampled from the target's seed.
type Dataset struct {
	// File is the data set on disk; relative to the configuration file's directory.
	File string `yaml:"file"`
	// Format is sharegpt (the ShareGPT JSON) or jsonl; by default it follows the extension
	// (.json is sharegpt, .jsonl jsonl).
	Format string `yaml:"format"`
	// MinInputTokens and MaxInputTokens keep only entries whose prompt length is within them
	// (0: no bound).
	MinInputTokens int `yaml:"min_input_tokens"`
	MaxInputTokens int `yaml:"max_input_tokens"`
	// MinOutputTokens and MaxOutputTokens keep only entries whose output length is within
	// them (0: no bound).
	MinOutputTokens int `yaml:"min_output_tokens"`
	MaxOutputTokens int `yaml:"max_output_tokens"`
	// SkipInvalid skips (and counts) malformed entries instead of rejecting the file.
	SkipInvalid bool `yaml:"skip_invalid"`
}

// SharedPrefix configures prompts made of a per-group system prompt and a question.
type SharedPrefix struct {
	// Groups is the number of distinct system prompts.
	Groups int `yaml:"groups"`
	// PromptsPerGroup is the number of distinct questions per group (without cache busting).
	PromptsPerGroup int `yaml:"prompts_per_group"`
	// SystemPromptTokens is the length of each group's shared system prompt.
	SystemPromptTokens int `yaml:"system_prompt_tokens"`
	// QuestionTokens is the length of each request's question.
	QuestionTokens int `yaml:"question_tokens"`
}

// Warmup configures the warmup gate.
type Warmup struct {
	// Requests is the number of successful requests needed before the gate opens.
	Requests int `yaml:"requests"`
	// MinDuration is the least time the gate stays closed.
	MinDuration time.Duration `yaml:"min_duration"`
	// MaxDuration forces the gate open (with a warning) if it is still closed after this long.
	MaxDuration time.Duration `yaml:"max_duration"`
	// StableWithin, when > 0, also requires the median TTFT of the last window of requests to
	// differ from the window before it by less than this ratio (0.1 = 10%).
	StableWithin float64 `yaml:"stable_within"`
	// RecoveryFailures is how many consecutive connection failures (probe requests or metrics
	// scrapes), followed by a success, are taken as a model-server restart that re-arms the
	// gate. 0 turns that signal off.
	RecoveryFailures *int `yaml:"recovery_failures"`
}

// SLO holds per-request latency objectives; zero means not set.
type SLO struct {
	// TTFT is the time-to-first-token objective.
	TTFT time.Duration `yaml:"ttft"`
	// TPOT is the time-per-output-token objective.
	TPOT time.Duration `yaml:"tpot"`
	// E2E is the end-to-end request duration objective.
	E2E time.Duration `yaml:"e2e"`
	// TargetRatio is the share of requests that must be good (goodput, and availability) over
	// Window: the objective the burn-rate alerts spend the error budget 1 − TargetRatio of.
	TargetRatio float64 `yaml:"target_ratio"`
	// Window is the period the error budget covers. The burn-rate alert thresholds scale with
	// it, so one rule file serves targets with different windows.
	Window time.Duration `yaml:"window"`
	// RegressionFactor is how many times its baseline a latency quantile must reach before the
	// regression alerts fire.
	RegressionFactor float64 `yaml:"regression_factor"`
}

// Metrics configures the scrape of a model server's own Prometheus metrics.
type Metrics struct {
	// URL is the metrics endpoint; default <target url>/metrics.
	URL string `yaml:"url"`
	// Interval is the time between scrapes.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one scrape.
	Timeout time.Duration `yaml:"timeout"`
	// Engine selects the naming table: auto or one of the engines collector/server registers.
	Engine string `yaml:"engine"`
	// Passthrough lists regexes of server metric names re-exposed raw.
	Passthrough []string `yaml:"passthrough"`
}

// Secret is a string that never prints: its String, GoString and YAML/JSON forms are redacted.
type Secret string

const redacted = "<secret>"

// String returns a redacted placeholder.
func (s Secret) String() string { return redacted }

// GoString returns a redacted placeholder, so %#v cannot leak it either.
func (s Secret) GoString() string { return redacted }

// MarshalYAML redacts the secret.
func (s Secret) MarshalYAML() (any, error) { return redacted, nil }

// MarshalJSON redacts the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Value returns the secret itself, for the one place that must send it.
func (s Secret) Value() string { return string(s) }

// Streaming reports whether requests ask for a streamed answer (stream, true unless set).
func (r Request) Streaming() bool { return r.Stream == nil || *r.Stream }
