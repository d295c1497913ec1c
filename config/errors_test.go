package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// doc joins lines into a YAML document; lines[0] is line 1, which keeps expected line numbers
// in the tables below easy to check by eye.
func doc(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// base is a minimal valid target on lines 1-4; cases append their lines from line 5 on.
func base(extra ...string) string {
	return doc(append([]string{
		"targets:",
		"  - name: t",
		"    url: http://127.0.0.1:8000",
		"    model: m",
	}, extra...)...)
}

// asErrors extracts Errors from err, failing the test if err is not one.
func asErrors(t *testing.T, err error) Errors {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v (%T) is not config.Errors", err, err)
	}
	if len(errs) == 0 {
		t.Fatalf("empty Errors returned as an error")
	}
	return errs
}

// wantErr is one expected error: exact path and line, and a fragment of the message.
type wantErr struct {
	path string
	line int
	msg  string
}

func checkErrors(t *testing.T, got Errors, want []wantErr) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Path != w.path || g.Line != w.line || !strings.Contains(g.Msg, w.msg) {
			t.Errorf("error %d = {path %q, line %d, msg %q}, want {path %q, line %d, msg containing %q}",
				i, g.Path, g.Line, g.Msg, w.path, w.line, w.msg)
		}
	}
}

func TestParseErrorsNameFieldAndLine(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name string
		yaml string
		want []wantErr
	}{
		// name
		{"name missing", doc("targets:", "  - url: http://127.0.0.1:8000", "    model: m"),
			[]wantErr{{"targets[0].name", 2, "required"}}},
		{"name bad characters", doc("targets:", "  - name: my target", "    url: http://127.0.0.1:8000", "    model: m"),
			[]wantErr{{"targets[0].name", 2, "may only contain"}}},
		{"name duplicate", doc("targets:", "  - name: a", "    url: http://127.0.0.1:8000", "    model: m",
			"  - name: a", "    url: http://127.0.0.1:8001", "    model: m"),
			[]wantErr{{"targets[1].name", 5, `duplicate target name "a" (also used by targets[0], line 2)`}}},
		// url
		{"url missing", doc("targets:", "  - name: t", "    model: m"),
			[]wantErr{{"targets[0].url", 2, "required"}}},
		{"url relative", doc("targets:", "  - name: t", "    url: localhost", "    model: m"),
			[]wantErr{{"targets[0].url", 3, "absolute http"}}},
		{"url ftp", doc("targets:", "  - name: t", "    url: ftp://h", "    model: m"),
			[]wantErr{{"targets[0].url", 3, "absolute http"}}},
		{"url query", doc("targets:", "  - name: t", "    url: http://h:1/?a=b", "    model: m"),
			[]wantErr{{"targets[0].url", 3, "query"}}},
		{"url fragment", doc("targets:", "  - name: t", "    url: http://h:1/#x", "    model: m"),
			[]wantErr{{"targets[0].url", 3, "fragment"}}},
		{"url credentials", doc("targets:", "  - name: t", "    url: http://u:hunter2@h:1", "    model: m"),
			[]wantErr{{"targets[0].url", 3, "credentials"}}},
		{"url bad port", doc("targets:", "  - name: t", "    url: http://h:99999", "    model: m"),
			[]wantErr{{"targets[0].url", 3, "port"}}},
		{"url includes api path", doc("targets:", "  - name: t", "    url: http://h:8000/v1/chat/completions", "    model: m", "    path: /v1/chat/completions"),
			[]wantErr{{"targets[0].url", 3, "server root"}}},
		{"url ends in v1", doc("targets:", "  - name: t", "    url: http://h:11434/v1/", "    model: m", "    path: /v1/chat/completions"),
			[]wantErr{{"targets[0].url", 3, "drop /v1"}}},
		// api and path
		{"path without slash", base("    path: v1/chat/completions"),
			[]wantErr{{"targets[0].path", 5, "must start with /"}}},
		{"path empty", base(`    path: ""`),
			[]wantErr{{"targets[0].path", 5, "must not be empty"}}},
		{"model missing", doc("targets:", "  - name: t", "    url: http://h:1"),
			[]wantErr{{"targets[0].model", 2, "required"}}},
		// headers and keys
		{"header name invalid", base("    headers:", `      "X Bad": v`),
			[]wantErr{{`targets[0].headers."X Bad"`, 6, "not a valid HTTP header name"}}},
		{"header authorization with key", base("    api_key_env: KEY", "    headers:", "      authorization: Bearer x"),
			[]wantErr{{"targets[0].headers.authorization", 7, "api_key_file or api_key_env"}}},
		{"header content-type", base("    headers:", "      Content-Type: text/plain"),
			[]wantErr{{"targets[0].headers.Content-Type", 6, "cannot be overridden"}}},
		{"header accept", base("    headers:", "      accept: application/json"),
			[]wantErr{{"targets[0].headers.accept", 6, "text/event-stream"}}},
		{"header host", base("    headers:", "      Host: example.com"),
			[]wantErr{{"targets[0].headers.Host", 6, "managed by the HTTP client"}}},
		{"header case duplicate", base("    headers:", "      X-A: 1", "      x-a: 2"),
			[]wantErr{{"targets[0].headers.x-a", 7, "case-insensitive"}}},
		{"header value with line break", base("    headers:", `      X-A: "a\r\nX-Injected: b"`),
			[]wantErr{{"targets[0].headers.X-A", 6, "line break"}}},
		{"key file empty", base(`    api_key_file: ""`),
			[]wantErr{{"targets[0].api_key_file", 5, "must not be empty"}}},
		{"key file and env", base("    api_key_file: k", "    api_key_env: K"),
			[]wantErr{{"targets[0].api_key_env", 6, "together with api_key_file"}}},
		{"key env bad name", base("    api_key_env: 1KEY"),
			[]wantErr{{"targets[0].api_key_env", 5, "not an environment variable name"}}},
		// timeouts and size
		{"timeout zero", base("    timeout: 0s"),
			[]wantErr{{"targets[0].timeout", 5, "must be > 0"}}},
		{"timeout negative", base("    timeout: -1s"),
			[]wantErr{{"targets[0].timeout", 5, "must not be negative"}}},
		{"connect timeout zero", base("    connect_timeout: 0s"),
			[]wantErr{{"targets[0].connect_timeout", 5, "must be > 0"}}},
		{"first byte above timeout", base("    timeout: 10s", "    first_byte_timeout: 20s"),
			[]wantErr{{"targets[0].first_byte_timeout", 6, "must not exceed timeout (10s)"}}},
		{"idle above timeout", base("    timeout: 10s", "    idle_timeout: 11s"),
			[]wantErr{{"targets[0].idle_timeout", 6, "must not exceed timeout"}}},
		{"max response bytes zero", base("    max_response_bytes: 0"),
			[]wantErr{{"targets[0].max_response_bytes", 5, "must be > 0"}}},
		{"http transport unknown", base("    http_transport: fasthttp"),
			[]wantErr{{"targets[0].http_transport", 5, `"fasthttp" is not one of builtin, net/http`}}},
		{"http transport builtin over https", doc("targets:", "  - name: t", "    url: https://h:1", "    model: m", "    http_transport: builtin"),
			[]wantErr{{"targets[0].http_transport", 5, "for http:// urls"}}},
		// tls
		{"tls cert without key", base("    tls:", "      cert_file: "+notPEM),
			[]wantErr{{"targets[0].tls.key_file", 5, "required when cert_file is set"}}},
		{"tls key without cert", base("    tls:", "      key_file: "+notPEM),
			[]wantErr{{"targets[0].tls.cert_file", 5, "required when key_file is set"}}},
		{"tls ca missing", base("    tls:", "      ca_file: "+missing),
			[]wantErr{{"targets[0].tls.ca_file", 6, "cannot read"}}},
		{"tls ca not pem", base("    tls:", "      ca_file: "+notPEM),
			[]wantErr{{"targets[0].tls.ca_file", 6, "no PEM certificate"}}},
		{"tls pair not pem", base("    tls:", "      cert_file: "+notPEM, "      key_file: "+notPEM),
			[]wantErr{{"targets[0].tls.cert_file", 6, "cannot load the client certificate"}}},
		// traffic
		{"max in flight zero", base("    traffic:", "      max_in_flight: 0"),
			[]wantErr{{"targets[0].traffic.max_in_flight", 6, "≥ 1"}}},
		// LoRA split
		{"lora splits do not sum to 1", base("    request:", "      lora_traffic_split:", "        - {name: a, split: 0.3}", "        - {name: b, split: 0.3}"),
			[]wantErr{{"targets[0].request.lora_traffic_split", 6, "must sum to 1"}}},
		{"lora split name empty", base("    request:", "      lora_traffic_split:", "        - {name: '', split: 0.5}", "        - {name: b, split: 0.5}"),
			[]wantErr{{"targets[0].request.lora_traffic_split[0].name", 7, "required"}}},
		{"lora split name duplicate", base("    request:", "      lora_traffic_split:", "        - {name: a, split: 0.5}", "        - {name: a, split: 0.5}"),
			[]wantErr{{"targets[0].request.lora_traffic_split[1].name", 8, "duplicate adapter"}}},
		{"lora split share out of range", base("    request:", "      lora_traffic_split:", "        - {name: a, split: 1.5}", "        - {name: b, split: -0.5}"),
			[]wantErr{{"targets[0].request.lora_traffic_split[0].split", 7, "must be > 0 and ≤ 1"}, {"targets[0].request.lora_traffic_split[1].split", 8, "must be > 0 and ≤ 1"}}},
		{"lora split empty list", base("    request:", "      lora_traffic_split: []"),
			[]wantErr{{"targets[0].request.lora_traffic_split", 6, "must not be empty"}}},
		// request
		{"prompt and input tokens", base("    request:", "      prompt: hi", "      input_tokens: 10"),
			[]wantErr{{"targets[0].request.input_tokens", 7, "together with prompt"}}},
		{"input tokens zero", base("    request:", "      input_tokens: 0"),
			[]wantErr{{"targets[0].request.input_tokens", 6, "≥ 1"}}},
		{"prompt empty", base("    request:", `      prompt: ""`),
			[]wantErr{{"targets[0].request.prompt", 6, "must not be empty"}}},
		{"max tokens zero", base("    request:", "      max_tokens: 0"),
			[]wantErr{{"targets[0].request.max_tokens", 6, "≥ 1"}}},
		{"temperature high", base("    request:", "      temperature: 2.5"),
			[]wantErr{{"targets[0].request.temperature", 6, "between 0 and 2"}}},
		{"temperature negative", base("    request:", "      temperature: -0.1"),
			[]wantErr{{"targets[0].request.temperature", 6, "between 0 and 2"}}},
		{"extra body stream", base("    request:", "      extra_body:", "        top_k: 5", "        stream: false"),
			[]wantErr{{"targets[0].request.extra_body.stream", 8, "always streams"}}},
		{"extra body model", base("    request:", "      extra_body:", "        model: other"),
			[]wantErr{{"targets[0].request.extra_body.model", 7, "model field"}}},
		{"extra body nested non-string key", base("    request:", "      extra_body:", "        logit_bias:", "          50256: -100"),
			[]wantErr{{"targets[0].request.extra_body.logit_bias.50256", 8, "must be a string"}}},
		{"extra body nan", base("    request:", "      extra_body:", "        x: [1, .nan]"),
			[]wantErr{{"targets[0].request.extra_body.x[1]", 7, "finite"}}},
		// warmup
		{"warmup requests negative", base("    warmup:", "      requests: -1"),
			[]wantErr{{"targets[0].warmup.requests", 6, "≥ 0"}}},
		{"warmup min above max", base("    warmup:", "      min_duration: 2m", "      max_duration: 1m"),
			[]wantErr{{"targets[0].warmup.max_duration", 7, "shorter than min_duration"}}},
		{"warmup max zero", base("    warmup:", "      max_duration: 0s"),
			[]wantErr{{"targets[0].warmup.max_duration", 6, "must be > 0"}}},
		{"warmup stable within one", base("    warmup:", "      stable_within: 1"),
			[]wantErr{{"targets[0].warmup.stable_within", 6, "< 1"}}},
		// slo
		{"slo negative", base("    slo:", "      ttft: -5ms"),
			[]wantErr{{"targets[0].slo.ttft", 6, "must not be negative"}}},
		{"slo target ratio one", base("    slo:", "      target_ratio: 1"),
			[]wantErr{{"targets[0].slo.target_ratio", 6, "> 0 and < 1"}}},
		{"slo target ratio zero given", base("    slo:", "      target_ratio: 0"),
			[]wantErr{{"targets[0].slo.target_ratio", 6, "> 0 and < 1"}}},
		{"slo window below the longest alert window", base("    slo:", "      ttft: 1s", "      window: 48h"),
			[]wantErr{{"targets[0].slo.window", 7, "≥ 72h0m0s"}}},
		{"slo regression factor not above one", base("    slo:", "      regression_factor: 1"),
			[]wantErr{{"targets[0].slo.regression_factor", 6, "> 1 and ≤ 100"}}},
		// metrics
		{"metrics url relative", base("    metrics:", "      url: /metrics"),
			[]wantErr{{"targets[0].metrics.url", 6, "absolute http"}}},
		{"metrics url empty", base("    metrics:", `      url: ""`),
			[]wantErr{{"targets[0].metrics.url", 6, "required"}}},
		{"metrics interval zero", base("    metrics:", "      interval: 0s"),
			[]wantErr{{"targets[0].metrics.interval", 6, "must be > 0"}}},
		{"metrics timeout above interval", base("    metrics:", "      interval: 5s", "      timeout: 6s"),
			[]wantErr{{"targets[0].metrics.timeout", 7, "must not exceed interval"}}},
		{"metrics passthrough bad regexp", base("    metrics:", "      passthrough:", "        - 'vllm:.*'", "        - 'vllm:(unclosed'"),
			[]wantErr{{"targets[0].metrics.passthrough[1]", 8, "not a valid regular expression"}}},
		// document level
		{"empty", "", []wantErr{{"", 0, "configuration is empty"}}},
		{"comments only", "# nothing\n", []wantErr{{"", 0, "configuration is empty"}}},
		{"no targets key", doc("x-defaults: {}"), []wantErr{{"targets", 1, "at least one target"}}},
		{"empty target list", doc("targets: []"), []wantErr{{"targets", 1, "at least one target"}}},
		{"not a mapping", doc("- a"), []wantErr{{"", 1, "must be a mapping with a targets list"}}},
		{"syntax error", doc("targets:", "  - name: t", "    url: a: b"), []wantErr{{"", 3, "invalid YAML: mapping values are not allowed"}}},
		{"two documents", doc("targets: []", "---", "targets: []"), []wantErr{{"", 2, "second YAML document"}}},
		{"duplicate key", base("    model: m2"), []wantErr{{"targets[0].model", 5, "duplicate key (first given on line 4)"}}},
		{"targets not a list", doc("targets:", "  name: t"), []wantErr{{"targets", 2, "must be a list"}}},
		{"target not a mapping", doc("targets:", "  - t"), []wantErr{{"targets[0]", 2, "must be a mapping"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded, want errors; config %+v", c)
			}
			if c != nil {
				t.Errorf("Parse returned a config along with errors")
			}
			checkErrors(t, asErrors(t, err), tt.want)
		})
	}
}

func TestParseTypeErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want wantErr
	}{
		{"duration with space", base("    timeout: 5 sec"),
			wantErr{"targets[0].timeout", 5, `cannot parse "5 sec" as a duration`}},
		{"duration without unit", base("    timeout: 5"),
			wantErr{"targets[0].timeout", 5, `add a unit, e.g. "5s"`}},
		{"duration as list", base("    timeout: [5s]"),
			wantErr{"targets[0].timeout", 5, "not a list"}},
		{"integer as word", base("    max_response_bytes: lots"),
			wantErr{"targets[0].max_response_bytes", 5, `cannot parse "lots" as an integer`}},
		{"integer quoted", base("    request:", `      max_tokens: "64"`),
			wantErr{"targets[0].request.max_tokens", 6, "it is quoted"}},
		{"integer fractional", base("    request:", "      max_tokens: 1.5"),
			wantErr{"targets[0].request.max_tokens", 6, "as an integer"}},
		{"integer overflow", base("    traffic:", "      max_in_flight: 99999999999999999999"),
			wantErr{"targets[0].traffic.max_in_flight", 6, "out of range"}},
		{"float as word", base("    traffic:", "      rate: fast"),
			wantErr{"targets[0].traffic.rate", 6, `cannot parse "fast" as a number`}},
		{"bool yes", base("    request:", "      ignore_eos: yes"),
			wantErr{"targets[0].request.ignore_eos", 6, "use true or false"}},
		{"pointer bool word", base("    request:", "      cache_bust: sometimes"),
			wantErr{"targets[0].request.cache_bust", 6, "use true or false"}},
		{"string as mapping", base("    api: {flavour: chat}"),
			wantErr{"targets[0].api", 5, "must be a string, not a mapping"}},
		{"struct as scalar", base("    traffic: 5"),
			wantErr{"targets[0].traffic", 5, `must be a mapping (key: value lines), not a single value "5"`}},
		{"list as scalar", base("    metrics:", "      passthrough: vllm:.*"),
			wantErr{"targets[0].metrics.passthrough", 6, "must be a list"}},
		{"list item as mapping", base("    metrics:", "      passthrough:", "        - {a: b}"),
			wantErr{"targets[0].metrics.passthrough[0]", 7, "must be a string, not a mapping"}},
		{"map as list", base("    headers: [a, b]"),
			wantErr{"targets[0].headers", 5, "must be a mapping"}},
		{"header value as list", base("    headers:", "      X-A: [1]"),
			wantErr{"targets[0].headers.X-A", 6, "must be a string, not a list"}},
		{"custom tag", doc("targets:", "  - name: t", "    url: http://h:1", "    model: !vault secret/model"),
			wantErr{"targets[0].model", 4, "unsupported YAML tag !vault"}},
		{"binary tag", base("    request:", "      prompt: !!binary aGk="),
			wantErr{"targets[0].request.prompt", 6, "!!binary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse succeeded, want a type error")
			}
			checkErrors(t, asErrors(t, err), []wantErr{tt.want})
		})
	}
}

