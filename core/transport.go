package core

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Protocol is asyncio's stream protocol. Every method runs on the loop thread.
type Protocol interface {
	ConnectionMade(t *Transport)
	DataReceived(t *Transport, data []byte) // data is valid only during the call
	EOFReceived(t *Transport) bool          // true keeps the transport half-open
	ConnectionLost(t *Transport, err error) // nil for a clean close or EOF
	PauseWriting(t *Transport)
	ResumeWriting(t *Transport)
}

// BufferedProtocol receives data straight into memory it provides; a
// Protocol that also implements it is used through it.
type BufferedProtocol interface {
	Protocol
	GetBuffer(t *Transport, sizehint int) []byte
	BufferUpdated(t *Transport, n int)
}

// BaseProtocol implements Protocol with no-ops, for embedding.
type BaseProtocol struct{}

func (BaseProtocol) ConnectionMade(*Transport)        {}
func (BaseProtocol) DataReceived(*Transport, []byte)  {}
func (BaseProtocol) EOFReceived(*Transport) bool      { return false }
func (BaseProtocol) ConnectionLost(*Transport, error) {}
func (BaseProtocol) PauseWriting(*Transport)          {}
func (BaseProtocol) ResumeWriting(*Transport)         {}

// Default write-buffer water marks (asyncio's).
const (
	DefaultWriteBufferHigh = 64 * 1024
	DefaultWriteBufferLow  = 16 * 1024
)

const (
	defaultHigh = DefaultWriteBufferHigh
	defaultLow  = DefaultWriteBufferLow
	// readSize: one read. 64 KiB stays in a core's cache between the read
	// and the protocol's use of it (the echo's send): 256 KiB reads ran
	// bulk_64k at 0.64x libuv, single 64 KiB reads at 0.94x, 64 KiB reads
	// repeated up to readsPerEvent at 1.01x (C suite, 2026-12-05).
	readSize = 64 * 1024
	// readsPerEvent: reads per readiness while each fills the buffer, as
	// libuv does; bounds what one connection takes per iteration (256 KiB)
	// so that a flood does not starve the others.
	readsPerEvent = 4
)

// Transport is a stream transport over a connected socket.
type Transport struct {
	loop     *Loop
	fd       int
	e        *fdEntry
	proto    Protocol
	buffered BufferedProtocol
	deferrer readDeferrer // proto, if it may hold reads back
	heldPoll uint64       // the last Poll that read or held it (EventQueue.hold)
	server   *Server

	// The write buffer (writeq.go): chunks, the first with pending bytes,
	// how much of it is sent, and the pending total.
	wq     [][]byte
	wqHead int
	wqOff  int
	wsize  int
	high   int
	low    int

	// The read and write handlers, made once (a method value allocates).
	readFn, writeFn func()

	// gate is 0 while a host may send on the socket itself (SendGate).
	gate uint32

	protoPaused   bool // pause_writing was called
	paused        bool // pause_reading
	started       bool // connection_made ran; reading may begin
	closing       bool
	eof           bool // write_eof requested
	eofSent       bool
	readEOF       bool
	lostScheduled bool
	lost          bool
	claimed       bool   // its holder has it (claim.go)
	dropped       int    // buffered bytes discarded by forceClose
	forced        bool   // closed by abort or an error (no graceful close)
	closePending  bool   // scheduleClose's callback is pending
	closeIter     uint64 // the loop iteration in which it was scheduled

	pipe      pipeMode // a pipe transport (pipe.go) when not pipeNone
	pipeWatch bool     // write pipe: watch for the reader going away

	sendfile *sendfileOp // a Sendfile in progress (sendfile.go)

	tls *tlsLayer // TLS (tls.go) when not nil: reads/writes are records

	// Tag is free for the host (the C layer keeps its handle here).
	Tag any
	// OnRelease, if set, runs once after the transport is closed and
	// connection_lost (if due) has run.
	OnRelease func(t *Transport)
}

