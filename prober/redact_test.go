package prober

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/internal/testkit"
)

// errObserver keeps the error text of every finished record.
type errObserver struct {
	testkit.LockedBuffer
}

func (o *errObserver) Observe(ev Event) {
	if ev.Kind == EventRequestFinished && ev.Record.Err != nil {
		_, _ = fmt.Fprintln(&o.LockedBuffer, ev.Record.Err.Error())
	}
}

// TestRunnerRedactsEchoedCredentials: a server that answers 401 echoing the request's
// Authorization and X-Api-Key headers (as some gateways' error pages do) must not carry the
// key into the record that observers (the landing page, traces) see, nor into the log. The
// rest of the message stays, and a short, non-secret header value is left alone.
func TestRunnerRedactsEchoedCredentials(t *testing.T) {
	const key, gateway = "sk-echo-SECRET-0123456789", "gw-token-SECRET-abcdef"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = fmt.Fprintf(w, `{"error": "invalid credentials: Authorization=%q X-Api-Key=%q team=%q"}`,
			r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), r.Header.Get("X-Team"))
	}))
	defer srv.Close()
	tgt := testTarget(srv.URL, APIOpenAIChat)
	tgt.APIKey = config.Secret(key)
	tgt.Headers = map[string]string{"X-Api-Key": gateway, "X-Team": "ml"}
	c, err := NewOpenAIClient(tgt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	obs := &errObserver{}
	logs := &testkit.LockedBuffer{}
	r := NewRunner(RunnerConfig{
		Target: &TargetInfo{Name: "t"}, Pacer: stepPacer{gap: time.Millisecond, limit: 3}, Source: seqSource{},
		Client: c, Gate: NewGate(WarmupConfig{}, nil), Observer: obs, MaxInFlight: 3, // none dropped, however slow the machine
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Secrets: TargetSecrets(tgt),
	})
	r.Run(context.Background())
	seen, logged := obs.String(), logs.String()
	if strings.Count(seen, "HTTP 401") != 3 {
		t.Fatalf("want three HTTP 401 errors, observers saw:\n%s", seen)
	}
	for _, secret := range []string{key, gateway} {
		if strings.Contains(seen, secret) {
			t.Errorf("an observed error carries %q:\n%s", secret, seen)
		}
		if strings.Contains(logged, secret) {
			t.Errorf("the log carries %q:\n%s", secret, logged)
		}
	}
	for _, want := range []string{`Authorization="Bearer ` + Redacted + `"`, `X-Api-Key="` + Redacted + `"`, `team="ml"`} {
		if !strings.Contains(seen, want) {
			t.Errorf("the observed error lacks %s:\n%s", want, seen)
		}
	}
	if !strings.Contains(logged, "invalid credentials") {
		t.Errorf("the log lost the error:\n%s", logged)
	}
}

func TestTargetSecrets(t *testing.T) {
	tgt := config.Target{URL: "https://probe:url-pass@llm.example:8443/v1", APIKey: "sk-1",
		Headers: map[string]string{"Authorization": "Basic dXNlcjpwYXNz", "X-Version": "2024-10"}}
	got := TargetSecrets(tgt)
	want := map[string]bool{"sk-1": true, "url-pass": true, "Basic dXNlcjpwYXNz": true}
	if len(got) != len(want) {
		t.Fatalf("secrets %q, want %v", got, want)
	}
	for _, s := range got {
		if !want[s] {
			t.Errorf("%q is not a credential of the target (secrets %q)", s, got)
		}
	}
	if s := TargetSecrets(config.Target{URL: "http://127.0.0.1:8000"}); len(s) != 0 {
		t.Errorf("a target without credentials has secrets %q", s)
	}
}

func TestRedactor(t *testing.T) {
	r := newRedactor([]string{"abc", "", "abcdef", "abc"})
	cause := errors.New("plain failure")
	if got := r.error(cause); got != cause {
		t.Errorf("an error without a secret came back as %v, want it unchanged", got)
	}
	if r.error(nil) != nil {
		t.Error("nil came back non-nil")
	}
	wrapped := fmt.Errorf("HTTP 403: key abcdef, prefix abc: %w", cause)
	got := r.error(wrapped)
	if want := "HTTP 403: key <secret>, prefix <secret>: plain failure"; got.Error() != want {
		t.Errorf("redacted %q, want %q (the longer secret replaced whole)", got, want)
	}
	if errors.Unwrap(got) != nil {
		t.Error("a redacted error unwraps to the original text")
	}
}
