package gotest

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

// procRecorder records a child's events in order.
type procRecorder struct {
	asyncloop.BaseSubprocessProtocol
	events []string
	out    [3][]byte
	proc   *asyncloop.SubprocessTransport
	done   *asyncloop.Future[struct{}]
}

func newProcRecorder(l *asyncloop.Loop) *procRecorder {
	done, _ := asyncloop.NewFuture[struct{}](l)
	return &procRecorder{done: done}
}

func (p *procRecorder) ConnectionMade(t *asyncloop.SubprocessTransport) {
	p.proc = t
	p.events = append(p.events, "made")
}
func (p *procRecorder) PipeDataReceived(fd int, b []byte) { p.out[fd] = append(p.out[fd], b...) }
func (p *procRecorder) PipeConnectionLost(fd int, err error) {
	p.events = append(p.events, "pipe"+string(rune('0'+fd)))
}
func (p *procRecorder) ProcessExited() { p.events = append(p.events, "exited") }
func (p *procRecorder) ConnectionLost(err error) {
	p.events = append(p.events, "lost")
	p.done.SetResult(struct{}{})
}

func TestSubprocessExec(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l := newLoop(t)
	p := newProcRecorder(l)
	f, err := l.SubprocessExec(bg, []string{"sh", "-c", "read line; echo \"got $line\"; echo oops >&2; exit 3"}, p,
		asyncloop.WithEnv([]string{"PATH=/bin:/usr/bin"}), asyncloop.WithDir(os.TempDir()))
	proc := await(t, l, f, err)
	if proc != p.proc || proc.Pid() <= 0 {
		t.Fatalf("proc %p / %p, pid %d", proc, p.proc, proc.Pid())
	}
	if _, ok := proc.ReturnCode(); ok {
		t.Fatal("return code before exit")
	}
	wf, err := proc.Wait(bg)
	if err != nil {
		t.Fatal(err)
	}
	stdin := proc.PipeTransport(0)
	if stdin == nil {
		t.Fatal("no stdin pipe")
	}
	stdin.WriteString("hello\n")
	stdin.WriteEOF()
	if code := await(t, l, wf, nil); code != 3 {
		t.Fatalf("Wait returned %d", code)
	}
	await(t, l, p.done, nil)
	if code, ok := proc.ReturnCode(); !ok || code != 3 {
		t.Fatalf("ReturnCode %d %v", code, ok)
	}
	if string(p.out[1]) != "got hello\n" || string(p.out[2]) != "oops\n" {
		t.Fatalf("stdout %q stderr %q", p.out[1], p.out[2])
	}
	ev := strings.Join(p.events, ",")
	if !strings.HasPrefix(ev, "made,") || !strings.HasSuffix(ev, ",lost") || strings.Count(ev, "pipe") != 3 || !strings.Contains(ev, "exited") {
		t.Fatalf("events %s", ev)
	}
	// Wait after the exit resolves at once.
	wf2, _ := proc.Wait(bg)
	if code := await(t, l, wf2, nil); code != 3 {
		t.Fatalf("second Wait %d", code)
	}
	settle(l)
	checkLeaks(t, base)
}

func TestSubprocessSignalsAndStdio(t *testing.T) {
	l := newLoop(t)
	// A child killed by a signal: minus the signal number.
	p := newProcRecorder(l)
	f, err := l.SubprocessShell(bg, "exec sleep 30", p, asyncloop.WithStdin(asyncloop.StdioDevNull), asyncloop.WithStdout(asyncloop.StdioDevNull))
	proc := await(t, l, f, err)
	if proc.PipeTransport(0) != nil || proc.PipeTransport(1) != nil || proc.PipeTransport(2) == nil {
		t.Fatal("pipe transports do not follow the stdio options")
	}
	// A Wait cancelled by its context leaves the child alone.
	ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
	defer cancel()
	w, _ := proc.Wait(ctx)
	if err := untilDone(t, l, w, 5*time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with a deadline: %v", err)
	}
	if _, ok := proc.ReturnCode(); ok {
		t.Fatal("the child exited when the wait was cancelled")
	}
	if err := proc.SendSignal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	w2, _ := proc.Wait(bg)
	if code := await(t, l, w2, nil); code != -int(syscall.SIGTERM) {
		t.Fatalf("return code %d, want %d", code, -int(syscall.SIGTERM))
	}
	await(t, l, p.done, nil)

	// stderr to stdout, stdout to a file.
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	p2 := newProcRecorder(l)
	f2, err := l.SubprocessExec(bg, []string{"sh", "-c", "echo to-stdout; echo to-stderr >&2"}, p2,
		asyncloop.WithStdout(asyncloop.StdioFile(out)), asyncloop.WithStderr(asyncloop.StdioStdout))
	await(t, l, f2, err)
	await(t, l, p2.done, nil)
	b, _ := os.ReadFile(out.Name())
	if string(b) != "to-stdout\nto-stderr\n" || len(p2.out[1]) != 0 {
		t.Fatalf("file got %q", b)
	}

	// Kill and Close.
	p3 := newProcRecorder(l)
	f3, err := l.SubprocessExec(bg, []string{"sleep", "30"}, p3)
	proc3 := await(t, l, f3, err)
	proc3.Kill()
	await(t, l, p3.done, nil)
	if code, _ := proc3.ReturnCode(); code != -int(syscall.SIGKILL) {
		t.Fatalf("killed child's return code %d", code)
	}
	p4 := newProcRecorder(l)
	f4, err := l.SubprocessExec(bg, []string{"sleep", "30"}, p4)
	proc4 := await(t, l, f4, err)
	proc4.Close()
	if !proc4.IsClosing() {
		t.Fatal("not closing after Close")
	}
	await(t, l, p4.done, nil)
	settle(l)
}

func TestSubprocessNotFound(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l := newLoop(t)
	p := newProcRecorder(l)
	f, err := l.SubprocessExec(bg, []string{"/nonexistent/program"}, p)
	if err == nil {
		err = untilDone(t, l, f, 5*time.Second)
	}
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Path != "/nonexistent/program" {
		t.Fatalf("%T %v, want an *fs.PathError for ENOENT", err, err)
	}
	if len(p.events) != 0 {
		t.Fatalf("protocol called: %v", p.events)
	}
	settle(l)
	checkLeaks(t, base)
}

// Signal handlers run on the loop's thread; removing the last one gives the
// signal back to the host (here: Go's os/signal).
func TestSignalHandlers(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l := newLoop(t)
	got := 0
	if err := l.AddSignalHandler(syscall.SIGUSR1, func() {
		got++
		if got == 1 {
			l.Stop()
		}
	}); err != nil {
		t.Fatal(err)
	}
	l.CallLater(10*time.Millisecond, func() { syscall.Kill(os.Getpid(), syscall.SIGUSR1) })
	runWithTimeout(t, l, 5*time.Second)
	if got != 1 {
		t.Fatalf("handler ran %d times", got)
	}
	if err := l.AddSignalHandler(syscall.SIGKILL, func() {}); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("SIGKILL: %v", err)
	}
	if removed, err := l.RemoveSignalHandler(syscall.SIGUSR1); !removed || err != nil {
		t.Fatalf("RemoveSignalHandler %v %v", removed, err)
	}
	// Back to the host: a signal.Notify channel gets it.
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	defer signal.Stop(ch)
	syscall.Kill(os.Getpid(), syscall.SIGUSR1)
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("the host did not get SIGUSR1 back")
	}
	settle(l)
	if got != 1 {
		t.Fatalf("the removed handler ran (%d)", got)
	}
	checkLeaks(t, base)
}
