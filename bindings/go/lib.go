package asyncloop

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// The version of include/asyncloop.h this binding was written against (the
// header's ALOOP_VERSION_*; header_test.go keeps them equal). A library with
// the same major and at least this minor is accepted at load.
const (
	VersionMajor = 0
	VersionMinor = 1
	VersionPatch = 0
)

// LibraryEnv is the environment variable naming libasyncloop.so (absolute
// path); every binding honours it first.
const LibraryEnv = "ASYNCLOOP_LIBRARY"

// SIGURGEnv selects how the two runtimes share SIGURG: "chain" (default on
// linux/amd64), "host" or "library". See SIGURGMode and README.md.
const SIGURGEnv = "ASYNCLOOP_SIGURG"

// library holds the dlopen handle and one Go function per header function.
type library struct {
	path      string
	handle    uintptr
	sigurg    string
	sigurgErr error

	version       func() uint32
	versionString func() string
	strerror      func(code int32) string
	errName       func(code int32) string
	lastError     func(buf unsafe.Pointer, n uintptr) int32

	loopNew              func(out *uintptr) int32
	loopClose            func(loop uintptr) int32
	loopFree             func(loop uintptr) int32
	loopRun              func(loop uintptr, mode int32) int32
	loopRunOnce          func(loop uintptr, timeout float64) int32
	loopRunUntilComplete func(loop, fut uintptr) int32
	loopStop             func(loop uintptr) int32
	loopWakeup           func(loop uintptr) int32
	loopIsRunning        func(loop uintptr) int32
	loopIsClosed         func(loop uintptr) int32
	loopAlive            func(loop uintptr) int32
	loopTime             func(loop uintptr, out *float64) int32
	loopSetDebug         func(loop uintptr, enabled int32) int32
	loopGetDebug         func(loop uintptr) int32
	loopBackendFd        func(loop uintptr) int32
	loopBackendTimeout   func(loop uintptr, outMs *int32) int32
	loopSetWakeupCb      func(loop, cb, ud, free uintptr) int32

	callSoon           func(loop, cb, ud, free uintptr, out *uintptr) int32
	callSoonThreadsafe func(loop, cb, ud, free uintptr, out *uintptr) int32
	callLater          func(loop uintptr, delay float64, cb, ud, free uintptr, out *uintptr) int32
	callAt             func(loop uintptr, when float64, cb, ud, free uintptr, out *uintptr) int32
	handleCancel       func(h uintptr) int32
	handleWhen         func(h uintptr, out *float64) int32

	futureNew                func(loop uintptr, out *uintptr) int32
	futureFree               func(f uintptr) int32
	futureDone               func(f uintptr) int32
	futureCancelled          func(f uintptr) int32
	futureCancel             func(f uintptr) int32
	futureSetResult          func(f, result uintptr) int32
	futureSetException       func(f uintptr, code int32, msg string) int32
	futureResult             func(f uintptr, out *uintptr) int32
	futureResultTransport    func(f uintptr, out *uintptr) int32
	futureResultServer       func(f uintptr, out *uintptr) int32
	futureException          func(f uintptr) int32
	futureErrorMessage       func(f uintptr, buf unsafe.Pointer, n uintptr) int32
	futureAddDoneCallback    func(f, cb, ud, free uintptr) int32
	futureRemoveDoneCallback func(f, cb, ud uintptr) int32

	loopSetExceptionHandler     func(loop, cb, ud, free uintptr) int32
	loopGetExceptionHandler     func(loop uintptr, cb, ud *uintptr) int32
	loopCallExceptionHandler    func(loop uintptr, msg string, code int32) int32
	loopDefaultExceptionHandler func(loop uintptr, ctx unsafe.Pointer) int32

	addReader    func(loop uintptr, fd int32, cb, ud, free uintptr) int32
	addWriter    func(loop uintptr, fd int32, cb, ud, free uintptr) int32
	removeReader func(loop uintptr, fd int32) int32
	removeWriter func(loop uintptr, fd int32) int32

	createConnection func(loop uintptr, host string, port int32, proto unsafe.Pointer, ud, free uintptr, opts unsafe.Pointer, out *uintptr) int32
	createServer     func(loop uintptr, host string, port int32, cb, ud, free uintptr, opts unsafe.Pointer, out *uintptr) int32

	serverClose        func(s uintptr) int32
	serverFree         func(s uintptr) int32
	serverStartServing func(s uintptr) int32
	serverIsServing    func(s uintptr) int32
	serverWaitClosed   func(s uintptr, out *uintptr) int32
	serverSocketCount  func(s uintptr) int32
	serverSocketFd     func(s uintptr, index int32) int32
	serverSockname     func(s uintptr, index int32, host unsafe.Pointer, hostlen uintptr, port *int32) int32

	transportSetProtocol          func(t uintptr, proto unsafe.Pointer, ud, free uintptr) int32
	transportGetProtocol          func(t uintptr, out *uintptr) int32
	transportWrite                func(t uintptr, data unsafe.Pointer, n uintptr) int32
	transportClose                func(t uintptr) int32
	transportAbort                func(t uintptr) int32
	transportWriteEOF             func(t uintptr) int32
	transportCanWriteEOF          func(t uintptr) int32
	transportIsClosing            func(t uintptr) int32
	transportPauseReading         func(t uintptr) int32
	transportResumeReading        func(t uintptr) int32
	transportIsReading            func(t uintptr) int32
	transportGetWriteBufferSize   func(t uintptr, out *uintptr) int32
	transportSetWriteBufferLimits func(t uintptr, high, low uintptr) int32
	transportGetWriteBufferLimits func(t uintptr, high, low *uintptr) int32
	transportGetFd                func(t uintptr) int32
	transportGetPeername          func(t uintptr, host unsafe.Pointer, hostlen uintptr, port *int32) int32
	transportGetSockname          func(t uintptr, host unsafe.Pointer, hostlen uintptr, port *int32) int32

	// Raw entry points for the few hot paths that skip purego's reflection
	// (see raw.go).
	rawCallSoon, rawCallSoonThreadsafe, rawTransportWrite, rawLoopTime uintptr
}

