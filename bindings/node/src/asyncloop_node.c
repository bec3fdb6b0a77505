/*
 * asyncloop_node.c - the N-API addon of the Node binding (C over the C ABI).
 *
 * Thin by design: every export checks its arguments, calls one aloop_*
 * function and maps a negative result to a thrown Error (.code from
 * aloop_err_name, .errno the negative code). The idiomatic API (classes,
 * Promises) is index.js.
 *
 * Loading: the addon does not link libasyncloop.so. load(path, dispatch)
 * dlopen()s the library the JS layer picked (ASYNCLOOP_LIBRARY first), binds
 * every function it uses through dlsym into the table `A`, and checks the
 * major version. So the library is found exactly where the user says, and a
 * second copy of the Go runtime can never be mapped by accident through a
 * DT_NEEDED entry.
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
 *
 * Lifetimes: per-object C states (loop, transport, server, future) are
 * reference counted: one count for the JS wrapper (napi_wrap finalizer),
 * one while the library holds the state as userdata (released by free_cb),
 * one for the uv handles of a loop. The JS object of a transport or server
 * is strongly referenced while the library may call back into it; the JS
 * Loop object while aloop_loop_alive() says so.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "asyncloop.h"

/* ------------------------------------------------------------------------ */
/* The library, bound at run time                                            */
/* ------------------------------------------------------------------------ */

#define ALN_FUNCS(X)                                                           \
  X(aloop_version)                                                             \
  X(aloop_version_string)                                                      \
  X(aloop_strerror)                                                            \
  X(aloop_err_name)                                                            \
  X(aloop_last_error)                                                          \
  X(aloop_loop_new)                                                            \
  X(aloop_loop_close)                                                          \
  X(aloop_loop_free)                                                           \
  X(aloop_loop_run)                                                            \
  X(aloop_loop_is_running)                                                     \
  X(aloop_loop_is_closed)                                                      \
  X(aloop_loop_alive)                                                          \
  X(aloop_loop_time)                                                           \
  X(aloop_loop_set_debug)                                                      \
  X(aloop_loop_get_debug)                                                      \
  X(aloop_loop_backend_fd)                                                     \
  X(aloop_loop_backend_timeout)                                                \
  X(aloop_call_soon)                                                           \
  X(aloop_call_soon_threadsafe)                                                \
  X(aloop_call_later)                                                          \
  X(aloop_call_at)                                                             \
  X(aloop_handle_cancel)                                                       \
  X(aloop_handle_when)                                                         \
  X(aloop_future_new)                                                          \
  X(aloop_future_free)                                                         \
  X(aloop_future_done)                                                         \
  X(aloop_future_cancelled)                                                    \
  X(aloop_future_cancel)                                                       \
  X(aloop_future_set_result)                                                   \
  X(aloop_future_set_exception)                                                \
  X(aloop_future_result_transport)                                             \
  X(aloop_future_result_server)                                                \
  X(aloop_future_exception)                                                    \
  X(aloop_future_error_message)                                                \
  X(aloop_future_add_done_callback)                                            \
  X(aloop_future_remove_done_callback)                                         \
  X(aloop_loop_set_exception_handler)                                          \
  X(aloop_loop_default_exception_handler)                                      \
  X(aloop_add_reader)                                                          \
  X(aloop_add_writer)                                                          \
  X(aloop_remove_reader)                                                       \
  X(aloop_remove_writer)                                                       \
  X(aloop_create_connection)                                                   \
  X(aloop_create_server)                                                       \
  X(aloop_server_close)                                                        \
  X(aloop_server_free)                                                         \
  X(aloop_server_start_serving)                                                \
  X(aloop_server_is_serving)                                                   \
  X(aloop_server_wait_closed)                                                  \
  X(aloop_server_socket_count)                                                 \
  X(aloop_server_socket_fd)                                                    \
  X(aloop_server_sockname)                                                     \
  X(aloop_transport_set_protocol)                                              \
  X(aloop_transport_get_protocol)                                              \
  X(aloop_transport_write)                                                     \
  X(aloop_transport_close)                                                     \
  X(aloop_transport_abort)                                                     \
  X(aloop_transport_write_eof)                                                 \
  X(aloop_transport_can_write_eof)                                             \
  X(aloop_transport_is_closing)                                                \
  X(aloop_transport_pause_reading)                                             \
  X(aloop_transport_resume_reading)                                            \
  X(aloop_transport_is_reading)                                                \
  X(aloop_transport_get_write_buffer_size)                                     \
  X(aloop_transport_set_write_buffer_limits)                                   \
  X(aloop_transport_get_write_buffer_limits)                                   \
  X(aloop_transport_get_fd)                                                    \
  X(aloop_transport_get_peername)                                              \
  X(aloop_transport_get_sockname)

static struct {
#define ALN_FIELD_(f) __typeof__(f) *f;
  ALN_FUNCS(ALN_FIELD_)
#undef ALN_FIELD_
} A;

static pthread_mutex_t lib_mu = PTHREAD_MUTEX_INITIALIZER;
static void *lib_handle;
static char lib_path[4096];

/* ------------------------------------------------------------------------ */
/* State                                                                     */
/* ------------------------------------------------------------------------ */

/* The JS dispatch functions registered by index.js (one set per env). */
enum {
  D_CALLBACK,        /* (loop, id, arg): a scheduled callback / done callback */
  D_FD,              /* (loop, fd, isWriter): add_reader / add_writer */
  D_CONNECTION,      /* (server) -> Transport: a server accepted a connection */
  D_CONNECTION_MADE, /* (transport) */
  D_DATA_RECEIVED,   /* (transport, Buffer) */
  D_EOF_RECEIVED,    /* (transport) -> keepOpen */
  D_CONNECTION_LOST, /* (transport, Error|null) */
  D_PAUSE_WRITING,   /* (transport) */
  D_RESUME_WRITING,  /* (transport) */
  D_EXCEPTION,       /* (loop, context) */
  D_COUNT
};
static const char *const dispatch_names[D_COUNT] = {
    "callback",       "fd",           "connection",    "connectionMade",
    "dataReceived",   "eofReceived",  "connectionLost", "pauseWriting",
    "resumeWriting",  "exception"};

#define TAG_LOOP 0x4c4f4f50u      /* 'LOOP' */
#define TAG_TRANSPORT 0x54524e53u /* 'TRNS' */
#define TAG_SERVER 0x53525652u    /* 'SRVR' */
#define TAG_FUTURE 0x46555452u    /* 'FUTR' */

typedef struct loop_state loop_state;
typedef struct transport_state transport_state;
typedef struct server_state server_state;

typedef struct mod_state {
  napi_env env;
  napi_ref fns[D_COUNT];
  int loaded;
  int dead; /* the env is being torn down: never call into JS again */
  loop_state *loops;
} mod_state;

struct loop_state {
  uint32_t tag;
  int refs; /* JS wrapper + uv handles + child states */
  mod_state *mod;
  napi_env env;
  aloop_loop_t *loop;
  uv_poll_t poll;
  uv_timer_t timer;
  int uv_open;     /* poll and timer initialised and not closed */
  int uv_closing;  /* close callbacks still to come */
  int zero_armed;  /* the timer is armed with 0 ms */
  int alive;       /* last known aloop_loop_alive() */
  int running;     /* depth of our aloop_loop_run calls */
  int closed;      /* aloop_loop_close succeeded */
  int freed;       /* aloop_loop_free called */
  napi_ref self;   /* the JS Loop; strong (1) while alive */
  napi_async_context actx;
  napi_async_cleanup_hook_handle cleanup;
  napi_ref *pending; /* JS exceptions thrown by callbacks, to report */
  size_t npending, cappending;
  transport_state *transports; /* every live state, for ls_shutdown */
  server_state *servers;
  loop_state *next;
};

struct transport_state {
  uint32_t tag;
  int refs; /* JS wrapper + library userdata */
  loop_state *ls;
  transport_state *prev, *next; /* ls->transports */
  aloop_transport_t *t; /* NULL before connection_made and after free_cb */
  napi_ref self;        /* the JS Transport; strong while the lib holds us */
  int strong;
  int lost; /* connection_lost ran (or the connection failed) */
};

