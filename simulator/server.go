// Package simulator is an OpenAI-compatible streaming LLM server that behaves like vLLM: SSE
// streams chunk for chunk in vLLM's format, a FIFO admission queue behind a running-sequence
// cap, a KV cache that fills, vLLM-named metrics, and seeded fault injection. It is
// inferprobe's embedded default target and the peer of every end-to-end test, so its timing is
// taken at the flush and kept as ground truth (Server.Stats).
//
// Timing model: a request waits in the queue until it is admitted, then its first token is
// due TTFTBase + TTFTPerPromptToken·prompt_tokens after admission, and each later token one
// gap after the previous one was due (ITL with uniform jitter, plus ITLPerRunningSeq per
// running sequence). Tokens are scheduled on absolute deadlines, so timer and write overhead do
// not accumulate; a response that falls more than one ITL behind restarts its schedule from
// the moment it caught up instead of bursting.
package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// vocabulary is the fixed word list output text is drawn from: lowercase ASCII only, so a
// word can be placed in JSON without escaping.
const vocabulary = "the of and to in is that it was for on are as with his they at be this " +
	"from have or by one had not but what all were when we there can an your which their said " +
	"if do will each about how up out them then she many some so these would other into has " +
	"more her two like him see time could no make than first been its who now people my made " +
	"over did down only way find use may water long little very after words called just where " +
	"most know get through back much before go good new write our used me man too any day same " +
	"right look think also around another came come work three word must because does part"

// Server is a simulated model server. Create it with New, serve Handler, and Close it when
// done.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	handler http.Handler
	sched   *scheduler
	metrics *metrics
	stats   *statsRing
	models  map[string]bool
	vocab   []string // words with their leading space, as sent in chunks
	start   time.Time

	modelsBody []byte // pre-encoded /v1/models answer
	modelJSON  []byte // ModelName as a JSON string, reused in every chunk that echoes it

	rngMu sync.Mutex
	rng   *rand.PCG

	// ctx ends with Close; in-flight requests watch its Done channel and stop.
	ctx    context.Context
	cancel context.CancelFunc
}

// New validates cfg and builds a server. A nil logger discards logs.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.Adapters = append([]string(nil), cfg.Adapters...)
	s := &Server{
		cfg:    cfg,
		logger: logger,
		sched:  newScheduler(cfg.MaxNumSeqs, cfg.KVCacheTokens),
		stats:  newStatsRing(cfg.StatsSize),
		models: map[string]bool{cfg.ModelName: true},
		start:  time.Now(),
		// The second PCG word is a fixed odd constant so that Seed alone picks the stream.
		rng: rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15),
	}
	for _, a := range cfg.Adapters {
		s.models[a] = true
	}
	for _, w := range strings.Fields(vocabulary) {
		s.vocab = append(s.vocab, " "+w)
	}
	s.modelJSON = mustJSON(cfg.ModelName)
	s.modelsBody = s.encodeModels()
	s.metrics = newMetrics(&s.cfg, s.sched, s.start)
	s.ctx, s.cancel = context.WithCancel(context.Background())

	mux := http.NewServeMux()
	for pattern, rt := range routes() {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { s.serveGenerate(w, r, rt) })
	}
	mux.HandleFunc("GET /v1/models", s.serveModels)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	s.handler = mux

	logger.Debug("simulator configured", "model", cfg.ModelName, "ttft_base", cfg.TTFTBase,
		"itl", cfg.ITL, "max_num_seqs", cfg.MaxNumSeqs, "seed", cfg.Seed)
	return s, nil
}

// Handler returns the server's HTTP handler: the OpenAI endpoints, /health and /metrics.
func (s *Server) Handler() http.Handler { return s.handler }

// Close aborts every in-flight and queued request (their streams end without [DONE]) and
// answers later requests with 503. The server starts no goroutines of its own; handlers
// return promptly after Close, so call it before shutting the HTTP server down gracefully.
func (s *Server) Close() { s.cancel() }

