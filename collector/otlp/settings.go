// Package otlp pushes inferprobe's telemetry over OTLP: the Prometheus registry bridged into a
// periodic metric reader (one source of truth for both), the GenAI semantic-convention client
// metrics and, optionally, one span per probe request whose W3C trace context travels to the
// server as a traceparent header. A dead or stalled collector never slows probing: records
// reach the exporter through a bounded queue, exports run on goroutines of their own with a
// timeout, and what is lost is counted.
package otlp

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/inferprobe/inferprobe/config"
)

// Defaults of what neither the configuration nor the environment sets.
const (
	DefaultInterval    = 10 * time.Second
	DefaultTimeout     = 10 * time.Second
	DefaultServiceName = "inferprobe"
	// DefaultQueueLimit bounds the records waiting to become GenAI measurements and spans:
	// at 100 req/s, over two minutes of a stalled exporter goroutine.
	DefaultQueueLimit = 16384
	// maxPendingSpans bounds the spans waiting for export; past it spans are dropped and
	// counted (a collector that is down must not grow memory).
	maxPendingSpans = 8192
	// spanBatch is the most spans sent in one export.
	spanBatch = 512
)

// Settings is the resolved export configuration: the otel block, then the standard
// environment variables for what it leaves empty, then the defaults.
type Settings struct {
	// Endpoint is the collector's base URL (scheme http or https).
	Endpoint string
	// Protocol is config.OTelGRPC or config.OTelHTTPProtobuf.
	Protocol string
	// Headers are sent with each export; values are secrets.
	Headers map[string]config.Secret
	// Interval is the metric export interval; Timeout bounds each export.
	Interval, Timeout time.Duration
	// TLS configures an https endpoint.
	TLS config.TLS
	// Resource is the resource attributes the configuration sets (merged over the
	// environment's when the resource is built).
	Resource map[string]string
	// Delta selects delta temporality: for the GenAI instruments, and for the bridged series'
	// counters and histograms (deltaProducer).
	Delta bool
	// Traces turns per-request spans on, at SamplingRatio.
	Traces        bool
	SamplingRatio float64
}

// Resolve returns the settings for an otel block (nil when absent), reading the environment
// through getenv; ok is false when no endpoint is configured anywhere (export is off) or
// OTEL_SDK_DISABLED is true.
func Resolve(c *config.OTel, getenv func(string) string) (s Settings, ok bool, err error) {
	if c == nil {
		c = &config.OTel{}
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return s, false, nil
	}
	env := func(names ...string) string {
		for _, n := range names {
			if v := strings.TrimSpace(getenv(n)); v != "" {
				return v
			}
		}
		return ""
	}
	s.Endpoint = c.Endpoint
	if s.Endpoint == "" {
		s.Endpoint = env("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	if s.Endpoint == "" {
		return s, false, nil
	}
	if u, perr := url.Parse(s.Endpoint); perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return s, false, fmt.Errorf("otel endpoint %q: must be an http:// or https:// URL", s.Endpoint)
	}
	s.Protocol = c.Protocol
	if s.Protocol == "" {
		s.Protocol = env("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch s.Protocol {
	case "":
		s.Protocol = config.OTelGRPC
	case config.OTelGRPC, config.OTelHTTPProtobuf:
	default:
		return s, false, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: %q is not supported (grpc or http/protobuf)", s.Protocol)
	}

	s.Headers = map[string]config.Secret{}
	if len(c.Headers) > 0 {
		for k, h := range c.Headers {
			s.Headers[k] = h.Value
		}
	} else if v := env("OTEL_EXPORTER_OTLP_HEADERS"); v != "" {
		if s.Headers, err = parseHeaders(v); err != nil {
			return s, false, err
		}
	}

	if s.Interval, err = durationSetting(c.Interval, env("OTEL_METRIC_EXPORT_INTERVAL"), "OTEL_METRIC_EXPORT_INTERVAL", DefaultInterval); err != nil {
		return s, false, err
	}
	if s.Timeout, err = durationSetting(c.Timeout, env("OTEL_METRIC_EXPORT_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"), "OTEL_EXPORTER_OTLP_TIMEOUT", DefaultTimeout); err != nil {
		return s, false, err
	}
	if s.Timeout > s.Interval {
		s.Timeout = s.Interval
	}

	s.TLS = c.TLS
	if s.TLS.CAFile == "" {
		s.TLS.CAFile = env("OTEL_EXPORTER_OTLP_CERTIFICATE")
	}
	if s.TLS.CertFile == "" && s.TLS.KeyFile == "" {
		s.TLS.CertFile, s.TLS.KeyFile = env("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"), env("OTEL_EXPORTER_OTLP_CLIENT_KEY")
	}
	s.Resource = c.Resource

	temporality := c.Temporality
	if temporality == "" {
		temporality = strings.ToLower(env("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"))
	}
	switch temporality {
	case "", config.OTelCumulative:
	case config.OTelDelta:
		s.Delta = true
	default:
		return s, false, fmt.Errorf("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: %q is not supported (cumulative or delta)", temporality)
	}

	switch {
	case c.Traces != nil:
		s.Traces, s.SamplingRatio = true, c.Traces.Ratio()
	case env("OTEL_TRACES_EXPORTER") == "otlp":
		s.Traces, s.SamplingRatio = true, 1
		if arg := env("OTEL_TRACES_SAMPLER_ARG"); arg != "" {
			r, perr := strconv.ParseFloat(arg, 64)
			if perr != nil || !(r >= 0 && r <= 1) {
				return s, false, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG: %q is not a ratio between 0 and 1", arg)
			}
			s.SamplingRatio = r
		}
	}
	return s, true, nil
}

// durationSetting is the configured value, else the environment's (integer milliseconds, as
// the OTel SDK specification has them), else def.
func durationSetting(cfg time.Duration, env, name string, def time.Duration) (time.Duration, error) {
	if cfg > 0 {
		return cfg, nil
	}
	if env == "" {
		return def, nil
	}
	ms, err := strconv.ParseInt(env, 10, 64)
	if err != nil || ms <= 0 {
		return 0, fmt.Errorf("%s: %q is not a positive number of milliseconds", name, env)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// parseHeaders reads OTEL_EXPORTER_OTLP_HEADERS: comma-separated key=value pairs, values
// percent-encoded (W3C Baggage's format). Errors never quote a value.
func parseHeaders(v string) (map[string]config.Secret, error) {
	h := map[string]config.Secret{}
	for _, pair := range strings.Split(v, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, val, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, errors.New("OTEL_EXPORTER_OTLP_HEADERS: each entry must be key=value")
		}
		dec, err := url.PathUnescape(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_HEADERS: the value of %s is not percent-encoded correctly", k)
		}
		h[k] = config.Secret(dec)
	}
	return h, nil
}
