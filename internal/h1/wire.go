package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// DefaultMaxHeaderBytes bounds a response's status line and header section, and a chunked
// body's trailer section, when Transport.MaxHeaderBytes is not set.
const DefaultMaxHeaderBytes = 1 << 20

// maxChunkLine bounds a chunk-size line (the size and any chunk extensions).
const maxChunkLine = 4 << 10

// ErrMalformed wraps every error about bytes that are not an HTTP/1.x response (RFC 9112).
var ErrMalformed = errors.New("malformed HTTP/1.1 response")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// appendHead appends req's request line and header section to dst, for a body of bodyLen
// bytes; host is the Host header's value.
func appendHead(dst []byte, req *http.Request, host string, bodyLen int64) ([]byte, error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if !httpguts.ValidHeaderFieldName(method) { // a method is a token, as a field name is
		return dst, fmt.Errorf("h1: invalid method %q", method)
	}
	if !httpguts.ValidHostHeader(host) {
		return dst, fmt.Errorf("h1: invalid Host %q", host)
	}
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, req.URL.RequestURI()...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\n"...)
	agent := false
	for k, vs := range req.Header {
		switch textproto.CanonicalMIMEHeaderKey(k) {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection":
			continue // framing is the transport's
		case "User-Agent":
			agent = true
			if len(vs) == 0 || vs[0] == "" {
				continue // explicitly empty: none is sent, as with net/http
			}
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return dst, fmt.Errorf("h1: invalid header name %q", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return dst, fmt.Errorf("h1: invalid value for header %q", k)
			}
			dst = append(dst, k...)
			dst = append(dst, ": "...)
			dst = append(dst, textproto.TrimString(v)...)
			dst = append(dst, "\r\n"...)
		}
	}
	if !agent {
		// net/http's default, so a server sees the same client whichever transport sends.
		dst = append(dst, "User-Agent: Go-http-client/1.1\r\n"...)
	}
	if req.Close {
		dst = append(dst, "Connection: close\r\n"...)
	}
	if bodyLen > 0 || (method != http.MethodGet && method != http.MethodHead) {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, bodyLen, 10)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...), nil
}

// lineReader reads the CRLF- (or, leniently, LF-) terminated lines of a header section under a
// byte budget, without copying a line that fits in the bufio.Reader's buffer.
type lineReader struct {
	br     *bufio.Reader
	budget int
	long   []byte // assembles a line longer than the buffer
}

// line returns the next line without its terminator. The slice is valid until the next read.
func (l *lineReader) line() ([]byte, error) {
	l.long = l.long[:0]
	for {
		frag, err := l.br.ReadSlice('\n')
		l.budget -= len(frag)
		if l.budget < 0 {
			return nil, malformed("header section exceeds the limit")
		}
		switch {
		case err == nil && len(l.long) == 0:
			return trimEOL(frag), nil
		case err == nil:
			l.long = append(l.long, frag...)
			return trimEOL(l.long), nil
		case errors.Is(err, bufio.ErrBufferFull):
			l.long = append(l.long, frag...)
		case errors.Is(err, io.EOF):
			if len(frag) > 0 || len(l.long) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, io.EOF
		default:
			return nil, err
		}
	}
}

func trimEOL(b []byte) []byte {
	b = b[:len(b)-1] // the '\n'
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// response is one parsed response head with what the transport needs to frame its body.
type response struct {
	resp      *http.Response
	chunked   bool
	length    int64 // the Content-Length; -1 when the body is chunked or ends at close
	keepAlive bool  // the connection may carry the next request after this body
}

// readResponse reads a response head from br: the status line and the header section, at most
// maxHeader bytes together. An error that is not about the bytes themselves (the connection
// ended or failed) is returned as it came, io.EOF when nothing at all was read.
func readResponse(br *bufio.Reader, req *http.Request, maxHeader int) (response, error) {
	lr := lineReader{br: br, budget: maxHeader}
	line, err := lr.line()
	if err != nil {
		return response{}, err
	}
	r := &http.Response{Request: req, Header: http.Header{}}
	if err := parseStatusLine(line, r); err != nil {
		return response{}, err
	}
	if err := readFields(&lr, r.Header); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return response{}, err
	}
	return frame(r)
}

