package asyncloop

import (
	"net"
	"runtime"
	"unsafe"
)

// Protocol receives the events of a stream connection, as asyncio's
// asyncio.Protocol. Every method runs on the loop's thread, inside the run
// call. Embed BaseProtocol to implement only some of them.
type Protocol interface {
	// ConnectionMade is called when the connection is made; t stays valid
	// until ConnectionLost returns.
	ConnectionMade(t *Transport)
	// DataReceived is called with bytes from the peer. data is only valid
	// during the call (it points into the library's read buffer): copy
	// what you keep.
	DataReceived(data []byte)
	// EOFReceived is called when the peer closed its write side. Return
	// true to keep the transport half-open (you may still write), false to
	// close it.
	EOFReceived() bool
	// ConnectionLost is the last call for a connection: err is nil for a
	// clean close or EOF, else an *Error.
	ConnectionLost(err error)
	// PauseWriting and ResumeWriting are called when the transport's write
	// buffer crosses the high / low water mark.
	PauseWriting()
	ResumeWriting()
}

// BufferedProtocol is a Protocol that receives data in its own buffer
// (asyncio.BufferedProtocol): GetBuffer is used instead of DataReceived.
// The library reads straight into the returned slice (len >= 1), then calls
// BufferUpdated with the number of bytes written there. The slice must not
// be touched until BufferUpdated.
type BufferedProtocol interface {
	Protocol
	GetBuffer(sizeHint int) []byte
	BufferUpdated(n int)
}

// BaseProtocol implements every Protocol method as a no-op (EOFReceived
// returns false: the transport closes itself). Embed it.
type BaseProtocol struct{}

func (BaseProtocol) ConnectionMade(*Transport) {}
func (BaseProtocol) DataReceived([]byte)       {}
func (BaseProtocol) EOFReceived() bool         { return false }
func (BaseProtocol) ConnectionLost(error)      {}
func (BaseProtocol) PauseWriting()             {}
func (BaseProtocol) ResumeWriting()            {}

// DatagramProtocol receives the events of a datagram endpoint
// (asyncio.DatagramProtocol). Embed BaseDatagramProtocol.
type DatagramProtocol interface {
	// ConnectionMade is called when the endpoint is ready.
	ConnectionMade(t *DatagramTransport)
	// DatagramReceived is called with one datagram (possibly empty; valid
	// only during the call) and its sender: a *net.UDPAddr, or a
	// *net.UnixAddr (Name "" for an unbound sender).
	DatagramReceived(data []byte, addr net.Addr)
	// ErrorReceived is called when a send or receive failed (for example
	// ECONNREFUSED on a connected UDP socket); the endpoint stays open.
	ErrorReceived(err error)
	// ConnectionLost is the last call: err is nil after Close or Abort.
	ConnectionLost(err error)
	PauseWriting()
	ResumeWriting()
}

// BaseDatagramProtocol implements every DatagramProtocol method as a no-op.
type BaseDatagramProtocol struct{}

func (BaseDatagramProtocol) ConnectionMade(*DatagramTransport) {}
func (BaseDatagramProtocol) DatagramReceived([]byte, net.Addr) {}
func (BaseDatagramProtocol) ErrorReceived(error)               {}
func (BaseDatagramProtocol) ConnectionLost(error)              {}
func (BaseDatagramProtocol) PauseWriting()                     {}
func (BaseDatagramProtocol) ResumeWriting()                    {}

// SubprocessProtocol receives the events of a child process
// (asyncio.SubprocessProtocol). fd is the child's 0, 1 or 2. Embed
// BaseSubprocessProtocol.
type SubprocessProtocol interface {
	// ConnectionMade is called first, once the child runs.
	ConnectionMade(p *SubprocessTransport)
	// PipeDataReceived is called with what the child wrote to fd 1 or 2
	// (valid only during the call).
	PipeDataReceived(fd int, data []byte)
	// PipeConnectionLost is called once per pipe when it closes.
	PipeConnectionLost(fd int, err error)
	// ProcessExited is called when the child exited (ReturnCode tells how);
	// pipe data may still follow.
	ProcessExited()
	// ConnectionLost is the last call, once the child exited and every pipe
	// is closed.
	ConnectionLost(err error)
	// PauseWriting and ResumeWriting are about the stdin pipe's buffer.
	PauseWriting()
	ResumeWriting()
}

// BaseSubprocessProtocol implements every SubprocessProtocol method as a
// no-op.
type BaseSubprocessProtocol struct{}

func (BaseSubprocessProtocol) ConnectionMade(*SubprocessTransport) {}
func (BaseSubprocessProtocol) PipeDataReceived(int, []byte)        {}
func (BaseSubprocessProtocol) PipeConnectionLost(int, error)       {}
func (BaseSubprocessProtocol) ProcessExited()                      {}
func (BaseSubprocessProtocol) ConnectionLost(error)                {}
func (BaseSubprocessProtocol) PauseWriting()                       {}
func (BaseSubprocessProtocol) ResumeWriting()                      {}

// conn is the userdata of one protocol registration.
type conn struct {
	loop      *Loop
	proto     Protocol
	buffered  BufferedProtocol
	transport *Transport
	buf       []byte         // the last GetBuffer's buffer, pinned (pinBuf)
	pin       runtime.Pinner // pins buf
}

func (c *conn) owner() *Loop { return c.loop }

// pinBuf pins the buffer GetBuffer returned: the library reads into it
// after get_buffer returned (cmem.go). It stays pinned until GetBuffer
// returns another one or the protocol is released, so that a protocol
// that gives the same buffer every time pays for one Pin (≈ 160 ns) once.
func (c *conn) pinBuf(buf []byte) {
	if c.buf == nil || unsafe.SliceData(c.buf) != unsafe.SliceData(buf) {
		c.unpinBuf()
		c.pin.Pin(unsafe.SliceData(buf))
	}
	c.buf = buf
}

// unpinBuf unpins the last GetBuffer's buffer.
func (c *conn) unpinBuf() {
	if c.buf != nil {
		c.pin.Unpin()
		c.buf = nil
	}
}

// freed: the library released the protocol (free_cb), or the loop was
// closed (Loop.Close): it will not read into the buffer any more, and a
// Pinner must not become unreachable with objects pinned.
func (c *conn) freed() { c.unpinBuf() }

func newConn(l *Loop, p Protocol, network string) *conn {
	c := &conn{loop: l, proto: p}
	c.buffered, _ = p.(BufferedProtocol)
	c.transport = &Transport{loop: l, conn: c, network: network}
	return c
}

func (c *conn) cproto() *cProtocol {
	if c.buffered != nil {
		return &cb.bufferedProtocol
	}
	return &cb.protocol
}
