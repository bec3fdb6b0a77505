/*
 * loop.c - a library loop driven from Node's libuv loop; scheduling, fd
 * watchers, the exception handler; calling into JS.
 *
 * Driving: each loop owns a uv_poll_t on aloop_loop_backend_fd() and a
 * uv_timer_t armed from aloop_loop_backend_timeout(); when either fires we
 * run aloop_loop_run(loop, ALOOP_RUN_NOWAIT) inside an N-API callback scope
 * (so process.nextTick and Promise jobs run when it closes), then re-arm,
 * and ref/unref both handles according to aloop_loop_alive(): Node exits by
 * itself when no asyncloop handle is live. The JS thread never blocks.
 *
 * Callbacks out: the library calls our C trampolines on the JS thread inside
 * aloop_loop_run; they call one of the JS dispatch functions registered at
 * load (index.js). A JS exception is caught here (it never unwinds through
 * C or Go) and, once aloop_loop_run has returned, reported with
 * napi_fatal_exception(): exactly like an exception thrown in a setTimeout
 * callback ('uncaughtException', else the process exits with code 1).
 */
#include "addon.h"


__thread loop_state *tls_current;

/* ------------------------------------------------------------------------ */
/* Calling into JS                                                           */
/* ------------------------------------------------------------------------ */

static void ls_report(loop_state *ls, napi_value exc) {
  if (ls->npending == ls->cappending) {
    size_t cap = ls->cappending ? ls->cappending * 2 : 4;
    napi_ref *p = realloc(ls->pending, cap * sizeof *p);
    if (p == NULL) { /* cannot defer: report now */
      napi_fatal_exception(ls->env, exc);
      return;
    }
    ls->pending = p;
    ls->cappending = cap;
  }
  napi_create_reference(ls->env, exc, 1, &ls->pending[ls->npending++]);
}

/* Reports the exceptions collected during a run as uncaught exceptions. If
 * throw_first, the first one is thrown to the JS caller instead. */
static void ls_flush_exceptions(loop_state *ls, int throw_first) {
  napi_env env = ls->env;
  for (size_t i = 0; i < ls->npending; i++) {
    napi_value v = ref_value(env, ls->pending[i]);
    napi_delete_reference(env, ls->pending[i]);
    if (v == NULL || ls->mod->dead) continue;
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (throw_first && i == 0 && !pending)
      napi_throw(env, v);
    else
      napi_fatal_exception(env, v);
  }
  ls->npending = 0;
}

/* Calls dispatch function `which`; returns its result or NULL when it threw
 * (the exception is collected for ls_flush_exceptions). */
napi_value ls_call(loop_state *ls, int which, size_t argc, napi_value *argv) {
  napi_env env = ls->env;
  napi_value fn = ref_value(env, ls->mod->fns[which]), res = NULL;
  if (fn == NULL) return NULL;
  napi_status st = napi_call_function(env, undefined(env), fn, argc, argv, &res);
  if (st != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      ls_report(ls, exc);
    }
    return NULL;
  }
  return res;
}

int ls_can_call(loop_state *ls) {
  return ls != NULL && !ls->mod->dead;
}

/* ------------------------------------------------------------------------ */
/* Driving                                                                   */
/* ------------------------------------------------------------------------ */

/* alive: the loop keeps Node up (its uv handles are ref'd); keep (>= alive):
 * the JS Loop is kept from garbage collection, also while only unref'd
 * objects or timers are left (they still run while something else keeps
 * the process up). */
static void ls_set_alive(loop_state *ls, int alive, int keep) {
  if (!ls->uv_open) return;
  if (alive) {
    uv_ref((uv_handle_t *)&ls->poll);
    uv_ref((uv_handle_t *)&ls->timer);
  } else {
    uv_unref((uv_handle_t *)&ls->poll);
    uv_unref((uv_handle_t *)&ls->timer);
  }
  keep = keep || alive;
  if (keep != ls->alive && !ls->mod->dead) {
    uint32_t n;
    if (keep)
      napi_reference_ref(ls->env, ls->self, &n);
    else
      napi_reference_unref(ls->env, ls->self, &n);
    ls->alive = keep;
  }
}

