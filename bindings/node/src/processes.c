/*
 * processes.c - subprocesses (subprocess_exec / subprocess_shell, their pipe
 * transports) and Unix signal handlers.
 */
#include "addon.h"

/* ------------------------------------------------------------------------ */
/* The subprocess protocol                                                   */
/* ------------------------------------------------------------------------ */

ALN_COMMON_CALLBACKS(sp, aloop_subprocess_t)

static void sp_pipe_data(aloop_subprocess_t *p, int fd, const char *data, size_t len,
                         void *ud) {
  (void)p;
  obj_state *o = ud;
  napi_handle_scope hs;
  if (!obj_enter(o, &hs)) return;
  napi_value args[2] = {js_int(o->ls->env, fd), js_buffer_copy(o->ls->env, data, len)};
  if (args[1]) obj_call(o, D_PIPE_DATA, 2, args);
  obj_leave(o, hs);
}

static void sp_pipe_lost(aloop_subprocess_t *p, int fd, int error, void *ud) {
  (void)p;
  obj_state *o = ud;
  napi_env env = o->ls->env;
  napi_handle_scope hs;
  if (!obj_enter(o, &hs)) return;
  napi_value args[2] = {js_int(env, fd), error ? aln_error(env, error, NULL) : js_null(env)};
  obj_call(o, D_PIPE_LOST, 2, args);
  obj_leave(o, hs);
}

static void sp_process_exited(aloop_subprocess_t *p, void *ud) {
  (void)p;
  obj_event(ud, D_PROCESS_EXITED);
}

static const aloop_subprocess_protocol_t sp_protocol = {
    sizeof(aloop_subprocess_protocol_t), sp_connection_made, sp_pipe_data,
    sp_pipe_lost, sp_process_exited, sp_connection_lost, sp_pause_writing,
    sp_resume_writing};

/* ------------------------------------------------------------------------ */
/* Spawning                                                                  */
/* ------------------------------------------------------------------------ */

/* options: {env: ["NAME=value"], cwd, stdin, stdout, stderr (aloop_stdio_t),
 *           stdinFd, stdoutFd, stderrFd, startNewSession} */
static int spawn_options(napi_env env, napi_value o, aloop_subprocess_options_t *opts,
                         char ***envp, char **cwd) {
  napi_value v;
  memset(opts, 0, sizeof *opts);
  opts->size = sizeof *opts;
  *envp = NULL;
  *cwd = NULL;
  if (!opt_int(env, o, "stdin", &opts->stdin_mode, ALOOP_STDIO_PIPE) ||
      !opt_int(env, o, "stdout", &opts->stdout_mode, ALOOP_STDIO_PIPE) ||
      !opt_int(env, o, "stderr", &opts->stderr_mode, ALOOP_STDIO_PIPE) ||
      !opt_int(env, o, "stdinFd", &opts->stdin_fd, -1) ||
      !opt_int(env, o, "stdoutFd", &opts->stdout_fd, -1) ||
      !opt_int(env, o, "stderrFd", &opts->stderr_fd, -1))
    return 0;
  opts->start_new_session = opt_flag(env, o, "startNewSession") > 0;
  if (opt_get(env, o, "env", &v) && !arg_string_array(env, v, envp, "env must be strings"))
    return 0;
  if (!opt_string(env, o, "cwd", cwd)) {
    free_string_array(*envp);
    *envp = NULL;
    return 0;
  }
  opts->env = (const char *const *)*envp;
  opts->cwd = *cwd;
  return 1;
}

/* subprocessExec(loop, proc, [file, ...args], options, cancellable) and
 * subprocessShell(loop, proc, cmd, options, cancellable) -> Promise<proc> */
static napi_value spawn(napi_env env, napi_callback_info info, int shell) {
  napi_value argv[5];
  char **args = NULL, *cmd = NULL, **envp = NULL, *cwd = NULL;
  aloop_subprocess_options_t opts;
  get_args(env, info, 5, argv);
  GET_LOOP(argv[0]);
  if (shell ? !arg_string(env, argv[2], &cmd, "cmd must be a string")
            : !arg_string_array(env, argv[2], &args, "args must be strings"))
    return NULL;
  int rc = 0;
  aloop_future_t *fut = NULL;
  obj_state *p = NULL;
  if (spawn_options(env, argv[3], &opts, &envp, &cwd) &&
      (p = obj_create(env, ls, K_SUBPROCESS, argv[1], "expected a fresh SubprocessTransport"))) {
    obj_lib_ref(p);
    rc = shell ? A.aloop_subprocess_shell(ls->loop, cmd, &sp_protocol, p, obj_free_cb, &opts, &fut)
               : A.aloop_subprocess_exec(ls->loop, (const char *const *)args, &sp_protocol, p,
                                         obj_free_cb, &opts, &fut);
  }
  free(cmd);
  free_string_array(args);
  free_string_array(envp);
  free(cwd);
  if (p == NULL) return NULL;
  return op_result(env, rc, ls, OP_OBJECT, p, fut, NULL, argv[4]);
}
static napi_value x_subprocess_exec(napi_env env, napi_callback_info info) {
  return spawn(env, info, 0);
}
static napi_value x_subprocess_shell(napi_env env, napi_callback_info info) {
  return spawn(env, info, 1);
}

