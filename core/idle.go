package core

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Memory given back when a loop goes idle.
//
// The library's Go heap lives inside someone else's process. After a burst
// of work (thousands of connections opened and closed, a large transfer)
// the garbage of that burst stays resident until the runtime's next
// collection, which an idle loop never triggers, and the runtime's
// background scavenger returns freed pages to the OS only slowly. So when
// a loop that has done work since it last gave memory back finds nothing
// to do for idleRelease, it collects and returns the free pages
// (debug.FreeOSMemory), once: the next idle wait without work in between
// sleeps without a deadline again. Measured (C echo server): after 10,000
// connections opened and closed, private memory 8.9 MiB → 3.3 MiB a second
// later (it stayed at 8.9 MiB before); with the 10,000 connections still
// open, 7.9 → 7.1 MiB (bench idle_10k_rss_settled); see
// docs/architecture.md, "The engine's cost".

const (
	idleRelease = time.Second
	// idleReleaseMin: what must have been allocated since the last
	// release for one to be worth a collection.
	idleReleaseMin = 1 << 20
)

// heapAllocs: bytes the runtime has allocated so far (0 if unknown). A
// sample of its own per call: loops run on several threads at once.
func heapAllocs() uint64 {
	s := [1]metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s[:])
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// idleWait returns the wait iterate should use: timeoutNs, or idleRelease
// when the loop may go idle with memory to give back (probe is then true).
func (l *Loop) idleWait(timeoutNs int64) (int64, bool) {
	if timeoutNs >= 0 && timeoutNs <= int64(idleRelease) {
		return timeoutNs, false
	}
	if l.iteration-1 == l.releasedAt {
		return timeoutNs, false // nothing ran since the last release
	}
	return int64(idleRelease), true
}

// releaseIdle runs after a probing wait of waited: if the wait went its
// whole length and nothing is ready, the loop is idle.
func (l *Loop) releaseIdle(waited time.Duration) {
	if waited < idleRelease-time.Millisecond || len(l.ready) > l.readyHead {
		return // not idle: the next wait probes again
	}
	l.releasedAt = l.iteration
	if heapAllocs()-l.allocsAtRelease >= idleReleaseMin {
		debug.FreeOSMemory()
		l.allocsAtRelease = heapAllocs()
	}
}
