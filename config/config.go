// Package config defines inferprobe's YAML configuration: its schema, defaults, strict parsing
// and validation. Every error names the field path and the line it comes from.
package config

import (
	"time"
)

// API flavours a target can speak.
const (
	APIOpenAIChat        = "openai-chat"
	APIOpenAICompletions = "openai-completions"
)

// Pacer kinds.
const (
	PacerConstant = "constant"
	PacerPoisson  = "poisson"
)

// Config is the whole configuration file.
type Config struct {
	// Targets are the endpoints to probe, each with its own traffic.
	Targets []Target `yaml:"targets"`
}

// Target is one inference endpoint and the traffic sent to it.
type Target struct {
	// Name identifies the target; it becomes the `target` label and must be unique.
	Name string `yaml:"name"`
	// URL is the server root, e.g. http://127.0.0.1:8000 (the API path is appended).
	URL string `yaml:"url"`
	// Path overrides the API path appended to URL (default by API: /v1/chat/completions or /v1/completions).
	Path string `yaml:"path"`
	// API is the request flavour: openai-chat or openai-completions.
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
	// MaxResponseBytes caps the size of one response body.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`

	// TLS configures the client side of TLS.
	TLS TLS `yaml:"tls"`
	// Traffic says when to send.
	Traffic Traffic `yaml:"traffic"`
	// Request says what to send.
	Request Request `yaml:"request"`
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
	// Pacer is the arrival process: constant or poisson.
	Pacer string `yaml:"pacer"`
	// Rate is the mean request rate in requests per second.
	Rate float64 `yaml:"rate"`
	// MaxInFlight caps concurrent requests; arrivals beyond it are dropped and counted.
	MaxInFlight int `yaml:"max_in_flight"`
	// Seed makes arrivals and generated prompts reproducible; 0 picks one at start (and logs it).
	Seed int64 `yaml:"seed"`
}

// Request configures the body of each request.
type Request struct {
	// Prompt is a fixed prompt; exclusive with InputTokens.
	Prompt string `yaml:"prompt"`
	// InputTokens asks for a generated prompt of about this many tokens.
	InputTokens int `yaml:"input_tokens"`
	// MaxTokens caps the output (max_tokens).
	MaxTokens int `yaml:"max_tokens"`
	// IgnoreEOS asks servers that support it (vLLM, SGLang, TGI) to generate exactly MaxTokens.
	IgnoreEOS bool `yaml:"ignore_eos"`
	// Temperature is the sampling temperature; nil leaves it to the server.
	Temperature *float64 `yaml:"temperature"`
	// ExtraBody is merged into the JSON body at the top level (it wins over generated keys).
	ExtraBody map[string]any `yaml:"extra_body"`
	// CacheBust prefixes every prompt with a unique nonce so prefix caches cannot hide prefill
	// cost. Default true.
	CacheBust *bool `yaml:"cache_bust"`
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
	// Engine selects the naming table: auto, vllm, sglang, tgi, llamacpp, triton-trtllm, trtllm-serve.
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
