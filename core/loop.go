// Package core is asyncloop's engine: an asyncio-compatible event loop in pure
// Go (no cgo). Socket I/O runs on the loop's own thread through an epoll
// reactor; goroutines are used only for work that blocks (name resolution,
// executor jobs) and hand their results back through a thread-safe queue.
//
// A Loop is driven by one goroutine at a time (the one inside Run*). Every
// callback runs on that goroutine. Only CallSoonThreadsafe, Stop and Wakeup
// may be called from other goroutines.
package core

import (
	"container/heap"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncloop/asyncloop/core/internal/poll"
	"golang.org/x/sys/unix"
)

// RunMode selects how Run behaves.
type RunMode int

const (
	RunDefault RunMode = iota // until Stop
	RunOnce                   // one iteration, waiting for I/O if idle
	RunNoWait                 // one iteration, never waiting
)

// Handle is a scheduled callback or timer.
type Handle struct {
	loop      *Loop
	fn        func()
	release   func()
	when      float64
	seq       uint64
	index     int // heap index, -1 when not in the heap
	timer     bool
	cancelled bool
	finished  bool
}

// Cancel cancels the callback; its release hook runs. Cancelling twice, or a
// handle that already ran, does nothing.
func (h *Handle) Cancel() {
	if h.finished || h.cancelled {
		return
	}
	h.cancelled = true
	if h.timer && h.index >= 0 {
		l := h.loop
		l.timerCancelled++
		// Drop cancelled timers eagerly when they dominate the heap.
		if l.timerCancelled > 64 && l.timerCancelled*2 > len(l.timers) {
			l.purgeTimers()
		}
	}
	h.finish()
}

// Cancelled reports whether Cancel was called.
func (h *Handle) Cancelled() bool { return h.cancelled }

// When is a timer's deadline in loop time (0 for call_soon handles).
func (h *Handle) When() float64 { return h.when }

// IsTimer reports whether the handle was made by CallLater/CallAt.
func (h *Handle) IsTimer() bool { return h.timer }

// Done reports whether the callback ran or was cancelled.
func (h *Handle) Done() bool { return h.finished }

func (h *Handle) finish() {
	if h.finished {
		return
	}
	h.finished = true
	h.fn = nil
	if r := h.release; r != nil {
		h.release = nil
		r()
	}
}

type timerHeap []*Handle

func (t timerHeap) Len() int { return len(t) }
func (t timerHeap) Less(i, j int) bool {
	if t[i].when != t[j].when {
		return t[i].when < t[j].when
	}
	return t[i].seq < t[j].seq
}
func (t timerHeap) Swap(i, j int) {
	t[i], t[j] = t[j], t[i]
	t[i].index = i
	t[j].index = j
}
func (t *timerHeap) Push(x any) {
	h := x.(*Handle)
	h.index = len(*t)
	*t = append(*t, h)
}
func (t *timerHeap) Pop() any {
	old := *t
	n := len(old)
	h := old[n-1]
	old[n-1] = nil
	h.index = -1
	*t = old[:n-1]
	return h
}

// ExceptionContext is asyncio's exception-handler context.
type ExceptionContext struct {
	Message   string
	Err       error
	Transport *Transport
	Server    *Server
	Future    *Future
	Handle    *Handle
	// The datagram endpoint / subprocess involved (udp.go, subprocess.go).
	Datagram   *DatagramTransport
	Subprocess *Subprocess
}

// ExceptionHandler handles errors the loop cannot return to a caller.
type ExceptionHandler func(l *Loop, ctx *ExceptionContext)

// Loop is an event loop.
type Loop struct {
	poller *poll.Poller

	ready          []*Handle
	readyHead      int
	timers         timerHeap
	seq            uint64
	timerCancelled int

	tsMu      sync.Mutex
	tsQueue   []*Handle
	tsSpare   []*Handle   // the drained queue's array, for the next batch (loop thread)
	tsPending atomic.Bool // tsQueue is not empty (read without tsMu)

	stopping atomic.Bool
	running  atomic.Bool
	closed   bool
	threadID atomic.Int64

	fds     []*fdEntry
	nfds    int // fds with a watcher or transport
	objects int // live transports, servers and pending operations

	exec  execState                // default executor (executor.go)
	sigs  map[int]*sigEntry        // signal handlers (signal.go)
	procs map[*Subprocess]struct{} // subprocesses not yet released (subprocess.go)

	debug        atomic.Bool // read from any thread (CheckThread)
	iteration    uint64      // iterations run (scheduleClose)
	SlowCallback float64
	excHandler   ExceptionHandler

	base float64
	t0   time.Time

	readBuf []byte
	chunks  [][]byte           // write-buffer chunks to reuse (writeq.go)
	iov     [maxIov]unix.Iovec // a flush's iovecs (writeq.go)
	tlsBuf  []byte             // plaintext of TLS transports (tls.go)

	evq *EventQueue // queued protocol events (events.go)

	cur loopCurrent // running-loop registry (current.go)

	// waiting holds the pending futures that have done-callbacks, so Close
	// can release callbacks that will never run.
	waiting   map[*Future]struct{}
	lastYield time.Duration // since t0: when iterate last yielded to Go's scheduler (yieldEvery)
	// idle.go: the iteration of the last idle release, and the runtime's
	// allocated-bytes counter then.
	releasedAt      uint64
	allocsAtRelease uint64
	// pendingFuts lists the pending futures (future.go).
	pendingFuts *Future
}

