/*
 * test-events.c - the event queue (aloop_loop_poll / aloop_loop_flush,
 * ALOOP_PROTOCOL_QUEUED) over real loopback TCP and Unix sockets:
 *  - an echo server whose host dispatches the event records itself and
 *    echoes through the write queue; clients (blocking sockets in threads)
 *    send 8 MiB in random-sized chunks and check every byte comes back in
 *    order, then a trailer written after EOF (half-close);
 *  - the order of a transport's events (MADE, DATA..., EOF, LOST last with
 *    error 0) and that EOF does not close;
 *  - a 2-record event array and the minimum arena: nothing lost, no poll
 *    writes more records or arena bytes than room;
 *  - the protocol's free_cb runs once, at the start of the poll after the one
 *    that delivered CONNECTION_LOST (also when that record overflowed);
 *  - outside a poll (aloop_loop_run_once, a direct aloop_transport_write) the
 *    function pointers are called instead;
 *  - PAUSE/RESUME_WRITING records for a write-op flood on a peer that does
 *    not read; ALOOP_WRITE_EOF after the data before it; write operations
 *    naming stale / foreign / bogus transports are skipped.
 *
 * Every event the host sees goes through conn_event(), which checks the
 * per-transport order and that the userdata has not been dropped yet.
 */
#include "test.h"
#include "helpers.h"

#include <math.h>
#include <poll.h>
#include <pthread.h>

/* ======================================================================== */
/* The data                                                                 */
/* ======================================================================== */

static inline unsigned char pat(uint64_t i) {
  uint64_t x = (i >> 3) * 0x9E3779B97F4A7C15ull;
  return (unsigned char)((x >> 56) ^ (i & 7));
}

static const char TRAILER[] = "BYE after EOF";
#define TRAILER_LEN (sizeof TRAILER - 1)

/* ======================================================================== */
/* The host: event array, read arena, write queue                           */
/* ======================================================================== */

#define GUARD_RECORDS 4
#define GUARD_BYTES 4096
#define GUARD_BYTE 0xA5

static struct host {
  aloop_event_t *ev; /* nev records + GUARD_RECORDS guard records */
  size_t nev;
  unsigned char *arena; /* arena_size bytes + GUARD_BYTES guard bytes */
  size_t arena_size;
  aloop_write_op_t *ops;
  size_t nops, nwrites;
  unsigned char *warena;
  size_t wsize, wused;
  int polls;      /* aloop_loop_poll calls made */
  int polling;    /* the index of the poll running, -1 outside one */
  int max_n;      /* most records one poll returned */
  long records;   /* records seen */
} H = {.polling = -1};

static void host_init(size_t nev, size_t arena_size, size_t nops,
                      size_t wsize) {
  H.nev = nev;
  H.ev = malloc((nev + GUARD_RECORDS) * sizeof *H.ev);
  ASSERT(H.ev != NULL);
  memset(H.ev, GUARD_BYTE, (nev + GUARD_RECORDS) * sizeof *H.ev);
  H.arena_size = arena_size;
  H.arena = malloc(arena_size + GUARD_BYTES);
  ASSERT(H.arena != NULL);
  memset(H.arena, GUARD_BYTE, arena_size + GUARD_BYTES);
  H.nops = nops;
  H.ops = calloc(nops, sizeof *H.ops);
  H.wsize = wsize;
  H.warena = malloc(wsize);
  ASSERT(H.ops != NULL && H.warena != NULL);
  OK(aloop_loop_set_event_queue(loop, H.ev, nev, H.arena, arena_size));
  OK(aloop_loop_set_write_queue(loop, H.ops, nops, H.warena, wsize));
}

/* Queues an operation (DATA copies len bytes into the write arena). */
static void host_op(aloop_transport_t *t, aloop_write_kind_t kind,
                    const void *data, size_t len) {
  ASSERT_CMP(H.nwrites, <, H.nops);
  ASSERT_CMP(H.wused + len, <=, H.wsize);
  aloop_write_op_t *op = &H.ops[H.nwrites++];
  op->transport = t;
  op->kind = (uint32_t)kind;
  op->length = (uint32_t)len;
  if (len) {
    memcpy(H.warena + H.wused, data, len);
    H.wused += len;
  }
}

static void host_write(aloop_transport_t *t, const void *data, size_t len) {
  host_op(t, ALOOP_WRITE_DATA, data, len);
}

static int guard_intact(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != GUARD_BYTE)
      return 0;
  return 1;
}

/* One aloop_loop_poll with the queued writes (every other one through
 * aloop_loop_poll_args); checks the room was kept. */
static int host_poll(double timeout) {
  H.polling = H.polls;
  int n;
  if (H.polls % 2) {
    aloop_poll_args_t a = {sizeof a, loop, timeout, H.nwrites};
    n = aloop_loop_poll_args(&a);
  } else {
    n = aloop_loop_poll(loop, timeout, H.nwrites);
  }
  H.polling = -1;
  H.polls++;
  OK(n);
  H.nwrites = 0;
  H.wused = 0;
  ASSERT_CMP(n, <=, (long long)H.nev);
  if (n > H.max_n)
    H.max_n = n;
  H.records += n;
  if (!guard_intact(H.ev + H.nev, GUARD_RECORDS * sizeof *H.ev))
    FAIL("poll %d wrote past the %zu records of the event array", H.polls,
         H.nev);
  if (!guard_intact(H.arena + H.arena_size, GUARD_BYTES))
    FAIL("poll %d wrote past the %zu bytes of the read arena", H.polls,
         H.arena_size);
  /* DATA records lie in the arena without overlapping */
  uint64_t end = 0;
  for (int i = 0; i < n; i++) {
    aloop_event_t *e = &H.ev[i];
    if (e->kind != ALOOP_EVENT_DATA)
      continue;
    ASSERT_CMP(e->length, >, 0);
    ASSERT_CMP(e->offset, >=, end);
    ASSERT_CMP(e->offset + e->length, <=, H.arena_size);
    end = e->offset + e->length;
  }
  return n;
}

/* ======================================================================== */
/* Connections (the protocol's userdata) and the per-transport order        */
/* ======================================================================== */

#define MAGIC 0xC0FFEE42u

enum { ST_NEW, ST_MADE, ST_EOF, ST_LOST };
enum { MODE_ECHO, MODE_COLLECT };

typedef struct conn {
  uint32_t magic;
  int id, mode;
  aloop_transport_t *accepted; /* given to the connection callback */
  aloop_transport_t *t;        /* named by CONNECTION_MADE */
  int state, paused, pauses, resumes, lost_err, lost_poll;
  char log[64]; /* M D E L, one D per run of DATA */
  size_t loglen;
  uint64_t rx;
  unsigned char *buf; /* MODE_COLLECT */
  size_t buflen, bufcap;
  int fn_calls, fn_pause, fn_resume; /* function-pointer calls */
  int keep_open;                     /* fallback eof_received's answer */
  int freed, freed_poll;
} conn_t;

#define MAX_CONNS 32
static conn_t conns[MAX_CONNS];
static int nconns;
static int conn_mode = MODE_ECHO;

static void log_add(conn_t *c, char k) {
  if (k == 'D' && c->loglen && c->log[c->loglen - 1] == 'D')
    return;
  if (c->loglen + 1 < sizeof c->log)
    c->log[c->loglen++] = k;
}

/* Every event of a connection, from a record (via_fn 0) or a function
 * pointer (1): order checks, then what the connection's mode does. */
