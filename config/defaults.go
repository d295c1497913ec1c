package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Defaults of the fields whose zero value is not a usable setting. docs/configuration.md lists
// them too and changes with them.
const (
	// DefaultTimeout is Target.Timeout's default.
	DefaultTimeout = 60 * time.Second
	// DefaultConnectTimeout is Target.ConnectTimeout's default (lowered to Timeout if that is smaller).
	DefaultConnectTimeout = 5 * time.Second
	// DefaultIdleTimeout is Target.IdleTimeout's default (lowered to Timeout if that is smaller).
	DefaultIdleTimeout = 30 * time.Second
	// DefaultMaxResponseBytes is Target.MaxResponseBytes's default: 16 MiB.
	DefaultMaxResponseBytes = 16 << 20
	// DefaultRate is Traffic.Rate's default, in requests per second.
	DefaultRate = 1.0
	// DefaultMaxInFlight is Traffic.MaxInFlight's default.
	DefaultMaxInFlight = 64
	// DefaultMaxTokens is Request.MaxTokens's default.
	DefaultMaxTokens = 64
	// DefaultInputTokens is Request.InputTokens's default when no prompt is given.
	DefaultInputTokens = 128
	// DefaultWarmupRequests is Warmup.Requests's default.
	DefaultWarmupRequests = 5
	// DefaultWarmupMin is Warmup.MinDuration's default (lowered to MaxDuration if that is smaller).
	DefaultWarmupMin = 10 * time.Second
	// DefaultWarmupMax is Warmup.MaxDuration's default (raised to MinDuration if that is larger).
	DefaultWarmupMax = 5 * time.Minute
	// DefaultSLOTargetRatio is SLO.TargetRatio's default: 99% of requests good.
	DefaultSLOTargetRatio = 0.99
	// DefaultSLOWindow is SLO.Window's default: 30 days, the window the SRE workbook's burn-rate
	// table (14.4, 6, 3, 1) is written for.
	DefaultSLOWindow = 30 * 24 * time.Hour
	// MinSLOWindow is the shortest SLO.Window: the longest burn-rate alert window (3 days), so
	// that every alert measures a fraction of one budget.
	MinSLOWindow = 3 * 24 * time.Hour
	// DefaultRegressionFactor is SLO.RegressionFactor's default: above the ±20% a diurnal
	// pattern moves a quantile, below the 2× of a clear regression.
	DefaultRegressionFactor = 1.5
	// DefaultMetricsInterval is Metrics.Interval's default.
	DefaultMetricsInterval = 15 * time.Second
	// DefaultMetricsTimeout is Metrics.Timeout's default (lowered to Interval if that is smaller).
	DefaultMetricsTimeout = 10 * time.Second
	// DefaultMetricsEngine is Metrics.Engine's default: detect the engine from its metric names.
	DefaultMetricsEngine = "auto"
)

// DefaultPath returns the API path appended to a target's URL when path is not set, or "" for
// an unknown API.
func DefaultPath(api string) string {
	switch api {
	case APIOpenAIChat:
		return "/v1/chat/completions"
	case APIOpenAICompletions:
		return "/v1/completions"
	}
	return ""
}

// ApplyDefaults fills every unset (zero) field of a Config built in code with its default, the
// same way Parse does for a file. Parse is more precise: there a field written explicitly as
// zero keeps that zero (and validation then reports it where it is invalid), while here zero
// always means unset.
func (c *Config) ApplyDefaults() {
	applyDefaults(c, nil)
}

