package otlp

import (
	"testing"

	"github.com/inferprobe/inferprobe/prober"
)

// TestGenAIKindCoversEveryFlavour: every registered API flavour has its own GenAI operation
// and provider, so a new flavour cannot silently report itself as OpenAI chat.
func TestGenAIKindCoversEveryFlavour(t *testing.T) {
	for _, api := range prober.APINames() {
		a, ok := genAIKind(api)
		if !ok || a.operation == "" || a.provider == "" {
			t.Errorf("api %s: GenAI kind %+v (known %v)", api, a, ok)
		}
	}
	if a, _ := genAIKind(prober.APIAnthropicMessages); a.provider != "anthropic" {
		t.Errorf("anthropic-messages provider %q", a.provider)
	}
}

// TestRequestModelIsTheAdapter: a request addressed to a LoRA adapter names the adapter as
// its gen_ai.request.model, as the server saw it.
func TestRequestModelIsTheAdapter(t *testing.T) {
	tgt := &prober.TargetInfo{Name: "a", Model: "base"}
	if m := requestModel(&prober.Record{Target: tgt}); m != "base" {
		t.Errorf("request model %q, want base", m)
	}
	if m := requestModel(&prober.Record{Target: tgt, Adapter: "sql-lora"}); m != "sql-lora" {
		t.Errorf("request model %q, want sql-lora", m)
	}
}
