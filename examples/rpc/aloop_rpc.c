/*
 * aloop_rpc.c - see aloop_rpc.h. Written against include/asyncloop.h only:
 * it creates its own transports, servers, timers and futures on the loop a
 * host gives it.
 */
#include "aloop_rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RPC_VERSION 1
#define HDR 9 /* u32 length + u32 id + u8 kind */

int rpc_version(void) { return RPC_VERSION; }

/* Every object the library allocates (clients, servers, connections,
 * replies, requests, timers, pending operations) is counted, so that tests
 * can check that nothing is left once everything was closed and released. */
static long live_objects;

long rpc_live_objects(void) { return __atomic_load_n(&live_objects, __ATOMIC_RELAXED); }

static void *obj_malloc(size_t n) {
  void *p = malloc(n);
  if (p)
    __atomic_add_fetch(&live_objects, 1, __ATOMIC_RELAXED);
  return p;
}

static void *obj_calloc(size_t n) {
  void *p = calloc(1, n);
  if (p)
    __atomic_add_fetch(&live_objects, 1, __ATOMIC_RELAXED);
  return p;
}

static void obj_free(void *p) {
  if (p) {
    __atomic_sub_fetch(&live_objects, 1, __ATOMIC_RELAXED);
    free(p);
  }
}

/* ---- small helpers ----------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Sends one frame (header and payload in one writev). */
static int send_frame(aloop_transport_t *t, uint32_t id, int kind,
                      const void *data, size_t len) {
  unsigned char hdr[HDR];
  put32(hdr, (uint32_t)(len + 5));
  put32(hdr + 4, id);
  hdr[8] = (unsigned char)kind;
  aloop_iovec_t iov[2] = {{hdr, HDR}, {data, len}};
  return aloop_transport_writev(t, iov, len ? 2 : 1);
}

/* A growable input buffer: frames are parsed straight from the data the
 * loop hands over; only an incomplete tail is copied. */
typedef struct inbuf_s {
  unsigned char *p;
  size_t len, cap;
} inbuf_t;

static int inbuf_append(inbuf_t *b, const char *data, size_t len) {
  if (b->len + len > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + len)
      cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p)
      return ALOOP_ENOMEM;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, len);
  b->len += len;
  return 0;
}

typedef void (*frame_fn)(void *self, uint32_t id, int kind,
                         const unsigned char *payload, size_t len);

/* Parses the frames of data (after what b holds); returns 0, or -1 on a
 * malformed frame (then *bad_len tells the length read). */
static int parse(inbuf_t *b, const char *data, size_t len, frame_fn fn,
                 void *self, int *stop, uint32_t *bad_len) {
  const unsigned char *p;
  size_t n;
  if (b->len) {
    if (inbuf_append(b, data, len) < 0)
      return -1;
    p = b->p;
    n = b->len;
  } else {
    p = (const unsigned char *)data;
    n = len;
  }
  size_t off = 0;
  while (!*stop && n - off >= 4) {
    uint32_t flen = get32(p + off);
    if (flen < 5 || flen > RPC_MAX_FRAME) {
      *bad_len = flen;
      return -1;
    }
    if (n - off < 4 + (size_t)flen)
      break;
    fn(self, get32(p + off + 4), p[off + 8], p + off + HDR, flen - 5);
    off += 4 + flen;
  }
  if (*stop)
    return 0;
  if (b->len) {
    memmove(b->p, b->p + off, n - off);
    b->len = n - off;
  } else if (off < n) {
    if (inbuf_append(b, (const char *)p + off, n - off) < 0)
      return -1;
  }
  return 0;
}

/* Resolves a future the library holds a reference to, then drops that
 * reference. A result the future could not take (the host cancelled it) is
 * released with drop. */
static void resolve(aloop_future_t *f, void *result, void (*drop)(void *)) {
  if (aloop_future_set_result(f, result) < 0 && drop && result)
    drop(result);
  aloop_future_free(f);
}

static void reject(aloop_future_t *f, int code, const char *msg) {
  aloop_future_set_exception(f, code, msg); /* ESTATE if cancelled: fine */
  aloop_future_free(f);
}

/* A new future with two references: the caller's (*out) and the
 * library's (the return value). */
static aloop_future_t *shared_future(aloop_loop_t *loop, aloop_future_t **out,
                                     int *rc) {
  aloop_future_t *f = NULL;
  *rc = aloop_future_new(loop, &f);
  if (*rc < 0)
    return NULL;
  *rc = aloop_future_ref(f);
  if (*rc < 0) {
    aloop_future_free(f);
    return NULL;
  }
  *out = f;
  return f;
}