struct server_state {
  uint32_t tag;
  int refs; /* JS wrapper + library userdata */
  loop_state *ls;
  server_state *prev, *next; /* ls->servers */
  aloop_server_t *s;
  napi_ref self; /* the JS Server; strong until close() */
  int strong;
};

typedef struct future_state {
  uint32_t tag;
  loop_state *ls;
  aloop_future_t *f;
} future_state;

/* An asynchronous operation whose library future settles a JS Promise. */
enum { OP_CONNECT, OP_SERVER, OP_WAIT_CLOSED, OP_FUTURE };
typedef struct op_state {
  loop_state *ls;
  napi_deferred deferred;
  int kind;
  void *target; /* transport_state / server_state */
  aloop_future_t *fut;
  int settled;
  int adding; /* inside aloop_future_add_done_callback */
  int released;
} op_state;

static __thread loop_state *tls_current; /* the loop inside aloop_loop_run */

/* Intrusive doubly-linked lists of a loop's transport and server states. */
#define LIST_INSERT(head, node)                                                \
  do {                                                                         \
    (node)->prev = NULL;                                                       \
    (node)->next = (head);                                                     \
    if (head) (head)->prev = (node);                                           \
    (head) = (node);                                                           \
  } while (0)
#define LIST_REMOVE(head, node)                                                \
  do {                                                                         \
    if ((node)->prev)                                                          \
      (node)->prev->next = (node)->next;                                       \
    else                                                                       \
      (head) = (node)->next;                                                   \
    if ((node)->next) (node)->next->prev = (node)->prev;                       \
  } while (0)

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static napi_value make_error(napi_env env, int code, const char *detail) {
  const char *name = A.aloop_err_name ? A.aloop_err_name(code) : "ALOOP_EUNKNOWN";
  const char *msg = (detail && *detail)
                        ? detail
                        : (A.aloop_strerror ? A.aloop_strerror(code) : "error");
  napi_value c, m, e, en;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &c);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, c, m, &e);
  napi_create_int32(env, code, &en);
  napi_set_named_property(env, e, "errno", en);
  return e;
}

/* Throws the Error for a negative library result; returns NULL. */
static napi_value throw_rc(napi_env env, int rc) {
  char buf[512];
  int n = A.aloop_last_error(buf, sizeof buf);
  napi_throw(env, make_error(env, rc, n > 0 ? buf : NULL));
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

static napi_value undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}
static napi_value js_bool(napi_env env, int b) {
  napi_value v;
  napi_get_boolean(env, b != 0, &v);
  return v;
}
static napi_value js_int(napi_env env, int64_t i) {
  napi_value v;
  napi_create_int64(env, i, &v);
  return v;
}
static napi_value js_double(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}
static napi_value js_str(napi_env env, const char *s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}
static napi_value ref_value(napi_env env, napi_ref r) {
  napi_value v = NULL;
  if (r == NULL || napi_get_reference_value(env, r, &v) != napi_ok) return NULL;
  return v;
}

static mod_state *get_mod(napi_env env) {
  mod_state *m = NULL;
  napi_get_instance_data(env, (void **)&m);
  return m;
}

/* argv gets exactly n values (missing ones are undefined). */
static void get_args(napi_env env, napi_callback_info info, size_t n,
                     napi_value *argv) {
  size_t argc = n;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
}

static int require_loaded(napi_env env) {
  if (lib_handle == NULL) {
    napi_throw_error(env, "ALOOP_ESTATE", "asyncloop: the library is not loaded");
    return 0;
  }
  return 1;
}

static void *unwrap_tag(napi_env env, napi_value obj, uint32_t tag,
                        const char *what) {
  void *p = NULL;
  if (!require_loaded(env)) return NULL;
  if (napi_unwrap(env, obj, &p) != napi_ok || p == NULL || *(uint32_t *)p != tag) {
    throw_type(env, what);
    return NULL;
  }
  return p;
}

static int arg_double(napi_env env, napi_value v, double *out, const char *what) {
  if (napi_get_value_double(env, v, out) != napi_ok) {
    throw_type(env, what);
    return 0;
  }
  return 1;
}
static int arg_int(napi_env env, napi_value v, int *out, const char *what) {
  double d;
  if (!arg_double(env, v, &d, what)) return 0;
  if (d != d || d < -2147483648.0 || d > 2147483647.0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", what);
    return 0;
  }
  *out = (int)d;
  return 1;
}
static int arg_size(napi_env env, napi_value v, size_t *out, const char *what) {
  double d;
  if (!arg_double(env, v, &d, what)) return 0;
  if (!(d >= 0 && d <= 9007199254740991.0)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", what);
    return 0;
  }
  *out = (size_t)d;
  return 1;
}
static int arg_bool(napi_env env, napi_value v) {
  bool b = false;
  napi_value c;
  if (napi_coerce_to_bool(env, v, &c) == napi_ok) napi_get_value_bool(env, c, &b);
  return b;
}
/* A callback id: a positive integer below 2^53 carried as the userdata. */
static int arg_id(napi_env env, napi_value v, void **out) {
  double d;
  if (!arg_double(env, v, &d, "id must be a number")) return 0;
  if (!(d >= 1 && d <= 9007199254740991.0)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "bad callback id");
    return 0;
  }
  *out = (void *)(uintptr_t)(uint64_t)d;
  return 1;
}
/* An optional string: null/undefined -> NULL (*out untouched). Returns 0 on
 * a thrown error. The string is malloc'ed into *out. */
static int arg_opt_string(napi_env env, napi_value v, char **out) {
  napi_valuetype t;
  size_t len = 0;
  *out = NULL;
  napi_typeof(env, v, &t);
  if (t == napi_null || t == napi_undefined) return 1;
  if (t != napi_string) {
    throw_type(env, "host must be a string or null");
    return 0;
  }
  napi_get_value_string_utf8(env, v, NULL, 0, &len);
  *out = malloc(len + 1);
  if (*out == NULL) {
    napi_throw_error(env, "ALOOP_ENOMEM", "out of memory");
    return 0;
  }
  napi_get_value_string_utf8(env, v, *out, len + 1, &len);
  if (strlen(*out) != len) { /* embedded NUL */
    free(*out);
    *out = NULL;
    throw_type(env, "host must not contain NUL");
    return 0;
  }
  return 1;
}

static napi_value make_handle(napi_env env, aloop_handle_t *h) {
  napi_value v;
  napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)h, &v);
  return v;
}
static int arg_handle(napi_env env, napi_value v, aloop_handle_t **out) {
  uint64_t u = 0;
  bool lossless = false;
  if (napi_get_value_bigint_uint64(env, v, &u, &lossless) != napi_ok || !lossless) {
    throw_type(env, "bad handle");
    return 0;
  }
  *out = (aloop_handle_t *)(uintptr_t)u;
  return 1;
}

static napi_value make_address(napi_env env, const char *host, int port) {
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "host", js_str(env, host));
  napi_set_named_property(env, o, "port", js_int(env, port));
  return o;
}

