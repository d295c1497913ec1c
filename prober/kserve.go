package prober

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/internal/kservepb"
	"github.com/inferprobe/inferprobe/traffic"
)

// APIKServeGRPC is the KServe v2 (Open Inference Protocol) gRPC flavour with Triton's
// ModelStreamInfer.
const APIKServeGRPC = "kserve-grpc"

// KServe backends: the request layout of Triton's LLM backends (config kserve.backend).
const (
	// KServeTensorRTLLM is the TensorRT-LLM ensemble/BLS layout: batched [1,1] tensors,
	// max_tokens an INT32 tensor.
	KServeTensorRTLLM = "tensorrtllm"
	// KServeVLLM is Triton's vLLM backend: [1] tensors, sampling parameters as JSON.
	KServeVLLM = "vllm"
)

// Tensor and parameter names of the layouts (besides the configurable text tensors).
const (
	kserveMaxTokens       = "max_tokens"
	kserveStream          = "stream"
	kserveTemperature     = "temperature"
	kserveExcludeInput    = "exclude_input_in_output"
	kserveSampling        = "sampling_parameters"
	kserveReturnN         = "return_num_output_tokens"
	kserveReturnFinish    = "return_finish_reason"
	kserveNumOutput       = "num_output_tokens"
	kserveFinishReason    = "finish_reason"
	kserveFinalParam      = "triton_final_response"
	kserveEnableFinalFlag = "triton_enable_empty_final_response"
)

// KServeClient speaks KServe v2 gRPC streaming (ModelStreamInfer) to Triton Inference Server
// with a decoupled LLM model (TensorRT-LLM or vLLM backend). Every request is one
// ModelStreamInfer stream on the client's one connection (HTTP/2 multiplexes them): it sends
// one ModelInferRequest, closes its side and times each streamed response as a token chunk.
type KServeClient struct {
	conn   *grpc.ClientConn
	stub   kservepb.GRPCInferenceServiceClient
	md     metadata.MD
	model  string
	layout kserveLayout

	maxBytes  int64
	timeout   time.Duration
	firstByte time.Duration
	idle      time.Duration

	maxTokens  int
	ignoreEOS  bool
	allowEmpty bool
	// stream is request.stream: false sets the stream input false, so the model answers once
	// (still over ModelStreamInfer: the vLLM backend and a decoupled TensorRT-LLM model
	// answer nothing else, and a non-decoupled one answers it alike).
	stream      bool
	temperature *float64
	extraBody   map[string]any

	reqs sync.Pool // *kserveRequest, reused across requests
}

// kserveLayout is what a backend's request and responses look like.
type kserveLayout struct {
	backend    string
	textInput  string
	textOutput string
	extra      bool // vLLM additional outputs (num_output_tokens, finish_reason)
}

// NewKServeClient builds a client for a validated target whose api is kserve-grpc. The URL's
// scheme says whether the connection uses TLS (https) or not (http); its host and port are
// the gRPC endpoint (Triton's default is 8001). Nothing is dialed until the first request.
func NewKServeClient(t config.Target) (*KServeClient, error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	var creds credentials.TransportCredentials
	switch u.Scheme {
	case "https":
		tlsCfg, err := tlsConfig(t.TLS)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tlsCfg)
	case "http":
		creds = insecure.NewCredentials()
	default:
		return nil, fmt.Errorf("url: scheme %q is neither http nor https", u.Scheme)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	connectTimeout := t.ConnectTimeout
	if connectTimeout <= 0 {
		connectTimeout = config.DefaultTimeout
	}
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	maxMsg := t.MaxResponseBytes
	if maxMsg <= 0 || maxMsg > math.MaxInt32 {
		maxMsg = math.MaxInt32
	}
	conn, err := grpc.NewClient("passthrough:///"+host,
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c}, nil
		}),
		// gRPC's default reconnect backoff grows to two minutes, during which every request
		// fails at once: a prober must see a restarted server come back within a second.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: connectTimeout,
		}),
		grpc.WithStatsHandler(kserveStats{}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(int(maxMsg))),
	)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	md := metadata.MD{}
	for k, v := range t.Headers {
		md.Set(k, v)
	}
	if key := t.APIKey.Value(); key != "" {
		md.Set("authorization", "Bearer "+key)
	}
	ks := t.KServe
	layout := kserveLayout{backend: ks.Backend, textInput: ks.TextInput, textOutput: ks.TextOutput}
	if layout.backend == "" {
		layout.backend = KServeTensorRTLLM
	}
	if layout.textInput == "" {
		layout.textInput = "text_input"
	}
	if layout.textOutput == "" {
		layout.textOutput = "text_output"
	}
	layout.extra = layout.backend == KServeVLLM && (ks.AdditionalOutputs == nil || *ks.AdditionalOutputs)
	return &KServeClient{
		conn:        conn,
		stub:        kservepb.NewGRPCInferenceServiceClient(conn),
		md:          md,
		model:       t.Model,
		layout:      layout,
		maxBytes:    t.MaxResponseBytes,
		timeout:     t.Timeout,
		firstByte:   t.FirstByteTimeout,
		idle:        t.IdleTimeout,
		maxTokens:   t.Request.MaxTokens,
		ignoreEOS:   t.Request.IgnoreEOS,
		allowEmpty:  t.Request.AllowEmpty,
		stream:      t.Request.Streaming(),
		temperature: t.Request.Temperature,
		extraBody:   t.Request.ExtraBody,
	}, nil
}

