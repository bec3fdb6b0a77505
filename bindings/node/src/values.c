/*
 * values.c - N-API values: arguments in, results and errors out.
 */
#include "addon.h"

#include <stdio.h>

/* An Error for a library code. index.js's factory (dispatch.error) makes it
 * (Node's code, errno, the message); before load() and if the factory fails,
 * a plain Error with code = aloop_err_name(code). */
napi_value aln_error(napi_env env, int code, const char *detail) {
  mod_state *m = get_mod(env);
  napi_value fn = (m && m->loaded && !m->dead) ? ref_value(env, m->fns[D_ERROR]) : NULL;
  if (fn != NULL) {
    napi_value argv[2] = {js_int(env, code),
                          detail && *detail ? js_str(env, detail) : undefined(env)};
    napi_value res;
    if (napi_call_function(env, undefined(env), fn, 2, argv, &res) == napi_ok) return res;
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
  }
  const char *name = A.aloop_err_name ? A.aloop_err_name(code) : "ALOOP_EUNKNOWN";
  const char *msg = (detail && *detail)
                        ? detail
                        : (A.aloop_strerror ? A.aloop_strerror(code) : "error");
  napi_value c, e;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &c);
  napi_create_error(env, c, js_str(env, msg), &e);
  napi_set_named_property(env, e, "errno", js_int(env, code));
  return e;
}

napi_value throw_code(napi_env env, int code, const char *detail) {
  napi_throw(env, aln_error(env, code, detail));
  return NULL;
}

/* Throws the Error for a negative library result, with the detailed message
 * of aloop_last_error; returns NULL. */
napi_value throw_rc(napi_env env, int rc) {
  char buf[512];
  int n = A.aloop_last_error(buf, sizeof buf);
  return throw_code(env, rc, n > 0 ? buf : NULL);
}

napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

napi_value throw_range(napi_env env, const char *msg) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return NULL;
}

napi_value undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}
napi_value js_null(napi_env env) {
  napi_value v;
  napi_get_null(env, &v);
  return v;
}
napi_value js_bool(napi_env env, int b) {
  napi_value v;
  napi_get_boolean(env, b != 0, &v);
  return v;
}
napi_value js_int(napi_env env, int64_t i) {
  napi_value v;
  napi_create_int64(env, i, &v);
  return v;
}
napi_value js_double(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}
napi_value js_str(napi_env env, const char *s) {
  napi_value v;
  napi_create_string_utf8(env, s ? s : "", NAPI_AUTO_LENGTH, &v);
  return v;
}
napi_value js_buffer_copy(napi_env env, const void *data, size_t len) {
  napi_value v = NULL;
  if (napi_create_buffer_copy(env, len, len ? data : "", NULL, &v) != napi_ok) return NULL;
  return v;
}
napi_value ref_value(napi_env env, napi_ref r) {
  napi_value v = NULL;
  if (r == NULL || napi_get_reference_value(env, r, &v) != napi_ok) return NULL;
  return v;
}

mod_state *get_mod(napi_env env) {
  mod_state *m = NULL;
  napi_get_instance_data(env, (void **)&m);
  return m;
}

/* argv gets exactly n values (missing ones are undefined). */
void get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
}

int require_loaded(napi_env env) {
  if (aln_lib_handle == NULL) {
    napi_throw_error(env, "ERR_ASYNCLOOP_LOAD", "asyncloop: the library is not loaded");
    return 0;
  }
  return 1;
}

void *aln_alloc(napi_env env, size_t n) {
  void *p = calloc(1, n);
  if (p == NULL) throw_code(env, ALOOP_ENOMEM, "out of memory");
  return p;
}

void *unwrap_tag(napi_env env, napi_value obj, uint32_t tag, const char *what) {
  void *p = NULL;
  if (!require_loaded(env)) return NULL;
  if (napi_unwrap(env, obj, &p) != napi_ok || p == NULL || *(uint32_t *)p != tag) {
    throw_type(env, what);
    return NULL;
  }
  return p;
}

int is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  if (v == NULL || napi_typeof(env, v, &t) != napi_ok) return 1;
  return t == napi_null || t == napi_undefined;
}

