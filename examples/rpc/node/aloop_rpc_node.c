/*
 * aloop_rpc_node.c - the Node face of libaloop_rpc: a thin N-API addon
 * (build/examples/aloop_rpc.node) that links the same compiled library the
 * other hosts load. Pointers travel as BigInts: the loop comes from
 * asyncloop's Loop.handle, futures go back to Loop.wrapFuture (which takes
 * over the caller's reference). Every function runs on the JS thread, which
 * is the loop's thread. Errors throw an Error with `code` (ALOOP_E* name)
 * and `errno` (the negative code).
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

#include "aloop_rpc.h"

static napi_value throw_rc(napi_env env, int rc) {
  napi_value msg, code, err, num;
  napi_create_string_utf8(env, aloop_strerror(rc), NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, aloop_err_name(rc), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &err);
  napi_create_int32(env, rc, &num);
  napi_set_named_property(env, err, "errno", num);
  napi_throw(env, err);
  return NULL;
}

static napi_value ptr(napi_env env, const void *p) {
  napi_value v;
  napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)p, &v);
  return v;
}

static int get_ptr(napi_env env, napi_value v, void **out) {
  uint64_t u = 0;
  bool lossless = false;
  if (napi_get_value_bigint_uint64(env, v, &u, &lossless) != napi_ok || !lossless || !u) {
    napi_throw_type_error(env, NULL, "expected a non-NULL pointer (a BigInt)");
    return 0;
  }
  *out = (void *)(uintptr_t)u;
  return 1;
}

static int get_int(napi_env env, napi_value v, int *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a number");
    return 0;
  }
  return 1;
}

static int get_bytes(napi_env env, napi_value v, void **data, size_t *len) {
  bool is = false;
  napi_is_buffer(env, v, &is);
  if (!is) {
    napi_throw_type_error(env, NULL, "expected a Buffer");
    return 0;
  }
  napi_get_buffer_info(env, v, data, len);
  return 1;
}

/* host: a string of at most 255 bytes. */
static int get_host(napi_env env, napi_value v, char *buf) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, buf, 256, &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a host string");
    return 0;
  }
  return 1;
}

#define ARGS(n)                                                                \
  napi_value argv[n];                                                          \
  size_t argc = n;                                                             \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);                        \
  if (argc < n) {                                                              \
    napi_throw_type_error(env, NULL, "missing arguments");                     \
    return NULL;                                                               \
  }

/* rc and the future it returned through *f (read after the call). */
static napi_value future_or_throw(napi_env env, int rc, aloop_future_t **f) {
  return rc < 0 ? throw_rc(env, rc) : ptr(env, *f);
}

/* serverStart(loop, host, port) -> future (result: server) */
static napi_value server_start(napi_env env, napi_callback_info info) {
  ARGS(3);
  void *loop;
  char host[256];
  int port;
  aloop_future_t *f = NULL;
  if (!get_ptr(env, argv[0], &loop) || !get_host(env, argv[1], host) ||
      !get_int(env, argv[2], &port))
    return NULL;
  return future_or_throw(env, rpc_server_start(loop, host, port, &f), &f);
}

static napi_value server_port(napi_env env, napi_callback_info info) {
  ARGS(1);
  void *s;
  if (!get_ptr(env, argv[0], &s)) return NULL;
  int rc = rpc_server_port(s);
  if (rc < 0) return throw_rc(env, rc);
  napi_value v;
  napi_create_int32(env, rc, &v);
  return v;
}

static napi_value server_requests(napi_env env, napi_callback_info info) {
  ARGS(1);
  void *s;
  if (!get_ptr(env, argv[0], &s)) return NULL;
  napi_value v;
  napi_create_double(env, (double)rpc_server_requests(s), &v);
  return v;
}

static napi_value server_close(napi_env env, napi_callback_info info) {
  ARGS(1);
  void *s;
  if (!get_ptr(env, argv[0], &s)) return NULL;
  int rc = rpc_server_close(s);
  return rc < 0 ? throw_rc(env, rc) : NULL;
}

static napi_value server_recv(napi_env env, napi_callback_info info) {
  ARGS(1);
  void *s;
  aloop_future_t *f = NULL;
  if (!get_ptr(env, argv[0], &s)) return NULL;
  return future_or_throw(env, rpc_server_recv(s, &f), &f);
}

static napi_value request_data(napi_env env, napi_callback_info info) {
  ARGS(1);
  void *r;
  if (!get_ptr(env, argv[0], &r)) return NULL;
  size_t n = 0;
  const char *d = rpc_request_data(r, &n);
  napi_value buf;
  void *copy;
  napi_create_buffer_copy(env, n, n ? d : "", &copy, &buf);
  return buf;
}

