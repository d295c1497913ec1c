package prober

import (
	"net/url"
	"strings"

	"github.com/inferprobe/inferprobe/config"
)

// kserveDefaults fills the kserve block of a kserve-grpc target.
func kserveDefaults(k *config.KServe, given func(string) bool) {
	if k.Backend == "" && !given("kserve.backend") {
		k.Backend = KServeTensorRTLLM
	}
	if k.TextInput == "" && !given("kserve.text_input") {
		k.TextInput = "text_input"
	}
	if k.TextOutput == "" && !given("kserve.text_output") {
		k.TextOutput = "text_output"
	}
	if k.AdditionalOutputs == nil && k.Backend == KServeVLLM {
		on := true
		k.AdditionalOutputs = &on
	}
}

// checkKServe reports what a kserve-grpc target cannot do: a URL path, request options the
// backend has no input for, and header names gRPC reserves.
func checkKServe(t *config.Target, given func(string) bool, report config.Reporter) {
	if t.Path != "" || given("path") {
		report("path", "must be omitted with api %s: the url is the gRPC endpoint and the model is addressed by model", APIKServeGRPC)
	}
	if u, err := url.Parse(t.URL); err == nil && strings.Trim(u.Path, "/") != "" {
		report("url", "must be the gRPC endpoint without a path with api %s (e.g. http://%s, Triton's gRPC port is 8001)", APIKServeGRPC, u.Host)
	}
	k := &t.KServe
	switch k.Backend {
	case KServeTensorRTLLM, KServeVLLM:
	default:
		report("kserve.backend", "must be %s or %s, not %s", KServeTensorRTLLM, KServeVLLM, config.Quote(k.Backend))
	}
	for _, f := range [...]struct{ field, name string }{{"kserve.text_input", k.TextInput}, {"kserve.text_output", k.TextOutput}} {
		if f.name == "" || strings.ContainsFunc(f.name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			report(f.field, "must be a tensor name (not empty, no spaces or control characters)")
		}
	}
	if k.Backend == KServeTensorRTLLM {
		if k.AdditionalOutputs != nil {
			report("kserve.additional_outputs", "applies to backend %s only", KServeVLLM)
		}
		if t.Request.IgnoreEOS {
			report("request.ignore_eos", "backend %s has no ignore_eos input: the TensorRT-LLM ensemble stops at the model's end token", KServeTensorRTLLM)
		}
		if len(t.Request.ExtraBody) > 0 {
			report("request.extra_body", "backend %s takes tensors, not a JSON body (with backend %s it is merged into sampling_parameters)", KServeTensorRTLLM, KServeVLLM)
		}
	}
	if len(t.Request.LoRATrafficSplit) > 0 {
		report("request.lora_traffic_split", "is not supported with api %s", APIKServeGRPC)
	}
	for name := range t.Headers {
		if l := strings.ToLower(name); strings.HasPrefix(l, "grpc-") || l == "te" {
			report("headers", "%s is reserved by gRPC", config.Quote(name))
		}
	}
}