func (l *Loop) newTransport(fd int) *Transport {
	t := &Transport{loop: l, fd: fd, high: DefaultWriteBufferHigh, low: DefaultWriteBufferLow}
	t.readFn, t.writeFn = t.onReadable, t.onWritable
	e := l.claimEntry(fd)
	e.owner = t
	t.e = e
	l.objects++
	return t
}

// Loop returns the transport's loop.
func (t *Transport) Loop() *Loop { return t.loop }

// Fd is the socket (the transport owns it); -1 once closed.
func (t *Transport) Fd() int { return t.fd }

// Server returns the server that accepted the connection (nil for a client
// connection or once closed).
func (t *Transport) Server() *Server { return t.server }

// Protocol returns the current protocol.
func (t *Transport) Protocol() Protocol {
	if t.tls != nil && t.tls.app != nil {
		return t.tls.app // connection_made follows the TLS handshake
	}
	return t.proto
}

// SetProtocol switches the protocol.
func (t *Transport) SetProtocol(p Protocol) {
	if t.tls != nil && t.tls.app != nil {
		t.tls.app = p // installed when the TLS handshake is done
		return
	}
	t.proto = p
	t.buffered, _ = p.(BufferedProtocol)
	t.deferrer, _ = p.(readDeferrer)
}

// readDeferrer is a protocol that may hold reads back (QueuedProtocol, while
// the event queue is full). Kept with the protocol: a type assertion per
// read would also allocate now and then (the runtime grows its assertion
// cache on a random call).
type readDeferrer interface{ readDeferred(*Transport) bool }

// Peername returns the remote address.
func (t *Transport) Peername() (unix.Sockaddr, error) {
	if t.fd < 0 {
		return nil, ErrClosed
	}
	return Getpeername(t.fd)
}

// Sockname returns the local address.
func (t *Transport) Sockname() (unix.Sockaddr, error) {
	if t.fd < 0 {
		return nil, ErrClosed
	}
	return Getsockname(t.fd)
}

// start runs connection_made and begins reading (scheduled with call_soon by
// the creator, as asyncio does).
func (t *Transport) start() {
	if t.lost || t.lostScheduled {
		return
	}
	t.started = true
	t.guard("connection_made", func() { t.proto.ConnectionMade(t) })
	t.updateReading()
}

func (t *Transport) wantRead() bool {
	if t.pipe != pipeNone {
		return t.pipeWantRead()
	}
	if t.tls != nil {
		return t.tls.wantRead()
	}
	return t.started && !t.paused && !t.closing && !t.readEOF
}

func (t *Transport) updateReading() {
	if t.lost {
		return
	}
	if t.wantRead() {
		if t.e.reader == nil {
			t.e.reader = t.readFn
			t.loop.update(t.e)
		}
	} else if t.e.reader != nil {
		t.e.reader = nil
		t.loop.update(t.e)
	}
}

// guard runs a protocol callback; a panic becomes a fatal error of the
// transport, reported through the exception handler.
func (t *Transport) guard(name string, fn func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			ok = false
			t.fatal(fmt.Errorf("protocol.%s() call failed: panic: %v", name, r), "Fatal error: protocol."+name+"() call failed.")
		}
	}()
	fn()
	return true
}

// readHeld: a Poll held this transport back; the next one reads it first,
// if it still reads.
func (t *Transport) readHeld() {
	if t.fd >= 0 && !t.lost && t.e != nil && t.e.reader != nil {
		t.onReadable()
	}
}

func (t *Transport) onReadable() {
	if q := t.deferrer; q != nil && q.readDeferred(t) {
		return // the event queue is full: the next Poll reads (level-triggered)
	}
	if t.pipe != pipeNone {
		t.pipeReadable()
		return
	}
	if t.tls != nil {
		t.tls.readable()
		return
	}
	if t.buffered != nil {
		t.readBuffered()
		return
	}
	buf := t.loop.readBuffer()
	for i := 1; ; i++ {
		n, errno := rawRead(t.fd, buf)
		if t.readEnded(n, errno) {
			return
		}
		t.guard("data_received", func() { t.proto.DataReceived(t, buf[:n]) })
		// A full buffer: more is likely waiting; read on while the
		// protocol still reads (not paused, closed or lost).
		if n < len(buf) || i >= readsPerEvent || t.lost || t.fd < 0 || t.e.reader == nil {
			return
		}
	}
}

