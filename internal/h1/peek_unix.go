//go:build unix

package h1

import (
	"errors"
	"net"
	"syscall"
)

// peeker checks an idle connection with one non-blocking peek, instead of net/http's reader
// goroutine per idle connection: nothing to read means open; the end of the stream, an error
// or bytes the server sent unasked mean it is not to be used. Its state is built once per
// connection, so a check allocates nothing.
type peeker struct {
	raw     syscall.RawConn // nil: cannot peek
	fn      func(fd uintptr) bool
	isOpen  bool
	scratch [1]byte
}

func (p *peeker) init(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	p.raw = raw
	p.fn = func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), p.scratch[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		p.isOpen = errors.Is(err, syscall.EAGAIN)
		return true // never wait: this is a check, not a read
	}
}

func (p *peeker) open() bool {
	if p.raw == nil {
		return true // nothing to peek with; a closed one fails at use as ErrServerClosed
	}
	p.isOpen = false
	return p.raw.Read(p.fn) == nil && p.isOpen
}