// Close closes the connection; requests still in flight fail.
func (c *KServeClient) Close() { _ = c.conn.Close() }

// kserveRequest is a reusable request message: the tensors of the layout are built once and
// only their values change from request to request. SendMsg encodes the message before it
// returns, so it can go back to the pool right after.
type kserveRequest struct {
	msg       kservepb.ModelInferRequest
	text      [1][]byte
	maxTokens [1]int32
	sampling  [1][]byte
}

func (c *KServeClient) newRequest() *kserveRequest {
	r := &kserveRequest{}
	shape := []int64{1, 1}
	if c.layout.backend == KServeVLLM {
		shape = []int64{1}
	}
	yes := &kservepb.InferTensorContents{BoolContents: []bool{true}}
	r.msg.Parameters = map[string]*kservepb.InferParameter{
		// Ask for a final response (empty unless the last one is), so the end of the
		// generation is known even before the stream ends, and a stream that ends without one
		// is known to be cut.
		kserveEnableFinalFlag: {ParameterChoice: &kservepb.InferParameter_BoolParam{BoolParam: true}},
	}
	in := func(name, datatype string, contents *kservepb.InferTensorContents) {
		r.msg.Inputs = append(r.msg.Inputs, &kservepb.ModelInferRequest_InferInputTensor{
			Name: name, Datatype: datatype, Shape: shape, Contents: contents})
	}
	in(c.layout.textInput, "BYTES", &kservepb.InferTensorContents{BytesContents: r.text[:]})
	in(kserveStream, "BOOL", &kservepb.InferTensorContents{BoolContents: []bool{c.stream}})
	switch c.layout.backend {
	case KServeVLLM:
		in(kserveExcludeInput, "BOOL", yes)
		in(kserveSampling, "BYTES", &kservepb.InferTensorContents{BytesContents: r.sampling[:]})
		if c.layout.extra {
			in(kserveReturnN, "BOOL", yes)
			in(kserveReturnFinish, "BOOL", yes)
		}
	default:
		in(kserveMaxTokens, "INT32", &kservepb.InferTensorContents{IntContents: r.maxTokens[:]})
		if c.temperature != nil {
			in(kserveTemperature, "FP32", &kservepb.InferTensorContents{Fp32Contents: []float32{float32(*c.temperature)}})
		}
	}
	return r
}

// samplingJSON is the vLLM backend's sampling_parameters for one request.
func (c *KServeClient) samplingJSON(buf []byte, maxTokens int) ([]byte, error) {
	if len(c.extraBody) == 0 {
		// The usual case, without a map or reflection.
		buf = append(buf[:0], `{"max_tokens":`...)
		buf = strconv.AppendInt(buf, int64(maxTokens), 10)
		if c.ignoreEOS {
			buf = append(buf, `,"ignore_eos":true`...)
		}
		if c.temperature != nil {
			buf = append(buf, `,"temperature":`...)
			buf = strconv.AppendFloat(buf, *c.temperature, 'g', -1, 64)
		}
		return append(buf, '}'), nil
	}
	m := make(map[string]any, 3+len(c.extraBody))
	m["max_tokens"] = maxTokens
	if c.ignoreEOS {
		m["ignore_eos"] = true
	}
	if c.temperature != nil {
		m["temperature"] = *c.temperature
	}
	for k, v := range c.extraBody {
		m[k] = v
	}
	b, err := json.Marshal(m)
	return append(buf[:0], b...), err
}