static void conn_event(conn_t *c, int kind, aloop_transport_t *t, int err,
                       const unsigned char *data, size_t len, int via_fn) {
  ASSERT(c != NULL);
  ASSERT_EQ(c->magic, MAGIC);
  if (c->freed)
    FAIL("conn %d: event %d after its userdata was dropped (free_cb ran in "
         "poll %d)",
         c->id, kind, c->freed_poll);
  if (c->state == ST_LOST)
    FAIL("conn %d: event %d after CONNECTION_LOST", c->id, kind);
  if (kind != ALOOP_EVENT_CONNECTION_MADE && t != c->t)
    FAIL("conn %d: event %d names transport %p, connection_made named %p",
         c->id, kind, (void *)t, (void *)c->t);
  switch (kind) {
  case ALOOP_EVENT_CONNECTION_MADE:
    if (c->state != ST_NEW)
      FAIL("conn %d: CONNECTION_MADE twice", c->id);
    if (c->accepted)
      ASSERT_PTR_EQ(t, c->accepted);
    c->t = t;
    c->state = ST_MADE;
    log_add(c, 'M');
    break;
  case ALOOP_EVENT_DATA:
    if (c->state != ST_MADE)
      FAIL("conn %d: DATA in state %d (log %s)", c->id, c->state, c->log);
    ASSERT_CMP(len, >, 0);
    c->rx += len;
    log_add(c, 'D');
    if (c->mode == MODE_ECHO) {
      if (via_fn)
        OK(aloop_transport_write(t, data, len));
      else
        host_write(t, data, len);
    } else {
      buf_append(&c->buf, &c->buflen, &c->bufcap, data, len);
    }
    break;
  case ALOOP_EVENT_EOF:
    if (c->state != ST_MADE)
      FAIL("conn %d: EOF in state %d", c->id, c->state);
    c->state = ST_EOF;
    log_add(c, 'E');
    if (c->mode == MODE_ECHO && !via_fn) {
      /* half-close: still writable after EOF; then close */
      ASSERT_EQ(aloop_transport_is_closing(t), 0);
      host_write(t, TRAILER, TRAILER_LEN);
      host_op(t, ALOOP_WRITE_CLOSE, NULL, 0);
    } else if (c->mode == MODE_ECHO) {
      OK(aloop_transport_write(t, TRAILER, TRAILER_LEN));
    }
    break;
  case ALOOP_EVENT_CONNECTION_LOST:
    if (c->state != ST_MADE && c->state != ST_EOF)
      FAIL("conn %d: CONNECTION_LOST in state %d", c->id, c->state);
    c->state = ST_LOST;
    c->lost_err = err;
    c->lost_poll = H.polls - 1;
    log_add(c, 'L');
    break;
  case ALOOP_EVENT_PAUSE_WRITING:
    if (c->paused)
      FAIL("conn %d: PAUSE_WRITING twice", c->id);
    c->paused = 1;
    c->pauses++;
    break;
  case ALOOP_EVENT_RESUME_WRITING:
    if (!c->paused)
      FAIL("conn %d: RESUME_WRITING without PAUSE_WRITING", c->id);
    c->paused = 0;
    c->resumes++;
    break;
  default:
    FAIL("unknown event kind %d", kind);
  }
}

/* Walks the records of the last poll. */
static void dispatch(int n) {
  for (int i = 0; i < n; i++) {
    aloop_event_t *e = &H.ev[i];
    conn_t *c = e->userdata;
    if (e->kind == ALOOP_EVENT_CONNECTION_LOST) {
      /* the handle is already stale */
      ASSERT_EQ(aloop_transport_is_closing(e->transport), ALOOP_EBADF);
    } else {
      /* a record before CONNECTION_LOST in the same batch may name a
       * handle already stale; then that CONNECTION_LOST follows in this
       * batch (or in the next polls when this one filled the array) */
      int rc = aloop_transport_is_closing(e->transport);
      if (rc < 0) {
        ASSERT_EQ(rc, ALOOP_EBADF);
        int later = 0;
        for (int j = i + 1; j < n && !later; j++)
          later = H.ev[j].kind == ALOOP_EVENT_CONNECTION_LOST &&
                  H.ev[j].userdata == e->userdata;
        if (!later && (size_t)n < H.nev)
          FAIL("record %d (kind %d) names a stale transport and no "
               "CONNECTION_LOST follows",
               i, (int)e->kind);
      }
    }
    conn_event(c, (int)e->kind, e->transport, e->error,
               e->kind == ALOOP_EVENT_DATA ? H.arena + e->offset : NULL,
               e->kind == ALOOP_EVENT_DATA ? (size_t)e->length : 0, 0);
  }
}

static int pump(double timeout) {
  int n = host_poll(timeout);
  dispatch(n);
  return n;
}

#define PUMP_UNTIL(cond)                                                       \
  do {                                                                         \
    double t0_ = test_now();                                                   \
    while (!(cond)) {                                                          \
      if (test_now() - t0_ > 40)                                               \
        FAIL("timed out polling for %s", #cond);                               \
      pump(0.02);                                                              \
    }                                                                          \
  } while (0)

/* ---- the protocol's function pointers (the fallback) --------------------- */

static void fn_made(aloop_transport_t *t, void *ud) {
  conn_t *c = ud;
  c->fn_calls++;
  conn_event(c, ALOOP_EVENT_CONNECTION_MADE, t, 0, NULL, 0, 1);
}
static void fn_data(aloop_transport_t *t, const char *d, size_t n, void *ud) {
  conn_t *c = ud;
  c->fn_calls++;
  conn_event(c, ALOOP_EVENT_DATA, t, 0, (const unsigned char *)d, n, 1);
}
static int fn_eof(aloop_transport_t *t, void *ud) {
  conn_t *c = ud;
  c->fn_calls++;
  conn_event(c, ALOOP_EVENT_EOF, t, 0, NULL, 0, 1);
  return c->keep_open;
}
static void fn_lost(aloop_transport_t *t, int err, void *ud) {
  conn_t *c = ud;
  c->fn_calls++;
  conn_event(c, ALOOP_EVENT_CONNECTION_LOST, t, err, NULL, 0, 1);
  c->lost_poll = -1;
}
static void fn_pause(aloop_transport_t *t, void *ud) {
  conn_t *c = ud;
  c->fn_calls++;
  c->fn_pause++;
  conn_event(c, ALOOP_EVENT_PAUSE_WRITING, t, 0, NULL, 0, 1);
}
static void fn_resume(aloop_transport_t *t, void *ud) {
  conn_t *c = ud;
  c->fn_calls++;
  c->fn_resume++;
  conn_event(c, ALOOP_EVENT_RESUME_WRITING, t, 0, NULL, 0, 1);
}

/* The buffered variant (get_buffer / buffer_updated). */
static unsigned char fb_buf[1000];
static void *fn_get_buffer(aloop_transport_t *t, size_t hint, size_t *len,
                           void *ud) {
  *len = sizeof fb_buf;
  return fb_buf;
}
static void fn_updated(aloop_transport_t *t, size_t n, void *ud) {
  conn_t *c = ud;
  c->fn_calls++;
  ASSERT_CMP(n, <=, sizeof fb_buf);
  conn_event(c, ALOOP_EVENT_DATA, t, 0, fb_buf, n, 1);
}

static void conn_free(void *ud) {
  conn_t *c = ud;
  ASSERT_EQ(c->magic, MAGIC);
  c->freed++;
  c->freed_poll = H.polling;
}

static int use_buffered;

static aloop_protocol_t queued_protocol(void) {
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = fn_made;
  p.data_received = fn_data;
  p.eof_received = fn_eof;
  p.connection_lost = fn_lost;
  p.pause_writing = fn_pause;
  p.resume_writing = fn_resume;
  if (use_buffered) {
    p.get_buffer = fn_get_buffer;
    p.buffer_updated = fn_updated;
  }
  p.flags = ALOOP_PROTOCOL_QUEUED;
  return p;
}

static conn_t *conn_new(void) {
  ASSERT_CMP(nconns, <, MAX_CONNS);
  conn_t *c = &conns[nconns];
  memset(c, 0, sizeof *c);
  c->magic = MAGIC;
  c->id = nconns++;
  c->mode = conn_mode;
  c->freed_poll = -2;
  c->lost_poll = -2;
  return c;
}

/* The server's connection callback: a queued protocol for every
 * connection. */
static int on_connection(aloop_server_t *s, aloop_transport_t *t, void *ud) {
  conn_t *c = conn_new();
  c->accepted = t;
  aloop_protocol_t p = queued_protocol();
  OK(aloop_transport_set_protocol(t, &p, c, conn_free));
  return 0;
}

/* ======================================================================== */
/* Servers and blocking clients                                             */
/* ======================================================================== */

static char server_path[108];

static aloop_server_t *start_server(int unix_, int *port, const char *name) {
  if (!unix_)
    return serve_local(on_connection, NULL, NULL, NULL, port);
  snprintf(server_path, sizeof server_path, "%s",
           tmp_sock_path("events", name));
  unlink(server_path);
  aloop_future_t *f = NULL;
  OK(aloop_create_unix_server(loop, server_path, on_connection, NULL, NULL,
                              NULL, &f));
  *port = 0;
  return await_server(f);
}

static void stop_server(aloop_server_t *s) {
  OK(aloop_server_free(s));
  if (server_path[0])
    unlink(server_path);
}

/* A blocking client socket connected to the server (the connection is
 * queued in the backlog; the loop accepts it when polled). */
static int client_connect(int unix_, int port) {
  int fd;
  if (unix_) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT(fd >= 0);
    struct sockaddr_un a;
    socklen_t len = unix_addr(server_path, &a);
    ASSERT_EQ(connect(fd, (struct sockaddr *)&a, len), 0);
  } else {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in a = loopback_addr(port);
    ASSERT_EQ(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  }
  return fd;
}

static void send_all(int fd, const void *data, size_t n) {
  const char *p = data;
  while (n > 0) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      FAIL("send: %s", strerror(errno));
    p += k;
    n -= (size_t)k;
  }
}