static void on_timer(uv_timer_t *t);

/* Re-arms the timer from backend_timeout and refs/unrefs from alive. */
static void ls_update(loop_state *ls) {
  if (!ls->uv_open || ls->closed) return;
  int ms = -1;
  if (A.aloop_loop_backend_timeout(ls->loop, &ms) < 0) ms = -1;
  /* Exceptions thrown by callbacks that ran inside a call from JS
   * (pause_writing inside write()) are reported by the next ls_drive. */
  if (ls->npending) ms = 0;
  if (ms >= 0) {
    uv_timer_start(&ls->timer, on_timer, (uint64_t)ms, 0);
    ls->zero_armed = (ms == 0);
  } else {
    uv_timer_stop(&ls->timer);
    ls->zero_armed = 0;
  }
  int work = A.aloop_loop_alive(ls->loop) > 0;
  int alive = work;
  /* Unref'd objects or timers: alive only with other work (refd objects,
   * operations, fd watchers, refd timers or ready callbacks). Without
   * unref'd timers any timer counts (ms >= 0 also covers the library's own
   * timers); with them, a due one (ms == 0) or a refd one of ours. */
  if (alive && (ls->nunref > 0 || ls->nunref_timers > 0)) {
    int timers = ls->nunref_timers > 0 ? ms == 0 || ls->ntimers > ls->nunref_timers : ms >= 0;
    alive = ls->nlive > ls->nunref || ls->nops > 0 || ls->watchers > 0 || timers;
  }
  ls_set_alive(ls, ls->npending || ls->holds > 0 || alive, work);
}

/* After a call from JS that may have changed the loop's work. Inside a run
 * the re-arm after aloop_loop_run covers it. */
void ls_touch(loop_state *ls) {
  if (ls->running == 0) ls_update(ls);
}

/* The loop has a ready callback now (call_soon from JS). */
static void ls_touch_ready(loop_state *ls) {
  if (ls->running == 0 && ls->uv_open && !ls->zero_armed) {
    uv_timer_start(&ls->timer, on_timer, 0, 0);
    ls->zero_armed = 1;
    ls_set_alive(ls, 1, 1);
  }
}

static int ls_run_nowait(loop_state *ls) {
  loop_state *prev = tls_current;
  tls_current = ls;
  ls->running++;
  int rc = A.aloop_loop_run(ls->loop, ALOOP_RUN_NOWAIT);
  ls->running--;
  tls_current = prev;
  return rc;
}

/* A uv callback: run one non-blocking iteration inside a callback scope. */
static void ls_drive(loop_state *ls) {
  if (ls->closed || ls->mod->dead || ls->running) return;
  napi_env env = ls->env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  napi_value resource = ref_value(env, ls->self);
  if (resource == NULL) napi_create_object(env, &resource);
  napi_callback_scope cs = NULL;
  napi_open_callback_scope(env, resource, ls->actx, &cs);
  ls_run_nowait(ls);
  ls_flush_exceptions(ls, 0);
  ls_update(ls);
  if (cs) napi_close_callback_scope(env, cs); /* runs ticks and microtasks */
  napi_close_handle_scope(env, hs);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  ls_drive((loop_state *)p->data);
}

static void on_timer(uv_timer_t *t) {
  loop_state *ls = (loop_state *)t->data;
  ls->zero_armed = 0;
  ls_drive(ls);
}

static void on_uv_closed(uv_handle_t *h) {
  loop_state *ls = (loop_state *)h->data;
  if (--ls->uv_closing > 0) return;
  if (ls->cleanup) {
    napi_async_cleanup_hook_handle c = ls->cleanup;
    ls->cleanup = NULL;
    napi_remove_async_cleanup_hook(c);
  }
  ls_release(ls);
}