// NewLoop creates a loop.
func NewLoop() (*Loop, error) {
	p, err := poll.New()
	if err != nil {
		return nil, err
	}
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	l := &Loop{
		poller:       p,
		base:         float64(ts.Sec) + float64(ts.Nsec)/1e9,
		t0:           time.Now(),
		SlowCallback: 0.1,
	}
	return l, nil
}

// Time is the loop's monotonic clock in seconds (CLOCK_MONOTONIC).
func (l *Loop) Time() float64 {
	return l.timeAt(time.Since(l.t0))
}

// timeAt is the loop's time d after its creation (t0).
func (l *Loop) timeAt(d time.Duration) float64 {
	return l.base + float64(d)/1e9
}

// IsRunning reports whether a Run call is active.
func (l *Loop) IsRunning() bool { return l.running.Load() }

// IsClosed reports whether Close was called.
func (l *Loop) IsClosed() bool { return l.closed }

// SetDebug enables debug mode.
func (l *Loop) SetDebug(on bool) { l.debug.Store(on) }

// Debug reports debug mode.
func (l *Loop) Debug() bool { return l.debug.Load() }

// CheckThread returns ErrNotLoopThread when debug mode is on, the loop is
// running, and the caller is not on the loop's thread.
func (l *Loop) CheckThread() error {
	if !l.debug.Load() {
		return nil
	}
	tid := l.threadID.Load()
	if tid == 0 || ThreadID() == tid {
		return nil
	}
	return ErrNotLoopThread
}

// threadIDFunc is the host's source of thread ids (SetThreadIDFunc).
var threadIDFunc atomic.Pointer[func() int64]

// ThreadID is the calling OS thread's id (gettid): what the loop records as
// its thread when a run starts (debug-mode thread checks, RunningLoop and
// Stop compare it with their caller's).
func ThreadID() int64 {
	if f := threadIDFunc.Load(); f != nil {
		return (*f)()
	}
	return int64(unix.Gettid())
}

// SetThreadIDFunc replaces the gettid system call behind ThreadID with f,
// which must return the same value for the calling thread (nil restores the
// system call). A system call costs 150-200 ns on a virtual machine, and
// every run of a loop (every Poll of a batched host) reads its thread's id;
// a C host caches it in the thread's own storage (capi) for a few ns.
func SetThreadIDFunc(f func() int64) {
	if f == nil {
		threadIDFunc.Store(nil)
		return
	}
	threadIDFunc.Store(&f)
}

// BackendFd is readable whenever the loop has I/O or thread-safe work.
func (l *Loop) BackendFd() int { return l.poller.Fd() }

// SetWakeupHook sets a function called from any thread after work is posted
// from outside the loop (nil removes it).
func (l *Loop) SetWakeupHook(f func()) {
	if f == nil {
		l.poller.OnWake.Store(nil)
		return
	}
	l.poller.OnWake.Store(&f)
}

// Alive reports whether the loop has work that keeps it alive.
func (l *Loop) Alive() bool {
	if len(l.ready)-l.readyHead > 0 || len(l.timers)-l.timerCancelled > 0 || l.nfds > 0 || l.objects > 0 {
		return true
	}
	return l.tsPending.Load()
}

// BackendTimeout is the number of milliseconds until the loop needs to run:
// 0 with ready callbacks, the time to the next timer, -1 for I/O only.
func (l *Loop) BackendTimeout() int {
	if len(l.ready) > l.readyHead || l.stopping.Load() {
		return 0
	}
	if l.tsPending.Load() {
		return 0
	}
	l.dropCancelledHead()
	if len(l.timers) == 0 {
		return -1
	}
	d := l.timers[0].when - l.Time()
	if d <= 0 {
		return 0
	}
	if d >= math.MaxInt32/1000 {
		return math.MaxInt32
	}
	return int(d*1000 + 0.999999)
}

