/*
 * streams.c - stream transports and servers: TCP and Unix connections and
 * servers, accepted sockets, read/write pipes; the transport functions
 * (also for a subprocess's pipes), writev, sendfile.
 */
#include "addon.h"

/* ------------------------------------------------------------------------ */
/* The stream protocol: library callbacks -> JS dispatch                     */
/* ------------------------------------------------------------------------ */

ALN_COMMON_CALLBACKS(pr, aloop_transport_t)

static void pr_data_received(aloop_transport_t *t, const char *data, size_t len,
                             void *ud) {
  (void)t;
  obj_state *o = ud;
  napi_handle_scope hs;
  if (!obj_enter(o, &hs)) return;
  napi_value buf = js_buffer_copy(o->ls->env, data, len);
  if (buf) obj_call(o, D_DATA_RECEIVED, 1, &buf);
  obj_leave(o, hs);
}

static int pr_eof_received(aloop_transport_t *t, void *ud) {
  (void)t;
  obj_state *o = ud;
  napi_handle_scope hs;
  int keep = 0;
  if (!obj_enter(o, &hs)) return 0;
  napi_value r = obj_call(o, D_EOF_RECEIVED, 0, NULL);
  if (r) keep = arg_bool(o->ls->env, r);
  obj_leave(o, hs);
  return keep;
}

/* Buffered protocol: the library reads straight into the memory the JS
 * getBuffer(sizehint) returned (kept referenced until buffer_updated). */
static void *pr_get_buffer(aloop_transport_t *t, size_t sizehint, size_t *len,
                           void *ud) {
  (void)t;
  obj_state *o = ud;
  napi_env env = o->ls->env;
  napi_handle_scope hs;
  void *data = NULL;
  *len = 0;
  if (!obj_enter(o, &hs)) return NULL;
  napi_value hint = js_double(env, (double)sizehint);
  napi_value r = obj_call(o, D_GET_BUFFER, 1, &hint);
  bool is = false;
  if (r && napi_is_typedarray(env, r, &is) == napi_ok && is) {
    napi_typedarray_type tt;
    size_t n = 0;
    napi_get_typedarray_info(env, r, &tt, &n, &data, NULL, NULL);
    if (tt == napi_uint8_array || tt == napi_int8_array || tt == napi_uint8_clamped_array) {
      *len = n;
      if (o->buf) napi_delete_reference(env, o->buf);
      napi_create_reference(env, r, 1, &o->buf);
    } else {
      data = NULL; /* the JS layer checks the type; anything else is empty */
    }
  }
  obj_leave(o, hs);
  return *len ? data : NULL;
}

static void pr_buffer_updated(aloop_transport_t *t, size_t nbytes, void *ud) {
  (void)t;
  obj_state *o = ud;
  napi_handle_scope hs;
  if (!obj_enter(o, &hs)) return;
  napi_value n = js_double(o->ls->env, (double)nbytes);
  obj_call(o, D_BUFFER_UPDATED, 1, &n);
  if (o->buf) {
    napi_delete_reference(o->ls->env, o->buf);
    o->buf = NULL;
  }
  obj_leave(o, hs);
}

const aloop_protocol_t aln_stream_protocol = {
    sizeof(aloop_protocol_t), pr_connection_made, pr_data_received,
    pr_eof_received,          pr_connection_lost, pr_pause_writing,
    pr_resume_writing,        NULL,               NULL,
    0};

const aloop_protocol_t aln_buffered_protocol = {
    sizeof(aloop_protocol_t), pr_connection_made, NULL,
    pr_eof_received,          pr_connection_lost, pr_pause_writing,
    pr_resume_writing,        pr_get_buffer,      pr_buffer_updated,
    0};

static const aloop_protocol_t *protocol_for(int buffered) {
  return buffered ? &aln_buffered_protocol : &aln_stream_protocol;
}

