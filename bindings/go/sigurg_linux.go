//go:build linux

package asyncloop

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Two Go runtimes in one process (golang/go#18976): the library's runtime
// takes SIGURG, the signal both runtimes use for asynchronous preemption.
// See README.md. This file reads and writes the SIGURG disposition with raw
// rt_sigaction system calls (no libc, CGO_ENABLED=0).

// kernelSigaction is struct sigaction as the rt_sigaction system call takes
// it on linux/amd64 and linux/arm64 (and every architecture the Go runtime
// describes with the same layout).
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

const sigURG = 23 // SIGURG on Linux (all architectures Go supports)

func getSigaction(sig int) (kernelSigaction, error) {
	var old kernelSigaction
	_, _, e := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), 0,
		uintptr(unsafe.Pointer(&old)), 8, 0, 0)
	if e != 0 {
		return old, e
	}
	return old, nil
}

func setSigaction(sig int, sa *kernelSigaction) error {
	_, _, e := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig),
		uintptr(unsafe.Pointer(sa)), 0, 8, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// Values of SIGURGMode().
const (
	// SIGURGChain: the host's and the library's SIGURG handlers are both
	// called, host first, by a small trampoline (linux/amd64). Each runtime
	// only acts on threads running its own Go code, so both keep
	// asynchronous preemption. Only for a library built with asynchronous
	// preemption on (not libasyncloop's own build, see README.md).
	SIGURGChain = "chain"
	// SIGURGHost: the binding gave the host's handler back (libasyncloop
	// does it itself: then the result is SIGURGUnchanged); the host keeps
	// async preemption. libasyncloop is built without it.
	SIGURGHost = "host"
	// SIGURGLibrary: the library's handler stays (what dlopen leaves): the
	// host loses async preemption; its GC can hang behind a call-free loop.
	SIGURGLibrary = "library"
	// SIGURGUnchanged: the handler from before loading is in place: the
	// library gave SIGURG back itself (the default case), or the handler
	// was not a Go runtime's (nothing to do).
	SIGURGUnchanged = "unchanged"
)

const dlopenFlags = purego.RTLD_NOW | purego.RTLD_LOCAL

// dlopenArgs is read by dlopenSIGURG (assembly): keep the offsets.
type dlopenArgs struct {
	dlopen uintptr         // 0: libc's dlopen
	newact kernelSigaction // 8: the SIGURG action to install
	oldact kernelSigaction // 40: receives the library's action
	apply  uintptr         // 72: 0 = only dlopen
	rc     uintptr         // 80: result of the last rt_sigaction (-errno)
	pid    uintptr         // 88: for tgkill
	tids   uintptr         // 96: *uintptr, threads to re-signal
	ntids  uintptr         // 104
}

// dlopenLibrary loads the library and arranges SIGURG (mode "" = default).
//
// The library's runtime installs its SIGURG handler inside dlopen. Until
// the host's handler is back, every preemption signal the host sends is
// swallowed, and the host never signals that thread again (its runtime
// waits for the handler to acknowledge the previous signal: m.signalPending).
// So, on linux/amd64, dlopen, the SIGURG switch and a re-signal of every
// thread that existed before run in one call on the system stack, without
// returning to Go in between (a stop-the-world that started meanwhile
// would otherwise keep this goroutine from ever getting back); then every
// thread is signalled once more.
func dlopenLibrary(path, mode string) (h uintptr, applied string, err error) {
	before, err := getSigaction(sigURG)
	if err != nil || !isHostGoHandler(before.handler) {
		h, err = purego.Dlopen(path, dlopenFlags)
		return h, SIGURGUnchanged, err
	}
	if mode == "" {
		// The library gives SIGURG back to the handler from before it was
		// loaded by itself, inside dlopen (capi/sigurg.c), for every host
		// and architecture. The binding adds what only a Go host can: on
		// linux/amd64, in the same system-stack call as dlopen, a SIGURG
		// to every thread, so that a preemption signal lost in the instant
		// the runtime's handler was installed is acknowledged (a spurious
		// SIGURG is harmless to both runtimes); and it gives the host's
		// handler back itself to a library that kept it (its preemption
		// turned on with GODEBUG=asyncpreemptoff=0).
		mode = SIGURGHost
	}
	if mode == SIGURGChain && !sigchainSupported {
		mode = SIGURGHost
	}
	switch mode {
	case SIGURGLibrary:
		h, err = purego.Dlopen(path, dlopenFlags)
		if err != nil {
			return 0, "", err
		}
		after, _ := getSigaction(sigURG)
		if after.handler == before.handler {
			return h, SIGURGUnchanged, nil
		}
		return h, SIGURGLibrary, nil
	case SIGURGHost, SIGURGChain:
	default:
		return 0, "", errInvalid(SIGURGEnv + " must be chain, host or library, not " + strconv.Quote(mode))
	}
	a := &dlopenArgs{newact: before, apply: 1, pid: uintptr(syscall.Getpid())}
	sigchainFirst = before.handler
	sigchainSecond = 0
	if mode == SIGURGChain {
		a.newact.handler = sigchainTrampolinePC()
	}
	tids := threadIDs()
	if len(tids) > 0 {
		a.tids, a.ntids = uintptr(unsafe.Pointer(&tids[0])), uintptr(len(tids))
	}
	cpath := append([]byte(path), 0)
	h = dlopenSIGURG(cpath, a, tids)
	runtime.KeepAlive(tids)
	if h == 0 {
		_, err = purego.Dlopen(path, dlopenFlags) // for dlerror's message
		if err == nil {
			err = errors.New("dlopen failed")
		}
		return 0, "", err
	}
	if int64(a.rc) < 0 {
		return h, SIGURGLibrary, syscall.Errno(-int64(a.rc))
	}
	if a.oldact.handler == before.handler {
		resignalThreads()
		return h, SIGURGUnchanged, nil // the library gave SIGURG back (or left it alone)
	}
	resignalThreads()
	return h, mode, nil
}

