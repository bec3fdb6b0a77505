// Command asyncloop-lib builds libasyncloop.so from the asyncloop module's
// own sources into the user's cache, where the Go binding looks for it
// (asyncloop.CacheLibraryPath: $XDG_CACHE_HOME or ~/.cache, then
// asyncloop/VERSION/libasyncloop.so.MAJOR). It is the one step that makes
// `go run .` work for a program that uses the binding: go run builds the
// program in a temporary directory, so the library cannot be beside it.
//
// From a module that requires github.com/asyncloop/asyncloop:
//
//	go run github.com/asyncloop/asyncloop/cmd/asyncloop-lib
//	go run .
//
// The build needs cgo and a C compiler (the program itself does not:
// CGO_ENABLED=0 is fine). Flags: -o PATH builds elsewhere; -print prints
// the cache path and exits.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
	"github.com/asyncloop/asyncloop/internal/libbuild"
)

// moduleRoot finds the sources this command was built from: its own source
// folder (go run records it), else what the go command resolves for the
// module in the current folder.
func moduleRoot() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		root := filepath.Join(filepath.Dir(file), "..", "..")
		if _, err := os.Stat(filepath.Join(root, "capi", "main.go")); err == nil {
			return root, nil
		}
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/asyncloop/asyncloop").Output()
	if err != nil {
		return "", fmt.Errorf("cannot find the asyncloop module's sources (run this from a module that requires github.com/asyncloop/asyncloop): %v", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func main() {
	out := flag.String("o", "", "where to build the library (default: the cache path the binding looks at)")
	printOnly := flag.Bool("print", false, "print the cache path and exit")
	flag.Parse()
	cache, err := asyncloop.CacheLibraryPath()
	if err != nil && *out == "" {
		fmt.Fprintln(os.Stderr, "asyncloop-lib:", err)
		os.Exit(1)
	}
	if *printOnly {
		fmt.Println(cache)
		return
	}
	if *out == "" {
		*out = cache
	}
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "asyncloop-lib:", err)
		os.Exit(1)
	}
	if err := libbuild.Build(root, *out, asyncloop.VersionMajor, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "asyncloop-lib:", err)
		os.Exit(1)
	}
	fmt.Printf("built %s (libasyncloop %d.%d.%d)\n", *out, asyncloop.VersionMajor, asyncloop.VersionMinor, asyncloop.VersionPatch)
}