/* The JS Transport of a library transport (exception contexts). */
napi_value transport_value(napi_env env, loop_state *ls, aloop_transport_t *t) {
  obj_state *o = obj_find(ls, K_TRANSPORT, t);
  return o ? ref_value(env, o->self) : NULL;
}

/* A new transport state around a fresh JS Transport, registered with the
 * library by the caller (obj_lib_ref is done here). */
static obj_state *new_transport(napi_env env, loop_state *ls, napi_value jsobj,
                                napi_value buffered) {
  obj_state *o = obj_create(env, ls, K_TRANSPORT, jsobj, "expected a fresh Transport object");
  if (o == NULL) return NULL;
  o->buffered = arg_bool(env, buffered);
  obj_lib_ref(o); /* the library's; obj_free_cb releases it */
  return o;
}

/* ------------------------------------------------------------------------ */
/* Servers                                                                   */
/* ------------------------------------------------------------------------ */

static int tr_connection(aloop_server_t *server, aloop_transport_t *t, void *ud) {
  obj_state *ss = ud;
  loop_state *ls = ss->ls;
  if (ss->h == NULL) ss->h = server;
  if (!ls_can_call(ls)) return -1;
  napi_env env = ls->env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return -1;
  int rc = -1;
  napi_value tobj = obj_call(ss, D_CONNECTION, 0, NULL);
  napi_valuetype type = napi_undefined;
  if (tobj) napi_typeof(env, tobj, &type);
  obj_state *o = type == napi_object ? obj_new(ls, K_TRANSPORT) : NULL;
  if (o && obj_attach(env, o, tobj)) {
    napi_value b;
    o->h = t;
    if (napi_get_named_property(env, tobj, "_buffered", &b) == napi_ok)
      o->buffered = arg_bool(env, b);
    obj_lib_ref(o);
    rc = A.aloop_transport_set_protocol(t, protocol_for(o->buffered), o, obj_free_cb);
    rc = rc < 0 ? -1 : 0; /* on failure obj_free_cb already ran */
  } else if (o) {
    obj_discard(o);
  }
  napi_close_handle_scope(env, hs);
  return rc;
}

static obj_state *new_server(napi_env env, loop_state *ls, napi_value jsobj) {
  obj_state *o = obj_create(env, ls, K_SERVER, jsobj, "expected a fresh Server object");
  if (o) obj_lib_ref(o);
  return o;
}

/* createServer(loop, server, host | [hosts] | null, port, options,
 *              cancellable) -> Promise<server>
 * options: {backlog, reuseAddress, reusePort, startServing, family, flags,
 *           sock, tls: SecureContext} */
static napi_value x_create_server(napi_env env, napi_callback_info info) {
  napi_value argv[6], v;
  char *host = NULL, **hosts = NULL;
  int port;
  bool is_array = false;
  get_args(env, info, 6, argv);
  GET_LOOP(argv[0]);
  napi_value o = argv[4];
  aloop_server_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.size = sizeof opts;
  int ok = 1;
  if (!arg_int(env, argv[3], &port, "port must be a number") ||
      !opt_int(env, o, "backlog", &opts.backlog, 0) ||
      !opt_int(env, o, "family", &opts.family, 0) ||
      !opt_int(env, o, "flags", &opts.flags, 0))
    return NULL;
  opts.reuse_address = opt_flag(env, o, "reuseAddress");
  opts.reuse_port = opt_flag(env, o, "reusePort") > 0;
  opts.start_serving = opt_flag(env, o, "startServing");
  if (!opt_sock(env, o, &opts.has_sock, &opts.sock)) return NULL;
  opts.tls = opt_get(env, o, "tls", &v) ? tls_config_arg(env, v, &ok) : NULL;
  if (!ok) return NULL;
  napi_is_array(env, argv[2], &is_array);
  if (is_array ? !arg_string_array(env, argv[2], &hosts, "hosts must be strings")
               : !arg_opt_string(env, argv[2], &host, "host must be a string or null"))
    return NULL;
  opts.hosts = (const char *const *)hosts;
  obj_state *ss = new_server(env, ls, argv[1]);
  if (ss == NULL) {
    free(host);
    free_string_array(hosts);
    return NULL;
  }
  aloop_future_t *fut = NULL;
  int rc = A.aloop_create_server(ls->loop, host, port, tr_connection, ss, obj_free_cb,
                                 &opts, &fut);
  free(host);
  free_string_array(hosts);
  return op_result(env, rc, ls, OP_OBJECT, ss, fut, NULL, argv[5]);
}