// symbols lists every function of include/asyncloop.h with the field that
// binds it (header_test.go checks the list against the header).
func (l *library) symbols() []struct {
	name string
	fptr any
} {
	return []struct {
		name string
		fptr any
	}{
		{"aloop_version", &l.version},
		{"aloop_version_string", &l.versionString},
		{"aloop_strerror", &l.strerror},
		{"aloop_err_name", &l.errName},
		{"aloop_last_error", &l.lastError},
		{"aloop_loop_new", &l.loopNew},
		{"aloop_loop_close", &l.loopClose},
		{"aloop_loop_free", &l.loopFree},
		{"aloop_loop_run", &l.loopRun},
		{"aloop_loop_run_once", &l.loopRunOnce},
		{"aloop_loop_run_until_complete", &l.loopRunUntilComplete},
		{"aloop_loop_stop", &l.loopStop},
		{"aloop_loop_wakeup", &l.loopWakeup},
		{"aloop_loop_is_running", &l.loopIsRunning},
		{"aloop_loop_is_closed", &l.loopIsClosed},
		{"aloop_loop_alive", &l.loopAlive},
		{"aloop_loop_time", &l.loopTime},
		{"aloop_loop_set_debug", &l.loopSetDebug},
		{"aloop_loop_get_debug", &l.loopGetDebug},
		{"aloop_loop_backend_fd", &l.loopBackendFd},
		{"aloop_loop_backend_timeout", &l.loopBackendTimeout},
		{"aloop_loop_set_wakeup_cb", &l.loopSetWakeupCb},
		{"aloop_call_soon", &l.callSoon},
		{"aloop_call_soon_threadsafe", &l.callSoonThreadsafe},
		{"aloop_call_later", &l.callLater},
		{"aloop_call_at", &l.callAt},
		{"aloop_handle_cancel", &l.handleCancel},
		{"aloop_handle_when", &l.handleWhen},
		{"aloop_future_new", &l.futureNew},
		{"aloop_future_free", &l.futureFree},
		{"aloop_future_done", &l.futureDone},
		{"aloop_future_cancelled", &l.futureCancelled},
		{"aloop_future_cancel", &l.futureCancel},
		{"aloop_future_set_result", &l.futureSetResult},
		{"aloop_future_set_exception", &l.futureSetException},
		{"aloop_future_result", &l.futureResult},
		{"aloop_future_result_transport", &l.futureResultTransport},
		{"aloop_future_result_server", &l.futureResultServer},
		{"aloop_future_exception", &l.futureException},
		{"aloop_future_error_message", &l.futureErrorMessage},
		{"aloop_future_add_done_callback", &l.futureAddDoneCallback},
		{"aloop_future_remove_done_callback", &l.futureRemoveDoneCallback},
		{"aloop_loop_set_exception_handler", &l.loopSetExceptionHandler},
		{"aloop_loop_get_exception_handler", &l.loopGetExceptionHandler},
		{"aloop_loop_call_exception_handler", &l.loopCallExceptionHandler},
		{"aloop_loop_default_exception_handler", &l.loopDefaultExceptionHandler},
		{"aloop_add_reader", &l.addReader},
		{"aloop_add_writer", &l.addWriter},
		{"aloop_remove_reader", &l.removeReader},
		{"aloop_remove_writer", &l.removeWriter},
		{"aloop_create_connection", &l.createConnection},
		{"aloop_create_server", &l.createServer},
		{"aloop_server_close", &l.serverClose},
		{"aloop_server_free", &l.serverFree},
		{"aloop_server_start_serving", &l.serverStartServing},
		{"aloop_server_is_serving", &l.serverIsServing},
		{"aloop_server_wait_closed", &l.serverWaitClosed},
		{"aloop_server_socket_count", &l.serverSocketCount},
		{"aloop_server_socket_fd", &l.serverSocketFd},
		{"aloop_server_sockname", &l.serverSockname},
		{"aloop_transport_set_protocol", &l.transportSetProtocol},
		{"aloop_transport_get_protocol", &l.transportGetProtocol},
		{"aloop_transport_write", &l.transportWrite},
		{"aloop_transport_close", &l.transportClose},
		{"aloop_transport_abort", &l.transportAbort},
		{"aloop_transport_write_eof", &l.transportWriteEOF},
		{"aloop_transport_can_write_eof", &l.transportCanWriteEOF},
		{"aloop_transport_is_closing", &l.transportIsClosing},
		{"aloop_transport_pause_reading", &l.transportPauseReading},
		{"aloop_transport_resume_reading", &l.transportResumeReading},
		{"aloop_transport_is_reading", &l.transportIsReading},
		{"aloop_transport_get_write_buffer_size", &l.transportGetWriteBufferSize},
		{"aloop_transport_set_write_buffer_limits", &l.transportSetWriteBufferLimits},
		{"aloop_transport_get_write_buffer_limits", &l.transportGetWriteBufferLimits},
		{"aloop_transport_get_fd", &l.transportGetFd},
		{"aloop_transport_get_peername", &l.transportGetPeername},
		{"aloop_transport_get_sockname", &l.transportGetSockname},
	}
}

