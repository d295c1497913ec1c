package otlp_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/collector/otlp"
	"github.com/inferprobe/inferprobe/config"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// The otel block wins over OTEL_EXPORTER_OTLP_*, which wins over the defaults.
func TestResolvePrecedence(t *testing.T) {
	env := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":                       "http://env:4317",
		"OTEL_EXPORTER_OTLP_PROTOCOL":                       "http/protobuf",
		"OTEL_EXPORTER_OTLP_HEADERS":                        "authorization=Bearer%20env-token,x-b=2",
		"OTEL_METRIC_EXPORT_INTERVAL":                       "20000",
		"OTEL_EXPORTER_OTLP_TIMEOUT":                        "3000",
		"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "Delta",
		"OTEL_TRACES_EXPORTER":                              "otlp",
		"OTEL_TRACES_SAMPLER_ARG":                           "0.5",
	}
	s, ok, err := otlp.Resolve(nil, envOf(env))
	if err != nil || !ok {
		t.Fatalf("env only: ok %v err %v", ok, err)
	}
	if s.Endpoint != "http://env:4317" || s.Protocol != config.OTelHTTPProtobuf || s.Interval != 20*time.Second ||
		s.Timeout != 3*time.Second || !s.Delta || !s.Traces || s.SamplingRatio != 0.5 ||
		s.Headers["authorization"].Value() != "Bearer env-token" || s.Headers["x-b"].Value() != "2" {
		t.Errorf("env only: %+v", s)
	}

	ratio := 1.0
	block := &config.OTel{Endpoint: "https://block:4317", Protocol: config.OTelGRPC, Interval: 5 * time.Second, Timeout: time.Second,
		Temporality: config.OTelCumulative, Traces: &config.OTelTraces{SamplingRatio: &ratio},
		Headers: map[string]config.OTelHeader{"x-a": {ValueEnv: "A", Value: "block-token"}}}
	s, ok, err = otlp.Resolve(block, envOf(env))
	if err != nil || !ok {
		t.Fatalf("block: ok %v err %v", ok, err)
	}
	if s.Endpoint != "https://block:4317" || s.Protocol != config.OTelGRPC || s.Interval != 5*time.Second ||
		s.Timeout != time.Second || s.Delta || s.SamplingRatio != 1 || len(s.Headers) != 1 || s.Headers["x-a"].Value() != "block-token" {
		t.Errorf("block over env: %+v", s)
	}

	// Neither: off, with the defaults otherwise.
	if _, ok, err := otlp.Resolve(nil, envOf(nil)); ok || err != nil {
		t.Errorf("no endpoint anywhere: ok %v err %v", ok, err)
	}
	s, _, _ = otlp.Resolve(&config.OTel{Endpoint: "http://c:4317"}, envOf(nil))
	if s.Protocol != config.OTelGRPC || s.Interval != otlp.DefaultInterval || s.Timeout != otlp.DefaultTimeout || s.Traces {
		t.Errorf("defaults: %+v", s)
	}
	env["OTEL_SDK_DISABLED"] = "true"
	if _, ok, _ := otlp.Resolve(block, envOf(env)); ok {
		t.Error("OTEL_SDK_DISABLED=true left export on")
	}
}

// Bad environment values: an error naming the variable, never a header's value.
func TestResolveEnvErrors(t *testing.T) {
	for name, c := range map[string]struct{ env map[string]string }{
		"OTEL_EXPORTER_OTLP_ENDPOINT":                       {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}},
		"OTEL_EXPORTER_OTLP_PROTOCOL":                       {map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}},
		"OTEL_EXPORTER_OTLP_HEADERS":                        {map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "authorization=%zzsecret-value"}},
		"OTEL_METRIC_EXPORT_INTERVAL":                       {map[string]string{"OTEL_METRIC_EXPORT_INTERVAL": "10s"}},
		"OTEL_EXPORTER_OTLP_TIMEOUT":                        {map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "-1"}},
		"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": {map[string]string{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "lowmemory"}},
		"OTEL_TRACES_SAMPLER_ARG":                           {map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER_ARG": "2"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, ok := c.env["OTEL_EXPORTER_OTLP_ENDPOINT"]; !ok {
				c.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://c:4317"
			}
			_, _, err := otlp.Resolve(nil, envOf(c.env))
			if err == nil {
				t.Fatal("no error")
			}
			if name != "OTEL_EXPORTER_OTLP_ENDPOINT" && !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name %s", err, name)
			}
			if strings.Contains(err.Error(), "secret-value") {
				t.Errorf("error reveals a header value: %v", err)
			}
		})
	}
}

// OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME under the block's resource attributes;
// service.name inferprobe when nothing names it.
func TestResourcePrecedence(t *testing.T) {
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=probe-0,k8s.namespace.name=mon,deployment.environment=env")
	t.Setenv("OTEL_SERVICE_NAME", "")
	got, err := otlp.ResourceAttrs(otlp.Settings{Resource: map[string]string{"deployment.environment": "block"}}, "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"service.name": "inferprobe", "service.version": "1.2.3", "k8s.pod.name": "probe-0",
		"k8s.namespace.name": "mon", "deployment.environment": "block"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	t.Setenv("OTEL_SERVICE_NAME", "probe-eu")
	if got, _ := otlp.ResourceAttrs(otlp.Settings{}, "1"); got["service.name"] != "probe-eu" {
		t.Errorf("OTEL_SERVICE_NAME ignored: %v", got)
	}
	if got, _ := otlp.ResourceAttrs(otlp.Settings{Resource: map[string]string{"service.name": "block"}}, "1"); got["service.name"] != "block" {
		t.Errorf("the block's service.name lost: %v", got)
	}
}

// FuzzParseHeaders: OTEL_EXPORTER_OTLP_HEADERS never panics, its errors never quote a
// value, and what parses comes back the same after percent-encoding it again.
func FuzzParseHeaders(f *testing.F) {
	for _, s := range []string{"", "a=b", "authorization=Bearer%20x,x-b=2", "k=", "=v", "a", "a=%zz", " a = b , ,c=d=e", "a=%E2%82%AC"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h, err := otlp.ParseHeaders(in)
		if err != nil {
			for _, pair := range strings.Split(in, ",") {
				// The error names the key; a value that is part of its own key ("00%0=00%0")
				// cannot be told from it.
				if k, v, ok := strings.Cut(pair, "="); ok && len(v) >= 4 && !strings.Contains(k, v) && strings.Contains(err.Error(), v) {
					t.Fatalf("error %q quotes a value %q", err, v)
				}
			}
			return
		}
		var parts []string
		for k, v := range h {
			if k == "" || strings.TrimSpace(k) != k || strings.Contains(k, ",") || strings.Contains(k, "=") {
				t.Fatalf("key %q from %q", k, in)
			}
			parts = append(parts, k+"="+url.PathEscape(v.Value()))
		}
		again, err := otlp.ParseHeaders(strings.Join(parts, ","))
		if err != nil {
			t.Fatalf("re-encoded %q: %v", parts, err)
		}
		for k, v := range h {
			if again[k].Value() != v.Value() {
				t.Fatalf("%s: %q became %q", k, v.Value(), again[k].Value())
			}
		}
	})
}

// FuzzResourceAttributes: OTEL_RESOURCE_ATTRIBUTES (parsed by the SDK) never panics, and
// the block's attributes and service.name are always there when it parses.
func FuzzResourceAttributes(f *testing.F) {
	for _, s := range []string{"", "a=b", "k8s.pod.name=p,k8s.namespace.name=n", "service.name=x", "a", "=b", "a=%zz", "a=b=c,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if strings.ContainsRune(in, 0) {
			return // no environment variable can hold a NUL
		}
		t.Setenv("OTEL_RESOURCE_ATTRIBUTES", in)
		got, err := otlp.ResourceAttrs(otlp.Settings{Resource: map[string]string{"inferprobe.site": "s"}}, "v")
		if err != nil {
			return
		}
		if got["inferprobe.site"] != "s" || got["service.version"] != "v" || got["service.name"] == "" {
			t.Fatalf("OTEL_RESOURCE_ATTRIBUTES=%q gave %v", in, got)
		}
	})
}
