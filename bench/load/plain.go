package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/traffic"
)

// plainClient is the reference client of `--client=plain`: inside the engine (the same pacer,
// prompt source, run loop, probe collector and observers), it does per request what the
// plain-HTTP load generator does: it POSTs the body the OpenAI client would send for the
// request, with net/http and a total timeout, and reads the response to its end without
// parsing it. It sends with net/http's transport, as vegeta does (the engine's own client sends
// http:// requests with the builtin HTTP/1.1 one): set against vegeta it is the engine's own cost
// over a net/http client; set against the real client, the cost of measuring the stream less what
// the builtin transport saves.
type plainClient struct {
	body   *prober.OpenAIClient // encodes the bodies only; never sends
	http   *http.Client
	url    string
	header http.Header
}

// newPlainClient builds the reference client of a validated OpenAI chat target.
func newPlainClient(t config.Target) (prober.Client, error) {
	enc, err := prober.NewOpenAIClient(t)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "text/event-stream")
	return &plainClient{
		body: enc,
		// Keep-alive and an idle pool as large as the in-flight cap, as the engine's client
		// has; compression off, as the simulator sends none.
		http: &http.Client{Timeout: t.Timeout, Transport: &http.Transport{
			MaxIdleConns: t.Traffic.MaxInFlight, MaxIdleConnsPerHost: t.Traffic.MaxInFlight, DisableCompression: true}},
		url:    strings.TrimRight(t.URL, "/") + "/v1/chat/completions",
		header: h,
	}, nil
}

// Do implements prober.Client: success is a 2xx answer read to its end.
func (c *plainClient) Do(ctx context.Context, req traffic.Request, rec *prober.Record) {
	body, err := c.body.Body(req)
	if err != nil {
		rec.Start, rec.Result, rec.Err = time.Now(), prober.ResultProtocol, err
		return
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		rec.Start, rec.Result, rec.Err = time.Now(), prober.ResultProtocol, err
		return
	}
	hreq.Header = c.header
	rec.Start = time.Now() // t0 just before the send, as the engine's client takes it
	resp, err := c.http.Do(hreq)
	if err != nil {
		rec.End, rec.Result, rec.Err = time.Since(rec.Start), prober.ResultConnection, err
		return
	}
	c.read(resp, rec)
}

// read reads the answer to its end and classes it.
func (c *plainClient) read(resp *http.Response, rec *prober.Record) {
	defer resp.Body.Close()
	rec.Status = resp.StatusCode
	_, err := io.Copy(io.Discard, resp.Body)
	rec.End = time.Since(rec.Start)
	switch {
	case err != nil:
		rec.Result, rec.Err = prober.ResultStreamTruncated, err
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		rec.Result = prober.ClassifyStatus(resp.StatusCode)
	default:
		rec.Result = prober.ResultSuccess
	}
}

// Close releases idle connections.
func (c *plainClient) Close() {
	c.http.CloseIdleConnections()
	c.body.Close()
}