// kserveStateKey finds a request's kserveState in the contexts the stats handler sees.
type kserveStateKey struct{}

// kserveState is what the transport tells about one stream, from its own goroutines.
type kserveState struct {
	answered atomic.Bool  // response headers or trailers came: the server itself answered
	bytes    atomic.Int64 // response message bytes on the wire
	onHeader func()
}

// kserveStats is the connection's stats handler: it marks each stream's state when the
// server's headers, messages and trailers arrive. Without it a status from the server and one
// made up by the client's transport (connection refused, reset) would be indistinguishable.
type kserveStats struct{}

func (kserveStats) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (kserveStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (kserveStats) HandleConn(context.Context, stats.ConnStats) {}
func (kserveStats) HandleRPC(ctx context.Context, s stats.RPCStats) {
	st, _ := ctx.Value(kserveStateKey{}).(*kserveState)
	if st == nil {
		return
	}
	switch s := s.(type) {
	case *stats.InHeader:
		if !st.answered.Swap(true) && st.onHeader != nil {
			st.onHeader()
		}
	case *stats.InTrailer:
		st.answered.Store(true)
	case *stats.InPayload:
		st.bytes.Add(int64(s.WireLength))
	}
}

// Do sends req as one ModelStreamInfer stream and records its timing in rec.
func (c *KServeClient) Do(ctx context.Context, req traffic.Request, rec *Record) {
	if req.PromptTokens > 0 {
		rec.PromptTokens, rec.PromptSource = req.PromptTokens, SourceEstimate
	}
	maxTokens := req.MaxTokens
	if maxTokens == 0 {
		maxTokens = c.maxTokens
	}
	kr, _ := c.reqs.Get().(*kserveRequest)
	if kr == nil {
		kr = c.newRequest()
	}
	defer c.reqs.Put(kr)
	kr.msg.ModelName = c.model
	if req.Adapter != "" {
		kr.msg.ModelName = req.Adapter
	}
	kr.text[0] = append(kr.text[0][:0], req.Prompt...)
	kr.maxTokens[0] = int32(min(maxTokens, math.MaxInt32))
	if c.layout.backend == KServeVLLM {
		var err error
		if kr.sampling[0], err = c.samplingJSON(kr.sampling[0], maxTokens); err != nil {
			rec.Start = time.Now()
			rec.Result, rec.Err = ResultProtocol, fmt.Errorf("encoding sampling_parameters: %w", err)
			return
		}
	}

	reqCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	totalTimer := time.AfterFunc(c.timeout, func() { cancel(errTotalTimeout) })
	defer totalTimer.Stop()
	// One timer serves the first-byte bound (to the response headers) and then the idle
	// bound between responses.
	st := &kserveState{}
	watchdog := time.AfterFunc(c.firstByte, func() {
		if st.answered.Load() {
			cancel(errIdleTimeout)
		} else {
			cancel(errFirstByteTimeout)
		}
	})
	defer watchdog.Stop()
	st.onHeader = func() { watchdog.Reset(c.idle) }
	callCtx := context.WithValue(reqCtx, kserveStateKey{}, st)
	if md := c.md; len(md) > 0 || rec.Trace.Valid() {
		if rec.Trace.Valid() {
			// W3C trace context travels as gRPC metadata (Triton's tracing reads it there).
			md = md.Copy()
			var buf [55]byte
			md.Set("traceparent", string(rec.Trace.AppendTraceparent(buf[:0])))
		}
		callCtx = metadata.NewOutgoingContext(callCtx, md)
	}

	rec.Start = time.Now()
	stream, err := c.stub.ModelStreamInfer(callCtx)
	if err == nil {
		err = stream.Send(&kr.msg)
	}
	if err == nil {
		err = stream.CloseSend()
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			// Send reports only io.EOF when the stream failed; Recv has the status.
			_, err = stream.Recv()
		}
		rec.End = time.Since(rec.Start)
		rec.Result, rec.Err = c.failure(ctx, reqCtx, err, st, rec)
		return
	}
	c.readStream(ctx, reqCtx, stream, st, watchdog, rec)
}