// CallSoon schedules fn to run on the next iteration. release (may be nil)
// runs once when the handle is done (after fn ran, or when cancelled or
// dropped by Close).
func (l *Loop) CallSoon(fn func(), release func()) (*Handle, error) {
	if l.closed {
		return nil, ErrClosed
	}
	if err := l.CheckThread(); err != nil {
		return nil, err
	}
	h := &Handle{loop: l, fn: fn, release: release, index: -1}
	l.ready = append(l.ready, h)
	return h, nil
}

// CallSoonThreadsafe is CallSoon from any goroutine; it wakes the loop.
func (l *Loop) CallSoonThreadsafe(fn func(), release func()) (*Handle, error) {
	h := &Handle{loop: l, fn: fn, release: release, index: -1}
	l.tsMu.Lock()
	if l.closed {
		l.tsMu.Unlock()
		return nil, ErrClosed
	}
	l.tsQueue = append(l.tsQueue, h)
	l.tsPending.Store(true)
	l.tsMu.Unlock()
	l.poller.Wake()
	return h, nil
}

// CallLater runs fn after delay seconds.
func (l *Loop) CallLater(delay float64, fn func(), release func()) (*Handle, error) {
	return l.CallAt(l.Time()+delay, fn, release)
}

// CallAt runs fn at loop time when (NaN is rejected with ErrInvalid).
func (l *Loop) CallAt(when float64, fn func(), release func()) (*Handle, error) {
	if l.closed {
		return nil, ErrClosed
	}
	if math.IsNaN(when) {
		return nil, ErrInvalid
	}
	if err := l.CheckThread(); err != nil {
		return nil, err
	}
	l.seq++
	h := &Handle{loop: l, fn: fn, release: release, when: when, seq: l.seq, timer: true, index: -1}
	heap.Push(&l.timers, h)
	return h, nil
}

// Stop makes a RunDefault return after the current iteration. Thread-safe.
func (l *Loop) Stop() {
	l.stopping.Store(true)
	if !l.isLoopThread() {
		l.poller.Wake()
	}
}

// TakeStop reports whether Stop was called since a RunDefault last
// returned, and clears it: a host that drives the loop with Poll and runs
// its own run_forever asks after each Poll. Thread-safe.
func (l *Loop) TakeStop() bool { return l.stopping.Swap(false) }

// Wakeup makes a waiting loop return from its wait. Thread-safe.
func (l *Loop) Wakeup() { l.poller.Wake() }

func (l *Loop) isLoopThread() bool {
	tid := l.threadID.Load()
	return tid != 0 && l.running.Load() && tid == ThreadID()
}

// Run runs the loop in the given mode on the calling goroutine, which should
// be locked to its OS thread (runtime.LockOSThread) when callbacks call into
// foreign code.
func (l *Loop) Run(mode RunMode) error {
	switch mode {
	case RunOnce:
		return l.run(func() bool { return true }, -1)
	case RunNoWait:
		return l.run(func() bool { return true }, 0)
	default:
		return l.run(func() bool { return false }, -1)
	}
}

// RunOnceTimeout runs one iteration, waiting at most timeout seconds (< 0:
// no limit) for I/O when nothing is ready.
func (l *Loop) RunOnceTimeout(timeout float64) error {
	return l.run(func() bool { return true }, timeout)
}

// RunUntilComplete runs until f is done. It returns ErrStopped if the loop
// was stopped first.
func (l *Loop) RunUntilComplete(f *Future) error {
	if f.loop != l {
		return ErrInvalid
	}
	if f.Done() {
		return nil
	}
	h := f.AddDoneCallback(func(*Future) { l.Stop() }, nil, nil)
	err := l.run(func() bool { return false }, -1)
	f.removeCallback(h)
	if err != nil {
		return err
	}
	if !f.Done() {
		return ErrStopped
	}
	return nil
}

func (l *Loop) run(once func() bool, maxWait float64) (err error) {
	if l.closed {
		return ErrClosed
	}
	if !l.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	l.threadID.Store(ThreadID())
	l.enterRun()
	if q := l.evq; q != nil && !q.open {
		q.dispatched() // not a Poll: the last Poll's records are done with
	}
	defer func() {
		l.threadID.Store(0)
		l.running.Store(false)
	}()
	single := once()
	for {
		if err := l.iterate(maxWait); err != nil {
			return err
		}
		if single {
			// A Stop during a single iteration applies to the next
			// RunDefault, which then runs one iteration (as in asyncio).
			return nil
		}
		if l.stopping.Load() {
			l.stopping.Store(false)
			return nil
		}
		if l.closed {
			return nil
		}
	}
}

