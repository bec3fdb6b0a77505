package gotest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

// TestEchoClientExample builds examples/go/echo_client (CGO_ENABLED=0) and
// runs it against an echo server of the library, driven by a loop in this
// process on its own goroutine.
func TestEchoClientExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary (-short)")
	}
	bin := filepath.Join(t.TempDir(), "echo_client")
	build := exec.Command("go", "build", "-o", bin, "./examples/go/echo_client")
	build.Dir = repoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	type started struct {
		port int
		loop *asyncloop.Loop
		err  error
	}
	ready := make(chan started, 1)
	finished := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		l, err := asyncloop.NewLoop()
		if err != nil {
			ready <- started{err: err}
			return
		}
		lost := make(chan error, 1)
		sf, err := l.CreateServer(bg, "127.0.0.1", 0, func() asyncloop.Protocol { return &echoServer{t: t, lost: lost} })
		if err == nil {
			err = l.RunUntilComplete(sf)
		}
		if err != nil {
			ready <- started{err: err}
			return
		}
		srv, _ := sf.Result()
		ready <- started{port: srv.Port(), loop: l}
		err = l.RunForever() // until the test calls Stop
		srv.Close()
		settle(l)
		if err == nil {
			err = l.Close()
		}
		finished <- err
	}()
	s := <-ready
	if s.err != nil {
		t.Fatal(s.err)
	}
	cmd := exec.Command(bin, "127.0.0.1", itoa(s.port))
	cmd.Env = append(os.Environ(), asyncloop.LibraryEnv+"="+libPath)
	out, err := cmd.CombinedOutput()
	s.loop.Stop()
	select {
	case ferr := <-finished:
		if ferr != nil {
			t.Errorf("server loop: %v", ferr)
		}
	case <-time.After(10 * time.Second):
		t.Error("server loop did not stop")
	}
	if err != nil {
		t.Fatalf("echo_client: %v\n%s", err, out)
	}
	re := regexp.MustCompile(`^Go      1048576 bytes echoed, median round trip \d+\.\d us\n$`)
	if !re.Match(out) {
		t.Fatalf("unexpected output %q", out)
	}
	t.Logf("%s", out)

	// Exit status 1 when nothing listens.
	cmd = exec.Command(bin, "127.0.0.1", itoa(freePort(t)))
	cmd.Env = append(os.Environ(), asyncloop.LibraryEnv+"="+libPath)
	out, err = cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("echo_client against a closed port: %v\n%s", err, out)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