static void ls_close_uv(loop_state *ls) {
  if (!ls->uv_open) return;
  ls->uv_open = 0;
  ls->uv_closing = 2;
  uv_close((uv_handle_t *)&ls->poll, on_uv_closed);
  uv_close((uv_handle_t *)&ls->timer, on_uv_closed);
}

/* ------------------------------------------------------------------------ */
/* Shutdown and release                                                      */
/* ------------------------------------------------------------------------ */

static void quiet_exception(aloop_loop_t *loop, const aloop_exception_context_t *ctx,
                            void *ud) {
  (void)loop;
  (void)ctx;
  (void)ud;
}

/* Closes every server and aborts every other object of the loop (their
 * connection_lost callbacks follow on the next iterations). */
void ls_abort_all(loop_state *ls) {
  for (obj_state *o = ls->objects; o; o = o->next) obj_abort(o);
}

/* The env is going away: no JS runs any more. Release the library's loop
 * (a Worker may end while the process goes on): aloop_loop_close_force
 * closes every server, transport, endpoint, subprocess, fd watcher and
 * pending operation at once, runs no callback and every free_cb (the
 * objects' states are released through them), then the loop is freed. */
static void ls_shutdown(loop_state *ls) {
  ls->mod->dead = 1;
  if (ls->closed || ls->freed || ls->running) return;
  /* nobody can read reports now */
  A.aloop_loop_set_exception_handler(ls->loop, quiet_exception, NULL, NULL);
  A.aloop_loop_close_force(ls->loop);
  for (obj_state *o = ls->objects, *next; o; o = next) {
    next = o->next; /* the free_cb may release o */
    if (o->kind == K_SERVER && o->h) {
      aloop_server_t *s = o->h;
      o->h = NULL;
      A.aloop_server_free(s);
    }
  }
  if (A.aloop_loop_free(ls->loop) == 0) ls->freed = 1;
  ls->closed = 1;
}

/* The env is going away (process exit or worker termination). */
static void ls_async_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  loop_state *ls = arg;
  ls_shutdown(ls);
  if (ls->uv_open) {
    ls_close_uv(ls); /* on_uv_closed removes the hook */
  } else if (ls->cleanup) {
    ls->cleanup = NULL;
    napi_remove_async_cleanup_hook(handle);
  }
}

static void ls_unlink(loop_state *ls) {
  loop_state **pp = &ls->mod->loops;
  while (*pp && *pp != ls) pp = &(*pp)->next;
  if (*pp) *pp = ls->next;
}

void ls_release(loop_state *ls) {
  if (--ls->refs > 0) return;
  ls_unlink(ls);
  free(ls->pending);
  free(ls);
}

static void ls_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  loop_state *ls = data;
  if (!ls->mod->dead) {
    if (!ls->freed) {
      /* Collected with objects still open on it (fd watchers, objects the
       * JS side dropped): all of them go at once, no callback runs (no JS
       * may run in a finalizer), every free_cb runs; then the loop can be
       * freed (it leaked before: aloop_loop_free refused a busy loop). */
      ls->freed = 1;
      A.aloop_loop_close_force(ls->loop);
      A.aloop_loop_free(ls->loop);
    }
    napi_delete_reference(env, ls->self);
    napi_async_destroy(env, ls->actx);
  }
  ls->self = NULL;
  ls_close_uv(ls);
  ls_release(ls);
}

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                 */
/* ------------------------------------------------------------------------ */

void call_callback(loop_state *ls, void *ud, napi_value arg) {
  napi_env env = ls->env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  napi_value argv[3] = {ref_value(env, ls->self), NULL, arg};
  napi_create_double(env, (double)(uintptr_t)ud, &argv[1]);
  if (argv[0]) ls_call(ls, D_CALLBACK, arg ? 3 : 2, argv);
  napi_close_handle_scope(env, hs);
}

static void tr_callback(aloop_loop_t *loop, void *ud) {
  (void)loop;
  loop_state *ls = tls_current;
  if (ls_can_call(ls)) call_callback(ls, ud, NULL);
}