/* A client of the echo: a writer thread sends `total` pattern bytes in
 * random-sized chunks then shuts down its write side; a reader thread
 * checks the echo byte by byte, then the trailer, then EOF. */
typedef struct client {
  int fd;
  size_t total;
  unsigned seed;
  pthread_t wr, rd;
  size_t chunks;
  volatile int done; /* the reader saw EOF after everything */
} client_t;

static void *client_writer(void *arg) {
  client_t *c = arg;
  unsigned char *buf = malloc(65536);
  ASSERT(buf != NULL);
  unsigned s = c->seed;
  size_t off = 0;
  while (off < c->total) {
    size_t n = 1 + (size_t)rand_r(&s) % ((size_t)1 << (rand_r(&s) % 17));
    if (n > c->total - off)
      n = c->total - off;
    for (size_t i = 0; i < n; i++)
      buf[i] = pat(off + i);
    send_all(c->fd, buf, n);
    off += n;
    c->chunks++;
  }
  ASSERT_EQ(shutdown(c->fd, SHUT_WR), 0);
  free(buf);
  return NULL;
}

static void *client_reader(void *arg) {
  client_t *c = arg;
  unsigned char buf[65536];
  size_t got = 0, want = c->total + TRAILER_LEN;
  for (;;) {
    ssize_t k = recv(c->fd, buf, sizeof buf, 0);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      FAIL("client recv: %s", strerror(errno));
    if (k == 0)
      break;
    for (ssize_t i = 0; i < k; i++, got++) {
      if (got >= want)
        FAIL("client: more than %zu bytes came back", want);
      unsigned char exp =
          got < c->total ? pat(got) : (unsigned char)TRAILER[got - c->total];
      if (buf[i] != exp)
        FAIL("client: byte %zu is %u, expected %u", got, buf[i], exp);
    }
  }
  if (got != want)
    FAIL("client: EOF after %zu bytes, expected %zu", got, want);
  __atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static void client_start(client_t *c, int unix_, int port, size_t total,
                         unsigned seed) {
  memset(c, 0, sizeof *c);
  c->fd = client_connect(unix_, port);
  c->total = total;
  c->seed = seed;
  ASSERT_EQ(pthread_create(&c->wr, NULL, client_writer, c), 0);
  ASSERT_EQ(pthread_create(&c->rd, NULL, client_reader, c), 0);
}

static int client_done(client_t *c) {
  return __atomic_load_n(&c->done, __ATOMIC_SEQ_CST);
}

static void client_join(client_t *c) {
  ASSERT_EQ(pthread_join(c->wr, NULL), 0);
  ASSERT_EQ(pthread_join(c->rd, NULL), 0);
  close(c->fd);
}

/* Non-blocking reads of everything available on fd, checked against the
 * pattern from *off on; returns 1 at EOF. */
static int drain_pattern(int fd, uint64_t *off) {
  unsigned char buf[65536];
  for (;;) {
    ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return 0;
    if (k < 0)
      FAIL("recv: %s", strerror(errno));
    if (k == 0)
      return 1;
    for (ssize_t i = 0; i < k; i++, (*off)++)
      if (buf[i] != pat(*off))
        FAIL("byte %" PRIu64 " is %u, expected %u", *off, buf[i], pat(*off));
  }
}

/* Ends the test: no live connection is left, the loop frees, and every
 * connection's free_cb ran exactly once. */
static void finish(void) {
  for (int i = 0; i < nconns; i++)
    ASSERT_EQ(conns[i].state, ST_LOST);
  OK(aloop_loop_free(loop));
  loop = NULL;
  for (int i = 0; i < nconns; i++)
    if (conns[i].freed != 1)
      FAIL("conn %d: free_cb ran %d times", i, conns[i].freed);
}

/* ======================================================================== */
/* Echo through the event queue                                             */
/* ======================================================================== */

#define ECHO_TOTAL ((size_t)8 << 20)

static void echo_test(int unix_, const char *name, size_t nev,
                      size_t arena_size, int nclients, size_t total) {
  loop_up();
  host_init(nev, arena_size, nev + 16, arena_size + 4096);
  int port = 0;
  aloop_server_t *s = start_server(unix_, &port, name);
  client_t *cl = calloc((size_t)nclients, sizeof *cl);
  ASSERT(cl != NULL);
  for (int i = 0; i < nclients; i++)
    client_start(&cl[i], unix_, port, total, 1234u + (unsigned)i);
  double t0 = test_now();
  int all = 0;
  while (!all) {
    if (test_now() - t0 > 50)
      FAIL("timed out: %d of %d connections, %ld records", nconns, nclients,
           H.records);
    pump(0.02);
    all = nconns == nclients;
    for (int i = 0; all && i < nconns; i++)
      all = conns[i].state == ST_LOST && client_done(&cl[i]);
  }
  size_t chunks = 0;
  for (int i = 0; i < nclients; i++) {
    client_join(&cl[i]);
    chunks += cl[i].chunks;
  }
  for (int i = 0; i < nconns; i++) {
    conn_t *c = &conns[i];
    ASSERT_EQ(c->rx, total);
    ASSERT_EQ(c->lost_err, 0);
    ASSERT_STR_EQ(c->log, "MDEL");
    /* inside poll every callback became a record */
    ASSERT_EQ(c->fn_calls, 0);
  }
  printf("%d x %zu bytes in %zu chunks echoed: %d polls, %ld records, at "
         "most %d per poll\n",
         nclients, total, chunks, H.polls, H.records, H.max_n);
  stop_server(s);
  pump(0); /* the userdata of the last connections is dropped here */
  for (int i = 0; i < nconns; i++)
    ASSERT_EQ(conns[i].freed, 1);
  free(cl);
  finish();
}

TEST(echo_tcp) { echo_test(0, "echo", 64, 256 << 10, 1, ECHO_TOTAL); }

TEST(echo_unix) { echo_test(1, "echo", 64, 256 << 10, 1, ECHO_TOTAL); }

/* Two records, the minimum arena, three connections at once. */
TEST(tiny_queue_tcp) { echo_test(0, "tiny", 2, 4096, 3, (size_t)1 << 20); }

TEST(tiny_queue_unix) { echo_test(1, "tiny", 2, 4096, 3, (size_t)1 << 20); }

/* One record per poll. */
TEST(one_record_tcp) { echo_test(0, "one", 1, 4096, 2, (size_t)256 << 10); }

/* ======================================================================== */
/* Order: MADE, DATA..., EOF (does not close), writes after EOF, LOST last  */
/* ======================================================================== */

static void order_test(int unix_) {
  loop_up();
  conn_mode = MODE_COLLECT;
  host_init(16, 64 << 10, 32, 64 << 10);
  int port = 0;
  aloop_server_t *s = start_server(unix_, &port, "order");
  int fd = client_connect(unix_, port);
  PUMP_UNTIL(nconns == 1 && conns[0].state == ST_MADE);
  conn_t *c = &conns[0];
  ASSERT_STR_EQ(c->log, "M");
  send_all(fd, "hello ", 6);
  send_all(fd, "world", 5);
  ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
  PUMP_UNTIL(c->state == ST_EOF);
  ASSERT_EQ(c->buflen, 11);
  ASSERT(memcmp(c->buf, "hello world", 11) == 0);
  ASSERT_STR_EQ(c->log, "MDE");
  /* EOF closed nothing: the transport is open and stays so */
  for (int i = 0; i < 5; i++)
    pump(0.01);
  ASSERT_EQ(c->state, ST_EOF);
  ASSERT_EQ(aloop_transport_is_closing(c->t), 0);
  /* half-close: the peer still reads what is written after EOF */
  host_write(c->t, "reply 1,", 8);
  pump(0.01);
  host_write(c->t, "reply 2", 7);
  host_op(c->t, ALOOP_WRITE_CLOSE, NULL, 0);
  /* data queued after CLOSE in the same batch is still sent, before the
   * close: a transport takes writes until connection_lost is about to run
   * (as asyncio's; issue 9) */
  host_write(c->t, "and more", 8);
  PUMP_UNTIL(c->state == ST_LOST);
  ASSERT_EQ(c->lost_err, 0);
  ASSERT_STR_EQ(c->log, "MDEL");
  ASSERT_EQ(c->fn_calls, 0);
  char got[64];
  size_t have = 0;
  for (;;) {
    ssize_t k = recv(fd, got + have, sizeof got - have, 0);
    ASSERT(k >= 0);
    if (k == 0)
      break;
    have += (size_t)k;
  }
  ASSERT_EQ(have, 23);
  ASSERT(memcmp(got, "reply 1,reply 2and more", 23) == 0);
  /* nothing follows CONNECTION_LOST */
  for (int i = 0; i < 5; i++)
    ASSERT_EQ(pump(0.01), 0);
  close(fd);
  stop_server(s);
  free(c->buf);
  finish();
}

TEST(order_half_close_tcp) { order_test(0); }

TEST(order_half_close_unix) { order_test(1); }

/* ======================================================================== */
/* The userdata's free_cb                                                   */
/* ======================================================================== */

/* One connection: free_cb runs at the start of the poll after the one that
 * delivered CONNECTION_LOST, once. */
TEST(free_cb_after_lost_poll) {
  loop_up();
  conn_mode = MODE_COLLECT;
  host_init(16, 64 << 10, 32, 64 << 10);
  int port = 0;
  aloop_server_t *s = start_server(0, &port, "free");
  int fd = client_connect(0, port);
  PUMP_UNTIL(nconns == 1 && conns[0].state == ST_MADE);
  conn_t *c = &conns[0];
  close(fd); /* the peer goes away: EOF */
  PUMP_UNTIL(c->state == ST_EOF);
  ASSERT_EQ(c->freed, 0);
  host_op(c->t, ALOOP_WRITE_CLOSE, NULL, 0);
  PUMP_UNTIL(c->state == ST_LOST);
  int lost_poll = c->lost_poll;
  ASSERT_EQ(c->freed, 0); /* still valid after the poll that delivered it */
  ASSERT_EQ(c->lost_err, 0);
  ASSERT_EQ(pump(0), 0);
  ASSERT_EQ(c->freed, 1);
  ASSERT_EQ(c->freed_poll, lost_poll + 1);
  for (int i = 0; i < 3; i++)
    pump(0.01);
  ASSERT_EQ(c->freed, 1);
  stop_server(s);
  finish();
}

/* Four connections closed in one iteration into a 2-record array: the
 * CONNECTION_LOST records that did not fit are delivered by later polls,
 * and each userdata stays valid until the poll after its own record. */
TEST(free_cb_after_overflowed_lost) {
  loop_up();
  conn_mode = MODE_COLLECT;
  host_init(2, 4096, 16, 4096);
  int port = 0;
  aloop_server_t *s = start_server(0, &port, "free2");
  int fds[4];
  for (int i = 0; i < 4; i++)
    fds[i] = client_connect(0, port);
  PUMP_UNTIL(nconns == 4 && conns[0].state == ST_MADE &&
             conns[1].state == ST_MADE && conns[2].state == ST_MADE &&
             conns[3].state == ST_MADE);
  for (int i = 0; i < 4; i++)
    host_op(conns[i].t, ALOOP_WRITE_CLOSE, NULL, 0);
  int n = pump(0.02);
  ASSERT_EQ(n, 2); /* two of the four CONNECTION_LOST (the rest wait) */
  /* the next poll delivers them without waiting for its timeout */
  double t0 = test_now();
  ASSERT_EQ(pump(10.0), 2);
  ASSERT_DBL(test_now() - t0, <, 2.0);
  PUMP_UNTIL(conns[0].state == ST_LOST && conns[1].state == ST_LOST &&
             conns[2].state == ST_LOST && conns[3].state == ST_LOST);
  for (int i = 0; i < 4; i++) {
    ASSERT_EQ(conns[i].lost_err, 0);
    ASSERT_STR_EQ(conns[i].log, "ML");
  }
  pump(0);
  for (int i = 0; i < 4; i++) {
    ASSERT_EQ(conns[i].freed, 1);
    ASSERT_EQ(conns[i].freed_poll, conns[i].lost_poll + 1);
    close(fds[i]);
  }
  stop_server(s);
  finish();
}

/* A CONNECTION_LOST delivered by the last poll: closing the loop drops the
 * userdata (once). */
TEST(free_cb_at_loop_close) {
  loop_up();
  conn_mode = MODE_COLLECT;
  host_init(8, 4096, 8, 4096);
  int port = 0;
  aloop_server_t *s = start_server(0, &port, "free3");
  int fd = client_connect(0, port);
  PUMP_UNTIL(nconns == 1 && conns[0].state == ST_MADE);
  OK(aloop_transport_abort(conns[0].t));
  PUMP_UNTIL(conns[0].state == ST_LOST);
  ASSERT_EQ(conns[0].freed, 0);
  stop_server(s);
  close(fd);
  finish(); /* asserts freed == 1 after aloop_loop_free */
}

/* A new protocol set while the host dispatches a batch: the records after
 * it still name the old userdata, which stays valid until the next poll. */
TEST(free_cb_set_protocol_while_dispatching) {
  loop_up();
  conn_mode = MODE_COLLECT;
  size_t big = (size_t)1 << 20;
  host_init(16, 64 << 10, 8, big);
  int port = 0;
  aloop_server_t *s = start_server(0, &port, "swap");
  int fd = client_connect(0, port);
  PUMP_UNTIL(nconns == 1 && conns[0].state == ST_MADE);
  conn_t *a = &conns[0];
  int sfd = aloop_transport_get_fd(a->t), snd = 4096;
  ASSERT_EQ(setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd), 0);
  send_all(fd, "x", 1);
  test_sleep(0.05); /* readable before the poll */
  /* the queued flood pauses writing before the iteration reads "x" */
  unsigned char *buf = calloc(1, big);
  ASSERT(buf != NULL);
  host_write(a->t, buf, big);
  int n = host_poll(0.02);
  ASSERT_EQ(n, 2);
  ASSERT_EQ(H.ev[0].kind, ALOOP_EVENT_PAUSE_WRITING);
  ASSERT_EQ(H.ev[1].kind, ALOOP_EVENT_DATA);
  dispatch(1);
  conn_t *b = conn_new();
  b->t = a->t;
  b->state = ST_MADE;
  aloop_protocol_t p = queued_protocol();
  OK(aloop_transport_set_protocol(a->t, &p, b, conn_free));
  ASSERT_EQ(a->freed, 0);
  conn_event(H.ev[1].userdata, (int)H.ev[1].kind, H.ev[1].transport, 0,
             H.arena + H.ev[1].offset, H.ev[1].length, 0);
  ASSERT_EQ(a->buflen, 1);
  pump(0);
  ASSERT_EQ(a->freed, 1);
  ASSERT_EQ(a->freed_poll, H.polls - 1); /* at the start of the next poll */
  a->state = ST_LOST; /* its part is over */
  OK(aloop_transport_abort(b->t)); /* drops the flood the peer never reads */
  PUMP_UNTIL(b->state == ST_LOST);
  ASSERT_EQ(b->lost_err, 0);
  ASSERT_EQ(b->freed, 0);
  close(fd);
  free(buf);
  free(a->buf);
  stop_server(s);
  finish();
}

