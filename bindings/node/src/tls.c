/*
 * tls.c - TLS through the library's crypto/tls: configurations (wrapped by
 * the JS SecureContext), start_tls, and a transport's TLS details.
 */
#include "addon.h"

typedef struct tls_state {
  uint32_t tag; /* TAG_TLS */
  aloop_tls_config_t *cfg;
} tls_state;

static void tls_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  tls_state *ts = data;
  if (aln_lib_handle) A.aloop_tls_config_free(ts->cfg);
  ts->tag = 0;
  free(ts);
}

/* The configuration of a SecureContext (NULL for null/undefined); *ok = 0
 * when it threw. */
aloop_tls_config_t *tls_config_arg(napi_env env, napi_value v, int *ok) {
  *ok = 1;
  if (is_nullish(env, v)) return NULL;
  tls_state *ts = unwrap_tag(env, v, TAG_TLS, "options.tls must be a SecureContext");
  if (ts == NULL) {
    *ok = 0;
    return NULL;
  }
  return ts->cfg;
}

/* PEM text from a string (copied into *tmp) or bytes (borrowed). */
static int pem_arg(napi_env env, napi_value v, const char **data, size_t *len, char **tmp) {
  napi_valuetype t;
  *tmp = NULL;
  napi_typeof(env, v, &t);
  if (t == napi_string) {
    if (!arg_string(env, v, tmp, "PEM must be a string or a Buffer")) return 0;
    *data = *tmp;
    *len = strlen(*tmp);
    return 1;
  }
  void *p;
  if (!arg_bytes(env, v, &p, len)) return 0;
  *data = p;
  return 1;
}

static int check(napi_env env, int rc) {
  if (rc < 0) throw_rc(env, rc);
  return rc >= 0;
}

/* Applies options to a fresh configuration; 0 when it threw. */
static int tls_configure(napi_env env, aloop_tls_config_t *cfg, napi_value o) {
  napi_value v, e;
  uint32_t n = 0;
  int iv;
  double dv;
  char *s = NULL;
  /* certs: [{cert, key}] */
  if (opt_get(env, o, "certs", &v)) {
    napi_get_array_length(env, v, &n);
    for (uint32_t i = 0; i < n; i++) {
      napi_value cert, key;
      const char *c = NULL, *k = NULL;
      size_t clen = 0, klen = 0;
      char *ctmp = NULL, *ktmp = NULL;
      napi_get_element(env, v, i, &e);
      int good = opt_get(env, e, "cert", &cert) && pem_arg(env, cert, &c, &clen, &ctmp);
      if (good && opt_get(env, e, "key", &key)) good = pem_arg(env, key, &k, &klen, &ktmp);
      if (good) good = check(env, A.aloop_tls_config_load_cert_pem(cfg, c, clen, k, klen));
      free(ctmp);
      free(ktmp);
      if (!good) {
        bool pending = false;
        napi_is_exception_pending(env, &pending);
        if (!pending) throw_type(env, "options.cert must be PEM");
        return 0;
      }
    }
  }
  /* ca: [PEM] */
  if (opt_get(env, o, "ca", &v)) {
    napi_get_array_length(env, v, &n);
    for (uint32_t i = 0; i < n; i++) {
      const char *p;
      size_t len;
      char *tmp;
      napi_get_element(env, v, i, &e);
      if (!pem_arg(env, e, &p, &len, &tmp)) return 0;
      int good = check(env, A.aloop_tls_config_load_ca_pem(cfg, p, len));
      free(tmp);
      if (!good) return 0;
    }
  }
  if (opt_flag(env, o, "defaultCa") > 0 && !check(env, A.aloop_tls_config_load_default_ca(cfg)))
    return 0;
  /* alpn: [string] */
  if (opt_get(env, o, "alpn", &v)) {
    char **list = NULL;
    size_t count = 0;
    if (!arg_string_array(env, v, &list, "ALPNProtocols must be strings")) return 0;
    while (list[count]) count++;
    int good = check(env, A.aloop_tls_config_set_alpn(cfg, (const char *const *)list, count));
    free_string_array(list);
    if (!good) return 0;
  }
  if (!opt_int(env, o, "verify", &iv, -1) ||
      (iv >= 0 && !check(env, A.aloop_tls_config_set_verify(cfg, iv))))
    return 0;
  if (!opt_int(env, o, "minVersion", &iv, 0) ||
      !check(env, A.aloop_tls_config_set_min_version(cfg, iv)))
    return 0;
  if (!opt_int(env, o, "maxVersion", &iv, 0) ||
      !check(env, A.aloop_tls_config_set_max_version(cfg, iv)))
    return 0;
  if (!opt_double(env, o, "handshakeTimeout", &dv, 0) ||
      !check(env, A.aloop_tls_config_set_handshake_timeout(cfg, dv)))
    return 0;
  if (!opt_string(env, o, "serverHostname", &s)) return 0;
  int good = s == NULL || check(env, A.aloop_tls_config_set_server_hostname(cfg, s));
  free(s);
  return good;
}