/* A timer of callLater / callAt: it no longer counts once it ran. */
static void tr_timer(aloop_loop_t *loop, void *ud) {
  loop_state *ls = tls_current;
  if (ls != NULL && ls->loop == loop && ls->ntimers > 0) ls->ntimers--;
  tr_callback(loop, ud);
}

void tr_future_callback(aloop_future_t *f, void *ud);
void tr_future_callback(aloop_future_t *f, void *ud) {
  (void)f;
  loop_state *ls = tls_current;
  if (ls_can_call(ls)) call_callback(ls, ud, NULL);
}

/* Calls dispatch `which` with (the JS Loop, a[, b]) from a library
 * callback of the running loop ls (b, if any, lives in the iteration's
 * handle scope, opened by ls_drive). */
void ls_dispatch(loop_state *ls, int which, int64_t a, napi_value b) {
  if (!ls_can_call(ls)) return;
  napi_env env = ls->env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  napi_value argv[3] = {ref_value(env, ls->self), js_int(env, a), b};
  if (argv[0]) ls_call(ls, which, b ? 3 : 2, argv);
  napi_close_handle_scope(env, hs);
}

static void tr_fd(aloop_loop_t *loop, int fd, void *ud) {
  (void)loop;
  loop_state *ls = tls_current;
  if (ls_can_call(ls)) ls_dispatch(ls, D_FD, fd, js_bool(ls->env, ud != NULL));
}

/* The JS value of the object a context names, if we know it. */
static void set_context_object(napi_env env, loop_state *ls, napi_value o,
                               const char *key, int kind, const void *h) {
  obj_state *obj = h ? obj_find(ls, kind, h) : NULL;
  napi_value v = obj ? ref_value(env, obj->self) : NULL;
  if (v) napi_set_named_property(env, o, key, v);
}

static void tr_exception(aloop_loop_t *loop, const aloop_exception_context_t *ctx,
                         void *ud) {
  (void)loop;
  loop_state *ls = ud;
  if (!ls_can_call(ls)) return;
  napi_env env = ls->env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "message",
                          js_str(env, ctx->message ? ctx->message : ""));
  napi_set_named_property(env, o, "exception",
                          ctx->error ? aln_error(env, ctx->error, ctx->error_detail)
                                     : js_null(env));
  if (ctx->transport) {
    napi_value t = transport_value(env, ls, ctx->transport);
    if (t) napi_set_named_property(env, o, "transport", t);
  }
  set_context_object(env, ls, o, "server", K_SERVER, ctx->server);
  if (ctx->size >= offsetof(aloop_exception_context_t, subprocess) + sizeof(void *)) {
    set_context_object(env, ls, o, "transport", K_DATAGRAM, ctx->datagram);
    set_context_object(env, ls, o, "transport", K_SUBPROCESS, ctx->subprocess);
  }
  napi_value argv[2] = {ref_value(env, ls->self), o};
  if (argv[0]) ls_call(ls, D_EXCEPTION, 2, argv);
  napi_close_handle_scope(env, hs);
}

/* ------------------------------------------------------------------------ */
/* Exports: loop                                                             */
/* ------------------------------------------------------------------------ */

