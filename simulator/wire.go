package simulator

import (
	"net/http"
)

// wire is one protocol's encoding of a response: the generation loop (job.generate) decides
// what happens and when, the wire how it looks on the wire. One file per protocol.
type wire interface {
	// prepare pre-encodes what every event of a stream shares (j.head), once per request.
	prepare(j *job, created int64)
	// begin appends the events that precede the first token (chat's role chunk, Anthropic's
	// message_start), if any.
	begin(j *job, b []byte) []byte
	// malformed appends an event that is not valid JSON.
	malformed(j *job, b []byte) []byte
	// token appends one event carrying text, n tokens; j.st.OutputTokens already counts them.
	token(j *job, b, text []byte, n int) []byte
	// tail appends the end of a complete stream: finish, usage, the closing marker. A stream
	// whose plan says abort ends as the protocol reports a server-side failure.
	tail(j *job, b []byte) []byte
	// empty appends a stream that ends cleanly without any token.
	empty(j *job, b []byte) []byte
	// body returns a complete non-streaming response.
	body(j *job, text []byte, created int64) []byte
	// errorBody returns the JSON body of an error answered with e.status.
	errorBody(e *apiError) []byte
}

// route is one generation endpoint: its wire and its request parser.
type route struct {
	wire  wire
	parse func(w http.ResponseWriter, r *http.Request, cfg *Config) (*genRequest, *apiError)
	// errorsInStream answers every error as one event of a 200 event stream, as TGI's
	// /generate_stream does (its router sends validation, overload and generation errors
	// alike as a `data:` event with error and error_type).
	errorsInStream bool
}

// routes maps each generation endpoint (a ServeMux pattern) to its protocol.
func routes() map[string]route {
	return map[string]route{
		"POST /v1/chat/completions": {openaiWire{}, func(w http.ResponseWriter, r *http.Request, cfg *Config) (*genRequest, *apiError) {
			return parseRequest(w, r, true, cfg)
		}, false},
		"POST /v1/completions": {openaiWire{}, func(w http.ResponseWriter, r *http.Request, cfg *Config) (*genRequest, *apiError) {
			return parseRequest(w, r, false, cfg)
		}, false},
		"POST /v1/responses":                      {responsesWire{}, parseResponses, false},
		"POST /v1/messages":                       {anthropicWire{}, parseAnthropic, false},
		"POST /generate_stream":                   {tgiWire{}, parseTGI(true), true},
		"POST /generate":                          {tgiWire{}, parseTGI(false), false},
		"POST /v2/models/{model}/generate_stream": {tritonWire{}, parseTriton(true), false},
		"POST /v2/models/{model}/generate":        {tritonWire{}, parseTriton(false), false},
	}
}
