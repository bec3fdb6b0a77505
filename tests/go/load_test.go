package gotest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
	"github.com/asyncloop/asyncloop/internal/libbuild"
)

// loadChild runs TestLoadChild in a fresh process (nothing loaded yet)
// with env, and returns its output.
func loadChild(t *testing.T, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadChild$", "-test.v")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, asyncloop.LibraryEnv+"=") && !strings.HasPrefix(kv, "LD_LIBRARY_PATH=") &&
			!strings.HasPrefix(kv, "XDG_CACHE_HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, childEnv+"=load")
	cmd.Env = append(cmd.Env, env...)
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// TestLoadChild is the child of the tests below: it loads the library the
// default way and prints the outcome.
func TestLoadChild(t *testing.T) {
	if os.Getenv(childEnv) != "load" {
		t.Skip("child process only")
	}
	if err := asyncloop.Load(); err != nil {
		os.Stdout.WriteString("LOAD-ERROR " + err.Error() + "\n")
		return
	}
	os.Stdout.WriteString("LOADED " + asyncloop.LibraryPath() + "\n")
}

// Without a library anywhere, the error says what was tried and how to
// provide one; with one in the user's cache (where cmd/asyncloop-lib puts
// it, for `go run .`) it is found there.
func TestLoadSearchOrderAndError(t *testing.T) {
	if out, err := exec.Command("/sbin/ldconfig", "-p").Output(); err == nil && strings.Contains(string(out), "libasyncloop.so") {
		t.Skip("a libasyncloop is installed on the loader's path")
	}
	cache := t.TempDir()
	out := loadChild(t, "XDG_CACHE_HOME="+cache)
	for _, want := range []string{
		"LOAD-ERROR asyncloop: cannot load libasyncloop.so.",
		"$ASYNCLOOP_LIBRARY (not set)",
		filepath.Join(cache, "asyncloop"),
		"through the dynamic loader's search path",
		"go run github.com/asyncloop/asyncloop/cmd/asyncloop-lib",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("the error lacks %q:\n%s", want, out)
		}
	}
	// In the cache.
	t.Setenv("XDG_CACHE_HOME", cache)
	path, err := asyncloop.CacheLibraryPath()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(path, cache) {
		t.Fatalf("cache path %s is not under %s", path, cache)
	}
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.Symlink(libPath, path); err != nil {
		t.Fatal(err)
	}
	if out := loadChild(t, "XDG_CACHE_HOME="+cache); !strings.Contains(out, "LOADED "+path) {
		t.Fatalf("not loaded from the cache:\n%s", out)
	}
	// ASYNCLOOP_LIBRARY comes first.
	if out := loadChild(t, "XDG_CACHE_HOME="+cache, asyncloop.LibraryEnv+"="+libPath); !strings.Contains(out, "LOADED "+libPath) {
		t.Fatalf("ASYNCLOOP_LIBRARY not first:\n%s", out)
	}
}

// Every build of the library uses the same flags: the CMake build's are
// the Go builder's (internal/libbuild, used by cmd/asyncloop-lib).
func TestLibraryBuildFlagsMatchCMake(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(), "CMakeLists.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`set\(ALOOP_GO_LDFLAGS "([^"]*)"\)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no ALOOP_GO_LDFLAGS in CMakeLists.txt")
	}
	if string(m[1]) != libbuild.GoLDFlags {
		t.Fatalf("CMake's ALOOP_GO_LDFLAGS %q, internal/libbuild's %q", m[1], libbuild.GoLDFlags)
	}
}
