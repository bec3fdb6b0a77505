package core

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// spRec records a subprocess protocol's calls and checks asyncio's order.
type spRec struct {
	h        *harness
	p        *Subprocess
	log      []string
	out, err bytes.Buffer
	pipeLost map[int]error
	made     int
	exited   int
	lost     int
	lostErr  error
	codeAtEx int
	onMade   func(p *Subprocess)
	onExited func(p *Subprocess)
	onData   func(p *Subprocess, fd int, data []byte)
	pauses   int
	resumes  int
}

func newSpRec(h *harness) *spRec { return &spRec{h: h, pipeLost: map[int]error{}} }

func (r *spRec) ConnectionMade(p *Subprocess) {
	r.h.onLoop("ConnectionMade")
	if r.made != 0 || len(r.log) != 0 {
		r.h.t.Errorf("ConnectionMade not first: %v", r.log)
	}
	r.made++
	r.p = p
	r.log = append(r.log, "made")
	if r.onMade != nil {
		r.onMade(p)
	}
}

func (r *spRec) PipeDataReceived(p *Subprocess, fd int, data []byte) {
	r.h.onLoop("PipeDataReceived")
	if r.made != 1 || r.lost != 0 || p != r.p {
		r.h.t.Errorf("PipeDataReceived out of order: %v", r.log)
	}
	if _, ok := r.pipeLost[fd]; ok {
		r.h.t.Errorf("data on fd %d after its pipe was lost", fd)
	}
	switch fd {
	case 1:
		r.out.Write(data)
	case 2:
		r.err.Write(data)
	default:
		r.h.t.Errorf("data on fd %d", fd)
	}
	if r.onData != nil {
		r.onData(p, fd, data)
	}
}

func (r *spRec) PipeConnectionLost(p *Subprocess, fd int, err error) {
	r.h.onLoop("PipeConnectionLost")
	if r.made != 1 || r.lost != 0 {
		r.h.t.Errorf("PipeConnectionLost out of order: %v", r.log)
	}
	if _, ok := r.pipeLost[fd]; ok {
		r.h.t.Errorf("pipe %d lost twice", fd)
	}
	r.pipeLost[fd] = err
	r.log = append(r.log, fmt.Sprintf("pipe%d-lost", fd))
}

func (r *spRec) ProcessExited(p *Subprocess) {
	r.h.onLoop("ProcessExited")
	if r.made != 1 || r.exited != 0 || r.lost != 0 {
		r.h.t.Errorf("ProcessExited out of order: %v", r.log)
	}
	code, ok := p.Returncode()
	if !ok {
		r.h.t.Errorf("no returncode in ProcessExited")
	}
	r.codeAtEx = code
	r.exited++
	r.log = append(r.log, "exited")
	if r.onExited != nil {
		r.onExited(p)
	}
}

func (r *spRec) ConnectionLost(p *Subprocess, err error) {
	r.h.onLoop("ConnectionLost")
	if r.made != 1 || r.exited != 1 || r.lost != 0 {
		r.h.t.Errorf("ConnectionLost out of order: %v", r.log)
	}
	for _, t := range p.pipes {
		if t != nil {
			r.h.t.Errorf("ConnectionLost with a pipe still open")
		}
	}
	r.lost++
	r.lostErr = err
	r.log = append(r.log, "lost")
}

func (r *spRec) PauseWriting(*Subprocess)  { r.pauses++ }
func (r *spRec) ResumeWriting(*Subprocess) { r.resumes++ }

func (h *harness) spawn(argv []string, r *spRec, o *SubprocessOptions) *Subprocess {
	h.t.Helper()
	f, err := h.l.SubprocessExec(argv, r, o)
	if err != nil {
		h.t.Fatalf("SubprocessExec(%q): %v", argv, err)
	}
	v, err := h.await(f, 10*time.Second)
	if err != nil {
		h.t.Fatalf("SubprocessExec(%q) future: %v", argv, err)
	}
	p := v.(*Subprocess)
	if r.made != 1 || r.p != p {
		h.t.Fatalf("future resolved before ConnectionMade")
	}
	return p
}

func (h *harness) waitLost(r *spRec) {
	h.t.Helper()
	h.runUntil("connection_lost", 20*time.Second, func() bool { return r.lost == 1 })
}

// reaped reports whether pid is no longer our child (not even a zombie).
func reaped(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err == unix.ECHILD
}

