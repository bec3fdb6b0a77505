package core

import (
	"errors"
	"sync"
	"sync/atomic"
	"weak"

	"golang.org/x/sys/unix"
)

// The current loop of a thread (asyncio's get_running_loop, get_event_loop
// and set_event_loop). Threads are told apart by their OS thread id
// (gettid): a Go program must lock the goroutine that runs a loop, and the
// goroutine that asks, to their threads (runtime.LockOSThread) for the
// answers to mean anything; C hosts always are.

// ErrNoLoop is returned when the calling thread has no current loop.
var ErrNoLoop = errors.New("no current event loop in this thread")

// loopCurrent is the per-loop state of the registry (a field of Loop).
type loopCurrent struct {
	seq   atomic.Uint64 // order of the loop's current run; innermost = highest
	known bool          // in curLoops (only touched by the running thread)
}

var (
	curMu    sync.Mutex
	curLoops []weak.Pointer[Loop] // loops that ran (dropped once collected)
	curSet   = map[int64]*Loop{}  // SetEventLoop, by thread id
	curRuns  atomic.Uint64
)

// enterRun is called by run() on the loop's thread once the loop is marked
// running with its thread id.
func (l *Loop) enterRun() {
	l.cur.seq.Store(curRuns.Add(1))
	if !l.cur.known {
		l.cur.known = true
		curMu.Lock()
		curLoops = append(curLoops, weak.Make(l))
		curMu.Unlock()
	}
}

// RunningLoop returns the loop running in the calling thread (inside Run* or
// one of its callbacks; the innermost one when runs are nested), or nil.
func RunningLoop() *Loop {
	tid := int64(unix.Gettid())
	curMu.Lock()
	defer curMu.Unlock()
	var best *Loop
	var bestSeq uint64
	live := curLoops[:0]
	for _, wp := range curLoops {
		l := wp.Value()
		if l == nil {
			continue
		}
		live = append(live, wp)
		if l.running.Load() && l.threadID.Load() == tid {
			if s := l.cur.seq.Load(); best == nil || s > bestSeq {
				best, bestSeq = l, s
			}
		}
	}
	for i := len(live); i < len(curLoops); i++ {
		curLoops[i] = weak.Pointer[Loop]{}
	}
	curLoops = live
	return best
}

// GetEventLoop returns the running loop of the calling thread, else the
// loop SetEventLoop set for it, else ErrNoLoop (no loop is created).
func GetEventLoop() (*Loop, error) {
	if l := RunningLoop(); l != nil {
		return l, nil
	}
	tid := int64(unix.Gettid())
	curMu.Lock()
	l := curSet[tid]
	curMu.Unlock()
	if l == nil {
		return nil, ErrNoLoop
	}
	return l, nil
}

// SetEventLoop sets the calling thread's loop (nil: none).
func SetEventLoop(l *Loop) {
	tid := int64(unix.Gettid())
	curMu.Lock()
	if l == nil {
		delete(curSet, tid)
	} else {
		curSet[tid] = l
	}
	curMu.Unlock()
}

// ClearEventLoop unsets l as the loop of every thread (when a host releases
// it).
func ClearEventLoop(l *Loop) {
	curMu.Lock()
	for tid, v := range curSet {
		if v == l {
			delete(curSet, tid)
		}
	}
	curMu.Unlock()
}