/* loopNew(loopObject) */
static napi_value x_loop_new(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  mod_state *m = get_mod(env);
  if (!require_loaded(env)) return NULL;
  if (!m->loaded) {
    napi_throw_error(env, "ERR_ASYNCLOOP_LOAD", "asyncloop: load() first");
    return NULL;
  }
  napi_valuetype t;
  napi_typeof(env, argv[0], &t);
  if (t != napi_object) return throw_type(env, "expected an object");
  uv_loop_t *uvl = NULL;
  if (napi_get_uv_event_loop(env, &uvl) != napi_ok || uvl == NULL)
    return throw_code(env, ALOOP_ESTATE, "no libuv loop");
  loop_state *ls = aln_alloc(env, sizeof *ls);
  if (ls == NULL) return NULL;
  ls->tag = TAG_LOOP;
  ls->mod = m;
  ls->env = env;
  int rc = A.aloop_loop_new(&ls->loop);
  if (rc < 0) {
    free(ls);
    return throw_rc(env, rc);
  }
  int fd = A.aloop_loop_backend_fd(ls->loop);
  if (fd < 0 || uv_poll_init(uvl, &ls->poll, fd) != 0) {
    A.aloop_loop_free(ls->loop);
    free(ls);
    return throw_rc(env, fd < 0 ? fd : ALOOP_EIO);
  }
  uv_timer_init(uvl, &ls->timer);
  ls->poll.data = ls;
  ls->timer.data = ls;
  ls->uv_open = 1;
  uv_poll_start(&ls->poll, UV_READABLE, on_poll);
  uv_unref((uv_handle_t *)&ls->poll);
  uv_unref((uv_handle_t *)&ls->timer);
  ls->refs = 2; /* the JS wrapper and the uv handles */
  if (napi_wrap(env, argv[0], ls, ls_finalize, NULL, NULL) != napi_ok) {
    A.aloop_loop_free(ls->loop);
    ls->freed = 1;
    ls->refs = 1; /* only the uv handles now */
    ls_close_uv(ls);
    return throw_type(env, "the object already wraps a native value");
  }
  napi_create_reference(env, argv[0], 0, &ls->self);
  napi_async_init(env, argv[0], js_str(env, "asyncloop.Loop"), &ls->actx);
  napi_add_async_cleanup_hook(env, ls_async_cleanup, ls, &ls->cleanup);
  ls->next = m->loops;
  m->loops = ls;
  return undefined(env);
}

static napi_value x_loop_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_LOOP(argv[0]);
  if (ls->closed) return undefined(env);
  int rc = A.aloop_loop_close(ls->loop);
  if (rc < 0) {
    /* close reported what is still open to the exception handler; if a JS
     * handler threw, the next iteration reports it */
    char buf[512];
    int n = A.aloop_last_error(buf, sizeof buf);
    napi_value err = aln_error(env, rc, n > 0 ? buf : NULL);
    ls_touch(ls);
    napi_throw(env, err);
    return NULL;
  }
  ls->closed = 1;
  ls_set_alive(ls, 0, 0);
  ls_close_uv(ls);
  return undefined(env);
}

static napi_value x_loop_is_closed(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_LOOP(argv[0]);
  if (ls->closed) return js_bool(env, 1);
  int rc = A.aloop_loop_is_closed(ls->loop);
  if (rc < 0) return throw_rc(env, rc);
  return js_bool(env, rc);
}

/* loopHandle(loop) -> the aloop_loop_t * as a BigInt (docs/interop.md). */
static napi_value x_loop_handle(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_LOOP(argv[0]);
  if (ls->closed) return throw_code(env, ALOOP_ECLOSED, "the loop is closed");
  return make_handle(env, ls->loop);
}

/* loopWakeup(loop): foreign code changed the loop's work (timers, ready
 * callbacks) outside the loop's callbacks: re-read its next deadline. */
static napi_value x_loop_wakeup(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_LOOP(argv[0]);
  if (!ls->closed) ls_touch(ls);
  return undefined(env);
}

static napi_value x_loop_is_running(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_LOOP(argv[0]);
  int rc = A.aloop_loop_is_running(ls->loop);
  if (rc < 0) return throw_rc(env, rc);
  return js_bool(env, rc);
}

static napi_value x_loop_alive(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_LOOP(argv[0]);
  int rc = A.aloop_loop_alive(ls->loop);
  if (rc < 0) return throw_rc(env, rc);
  return js_bool(env, rc);
}

static napi_value x_loop_time(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  double t;
  get_args(env, info, 1, argv);
  GET_LOOP(argv[0]);
  int rc = A.aloop_loop_time(ls->loop, &t);
  if (rc < 0) return throw_rc(env, rc);
  return js_double(env, t);
}

