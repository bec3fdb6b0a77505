package core

// TLS over stream transports (asyncio's ssl= and start_tls) with Go's
// crypto/tls; no OpenSSL.
//
// The socket stays on the loop thread's reactor and the application's
// protocol sees plaintext through the same *Transport. crypto/tls needs a
// net.Conn, so a tls.Conn runs over memConn, an in-memory net.Conn fed by the
// loop thread:
//
//   - After the handshake, Read and Write of the tls.Conn run on the loop
//     thread itself. memConn.Read returns a *temporary* net.Error when it has
//     no bytes ("would block"); crypto/tls keeps its record state across such
//     errors (it only latches non-temporary read errors), so a partial record
//     simply waits in the tls.Conn for the next readable event. memConn.Write
//     appends the records to a buffer that the loop sends with the
//     transport's own non-blocking write path (one send per batch).
//   - The handshake of crypto/tls is straight-line blocking code that cannot
//     be resumed after a read error, so it runs in a goroutine used as a
//     coroutine: the loop thread resumes it when ciphertext arrived and waits
//     until it needs more (or finishes). The two never run at the same time
//     (strict hand-off over two channels), the goroutine only touches the
//     memConn and the tls.Conn, never the loop or the host, and it exits when
//     the handshake ends or the transport goes away.
//
// Measured (2-core machine shared with other jobs, go1.26; a 10 MB echo
// over loopback with both ends on one loop, TLS 1.3 AES-128-GCM, so every
// byte is encrypted and decrypted twice on the loop thread): this design
// 380-500 MB/s of echoed payload (BenchmarkTLSEcho10MB: ~355 MB/s; the same
// echo without TLS ~0.9-1.1 GB/s). A throwaway prototype of the other
// design, a goroutine per connection running tls.Conn over a blocking pipe
// with ciphertext and plaintext handed over through CallSoonThreadsafe,
// reached 160-200 MB/s in the same run: every chunk paid thread hand-offs
// and a copy, and the goroutines competed with the loop for the two cores.
// So the loop-thread design was kept.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// TLS errors: ErrCert is a failed verification of the peer's certificate
// (unknown authority, self-signed, expired, wrong host name); ErrTLS any other
// TLS failure (protocol error, alert from the peer, no common version or
// ALPN protocol, ...). A *TLSError matches ErrTLS, and ErrCert as well when
// it is a certificate failure.
var (
	ErrTLS  = errors.New("TLS error")
	ErrCert = errors.New("certificate verification failed")
)

// TLSError is a TLS failure with the error of crypto/tls.
type TLSError struct {
	Op   string
	Err  error
	Cert bool // a certificate verification failure (ErrCert)
}

func (e *TLSError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *TLSError) Unwrap() error { return e.Err }

// Is makes a TLSError match ErrTLS, and ErrCert when Cert is set.
func (e *TLSError) Is(target error) bool {
	return target == ErrTLS || (e.Cert && target == ErrCert)
}

// DefaultTLSHandshakeTimeout is asyncio's ssl_handshake_timeout (seconds).
const DefaultTLSHandshakeTimeout = 60.0

// tlsWriteChunk bounds the plaintext encrypted per tls.Conn.Write, so that
// large writes are sent while they are encrypted.
const tlsWriteChunk = 256 * 1024

// TLSOptions configure TLS on a connection, a server or StartTLS.
type TLSOptions struct {
	// Config is used as a template (cloned; not modified). Required. A
	// client verifies the server's certificate unless InsecureSkipVerify is
	// set (RootCAs nil = the system's roots); a server needs Certificates
	// (or GetCertificate).
	Config *tls.Config
	// ServerSide selects the server role (StartTLS; servers always are).
	ServerSide bool
	// ServerHostname is the client's SNI and verification name; it overrides
	// Config.ServerName. CreateConnection defaults it to its host argument.
	ServerHostname string
	// HandshakeTimeout in seconds; <= 0 means DefaultTLSHandshakeTimeout.
	HandshakeTimeout float64
}

