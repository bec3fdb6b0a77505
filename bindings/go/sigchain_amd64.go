//go:build linux && amd64

package asyncloop

import (
	"unsafe"

	"github.com/ebitengine/purego"
)

const sigchainSupported = true

// sigchainTrampoline is a C-ABI signal handler (sig, info, ctx) written in
// assembly: it calls sigchainFirst then sigchainSecond with the same
// arguments. Never called from Go.
func sigchainTrampoline()

// sigchainTrampolinePC returns the ABI0 entry of sigchainTrampoline.
func sigchainTrampolinePC() uintptr

// dlopenSIGURGC is a C-ABI function (see the assembly); never called from
// Go directly.
func dlopenSIGURGC()

func dlopenSIGURGPC() uintptr

// dlopenSIGURG runs dlopen and the SIGURG switch in one call on the system
// stack (see dlopenLibrary).
func dlopenSIGURG(cpath []byte, a *dlopenArgs, tids []uintptr) uintptr {
	dl, err := purego.Dlsym(purego.RTLD_DEFAULT, "dlopen")
	if err != nil || dl == 0 {
		return dlopenSIGURGGo(cpath, a, tids)
	}
	a.dlopen = dl
	r1, _, _ := purego.SyscallN(dlopenSIGURGPC(), uintptr(unsafe.Pointer(&cpath[0])), uintptr(dlopenFlags), uintptr(unsafe.Pointer(a)))
	return r1
}
