package config

// KServe configures the tensors of the kserve-grpc flavour (KServe v2 / Open Inference
// Protocol over gRPC, Triton's ModelStreamInfer). Triton's LLM backends name and shape their
// tensors differently, so the backend picks the request layout; the names can be overridden
// for a custom model. Only a target with api kserve-grpc may set it.
type KServe struct {
	// Backend is the request layout: tensorrtllm (Triton's TensorRT-LLM ensemble or BLS model:
	// tensors of shape [1,1], max_tokens an INT32 tensor) or vllm (Triton's vLLM backend:
	// tensors of shape [1], max_tokens in the sampling_parameters JSON). Default tensorrtllm.
	Backend string `yaml:"backend"`
	// TextInput is the BYTES input tensor that carries the prompt. Default text_input.
	TextInput string `yaml:"text_input"`
	// TextOutput is the BYTES output tensor that carries each response's text. Default
	// text_output.
	TextOutput string `yaml:"text_output"`
	// AdditionalOutputs asks the vLLM backend for its num_output_tokens and finish_reason
	// outputs (return_num_output_tokens, return_finish_reason; r24.12 and later), so N and
	// per-response token counts come from the server. Default true with backend vllm; not
	// allowed with tensorrtllm.
	AdditionalOutputs *bool `yaml:"additional_outputs"`
}