/* ------------------------------------------------------------------------ */
/* Calling into JS from library callbacks                                    */
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
static napi_value ls_call(loop_state *ls, int which, size_t argc,
                          napi_value *argv) {
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

static int ls_can_call(loop_state *ls) {
  return ls != NULL && !ls->mod->dead;
}

/* ------------------------------------------------------------------------ */
/* Loop driving                                                              */
/* ------------------------------------------------------------------------ */

static void ls_release(loop_state *ls);

static void ls_set_alive(loop_state *ls, int alive) {
  if (!ls->uv_open) return;
  if (alive) {
    uv_ref((uv_handle_t *)&ls->poll);
    uv_ref((uv_handle_t *)&ls->timer);
  } else {
    uv_unref((uv_handle_t *)&ls->poll);
    uv_unref((uv_handle_t *)&ls->timer);
  }
  if (alive != ls->alive && !ls->mod->dead) {
    uint32_t n;
    if (alive)
      napi_reference_ref(ls->env, ls->self, &n);
    else
      napi_reference_unref(ls->env, ls->self, &n);
    ls->alive = alive;
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
  ls_set_alive(ls, ls->npending || A.aloop_loop_alive(ls->loop) > 0);
}

/* After a call from JS that may have changed the loop's work. Inside a run
 * the re-arm after aloop_loop_run covers it. */
static void ls_touch(loop_state *ls) {
  if (ls->running == 0) ls_update(ls);
}

/* The loop has a ready callback now (call_soon from JS). */
static void ls_touch_ready(loop_state *ls) {
  if (ls->running == 0 && ls->uv_open && !ls->zero_armed) {
    uv_timer_start(&ls->timer, on_timer, 0, 0);
    ls->zero_armed = 1;
    ls_set_alive(ls, 1);
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

static int ls_run_nowait(loop_state *ls);

/* The env is going away: no JS runs any more. Release the library's loop
 * (a Worker may end while the process goes on): close the servers, abort the
 * transports, run non-blocking iterations until their connection_lost ran
 * and the loop closes (bounded; fd watchers added with addReader/addWriter,
 * which only JS knows, keep it open: then it leaks), then free it. */
static void quiet_exception(aloop_loop_t *loop, const aloop_exception_context_t *ctx,
                            void *ud) {
  (void)loop;
  (void)ctx;
  (void)ud;
}

/* Closes every server and aborts every transport of the loop (their
 * connection_lost callbacks follow on the next iterations). */
static void ls_abort_all(loop_state *ls) {
  for (server_state *ss = ls->servers; ss; ss = ss->next)
    if (ss->s) A.aloop_server_close(ss->s);
  for (transport_state *ts = ls->transports; ts; ts = ts->next)
    if (ts->t && !ts->lost) A.aloop_transport_abort(ts->t);
}

static void ls_shutdown(loop_state *ls) {
  ls->mod->dead = 1;
  if (ls->closed || ls->freed || ls->running) return;
  /* Connections accepted meanwhile are refused, and close reports what is
   * still open: nobody can read those reports now. */
  A.aloop_loop_set_exception_handler(ls->loop, quiet_exception, NULL, NULL);
  ls_abort_all(ls);
  for (int i = 0; i < 100 && A.aloop_loop_close(ls->loop) == ALOOP_EBUSY; i++)
    ls_run_nowait(ls);
  for (server_state *ss = ls->servers, *next; ss; ss = next) {
    next = ss->next; /* the free_cb may release ss */
    if (ss->s) {
      aloop_server_t *s = ss->s;
      ss->s = NULL;
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

static void ls_release(loop_state *ls) {
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
      ls->freed = 1;
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
/* Scheduled callbacks, fd watchers, exception handler                       */
/* ------------------------------------------------------------------------ */

static void call_callback(loop_state *ls, void *ud, napi_value arg) {
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

static void tr_future_callback(aloop_future_t *f, void *ud) {
  (void)f;
  loop_state *ls = tls_current;
  if (ls_can_call(ls)) call_callback(ls, ud, NULL);
}

static void tr_fd(aloop_loop_t *loop, int fd, void *ud) {
  (void)loop;
  loop_state *ls = tls_current;
  if (!ls_can_call(ls)) return;
  napi_env env = ls->env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  napi_value argv[3] = {ref_value(env, ls->self), js_int(env, fd),
                        js_bool(env, ud != NULL)};
  if (argv[0]) ls_call(ls, D_FD, 3, argv);
  napi_close_handle_scope(env, hs);
}

static napi_value transport_object(napi_env env, aloop_transport_t *t);

static void tr_exception(aloop_loop_t *loop, const aloop_exception_context_t *ctx,
                         void *ud) {
  (void)loop;
  loop_state *ls = ud;
  if (!ls_can_call(ls)) return;
  napi_env env = ls->env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  napi_value o, null;
  napi_get_null(env, &null);
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "message",
                          js_str(env, ctx->message ? ctx->message : ""));
  napi_set_named_property(env, o, "exception",
                          ctx->error ? make_error(env, ctx->error, ctx->error_detail)
                                     : null);
  napi_value t = ctx->transport ? transport_object(env, ctx->transport) : NULL;
  if (t) napi_set_named_property(env, o, "transport", t);
  napi_value argv[2] = {ref_value(env, ls->self), o};
  if (argv[0]) ls_call(ls, D_EXCEPTION, 2, argv);
  napi_close_handle_scope(env, hs);
}

/* ------------------------------------------------------------------------ */
/* Transports                                                                */
/* ------------------------------------------------------------------------ */

static transport_state *ts_new(loop_state *ls) {
  transport_state *ts = calloc(1, sizeof *ts);
  if (ts == NULL) return NULL;
  ts->tag = TAG_TRANSPORT;
  ts->ls = ls;
  ls->refs++;
  LIST_INSERT(ls->transports, ts);
  return ts;
}

static void ts_release(transport_state *ts) {
  if (--ts->refs > 0) return;
  loop_state *ls = ts->ls;
  LIST_REMOVE(ls->transports, ts);
  ts->tag = 0;
  free(ts);
  ls_release(ls);
}

static void ts_drop_strong(transport_state *ts) {
  if (ts->strong && !ts->ls->mod->dead) {
    uint32_t n;
    napi_reference_unref(ts->ls->env, ts->self, &n);
  }
  ts->strong = 0;
}

/* free_cb: the library dropped the transport's userdata. */
static void ts_free_cb(void *ud) {
  transport_state *ts = ud;
  ts->t = NULL;
  ts->lost = 1;
  ts_drop_strong(ts);
  ts_release(ts);
}

static void ts_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  transport_state *ts = data;
  if (!ts->ls->mod->dead && ts->self) napi_delete_reference(env, ts->self);
  ts->self = NULL;
  ts_release(ts);
}

/* Wraps a JS Transport around ts and keeps it strongly referenced. */
static int ts_attach(napi_env env, transport_state *ts, napi_value obj) {
  if (napi_wrap(env, obj, ts, ts_finalize, NULL, NULL) != napi_ok) return 0;
  ts->refs++;
  napi_create_reference(env, obj, 1, &ts->self);
  ts->strong = 1;
  return 1;
}

/* The JS Transport of a library transport (exception contexts). */
static napi_value transport_object(napi_env env, aloop_transport_t *t) {
  void *ud = NULL;
  if (A.aloop_transport_get_protocol(t, &ud) < 0 || ud == NULL) return NULL;
  transport_state *ts = ud;
  if (ts->tag != TAG_TRANSPORT) return NULL;
  return ref_value(env, ts->self);
}

/* Calls a protocol dispatch function with (transport[, arg]). */
static napi_value ts_call(transport_state *ts, int which, napi_value arg) {
  napi_env env = ts->ls->env;
  napi_value argv[2] = {ref_value(env, ts->self), arg};
  if (argv[0] == NULL) return NULL;
  return ls_call(ts->ls, which, arg ? 2 : 1, argv);
}

static void pr_connection_made(aloop_transport_t *t, void *ud) {
  transport_state *ts = ud;
  ts->t = t;
  if (!ls_can_call(ts->ls)) return;
  napi_handle_scope hs;
  if (napi_open_handle_scope(ts->ls->env, &hs) != napi_ok) return;
  ts_call(ts, D_CONNECTION_MADE, NULL);
  napi_close_handle_scope(ts->ls->env, hs);
}

static void pr_data_received(aloop_transport_t *t, const char *data, size_t len,
                             void *ud) {
  (void)t;
  transport_state *ts = ud;
  if (!ls_can_call(ts->ls)) return;
  napi_env env = ts->ls->env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  napi_value buf;
  if (napi_create_buffer_copy(env, len, data, NULL, &buf) == napi_ok)
    ts_call(ts, D_DATA_RECEIVED, buf);
  napi_close_handle_scope(env, hs);
}

static int pr_eof_received(aloop_transport_t *t, void *ud) {
  (void)t;
  transport_state *ts = ud;
  int keep = 0;
  if (!ls_can_call(ts->ls)) return 0;
  napi_env env = ts->ls->env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return 0;
  napi_value r = ts_call(ts, D_EOF_RECEIVED, NULL);
  if (r) keep = arg_bool(env, r);
  napi_close_handle_scope(env, hs);
  return keep;
}

static void pr_connection_lost(aloop_transport_t *t, int error, void *ud) {
  (void)t;
  transport_state *ts = ud;
  if (ls_can_call(ts->ls)) {
    napi_env env = ts->ls->env;
    napi_handle_scope hs;
    if (napi_open_handle_scope(env, &hs) == napi_ok) {
      napi_value err;
      if (error)
        err = make_error(env, error, NULL);
      else
        napi_get_null(env, &err);
      ts_call(ts, D_CONNECTION_LOST, err);
      napi_close_handle_scope(env, hs);
    }
  }
  ts->lost = 1;
}

static void pr_pause_writing(aloop_transport_t *t, void *ud) {
  (void)t;
  transport_state *ts = ud;
  if (!ls_can_call(ts->ls)) return;
  napi_handle_scope hs;
  if (napi_open_handle_scope(ts->ls->env, &hs) != napi_ok) return;
  ts_call(ts, D_PAUSE_WRITING, NULL);
  napi_close_handle_scope(ts->ls->env, hs);
}

static void pr_resume_writing(aloop_transport_t *t, void *ud) {
  (void)t;
  transport_state *ts = ud;
  if (!ls_can_call(ts->ls)) return;
  napi_handle_scope hs;
  if (napi_open_handle_scope(ts->ls->env, &hs) != napi_ok) return;
  ts_call(ts, D_RESUME_WRITING, NULL);
  napi_close_handle_scope(ts->ls->env, hs);
}

static const aloop_protocol_t js_protocol = {
    sizeof(aloop_protocol_t), pr_connection_made, pr_data_received,
    pr_eof_received,          pr_connection_lost, pr_pause_writing,
    pr_resume_writing,        NULL,               NULL,
    0};

/* ------------------------------------------------------------------------ */
/* Servers                                                                   */
/* ------------------------------------------------------------------------ */

static void ss_release(server_state *ss) {
  if (--ss->refs > 0) return;
  loop_state *ls = ss->ls;
  LIST_REMOVE(ls->servers, ss);
  ss->tag = 0;
  free(ss);
  ls_release(ls);
}

static void ss_drop_strong(server_state *ss) {
  if (ss->strong && !ss->ls->mod->dead) {
    uint32_t n;
    napi_reference_unref(ss->ls->env, ss->self, &n);
  }
  ss->strong = 0;
}

static void ss_free_cb(void *ud) {
  server_state *ss = ud;
  ss_drop_strong(ss);
  ss_release(ss);
}

static void ss_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  server_state *ss = data;
  if (!ss->ls->mod->dead) {
    if (ss->s) {
      aloop_server_t *s = ss->s;
      ss->s = NULL;
      A.aloop_server_free(s);
    }
    if (ss->self) napi_delete_reference(env, ss->self);
  }
  ss->self = NULL;
  ss_release(ss);
}

static int tr_connection(aloop_server_t *server, aloop_transport_t *t, void *ud) {
  server_state *ss = ud;
  loop_state *ls = ss->ls;
  if (ss->s == NULL) ss->s = server;
  if (!ls_can_call(ls)) return -1;
  napi_env env = ls->env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return -1;
  int rc = -1;
  transport_state *ts = ts_new(ls);
  napi_value sobj = ref_value(env, ss->self);
  napi_value tobj = NULL;
  if (ts && sobj) {
    ts->t = t;
    napi_value argv[1] = {sobj};
    tobj = ls_call(ls, D_CONNECTION, 1, argv);
  }
  napi_valuetype type = napi_undefined;
  if (tobj) napi_typeof(env, tobj, &type);
  if (ts && type == napi_object && ts_attach(env, ts, tobj)) {
    ts->refs++; /* the library's */
    rc = A.aloop_transport_set_protocol(t, &js_protocol, ts, ts_free_cb);
    rc = rc < 0 ? -1 : 0; /* on failure ts_free_cb already ran */
  } else if (ts) {
    ts->refs = 1;
    ts_release(ts);
  }
  napi_close_handle_scope(env, hs);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Operations: a library future settling a JS Promise                        */
/* ------------------------------------------------------------------------ */

static void op_reject(napi_env env, op_state *op, int code, const char *detail) {
  op->settled = 1;
  napi_reject_deferred(env, op->deferred, make_error(env, code, detail));
}

static void op_done(aloop_future_t *f, void *ud) {
  op_state *op = ud;
  loop_state *ls = op->ls;
  if (op->settled || ls->mod->dead) return;
  napi_env env = ls->env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  int rc = A.aloop_future_exception(f);
  if (rc == 0) {
    napi_value result = undefined(env);
    if (op->kind == OP_CONNECT) {
      transport_state *ts = op->target;
      aloop_transport_t *t = NULL;
      if (A.aloop_future_result_transport(f, &t) == 0 && ts->t == NULL && !ts->lost)
        ts->t = t;
      result = ref_value(env, ts->self);
    } else if (op->kind == OP_SERVER) {
      server_state *ss = op->target;
      aloop_server_t *s = NULL;
      if (A.aloop_future_result_server(f, &s) == 0) ss->s = s;
      result = ref_value(env, ss->self);
    }
    op->settled = 1;
    napi_resolve_deferred(env, op->deferred, result ? result : undefined(env));
  } else {
    char buf[512] = "";
    if (A.aloop_future_error_message(f, buf, sizeof buf) <= 0) buf[0] = 0;
    op_reject(env, op, rc, buf);
  }
  napi_close_handle_scope(env, hs);
}

static void op_free(void *ud) {
  op_state *op = ud;
  loop_state *ls = op->ls;
  op->released = 1;
  if (op->fut) {
    A.aloop_future_free(op->fut);
    op->fut = NULL;
  }
  if (op->adding) return; /* op_start settles and frees it */
  if (!op->settled && !ls->mod->dead) {
    napi_handle_scope hs;
    if (napi_open_handle_scope(ls->env, &hs) == napi_ok) {
      op_reject(ls->env, op, ALOOP_ECLOSED, "the loop was closed");
      napi_close_handle_scope(ls->env, hs);
    }
  }
  free(op);
  ls_release(ls);
}

/* Returns a Promise settled when fut is done; takes ownership of fut. */
static napi_value op_start(napi_env env, loop_state *ls, int kind, void *target,
                           aloop_future_t *fut) {
  napi_value promise;
  op_state *op = calloc(1, sizeof *op);
  if (op == NULL) {
    A.aloop_future_free(fut);
    napi_throw_error(env, "ALOOP_ENOMEM", "out of memory");
    return NULL;
  }
  op->ls = ls;
  ls->refs++;
  op->kind = kind;
  op->target = target;
  op->fut = fut;
  napi_create_promise(env, &op->deferred, &promise);
  op->adding = 1;
  int rc = A.aloop_future_add_done_callback(fut, op_done, op, op_free);
  op->adding = 0;
  if (rc < 0) {
    char buf[512];
    int n = A.aloop_last_error(buf, sizeof buf);
    if (!op->settled) op_reject(env, op, rc, n > 0 ? buf : NULL);
    if (!op->released && op->fut) A.aloop_future_free(op->fut);
    free(op);
    ls_release(ls);
  }
  ls_touch(ls);
  return promise;
}

/* ------------------------------------------------------------------------ */
/* Exports: library                                                          */
/* ------------------------------------------------------------------------ */

static void mod_cleanup(void *arg) {
  mod_state *m = arg;
  m->dead = 1;
}

static void mod_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

/* load(libraryPath, dispatch) -> {version, versionString} */
static napi_value x_load(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  get_args(env, info, 2, argv);
  mod_state *m = get_mod(env);
  char path[4096];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok)
    return throw_type(env, "library path must be a string");
  napi_valuetype t;
  napi_typeof(env, argv[1], &t);
  if (t != napi_object) return throw_type(env, "dispatch must be an object");

  pthread_mutex_lock(&lib_mu);
  if (lib_handle == NULL) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
      char msg[4400];
      snprintf(msg, sizeof msg, "asyncloop: cannot load %s: %s", path, dlerror());
      pthread_mutex_unlock(&lib_mu);
      napi_throw_error(env, "ERR_ASYNCLOOP_LOAD", msg);
      return NULL;
    }
    const char *missing = NULL;
#define ALN_BIND_(f)                                                           \
  if (missing == NULL && (*(void **)&A.f = dlsym(h, #f)) == NULL) missing = #f;
    ALN_FUNCS(ALN_BIND_)
#undef ALN_BIND_
    if (missing) {
      char msg[4400];
      snprintf(msg, sizeof msg, "asyncloop: %s does not export %s", path, missing);
      memset(&A, 0, sizeof A);
      dlclose(h);
      pthread_mutex_unlock(&lib_mu);
      napi_throw_error(env, "ERR_ASYNCLOOP_LOAD", msg);
      return NULL;
    }
    unsigned v = A.aloop_version();
    if ((v >> 16) != ALOOP_VERSION_MAJOR) {
      char msg[4400];
      snprintf(msg, sizeof msg,
               "asyncloop: %s is version %u.%u.%u; this addon needs major %d", path,
               v >> 16, (v >> 8) & 0xff, v & 0xff, ALOOP_VERSION_MAJOR);
      memset(&A, 0, sizeof A);
      pthread_mutex_unlock(&lib_mu);
      napi_throw_error(env, "ERR_ASYNCLOOP_VERSION", msg);
      return NULL; /* a Go library cannot be unloaded: keep it mapped */
    }
    lib_handle = h;
    /* A bare name was found by the dynamic loader (first beside the addon:
     * RUNPATH $ORIGIN): report the file it picked. */
    struct link_map *lm = NULL;
    if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm != NULL && lm->l_name != NULL &&
        lm->l_name[0] != '\0')
      snprintf(lib_path, sizeof lib_path, "%s", lm->l_name);
    else
      snprintf(lib_path, sizeof lib_path, "%s", path);
  }
  pthread_mutex_unlock(&lib_mu);

  if (!m->loaded) {
    for (int i = 0; i < D_COUNT; i++) {
      napi_value fn;
      napi_valuetype ft;
      napi_get_named_property(env, argv[1], dispatch_names[i], &fn);
      napi_typeof(env, fn, &ft);
      if (ft != napi_function) {
        char msg[128];
        snprintf(msg, sizeof msg, "dispatch.%s must be a function", dispatch_names[i]);
        return throw_type(env, msg);
      }
    }
    for (int i = 0; i < D_COUNT; i++) {
      napi_value fn;
      napi_get_named_property(env, argv[1], dispatch_names[i], &fn);
      napi_create_reference(env, fn, 1, &m->fns[i]);
    }
    m->loaded = 1;
  }
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "version", js_int(env, A.aloop_version()));
  napi_set_named_property(env, o, "versionString",
                          js_str(env, A.aloop_version_string()));
  napi_set_named_property(env, o, "path", js_str(env, lib_path));
  napi_set_named_property(env, o, "addonMajor", js_int(env, ALOOP_VERSION_MAJOR));
  napi_set_named_property(env, o, "writeBufferHigh", js_int(env, ALOOP_WRITE_BUFFER_HIGH));
  napi_set_named_property(env, o, "writeBufferLow", js_int(env, ALOOP_WRITE_BUFFER_LOW));
  return o;
}

static napi_value x_err_name(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int code;
  get_args(env, info, 1, argv);
  if (!require_loaded(env) || !arg_int(env, argv[0], &code, "code must be a number"))
    return NULL;
  return js_str(env, A.aloop_err_name(code));
}

static napi_value x_strerror(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int code;
  get_args(env, info, 1, argv);
  if (!require_loaded(env) || !arg_int(env, argv[0], &code, "code must be a number"))
    return NULL;
  return js_str(env, A.aloop_strerror(code));
}

/* ------------------------------------------------------------------------ */
/* Exports: loop                                                             */
/* ------------------------------------------------------------------------ */

#define GET_LOOP(argv0)                                                        \
  loop_state *ls = unwrap_tag(env, (argv0), TAG_LOOP, "expected a Loop");      \
  if (ls == NULL) return NULL

/* loopNew(loopObject) */
static napi_value x_loop_new(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  mod_state *m = get_mod(env);
  if (!require_loaded(env)) return NULL;
  if (!m->loaded) {
    napi_throw_error(env, "ALOOP_ESTATE", "asyncloop: load() first");
    return NULL;
  }
  napi_valuetype t;
  napi_typeof(env, argv[0], &t);
  if (t != napi_object) return throw_type(env, "expected an object");
  uv_loop_t *uvl = NULL;
  if (napi_get_uv_event_loop(env, &uvl) != napi_ok || uvl == NULL) {
    napi_throw_error(env, "ALOOP_ESTATE", "no libuv loop");
    return NULL;
  }
  loop_state *ls = calloc(1, sizeof *ls);
  if (ls == NULL) {
    napi_throw_error(env, "ALOOP_ENOMEM", "out of memory");
    return NULL;
  }
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
    napi_value err = make_error(env, rc, n > 0 ? buf : NULL);
    ls_touch(ls);
    napi_throw(env, err);
    return NULL;
  }
  ls->closed = 1;
  ls_set_alive(ls, 0);
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

/* abortAll(loop): close every server, abort every transport (tests clean up
 * with it after a failure). */
static napi_value x_loop_abort_all(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_LOOP(argv[0]);
  if (!ls->closed) ls_abort_all(ls);
  ls_touch(ls);
  return undefined(env);
}

/* runNowait(loop): one non-blocking iteration from JS (tests, benchmarks).
 * The first exception a callback threw is rethrown here. */
static napi_value x_loop_run_nowait(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_LOOP(argv[0]);
  if (ls->running) {
    napi_throw_error(env, "ALOOP_EBUSY", "the loop is already running");
    return NULL;
  }
  int rc = ls_run_nowait(ls);
  ls_update(ls);
  if (ls->npending) {
    ls_flush_exceptions(ls, 1);
    return NULL;
  }
  if (rc < 0) return throw_rc(env, rc);
  return undefined(env);
}

/* ------------------------------------------------------------------------ */
/* Exports: scheduling                                                       */
/* ------------------------------------------------------------------------ */

/* callSoon(loop, id) -> handle (bigint) */
static napi_value x_call_soon(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  void *id;
  aloop_handle_t *h = NULL;
  get_args(env, info, 2, argv);
  GET_LOOP(argv[0]);
  if (!arg_id(env, argv[1], &id)) return NULL;
  int rc = A.aloop_call_soon(ls->loop, tr_callback, id, NULL, &h);
  if (rc < 0) return throw_rc(env, rc);
  ls_touch_ready(ls);
  return make_handle(env, h);
}

static napi_value x_call_soon_threadsafe(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  void *id;
  aloop_handle_t *h = NULL;
  get_args(env, info, 2, argv);
  GET_LOOP(argv[0]);
  if (!arg_id(env, argv[1], &id)) return NULL;
  int rc = A.aloop_call_soon_threadsafe(ls->loop, tr_callback, id, NULL, &h);
  if (rc < 0) return throw_rc(env, rc);
  ls_touch_ready(ls);
  return make_handle(env, h);
}

/* callLater(loop, delay, id) / callAt(loop, when, id) -> handle */
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
  if (t != t) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "time must not be NaN");
    return NULL;
  }
  int rc = at ? A.aloop_call_at(ls->loop, t, tr_callback, id, NULL, &h)
              : A.aloop_call_later(ls->loop, t, tr_callback, id, NULL, &h);
  if (rc < 0) return throw_rc(env, rc);
  ls_touch(ls);
  return make_handle(env, h);
}
static napi_value x_call_later(napi_env env, napi_callback_info info) {
  return call_timer(env, info, 0);
}
static napi_value x_call_at(napi_env env, napi_callback_info info) {
  return call_timer(env, info, 1);
}

/* handleCancel(loop, handle) */
static napi_value x_handle_cancel(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  aloop_handle_t *h;
  get_args(env, info, 2, argv);
  GET_LOOP(argv[0]);
  if (!arg_handle(env, argv[1], &h)) return NULL;
  int rc = A.aloop_handle_cancel(h);
  if (rc < 0 && rc != ALOOP_EBADF) return throw_rc(env, rc);
  ls_touch(ls);
  return undefined(env);
}

/* handleWhen(handle) -> number */
static napi_value x_handle_when(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  aloop_handle_t *h;
  double when;
  get_args(env, info, 1, argv);
  if (!require_loaded(env) || !arg_handle(env, argv[0], &h)) return NULL;
  int rc = A.aloop_handle_when(h, &when);
  if (rc < 0) return throw_rc(env, rc);
  return js_double(env, when);
}

/* addReader(loop, fd) / addWriter(loop, fd) / removeReader / removeWriter */
static napi_value fd_watch(napi_env env, napi_callback_info info, int writer,
                           int add) {
  napi_value argv[2];
  int fd, rc;
  get_args(env, info, 2, argv);
  GET_LOOP(argv[0]);
  if (!arg_int(env, argv[1], &fd, "fd must be a number")) return NULL;
  if (add)
    rc = writer ? A.aloop_add_writer(ls->loop, fd, tr_fd, (void *)1, NULL)
                : A.aloop_add_reader(ls->loop, fd, tr_fd, NULL, NULL);
  else
    rc = writer ? A.aloop_remove_writer(ls->loop, fd)
                : A.aloop_remove_reader(ls->loop, fd);
  if (rc < 0) return throw_rc(env, rc);
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

/* ------------------------------------------------------------------------ */
/* Exports: futures                                                          */
/* ------------------------------------------------------------------------ */

static void fs_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  future_state *fs = data;
  if (!fs->ls->mod->dead) A.aloop_future_free(fs->f);
  fs->tag = 0;
  ls_release(fs->ls);
  free(fs);
}

/* futureNew(loop, futureObject) */
static napi_value x_future_new(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  get_args(env, info, 2, argv);
  GET_LOOP(argv[0]);
  future_state *fs = calloc(1, sizeof *fs);
  if (fs == NULL) {
    napi_throw_error(env, "ALOOP_ENOMEM", "out of memory");
    return NULL;
  }
  int rc = A.aloop_future_new(ls->loop, &fs->f);
  if (rc < 0) {
    free(fs);
    return throw_rc(env, rc);
  }
  fs->tag = TAG_FUTURE;
  fs->ls = ls;
  if (napi_wrap(env, argv[1], fs, fs_finalize, NULL, NULL) != napi_ok) {
    A.aloop_future_free(fs->f);
    free(fs);
    return throw_type(env, "expected a fresh object");
  }
  ls->refs++;
  return undefined(env);
}

#define GET_FUTURE(argv0)                                                      \
  future_state *fs = unwrap_tag(env, (argv0), TAG_FUTURE, "expected a Future"); \
  if (fs == NULL) return NULL

/* futureState(future) -> 0 pending | 1 done | 2 cancelled */
static napi_value x_future_state(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_FUTURE(argv[0]);
  int rc = A.aloop_future_done(fs->f);
  if (rc < 0) return throw_rc(env, rc);
  if (rc == 0) return js_int(env, 0);
  rc = A.aloop_future_cancelled(fs->f);
  if (rc < 0) return throw_rc(env, rc);
  return js_int(env, rc ? 2 : 1);
}

static napi_value x_future_cancel(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_FUTURE(argv[0]);
  int rc = A.aloop_future_cancel(fs->f);
  if (rc < 0) return throw_rc(env, rc);
  ls_touch(fs->ls);
  return js_bool(env, rc);
}

static napi_value x_future_set_result(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_FUTURE(argv[0]);
  int rc = A.aloop_future_set_result(fs->f, NULL);
  if (rc < 0) return throw_rc(env, rc);
  ls_touch(fs->ls);
  return undefined(env);
}

/* futureSetException(future, code, message) */
static napi_value x_future_set_exception(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char msg[1024] = "";
  size_t len;
  int code;
  get_args(env, info, 3, argv);
  GET_FUTURE(argv[0]);
  if (!arg_int(env, argv[1], &code, "code must be a number")) return NULL;
  napi_get_value_string_utf8(env, argv[2], msg, sizeof msg, &len);
  int rc = A.aloop_future_set_exception(fs->f, code, msg);
  if (rc < 0) return throw_rc(env, rc);
  ls_touch(fs->ls);
  return undefined(env);
}

/* futureAddDoneCallback(future, id) */
static napi_value x_future_add_done_callback(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  void *id;
  get_args(env, info, 2, argv);
  GET_FUTURE(argv[0]);
  if (!arg_id(env, argv[1], &id)) return NULL;
  int rc = A.aloop_future_add_done_callback(fs->f, tr_future_callback, id, NULL);
  if (rc < 0) return throw_rc(env, rc);
  ls_touch(fs->ls);
  return undefined(env);
}

/* futureRemoveDoneCallback(future, id) -> count */
static napi_value x_future_remove_done_callback(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  void *id;
  get_args(env, info, 2, argv);
  GET_FUTURE(argv[0]);
  if (!arg_id(env, argv[1], &id)) return NULL;
  int rc = A.aloop_future_remove_done_callback(fs->f, tr_future_callback, id);
  if (rc < 0) return throw_rc(env, rc);
  return js_int(env, rc);
}

/* ------------------------------------------------------------------------ */
/* Exports: TCP                                                              */
/* ------------------------------------------------------------------------ */

/* createConnection(loop, transportObject, host, port, localHost, localPort)
 * -> Promise<transportObject> */
static napi_value x_create_connection(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  char *host = NULL, *lhost = NULL;
  int port, lport = 0;
  get_args(env, info, 6, argv);
  GET_LOOP(argv[0]);
  if (!arg_int(env, argv[3], &port, "port must be a number")) return NULL;
  if (!arg_opt_string(env, argv[2], &host)) return NULL;
  if (!arg_opt_string(env, argv[4], &lhost)) {
    free(host);
    return NULL;
  }
  if (lhost && !arg_int(env, argv[5], &lport, "localPort must be a number")) {
    free(host);
    free(lhost);
    return NULL;
  }
  transport_state *ts = ts_new(ls);
  if (ts == NULL || !ts_attach(env, ts, argv[1])) {
    free(host);
    free(lhost);
    if (ts) {
      ts->refs = 1;
      ts_release(ts);
    }
    return throw_type(env, "expected a fresh Transport object");
  }
  aloop_connect_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.size = sizeof opts;
  opts.local_host = lhost;
  opts.local_port = lport;
  aloop_future_t *fut = NULL;
  ts->refs++; /* the library's; ts_free_cb releases it */
  int rc = A.aloop_create_connection(ls->loop, host, port, &js_protocol,
                                     ts, ts_free_cb, lhost ? &opts : NULL, &fut);
  free(host);
  free(lhost);
  if (rc < 0) return throw_rc(env, rc); /* ts_free_cb ran */
  return op_start(env, ls, OP_CONNECT, ts, fut);
}

/* createServer(loop, serverObject, host, port, backlog, reuseAddress,
 *              reusePort, startServing) -> Promise<serverObject>
 * (the last four: numbers, -1 or undefined for the default) */
static napi_value x_create_server(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  char *host = NULL;
  int port, vals[4];
  get_args(env, info, 8, argv);
  GET_LOOP(argv[0]);
  if (!arg_int(env, argv[3], &port, "port must be a number")) return NULL;
  for (int i = 0; i < 4; i++) {
    napi_valuetype t;
    napi_typeof(env, argv[4 + i], &t);
    vals[i] = -1;
    if (t != napi_undefined && t != napi_null &&
        !arg_int(env, argv[4 + i], &vals[i], "server options must be numbers"))
      return NULL;
  }
  if (!arg_opt_string(env, argv[2], &host)) return NULL;
  server_state *ss = calloc(1, sizeof *ss);
  if (ss == NULL) {
    free(host);
    napi_throw_error(env, "ALOOP_ENOMEM", "out of memory");
    return NULL;
  }
  ss->tag = TAG_SERVER;
  ss->ls = ls;
  ls->refs++;
  LIST_INSERT(ls->servers, ss);
  if (napi_wrap(env, argv[1], ss, ss_finalize, NULL, NULL) != napi_ok) {
    free(host);
    ss->refs = 1;
    ss_release(ss);
    return throw_type(env, "expected a fresh Server object");
  }
  ss->refs = 2; /* the JS wrapper and the library */
  napi_create_reference(env, argv[1], 1, &ss->self);
  ss->strong = 1;
  aloop_server_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.size = sizeof opts;
  opts.backlog = vals[0] < 0 ? 0 : vals[0];
  opts.reuse_address = vals[1];
  opts.reuse_port = vals[2] < 0 ? 0 : vals[2];
  opts.start_serving = vals[3];
  aloop_future_t *fut = NULL;
  int rc = A.aloop_create_server(ls->loop, host, port, tr_connection, ss, ss_free_cb,
                                 &opts, &fut);
  free(host);
  if (rc < 0) return throw_rc(env, rc); /* ss_free_cb ran */
  return op_start(env, ls, OP_SERVER, ss, fut);
}

#define GET_SERVER(argv0)                                                      \
  server_state *ss = unwrap_tag(env, (argv0), TAG_SERVER, "expected a Server"); \
  if (ss == NULL) return NULL

static napi_value x_server_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_SERVER(argv[0]);
  int rc = A.aloop_server_close(ss->s);
  if (rc < 0 && rc != ALOOP_EBADF) return throw_rc(env, rc);
  ss_drop_strong(ss);
  ls_touch(ss->ls);
  return undefined(env);
}

static napi_value x_server_is_serving(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_SERVER(argv[0]);
  if (ss->s == NULL) return js_bool(env, 0);
  int rc = A.aloop_server_is_serving(ss->s);
  if (rc < 0) return rc == ALOOP_EBADF ? js_bool(env, 0) : throw_rc(env, rc);
  return js_bool(env, rc);
}

static napi_value x_server_start_serving(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_SERVER(argv[0]);
  int rc = A.aloop_server_start_serving(ss->s);
  if (rc < 0) return throw_rc(env, rc);
  ls_touch(ss->ls);
  return undefined(env);
}

/* serverWaitClosed(server) -> Promise<undefined> */
static napi_value x_server_wait_closed(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  aloop_future_t *fut = NULL;
  get_args(env, info, 1, argv);
  GET_SERVER(argv[0]);
  int rc = A.aloop_server_wait_closed(ss->s, &fut);
  if (rc < 0) return throw_rc(env, rc);
  return op_start(env, ss->ls, OP_WAIT_CLOSED, ss, fut);
}

/* serverSockets(server) -> [{fd, host, port}] */
static napi_value x_server_sockets(napi_env env, napi_callback_info info) {
  napi_value argv[1], arr;
  get_args(env, info, 1, argv);
  GET_SERVER(argv[0]);
  napi_create_array(env, &arr);
  if (ss->s == NULL) return arr;
  int n = A.aloop_server_socket_count(ss->s);
  if (n < 0) return n == ALOOP_EBADF ? arr : throw_rc(env, n);
  for (int i = 0; i < n; i++) {
    char host[256];
    int port = 0;
    int rc = A.aloop_server_sockname(ss->s, i, host, sizeof host, &port);
    if (rc < 0) return throw_rc(env, rc);
    napi_value o = make_address(env, host, port);
    napi_set_named_property(env, o, "fd", js_int(env, A.aloop_server_socket_fd(ss->s, i)));
    napi_set_element(env, arr, (uint32_t)i, o);
  }
  return arr;
}

#define GET_TRANSPORT(argv0)                                                   \
  transport_state *ts =                                                        \
      unwrap_tag(env, (argv0), TAG_TRANSPORT, "expected a Transport");        \
  if (ts == NULL) return NULL

/* The library answers ALOOP_EBADF for a transport whose handle went stale;
 * to JS that transport is simply closed. */
static napi_value ts_throw(napi_env env, transport_state *ts, int rc) {
  if (rc == ALOOP_EBADF && ts->lost) {
    napi_throw(env, make_error(env, ALOOP_ECLOSED, "the transport is closed"));
    return NULL;
  }
  if (rc == ALOOP_EBADF && ts->t == NULL) {
    napi_throw(env, make_error(env, ALOOP_ENOTCONN, "the transport is not connected"));
    return NULL;
  }
  return throw_rc(env, rc);
}

/* transportWrite(transport, ArrayBufferView) */
static napi_value x_transport_write(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  void *data = NULL;
  size_t len = 0;
  bool is_ta = false, is_dv = false;
  get_args(env, info, 2, argv);
  GET_TRANSPORT(argv[0]);
  napi_is_typedarray(env, argv[1], &is_ta);
  if (is_ta) {
    napi_typedarray_type tt;
    size_t n;
    napi_get_typedarray_info(env, argv[1], &tt, &n, &data, NULL, NULL);
    static const size_t sizes[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};
    len = n * ((size_t)tt < sizeof sizes / sizeof *sizes ? sizes[tt] : 1);
  } else if (napi_is_dataview(env, argv[1], &is_dv) == napi_ok && is_dv) {
    napi_get_dataview_info(env, argv[1], &len, &data, NULL, NULL);
  } else {
    return throw_type(env, "data must be a Buffer, TypedArray or DataView");
  }
  int rc = A.aloop_transport_write(ts->t, data, len);
  if (rc < 0) return ts_throw(env, ts, rc);
  ls_touch(ts->ls);
  return undefined(env);
}

/* Simple transport verbs: transportX(transport) */
enum { TV_CLOSE, TV_ABORT, TV_WRITE_EOF, TV_PAUSE, TV_RESUME };
static napi_value transport_verb(napi_env env, napi_callback_info info, int verb) {
  napi_value argv[1];
  int rc = 0;
  get_args(env, info, 1, argv);
  GET_TRANSPORT(argv[0]);
  if (ts->lost && (verb == TV_CLOSE || verb == TV_ABORT)) return undefined(env);
  switch (verb) {
  case TV_CLOSE: rc = A.aloop_transport_close(ts->t); break;
  case TV_ABORT: rc = A.aloop_transport_abort(ts->t); break;
  case TV_WRITE_EOF: rc = A.aloop_transport_write_eof(ts->t); break;
  case TV_PAUSE: rc = A.aloop_transport_pause_reading(ts->t); break;
  case TV_RESUME: rc = A.aloop_transport_resume_reading(ts->t); break;
  }
  if (rc < 0) return ts_throw(env, ts, rc);
  ls_touch(ts->ls);
  return undefined(env);
}
static napi_value x_transport_close(napi_env env, napi_callback_info info) {
  return transport_verb(env, info, TV_CLOSE);
}
static napi_value x_transport_abort(napi_env env, napi_callback_info info) {
  return transport_verb(env, info, TV_ABORT);
}
static napi_value x_transport_write_eof(napi_env env, napi_callback_info info) {
  return transport_verb(env, info, TV_WRITE_EOF);
}
static napi_value x_transport_pause_reading(napi_env env, napi_callback_info info) {
  return transport_verb(env, info, TV_PAUSE);
}
static napi_value x_transport_resume_reading(napi_env env, napi_callback_info info) {
  return transport_verb(env, info, TV_RESUME);
}

/* Predicates: a stale transport is closing, not reading, can't write_eof. */
enum { TP_CLOSING, TP_READING, TP_CAN_WRITE_EOF };
static napi_value transport_pred(napi_env env, napi_callback_info info, int pred) {
  napi_value argv[1];
  int rc = 0;
  get_args(env, info, 1, argv);
  GET_TRANSPORT(argv[0]);
  if (ts->t == NULL) return js_bool(env, pred == TP_CLOSING && ts->lost);
  switch (pred) {
  case TP_CLOSING: rc = A.aloop_transport_is_closing(ts->t); break;
  case TP_READING: rc = A.aloop_transport_is_reading(ts->t); break;
  case TP_CAN_WRITE_EOF: rc = A.aloop_transport_can_write_eof(ts->t); break;
  }
  if (rc < 0) return ts_throw(env, ts, rc);
  return js_bool(env, rc);
}
static napi_value x_transport_is_closing(napi_env env, napi_callback_info info) {
  return transport_pred(env, info, TP_CLOSING);
}
static napi_value x_transport_is_reading(napi_env env, napi_callback_info info) {
  return transport_pred(env, info, TP_READING);
}
static napi_value x_transport_can_write_eof(napi_env env, napi_callback_info info) {
  return transport_pred(env, info, TP_CAN_WRITE_EOF);
}

static napi_value x_transport_get_write_buffer_size(napi_env env,
                                                    napi_callback_info info) {
  napi_value argv[1];
  size_t n = 0;
  get_args(env, info, 1, argv);
  GET_TRANSPORT(argv[0]);
  if (ts->lost) return js_int(env, 0);
  int rc = A.aloop_transport_get_write_buffer_size(ts->t, &n);
  if (rc < 0) return ts_throw(env, ts, rc);
  return js_double(env, (double)n);
}

/* transportSetWriteBufferLimits(transport, high, low) */
static napi_value x_transport_set_write_buffer_limits(napi_env env,
                                                      napi_callback_info info) {
  napi_value argv[3];
  size_t high, low;
  get_args(env, info, 3, argv);
  GET_TRANSPORT(argv[0]);
  if (!arg_size(env, argv[1], &high, "high must be a number") ||
      !arg_size(env, argv[2], &low, "low must be a number"))
    return NULL;
  int rc = A.aloop_transport_set_write_buffer_limits(ts->t, high, low);
  if (rc < 0) return ts_throw(env, ts, rc);
  ls_touch(ts->ls);
  return undefined(env);
}

/* transportGetWriteBufferLimits(transport) -> {low, high} */
static napi_value x_transport_get_write_buffer_limits(napi_env env,
                                                      napi_callback_info info) {
  napi_value argv[1], o;
  size_t high = 0, low = 0;
  get_args(env, info, 1, argv);
  GET_TRANSPORT(argv[0]);
  int rc = A.aloop_transport_get_write_buffer_limits(ts->t, &high, &low);
  if (rc < 0) return ts_throw(env, ts, rc);
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "low", js_double(env, (double)low));
  napi_set_named_property(env, o, "high", js_double(env, (double)high));
  return o;
}