var (
	loadMu  sync.Mutex
	lib     *library // set once, never changed afterwards
	loadErr error
)

// Load loads libasyncloop.so once per process: from $ASYNCLOOP_LIBRARY if
// set, else libasyncloop.so.MAJOR or libasyncloop.so next to the executable,
// else "libasyncloop.so.MAJOR" through the dynamic loader's search path (an
// installed library: ldconfig's cache, /usr/lib, LD_LIBRARY_PATH). Calling it
// again returns the first result. NewLoop calls it.
func Load() error {
	loadMu.Lock()
	defer loadMu.Unlock()
	if lib != nil || loadErr != nil {
		return loadErr
	}
	lib, loadErr = openLocked(libraryCandidate())
	return loadErr
}

func libraryCandidate() string {
	if path := os.Getenv(LibraryEnv); path != "" {
		return path
	}
	soname := fmt.Sprintf("libasyncloop.so.%d", VersionMajor)
	if exe, err := os.Executable(); err == nil {
		for _, name := range []string{soname, "libasyncloop.so"} {
			cand := filepath.Join(filepath.Dir(exe), name)
			if _, err := os.Stat(cand); err == nil {
				return cand
			}
		}
	}
	return soname
}

// Open loads the library from path (used as given: a name without a slash
// goes through the dynamic loader's search). Only one library can be loaded
// per process; opening another path after a successful load is an error.
func Open(path string) error {
	loadMu.Lock()
	defer loadMu.Unlock()
	if lib != nil {
		if lib.path == path {
			return nil
		}
		return fmt.Errorf("asyncloop: library already loaded from %s", lib.path)
	}
	l, err := openLocked(path)
	if err != nil {
		return err
	}
	lib, loadErr = l, nil
	return nil
}

