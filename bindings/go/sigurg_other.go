//go:build !linux

package asyncloop

import "github.com/ebitengine/purego"

const (
	SIGURGChain     = "chain"
	SIGURGHost      = "host"
	SIGURGLibrary   = "library"
	SIGURGUnchanged = "unchanged"
)

func dlopenLibrary(path, mode string) (uintptr, string, error) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	return h, SIGURGUnchanged, err
}

// OpenPlugin loads a Go plugin (see the Linux version); SIGURG is left as
// loading leaves it.
func OpenPlugin(path string) (uintptr, string, error) {
	h, mode, err := dlopenLibrary(path, SIGURGChain)
	return h, mode, err
}
