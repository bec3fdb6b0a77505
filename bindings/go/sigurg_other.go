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
