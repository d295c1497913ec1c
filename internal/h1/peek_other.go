//go:build !unix

package h1

import "net"

// peeker cannot peek on this platform: a connection the server closed fails at use, as
// ErrServerClosed.
type peeker struct{}

func (*peeker) init(net.Conn) {}

func (*peeker) open() bool { return true }