func TestParseUnknownFieldsAtEveryLevel(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want wantErr
	}{
		{"top level", doc("target:", "  - name: t"), wantErr{"target", 1, `unknown field (did you mean "targets"?)`}},
		{"target typo", base("    trafic:", "      rate: 1"), wantErr{"targets[0].trafic", 5, `did you mean "traffic"?`}},
		{"target camel case", base("    maxResponseBytes: 10"), wantErr{"targets[0].maxResponseBytes", 5, `did you mean "max_response_bytes"?`}},
		{"target nested field one level too high", base("    rate: 3"), wantErr{"targets[0].rate", 5, `did you mean "traffic.rate"? it belongs under traffic:`}},
		{"target api key inline", base("    api_key: sk-123"), wantErr{"targets[0].api_key", 5, "set api_key_file or api_key_env"}},
		{"target unrelated", base("    colour: blue"), wantErr{"targets[0].colour", 5, "unknown field"}},
		{"tls", base("    tls:", "      insecure: true"), wantErr{"targets[0].tls.insecure", 6, "unknown field"}},
		{"traffic", base("    traffic:", "      max_inflight: 3"), wantErr{"targets[0].traffic.max_inflight", 6, `did you mean "max_in_flight"?`}},
		{"request", base("    request:", "      max_token: 3"), wantErr{"targets[0].request.max_token", 6, `did you mean "max_tokens"?`}},
		{"warmup", base("    warmup:", "      request: 3"), wantErr{"targets[0].warmup.request", 6, `did you mean "requests"?`}},
		{"slo", base("    slo:", "      ttfb: 1s"), wantErr{"targets[0].slo.ttfb", 6, `did you mean "ttft"?`}},
		{"metrics", base("    metrics:", "      engines: vllm"), wantErr{"targets[0].metrics.engines", 6, `did you mean "engine"?`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse succeeded, want an unknown-field error")
			}
			errs := asErrors(t, err)
			// The top-level case also lacks targets; only the first error is under test.
			if tt.name == "top level" {
				errs = errs[:1]
			}
			checkErrors(t, errs, []wantErr{tt.want})
		})
	}
}

