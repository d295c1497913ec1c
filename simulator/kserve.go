package simulator

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/inferprobe/inferprobe/internal/kservepb"
)

// RegisterKServe registers the simulator's KServe v2 gRPC service on g: ModelStreamInfer as
// Triton serves a decoupled LLM model, with the same queue, timing model and faults as the
// HTTP endpoints. It reads either request layout: the TensorRT-LLM ensemble's (text_input,
// max_tokens INT32, stream) or the vLLM backend's (text_input, stream, sampling_parameters
// JSON, return_num_output_tokens, return_finish_reason). Each response carries the tokens of
// one chunk in the BYTES output text_output (raw_output_contents, 4-byte length prefix, as
// Triton sends it).
//
// Faults map onto the protocol: a 500 is an error_message response, a 429 the status
// RESOURCE_EXHAUSTED, a truncation a stream that ends (status OK) without its final response,
// a malformed event a response whose text_output has a broken length prefix, an abort the
// finish_reason abort (vLLM layout) or else the status CANCELLED, an empty stream a final
// response without text, and both connection resets the status UNAVAILABLE (a handler cannot
// drop the shared HTTP/2 connection without failing every other stream on it).
func (s *Server) RegisterKServe(g *grpc.Server) {
	kservepb.RegisterGRPCInferenceServiceServer(g, &kserveService{s: s})
}

type kserveService struct {
	kservepb.UnimplementedGRPCInferenceServiceServer
	s *Server
}

// kserveGen is what one ModelInferRequest asks for.
type kserveGen struct {
	genRequest
	id           string
	batched      bool // tensors of shape [1,1] (TensorRT-LLM) rather than [1] (vLLM)
	finalFlag    bool // triton_enable_empty_final_response
	returnN      bool
	returnFinish bool
	outputDims   []int64
}

// ModelStreamInfer answers each request of the stream in turn, until the client half-closes.
func (k *kserveService) ModelStreamInfer(stream grpc.BidiStreamingServer[kservepb.ModelInferRequest, kservepb.ModelStreamInferResponse]) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := k.serve(stream, req); err != nil {
			return err
		}
	}
}

// serve answers one request; a returned error ends the stream with its status.
func (k *kserveService) serve(stream grpc.BidiStreamingServer[kservepb.ModelInferRequest, kservepb.ModelStreamInferResponse], req *kservepb.ModelInferRequest) error {
	s := k.s
	j := job{s: s, ctx: stream.Context(), received: time.Now()}
	j.st.Stream = true
	if s.ctx.Err() != nil {
		j.st.Outcome = OutcomeUnavailable
		j.finish()
		return status.Error(codes.Unavailable, "the simulator is shutting down")
	}
	// Triton answers a bad request inside the stream (error_message), which stays open.
	g, msg := parseKServe(req, &s.cfg)
	j.st.Outcome = OutcomeBadRequest
	if msg == "" && !s.acceptModel(g.model) {
		msg = fmt.Sprintf("Request for unknown model: '%s' is not found", g.model)
		j.st.Outcome = OutcomeNotFound
	}
	if msg != "" {
		j.finish()
		return stream.Send(&kservepb.ModelStreamInferResponse{ErrorMessage: msg})
	}
	j.g = &g.genRequest
	j.st.Stream = g.stream
	j.st.PromptTokens = g.promptTokens
	s.draw(&j.p, j.g)
	p := &j.p
	switch {
	case p.fault500:
		j.st.Outcome = OutcomeError500
		j.finish()
		return stream.Send(&kservepb.ModelStreamInferResponse{ErrorMessage: "simulated internal server error"})
	case p.fault429:
		j.st.Outcome = OutcomeError429
		j.finish()
		return status.Error(codes.ResourceExhausted, "simulated rate limit: too many requests")
	case p.reset:
		j.st.Outcome = OutcomeReset
		j.finish()
		return status.Error(codes.Unavailable, "simulated connection reset")
	}
	return k.generate(stream, &j, g)
}

