// Package libbuild builds libasyncloop.so with the go command, with the
// flags of the project's CMake build, for the Go side of the repository:
// cmd/asyncloop-lib (the library for `go run`) and tests/go (when no
// library was built).
package libbuild

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// GoLDFlags are the linker flags every build of the library uses: the
// library's runtime runs without asynchronous preemption (see capi/main.go).
// The same as ALOOP_GO_LDFLAGS in CMakeLists.txt (tests/go checks it).
const GoLDFlags = "-X=runtime.godebugDefault=asyncpreemptoff=1"

// Build builds the library from the module at root (the folder with
// go.mod, capi/ and include/) into out, with soname libasyncloop.so.MAJOR
// (major >= 0; -1: none). It needs cgo and a C compiler. The file appears at
// out at once, complete (written beside it, then renamed).
func Build(root, out string, major int, log io.Writer) error {
	if _, err := os.Stat(filepath.Join(root, "capi", "main.go")); err != nil {
		return fmt.Errorf("%s is not the asyncloop module (no capi/main.go)", root)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp%d", out, os.Getpid())
	ldflags := GoLDFlags
	if major >= 0 {
		ldflags += fmt.Sprintf(" -extldflags=-Wl,-soname,libasyncloop.so.%d", major)
	}
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-ldflags="+ldflags, "-o", tmp, "./capi")
	cmd.Dir = root
	// The module's own go.mod and go.sum as they are (a -mod=mod in the
	// caller's GOFLAGS must not rewrite them).
	var flags []string
	for _, f := range strings.Fields(os.Getenv("GOFLAGS")) {
		if !strings.HasPrefix(f, "-mod=") {
			flags = append(flags, f)
		}
	}
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOFLAGS="+strings.Join(flags, " "))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		os.Remove(tmp[:len(tmp)-len(filepath.Ext(tmp))] + ".h")
		return fmt.Errorf("go build -buildmode=c-shared ./capi (needs cgo and a C compiler): %w", err)
	}
	// go build writes the cgo header beside the library: not needed here.
	os.Remove(tmp[:len(tmp)-len(filepath.Ext(tmp))] + ".h")
	return os.Rename(tmp, out)
}