static napi_value x_loop_set_debug(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  get_args(env, info, 2, argv);
  GET_LOOP(argv[0]);
  int rc = A.aloop_loop_set_debug(ls->loop, arg_bool(env, argv[1]));
  if (rc < 0) return throw_rc(env, rc);
  return undefined(env);
}

static napi_value x_loop_get_debug(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_LOOP(argv[0]);
  int rc = A.aloop_loop_get_debug(ls->loop);
  if (rc < 0) return throw_rc(env, rc);
  return js_bool(env, rc);
}

/* loopSlowCallbackDuration(loop[, seconds]) -> seconds */
static napi_value x_loop_slow_callback_duration(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  double s;
  get_args(env, info, 2, argv);
  GET_LOOP(argv[0]);
  if (!is_nullish(env, argv[1])) {
    if (!arg_double(env, argv[1], &s, "duration must be a number")) return NULL;
    int rc = A.aloop_loop_set_slow_callback_duration(ls->loop, s);
    if (rc < 0) return throw_rc(env, rc);
  }
  int rc = A.aloop_loop_get_slow_callback_duration(ls->loop, &s);
  if (rc < 0) return throw_rc(env, rc);
  return js_double(env, s);
}

/* abortAll(loop): close every server, abort every other object (tests clean
 * up with it after a failure). */
static napi_value x_loop_abort_all(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_LOOP(argv[0]);
  if (!ls->closed) ls_abort_all(ls);
  ls_touch(ls);
  return undefined(env);
}

/* loopHold(loop, delta): a wait of the JS layer that the library does not
 * count as work (SubprocessTransport.wait() after close(): the child's exit
 * is still to come) keeps the process alive while the count is above 0. */
static napi_value x_loop_hold(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int delta;
  get_args(env, info, 2, argv);
  GET_LOOP(argv[0]);
  if (!arg_int(env, argv[1], &delta, "delta must be a number")) return NULL;
  ls->holds += delta;
  if (ls->holds < 0) ls->holds = 0;
  ls_touch(ls);
  return undefined(env);
}

/* timerUnref(loop, delta): the number of unref'd timers (TimerHandle.unref()
 * not undone by ref(), not run nor cancelled) changes by delta. */
static napi_value x_timer_unref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int delta;
  get_args(env, info, 2, argv);
  GET_LOOP(argv[0]);
  if (!arg_int(env, argv[1], &delta, "delta must be a number")) return NULL;
  ls->nunref_timers += delta;
  if (ls->nunref_timers < 0) ls->nunref_timers = 0;
  ls_touch(ls);
  return undefined(env);
}

/* runNowait(loop): one non-blocking iteration from JS (tests, benchmarks).
 * The first exception a callback threw is rethrown here. */
static napi_value x_loop_run_nowait(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_LOOP(argv[0]);
  if (ls->running) return throw_code(env, ALOOP_EBUSY, "the loop is already running");
  int rc = ls_run_nowait(ls);
  ls_update(ls);
  if (ls->npending) {
    ls_flush_exceptions(ls, 1);
    return NULL;
  }
  if (rc < 0) return throw_rc(env, rc);
  return undefined(env);
}

/* runningLoop() -> the Loop whose callbacks run now (inside its
 * aloop_loop_run), or undefined. Promise jobs run after the iteration (when
 * its callback scope closes): there no loop runs. */
static napi_value x_running_loop(napi_env env, napi_callback_info info) {
  (void)info;
  loop_state *ls = tls_current;
  napi_value v = (ls && ls->env == env) ? ref_value(env, ls->self) : NULL;
  return v ? v : undefined(env);
}

/* ------------------------------------------------------------------------ */
/* Exports: scheduling                                                       */
/* ------------------------------------------------------------------------ */

