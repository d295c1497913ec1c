package prober

import (
	"errors"
	"strings"
	"testing"

	"github.com/inferprobe/inferprobe/config"
)

func TestKServeConfig(t *testing.T) {
	const head = "targets:\n  - name: t\n    model: ensemble\n"
	t.Run("defaults", func(t *testing.T) {
		c, err := config.Parse([]byte(head+"    url: http://127.0.0.1:8001\n    api: kserve-grpc\n"), ConfigExtension{})
		if err != nil {
			t.Fatal(err)
		}
		k := c.Targets[0].KServe
		if c.Targets[0].Path != "" || k.Backend != KServeTensorRTLLM || k.TextInput != "text_input" || k.TextOutput != "text_output" || k.AdditionalOutputs != nil {
			t.Fatalf("path %q kserve %+v", c.Targets[0].Path, k)
		}
		c, err = config.Parse([]byte(head+"    url: http://127.0.0.1:8001\n    api: kserve-grpc\n    kserve: {backend: vllm}\n    request: {ignore_eos: true, extra_body: {top_k: 1}}\n"), ConfigExtension{})
		if err != nil {
			t.Fatal(err)
		}
		if a := c.Targets[0].KServe.AdditionalOutputs; a == nil || !*a {
			t.Fatalf("additional_outputs %v, want true for vllm", a)
		}
	})
	tests := []struct {
		name, yaml, field, msg string
	}{
		{"kserve block on openai", "    url: http://h:8000\n    kserve: {backend: vllm}\n", "targets[0].kserve", "applies to api kserve-grpc only"},
		{"path", "    url: http://h:8001\n    api: kserve-grpc\n    path: /v2\n", "targets[0].path", "must be omitted"},
		{"url path", "    url: http://h:8001/v2\n    api: kserve-grpc\n", "targets[0].url", "without a path"},
		{"backend", "    url: http://h:8001\n    api: kserve-grpc\n    kserve: {backend: onnx}\n", "targets[0].kserve.backend", `not "onnx"`},
		{"tensor name", "    url: http://h:8001\n    api: kserve-grpc\n    kserve: {text_input: \"a b\"}\n", "targets[0].kserve.text_input", "tensor name"},
		{"ignore_eos on tensorrtllm", "    url: http://h:8001\n    api: kserve-grpc\n    request: {ignore_eos: true}\n", "targets[0].request.ignore_eos", "no ignore_eos input"},
		{"extra_body on tensorrtllm", "    url: http://h:8001\n    api: kserve-grpc\n    request: {extra_body: {a: 1}}\n", "targets[0].request.extra_body", "sampling_parameters"},
		{"additional_outputs on tensorrtllm", "    url: http://h:8001\n    api: kserve-grpc\n    kserve: {additional_outputs: true}\n", "targets[0].kserve.additional_outputs", "vllm only"},
		{"grpc header", "    url: http://h:8001\n    api: kserve-grpc\n    headers: {grpc-timeout: 1S}\n", "targets[0].headers", "reserved by gRPC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(head+tc.yaml), ConfigExtension{})
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v, want config.Errors", err)
			}
			for _, e := range errs {
				if e.Path == tc.field && strings.Contains(e.Msg, tc.msg) && e.Line > 0 {
					return
				}
			}
			t.Fatalf("errors %v lack %s: %s", err, tc.field, tc.msg)
		})
	}
}
