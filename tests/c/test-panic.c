/*
 * test-panic.c - a panic inside the library never crashes the host: it is
 * recovered and returned as ALOOP_EPANIC, with a message in aloop_last_error.
 *
 * ASYNCLOOP_FAULT_INJECT=1 makes the library panic inside every export once
 * its arguments are decoded (the version and error-string functions are
 * exempt); a comma-separated list of export names limits it to those. CTest
 * runs handle_exports_return_epanic with a list (it needs a live loop) and
 * the other tests with 1 (see CMakeLists.txt).
 */
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>

#define SKIP_CODE 77

static const char *inject_env(void) {
  const char *v = getenv("ASYNCLOOP_FAULT_INJECT");
  if (!v || !*v)
    FAIL("run me with ASYNCLOOP_FAULT_INJECT set (CTest does)");
  return v;
}

/* Does the fault injection cover export `name`? */
static int injected(const char *name) {
  const char *v = inject_env();
  if (strcmp(v, "1") == 0)
    return 1;
  size_t n = strlen(name);
  for (const char *p = v; (p = strstr(p, name)) != NULL; p += n)
    if ((p == v || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
      return 1;
  return 0;
}

static void assert_panic_message(void) {
  char buf[4096];
  int n = aloop_last_error(buf, sizeof buf);
  ASSERT_CMP(n, >, 0);
  if (strstr(buf, "panic") == NULL)
    FAIL("last error after ALOOP_EPANIC does not mention the panic: \"%s\"",
         buf);
}

TEST(loop_new_returns_epanic) {
  if (!injected("aloop_loop_new")) {
    printf("SKIP: aloop_loop_new is not fault-injected\n");
    exit(SKIP_CODE);
  }
  aloop_loop_t *loop = NULL;
  ASSERT_EQ(aloop_loop_new(&loop), ALOOP_EPANIC);
  ASSERT(loop == NULL); /* no handle came out */
  assert_panic_message();
  /* and again: the library is still usable after a recovered panic */
  ASSERT_EQ(aloop_loop_new(&loop), ALOOP_EPANIC);
  ASSERT(loop == NULL);
}

TEST(exempt_functions_work) {
  ASSERT_EQ(aloop_version(), ALOOP_VERSION_HEX);
  ASSERT(aloop_version_string() != NULL);
  ASSERT_STR_EQ(aloop_strerror(ALOOP_EPANIC),
                "internal error (a panic was recovered)");
  ASSERT_STR_EQ(aloop_err_name(ALOOP_EPANIC), "ALOOP_EPANIC");
  ASSERT_STR_EQ(aloop_err_name(ALOOP_ECONNREFUSED), "ALOOP_ECONNREFUSED");
}

static void *panic_many(void *arg) {
  long *bad = arg;
  for (int i = 0; i < 2000; i++) {
    aloop_loop_t *loop = NULL;
    if (aloop_loop_new(&loop) != ALOOP_EPANIC || loop != NULL)
      (*bad)++;
  }
  /* the last error is per thread: this thread's is the panic */
  char buf[4096];
  if (aloop_last_error(buf, sizeof buf) <= 0 || strstr(buf, "panic") == NULL)
    (*bad)++;
  return NULL;
}

TEST(many_panics_from_many_threads) {
  if (!injected("aloop_loop_new")) {
    printf("SKIP: aloop_loop_new is not fault-injected\n");
    exit(SKIP_CODE);
  }
  pthread_t th[4];
  long bad[4] = {0};
  for (int i = 0; i < 4; i++)
    ASSERT_EQ(pthread_create(&th[i], NULL, panic_many, &bad[i]), 0);
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    ASSERT_EQ(bad[i], 0);
  }
}

static void never_cb(aloop_loop_t *loop, void *ud) {
  FAIL("a callback ran although the call that scheduled it panicked");
}

static int never_conn(aloop_server_t *s, aloop_transport_t *t, void *ud) {
  FAIL("a connection callback ran although create_server panicked");
}

static void ran_cb(aloop_loop_t *loop, void *ud) { (*(int *)ud)++; }

/* The exports that take a live loop. With ASYNCLOOP_FAULT_INJECT=1 no loop
 * can be created (aloop_loop_new panics too), so CTest runs this one with a
 * list of exports (see CMakeLists.txt). */
TEST(handle_exports_return_epanic) {
  aloop_loop_t *loop = NULL;
  int rc = aloop_loop_new(&loop);
  if (rc == ALOOP_EPANIC) {
    printf("SKIP: aloop_loop_new panics too (ASYNCLOOP_FAULT_INJECT=1), so "
           "no loop can be made; run with a list of exports to cover this\n");
    exit(SKIP_CODE);
  }
  OK(rc);
  int frees = 0, checked = 0;
  aloop_future_t *f = NULL;
  aloop_handle_t *h = NULL;
  if (injected("aloop_call_soon")) {
    ASSERT_EQ(aloop_call_soon(loop, never_cb, &frees, test_count_free, &h),
              ALOOP_EPANIC);
    ASSERT_EQ(frees, 1); /* a failing call drops the userdata */
    ASSERT(h == NULL);
    assert_panic_message();
    checked++;
  }
  if (injected("aloop_call_soon_threadsafe")) {
    frees = 0;
    ASSERT_EQ(aloop_call_soon_threadsafe(loop, never_cb, &frees,
                                         test_count_free, NULL),
              ALOOP_EPANIC);
    ASSERT_EQ(frees, 1);
    checked++;
  }
  if (injected("aloop_call_later")) {
    frees = 0;
    ASSERT_EQ(aloop_call_later(loop, 0.0, never_cb, &frees, test_count_free,
                               &h),
              ALOOP_EPANIC);
    ASSERT_EQ(frees, 1);
    checked++;
  }
  if (injected("aloop_future_new")) {
    ASSERT_EQ(aloop_future_new(loop, &f), ALOOP_EPANIC);
    ASSERT(f == NULL);
    assert_panic_message();
    checked++;
  }
  if (injected("aloop_create_server")) {
    frees = 0;
    ASSERT_EQ(aloop_create_server(loop, "127.0.0.1", 0, never_conn, &frees,
                                  test_count_free, NULL, &f),
              ALOOP_EPANIC);
    ASSERT_EQ(frees, 1);
    ASSERT(f == NULL);
    checked++;
  }
  ASSERT_CMP(checked, >, 0);
  /* the library and the loop are intact: what is not injected works */
  int ran = 0;
  ASSERT(!injected("aloop_call_at") && !injected("aloop_loop_run"));
  OK(aloop_call_at(loop, 0.0, ran_cb, &ran, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(ran, 1);
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(ran, 1); /* the panicked calls scheduled nothing */
  ASSERT_EQ(aloop_loop_is_running(loop), 0);
  OK(aloop_loop_free(loop));
}

/* A reply from datagram_received to the sender it was given goes out from C
 * (capi/dgsend.c) without a call into Go: with the Go side of
 * aloop_datagram_sendto panicking (ASYNCLOOP_FAULT_INJECT lists it), the
 * reply still arrives; a datagram to another address goes through Go and
 * returns ALOOP_EPANIC. */
struct reply_rig {
  aloop_loop_t *loop;
  int replies_ok, other_rc, got;
};

static void reply_made(aloop_datagram_t *d, void *ud) {
  (void)d;
  (void)ud;
}

static void reply_rx(aloop_datagram_t *d, const char *data, size_t len, const char *host,
                     int port, void *ud) {
  struct reply_rig *r = ud;
  char copy[128];
  snprintf(copy, sizeof copy, "%s", host);
  /* the pointer it was given, then an equal string */
  if (aloop_datagram_sendto(d, data, len, host, port) == 0)
    r->replies_ok++;
  if (aloop_datagram_sendto(d, data, len, copy, port) == 0)
    r->replies_ok++;
  r->other_rc = aloop_datagram_sendto(d, data, len, host, port == 9 ? 10 : 9);
  r->got++;
  aloop_loop_stop(r->loop);
}

TEST(handle_exports_datagram_reply_from_c) {
  if (!injected("aloop_datagram_sendto") || injected("aloop_loop_new") ||
      injected("aloop_create_datagram_endpoint")) {
    printf("SKIP: needs ASYNCLOOP_FAULT_INJECT to list aloop_datagram_sendto only\n");
    exit(SKIP_CODE);
  }
  aloop_loop_t *loop;
  OK(aloop_loop_new(&loop));
  struct reply_rig r = {loop, 0, 0, 0};
  aloop_datagram_protocol_t p = {.size = sizeof p, .connection_made = reply_made,
                                 .datagram_received = reply_rx};
  aloop_future_t *f;
  OK(aloop_create_datagram_endpoint(loop, "127.0.0.1", 0, NULL, 0, &p, &r, NULL, NULL, &f));
  OK(aloop_loop_run_until_complete(loop, f));
  aloop_datagram_t *d;
  OK(aloop_future_result_datagram(f, &d));
  aloop_future_free(f);
  char host[64];
  int port = 0;
  OK(aloop_datagram_get_sockname(d, host, sizeof host, &port));
  /* a plain socket sends and receives */
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT(s >= 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(sendto(s, "ping", 4, 0, (struct sockaddr *)&to, sizeof to), 4);
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  ASSERT_EQ(r.got, 1);
  ASSERT_EQ(r.replies_ok, 2);
  ASSERT_EQ(r.other_rc, ALOOP_EPANIC);
  char buf[16];
  for (int i = 0; i < 2; i++) {
    struct timeval tv = {5, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ASSERT_EQ(recv(s, buf, sizeof buf, 0), 4);
    ASSERT(memcmp(buf, "ping", 4) == 0);
  }
  close(s);
  aloop_datagram_abort(d);
  for (int i = 0; i < 5; i++)
    OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  OK(aloop_loop_free(loop));
}
