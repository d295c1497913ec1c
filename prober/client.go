package prober

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/traffic"
)

// Client sends one request and fills in its timing record. Each API flavour implements it in a
// file of its own. Do must set rec.Start, rec.End and rec.Result, and must return once ctx is
// done.
type Client interface {
	Do(ctx context.Context, req traffic.Request, rec *Record)
}

// NewClient returns the client for a target's API flavour, from the registry.
func NewClient(t config.Target) (Client, error) {
	api, ok := LookupAPI(t.API)
	if !ok {
		return nil, fmt.Errorf("api: unknown flavour %q (registered: %s)", t.API, strings.Join(APINames(), ", "))
	}
	if t.Path == "" {
		t.Path = api.DefaultPath(t.Request.Streaming())
	}
	return api.New(t)
}

// Timeout causes, told apart so that every timeout is classed as one and logs say which.
var (
	errFirstByteTimeout = errors.New("no response headers within first_byte_timeout")
	errIdleTimeout      = errors.New("no data within idle_timeout")
	errTotalTimeout     = errors.New("request exceeded timeout")
	errTooLarge         = errors.New("response exceeded max_response_bytes")
)

// NewTransport builds a target's HTTP transport: keep-alive with up to max_in_flight idle
// connections, bounded dial and TLS handshake, no transparent compression (it would buffer the
// stream) and no proxy from the environment (a prober measures the path it is told to).
func NewTransport(t config.Target) (*http.Transport, error) {
	tlsCfg, err := tlsConfig(t.TLS)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: t.ConnectTimeout, KeepAlive: 30 * time.Second}
	maxIdle := t.Traffic.MaxInFlight
	if maxIdle < 2 {
		maxIdle = 2
	}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c}, nil
		},
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   t.ConnectTimeout,
		MaxIdleConns:          maxIdle,
		MaxIdleConnsPerHost:   maxIdle,
		IdleConnTimeout:       idleConnTimeout(t.IdleConnTimeout),
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
		ExpectContinueTimeout: 0,
	}, nil
}

// idleConnTimeout is the configured keep-alive idle time, or its default for a target built in
// code without defaults.
func idleConnTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return config.DefaultIdleConnTimeout
	}
	return d
}

func tlsConfig(c config.TLS) (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // explicitly configured by the user
		MinVersion:         tls.VersionTLS12,
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: no PEM certificates in %s", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// classify maps a transport or read error to a result class. parent is the caller's context:
// its end means the request was canceled by us (stop or reload), not timed out. cause is what
// the request's own bounds ended it with (a timeout), nil if they did not.
func classify(parent context.Context, cause, err error, afterHeaders bool) string {
	if cause != nil && parent.Err() == nil {
		switch {
		case errors.Is(cause, errFirstByteTimeout), errors.Is(cause, errIdleTimeout), errors.Is(cause, errTotalTimeout):
			return ResultTimeout
		}
	}
	if parent.Err() != nil {
		return ResultCanceled
	}
	switch {
	case errors.Is(err, errTooLarge), errors.Is(err, ErrEventTooLarge):
		return ResultProtocol
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ResultTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ResultTimeout
	}
	if afterHeaders {
		return ResultStreamTruncated
	}
	return ResultConnection
}

// ClassifyStatus maps a non-2xx HTTP status to a result class: 429, other 4xx, 5xx, and
// protocol for anything else (a 1xx or 3xx answer is not one a prober expects).
func ClassifyStatus(code int) string {
	switch {
	case code == http.StatusTooManyRequests:
		return ResultHTTP429
	case code >= 400 && code < 500:
		return ResultHTTP4xx
	case code >= 500:
		return ResultHTTP5xx
	default:
		return ResultProtocol
	}
}

// limitedBody fails a read once more than max bytes came, instead of silently stopping like
// io.LimitReader, so an oversized response is an error and not a truncated stream. It also
// calls onData after every read that returned bytes: the idle timeout counts from the last
// bytes received, keep-alive comments included (TGI sends one every 15 s while queued).
type limitedBody struct {
	r      interface{ Read([]byte) (int, error) }
	left   int64
	onData func()
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// At the limit: only a clean end of body is fine.
		var probe [1]byte
		if n, err := l.r.Read(probe[:]); n == 0 && err != nil {
			return 0, err
		}
		return 0, errTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if n > 0 && l.onData != nil {
		l.onData()
	}
	return n, err
}