// prepare validates o and returns the tls.Config a connection uses.
func (o *TLSOptions) prepare(server bool) (*tls.Config, error) {
	if o == nil || o.Config == nil {
		return nil, &OpError{Op: "tls", Addr: "no TLS configuration", Err: ErrInvalid}
	}
	cfg := o.Config.Clone()
	if server {
		if len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil {
			return nil, &OpError{Op: "tls", Addr: "a TLS server needs a certificate", Err: ErrInvalid}
		}
		return cfg, nil
	}
	if o.ServerHostname != "" {
		cfg.ServerName = o.ServerHostname
	}
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		return nil, &OpError{Op: "tls", Addr: "server_hostname is required to verify the server's certificate (or turn verification off)", Err: ErrInvalid}
	}
	return cfg, nil
}

func (o *TLSOptions) timeout() float64 {
	if o.HandshakeTimeout > 0 {
		return o.HandshakeTimeout
	}
	return DefaultTLSHandshakeTimeout
}

// classifyHandshakeError maps an error of the handshake to ErrCert, a
// connection reset (the peer closed) or ErrTLS.
func classifyHandshakeError(err error) error {
	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	var hne x509.HostnameError
	var cie x509.CertificateInvalidError
	switch {
	case errors.As(err, &cve), errors.As(err, &uae), errors.As(err, &hne), errors.As(err, &cie):
		return &TLSError{Op: "TLS handshake failed", Err: err, Cert: true}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &OpError{Op: "TLS handshake", Addr: "the peer closed the connection", Err: unix.ECONNRESET}
	case errors.Is(err, net.ErrClosed):
		return &OpError{Op: "TLS handshake", Addr: "the transport was closed", Err: ErrClosed}
	}
	return &TLSError{Op: "TLS handshake failed", Err: err}
}

// ---------------------------------------------------------------------------
// memConn: the in-memory net.Conn under a tls.Conn.

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "tls: no data (would block)" }
func (wouldBlock) Timeout() bool   { return false }
func (wouldBlock) Temporary() bool { return true } // crypto/tls keeps its state

var errWouldBlock net.Error = wouldBlock{}

type hsEvent struct {
	done bool
	err  error
}

type memConn struct {
	in       []byte // ciphertext not yet read by the tls.Conn
	borrowed bool   // in points into the loop's read buffer
	out      []byte // records written by the tls.Conn, not yet sent
	eof      bool   // the peer closed its side (TCP EOF)
	closed   bool   // the transport is gone: reads fail
	// The handshake coroutine (see the package comment of this file).
	inHS   bool
	resume chan struct{}
	yield  chan hsEvent
}

func (c *memConn) Read(b []byte) (int, error) {
	for {
		if len(c.in) > 0 {
			n := copy(b, c.in)
			c.in = c.in[n:]
			return n, nil
		}
		if c.closed {
			return 0, net.ErrClosed
		}
		if c.eof {
			return 0, io.EOF
		}
		if !c.inHS {
			return 0, errWouldBlock
		}
		// Handshake goroutine: hand control back to the loop thread until
		// it has more input for us.
		c.yield <- hsEvent{}
		<-c.resume
	}
}

func (c *memConn) Write(b []byte) (int, error) {
	c.out = append(c.out, b...)
	return len(b), nil
}

// feed adds ciphertext read from the socket (b may be the loop's buffer).
func (c *memConn) feed(b []byte) {
	if len(c.in) == 0 {
		c.in, c.borrowed = b, true
		return
	}
	if c.borrowed {
		c.in = append([]byte(nil), c.in...)
		c.borrowed = false
	}
	c.in = append(c.in, b...)
}

// keep copies unread input out of the loop's read buffer before it is
// reused.
func (c *memConn) keep() {
	if len(c.in) == 0 {
		c.in, c.borrowed = nil, false
		return
	}
	if c.borrowed {
		c.in = append([]byte(nil), c.in...)
		c.borrowed = false
	}
}

type memAddr struct{}

func (memAddr) Network() string { return "asyncloop" }
func (memAddr) String() string  { return "transport" }

func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return memAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return memAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// ---------------------------------------------------------------------------
// tlsLayer: TLS state of a transport.

