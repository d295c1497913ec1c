package prober

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/inferprobe/inferprobe/internal/kservepb"
)

// FuzzOpenAIStream feeds arbitrary response bodies to the stream reader: it must never panic,
// and every record it produces must be consistent (a known result class, one gap per pair of
// token chunks, ordered offsets, N with its source on success).
func FuzzOpenAIStream(f *testing.F) {
	for _, tr := range [][]string{vllmChat, llamacppChat, tgiChat, ollamaChat, reasoningChat, noUsageNoDone, vllmCompletions} {
		f.Add([]byte(strings.Join(tr, "")))
	}
	f.Add([]byte("data: {\"error\":{\"message\":\"x\",\"code\":\"429\"}}\n\n"))
	f.Add([]byte("data: {\"choices\":[],\"usage\":{\"completion_tokens\":-3}}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":null}\n\n"))
	f.Add([]byte(strings.Join(vllmContinuous(1, 4, 4, 3), "")))
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":\"abort\"}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2,\"prompt_tokens_details\":{\"cached_tokens\":-1},\"completion_tokens_details\":{\"reasoning_tokens\":-5}}}\n\ndata: [DONE]\n\n"))
	c, err := NewOpenAIClient(testTarget("http://127.0.0.1:1", APIOpenAIChat))
	if err != nil {
		f.Fatal(err)
	}
	fuzzStream(f, c.httpClient)
}

// fuzzStream runs body after body through one flavour's stream reader and checks the record.
func fuzzStream(f *testing.F, c *httpClient) {
	f.Fuzz(func(t *testing.T, body []byte) {
		ctx := context.Background()
		rec := &Record{Start: time.Now()}
		c.readStream(ctx, nil, NewSSEReader(bytes.NewReader(body), maxEventBytes), &StreamEvent{}, rec)
		if c.stream {
			checkRecord(t, rec)
		}
		// The same bytes as a whole non-streaming body.
		whole := &Record{Start: time.Now()}
		c.readWhole(ctx, nil, bytes.NewReader(body), whole)
		checkRecord(t, whole)
		if whole.Chunks != 0 || len(whole.Gaps) != 0 {
			t.Fatalf("a whole body recorded %d chunks", whole.Chunks)
		}
		// The same bytes as one event: what is not valid JSON must be refused (the walker
		// checks syntax in its one pass; json.Valid is the reference).
		if !json.Valid(body) && string(bytes.TrimSpace(body)) != "[DONE]" {
			for _, whole := range []bool{false, true} {
				if err := c.flavour.decode(body, false, whole, false, &StreamEvent{}); err == nil {
					t.Fatalf("%q (whole %v): invalid JSON decoded without an error", body, whole)
				}
			}
		}
	})
}

// checkRecord holds a fuzzed record to the invariants every record keeps.
func checkRecord(t *testing.T, rec *Record) {
	{
		if !slices.Contains(Results, rec.Result) {
			t.Fatalf("result %q is not a known class", rec.Result)
		}
		if rec.Chunks > 0 && len(rec.Gaps) != rec.Chunks-1 {
			t.Fatalf("%d gaps for %d chunks", len(rec.Gaps), rec.Chunks)
		}
		if rec.LastToken < rec.FirstToken || (rec.Chunks > 0 && rec.End < rec.LastToken) {
			t.Fatalf("offsets out of order: %v %v %v", rec.FirstToken, rec.LastToken, rec.End)
		}
		if rec.OutputTokens < 0 || rec.PromptTokens < 0 || rec.ReasoningTokens < 0 || rec.CachedTokens < 0 {
			t.Fatalf("negative token counts %d/%d/%d/%d would panic a Prometheus counter", rec.OutputTokens, rec.PromptTokens, rec.ReasoningTokens, rec.CachedTokens)
		}
		if rec.FinishReason != "" && !slices.Contains(FinishReasons, rec.FinishReason) {
			t.Fatalf("finish reason %q is not in the bounded set", rec.FinishReason)
		}
		if rec.TokensPerChunk && (len(rec.GapTokens) != len(rec.Gaps) || rec.FirstChunkTokens < 1 || slices.ContainsFunc(rec.GapTokens, func(k int32) bool { return k < 1 })) {
			t.Fatalf("per-chunk counts inconsistent: k1 %d, %v for %d gaps", rec.FirstChunkTokens, rec.GapTokens, len(rec.Gaps))
		}
		if rec.FirstChunkTokens < 1 && rec.Chunks > 0 {
			t.Fatalf("k1 = %d", rec.FirstChunkTokens)
		}
		if rec.Result == ResultSuccess && rec.OutputSource == "" && rec.Chunks > 0 {
			t.Fatal("streamed success without an output token source")
		}
		if rec.Result != ResultSuccess && rec.Err == nil {
			t.Fatal("failure without an error for the log")
		}
	}
}

