/*
 * test-debug.c - debug mode: the slow-callback threshold and its reports
 * (scheduled callbacks and I/O callbacks), non-thread-safe calls from
 * another thread (ALOOP_ENOTLOOPTHREAD), and the resources reported at
 * aloop_loop_close.
 */
#include "test.h"
#define RUN_UNTIL_STEP 0.02
#include "helpers.h"

#include <math.h>
#include <pthread.h>
#include <sys/socket.h>

/* ---- an exception handler that records ---------------------------------- */

#define MAX_REPORTS 32
static struct report {
  char message[256];
  int error;
  aloop_transport_t *transport;
  aloop_server_t *server;
} reports[MAX_REPORTS];
static int nreports;

static void record(aloop_loop_t *l, const aloop_exception_context_t *c,
                   void *ud) {
  ASSERT_PTR_EQ(l, loop);
  ASSERT(c->size >= sizeof *c);
  if (nreports == MAX_REPORTS)
    return;
  struct report *r = &reports[nreports++];
  snprintf(r->message, sizeof r->message, "%s", c->message);
  r->error = c->error;
  r->transport = c->transport;
  r->server = c->server;
}

static struct report *find_report(const char *sub) {
  for (int i = 0; i < nreports; i++)
    if (strstr(reports[i].message, sub))
      return &reports[i];
  return NULL;
}

static void setup(int debug) {
  OK(aloop_loop_new(&loop));
  OK(aloop_loop_set_exception_handler(loop, record, NULL, NULL));
  OK(aloop_loop_set_debug(loop, debug));
}

static void sleep_cb(aloop_loop_t *l, void *ud) { test_sleep(0.06); }
static void noop_cb(aloop_loop_t *l, void *ud) {}