/* tlsConfigNew(secureContext, isServer, options): wraps a new configuration
 * around the JS SecureContext. options: {certs: [{cert, key}], ca: [PEM],
 * defaultCa, alpn: [string], verify, minVersion, maxVersion,
 * handshakeTimeout (s), serverHostname}; PEM as strings or Buffers. */
static napi_value x_tls_config_new(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  get_args(env, info, 3, argv);
  if (!require_loaded(env)) return NULL;
  tls_state *ts = aln_alloc(env, sizeof *ts);
  if (ts == NULL) return NULL;
  int rc = A.aloop_tls_config_new(&ts->cfg, arg_bool(env, argv[1]));
  if (rc < 0) {
    free(ts);
    return throw_rc(env, rc);
  }
  ts->tag = TAG_TLS;
  if (!tls_configure(env, ts->cfg, argv[2])) {
    A.aloop_tls_config_free(ts->cfg);
    free(ts);
    return NULL;
  }
  if (napi_wrap(env, argv[0], ts, tls_finalize, NULL, NULL) != napi_ok) {
    A.aloop_tls_config_free(ts->cfg);
    free(ts);
    return throw_type(env, "expected a fresh SecureContext");
  }
  return undefined(env);
}

/* transportStartTls(transport, secureContext, serverHostname | null,
 *                   cancellable) -> Promise<transport> */
static napi_value x_transport_start_tls(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  char *sni = NULL;
  int ok;
  get_args(env, info, 4, argv);
  GET_OBJ(o, argv[0], K_TRANSPORT, "expected a Transport");
  aloop_tls_config_t *cfg = tls_config_arg(env, argv[1], &ok);
  if (!ok) return NULL;
  if (cfg == NULL) return throw_type(env, "expected a SecureContext");
  if (!arg_opt_string(env, argv[2], &sni, "servername must be a string")) return NULL;
  aloop_future_t *fut = NULL;
  int rc = A.aloop_transport_start_tls(o->h, cfg, sni, &fut);
  free(sni);
  if (rc < 0) return obj_throw(env, o, rc);
  return op_start(env, o->ls, OP_TARGET, o, fut, NULL, arg_bool(env, argv[3]));
}

/* transportTlsInfo(transport) -> {version, cipher, alpn, peerCertificate}
 * once the handshake is done, null for a transport without TLS (or before
 * the handshake). */
static napi_value x_transport_tls_info(napi_env env, napi_callback_info info) {
  napi_value argv[1], r;
  char cipher[128] = "", alpn[256] = "";
  size_t n = 0;
  get_args(env, info, 1, argv);
  GET_OBJ(o, argv[0], K_TRANSPORT, "expected a Transport");
  if (o->h == NULL) return js_null(env);
  int version = A.aloop_transport_get_tls_version(o->h);
  if (version <= 0) return js_null(env);
  if (A.aloop_transport_get_tls_cipher(o->h, cipher, sizeof cipher) < 0 ||
      A.aloop_transport_get_tls_alpn(o->h, alpn, sizeof alpn) < 0)
    return js_null(env);
  napi_create_object(env, &r);
  napi_set_named_property(env, r, "version", js_int(env, version));
  napi_set_named_property(env, r, "cipher", js_str(env, cipher));
  napi_set_named_property(env, r, "alpn", js_str(env, alpn));
  napi_value cert = js_null(env);
  int rc = A.aloop_transport_get_peer_certificate(o->h, NULL, 0, &n);
  if ((rc == 0 || rc == ALOOP_ENOSPACE) && n > 0) {
    void *buf = NULL;
    if (napi_create_buffer(env, n, &buf, &cert) != napi_ok ||
        A.aloop_transport_get_peer_certificate(o->h, buf, n, &n) < 0)
      cert = js_null(env);
  }
  napi_set_named_property(env, r, "peerCertificate", cert);
  return r;
}

const napi_property_descriptor aln_tls_exports[] = {
    EXPORT("tlsConfigNew", x_tls_config_new),
    EXPORT("transportStartTls", x_transport_start_tls),
    EXPORT("transportTlsInfo", x_transport_tls_info),
};
const size_t aln_tls_nexports = COUNT_OF(aln_tls_exports);