type tlsLayer struct {
	t        *Transport
	conn     *tls.Conn
	mc       *memConn
	server   bool
	timeout  float64
	hs       bool     // the handshake coroutine is alive
	done     bool     // the handshake succeeded
	app      Protocol // protocol installed once the handshake succeeded
	fut      *Future  // resolved by the handshake (nil for accepted conns)
	timer    *Handle
	pending  [][]byte // plaintext written before the handshake completed
	psize    int
	notified bool // close_notify was sent
}

func newTLSLayer(cfg *tls.Config, server bool, timeout float64) *tlsLayer {
	L := &tlsLayer{mc: &memConn{}, server: server, timeout: timeout}
	if server {
		L.conn = tls.Server(L.mc, cfg)
	} else {
		L.conn = tls.Client(L.mc, cfg)
	}
	return L
}

// tlsBootstrap is the transport's protocol while a handshake runs before
// the application's connection_made (create_connection with TLS, accepted
// TLS connections): it swallows every callback, so a failed handshake is
// never seen by the application protocol.
type tlsBootstrap struct{ L *tlsLayer }

func (b *tlsBootstrap) ConnectionMade(t *Transport) {
	b.L.t = t
	t.tls = b.L
	t.closeGate()
	b.L.begin()
}
func (b *tlsBootstrap) DataReceived(*Transport, []byte)  {}
func (b *tlsBootstrap) EOFReceived(*Transport) bool      { return false }
func (b *tlsBootstrap) ConnectionLost(*Transport, error) {}
func (b *tlsBootstrap) PauseWriting(*Transport)          {}
func (b *tlsBootstrap) ResumeWriting(*Transport)         {}

// begin starts the handshake: the coroutine runs until it needs input.
func (L *tlsLayer) begin() {
	t := L.t
	mc := L.mc
	mc.inHS = true
	mc.resume = make(chan struct{})
	mc.yield = make(chan hsEvent)
	L.hs = true
	go func(conn *tls.Conn) {
		<-mc.resume
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("tls: panic in the handshake: %v", r)
				}
			}()
			err = conn.Handshake()
		}()
		mc.yield <- hsEvent{done: true, err: err}
	}(L.conn)
	L.timer, _ = t.loop.CallLater(L.timeout, L.onTimeout, nil)
	L.step()
}

// step resumes the handshake coroutine and waits until it needs more input
// or is done.
func (L *tlsLayer) step() {
	if !L.hs {
		return
	}
	mc := L.mc
	mc.resume <- struct{}{}
	ev := <-mc.yield
	if !ev.done {
		L.flush()
		return
	}
	L.hs = false
	mc.inHS = false
	L.handshakeDone(ev.err)
}

// abandon ends a running handshake coroutine (the transport is closing) and
// fails the handshake's future with err.
func (L *tlsLayer) abandon(err error) {
	if !L.hs {
		return
	}
	mc := L.mc
	mc.closed = true
	mc.in, mc.borrowed = nil, false
	mc.resume <- struct{}{}
	<-mc.yield // Read fails at once, so the handshake returns
	L.hs = false
	mc.inHS = false
	mc.out = nil
	L.stopTimer()
	if L.fut != nil && !L.fut.Done() {
		L.fut.SetException(err)
	}
}

func (L *tlsLayer) stopTimer() {
	if L.timer != nil {
		L.timer.Cancel()
		L.timer = nil
	}
}

func (L *tlsLayer) onTimeout() {
	L.timer = nil
	if !L.hs {
		return
	}
	err := &OpError{Op: "TLS handshake", Addr: fmt.Sprintf("timed out after %g seconds", L.timeout), Err: unix.ETIMEDOUT}
	L.abandon(err)
	L.reportServerFailure(err)
	L.t.forceClose(err)
}

// reportServerFailure reports a failed handshake of an accepted connection
// (nobody waits for it) in debug mode, as asyncio logs it.
func (L *tlsLayer) reportServerFailure(err error) {
	t := L.t
	if L.fut == nil && t.loop.debug.Load() {
		t.loop.CallExceptionHandler(&ExceptionContext{Message: "TLS handshake failed", Err: err, Transport: t, Server: t.server})
	}
}