// generate streams the tokens of an admitted request, one response per chunk.
func (k *kserveService) generate(stream grpc.BidiStreamingServer[kservepb.ModelInferRequest, kservepb.ModelStreamInferResponse], j *job, g *kserveGen) error {
	s, p := j.s, &j.p
	cfg := &s.cfg
	m := s.metrics
	send := func(text []byte, n int, final bool, finish string, malformed bool) error {
		return stream.Send(g.response(s.cfg.ModelName, text, n, final, finish, malformed))
	}
	if p.empty {
		j.st.Outcome = OutcomeEmpty
		j.finish()
		return send(nil, 0, true, "", false)
	}
	need := g.promptTokens + g.maxTokens
	if !s.sched.acquire(j.ctx, s.ctx.Done(), need) {
		j.st.Outcome = OutcomeCanceled
		j.finish()
		return status.Error(codes.Canceled, "canceled while queued")
	}
	admitted := time.Now()
	held := g.promptTokens
	s.sched.held.Add(int64(held))
	defer func() {
		if j.timer != nil {
			j.timer.Stop()
		}
		s.sched.release(need, held)
	}()
	j.st.Queue = admitted.Sub(j.received)
	m.queue.Observe(j.st.Queue.Seconds())
	m.promptTokens.Add(float64(g.promptTokens))
	m.promptHist.Observe(float64(g.promptTokens))

	var text []byte // the whole output of a non-streaming request
	keepGaps := cfg.StatsSize > 0
	if keepGaps {
		j.st.Gaps = make([]time.Duration, 0, max(p.length-1, 0))
	}
	deadline := admitted.Add(cfg.TTFTBase + cfg.TTFTPerPromptToken*time.Duration(g.promptTokens))
	var first, last time.Time
	chunkTokens := max(cfg.ChunkTokens, 1)
	pendingN := 0
	j.pending = j.pending[:0]
	finish := p.finish
	for i := 0; i < p.length; i++ {
		if i > 0 {
			deadline = deadline.Add(j.gap())
		}
		if i == p.stallAt {
			deadline = deadline.Add(cfg.StallDuration)
			j.st.Stalled = true
		}
		if !j.sleepUntil(deadline) {
			j.abort(OutcomeCanceled)
			return status.Error(codes.Canceled, "generation canceled")
		}
		w := j.word()
		j.pending = append(j.pending, w...)
		pendingN++
		isLast := i == p.length-1
		if g.stream {
			sent := j.st.OutputTokens + pendingN
			if pendingN < chunkTokens && !isLast && (p.truncateAfter < 0 || sent < p.truncateAfter) {
				deadline = j.tokenHeld(deadline)
				held++
				continue
			}
			malformed := p.malformedAt >= j.st.OutputTokens && p.malformedAt < sent
			if malformed {
				j.st.Malformed = true
			}
			j.st.OutputTokens += pendingN
			// An abort without a finish_reason output is told by the status CANCELLED.
			final := isLast && p.truncateAfter < 0 && !p.resetMid && (p.finish != finishAbort || g.returnFinish)
			fin := ""
			if final {
				fin = finish
			}
			if err := send(j.pending, pendingN, final, fin, malformed); err != nil {
				j.abort(OutcomeCanceled)
				return err
			}
			j.pending = j.pending[:0]
		} else {
			text = append(text, w...)
			j.st.OutputTokens++
			j.pending = j.pending[:0]
		}
		now := time.Now()
		j.tokensOut(&first, &last, now, pendingN, keepGaps, g.stream)
		held++
		pendingN = 0
		if g.stream && p.resetMid {
			j.abort(OutcomeReset)
			return status.Error(codes.Unavailable, "simulated connection reset mid-stream")
		}
		if g.stream && p.truncateAfter >= 0 && j.st.OutputTokens >= p.truncateAfter {
			j.abort(OutcomeTruncated)
			return nil // the stream ends, status OK, without its final response
		}
		if now.Sub(deadline) > cfg.ITL {
			deadline = now
		}
	}
	if !g.stream {
		if err := send(text, j.st.OutputTokens, true, finish, p.malformedAt >= 0); err != nil {
			j.abort(OutcomeCanceled)
			return err
		}
	}
	if p.finish == finishAbort {
		j.st.Outcome = OutcomeAborted
		j.st.FinishReason = p.finish
		m.success[finishAbort].Inc()
		j.finish()
		if !g.returnFinish {
			return status.Error(codes.Canceled, "simulated abort: the generation was stopped")
		}
		return nil
	}
	j.st.Outcome = OutcomeSuccess
	j.st.FinishReason = p.finish
	m.success[p.finish].Inc()
	m.prefill.Observe(first.Sub(admitted).Seconds())
	m.generationHist.Observe(float64(j.st.OutputTokens))
	j.finish()
	m.e2e.Observe(j.st.E2E.Seconds())
	return nil
}