// applyDefaults fills unset fields. set reports whether the file gave a path a value; with a
// nil set, a zero value means unset.
func applyDefaults(c *Config, set map[string]bool) {
	for i := range c.Targets {
		t := &c.Targets[i]
		p := fmt.Sprintf("targets[%d].", i)
		unset := func(field string, zero bool) bool { return zero && !set[p+field] }

		if unset("api", t.API == "") {
			t.API = APIOpenAIChat
		}
		if unset("path", t.Path == "") {
			t.Path = DefaultPath(t.API)
		}
		if unset("timeout", t.Timeout == 0) {
			t.Timeout = DefaultTimeout
		}
		// The per-phase timeouts never default above the overall timeout, so that setting only
		// "timeout: 2s" is valid.
		if unset("connect_timeout", t.ConnectTimeout == 0) {
			t.ConnectTimeout = capAt(DefaultConnectTimeout, t.Timeout)
		}
		if unset("first_byte_timeout", t.FirstByteTimeout == 0) {
			t.FirstByteTimeout = t.Timeout
			if t.FirstByteTimeout <= 0 {
				t.FirstByteTimeout = DefaultTimeout
			}
		}
		if unset("idle_timeout", t.IdleTimeout == 0) {
			t.IdleTimeout = capAt(DefaultIdleTimeout, t.Timeout)
		}
		if unset("max_response_bytes", t.MaxResponseBytes == 0) {
			t.MaxResponseBytes = DefaultMaxResponseBytes
		}

		tr := &t.Traffic
		if unset("traffic.pacer", tr.Pacer == "") {
			tr.Pacer = PacerConstant
		}
		if unset("traffic.rate", tr.Rate == 0) {
			tr.Rate = DefaultRate
		}
		if unset("traffic.max_in_flight", tr.MaxInFlight == 0) {
			tr.MaxInFlight = DefaultMaxInFlight
		}

		rq := &t.Request
		if unset("request.max_tokens", rq.MaxTokens == 0) {
			rq.MaxTokens = DefaultMaxTokens
		}
		if unset("request.input_tokens", rq.InputTokens == 0) && unset("request.prompt", rq.Prompt == "") {
			rq.InputTokens = DefaultInputTokens
		}
		if rq.CacheBust == nil {
			on := true
			rq.CacheBust = &on
		}

		w := &t.Warmup
		minGiven := !unset("warmup.min_duration", w.MinDuration == 0)
		maxGiven := !unset("warmup.max_duration", w.MaxDuration == 0)
		if unset("warmup.requests", w.Requests == 0) {
			w.Requests = DefaultWarmupRequests
		}
		// As with timeouts, a default never contradicts the bound the user did set.
		if !minGiven {
			w.MinDuration = DefaultWarmupMin
			if maxGiven && w.MaxDuration > 0 {
				w.MinDuration = min(w.MinDuration, w.MaxDuration)
			}
		}
		if !maxGiven {
			w.MaxDuration = max(DefaultWarmupMax, w.MinDuration)
		}

		sl := &t.SLO
		if unset("slo.target_ratio", sl.TargetRatio == 0) {
			sl.TargetRatio = DefaultSLOTargetRatio
		}
		if unset("slo.window", sl.Window == 0) {
			sl.Window = DefaultSLOWindow
		}
		if unset("slo.regression_factor", sl.RegressionFactor == 0) {
			sl.RegressionFactor = DefaultRegressionFactor
		}

		if m := t.Metrics; m != nil {
			if unset("metrics.url", m.URL == "") && checkHTTPURL(t.URL) == "" {
				m.URL = strings.TrimRight(t.URL, "/") + "/metrics"
			}
			if unset("metrics.interval", m.Interval == 0) {
				m.Interval = DefaultMetricsInterval
			}
			if unset("metrics.timeout", m.Timeout == 0) {
				m.Timeout = capAt(DefaultMetricsTimeout, m.Interval)
			}
			if unset("metrics.engine", m.Engine == "") {
				m.Engine = DefaultMetricsEngine
			}
		}
	}
}

// capAt returns d, lowered to limit when limit is a usable (positive) bound below it.
func capAt(d, limit time.Duration) time.Duration {
	if limit > 0 && limit < d {
		return limit
	}
	return d
}

// Default returns the built-in configuration the daemon runs when it is given no file: one
// target, "simulator", probing the embedded simulator at simulatorURL (e.g.
// "http://127.0.0.1:8000") gently enough that a newcomer sees every series within seconds.
func Default(simulatorURL string) *Config {
	c := &Config{Targets: []Target{{
		Name:  "simulator",
		URL:   simulatorURL,
		API:   APIOpenAIChat,
		Model: "inferprobe-sim",
		Traffic: Traffic{
			Pacer: PacerConstant,
			Rate:  1,
		},
		Request: Request{
			InputTokens: 128,
			MaxTokens:   32,
			IgnoreEOS:   true,
		},
		Warmup: Warmup{
			Requests:    3,
			MinDuration: 2 * time.Second,
			MaxDuration: time.Minute,
		},
		// The simulator serves vLLM-style metrics, so the server-side series show up too.
		Metrics: &Metrics{Engine: "vllm"},
	}}}
	c.ApplyDefaults()
	return c
}

// RequestURL returns the URL requests are sent to: the target URL with the API path appended.
func (t Target) RequestURL() string {
	return strings.TrimRight(t.URL, "/") + t.Path
}

// checkHTTPURL returns why s is not a usable absolute http(s) URL without credentials, query
// or fragment, or "" when it is. It never repeats the URL, which could hold a password.
func checkHTTPURL(s string) string {
	if s == "" {
		return "required"
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the whole URL; keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			return "is not a valid URL: " + ue.Err.Error()
		}
		return "is not a valid URL"
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an absolute http:// or https:// URL"
	case u.Opaque != "" || u.Host == "":
		return "must include a host, e.g. http://127.0.0.1:8000"
	case u.User != nil:
		return "must not contain credentials (user:password@): use headers, api_key_file or api_key_env"
	case u.RawQuery != "" || u.ForceQuery:
		return "must not contain a query (?...)"
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "must not contain a fragment (#...)"
	case u.Hostname() == "":
		return "must include a host, e.g. http://127.0.0.1:8000"
	}
	if p := u.Port(); p != "" {
		var n int
		if _, err := fmt.Sscan(p, &n); err != nil || n < 1 || n > 65535 {
			return "has an invalid port " + quote(p)
		}
	}
	return ""
}
