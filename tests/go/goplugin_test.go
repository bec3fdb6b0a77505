package gotest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
	"github.com/ebitengine/purego"
)

// A Go plugin (examples/go-plugin) in this Go host: three Go runtimes in one
// process (this program's, the library's and the plugin's). The plugin's
// runtime preempts with SIGURG like the host's; loaded with a plain dlopen
// it takes SIGURG from the host (the hazard of gchazard_test.go, now with
// a runtime that keeps it); asyncloop.OpenPlugin chains the two.

const pluginEnv = "ASYNCLOOP_GOPLUGIN"

var (
	pluginOnce sync.Once
	pluginPath string
	pluginErr  error
)

// goPlugin returns the plugin's path: $ASYNCLOOP_GOPLUGIN (CTest sets it to
// the one CMake built), else built here with cgo.
func goPlugin(t *testing.T) string {
	t.Helper()
	pluginOnce.Do(func() {
		if p := os.Getenv(pluginEnv); p != "" {
			pluginPath = p
			return
		}
		dir, err := os.MkdirTemp("", "asyncloop-goplugin-")
		if err != nil {
			pluginErr = err
			return
		}
		pluginPath = filepath.Join(dir, "libgoplugin.so")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", pluginPath, "./examples/go-plugin")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			pluginErr = err
			pluginPath = string(out)
		}
	})
	if pluginErr != nil {
		t.Fatalf("building examples/go-plugin: %v\n%s", pluginErr, pluginPath)
	}
	return pluginPath
}

// TestGoPluginChild is the child: it loads the library, then the plugin
// (OpenPlugin, or a plain dlopen with $ASYNCLOOP_GOTEST_CHILD=plugin-plain),
// starts call-free spinners in the host and runs host GCs, then the
// plugin's own GCs beside its own spinner.
func TestGoPluginChild(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode != "plugin-chain" && mode != "plugin-plain" {
		t.Skip("child of TestGoPluginInGoHost")
	}
	runtime.GOMAXPROCS(max(2, runtime.NumCPU()))
	if err := asyncloop.Open(libPath); err != nil {
		t.Fatal(err)
	}
	path := os.Getenv(pluginEnv)
	var h uintptr
	var err error
	if mode == "plugin-chain" {
		var how string
		h, how, err = asyncloop.OpenPlugin(path)
		os.Stdout.WriteString("SIGURG: " + how + "\n")
		if _, _, err2 := asyncloop.OpenPlugin(path); err == nil && err2 == nil {
			t.Fatal("a second chained library was accepted")
		}
	} else {
		h, err = purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	}
	if err != nil {
		t.Fatal(err)
	}
	var pluginGC func(ms int32) int32
	purego.RegisterLibFunc(&pluginGC, h, "plugin_gc")
	stop := false
	for range runtime.GOMAXPROCS(0) - 1 {
		go spin(&stop)
	}
	time.Sleep(50 * time.Millisecond) // let the spinners occupy the Ps
	for range 3 {
		runtime.GC()
	}
	os.Stdout.WriteString("GC-OK\n")
	if n := pluginGC(200); n <= 0 {
		t.Fatalf("plugin_gc: %d", n)
	}
	os.Stdout.WriteString("PLUGIN-GC-OK\n")
	os.Exit(0) // the spinners never stop
}

func runPluginChild(t *testing.T, mode string, timeout time.Duration) (string, bool, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestGoPluginChild$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, asyncloop.LibraryEnv+"="+libPath, pluginEnv+"="+goPlugin(t))
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), ctx.Err() != nil, err
}

// With OpenPlugin, the host's and the plugin's collections both complete
// while goroutines of each spin in call-free loops; with a plain dlopen
// the plugin's runtime drops the host's preemption signals and the host's
// collection hangs (the child is killed).
func TestGoPluginInGoHost(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("SIGURG chaining is linux/amd64 only")
	}
	out, timedOut, err := runPluginChild(t, "plugin-chain", 30*time.Second)
	if timedOut || err != nil || !strings.Contains(out, "SIGURG: chain") ||
		!strings.Contains(out, "GC-OK") || !strings.Contains(out, "PLUGIN-GC-OK") {
		t.Fatalf("OpenPlugin: timed out %v, %v:\n%s", timedOut, err, out)
	}
	if testing.Short() {
		return
	}
	out, timedOut, _ = runPluginChild(t, "plugin-plain", 5*time.Second)
	if !timedOut || strings.Contains(out, "GC-OK") {
		t.Fatalf("a plain dlopen of the plugin did not hang the host's GC (Go changed? revisit bindings/go/README.md, Go plugins):\n%s", out)
	}
}
