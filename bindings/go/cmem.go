package asyncloop

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Memory the library keeps beyond one call.
//
// The rule (cgo's pointer rules, which hold for purego calls too): the
// library may use Go memory the binding passes only during that call; it
// must not keep a pointer to it once the call returned unless the memory is
// pinned with runtime.Pinner. The library is a second Go runtime: what it
// keeps, the host's garbage collector cannot see, and memory that becomes
// unreachable on the host's side is freed and reused while the library
// still writes into it. So:
//
//   - memory the library keeps across calls for the life of a loop (the
//     event queue: its records, its read arena and aloop_loop_poll_args's
//     block) is C memory, mapped here with mmap and unmapped only after the
//     library dropped it (aloop_loop_set_event_queue(NULL) and
//     aloop_loop_free; queue.go, Loop.Close, closeDroppedLoop);
//   - memory of the caller the library keeps until an operation ends (the
//     buffer of SockRecvInto / SockRecvFromInto, the buffer a
//     BufferedProtocol's GetBuffer returns) is pinned before the library
//     gets it and unpinned once it is done with it (futureState.pinner,
//     conn.pin);
//   - everything else is used by the library during the call only (it
//     copies what it keeps: protocol tables, strings, options, data to
//     send), and userdata are integer keys (callbacks.go), never pointers.
//
// C memory holds no Go pointers (the collector does not scan it): only
// integers, handles and bytes.

// mapC maps n bytes of zeroed C memory (page aligned).
func mapC(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
}

// unmapC unmaps what mapC returned. Nothing may use it afterwards (the
// range can be mapped again by anyone, the Go heap included).
func unmapC(b []byte) {
	if b != nil {
		unix.Munmap(b)
	}
}

// loopMem is the C memory a loop gave the library. It is shared by the
// Loop and its cleanup (which must not reach the Loop), so that a loop
// nobody closed unmaps it after the library freed the loop.
type loopMem struct {
	q atomic.Pointer[evQueue] // set on the loop's thread, read by the cleanup
}

// release unmaps the loop's C memory: only after the library has dropped
// it (the loop is freed, or its queue was replaced with NULL).
func (m *loopMem) release() {
	if m == nil {
		return
	}
	if q := m.q.Swap(nil); q != nil {
		q.unmap()
	}
}

// cArray views n values of T at byte offset off of C memory b.
func cArray[T any](b []byte, off, n int) []T {
	var t T
	if off%int(unsafe.Alignof(t)) != 0 || off+n*int(unsafe.Sizeof(t)) > len(b) {
		panic("asyncloop: C memory layout")
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[off])), n)
}
