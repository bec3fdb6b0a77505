/*
 * test-tcp-stress.c - TCP under load over real loopback:
 *  - 100 MiB through an echo server with a deliberately slow reader: flow
 *    control on both sides (pause_writing -> stop producing / pause_reading,
 *    resume_writing -> go on); every byte arrives, in order (checked against
 *    the generator), and the writers' buffers stay bounded by their limits;
 *  - 1,000 concurrent connections, each echoing its own message.
 * No timing is asserted; the times are printed.
 */
#include "test.h"
#define RUN_FOR_STEP 0.005
#include "helpers.h"

#include <sys/resource.h>

static inline unsigned char pattern(uint64_t i) {
  uint64_t x = (i >> 3) * 0x9E3779B97F4A7C15ull;
  return (unsigned char)((x >> 56) ^ (i & 7));
}

/* ======================================================================== */
/* 100 MiB through an echo with a slow reader                              */
/* ======================================================================== */

#define TOTAL ((uint64_t)100 << 20)
#define CHUNK ((size_t)64 << 10)
#define CLIENT_HIGH ((size_t)256 << 10)
#define CLIENT_LOW ((size_t)64 << 10)
#define SERVER_READ_MAX ((size_t)256 << 10) /* the library's read size */
#define SLOW_EVERY ((uint64_t)8 << 20)        /* the reader naps every 8 MiB */
#define SLOW_NAP 0.02

/* server side: echo with flow control */
static struct {
  aloop_transport_t *t;
  int pauses, resumes, lost, lost_err;
  size_t max_buf;
  uint64_t echoed;
} es;

static void es_made(aloop_transport_t *t, void *ud) { es.t = t; }
static void es_data(aloop_transport_t *t, const char *d, size_t n, void *ud) {
  ASSERT_CMP(n, <=, SERVER_READ_MAX);
  OK(aloop_transport_write(t, d, n));
  es.echoed += n;
  size_t b;
  OK(aloop_transport_get_write_buffer_size(t, &b));
  if (b > es.max_buf)
    es.max_buf = b;
}
static int es_eof(aloop_transport_t *t, void *ud) { return 0; }
static void es_lost(aloop_transport_t *t, int e, void *ud) {
  es.lost++;
  es.lost_err = e;
}
static void es_pause(aloop_transport_t *t, void *ud) {
  es.pauses++;
  OK(aloop_transport_pause_reading(t)); /* stop taking more */
}
static void es_resume(aloop_transport_t *t, void *ud) {
  es.resumes++;
  OK(aloop_transport_resume_reading(t));
}

static int es_conn(aloop_server_t *s, aloop_transport_t *t, void *ud) {
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = es_made;
  p.data_received = es_data;
  p.eof_received = es_eof;
  p.connection_lost = es_lost;
  p.pause_writing = es_pause;
  p.resume_writing = es_resume;
  OK(aloop_transport_set_protocol(t, &p, NULL, NULL));
  return 0;
}

/* client side: a producer that respects pause_writing, a slow checker */
static struct {
  aloop_transport_t *t;
  uint64_t sent, received, next_nap;
  int paused, pauses, resumes, naps, lost, lost_err, producing;
  size_t max_buf;
  uint64_t bad_at;
  int bad;
} cl;

static unsigned char chunk_buf[CHUNK];

static void produce(aloop_loop_t *l, void *ud) {
  cl.producing = 0;
  while (!cl.paused && cl.sent < TOTAL) {
    size_t n = CHUNK;
    if (TOTAL - cl.sent < n)
      n = (size_t)(TOTAL - cl.sent);
    for (size_t i = 0; i < n; i++)
      chunk_buf[i] = pattern(cl.sent + i);
    OK(aloop_transport_write(cl.t, chunk_buf, n));
    cl.sent += n;
    size_t b;
    OK(aloop_transport_get_write_buffer_size(cl.t, &b));
    if (b > cl.max_buf)
      cl.max_buf = b;
  }
}

static void schedule_produce(void) {
  if (!cl.producing) {
    cl.producing = 1;
    OK(aloop_call_soon(loop, produce, NULL, NULL, NULL));
  }
}

static void cl_made(aloop_transport_t *t, void *ud) { cl.t = t; }

static void wake_reader(aloop_loop_t *l, void *ud) {
  OK(aloop_transport_resume_reading(cl.t));
}

