package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const testSecret = "sk-test-0123456789abcdef"

// writeFile writes content to dir/name and returns the full path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadSecretFromRelativeFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "secrets/key", "  "+testSecret+"\n\n")
	cfg := writeFile(t, dir, "conf/../inferprobe.yml", base("    api_key_file: secrets/key"))

	// Run from elsewhere: the path must resolve against the config file, not the cwd.
	t.Chdir(t.TempDir())
	c, err := Load(cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tg := c.Targets[0]
	if got := tg.APIKey.Value(); got != testSecret {
		t.Errorf("APIKey = %q, want the trimmed file content", got)
	}
	if want := filepath.Join(dir, "secrets", "key"); tg.APIKeyFile != want {
		t.Errorf("APIKeyFile = %q, want it made absolute: %q", tg.APIKeyFile, want)
	}
}

func TestLoadSecretFromEnv(t *testing.T) {
	t.Setenv("INFERPROBE_TEST_KEY", " "+testSecret+" ")
	cfg := writeFile(t, t.TempDir(), "c.yml", base("    api_key_env: INFERPROBE_TEST_KEY"))
	c, err := Load(cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := c.Targets[0].APIKey.Value(); got != testSecret {
		t.Errorf("APIKey = %q", got)
	}
}

func TestLoadSecretErrorsNameFieldAndLine(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "empty", " \n\t\n")
	writeFile(t, dir, "two-lines", testSecret+"\n"+testSecret+"\n")
	writeFile(t, dir, "huge", strings.Repeat("k", maxKeyFileSize+1))
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("INFERPROBE_EMPTY", "")
	t.Setenv("INFERPROBE_MULTI", testSecret+"\n"+testSecret)
	tests := []struct {
		name  string
		field string
		value string
		msg   string
	}{
		{"file missing", "api_key_file", "nope", "cannot read"},
		{"file empty", "api_key_file", "empty", "is empty"},
		{"file two lines", "api_key_file", "two-lines", "more than one line"},
		{"file too large", "api_key_file", "huge", "larger than 64 KiB"},
		{"file is a directory", "api_key_file", "adir", "is a directory"},
		{"env unset", "api_key_env", "INFERPROBE_SURELY_UNSET_VARIABLE", "INFERPROBE_SURELY_UNSET_VARIABLE is unset or empty"},
		{"env empty", "api_key_env", "INFERPROBE_EMPTY", "is unset or empty"},
		{"env two lines", "api_key_env", "INFERPROBE_MULTI", "line break"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeFile(t, dir, "c.yml", base("    "+tt.field+": "+tt.value))
			c, err := Load(cfg)
			if c != nil {
				t.Error("Load returned a config along with an error")
			}
			errs := asErrors(t, err)
			checkErrors(t, errs, []wantErr{{"targets[0]." + tt.field, 5, tt.msg}})
			if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), "kkkkkkkk") {
				t.Errorf("error reveals the secret: %v", err)
			}
		})
	}
}

func TestLoadSecretsCollectsEveryTarget(t *testing.T) {
	c := mustParse(t, doc(
		"targets:",
		"  - {name: a, url: 'http://h:1', model: m, api_key_env: A_KEY}",
		"  - {name: b, url: 'http://h:1', model: m}",
		"  - {name: c, url: 'http://h:1', model: m, api_key_env: C_KEY}",
	))
	env := map[string]string{"C_KEY": "c-secret"}
	err := c.LoadSecrets(func(k string) string { return env[k] })
	// Without Load's positions the errors have no line, but still the path.
	checkErrors(t, asErrors(t, err), []wantErr{{"targets[0].api_key_env", 0, "A_KEY is unset"}})
	if got := c.Targets[2].APIKey.Value(); got != "c-secret" {
		t.Errorf("targets[2] key = %q: one target's failure must not stop the others", got)
	}

	env["A_KEY"] = "a-secret"
	if err := c.LoadSecrets(func(k string) string { return env[k] }); err != nil {
		t.Fatalf("LoadSecrets: %v", err)
	}
	if c.Targets[0].APIKey.Value() != "a-secret" || c.Targets[1].APIKey.Value() != "" {
		t.Errorf("keys = %q, %q", c.Targets[0].APIKey.Value(), c.Targets[1].APIKey.Value())
	}
}

