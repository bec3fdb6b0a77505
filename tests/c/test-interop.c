/*
 * test-interop.c - the example protocol library examples/rpc (libaloop_rpc,
 * written only against the header) used from a C host, on the host's loop,
 * next to the host's own servers and timers; and the future references the
 * sharing relies on (aloop_future_ref). The same library is loaded by
 * tests/python/test_interop.py, tests/node/interop.test.js and
 * tests/go/interop_test.go.
 */
#include "test.h"
#include "helpers.h"

#include "aloop_rpc.h"

static void *await_ptr(aloop_future_t *f) {
  void *r = NULL;
  await_done(f);
  assert_ok(f);
  OK(aloop_future_result(f, &r));
  OK(aloop_future_free(f));
  return r;
}

static rpc_server_t *start_server(void) {
  aloop_future_t *f = NULL;
  OK(rpc_server_start(loop, "127.0.0.1", 0, &f));
  rpc_server_t *s = await_ptr(f);
  ASSERT_CMP(rpc_server_port(s), >, 0);
  return s;
}

static rpc_client_t *connect_to(rpc_server_t *s) {
  aloop_future_t *f = NULL;
  OK(rpc_connect(loop, "127.0.0.1", rpc_server_port(s), &f));
  return await_ptr(f);
}

/* Calls and checks the reply byte for byte. */
static void call_expect(rpc_client_t *c, int method, const void *in, size_t n,
                        const void *want, size_t wn) {
  aloop_future_t *f = NULL;
  OK(rpc_call(c, method, in, n, &f));
  rpc_reply_t *r = await_ptr(f);
  size_t len = 0;
  const char *d = rpc_reply_data(r, &len);
  ASSERT_EQ(len, wn);
  ASSERT(memcmp(d, want, wn) == 0);
  rpc_reply_free(r);
}

static size_t live(void) {
  size_t n = 0;
  OK(aloop_live_handles(&n));
  return n;
}

static void close_all(rpc_server_t *s, rpc_client_t *c) {
  if (c)
    OK(rpc_client_close(c));
  OK(rpc_server_close(s));
  run_for(0.05);
}

TEST(future_ref_counts) {
  loop_up();
  size_t base = live();
  aloop_future_t *f = NULL;
  OK(aloop_future_new(loop, &f));
  OK(aloop_future_ref(f));
  OK(aloop_future_ref(f));
  OK(aloop_future_free(f));
  OK(aloop_future_free(f));
  /* one reference left: the handle still works */
  ASSERT_EQ(aloop_future_done(f), 0);
  OK(aloop_future_set_result(f, (void *)42));
  void *v = NULL;
  OK(aloop_future_result(f, &v));
  ASSERT_PTR_EQ(v, (void *)42);
  OK(aloop_future_free(f));
  ASSERT_EQ(aloop_future_free(f), ALOOP_EBADF);
  ASSERT_EQ(aloop_future_ref(f), ALOOP_EBADF);
  ASSERT_EQ(aloop_future_done(f), ALOOP_EBADF);
  ASSERT_EQ(aloop_future_ref(NULL), ALOOP_EBADF);
  ASSERT_EQ(live(), base);
}

/* A done-callback keeps the handle valid after every reference was
 * dropped; ref on it then is refused (no reference to add to). */
static int cb_ran;
static void cb_check(aloop_future_t *f, void *ud) {
  (void)ud;
  cb_ran++;
  ASSERT_EQ(aloop_future_done(f), 1);
  ASSERT_EQ(aloop_future_ref(f), ALOOP_EBADF);
}

TEST(future_ref_and_done_callbacks) {
  loop_up();
  size_t base = live();
  aloop_future_t *f = NULL;
  OK(aloop_future_new(loop, &f));
  OK(aloop_future_ref(f)); /* a second owner */
  OK(aloop_future_add_done_callback(f, cb_check, NULL, NULL));
  OK(aloop_future_free(f)); /* the first owner is gone */
  OK(aloop_future_set_result(f, NULL)); /* the second resolves */
  OK(aloop_future_free(f));
  RUN_UNTIL(cb_ran == 1);
  ASSERT_EQ(aloop_future_done(f), ALOOP_EBADF);
  ASSERT_EQ(live(), base);
}