// response builds one stream response: text as the BYTES output text_output, and with the
// vLLM layout's additional outputs num_output_tokens and finish_reason when asked for.
func (g *kserveGen) response(model string, text []byte, n int, final bool, finish string, malformed bool) *kservepb.ModelStreamInferResponse {
	raw := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(text)), uint32(len(text)))
	raw = append(raw, text...)
	if malformed {
		raw[0]++ // the length prefix claims a byte more than follows
	}
	ir := &kservepb.ModelInferResponse{
		ModelName:    model,
		ModelVersion: "1",
		Id:           g.id,
		Outputs: []*kservepb.ModelInferResponse_InferOutputTensor{
			{Name: "text_output", Datatype: "BYTES", Shape: g.outputDims},
		},
		RawOutputContents: [][]byte{raw},
	}
	if g.returnN {
		ir.Outputs = append(ir.Outputs, &kservepb.ModelInferResponse_InferOutputTensor{Name: "num_output_tokens", Datatype: "UINT32", Shape: []int64{1}})
		ir.RawOutputContents = append(ir.RawOutputContents, binary.LittleEndian.AppendUint32(nil, uint32(n)))
	}
	if g.returnFinish {
		f := []byte(finish)
		if finish == "" {
			f = []byte("None") // what the vLLM backend sends before the end (str(None))
		}
		ir.Outputs = append(ir.Outputs, &kservepb.ModelInferResponse_InferOutputTensor{Name: "finish_reason", Datatype: "BYTES", Shape: []int64{1}})
		ir.RawOutputContents = append(ir.RawOutputContents, append(binary.LittleEndian.AppendUint32(nil, uint32(len(f))), f...))
	}
	if g.finalFlag {
		ir.Parameters = map[string]*kservepb.InferParameter{
			"triton_final_response": {ParameterChoice: &kservepb.InferParameter_BoolParam{BoolParam: final}},
		}
	}
	return &kservepb.ModelStreamInferResponse{InferResponse: ir}
}

// parseKServe reads a request in either layout; a non-empty message is the error_message
// Triton would answer with.
func parseKServe(req *kservepb.ModelInferRequest, cfg *Config) (*kserveGen, string) {
	g := &kserveGen{id: req.GetId()}
	g.model = req.GetModelName()
	if p, ok := req.GetParameters()["triton_enable_empty_final_response"]; ok {
		g.finalFlag = p.GetBoolParam()
	}
	raw := req.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(req.GetInputs()) {
		return nil, fmt.Sprintf("expected %d raw input contents, got %d", len(req.GetInputs()), len(raw))
	}
	var prompt []byte
	var havePrompt bool
	maxTokens := 0
	for i, in := range req.GetInputs() {
		var data []byte
		if len(raw) > 0 {
			data = raw[i]
		}
		c := in.GetContents()
		switch in.GetName() {
		case "text_input":
			if in.GetDatatype() != "BYTES" {
				return nil, "text_input must be BYTES"
			}
			havePrompt = true
			g.batched = len(in.GetShape()) == 2
			if data == nil {
				for _, b := range c.GetBytesContents() {
					prompt = append(prompt, b...)
				}
				break
			}
			for len(data) >= 4 {
				n := binary.LittleEndian.Uint32(data)
				if uint64(n) > uint64(len(data)-4) {
					return nil, "text_input: malformed BYTES element"
				}
				prompt = append(prompt, data[4:4+n]...)
				data = data[4+n:]
			}
		case "max_tokens":
			switch {
			case len(c.GetIntContents()) == 1:
				maxTokens = int(c.GetIntContents()[0])
			case len(data) == 4:
				maxTokens = int(int32(binary.LittleEndian.Uint32(data)))
			default:
				return nil, "max_tokens must be one INT32"
			}
		case "stream":
			g.stream = boolInput(c, data)
		case "return_num_output_tokens":
			g.returnN = boolInput(c, data)
		case "return_finish_reason":
			g.returnFinish = boolInput(c, data)
		case "sampling_parameters":
			var js []byte
			if len(data) >= 4 {
				js = data[4:]
			} else if b := c.GetBytesContents(); len(b) == 1 {
				js = b[0]
			}
			var sp struct {
				MaxTokens int  `json:"max_tokens"`
				MinTokens int  `json:"min_tokens"`
				IgnoreEOS bool `json:"ignore_eos"`
			}
			if err := json.Unmarshal(js, &sp); err != nil {
				return nil, "sampling_parameters: " + err.Error()
			}
			maxTokens, g.minTokens, g.ignoreEOS = sp.MaxTokens, sp.MinTokens, sp.IgnoreEOS
		}
	}
	if !havePrompt {
		return nil, "expected input 'text_input'"
	}
	g.promptTokens = max(CountTokens(string(prompt)), 1)
	if maxTokens == 0 {
		maxTokens = cfg.DefaultMaxTokens
	}
	if maxTokens < 0 {
		return nil, "max_tokens must be positive"
	}
	if g.promptTokens+maxTokens > cfg.MaxModelLen {
		return nil, fmt.Sprintf("prompt of %d tokens plus max_tokens %d exceeds the context length %d", g.promptTokens, maxTokens, cfg.MaxModelLen)
	}
	g.maxTokens = maxTokens
	g.outputDims = []int64{1}
	if g.batched {
		g.outputDims = []int64{1, 1}
	}
	return g, ""
}

func boolInput(c *kservepb.InferTensorContents, raw []byte) bool {
	if b := c.GetBoolContents(); len(b) == 1 {
		return b[0]
	}
	return len(raw) == 1 && raw[0] != 0
}