func TestParseCollectsAllErrorsInFileOrder(t *testing.T) {
	y := doc(
		"targets:",                       // 1
		"  - name: a",                    // 2
		"    url: http://127.0.0.1:8000", // 3
		"    model: m",                   // 4
		"    timeout: 5 sec",             // 5: type error
		"    traffic:",                   // 6
		"      max_in_flight: -1",        // 7: validation error
		"      burst: 2",                 // 8: unknown field
		"  - name: a",                    // 9: duplicate name
		"    url: ftp://x",               // 10: bad scheme
		"    request:",                   // 11
		"      max_tokens: 0",            // 12
	)
	_, err := Parse([]byte(y))
	checkErrors(t, asErrors(t, err), []wantErr{
		{"targets[0].timeout", 5, "as a duration"},
		{"targets[0].traffic.max_in_flight", 7, "≥ 1"},
		{"targets[0].traffic.burst", 8, "unknown field"},
		{"targets[1].name", 9, "duplicate target name"},
		{"targets[1].model", 9, "required"},
		{"targets[1].url", 10, "absolute http"},
		{"targets[1].request.max_tokens", 12, "≥ 1"},
	})
	want := "targets[0].timeout (line 5): cannot parse \"5 sec\" as a duration"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Error() = %q, want it to start with %q", err.Error(), want)
	}
	if n := strings.Count(err.Error(), "\n"); n != 6 {
		t.Errorf("Error() has %d line breaks, want one error per line (6)", n)
	}
}