func (t *Transport) readBuffered() {
	var buf []byte
	if !t.guard("get_buffer", func() { buf = t.buffered.GetBuffer(t, -1) }) {
		return
	}
	if len(buf) == 0 {
		t.fatal(errors.New("get_buffer() returned an empty buffer"), "Fatal error: protocol.get_buffer() call failed.")
		return
	}
	n, errno := rawRead(t.fd, buf)
	if !t.readEnded(n, errno) {
		t.guard("buffer_updated", func() { t.buffered.BufferUpdated(t, n) })
	}
}

func (t *Transport) onEOF() {
	t.readEOF = true
	t.updateReading()
	keep := false
	if !t.guard("eof_received", func() { keep = t.proto.EOFReceived(t) }) {
		return
	}
	if !keep {
		t.Close()
	}
}

// readBuffer is the loop thread's read buffer (readSize bytes), made on
// first use: every read that hands its bytes on before the next one (to a
// protocol, the TLS record layer, a datagram, a draining close) shares it.
func (l *Loop) readBuffer() []byte {
	if l.readBuf == nil {
		l.readBuf = make([]byte, readSize)
	}
	return l.readBuf
}

// readEnded handles what a socket transport's read returned when it is not
// data (would-block, an error, EOF) and reports whether it was so.
func (t *Transport) readEnded(n int, errno unix.Errno) bool {
	switch {
	case errno == unix.EAGAIN || errno == unix.EINTR:
	case errno != 0:
		t.fatal(&OpError{Op: "read", Err: errno}, "Fatal read error on socket transport")
	case n == 0:
		t.onEOF()
	default:
		return false
	}
	return true
}

