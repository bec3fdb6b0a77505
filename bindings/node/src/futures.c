/*
 * futures.c - Future (a library future wrapped by a JS object), and the
 * operations whose library future settles a JS Promise.
 */
#include "addon.h"

#include <sys/socket.h>

void tr_future_callback(aloop_future_t *f, void *ud); /* loop.c */

/* ------------------------------------------------------------------------ */
/* Operations                                                                */
/* ------------------------------------------------------------------------ */

typedef struct op_state {
  uint32_t tag; /* TAG_OP */
  int refs;     /* the library's registration + the Promise's wrap */
  loop_state *ls;
  napi_deferred deferred;
  int kind;
  obj_state *target;
  aloop_future_t *fut; /* until the library drops the done-callback */
  napi_ref keep;       /* memory the library writes into, until done */
  int settled;
  int adding;  /* inside aloop_future_add_done_callback */
  int counted; /* in ls->nops */
} op_state;

/* The operation no longer waits (for Node's liveness, see ls_update). */
static void op_uncount(op_state *op) {
  if (op->counted) {
    op->counted = 0;
    op->ls->nops--;
  }
}

static void op_unkeep(op_state *op) {
  if (op->keep && !op->ls->mod->dead) napi_delete_reference(op->ls->env, op->keep);
  op->keep = NULL;
}

static void op_release(op_state *op) {
  if (--op->refs > 0) return;
  loop_state *ls = op->ls;
  op_unkeep(op);
  if (op->target) obj_release(op->target);
  op->tag = 0;
  free(op);
  ls_release(ls);
}

static void op_reject(napi_env env, op_state *op, int code, const char *detail) {
  op->settled = 1;
  op_uncount(op);
  op_unkeep(op);
  napi_reject_deferred(env, op->deferred, aln_error(env, code, detail));
}

static napi_value address_object(napi_env env, aloop_future_t *f, napi_value o) {
  char host[256] = "";
  int port = 0;
  if (A.aloop_future_result_addr(f, host, sizeof host, &port) == 0) {
    napi_set_named_property(env, o, "host", js_str(env, host));
    napi_set_named_property(env, o, "port", js_int(env, port));
  }
  return o;
}

static napi_value addrinfo_array(napi_env env, aloop_future_t *f, int *rc) {
  aloop_addrinfo_t *list = NULL;
  size_t n = 0;
  napi_value arr;
  *rc = A.aloop_future_result_addrinfo(f, &list, &n);
  if (*rc < 0) return NULL;
  napi_create_array_with_length(env, n, &arr);
  uint32_t i = 0;
  for (aloop_addrinfo_t *ai = list; ai; ai = ai->next, i++) {
    napi_value o;
    napi_create_object(env, &o);
    napi_set_named_property(env, o, "family", js_int(env, ai->family));
    napi_set_named_property(env, o, "type", js_int(env, ai->type));
    napi_set_named_property(env, o, "protocol", js_int(env, ai->protocol));
    napi_set_named_property(env, o, "host", js_str(env, ai->host));
    napi_set_named_property(env, o, "port", js_int(env, ai->port));
    napi_set_named_property(env, o, "canonname", js_str(env, ai->canonname));
    napi_set_named_property(env, o, "scopeId", js_int(env, ai->scope_id));
    napi_set_element(env, arr, i, o);
  }
  A.aloop_addrinfo_free(list);
  return arr;
}

/* The value an operation of `kind` resolves to; NULL with *rc < 0 when the
 * result cannot be read. */