/* createUnixServer(loop, server, path, options, cancellable)
 * options: {backlog, startServing, cleanupSocket, tls} */
static napi_value x_create_unix_server(napi_env env, napi_callback_info info) {
  napi_value argv[5], v;
  char *path = NULL;
  get_args(env, info, 5, argv);
  GET_LOOP(argv[0]);
  napi_value o = argv[3];
  aloop_unix_server_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.size = sizeof opts;
  int ok = 1;
  if (!opt_int(env, o, "backlog", &opts.backlog, 0)) return NULL;
  opts.start_serving = opt_flag(env, o, "startServing");
  opts.cleanup_socket = opt_flag(env, o, "cleanupSocket");
  opts.tls = opt_get(env, o, "tls", &v) ? tls_config_arg(env, v, &ok) : NULL;
  if (!ok || !arg_string(env, argv[2], &path, "path must be a string")) return NULL;
  obj_state *ss = new_server(env, ls, argv[1]);
  if (ss == NULL) {
    free(path);
    return NULL;
  }
  aloop_future_t *fut = NULL;
  int rc = A.aloop_create_unix_server(ls->loop, path, tr_connection, ss, obj_free_cb,
                                      &opts, &fut);
  free(path);
  return op_result(env, rc, ls, OP_OBJECT, ss, fut, NULL, argv[4]);
}

static napi_value x_server_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_OBJ(ss, argv[0], K_SERVER, "expected a Server");
  int rc = A.aloop_server_close(ss->h);
  if (rc < 0 && rc != ALOOP_EBADF) return throw_rc(env, rc);
  obj_uncount(ss);
  obj_drop_strong(ss);
  ls_touch(ss->ls);
  return undefined(env);
}

static napi_value x_server_is_serving(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_OBJ(ss, argv[0], K_SERVER, "expected a Server");
  if (ss->h == NULL) return js_bool(env, 0);
  int rc = A.aloop_server_is_serving(ss->h);
  if (rc < 0) return rc == ALOOP_EBADF ? js_bool(env, 0) : throw_rc(env, rc);
  return js_bool(env, rc);
}

static napi_value x_server_start_serving(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_OBJ(ss, argv[0], K_SERVER, "expected a Server");
  int rc = A.aloop_server_start_serving(ss->h);
  if (rc < 0) return throw_rc(env, rc);
  ls_touch(ss->ls);
  return undefined(env);
}

/* serverWaitClosed(server, cancellable) -> Promise<undefined> */
static napi_value x_server_wait_closed(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  aloop_future_t *fut = NULL;
  get_args(env, info, 2, argv);
  GET_OBJ(ss, argv[0], K_SERVER, "expected a Server");
  int rc = A.aloop_server_wait_closed(ss->h, &fut);
  return op_result(env, rc, ss->ls, OP_VOID, ss, fut, NULL, argv[1]);
}

