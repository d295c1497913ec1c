package prober

import (
	"strings"

	"github.com/inferprobe/inferprobe/config"
)

// API flavours, as written in a target's api field.
const (
	APIOpenAIChat        = "openai-chat"
	APIOpenAICompletions = "openai-completions"
)

// API is one registered request flavour: its name, the path appended to a target's URL when
// the target sets none, and its client's constructor. Config validation (ConfigExtension) and
// construction (NewClient) read the same registry, so a new flavour is a file with its client
// plus a line in apis.
type API struct {
	// Name is the value of a target's api field.
	Name string
	// Summary is the one-line description docs/configuration.md carries.
	Summary string
	// Path is the default API path; UnstreamedPath, where set, is the default with stream:
	// false (TGI and Triton answer whole responses on another endpoint). {model} in a path is
	// replaced by the target's model.
	Path, UnstreamedPath string
	// New builds the client of a validated target.
	New func(t config.Target) (Client, error)
}

// apis is the registry, in documentation order; built on each call, so nothing shared can
// be modified.
func apis() []API {
	return []API{
		{Name: APIOpenAIChat, Path: "/v1/chat/completions",
			Summary: "OpenAI chat completions, streamed (vLLM, SGLang, llama.cpp, TGI Messages API, trtllm-serve, Ollama).",
			New:     func(t config.Target) (Client, error) { return NewOpenAIClient(t) }},
		{Name: APIOpenAICompletions, Path: "/v1/completions",
			Summary: "OpenAI (legacy) completions, streamed: the prompt is sent as is, without a chat template.",
			New:     func(t config.Target) (Client, error) { return NewOpenAIClient(t) }},
		{Name: APIOpenAIResponses, Path: "/v1/responses",
			Summary: "OpenAI Responses API, streamed as typed events (`response.output_text.delta`, usage on `response.completed`); vLLM, SGLang, OpenAI.",
			New:     func(t config.Target) (Client, error) { return NewResponsesClient(t) }},
		{Name: APIAnthropicMessages, Path: "/v1/messages",
			Summary: "Anthropic Messages API, streamed (`content_block_delta`, usage from `message_start` and `message_delta`); vLLM, LiteLLM and other gateways. The key goes in `x-api-key`.",
			New:     func(t config.Target) (Client, error) { return NewAnthropicClient(t) }},
		{Name: APITGI, Path: "/generate_stream", UnstreamedPath: "/generate",
			Summary: "Hugging Face TGI's native API with `details: true`: one event per token, N and the prompt length from the last event's details.",
			New:     func(t config.Target) (Client, error) { return NewTGIClient(t) }},
		{Name: APITritonGenerate, Path: "/v2/models/{model}/generate_stream", UnstreamedPath: "/v2/models/{model}/generate",
			Summary: "Triton Inference Server's generate extension (`text_input`, `max_tokens`, `stream` as the TensorRT-LLM and vLLM backends name them); no usage, so N counts events.",
			New:     func(t config.Target) (Client, error) { return NewTritonClient(t) }},
	}
}

// DefaultPath is the flavour's path for a streaming or a non-streaming request.
func (a API) DefaultPath(stream bool) string {
	if !stream && a.UnstreamedPath != "" {
		return a.UnstreamedPath
	}
	return a.Path
}

// APIs returns the registered flavours in documentation order.
func APIs() []API { return apis() }

// APINames returns the registered flavour names in documentation order.
func APINames() []string {
	var names []string
	for _, a := range apis() {
		names = append(names, a.Name)
	}
	return names
}

// LookupAPI returns the registered flavour called name.
func LookupAPI(name string) (API, bool) {
	for _, a := range apis() {
		if a.Name == name {
			return a, true
		}
	}
	return API{}, false
}

// ConfigExtension defaults and checks a target's api and path against the registry; the
// engine hands it to config.Load.
type ConfigExtension struct{}

var _ config.Extension = ConfigExtension{}

// Defaults implements config.Extension: api defaults to openai-chat and path to the
// flavour's own.
func (ConfigExtension) Defaults(t *config.Target, given func(string) bool) {
	if t.API == "" && !given("api") {
		t.API = APIOpenAIChat
	}
	if a, ok := LookupAPI(t.API); ok && t.Path == "" && !given("path") {
		t.Path = a.DefaultPath(t.Request.Streaming())
	}
}

// Check implements config.Extension.
func (ConfigExtension) Check(t *config.Target, _ func(string) bool, report config.Reporter) {
	if _, ok := LookupAPI(t.API); !ok {
		report("api", "must be one of %s, not %s", strings.Join(APINames(), ", "), config.Quote(t.API))
	}
	if !t.Request.Streaming() {
		// Without a stream there is no first token to time: an objective on it could never
		// be met, and goodput would silently read zero.
		if t.SLO.TTFT > 0 {
			report("slo.ttft", "needs a streamed answer; request.stream is false")
		}
		if t.SLO.TPOT > 0 {
			report("slo.tpot", "needs a streamed answer; request.stream is false")
		}
	}
	if t.Request.Conversation != nil && t.API != APIOpenAIChat {
		report("request.conversation", "needs api %s: a conversation's history is a list of chat messages", APIOpenAIChat)
	}
}
