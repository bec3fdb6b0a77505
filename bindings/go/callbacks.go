package asyncloop

import (
	"runtime"
	"runtime/debug"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// purego can create at most 2000 callbacks per process and never frees
// them, so there is exactly one C function pointer per C callback type,
// created once. The userdata passed with each registration is a key into
// the registry below; the library's free_cb removes the key.

type registry struct {
	mu    sync.Mutex
	slots []regSlot
	free  []uint32
	live  int
}

type regSlot struct {
	gen uint32
	val any
}

var reg registry

// Keys are generation-checked slot indexes: (gen << 32) | (index + 1), so
// a key is never 0 and a stale key never finds a newer value.
func (r *registry) add(v any) uintptr {
	r.mu.Lock()
	var idx uint32
	if n := len(r.free); n > 0 {
		idx = r.free[n-1]
		r.free = r.free[:n-1]
	} else {
		idx = uint32(len(r.slots))
		r.slots = append(r.slots, regSlot{gen: 1})
	}
	s := &r.slots[idx]
	s.val = v
	r.live++
	k := uintptr(s.gen)<<32 | uintptr(idx+1)
	r.mu.Unlock()
	return k
}

func (r *registry) slot(k uintptr) *regSlot {
	idx := uint32(k) - 1
	if k == 0 || int(idx) >= len(r.slots) || r.slots[idx].gen != uint32(k>>32) || r.slots[idx].val == nil {
		return nil
	}
	return &r.slots[idx]
}

func (r *registry) get(k uintptr) any {
	r.mu.Lock()
	var v any
	if s := r.slot(k); s != nil {
		v = s.val
	}
	r.mu.Unlock()
	return v
}

func (r *registry) del(k uintptr) any {
	r.mu.Lock()
	var v any
	if s := r.slot(k); s != nil {
		v = s.val
		r.drop(s, uint32(k)-1)
	}
	r.mu.Unlock()
	return v
}

func (r *registry) drop(s *regSlot, idx uint32) {
	s.val = nil
	s.gen++
	if s.gen == 0 {
		s.gen = 1
	}
	r.free = append(r.free, idx)
	r.live--
}

// sweep deletes every value for which drop returns true.
func (r *registry) sweep(drop func(any) bool) {
	r.mu.Lock()
	for i := range r.slots {
		s := &r.slots[i]
		if s.val != nil && drop(s.val) {
			r.drop(s, uint32(i))
		}
	}
	r.mu.Unlock()
}

// len returns the number of live entries.
func (r *registry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live
}

// LiveCallbacks returns how many Go values the library currently holds as
// userdata (scheduled callbacks, protocols, servers, done-callbacks...).
// Each is released by the library's free_cb; a test can use it to check
// that nothing leaks.
func LiveCallbacks() int { return reg.len() }

// The C function pointers, one per callback type of the header.
var cb struct {
	once sync.Once

	free       uintptr // aloop_free_cb
	callback   uintptr // aloop_callback_cb
	future     uintptr // aloop_future_cb
	fd         uintptr // aloop_fd_cb
	exception  uintptr // aloop_exception_cb
	connection uintptr // aloop_connection_cb
	signal     uintptr // aloop_signal_cb
	executor   uintptr // aloop_executor_fn

	protocol         cProtocol // data_received variant
	bufferedProtocol cProtocol // get_buffer/buffer_updated variant
	datagramProtocol cDatagramProtocol
	// datagramProtocol with ALOOP_PROTOCOL_QUEUED (queue.go)
	queuedDatagramProtocol cDatagramProtocol
	subprocessProtocol     cSubprocessProtocol
}

func initCallbacks() {
	cb.once.Do(func() {
		cb.free = purego.NewCallback(onFree)
		cb.callback = purego.NewCallback(onCallback)
		cb.future = purego.NewCallback(onFutureDone)
		cb.fd = purego.NewCallback(onFd)
		cb.exception = purego.NewCallback(onException)
		cb.connection = purego.NewCallback(onConnection)
		cb.signal = purego.NewCallback(onSignal)
		cb.executor = purego.NewCallback(onExecutor)
		cb.protocol = cProtocol{
			size:           unsafe.Sizeof(cProtocol{}),
			connectionMade: purego.NewCallback(onConnectionMade),
			dataReceived:   purego.NewCallback(onDataReceived),
			eofReceived:    purego.NewCallback(onEOFReceived),
			connectionLost: purego.NewCallback(onConnectionLost),
			pauseWriting:   purego.NewCallback(onPauseWriting),
			resumeWriting:  purego.NewCallback(onResumeWriting),
		}
		cb.bufferedProtocol = cb.protocol
		cb.bufferedProtocol.dataReceived = 0
		cb.bufferedProtocol.getBuffer = purego.NewCallback(onGetBuffer)
		cb.bufferedProtocol.bufferUpdated = purego.NewCallback(onBufferUpdated)
		cb.datagramProtocol = cDatagramProtocol{
			size:             unsafe.Sizeof(cDatagramProtocol{}),
			connectionMade:   purego.NewCallback(onDatagramConnectionMade),
			datagramReceived: purego.NewCallback(onDatagramReceived),
			errorReceived:    purego.NewCallback(onDatagramErrorReceived),
			connectionLost:   purego.NewCallback(onDatagramConnectionLost),
			pauseWriting:     purego.NewCallback(onDatagramPauseWriting),
			resumeWriting:    purego.NewCallback(onDatagramResumeWriting),
		}
		cb.queuedDatagramProtocol = cb.datagramProtocol
		cb.queuedDatagramProtocol.flags = protocolQueued
		cb.subprocessProtocol = cSubprocessProtocol{
			size:               unsafe.Sizeof(cSubprocessProtocol{}),
			connectionMade:     purego.NewCallback(onSubprocessConnectionMade),
			pipeDataReceived:   purego.NewCallback(onPipeDataReceived),
			pipeConnectionLost: purego.NewCallback(onPipeConnectionLost),
			processExited:      purego.NewCallback(onProcessExited),
			connectionLost:     purego.NewCallback(onSubprocessConnectionLost),
			pauseWriting:       purego.NewCallback(onSubprocessPauseWriting),
			resumeWriting:      purego.NewCallback(onSubprocessResumeWriting),
		}
	})
}

// guard is deferred by every dispatcher that runs user code: a panic must
// not unwind through the library's C frames. It is stored on the loop, the
// loop is stopped, and the run call re-panics after it returns.
func guard(l *Loop) {
	if r := recover(); r != nil {
		l.storePanic(r, debug.Stack())
	}
}

// onFree is aloop_free_cb.
func onFree(ud uintptr) {
	if v, ok := reg.del(ud).(freer); ok {
		v.freed()
	}
}

// freer is implemented by userdata that wants to know it was dropped.
type freer interface{ freed() }

// owned is implemented by every userdata: the loop it belongs to. When a
// loop is closed, Loop.Close drops whatever the library did not release
// (scheduled callbacks have no free_cb; done-callbacks of futures that never
// completed are never released by the library).
type owned interface{ owner() *Loop }

// schedEntry is the userdata of call_soon/call_later/call_at. These are
// registered without a free_cb (it would cost a second crossing per
// callback): the entry is deleted when the callback runs, when Cancel
// succeeds, when the scheduling call fails, and when the loop is closed
// (Loop.Close sweeps the loop's entries).
type schedEntry struct {
	loop   *Loop
	fn     func()
	handle *Handle
}

func (e *schedEntry) owner() *Loop { return e.loop }

// onCallback is aloop_callback_cb.
func onCallback(loop uintptr, ud uintptr) {
	e, ok := reg.del(ud).(*schedEntry)
	if !ok {
		return
	}
	if e.handle != nil {
		e.handle.finished.Store(true)
	}
	defer guard(e.loop)
	e.fn()
}

// doneRunner is the userdata of a future's done-callback: the binding's own
// (which settles the future) or the user's.
type doneRunner interface {
	owned
	runDone()
}

// onFutureDone is aloop_future_cb.
func onFutureDone(fut uintptr, ud uintptr) {
	e, ok := reg.get(ud).(doneRunner)
	if !ok {
		return
	}
	defer guard(e.owner())
	e.runDone()
}

type fdEntry struct {
	loop *Loop
	fn   func()
}

func (e *fdEntry) owner() *Loop { return e.loop }

// onFd is aloop_fd_cb.
func onFd(loop uintptr, fd uintptr, ud uintptr) {
	e, ok := reg.get(ud).(*fdEntry)
	if !ok {
		return
	}
	defer guard(e.loop)
	e.fn()
}

type exceptionEntry struct {
	loop *Loop
	fn   func(*Loop, *ExceptionContext)
}

func (e *exceptionEntry) owner() *Loop { return e.loop }

// onException is aloop_exception_cb.
func onException(loop uintptr, ctx *cExceptionContext, ud uintptr) {
	e, ok := reg.get(ud).(*exceptionEntry)
	if !ok || ctx == nil {
		return
	}
	defer guard(e.loop)
	e.fn(e.loop, e.loop.exceptionContext(ctx))
}

// goString copies a NUL-terminated C string.
func goString(p *byte) string {
	if p == nil {
		return ""
	}
	return string(unsafe.Slice(p, cStrlen(p)))
}

func cStrlen(p *byte) int {
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return n
}

// onConnection is aloop_connection_cb (a server's protocol factory).
func onConnection(server uintptr, transport uintptr, ud uintptr) (rc int32) {
	s, ok := reg.get(ud).(*serverEntry)
	if !ok {
		return EINVAL
	}
	rc = EPANIC
	defer guard(s.loop)
	p := s.factory()
	if p == nil {
		return EINVAL
	}
	c := newConn(s.loop, p, s.network)
	c.transport.h = transport
	s.loop.transports[transport] = c.transport
	key := reg.add(c)
	runtime.LockOSThread()
	r := lib.transportSetProtocol(transport, unsafe.Pointer(c.cproto()), key, cb.free)
	runtime.UnlockOSThread()
	if r < 0 {
		delete(s.loop.transports, transport)
		return r
	}
	return 0
}

func connOf(ud uintptr) *conn {
	c, _ := reg.get(ud).(*conn)
	return c
}

func onConnectionMade(transport uintptr, ud uintptr) {
	c := connOf(ud)
	if c == nil {
		return
	}
	if c.transport.h == 0 {
		c.transport.h = transport
		c.loop.transports[transport] = c.transport
	}
	defer guard(c.loop)
	c.proto.ConnectionMade(c.transport)
}

func onDataReceived(transport uintptr, data *byte, n uintptr, ud uintptr) {
	c := connOf(ud)
	if c == nil {
		return
	}
	defer guard(c.loop)
	var b []byte
	if n > 0 && data != nil {
		b = unsafe.Slice(data, n)
	}
	c.proto.DataReceived(b)
}

func onEOFReceived(transport uintptr, ud uintptr) int32 {
	c := connOf(ud)
	if c == nil {
		return 0
	}
	keep := false
	func() {
		defer guard(c.loop)
		keep = c.proto.EOFReceived()
	}()
	if keep {
		return 1
	}
	return 0
}

func onConnectionLost(transport uintptr, code uintptr, ud uintptr) {
	c := connOf(ud)
	if c == nil {
		return
	}
	t := c.transport
	t.lost.Store(true)
	delete(c.loop.transports, t.h)
	defer guard(c.loop)
	c.proto.ConnectionLost(codeError(code))
}

// codeError converts an error code passed to a callback (0: none).
func codeError(code uintptr) error {
	if e := int32(uint32(code)); e != 0 {
		return newError(int(e), "")
	}
	return nil
}

func onPauseWriting(transport uintptr, ud uintptr) {
	c := connOf(ud)
	if c == nil {
		return
	}
	defer guard(c.loop)
	c.proto.PauseWriting()
}

func onResumeWriting(transport uintptr, ud uintptr) {
	c := connOf(ud)
	if c == nil {
		return
	}
	defer guard(c.loop)
	c.proto.ResumeWriting()
}

func onGetBuffer(transport uintptr, sizehint uintptr, n *uintptr, ud uintptr) unsafe.Pointer {
	c := connOf(ud)
	if c == nil || c.buffered == nil || n == nil {
		return nil
	}
	var buf []byte
	func() {
		defer guard(c.loop)
		buf = c.buffered.GetBuffer(int(sizehint))
	}()
	if len(buf) == 0 {
		*n = 0
		return nil
	}
	c.pinBuf(buf)
	*n = uintptr(len(buf))
	return unsafe.Pointer(unsafe.SliceData(buf))
}

func onBufferUpdated(transport uintptr, nbytes uintptr, ud uintptr) {
	c := connOf(ud)
	if c == nil || c.buffered == nil {
		return
	}
	defer guard(c.loop)
	c.buffered.BufferUpdated(int(nbytes))
}

// Datagram protocol callbacks.

func dgramOf(ud uintptr) *dgramConn {
	c, _ := reg.get(ud).(*dgramConn)
	return c
}

func onDatagramConnectionMade(dgram uintptr, ud uintptr) {
	c := dgramOf(ud)
	if c == nil {
		return
	}
	if c.transport.h == 0 {
		c.transport.h = dgram
		c.loop.datagrams[dgram] = c.transport
	}
	defer guard(c.loop)
	c.proto.ConnectionMade(c.transport)
}

func onDatagramReceived(dgram uintptr, data *byte, n uintptr, host *byte, port uintptr, ud uintptr) {
	c := dgramOf(ud)
	if c == nil {
		return
	}
	defer guard(c.loop)
	var b []byte
	if n > 0 && data != nil {
		b = unsafe.Slice(data, n)
	} else {
		b = []byte{}
	}
	c.proto.DatagramReceived(b, c.senderAddr(host, int(int32(uint32(port)))))
}

func onDatagramErrorReceived(dgram uintptr, code uintptr, ud uintptr) {
	c := dgramOf(ud)
	if c == nil {
		return
	}
	defer guard(c.loop)
	c.proto.ErrorReceived(c.transport.wrapErr("read", codeError(code)))
}

func onDatagramConnectionLost(dgram uintptr, code uintptr, ud uintptr) {
	c := dgramOf(ud)
	if c == nil {
		return
	}
	c.transport.lost.Store(true)
	delete(c.loop.datagrams, c.transport.h)
	defer guard(c.loop)
	c.proto.ConnectionLost(codeError(code))
}

func onDatagramPauseWriting(dgram uintptr, ud uintptr) {
	if c := dgramOf(ud); c != nil {
		defer guard(c.loop)
		c.proto.PauseWriting()
	}
}

func onDatagramResumeWriting(dgram uintptr, ud uintptr) {
	if c := dgramOf(ud); c != nil {
		defer guard(c.loop)
		c.proto.ResumeWriting()
	}
}

// Subprocess protocol callbacks.

func subprocOf(ud uintptr) *subprocConn {
	c, _ := reg.get(ud).(*subprocConn)
	return c
}

func onSubprocessConnectionMade(proc uintptr, ud uintptr) {
	c := subprocOf(ud)
	if c == nil {
		return
	}
	if c.transport.h == 0 {
		c.transport.h = proc
		c.loop.subprocesses[proc] = c.transport
	}
	c.transport.pid = int(lib.subprocessGetPid(proc))
	defer guard(c.loop)
	c.proto.ConnectionMade(c.transport)
}

func onPipeDataReceived(proc uintptr, fd uintptr, data *byte, n uintptr, ud uintptr) {
	c := subprocOf(ud)
	if c == nil {
		return
	}
	defer guard(c.loop)
	var b []byte
	if n > 0 && data != nil {
		b = unsafe.Slice(data, n)
	}
	c.proto.PipeDataReceived(int(int32(uint32(fd))), b)
}

func onPipeConnectionLost(proc uintptr, fd uintptr, code uintptr, ud uintptr) {
	c := subprocOf(ud)
	if c == nil {
		return
	}
	c.transport.pipeLost(int(int32(uint32(fd))))
	defer guard(c.loop)
	c.proto.PipeConnectionLost(int(int32(uint32(fd))), codeError(code))
}

func onProcessExited(proc uintptr, ud uintptr) {
	c := subprocOf(ud)
	if c == nil {
		return
	}
	c.transport.exited()
	defer guard(c.loop)
	c.proto.ProcessExited()
}

func onSubprocessConnectionLost(proc uintptr, code uintptr, ud uintptr) {
	c := subprocOf(ud)
	if c == nil {
		return
	}
	c.transport.lost.Store(true)
	delete(c.loop.subprocesses, c.transport.h)
	defer guard(c.loop)
	c.proto.ConnectionLost(codeError(code))
}

func onSubprocessPauseWriting(proc uintptr, ud uintptr) {
	if c := subprocOf(ud); c != nil {
		defer guard(c.loop)
		c.proto.PauseWriting()
	}
}

func onSubprocessResumeWriting(proc uintptr, ud uintptr) {
	if c := subprocOf(ud); c != nil {
		defer guard(c.loop)
		c.proto.ResumeWriting()
	}
}

type signalEntry struct {
	loop *Loop
	fn   func()
}

func (e *signalEntry) owner() *Loop { return e.loop }

// onSignal is aloop_signal_cb.
func onSignal(loop uintptr, signum uintptr, ud uintptr) {
	e, ok := reg.get(ud).(*signalEntry)
	if !ok {
		return
	}
	defer guard(e.loop)
	e.fn()
}

// onExecutor is aloop_executor_fn: it runs on one of the library's worker
// threads (not the loop's), so it must not touch the loop. The job stores
// its own result; the return value is unused.
func onExecutor(ud uintptr) uintptr {
	if j, ok := reg.get(ud).(executorJob); ok {
		j.run()
	}
	return 0
}