/* serverSockets(server) -> [{fd, host, port}] */
static napi_value x_server_sockets(napi_env env, napi_callback_info info) {
  napi_value argv[1], arr;
  get_args(env, info, 1, argv);
  GET_OBJ(ss, argv[0], K_SERVER, "expected a Server");
  napi_create_array(env, &arr);
  if (ss->h == NULL) return arr;
  int n = A.aloop_server_socket_count(ss->h);
  if (n < 0) return n == ALOOP_EBADF ? arr : throw_rc(env, n);
  for (int i = 0; i < n; i++) {
    char host[256];
    int port = 0;
    int rc = A.aloop_server_sockname(ss->h, i, host, sizeof host, &port);
    if (rc < 0) return throw_rc(env, rc);
    napi_value o = make_address(env, host, port);
    napi_set_named_property(env, o, "fd", js_int(env, A.aloop_server_socket_fd(ss->h, i)));
    napi_set_element(env, arr, (uint32_t)i, o);
  }
  return arr;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                               */
/* ------------------------------------------------------------------------ */

/* createConnection(loop, transport, host, port, options, buffered,
 *                  cancellable) -> Promise<transport>
 * options: {localHost, localPort, happyEyeballsDelay (s), interleave,
 *           family, flags, sock, tls: SecureContext, serverHostname} */
static napi_value x_create_connection(napi_env env, napi_callback_info info) {
  napi_value argv[7], v;
  char *host = NULL, *lhost = NULL, *sni = NULL;
  int port;
  get_args(env, info, 7, argv);
  GET_LOOP(argv[0]);
  napi_value o = argv[4];
  aloop_connect_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.size = sizeof opts;
  int ok = 1;
  if (!arg_int(env, argv[3], &port, "port must be a number") ||
      !opt_int(env, o, "localPort", &opts.local_port, 0) ||
      !opt_double(env, o, "happyEyeballsDelay", &opts.happy_eyeballs_delay, 0) ||
      !opt_int(env, o, "interleave", &opts.interleave, 0) ||
      !opt_int(env, o, "family", &opts.family, 0) || !opt_int(env, o, "flags", &opts.flags, 0))
    return NULL;
  if (!opt_sock(env, o, &opts.has_sock, &opts.sock)) return NULL;
  opts.tls = opt_get(env, o, "tls", &v) ? tls_config_arg(env, v, &ok) : NULL;
  if (!ok || !arg_opt_string(env, argv[2], &host, "host must be a string or null"))
    return NULL;
  if (!opt_string(env, o, "localHost", &lhost) ||
      !opt_string(env, o, "serverHostname", &sni)) {
    free(host);
    free(lhost);
    return NULL;
  }
  opts.local_host = lhost;
  opts.server_hostname = sni;
  aloop_future_t *fut = NULL;
  int rc = ALOOP_ENOMEM;
  obj_state *t = new_transport(env, ls, argv[1], argv[5]);
  if (t != NULL)
    rc = A.aloop_create_connection(ls->loop, host, port, protocol_for(t->buffered), t,
                                   obj_free_cb, &opts, &fut);
  free(host);
  free(lhost);
  free(sni);
  if (t == NULL) return NULL;
  return op_result(env, rc, ls, OP_OBJECT, t, fut, NULL, argv[6]);
}

/* createUnixConnection(loop, transport, path, buffered, cancellable) */
static napi_value x_create_unix_connection(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  char *path = NULL;
  get_args(env, info, 5, argv);
  GET_LOOP(argv[0]);
  if (!arg_string(env, argv[2], &path, "path must be a string")) return NULL;
  obj_state *t = new_transport(env, ls, argv[1], argv[3]);
  if (t == NULL) {
    free(path);
    return NULL;
  }
  aloop_future_t *fut = NULL;
  int rc = A.aloop_create_unix_connection(ls->loop, path, protocol_for(t->buffered), t,
                                          obj_free_cb, &fut);
  free(path);
  return op_result(env, rc, ls, OP_OBJECT, t, fut, NULL, argv[4]);
}

/* An fd wrapped into a transport: connectAcceptedSocket, connectReadPipe,
 * connectWritePipe (loop, transport, fd, buffered, cancellable). */
enum { FD_ACCEPTED, FD_READ_PIPE, FD_WRITE_PIPE };
static napi_value connect_fd(napi_env env, napi_callback_info info, int which) {
  napi_value argv[5];
  int fd;
  get_args(env, info, 5, argv);
  GET_LOOP(argv[0]);
  if (!arg_int(env, argv[2], &fd, "fd must be a number")) return NULL;
  obj_state *t = new_transport(env, ls, argv[1], argv[3]);
  if (t == NULL) return NULL;
  const aloop_protocol_t *p = protocol_for(t->buffered);
  aloop_future_t *fut = NULL;
  int rc;
  switch (which) {
  case FD_ACCEPTED:
    rc = A.aloop_connect_accepted_socket(ls->loop, fd, p, t, obj_free_cb, &fut);
    break;
  case FD_READ_PIPE: rc = A.aloop_connect_read_pipe(ls->loop, fd, p, t, obj_free_cb, &fut); break;
  default: rc = A.aloop_connect_write_pipe(ls->loop, fd, p, t, obj_free_cb, &fut); break;
  }
  return op_result(env, rc, ls, OP_OBJECT, t, fut, NULL, argv[4]);
}
static napi_value x_connect_accepted_socket(napi_env env, napi_callback_info info) {
  return connect_fd(env, info, FD_ACCEPTED);
}
static napi_value x_connect_read_pipe(napi_env env, napi_callback_info info) {
  return connect_fd(env, info, FD_READ_PIPE);
}
static napi_value x_connect_write_pipe(napi_env env, napi_callback_info info) {
  return connect_fd(env, info, FD_WRITE_PIPE);
}

/* ------------------------------------------------------------------------ */
/* Transport functions                                                       */
/* ------------------------------------------------------------------------ */

/* The library transport of a JS Transport, or of a subprocess's pipe.
 * Throws and returns 0 when v is neither or the pipe is gone. *o is NULL for
 * a pipe. */
int get_transport(napi_env env, napi_value v, aloop_transport_t **t, loop_state **ls,
                  obj_state **o) {
  void *p = NULL;
  *o = NULL;
  if (napi_unwrap(env, v, &p) != napi_ok || p == NULL) {
    if (require_loaded(env)) throw_type(env, "expected a Transport");
    return 0;
  }
  if (*(uint32_t *)p == TAG_OBJ && ((obj_state *)p)->kind == K_TRANSPORT) {
    *o = p;
    *t = (*o)->h;
    *ls = (*o)->ls;
    return 1;
  }
  if (*(uint32_t *)p == TAG_PIPE) {
    pipe_state *ps = p;
    *ls = ps->proc->ls;
    *t = NULL;
    if (ps->proc->h != NULL &&
        A.aloop_subprocess_get_pipe_transport(ps->proc->h, ps->fd, t) == 0 && *t != NULL)
      return 1;
    throw_code(env, ALOOP_ECLOSED, "the pipe is closed");
    return 0;
  }
  throw_type(env, "expected a Transport");
  return 0;
}

#define GET_TRANSPORT(argv0)                                                   \
  aloop_transport_t *t;                                                        \
  loop_state *ls;                                                              \
  obj_state *o;                                                                \
  if (!get_transport(env, (argv0), &t, &ls, &o)) return NULL

static napi_value tthrow(napi_env env, obj_state *o, int rc) {
  return o ? obj_throw(env, o, rc) : throw_rc(env, rc);
}

/* transportWrite(transport, ArrayBufferView) */
static napi_value x_transport_write(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  void *data;
  size_t len;
  get_args(env, info, 2, argv);
  GET_TRANSPORT(argv[0]);
  if (!arg_bytes(env, argv[1], &data, &len)) return NULL;
  int rc = A.aloop_transport_write(t, data, len);
  if (rc < 0) return tthrow(env, o, rc);
  ls_touch(ls);
  return undefined(env);
}

/* transportWritev(transport, [ArrayBufferView]) */
static napi_value x_transport_writev(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  aloop_iovec_t stack[16], *iov = stack;
  uint32_t n = 0;
  bool is = false;
  get_args(env, info, 2, argv);
  GET_TRANSPORT(argv[0]);
  if (napi_is_array(env, argv[1], &is) != napi_ok || !is)
    return throw_type(env, "expected an array of buffers");
  napi_get_array_length(env, argv[1], &n);
  if (n > COUNT_OF(stack) && (iov = aln_alloc(env, n * sizeof *iov)) == NULL) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    void *data;
    napi_get_element(env, argv[1], i, &e);
    if (!arg_bytes(env, e, &data, &iov[i].len)) {
      if (iov != stack) free(iov);
      return NULL;
    }
    iov[i].base = data;
  }
  int rc = A.aloop_transport_writev(t, iov, n);
  if (iov != stack) free(iov);
  if (rc < 0) return tthrow(env, o, rc);
  ls_touch(ls);
  return undefined(env);
}

