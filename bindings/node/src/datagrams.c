/*
 * datagrams.c - UDP and Unix datagram endpoints.
 */
#include "addon.h"

ALN_COMMON_CALLBACKS(dg, aloop_datagram_t)

static void dg_datagram_received(aloop_datagram_t *d, const char *data, size_t len,
                                 const char *host, int port, void *ud) {
  (void)d;
  obj_state *o = ud;
  napi_env env = o->ls->env;
  napi_handle_scope hs;
  if (!obj_enter(o, &hs)) return;
  napi_value args[3] = {js_buffer_copy(env, data, len), js_str(env, host), js_int(env, port)};
  if (args[0]) obj_call(o, D_DATAGRAM, 3, args);
  obj_leave(o, hs);
}

static void dg_error_received(aloop_datagram_t *d, int error, void *ud) {
  (void)d;
  obj_event_error(ud, D_ERROR_RECEIVED, error);
}

static const aloop_datagram_protocol_t dg_protocol = {
    sizeof(aloop_datagram_protocol_t), dg_connection_made, dg_datagram_received,
    dg_error_received, dg_connection_lost, dg_pause_writing, dg_resume_writing, 0};

/* createDatagramEndpoint(loop, endpoint, localHost, localPort, remoteHost,
 *                        remotePort, options, cancellable) -> Promise<endpoint>
 * hosts null = none; options: {family, reusePort, allowBroadcast, sock} */
static napi_value x_create_datagram_endpoint(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  char *lhost = NULL, *rhost = NULL;
  int lport, rport;
  get_args(env, info, 8, argv);
  GET_LOOP(argv[0]);
  napi_value o = argv[6];
  aloop_datagram_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.size = sizeof opts;
  if (!arg_opt_int(env, argv[3], &lport, 0, "localPort must be a number") ||
      !arg_opt_int(env, argv[5], &rport, 0, "remotePort must be a number") ||
      !opt_int(env, o, "family", &opts.family, 0))
    return NULL;
  opts.reuse_port = opt_flag(env, o, "reusePort") > 0;
  opts.allow_broadcast = opt_flag(env, o, "allowBroadcast") > 0;
  if (!opt_sock(env, o, &opts.has_sock, &opts.sock)) return NULL;
  if (!arg_opt_string(env, argv[2], &lhost, "localAddr host must be a string")) return NULL;
  if (!arg_opt_string(env, argv[4], &rhost, "remoteAddr host must be a string")) {
    free(lhost);
    return NULL;
  }
  aloop_future_t *fut = NULL;
  int rc = 0;
  obj_state *d = obj_create(env, ls, K_DATAGRAM, argv[1], "expected a fresh DatagramTransport");
  if (d != NULL) {
    obj_lib_ref(d);
    rc = A.aloop_create_datagram_endpoint(ls->loop, lhost, lport, rhost, rport, &dg_protocol,
                                          d, obj_free_cb, &opts, &fut);
  }
  free(lhost);
  free(rhost);
  if (d == NULL) return NULL;
  return op_result(env, rc, ls, OP_OBJECT, d, fut, NULL, argv[7]);
}

#define GET_DGRAM(argv0) GET_OBJ(d, argv0, K_DATAGRAM, "expected a DatagramTransport")

/* datagramSendto(endpoint, data, host | null, port) */
static napi_value x_datagram_sendto(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  void *data;
  size_t len;
  char hostbuf[128], *host = NULL;
  int port;
  get_args(env, info, 4, argv);
  GET_DGRAM(argv[0]);
  if (!arg_bytes(env, argv[1], &data, &len) ||
      !arg_opt_int(env, argv[3], &port, 0, "port must be a number") ||
      !arg_opt_string_buf(env, argv[2], hostbuf, sizeof hostbuf, &host, "host must be a string"))
    return NULL;
  int rc = A.aloop_datagram_sendto(d->h, data, len, host, port);
  if (host != hostbuf) free(host);
  if (rc < 0) return obj_throw(env, d, rc);
  ls_touch(d->ls);
  return undefined(env);
}