/* ======================================================================== */
/* The fallback: outside a poll, the function pointers                      */
/* ======================================================================== */

static void fallback_test(int unix_, int buffered) {
  loop_up();
  use_buffered = buffered;
  conn_mode = MODE_ECHO;
  host_init(16, 64 << 10, 32, 64 << 10); /* set, never polled */
  int port = 0;
  aloop_server_t *s = start_server(unix_, &port, "fallback");
  client_t cl;
  client_start(&cl, unix_, port, (size_t)2 << 20, 99);
  /* the echo's eof_received writes the trailer and returns 0: closes */
  RUN_UNTIL_T(nconns == 1 && conns[0].state == ST_LOST && client_done(&cl),
              50);
  client_join(&cl);
  conn_t *c = &conns[0];
  ASSERT_EQ(c->rx, (size_t)2 << 20);
  ASSERT_STR_EQ(c->log, "MDEL");
  ASSERT_EQ(c->lost_err, 0);
  ASSERT_CMP(c->fn_calls, >=, 4);
  /* outside a poll the userdata is dropped at once */
  ASSERT_EQ(c->freed, 1);
  ASSERT_EQ(c->freed_poll, -1);
  /* no record was written */
  ASSERT(guard_intact(H.ev, (H.nev + GUARD_RECORDS) * sizeof *H.ev));
  stop_server(s);
  finish();
}

