package h1

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkRoundTrip sends one POST and reads a streamed answer of 18 flushed events over
// loopback, through this transport and through net/http's, each with keep-alive.
func BenchmarkRoundTrip(b *testing.B) {
	event := "data: " + strings.Repeat("x", 200) + "\n\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for range 18 {
			_, _ = io.WriteString(w, event)
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	d := &net.Dialer{Timeout: time.Second}
	for _, c := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"h1", &Transport{Dial: d.DialContext, MaxIdle: 4, IdleTimeout: time.Minute}},
		{"net-http", &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4, DisableCompression: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			body := strings.Repeat("p", 300)
			buf := make([]byte, 4096)
			b.ReportAllocs()
			for range b.N {
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := c.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					k, err := resp.Body.Read(buf)
					n += k
					if err != nil {
						break
					}
				}
				resp.Body.Close()
				if n != 18*len(event) {
					b.Fatalf("read %d bytes", n)
				}
			}
		})
	}
}