/* Simple transport verbs: transportX(transport) */
enum { TV_CLOSE, TV_ABORT, TV_WRITE_EOF, TV_PAUSE, TV_RESUME };
static napi_value transport_verb(napi_env env, napi_callback_info info, int verb) {
  napi_value argv[1];
  int rc = 0;
  get_args(env, info, 1, argv);
  void *p = NULL;
  /* close and abort of a pipe that is gone, or of a lost transport: no-op */
  if ((verb == TV_CLOSE || verb == TV_ABORT) && napi_unwrap(env, argv[0], &p) == napi_ok &&
      p != NULL) {
    if (*(uint32_t *)p == TAG_OBJ && ((obj_state *)p)->lost) return undefined(env);
    if (*(uint32_t *)p == TAG_PIPE) {
      pipe_state *ps = p;
      aloop_transport_t *pt = NULL;
      if (ps->proc->h == NULL ||
          A.aloop_subprocess_get_pipe_transport(ps->proc->h, ps->fd, &pt) < 0 || pt == NULL)
        return undefined(env);
    }
  }
  GET_TRANSPORT(argv[0]);
  switch (verb) {
  case TV_CLOSE: rc = A.aloop_transport_close(t); break;
  case TV_ABORT: rc = A.aloop_transport_abort(t); break;
  case TV_WRITE_EOF: rc = A.aloop_transport_write_eof(t); break;
  case TV_PAUSE: rc = A.aloop_transport_pause_reading(t); break;
  case TV_RESUME: rc = A.aloop_transport_resume_reading(t); break;
  }
  if (rc < 0) return tthrow(env, o, rc);
  ls_touch(ls);
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
  void *p = NULL;
  get_args(env, info, 1, argv);
  if (napi_unwrap(env, argv[0], &p) == napi_ok && p != NULL && *(uint32_t *)p == TAG_OBJ) {
    obj_state *ob = p;
    if (ob->h == NULL) return js_bool(env, pred == TP_CLOSING && ob->lost);
  } else if (p != NULL && *(uint32_t *)p == TAG_PIPE) {
    pipe_state *ps = p;
    aloop_transport_t *pt = NULL;
    if (ps->proc->h == NULL ||
        A.aloop_subprocess_get_pipe_transport(ps->proc->h, ps->fd, &pt) < 0 || pt == NULL)
      return js_bool(env, pred == TP_CLOSING);
  }
  GET_TRANSPORT(argv[0]);
  switch (pred) {
  case TP_CLOSING: rc = A.aloop_transport_is_closing(t); break;
  case TP_READING: rc = A.aloop_transport_is_reading(t); break;
  case TP_CAN_WRITE_EOF: rc = A.aloop_transport_can_write_eof(t); break;
  }
  if (rc < 0) return tthrow(env, o, rc);
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
  if (o && o->lost) return js_int(env, 0);
  int rc = A.aloop_transport_get_write_buffer_size(t, &n);
  if (rc < 0) return tthrow(env, o, rc);
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
  int rc = A.aloop_transport_set_write_buffer_limits(t, high, low);
  if (rc < 0) return tthrow(env, o, rc);
  ls_touch(ls);
  return undefined(env);
}