/* The timers of the host run between the library's. */
static int host_ticks;
static void host_tick(aloop_loop_t *l, void *ud) {
  (void)ud;
  host_ticks++;
  if (host_ticks < 5)
    OK(aloop_call_later(l, 0.01, host_tick, NULL, NULL, NULL));
}

TEST(calls_every_method) {
  loop_up();
  size_t base = live();
  ASSERT_EQ(rpc_live_objects(), 0);
  ASSERT_EQ(rpc_version(), 1);
  rpc_server_t *s = start_server();
  rpc_client_t *c = connect_to(s);
  call_expect(c, RPC_ECHO, "hello", 5, "hello", 5);
  call_expect(c, RPC_ECHO, "", 0, "", 0);
  call_expect(c, RPC_REVERSE, "abcdef", 6, "fedcba", 6);
  /* large: many reads, a partial frame buffered on each side */
  size_t big = 3 * 1024 * 1024 + 17;
  unsigned char *p = make_pattern(big);
  unsigned char *rev = malloc(big);
  for (size_t i = 0; i < big; i++)
    rev[i] = p[big - 1 - i];
  call_expect(c, RPC_ECHO, p, big, p, big);
  call_expect(c, RPC_REVERSE, p, big, rev, big);
  free(rev);
  free(p);

  /* a library timer (sleep) interleaved with the host's */
  unsigned char sl[4 + 3] = {0, 0, 0, 60, 'z', 'z', 'z'};
  aloop_future_t *f = NULL;
  double t0 = test_now();
  OK(aloop_call_later(loop, 0.01, host_tick, NULL, NULL, NULL));
  OK(rpc_call(c, RPC_SLEEP, sl, sizeof sl, &f));
  rpc_reply_t *r = await_ptr(f);
  ASSERT_DBL(test_now() - t0, >=, 0.055);
  ASSERT_CMP(host_ticks, >=, 3);
  size_t n = 0;
  ASSERT(memcmp(rpc_reply_data(r, &n), "zzz", 3) == 0);
  ASSERT_EQ(n, 3);
  rpc_reply_free(r);

  /* an error reply fails the future with the server's message */
  OK(rpc_call(c, RPC_FAIL, "no such key", 11, &f));
  await_done(f);
  ASSERT_EQ(aloop_future_exception(f), ALOOP_EIO);
  char msg[64] = "";
  aloop_future_error_message(f, msg, sizeof msg);
  ASSERT_STR_EQ(msg, "no such key");
  OK(aloop_future_free(f));
  ASSERT_EQ(rpc_server_requests(s), 7);
  close_all(s, c);
  RUN_UNTIL(live() == base);
  RUN_UNTIL(rpc_live_objects() == 0);
}

/* Many calls in flight, replies out of order (sleeps of decreasing length). */
TEST(out_of_order_replies) {
  loop_up();
  rpc_server_t *s = start_server();
  rpc_client_t *c = connect_to(s);
  enum { N = 20 };
  aloop_future_t *fs[N];
  for (int i = 0; i < N; i++) {
    unsigned char b[8] = {0, 0, 0, (unsigned char)(2 * (N - i)), 'k', 0, 0, 0};
    b[5] = (unsigned char)i;
    OK(rpc_call(c, RPC_SLEEP, b, sizeof b, &fs[i]));
  }
  for (int i = 0; i < N; i++) {
    rpc_reply_t *r = await_ptr(fs[i]);
    size_t n = 0;
    const char *d = rpc_reply_data(r, &n);
    ASSERT_EQ(n, 4);
    ASSERT_EQ(d[0], 'k');
    ASSERT_EQ(d[1], i);
    rpc_reply_free(r);
  }
  close_all(s, c);
}

/* The host abandons a pending call (cancel, then free its reference) or
 * cancels and keeps it: the library resolves its own reference later,
 * nothing dangles, and the reply that arrives anyway is released by the
 * library (rpc_live_objects back to 0). */