TEST(slow_callback_duration) {
  setup(0);
  double d = 0;
  OK(aloop_loop_get_slow_callback_duration(loop, &d));
  ASSERT_DBL(d, ==, 0.1);
  OK(aloop_loop_set_slow_callback_duration(loop, 0.25));
  OK(aloop_loop_get_slow_callback_duration(loop, &d));
  ASSERT_DBL(d, ==, 0.25);
  ASSERT_EQ(aloop_loop_set_slow_callback_duration(loop, -1), ALOOP_EINVAL);
  ASSERT_EQ(aloop_loop_set_slow_callback_duration(loop, NAN), ALOOP_EINVAL);
  OK(aloop_loop_set_slow_callback_duration(loop, INFINITY));
  ASSERT_EQ(aloop_loop_get_slow_callback_duration(loop, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_loop_set_slow_callback_duration(NULL, 1), ALOOP_EBADF);
  ASSERT_EQ(aloop_loop_get_slow_callback_duration(NULL, &d), ALOOP_EBADF);
  OK(aloop_loop_free(loop));
  ASSERT_EQ(aloop_loop_set_slow_callback_duration(loop, 1), ALOOP_EBADF);
}

TEST(slow_callback_reported) {
  setup(0);
  OK(aloop_loop_set_slow_callback_duration(loop, 0.03));
  /* not in debug mode: nothing */
  OK(aloop_call_soon(loop, sleep_cb, NULL, NULL, NULL));
  run_for(0.02);
  ASSERT_EQ(nreports, 0);
  OK(aloop_loop_set_debug(loop, 1));
  ASSERT_EQ(aloop_loop_get_debug(loop), 1);
  OK(aloop_call_soon(loop, noop_cb, NULL, NULL, NULL));
  OK(aloop_call_later(loop, 0.01, sleep_cb, NULL, NULL, NULL));
  run_for(0.1);
  ASSERT_EQ(nreports, 1);
  ASSERT(strstr(reports[0].message, "took 0.") != NULL);
  ASSERT_EQ(reports[0].error, 0);
  /* a threshold above the callback's time: no report */
  OK(aloop_loop_set_slow_callback_duration(loop, 5));
  OK(aloop_call_soon(loop, sleep_cb, NULL, NULL, NULL));
  run_for(0.02);
  ASSERT_EQ(nreports, 1);
  OK(aloop_loop_free(loop));
}

/* A slow protocol callback is reported with its transport. */
struct conn {
  aloop_transport_t *t;
  int made, lost;
};

static void c_made(aloop_transport_t *t, void *ud) {
  ((struct conn *)ud)->t = t;
  ((struct conn *)ud)->made++;
}
static void c_slow_data(aloop_transport_t *t, const char *d, size_t n,
                        void *ud) {
  test_sleep(0.06);
}
static void c_lost(aloop_transport_t *t, int err, void *ud) {
  ((struct conn *)ud)->lost++;
}

static aloop_transport_t *wrap_socket(int fd, struct conn *c, int slow) {
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = c_made;
  p.connection_lost = c_lost;
  if (slow)
    p.data_received = c_slow_data;
  aloop_future_t *f = NULL;
  OK(aloop_connect_accepted_socket(loop, fd, &p, c, NULL, &f));
  OK(aloop_loop_run_until_complete(loop, f));
  aloop_transport_t *t = NULL;
  OK(aloop_future_result_transport(f, &t));
  OK(aloop_future_free(f));
  return t;
}

TEST(slow_io_callback) {
  setup(1);
  OK(aloop_loop_set_slow_callback_duration(loop, 0.03));
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  struct conn a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  aloop_transport_t *ta = wrap_socket(sv[0], &a, 1);
  aloop_transport_t *tb = wrap_socket(sv[1], &b, 0);
  OK(aloop_transport_write(tb, "x", 1));
  RUN_UNTIL(find_report("I/O callback") != NULL);
  struct report *r = find_report("I/O callback");
  ASSERT_PTR_EQ(r->transport, ta);
  ASSERT_EQ(r->error, 0);
  ASSERT(strstr(r->message, "took 0.") != NULL);
  OK(aloop_transport_close(ta));
  OK(aloop_transport_close(tb));
  RUN_UNTIL(a.lost == 1 && b.lost == 1);
  OK(aloop_loop_free(loop));
}

/* ---- calls from another thread ------------------------------------------- */

static aloop_transport_t *shared_t;
static aloop_handle_t *shared_h;
static int thread_rc[16];

static void *other_thread(void *arg) {
  aloop_future_t *f = NULL;
  thread_rc[0] = aloop_call_soon(loop, noop_cb, NULL, NULL, NULL);
  thread_rc[1] = aloop_call_later(loop, 1, noop_cb, NULL, NULL, NULL);
  thread_rc[2] = aloop_future_new(loop, &f);
  thread_rc[3] = aloop_transport_write(shared_t, "x", 1);
  thread_rc[4] = aloop_handle_cancel(shared_h);
  thread_rc[5] = aloop_add_reader(loop, 0, NULL, NULL, NULL);
  thread_rc[6] = aloop_loop_close(loop);
  thread_rc[7] = aloop_loop_set_slow_callback_duration(loop, 1);
  /* thread-safe ones work */
  thread_rc[8] = aloop_call_soon_threadsafe(loop, noop_cb, NULL, NULL, NULL);
  thread_rc[9] = aloop_loop_wakeup(loop);
  thread_rc[10] = aloop_transport_get_tls_version(shared_t);
  return NULL;
}

static int free_count;

static void spawn_and_join(aloop_loop_t *l, void *ud) {
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, other_thread, NULL), 0);
  ASSERT_EQ(pthread_join(th, NULL), 0);
  OK(aloop_loop_stop(loop));
}