TEST(fallback_run_once_tcp) { fallback_test(0, 0); }

TEST(fallback_run_once_unix) { fallback_test(1, 0); }

TEST(fallback_run_once_buffered) { fallback_test(0, 1); }

/* Connected under aloop_loop_run_once (function pointers), then polled
 * (records), then run_once again: one consistent sequence. */
TEST(fallback_and_poll_mixed) {
  loop_up();
  conn_mode = MODE_COLLECT;
  host_init(16, 64 << 10, 32, 64 << 10);
  int port = 0;
  aloop_server_t *s = start_server(0, &port, "mixed");
  int fd = client_connect(0, port);
  RUN_UNTIL(nconns == 1 && conns[0].state == ST_MADE);
  conn_t *c = &conns[0];
  ASSERT_EQ(c->fn_calls, 1);
  send_all(fd, "abc", 3);
  PUMP_UNTIL(c->buflen == 3);
  ASSERT_EQ(c->fn_calls, 1);
  send_all(fd, "def", 3);
  RUN_UNTIL(c->buflen == 6);
  ASSERT_EQ(c->fn_calls, 2);
  ASSERT(memcmp(c->buf, "abcdef", 6) == 0);
  c->keep_open = 0;
  ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
  RUN_UNTIL(c->state == ST_LOST); /* eof_received returned 0: closed */
  ASSERT_STR_EQ(c->log, "MDEL");
  ASSERT_EQ(c->freed, 1);
  close(fd);
  stop_server(s);
  free(c->buf);
  finish();
}

/* ======================================================================== */
/* pause_writing / resume_writing                                           */
/* ======================================================================== */

