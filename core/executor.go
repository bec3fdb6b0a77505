package core

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// The default executor (asyncio's run_in_executor with executor=None): a
// bounded pool of worker goroutines, started on demand as
// concurrent.futures.ThreadPoolExecutor does, that run blocking jobs off
// the loop thread and hand each result back to the loop with
// CallSoonThreadsafe. A job is a pending operation of the loop (it keeps the
// loop alive and Close returns ErrBusy) until its result was delivered on
// the loop thread, or until it was cancelled before it started.

// DefaultExecutorSize is asyncio's default: min(32, cpus + 4).
func DefaultExecutorSize() int { return min(32, runtime.NumCPU()+4) }

// MaxExecutorSize bounds SetDefaultExecutorSize.
const MaxExecutorSize = 65536

type jobState uint8

const (
	jobQueued jobState = iota
	jobRunning
	jobCancelled
)

type execJob struct {
	fn      func() (any, error)
	release func()
	fut     *Future
	state   jobState // guarded by executor.mu
}

type executor struct {
	loop *Loop
	mu   sync.Mutex
	cond *sync.Cond
	// guarded by mu
	queue    []*execJob
	qhead    int
	max      int
	workers  int
	busy     int
	shutdown bool

	// loop thread only
	pending int       // submitted, result not yet delivered
	waiters []*Future // ShutdownDefaultExecutor futures
}

// execState is the loop's executor state (loop thread only).
type execState struct {
	ex           *executor
	size         int  // 0: DefaultExecutorSize
	shutdownCall bool // ShutdownDefaultExecutor was called
}

func (l *Loop) defaultExecutor() *executor {
	if l.exec.ex == nil {
		ex := &executor{loop: l, max: l.exec.size}
		if ex.max == 0 {
			ex.max = DefaultExecutorSize()
		}
		ex.cond = sync.NewCond(&ex.mu)
		l.exec.ex = ex
	}
	return l.exec.ex
}

// SetDefaultExecutorSize sets the number of workers of the default executor
// (1..MaxExecutorSize). A running pool grows at once when jobs are queued;
// when it shrinks, surplus workers exit after their current job.
func (l *Loop) SetDefaultExecutorSize(n int) error {
	if l.closed || l.exec.shutdownCall {
		return ErrClosed
	}
	if n < 1 || n > MaxExecutorSize {
		return ErrInvalid
	}
	l.exec.size = n
	if ex := l.exec.ex; ex != nil {
		ex.mu.Lock()
		ex.max = n
		ex.spawnLocked()
		ex.mu.Unlock()
		ex.cond.Broadcast() // surplus idle workers exit
	}
	return nil
}

// DefaultExecutorSize returns the size the default executor has or will have.
func (l *Loop) DefaultExecutorSize() int {
	if l.exec.size > 0 {
		return l.exec.size
	}
	return DefaultExecutorSize()
}

// RunInExecutor runs fn on a worker of the default executor and returns a
// future for its result (asyncio's run_in_executor(None, fn)). fn runs on
// another goroutine (another OS thread), never on the loop's. release (may
// be nil) runs once on the loop thread: after the future got fn's result,
// or when the future was cancelled before fn started (then fn never runs).
// If the future is cancelled while fn runs, fn completes and its result is
// discarded. A panic in fn fails the future. After ShutdownDefaultExecutor
// or Close: ErrClosed.
func (l *Loop) RunInExecutor(fn func() (any, error), release func()) (*Future, error) {
	if l.closed || l.exec.shutdownCall {
		return nil, ErrClosed
	}
	if fn == nil {
		return nil, ErrInvalid
	}
	ex := l.defaultExecutor()
	fut := l.NewFuture()
	j := &execJob{fn: fn, release: release, fut: fut}
	fut.onCancel = func() { ex.cancel(j) }
	ex.pending++
	l.objects++
	ex.mu.Lock()
	ex.queue = append(ex.queue, j)
	ex.spawnLocked()
	ex.mu.Unlock()
	ex.cond.Signal()
	return fut, nil
}

