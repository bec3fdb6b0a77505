//go:build linux && !amd64

package asyncloop

const sigchainSupported = false

func sigchainTrampolinePC() uintptr { return 0 }

func dlopenSIGURG(cpath []byte, a *dlopenArgs, tids []uintptr) uintptr {
	return dlopenSIGURGGo(cpath, a, tids)
}