func rawRead(fd int, b []byte) (int, unix.Errno) {
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// rawSend sends on a socket without raising SIGPIPE (a C host would die of
// it); a broken connection is reported as EPIPE.
func rawSend(fd int, b []byte) (int, unix.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// Write sends data without blocking: what the socket takes now is sent, the
// rest is buffered (copied) and sent in order as the socket drains.
func (t *Transport) Write(data []byte) error {
	if t.pipe != pipeNone {
		return t.pipeWrite(data)
	}
	if err := t.writeState(); err != nil {
		return err
	}
	if t.tls != nil {
		return t.tls.write(data)
	}
	if len(data) == 0 {
		return nil
	}
	t.writeRaw(data)
	return nil
}

// writeState is the error of a write to a socket transport now (nil: it
// takes data).
func (t *Transport) writeState() error {
	if t.eof {
		return &OpError{Op: "write", Err: unix.EPIPE, Addr: "cannot call write() after write_eof()"}
	}
	if !t.acceptsWrite() {
		return ErrClosed
	}
	if t.sendfile != nil {
		return &OpError{Op: "write", Err: ErrBusy, Addr: "sendfile is in progress"}
	}
	return nil
}

// SendGate lets a host send on the socket itself during a protocol callback
// of t, so that its writes cost no call into the library (capi: a C host's
// aloop_transport_write inside data_received). When nothing is buffered and
// t is a plain open socket that takes writes, it returns the socket, and a
// gate word that reads 0, and ok; else ok is false. The transport sets the
// word to non-zero as soon as a direct send would differ from Write: a write
// it buffers, write_eof, an abort or connection error, a sendfile, TLS.
// While the word reads 0 the host may send with
// send(fd, MSG_NOSIGNAL|MSG_DONTWAIT): what the socket takes is what Write
// would have sent. When it takes less than all (or fails) the host sets the
// word to non-zero itself and hands the data to WriteAfterSend. Loop thread
// only; the word may be used until the callback returns.
func (t *Transport) SendGate() (fd int, gate *uint32, ok bool) {
	if t.pipe != pipeNone || t.tls != nil || t.wsize != 0 || t.fd < 0 || t.writeState() != nil {
		t.gate = 1
		return -1, nil, false
	}
	t.gate = 0
	return t.fd, &t.gate, true
}

// closeGate ends direct sends by the host (SendGate).
func (t *Transport) closeGate() { t.gate = 1 }

// WriteAfterSend is Write for data of which a host sent the first n bytes
// itself through SendGate; errno is what its send returned (0 after a short
// send, EAGAIN or EINTR when it took nothing, or the error). The rest is
// buffered as Write buffers it; an error is a write error of the transport.
func (t *Transport) WriteAfterSend(data []byte, n int, errno unix.Errno) error {
	t.closeGate()
	if n < 0 || n > len(data) {
		return ErrInvalid
	}
	if t.pipe != pipeNone || t.tls != nil || t.wsize != 0 {
		return ErrInvalid // no gate was open for it
	}
	if err := t.writeState(); err != nil {
		return err
	}
	if t.lostScheduled || t.fd < 0 {
		return nil
	}
	if errno != 0 && errno != unix.EAGAIN && errno != unix.EINTR {
		t.fatal(&OpError{Op: "write", Err: errno}, "Fatal write error on socket transport")
		return nil
	}
	data = data[n:]
	if len(data) == 0 {
		return nil
	}
	t.e.writer = t.writeFn
	t.loop.update(t.e)
	t.queueWrite(data)
	t.maybePauseProtocol()
	return nil
}

// acceptsWrite reports whether Write takes data: until Close, and after a
// graceful Close until connection_lost is about to run (as asyncio's socket
// transports do; see scheduleClose). resume_writing runs while a closing
// transport drains, so a protocol layered on the transport that keeps its
// own buffer (asyncio's sslproto, a TLS or framing library in a host) can
// still hand over what it holds; refusing it would lose bytes that its own
// write() had accepted. Not after an abort or a connection error, and not
// on a TLS transport once its close_notify is sent.
func (t *Transport) acceptsWrite() bool {
	if t.lost || t.lostScheduled {
		return false
	}
	if !t.closing {
		return true
	}
	return t.tls == nil
}

// writeRaw sends bytes on the socket without blocking (the rest is copied to
// the write buffer); TLS records go through it too.
func (t *Transport) writeRaw(data []byte) {
	if len(data) == 0 || t.lostScheduled || t.fd < 0 {
		return
	}
	if t.wsize == 0 {
		n, errno := rawSend(t.fd, data)
		if errno != 0 && errno != unix.EAGAIN && errno != unix.EINTR {
			t.fatal(&OpError{Op: "write", Err: errno}, "Fatal write error on socket transport")
			return
		}
		data = data[n:]
		if len(data) == 0 {
			return
		}
		t.e.writer = t.writeFn
		t.loop.update(t.e)
	}
	t.queueWrite(data) // writeq.go: only what the socket did not take
	t.maybePauseProtocol()
}

// Writelines writes several buffers in order: on a socket with nothing
// buffered, one sendmsg (writev) for all of them, and only what it did not
// take is copied.
func (t *Transport) Writelines(bufs [][]byte) error {
	if t.pipe != pipeNone || t.tls != nil {
		for _, b := range bufs {
			if err := t.Write(b); err != nil {
				return err
			}
		}
		return nil
	}
	if err := t.writeState(); err != nil {
		return err
	}
	t.writevRaw(bufs) // writeq.go
	return nil
}

func (t *Transport) maybePauseProtocol() {
	if t.protoPaused || t.wsize <= t.high {
		return
	}
	t.protoPaused = true
	t.guard("pause_writing", func() { t.proto.PauseWriting(t) })
}

func (t *Transport) maybeResumeProtocol() {
	if !t.protoPaused || t.wsize > t.low {
		return
	}
	t.protoPaused = false
	t.guard("resume_writing", func() { t.proto.ResumeWriting(t) })
}

func (t *Transport) onWritable() {
	if t.pipe != pipeNone {
		t.pipeWritable()
		return
	}
	for t.wsize > 0 {
		n, errno := t.flushSocket() // writeq.go
		if errno != 0 {
			if errno == unix.EAGAIN || errno == unix.EINTR {
				break
			}
			t.fatal(&OpError{Op: "write", Err: errno}, "Fatal write error on socket transport")
			return
		}
		t.consume(n)
		if n == 0 {
			break
		}
	}
	t.maybeResumeProtocol()
	if t.wsize > 0 {
		return
	}
	t.e.writer = nil
	t.loop.update(t.e)
	if t.sendfile != nil {
		t.sendfileFlushed() // it closes or shuts down when it is done
		return
	}
	if t.closing {
		t.scheduleClose()
	} else if t.eof {
		t.shutdownWrite()
	}
}

func (t *Transport) shutdownWrite() {
	if t.eofSent || t.fd < 0 {
		return
	}
	t.eofSent = true
	unix.Shutdown(t.fd, unix.SHUT_WR)
}

// WriteEOF closes the write side once buffered data is sent.
func (t *Transport) WriteEOF() error {
	if t.pipe != pipeNone {
		return t.pipeWriteEOF()
	}
	if t.closing || t.lost {
		return nil
	}
	if t.tls != nil {
		return &OpError{Op: "write_eof", Err: unix.ENOSYS, Addr: "TLS transports do not support half-close"}
	}
	if t.eof {
		return nil
	}
	t.eof = true
	t.closeGate()
	if t.wsize == 0 && t.sendfile == nil {
		t.shutdownWrite()
	}
	return nil
}

// CanWriteEOF is true for stream sockets.
func (t *Transport) CanWriteEOF() bool { return t.pipe != pipeRead && t.tls == nil }

// IsClosing reports whether Close or Abort was called (or the connection
// failed).
func (t *Transport) IsClosing() bool { return t.closing }

// PauseReading stops data_received calls until ResumeReading.
func (t *Transport) PauseReading() {
	if t.closing || t.paused {
		return
	}
	t.paused = true
	t.updateReading()
}

// ResumeReading resumes reading.
func (t *Transport) ResumeReading() {
	if t.closing || !t.paused {
		return
	}
	t.paused = false
	t.updateReading()
	if t.tls != nil {
		t.tls.resumed()
	}
}

// IsReading reports whether the transport is receiving.
func (t *Transport) IsReading() bool { return t.pipe != pipeWrite && !t.paused && !t.closing }

// WriteBufferSize is the number of buffered bytes not yet sent.
func (t *Transport) WriteBufferSize() int { return t.wsize + t.tlsPending() }

// SetWriteBufferLimits sets the high and low water marks: PauseWriting when
// the buffer grows above high, ResumeWriting when it drains to low or less
// (asyncio's defaults are DefaultWriteBufferHigh/Low; high 0 pauses on any
// buffered byte).
func (t *Transport) SetWriteBufferLimits(high, low int) error {
	if high < 0 || low < 0 || low > high {
		return ErrInvalid
	}
	t.high, t.low = high, low
	t.maybePauseProtocol()
	t.maybeResumeProtocol()
	return nil
}

// WriteBufferLimits returns the water marks.
func (t *Transport) WriteBufferLimits() (high, low int) { return t.high, t.low }

// Close flushes the write buffer, then closes; ConnectionLost(nil) follows.
func (t *Transport) Close() {
	if t.closing || t.lost {
		return
	}
	if t.tls != nil && t.sendfile == nil { // else after the sendfile
		t.tls.close() // close_notify, or the end of a running handshake
	}
	t.closing = true
	t.updateReading()
	if t.wsize == 0 && t.sendfile == nil {
		t.scheduleClose()
	}
}

// scheduleClose ends a graceful close whose buffer is flushed: the socket is
// closed and connection_lost(nil) runs in a callback of the next iteration,
// unless a write arrived meanwhile (acceptsWrite) — then the flush of that
// write ends the close. Writes are thus taken until connection_lost is about
// to run: in the same callback as close() (asyncio sends those too), and
// from a host that answers resume_writing only after the loop returned
// (the queued seam: its writes are flushed before the next iteration's
// callbacks).
//
// With the queued seam (an event queue) the callback acts only in a later
// loop iteration than the one that scheduled it (a callback scheduled by an
// I/O handler runs in the same iteration) and once the host has been handed
// every queued event: such a host sees resume_writing only when Poll
// returns, and its answer is flushed at the start of the next Poll. A host
// with direct callbacks answers inside resume_writing: no extra iteration.
func (t *Transport) scheduleClose() {
	if t.lostScheduled || t.closePending {
		return
	}
	t.closePending = true
	l := t.loop
	t.closeIter = l.iteration
	var fin func()
	fin = func() {
		if t.lostScheduled || t.lost {
			t.closePending = false
			return
		}
		if q := l.evq; q != nil && (l.iteration == t.closeIter || len(q.overflow) > 0) {
			if _, err := l.CallSoon(fin, nil); err == nil {
				return // not yet
			}
		}
		t.closePending = false
		if t.wsize > 0 || t.sendfile != nil {
			return // a write came in: its flush ends the close
		}
		t.lostScheduled = true
		t.closeGate()
		t.e.reader, t.e.writer = nil, nil
		l.update(t.e)
		t.connectionLost(nil)
	}
	if _, err := l.CallSoon(fin, nil); err != nil {
		t.scheduleLost(nil)
	}
}

// Abort closes at once, dropping buffered data.
func (t *Transport) Abort() { t.forceClose(nil) }

func (t *Transport) forceClose(err error) {
	if t.lost || t.lostScheduled {
		return
	}
	t.closing = true
	t.forced = true
	t.dropped += t.dropWrites()
	t.e.reader, t.e.writer = nil, nil
	t.loop.update(t.e)
	t.scheduleLost(err)
}

// DroppedBytes is the number of buffered bytes a forced close (abort or a
// connection error) discarded unsent.
func (t *Transport) DroppedBytes() int { return t.dropped }

func (t *Transport) scheduleLost(err error) {
	if t.lostScheduled {
		return
	}
	t.lostScheduled = true
	t.closeGate()
	t.e.reader, t.e.writer = nil, nil
	t.loop.update(t.e)
	t.sendfileAbort(err)
	if _, e := t.loop.CallSoon(func() { t.connectionLost(err) }, nil); e != nil {
		t.connectionLost(err)
	}
}

func (t *Transport) connectionLost(err error) {
	if t.lost {
		return
	}
	if t.tls != nil {
		t.tls.lost(err)
	}
	t.lost = true
	t.closing = true
	t.closeGate()
	t.loop.forget(t.e)
	t.e.owner = nil
	if t.started {
		t.guard("connection_lost", func() { t.proto.ConnectionLost(t, err) })
	}
	if t.fd >= 0 {
		if t.forced || err != nil || t.pipe != pipeNone {
			unix.Close(t.fd)
		} else {
			closeGracefully(t.fd, t.loop.readBuffer(), t.tls != nil && t.tls.notified) // linger.go
		}
		t.fd = -1
	}
	t.loop.objects--
	if s := t.server; s != nil {
		t.server = nil
		s.detach()
	}
	if r := t.OnRelease; r != nil {
		t.OnRelease = nil
		r(t)
	}
}

// isConnectionError is asyncio's test for errors that are only logged in
// debug mode (the peer went away).
func isConnectionError(err error) bool {
	switch Errno(err) {
	case unix.ECONNRESET, unix.EPIPE, unix.ECONNABORTED, unix.ETIMEDOUT, unix.ESHUTDOWN:
		return true
	}
	return false
}

func (t *Transport) fatal(err error, msg string) {
	if !isConnectionError(err) || t.loop.debug.Load() {
		t.loop.CallExceptionHandler(&ExceptionContext{Message: msg, Err: err, Transport: t})
	}
	t.forceClose(err)
}