int arg_double(napi_env env, napi_value v, double *out, const char *what) {
  if (napi_get_value_double(env, v, out) != napi_ok) {
    throw_type(env, what);
    return 0;
  }
  return 1;
}
int arg_int(napi_env env, napi_value v, int *out, const char *what) {
  double d;
  if (!arg_double(env, v, &d, what)) return 0;
  if (d != d || d < -2147483648.0 || d > 2147483647.0) {
    throw_range(env, what);
    return 0;
  }
  *out = (int)d;
  return 1;
}
/* null/undefined -> dflt. */
int arg_opt_int(napi_env env, napi_value v, int *out, int dflt, const char *what) {
  if (is_nullish(env, v)) {
    *out = dflt;
    return 1;
  }
  return arg_int(env, v, out, what);
}
int arg_size(napi_env env, napi_value v, size_t *out, const char *what) {
  double d;
  if (!arg_double(env, v, &d, what)) return 0;
  if (!(d >= 0 && d <= 9007199254740991.0)) {
    throw_range(env, what);
    return 0;
  }
  *out = (size_t)d;
  return 1;
}
int arg_int64(napi_env env, napi_value v, int64_t *out, const char *what) {
  double d;
  if (!arg_double(env, v, &d, what)) return 0;
  if (!(d >= -9007199254740991.0 && d <= 9007199254740991.0)) {
    throw_range(env, what);
    return 0;
  }
  *out = (int64_t)d;
  return 1;
}
int arg_bool(napi_env env, napi_value v) {
  bool b = false;
  napi_value c;
  if (napi_coerce_to_bool(env, v, &c) == napi_ok) napi_get_value_bool(env, c, &b);
  return b;
}
/* A callback id: a positive integer below 2^53 carried as the userdata. */
int arg_id(napi_env env, napi_value v, void **out) {
  double d;
  if (!arg_double(env, v, &d, "id must be a number")) return 0;
  if (!(d >= 1 && d <= 9007199254740991.0)) {
    throw_range(env, "bad callback id");
    return 0;
  }
  *out = (void *)(uintptr_t)(uint64_t)d;
  return 1;
}

/* A string, malloc'ed into *out (NUL inside is refused). */
int arg_string(napi_env env, napi_value v, char **out, const char *what) {
  napi_valuetype t;
  size_t len = 0;
  *out = NULL;
  napi_typeof(env, v, &t);
  if (t != napi_string) {
    throw_type(env, what);
    return 0;
  }
  napi_get_value_string_utf8(env, v, NULL, 0, &len);
  *out = malloc(len + 1);
  if (*out == NULL) {
    throw_code(env, ALOOP_ENOMEM, "out of memory");
    return 0;
  }
  napi_get_value_string_utf8(env, v, *out, len + 1, &len);
  if (strlen(*out) != len) {
    free(*out);
    *out = NULL;
    throw_type(env, what);
    return 0;
  }
  return 1;
}

/* An optional string: null/undefined -> NULL. */
int arg_opt_string(napi_env env, napi_value v, char **out, const char *what) {
  *out = NULL;
  if (is_nullish(env, v)) return 1;
  return arg_string(env, v, out, what);
}

/* arg_opt_string into buf (cap bytes) when it fits, else malloc'd: free
 * *out only if it is not buf (for calls made per datagram). */
int arg_opt_string_buf(napi_env env, napi_value v, char *buf, size_t cap, char **out,
                       const char *what) {
  napi_valuetype t;
  size_t len = 0;
  *out = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t == napi_undefined || t == napi_null) return 1;
  if (t != napi_string) {
    throw_type(env, what);
    return 0;
  }
  napi_get_value_string_utf8(env, v, buf, cap, &len);
  if (len + 1 >= cap) return arg_string(env, v, out, what); /* may be cut */
  if (strlen(buf) != len) {
    throw_type(env, what);
    return 0;
  }
  *out = buf;
  return 1;
}

/* The bytes of a Buffer, TypedArray, DataView or ArrayBuffer (borrowed). */
int arg_bytes(napi_env env, napi_value v, void **data, size_t *len) {
  bool is = false;
  *data = NULL;
  *len = 0;
  napi_is_typedarray(env, v, &is);
  if (is) {
    napi_typedarray_type tt;
    size_t n;
    static const size_t sizes[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};
    napi_get_typedarray_info(env, v, &tt, &n, data, NULL, NULL);
    *len = n * ((size_t)tt < COUNT_OF(sizes) ? sizes[tt] : 1);
    return 1;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    napi_get_dataview_info(env, v, len, data, NULL, NULL);
    return 1;
  }
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    napi_get_arraybuffer_info(env, v, data, len);
    return 1;
  }
  throw_type(env, "data must be a Buffer, TypedArray, DataView or ArrayBuffer");
  return 0;
}