/* ------------------------------------------------------------------------ */
/* The subprocess transport                                                  */
/* ------------------------------------------------------------------------ */

#define GET_PROC(argv0) GET_OBJ(p, argv0, K_SUBPROCESS, "expected a SubprocessTransport")

static napi_value x_subprocess_pid(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_PROC(argv[0]);
  int rc = A.aloop_subprocess_get_pid(p->h);
  if (rc < 0) return obj_throw(env, p, rc);
  return js_int(env, rc);
}

/* subprocessReturncode(proc) -> number | null */
static napi_value x_subprocess_returncode(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int code = 0;
  get_args(env, info, 1, argv);
  GET_PROC(argv[0]);
  int rc = A.aloop_subprocess_get_returncode(p->h, &code);
  if (rc < 0) return obj_throw(env, p, rc);
  return rc ? js_int(env, code) : js_null(env);
}

/* subprocessSendSignal(proc, signum) */
static napi_value x_subprocess_send_signal(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int sig;
  get_args(env, info, 2, argv);
  GET_PROC(argv[0]);
  if (!arg_int(env, argv[1], &sig, "signal must be a number")) return NULL;
  int rc = A.aloop_subprocess_send_signal(p->h, sig);
  if (rc < 0) return obj_throw(env, p, rc);
  ls_touch(p->ls);
  return undefined(env);
}

static napi_value x_subprocess_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_PROC(argv[0]);
  if (p->h == NULL || p->lost) return undefined(env);
  int rc = A.aloop_subprocess_close(p->h);
  if (rc < 0) return obj_throw(env, p, rc);
  ls_touch(p->ls);
  return undefined(env);
}

static napi_value x_subprocess_is_closing(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_PROC(argv[0]);
  if (p->h == NULL) return js_bool(env, p->lost);
  int rc = A.aloop_subprocess_is_closing(p->h);
  if (rc < 0) return obj_throw(env, p, rc);
  return js_bool(env, rc);
}

static void pipe_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  pipe_state *ps = data;
  ps->tag = 0;
  obj_release(ps->proc);
  free(ps);
}

/* subprocessPipe(proc, fd, pipeObject) -> true when fd has an open pipe:
 * then pipeObject is wrapped as that pipe's transport (transport* exports
 * take it). */
static napi_value x_subprocess_pipe(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int fd;
  aloop_transport_t *t = NULL;
  get_args(env, info, 3, argv);
  GET_PROC(argv[0]);
  if (!arg_int(env, argv[1], &fd, "fd must be a number")) return NULL;
  if (p->h == NULL) return js_bool(env, 0);
  int rc = A.aloop_subprocess_get_pipe_transport(p->h, fd, &t);
  if (rc < 0) return obj_throw(env, p, rc);
  if (t == NULL) return js_bool(env, 0);
  pipe_state *ps = aln_alloc(env, sizeof *ps);
  if (ps == NULL) return NULL;
  ps->tag = TAG_PIPE;
  ps->proc = p;
  ps->fd = fd;
  if (napi_wrap(env, argv[2], ps, pipe_finalize, NULL, NULL) != napi_ok) {
    free(ps);
    return throw_type(env, "expected a fresh object");
  }
  p->refs++;
  return js_bool(env, 1);
}

/* ------------------------------------------------------------------------ */
/* Signals                                                                   */
/* ------------------------------------------------------------------------ */

static void tr_signal(aloop_loop_t *loop, int signum, void *ud) {
  (void)loop;
  (void)ud;
  ls_dispatch(tls_current, D_SIGNAL, signum, NULL);
}

/* addSignalHandler(loop, signum) */
static napi_value x_add_signal_handler(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int sig;
  get_args(env, info, 2, argv);
  GET_LOOP(argv[0]);
  if (!arg_int(env, argv[1], &sig, "signal must be a number")) return NULL;
  int rc = A.aloop_add_signal_handler(ls->loop, sig, tr_signal, NULL, NULL);
  if (rc < 0) return throw_rc(env, rc);
  ls_touch(ls);
  return undefined(env);
}

/* removeSignalHandler(loop, signum) -> removed */
static napi_value x_remove_signal_handler(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int sig;
  get_args(env, info, 2, argv);
  GET_LOOP(argv[0]);
  if (!arg_int(env, argv[1], &sig, "signal must be a number")) return NULL;
  int rc = A.aloop_remove_signal_handler(ls->loop, sig);
  if (rc < 0) return throw_rc(env, rc);
  ls_touch(ls);
  return js_bool(env, rc);
}

const napi_property_descriptor aln_process_exports[] = {
    EXPORT("subprocessExec", x_subprocess_exec),
    EXPORT("subprocessShell", x_subprocess_shell),
    EXPORT("subprocessPid", x_subprocess_pid),
    EXPORT("subprocessReturncode", x_subprocess_returncode),
    EXPORT("subprocessSendSignal", x_subprocess_send_signal),
    EXPORT("subprocessClose", x_subprocess_close),
    EXPORT("subprocessIsClosing", x_subprocess_is_closing),
    EXPORT("subprocessPipe", x_subprocess_pipe),
    EXPORT("addSignalHandler", x_add_signal_handler),
    EXPORT("removeSignalHandler", x_remove_signal_handler),
};
const size_t aln_process_nexports = COUNT_OF(aln_process_exports);