func (l *Loop) dropCancelledHead() {
	for len(l.timers) > 0 && l.timers[0].cancelled {
		heap.Pop(&l.timers)
		l.timerCancelled--
	}
}

func (l *Loop) purgeTimers() {
	live := l.timers[:0]
	for _, h := range l.timers {
		if h.cancelled {
			h.index = -1
			continue
		}
		h.index = len(live)
		live = append(live, h)
	}
	for i := len(live); i < len(l.timers); i++ {
		l.timers[i] = nil
	}
	l.timers = live
	l.timerCancelled = 0
	heap.Init(&l.timers)
}

// maxWaitSeconds bounds waits that are converted to nanoseconds; a longer
// (or infinite) wait is a wait without a deadline.
const maxWaitSeconds = 1e9

// yieldEvery: how often a busy loop passes through Go's scheduler. The
// loop's goroutine never changes the scheduler's tick by itself, so the
// runtime's monitor thread (sysmon) would see one goroutine running for
// more than 10 ms, preempt it (a signal), take its processor in its next
// system call, and then poll every 20 µs for a millisecond: ~1,400 wake-ups
// a second and 5-7% of the process's CPU samples under load (perf, C echo
// server, 10 connections). A yield every 9 ms costs a thread hand-off
// (~10 µs) and keeps sysmon asleep (~150 wake-ups a second). An idle
// loop does not yield: a wait of 9 ms or more counts as one.
const yieldEvery = 9 * time.Millisecond

// iterate is asyncio's _run_once.
func (l *Loop) iterate(maxWait float64) error {
	l.iteration++
	l.dropCancelledHead()
	var timeoutNs int64 = -1
	if len(l.ready) > l.readyHead || l.stopping.Load() {
		timeoutNs = 0
	} else if len(l.timers) > 0 {
		d := l.timers[0].when - l.Time()
		if d < 0 {
			d = 0
		}
		if d < maxWaitSeconds {
			timeoutNs = int64(d * 1e9)
		} // else: a deadline beyond maxWaitSeconds (or +Inf) is none
	}
	if maxWait >= 0 && maxWait < maxWaitSeconds {
		mw := int64(maxWait * 1e9)
		if timeoutNs < 0 || mw < timeoutNs {
			timeoutNs = mw
		}
	}
	if timeoutNs != 0 && l.tsPending.Load() {
		// Do not sleep when thread-safe work is already queued (work
		// queued after this check wakes the wait).
		timeoutNs = 0
	}
	dispatch := l.dispatch
	if l.debug.Load() {
		dispatch = l.dispatchTimed // reports slow I/O callbacks
	}
	timeoutNs, probe := l.idleWait(timeoutNs)
	waitStart := time.Since(l.t0)
	if _, err := l.poller.Wait(timeoutNs, dispatch); err != nil {
		return &OpError{Op: "epoll_wait", Err: err}
	}
	l.drainThreadsafe()
	now := time.Since(l.t0)
	if now-waitStart >= yieldEvery {
		l.lastYield = now // a long wait: the runtime has taken the processor meanwhile
		if probe {
			l.releaseIdle(now - waitStart)
		}
	} else if now-l.lastYield >= yieldEvery {
		l.lastYield = now
		runtime.Gosched()
	}

	// Expired timers become ready.
	var end float64
	if len(l.timers) > 0 {
		end = l.timeAt(now) + 1e-9
	}
	for len(l.timers) > 0 {
		h := l.timers[0]
		if h.cancelled {
			heap.Pop(&l.timers)
			l.timerCancelled--
			continue
		}
		if h.when > end {
			break
		}
		heap.Pop(&l.timers)
		l.ready = append(l.ready, h)
	}

	// Run the callbacks that are ready now (not those they schedule).
	ntodo := len(l.ready) - l.readyHead
	for i := 0; i < ntodo; i++ {
		h := l.ready[l.readyHead]
		l.ready[l.readyHead] = nil
		l.readyHead++
		if h.cancelled || h.finished {
			continue
		}
		l.runHandle(h)
	}
	if l.readyHead == len(l.ready) {
		l.ready = l.ready[:0]
		l.readyHead = 0
	} else if l.readyHead > 1024 && l.readyHead*2 > len(l.ready) {
		n := copy(l.ready, l.ready[l.readyHead:])
		for i := n; i < len(l.ready); i++ {
			l.ready[i] = nil
		}
		l.ready = l.ready[:n]
		l.readyHead = 0
	}
	return nil
}

