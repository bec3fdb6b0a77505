// Package gotest tests the Go host binding (bindings/go, purego,
// CGO_ENABLED=0) against libasyncloop.so over real loopback sockets.
//
// Run from the repository root:
//
//	CGO_ENABLED=0 go test ./tests/go/...
//
// The library is $ASYNCLOOP_LIBRARY if set, else build/libasyncloop.so if
// it exists, else the tests build it into a temporary directory (this needs
// cgo and a C compiler for the library only; the host stays CGO_ENABLED=0).
package gotest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
	"github.com/asyncloop/asyncloop/internal/libbuild"
)

// libPath is the library every test (and child process) uses.
var libPath string

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func findOrBuildLibrary() (path string, cleanup func(), err error) {
	cleanup = func() {}
	if p := os.Getenv(asyncloop.LibraryEnv); p != "" {
		return p, cleanup, nil
	}
	root := repoRoot()
	if p := filepath.Join(root, "build", "libasyncloop.so"); fileExists(p) {
		return p, cleanup, nil
	}
	dir, err := os.MkdirTemp("", "asyncloop-gotest-")
	if err != nil {
		return "", cleanup, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	out := filepath.Join(dir, "libasyncloop.so")
	if err := libbuild.Build(root, out, asyncloop.VersionMajor, os.Stderr); err != nil {
		return "", cleanup, fmt.Errorf("building the library: %v", err)
	}
	return out, cleanup, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestMain(m *testing.M) {
	path, cleanup, err := findOrBuildLibrary()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests/go:", err)
		os.Exit(1)
	}
	libPath, _ = filepath.Abs(path)
	// Child processes (GC hazard tests) load it themselves, with their own
	// SIGURG mode.
	if os.Getenv(childEnv) == "" {
		if err := asyncloop.Open(libPath); err != nil {
			fmt.Fprintln(os.Stderr, "tests/go:", err)
			cleanup()
			os.Exit(1)
		}
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}