func (L *tlsLayer) handshakeDone(err error) {
	t := L.t
	L.stopTimer()
	if err != nil {
		err = classifyHandshakeError(err)
		// Send the alert crypto/tls wrote, unless data is queued before it.
		if len(L.mc.out) > 0 && t.wsize == 0 && t.fd >= 0 && !t.lostScheduled {
			rawSend(t.fd, L.mc.out)
		}
		L.mc.out = nil
		L.mc.closed = true
		L.pending, L.psize = nil, 0
		if L.fut != nil && !L.fut.Done() {
			L.fut.SetException(err)
		}
		L.reportServerFailure(err)
		t.forceClose(err)
		return
	}
	L.done = true
	L.flush()
	if t.lostScheduled {
		return
	}
	// Plaintext written during the handshake goes first.
	pending := L.pending
	L.pending, L.psize = nil, 0
	for _, b := range pending {
		if err := L.writePlain(b); err != nil {
			break
		}
	}
	if app := L.app; app != nil {
		L.app = nil
		t.SetProtocol(app)
		t.guard("connection_made", func() { app.ConnectionMade(t) })
		if L.fut != nil && L.fut.Done() {
			// Cancelled or completed by its holder inside connection_made:
			// closed, as startThenResolve does.
			t.Close()
		}
	}
	if L.fut != nil && !L.fut.Done() {
		L.fut.SetResult(t)
	}
	t.updateReading()
	L.pump() // records that arrived with the end of the handshake
}

// flush hands the records crypto/tls produced to the socket.
func (L *tlsLayer) flush() {
	if len(L.mc.out) == 0 {
		return
	}
	L.t.writeRaw(L.mc.out)
	L.mc.out = L.mc.out[:0]
}

// readable is the transport's read handler in TLS mode.
func (L *tlsLayer) readable() {
	t := L.t
	l := t.loop
	buf := l.readBuffer()
	n, errno := rawRead(t.fd, buf)
	switch {
	case errno == unix.EAGAIN || errno == unix.EINTR:
		return
	case errno != 0:
		t.fatal(&OpError{Op: "read", Err: errno}, "Fatal read error on socket transport")
		return
	case n == 0:
		L.mc.eof = true
		t.readEOF = true
		t.updateReading()
	default:
		L.mc.feed(buf[:n])
	}
	if L.hs {
		L.step()
	} else if L.done {
		L.pump()
	}
	L.mc.keep()
}

func (L *tlsLayer) wantRead() bool {
	t := L.t
	if L.hs {
		return !t.closing && !t.readEOF
	}
	return L.done && t.started && !t.paused && !t.closing && !t.readEOF
}

// pump decrypts what the tls.Conn can and delivers it to the protocol.
func (L *tlsLayer) pump() {
	t := L.t
	for L.done && !t.closing && !t.paused && !t.lostScheduled {
		var buf []byte
		buffered := t.buffered
		if buffered != nil {
			if !t.guard("get_buffer", func() { buf = buffered.GetBuffer(t, -1) }) {
				return
			}
			if len(buf) == 0 {
				t.fatal(errors.New("get_buffer() returned an empty buffer"), "Fatal error: protocol.get_buffer() call failed.")
				return
			}
		} else {
			if t.loop.tlsBuf == nil {
				t.loop.tlsBuf = make([]byte, readSize)
			}
			buf = t.loop.tlsBuf
		}
		n, err := L.fill(buf)
		L.flush() // e.g. a KeyUpdate answer
		if n > 0 {
			if buffered != nil {
				if !t.guard("buffer_updated", func() { buffered.BufferUpdated(t, n) }) {
					return
				}
			} else if !t.guard("data_received", func() { t.proto.DataReceived(t, buf[:n]) }) {
				return
			}
		}
		switch {
		case err == nil:
			continue // the buffer was full: there may be more
		case err == errWouldBlock:
			return
		case err == io.EOF: // close_notify, or TCP EOF at a record boundary
			if !t.closing && !t.lostScheduled {
				L.onEOF()
			}
			return
		case errors.Is(err, io.ErrUnexpectedEOF):
			t.fatal(&OpError{Op: "TLS read", Addr: "the peer closed the connection in the middle of a record", Err: unix.ECONNRESET}, "Fatal read error on TLS transport")
			return
		default:
			if !t.lostScheduled {
				// asyncio's SSLError is an OSError: reported in debug mode only.
				err = &TLSError{Op: "TLS read", Err: err}
				if t.loop.debug.Load() {
					t.loop.CallExceptionHandler(&ExceptionContext{Message: "Fatal error on TLS transport", Err: err, Transport: t})
				}
				t.forceClose(err)
			}
			return
		}
	}
}