static void cl_data(aloop_transport_t *t, const char *d, size_t n, void *ud) {
  const unsigned char *p = (const unsigned char *)d;
  for (size_t i = 0; i < n; i++) {
    if (p[i] != pattern(cl.received + i) && !cl.bad) {
      cl.bad = 1;
      cl.bad_at = cl.received + i;
    }
  }
  cl.received += n;
  ASSERT_CMP(cl.received, <=, TOTAL);
  if (cl.received >= cl.next_nap && cl.received < TOTAL) {
    /* deliberately slow: stop reading for a while */
    cl.next_nap += SLOW_EVERY;
    cl.naps++;
    OK(aloop_transport_pause_reading(t));
    OK(aloop_call_later(loop, SLOW_NAP, wake_reader, NULL, NULL, NULL));
  }
}
static int cl_eof(aloop_transport_t *t, void *ud) { return 0; }
static void cl_lost(aloop_transport_t *t, int e, void *ud) {
  cl.lost++;
  cl.lost_err = e;
}
static void cl_pause(aloop_transport_t *t, void *ud) {
  ASSERT_EQ(cl.paused, 0);
  cl.paused = 1;
  cl.pauses++;
  size_t b;
  OK(aloop_transport_get_write_buffer_size(t, &b));
  ASSERT_CMP(b, >, CLIENT_HIGH);
}
static void cl_resume(aloop_transport_t *t, void *ud) {
  ASSERT_EQ(cl.paused, 1);
  cl.paused = 0;
  cl.resumes++;
  size_t b;
  OK(aloop_transport_get_write_buffer_size(t, &b));
  ASSERT_CMP(b, <=, CLIENT_LOW);
  schedule_produce();
}

TEST(echo_100mib_slow_reader) {
  loop_up();
  int port;
  aloop_server_t *server = serve_local(es_conn, NULL, NULL, NULL, &port);

  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = cl_made;
  p.data_received = cl_data;
  p.eof_received = cl_eof;
  p.connection_lost = cl_lost;
  p.pause_writing = cl_pause;
  p.resume_writing = cl_resume;
  aloop_future_t *f;
  OK(aloop_create_connection(loop, "127.0.0.1", port, &p, NULL, NULL, NULL, &f));
  await_done(f);
  assert_ok(f);
  aloop_future_free(f);
  OK(aloop_transport_set_write_buffer_limits(cl.t, CLIENT_HIGH, CLIENT_LOW));
  cl.next_nap = SLOW_EVERY;

  double t0 = test_now();
  schedule_produce();
  RUN_UNTIL_T(cl.received == TOTAL || cl.bad, 60);
  double dt = test_now() - t0;
  if (cl.bad)
    FAIL("byte %" PRIu64 " differs: data reordered or corrupted", cl.bad_at);
  ASSERT_EQ(cl.sent, TOTAL);
  ASSERT_EQ(es.echoed, TOTAL);
  printf("100 MiB echoed in %.2f s (%.0f MiB/s); client paused %d times (max "
         "buffer %zu), server paused %d times (max buffer %zu), %d naps\n",
         dt, 100 / dt, cl.pauses, cl.max_buf, es.pauses, es.max_buf, cl.naps);
  /* flow control really happened on both sides, and balanced */
  ASSERT_CMP(cl.pauses, >, 0);
  ASSERT_CMP(es.pauses, >, 0);
  ASSERT_EQ(cl.resumes, cl.pauses);
  ASSERT_CMP(es.resumes, >=, es.pauses - 1);
  ASSERT_CMP(cl.naps, >=, 10);
  /* buffers bounded by the limits (plus one write's worth) */
  ASSERT_CMP(cl.max_buf, <=, CLIENT_HIGH + CHUNK);
  size_t high, low;
  OK(aloop_transport_get_write_buffer_limits(es.t, &high, &low));
  ASSERT_CMP(es.max_buf, <=, high + SERVER_READ_MAX);

  OK(aloop_transport_close(cl.t));
  RUN_UNTIL_T(cl.lost == 1 && es.lost == 1, 20);
  ASSERT_EQ(cl.lost_err, 0);
  ASSERT_EQ(es.lost_err, 0);
  OK(aloop_server_free(server));
  run_for(0.01);
  OK(aloop_loop_close(loop));
}

/* ======================================================================== */
/* 1,000 concurrent connections                                            */
/* ======================================================================== */

#define NCONN 1000
#define MSG_MAX 2048

struct echo_conn {
  aloop_transport_t *t;
  int id, made, lost, lost_err, eofs;
  size_t want, got;
  unsigned char buf[MSG_MAX];
};