/* callSoon(loop, id) -> handle (bigint) */
static napi_value call_soon(napi_env env, napi_callback_info info, int threadsafe) {
  napi_value argv[2];
  void *id;
  aloop_handle_t *h = NULL;
  get_args(env, info, 2, argv);
  GET_LOOP(argv[0]);
  if (!arg_id(env, argv[1], &id)) return NULL;
  int rc = threadsafe ? A.aloop_call_soon_threadsafe(ls->loop, tr_callback, id, NULL, &h)
                      : A.aloop_call_soon(ls->loop, tr_callback, id, NULL, &h);
  if (rc < 0) return throw_rc(env, rc);
  ls_touch_ready(ls);
  return make_handle(env, h);
}
static napi_value x_call_soon(napi_env env, napi_callback_info info) {
  return call_soon(env, info, 0);
}
static napi_value x_call_soon_threadsafe(napi_env env, napi_callback_info info) {
  return call_soon(env, info, 1);
}

/* callLater(loop, delay, id) / callAt(loop, when, id) -> handle; seconds */
static napi_value call_timer(napi_env env, napi_callback_info info, int at) {
  napi_value argv[3];
  void *id;
  double t;
  aloop_handle_t *h = NULL;
  get_args(env, info, 3, argv);
  GET_LOOP(argv[0]);
  if (!arg_double(env, argv[1], &t, at ? "when must be a number" : "delay must be a number") ||
      !arg_id(env, argv[2], &id))
    return NULL;
  if (t != t) return throw_range(env, "time must not be NaN");
  int rc = at ? A.aloop_call_at(ls->loop, t, tr_timer, id, NULL, &h)
              : A.aloop_call_later(ls->loop, t, tr_timer, id, NULL, &h);
  if (rc < 0) return throw_rc(env, rc);
  ls->ntimers++;
  ls_touch(ls);
  return make_handle(env, h);
}
static napi_value x_call_later(napi_env env, napi_callback_info info) {
  return call_timer(env, info, 0);
}
static napi_value x_call_at(napi_env env, napi_callback_info info) {
  return call_timer(env, info, 1);
}

/* handleCancel(loop, handle, isTimer): the JS layer calls it only for a
 * handle that has not run (isTimer: one of callLater / callAt). */
static napi_value x_handle_cancel(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  void *h;
  get_args(env, info, 3, argv);
  GET_LOOP(argv[0]);
  if (!arg_handle(env, argv[1], &h)) return NULL;
  int rc = A.aloop_handle_cancel(h);
  if (rc < 0 && rc != ALOOP_EBADF) return throw_rc(env, rc);
  if (arg_bool(env, argv[2]) && ls->ntimers > 0) ls->ntimers--;
  ls_touch(ls);
  return undefined(env);
}

/* handleWhen(handle) -> seconds */
static napi_value x_handle_when(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *h;
  double when;
  get_args(env, info, 1, argv);
  if (!require_loaded(env) || !arg_handle(env, argv[0], &h)) return NULL;
  int rc = A.aloop_handle_when(h, &when);
  if (rc < 0) return throw_rc(env, rc);
  return js_double(env, when);
}

/* addReader(loop, fd, count) / addWriter / removeReader / removeWriter:
 * count is the number of watchers the loop has after the call. */
static napi_value fd_watch(napi_env env, napi_callback_info info, int writer,
                           int add) {
  napi_value argv[3];
  int fd, rc;
  get_args(env, info, 3, argv);
  GET_LOOP(argv[0]);
  if (!arg_int(env, argv[1], &fd, "fd must be a number")) return NULL;
  if (add)
    rc = writer ? A.aloop_add_writer(ls->loop, fd, tr_fd, (void *)1, NULL)
                : A.aloop_add_reader(ls->loop, fd, tr_fd, NULL, NULL);
  else
    rc = writer ? A.aloop_remove_writer(ls->loop, fd)
                : A.aloop_remove_reader(ls->loop, fd);
  if (rc < 0) return throw_rc(env, rc);
  /* The JS layer counts the watchers it has after this call. */
  int count;
  if (!is_nullish(env, argv[2]) && arg_int(env, argv[2], &count, "count") && count >= 0)
    ls->watchers = count;
  ls_touch(ls);
  return js_bool(env, rc);
}
static napi_value x_add_reader(napi_env env, napi_callback_info info) {
  return fd_watch(env, info, 0, 1);
}
static napi_value x_add_writer(napi_env env, napi_callback_info info) {
  return fd_watch(env, info, 1, 1);
}
static napi_value x_remove_reader(napi_env env, napi_callback_info info) {
  return fd_watch(env, info, 0, 0);
}
static napi_value x_remove_writer(napi_env env, napi_callback_info info) {
  return fd_watch(env, info, 1, 0);
}