/* A JS array of strings -> a NULL-terminated malloc'ed list. */
int arg_string_array(napi_env env, napi_value v, char ***out, const char *what) {
  bool is = false;
  uint32_t n = 0;
  *out = NULL;
  if (napi_is_array(env, v, &is) != napi_ok || !is) {
    throw_type(env, what);
    return 0;
  }
  napi_get_array_length(env, v, &n);
  char **list = calloc((size_t)n + 1, sizeof *list);
  if (list == NULL) {
    throw_code(env, ALOOP_ENOMEM, "out of memory");
    return 0;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    napi_get_element(env, v, i, &e);
    if (!arg_string(env, e, &list[i], what)) {
      free_string_array(list);
      return 0;
    }
  }
  *out = list;
  return 1;
}

void free_string_array(char **list) {
  if (list == NULL) return;
  for (char **p = list; *p; p++) free(*p);
  free(list);
}

napi_value make_handle(napi_env env, void *h) {
  napi_value v;
  napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)h, &v);
  return v;
}
int arg_handle(napi_env env, napi_value v, void **out) {
  uint64_t u = 0;
  bool lossless = false;
  if (napi_get_value_bigint_uint64(env, v, &u, &lossless) != napi_ok || !lossless) {
    throw_type(env, "bad handle");
    return 0;
  }
  *out = (void *)(uintptr_t)u;
  return 1;
}

/* {host, port}: host is a numeric address, or a Unix socket path (port 0). */
napi_value make_address(napi_env env, const char *host, int port) {
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "host", js_str(env, host));
  napi_set_named_property(env, o, "port", js_int(env, port));
  return o;
}

/* ------------------------------------------------------------------------ */
/* Options objects (the JS layer passes its checked options as one object)  */
/* ------------------------------------------------------------------------ */

/* The property `name` of o when o is an object and the property is neither
 * null nor undefined. */
int opt_get(napi_env env, napi_value o, const char *name, napi_value *out) {
  napi_valuetype t;
  *out = NULL;
  if (o == NULL || napi_typeof(env, o, &t) != napi_ok || t != napi_object) return 0;
  if (napi_get_named_property(env, o, name, out) != napi_ok) return 0;
  if (is_nullish(env, *out)) {
    *out = NULL;
    return 0;
  }
  return 1;
}

/* *out = the integer option, or dflt when absent; 0 when it threw. */
int opt_int(napi_env env, napi_value o, const char *name, int *out, int dflt) {
  napi_value v;
  char what[96];
  *out = dflt;
  if (!opt_get(env, o, name, &v)) return 1;
  snprintf(what, sizeof what, "options.%s must be a number", name);
  return arg_int(env, v, out, what);
}

int opt_double(napi_env env, napi_value o, const char *name, double *out, double dflt) {
  napi_value v;
  char what[96];
  *out = dflt;
  if (!opt_get(env, o, name, &v)) return 1;
  snprintf(what, sizeof what, "options.%s must be a number", name);
  return arg_double(env, v, out, what);
}

/* A boolean option as the library's tri-state int: -1 absent, 0, 1. */
int opt_flag(napi_env env, napi_value o, const char *name) {
  napi_value v;
  if (!opt_get(env, o, name, &v)) return -1;
  return arg_bool(env, v);
}

/* *out = a malloc'ed copy of the string option, NULL when absent. */
int opt_string(napi_env env, napi_value o, const char *name, char **out) {
  napi_value v;
  char what[96];
  *out = NULL;
  if (!opt_get(env, o, name, &v)) return 1;
  snprintf(what, sizeof what, "options.%s must be a string", name);
  return arg_string(env, v, out, what);
}

/* options.sock: an fd to use instead of a new socket. */
int opt_sock(napi_env env, napi_value o, int *has_sock, int *sock) {
  napi_value v;
  *has_sock = 0;
  if (!opt_get(env, o, "sock", &v)) return 1;
  *has_sock = 1;
  return arg_int(env, v, sock, "options.sock must be an fd");
}

/* {low, high}: write buffer water marks. */
napi_value make_limits(napi_env env, size_t high, size_t low) {
  napi_value r;
  napi_create_object(env, &r);
  napi_set_named_property(env, r, "low", js_double(env, (double)low));
  napi_set_named_property(env, r, "high", js_double(env, (double)high));
  return r;
}