// fill reads plaintext into buf until it is full or the tls.Conn has none.
func (L *tlsLayer) fill(buf []byte) (int, error) {
	off := 0
	for off < len(buf) {
		n, err := L.conn.Read(buf[off:])
		off += n
		if err != nil {
			return off, err
		}
		if n == 0 {
			return off, errWouldBlock
		}
	}
	return off, nil
}

func (L *tlsLayer) onEOF() {
	t := L.t
	t.readEOF = true
	t.updateReading()
	// Half-open TLS is not supported (asyncio ignores a true return too).
	if !t.guard("eof_received", func() { t.proto.EOFReceived(t) }) {
		return
	}
	t.Close()
}

// resumed runs after ResumeReading: plaintext already decrypted or buffered
// in the tls.Conn is delivered without waiting for the socket.
func (L *tlsLayer) resumed() {
	if L.done {
		t := L.t
		t.loop.CallSoon(func() {
			if t.tls == L && !t.lostScheduled {
				L.pump()
			}
		}, nil)
	}
}

// write is Transport.Write in TLS mode.
func (L *tlsLayer) write(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	if !L.done {
		b := append([]byte(nil), data...)
		L.pending = append(L.pending, b)
		L.psize += len(b)
		return nil
	}
	return L.writePlain(data)
}

func (L *tlsLayer) writePlain(data []byte) error {
	t := L.t
	for len(data) > 0 {
		if t.lostScheduled {
			return nil
		}
		n := len(data)
		if n > tlsWriteChunk {
			n = tlsWriteChunk
		}
		if _, err := L.conn.Write(data[:n]); err != nil {
			return &TLSError{Op: "TLS write", Err: err}
		}
		L.flush()
		data = data[n:]
	}
	return nil
}

// close runs when the transport starts closing: a running handshake is
// abandoned, an established session sends close_notify (then the transport
// flushes and closes as usual).
func (L *tlsLayer) close() {
	if L.hs {
		L.abandon(&OpError{Op: "TLS handshake", Addr: "the transport was closed during the handshake", Err: ErrClosed})
		L.pending, L.psize = nil, 0
		return
	}
	if L.done && !L.notified && !L.t.lostScheduled {
		L.notified = true
		L.conn.CloseWrite()
		L.flush()
	}
}

// lost runs when the transport is lost.
func (L *tlsLayer) lost(err error) {
	if err == nil {
		err = &OpError{Op: "TLS handshake", Addr: "the transport was closed during the handshake", Err: ErrClosed}
	}
	L.abandon(err)
	L.stopTimer()
	if L.fut != nil && !L.fut.Done() {
		L.fut.SetException(err)
	}
	L.pending, L.psize = nil, 0
	L.mc.in, L.mc.out, L.mc.borrowed = nil, nil, false
	L.mc.closed = true
}

// ---------------------------------------------------------------------------
// Public API.