TEST(thread_check) {
  setup(1);
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  struct conn a;
  memset(&a, 0, sizeof a);
  shared_t = wrap_socket(sv[0], &a, 0);
  OK(aloop_call_later(loop, 10, noop_cb, &free_count, test_count_free, &shared_h));
  OK(aloop_call_soon(loop, spawn_and_join, NULL, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  for (int i = 0; i <= 7; i++)
    if (thread_rc[i] != ALOOP_ENOTLOOPTHREAD)
      FAIL("call %d from another thread returned %d (%s)", i, thread_rc[i],
           aloop_err_name(thread_rc[i]));
  ASSERT_EQ(thread_rc[8], 0);
  ASSERT_EQ(thread_rc[9], 0);
  ASSERT_EQ(thread_rc[10], ALOOP_ENOTLOOPTHREAD);
  /* nothing was changed by the refused calls */
  ASSERT_EQ(free_count, 0);
  ASSERT_EQ(aloop_loop_is_closed(loop), 0);
  OK(aloop_handle_cancel(shared_h));
  ASSERT_EQ(free_count, 1);
  /* from the loop's thread (the loop is not running) all is fine */
  OK(aloop_transport_close(shared_t));
  RUN_UNTIL(a.lost == 1);
  close(sv[1]);
  OK(aloop_loop_free(loop));
}

/* ---- unclosed resources at close ----------------------------------------- */

static void noop_fd_cb(aloop_loop_t *l, int fd, void *ud) {}

static int on_conn(aloop_server_t *s, aloop_transport_t *t, void *ud) {
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = c_made;
  p.connection_lost = c_lost;
  OK(aloop_transport_set_protocol(t, &p, ud, NULL));
  return 0;
}

TEST(unclosed_at_close) {
  setup(0);
  struct conn sc, cc;
  memset(&sc, 0, sizeof sc);
  memset(&cc, 0, sizeof cc);
  aloop_future_t *f = NULL;
  OK(aloop_create_server(loop, "127.0.0.1", 0, on_conn, &sc, NULL, NULL, &f));
  OK(aloop_loop_run_until_complete(loop, f));
  aloop_server_t *server = NULL;
  OK(aloop_future_result_server(f, &server));
  OK(aloop_future_free(f));
  int port = 0;
  OK(aloop_server_sockname(server, 0, NULL, 0, &port));
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = c_made;
  p.connection_lost = c_lost;
  OK(aloop_create_connection(loop, "127.0.0.1", port, &p, &cc, NULL, NULL, &f));
  OK(aloop_loop_run_until_complete(loop, f));
  OK(aloop_future_free(f));
  RUN_UNTIL(sc.made == 1);
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  OK(aloop_add_reader(loop, sv[0], noop_fd_cb, NULL, NULL));

  /* outside debug mode: ALOOP_EBUSY, no report */
  ASSERT_EQ(aloop_loop_close(loop), ALOOP_EBUSY);
  ASSERT_EQ(nreports, 0);
  OK(aloop_loop_set_debug(loop, 1));
  ASSERT_EQ(aloop_loop_close(loop), ALOOP_EBUSY);
  struct report *r = find_report("unclosed server");
  ASSERT(r != NULL);
  ASSERT_PTR_EQ(r->server, server);
  ASSERT_EQ(r->error, ALOOP_EBUSY);
  int transports = 0;
  for (int i = 0; i < nreports; i++)
    if (strstr(reports[i].message, "unclosed transport")) {
      ASSERT(reports[i].transport == cc.t || reports[i].transport == sc.t);
      ASSERT_EQ(reports[i].error, ALOOP_EBUSY);
      transports++;
    }
  ASSERT_EQ(transports, 2);
  ASSERT(find_report("still watched") != NULL);
  ASSERT_EQ(aloop_loop_is_closed(loop), 0);

  /* close everything: then the loop closes */
  OK(aloop_transport_close(cc.t));
  OK(aloop_server_close(server));
  ASSERT_EQ(aloop_remove_reader(loop, sv[0]), 1);
  RUN_UNTIL(cc.lost == 1 && sc.lost == 1);
  nreports = 0;
  OK(aloop_loop_close(loop));
  ASSERT_EQ(nreports, 0);
  close(sv[0]);
  close(sv[1]);
  OK(aloop_loop_free(loop));
}
