package prober

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/internal/kservepb"
	"github.com/inferprobe/inferprobe/internal/simtest"
	"github.com/inferprobe/inferprobe/simulator"
	"github.com/inferprobe/inferprobe/traffic"
)

func kserveTarget(url, backend string) config.Target {
	t := testTarget(url, APIKServeGRPC)
	t.Path = ""
	t.KServe = config.KServe{Backend: backend}
	return t
}

func doKServe(t *testing.T, tgt config.Target, req traffic.Request) *Record {
	t.Helper()
	c, err := NewKServeClient(tgt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec := &Record{}
	c.Do(context.Background(), req, rec)
	return rec
}

// TestKServeSimulator checks the timing record end to end against the simulator's gRPC
// service, in both backends' layouts, against the simulator's own ground truth.
func TestKServeSimulator(t *testing.T) {
	for _, tc := range []struct {
		backend     string
		chunkTokens int
		source      string
	}{
		{KServeTensorRTLLM, 1, SourceChunks},
		{KServeVLLM, 1, SourceUsage},
		{KServeVLLM, 3, SourceUsage},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			sim, url := simtest.StartKServe(t, 7, func(c *simulator.Config) {
				c.TTFTBase, c.ITL, c.ITLJitter, c.ChunkTokens = 20*time.Millisecond, 2*time.Millisecond, 0, tc.chunkTokens
			})
			tgt := kserveTarget(url, tc.backend)
			c, err := NewKServeClient(tgt)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i := 0; i < 3; i++ { // the connection is reused
				rec := &Record{CaptureText: true}
				c.Do(context.Background(), traffic.Request{Prompt: "one two three", MaxTokens: 16, PromptTokens: 3}, rec)
				if rec.Result != ResultSuccess {
					t.Fatalf("request %d: result %s (%v)", i, rec.Result, rec.Err)
				}
				st := sim.Stats().Requests
				truth := st[len(st)-1]
				if truth.Outcome != simulator.OutcomeSuccess {
					t.Fatalf("simulator outcome %s", truth.Outcome)
				}
				wantChunks := (truth.OutputTokens + tc.chunkTokens - 1) / tc.chunkTokens
				if rec.Chunks != wantChunks || len(rec.Gaps) != wantChunks-1 {
					t.Fatalf("chunks %d gaps %d, want %d chunks for %d tokens", rec.Chunks, len(rec.Gaps), wantChunks, truth.OutputTokens)
				}
				if rec.OutputTokens != truth.OutputTokens || rec.OutputSource != tc.source {
					t.Fatalf("N = %d (%s), want %d (%s)", rec.OutputTokens, rec.OutputSource, truth.OutputTokens, tc.source)
				}
				if ttft, ok := rec.TTFT(); !ok || ttft < truth.TTFT || ttft > rec.End {
					t.Fatalf("TTFT %v (%v), server's %v, end %v", ttft, ok, truth.TTFT, rec.End)
				}
				if tc.source == SourceUsage {
					if !rec.TokensPerChunk || rec.FirstChunkTokens != min(tc.chunkTokens, truth.OutputTokens) {
						t.Fatalf("per-chunk counts %v, k1 %d", rec.TokensPerChunk, rec.FirstChunkTokens)
					}
					sum := rec.FirstChunkTokens
					for i := range rec.Gaps {
						sum += rec.GapTokenCount(i)
					}
					if sum != truth.OutputTokens {
						t.Fatalf("per-chunk counts sum to %d, want %d", sum, truth.OutputTokens)
					}
					if rec.FinishReason != NormaliseFinishReason(truth.FinishReason) {
						t.Fatalf("finish %q, want %q", rec.FinishReason, truth.FinishReason)
					}
				} else if rec.TokensPerChunk {
					t.Fatal("per-chunk counts claimed without num_output_tokens")
				}
				if words := len(strings.Fields(string(rec.Text))); words != truth.OutputTokens {
					t.Fatalf("text has %d words, want %d", words, truth.OutputTokens)
				}
			}
		})
	}
}