TEST(pause_resume_writing) {
  loop_up();
  conn_mode = MODE_COLLECT;
  size_t chunk = 64 << 10;
  host_init(16, 64 << 10, 32, 4 * chunk);
  int port = 0;
  aloop_server_t *s = start_server(0, &port, "pause");
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT(fd >= 0);
  int rcv = 4096;
  ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv), 0);
  struct sockaddr_in a = loopback_addr(port);
  ASSERT_EQ(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  PUMP_UNTIL(nconns == 1 && conns[0].state == ST_MADE);
  conn_t *c = &conns[0];
  OK(aloop_transport_set_write_buffer_limits(c->t, 64 << 10, 16 << 10));
  /* a small send buffer: what the kernel takes stays far below the marks */
  int sfd = aloop_transport_get_fd(c->t);
  ASSERT(sfd >= 0);
  int snd = 4096;
  ASSERT_EQ(setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd), 0);
  unsigned char *buf = malloc((size_t)1 << 20);
  ASSERT(buf != NULL);

  /* 1. a flood of write ops on a peer that does not read: PAUSE_WRITING
   * arrives as a record of the poll that performed the writes */
  uint64_t sent = 0, seen = 0;
  while (!c->paused) {
    if (sent > ((uint64_t)64 << 20))
      FAIL("no PAUSE_WRITING after %" PRIu64 " bytes", sent);
    for (size_t i = 0; i < chunk; i++)
      buf[i] = pat(sent + i);
    host_write(c->t, buf, chunk);
    sent += chunk;
    pump(0.001);
  }
  ASSERT_EQ(c->pauses, 1);
  ASSERT_EQ(c->fn_pause, 0);
  size_t wb = 0;
  OK(aloop_transport_get_write_buffer_size(c->t, &wb));
  ASSERT_CMP(wb, >, 64 << 10);
  /* the peer reads: RESUME_WRITING as a record */
  double t0 = test_now();
  while (!(c->resumes == 1 && seen == sent)) {
    if (test_now() - t0 > 30)
      FAIL("timed out draining: seen %" PRIu64 " of %" PRIu64, seen, sent);
    ASSERT_EQ(drain_pattern(fd, &seen), 0);
    pump(0.001);
  }
  ASSERT_EQ(c->fn_resume, 0);
  ASSERT_EQ(c->fn_calls, 0);

  /* 2. a direct aloop_transport_write outside a poll: pause_writing is
   * the function pointer, called inside the write */
  size_t big = (size_t)1 << 20; /* far above the high mark */
  for (size_t i = 0; i < big; i++)
    buf[i] = pat(sent + i);
  OK(aloop_transport_write(c->t, buf, big));
  sent += big;
  ASSERT_EQ(c->fn_pause, 1);
  ASSERT_EQ(c->pauses, 2);
  ASSERT_EQ(c->paused, 1);
  /* it drains inside polls: RESUME_WRITING is a record again */
  t0 = test_now();
  while (!(c->resumes == 2 && seen == sent)) {
    if (test_now() - t0 > 30)
      FAIL("timed out draining: seen %" PRIu64 " of %" PRIu64, seen, sent);
    ASSERT_EQ(drain_pattern(fd, &seen), 0);
    pump(0.001);
  }
  ASSERT_EQ(c->fn_resume, 0);
  ASSERT_EQ(c->fn_calls, 1);

  /* 3. aloop_loop_flush performs queued writes now, calling the function
   * pointer as well */
  for (size_t i = 0; i < 4 * chunk; i++)
    buf[i] = pat(sent + i);
  host_write(c->t, buf, 4 * chunk - 100);
  host_write(c->t, buf, 0);
  host_write(c->t, buf + 4 * chunk - 100, 100);
  ASSERT_EQ(aloop_loop_flush(loop, H.nwrites), 0);
  H.nwrites = H.wused = 0;
  sent += 4 * chunk;
  ASSERT_EQ(c->fn_pause, 2);
  ASSERT_EQ(c->pauses, 3);
  t0 = test_now();
  while (seen != sent) {
    if (test_now() - t0 > 30)
      FAIL("timed out draining: seen %" PRIu64 " of %" PRIu64, seen, sent);
    ASSERT_EQ(drain_pattern(fd, &seen), 0);
    pump(0.001);
  }
  ASSERT_EQ(c->paused, 0);
  printf("%" PRIu64 " bytes; pauses %d (function pointer %d), resumes %d\n",
         sent, c->pauses, c->fn_pause, c->resumes);

  host_op(c->t, ALOOP_WRITE_CLOSE, NULL, 0);
  PUMP_UNTIL(c->state == ST_LOST);
  ASSERT_EQ(c->lost_err, 0);
  t0 = test_now();
  while (!drain_pattern(fd, &seen)) {
    if (test_now() - t0 > 10)
      FAIL("no EOF after close");
    test_sleep(0.001);
  }
  ASSERT_EQ(seen, sent);
  close(fd);
  free(buf);
  stop_server(s);
  pump(0);
  finish();
}

/* ======================================================================== */
/* ALOOP_WRITE_EOF                                                          */
/* ======================================================================== */

static void write_eof_test(int unix_) {
  loop_up();
  conn_mode = MODE_COLLECT;
  host_init(16, 64 << 10, 64, 1 << 20);
  int port = 0;
  aloop_server_t *s = start_server(unix_, &port, "weof");
  int fd = client_connect(unix_, port);
  PUMP_UNTIL(nconns == 1 && conns[0].state == ST_MADE);
  conn_t *c = &conns[0];
  /* 3 MiB in random-sized ops over several polls; EOF right behind the
   * last data op */
  size_t total = (size_t)3 << 20;
  unsigned seed = 7;
  uint64_t queued = 0, seen = 0;
  unsigned char *buf = malloc(256 << 10);
  ASSERT(buf != NULL);
  int eof_seen = 0;
  while (queued < total) {
    for (int k = 0; k < 3 && queued < total; k++) {
      size_t n = 1 + (size_t)rand_r(&seed) % (256 << 10);
      if (n > total - queued)
        n = total - queued;
      for (size_t i = 0; i < n; i++)
        buf[i] = pat(queued + i);
      host_write(c->t, buf, n);
      queued += n;
    }
    if (queued == total)
      host_op(c->t, ALOOP_WRITE_EOF, NULL, 0);
    pump(0.001);
    eof_seen = drain_pattern(fd, &seen);
    ASSERT(!eof_seen || seen == total);
  }
  double t0 = test_now();
  while (!eof_seen) {
    if (test_now() - t0 > 30)
      FAIL("no EOF: seen %" PRIu64 " of %zu", seen, total);
    pump(0.005);
    eof_seen = drain_pattern(fd, &seen);
  }
  ASSERT_EQ(seen, total);
  /* the write side is shut, reading goes on */
  ASSERT_EQ(c->state, ST_MADE);
  ASSERT_EQ(aloop_transport_is_closing(c->t), 0);
  send_all(fd, "still reading", 13);
  ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
  PUMP_UNTIL(c->state == ST_EOF);
  ASSERT_EQ(c->buflen, 13);
  ASSERT(memcmp(c->buf, "still reading", 13) == 0);
  host_op(c->t, ALOOP_WRITE_CLOSE, NULL, 0);
  PUMP_UNTIL(c->state == ST_LOST);
  ASSERT_EQ(c->lost_err, 0);
  ASSERT_STR_EQ(c->log, "MDEL");
  close(fd);
  free(buf);
  free(c->buf);
  stop_server(s);
  pump(0);
  finish();
}

TEST(write_eof_op_tcp) { write_eof_test(0); }

TEST(write_eof_op_unix) { write_eof_test(1); }

/* ======================================================================== */
/* Write operations naming transports that are not (or no longer) there     */
/* ======================================================================== */

static int other_made, other_lost;
static void other_made_cb(aloop_transport_t *t, void *ud) { other_made++; }
static void other_lost_cb(aloop_transport_t *t, int e, void *ud) {
  other_lost++;
}

static void expect_nothing(int fd) {
  char b[16];
  ssize_t k = recv(fd, b, sizeof b, MSG_DONTWAIT);
  if (k >= 0)
    FAIL("fd %d received %zd bytes (or EOF) from a skipped operation", fd, k);
  ASSERT(errno == EAGAIN || errno == EWOULDBLOCK);
}

