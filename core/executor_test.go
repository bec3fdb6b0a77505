package core

import (
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestExecutorResultOffLoopThread(t *testing.T) {
	h := newHarness(t)
	var jobTid atomic.Int64
	released := 0
	f, err := h.l.RunInExecutor(func() (any, error) {
		jobTid.Store(int64(unix.Gettid()))
		return 42, nil
	}, func() {
		h.onLoop("release")
		released++
	})
	if err != nil {
		t.Fatalf("RunInExecutor: %v", err)
	}
	if !h.l.Alive() {
		t.Fatalf("a pending executor job must keep the loop alive")
	}
	if err := h.l.Close(); !errors.Is(err, ErrBusy) {
		t.Fatalf("Close with a pending job: %v, want ErrBusy", err)
	}
	v, err := h.await(f, 5*time.Second)
	if err != nil || v != 42 {
		t.Fatalf("result %v, %v; want 42", v, err)
	}
	if got := jobTid.Load(); got == 0 || got == int64(h.tid) {
		t.Fatalf("job ran on thread %d, loop thread %d", got, h.tid)
	}
	if released != 1 {
		t.Fatalf("release ran %d times, want 1", released)
	}
	if h.l.Alive() {
		t.Fatalf("loop still alive after the job was delivered")
	}
}

func TestExecutorErrorAndPanic(t *testing.T) {
	h := newHarness(t)
	boom := errors.New("boom")
	f1, _ := h.l.RunInExecutor(func() (any, error) { return nil, boom }, nil)
	f2, _ := h.l.RunInExecutor(func() (any, error) { panic("kaboom") }, nil)
	if _, err := h.await(f1, 5*time.Second); err != boom {
		t.Fatalf("f1 error %v, want boom", err)
	}
	if _, err := h.await(f2, 5*time.Second); err == nil {
		t.Fatalf("a panicking job must fail its future")
	}
	if _, err := h.l.RunInExecutor(nil, nil); err != ErrInvalid {
		t.Fatalf("nil fn: %v", err)
	}
}

func TestExecutorBounded(t *testing.T) {
	h := newHarness(t)
	if got, want := h.l.DefaultExecutorSize(), min(32, runtime.NumCPU()+4); got != want {
		t.Fatalf("default size %d, want %d", got, want)
	}
	for _, bad := range []int{0, -1, MaxExecutorSize + 1} {
		if err := h.l.SetDefaultExecutorSize(bad); err != ErrInvalid {
			t.Fatalf("SetDefaultExecutorSize(%d): %v", bad, err)
		}
	}
	if err := h.l.SetDefaultExecutorSize(2); err != nil {
		t.Fatal(err)
	}
	var running, maxRunning atomic.Int32
	gate := make(chan struct{})
	var futs []*Future
	for i := 0; i < 6; i++ {
		f, err := h.l.RunInExecutor(func() (any, error) {
			n := running.Add(1)
			for {
				m := maxRunning.Load()
				if n <= m || maxRunning.CompareAndSwap(m, n) {
					break
				}
			}
			<-gate
			running.Add(-1)
			return i, nil
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, f)
	}
	h.runUntil("two jobs running", 5*time.Second, func() bool { return running.Load() == 2 })
	h.runFor(50 * time.Millisecond)
	if m := maxRunning.Load(); m != 2 {
		t.Fatalf("%d jobs ran at once with 2 workers", m)
	}
	// Growing the pool starts more workers for the queued jobs.
	if err := h.l.SetDefaultExecutorSize(4); err != nil {
		t.Fatal(err)
	}
	h.runUntil("four jobs running", 5*time.Second, func() bool { return running.Load() == 4 })
	close(gate)
	for i, f := range futs {
		v, err := h.await(f, 5*time.Second)
		if err != nil || v != i {
			t.Fatalf("job %d: %v, %v", i, v, err)
		}
	}
	if m := maxRunning.Load(); m != 4 {
		t.Fatalf("max %d jobs at once with 4 workers", m)
	}
}

func TestExecutorCancelQueuedNeverRuns(t *testing.T) {
	h := newHarness(t)
	h.l.SetDefaultExecutorSize(1)
	gate := make(chan struct{})
	started := make(chan struct{})
	fa, _ := h.l.RunInExecutor(func() (any, error) { close(started); <-gate; return "a", nil }, nil)
	<-started
	var ranB atomic.Bool
	releasedB := 0
	fb, _ := h.l.RunInExecutor(func() (any, error) { ranB.Store(true); return "b", nil }, func() { releasedB++ })
	if !fb.Cancel("") {
		t.Fatalf("cancel of a queued job failed")
	}
	if releasedB != 1 {
		t.Fatalf("release of a cancelled queued job ran %d times (want 1, at once)", releasedB)
	}
	close(gate)
	if v, err := h.await(fa, 5*time.Second); err != nil || v != "a" {
		t.Fatalf("job a: %v %v", v, err)
	}
	// Another job proves the single worker went past b.
	fc, _ := h.l.RunInExecutor(func() (any, error) { return "c", nil }, nil)
	if v, err := h.await(fc, 5*time.Second); err != nil || v != "c" {
		t.Fatalf("job c: %v %v", v, err)
	}
	if ranB.Load() {
		t.Fatalf("a job cancelled before it started ran")
	}
	if _, err := fb.Result(); !IsCancelled(err) {
		t.Fatalf("b result: %v", err)
	}
	if h.l.Alive() {
		t.Fatalf("loop alive after all jobs")
	}
}

func TestExecutorCancelRunningDiscardsResult(t *testing.T) {
	h := newHarness(t)
	gate := make(chan struct{})
	started := make(chan struct{})
	released := 0
	f, _ := h.l.RunInExecutor(func() (any, error) { close(started); <-gate; return 1, nil }, func() { released++ })
	<-started
	f.Cancel("")
	if released != 0 {
		t.Fatalf("release ran while the job still runs")
	}
	close(gate)
	h.runUntil("release", 5*time.Second, func() bool { return released == 1 })
	if !f.Cancelled() {
		t.Fatalf("future not cancelled")
	}
}

func TestExecutorShutdown(t *testing.T) {
	h := newHarness(t)
	gate := make(chan struct{})
	started := make(chan struct{})
	var finished atomic.Bool
	f, _ := h.l.RunInExecutor(func() (any, error) {
		close(started)
		<-gate
		finished.Store(true)
		return nil, nil
	}, nil)
	<-started
	sf, err := h.l.ShutdownDefaultExecutor()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.l.RunInExecutor(func() (any, error) { return nil, nil }, nil); err != ErrClosed {
		t.Fatalf("submit after shutdown: %v, want ErrClosed", err)
	}
	if err := h.l.SetDefaultExecutorSize(3); err != ErrClosed {
		t.Fatalf("set size after shutdown: %v", err)
	}
	h.runFor(30 * time.Millisecond)
	if sf.Done() {
		t.Fatalf("shutdown future done while a job runs")
	}
	close(gate)
	h.await(sf, 5*time.Second)
	if !finished.Load() || !f.Done() {
		t.Fatalf("shutdown done before the job finished")
	}
	// A second shutdown is done at once.
	sf2, _ := h.l.ShutdownDefaultExecutor()
	h.await(sf2, time.Second)
}

func TestExecutorShutdownWithoutExecutor(t *testing.T) {
	h := newHarness(t)
	sf, err := h.l.ShutdownDefaultExecutor()
	if err != nil {
		t.Fatal(err)
	}
	h.await(sf, time.Second)
	if _, err := h.l.RunInExecutor(func() (any, error) { return nil, nil }, nil); err != ErrClosed {
		t.Fatalf("submit after shutdown: %v", err)
	}
}

func TestExecutorManyJobs(t *testing.T) {
	h := newHarness(t)
	var sum atomic.Int64
	n := 500
	done := 0
	for i := 0; i < n; i++ {
		f, err := h.l.RunInExecutor(func() (any, error) { sum.Add(int64(i)); return i, nil }, nil)
		if err != nil {
			t.Fatal(err)
		}
		f.AddDoneCallback(func(f *Future) { done++ }, nil, nil)
	}
	h.runUntil("all jobs", 10*time.Second, func() bool { return done == n })
	if got, want := sum.Load(), int64(n*(n-1)/2); got != want {
		t.Fatalf("sum %d want %d", got, want)
	}
	if err := h.l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