// readStream reads the responses of one request until its final response or the end of the
// stream, handing each to a StreamRecorder: a response with text is a token chunk; vLLM's
// per-response num_output_tokens, summed, is reported as cumulative usage, so N and the
// per-chunk counts come from it (tokens of a response without text go to the next chunk).
func (c *KServeClient) readStream(ctx, reqCtx context.Context, stream grpc.BidiStreamingClient[kservepb.ModelInferRequest, kservepb.ModelStreamInferResponse], st *kserveState, watchdog *time.Timer, rec *Record) {
	var (
		sr      StreamRecorder
		ev      StreamEvent
		facts   kserveFacts
		flagged bool // a response carried triton_final_response: the server marks the end
		counted = true
		cum     int64 // num_output_tokens so far
	)
	sr.Begin(rec, RecorderOptions{AllowEmpty: c.allowEmpty, Unstreamed: !c.stream})
	resp := new(kservepb.ModelStreamInferResponse)
	for {
		err := stream.RecvMsg(resp)
		now := time.Since(rec.Start)
		if err == nil && c.maxBytes > 0 && st.bytes.Load() > c.maxBytes {
			err = errTooLarge
		}
		if err != nil {
			switch {
			case errors.Is(err, io.EOF) && flagged:
				sr.Interrupted(now, ResultStreamTruncated, errors.New("stream ended without its final response (triton_final_response)"), ctx.Err() != nil)
			case errors.Is(err, io.EOF):
				// A server that does not mark its final response: the stream's clean end
				// (status OK after our half-close) is the end of the generation.
				sr.End(now)
			case errors.Is(err, errTooLarge):
				sr.Fail(now, ResultProtocol, err)
			default:
				result, cause := c.failure(ctx, reqCtx, err, st, rec)
				sr.Interrupted(now, result, cause, ctx.Err() != nil)
			}
			return
		}
		watchdog.Reset(c.idle)
		if err := decodeKServeResponse(resp, c.layout.textOutput, &facts); err != nil {
			sr.Fail(now, ResultProtocol, fmt.Errorf("malformed response: %w", err))
			return
		}
		ev.Reset()
		if facts.errMsg != "" {
			// Triton's in-stream error carries no code: the server failed the request.
			ev.Result, ev.Err = ResultHTTP5xx, fmt.Errorf("error_message in stream: %s", facts.errMsg)
		}
		flagged = flagged || facts.hasFinal
		if !facts.hasTokens {
			counted = false
		} else if counted {
			cum += facts.tokens
			ev.HasUsage, ev.OutputTokens = true, int(min(cum, math.MaxInt32))
		}
		ev.Finish = NormaliseFinishReason(facts.finish)
		ev.Content = len(facts.text) > 0
		if rec.ResponseModel == "" && facts.model != "" {
			// Once per request: the proto string becomes bytes only until the record has it.
			ev.Model = append(ev.Model[:0], facts.model...)
		}
		if rec.CaptureText {
			ev.Text = append(ev.Text, facts.text...)
		}
		ev.Done = facts.final
		if !sr.Event(now, &ev) {
			if rec.Result != ResultSuccess {
				return
			}
			// The server ends the stream right after its final response (we half-closed
			// it); wait briefly for that, so the stream is not reset, but never hold the
			// request slot.
			watchdog.Reset(drainTimeout)
			_ = stream.RecvMsg(resp)
			return
		}
	}
}