/* transportGetWriteBufferLimits(transport) -> {low, high} */
static napi_value x_transport_get_write_buffer_limits(napi_env env,
                                                      napi_callback_info info) {
  napi_value argv[1];
  size_t high = 0, low = 0;
  get_args(env, info, 1, argv);
  GET_TRANSPORT(argv[0]);
  int rc = A.aloop_transport_get_write_buffer_limits(t, &high, &low);
  if (rc < 0) return tthrow(env, o, rc);
  return make_limits(env, high, low);
}

static napi_value x_transport_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_TRANSPORT(argv[0]);
  int rc = A.aloop_transport_get_fd(t);
  if (rc < 0) return tthrow(env, o, rc);
  return js_int(env, rc);
}

/* transportAddress(transport, peer) -> {host, port} */
static napi_value x_transport_address(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char host[256];
  int port = 0;
  get_args(env, info, 2, argv);
  GET_TRANSPORT(argv[0]);
  int rc = arg_bool(env, argv[1]) ? A.aloop_transport_get_peername(t, host, sizeof host, &port)
                                  : A.aloop_transport_get_sockname(t, host, sizeof host, &port);
  if (rc < 0) return tthrow(env, o, rc);
  return make_address(env, host, port);
}

/* transportSetProtocol(transport, buffered): the JS layer keeps the
 * protocol object; the library needs to know whether it reads into
 * getBuffer's memory. */