static napi_value x_transport_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_TRANSPORT(argv[0]);
  int rc = A.aloop_transport_get_fd(ts->t);
  if (rc < 0) return ts_throw(env, ts, rc);
  return js_int(env, rc);
}

/* transportAddress(transport, peer) -> {host, port} */
static napi_value x_transport_address(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char host[256];
  int port = 0;
  get_args(env, info, 2, argv);
  GET_TRANSPORT(argv[0]);
  int rc = arg_bool(env, argv[1])
               ? A.aloop_transport_get_peername(ts->t, host, sizeof host, &port)
               : A.aloop_transport_get_sockname(ts->t, host, sizeof host, &port);
  if (rc < 0) return ts_throw(env, ts, rc);
  return make_address(env, host, port);
}

/* ------------------------------------------------------------------------ */
/* Exports: benchmark helper                                                 */
/* ------------------------------------------------------------------------ */

typedef struct wake_job {
  aloop_loop_t *loop;
  void *id;
  int delay_us;
  struct timespec t0;
} wake_job;

static void wake_cb(aloop_loop_t *loop, void *ud) {
  (void)loop;
  wake_job *j = ud;
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  loop_state *ls = tls_current;
  if (!ls_can_call(ls)) return;
  double ns = (double)(t1.tv_sec - j->t0.tv_sec) * 1e9 +
              (double)(t1.tv_nsec - j->t0.tv_nsec);
  napi_handle_scope hs;
  if (napi_open_handle_scope(ls->env, &hs) != napi_ok) return;
  call_callback(ls, j->id, js_double(ls->env, ns));
  napi_close_handle_scope(ls->env, hs);
}

