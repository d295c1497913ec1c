package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestOTelBlockErrorsNameFieldAndLine(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  []wantErr
	}{
		{"endpoint scheme", []string{"otel:", "  endpoint: grpc://collector:4317"},
			[]wantErr{{"otel.endpoint", 6, "must start with http://"}}},
		{"endpoint no host", []string{"otel:", "  endpoint: http://"},
			[]wantErr{{"otel.endpoint", 6, "has no host"}}},
		{"endpoint query", []string{"otel:", "  endpoint: http://c:4317/?x=1"},
			[]wantErr{{"otel.endpoint", 6, "query or fragment"}}},
		{"protocol", []string{"otel:", "  endpoint: http://c:4317", "  protocol: http/json"},
			[]wantErr{{"otel.protocol", 7, "must be grpc or http/protobuf"}}},
		{"temporality", []string{"otel:", "  temporality: lowmemory"},
			[]wantErr{{"otel.temporality", 6, "must be cumulative or delta"}}},
		{"interval short", []string{"otel:", "  interval: 10ms"},
			[]wantErr{{"otel.interval", 6, "at least 100ms"}}},
		{"timeout over interval", []string{"otel:", "  interval: 1s", "  timeout: 2s"},
			[]wantErr{{"otel.timeout", 7, "longer than interval"}}},
		{"header both sources", []string{"otel:", "  headers:", "    authorization: {value_env: A, value_file: b}"},
			[]wantErr{{"otel.headers.authorization", 7, "exactly one of value_file and value_env"}}},
		{"header name", []string{"otel:", "  headers:", "    \"bad name\": {value_env: A}"},
			[]wantErr{{`otel.headers."bad name"`, 7, "not a valid header name"}}},
		{"resource control character", []string{"otel:", "  resource:", "    deployment.environment: \"a\\u0007b\""},
			[]wantErr{{`otel.resource."deployment.environment"`, 7, "without control characters"}}},
		{"sampling ratio", []string{"otel:", "  traces:", "    sampling_ratio: 1.5"},
			[]wantErr{{"otel.traces.sampling_ratio", 7, "between 0 and 1"}}},
		{"unknown field", []string{"otel:", "  endpoints: http://c:4317"},
			[]wantErr{{"otel.endpoints", 6, `did you mean "endpoint"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(base(tt.lines...)))
			checkErrors(t, asErrors(t, err), tt.want)
		})
	}
}

func TestOTelBlockValid(t *testing.T) {
	c, err := Parse([]byte(base("otel:", "  endpoint: https://collector.example:4318/base", "  protocol: http/protobuf",
		"  interval: 30s", "  timeout: 5s", "  temporality: delta", "  headers:", "    x-api-key: {value_env: K}",
		"  resource: {deployment.environment: prod}", "  traces: {sampling_ratio: 0.25}")))
	if err != nil {
		t.Fatal(err)
	}
	o := c.OTel
	if o.Endpoint != "https://collector.example:4318/base" || o.Protocol != OTelHTTPProtobuf || o.Interval.String() != "30s" ||
		o.Timeout.String() != "5s" || o.Temporality != OTelDelta || o.Headers["x-api-key"].ValueEnv != "K" ||
		o.Resource["deployment.environment"] != "prod" || o.Traces.Ratio() != 0.25 {
		t.Errorf("otel block read as %+v", *o)
	}
}

func TestOTelHeaderSecretErrorsAndNeverPrinted(t *testing.T) {
	t.Setenv("INFERPROBE_TEST_OTLP", testSecret)
	t.Setenv("INFERPROBE_TEST_OTLP_MULTI", testSecret+"\n"+testSecret)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yml", base("otel:", "  headers:", "    authorization: {value_env: INFERPROBE_SURELY_UNSET_VARIABLE}",
		"    x-two: {value_env: INFERPROBE_TEST_OTLP_MULTI}", "    x-file: {value_file: missing}"))
	_, err := Load(cfg)
	checkErrors(t, asErrors(t, err), []wantErr{
		{"otel.headers.authorization.value_env", 7, "is unset or empty"},
		{"otel.headers.x-file.value_file", 9, "cannot read"},
		{"otel.headers.x-two.value_env", 8, "line break"},
	})
	if strings.Contains(err.Error(), testSecret) {
		t.Errorf("error reveals the secret: %v", err)
	}

	cfg = writeFile(t, dir, "c.yml", base("otel:", "  endpoint: http://127.0.0.1:4317", "  headers:",
		"    authorization: {value_env: INFERPROBE_TEST_OTLP}"))
	c, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.OTel.Headers["authorization"].Value.Value() != testSecret {
		t.Fatal("header secret not loaded; the test would prove nothing")
	}
	y, _ := yaml.Marshal(c)
	j, _ := json.Marshal(c)
	for name, out := range map[string]string{"%+v": fmt.Sprintf("%+v", c.OTel), "%#v": fmt.Sprintf("%#v", c.OTel),
		"yaml": string(y), "json": string(j)} {
		if strings.Contains(out, testSecret) {
			t.Errorf("%s of the config reveals the OTLP header secret: %s", name, out)
		}
	}
}