func (s *Server) acceptModel(name string) bool {
	return s.cfg.AcceptAnyModel || s.models[name]
}

func (s *Server) serveModels(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.modelsBody)
}

func (s *Server) encodeModels() []byte {
	type model struct {
		ID          string  `json:"id"`
		Object      string  `json:"object"`
		Created     int64   `json:"created"`
		OwnedBy     string  `json:"owned_by"`
		Root        string  `json:"root"`
		Parent      *string `json:"parent"`
		MaxModelLen int     `json:"max_model_len"`
	}
	created := s.start.Unix()
	list := []model{{ID: s.cfg.ModelName, Object: "model", Created: created, OwnedBy: "vllm", Root: s.cfg.ModelName, MaxModelLen: s.cfg.MaxModelLen}}
	for _, a := range s.cfg.Adapters {
		list = append(list, model{ID: a, Object: "model", Created: created, OwnedBy: "vllm", Root: a, Parent: &s.cfg.ModelName, MaxModelLen: s.cfg.MaxModelLen})
	}
	return mustJSON(struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{"list", list})
}

// writeError answers with the wire's error body: with e.status, or as the one event of a
// 200 event stream for a route that reports errors in its stream.
func (rt route) writeError(w http.ResponseWriter, e *apiError) {
	b := rt.wire.errorBody(e)
	if rt.errorsInStream {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(append(append([]byte("data:"), b...), "\n\n"...))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

// openaiErrorBody is an OpenAI-style error body, as vLLM answers.
func openaiErrorBody(e *apiError) []byte {
	var param *string
	if e.param != "" {
		param = &e.param
	}
	type body struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    int     `json:"code"`
	}
	return mustJSON(struct {
		Error body `json:"error"`
	}{body{e.message, e.typ, param, e.status}})
}

// mustJSON encodes values that cannot fail to encode (strings, plain structs).
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("simulator: encoding %T: %v", v, err))
	}
	return b
}

// serveGenerate answers one generation endpoint in its route's protocol.
func (s *Server) serveGenerate(w http.ResponseWriter, r *http.Request, rt route) {
	j := job{s: s, w: w, ctx: r.Context(), received: time.Now(), wire: rt.wire}
	if s.ctx.Err() != nil {
		// Closed: refuse new work as a server going down does, rather than open a stream
		// only to abort it.
		j.st.Outcome = OutcomeUnavailable
		rt.writeError(w, &apiError{status: http.StatusServiceUnavailable, typ: "ServiceUnavailableError",
			message: "the simulator is shutting down"})
		j.finish()
		return
	}
	g, aerr := rt.parse(w, r, &s.cfg)
	if aerr == nil && !s.acceptModel(g.model) {
		aerr = &apiError{status: http.StatusNotFound, typ: "NotFoundError", param: "model",
			message: fmt.Sprintf("The model `%s` does not exist.", g.model)}
	}
	if aerr != nil {
		j.st.Outcome = OutcomeBadRequest
		if aerr.status == http.StatusNotFound {
			j.st.Outcome = OutcomeNotFound
		}
		rt.writeError(w, aerr)
		j.finish()
		return
	}
	j.g = g
	j.st.Chat = g.chat
	j.st.Stream = g.stream
	j.st.PromptTokens = g.promptTokens
	s.draw(&j.p, g)

	switch {
	case j.p.fault500:
		j.st.Outcome = OutcomeError500
		rt.writeError(w, &apiError{status: http.StatusInternalServerError, typ: "InternalServerError",
			message: "simulated internal server error"})
		j.finish()
		return
	case j.p.fault429:
		j.st.Outcome = OutcomeError429
		w.Header().Set("Retry-After", "1")
		rt.writeError(w, &apiError{status: http.StatusTooManyRequests, typ: "RateLimitError",
			message: "simulated rate limit: too many requests"})
		j.finish()
		return
	}
	j.generate()
}
