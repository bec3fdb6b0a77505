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
	curLoops []weak.Pointer[Loop]  // loops that ran (dropped once collected)
	curSet   = map[int64]setLoop{} // SetEventLoop, by thread id
	curRuns  atomic.Uint64
)

// setLoop is a thread's loop set with SetEventLoop. A thread id is reused by
// a later thread once its thread exited, so the entry also holds the
// thread's start time: an entry whose thread is gone (or whose id now
// belongs to another thread) is dropped instead of being inherited. The
// start time counts clock ticks (10 ms), so a thread that exits and a new
// one that gets its id within the same tick are not told apart; the C ABI
// keeps the set loop in the C thread's own storage instead (capi).
type setLoop struct {
	l     *Loop
	start uint64
}

// threadStart returns the start time (in clock ticks since boot, field 22 of
// /proc/<pid>/task/<tid>/stat) of thread tid of this process; false if there
// is no such thread.
func threadStart(tid int64) (uint64, bool) {
	var buf [512]byte
	fd, err := unix.Open("/proc/self/task/"+itoa(int(tid))+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, false
	}
	n, err := unix.Read(fd, buf[:])
	unix.Close(fd)
	if err != nil || n <= 0 {
		return 0, false
	}
	b := buf[:n]
	// The command name (field 2) is in parentheses and may hold anything:
	// count the fields after its last ')'.
	i := len(b) - 1
	for i >= 0 && b[i] != ')' {
		i--
	}
	if i < 0 {
		return 0, false
	}
	field := 2
	var v uint64
	for _, c := range b[i+1:] {
		if c == ' ' {
			if field == 22 {
				return v, true
			}
			field++
			continue
		}
		if field == 22 {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + uint64(c-'0')
		}
	}
	return 0, false
}

// setLoopOf returns the calling thread's set loop; curMu is held.
func setLoopOf(tid int64) *Loop {
	e, ok := curSet[tid]
	if !ok {
		return nil
	}
	if stale(tid, e) {
		delete(curSet, tid) // set by an earlier thread with this id
		return nil
	}
	return e.l
}

// stale reports whether e was set by a thread that is gone (start 0: /proc
// was not readable then; such an entry cannot be checked).
func stale(tid int64, e setLoop) bool {
	if e.start == 0 {
		return false
	}
	start, alive := threadStart(tid)
	return !alive || start != e.start
}

// pruneSetLoops drops the entries of threads that are gone; curMu is held.
func pruneSetLoops() {
	for tid, e := range curSet {
		if stale(tid, e) {
			delete(curSet, tid)
		}
	}
}

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
	tid := ThreadID()
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
	tid := ThreadID()
	curMu.Lock()
	l := setLoopOf(tid)
	curMu.Unlock()
	if l == nil {
		return nil, ErrNoLoop
	}
	return l, nil
}

// SetEventLoop sets the calling thread's loop (nil: none). It also forgets
// the loops of threads that exited.
func SetEventLoop(l *Loop) {
	tid := ThreadID()
	curMu.Lock()
	defer curMu.Unlock()
	pruneSetLoops()
	if l == nil {
		delete(curSet, tid)
		return
	}
	start, _ := threadStart(tid) // 0 without /proc: kept, never checked
	curSet[tid] = setLoop{l: l, start: start}
}

// ClearEventLoop unsets l as the loop of every thread (when a host releases
// it).
func ClearEventLoop(l *Loop) {
	curMu.Lock()
	for tid, v := range curSet {
		if v.l == l {
			delete(curSet, tid)
		}
	}
	curMu.Unlock()
}