static void *wake_thread(void *arg) {
  wake_job *j = arg;
  if (j->delay_us > 0) usleep((useconds_t)j->delay_us);
  clock_gettime(CLOCK_MONOTONIC, &j->t0);
  A.aloop_call_soon_threadsafe(j->loop, wake_cb, j, free, NULL);
  return NULL;
}

/* wakeupFromThread(loop, id, delayUs): a new native thread sleeps delayUs,
 * then calls aloop_call_soon_threadsafe; the callback gets the latency in
 * ns (from the post to the callback on the JS thread) as its argument. */
static napi_value x_wakeup_from_thread(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  void *id;
  int delay;
  get_args(env, info, 3, argv);
  GET_LOOP(argv[0]);
  if (!arg_id(env, argv[1], &id) || !arg_int(env, argv[2], &delay, "delay"))
    return NULL;
  wake_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    napi_throw_error(env, "ALOOP_ENOMEM", "out of memory");
    return NULL;
  }
  j->loop = ls->loop;
  j->id = id;
  j->delay_us = delay;
  pthread_t th;
  if (pthread_create(&th, NULL, wake_thread, j) != 0) {
    free(j);
    napi_throw_error(env, "ALOOP_EAGAIN", "pthread_create failed");
    return NULL;
  }
  pthread_detach(th);
  return undefined(env);
}