func zombie(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	sipid := *(*int32)(unsafe.Add(unsafe.Pointer(&info), 16)) // si_pid
	return err == nil && sipid == int32(pid)
}

func eventuallyReaped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !reaped(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d was not reaped (zombie=%v)", pid, zombie(pid))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func withoutPidfd(t *testing.T) {
	old := usePidfd
	usePidfd = false
	t.Cleanup(func() { usePidfd = old })
}

func testExitAndOutput(t *testing.T) {
	h := newHarness(t)
	r := newSpRec(h)
	p := h.spawn([]string{"sh", "-c", "echo out; echo err >&2; exit 3"}, r, nil)
	if p.Pid() <= 0 {
		t.Fatalf("pid %d", p.Pid())
	}
	for fd := 0; fd < 3; fd++ {
		if p.PipeTransport(fd) == nil {
			t.Fatalf("no pipe transport for fd %d", fd)
		}
	}
	h.waitLost(r)
	if code, ok := p.Returncode(); !ok || code != 3 || r.codeAtEx != 3 {
		t.Fatalf("returncode %d %v (in process_exited %d), want 3", code, ok, r.codeAtEx)
	}
	if r.out.String() != "out\n" || r.err.String() != "err\n" {
		t.Fatalf("stdout %q stderr %q", r.out.String(), r.err.String())
	}
	if len(r.pipeLost) != 3 {
		t.Fatalf("pipe_connection_lost for %v, want 0, 1, 2", r.pipeLost)
	}
	for fd, err := range r.pipeLost {
		if err != nil {
			t.Fatalf("pipe %d lost with %v", fd, err)
		}
	}
	if r.log[len(r.log)-1] != "lost" || r.lostErr != nil {
		t.Fatalf("log %v err %v", r.log, r.lostErr)
	}
	if !reaped(p.Pid()) {
		t.Fatalf("child not reaped after connection_lost")
	}
	if h.l.Alive() {
		t.Fatalf("loop alive after the subprocess finished")
	}
}

func TestSubprocessExitAndOutput(t *testing.T) { testExitAndOutput(t) }

func TestSubprocessExitAndOutputNoPidfd(t *testing.T) {
	withoutPidfd(t)
	testExitAndOutput(t)
}

func TestSubprocessSignalReturncodes(t *testing.T) {
	h := newHarness(t)
	r := newSpRec(h)
	p := h.spawn([]string{"sh", "-c", "kill -KILL $$"}, r, nil)
	h.waitLost(r)
	if code, _ := p.Returncode(); code != -9 {
		t.Fatalf("killed by SIGKILL: returncode %d, want -9", code)
	}
}

func testKillTerminate(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct {
		name string
		do   func(p *Subprocess) error
		want int
	}{
		{"terminate", (*Subprocess).Terminate, -int(unix.SIGTERM)},
		{"kill", (*Subprocess).Kill, -int(unix.SIGKILL)},
		{"send_signal(SIGINT)", func(p *Subprocess) error { return p.SendSignal(int(unix.SIGINT)) }, -int(unix.SIGINT)},
	} {
		r := newSpRec(h)
		p := h.spawn([]string{"sleep", "30"}, r, nil)
		if err := c.do(p); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		h.waitLost(r)
		if code, _ := p.Returncode(); code != c.want {
			t.Fatalf("%s: returncode %d, want %d", c.name, code, c.want)
		}
		// After the exit, signalling does nothing.
		if err := p.SendSignal(int(unix.SIGTERM)); err == nil || Errno(err) != unix.ESRCH {
			t.Fatalf("signal after connection_lost: %v, want ESRCH", err)
		}
	}
	// A handled signal: the child exits with its own status.
	r := newSpRec(h)
	r.onData = func(p *Subprocess, fd int, data []byte) {
		if strings.Contains(r.out.String(), "ready") {
			if err := p.SendSignal(int(unix.SIGUSR1)); err != nil {
				t.Errorf("send_signal: %v", err)
			}
		}
	}
	p := h.spawn([]string{"sh", "-c", `trap "exit 7" USR1; echo ready; while :; do sleep 0.02; done`}, r, nil)
	h.waitLost(r)
	if code, _ := p.Returncode(); code != 7 {
		t.Fatalf("trapped SIGUSR1: returncode %d, want 7", code)
	}
	if err := p.SendSignal(0); err != ErrInvalid {
		t.Fatalf("signal 0: %v", err)
	}
}