// A field that failed to decode is reported once: validation does not add noise about the
// zero value it left behind, nor about defaults derived from it.
func TestParseNoFollowOnErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want wantErr
	}{
		{"name wrong type", doc("targets:", "  - name: [a]", "    url: http://h:1", "    model: m"),
			wantErr{"targets[0].name", 2, "must be a string"}},
		{"timeout wrong type", base("    timeout: soon", "    idle_timeout: 45s"),
			wantErr{"targets[0].timeout", 5, "as a duration"}},
		{"traffic wrong type", base("    traffic: fast"),
			wantErr{"targets[0].traffic", 5, "must be a mapping"}},
		{"metrics interval wrong type", base("    metrics:", "      interval: often"),
			wantErr{"targets[0].metrics.interval", 6, "as a duration"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			checkErrors(t, asErrors(t, err), []wantErr{tt.want})
		})
	}
}

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		e    FieldError
		want string
	}{
		{FieldError{Path: "targets[1].traffic.rate", Line: 14, Msg: "must be > 0"}, "targets[1].traffic.rate (line 14): must be > 0"},
		{FieldError{Path: "targets[0].name", Msg: "required"}, "targets[0].name: required"},
		{FieldError{Line: 3, Msg: "invalid YAML"}, "line 3: invalid YAML"},
		{FieldError{Msg: "configuration is empty"}, "configuration is empty"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if got := (Errors{{Msg: "a"}, {Msg: "b"}}).Error(); got != "a\nb" {
		t.Errorf("Errors.Error() = %q, want one error per line", got)
	}
	if err := (Errors{}).err(); err != nil {
		t.Errorf("empty Errors as error = %v, want nil", err)
	}
}

// TestUnreachableWarmupWarns: a warmup that cannot complete at the configured rate is a
// warning (field and line), not an error, and a reachable one gives none.
func TestUnreachableWarmupWarns(t *testing.T) {
	doc := func(rate string) string {
		return "targets:\n  - name: a\n    url: http://127.0.0.1:8000\n    model: m\n    traffic:\n      rate: " + rate +
			"\n    warmup:\n      requests: 5\n      max_duration: 5m\n"
	}
	c, err := Parse([]byte(doc("0.01")))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || c.Warnings[0].Path != "targets[0].warmup.requests" || c.Warnings[0].Line != 8 ||
		!strings.Contains(c.Warnings[0].Msg, "max_duration") {
		t.Fatalf("warnings %v, want one on targets[0].warmup.requests line 8", c.Warnings)
	}
	c, err = Parse([]byte(doc("1")))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings %v for a warmup that completes", c.Warnings)
	}
}