/* ------------------------------------------------------------------------ */
/* Module                                                                    */
/* ------------------------------------------------------------------------ */

#define EXPORT(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_default, NULL}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  mod_state *m = calloc(1, sizeof *m);
  if (m == NULL) return NULL;
  m->env = env;
  napi_set_instance_data(env, m, mod_free, NULL);
  napi_add_env_cleanup_hook(env, mod_cleanup, m);
  napi_property_descriptor props[] = {
      EXPORT("load", x_load),
      EXPORT("errName", x_err_name),
      EXPORT("strerror", x_strerror),
      EXPORT("loopNew", x_loop_new),
      EXPORT("loopClose", x_loop_close),
      EXPORT("loopIsClosed", x_loop_is_closed),
      EXPORT("loopIsRunning", x_loop_is_running),
      EXPORT("loopAlive", x_loop_alive),
      EXPORT("loopTime", x_loop_time),
      EXPORT("loopSetDebug", x_loop_set_debug),
      EXPORT("loopGetDebug", x_loop_get_debug),
      EXPORT("loopRunNowait", x_loop_run_nowait),
      EXPORT("loopAbortAll", x_loop_abort_all),
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
      EXPORT("futureNew", x_future_new),
      EXPORT("futureState", x_future_state),
      EXPORT("futureCancel", x_future_cancel),
      EXPORT("futureSetResult", x_future_set_result),
      EXPORT("futureSetException", x_future_set_exception),
      EXPORT("futureAddDoneCallback", x_future_add_done_callback),
      EXPORT("futureRemoveDoneCallback", x_future_remove_done_callback),
      EXPORT("createConnection", x_create_connection),
      EXPORT("createServer", x_create_server),
      EXPORT("serverClose", x_server_close),
      EXPORT("serverIsServing", x_server_is_serving),
      EXPORT("serverStartServing", x_server_start_serving),
      EXPORT("serverWaitClosed", x_server_wait_closed),
      EXPORT("serverSockets", x_server_sockets),
      EXPORT("transportWrite", x_transport_write),
      EXPORT("transportClose", x_transport_close),
      EXPORT("transportAbort", x_transport_abort),
      EXPORT("transportWriteEof", x_transport_write_eof),
      EXPORT("transportCanWriteEof", x_transport_can_write_eof),
      EXPORT("transportIsClosing", x_transport_is_closing),
      EXPORT("transportPauseReading", x_transport_pause_reading),
      EXPORT("transportResumeReading", x_transport_resume_reading),
      EXPORT("transportIsReading", x_transport_is_reading),
      EXPORT("transportGetWriteBufferSize", x_transport_get_write_buffer_size),
      EXPORT("transportSetWriteBufferLimits", x_transport_set_write_buffer_limits),
      EXPORT("transportGetWriteBufferLimits", x_transport_get_write_buffer_limits),
      EXPORT("transportFd", x_transport_fd),
      EXPORT("transportAddress", x_transport_address),
      EXPORT("wakeupFromThread", x_wakeup_from_thread),
  };
  napi_define_properties(env, exports, sizeof props / sizeof *props, props);
  return exports;
}