static napi_value op_value(napi_env env, op_state *op, aloop_future_t *f, int *rc) {
  napi_value o;
  size_t n = 0;
  *rc = 0;
  switch (op->kind) {
  case OP_OBJECT: {
    obj_state *t = op->target;
    void *h = NULL;
    switch (t->kind) {
    case K_TRANSPORT: *rc = A.aloop_future_result_transport(f, (aloop_transport_t **)&h); break;
    case K_SERVER: *rc = A.aloop_future_result_server(f, (aloop_server_t **)&h); break;
    case K_DATAGRAM: *rc = A.aloop_future_result_datagram(f, (aloop_datagram_t **)&h); break;
    case K_SUBPROCESS:
      *rc = A.aloop_future_result_subprocess(f, (aloop_subprocess_t **)&h);
      break;
    }
    if (*rc < 0) return NULL;
    if (t->h == NULL && !t->lost) t->h = h;
    return ref_value(env, t->self);
  }
  case OP_TARGET: return ref_value(env, op->target->self);
  case OP_VOID: return undefined(env);
  case OP_SIZE:
    *rc = A.aloop_future_result_size(f, &n);
    return *rc < 0 ? NULL : js_double(env, (double)n);
  case OP_BYTES:
  case OP_RECVFROM: {
    void *data = NULL;
    *rc = A.aloop_future_result_bytes(f, &data, &n);
    if (*rc < 0) return NULL;
    napi_value buf = js_buffer_copy(env, data, n);
    A.aloop_buffer_free(data);
    if (op->kind == OP_BYTES) return buf;
    napi_create_object(env, &o);
    napi_set_named_property(env, o, "data", buf);
    return address_object(env, f, o);
  }
  case OP_SIZE_ADDR:
    *rc = A.aloop_future_result_size(f, &n);
    if (*rc < 0) return NULL;
    napi_create_object(env, &o);
    napi_set_named_property(env, o, "nbytes", js_double(env, (double)n));
    return address_object(env, f, o);
  case OP_ACCEPT: {
    int fd = -1;
    *rc = A.aloop_future_result_fd(f, &fd);
    if (*rc < 0) return NULL;
    napi_create_object(env, &o);
    napi_set_named_property(env, o, "fd", js_int(env, fd));
    return address_object(env, f, o);
  }
  case OP_ADDRINFO: return addrinfo_array(env, f, rc);
  case OP_POINTER: {
    void *v = NULL;
    *rc = A.aloop_future_result(f, &v);
    return *rc < 0 ? NULL : make_handle(env, v);
  }
  case OP_NAMEINFO: {
    char host[1025] = "", serv[64] = "";
    *rc = A.aloop_future_result_nameinfo(f, host, sizeof host, serv, sizeof serv);
    if (*rc < 0) return NULL;
    napi_create_object(env, &o);
    napi_set_named_property(env, o, "host", js_str(env, host));
    napi_set_named_property(env, o, "service", js_str(env, serv));
    return o;
  }
  }
  return undefined(env);
}

static void op_done(aloop_future_t *f, void *ud) {
  op_state *op = ud;
  loop_state *ls = op->ls;
  if (op->settled || ls->mod->dead) return;
  napi_env env = ls->env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  int rc = A.aloop_future_exception(f);
  napi_value result = NULL;
  if (rc == 0) result = op_value(env, op, f, &rc);
  if (rc == 0) {
    op->settled = 1;
    op_uncount(op);
    op_unkeep(op);
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
  if (op->fut) {
    A.aloop_future_free(op->fut);
    op->fut = NULL;
  }
  op_uncount(op);
  if (op->adding) return; /* op_start settles and releases it */
  if (!op->settled && !ls->mod->dead) {
    napi_handle_scope hs;
    if (napi_open_handle_scope(ls->env, &hs) == napi_ok) {
      op_reject(ls->env, op, ALOOP_ECLOSED, "the loop was closed");
      napi_close_handle_scope(ls->env, hs);
    }
  }
  op_release(op);
}

static void op_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  op_release(data);
}

