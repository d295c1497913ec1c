package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzReadResponse reads arbitrary bytes as a response head and body: no panic, no endless
// read, and what is accepted is consistent.
func FuzzReadResponse(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n0\r\nExpires: never\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n14\r\ndata: {\"a\":\"b\"}\n\n\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 1, 1\r\n\r\nx",
		"HTTP/1.1 500\r\nTransfer-Encoding: gzip, chunked\r\n\r\nfffffffffffffff\r\n",
	} {
		f.Add([]byte(seed))
	}
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/", nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), 64)
		r, err := readResponse(br, req, 4<<10)
		if err != nil {
			return
		}
		if r.resp.StatusCode < 100 || r.resp.StatusCode > 999 {
			t.Fatalf("status %d accepted", r.resp.StatusCode)
		}
		if r.chunked && r.length != -1 || r.resp.ContentLength != r.length {
			t.Fatalf("chunked %v with length %d (ContentLength %d)", r.chunked, r.length, r.resp.ContentLength)
		}
		var body io.Reader = br
		switch {
		case r.chunked:
			body = &chunkedBody{br: br, maxHeader: 4 << 10}
		case r.length >= 0:
			body = &lengthBody{br: br, left: r.length}
		}
		got, _ := io.ReadAll(io.LimitReader(body, int64(len(data))+1))
		if len(got) > len(data) {
			t.Fatalf("a body of %d bytes from %d input bytes", len(got), len(data))
		}
		if r.length >= 0 && !r.chunked && int64(len(got)) > r.length {
			t.Fatalf("read %d bytes past Content-Length %d", len(got), r.length)
		}
	})
}