enum { DV_CLOSE, DV_ABORT };
static napi_value datagram_verb(napi_env env, napi_callback_info info, int verb) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_DGRAM(argv[0]);
  if (d->lost || d->h == NULL) return undefined(env);
  int rc = verb == DV_CLOSE ? A.aloop_datagram_close(d->h) : A.aloop_datagram_abort(d->h);
  if (rc < 0) return obj_throw(env, d, rc);
  ls_touch(d->ls);
  return undefined(env);
}
static napi_value x_datagram_close(napi_env env, napi_callback_info info) {
  return datagram_verb(env, info, DV_CLOSE);
}
static napi_value x_datagram_abort(napi_env env, napi_callback_info info) {
  return datagram_verb(env, info, DV_ABORT);
}

static napi_value x_datagram_is_closing(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_DGRAM(argv[0]);
  if (d->h == NULL) return js_bool(env, d->lost);
  int rc = A.aloop_datagram_is_closing(d->h);
  if (rc < 0) return obj_throw(env, d, rc);
  return js_bool(env, rc);
}

static napi_value x_datagram_get_write_buffer_size(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t n = 0;
  get_args(env, info, 1, argv);
  GET_DGRAM(argv[0]);
  if (d->lost) return js_int(env, 0);
  int rc = A.aloop_datagram_get_write_buffer_size(d->h, &n);
  if (rc < 0) return obj_throw(env, d, rc);
  return js_double(env, (double)n);
}

static napi_value x_datagram_set_write_buffer_limits(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t high, low;
  get_args(env, info, 3, argv);
  GET_DGRAM(argv[0]);
  if (!arg_size(env, argv[1], &high, "high must be a number") ||
      !arg_size(env, argv[2], &low, "low must be a number"))
    return NULL;
  int rc = A.aloop_datagram_set_write_buffer_limits(d->h, high, low);
  if (rc < 0) return obj_throw(env, d, rc);
  ls_touch(d->ls);
  return undefined(env);
}

static napi_value x_datagram_get_write_buffer_limits(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t high = 0, low = 0;
  get_args(env, info, 1, argv);
  GET_DGRAM(argv[0]);
  int rc = A.aloop_datagram_get_write_buffer_limits(d->h, &high, &low);
  if (rc < 0) return obj_throw(env, d, rc);
  return make_limits(env, high, low);
}

static napi_value x_datagram_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  get_args(env, info, 1, argv);
  GET_DGRAM(argv[0]);
  int rc = A.aloop_datagram_get_fd(d->h);
  if (rc < 0) return obj_throw(env, d, rc);
  return js_int(env, rc);
}

/* datagramAddress(endpoint, peer) -> {host, port} */
static napi_value x_datagram_address(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char host[256];
  int port = 0;
  get_args(env, info, 2, argv);
  GET_DGRAM(argv[0]);
  int rc = arg_bool(env, argv[1]) ? A.aloop_datagram_get_peername(d->h, host, sizeof host, &port)
                                  : A.aloop_datagram_get_sockname(d->h, host, sizeof host, &port);
  if (rc < 0) return obj_throw(env, d, rc);
  return make_address(env, host, port);
}

const napi_property_descriptor aln_datagram_exports[] = {
    EXPORT("createDatagramEndpoint", x_create_datagram_endpoint),
    EXPORT("datagramSendto", x_datagram_sendto),
    EXPORT("datagramClose", x_datagram_close),
    EXPORT("datagramAbort", x_datagram_abort),
    EXPORT("datagramIsClosing", x_datagram_is_closing),
    EXPORT("datagramGetWriteBufferSize", x_datagram_get_write_buffer_size),
    EXPORT("datagramSetWriteBufferLimits", x_datagram_set_write_buffer_limits),
    EXPORT("datagramGetWriteBufferLimits", x_datagram_get_write_buffer_limits),
    EXPORT("datagramFd", x_datagram_fd),
    EXPORT("datagramAddress", x_datagram_address),
};
const size_t aln_datagram_nexports = COUNT_OF(aln_datagram_exports);
