package asyncloop

import (
	"context"
	"runtime/debug"
)

// executorJob is the argument of aloop_run_in_executor: run is called on a
// library worker thread.
type executorJob interface {
	owned
	run()
}

type job[T any] struct {
	loop *Loop
	fn   func() (T, error)
	val  T
	err  error
}

func (j *job[T]) owner() *Loop { return j.loop }

func (j *job[T]) run() {
	defer func() {
		if r := recover(); r != nil {
			j.err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	j.val, j.err = j.fn()
}

// RunInExecutor runs fn on the loop's default executor (asyncio's
// run_in_executor(None, fn)): a pool of the library's threads, started on
// demand (at most min(32, CPUs+4), see SetDefaultExecutorSize). The future
// resolves to fn's result, or fails with its error (a *PanicError if it
// panicked). fn runs outside the loop's thread: it may block, but it must
// only use the THREAD-SAFE methods of the loop (CallSoonThreadsafe, ...).
// Cancelling the future (or ctx) before fn starts means fn never runs; once
// it runs, it completes and its result is dropped.
func RunInExecutor[T any](ctx context.Context, l *Loop, fn func() (T, error)) (*Future[T], error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if fn == nil {
		return nil, errInvalid("nil func")
	}
	j := &job[T]{loop: l, fn: fn}
	key := reg.add(j)
	return newOpFuture(l, ctx, nil, func(uintptr) (T, error) { return j.val, j.err }, func(out *uintptr) int32 {
		return lib.runInExecutor(l.handle(), cb.executor, key, cb.free, out)
	})
}

// RunInExecutor is the package function RunInExecutor for a function
// without a typed result.
func (l *Loop) RunInExecutor(ctx context.Context, fn func() (any, error)) (*Future[any], error) {
	return RunInExecutor(ctx, l, fn)
}

// SetDefaultExecutorSize sets the maximum number of threads of the default
// executor (1..65536; asyncio's set_default_executor with a
// ThreadPoolExecutor of that size).
func (l *Loop) SetDefaultExecutorSize(maxWorkers int) error {
	if maxWorkers < 1 || maxWorkers > 65536 {
		return errInvalid("executor size out of range 1..65536")
	}
	_, err := l.call(func(h uintptr) int32 { return lib.loopSetDefaultExecutorSize(h, int32(maxWorkers)) })
	return err
}

// ShutdownDefaultExecutor shuts the default executor down (asyncio's
// shutdown_default_executor): later RunInExecutor calls fail with
// ErrClosed; the future resolves once every submitted job has finished.
func (l *Loop) ShutdownDefaultExecutor(ctx context.Context) (*Future[struct{}], error) {
	return newOpFuture(l, ctx, nil, resultNone, func(out *uintptr) int32 {
		return lib.loopShutdownDefaultExecutor(l.handle(), out)
	})
}
