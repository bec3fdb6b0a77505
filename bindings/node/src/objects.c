/*
 * objects.c - the state of every object the library calls back: stream
 * transports, servers, datagram endpoints and subprocesses. One state type
 * and one set of lifetime rules for all four (kind tells them apart where
 * the library's functions differ).
 *
 * An obj_state is created with its JS object (obj_create: wrapped, and
 * strongly referenced so that the GC cannot take an object the library may
 * still call back), given to the library as userdata (obj_lib_ref before
 * each registration, obj_free_cb as the free_cb), and released when both the
 * JS wrapper was finalized and the library dropped every registration.
 * When the library drops the last one, the JS object is no longer needed by
 * the library: the strong reference goes (a server's goes at close()).
 */
#include "addon.h"

#include <stdio.h>

obj_state *obj_new(loop_state *ls, int kind) {
  obj_state *o = calloc(1, sizeof *o);
  if (o == NULL) return NULL;
  o->tag = TAG_OBJ;
  o->kind = kind;
  o->ls = ls;
  ls->refs++;
  o->prev = NULL;
  o->next = ls->objects;
  if (ls->objects) ls->objects->prev = o;
  ls->objects = o;
  return o;
}

void obj_release(obj_state *o) {
  if (--o->refs > 0) return;
  loop_state *ls = o->ls;
  if (o->prev)
    o->prev->next = o->next;
  else
    ls->objects = o->next;
  if (o->next) o->next->prev = o->prev;
  o->tag = 0;
  free(o);
  ls_release(ls);
}

/* Releases a state that was never attached or registered. */
void obj_discard(obj_state *o) {
  o->refs = 1;
  obj_release(o);
}

void obj_drop_strong(obj_state *o) {
  if (o->strong && !o->ls->mod->dead) {
    uint32_t n;
    napi_reference_unref(o->ls->env, o->self, &n);
  }
  o->strong = 0;
}

static void obj_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  obj_state *o = data;
  if (!o->ls->mod->dead) {
    if (o->kind == K_SERVER && o->h) {
      aloop_server_t *s = o->h;
      o->h = NULL;
      A.aloop_server_free(s);
    }
    if (o->self) napi_delete_reference(env, o->self);
  }
  o->self = NULL;
  obj_release(o);
}

/* Wraps jsobj around o and keeps it strongly referenced. */
int obj_attach(napi_env env, obj_state *o, napi_value jsobj) {
  if (napi_wrap(env, jsobj, o, obj_finalize, NULL, NULL) != napi_ok) return 0;
  o->refs++;
  napi_create_reference(env, jsobj, 1, &o->self);
  o->strong = 1;
  return 1;
}

/* A new state wrapped around jsobj (a fresh JS object); throws on failure. */
obj_state *obj_create(napi_env env, loop_state *ls, int kind, napi_value jsobj,
                      const char *what) {
  obj_state *o = obj_new(ls, kind);
  if (o == NULL) {
    throw_code(env, ALOOP_ENOMEM, "out of memory");
    return NULL;
  }
  if (!obj_attach(env, o, jsobj)) {
    obj_discard(o);
    throw_type(env, what);
    return NULL;
  }
  return o;
}

/* Before the state is given to the library as userdata. */
void obj_lib_ref(obj_state *o) {
  o->refs++;
  o->lib++;
  if (!o->counted && o->lib == 1 && !o->lost) {
    o->counted = 1;
    o->ls->nlive++;
    if (o->unref) o->ls->nunref++;
  }
}

/* The object ended (or a server stopped listening): it no longer counts. */
void obj_uncount(obj_state *o) {
  if (!o->counted) return;
  o->counted = 0;
  o->ls->nlive--;
  if (o->unref) o->ls->nunref--;
}

/* free_cb: the library dropped one userdata registration. After the last,
 * a transport's, endpoint's or subprocess's handle is stale (a server's
 * stays valid until aloop_server_free). */
void obj_free_cb(void *ud) {
  obj_state *o = ud;
  if (--o->lib <= 0) {
    o->lib = 0;
    if (o->kind != K_SERVER) {
      o->h = NULL;
      o->lost = 1;
    }
    if (o->buf && !o->ls->mod->dead) napi_delete_reference(o->ls->env, o->buf);
    o->buf = NULL;
    obj_uncount(o);
    obj_drop_strong(o);
  }
  obj_release(o);
}