/* ======================================================================== */
/* Server                                                                    */
/* ======================================================================== */

typedef struct conn_s conn_t;

struct rpc_server_s {
  aloop_loop_t *loop;
  aloop_server_t *server;
  int refs; /* the host's (until rpc_server_close) + one per connection */
  int closed;
  uint64_t requests;
  conn_t *conns;
  /* waiting rpc_server_recv futures (library references), FIFO */
  aloop_future_t **waiters;
  size_t nwaiters, capwaiters;
  /* RPC_HOST requests nobody waits for yet, FIFO */
  rpc_request_t *qhead, *qtail;
};

struct conn_s {
  rpc_server_t *srv;
  aloop_transport_t *t;
  inbuf_t in;
  int refs; /* the transport's + one per timer or host request */
  int lost, stop;
  conn_t *prev, *next;
};

struct rpc_request_s {
  conn_t *conn;
  uint32_t id;
  size_t len;
  rpc_request_t *next;
  unsigned char data[];
};

static void server_unref(rpc_server_t *s) {
  if (--s->refs == 0) {
    free(s->waiters);
    obj_free(s);
  }
}

static void conn_unref(conn_t *c) {
  if (--c->refs == 0) {
    rpc_server_t *s = c->srv;
    free(c->in.p);
    obj_free(c);
    server_unref(s);
  }
}

static void request_drop(void *p) {
  rpc_request_t *r = p;
  conn_unref(r->conn);
  obj_free(r);
}

/* Hands r to the first waiter that takes it, else queues it. */
static void deliver(rpc_server_t *s, rpc_request_t *r) {
  while (s->nwaiters) {
    aloop_future_t *f = s->waiters[0];
    memmove(s->waiters, s->waiters + 1, --s->nwaiters * sizeof *s->waiters);
    int rc = aloop_future_set_result(f, r);
    aloop_future_free(f);
    if (rc == 0)
      return;
    /* that waiter was cancelled: the next one */
  }
  r->next = NULL;
  if (s->qtail)
    s->qtail->next = r;
  else
    s->qhead = r;
  s->qtail = r;
}

typedef struct sleep_s {
  conn_t *conn;
  uint32_t id;
  size_t len;
  unsigned char data[];
} sleep_t;

static void sleep_fire(aloop_loop_t *loop, void *ud) {
  sleep_t *z = ud;
  (void)loop;
  if (!z->conn->lost)
    send_frame(z->conn->t, z->id, RPC_REPLY_OK, z->data, z->len);
}

static void sleep_free(void *ud) {
  sleep_t *z = ud;
  conn_unref(z->conn);
  obj_free(z);
}

static void protocol_error(conn_t *c, const char *what, uint32_t value) {
  char msg[160];
  snprintf(msg, sizeof msg, "aloop_rpc: %s (%u) from a client: connection aborted",
           what, (unsigned)value);
  c->stop = 1;
  aloop_loop_call_exception_handler(c->srv->loop, msg, ALOOP_EINVAL);
  aloop_transport_abort(c->t);
}

static void server_frame(void *self, uint32_t id, int kind,
                         const unsigned char *p, size_t len) {
  conn_t *c = self;
  rpc_server_t *s = c->srv;
  s->requests++;
  switch (kind) {
  case RPC_ECHO:
    send_frame(c->t, id, RPC_REPLY_OK, p, len);
    break;
  case RPC_REVERSE: {
    unsigned char small[256];
    unsigned char *r = len <= sizeof small ? small : malloc(len);
    if (!r) {
      send_frame(c->t, id, RPC_REPLY_ERROR, "out of memory", 13);
      break;
    }
    for (size_t i = 0; i < len; i++)
      r[i] = p[len - 1 - i];
    send_frame(c->t, id, RPC_REPLY_OK, r, len);
    if (r != small)
      free(r);
    break;
  }
  case RPC_SLEEP: {
    if (len < 4) {
      send_frame(c->t, id, RPC_REPLY_ERROR, "sleep needs 4 bytes", 19);
      break;
    }
    sleep_t *z = obj_malloc(sizeof *z + len - 4);
    if (!z) {
      send_frame(c->t, id, RPC_REPLY_ERROR, "out of memory", 13);
      break;
    }
    z->conn = c;
    z->id = id;
    z->len = len - 4;
    memcpy(z->data, p + 4, len - 4);
    c->refs++;
    if (aloop_call_later(s->loop, get32(p) / 1000.0, sleep_fire, z, sleep_free,
                         NULL) < 0) /* sleep_free ran */
      send_frame(c->t, id, RPC_REPLY_ERROR, "timer failed", 12);
    break;
  }
  case RPC_FAIL:
    send_frame(c->t, id, RPC_REPLY_ERROR, p, len);
    break;
  case RPC_HOST: {
    rpc_request_t *r = obj_malloc(sizeof *r + len);
    if (!r) {
      send_frame(c->t, id, RPC_REPLY_ERROR, "out of memory", 13);
      break;
    }
    r->conn = c;
    r->id = id;
    r->len = len;
    memcpy(r->data, p, len);
    c->refs++;
    deliver(s, r);
    break;
  }
  default:
    protocol_error(c, "unknown method", (uint32_t)kind);
  }
}