// TestKServeSimulatorFaults maps each simulator fault to its result class through gRPC.
func TestKServeSimulatorFaults(t *testing.T) {
	tests := []struct {
		name    string
		backend string
		mutate  func(*simulator.Config)
		model   string
		want    string
	}{
		{"error_message", KServeTensorRTLLM, func(c *simulator.Config) { c.Error500Rate = 1 }, "", ResultHTTP5xx},
		{"resource exhausted", KServeTensorRTLLM, func(c *simulator.Config) { c.Error429Rate = 1 }, "", ResultHTTP429},
		{"truncated", KServeVLLM, func(c *simulator.Config) { c.TruncateRate = 1 }, "", ResultStreamTruncated},
		{"malformed", KServeTensorRTLLM, func(c *simulator.Config) { c.MalformedRate = 1 }, "", ResultProtocol},
		{"abort with finish_reason", KServeVLLM, func(c *simulator.Config) { c.AbortRate = 1 }, "", ResultAborted},
		{"abort as CANCELLED", KServeTensorRTLLM, func(c *simulator.Config) { c.AbortRate = 1 }, "", ResultAborted},
		{"empty", KServeVLLM, func(c *simulator.Config) { c.EmptyRate = 1 }, "", ResultEmpty},
		{"unavailable", KServeVLLM, func(c *simulator.Config) { c.ResetMidStreamRate = 1 }, "", ResultHTTP5xx},
		{"unknown model", KServeVLLM, func(c *simulator.Config) { c.AcceptAnyModel = false }, "nope", ResultHTTP5xx},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, url := simtest.StartKServe(t, 3, func(c *simulator.Config) {
				c.TTFTBase, c.ITL = time.Millisecond, time.Millisecond
				if tc.mutate != nil {
					tc.mutate(c)
				}
			})
			tgt := kserveTarget(url, tc.backend)
			if tc.model != "" {
				tgt.Model = tc.model
			}
			rec := doKServe(t, tgt, traffic.Request{Prompt: "a b", MaxTokens: 8})
			if rec.Result != tc.want {
				t.Fatalf("result %s (%v), want %s", rec.Result, rec.Err, tc.want)
			}
		})
	}
}

// tritonServer is a minimal hand-written ModelStreamInfer server that plays a script: the
// responses Triton documents for a decoupled model, or a status.
type tritonServer struct {
	kservepb.UnimplementedGRPCInferenceServiceServer
	script func(stream grpc.BidiStreamingServer[kservepb.ModelInferRequest, kservepb.ModelStreamInferResponse], req *kservepb.ModelInferRequest) error

	mu  sync.Mutex
	md  metadata.MD
	req *kservepb.ModelInferRequest
}

func (s *tritonServer) ModelStreamInfer(stream grpc.BidiStreamingServer[kservepb.ModelInferRequest, kservepb.ModelStreamInferResponse]) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.md, s.req = md, req
	s.mu.Unlock()
	if err := s.script(stream, req); err != nil {
		return err
	}
	// Triton ends the stream once the client half-closed and every response is out.
	_, err = stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func startTriton(t *testing.T, s *tritonServer, opts ...grpc.ServerOption) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(opts...)
	kservepb.RegisterGRPCInferenceServiceServer(gs, s)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(l) }()
	t.Cleanup(func() { gs.Stop(); <-done })
	return l.Addr().String()
}

// rawBytes encodes BYTES elements as Triton's raw_output_contents does.
func rawBytes(elems ...string) []byte {
	var b []byte
	for _, e := range elems {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e)))
		b = append(b, e...)
	}
	return b
}

// tritonText is a Triton response with one text_output element in raw_output_contents and the
// triton_final_response parameter (sent when the request enables empty final responses).
func tritonText(text string, final bool) *kservepb.ModelStreamInferResponse {
	ir := &kservepb.ModelInferResponse{
		ModelName: "m", ModelVersion: "1",
		Parameters: map[string]*kservepb.InferParameter{
			"triton_final_response": {ParameterChoice: &kservepb.InferParameter_BoolParam{BoolParam: final}},
		},
	}
	if text != "" || !final {
		ir.Outputs = []*kservepb.ModelInferResponse_InferOutputTensor{{Name: "text_output", Datatype: "BYTES", Shape: []int64{1, 1}}}
		ir.RawOutputContents = [][]byte{rawBytes(text)}
	}
	return &kservepb.ModelStreamInferResponse{InferResponse: ir}
}

