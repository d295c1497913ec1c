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
	// Path is the default API path.
	Path string
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
		{Name: APIKServeGRPC, Path: "",
			Summary: "KServe v2 (Open Inference Protocol) gRPC, streamed with Triton's ModelStreamInfer (TensorRT-LLM or vLLM backend); url is the gRPC endpoint, no path. See [kserve-grpc](kserve-grpc.md).",
			New:     func(t config.Target) (Client, error) { return NewKServeClient(t) }},
	}
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
		t.Path = a.Path
	}
	if t.API == APIKServeGRPC {
		kserveDefaults(&t.KServe, given)
	}
}

// Check implements config.Extension.
func (ConfigExtension) Check(t *config.Target, given func(string) bool, report config.Reporter) {
	if _, ok := LookupAPI(t.API); !ok {
		report("api", "must be one of %s, not %s", strings.Join(APINames(), ", "), config.Quote(t.API))
	}
	if t.API == APIKServeGRPC {
		checkKServe(t, given, report)
	} else if given("kserve") {
		report("kserve", "applies to api %s only", APIKServeGRPC)
	}
	if t.Request.Conversation != nil && t.API != APIOpenAIChat {
		report("request.conversation", "needs api %s: a conversation's history is a list of chat messages", APIOpenAIChat)
	}
}
