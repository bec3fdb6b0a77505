package gotest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

// The two-runtime hazard (design §5, golang/go#18976): when the library's
// Go runtime owns SIGURG, the host's asynchronous preemption signals are
// swallowed, and a host GC waits forever for a goroutine spinning in a
// call-free loop. Stop-the-world also stops the host's own timers, so the
// check runs in a child process that the parent kills on a timeout.

const childEnv = "ASYNCLOOP_GOTEST_CHILD"

// spin is a call-free loop: no function call, no allocation, no channel
// operation, so only asynchronous preemption (SIGURG) can stop it.
//
//go:noinline
func spin(stop *bool) int {
	x := 0
	for !*stop {
		x++
	}
	return x
}

// TestGCHazardChild is the child: it loads the library (SIGURG mode from
// ASYNCLOOP_SIGURG), uses a loop so this thread is known to both
// runtimes, starts call-free spinners, then runs GCs.
func TestGCHazardChild(t *testing.T) {
	if os.Getenv(childEnv) != "gc" {
		t.Skip("child of TestGCHazard*")
	}
	runtime.GOMAXPROCS(max(2, runtime.NumCPU()))
	stop := false
	if os.Getenv(childEnv+"_EARLY") == "1" {
		// Spinners and back-to-back GCs while the library loads: the
		// library's runtime installs its SIGURG handler inside dlopen, and
		// preemption signals sent then must not be lost.
		for range runtime.GOMAXPROCS(0) - 1 {
			go spin(&stop)
		}
		go func() {
			for {
				runtime.GC()
			}
		}()
		time.Sleep(20 * time.Millisecond)
	}
	if err := asyncloop.Open(libPath); err != nil {
		t.Fatal(err)
	}
	mode, err := asyncloop.SIGURGMode()
	os.Stdout.WriteString("SIGURG mode: " + mode + "\n")
	if err != nil {
		t.Fatal(err)
	}
	l := newLoop(t)
	n := 0
	for range 100 {
		l.CallSoon(func() { n++ })
	}
	l.CallSoon(func() { l.Stop() })
	if err := l.RunForever(); err != nil || n != 100 {
		t.Fatalf("loop: %v, %d callbacks", err, n)
	}
	for range runtime.GOMAXPROCS(0) - 1 {
		go spin(&stop)
	}
	time.Sleep(50 * time.Millisecond) // let the spinners occupy the Ps
	for range 3 {
		runtime.GC()
	}
	os.Stdout.WriteString("GC-OK\n")
	// The library still works after the SIGURG arrangement, with the
	// spinners running.
	f, _ := l.NewFuture()
	l.CallLater(time.Millisecond, func() { f.SetResult(42) })
	if err := l.RunUntilComplete(f); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("LOOP-OK\n")
	os.Exit(0) // the spinners never stop (the compiler may hoist *stop)
}

func runGCChild(t *testing.T, mode string, early bool, timeout time.Duration, env ...string) (out string, timedOut bool, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestGCHazardChild$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=gc", asyncloop.LibraryEnv+"="+libPath, asyncloop.SIGURGEnv+"="+mode)
	cmd.Env = append(cmd.Env, env...)
	if early {
		cmd.Env = append(cmd.Env, childEnv+"_EARLY=1")
	}
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err = cmd.Run()
	return buf.String(), ctx.Err() != nil, err
}

// With the binding's default arrangement (the library gives SIGURG back
// itself; mode host: the binding does it too, on amd64 inside the same
// system-stack call as dlopen) a host GC completes while host goroutines
// spin.
func TestGCHazardFixed(t *testing.T) {
	type tc struct {
		mode  string
		early bool
	}
	for _, c := range []tc{{"", false}, {asyncloop.SIGURGHost, false}, {"", true}, {asyncloop.SIGURGHost, true}} {
		mode := c.mode
		name := mode
		if name == "" {
			name = "default"
		}
		if c.early {
			name += "-spinning-during-load"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, timedOut, err := runGCChild(t, mode, c.early, 30*time.Second)
			if timedOut {
				t.Fatalf("host GC hung behind a call-free loop (child killed after 30s):\n%s", out)
			}
			if err != nil || !strings.Contains(out, "GC-OK") || !strings.Contains(out, "LOOP-OK") {
				t.Fatalf("child failed: %v\n%s", err, out)
			}
			// By default the library gives SIGURG back itself, inside
			// dlopen: the binding finds the host's handler in place.
			if mode == "" && !strings.Contains(out, "SIGURG mode: unchanged") {
				t.Fatalf("default mode is not unchanged (given back by the library):\n%s", out)
			}
			t.Log(strings.TrimSpace(out))
		})
	}
}

// The library gives SIGURG back to the host by itself (capi/sigurg.c), for
// every host and architecture: with the binding doing nothing (mode
// library: leave what loading did), a host GC completes while host
// goroutines spin, the spinners started before the load too.
func TestGCHazardLibraryGivesBack(t *testing.T) {
	for _, early := range []bool{false, true} {
		out, timedOut, err := runGCChild(t, asyncloop.SIGURGLibrary, early, 30*time.Second)
		if timedOut {
			t.Fatalf("host GC hung behind a call-free loop (early %v; child killed after 30s):\n%s", early, out)
		}
		if err != nil || !strings.Contains(out, "GC-OK") || !strings.Contains(out, "LOOP-OK") {
			t.Fatalf("child failed (early %v): %v\n%s", early, err, out)
		}
	}
}

// Documents the hazard itself: with the library's SIGURG handler left in
// place (a library whose preemption GODEBUG=asyncpreemptoff=0 turned back
// on keeps SIGURG, and mode library leaves it) the host GC hangs. If this
// starts passing GC, Go changed and the README's section on two runtimes
// must be revisited.
func TestGCHazardWithoutFix(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a hang (-short)")
	}
	out, timedOut, err := runGCChild(t, asyncloop.SIGURGLibrary, false, 5*time.Second, "GODEBUG=asyncpreemptoff=0")
	if !timedOut {
		var ee *exec.ExitError
		if errors.As(err, &ee) || err == nil {
			t.Fatalf("expected the host GC to hang with the library's SIGURG handler, but the child finished (%v):\n%s", err, out)
		}
	}
	if strings.Contains(out, "GC-OK") {
		t.Fatalf("GC completed:\n%s", out)
	}
}