static void server_data(aloop_transport_t *t, const char *data, size_t len,
                        void *ud) {
  conn_t *c = ud;
  uint32_t bad = 0;
  (void)t;
  if (c->stop)
    return;
  if (parse(&c->in, data, len, server_frame, c, &c->stop, &bad) < 0)
    protocol_error(c, "bad frame length", bad);
}

static void server_lost(aloop_transport_t *t, int error, void *ud) {
  conn_t *c = ud;
  (void)t;
  (void)error;
  c->lost = 1;
  c->t = NULL;
  if (c->prev)
    c->prev->next = c->next;
  else
    c->srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  conn_unref(c);
}

static const aloop_protocol_t server_protocol = {
    .size = sizeof(aloop_protocol_t),
    .data_received = server_data,
    .connection_lost = server_lost,
};

static int server_accept(aloop_server_t *server, aloop_transport_t *t,
                         void *ud) {
  rpc_server_t *s = ud;
  (void)server;
  if (s->closed)
    return -1;
  conn_t *c = obj_calloc(sizeof *c);
  if (!c)
    return -1;
  c->srv = s;
  c->t = t;
  c->refs = 1;
  if (aloop_transport_set_protocol(t, &server_protocol, c, NULL) < 0) {
    obj_free(c);
    return -1;
  }
  s->refs++;
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  return 0;
}

typedef struct start_s {
  rpc_server_t *srv;
  aloop_future_t *f; /* the library's reference to the host's future */
} start_t;

static void server_started(aloop_future_t *sf, void *ud) {
  start_t *st = ud;
  rpc_server_t *s = st->srv;
  aloop_server_t *server = NULL;
  int rc = aloop_future_result_server(sf, &server);
  if (rc < 0) {
    char msg[256] = "";
    aloop_future_error_message(sf, msg, sizeof msg);
    reject(st->f, rc, msg);
    server_unref(s);
  } else {
    s->server = server;
    if (aloop_future_set_result(st->f, s) < 0) /* cancelled meanwhile */
      rpc_server_close(s);
    aloop_future_free(st->f);
  }
  aloop_future_free(sf);
  obj_free(st);
}

int rpc_server_start(aloop_loop_t *loop, const char *host, int port,
                     aloop_future_t **out_future) {
  int rc;
  if (!out_future)
    return ALOOP_EINVAL;
  rpc_server_t *s = obj_calloc(sizeof *s);
  start_t *st = obj_calloc(sizeof *st);
  if (!s || !st) {
    obj_free(s);
    obj_free(st);
    return ALOOP_ENOMEM;
  }
  s->loop = loop;
  s->refs = 1;
  aloop_future_t *sf = NULL;
  /* The server's userdata (s) is ours: no free_cb, s outlives it. */
  rc = aloop_create_server(loop, host, port, server_accept, s, NULL, NULL, &sf);
  if (rc < 0)
    goto fail;
  st->srv = s;
  st->f = shared_future(loop, out_future, &rc);
  if (!st->f) {
    aloop_future_cancel(sf);
    aloop_future_free(sf);
    goto fail;
  }
  rc = aloop_future_add_done_callback(sf, server_started, st, NULL);
  if (rc < 0) {
    aloop_future_cancel(sf);
    aloop_future_free(sf);
    aloop_future_free(st->f);
    aloop_future_free(*out_future);
    *out_future = NULL;
    goto fail;
  }
  return 0;
fail:
  obj_free(s);
  obj_free(st);
  return rc;
}