// threadIDs lists the process's threads.
func threadIDs() []uintptr {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil
	}
	tids := make([]uintptr, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, uintptr(tid))
		}
	}
	return tids
}

// resignalThreads sends SIGURG to every thread: the host's handler then
// acknowledges any preemption signal the library's handler swallowed while
// it was installed (a spurious SIGURG is harmless to both runtimes).
func resignalThreads() {
	pid := syscall.Getpid()
	for _, tid := range threadIDs() {
		syscall.Tgkill(pid, int(tid), syscall.SIGURG)
	}
}

// isHostGoHandler reports whether handler lies in the executable mapping
// that also holds this package's code: the host's Go runtime installed it.
func isHostGoHandler(handler uintptr) bool {
	if handler <= 1 { // SIG_DFL, SIG_IGN
		return false
	}
	self := reflect.ValueOf(isHostGoHandler).Pointer()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return false
	}
	defer f.Close()
	var selfPath, handlerPath string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		lohi := strings.SplitN(fields[0], "-", 2)
		lo, err1 := strconv.ParseUint(lohi[0], 16, 64)
		hi, err2 := strconv.ParseUint(lohi[1], 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if uint64(self) >= lo && uint64(self) < hi {
			selfPath = fields[5]
		}
		if uint64(handler) >= lo && uint64(handler) < hi {
			handlerPath = fields[5]
		}
	}
	return selfPath != "" && selfPath == handlerPath
}

// SIGURG handlers called by the chaining trampoline (read by assembly).
var sigchainFirst, sigchainSecond uintptr

// dlopenSIGURGGo is dlopenSIGURGC in Go, for architectures without the
// assembly: the same steps, but back in Go between dlopen and the switch.
func dlopenSIGURGGo(cpath []byte, a *dlopenArgs, tids []uintptr) uintptr {
	h, err := purego.Dlopen(string(cpath[:len(cpath)-1]), dlopenFlags)
	if err != nil || a.apply == 0 {
		return h
	}
	old, err := getSigaction(sigURG)
	if err != nil {
		a.rc = uintptr(-int64(err.(syscall.Errno)))
		return h
	}
	a.oldact = old
	sigchainSecond = old.handler
	if old.handler == sigchainFirst {
		for _, tid := range tids {
			syscall.Tgkill(int(a.pid), int(tid), syscall.SIGURG)
		}
		return h
	}
	if err := setSigaction(sigURG, &a.newact); err != nil {
		a.rc = uintptr(-int64(err.(syscall.Errno)))
		return h
	}
	for _, tid := range tids {
		syscall.Tgkill(int(a.pid), int(tid), syscall.SIGURG)
	}
	return h
}

// OpenPlugin loads a Go plugin into this Go host: a library built with
// -buildmode=c-shared that has a Go runtime of its own with asynchronous
// preemption on (examples/go-plugin; libasyncloop itself is loaded with
// Load). Loading such a library with a plain dlopen installs its runtime's
// SIGURG handler over this program's: the host's preemption signals are
// then dropped, and a host garbage collection waits forever for a
// goroutine in a call-free loop (tests/go TestGoPluginInGoHost shows it).
// OpenPlugin loads it with SIGURG chained instead (linux/amd64: the host's
// handler, then the plugin's, each acting only on its own goroutines), so
// both runtimes keep preemption; elsewhere the host's handler is given back
// and the plugin's goroutines lose asynchronous preemption. It returns the
// dlopen handle (for purego.RegisterLibFunc) and the arrangement made
// (SIGURGChain, SIGURGHost, or SIGURGUnchanged when SIGURG was not the
// host runtime's). One chained library per process: a second one, or one
// after the library was loaded with ASYNCLOOP_SIGURG=chain, is refused.
func OpenPlugin(path string) (uintptr, string, error) {
	loadMu.Lock()
	defer loadMu.Unlock()
	if cur, err := getSigaction(sigURG); err == nil && sigchainSupported && cur.handler == sigchainTrampolinePC() {
		return 0, "", errors.New("asyncloop: OpenPlugin: SIGURG is chained to another library already")
	}
	h, mode, err := dlopenLibrary(path, SIGURGChain)
	if h == 0 && err != nil {
		return 0, "", fmt.Errorf("asyncloop: cannot load %s: %w", path, err)
	}
	return h, mode, err
}
