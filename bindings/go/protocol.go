package asyncloop

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

// conn is the userdata of one protocol registration.
type conn struct {
	loop      *Loop
	proto     Protocol
	buffered  BufferedProtocol
	transport *Transport
	buf       []byte
}

func newConn(l *Loop, p Protocol) *conn {
	c := &conn{loop: l, proto: p}
	c.buffered, _ = p.(BufferedProtocol)
	c.transport = &Transport{loop: l, conn: c}
	return c
}

func (c *conn) cproto() *cProtocol {
	if c.buffered != nil {
		return &cb.bufferedProtocol
	}
	return &cb.protocol
}