// failure classes a failed stream. Our own timeouts and cancellations come first; then a
// status the server sent (it answered: headers or trailers came) is classed by its code like
// the HTTP status gRPC maps it to, and one the client's transport made up is a connection
// failure (or a cut stream, once responses came).
func (c *KServeClient) failure(ctx, reqCtx context.Context, err error, st *kserveState, rec *Record) (string, error) {
	if reqCtx.Err() != nil {
		return classify(ctx, context.Cause(reqCtx), err, rec.Chunks > 0), errCause(ctx, context.Cause(reqCtx), err)
	}
	s := status.Convert(err)
	if st.answered.Load() {
		return classifyGRPCCode(s.Code()), fmt.Errorf("gRPC status %s: %s", s.Code(), s.Message())
	}
	// A proxy in front answered with a plain HTTP error; grpc-go reports its status code in
	// the message.
	const httpPrefix = "unexpected HTTP status code received from server: "
	if i := strings.Index(s.Message(), httpPrefix); i >= 0 {
		rest := s.Message()[i+len(httpPrefix):]
		if j := strings.IndexByte(rest, ' '); j >= 0 {
			rest = rest[:j]
		}
		if code, convErr := strconv.Atoi(rest); convErr == nil {
			rec.Status = code
			return ClassifyStatus(code), fmt.Errorf("HTTP %d from a non-gRPC server: %s", code, s.Message())
		}
	}
	switch s.Code() {
	case codes.ResourceExhausted, codes.Internal:
		// Made up by the client: a response over the size cap, or one that is not a valid
		// message.
		return ResultProtocol, fmt.Errorf("gRPC client: %s", s.Message())
	}
	if rec.Chunks > 0 {
		return ResultStreamTruncated, fmt.Errorf("stream broken: %s", s.Message())
	}
	return ResultConnection, fmt.Errorf("gRPC connection: %s", s.Message())
}

// classifyGRPCCode maps a status code the server sent to a result class through the HTTP
// status gRPC's own mapping gives it (google.rpc.Code): RESOURCE_EXHAUSTED is a 429, client
// errors are 4xx, server errors 5xx. DEADLINE_EXCEEDED is a timeout (the server's) and
// CANCELLED from the server is a generation it stopped itself (aborted).
func classifyGRPCCode(code codes.Code) string {
	switch code {
	case codes.DeadlineExceeded:
		return ResultTimeout
	case codes.Canceled:
		return ResultAborted
	case codes.ResourceExhausted:
		return ResultHTTP429
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.PermissionDenied,
		codes.FailedPrecondition, codes.OutOfRange, codes.Unauthenticated:
		return ResultHTTP4xx
	case codes.OK:
		// A failure with status OK cannot be: the stream broke in a way we do not know.
		return ResultProtocol
	}
	return ResultHTTP5xx // Unknown, Aborted, Unimplemented, Internal, Unavailable, DataLoss
}

// kserveFacts is what one stream response says, for the timing record. text aliases the
// response's memory and is valid until the next response is read into it.
type kserveFacts struct {
	errMsg    string
	text      []byte
	hasTokens bool
	tokens    int64
	finish    string
	final     bool   // triton_final_response is true
	hasFinal  bool   // the parameter was present
	model     string // the response's model_name
}