// StartTLS upgrades an open stream transport to TLS (asyncio's start_tls):
// from now on the transport reads and writes TLS records and its protocol
// sees plaintext. The future's result is the transport once the handshake
// succeeded; it fails with ErrCert / ErrTLS, ETIMEDOUT (HandshakeTimeout),
// ECONNRESET (the peer closed) or ErrClosed, and the transport is then
// closed (the protocol's ConnectionLost gets the error). Data written during
// the handshake is sent after it. connection_made is not called again.
// Cancelling the future aborts the transport.
func (t *Transport) StartTLS(o *TLSOptions) (*Future, error) {
	switch {
	case t.pipe != pipeNone:
		return nil, &OpError{Op: "start_tls", Addr: "not a socket transport", Err: ErrInvalid}
	case t.tls != nil:
		return nil, &OpError{Op: "start_tls", Addr: "the transport already uses TLS", Err: ErrInvalid}
	case t.closing || t.lost || t.lostScheduled:
		return nil, ErrClosed
	case t.eof:
		return nil, &OpError{Op: "start_tls", Err: unix.EPIPE, Addr: "cannot start TLS after write_eof()"}
	case t.readEOF:
		return nil, &OpError{Op: "start_tls", Err: unix.ECONNRESET, Addr: "the peer closed the connection"}
	case t.sendfile != nil:
		return nil, &OpError{Op: "start_tls", Err: ErrBusy, Addr: "sendfile is in progress"}
	case !t.started:
		return nil, &OpError{Op: "start_tls", Addr: "the transport is not connected yet", Err: ErrInvalidState}
	}
	if o == nil {
		return nil, &OpError{Op: "start_tls", Addr: "no TLS configuration", Err: ErrInvalid}
	}
	cfg, err := o.prepare(o.ServerSide)
	if err != nil {
		return nil, err
	}
	L := newTLSLayer(cfg, o.ServerSide, o.timeout())
	L.t = t
	fut := t.loop.NewFuture()
	L.fut = fut
	fut.onCancel = func() {
		if t.tls == L && L.hs {
			t.forceClose(nil)
		}
	}
	t.tls = L
	t.closeGate()
	L.begin()
	t.updateReading()
	return fut, nil
}

// createConnectionTLS is CreateConnection with o.TLS set: the raw connection
// gets a bootstrap protocol that runs the handshake, and proto's
// ConnectionMade follows the handshake; the returned future resolves then.
func (l *Loop) createConnectionTLS(host string, port int, proto Protocol, o ConnectOptions) (*Future, error) {
	opts := *o.TLS
	if opts.ServerHostname == "" && opts.Config != nil && opts.Config.ServerName == "" {
		opts.ServerHostname = host // asyncio's default
	}
	cfg, err := opts.prepare(false)
	if err != nil {
		return nil, err
	}
	L := newTLSLayer(cfg, false, opts.timeout())
	L.app = proto
	o.TLS = nil
	inner, err := l.CreateConnection(host, port, &tlsBootstrap{L: L}, &o)
	if err != nil {
		return nil, err
	}
	outer := l.NewFuture()
	L.fut = outer
	inner.AddDoneCallback(func(f *Future) {
		if err := f.Exception(); err != nil && !outer.Done() {
			outer.SetException(err)
		}
	}, nil, nil)
	outer.onCancel = func() {
		if !inner.Done() {
			inner.Cancel("")
		} else if t := L.t; t != nil && t.tls == L && L.hs {
			t.forceClose(nil)
		}
	}
	return outer, nil
}

// TLSServerFactory returns a connection factory that runs factory, then
// puts TLS under the connection (CreateServer does it for ServerOptions.TLS;
// use it for other servers, e.g. CreateUnixServer). The protocol the
// factory set gets ConnectionMade after the handshake; a failed handshake
// never calls it.
func TLSServerFactory(factory ConnectionFactory, o *TLSOptions) (ConnectionFactory, error) {
	if factory == nil {
		return nil, ErrInvalid
	}
	cfg, err := o.prepare(true)
	if err != nil {
		return nil, err
	}
	timeout := o.timeout()
	return func(t *Transport) error {
		if err := factory(t); err != nil || t.proto == nil {
			return err // the server reports it and closes t
		}
		L := newTLSLayer(cfg, true, timeout)
		L.app = t.proto
		L.t = t
		t.tls = L
		t.closeGate()
		t.proto, t.buffered, t.deferrer = &tlsBootstrap{L: L}, nil, nil
		return nil
	}, nil
}

// IsTLS reports whether the transport uses TLS (handshake done or not).
func (t *Transport) IsTLS() bool { return t.tls != nil }

// TLSConnectionState returns the TLS state (version, cipher suite, ALPN
// protocol, peer certificates) once the handshake succeeded; ok is false
// for a plain transport or during the handshake.
func (t *Transport) TLSConnectionState() (cs tls.ConnectionState, ok bool) {
	if t.tls == nil || !t.tls.done {
		return cs, false
	}
	return t.tls.conn.ConnectionState(), true
}

// tlsPending is the plaintext buffered before the handshake completed.
func (t *Transport) tlsPending() int {
	if t.tls == nil {
		return 0
	}
	return t.tls.psize
}
