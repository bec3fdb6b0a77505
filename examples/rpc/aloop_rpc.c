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
/* Who releases what                                                         */
/* ======================================================================== */
/*
 * Every registration the library makes with the loop (the listening
 * server's on_connection, a connection's protocol, a timer, a
 * done-callback) passes a free_cb, and the memory tied to that registration
 * is released there: free_cb runs exactly once whatever happens (after
 * connection_lost, after the done-callback ran, inside a call that fails,
 * or inside aloop_loop_close_force, which runs no callback of ours at all:
 * no connection_lost, no done-callback, no timer). connection_lost and the
 * done-callbacks only do the protocol's work (fail the pending calls,
 * unlink, answer the host). Objects reached from several places count
 * their references:
 *     rpc_server_t  the host's (until rpc_server_close), the listening
 *                   server's registration, the start operation's, one per
 *                   connection
 *     conn_t        its transport's registration, one per sleep timer and
 *                   per RPC_HOST request not answered yet
 *     rpc_client_t  the host's (until rpc_client_close), its transport's
 *                   registration, the connect operation's, one per
 *                   library-driven benchmark
 *     bench_t       the benchmark's driver, one per call in flight
 * What the host holds (a client, a server, a request, a reply) stays valid
 * until the host releases it, also after a force-close of the loop (the
 * functions then only release memory: ALOOP_ECLOSED, or 0 for the closes).
 */

/* ======================================================================== */
/* Server                                                                    */
/* ======================================================================== */

typedef struct conn_s conn_t;