/* requestRespond(request, ok, Buffer) */
static napi_value request_respond(napi_env env, napi_callback_info info) {
  ARGS(3);
  void *r, *data;
  size_t len;
  bool ok = false;
  if (!get_ptr(env, argv[0], &r)) return NULL;
  napi_get_value_bool(env, argv[1], &ok);
  if (!get_bytes(env, argv[2], &data, &len)) return NULL;
  int rc = rpc_request_respond(r, ok, data, len);
  return rc < 0 ? throw_rc(env, rc) : NULL;
}

static napi_value js_connect(napi_env env, napi_callback_info info) {
  ARGS(3);
  void *loop;
  char host[256];
  int port;
  aloop_future_t *f = NULL;
  if (!get_ptr(env, argv[0], &loop) || !get_host(env, argv[1], host) ||
      !get_int(env, argv[2], &port))
    return NULL;
  return future_or_throw(env, rpc_connect(loop, host, port, &f), &f);
}

/* call(client, method, Buffer) -> future (result: reply) */
static napi_value js_call(napi_env env, napi_callback_info info) {
  ARGS(3);
  void *c, *data;
  size_t len;
  int method;
  aloop_future_t *f = NULL;
  if (!get_ptr(env, argv[0], &c) || !get_int(env, argv[1], &method) ||
      !get_bytes(env, argv[2], &data, &len))
    return NULL;
  return future_or_throw(env, rpc_call(c, method, data, len, &f), &f);
}

/* replyTake(reply) -> Buffer (a copy; the reply is released) */
static napi_value reply_take(napi_env env, napi_callback_info info) {
  ARGS(1);
  void *r;
  if (!get_ptr(env, argv[0], &r)) return NULL;
  size_t n = 0;
  const char *d = rpc_reply_data(r, &n);
  napi_value buf;
  void *copy;
  napi_create_buffer_copy(env, n, n ? d : "", &copy, &buf);
  rpc_reply_free(r);
  return buf;
}

static napi_value reply_free(napi_env env, napi_callback_info info) {
  ARGS(1);
  void *r;
  if (!get_ptr(env, argv[0], &r)) return NULL;
  rpc_reply_free(r);
  return NULL;
}

static napi_value client_close(napi_env env, napi_callback_info info) {
  ARGS(1);
  void *c;
  if (!get_ptr(env, argv[0], &c)) return NULL;
  int rc = rpc_client_close(c);
  return rc < 0 ? throw_rc(env, rc) : NULL;
}

static napi_value client_send_raw(napi_env env, napi_callback_info info) {
  ARGS(2);
  void *c, *data;
  size_t len;
  if (!get_ptr(env, argv[0], &c) || !get_bytes(env, argv[1], &data, &len)) return NULL;
  int rc = rpc_client_send_raw(c, data, len);
  return rc < 0 ? throw_rc(env, rc) : NULL;
}

/* clientBench(client, count, inflight, size) -> future */
static napi_value client_bench(napi_env env, napi_callback_info info) {
  ARGS(4);
  void *c;
  double count = 0;
  int inflight, size;
  aloop_future_t *f = NULL;
  if (!get_ptr(env, argv[0], &c)) return NULL;
  napi_get_value_double(env, argv[1], &count);
  if (!get_int(env, argv[2], &inflight) || !get_int(env, argv[3], &size)) return NULL;
  return future_or_throw(
      env, rpc_client_bench(c, (uint64_t)count, inflight, (size_t)size, &f), &f);
}

static napi_value live_objects(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  napi_create_double(env, (double)rpc_live_objects(), &v);
  return v;
}

static napi_value version(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  napi_create_int32(env, rpc_version(), &v);
  return v;
}

#define FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_default, NULL}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
      FN("version", version),
      FN("liveObjects", live_objects),
      FN("serverStart", server_start),
      FN("serverPort", server_port),
      FN("serverRequests", server_requests),
      FN("serverClose", server_close),
      FN("serverRecv", server_recv),
      FN("requestData", request_data),
      FN("requestRespond", request_respond),
      FN("connect", js_connect),
      FN("call", js_call),
      FN("replyTake", reply_take),
      FN("replyFree", reply_free),
      FN("clientClose", client_close),
      FN("clientSendRaw", client_send_raw),
      FN("clientBench", client_bench),
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}

NAPI_MODULE(aloop_rpc, init)