TEST(stale_transport_ops_skipped) {
  loop_up();
  conn_mode = MODE_COLLECT;
  host_init(16, 64 << 10, 32, 64 << 10);
  int port = 0;
  aloop_server_t *s = start_server(0, &port, "stale");
  int fa = client_connect(0, port);
  int fb = client_connect(0, port);
  PUMP_UNTIL(nconns == 2 && conns[0].state == ST_MADE &&
             conns[1].state == ST_MADE);
  conn_t *a = &conns[0], *b = &conns[1];

  /* a transport of another loop */
  aloop_loop_t *l2 = NULL;
  OK(aloop_loop_new(&l2));
  int sp[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  aloop_protocol_t op;
  memset(&op, 0, sizeof op);
  op.size = sizeof op;
  op.connection_made = other_made_cb;
  op.connection_lost = other_lost_cb;
  aloop_future_t *f = NULL;
  OK(aloop_connect_accepted_socket(l2, sp[0], &op, NULL, NULL, &f));
  RUN_LOOP_UNTIL(l2, aloop_future_done(f) == 1);
  aloop_transport_t *t2 = NULL;
  OK(aloop_future_result_transport(f, &t2));
  OK(aloop_future_free(f));
  ASSERT_EQ(other_made, 1);

  /* a closes; its handle goes stale */
  host_op(a->t, ALOOP_WRITE_CLOSE, NULL, 0);
  PUMP_UNTIL(a->state == ST_LOST);
  aloop_transport_t *stale = a->t;
  ASSERT_EQ(aloop_transport_is_closing(stale), ALOOP_EBADF);
  char tmp[8];
  ASSERT_EQ(recv(fa, tmp, sizeof tmp, 0), 0); /* a's peer: EOF */

  /* one batch: bogus and stale operations around b's, the write arena
   * consumed in order all the same */
  host_write(stale, "stale-1", 7);
  host_op(stale, ALOOP_WRITE_EOF, NULL, 0);
  host_write(NULL, "null", 4);
  host_write((aloop_transport_t *)loop, "a loop", 6);
  host_write(b->t, "good ", 5);
  host_write(t2, "other loop", 10);
  host_op(t2, ALOOP_WRITE_EOF, NULL, 0);
  host_write((aloop_transport_t *)(uintptr_t)0x7fff12345678ull, "bogus", 5);
  host_op(stale, ALOOP_WRITE_CLOSE, NULL, 0);
  host_write(b->t, "data", 4);
  int n = host_poll(0.02);
  ASSERT_CMP(n, >=, 0);
  dispatch(n);
  /* the same through aloop_loop_flush */
  host_write(stale, "stale-2", 7);
  host_op(NULL, ALOOP_WRITE_CLOSE, NULL, 0);
  host_op(t2, ALOOP_WRITE_CLOSE, NULL, 0);
  host_write(b->t, "!", 1);
  ASSERT_EQ(aloop_loop_flush(loop, H.nwrites), 0);
  H.nwrites = H.wused = 0;

  char got[16];
  size_t have = 0;
  while (have < 10) {
    ssize_t k = recv(fb, got + have, sizeof got - have, 0);
    ASSERT_CMP(k, >, 0);
    have += (size_t)k;
  }
  ASSERT_EQ(have, 10);
  ASSERT(memcmp(got, "good data!", 10) == 0);
  expect_nothing(fb);
  expect_nothing(sp[1]);
  ASSERT_EQ(aloop_transport_is_closing(t2), 0);
  ASSERT_EQ(b->state, ST_MADE);
  ASSERT_EQ(b->fn_calls, 0);

  /* both loops still work */
  send_all(fb, "ping", 4);
  PUMP_UNTIL(b->buflen == 4);
  OK(aloop_transport_write(t2, "x", 1));
  RUN_LOOP_UNTIL(l2, recv(sp[1], tmp, 1, MSG_DONTWAIT) == 1);
  OK(aloop_transport_abort(t2));
  RUN_LOOP_UNTIL(l2, other_lost == 1);
  OK(aloop_loop_free(l2));
  close(sp[1]);

  host_op(b->t, ALOOP_WRITE_CLOSE, NULL, 0);
  PUMP_UNTIL(b->state == ST_LOST);
  close(fa);
  close(fb);
  free(b->buf);
  stop_server(s);
  pump(0);
  finish();
}

/* ======================================================================== */
/* Inside a poll; a rejected batch writes nothing                           */
/* ======================================================================== */

static int inside_ran;
static void inside_poll_cb(aloop_loop_t *l, void *ud) {
  inside_ran++;
  ASSERT_EQ(aloop_loop_poll(l, 0, 0), ALOOP_EBUSY);
  ASSERT_EQ(aloop_loop_set_event_queue(l, H.ev, H.nev, H.arena, H.arena_size),
            ALOOP_EBUSY);
  ASSERT_EQ(aloop_loop_run_once(l, 0), ALOOP_EBUSY);
}

TEST(poll_busy_and_rejected_batch) {
  loop_up();
  conn_mode = MODE_COLLECT;
  host_init(16, 64 << 10, 4, 64);
  int port = 0;
  aloop_server_t *s = start_server(0, &port, "busy");
  int fd = client_connect(0, port);
  PUMP_UNTIL(nconns == 1 && conns[0].state == ST_MADE);
  conn_t *c = &conns[0];
  OK(aloop_call_soon(loop, inside_poll_cb, NULL, NULL, NULL));
  pump(0);
  ASSERT_EQ(inside_ran, 1);
  /* a batch with a bad operation is refused before any of it is done */
  host_write(c->t, "first", 5);
  H.ops[H.nwrites++] = (aloop_write_op_t){c->t, 0, 42};
  ASSERT_EQ(aloop_loop_poll(loop, 0, H.nwrites), ALOOP_EINVAL);
  aloop_poll_args_t a = {sizeof a, loop, 0, H.nwrites};
  ASSERT_EQ(aloop_loop_poll_args(&a), ALOOP_EINVAL);
  ASSERT_EQ(aloop_loop_flush(loop, H.nwrites), ALOOP_EINVAL);
  /* the block itself: NULL, size not set, a bad loop, NaN */
  ASSERT_EQ(aloop_loop_poll_args(NULL), ALOOP_EINVAL);
  aloop_poll_args_t unsized = {0, loop, 0, 0};
  ASSERT_EQ(aloop_loop_poll_args(&unsized), ALOOP_EINVAL);
  aloop_poll_args_t bad = {sizeof bad, (aloop_loop_t *)(uintptr_t)0x7777, 0, 0};
  ASSERT_EQ(aloop_loop_poll_args(&bad), ALOOP_EBADF);
  aloop_poll_args_t nan = {sizeof nan, loop, NAN, 0};
  ASSERT_EQ(aloop_loop_poll_args(&nan), ALOOP_EINVAL);
  /* data ops wanting more than the write arena */
  H.ops[1] = (aloop_write_op_t){c->t, 60, ALOOP_WRITE_DATA};
  ASSERT_EQ(aloop_loop_poll(loop, 0, 2), ALOOP_EINVAL);
  ASSERT_EQ(aloop_loop_poll(loop, 0, 5), ALOOP_EINVAL); /* room for 4 */
  H.nwrites = H.wused = 0;
  for (int i = 0; i < 3; i++)
    pump(0.01);
  expect_nothing(fd);
  /* the queue removed: no poll; set again: polls */
  OK(aloop_loop_set_event_queue(loop, NULL, 0, NULL, 0));
  ASSERT_EQ(aloop_loop_poll(loop, 0, 0), ALOOP_EINVAL);
  OK(aloop_loop_set_event_queue(loop, H.ev, H.nev, H.arena, H.arena_size));
  host_op(c->t, ALOOP_WRITE_CLOSE, NULL, 0);
  PUMP_UNTIL(c->state == ST_LOST);
  ASSERT_EQ(recv(fd, H.warena, 1, 0), 0);
  close(fd);
  stop_server(s);
  pump(0);
  finish();
}

/* ======================================================================== */
/* Queued fd watchers: records instead of callbacks, ops instead of calls   */
/* ======================================================================== */

static void watch_op(int fd, aloop_write_kind_t kind) {
  ASSERT_CMP(H.nwrites, <, H.nops);
  H.ops[H.nwrites++] =
      (aloop_write_op_t){(aloop_transport_t *)(uintptr_t)fd, 0, (uint32_t)kind};
}

/* Polls once; returns how many records are of the watcher (kind, fd) and
 * stores the last one's userdata and error. */
static int watch_poll(uint32_t kind, int fd, void **ud, int *err) {
  int n = host_poll(0.05), seen = 0;
  for (int i = 0; i < n; i++) {
    aloop_event_t *e = &H.ev[i];
    ASSERT(e->kind == ALOOP_EVENT_READABLE || e->kind == ALOOP_EVENT_WRITABLE);
    if (e->kind == kind && (uintptr_t)e->transport == (uintptr_t)fd) {
      seen++;
      if (ud)
        *ud = e->userdata;
      if (err)
        *err = e->error;
    }
  }
  return seen;
}

TEST(queued_fd_watchers) {
  loop_up();
  host_init(16, 64 << 10, 32, 64 << 10);
  int sp[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp), 0);
  ASSERT_EQ(aloop_add_reader_queued(NULL, sp[0], NULL), ALOOP_EBADF);
  ASSERT_EQ(aloop_add_reader_queued(loop, -1, NULL), ALOOP_EBADF);
  ASSERT_EQ(aloop_add_writer_queued(loop, 1 << 30, NULL), ALOOP_EBADF);
  OK(aloop_add_reader_queued(loop, sp[0], (void *)0x11));
  void *ud = NULL;
  int err = 1;
  ASSERT_EQ(watch_poll(ALOOP_EVENT_READABLE, sp[0], NULL, NULL), 0);
  send_all(sp[1], "x", 1);
  for (int i = 0; i < 2; i++) { /* level-triggered */
    ASSERT_EQ(watch_poll(ALOOP_EVENT_READABLE, sp[0], &ud, &err), 1);
    ASSERT(ud == (void *)0x11);
    ASSERT_EQ(err, 0);
  }
  /* a run other than aloop_loop_poll calls nothing and reports nothing */
  OK(aloop_loop_run_once(loop, 0));
  /* removed by a queued operation */
  watch_op(sp[0], ALOOP_WRITE_REMOVE_READER);
  ASSERT_EQ(watch_poll(ALOOP_EVENT_READABLE, sp[0], NULL, NULL), 0);
  ASSERT_EQ(aloop_remove_reader(loop, sp[0]), 0);
  /* added back by one: a queued reader with no userdata */
  watch_op(sp[0], ALOOP_WRITE_ADD_READER);
  ASSERT_EQ(watch_poll(ALOOP_EVENT_READABLE, sp[0], &ud, &err), 1);
  ASSERT(ud == NULL);
  /* a writer too: READABLE before WRITABLE */
  OK(aloop_add_writer_queued(loop, sp[0], (void *)0x22));
  int n = host_poll(0.05);
  ASSERT_EQ(n, 2);
  ASSERT_EQ(H.ev[0].kind, ALOOP_EVENT_READABLE);
  ASSERT_EQ(H.ev[1].kind, ALOOP_EVENT_WRITABLE);
  ASSERT(H.ev[1].userdata == (void *)0x22);
  watch_op(sp[0], ALOOP_WRITE_REMOVE_WRITER);
  ASSERT_EQ(watch_poll(ALOOP_EVENT_WRITABLE, sp[0], NULL, NULL), 0);

  /* The fd closed and its number reused by another socket while the host
   * had the reader removed in its own tables only: the queued re-add
   * registers the new file (epoll forgot the closed one). */
  int sp2[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp2), 0);
  ASSERT_EQ(dup2(sp2[0], sp[0]), sp[0]);
  close(sp2[0]);
  close(sp[1]);
  ASSERT_EQ(watch_poll(ALOOP_EVENT_READABLE, sp[0], NULL, NULL), 0);
  send_all(sp2[1], "y", 1);
  ASSERT_EQ(watch_poll(ALOOP_EVENT_READABLE, sp[0], NULL, NULL), 0);
  watch_op(sp[0], ALOOP_WRITE_ADD_READER);
  ASSERT_EQ(watch_poll(ALOOP_EVENT_READABLE, sp[0], &ud, &err), 1);
  ASSERT_EQ(err, 0);

  /* closed and not reused: the re-add fails, its record says why, and the
   * watcher is gone */
  close(sp[0]);
  watch_op(sp[0], ALOOP_WRITE_ADD_READER);
  ASSERT_EQ(watch_poll(ALOOP_EVENT_READABLE, sp[0], &ud, &err), 1);
  ASSERT_EQ(err, ALOOP_EBADF);
  ASSERT_EQ(aloop_remove_reader(loop, sp[0]), 0);

  /* an fd beyond INT_MAX is refused before anything is done */
  H.ops[H.nwrites++] =
      (aloop_write_op_t){(aloop_transport_t *)(uintptr_t)0x100000000ull, 0, ALOOP_WRITE_REMOVE_READER};
  ASSERT_EQ(aloop_loop_poll(loop, 0, H.nwrites), ALOOP_EINVAL);
  ASSERT_EQ(aloop_loop_flush(loop, H.nwrites), ALOOP_EINVAL);
  H.nwrites = 0;
  close(sp2[1]);
  finish();
}