func TestLoadSecretsNilGetenvUsesEnvironment(t *testing.T) {
	t.Setenv("INFERPROBE_TEST_KEY", testSecret)
	c := mustParse(t, base("    api_key_env: INFERPROBE_TEST_KEY"))
	if err := c.LoadSecrets(nil); err != nil {
		t.Fatal(err)
	}
	if c.Targets[0].APIKey.Value() != testSecret {
		t.Error("nil getenv did not read the environment")
	}
}

func TestLoadFileErrors(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want an error wrapping fs.ErrNotExist", err)
	}
	bad := writeFile(t, t.TempDir(), "bad.yml", base("    timeout: forever"))
	_, err = Load(bad)
	checkErrors(t, asErrors(t, err), []wantErr{{"targets[0].timeout", 5, "as a duration"}})
}

// The secret must never leave through formatting, encoding or errors.
func TestSecretNeverPrinted(t *testing.T) {
	t.Setenv("INFERPROBE_TEST_KEY", testSecret)
	cfg := writeFile(t, t.TempDir(), "c.yml", base("    api_key_env: INFERPROBE_TEST_KEY"))
	c, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tg := c.Targets[0]
	if tg.APIKey.Value() != testSecret {
		t.Fatal("secret not loaded; the test would prove nothing")
	}
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v config": fmt.Sprintf("%v", c), "%+v config": fmt.Sprintf("%+v", c), "%#v config": fmt.Sprintf("%#v", c),
		"%v target": fmt.Sprintf("%v", tg), "%+v target": fmt.Sprintf("%+v", tg), "%#v target": fmt.Sprintf("%#v", tg),
		"%s key": fmt.Sprintf("%s", tg.APIKey), //lint:ignore S1025 each fmt verb is under test, %s included
		"%q key": fmt.Sprintf("%q", tg.APIKey), "%x key": fmt.Sprintf("%x", tg.APIKey),
		"yaml": string(y), "json": string(j),
		"fingerprint": tg.Fingerprint(),
	}
	for name, out := range outputs {
		if strings.Contains(out, testSecret) || strings.Contains(out, fmt.Sprintf("%x", testSecret)) {
			t.Errorf("%s reveals the secret: %s", name, out)
		}
	}
	if !strings.Contains(outputs["%+v target"], "<secret>") {
		t.Errorf("%%+v of a target does not show the redaction placeholder: %s", outputs["%+v target"])
	}
}

// writeCertPair writes a self-signed certificate and its key as PEM files in dir.
func writeCertPair(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "inferprobe-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, dir, "client.crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, dir, "client.key", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	return certFile, keyFile
}

func TestLoadTLSFilesRelativeToConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCertPair(t, filepath.Join(dir, "tls"))
	cfg := writeFile(t, dir, "c.yml", doc(
		"targets:",
		"  - name: t",
		"    url: https://127.0.0.1:8443",
		"    model: m",
		"    tls:",
		"      ca_file: tls/client.crt", // a self-signed certificate is its own CA
		"      cert_file: tls/client.crt",
		"      key_file: tls/client.key",
		"      server_name: inference.internal",
	))
	t.Chdir(t.TempDir())
	c, err := Load(cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	got := c.Targets[0].TLS
	if got.CAFile != certFile || got.CertFile != certFile || got.KeyFile != keyFile {
		t.Errorf("tls paths = %+v, want absolute paths under %s", got, dir)
	}

	// The same file read from the wrong directory by Parse fails, naming the field.
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(data)
	checkErrors(t, asErrors(t, err), []wantErr{
		{"targets[0].tls.ca_file", 6, "cannot read"},
		{"targets[0].tls.cert_file", 7, "cannot load the client certificate"},
	})
}