int rpc_server_port(rpc_server_t *s) {
  if (!s || !s->server)
    return ALOOP_EINVAL;
  char host[64];
  int port = 0;
  int rc = aloop_server_sockname(s->server, 0, host, sizeof host, &port);
  return rc < 0 ? rc : port;
}

uint64_t rpc_server_requests(rpc_server_t *s) { return s ? s->requests : 0; }

int rpc_server_close(rpc_server_t *s) {
  if (!s || s->closed)
    return ALOOP_EINVAL;
  s->closed = 1;
  if (s->server) {
    aloop_server_close(s->server);
    aloop_server_free(s->server);
    s->server = NULL;
  }
  for (conn_t *c = s->conns; c; c = c->next)
    aloop_transport_abort(c->t); /* connection_lost unlinks it later */
  while (s->nwaiters)
    reject(s->waiters[--s->nwaiters], ALOOP_ECLOSED, "the RPC server is closed");
  while (s->qhead) {
    rpc_request_t *r = s->qhead;
    s->qhead = r->next;
    request_drop(r);
  }
  s->qtail = NULL;
  server_unref(s);
  return 0;
}

int rpc_server_recv(rpc_server_t *s, aloop_future_t **out_future) {
  int rc;
  if (!s || !out_future)
    return ALOOP_EINVAL;
  if (s->closed)
    return ALOOP_ECLOSED;
  if (s->qhead) {
    aloop_future_t *f = NULL;
    rc = aloop_future_new(s->loop, &f);
    if (rc < 0)
      return rc;
    rpc_request_t *r = s->qhead;
    s->qhead = r->next;
    if (!s->qhead)
      s->qtail = NULL;
    aloop_future_set_result(f, r);
    *out_future = f;
    return 0;
  }
  if (s->nwaiters == s->capwaiters) {
    size_t cap = s->capwaiters ? s->capwaiters * 2 : 8;
    aloop_future_t **w = realloc(s->waiters, cap * sizeof *w);
    if (!w)
      return ALOOP_ENOMEM;
    s->waiters = w;
    s->capwaiters = cap;
  }
  aloop_future_t *f = shared_future(s->loop, out_future, &rc);
  if (!f)
    return rc;
  s->waiters[s->nwaiters++] = f;
  return 0;
}

const char *rpc_request_data(rpc_request_t *r, size_t *out_len) {
  if (!r)
    return NULL;
  if (out_len)
    *out_len = r->len;
  return (const char *)r->data;
}

int rpc_request_respond(rpc_request_t *r, int ok, const void *data,
                        size_t len) {
  if (!r || (len && !data))
    return ALOOP_EINVAL;
  int rc = ALOOP_ECLOSED;
  if (!r->conn->lost)
    rc = send_frame(r->conn->t, r->id, ok ? RPC_REPLY_OK : RPC_REPLY_ERROR,
                    data, len);
  request_drop(r);
  return rc;
}

/* ======================================================================== */
/* Client                                                                    */
/* ======================================================================== */

typedef struct pending_s {
  uint32_t id;
  aloop_future_t *f; /* the library's reference */
} pending_t;

struct rpc_client_s {
  aloop_loop_t *loop;
  aloop_transport_t *t;
  inbuf_t in;
  int refs; /* the host's (until rpc_client_close) + the transport's */
  int lost, closed, stop;
  uint32_t next_id;
  pending_t *pending;
  size_t npending, cappending;
};

struct rpc_reply_s {
  size_t len;
  unsigned char data[];
};

static void client_unref(rpc_client_t *c) {
  if (--c->refs == 0) {
    free(c->pending);
    free(c->in.p);
    obj_free(c);
  }
}

static void reply_drop(void *p) { obj_free(p); }

static void client_frame(void *self, uint32_t id, int kind,
                         const unsigned char *p, size_t len) {
  rpc_client_t *c = self;
  size_t i;
  for (i = 0; i < c->npending; i++)
    if (c->pending[i].id == id)
      break;
  if (i == c->npending)
    return; /* not ours (or already failed) */
  aloop_future_t *f = c->pending[i].f;
  c->pending[i] = c->pending[--c->npending];
  if (kind == RPC_REPLY_OK) {
    rpc_reply_t *r = obj_malloc(sizeof *r + len);
    if (!r) {
      reject(f, ALOOP_ENOMEM, "out of memory for the reply");
      return;
    }
    r->len = len;
    memcpy(r->data, p, len);
    resolve(f, r, reply_drop);
  } else {
    char msg[512];
    size_t n = len < sizeof msg - 1 ? len : sizeof msg - 1;
    memcpy(msg, p, n);
    msg[n] = 0;
    reject(f, ALOOP_EIO, msg);
  }
}