/* setExceptionHandler(loop, enabled): route the library's handler to
 * dispatch.exception (index.js keeps the JS function). */
static void ls_handler_free(void *ud) {
  ls_release((loop_state *)ud);
}
static napi_value x_set_exception_handler(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  get_args(env, info, 2, argv);
  GET_LOOP(argv[0]);
  int rc;
  if (arg_bool(env, argv[1])) {
    ls->refs++;
    rc = A.aloop_loop_set_exception_handler(ls->loop, tr_exception, ls, ls_handler_free);
  } else {
    rc = A.aloop_loop_set_exception_handler(ls->loop, NULL, NULL, NULL);
  }
  if (rc < 0) return throw_rc(env, rc);
  return undefined(env);
}

/* defaultExceptionHandler(loop, message, code) */
static napi_value x_default_exception_handler(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char msg[1024];
  size_t len;
  int code;
  get_args(env, info, 3, argv);
  GET_LOOP(argv[0]);
  if (napi_get_value_string_utf8(env, argv[1], msg, sizeof msg, &len) != napi_ok)
    return throw_type(env, "message must be a string");
  if (!arg_int(env, argv[2], &code, "code must be a number")) return NULL;
  aloop_exception_context_t ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.size = sizeof ctx;
  ctx.message = msg;
  ctx.error = code;
  int rc = A.aloop_loop_default_exception_handler(ls->loop, &ctx);
  if (rc < 0) return throw_rc(env, rc);
  return undefined(env);
}

const napi_property_descriptor aln_loop_exports[] = {
    EXPORT("loopNew", x_loop_new),
    EXPORT("loopClose", x_loop_close),
    EXPORT("loopIsClosed", x_loop_is_closed),
    EXPORT("loopHandle", x_loop_handle),
    EXPORT("loopWakeup", x_loop_wakeup),
    EXPORT("loopIsRunning", x_loop_is_running),
    EXPORT("loopAlive", x_loop_alive),
    EXPORT("loopTime", x_loop_time),
    EXPORT("loopSetDebug", x_loop_set_debug),
    EXPORT("loopGetDebug", x_loop_get_debug),
    EXPORT("loopSlowCallbackDuration", x_loop_slow_callback_duration),
    EXPORT("loopRunNowait", x_loop_run_nowait),
    EXPORT("loopAbortAll", x_loop_abort_all),
    EXPORT("loopHold", x_loop_hold),
    EXPORT("timerUnref", x_timer_unref),
    EXPORT("runningLoop", x_running_loop),
    EXPORT("callSoon", x_call_soon),
    EXPORT("callSoonThreadsafe", x_call_soon_threadsafe),
    EXPORT("callLater", x_call_later),
    EXPORT("callAt", x_call_at),
    EXPORT("handleCancel", x_handle_cancel),
    EXPORT("handleWhen", x_handle_when),
    EXPORT("addReader", x_add_reader),
    EXPORT("addWriter", x_add_writer),
    EXPORT("removeReader", x_remove_reader),
    EXPORT("removeWriter", x_remove_writer),
    EXPORT("setExceptionHandler", x_set_exception_handler),
    EXPORT("defaultExceptionHandler", x_default_exception_handler),
};
const size_t aln_loop_nexports = COUNT_OF(aln_loop_exports);
