package prober

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// phaseTrace collects the HTTP phase timings of one send through net/http/httptrace. The
// transport calls the hooks from its own goroutines (the dial runs apart from the request, and
// may finish after a canceled request returned), so the fields are guarded and end copies them
// into the record once: later hooks change nothing.
type phaseTrace struct {
	mu       sync.Mutex
	done     bool
	start    time.Time
	dnsAt    time.Time
	dialAt   time.Time
	tlsAt    time.Time
	connAt   time.Time
	wroteAt  time.Time
	phases   [NumPhases]time.Duration
	set      uint8
	conns    int            // connections handed to this send (more than one: the transport resent it)
	dialed   bool           // a DNS lookup or a dial started for this send
	conn     writtenCounter // the connection of the last GotConn, nil if none
	written0 int64          // its byte count when it was handed out
	ct       *httptrace.ClientTrace
}

// writtenCounter is what countingConn adds to a net.Conn.
type writtenCounter interface{ BytesWritten() int64 }

// countingConn counts the bytes written into a connection, so a failed send can tell whether
// any byte of the request went out (then the server may have seen it, and it is not resent).
type countingConn struct {
	net.Conn
	written atomic.Int64
}

// Write implements net.Conn.
func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// SyscallConn gives the builtin transport the connection's descriptor, to check an idle
// connection with one non-blocking peek.
func (c *countingConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("not a system connection")
}

// BytesWritten returns the bytes written so far.
func (c *countingConn) BytesWritten() int64 { return c.written.Load() }

func (t *phaseTrace) begin(start time.Time) {
	t.mu.Lock()
	t.start, t.done = start, false
	t.mu.Unlock()
}

func (t *phaseTrace) mark(p int, since time.Time) {
	if t.done || since.IsZero() {
		return
	}
	t.phases[p] = time.Since(since)
	t.set |= 1 << p
}

func (t *phaseTrace) trace() *httptrace.ClientTrace {
	if t.ct != nil {
		return t.ct
	}
	// Each hook takes the lock itself: a helper taking a func would allocate a closure on
	// every call of every hook.
	t.ct = &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) {
			t.mu.Lock()
			t.dialed = true
			t.dnsAt = time.Now()
			t.mu.Unlock()
		},
		DNSDone: func(i httptrace.DNSDoneInfo) {
			t.mu.Lock()
			if i.Err == nil {
				t.mark(PhaseDNS, t.dnsAt)
			}
			t.mu.Unlock()
		},
		ConnectStart: func(string, string) {
			t.mu.Lock()
			t.dialed = true
			t.dialAt = time.Now()
			t.mu.Unlock()
		},
		ConnectDone: func(_, _ string, err error) {
			t.mu.Lock()
			if err == nil {
				t.mark(PhaseConnect, t.dialAt)
			}
			t.mu.Unlock()
		},
		TLSHandshakeStart: func() {
			t.mu.Lock()
			t.tlsAt = time.Now()
			t.mu.Unlock()
		},
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			t.mu.Lock()
			if err == nil {
				t.mark(PhaseTLS, t.tlsAt)
			}
			t.mu.Unlock()
		},
		GotConn:              t.gotConn,
		WroteRequest:         t.wroteRequest,
		GotFirstResponseByte: t.gotFirstResponseByte,
	}
	return t.ct
}

func (t *phaseTrace) gotConn(i httptrace.GotConnInfo) {
	now := time.Now()
	c := i.Conn
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	wc, _ := c.(writtenCounter)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.connAt = now
	t.conns++
	t.conn, t.written0 = nil, 0
	if wc != nil {
		t.conn, t.written0 = wc, wc.BytesWritten()
	}
}

func (t *phaseTrace) wroteRequest(i httptrace.WroteRequestInfo) {
	if i.Err != nil {
		return
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.wroteAt = now
	t.mark(PhaseRequestWrite, t.connAt)
}

func (t *phaseTrace) gotFirstResponseByte() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mark(PhaseFirstByte, t.wroteAt)
}

// end copies the phases into rec and stops further hooks from writing; a transport that
// resent the request on a fresh connection by itself (it does when nothing was written on a
// reused one) is counted as a retry.
func (t *phaseTrace) end(rec *Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done = true
	rec.Phases, rec.PhaseSet = t.phases, t.set
	if t.conns > 1 {
		rec.Retries += t.conns - 1
	}
}

// reusable reports whether no hook of this send can still run: it dialed nothing.
func (t *phaseTrace) reusable() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done && !t.dialed
}

// reset clears a reusable trace for its next send, keeping its hooks.
func (t *phaseTrace) reset() {
	ct := t.ct
	*t = phaseTrace{ct: ct}
}

// neverWritten reports whether the send got a connection and not one byte of the request
// went into it.
func (t *phaseTrace) neverWritten() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.conn != nil && t.conn.BytesWritten() == t.written0
}
