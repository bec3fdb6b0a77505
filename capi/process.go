package main

/*
#include "trampolines.h"

extern char **environ;

static inline char **al_environ(void) { return environ; }

static inline void al_call_signal_cb(uintptr_t cb, uintptr_t loop, int sig,
                                     uintptr_t ud) {
  ((aloop_signal_cb)cb)((aloop_loop_t *)loop, sig, (void *)ud);
}
static inline uintptr_t al_call_executor_fn(uintptr_t fn, uintptr_t arg) {
  return (uintptr_t)((aloop_executor_fn)fn)((void *)arg);
}
// Subprocess protocol callbacks.
static inline void al_sp_p(uintptr_t fn, uintptr_t p, uintptr_t ud) {
  ((void (*)(aloop_subprocess_t *, void *))fn)((aloop_subprocess_t *)p,
                                                (void *)ud);
}
static inline void al_sp_data(uintptr_t fn, uintptr_t p, int fd,
                              const char *data, size_t len, uintptr_t ud) {
  ((void (*)(aloop_subprocess_t *, int, const char *, size_t, void *))fn)(
      (aloop_subprocess_t *)p, fd, data, len, (void *)ud);
}
static inline void al_sp_fd_err(uintptr_t fn, uintptr_t p, int fd, int err,
                                uintptr_t ud) {
  ((void (*)(aloop_subprocess_t *, int, int, void *))fn)(
      (aloop_subprocess_t *)p, fd, err, (void *)ud);
}
static inline void al_sp_err(uintptr_t fn, uintptr_t p, int err,
                             uintptr_t ud) {
  ((void (*)(aloop_subprocess_t *, int, void *))fn)((aloop_subprocess_t *)p,
                                                     err, (void *)ud);
}
static inline uintptr_t al_sp_field(const aloop_subprocess_protocol_t *p,
                                    int i) {
  switch (i) {
#define F(n, f) case n: return AL_HAS_FIELD(p, aloop_subprocess_protocol_t, f) ? (uintptr_t)p->f : 0;
    F(0, connection_made) F(1, pipe_data_received) F(2, pipe_connection_lost)
    F(3, process_exited) F(4, connection_lost) F(5, pause_writing)
    F(6, resume_writing)
#undef F
  }
  return 0;
}
*/
import "C"

import (
	"syscall"
	"unsafe"

	"github.com/asyncloop/asyncloop/core"
)

// ---------------------------------------------------------------------------
// Subprocesses.

const (
	spConnectionMade = iota
	spPipeDataReceived
	spPipeConnectionLost
	spProcessExited
	spConnectionLost
	spPauseWriting
	spResumeWriting
	spCount
)

// procObj is a subprocess's C side: its protocol and its handle (registered
// when the subprocess is first handed to C, released with the subprocess).
type procObj struct {
	h  uintptr
	fn [spCount]C.uintptr_t
	hostData
}

func subprocessHandle(p *core.Subprocess) uintptr {
	p.Claim()
	po := p.Tag.(*procObj)
	if po.h == 0 {
		po.h = subprocesses.put(p)
	}
	return po.h
}

func getSubprocess(h C.uintptr_t) (*core.Subprocess, C.int) {
	return lookupT(subprocesses, h, "invalid or finished subprocess handle", (*core.Subprocess).Loop)
}

// cSubprocessProto adapts a C aloop_subprocess_protocol_t to core.
type cSubprocessProto struct{ po *procObj }

func (a cSubprocessProto) ph(p *core.Subprocess) C.uintptr_t {
	return C.uintptr_t(subprocessHandle(p))
}

func (a cSubprocessProto) ConnectionMade(p *core.Subprocess) {
	if f := a.po.fn[spConnectionMade]; f != 0 {
		C.al_sp_p(f, a.ph(p), a.po.ud)
	}
}

func (a cSubprocessProto) PipeDataReceived(p *core.Subprocess, fd int, data []byte) {
	if f := a.po.fn[spPipeDataReceived]; f != 0 && len(data) > 0 {
		C.al_sp_data(f, a.ph(p), C.int(fd), (*C.char)(unsafe.Pointer(&data[0])), C.size_t(len(data)), a.po.ud)
	}
}

func (a cSubprocessProto) PipeConnectionLost(p *core.Subprocess, fd int, err error) {
	if f := a.po.fn[spPipeConnectionLost]; f != 0 {
		C.al_sp_fd_err(f, a.ph(p), C.int(fd), errCode(err), a.po.ud)
	}
}