// spawnLocked starts a worker when the queued jobs outnumber idle workers.
func (ex *executor) spawnLocked() {
	queued := len(ex.queue) - ex.qhead
	for queued > ex.workers-ex.busy && ex.workers < ex.max {
		ex.workers++
		go ex.worker()
	}
}

func (ex *executor) worker() {
	ex.mu.Lock()
	for {
		for ex.qhead == len(ex.queue) || ex.workers > ex.max {
			if ex.shutdown || ex.workers > ex.max {
				ex.workers--
				ex.mu.Unlock()
				return
			}
			ex.cond.Wait()
		}
		j := ex.queue[ex.qhead]
		ex.queue[ex.qhead] = nil
		ex.qhead++
		if ex.qhead == len(ex.queue) {
			ex.queue = ex.queue[:0]
			ex.qhead = 0
		}
		if j.state != jobQueued {
			continue // cancelled while queued (already accounted for)
		}
		j.state = jobRunning
		ex.busy++
		ex.mu.Unlock()

		res, err := runJob(j.fn)
		// The loop cannot be closed while a job is pending, so this
		// cannot fail.
		ex.loop.CallSoonThreadsafe(func() { ex.complete(j, res, err) }, nil)

		ex.mu.Lock()
		ex.busy--
	}
}

func runJob(fn func() (any, error)) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			res = nil
			err = fmt.Errorf("executor job panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return fn()
}

// cancel runs inside Future.Cancel on the loop thread: a job that has not
// started is dropped at once, so that it never runs.
func (ex *executor) cancel(j *execJob) {
	ex.mu.Lock()
	dropped := j.state == jobQueued
	if dropped {
		j.state = jobCancelled
	}
	ex.mu.Unlock()
	if dropped {
		ex.finish(j)
	}
}

// complete delivers a job's result on the loop thread.
func (ex *executor) complete(j *execJob, res any, err error) {
	f := j.fut
	f.onCancel = nil
	if !f.Done() {
		if err != nil {
			f.SetException(err)
		} else {
			f.SetResult(res)
		}
	}
	ex.finish(j)
}

func (ex *executor) finish(j *execJob) {
	l := ex.loop
	ex.pending--
	l.objects--
	if r := j.release; r != nil {
		j.release = nil
		r()
	}
	if ex.pending == 0 && len(ex.waiters) > 0 {
		ws := ex.waiters
		ex.waiters = nil
		for _, w := range ws {
			if !w.Done() {
				w.SetResult(nil)
			}
		}
	}
}

// ShutdownDefaultExecutor stops the default executor (asyncio's
// shutdown_default_executor): later RunInExecutor calls fail with
// ErrClosed; jobs already submitted still run. The future is done once
// every submitted job finished and delivered its result.
func (l *Loop) ShutdownDefaultExecutor() (*Future, error) {
	if l.closed {
		return nil, ErrClosed
	}
	l.exec.shutdownCall = true
	f := l.NewFuture()
	ex := l.exec.ex
	if ex == nil || ex.pending == 0 {
		if ex != nil {
			ex.stopWorkers()
		}
		f.SetResult(nil)
		return f, nil
	}
	ex.stopWorkers()
	ex.waiters = append(ex.waiters, f)
	return f, nil
}

// stopWorkers lets the workers exit once the queue is empty.
func (ex *executor) stopWorkers() {
	ex.mu.Lock()
	ex.shutdown = true
	ex.mu.Unlock()
	ex.cond.Broadcast()
}

// closeExecutor runs in Loop.Close (no job is pending then).
func (l *Loop) closeExecutor() {
	if ex := l.exec.ex; ex != nil {
		ex.stopWorkers()
		for _, w := range ex.waiters {
			if !w.Done() {
				w.SetResult(nil)
			}
		}
		ex.waiters = nil
	}
}
