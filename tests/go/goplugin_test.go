package gotest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
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
	run := "^TestGoPluginChild$"
	if mode == "plugin-serve" {
		run = "^TestGoPluginServeChild$"
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run="+run, "-test.v")
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

// TestGoPluginServeChild is the child of TestGoPluginSharesHostLoop: this
// Go host hands its own loop (CHandle) to the Go plugin, which serves TCP
// echo and ticks a timer on it, while the host serves TCP and UDP echo on
// the same loop (its UDP endpoint through the event queue); clients of all
// three run at once while the host runs the loop.
func TestGoPluginServeChild(t *testing.T) {
	if os.Getenv(childEnv) != "plugin-serve" {
		t.Skip("child of TestGoPluginSharesHostLoop")
	}
	if err := asyncloop.Open(libPath); err != nil {
		t.Fatal(err)
	}
	h, _, err := asyncloop.OpenPlugin(os.Getenv(pluginEnv))
	if err != nil {
		t.Fatal(err)
	}
	var start func(loop uintptr) int32
	var stop, ticks func() int32
	purego.RegisterLibFunc(&start, h, "plugin_start")
	purego.RegisterLibFunc(&stop, h, "plugin_stop")
	purego.RegisterLibFunc(&ticks, h, "plugin_ticks")

	l := newLoop(t)
	srv, hport := startEchoServer(t, l, make(chan error, 8))
	udp, uaddr := listenUDP(t, l, &udpEcho{})
	ch, err := l.CHandle()
	if err != nil {
		t.Fatal(err)
	}
	pport := start(ch)
	if pport <= 0 {
		t.Fatalf("plugin_start: %d", pport)
	}

	const rounds, size = 50, 1000
	errs := make(chan error, 3)
	tcpClient := func(port int) {
		errs <- func() error {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			buf := make([]byte, size)
			for i := range rounds {
				msg := bytes.Repeat([]byte{byte('a' + i%26)}, size)
				if _, err := c.Write(msg); err != nil {
					return err
				}
				if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, msg) {
					return fmt.Errorf("tcp %d round %d: %v", port, i, err)
				}
			}
			return nil
		}()
	}
	go tcpClient(int(pport)) // the plugin's server
	go tcpClient(hport)      // the host's
	go func() {              // the host's UDP endpoint
		errs <- func() error {
			c, err := net.DialUDP("udp", nil, uaddr)
			if err != nil {
				return err
			}
			defer c.Close()
			buf := make([]byte, 64)
			for i := range rounds {
				msg := fmt.Sprintf("dgram %d", i)
				c.Write([]byte(msg))
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := c.Read(buf)
				if err != nil || string(buf[:n]) != msg {
					return fmt.Errorf("udp round %d: %q %v", i, buf[:n], err)
				}
			}
			return nil
		}()
	}()
	done, _ := asyncloop.NewFuture[int](l)
	go func() {
		for range 3 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		for ticks() < 3 { // the plugin's 10 ms timer, on the host's loop
			time.Sleep(5 * time.Millisecond)
		}
		l.CallSoonThreadsafe(func() { done.SetResult(0) })
	}()
	if err := untilDone(t, l, done, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := stop(); n != rounds*size {
		t.Errorf("the plugin echoed %d bytes, want %d", n, rounds*size)
	}
	udp.Abort()
	srv.Close()
	settle(l)
	if !t.Failed() {
		os.Stdout.WriteString("SERVE-OK\n")
	}
}

// A Go host's own loop, handed to a Go plugin: both serve traffic on it.
func TestGoPluginSharesHostLoop(t *testing.T) {
	out, timedOut, err := runPluginChild(t, "plugin-serve", 60*time.Second)
	if timedOut || err != nil || !strings.Contains(out, "SERVE-OK") {
		t.Fatalf("timed out %v, %v:\n%s", timedOut, err, out)
	}
}
