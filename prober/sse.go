package prober

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ErrEventTooLarge is returned when one SSE event exceeds the reader's limit.
var ErrEventTooLarge = errors.New("sse: event too large")

// SSEReader reads the data payloads of a text/event-stream. It accepts what real inference
// servers send: "data:" with or without a space, comment and keep-alive lines (":..."), CRLF or
// LF line ends, multi-line data (joined with "\n"), id and retry fields (ignored), and a last
// event with no blank line before the end of the stream. Errors sent as an "event: error"
// event, or as an "error:" field as llama.cpp's server does, are reported by IsError.
type SSEReader struct {
	r        *bufio.Reader
	data     []byte
	hasData  bool
	isError  bool
	maxEvent int
}

// IsError reports whether the event Next returned last was an error event: its type was
// "error", or its payload came in an "error:" field.
func (s *SSEReader) IsError() bool { return s.isError }

// NewSSEReader returns a reader over r whose events may be at most maxEvent bytes of data.
func NewSSEReader(r io.Reader, maxEvent int) *SSEReader {
	return &SSEReader{r: bufio.NewReaderSize(r, 16<<10), maxEvent: maxEvent}
}

// Reset makes the reader read from r, keeping its buffers.
func (s *SSEReader) Reset(r io.Reader) {
	s.r.Reset(r)
	s.data = s.data[:0]
	s.hasData, s.isError = false, false
}

// Next returns the data of the next event. The slice is valid until the following call. At the
// end of the stream it returns io.EOF; a read error is returned as is.
func (s *SSEReader) Next() ([]byte, error) {
	s.data = s.data[:0]
	s.hasData, s.isError = false, false
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && s.hasData {
				// Lenient: a last event without the closing blank line still counts.
				return s.data, nil
			}
			return nil, err
		}
		if len(line) == 0 {
			if s.hasData {
				return s.data, nil
			}
			s.isError = false // an event type without data dispatches nothing
			continue
		}
		if line[0] == ':' {
			continue // comment or keep-alive
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
		case "error":
			s.isError = true
		case "event":
			s.isError = string(value) == "error"
			continue
		default:
			continue
		}
		if s.hasData {
			s.data = append(s.data, '\n')
		}
		if len(s.data)+len(value) > s.maxEvent {
			return nil, ErrEventTooLarge
		}
		s.data = append(s.data, value...)
		s.hasData = true
	}
}

// readLine returns the next line without its LF or CRLF end. The slice is valid until the next
// read. A final line without a line end is returned before io.EOF.
func (s *SSEReader) readLine() ([]byte, error) {
	line, err := s.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		// A line longer than the buffer: gather it in a copy, bounded by the event limit.
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			if len(long) > s.maxEvent+16 {
				return nil, ErrEventTooLarge
			}
			line, err = s.r.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	if err != nil && (err != io.EOF || len(line) == 0) {
		return nil, err
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}