func (a cSubprocessProto) ProcessExited(p *core.Subprocess) {
	if f := a.po.fn[spProcessExited]; f != 0 {
		C.al_sp_p(f, a.ph(p), a.po.ud)
	}
}

func (a cSubprocessProto) ConnectionLost(p *core.Subprocess, err error) {
	if f := a.po.fn[spConnectionLost]; f != 0 {
		C.al_sp_err(f, a.ph(p), errCode(err), a.po.ud)
	}
}

func (a cSubprocessProto) PauseWriting(p *core.Subprocess) {
	if f := a.po.fn[spPauseWriting]; f != 0 {
		C.al_sp_p(f, a.ph(p), a.po.ud)
	}
}

func (a cSubprocessProto) ResumeWriting(p *core.Subprocess) {
	if f := a.po.fn[spResumeWriting]; f != 0 {
		C.al_sp_p(f, a.ph(p), a.po.ud)
	}
}

// cStrings reads a NULL-terminated array of C strings (at most max).
func cStrings(p **C.char, max int) ([]string, bool) {
	out := []string{}
	if p == nil {
		return out, true
	}
	for i := 0; ; i++ {
		if i >= max {
			return nil, false
		}
		s := *(**C.char)(unsafe.Add(unsafe.Pointer(p), uintptr(i)*unsafe.Sizeof(p)))
		if s == nil {
			return out, true
		}
		out = append(out, C.GoString(s))
	}
}

const maxStrings = 1 << 20

func subprocessOptions(o *C.aloop_subprocess_options_t) (core.SubprocessOptions, C.int) {
	var so core.SubprocessOptions
	if o != nil && o.size < C.size_t(unsafe.Sizeof(o.size)) {
		return so, fail(C.ALOOP_EINVAL, "options.size is not set")
	}
	sp := orEmpty(o)
	envp := field(sp, &sp.env, nil)
	if envp == nil {
		envp = C.al_environ()
	}
	env, ok := cStrings(envp, maxStrings)
	if !ok {
		return so, fail(C.ALOOP_EINVAL, "env has no NULL terminator within %d entries", maxStrings)
	}
	so.Env = env
	so.Dir = goString(field(sp, &sp.cwd, nil))
	modes := [3]C.int{
		field(sp, &sp.stdin_mode, C.ALOOP_STDIO_PIPE),
		field(sp, &sp.stdout_mode, C.ALOOP_STDIO_PIPE),
		field(sp, &sp.stderr_mode, C.ALOOP_STDIO_PIPE),
	}
	fds := [3]C.int{field(sp, &sp.stdin_fd, -1), field(sp, &sp.stdout_fd, -1), field(sp, &sp.stderr_fd, -1)}
	stdio := [3]*core.Stdio{&so.Stdin, &so.Stdout, &so.Stderr}
	for i, s := range stdio {
		mode := modes[i]
		switch mode {
		case C.ALOOP_STDIO_PIPE:
			s.Mode = core.StdioPipe
		case C.ALOOP_STDIO_DEVNULL:
			s.Mode = core.StdioDevNull
		case C.ALOOP_STDIO_INHERIT:
			s.Mode = core.StdioInherit
		case C.ALOOP_STDIO_FD:
			s.Mode = core.StdioFd
			s.Fd = int(fds[i])
			if s.Fd < 0 {
				return so, fail(C.ALOOP_EBADF, "ALOOP_STDIO_FD with fd %d for child fd %d", s.Fd, i)
			}
		case C.ALOOP_STDIO_STDOUT:
			if i != 2 {
				return so, fail(C.ALOOP_EINVAL, "only stderr can be ALOOP_STDIO_STDOUT")
			}
			s.Mode = core.StdioStdout
		default:
			return so, fail(C.ALOOP_EINVAL, "invalid stdio mode %d for child fd %d", int(mode), i)
		}
	}
	so.StartNewSession = field(sp, &sp.start_new_session, 0) != 0
	return so, 0
}

