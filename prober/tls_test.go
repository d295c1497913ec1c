package prober

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/traffic"
)

// doTLS sends one request to url with the given TLS settings.
func doTLS(t *testing.T, url string, tlsCfg config.TLS) *Record {
	t.Helper()
	tgt := testTarget(url, APIOpenAIChat)
	tgt.TLS = tlsCfg
	c, err := NewOpenAIClient(tgt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec := &Record{}
	c.Do(context.Background(), traffic.Request{Prompt: "x"}, rec)
	return rec
}

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
			if rec := doTLS(t, srv.URL, tc.tls); rec.Result != tc.want {
				t.Fatalf("result %s (%v), want %s", rec.Result, rec.Err, tc.want)
			}
		})
	}
	if _, err := NewOpenAIClient(func() config.Target {
		tgt := testTarget(srv.URL, APIOpenAIChat)
		tgt.TLS.CAFile = filepath.Join(t.TempDir(), "missing.pem")
		return tgt
	}()); err == nil {
		t.Error("a missing ca_file must fail client construction")
	}
}

// writeClientCert writes a self-signed client certificate and key as PEM files.
func writeClientCert(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "inferprobe-test-client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// TestOpenAIMutualTLS: a server that requires a client certificate accepts the configured one
// and refuses a client without it.
func TestOpenAIMutualTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, clientCert := writeClientCert(t, dir)
	srv := httptest.NewUnstartedServer(transcript(sse, 0, vllmChat...))
	pool := x509.NewCertPool()
	pool.AddCert(clientCert)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()

	for _, tc := range []struct {
		name string
		tls  config.TLS
		want string
	}{
		{"with the client certificate", config.TLS{InsecureSkipVerify: true, CertFile: certFile, KeyFile: keyFile}, ResultSuccess},
		{"without it", config.TLS{InsecureSkipVerify: true}, ResultConnection},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if rec := doTLS(t, srv.URL, tc.tls); rec.Result != tc.want {
				t.Fatalf("result %s (%v), want %s", rec.Result, rec.Err, tc.want)
			}
		})
	}
}
