/* Static C trampolines through which Go calls the host's function pointers.
 * Function pointers and userdata travel through Go as uintptr_t so that Go
 * never holds a foreign value in a pointer-typed variable. */
#ifndef ALOOP_TRAMPOLINES_H
#define ALOOP_TRAMPOLINES_H
#define ALOOP_NO_PROTOTYPES
#include "asyncloop.h"
#include "direct.h"
#include <stdint.h>
#include <stdlib.h>

/* Defined in errors.c (the public prototypes are switched off here). */
extern const char *aloop_strerror(int code);
extern int al_errno_listed(int code); /* errors.c */
/* Defined in threadstate.c. */
extern void al_set_last_error(char *msg);
extern const char *al_get_last_error(void);
extern void al_set_current_loop(uintptr_t h);
extern uintptr_t al_get_current_loop(void);
extern long al_thread_id(void);

static inline void al_call_callback(uintptr_t cb, uintptr_t loop, uintptr_t ud) {
  ((aloop_callback_cb)cb)((aloop_loop_t *)loop, (void *)ud);
}
static inline void al_call_free(uintptr_t cb, uintptr_t ud) {
  ((aloop_free_cb)cb)((void *)ud);
}
static inline void al_call_future_cb(uintptr_t cb, uintptr_t fut, uintptr_t ud) {
  ((aloop_future_cb)cb)((aloop_future_t *)fut, (void *)ud);
}
static inline void al_call_fd_cb(uintptr_t cb, uintptr_t loop, int fd, uintptr_t ud) {
  ((aloop_fd_cb)cb)((aloop_loop_t *)loop, fd, (void *)ud);
}
static inline void al_call_wakeup_cb(uintptr_t cb, uintptr_t loop, uintptr_t ud) {
  ((aloop_wakeup_cb)cb)((aloop_loop_t *)loop, (void *)ud);
}
static inline void al_call_exception_cb(uintptr_t cb, uintptr_t loop,
                                        const char *msg, int err,
                                        const char *detail, uintptr_t t,
                                        uintptr_t s, uintptr_t f, uintptr_t d,
                                        uintptr_t p, uintptr_t ud) {
  aloop_exception_context_t c;
  c.size = sizeof c;
  c.message = msg;
  c.error = err;
  c.error_detail = detail;
  c.transport = (aloop_transport_t *)t;
  c.server = (aloop_server_t *)s;
  c.future = (aloop_future_t *)f;
  c.datagram = (struct aloop_datagram_s *)d;
  c.subprocess = (struct aloop_subprocess_s *)p;
  ((aloop_exception_cb)cb)((aloop_loop_t *)loop, &c, (void *)ud);
}
static inline int al_call_connection_cb(uintptr_t cb, uintptr_t server,
                                        uintptr_t t, uintptr_t ud) {
  return ((aloop_connection_cb)cb)((aloop_server_t *)server,
                                   (aloop_transport_t *)t, (void *)ud);
}
/* Protocol callbacks. */
static inline void al_proto_t(uintptr_t fn, uintptr_t t, uintptr_t ud) {
  ((void (*)(aloop_transport_t *, void *))fn)((aloop_transport_t *)t, (void *)ud);
}
static inline void al_proto_data(uintptr_t fn, uintptr_t t, const char *data,
                                 size_t len, uintptr_t ud, int fd, uint32_t *gate) {
  al_direct_t d = {t, fd, gate}, *prev = al_direct_cur;
  al_direct_cur = gate ? &d : NULL;
  ((void (*)(aloop_transport_t *, const char *, size_t, void *))fn)(
      (aloop_transport_t *)t, data, len, (void *)ud);
  al_direct_cur = prev;
}
static inline int al_proto_eof(uintptr_t fn, uintptr_t t, uintptr_t ud) {
  return ((int (*)(aloop_transport_t *, void *))fn)((aloop_transport_t *)t, (void *)ud);
}
static inline void al_proto_lost(uintptr_t fn, uintptr_t t, int err, uintptr_t ud) {
  ((void (*)(aloop_transport_t *, int, void *))fn)((aloop_transport_t *)t, err, (void *)ud);
}
/* The buffer and its length by value: a Go variable whose address went to
 * C would be allocated on every call. */
typedef struct al_buf_s {
  char *p;
  size_t n;
} al_buf_t;
static inline al_buf_t al_proto_get_buffer(uintptr_t fn, uintptr_t t, size_t hint,
                                           uintptr_t ud) {
  al_buf_t b = {NULL, 0};
  b.p = (char *)((void *(*)(aloop_transport_t *, size_t, size_t *, void *))fn)(
      (aloop_transport_t *)t, hint, &b.n, (void *)ud);
  return b;
}
static inline void al_proto_updated(uintptr_t fn, uintptr_t t, size_t n, uintptr_t ud,
                                    int fd, uint32_t *gate) {
  al_direct_t d = {t, fd, gate}, *prev = al_direct_cur;
  al_direct_cur = gate ? &d : NULL;
  ((void (*)(aloop_transport_t *, size_t, void *))fn)((aloop_transport_t *)t, n, (void *)ud);
  al_direct_cur = prev;
}
/* Reading option/protocol structs that carry their own size. */
#define AL_HAS_FIELD(ptr, type, field) \
  ((ptr)->size >= offsetof(type, field) + sizeof((ptr)->field))
static inline uintptr_t al_proto_field(const aloop_protocol_t *p, int i) {
  switch (i) {
#define F(n, f) case n: return AL_HAS_FIELD(p, aloop_protocol_t, f) ? (uintptr_t)p->f : 0;
    F(0, connection_made) F(1, data_received) F(2, eof_received)
    F(3, connection_lost) F(4, pause_writing) F(5, resume_writing)
    F(6, get_buffer) F(7, buffer_updated)
#undef F
  }
  return 0;
}
static inline unsigned al_dgproto_flags(const aloop_datagram_protocol_t *p) {
  return AL_HAS_FIELD(p, aloop_datagram_protocol_t, flags) ? p->flags : 0;
}
static inline unsigned al_proto_flags(const aloop_protocol_t *p) {
  return AL_HAS_FIELD(p, aloop_protocol_t, flags) ? p->flags : 0;
}
#endif