func TestSubprocessKillTerminate(t *testing.T) { testKillTerminate(t) }

func TestSubprocessKillTerminateNoPidfd(t *testing.T) {
	withoutPidfd(t)
	testKillTerminate(t)
}

func TestSubprocessBadExecutable(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	os.WriteFile(noexec, []byte("#!/bin/sh\necho hi\n"), 0o644)
	fds := openFds(t)
	for _, c := range []struct {
		argv []string
		dir  string
		want unix.Errno
	}{
		{[]string{"/nonexistent/prog"}, "", unix.ENOENT},
		{[]string{"asyncloop-no-such-command-xyz"}, "", unix.ENOENT},
		{[]string{noexec}, "", unix.EACCES},
		{[]string{dir}, "", unix.EACCES},
		{[]string{"true"}, "/nonexistent-dir", unix.ENOENT},
	} {
		r := newSpRec(h)
		f, err := h.l.SubprocessExec(c.argv, r, &SubprocessOptions{Dir: c.dir})
		if err != nil {
			t.Fatalf("%v: immediate error %v", c.argv, err)
		}
		if !f.Done() {
			t.Fatalf("%v: the future is not failed at once", c.argv)
		}
		_, err = f.Result()
		if Errno(err) != c.want {
			t.Fatalf("%v (dir %q): %v, want %v", c.argv, c.dir, err, c.want)
		}
		h.runFor(10 * time.Millisecond)
		if r.made != 0 || len(r.log) != 0 {
			t.Fatalf("protocol called after a failed spawn: %v", r.log)
		}
	}
	if got := openFds(t); got != fds {
		t.Fatalf("fds leaked: %d -> %d", fds, got)
	}
	if h.l.Alive() {
		t.Fatalf("loop alive after failed spawns")
	}
}

func TestSubprocessInvalidArgs(t *testing.T) {
	h := newHarness(t)
	r := newSpRec(h)
	cases := []struct {
		argv []string
		o    *SubprocessOptions
	}{
		{nil, nil},
		{[]string{"a\x00b"}, nil},
		{[]string{"true"}, &SubprocessOptions{Stdin: Stdio{Mode: StdioStdout}}},
		{[]string{"true"}, &SubprocessOptions{Stdout: Stdio{Mode: StdioStdout}}},
		{[]string{"true"}, &SubprocessOptions{Stdout: Stdio{Mode: 99}}},
		{[]string{"true"}, &SubprocessOptions{Stdout: Stdio{Mode: StdioFd, Fd: -1}}},
	}
	for i, c := range cases {
		if _, err := h.l.SubprocessExec(c.argv, r, c.o); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
	if _, err := h.l.SubprocessExec([]string{"true"}, nil, nil); err != ErrInvalid {
		t.Errorf("nil protocol: %v", err)
	}
}

// The child writes 10 MB to stdout and 10 MB to stderr at the same time;
// both arrive complete and in order.
func TestSubprocessLargeOutputBothPipes(t *testing.T) {
	h := newHarness(t)
	const n = 10 << 20
	r := newSpRec(h)
	cmd := fmt.Sprintf("(yes 0123456789 | head -c %d) & (yes abcdefghi | head -c %d >&2); wait", n, n)
	p := h.spawn([]string{"/bin/sh", "-c", cmd}, r, &SubprocessOptions{Stdin: Stdio{Mode: StdioDevNull}})
	if p.PipeTransport(0) != nil {
		t.Fatalf("a devnull stdin has a pipe transport")
	}
	h.waitLost(r)
	check := func(name string, got []byte, line string) {
		if len(got) != n {
			t.Fatalf("%s: %d bytes, want %d", name, len(got), n)
		}
		want := bytes.Repeat([]byte(line), n/len(line)+1)[:n]
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: %s", name, firstDiff(got, want))
		}
	}
	check("stdout", r.out.Bytes(), "0123456789\n")
	check("stderr", r.err.Bytes(), "abcdefghi\n")
	if code, _ := p.Returncode(); code != 0 {
		t.Fatalf("returncode %d", code)
	}
}