// fuzzFlavour seeds a flavour's fuzz target with its golden stream and error events.
func fuzzFlavour(f *testing.F, api string, seeds ...string) {
	f.Add([]byte(strings.Join(golden(f, api), "")))
	for _, c := range captures(f, api) {
		f.Add([]byte(strings.Join(goldenFile(f, c), "")))
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	c, err := NewClient(flavourTarget("http://127.0.0.1:1", api))
	if err != nil {
		f.Fatal(err)
	}
	fuzzStream(f, c.(interface{ shared() *httpClient }).shared())
}

// FuzzTGIStream fuzzes TGI's event decoder.
func FuzzTGIStream(f *testing.F) {
	fuzzFlavour(f, APITGI, `data:{"error":"x","error_type":"overloaded"}`+"\n\n",
		`data:{"token":{"text":"a","special":false},"details":{"generated_tokens":-1,"input_length":-2}}`+"\n\n",
		`{"generated_text":"abc","details":{"finish_reason":"length","generated_tokens":3}}`)
}

// FuzzTritonStream fuzzes Triton generate's event decoder.
func FuzzTritonStream(f *testing.F) {
	fuzzFlavour(f, APITritonGenerate, `data: {"error":"x"}`+"\n\n", `{"text_output":"whole"}`)
}

// FuzzAnthropicStream fuzzes the Messages API's event decoder.
func FuzzAnthropicStream(f *testing.F) {
	fuzzFlavour(f, APIAnthropicMessages, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\n",
		`data: {"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":-4,"input_tokens":-1}}`+"\n\n",
		`{"type":"message","content":[{"type":"text","text":"x"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}`)
}

// FuzzResponsesStream fuzzes the Responses API's event decoder.
func FuzzResponsesStream(f *testing.F) {
	fuzzFlavour(f, APIOpenAIResponses, `data: {"type":"error","code":"rate_limit_exceeded","message":"x"}`+"\n\n",
		`data: {"type":"response.failed","response":{"error":{"code":"server_error","message":"m"}}}`+"\n\n",
		`{"status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"x"}]}],"usage":{"input_tokens":1,"output_tokens":-1}}`)
}

// FuzzKServeResponse feeds arbitrary bytes as a ModelStreamInferResponse: whatever decodes as
// the message must decode into facts or an error, without panicking, and text never exceeds
// the message.
func FuzzKServeResponse(f *testing.F) {
	seeds := []*kservepb.ModelStreamInferResponse{
		tritonText(" Hello", false),
		tritonText("", true),
		{ErrorMessage: "unexpected inference input"},
		{InferResponse: &kservepb.ModelInferResponse{
			Outputs: []*kservepb.ModelInferResponse_InferOutputTensor{
				{Name: "text_output", Datatype: "BYTES", Contents: &kservepb.InferTensorContents{BytesContents: [][]byte{[]byte(" a")}}},
				{Name: "num_output_tokens", Datatype: "UINT32", Contents: &kservepb.InferTensorContents{UintContents: []uint32{1}}},
				{Name: "finish_reason", Datatype: "BYTES", Contents: &kservepb.InferTensorContents{BytesContents: [][]byte{[]byte("length")}}},
			}}},
		{InferResponse: &kservepb.ModelInferResponse{
			Outputs:           []*kservepb.ModelInferResponse_InferOutputTensor{{Name: "text_output", Datatype: "BYTES"}, {Name: "num_output_tokens", Datatype: "INT64"}},
			RawOutputContents: [][]byte{rawBytes("x", "y"), {2, 0, 0, 0, 0, 0, 0, 0}}}},
	}
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var resp kservepb.ModelStreamInferResponse
		if proto.Unmarshal(data, &resp) != nil {
			return
		}
		var facts kserveFacts
		if err := decodeKServeResponse(&resp, "text_output", &facts); err != nil {
			return
		}
		if len(facts.text) > len(data) {
			t.Fatalf("%d bytes of text from a %d-byte message", len(facts.text), len(data))
		}
		if facts.hasTokens && (facts.tokens < 0 || facts.tokens > math.MaxInt32) {
			t.Fatalf("token count %d", facts.tokens)
		}
	})
}