// decodeKServeResponse reads one ModelStreamInferResponse: the text of the textOutput tensor
// (BYTES elements concatenated, from raw_output_contents or typed contents), vLLM's
// num_output_tokens and finish_reason when present, and the triton_final_response flag.
func decodeKServeResponse(resp *kservepb.ModelStreamInferResponse, textOutput string, f *kserveFacts) error {
	*f = kserveFacts{text: f.text[:0]}
	if resp.GetErrorMessage() != "" {
		f.errMsg = resp.GetErrorMessage()
		return nil
	}
	ir := resp.GetInferResponse()
	if ir == nil {
		return errors.New("response has neither error_message nor infer_response")
	}
	f.model = ir.GetModelName()
	if p, ok := ir.GetParameters()[kserveFinalParam]; ok {
		b, isBool := p.GetParameterChoice().(*kservepb.InferParameter_BoolParam)
		if !isBool {
			return fmt.Errorf("parameter %s is not a bool", kserveFinalParam)
		}
		f.hasFinal, f.final = true, b.BoolParam
	}
	raw := ir.GetRawOutputContents()
	if len(raw) > 0 && len(raw) != len(ir.GetOutputs()) {
		return fmt.Errorf("%d raw_output_contents for %d outputs", len(raw), len(ir.GetOutputs()))
	}
	for i, out := range ir.GetOutputs() {
		var data []byte
		if len(raw) > 0 {
			data = raw[i]
		}
		switch out.GetName() {
		case textOutput:
			if out.GetDatatype() != "BYTES" {
				return fmt.Errorf("output %s has datatype %q, want BYTES", textOutput, out.GetDatatype())
			}
			var err error
			if f.text, err = appendBytesTensor(f.text, data, out.GetContents()); err != nil {
				return fmt.Errorf("output %s: %w", textOutput, err)
			}
		case kserveNumOutput:
			n, err := uintTensor(out.GetDatatype(), data, out.GetContents())
			if err != nil {
				return fmt.Errorf("output %s: %w", kserveNumOutput, err)
			}
			f.hasTokens, f.tokens = true, n
		case kserveFinishReason:
			if out.GetDatatype() != "BYTES" {
				return fmt.Errorf("output %s has datatype %q, want BYTES", kserveFinishReason, out.GetDatatype())
			}
			b, err := appendBytesTensor(nil, data, out.GetContents())
			if err != nil {
				return fmt.Errorf("output %s: %w", kserveFinishReason, err)
			}
			if len(b) > 0 && string(b) != "None" {
				f.finish = string(b)
			}
		}
	}
	return nil
}

// appendBytesTensor appends the elements of a BYTES tensor: raw contents are elements each
// prefixed by its length as a 4-byte little-endian integer, typed contents are bytes_contents.
func appendBytesTensor(dst, raw []byte, contents *kservepb.InferTensorContents) ([]byte, error) {
	if raw == nil {
		for _, b := range contents.GetBytesContents() {
			dst = append(dst, b...)
		}
		return dst, nil
	}
	for len(raw) > 0 {
		if len(raw) < 4 {
			return dst, errors.New("BYTES element cut inside its length prefix")
		}
		n := uint64(raw[0]) | uint64(raw[1])<<8 | uint64(raw[2])<<16 | uint64(raw[3])<<24
		raw = raw[4:]
		if n > uint64(len(raw)) {
			return dst, fmt.Errorf("BYTES element of %d bytes with %d left", n, len(raw))
		}
		dst = append(dst, raw[:n]...)
		raw = raw[n:]
	}
	return dst, nil
}

// uintTensor reads the one element of an integer tensor (vLLM sends num_output_tokens as
// UINT32); a count below 0 or above MaxInt32 is an error.
func uintTensor(datatype string, raw []byte, contents *kservepb.InferTensorContents) (int64, error) {
	var size int
	switch datatype {
	case "UINT32", "INT32":
		size = 4
	case "UINT64", "INT64":
		size = 8
	default:
		return 0, fmt.Errorf("datatype %q is not an integer type", datatype)
	}
	var v int64
	if raw != nil {
		if len(raw) != size {
			return 0, fmt.Errorf("%d raw bytes for one %s", len(raw), datatype)
		}
		var u uint64
		for i := size - 1; i >= 0; i-- {
			u = u<<8 | uint64(raw[i])
		}
		switch {
		case datatype == "INT32":
			v = int64(int32(u))
		case u > math.MaxInt64:
			return 0, fmt.Errorf("token count %d out of range", u)
		default:
			v = int64(u)
		}
	} else {
		n := 0
		switch datatype {
		case "UINT32":
			if n = len(contents.GetUintContents()); n == 1 {
				v = int64(contents.GetUintContents()[0])
			}
		case "INT32":
			if n = len(contents.GetIntContents()); n == 1 {
				v = int64(contents.GetIntContents()[0])
			}
		case "UINT64":
			if n = len(contents.GetUint64Contents()); n == 1 {
				v = int64(min(contents.GetUint64Contents()[0], math.MaxInt64))
			}
		case "INT64":
			if n = len(contents.GetInt64Contents()); n == 1 {
				v = contents.GetInt64Contents()[0]
			}
		}
		if n != 1 {
			return 0, fmt.Errorf("%d values, want 1", n)
		}
	}
	if v < 0 || v > math.MaxInt32 {
		return 0, fmt.Errorf("token count %d out of range", v)
	}
	return v, nil
}