func spawnC(lo *loopObj, argv []string, proto *C.aloop_subprocess_protocol_t, o *ownedUD,
	opts *C.aloop_subprocess_options_t, out *C.uintptr_t) C.int {
	if proto == nil {
		o.release()
		return fail(C.ALOOP_EINVAL, "protocol is NULL")
	}
	if proto.size < C.size_t(unsafe.Sizeof(proto.size)) || proto.size > 4096 {
		o.release()
		return fail(C.ALOOP_EINVAL, "protocol.size is %d; set it to sizeof(aloop_subprocess_protocol_t)", int(proto.size))
	}
	so, rc := subprocessOptions(opts)
	if rc != 0 {
		o.release()
		return rc
	}
	po := &procObj{hostData: hostData{ud: o.ud, free: o.free}}
	for i := range po.fn {
		po.fn[i] = C.al_sp_field(proto, C.int(i))
	}
	so.Tag = po
	so.OnRelease = func(p *core.Subprocess) {
		if po.h == 0 {
			// Never handed to the host: give it a handle that is stale
			// from now on, so that aloop_future_result_subprocess read
			// later makes no new one that nothing would release.
			po.h = subprocesses.put(p)
		}
		subprocesses.del(po.h)
		po.release()
	}
	o.handOff() // po owns the userdata from here
	fut, err := lo.l.SubprocessExec(argv, cSubprocessProto{po}, &so)
	if err != nil {
		po.release()
		return failErr(err)
	}
	if fut.Done() {
		po.release() // the spawn failed: no callback will run
	}
	*out = C.uintptr_t(newFutureObj(fut).h)
	return 0
}

//export aloop_subprocess_exec
func aloop_subprocess_exec(loop C.uintptr_t, argv **C.char, proto *C.aloop_subprocess_protocol_t,
	ud, free C.uintptr_t, opts *C.aloop_subprocess_options_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	o := own(free, ud)
	defer o.onPanic()
	lo, rc := getLoopT(loop)
	if lo == nil {
		o.release()
		return rc
	}
	if out == nil {
		o.release()
		return fail(C.ALOOP_EINVAL, "out_future is NULL")
	}
	args, ok := cStrings(argv, maxStrings)
	if argv == nil || !ok || len(args) == 0 {
		o.release()
		return fail(C.ALOOP_EINVAL, "argv is NULL, empty or not NULL-terminated")
	}
	inject()
	return spawnC(lo, args, proto, o, opts, out)
}

//export aloop_subprocess_shell
func aloop_subprocess_shell(loop C.uintptr_t, cmd *C.char, proto *C.aloop_subprocess_protocol_t,
	ud, free C.uintptr_t, opts *C.aloop_subprocess_options_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	o := own(free, ud)
	defer o.onPanic()
	lo, rc := getLoopT(loop)
	if lo == nil {
		o.release()
		return rc
	}
	if out == nil || cmd == nil {
		o.release()
		return fail(C.ALOOP_EINVAL, "cmd or out_future is NULL")
	}
	inject()
	return spawnC(lo, []string{"/bin/sh", "-c", C.GoString(cmd)}, proto, o, opts, out)
}

//export aloop_future_result_subprocess
func aloop_future_result_subprocess(fut C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	fo, rc := getFuture(fut)
	if fo == nil {
		return rc
	}
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_proc is NULL")
	}
	inject()
	v, err := fo.f.Result()
	if err != nil {
		return failErr(err)
	}
	p, ok := v.(*core.Subprocess)
	if !ok {
		return fail(C.ALOOP_EINVAL, "the future's result is not a subprocess")
	}
	*out = C.uintptr_t(subprocessHandle(p))
	return 0
}

//export aloop_subprocess_get_pid
func aloop_subprocess_get_pid(proc C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(proc, getSubprocess, func(p *core.Subprocess) C.int { return C.int(p.Pid()) })
}

//export aloop_subprocess_get_returncode
func aloop_subprocess_get_returncode(proc C.uintptr_t, out *C.int) (rc C.int) {
	defer guard(&rc)
	p, rc := getSubprocess(proc)
	if p == nil {
		return rc
	}
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_returncode is NULL")
	}
	inject()
	code, ok := p.Returncode()
	if !ok {
		return 0
	}
	*out = C.int(code)
	return 1
}

//export aloop_subprocess_get_pipe_transport
func aloop_subprocess_get_pipe_transport(proc C.uintptr_t, fd C.int, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	p, rc := getSubprocess(proc)
	if p == nil {
		return rc
	}
	if out == nil || fd < 0 || fd > 2 {
		return fail(C.ALOOP_EINVAL, "out_transport is NULL or fd %d is not 0, 1 or 2", int(fd))
	}
	inject()
	*out = 0
	if t := p.PipeTransport(int(fd)); t != nil {
		*out = C.uintptr_t(transportHandle(t))
	}
	return 0
}