func sendAll(pause time.Duration, resps ...*kservepb.ModelStreamInferResponse) func(grpc.BidiStreamingServer[kservepb.ModelInferRequest, kservepb.ModelStreamInferResponse], *kservepb.ModelInferRequest) error {
	return func(stream grpc.BidiStreamingServer[kservepb.ModelInferRequest, kservepb.ModelStreamInferResponse], _ *kservepb.ModelInferRequest) error {
		for _, r := range resps {
			time.Sleep(pause)
			if err := stream.Send(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// TestKServeTraceparent: a record with a trace context sends its traceparent as gRPC
// metadata, beside the target's own metadata, and one without sends none.
func TestKServeTraceparent(t *testing.T) {
	s := &tritonServer{script: sendAll(0, tritonText("a", false), tritonText("", true))}
	addr := startTriton(t, s)
	tgt := kserveTarget("http://"+addr, KServeTensorRTLLM)
	tgt.Headers = map[string]string{"X-Tenant": "a"}
	c, err := NewKServeClient(tgt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, traced := range []bool{true, false} {
		rec := &Record{}
		if traced {
			rec.Trace = TraceContext{TraceID: [16]byte{1, 2}, SpanID: [8]byte{3}, Sampled: true}
		}
		c.Do(context.Background(), traffic.Request{Prompt: "p", MaxTokens: 1}, rec)
		if rec.Result != ResultSuccess {
			t.Fatalf("result %s (%v)", rec.Result, rec.Err)
		}
		s.mu.Lock()
		got, tenant := s.md.Get("traceparent"), s.md.Get("x-tenant")
		s.mu.Unlock()
		want := []string{"00-01020000000000000000000000000000-0300000000000000-01"}
		if !traced {
			want = nil
		}
		if !slices.Equal(got, want) || len(tenant) != 1 {
			t.Errorf("traced %v: traceparent metadata %v (want %v), x-tenant %v", traced, got, want, tenant)
		}
	}
}

// TestKServeTritonShapes plays the documented response shapes of Triton's TensorRT-LLM
// ensemble (one token per response, then the empty final response) and checks the request
// the client sent.
func TestKServeTritonShapes(t *testing.T) {
	s := &tritonServer{script: sendAll(5*time.Millisecond,
		tritonText(" Hello", false), tritonText(" there", false), tritonText(" friend", false), tritonText("", true))}
	addr := startTriton(t, s)
	tgt := kserveTarget("http://"+addr, KServeTensorRTLLM)
	tgt.Headers = map[string]string{"X-Tenant": "a"}
	tgt.APIKey = "k1"
	rec := doKServe(t, tgt, traffic.Request{Prompt: "say hi", MaxTokens: 3, PromptTokens: 2})
	if rec.Result != ResultSuccess || rec.Chunks != 3 || rec.OutputTokens != 3 || rec.OutputSource != SourceChunks {
		t.Fatalf("result %s (%v), chunks %d, N %d (%s)", rec.Result, rec.Err, rec.Chunks, rec.OutputTokens, rec.OutputSource)
	}
	if len(rec.Gaps) != 2 || rec.Gaps[0] <= 0 || rec.FirstToken <= 0 || rec.End < rec.LastToken {
		t.Fatalf("gaps %v, first %v, last %v, end %v", rec.Gaps, rec.FirstToken, rec.LastToken, rec.End)
	}
	if tpot, ok := rec.TPOT(); !ok || tpot <= 0 {
		t.Fatalf("TPOT %v %v", tpot, ok)
	}
	if rec.ResponseModel != "m" {
		t.Errorf("response model %q, want the responses' model_name m", rec.ResponseModel)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if got := s.md.Get("x-tenant"); len(got) != 1 || got[0] != "a" {
		t.Errorf("metadata x-tenant = %v", got)
	}
	if got := s.md.Get("authorization"); len(got) != 1 || got[0] != "Bearer k1" {
		t.Errorf("metadata authorization = %v", got)
	}
	if s.req.GetModelName() != "m" || !s.req.GetParameters()["triton_enable_empty_final_response"].GetBoolParam() {
		t.Errorf("request model %q parameters %v", s.req.GetModelName(), s.req.GetParameters())
	}
	inputs := map[string]*kservepb.ModelInferRequest_InferInputTensor{}
	for _, in := range s.req.GetInputs() {
		inputs[in.GetName()] = in
	}
	if in := inputs["text_input"]; in == nil || in.GetDatatype() != "BYTES" || len(in.GetShape()) != 2 || string(in.GetContents().GetBytesContents()[0]) != "say hi" {
		t.Errorf("text_input = %v", in)
	}
	if in := inputs["max_tokens"]; in == nil || in.GetDatatype() != "INT32" || in.GetContents().GetIntContents()[0] != 3 {
		t.Errorf("max_tokens = %v", in)
	}
	if in := inputs["stream"]; in == nil || !in.GetContents().GetBoolContents()[0] {
		t.Errorf("stream = %v", in)
	}
}

// TestKServeVLLMShapes plays the vLLM backend's responses with its additional outputs in typed
// contents (bytes_contents, uint_contents) and a server that sends no final flag: the stream's
// clean end ends the generation.
func TestKServeVLLMShapes(t *testing.T) {
	resp := func(text string, n uint32, finish string) *kservepb.ModelStreamInferResponse {
		return &kservepb.ModelStreamInferResponse{InferResponse: &kservepb.ModelInferResponse{
			ModelName: "m",
			Outputs: []*kservepb.ModelInferResponse_InferOutputTensor{
				{Name: "text_output", Datatype: "BYTES", Shape: []int64{1}, Contents: &kservepb.InferTensorContents{BytesContents: [][]byte{[]byte(text)}}},
				{Name: "num_output_tokens", Datatype: "UINT32", Shape: []int64{1}, Contents: &kservepb.InferTensorContents{UintContents: []uint32{n}}},
				{Name: "finish_reason", Datatype: "BYTES", Shape: []int64{1}, Contents: &kservepb.InferTensorContents{BytesContents: [][]byte{[]byte(finish)}}},
			},
		}}
	}
	s := &tritonServer{script: sendAll(2*time.Millisecond, resp(" a", 1, "None"), resp("", 2, "None"), resp(" b c d", 2, "None"), resp(" e", 1, "length"))}
	addr := startTriton(t, s)
	tgt := kserveTarget("http://"+addr, KServeVLLM)
	tgt.Request.IgnoreEOS = true
	rec := doKServe(t, tgt, traffic.Request{Prompt: "p", MaxTokens: 6})
	if rec.Result != ResultSuccess || rec.Chunks != 3 || rec.OutputTokens != 6 || rec.OutputSource != SourceUsage || rec.FinishReason != FinishLength {
		t.Fatalf("result %s (%v), chunks %d, N %d (%s), finish %q", rec.Result, rec.Err, rec.Chunks, rec.OutputTokens, rec.OutputSource, rec.FinishReason)
	}
	// The tokens of the response without text go to the next text chunk.
	if !rec.TokensPerChunk || rec.FirstChunkTokens != 1 || rec.GapTokens[0] != 4 || rec.GapTokens[1] != 1 {
		t.Fatalf("per-chunk %v k1 %d gap tokens %v", rec.TokensPerChunk, rec.FirstChunkTokens, rec.GapTokens)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range s.req.GetInputs() {
		if in.GetName() == "sampling_parameters" {
			if got := string(in.GetContents().GetBytesContents()[0]); got != `{"max_tokens":6,"ignore_eos":true}` {
				t.Errorf("sampling_parameters = %s", got)
			}
			return
		}
	}
	t.Error("no sampling_parameters input")
}

// TestKServeErrorClasses maps Triton's error_message and gRPC status codes to result classes.
func TestKServeErrorClasses(t *testing.T) {
	fail := func(code codes.Code) func(grpc.BidiStreamingServer[kservepb.ModelInferRequest, kservepb.ModelStreamInferResponse], *kservepb.ModelInferRequest) error {
		return func(grpc.BidiStreamingServer[kservepb.ModelInferRequest, kservepb.ModelStreamInferResponse], *kservepb.ModelInferRequest) error {
			return status.Error(code, "scripted")
		}
	}
	afterToken := func(code codes.Code) func(grpc.BidiStreamingServer[kservepb.ModelInferRequest, kservepb.ModelStreamInferResponse], *kservepb.ModelInferRequest) error {
		return func(stream grpc.BidiStreamingServer[kservepb.ModelInferRequest, kservepb.ModelStreamInferResponse], _ *kservepb.ModelInferRequest) error {
			_ = stream.Send(tritonText(" a", false))
			return status.Error(code, "scripted")
		}
	}
	tests := []struct {
		name   string
		script func(grpc.BidiStreamingServer[kservepb.ModelInferRequest, kservepb.ModelStreamInferResponse], *kservepb.ModelInferRequest) error
		want   string
	}{
		{"error_message", sendAll(0, &kservepb.ModelStreamInferResponse{ErrorMessage: "in ensemble 'ensemble', unexpected inference input 'x'"}), ResultHTTP5xx},
		{"invalid argument", fail(codes.InvalidArgument), ResultHTTP4xx},
		{"not found", fail(codes.NotFound), ResultHTTP4xx},
		{"unauthenticated", fail(codes.Unauthenticated), ResultHTTP4xx},
		{"resource exhausted", fail(codes.ResourceExhausted), ResultHTTP429},
		{"unavailable", fail(codes.Unavailable), ResultHTTP5xx},
		{"internal", fail(codes.Internal), ResultHTTP5xx},
		{"unimplemented", fail(codes.Unimplemented), ResultHTTP5xx},
		{"server deadline", fail(codes.DeadlineExceeded), ResultTimeout},
		{"server cancelled", afterToken(codes.Canceled), ResultAborted},
		{"internal after a token", afterToken(codes.Internal), ResultHTTP5xx},
		{"empty final only", sendAll(0, tritonText("", true)), ResultEmpty},
		{"no final response", sendAll(0, tritonText(" a", false)), ResultStreamTruncated},
		{"neither error nor response", sendAll(0, &kservepb.ModelStreamInferResponse{}), ResultProtocol},
		{"text_output not BYTES", sendAll(0, &kservepb.ModelStreamInferResponse{InferResponse: &kservepb.ModelInferResponse{
			Outputs: []*kservepb.ModelInferResponse_InferOutputTensor{{Name: "text_output", Datatype: "INT32"}}}}), ResultProtocol},
		{"cut length prefix", sendAll(0, &kservepb.ModelStreamInferResponse{InferResponse: &kservepb.ModelInferResponse{
			Outputs:           []*kservepb.ModelInferResponse_InferOutputTensor{{Name: "text_output", Datatype: "BYTES"}},
			RawOutputContents: [][]byte{{9, 0, 0, 0, 'a'}}}}), ResultProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := startTriton(t, &tritonServer{script: tc.script})
			rec := doKServe(t, kserveTarget("http://"+addr, KServeTensorRTLLM), traffic.Request{Prompt: "p"})
			if rec.Result != tc.want {
				t.Fatalf("result %s (%v), want %s", rec.Result, rec.Err, tc.want)
			}
			if rec.Err == nil {
				t.Fatal("no error detail")
			}
		})
	}
}

// TestKServeTimeouts checks the first-byte, idle and total bounds, the size cap and the
// caller's cancellation.
func TestKServeTimeouts(t *testing.T) {
	hang := func(stream grpc.BidiStreamingServer[kservepb.ModelInferRequest, kservepb.ModelStreamInferResponse], _ *kservepb.ModelInferRequest) error {
		<-stream.Context().Done()
		return nil
	}
	tokenThenHang := func(stream grpc.BidiStreamingServer[kservepb.ModelInferRequest, kservepb.ModelStreamInferResponse], r *kservepb.ModelInferRequest) error {
		_ = stream.Send(tritonText(" a", false))
		return hang(stream, r)
	}
	trickle := func(stream grpc.BidiStreamingServer[kservepb.ModelInferRequest, kservepb.ModelStreamInferResponse], _ *kservepb.ModelInferRequest) error {
		for stream.Context().Err() == nil {
			if err := stream.Send(tritonText(" a", false)); err != nil {
				return nil
			}
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	}
	tests := []struct {
		name   string
		script func(grpc.BidiStreamingServer[kservepb.ModelInferRequest, kservepb.ModelStreamInferResponse], *kservepb.ModelInferRequest) error
		mutate func(*config.Target)
		cancel bool
		want   string
		cause  error
	}{
		{"first byte", hang, func(t *config.Target) { t.FirstByteTimeout = 50 * time.Millisecond }, false, ResultTimeout, errFirstByteTimeout},
		{"idle", tokenThenHang, func(t *config.Target) { t.IdleTimeout = 50 * time.Millisecond }, false, ResultTimeout, errIdleTimeout},
		{"total", trickle, func(t *config.Target) { t.Timeout = 100 * time.Millisecond }, false, ResultTimeout, errTotalTimeout},
		{"size cap", trickle, func(t *config.Target) { t.MaxResponseBytes = 200 }, false, ResultProtocol, errTooLarge},
		{"caller canceled", tokenThenHang, nil, true, ResultCanceled, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := startTriton(t, &tritonServer{script: tc.script})
			tgt := kserveTarget("http://"+addr, KServeTensorRTLLM)
			if tc.mutate != nil {
				tc.mutate(&tgt)
			}
			c, err := NewKServeClient(tgt)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			rec := &Record{}
			c.Do(ctx, traffic.Request{Prompt: "p"}, rec)
			if rec.Result != tc.want || (tc.cause != nil && !errors.Is(rec.Err, tc.cause)) {
				t.Fatalf("result %s (%v), want %s (%v)", rec.Result, rec.Err, tc.want, tc.cause)
			}
		})
	}
}

func TestKServeConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	rec := doKServe(t, kserveTarget("http://"+addr, KServeTensorRTLLM), traffic.Request{Prompt: "p"})
	if rec.Result != ResultConnection {
		t.Fatalf("result %s (%v), want connection", rec.Result, rec.Err)
	}
}

func TestKServeOverTLS(t *testing.T) {
	// httptest's certificate (for 127.0.0.1) serves the gRPC server too.
	hs := httptest.NewTLSServer(nil)
	cert, leaf := hs.TLS.Certificates[0], hs.Certificate()
	hs.Close()
	s := &tritonServer{script: sendAll(0, tritonText(" a", true))}
	addr := startTriton(t, s, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		url  string
		tls  config.TLS
		want string
	}{
		{"trusted through ca_file", "https://" + addr, config.TLS{CAFile: caFile}, ResultSuccess},
		{"unknown CA", "https://" + addr, config.TLS{}, ResultConnection},
		{"plaintext to a TLS server", "http://" + addr, config.TLS{}, ResultConnection},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tgt := kserveTarget(tc.url, KServeTensorRTLLM)
			tgt.TLS = tc.tls
			if rec := doKServe(t, tgt, traffic.Request{Prompt: "p"}); rec.Result != tc.want {
				t.Fatalf("result %s (%v), want %s", rec.Result, rec.Err, tc.want)
			}
		})
	}
}

// BenchmarkStreamKServe is BenchmarkStream for kserve-grpc: one 16-token request over
// loopback against the simulator's gRPC service with no delays.
func BenchmarkStreamKServe(b *testing.B) {
	_, url := simtest.StartKServe(b, 1, func(c *simulator.Config) {
		c.TTFTBase, c.TTFTPerPromptToken, c.ITL, c.ITLJitter, c.StatsSize = 0, 0, 0, 0, 0
	})
	tgt := kserveTarget(url, KServeVLLM)
	tgt.Request.IgnoreEOS = true
	c, err := NewKServeClient(tgt)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	rec := &Record{}
	req := traffic.Request{Prompt: strings.Repeat("word ", 128), MaxTokens: 16}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec.Reset()
		c.Do(context.Background(), req, rec)
		if rec.Result != ResultSuccess || rec.OutputTokens != 16 {
			b.Fatal(rec.Result, rec.Err, rec.OutputTokens)
		}
	}
}

// TestKServeUnstreamed: request.stream false sets the stream input false and the model answers
// once; the record has e2e and N (from vLLM's num_output_tokens, unknown from the TensorRT-LLM
// ensemble, which counts nothing) and no chunk, so TTFT and TPOT stay undefined. End to end
// against the simulator, whose ground truth says it saw a non-streaming request.
func TestKServeUnstreamed(t *testing.T) {
	off := false
	for _, tc := range []struct {
		backend string
		source  string
	}{{KServeTensorRTLLM, ""}, {KServeVLLM, SourceUsage}} {
		t.Run(tc.backend, func(t *testing.T) {
			sim, url := simtest.StartKServe(t, 3, func(c *simulator.Config) {
				c.TTFTBase, c.ITL, c.ITLJitter = 20*time.Millisecond, 2*time.Millisecond, 0
			})
			tgt := kserveTarget(url, tc.backend)
			tgt.Request.Stream = &off
			rec := doKServe(t, tgt, traffic.Request{Prompt: "one two three", MaxTokens: 8, PromptTokens: 3})
			if rec.Result != ResultSuccess {
				t.Fatalf("result %s (%v)", rec.Result, rec.Err)
			}
			st := sim.Stats().Requests
			truth := st[len(st)-1]
			if truth.Stream {
				t.Fatal("the simulator saw a streaming request")
			}
			if _, ok := rec.TTFT(); ok {
				t.Error("TTFT defined without a stream")
			}
			if _, ok := rec.TPOT(); ok || rec.Chunks != 0 || len(rec.Gaps) != 0 {
				t.Errorf("TPOT defined or %d chunks, %d gaps recorded without a stream", rec.Chunks, len(rec.Gaps))
			}
			if rec.End < 20*time.Millisecond {
				t.Errorf("e2e %v below the server's 20ms TTFT base", rec.End)
			}
			wantN := 0
			if tc.source != "" {
				wantN = truth.OutputTokens
			}
			if rec.OutputTokens != wantN || rec.OutputSource != tc.source {
				t.Errorf("N=%d from %q, want %d from %q", rec.OutputTokens, rec.OutputSource, wantN, tc.source)
			}
		})
	}
}

// TestKServeUnstreamedTriton: against a hand-written server answering as a decoupled vLLM
// backend does without streaming (one response with the whole text, the total
// num_output_tokens and the finish reason, flagged final), the client sent stream false and
// records e2e and N only.
func TestKServeUnstreamedTriton(t *testing.T) {
	whole := &kservepb.ModelStreamInferResponse{InferResponse: &kservepb.ModelInferResponse{
		ModelName: "m", ModelVersion: "1",
		Parameters: map[string]*kservepb.InferParameter{
			"triton_final_response": {ParameterChoice: &kservepb.InferParameter_BoolParam{BoolParam: true}},
		},
		Outputs: []*kservepb.ModelInferResponse_InferOutputTensor{
			{Name: "text_output", Datatype: "BYTES", Shape: []int64{1}, Contents: &kservepb.InferTensorContents{BytesContents: [][]byte{[]byte(" a b c d e")}}},
			{Name: "num_output_tokens", Datatype: "UINT32", Shape: []int64{1}, Contents: &kservepb.InferTensorContents{UintContents: []uint32{5}}},
			{Name: "finish_reason", Datatype: "BYTES", Shape: []int64{1}, Contents: &kservepb.InferTensorContents{BytesContents: [][]byte{[]byte("length")}}},
		},
	}}
	s := &tritonServer{script: sendAll(10*time.Millisecond, whole)}
	addr := startTriton(t, s)
	tgt := kserveTarget("http://"+addr, KServeVLLM)
	off := false
	tgt.Request.Stream = &off
	rec := doKServe(t, tgt, traffic.Request{Prompt: "p", MaxTokens: 5})
	if rec.Result != ResultSuccess || rec.Chunks != 0 || rec.OutputTokens != 5 || rec.OutputSource != SourceUsage || rec.FinishReason != FinishLength {
		t.Fatalf("result %s (%v), chunks %d, N %d (%s), finish %q", rec.Result, rec.Err, rec.Chunks, rec.OutputTokens, rec.OutputSource, rec.FinishReason)
	}
	if _, ok := rec.TTFT(); ok || rec.End < 10*time.Millisecond {
		t.Errorf("TTFT defined (%v) or e2e %v shorter than the server's pause", ok, rec.End)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range s.req.GetInputs() {
		if in.GetName() == "stream" {
			if b := in.GetContents().GetBoolContents(); len(b) != 1 || b[0] {
				t.Errorf("stream input %v, want [false]", b)
			}
			return
		}
	}
	t.Error("no stream input")
}
