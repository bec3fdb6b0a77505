/*
 * test-live.c - aloop_live_handles: every kind of handle counts while it is
 * live and stops counting when the header says it goes stale, so a program
 * that released everything is back where it started (the leak check of the
 * fuzz harness and of `make soak` relies on it).
 */
#include "test.h"
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>

static size_t live(void) {
  size_t n = (size_t)-1;
  OK(aloop_live_handles(&n));
  return n;
}

static void nop_cb(aloop_loop_t *l, void *ud) { (*(int *)ud)++; }
static void nop_future_cb(aloop_future_t *f, void *ud) { (*(int *)ud)++; }

TEST(arguments) {
  ASSERT_EQ(aloop_live_handles(NULL), ALOOP_EINVAL);
  ASSERT_EQ(live(), 0); /* a fresh process has none */
}

TEST(loop_callbacks_futures) {
  int ran = 0;
  size_t base = live();
  loop_up();
  ASSERT_EQ(live(), base + 1);

  /* call_soon: a handle (asked for) counts until its callback ran; no
   * handle is made without out_handle */
  aloop_handle_t *h = NULL;
  OK(aloop_call_soon(loop, nop_cb, &ran, NULL, &h));
  OK(aloop_call_soon(loop, nop_cb, &ran, NULL, NULL));
  ASSERT_EQ(live(), base + 2);
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(ran, 2);
  ASSERT_EQ(live(), base + 1);

  /* a timer counts until cancelled */
  OK(aloop_call_later(loop, 100.0, nop_cb, &ran, NULL, &h));
  ASSERT_EQ(live(), base + 2);
  OK(aloop_handle_cancel(h));
  ASSERT_EQ(live(), base + 1);

  /* a future counts until freed and its done-callbacks ran */
  aloop_future_t *f = NULL;
  OK(aloop_future_new(loop, &f));
  ASSERT_EQ(live(), base + 2);
  OK(aloop_future_add_done_callback(f, nop_future_cb, &ran, NULL));
  OK(aloop_future_set_result(f, NULL));
  OK(aloop_future_free(f));
  ASSERT_CMP(live(), >=, base + 2); /* still held for the callback */
  run_for(0.01);
  ASSERT_EQ(ran, 3);
  ASSERT_EQ(live(), base + 1);

  /* a TLS configuration belongs to no loop */
  aloop_tls_config_t *cfg = NULL;
  OK(aloop_tls_config_new(&cfg, 0));
  ASSERT_EQ(live(), base + 2);
  OK(aloop_tls_config_free(cfg));
  ASSERT_EQ(live(), base + 1);

  /* pending callbacks dropped by close stop counting too */
  OK(aloop_call_later(loop, 100.0, nop_cb, &ran, NULL, &h));
  OK(aloop_call_soon(loop, nop_cb, &ran, NULL, &h));
  ASSERT_EQ(live(), base + 3);
  OK(aloop_loop_close(loop));
  ASSERT_EQ(live(), base + 1); /* the loop's handle stays until free */
  OK(aloop_loop_free(loop));
  loop = NULL;
  ASSERT_EQ(live(), base);
}

/* ---- a TCP echo over loopback ------------------------------------------- */

struct peer {
  int lost;
  size_t got;
};

static void p_data(aloop_transport_t *t, const char *d, size_t n, void *ud) {
  ((struct peer *)ud)->got += n;
}
static void p_lost(aloop_transport_t *t, int err, void *ud) {
  ((struct peer *)ud)->lost++;
}
static void echo_data(aloop_transport_t *t, const char *d, size_t n,
                      void *ud) {
  OK(aloop_transport_write(t, d, n));
}

static aloop_protocol_t proto(void) {
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.data_received = p_data;
  p.connection_lost = p_lost;
  return p;
}

static struct peer server_side;

static int on_conn(aloop_server_t *s, aloop_transport_t *t, void *ud) {
  aloop_protocol_t p = proto();
  p.data_received = echo_data;
  OK(aloop_transport_set_protocol(t, &p, &server_side, NULL));
  return 0;
}

TEST(tcp_server_and_connections) {
  loop_up();
  size_t base = live();
  int port = 0;
  aloop_server_t *srv = serve_local(on_conn, NULL, NULL, NULL, &port);
  ASSERT_EQ(live(), base + 1);

  for (int round = 0; round < 3; round++) {
    struct peer c = {0};
    memset(&server_side, 0, sizeof server_side);
    aloop_protocol_t p = proto();
    aloop_future_t *f = NULL;
    OK(aloop_create_connection(loop, "127.0.0.1", port, &p, &c, NULL, NULL,
                               &f));
    aloop_transport_t *t = complete_transport(f, "connect");
    OK(aloop_transport_write(t, "ping", 4));
    RUN_UNTIL(c.got == 4);
    /* the server, the client's transport and the accepted one */
    ASSERT_EQ(live(), base + 3);
    OK(aloop_transport_close(t));
    RUN_UNTIL(c.lost == 1 && server_side.lost == 1);
    ASSERT_EQ(live(), base + 1);
  }
  OK(aloop_server_free(srv));
  run_for(0.01);
  ASSERT_EQ(live(), base);
  OK(aloop_loop_free(loop));
  loop = NULL;
  ASSERT_EQ(live(), 0);
}

/* ---- a subprocess -------------------------------------------------------- */

static int proc_lost;
static void proc_lost_cb(aloop_subprocess_t *p, int err, void *ud) {
  proc_lost++;
}

TEST(subprocess) {
  loop_up();
  size_t base = live();
  aloop_subprocess_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_lost = proc_lost_cb;
  const char *argv[] = {"/bin/sh", "-c", "read x; echo $x", NULL};
  aloop_future_t *f = NULL;
  OK(aloop_subprocess_exec(loop, argv, &p, NULL, NULL, NULL, &f));
  await_done(f);
  assert_ok(f);
  aloop_subprocess_t *proc = NULL;
  OK(aloop_future_result_subprocess(f, &proc));
  OK(aloop_future_free(f));
  ASSERT_EQ(live(), base + 1); /* the subprocess */
  aloop_transport_t *in = NULL;
  OK(aloop_subprocess_get_pipe_transport(proc, 0, &in));
  ASSERT_EQ(live(), base + 2); /* and its stdin, once asked for */
  OK(aloop_transport_write(in, "hi\n", 3));
  OK(aloop_transport_close(in));
  RUN_UNTIL(proc_lost == 1);
  run_for(0.01);
  ASSERT_EQ(live(), base);
  OK(aloop_loop_free(loop));
  loop = NULL;
}

/* ---- THREAD-SAFE: read from another thread while the loop churns -------- */

static atomic_int stop_reader;

static void *reader(void *arg) {
  size_t n;
  while (!atomic_load(&stop_reader))
    if (aloop_live_handles(&n) != 0)
      return (void *)1;
  return NULL;
}

static void churn(aloop_loop_t *l, void *ud) {
  int *left = ud;
  if (--*left > 0)
    OK(aloop_call_soon(l, churn, ud, NULL, NULL));
  else
    OK(aloop_loop_stop(l));
}

TEST(from_another_thread) {
  loop_up();
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, reader, NULL), 0);
  int left = 20000;
  OK(aloop_call_soon(loop, churn, &left, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  atomic_store(&stop_reader, 1);
  void *res = NULL;
  ASSERT_EQ(pthread_join(th, &res), 0);
  ASSERT_PTR_EQ(res, NULL);
  OK(aloop_loop_free(loop));
  loop = NULL;
  ASSERT_EQ(live(), 0);
}