struct rpc_server_s {
  aloop_loop_t *loop;
  aloop_server_t *server; /* set once listening, NULL once released */
  int refs;
  int closed; /* rpc_server_close was called */
  int gone;   /* the listening server's registration was released */
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
  aloop_transport_t *t; /* NULL once lost */
  inbuf_t in;
  int refs;
  int lost, stop, linked;
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

/* The connection is gone (connection_lost, or its free_cb when
 * connection_lost did not run): off the server's list. */
static void conn_gone(conn_t *c) {
  c->lost = 1;
  c->t = NULL;
  if (!c->linked)
    return;
  c->linked = 0;
  if (c->prev)
    c->prev->next = c->next;
  else
    c->srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
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

/* The server stops serving: aborts its connections (their connection_lost
 * and free_cb follow), fails the waiting rpc_server_recv futures, releases
 * the queued requests. Idempotent. */
static void server_shutdown(rpc_server_t *s) {
  for (conn_t *c = s->conns, *next; c; c = next) {
    next = c->next; /* (on a closed loop connection_lost runs inside abort) */
    aloop_transport_abort(c->t);
  }
  while (s->nwaiters)
    reject(s->waiters[--s->nwaiters], ALOOP_ECLOSED, "the RPC server is closed");
  while (s->qhead) {
    rpc_request_t *r = s->qhead;
    s->qhead = r->next;
    request_drop(r);
  }
  s->qtail = NULL;
}

/* The free_cb of the listening server's registration: it runs inside
 * rpc_server_close (aloop_server_free), when creating the server failed,
 * or inside aloop_loop_close_force. */
static void server_reg_free(void *ud) {
  rpc_server_t *s = ud;
  s->gone = 1;
  s->server = NULL;
  server_shutdown(s);
  server_unref(s);
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

/* The timer's free_cb: after it fired, when it is dropped, or inside a
 * failing aloop_call_later. */
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
    c->refs++; /* the timer's, released by sleep_free */
    if (aloop_call_later(s->loop, get32(p) / 1000.0, sleep_fire, z, sleep_free,
                         NULL) < 0) /* sleep_free ran */
      send_frame(c->t, id, RPC_REPLY_ERROR, "timer failed", 12);
    break;
  }
  case RPC_FAIL:
    send_frame(c->t, id, RPC_REPLY_ERROR, p, len);
    break;
  case RPC_HOST: {
    if (s->closed || s->gone) { /* nobody could take it any more */
      send_frame(c->t, id, RPC_REPLY_ERROR, "the RPC server is closed", 24);
      break;
    }
    rpc_request_t *r = obj_malloc(sizeof *r + len);
    if (!r) {
      send_frame(c->t, id, RPC_REPLY_ERROR, "out of memory", 13);
      break;
    }
    r->conn = c;
    r->id = id;
    r->len = len;
    memcpy(r->data, p, len);
    c->refs++; /* the request's, released by request_drop */
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
  (void)t;
  (void)error;
  conn_gone(ud); /* conn_free follows */
}

/* The connection's free_cb: after connection_lost, inside a failing
 * aloop_transport_set_protocol, or inside aloop_loop_close_force (without
 * connection_lost). */
static void conn_free(void *ud) {
  conn_t *c = ud;
  conn_gone(c);
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
  if (s->closed || s->gone)
    return -1;
  conn_t *c = obj_calloc(sizeof *c);
  if (!c)
    return -1;
  c->srv = s;
  c->t = t;
  c->refs = 1; /* the registration's, released by conn_free */
  s->refs++;
  c->linked = 1;
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  if (aloop_transport_set_protocol(t, &server_protocol, c, conn_free) < 0)
    return -1; /* conn_free ran: unlinked and released */
  return 0;
}

typedef struct start_s {
  rpc_server_t *srv;
  aloop_future_t *sf; /* aloop_create_server's future */
  aloop_future_t *f;  /* the library's reference to the host's future,
                         NULL once resolved */
} start_t;

static void server_started(aloop_future_t *sf, void *ud) {
  start_t *st = ud;
  rpc_server_t *s = st->srv;
  aloop_server_t *server = NULL;
  int rc = aloop_future_result_server(sf, &server);
  if (rc < 0) {
    char msg[256] = "";
    aloop_future_error_message(sf, msg, sizeof msg);
    reject(st->f, rc, msg); /* server_reg_free releases the registration's */
  } else {
    s->server = server;
    s->refs++; /* the host's, until rpc_server_close */
    if (aloop_future_set_result(st->f, s) < 0) /* cancelled meanwhile */
      rpc_server_close(s);
    aloop_future_free(st->f);
  }
  st->f = NULL;
}

/* The done-callback's free_cb: after server_started ran, inside a failing
 * aloop_future_add_done_callback, or when the loop drops the callback
 * (aloop_loop_close_force: server_started never ran). */
static void start_free(void *ud) {
  start_t *st = ud;
  if (st->f)
    reject(st->f, ALOOP_ECLOSED, "the loop was closed before the server started");
  aloop_future_cancel(st->sf); /* done already, or abandoned now */
  aloop_future_free(st->sf);
  server_unref(st->srv);
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
  s->refs = 2; /* the registration's and the start operation's */
  st->srv = s;
  /* server_reg_free runs inside this call if it fails */
  rc = aloop_create_server(loop, host, port, server_accept, s, server_reg_free,
                           NULL, &st->sf);
  if (rc < 0)
    goto fail;
  st->f = shared_future(loop, out_future, &rc);
  if (!st->f) {
    aloop_future_cancel(st->sf); /* abandoned: server_reg_free follows */
    aloop_future_free(st->sf);
    goto fail;
  }
  rc = aloop_future_add_done_callback(st->sf, server_started, st, start_free);
  if (rc < 0) { /* start_free ran: released st, its references and s's */
    aloop_future_free(*out_future);
    *out_future = NULL;
    return rc;
  }
  return 0;
fail:
  obj_free(st);
  server_unref(s);
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
  aloop_server_t *server = s->server;
  s->server = NULL;
  if (server)
    aloop_server_free(server); /* server_reg_free runs inside */
  server_shutdown(s);          /* (already done, unless force-closed) */
  server_unref(s);             /* the host's */
  return 0;
}

int rpc_server_recv(rpc_server_t *s, aloop_future_t **out_future) {
  int rc;
  if (!s || !out_future)
    return ALOOP_EINVAL;
  if (s->closed || s->gone)
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
  aloop_transport_t *t; /* set once connected, NULL once lost */
  inbuf_t in;
  int refs;
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
  /* client_free follows */
}

/* The connection's free_cb: after connection_lost, when the connection
 * failed, inside a failing aloop_create_connection, or inside
 * aloop_loop_close_force (without connection_lost: the calls still pending
 * are failed here, their futures were cancelled by the force-close). */
static void client_free(void *ud) {
  rpc_client_t *c = ud;
  c->lost = 1;
  c->t = NULL;
  fail_pending(c, ALOOP_ECLOSED, "the loop was closed");
  client_unref(c);
}

static const aloop_protocol_t client_protocol = {
    .size = sizeof(aloop_protocol_t),
    .data_received = client_data,
    .connection_lost = client_lost,
};

typedef struct connect_s {
  rpc_client_t *c;
  aloop_future_t *cf; /* aloop_create_connection's future */
  aloop_future_t *f;  /* the library's reference to the host's future,
                         NULL once resolved */
} connect_t;

static void client_connected(aloop_future_t *cf, void *ud) {
  connect_t *st = ud;
  rpc_client_t *c = st->c;
  aloop_transport_t *t = NULL;
  int rc = aloop_future_result_transport(cf, &t);
  if (rc < 0) {
    char msg[256] = "";
    aloop_future_error_message(cf, msg, sizeof msg);
    reject(st->f, rc, msg); /* client_free releases the registration's */
  } else {
    if (!c->lost) /* connection_lost may have run already */
      c->t = t;
    c->refs++; /* the host's, until rpc_client_close */
    if (aloop_future_set_result(st->f, c) < 0) /* cancelled meanwhile */
      rpc_client_close(c);
    aloop_future_free(st->f);
  }
  st->f = NULL;
}

/* The done-callback's free_cb (as start_free). */
static void connect_free(void *ud) {
  connect_t *st = ud;
  if (st->f)
    reject(st->f, ALOOP_ECLOSED, "the loop was closed before the connection was made");
  aloop_future_cancel(st->cf); /* done already, or abandoned now */
  aloop_future_free(st->cf);
  client_unref(st->c);
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
  c->refs = 2; /* the registration's and the connect operation's */
  st->c = c;
  /* client_free runs inside this call if it fails */
  rc = aloop_create_connection(loop, host, port, &client_protocol, c,
                               client_free, NULL, &st->cf);
  if (rc < 0)
    goto fail;
  st->f = shared_future(loop, out_future, &rc);
  if (!st->f) {
    aloop_future_cancel(st->cf); /* abandoned: client_free follows */
    aloop_future_free(st->cf);
    goto fail;
  }
  rc = aloop_future_add_done_callback(st->cf, client_connected, st, connect_free);
  if (rc < 0) { /* connect_free ran: released st, its references and c's */
    aloop_future_free(*out_future);
    *out_future = NULL;
    return rc;
  }
  return 0;
fail:
  obj_free(st);
  client_unref(c);
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
    aloop_transport_close(c->t); /* connection_lost, then client_free */
  client_unref(c);               /* the host's */
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

typedef struct bench_s bench_t;

/* One call in flight: the userdata of its done-callback. */
typedef struct bcall_s {
  bench_t *b;
  aloop_future_t *f; /* the benchmark's reference to the call's future */
  int ran;           /* bench_done ran */
  struct bcall_s *next; /* on the spare list */
} bcall_t;

struct bench_s {
  rpc_client_t *c;   /* a reference of its own */
  aloop_future_t *f; /* the library's reference, NULL once resolved */
  uint64_t left, outstanding;
  size_t size;
  unsigned char *payload;
  int failed;
  int refs; /* the driver's (rpc_client_bench) + one per bcall_t in flight */
  bcall_t *spare; /* bcall_t to reuse */
};

static void bench_unref(bench_t *b) {
  if (--b->refs)
    return;
  if (b->f) /* calls were dropped unanswered (a force-closed loop) */
    reject(b->f, ALOOP_ECLOSED, "the loop was closed during the benchmark");
  while (b->spare) {
    bcall_t *n = b->spare->next;
    obj_free(b->spare);
    b->spare = n;
  }
  client_unref(b->c);
  free(b->payload);
  obj_free(b);
}

static void bench_finish(bench_t *b, int code, const char *msg) {
  if (code)
    reject(b->f, code, msg);
  else
    resolve(b->f, NULL, NULL);
  b->f = NULL;
}

static void bench_done(aloop_future_t *cf, void *ud);

/* The done-callback's free_cb: after bench_done ran, inside a failing
 * aloop_future_add_done_callback, or when the loop drops the callback
 * (aloop_loop_close_force: then a reply that arrived is ours to release). */
static void bcall_free(void *ud) {
  bcall_t *bc = ud;
  bench_t *b = bc->b;
  if (!bc->ran) {
    void *r = NULL;
    b->outstanding--;
    if (aloop_future_cancel(bc->f) == 0 && aloop_future_result(bc->f, &r) == 0)
      rpc_reply_free(r);
  }
  aloop_future_free(bc->f);
  bc->f = NULL;
  bc->next = b->spare;
  b->spare = bc;
  bench_unref(b);
}

static int bench_issue(bench_t *b) {
  bcall_t *bc = b->spare;
  if (bc)
    b->spare = bc->next;
  else if (!(bc = obj_malloc(sizeof *bc)))
    return ALOOP_ENOMEM;
  bc->b = b;
  bc->f = NULL;
  bc->ran = 0;
  int rc = rpc_call(b->c, RPC_ECHO, b->payload, b->size, &bc->f);
  if (rc < 0) {
    bc->next = b->spare;
    b->spare = bc;
    return rc;
  }
  b->left--;
  b->outstanding++;
  b->refs++; /* bc's, released by bcall_free (inside, if this fails) */
  return aloop_future_add_done_callback(bc->f, bench_done, bc, bcall_free);
}

static void bench_done(aloop_future_t *cf, void *ud) {
  bcall_t *bc = ud;
  bench_t *b = bc->b;
  rpc_reply_t *r = NULL;
  bc->ran = 1;
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
  if (b->outstanding == 0 && b->f)
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
  c->refs++;
  b->refs = 1; /* the driver's, until the end of this function */
  b->size = size;
  b->left = count;
  b->f = shared_future(c->loop, out_future, &rc);
  if (!b->f) {
    bench_unref(b);
    return rc;
  }
  if (count == 0) {
    bench_finish(b, 0, NULL);
  } else {
    for (int i = 0; i < inflight && b->left; i++) {
      rc = bench_issue(b);
      if (rc < 0) {
        b->failed = rc;
        break;
      }
    }
    if (b->outstanding == 0 && b->f) /* the first call failed */
      bench_finish(b, b->failed, "the first call failed");
  }
  bench_unref(b);
  return 0;
}