func (l *Loop) drainThreadsafe() {
	if !l.tsPending.Load() {
		return // nothing queued: no lock (a poster wakes the next wait)
	}
	l.tsMu.Lock()
	q := l.tsQueue
	l.tsQueue = l.tsSpare
	l.tsSpare = nil
	l.tsPending.Store(false)
	l.tsMu.Unlock()
	l.ready = append(l.ready, q...)
	clear(q)
	l.tsSpare = q[:0] // only this function (the loop thread) touches it
}

func (l *Loop) runHandle(h *Handle) {
	fn := h.fn
	// Read debug once: a callback that turns debug mode on must not be
	// timed from 0.
	debug := l.debug.Load()
	var t0 float64
	if debug {
		t0 = l.Time()
	}
	l.protect(h, fn)
	if debug {
		if dt := l.Time() - t0; dt >= l.SlowCallback {
			l.CallExceptionHandler(&ExceptionContext{
				Message: fmt.Sprintf("Executing callback took %.3f seconds", dt),
				Handle:  h,
			})
		}
	}
	h.finish()
}

// protect runs fn, turning a panic into a call of the exception handler.
func (l *Loop) protect(h *Handle, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			l.CallExceptionHandler(&ExceptionContext{
				Message: "Exception in callback",
				Err:     fmt.Errorf("panic: %v\n%s", r, debug.Stack()),
				Handle:  h,
			})
		}
	}()
	fn()
}

// Close closes the loop: pending callbacks are dropped (their release hooks
// run) and the poller is released. ErrRunning while running, ErrBusy while
// transports, servers or fd watchers are alive. Closing twice is a no-op.
func (l *Loop) Close() error {
	if l.running.Load() {
		return ErrRunning
	}
	if l.closed {
		return nil
	}
	if l.nfds > 0 || l.objects > 0 {
		if l.debug.Load() {
			l.reportUnclosed()
		}
		return &OpError{Op: "close", Err: ErrBusy, Addr: fmt.Sprintf(
			"the loop still has %d live transports, servers, subprocesses or pending operations and %d watched fds",
			l.objects, l.nfds)}
	}
	l.closeSignals()
	l.closeSubprocesses()
	l.closeExecutor()
	l.tsMu.Lock()
	l.closed = true
	q := l.tsQueue
	l.tsQueue = nil
	l.tsPending.Store(false)
	l.tsMu.Unlock()
	pending := append(l.ready[l.readyHead:], q...)
	l.ready, l.readyHead = nil, 0
	for _, h := range pending {
		h.finish()
	}
	timers := l.timers
	l.timers = nil
	for _, h := range timers {
		h.index = -1
		h.finish()
	}
	l.dropWaitingFutures()
	l.pendingFuts = nil // a closed loop cancels nothing any more (CloseForce)
	if l.evq != nil {
		l.evq.close()
	}
	l.SetWakeupHook(nil)
	return l.poller.Close()
}

// SetExceptionHandler sets the handler (nil: the default).
func (l *Loop) SetExceptionHandler(h ExceptionHandler) { l.excHandler = h }

// CallExceptionHandler calls the handler; if it panics, the default handler
// reports both.
func (l *Loop) CallExceptionHandler(ctx *ExceptionContext) {
	h := l.excHandler
	if h == nil {
		l.DefaultExceptionHandler(ctx)
		return
	}
	defer func() {
		if r := recover(); r != nil {
			l.DefaultExceptionHandler(&ExceptionContext{
				Message: "Unhandled error in exception handler",
				Err:     fmt.Errorf("panic: %v", r),
			})
			l.DefaultExceptionHandler(ctx)
		}
	}()
	h(l, ctx)
}

// DefaultExceptionHandler prints the context to stderr.
func (l *Loop) DefaultExceptionHandler(ctx *ExceptionContext) {
	msg := ctx.Message
	if msg == "" {
		msg = "Unhandled exception in event loop"
	}
	s := "asyncloop: " + msg
	if ctx.Err != nil {
		s += "\nerror: " + ctx.Err.Error()
	}
	if ctx.Transport != nil {
		s += fmt.Sprintf("\ntransport: fd=%d", ctx.Transport.fd)
	}
	if ctx.Datagram != nil {
		s += fmt.Sprintf("\ndatagram endpoint: fd=%d", ctx.Datagram.Fd())
	}
	if ctx.Subprocess != nil {
		s += fmt.Sprintf("\nsubprocess: pid=%d", ctx.Subprocess.Pid())
	}
	fmt.Fprintln(os.Stderr, s)
}