//export aloop_subprocess_send_signal
func aloop_subprocess_send_signal(proc C.uintptr_t, sig C.int) (rc C.int) {
	defer guard(&rc)
	return with(proc, getSubprocess, func(p *core.Subprocess) C.int { return failErrOrZero(p.SendSignal(int(sig))) })
}

//export aloop_subprocess_terminate
func aloop_subprocess_terminate(proc C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(proc, getSubprocess, func(p *core.Subprocess) C.int { return failErrOrZero(p.Terminate()) })
}

//export aloop_subprocess_kill
func aloop_subprocess_kill(proc C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(proc, getSubprocess, func(p *core.Subprocess) C.int { return failErrOrZero(p.Kill()) })
}

//export aloop_subprocess_close
func aloop_subprocess_close(proc C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(proc, getSubprocess, func(p *core.Subprocess) C.int { p.Close(); return 0 })
}

//export aloop_subprocess_is_closing
func aloop_subprocess_is_closing(proc C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(proc, getSubprocess, func(p *core.Subprocess) C.int { return boolRC(p.IsClosing()) })
}

// ---------------------------------------------------------------------------
// Unix signals.

//export aloop_add_signal_handler
func aloop_add_signal_handler(loop C.uintptr_t, sig C.int, cb, ud, free C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	o := own(free, ud)
	defer o.onPanic()
	lo, rc := getLoopT(loop)
	if lo == nil {
		o.release()
		return rc
	}
	if cb == 0 {
		o.release()
		return fail(C.ALOOP_EINVAL, "callback is NULL")
	}
	if !core.ValidSignal(int(sig)) {
		o.release()
		return fail(C.ALOOP_EINVAL, "signal %d cannot be handled", int(sig))
	}
	inject()
	lh := C.uintptr_t(lo.h)
	o.handOff()
	if sig == C.int(syscall.SIGURG) {
		urgTake() // capi/sigurg.go
		defer urgRelease()
	}
	err := lo.l.AddSignalHandler(int(sig), func(s int) { C.al_call_signal_cb(cb, lh, C.int(s), ud) }, releaser(free, ud))
	if err != nil {
		callFree(free, ud)
		return failErr(err)
	}
	return 0
}

//export aloop_remove_signal_handler
func aloop_remove_signal_handler(loop C.uintptr_t, sig C.int) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoopT, func(lo *loopObj) C.int {
		ok, err := lo.l.RemoveSignalHandler(int(sig))
		if sig == C.int(syscall.SIGURG) {
			urgRelease() // capi/sigurg.go
		}
		if err != nil {
			return fail(C.ALOOP_EINVAL, "signal %d cannot be handled", int(sig))
		}
		return boolRC(ok)
	})
}

// ---------------------------------------------------------------------------
// Executor.

//export aloop_run_in_executor
func aloop_run_in_executor(loop, fn, arg, free C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	o := own(free, arg)
	defer o.onPanic()
	lo, rc := getLoopT(loop)
	if lo == nil {
		o.release()
		return rc
	}
	if fn == 0 || out == nil {
		o.release()
		return fail(C.ALOOP_EINVAL, "fn or out_future is NULL")
	}
	inject()
	o.handOff()
	// The job calls the host's fn on a worker thread: that is the point of
	// an executor (documented in the header); it calls nothing else.
	f, err := lo.l.RunInExecutor(func() (any, error) {
		return hostResult(uintptr(C.al_call_executor_fn(fn, arg))), nil
	}, releaser(free, arg))
	if err != nil {
		callFree(free, arg)
		return failErr(err)
	}
	*out = C.uintptr_t(newFutureObj(f).h)
	return 0
}

//export aloop_loop_set_default_executor_size
func aloop_loop_set_default_executor_size(loop C.uintptr_t, n C.int) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoopT, func(lo *loopObj) C.int { return failErrOrZero(lo.l.SetDefaultExecutorSize(int(n))) })
}

//export aloop_loop_shutdown_default_executor
func aloop_loop_shutdown_default_executor(loop C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	lo, rc := loopForFuture(loop, out)
	if lo == nil {
		return rc
	}
	inject()
	f, err := lo.l.ShutdownDefaultExecutor()
	return putFuture(f, err, out)
}