func TestSubprocessStdinRoundTrip(t *testing.T) {
	h := newHarness(t)
	r := newSpRec(h)
	p := h.spawn([]string{"cat"}, r, &SubprocessOptions{Stderr: Stdio{Mode: StdioDevNull}})
	in := p.PipeTransport(0)
	if in == nil {
		t.Fatal("no stdin transport")
	}
	data := pattern(3<<20, 7)
	if err := in.Write(data); err != nil {
		t.Fatal(err)
	}
	if r.pauses == 0 {
		t.Fatalf("3 MB buffered in stdin did not pause the protocol")
	}
	if err := in.WriteEOF(); err != nil {
		t.Fatal(err)
	}
	h.waitLost(r)
	if !bytes.Equal(r.out.Bytes(), data) {
		t.Fatalf("cat echoed: %s", firstDiff(r.out.Bytes(), data))
	}
	if r.resumes != r.pauses {
		t.Fatalf("pauses %d resumes %d", r.pauses, r.resumes)
	}
}

func TestSubprocessStdioModes(t *testing.T) {
	h := newHarness(t)
	// stderr to stdout.
	r := newSpRec(h)
	p := h.spawn([]string{"sh", "-c", "echo a; echo b >&2; echo c"}, r, &SubprocessOptions{Stderr: Stdio{Mode: StdioStdout}})
	if p.PipeTransport(2) != nil {
		t.Fatalf("stderr to stdout has its own pipe")
	}
	h.waitLost(r)
	if r.out.String() != "a\nb\nc\n" || r.err.Len() != 0 {
		t.Fatalf("stdout %q stderr %q", r.out.String(), r.err.String())
	}
	if _, ok := r.pipeLost[2]; ok {
		t.Fatalf("pipe_connection_lost for an fd without a pipe")
	}
	// An fd of ours, env and cwd.
	var pp [2]int
	if err := unix.Pipe2(pp[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pp[0])
	r = newSpRec(h)
	h.spawn([]string{"sh", "-c", "echo $ASYNCLOOP_T; pwd"}, r, &SubprocessOptions{
		Env:    []string{"ASYNCLOOP_T=hello", "PATH=/usr/bin:/bin"},
		Dir:    "/tmp",
		Stdout: Stdio{Mode: StdioFd, Fd: pp[1]},
	})
	unix.Close(pp[1]) // the child has its copy
	h.waitLost(r)
	buf := make([]byte, 100)
	n, _ := unix.Read(pp[0], buf)
	if got := string(buf[:n]); got != "hello\n/tmp\n" {
		t.Fatalf("child wrote %q to our pipe", got)
	}
	// devnull everywhere, shell.
	r = newSpRec(h)
	f, err := h.l.SubprocessShell("exit 5", r, &SubprocessOptions{
		Stdin: Stdio{Mode: StdioDevNull}, Stdout: Stdio{Mode: StdioDevNull}, Stderr: Stdio{Mode: StdioDevNull},
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := h.await(f, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h.waitLost(r)
	if code, _ := v.(*Subprocess).Returncode(); code != 5 {
		t.Fatalf("shell exit %d", code)
	}
	if len(r.pipeLost) != 0 {
		t.Fatalf("pipes lost without pipes: %v", r.pipeLost)
	}
}

func TestSubprocessCloseKills(t *testing.T) {
	h := newHarness(t)
	r := newSpRec(h)
	p := h.spawn([]string{"sleep", "30"}, r, nil)
	if err := h.l.Close(); !errors.Is(err, ErrBusy) {
		t.Fatalf("loop Close with a running subprocess: %v, want ErrBusy", err)
	}
	p.Close()
	if !p.IsClosing() {
		t.Fatal("not closing")
	}
	p.Close() // twice is harmless
	h.waitLost(r)
	if code, _ := p.Returncode(); code != -9 {
		t.Fatalf("returncode after close %d, want -9", code)
	}
	if !reaped(p.Pid()) {
		t.Fatal("not reaped")
	}
}

func TestSubprocessCloseInConnectionMade(t *testing.T) {
	h := newHarness(t)
	r := newSpRec(h)
	r.onMade = func(p *Subprocess) { p.Close() }
	h.spawn([]string{"sleep", "30"}, r, nil)
	h.waitLost(r)
	if len(r.pipeLost) != 3 || r.exited != 1 {
		t.Fatalf("log %v", r.log)
	}
}

// Children of a loop closed before they were reaped are reaped anyway.
func testNoZombieAfterLoopClose(t *testing.T) {
	h := newHarness(t)
	released := 0
	var pids []int
	var procs []*Subprocess
	devnull := Stdio{Mode: StdioDevNull}
	for i := 0; i < 4; i++ {
		r := newSpRec(h)
		o := &SubprocessOptions{OnRelease: func(*Subprocess) { released++ }}
		if i > 0 { // no pipes: nothing to wait for after Close
			o.Stdin, o.Stdout, o.Stderr = devnull, devnull, devnull
		}
		f, err := h.l.SubprocessExec([]string{"sleep", "30"}, r, o)
		if err != nil {
			t.Fatal(err)
		}
		v, err := h.await(f, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, v.(*Subprocess))
		pids = append(pids, v.(*Subprocess).Pid())
	}
	// The first one: let its pipes close (its exit may or may not be seen).
	procs[0].Close()
	h.runUntil("pipes closed", 5*time.Second, func() bool {
		return procs[0].PipeTransport(0) == nil && procs[0].PipeTransport(1) == nil && procs[0].PipeTransport(2) == nil
	})
	// The others: closed (killed) and the loop closed at once, before it
	// could see them exit.
	for _, p := range procs[1:] {
		p.Close()
		if p.exited {
			t.Fatal("exit seen without running the loop")
		}
	}
	if err := h.l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if released != len(procs) {
		t.Fatalf("released %d of %d at loop close", released, len(procs))
	}
	for _, pid := range pids {
		eventuallyReaped(t, pid)
	}
}

func TestSubprocessNoZombieAfterLoopClose(t *testing.T) { testNoZombieAfterLoopClose(t) }

func TestSubprocessNoZombieAfterLoopCloseNoPidfd(t *testing.T) {
	withoutPidfd(t)
	testNoZombieAfterLoopClose(t)
}

func TestSubprocessCancelledBeforeStart(t *testing.T) {
	h := newHarness(t)
	r := newSpRec(h)
	released := 0
	f, err := h.l.SubprocessExec([]string{"sleep", "30"}, r, &SubprocessOptions{OnRelease: func(*Subprocess) { released++ }})
	if err != nil {
		t.Fatal(err)
	}
	f.Cancel("")
	h.runUntil("release", 10*time.Second, func() bool { return released == 1 })
	if r.made != 0 || len(r.log) != 0 {
		t.Fatalf("protocol called for a cancelled spawn: %v", r.log)
	}
	if h.l.Alive() {
		t.Fatal("loop alive")
	}
	if len(h.l.procs) != 0 {
		t.Fatalf("%d subprocesses left", len(h.l.procs))
	}
}

func TestLookPath(t *testing.T) {
	p, err := LookPath("sh", []string{"PATH=/nonexistent:/bin:/usr/bin"})
	if err != nil || !strings.HasSuffix(p, "/sh") {
		t.Fatalf("LookPath(sh): %q %v", p, err)
	}
	if _, err := LookPath("sh", []string{"PATH=/nonexistent"}); err != unix.ENOENT {
		t.Fatalf("not in PATH: %v", err)
	}
	if p, _ := LookPath("./x", nil); p != "./x" {
		t.Fatalf("path with a slash changed: %q", p)
	}
}

// A child that exits without reading its stdin while data is still buffered
// breaks the pipe: pipe_connection_lost(0) gets EPIPE, as asyncio reports
// BrokenPipeError; with nothing left to write it is a clean close.
func TestSubprocessStdinBrokenPipe(t *testing.T) {
	h := newHarness(t)
	r := newSpRec(h)
	data := pattern(4<<20, 3) // before the spawn: the child must still be alive to refuse it
	p := h.spawn([]string{"sh", "-c", "sleep 0.5"}, r, &SubprocessOptions{Stdout: Stdio{Mode: StdioDevNull}, Stderr: Stdio{Mode: StdioDevNull}})
	if err := p.PipeTransport(0).Write(data); err != nil {
		t.Fatal(err)
	}
	h.waitLost(r)
	if err := r.pipeLost[0]; Errno(err) != unix.EPIPE {
		t.Fatalf("pipe_connection_lost(0, %v), want EPIPE", err)
	}

	r2 := newSpRec(h)
	h.spawn([]string{"true"}, r2, &SubprocessOptions{Stdout: Stdio{Mode: StdioDevNull}, Stderr: Stdio{Mode: StdioDevNull}})
	h.waitLost(r2)
	if err, ok := r2.pipeLost[0]; !ok || err != nil {
		t.Fatalf("stdin of a child that read nothing: pipe_connection_lost(0, %v) (reported %v), want nil", err, ok)
	}
}