static struct echo_conn clients[NCONN];
static int server_accepted, server_lost;

static size_t msg_len(int id) { return 100 + (size_t)(id * 37) % (MSG_MAX - 100); }
static unsigned char msg_byte(int id, size_t i) {
  return pattern(((uint64_t)id << 20) + i);
}

static void s_data(aloop_transport_t *t, const char *d, size_t n, void *ud) {
  OK(aloop_transport_write(t, d, n));
}
static int s_eof(aloop_transport_t *t, void *ud) { return 0; }
static void s_lost(aloop_transport_t *t, int e, void *ud) {
  ASSERT_EQ(e, 0);
  server_lost++;
}
static int s_conn(aloop_server_t *s, aloop_transport_t *t, void *ud) {
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.data_received = s_data;
  p.eof_received = s_eof;
  p.connection_lost = s_lost;
  server_accepted++;
  OK(aloop_transport_set_protocol(t, &p, NULL, NULL));
  return 0;
}

static int clients_done;

static void e_made(aloop_transport_t *t, void *ud) {
  struct echo_conn *c = ud;
  c->made++;
  c->t = t;
  c->want = msg_len(c->id);
  unsigned char m[MSG_MAX];
  for (size_t i = 0; i < c->want; i++)
    m[i] = msg_byte(c->id, i);
  OK(aloop_transport_write(t, m, c->want));
}
static void e_data(aloop_transport_t *t, const char *d, size_t n, void *ud) {
  struct echo_conn *c = ud;
  ASSERT_CMP(c->got + n, <=, c->want);
  memcpy(c->buf + c->got, d, n);
  c->got += n;
  if (c->got == c->want) {
    for (size_t i = 0; i < c->want; i++)
      if (c->buf[i] != msg_byte(c->id, i))
        FAIL("connection %d: byte %zu of its echo differs", c->id, i);
    clients_done++;
    OK(aloop_transport_close(t));
  }
}
static int e_eof(aloop_transport_t *t, void *ud) {
  ((struct echo_conn *)ud)->eofs++;
  return 0;
}
static void e_lost(aloop_transport_t *t, int e, void *ud) {
  struct echo_conn *c = ud;
  c->lost++;
  c->lost_err = e;
}

static int clients_lost(void) {
  int n = 0;
  for (int i = 0; i < NCONN; i++)
    n += clients[i].lost;
  return n;
}

TEST(concurrent_1000_connections) {
  /* 2 fds per connection in this process, plus some */
  struct rlimit rl;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur < 2 * NCONN + 100) {
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 2 * NCONN + 100) {
      printf("RLIMIT_NOFILE hard limit %llu is too low: skipped\n",
             (unsigned long long)rl.rlim_max);
      exit(77);
    }
    rl.rlim_cur = 2 * NCONN + 100;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
  }
  loop_up();
  aloop_server_options_t o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.backlog = 2 * NCONN;
  o.reuse_address = -1;
  o.start_serving = -1;
  int port;
  aloop_server_t *server = serve_local(s_conn, NULL, NULL, &o, &port);

  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = e_made;
  p.data_received = e_data;
  p.eof_received = e_eof;
  p.connection_lost = e_lost;
  static aloop_future_t *futs[NCONN];
  double t0 = test_now();
  for (int i = 0; i < NCONN; i++) {
    clients[i].id = i;
    OK(aloop_create_connection(loop, "127.0.0.1", port, &p, &clients[i], NULL,
                               NULL, &futs[i]));
  }
  RUN_UNTIL_T(clients_done == NCONN, 60);
  RUN_UNTIL_T(server_lost == NCONN, 20);
  double dt = test_now() - t0;
  for (int i = 0; i < NCONN; i++) {
    assert_ok(futs[i]);
    aloop_future_free(futs[i]);
    ASSERT_EQ(clients[i].made, 1);
    ASSERT_EQ(clients[i].got, clients[i].want);
  }
  RUN_UNTIL_T(clients_lost() == NCONN, 20);
  for (int i = 0; i < NCONN; i++) {
    ASSERT_EQ(clients[i].lost, 1);
    ASSERT_EQ(clients[i].lost_err, 0);
  }
  ASSERT_EQ(server_accepted, NCONN);
  printf("%d connections echoed and closed in %.2f s\n", NCONN, dt);
  OK(aloop_server_free(server));
  run_for(0.02);
  OK(aloop_loop_close(loop));
}
