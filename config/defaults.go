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
	// HTTPTransportBuiltin is Target.HTTPTransport's value for inferprobe's own HTTP/1.1
	// transport, the default of http:// targets.
	HTTPTransportBuiltin = "builtin"
	// HTTPTransportNetHTTP is Target.HTTPTransport's value for Go's net/http transport, the
	// only one of https:// targets.
	HTTPTransportNetHTTP = "net/http"
	// DefaultIdleConnTimeout is Target.IdleConnTimeout's default: below uvicorn's 5 s keep-alive.
	DefaultIdleConnTimeout = 4 * time.Second
	// DefaultRecoveryFailures is Warmup.RecoveryFailures's default.
	DefaultRecoveryFailures = 2
	// DefaultMaxResponseBytes is Target.MaxResponseBytes's default: 16 MiB.
	DefaultMaxResponseBytes = 16 << 20
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

// ApplyDefaults fills every unset (zero) field of a Config built in code with its default, the
// same way Parse does for a file, the extensions' defaults included. Parse is more precise:
// there a field written explicitly as zero keeps that zero (and validation then reports it
// where it is invalid), while here zero always means unset.
func (c *Config) ApplyDefaults(ext ...Extension) {
	applyDefaults(c, nil)
	applyExtensionDefaults(c, nil, ext)
}

// applyExtensionDefaults runs every extension's Defaults on every target.
func applyExtensionDefaults(c *Config, set map[string]bool, ext []Extension) {
	for i := range c.Targets {
		given := givenFunc(set, i)
		for _, e := range ext {
			e.Defaults(&c.Targets[i], given)
		}
	}
}

// givenFunc reports, for target i, whether the file set a field given by its path relative to
// the target; with a nil set (a Config built in code) nothing was set.
func givenFunc(set map[string]bool, i int) func(string) bool {
	prefix := fmt.Sprintf("targets[%d].", i)
	return func(field string) bool { return set[prefix+field] }
}

// applyDefaults fills unset fields. set reports whether the file gave a path a value; with a
// nil set, a zero value means unset.
func applyDefaults(c *Config, set map[string]bool) {
	applyExperimentDefaults(c.Experiment, set)
	applySweepDefaults(c.Sweep, set)
	for i := range c.Targets {
		t := &c.Targets[i]
		p := fmt.Sprintf("targets[%d].", i)
		unset := func(field string, zero bool) bool { return zero && !set[p+field] }

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
		if unset("idle_conn_timeout", t.IdleConnTimeout == 0) {
			t.IdleConnTimeout = DefaultIdleConnTimeout
		}
		if unset("max_response_bytes", t.MaxResponseBytes == 0) {
			t.MaxResponseBytes = DefaultMaxResponseBytes
		}

		tr := &t.Traffic
		if unset("traffic.max_in_flight", tr.MaxInFlight == 0) {
			tr.MaxInFlight = DefaultMaxInFlight
		}

		rq := &t.Request
		if unset("request.max_tokens", rq.MaxTokens == 0) && rq.OutputTokens.IsZero() {
			rq.MaxTokens = DefaultMaxTokens
		}
		if unset("request.input_tokens", rq.InputTokens.IsZero()) && unset("request.prompt", rq.Prompt == "") {
			rq.InputTokens = FixedTokens(DefaultInputTokens)
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
		if w.RecoveryFailures == nil {
			n := DefaultRecoveryFailures
			w.RecoveryFailures = &n
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