static napi_value x_transport_set_protocol(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  get_args(env, info, 2, argv);
  GET_OBJ(o, argv[0], K_TRANSPORT, "expected a Transport");
  int buffered = arg_bool(env, argv[1]);
  if (buffered == o->buffered || o->h == NULL || o->lost) {
    o->buffered = buffered;
    return undefined(env);
  }
  obj_lib_ref(o); /* the old registration's free_cb releases one */
  int rc = A.aloop_transport_set_protocol(o->h, protocol_for(buffered), o, obj_free_cb);
  if (rc < 0) return obj_throw(env, o, rc);
  o->buffered = buffered;
  return undefined(env);
}

/* transportSendfile(transport, fileFd, offset, count, fallback,
 *                   cancellable) -> Promise<bytes> */
static napi_value x_transport_sendfile(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  int fd;
  int64_t offset, count;
  get_args(env, info, 6, argv);
  GET_OBJ(o, argv[0], K_TRANSPORT, "expected a Transport");
  if (!arg_int(env, argv[1], &fd, "file must be an fd") ||
      !arg_int64(env, argv[2], &offset, "offset must be a number") ||
      !arg_int64(env, argv[3], &count, "count must be a number"))
    return NULL;
  aloop_future_t *fut = NULL;
  int rc = A.aloop_transport_sendfile(o->h, fd, offset, count, arg_bool(env, argv[4]), &fut);
  if (rc < 0) return obj_throw(env, o, rc);
  return op_start(env, o->ls, OP_SIZE, o, fut, NULL, arg_bool(env, argv[5]));
}

const napi_property_descriptor aln_stream_exports[] = {
    EXPORT("createServer", x_create_server),
    EXPORT("createUnixServer", x_create_unix_server),
    EXPORT("serverClose", x_server_close),
    EXPORT("serverIsServing", x_server_is_serving),
    EXPORT("serverStartServing", x_server_start_serving),
    EXPORT("serverWaitClosed", x_server_wait_closed),
    EXPORT("serverSockets", x_server_sockets),
    EXPORT("createConnection", x_create_connection),
    EXPORT("createUnixConnection", x_create_unix_connection),
    EXPORT("connectAcceptedSocket", x_connect_accepted_socket),
    EXPORT("connectReadPipe", x_connect_read_pipe),
    EXPORT("connectWritePipe", x_connect_write_pipe),
    EXPORT("transportWrite", x_transport_write),
    EXPORT("transportWritev", x_transport_writev),
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
    EXPORT("transportSetProtocol", x_transport_set_protocol),
    EXPORT("transportSendfile", x_transport_sendfile),
};
const size_t aln_stream_nexports = COUNT_OF(aln_stream_exports);
