/*
 * asyncloop_node.c - the N-API addon's entry: loading the library and the
 * module's exports (the other files are listed in addon.h).
 *
 * Loading: the addon does not link libasyncloop.so. load(path, dispatch)
 * dlopen()s the library the JS layer picked (ASYNCLOOP_LIBRARY first), binds
 * every function of the header through dlsym into the table `A`, and checks the
 * major version. So the library is found exactly where the user says, and a
 * second copy of the Go runtime can never be mapped by accident through a
 * DT_NEEDED entry.
 */
#include "addon.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>

aln_lib A;
void *aln_lib_handle;
static pthread_mutex_t lib_mu = PTHREAD_MUTEX_INITIALIZER;
static char lib_path[4096];

const char *const aln_dispatch_names[D_COUNT] = {
    [D_CALLBACK] = "callback",
    [D_FD] = "fd",
    [D_SIGNAL] = "signal",
    [D_EXCEPTION] = "exception",
    [D_ERROR] = "error",
    [D_CONNECTION] = "connection",
    [D_CONNECTION_MADE] = "connectionMade",
    [D_DATA_RECEIVED] = "dataReceived",
    [D_EOF_RECEIVED] = "eofReceived",
    [D_CONNECTION_LOST] = "connectionLost",
    [D_PAUSE_WRITING] = "pauseWriting",
    [D_RESUME_WRITING] = "resumeWriting",
    [D_GET_BUFFER] = "getBuffer",
    [D_BUFFER_UPDATED] = "bufferUpdated",
    [D_DATAGRAM] = "datagramReceived",
    [D_ERROR_RECEIVED] = "errorReceived",
    [D_PIPE_DATA] = "pipeDataReceived",
    [D_PIPE_LOST] = "pipeConnectionLost",
    [D_PROCESS_EXITED] = "processExited",
};

static void mod_cleanup(void *arg) {
  mod_state *m = arg;
  m->dead = 1;
}

static void mod_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static napi_value load_error(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

/* load(libraryPath, dispatch) -> {version, versionString, path, ...} */
static napi_value x_load(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  get_args(env, info, 2, argv);
  mod_state *m = get_mod(env);
  char path[4096], msg[4400];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok)
    return throw_type(env, "library path must be a string");
  napi_valuetype t;
  napi_typeof(env, argv[1], &t);
  if (t != napi_object) return throw_type(env, "dispatch must be an object");

  pthread_mutex_lock(&lib_mu);
  if (aln_lib_handle == NULL) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
      snprintf(msg, sizeof msg, "asyncloop: cannot load %s: %s", path, dlerror());
      pthread_mutex_unlock(&lib_mu);
      return load_error(env, "ERR_ASYNCLOOP_LOAD", msg);
    }
    const char *missing = NULL;
#define ALN_BIND_(f)                                                           \
  if (missing == NULL && (*(void **)&A.f = dlsym(h, #f)) == NULL) missing = #f;
    ALN_FUNCS(ALN_BIND_)
#undef ALN_BIND_
    if (missing) {
      snprintf(msg, sizeof msg, "asyncloop: %s does not export %s", path, missing);
      memset(&A, 0, sizeof A);
      dlclose(h);
      pthread_mutex_unlock(&lib_mu);
      return load_error(env, "ERR_ASYNCLOOP_LOAD", msg);
    }
    unsigned v = A.aloop_version();
    if ((v >> 16) != ALOOP_VERSION_MAJOR) {
      snprintf(msg, sizeof msg,
               "asyncloop: %s is version %u.%u.%u; this addon needs major %d", path,
               v >> 16, (v >> 8) & 0xff, v & 0xff, ALOOP_VERSION_MAJOR);
      memset(&A, 0, sizeof A);
      pthread_mutex_unlock(&lib_mu);
      return load_error(env, "ERR_ASYNCLOOP_VERSION", msg); /* a Go library cannot be unloaded */
    }
    aln_lib_handle = h;
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
      napi_get_named_property(env, argv[1], aln_dispatch_names[i], &fn);
      napi_typeof(env, fn, &ft);
      if (ft != napi_function) {
        snprintf(msg, sizeof msg, "dispatch.%s must be a function", aln_dispatch_names[i]);
        return throw_type(env, msg);
      }
    }
    for (int i = 0; i < D_COUNT; i++) {
      napi_value fn;
      napi_get_named_property(env, argv[1], aln_dispatch_names[i], &fn);
      napi_create_reference(env, fn, 1, &m->fns[i]);
    }
    m->loaded = 1;
  }
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "version", js_int(env, A.aloop_version()));
  napi_set_named_property(env, o, "versionString", js_str(env, A.aloop_version_string()));
  napi_set_named_property(env, o, "path", js_str(env, lib_path));
  napi_set_named_property(env, o, "addonMajor", js_int(env, ALOOP_VERSION_MAJOR));
  napi_set_named_property(env, o, "writeBufferHigh", js_int(env, ALOOP_WRITE_BUFFER_HIGH));
  napi_set_named_property(env, o, "writeBufferLow", js_int(env, ALOOP_WRITE_BUFFER_LOW));
  napi_set_named_property(env, o, "constants", aln_socket_constants(env));
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

/* liveHandles(): the process's live handles (aloop_live_handles). */
static napi_value x_live_handles(napi_env env, napi_callback_info info) {
  (void)info;
  if (!require_loaded(env))
    return NULL;
  size_t n = 0;
  int rc = A.aloop_live_handles(&n);
  if (rc < 0)
    return throw_rc(env, rc);
  napi_value v;
  napi_create_double(env, (double)n, &v);
  return v;
}

static const napi_property_descriptor load_exports[] = {
    EXPORT("load", x_load),
    EXPORT("errName", x_err_name),
    EXPORT("strerror", x_strerror),
    EXPORT("liveHandles", x_live_handles),
};

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  mod_state *m = calloc(1, sizeof *m);
  if (m == NULL) return NULL;
  m->env = env;
  napi_set_instance_data(env, m, mod_free, NULL);
  napi_add_env_cleanup_hook(env, mod_cleanup, m);
  const struct {
    const napi_property_descriptor *props;
    size_t n;
  } tables[] = {
      {load_exports, COUNT_OF(load_exports)},
      {aln_loop_exports, aln_loop_nexports},
      {aln_object_exports, aln_object_nexports},
      {aln_future_exports, aln_future_nexports},
      {aln_stream_exports, aln_stream_nexports},
      {aln_datagram_exports, aln_datagram_nexports},
      {aln_process_exports, aln_process_nexports},
      {aln_tls_exports, aln_tls_nexports},
      {aln_dns_exports, aln_dns_nexports},
      {aln_socket_exports, aln_socket_nexports},
#ifdef ALN_BENCH_HELPERS
      {aln_bench_exports, aln_bench_nexports},
#endif
  };
  for (size_t i = 0; i < COUNT_OF(tables); i++)
    napi_define_properties(env, exports, tables[i].n, tables[i].props);
  return exports;
}