obj_state *obj_unwrap(napi_env env, napi_value v, int kind, const char *what) {
  obj_state *o = unwrap_tag(env, v, TAG_OBJ, what);
  if (o != NULL && kind != 0 && o->kind != kind) {
    throw_type(env, what);
    return NULL;
  }
  return o;
}

/* The state of a library handle (exception contexts); NULL if unknown. */
obj_state *obj_find(loop_state *ls, int kind, const void *h) {
  for (obj_state *o = ls->objects; o; o = o->next)
    if (o->kind == kind && o->h == h) return o;
  return NULL;
}

static const char *const kind_names[] = {"object", "transport", "server",
                                         "datagram endpoint", "subprocess"};

/* The library answers ALOOP_EBADF for an object whose handle went stale; to
 * JS that object is simply closed (or not connected yet). */
napi_value obj_throw(napi_env env, obj_state *o, int rc) {
  char msg[64];
  if (rc == ALOOP_EBADF && o->lost) {
    snprintf(msg, sizeof msg, "the %s is closed", kind_names[o->kind]);
    return throw_code(env, ALOOP_ECLOSED, msg);
  }
  if (rc == ALOOP_EBADF && o->h == NULL) {
    snprintf(msg, sizeof msg, "the %s is not connected", kind_names[o->kind]);
    return throw_code(env, ALOOP_ENOTCONN, msg);
  }
  return throw_rc(env, rc);
}

/* Closes a server, aborts anything else (shutdown, tests). */
void obj_abort(obj_state *o) {
  if (o->h == NULL || o->lost) return;
  switch (o->kind) {
  case K_TRANSPORT: A.aloop_transport_abort(o->h); break;
  case K_SERVER:
    A.aloop_server_close(o->h);
    obj_uncount(o);
    break;
  case K_DATAGRAM: A.aloop_datagram_abort(o->h); break;
  case K_SUBPROCESS: A.aloop_subprocess_close(o->h); break;
  }
}

int obj_enter(obj_state *o, napi_handle_scope *hs) {
  if (!ls_can_call(o->ls)) return 0;
  return napi_open_handle_scope(o->ls->env, hs) == napi_ok;
}

void obj_leave(obj_state *o, napi_handle_scope hs) {
  napi_close_handle_scope(o->ls->env, hs);
}

/* Calls dispatch `which` with (the object's JS value, args...); the caller
 * holds a handle scope. Returns the result, NULL if it threw. */
napi_value obj_call(obj_state *o, int which, size_t argc, napi_value *args) {
  napi_value argv[5];
  argv[0] = ref_value(o->ls->env, o->self);
  if (argv[0] == NULL || argc > 4) return NULL;
  for (size_t i = 0; i < argc; i++) argv[i + 1] = args[i];
  return ls_call(o->ls, which, argc + 1, argv);
}

/* An event without arguments. */
void obj_event(obj_state *o, int which) {
  napi_handle_scope hs;
  if (!obj_enter(o, &hs)) return;
  obj_call(o, which, 0, NULL);
  obj_leave(o, hs);
}

/* An event with one error argument (0: null). */
void obj_event_error(obj_state *o, int which, int error) {
  napi_handle_scope hs;
  if (!obj_enter(o, &hs)) return;
  napi_value err = error ? aln_error(o->ls->env, error, NULL) : js_null(o->ls->env);
  obj_call(o, which, 1, &err);
  obj_leave(o, hs);
}

/* connection_made of every kind: the handle is known from now on. */
void obj_made(obj_state *o, void *h) {
  o->h = h;
  obj_event(o, D_CONNECTION_MADE);
}

/* connection_lost of every kind. */
void obj_lost(obj_state *o, int error) {
  obj_event_error(o, D_CONNECTION_LOST, error);
  o->lost = 1;
}

/* objSetRef(object, ref): Node's ref()/unref() of a transport, server,
 * datagram endpoint or subprocess. */
static napi_value x_obj_set_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  get_args(env, info, 2, argv);
  GET_OBJ(o, argv[0], 0, "expected a transport, server, endpoint or subprocess");
  int unref = !arg_bool(env, argv[1]);
  if (unref != o->unref && o->counted) o->ls->nunref += unref ? 1 : -1;
  o->unref = unref;
  ls_touch(o->ls);
  return undefined(env);
}

const napi_property_descriptor aln_object_exports[] = {
    EXPORT("objSetRef", x_obj_set_ref),
};
const size_t aln_object_nexports = COUNT_OF(aln_object_exports);
