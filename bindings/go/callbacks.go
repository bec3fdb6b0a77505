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
		s.val = nil
		s.gen++
		if s.gen == 0 {
			s.gen = 1
		}
		r.free = append(r.free, uint32(k)-1)
		r.live--
	}
	r.mu.Unlock()
	return v
}

// sweep deletes every value for which drop returns true.
func (r *registry) sweep(drop func(any) bool) {
	r.mu.Lock()
	for i := range r.slots {
		s := &r.slots[i]
		if s.val != nil && drop(s.val) {
			s.val = nil
			s.gen++
			if s.gen == 0 {
				s.gen = 1
			}
			r.free = append(r.free, uint32(i))
			r.live--
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

	free           uintptr // aloop_free_cb
	callback       uintptr // aloop_callback_cb
	future         uintptr // aloop_future_cb
	fd             uintptr // aloop_fd_cb
	exception      uintptr // aloop_exception_cb
	connection     uintptr // aloop_connection_cb
	connectionMade uintptr // aloop_protocol_t members
	dataReceived   uintptr
	eofReceived    uintptr
	connectionLost uintptr
	pauseWriting   uintptr
	resumeWriting  uintptr
	getBuffer      uintptr
	bufferUpdated  uintptr

	protocol         cProtocol // data_received variant
	bufferedProtocol cProtocol // get_buffer/buffer_updated variant
}

// cProtocol is aloop_protocol_t.
type cProtocol struct {
	size           uintptr
	connectionMade uintptr
	dataReceived   uintptr
	eofReceived    uintptr
	connectionLost uintptr
	pauseWriting   uintptr
	resumeWriting  uintptr
	getBuffer      uintptr
	bufferUpdated  uintptr
}

func initCallbacks() {
	cb.once.Do(func() {
		cb.free = purego.NewCallback(onFree)
		cb.callback = purego.NewCallback(onCallback)
		cb.future = purego.NewCallback(onFutureDone)
		cb.fd = purego.NewCallback(onFd)
		cb.exception = purego.NewCallback(onException)
		cb.connection = purego.NewCallback(onConnection)
		cb.connectionMade = purego.NewCallback(onConnectionMade)
		cb.dataReceived = purego.NewCallback(onDataReceived)
		cb.eofReceived = purego.NewCallback(onEOFReceived)
		cb.connectionLost = purego.NewCallback(onConnectionLost)
		cb.pauseWriting = purego.NewCallback(onPauseWriting)
		cb.resumeWriting = purego.NewCallback(onResumeWriting)
		cb.getBuffer = purego.NewCallback(onGetBuffer)
		cb.bufferUpdated = purego.NewCallback(onBufferUpdated)
		cb.protocol = cProtocol{
			size:           unsafe.Sizeof(cProtocol{}),
			connectionMade: cb.connectionMade,
			dataReceived:   cb.dataReceived,
			eofReceived:    cb.eofReceived,
			connectionLost: cb.connectionLost,
			pauseWriting:   cb.pauseWriting,
			resumeWriting:  cb.resumeWriting,
		}
		cb.bufferedProtocol = cb.protocol
		cb.bufferedProtocol.dataReceived = 0
		cb.bufferedProtocol.getBuffer = cb.getBuffer
		cb.bufferedProtocol.bufferUpdated = cb.bufferUpdated
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

func (e *schedEntry) owner() *Loop { return e.loop }
func (e *doneEntry) owner() *Loop {
	if e.fut == nil {
		return nil
	}
	return e.fut.loop
}
func (e *fdEntry) owner() *Loop        { return e.loop }
func (e *exceptionEntry) owner() *Loop { return e.loop }
func (c *conn) owner() *Loop           { return c.loop }
func (s *Server) owner() *Loop         { return s.loop }

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

// onCallback is aloop_callback_cb.
func onCallback(loop uintptr, ud uintptr) {
	e, ok := reg.del(ud).(*schedEntry)
	if !ok {
		return
	}
	e.handle.finished.Store(true)
	defer guard(e.loop)
	e.fn()
}

type doneEntry struct {
	fut *Future
	fn  func(*Future)
}

// onFutureDone is aloop_future_cb.
func onFutureDone(fut uintptr, ud uintptr) {
	e, ok := reg.get(ud).(*doneEntry)
	if !ok {
		return
	}
	defer guard(e.fut.loop)
	e.fn(e.fut)
}

type fdEntry struct {
	loop *Loop
	fn   func()
}

// onFd is aloop_fd_cb.
func onFd(loop uintptr, fd uintptr, ud uintptr) {
	e, ok := reg.get(ud).(*fdEntry)
	if !ok {
		return
	}
	defer guard(e.loop)
	e.fn()
}

// cExceptionContext is aloop_exception_context_t.
type cExceptionContext struct {
	size        uintptr
	message     *byte
	error       int32
	_           int32
	errorDetail *byte
	transport   uintptr
	server      uintptr
	future      uintptr
}

type exceptionEntry struct {
	loop *Loop
	fn   func(*Loop, *ExceptionContext)
}

// onException is aloop_exception_cb.
func onException(loop uintptr, ctx *cExceptionContext, ud uintptr) {
	e, ok := reg.get(ud).(*exceptionEntry)
	if !ok || ctx == nil {
		return
	}
	defer guard(e.loop)
	c := &ExceptionContext{
		Message: goString(ctx.message),
		raw:     ctx,
	}
	if ctx.error != 0 {
		c.Err = newError(int(ctx.error), goString(ctx.errorDetail))
	}
	c.Detail = goString(ctx.errorDetail)
	if ctx.transport != 0 {
		c.Transport = e.loop.transports[ctx.transport]
	}
	if ctx.server != 0 {
		c.Server = e.loop.servers[ctx.server]
	}
	e.fn(e.loop, c)
}

// goString copies a NUL-terminated C string.
func goString(p *byte) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// onConnection is aloop_connection_cb (a server's protocol factory).
func onConnection(server uintptr, transport uintptr, ud uintptr) (rc int32) {
	s, ok := reg.get(ud).(*Server)
	if !ok {
		return EINVAL
	}
	rc = EPANIC
	defer guard(s.loop)
	if s.h == 0 {
		s.h = server
		s.loop.servers[server] = s
	}
	p := s.factory()
	if p == nil {
		return EINVAL
	}
	c := newConn(s.loop, p)
	c.transport.h = transport
	s.loop.transports[transport] = c.transport
	key := reg.add(c)
	proto := c.cproto()
	runtime.LockOSThread()
	r := lib.transportSetProtocol(transport, unsafe.Pointer(proto), key, cb.free)
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
	var err error
	if e := int32(uint32(code)); e != 0 {
		err = newError(int(e), "")
	}
	defer guard(c.loop)
	c.proto.ConnectionLost(err)
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
		c.buf = nil
		return nil
	}
	c.buf = buf // keeps the memory alive while the library reads into it
	*n = uintptr(len(buf))
	return unsafe.Pointer(unsafe.SliceData(buf))
}

func onBufferUpdated(transport uintptr, nbytes uintptr, ud uintptr) {
	c := connOf(ud)
	if c == nil || c.buffered == nil {
		return
	}
	c.buf = nil
	defer guard(c.loop)
	c.buffered.BufferUpdated(int(nbytes))
}