static void fail_pending(rpc_client_t *c, int code, const char *msg) {
  while (c->npending)
    reject(c->pending[--c->npending].f, code, msg);
}

static void client_data(aloop_transport_t *t, const char *data, size_t len,
                        void *ud) {
  rpc_client_t *c = ud;
  uint32_t bad = 0;
  if (c->stop)
    return;
  if (parse(&c->in, data, len, client_frame, c, &c->stop, &bad) < 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "aloop_rpc: bad frame length (%u) from the server",
             (unsigned)bad);
    c->stop = 1;
    aloop_loop_call_exception_handler(c->loop, msg, ALOOP_EINVAL);
    fail_pending(c, ALOOP_EINVAL, msg);
    aloop_transport_abort(t);
  }
}

static void client_lost(aloop_transport_t *t, int error, void *ud) {
  rpc_client_t *c = ud;
  (void)t;
  c->lost = 1;
  c->t = NULL;
  if (c->closed)
    fail_pending(c, ALOOP_ECLOSED, "the RPC client was closed");
  else
    fail_pending(c, error ? error : ALOOP_ECONNRESET,
                 "the RPC connection was lost");
  client_unref(c);
}

static const aloop_protocol_t client_protocol = {
    .size = sizeof(aloop_protocol_t),
    .data_received = client_data,
    .connection_lost = client_lost,
};

typedef struct connect_s {
  rpc_client_t *c;
  aloop_future_t *f;
} connect_t;

static void client_connected(aloop_future_t *cf, void *ud) {
  connect_t *st = ud;
  rpc_client_t *c = st->c;
  aloop_transport_t *t = NULL;
  int rc = aloop_future_result_transport(cf, &t);
  if (rc < 0) {
    char msg[256] = "";
    aloop_future_error_message(cf, msg, sizeof msg);
    reject(st->f, rc, msg);
    obj_free(c); /* no protocol callback ran: nothing else refers to c */
  } else {
    c->t = t;
    c->refs = 2;
    if (aloop_future_set_result(st->f, c) < 0) /* cancelled meanwhile */
      rpc_client_close(c);
    aloop_future_free(st->f);
  }
  aloop_future_free(cf);
  obj_free(st);
}

int rpc_connect(aloop_loop_t *loop, const char *host, int port,
                aloop_future_t **out_future) {
  int rc;
  if (!out_future)
    return ALOOP_EINVAL;
  rpc_client_t *c = obj_calloc(sizeof *c);
  connect_t *st = obj_calloc(sizeof *st);
  if (!c || !st) {
    obj_free(c);
    obj_free(st);
    return ALOOP_ENOMEM;
  }
  c->loop = loop;
  aloop_future_t *cf = NULL;
  rc = aloop_create_connection(loop, host, port, &client_protocol, c, NULL,
                               NULL, &cf);
  if (rc < 0)
    goto fail;
  st->c = c;
  st->f = shared_future(loop, out_future, &rc);
  if (!st->f) {
    aloop_future_cancel(cf);
    aloop_future_free(cf);
    goto fail;
  }
  rc = aloop_future_add_done_callback(cf, client_connected, st, NULL);
  if (rc < 0) {
    aloop_future_cancel(cf);
    aloop_future_free(cf);
    aloop_future_free(st->f);
    aloop_future_free(*out_future);
    *out_future = NULL;
    goto fail;
  }
  return 0;
fail:
  obj_free(c);
  obj_free(st);
  return rc;
}

int rpc_call(rpc_client_t *c, int method, const void *data, size_t len,
             aloop_future_t **out_future) {
  int rc;
  if (!c || !out_future || (len && !data) || method < 0 || method > 255)
    return ALOOP_EINVAL;
  if (len > RPC_MAX_FRAME - 5)
    return ALOOP_EINVAL;
  if (c->lost || c->closed)
    return ALOOP_ECLOSED;
  if (c->npending == c->cappending) {
    size_t cap = c->cappending ? c->cappending * 2 : 16;
    pending_t *p = realloc(c->pending, cap * sizeof *p);
    if (!p)
      return ALOOP_ENOMEM;
    c->pending = p;
    c->cappending = cap;
  }
  aloop_future_t *f = shared_future(c->loop, out_future, &rc);
  if (!f)
    return rc;
  uint32_t id = ++c->next_id;
  rc = send_frame(c->t, id, method, data, len);
  if (rc < 0) {
    aloop_future_free(f);
    aloop_future_free(f);
    *out_future = NULL;
    return rc;
  }
  c->pending[c->npending].id = id;
  c->pending[c->npending].f = f;
  c->npending++;
  return 0;
}

