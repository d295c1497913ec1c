package config

import (
	"net/url"
	"path/filepath"
	"sort"
	"time"
)

// OTLP protocols (otel.protocol), as OTEL_EXPORTER_OTLP_PROTOCOL names them.
const (
	OTelGRPC         = "grpc"
	OTelHTTPProtobuf = "http/protobuf"
)

// OTLP temporality preferences (otel.temporality).
const (
	OTelCumulative = "cumulative"
	OTelDelta      = "delta"
)

// OTel is the top-level otel block: the same series pushed over OTLP, the GenAI
// semantic-convention client metrics and, when Traces is set, a span per request. Fields left
// empty fall back to the standard OTEL_* environment variables, then to the defaults below
// (collector/otlp resolves them); the block may be left out altogether when the environment
// names an endpoint.
type OTel struct {
	// Endpoint is the collector's base URL, read as OTEL_EXPORTER_OTLP_ENDPOINT is: http://
	// means plaintext, https:// TLS; for http/protobuf the signal paths /v1/metrics and
	// /v1/traces are appended to its path.
	Endpoint string `yaml:"endpoint"`
	// Protocol is grpc or http/protobuf (default grpc).
	Protocol string `yaml:"protocol"`
	// Headers are sent with every export (e.g. an authorisation token); their values come
	// from a file or an environment variable and are never printed.
	Headers map[string]OTelHeader `yaml:"headers"`
	// Interval is how often metrics are exported (default 10s).
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds each export (default 10s, at most Interval).
	Timeout time.Duration `yaml:"timeout"`
	// TLS configures the connection to an https:// endpoint.
	TLS TLS `yaml:"tls"`
	// Resource holds resource attributes; service.name defaults to inferprobe. They are
	// merged over OTEL_RESOURCE_ATTRIBUTES (and OTEL_SERVICE_NAME).
	Resource map[string]string `yaml:"resource"`
	// Temporality is cumulative (default) or delta for the counters and histograms: the GenAI
	// instruments' and the bridged Prometheus series' (turned into deltas by the exporter).
	Temporality string `yaml:"temporality"`
	// Traces, when set, records one span per probe request (off when absent).
	Traces *OTelTraces `yaml:"traces"`
}

// OTelHeader is one export header's value source: exactly one of ValueFile and ValueEnv.
type OTelHeader struct {
	// ValueFile names a file whose trimmed content is the header value.
	ValueFile string `yaml:"value_file"`
	// ValueEnv names an environment variable whose trimmed value is the header value.
	ValueEnv string `yaml:"value_env"`
	// Value is the loaded value; never set from YAML, never printed.
	Value Secret `yaml:"-"`
}

// OTelTraces configures per-request spans.
type OTelTraces struct {
	// SamplingRatio is the fraction of requests that get a span and a sampled traceparent,
	// decided on the trace ID as TraceIDRatioBased does (default 1).
	SamplingRatio *float64 `yaml:"sampling_ratio"`
}

// Ratio returns the sampling ratio, 1 when unset.
func (t *OTelTraces) Ratio() float64 {
	if t == nil || t.SamplingRatio == nil {
		return 1
	}
	return *t.SamplingRatio
}

// resolveOTelPaths makes the otel block's file paths absolute, relative to dir.
func resolveOTelPaths(o *OTel, dir string) {
	if o == nil {
		return
	}
	for _, p := range []*string{&o.TLS.CAFile, &o.TLS.CertFile, &o.TLS.KeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	for k, h := range o.Headers {
		if h.ValueFile != "" && !filepath.IsAbs(h.ValueFile) {
			h.ValueFile = filepath.Join(dir, h.ValueFile)
			o.Headers[k] = h
		}
	}
}

// otel checks the otel block. Defaults are not applied here: the environment decides what an
// empty field means, when the exporter starts.
func (v *validator) otel(o *OTel, l loc) {
	if o == nil {
		return
	}
	if o.Endpoint != "" {
		ep := v.at(l, "endpoint")
		u, err := url.Parse(o.Endpoint)
		switch {
		case err != nil:
			v.errorf(ep, "not a URL: %v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			v.errorf(ep, "must start with http:// (plaintext) or https:// (TLS), not %s", quote(o.Endpoint))
		case u.Host == "":
			v.errorf(ep, "has no host: %s", quote(o.Endpoint))
		case u.RawQuery != "" || u.Fragment != "":
			v.errorf(ep, "must not hold a query or fragment")
		}
	}
	switch o.Protocol {
	case "", OTelGRPC, OTelHTTPProtobuf:
	default:
		v.errorf(v.at(l, "protocol"), "must be %s or %s, not %s", OTelGRPC, OTelHTTPProtobuf, quote(o.Protocol))
	}
	switch o.Temporality {
	case "", OTelCumulative, OTelDelta:
	default:
		v.errorf(v.at(l, "temporality"), "must be %s or %s, not %s", OTelCumulative, OTelDelta, quote(o.Temporality))
	}
	if o.Interval < 0 || (o.Interval > 0 && o.Interval < 100*time.Millisecond) {
		v.errorf(v.at(l, "interval"), "must be at least 100ms, not %v", o.Interval)
	}
	if o.Timeout < 0 {
		v.errorf(v.at(l, "timeout"), "must not be negative")
	} else if o.Interval > 0 && o.Timeout > o.Interval {
		v.errorf(v.at(l, "timeout"), "%v is longer than interval %v: an export would still run when the next one starts", o.Timeout, o.Interval)
	}
	v.tls(o.TLS, v.at(l, "tls"))
	hl := v.at(l, "headers")
	for _, name := range sortedKeys(o.Headers) {
		h := o.Headers[name]
		at := v.at(hl, name)
		switch {
		case !validHeaderName(name):
			v.errorf(at, "%s is not a valid header name", quote(name))
		case (h.ValueFile == "") == (h.ValueEnv == ""):
			v.errorf(at, "set exactly one of value_file and value_env")
		}
	}
	rl := v.at(l, "resource")
	for _, k := range sortedKeys(o.Resource) {
		if k == "" || hasControl(k) || hasControl(o.Resource[k]) {
			v.errorf(v.at(rl, k), "resource attribute names and values must be non-empty text without control characters")
		}
	}
	if o.Traces != nil && o.Traces.SamplingRatio != nil {
		if r := *o.Traces.SamplingRatio; !(r >= 0 && r <= 1) {
			v.errorf(v.at(v.at(l, "traces"), "sampling_ratio"), "must be between 0 and 1, not %v", r)
		}
	}
}

// loadOTelSecrets loads the export header values; the errors name the field, never the value.
func loadOTelSecrets(o *OTel, getenv func(string) string, v *validator) {
	if o == nil {
		return
	}
	hl := v.at(v.at(v.locate(loc{}, ""), "otel"), "headers")
	for _, name := range sortedKeys(o.Headers) {
		h := o.Headers[name]
		h.Value = v.secret(v.at(hl, name), "value", h.ValueFile, h.ValueEnv, getenv, "")
		o.Headers[name] = h
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
