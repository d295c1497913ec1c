package prober

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/traffic"
)

func TestOpenAIOverTLS(t *testing.T) {
	srv := httptest.NewTLSServer(transcript(sse, 0, vllmChat...))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tls  config.TLS
		want string
	}{
		{"trusted through ca_file", config.TLS{CAFile: caFile}, ResultSuccess},
		{"insecure_skip_verify", config.TLS{InsecureSkipVerify: true}, ResultSuccess},
		{"unknown CA is a connection failure", config.TLS{}, ResultConnection},
		{"wrong server_name", config.TLS{CAFile: caFile, ServerName: "not-the-server.example"}, ResultConnection},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tgt := testTarget(srv.URL, config.APIOpenAIChat)
			tgt.TLS = tc.tls
			c, err := NewOpenAIClient(tgt)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rec := &Record{}
			c.Do(context.Background(), traffic.Request{Prompt: "x"}, rec)
			if rec.Result != tc.want {
				t.Fatalf("result %s (%v), want %s", rec.Result, rec.Err, tc.want)
			}
		})
	}
	if _, err := NewOpenAIClient(func() config.Target {
		tgt := testTarget(srv.URL, config.APIOpenAIChat)
		tgt.TLS.CAFile = filepath.Join(t.TempDir(), "missing.pem")
		return tgt
	}()); err == nil {
		t.Error("a missing ca_file must fail client construction")
	}
}