const char *rpc_reply_data(rpc_reply_t *r, size_t *out_len) {
  if (!r)
    return NULL;
  if (out_len)
    *out_len = r->len;
  return (const char *)r->data;
}

void rpc_reply_free(rpc_reply_t *r) { obj_free(r); }

int rpc_client_close(rpc_client_t *c) {
  if (!c || c->closed)
    return ALOOP_EINVAL;
  c->closed = 1;
  if (!c->lost)
    aloop_transport_close(c->t);
  client_unref(c);
  return 0;
}

int rpc_client_send_raw(rpc_client_t *c, const void *data, size_t len) {
  if (!c || (len && !data))
    return ALOOP_EINVAL;
  if (c->lost || c->closed)
    return ALOOP_ECLOSED;
  return aloop_transport_write(c->t, data, len);
}

/* ---- the library-driven benchmark -------------------------------------- */

typedef struct bench_s {
  rpc_client_t *c;
  aloop_future_t *f; /* the library's reference */
  uint64_t left, outstanding;
  size_t size;
  unsigned char *payload;
  int failed;
} bench_t;

static void bench_done(aloop_future_t *cf, void *ud);

static int bench_issue(bench_t *b) {
  aloop_future_t *cf = NULL;
  int rc = rpc_call(b->c, RPC_ECHO, b->payload, b->size, &cf);
  if (rc < 0)
    return rc;
  rc = aloop_future_add_done_callback(cf, bench_done, b, NULL);
  aloop_future_free(cf);
  if (rc < 0)
    return rc;
  b->left--;
  b->outstanding++;
  return 0;
}

static void bench_finish(bench_t *b, int code, const char *msg) {
  if (code)
    reject(b->f, code, msg);
  else
    resolve(b->f, NULL, NULL);
  free(b->payload);
  obj_free(b);
}

static void bench_done(aloop_future_t *cf, void *ud) {
  bench_t *b = ud;
  rpc_reply_t *r = NULL;
  b->outstanding--;
  int rc = aloop_future_result(cf, (void **)&r);
  if (rc < 0) {
    b->failed = b->failed ? b->failed : rc;
  } else {
    if (r->len != b->size || memcmp(r->data, b->payload, b->size) != 0)
      b->failed = b->failed ? b->failed : ALOOP_EIO;
    rpc_reply_free(r);
  }
  if (!b->failed && b->left) {
    rc = bench_issue(b);
    if (rc < 0)
      b->failed = rc;
  }
  if (b->outstanding == 0)
    bench_finish(b, b->failed,
                 b->failed == ALOOP_EIO ? "a reply did not match its request"
                                        : NULL);
}

int rpc_client_bench(rpc_client_t *c, uint64_t count, int inflight,
                     size_t size, aloop_future_t **out_future) {
  int rc;
  if (!c || !out_future || inflight <= 0 || size > RPC_MAX_FRAME - 5)
    return ALOOP_EINVAL;
  bench_t *b = obj_calloc(sizeof *b);
  if (!b)
    return ALOOP_ENOMEM;
  b->payload = malloc(size ? size : 1);
  if (!b->payload) {
    obj_free(b);
    return ALOOP_ENOMEM;
  }
  for (size_t i = 0; i < size; i++)
    b->payload[i] = (unsigned char)(i * 131 + 7);
  b->c = c;
  b->size = size;
  b->left = count;
  b->f = shared_future(c->loop, out_future, &rc);
  if (!b->f) {
    free(b->payload);
    obj_free(b);
    return rc;
  }
  if (count == 0) {
    bench_finish(b, 0, NULL);
    return 0;
  }
  for (int i = 0; i < inflight && b->left; i++) {
    rc = bench_issue(b);
    if (rc < 0) {
      b->failed = rc;
      break;
    }
  }
  if (b->outstanding == 0) /* the first call failed */
    bench_finish(b, b->failed, "the first call failed");
  return 0;
}