napi_value op_start(napi_env env, loop_state *ls, int kind, obj_state *target,
                    aloop_future_t *fut, napi_value keep, int cancellable) {
  napi_value promise;
  op_state *op = calloc(1, sizeof *op);
  if (op == NULL) {
    A.aloop_future_free(fut);
    return throw_code(env, ALOOP_ENOMEM, "out of memory");
  }
  op->tag = TAG_OP;
  op->refs = 1;
  op->ls = ls;
  ls->refs++;
  op->kind = kind;
  op->target = target;
  if (target) target->refs++;
  op->fut = fut;
  op->counted = 1;
  ls->nops++;
  if (keep) napi_create_reference(env, keep, 1, &op->keep);
  napi_create_promise(env, &op->deferred, &promise);
  if (cancellable && napi_wrap(env, promise, op, op_finalize, NULL, NULL) == napi_ok)
    op->refs++;
  op->adding = 1;
  int rc = A.aloop_future_add_done_callback(fut, op_done, op, op_free);
  op->adding = 0;
  if (rc < 0) {
    char buf[512];
    int n = A.aloop_last_error(buf, sizeof buf);
    if (!op->settled) op_reject(env, op, rc, n > 0 ? buf : NULL);
    if (op->fut) {
      A.aloop_future_free(op->fut);
      op->fut = NULL;
    }
    op_release(op);
  }
  ls_touch(ls);
  return promise;
}

napi_value op_result(napi_env env, int rc, loop_state *ls, int kind,
                     obj_state *target, aloop_future_t *fut, napi_value keep,
                     napi_value cancellable) {
  if (rc < 0) return throw_rc(env, rc);
  return op_start(env, ls, kind, target, fut, keep,
                  cancellable != NULL && arg_bool(env, cancellable));
}

/* opCancel(promise) -> true if the operation was cancelled now (its
 * Promise then rejects with ECANCELED), false if it was already done. */
static napi_value x_op_cancel(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  op_state *op = unwrap_tag(env, argv[0], TAG_OP, "expected a cancellable operation");
  if (op == NULL) return NULL;
  if (op->settled || op->fut == NULL) return js_bool(env, 0);
  int rc = A.aloop_future_cancel(op->fut);
  ls_touch(op->ls);
  if (rc < 0) return throw_rc(env, rc);
  return js_bool(env, rc);
}

/* wrapFuture(loop, future, cancellable) -> Promise: a future of a foreign
 * library (an aloop_future_t * as a BigInt) settles a Promise (docs/
 * interop.md). Takes over the caller's reference: freed once the
 * done-callback ran, or at once when wrapping fails. */
static napi_value x_wrap_future(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  void *h = NULL;
  get_args(env, info, 3, argv);
  GET_LOOP(argv[0]);
  if (!arg_handle(env, argv[1], &h)) return NULL;
  if (h == NULL) return throw_type(env, "future must be a non-NULL aloop_future_t * (a BigInt)");
  if (ls->closed) return throw_code(env, ALOOP_ECLOSED, "the loop is closed");
  /* A stale or foreign handle fails here (ALOOP_EBADF) without freeing. */
  int rc = A.aloop_future_done((aloop_future_t *)h);
  if (rc < 0) return throw_rc(env, rc);
  return op_start(env, ls, OP_POINTER, NULL, (aloop_future_t *)h, NULL, arg_bool(env, argv[2]));
}

/* ------------------------------------------------------------------------ */
/* Future                                                                    */
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
  future_state *fs = aln_alloc(env, sizeof *fs);
  if (fs == NULL) return NULL;
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

const napi_property_descriptor aln_future_exports[] = {
    EXPORT("opCancel", x_op_cancel),
    EXPORT("wrapFuture", x_wrap_future),
    EXPORT("futureNew", x_future_new),
    EXPORT("futureState", x_future_state),
    EXPORT("futureCancel", x_future_cancel),
    EXPORT("futureSetResult", x_future_set_result),
    EXPORT("futureSetException", x_future_set_exception),
    EXPORT("futureAddDoneCallback", x_future_add_done_callback),
    EXPORT("futureRemoveDoneCallback", x_future_remove_done_callback),
};
const size_t aln_future_nexports = COUNT_OF(aln_future_exports);
