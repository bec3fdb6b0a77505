//go:build linux

package asyncloop

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ebitengine/purego"
)

// Two Go runtimes in one process: does each keep asynchronous preemption
// under each SIGURG arrangement? A small c-shared Go library
// (testdata/spinlib) runs a call-free loop and a GC inside its own runtime;
// the host does the same in its runtime. A hang is detected by the parent
// killing the child process (a stopped world stops timers too).

const sigurgChildEnv = "ASYNCLOOP_SIGURG_TEST_CHILD"

//go:noinline
func hostSpin(stop *bool) {
	x := 0
	for !*stop {
		x++
	}
	_ = x
}

func TestSIGURGChild(t *testing.T) {
	lib := os.Getenv(sigurgChildEnv)
	if lib == "" {
		t.Skip("child of TestSIGURGModes")
	}
	runtime.GOMAXPROCS(2)
	h, mode, err := dlopenLibrary(lib, os.Getenv(SIGURGEnv))
	os.Stdout.WriteString("mode " + mode + "\n")
	if err != nil || h == 0 {
		t.Fatal(err)
	}
	var version, spinGC func() int32
	purego.RegisterLibFunc(&version, h, "spinlib_version")
	purego.RegisterLibFunc(&spinGC, h, "spinlib_spin_gc")
	version() // waits for the library's runtime to be initialized

	// The library's runtime: GC behind a call-free loop of the library.
	done := make(chan bool)
	go func() { spinGC(); done <- true }()
	select {
	case <-done:
		os.Stdout.WriteString("LIB-GC-OK\n")
	case <-time.After(5 * time.Second):
		os.Stdout.WriteString("LIB-GC-HUNG\n")
	}

	// The host's runtime: GC behind a call-free loop of the host.
	stop := false
	go hostSpin(&stop)
	time.Sleep(50 * time.Millisecond)
	runtime.GC()
	os.Stdout.WriteString("HOST-GC-OK\n")
	os.Exit(0)
}

func TestSIGURGModes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a c-shared library and waits for hangs (-short)")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no C compiler to build testdata/spinlib")
	}
	so := filepath.Join(t.TempDir(), "spinlib.so")
	build := exec.Command("go", "build", "-buildmode=c-shared", "-o", so, "./testdata/spinlib")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building spinlib: %v\n%s", err, out)
	}
	type want struct{ lib, host bool }
	cases := map[string]want{
		SIGURGLibrary: {lib: true, host: false}, // the hazard
		SIGURGHost:    {lib: false, host: true}, // the library loses preemption
	}
	if sigchainSupported {
		cases[SIGURGChain] = want{lib: true, host: true}
	}
	for mode, w := range cases {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSIGURGChild$")
			cmd.Env = append(os.Environ(), sigurgChildEnv+"="+so, SIGURGEnv+"="+mode)
			var buf bytes.Buffer
			cmd.Stdout, cmd.Stderr = &buf, &buf
			cmd.Run()
			out := buf.String()
			if !strings.Contains(out, "mode "+mode+"\n") {
				t.Fatalf("child did not apply mode %s:\n%s", mode, out)
			}
			if got := strings.Contains(out, "LIB-GC-OK"); got != w.lib {
				t.Errorf("library GC completed = %v, want %v:\n%s", got, w.lib, out)
			}
			if got := strings.Contains(out, "HOST-GC-OK"); got != w.host {
				t.Errorf("host GC completed = %v, want %v:\n%s", got, w.host, out)
			}
		})
	}
}
