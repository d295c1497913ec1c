package simulator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/inferprobe/inferprobe/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fastConfig is a configuration whose requests finish in a few milliseconds.
func fastConfig() Config {
	c := DefaultConfig()
	c.TTFTBase = time.Millisecond
	c.TTFTPerPromptToken = 0
	c.ITL = time.Millisecond
	c.ITLJitter = 0
	return c
}

// startServer serves a simulator built from cfg on 127.0.0.1 and closes both at cleanup.
func startServer(t testing.TB, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, ts
}

// post sends a JSON body and returns the response; the caller closes its body. It must run
// on the test goroutine; other goroutines use send.
func post(t testing.TB, ctx context.Context, ts *httptest.Server, path string, body any) *http.Response {
	t.Helper()
	resp, err := send(ctx, ts, path, body)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// send sends a JSON body (a string is sent as is) and returns the response.
func send(ctx context.Context, ts *httptest.Server, path string, body any) (*http.Response, error) {
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	return resp, nil
}

// sseEvent is one `data:` event and when the client parsed it.
type sseEvent struct {
	data string
	at   time.Time
}

// readSSE reads a stream strictly: every event must be exactly `data: X` followed by a blank
// line. It returns the events read before EOF or the first read error.
func readSSE(r io.Reader) ([]sseEvent, error) {
	br := bufio.NewReader(r)
	var events []sseEvent
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF && line == "" {
			return events, nil
		}
		if err != nil {
			return events, err
		}
		at := time.Now()
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || !strings.HasSuffix(data, "\n") {
			return events, fmt.Errorf("line %q is not a data line", line)
		}
		blank, err := br.ReadString('\n')
		if err != nil || blank != "\n" {
			return events, fmt.Errorf("event %q not followed by a blank line (got %q, %v)", data, blank, err)
		}
		events = append(events, sseEvent{data: strings.TrimSuffix(data, "\n"), at: at})
	}
}

// wireChunk is a streamed chunk as a client decodes it.
type wireChunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta *struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		Text         *string         `json:"text"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason *string         `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

// tokenText returns the generated text a chunk carries and whether it carries any.
func (c *wireChunk) tokenText() (string, bool) {
	if len(c.Choices) == 0 {
		return "", false
	}
	ch := c.Choices[0]
	switch {
	case ch.Delta != nil && ch.Delta.Content != nil && *ch.Delta.Content != "":
		return *ch.Delta.Content, true
	case ch.Text != nil && *ch.Text != "":
		return *ch.Text, true
	}
	return "", false
}

// streamSummary is what a client makes of one streamed response.
type streamSummary struct {
	status    int
	tokens    int
	text      string
	malformed int
	finish    string
	done      bool
	usage     int // completion_tokens, -1 when absent
	firstTok  time.Time
	tokTimes  []time.Time
	readErr   error
	sent      time.Time
	eventsRaw []string
}

// stream sends a streaming request and reads it to the end. It is safe on any goroutine: a
// failure to send shows as status 0 and readErr.
func stream(ctx context.Context, ts *httptest.Server, path string, body map[string]any) streamSummary {
	body["stream"] = true
	sum := streamSummary{usage: -1, sent: time.Now()}
	resp, err := send(ctx, ts, path, body)
	if err != nil {
		sum.readErr = err
		return sum
	}
	defer resp.Body.Close()
	sum.status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return sum
	}
	events, err := readSSE(resp.Body)
	sum.readErr = err
	for _, e := range events {
		sum.eventsRaw = append(sum.eventsRaw, e.data)
		if e.data == "[DONE]" {
			sum.done = true
			continue
		}
		var c wireChunk
		if json.Unmarshal([]byte(e.data), &c) != nil {
			sum.malformed++
			continue
		}
		if txt, ok := c.tokenText(); ok {
			if sum.tokens == 0 {
				sum.firstTok = e.at
			}
			sum.tokens++
			sum.text += txt
			sum.tokTimes = append(sum.tokTimes, e.at)
		}
		if len(c.Choices) > 0 && c.Choices[0].FinishReason != nil {
			sum.finish = *c.Choices[0].FinishReason
		}
		if c.Usage != nil {
			sum.usage = c.Usage.CompletionTokens
		}
	}
	return sum
}

// scrape fetches and parses /metrics.
func scrape(t testing.TB, ts *httptest.Server) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := ts.Client().Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// waitFor polls cond every few milliseconds until it holds or the deadline passes.
func waitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, within, 2*time.Millisecond, what, cond)
}

// words returns a prompt of n words.
func words(n int) string {
	return strings.TrimSpace(strings.Repeat("lorem ", n))
}