func openLocked(path string) (l *library, err error) {
	if runtime.GOOS == "windows" {
		return nil, errors.New("asyncloop: unsupported OS " + runtime.GOOS)
	}
	h, mode, sigErr := dlopenLibrary(path, os.Getenv(SIGURGEnv))
	if h == 0 {
		if sigErr == nil {
			sigErr = errors.New("dlopen failed")
		}
		return nil, fmt.Errorf("asyncloop: cannot load %s: %w", path, sigErr)
	}
	l = &library{path: path, handle: h, sigurg: mode, sigurgErr: sigErr}
	defer func() {
		// RegisterLibFunc panics on a missing symbol.
		if r := recover(); r != nil {
			l, err = nil, fmt.Errorf("asyncloop: %s: %v", path, r)
		}
	}()
	purego.RegisterLibFunc(&l.version, h, "aloop_version")
	// The first call into the library waits for its Go runtime to finish
	// initializing (signal handlers are installed by then).
	v := l.version()
	if int(v>>16) != VersionMajor || int((v>>8)&0xff) < VersionMinor {
		return nil, fmt.Errorf("asyncloop: %s is libasyncloop %d.%d.%d, but this binding is %d.%d.%d "+
			"and needs libasyncloop %d.x with x >= %d (set %s to a matching library)",
			path, v>>16, (v>>8)&0xff, v&0xff, VersionMajor, VersionMinor, VersionPatch,
			VersionMajor, VersionMinor, LibraryEnv)
	}
	for _, s := range l.symbols() {
		purego.RegisterLibFunc(s.fptr, h, s.name)
	}
	l.rawCallSoon = mustSym(h, "aloop_call_soon")
	l.rawCallSoonThreadsafe = mustSym(h, "aloop_call_soon_threadsafe")
	l.rawTransportWrite = mustSym(h, "aloop_transport_write")
	l.rawLoopTime = mustSym(h, "aloop_loop_time")
	initCallbacks()
	return l, nil
}

func mustSym(h uintptr, name string) uintptr {
	p, err := purego.Dlsym(h, name)
	if err != nil {
		panic(err)
	}
	return p
}

func ensureLoaded() error {
	if lib != nil {
		return nil
	}
	return Load()
}

// LibraryVersion returns the loaded library's version ("major.minor.patch"),
// loading it if needed.
func LibraryVersion() (string, error) {
	if err := ensureLoaded(); err != nil {
		return "", err
	}
	return lib.versionString(), nil
}

// LibraryPath returns the path the library was loaded from ("" if none).
func LibraryPath() string {
	if lib == nil {
		return ""
	}
	return lib.path
}

// SIGURGMode reports how SIGURG was arranged when the library was loaded:
// SIGURGChain, SIGURGHost, SIGURGLibrary or SIGURGUnchanged, and the error
// if the requested arrangement failed. See README.md ("Two Go runtimes in
// one process").
func SIGURGMode() (string, error) {
	if lib == nil {
		return "", errors.New("asyncloop: library not loaded")
	}
	return lib.sigurg, lib.sigurgErr
}

// errorOf converts a return code into an error; it must run on the thread
// that made the failing call (aloop_last_error is per thread), so callers
// hold runtime.LockOSThread around the call and errorOf.
func (l *library) errorOf(rc int32) error {
	if rc >= 0 {
		return nil
	}
	return newError(int(rc), l.lastErrorText())
}

func (l *library) lastErrorText() string {
	var buf [512]byte
	n := l.lastError(unsafe.Pointer(&buf[0]), uintptr(len(buf)))
	if n <= 0 {
		return ""
	}
	if int(n) >= len(buf) {
		big := make([]byte, n+1)
		n = l.lastError(unsafe.Pointer(&big[0]), uintptr(len(big)))
		if n <= 0 {
			return ""
		}
		return string(big[:min(int(n), len(big)-1)])
	}
	return string(buf[:n])
}

func errInvalid(msg string) error { return newError(EINVAL, msg) }

func anyString(v any) string { return fmt.Sprint(v) }