/* ======================================================================== */
/* aloop_loop_take_stop: a host's own run_forever over polls                */
/* ======================================================================== */

static void stop_cb(aloop_loop_t *l, void *ud) {
  (void)ud;
  OK(aloop_loop_stop(l));
}

TEST(take_stop) {
  loop_up();
  host_init(4, 4096, 4, 4096);
  ASSERT_EQ(aloop_loop_take_stop(loop), 0);
  /* a stop before the poll: the poll does not wait, the request stays
     until taken, then it is gone (the next poll waits its timeout) */
  OK(aloop_loop_stop(loop));
  double t0 = test_now();
  ASSERT_EQ(aloop_loop_poll(loop, 5.0, 0), 0);
  ASSERT_DBL(test_now() - t0, <, 1.0);
  ASSERT_EQ(aloop_loop_poll(loop, 5.0, 0), 0);
  ASSERT_DBL(test_now() - t0, <, 1.0);
  ASSERT_EQ(aloop_loop_take_stop(loop), 1);
  ASSERT_EQ(aloop_loop_take_stop(loop), 0);
  t0 = test_now();
  ASSERT_EQ(aloop_loop_poll(loop, 0.05, 0), 0);
  ASSERT_DBL(test_now() - t0, >=, 0.04);
  /* a stop from a callback inside a poll */
  OK(aloop_call_soon(loop, stop_cb, NULL, NULL, NULL));
  ASSERT_EQ(aloop_loop_poll(loop, 0, 0), 0);
  ASSERT_EQ(aloop_loop_take_stop(loop), 1);
  /* a DEFAULT run consumes its own stop */
  OK(aloop_call_soon(loop, stop_cb, NULL, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  ASSERT_EQ(aloop_loop_take_stop(loop), 0);
  ASSERT_EQ(aloop_loop_take_stop(NULL), ALOOP_EBADF);
  finish();
}