// parseStatusLine parses "HTTP/1.1 200 OK" (RFC 9112 §4) into r.
func parseStatusLine(line []byte, r *http.Response) error {
	proto, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return malformed("status line %q", clip(line))
	}
	switch {
	case string(proto) == "HTTP/1.1":
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	case string(proto) == "HTTP/1.0":
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0
	case len(proto) == 8 && string(proto[:7]) == "HTTP/1." && digits(proto[7:]):
		// A later 1.x minor version: read as 1.1, whose rules it must keep (RFC 9110 §2.5).
		r.Proto, r.ProtoMajor, r.ProtoMinor = string(proto), 1, 1
	default:
		return malformed("status line %q: not HTTP/1.x", clip(line))
	}
	code, reason, _ := bytes.Cut(rest, []byte{' '})
	// Any three digits, as net/http reads them: an unregistered class is the caller's to judge.
	if len(code) != 3 || code[0] == '0' || !digits(code) {
		return malformed("status line %q: bad status code", clip(line))
	}
	r.StatusCode = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	r.Status = string(rest)
	if len(reason) == 0 {
		r.Status = string(code) + " " + http.StatusText(r.StatusCode)
	}
	return nil
}

// readFields reads header fields (RFC 9112 §5) up to the empty line into h; obsolete line
// folding is joined with a space, as RFC 9112 §5.2 allows a user agent to do.
func readFields(lr *lineReader, h http.Header) error {
	var last string
	for {
		line, err := lr.line()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			vs := h[last]
			if len(vs) == 0 {
				return malformed("continuation line before the first field")
			}
			vs[len(vs)-1] += " " + string(bytes.TrimSpace(line))
			continue
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok || !httpguts.ValidHeaderFieldName(string(name)) {
			// No colon, or whitespace before it (RFC 9112 §5.1: such a field is rejected).
			return malformed("header line %q", clip(line))
		}
		value = bytes.Trim(value, " \t")
		if !httpguts.ValidHeaderFieldValue(string(value)) {
			return malformed("header %q: invalid value", name)
		}
		var known bool
		if last, known = commonFields[string(name)]; !known { // no allocation for a known name
			last = textproto.CanonicalMIMEHeaderKey(string(name))
		}
		h[last] = append(h[last], string(value))
	}
}

// commonFields interns the canonical names of the fields model servers send, as they send them.
var commonFields = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Content-Type", "Content-Length", "Transfer-Encoding", "Connection",
		"Date", "Server", "Cache-Control", "Keep-Alive", "Vary", "X-Request-Id", "Access-Control-Allow-Origin",
		"Access-Control-Allow-Credentials", "X-Accel-Buffering", "Content-Encoding"} {
		m[k] = k
		m[strings.ToLower(k)] = k
	}
	return m
}()