TEST(host_frees_or_cancels_first) {
  loop_up();
  size_t base = live();
  rpc_server_t *s = start_server();
  rpc_client_t *c = connect_to(s);
  unsigned char sl[5] = {0, 0, 0, 20, 'x'};
  aloop_future_t *f1 = NULL, *f2 = NULL;
  OK(rpc_call(c, RPC_SLEEP, sl, sizeof sl, &f1));
  OK(rpc_call(c, RPC_SLEEP, sl, sizeof sl, &f2));
  ASSERT_EQ(aloop_future_cancel(f1), 1); /* abandoned: cancel, then free */
  OK(aloop_future_free(f1));
  ASSERT_EQ(aloop_future_cancel(f2), 1); /* cancelled */
  call_expect(c, RPC_SLEEP, sl, sizeof sl, "x", 1); /* after both replies */
  ASSERT_EQ(aloop_future_cancelled(f2), 1);
  OK(aloop_future_free(f2));
  close_all(s, c);
  RUN_UNTIL(live() == base);
  RUN_UNTIL(rpc_live_objects() == 0);
}

/* Requests the library hands to the host (RPC_HOST): the host answers. */
TEST(host_answers_requests) {
  loop_up();
  rpc_server_t *s = start_server();
  rpc_client_t *c = connect_to(s);
  aloop_future_t *w = NULL, *f1 = NULL, *f2 = NULL;
  OK(rpc_server_recv(s, &w)); /* waiting before the request */
  OK(rpc_call(c, RPC_HOST, "q1", 2, &f1));
  rpc_request_t *q = await_ptr(w);
  size_t n = 0;
  ASSERT(memcmp(rpc_request_data(q, &n), "q1", 2) == 0);
  OK(rpc_request_respond(q, 1, "a1", 2));
  rpc_reply_t *r = await_ptr(f1);
  ASSERT(memcmp(rpc_reply_data(r, &n), "a1", 2) == 0);
  rpc_reply_free(r);
  OK(rpc_call(c, RPC_HOST, "q2", 2, &f2)); /* queued: nobody waits yet */
  run_for(0.05);
  OK(rpc_server_recv(s, &w));
  q = await_ptr(w);
  OK(rpc_request_respond(q, 0, "refused", 7));
  await_done(f2);
  ASSERT_EQ(aloop_future_exception(f2), ALOOP_EIO);
  OK(aloop_future_free(f2));
  /* a waiter pending at close fails with ECLOSED */
  OK(rpc_server_recv(s, &w));
  OK(rpc_client_close(c));
  OK(rpc_server_close(s));
  await_done(w);
  ASSERT_EQ(aloop_future_exception(w), ALOOP_ECLOSED);
  OK(aloop_future_free(w));
  run_for(0.05);
  ASSERT_EQ(rpc_live_objects(), 0);
}

/* A malformed frame: the library reports it to the host's exception
 * handler and aborts that connection; the client's pending call fails. */
static int handler_calls;
static char handler_msg[256];
static int handler_err;
static void on_exception(aloop_loop_t *l, const aloop_exception_context_t *ctx,
                         void *ud) {
  (void)l;
  (void)ud;
  handler_calls++;
  handler_err = ctx->error;
  snprintf(handler_msg, sizeof handler_msg, "%s", ctx->message);
}

TEST(protocol_error_reaches_exception_handler) {
  loop_up();
  OK(aloop_loop_set_exception_handler(loop, on_exception, NULL, NULL));
  rpc_server_t *s = start_server();
  rpc_client_t *c = connect_to(s);
  aloop_future_t *f = NULL;
  unsigned char sl[5] = {0, 0, 0, 200, 'x'};
  OK(rpc_call(c, RPC_SLEEP, sl, sizeof sl, &f));
  unsigned char bad[9] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 1};
  OK(rpc_client_send_raw(c, bad, sizeof bad));
  await_done(f);
  ASSERT_EQ(handler_calls, 1);
  ASSERT_EQ(handler_err, ALOOP_EINVAL);
  ASSERT(strstr(handler_msg, "bad frame length (4294967295)") != NULL);
  ASSERT_EQ(aloop_future_exception(f), ALOOP_ECONNRESET);
  OK(aloop_future_free(f));
  ASSERT_EQ(rpc_call(c, RPC_ECHO, "a", 1, &f), ALOOP_ECLOSED);
  close_all(s, c);
}

/* The library's own C host and a C server of the host on the same loop:
 * an echo server of the host answers while RPC calls are in flight. */
static void echo_data(aloop_transport_t *t, const char *d, size_t n, void *ud) {
  (void)ud;
  aloop_transport_write(t, d, n);
}
static const aloop_protocol_t echo_proto = {.size = sizeof(aloop_protocol_t),
                                            .data_received = echo_data};
static int echo_accept(aloop_server_t *srv, aloop_transport_t *t, void *ud) {
  (void)srv;
  (void)ud;
  return aloop_transport_set_protocol(t, &echo_proto, NULL, NULL);
}

TEST(bench_next_to_host_server) {
  loop_up();
  int port = 0;
  aloop_server_t *hs = serve_local(echo_accept, NULL, NULL, NULL, &port);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = loopback_addr(port);
  ASSERT_EQ(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  rpc_server_t *s = start_server();
  rpc_client_t *c = connect_to(s);
  aloop_future_t *b = NULL;
  OK(rpc_client_bench(c, 2000, 8, 100, &b));
  ASSERT_EQ(write(fd, "ping", 4), 4);
  char got[4];
  int n = 0;
  while (n < 4) {
    OK(aloop_loop_run_once(loop, 0.01));
    ssize_t k = recv(fd, got + n, 4 - n, MSG_DONTWAIT);
    if (k > 0)
      n += (int)k;
  }
  ASSERT(memcmp(got, "ping", 4) == 0);
  ASSERT_EQ(aloop_future_done(b), 0); /* still running meanwhile */
  await_done(b);
  assert_ok(b);
  OK(aloop_future_free(b));
  ASSERT_EQ(rpc_server_requests(s), 2000);
  close(fd);
  OK(aloop_server_close(hs));
  OK(aloop_server_free(hs));
  close_all(s, c);
  RUN_UNTIL(rpc_live_objects() == 0);
}

TEST(connect_refused_and_bad_args) {
  loop_up();
  int port = 0;
  int fd = loopback_socket(SOCK_STREAM, &port);
  close(fd); /* nobody listens there now */
  aloop_future_t *f = NULL;
  OK(rpc_connect(loop, "127.0.0.1", port, &f));
  await_done(f);
  ASSERT_EQ(aloop_future_exception(f), ALOOP_ECONNREFUSED);
  OK(aloop_future_free(f));
  ASSERT_EQ(rpc_connect(loop, "127.0.0.1", port, NULL), ALOOP_EINVAL);
  ASSERT_EQ(rpc_call(NULL, 1, "", 0, &f), ALOOP_EINVAL);
  ASSERT_EQ(rpc_server_start(NULL, "127.0.0.1", 0, &f), ALOOP_EBADF);
  ASSERT_EQ(rpc_live_objects(), 0);
}


/* ---- aloop_loop_close_force ---------------------------------------------- */
/* A host that force-closes its loop (the Node addon at environment teardown
 * and in finalizers, the Go binding on a dropped Loop, the Python binding's
 * close() after its drain) runs no callback of the library: no
 * connection_lost, no done-callback, no timer; only every free_cb, once.
 * The library releases there everything it holds on the loop; what the
 * host holds (its servers, clients, requests, futures) stays valid until
 * the host releases it. */

static const unsigned char sleep_10s[5] = {0, 0, 0x27, 0x10, 'z'};

/* Everything alive when the host force-closes the loop: only the host's
 * objects are left, and releasing them afterwards needs no loop. */
TEST(close_force_releases_the_library) {
  size_t base = live();
  loop_up();
  rpc_server_t *s = start_server(), *s2 = start_server();
  rpc_client_t *c1 = connect_to(s), *c2 = connect_to(s), *c3 = connect_to(s2);
  aloop_future_t *w = NULL, *w2 = NULL, *h1 = NULL, *h2 = NULL, *sl = NULL,
                 *b = NULL, *fc = NULL, *fs = NULL;
  /* a request the host holds */
  OK(rpc_server_recv(s, &w));
  OK(rpc_call(c1, RPC_HOST, "q1", 2, &h1));
  rpc_request_t *q1 = await_ptr(w);
  /* one queued in the library (nobody waits), a sleep with its timer */
  uint64_t n0 = rpc_server_requests(s);
  OK(rpc_call(c2, RPC_HOST, "q2", 2, &h2));
  OK(rpc_call(c1, RPC_SLEEP, sleep_10s, sizeof sleep_10s, &sl));
  RUN_UNTIL(rpc_server_requests(s) == n0 + 2);
  /* a benchmark of the library in flight (its calls' done-callbacks are
   * the library's), and a waiter on the other server */
  OK(rpc_client_bench(c3, 1000000, 8, 64, &b));
  RUN_UNTIL(rpc_server_requests(s2) > 200);
  OK(rpc_server_recv(s2, &w2));
  /* a connection and a server on their way */
  OK(rpc_connect(loop, "127.0.0.1", rpc_server_port(s), &fc));
  OK(rpc_server_start(loop, "127.0.0.1", 0, &fs));
  ASSERT_EQ(aloop_loop_close(loop), ALOOP_EBUSY);

  OK(aloop_loop_close_force(loop));
  /* left: what the host holds (s, s2, c1, c2, c3, q1) and q1's connection */
  ASSERT_EQ(rpc_live_objects(), 7);
  ASSERT_EQ(aloop_loop_is_closed(loop), 1);
  aloop_future_t *futs[] = {h1, h2, sl, b, w2, fc, fs};
  for (size_t i = 0; i < sizeof futs / sizeof *futs; i++) {
    ASSERT_EQ(aloop_future_cancelled(futs[i]), 1);
    OK(aloop_future_free(futs[i]));
  }
  /* the host releases its objects: no loop needed */
  ASSERT_EQ(rpc_call(c1, RPC_ECHO, "x", 1, &h1), ALOOP_ECLOSED);
  ASSERT_EQ(rpc_server_recv(s, &w), ALOOP_ECLOSED);
  ASSERT_EQ(rpc_server_port(s), ALOOP_EINVAL);
  ASSERT_EQ(rpc_request_respond(q1, 1, "a1", 2), ALOOP_ECLOSED);
  ASSERT_EQ(rpc_live_objects(), 5);
  OK(rpc_client_close(c1));
  OK(rpc_client_close(c2));
  OK(rpc_client_close(c3));
  OK(rpc_server_close(s));
  OK(rpc_server_close(s2));
  ASSERT_EQ(rpc_live_objects(), 0);
  OK(aloop_loop_free(loop));
  loop = NULL;
  ASSERT_EQ(live(), base);
}

/* The host let go of everything (cancelled and freed its futures, answered
 * its requests, closed its client and server) and force-closes at once:
 * connection_lost, the timer and the done-callbacks never run, and
 * nothing of the library is left. */
TEST(close_force_after_the_host_let_go) {
  size_t base = live();
  loop_up();
  rpc_server_t *s = start_server();
  rpc_client_t *c = connect_to(s);
  aloop_future_t *w = NULL, *f1 = NULL, *f2 = NULL, *b = NULL;
  OK(rpc_server_recv(s, &w));
  OK(rpc_call(c, RPC_HOST, "q", 1, &f1));
  rpc_request_t *q = await_ptr(w);
  OK(rpc_call(c, RPC_SLEEP, sleep_10s, sizeof sleep_10s, &f2));
  OK(rpc_client_bench(c, 1000000, 4, 16, &b));
  RUN_UNTIL(rpc_server_requests(s) > 100);
  ASSERT_EQ(aloop_future_cancel(f1), 1);
  OK(aloop_future_free(f1));
  ASSERT_EQ(aloop_future_cancel(f2), 1);
  OK(aloop_future_free(f2));
  ASSERT_EQ(aloop_future_cancel(b), 1);
  OK(aloop_future_free(b));
  OK(rpc_request_respond(q, 1, "a", 1));
  OK(rpc_client_close(c));
  OK(rpc_server_close(s));
  ASSERT_CMP(rpc_live_objects(), >, 0); /* waiting for the loop */

  OK(aloop_loop_close_force(loop));
  ASSERT_EQ(rpc_live_objects(), 0);
  OK(aloop_loop_free(loop));
  loop = NULL;
  ASSERT_EQ(live(), base);
}