// frame decides how r's body ends (RFC 9112 §6.3) and whether the connection stays open. An
// HTTP/1.0 response with Transfer-Encoding is read to close, coding and all (§6.1: its framing
// is faulty; the connection is closed after it).
func frame(r *http.Response) (response, error) {
	conn := r.Header["Connection"]
	persistent := (r.ProtoMinor == 1 && !hasToken(conn, "close")) || (r.ProtoMinor == 0 && hasToken(conn, "keep-alive"))
	out := response{resp: r, length: -1, keepAlive: persistent}
	switch te, cl := r.Header["Transfer-Encoding"], r.Header["Content-Length"]; {
	case r.StatusCode <= 199 || r.StatusCode == http.StatusNoContent || r.StatusCode == http.StatusNotModified,
		r.Request != nil && r.Request.Method == http.MethodHead:
		out.length = 0 // no content, whatever the fields say (§6.3 item 1)
	case len(te) > 0:
		lastField := te[len(te)-1]
		lastCoding := lastField[strings.LastIndexByte(lastField, ',')+1:]
		if strings.EqualFold(strings.TrimSpace(lastCoding), "chunked") && r.ProtoMinor == 1 {
			out.chunked = true
			r.TransferEncoding = []string{"chunked"}
		} else {
			out.keepAlive = false // not chunked last: the body ends at close (§6.3 item 4)
		}
		if len(cl) > 0 {
			// Transfer-Encoding overrides it, and the connection is not reused: a message
			// framed both ways is what request smuggling is made of (§6.3 item 3).
			r.Header.Del("Content-Length")
			out.keepAlive = false
		}
	case len(cl) > 0:
		n, err := contentLength(cl)
		if err != nil {
			return response{}, err
		}
		out.length = n
	default:
		out.keepAlive = false // the body ends at close (§6.3 item 8)
	}
	r.ContentLength = out.length
	r.Close = !out.keepAlive
	return out, nil
}

// contentLength reads the Content-Length fields: every value (a repeated field, or a list)
// must be the same run of digits (RFC 9110 §8.6).
func contentLength(vs []string) (int64, error) {
	var want string
	for _, v := range vs {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			if want == "" {
				want = part
			} else if part != want {
				return 0, malformed("differing Content-Length values %q and %q", want, part)
			}
		}
	}
	if want == "" || len(want) > 18 || !digits([]byte(want)) {
		return 0, malformed("Content-Length %q", want)
	}
	n, _ := strconv.ParseInt(want, 10, 64)
	return n, nil
}

func digits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// parseHex parses a chunk size: 1 to 15 hex digits, so that it fits an int64.
func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | int64(c)
	}
	return n, true
}

// hasToken reports whether a comma-separated field holds token, case-insensitively.
func hasToken(vs []string, token string) bool {
	for _, v := range vs {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// clip shortens a line quoted in an error.
func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// lengthBody reads a body of known length.
type lengthBody struct {
	br   *bufio.Reader
	left int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if errors.Is(err, io.EOF) && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// chunkedBody decodes the chunked transfer coding (RFC 9112 §7.1). A Read returns what one
// chunk has ready and never waits for the next chunk once it has bytes to return, so a
// streamed response's events are seen as they arrive.
type chunkedBody struct {
	br        *bufio.Reader
	left      int64 // data bytes left in the current chunk
	needCRLF  bool  // the current chunk's data ended; its CRLF is next
	maxHeader int   // trailer budget
	done      bool
	err       error
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	for b.left == 0 {
		if err := b.next(); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			b.err = err
			return 0, err
		}
		if b.done {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if b.left == 0 {
		b.needCRLF = true
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
	}
	return n, err
}

// next reads the end of the current chunk and the next chunk-size line; at the last chunk it
// reads the trailer section and sets done.
func (b *chunkedBody) next() error {
	lr := lineReader{br: b.br, budget: maxChunkLine}
	if b.needCRLF {
		line, err := lr.line()
		if err != nil {
			return err
		}
		if len(line) != 0 {
			return malformed("chunk data longer than its size")
		}
		b.needCRLF = false
		lr.budget = maxChunkLine
	}
	line, err := lr.line()
	if err != nil {
		return err
	}
	size, _, _ := bytes.Cut(line, []byte{';'}) // chunk extensions are ignored (§7.1.1)
	size = bytes.TrimRight(size, " \t")
	n, ok := parseHex(size)
	if !ok {
		return malformed("chunk size %q", clip(line))
	}
	if n > 0 {
		b.left = n
		return nil
	}
	// The last chunk: trailer fields are read and dropped, up to the empty line.
	lr.budget = b.maxHeader
	if err := readFields(&lr, http.Header{}); err != nil {
		return err
	}
	b.done = true
	return nil
}
