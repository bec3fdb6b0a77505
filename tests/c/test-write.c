/*
 * test-write.c - aloop_transport_write inside data_received, where it sends
 * on the socket from C without a call into the library (capi/write.c) while
 * the transport's gate is open: the bytes, their order and the errors must
 * be exactly those of the library's own write path.
 */
#include "test.h"
#include "helpers.h"

#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>

/* A TCP connection on 127.0.0.1: the transport's socket (*srv) and the
 * peer (*cli, blocking); snd > 0 shrinks the transport's send buffer and the
 * peer's receive buffer (before connecting). */
static void tcp_pair(int *srv, int *cli, int snd) {
  int port;
  int ln = loopback_socket(SOCK_STREAM, &port);
  if (snd > 0)
    ASSERT_EQ(setsockopt(ln, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd), 0);
  ASSERT_EQ(listen(ln, 1), 0);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT(c >= 0);
  if (snd > 0)
    ASSERT_EQ(setsockopt(c, SOL_SOCKET, SO_RCVBUF, &snd, sizeof snd), 0);
  struct sockaddr_in a = loopback_addr(port);
  ASSERT_EQ(connect(c, (struct sockaddr *)&a, sizeof a), 0);
  int s = accept(ln, NULL, NULL);
  ASSERT(s >= 0);
  close(ln);
  *srv = s;
  *cli = c;
}

/* What data_received does (per test). */
enum action { A_PIECES, A_BIG_THEN_TAIL, A_WRITEV_THEN_TAIL, A_EOF_THEN_WRITE, A_ABORT_THEN_WRITE,
              A_OTHER_TRANSPORT, A_OTHER_THREAD, A_ECHO };

struct conn {
  aloop_transport_t *t, *other;
  enum action act;
  int rc[4];
  int data_calls, lost, lost_err;
  unsigned char *big;
  size_t big_len;
};

struct thread_write {
  aloop_transport_t *t;
  int rc;
};

static void *write_from_thread(void *arg) {
  struct thread_write *w = arg;
  w->rc = aloop_transport_write(w->t, "T", 1);
  return NULL;
}

static void w_made(aloop_transport_t *t, void *ud) { ((struct conn *)ud)->t = t; }

static void w_data(aloop_transport_t *t, const char *data, size_t len, void *ud) {
  struct conn *c = ud;
  c->data_calls++;
  if (c->data_calls > 1 && c->act != A_ECHO)
    return;
  switch (c->act) {
  case A_PIECES:
    c->rc[0] = aloop_transport_write(t, "one,", 4);
    c->rc[1] = aloop_transport_write(t, data, len);
    c->rc[2] = aloop_transport_write(t, ",three", 6);
    break;
  case A_BIG_THEN_TAIL:
    /* The socket takes part of big: the rest is buffered, and the tail
     * must go behind it, not straight to the socket. */
    c->rc[0] = aloop_transport_write(t, c->big, c->big_len);
    c->rc[1] = aloop_transport_write(t, "<tail>", 6);
    break;
  case A_WRITEV_THEN_TAIL: {
    /* The library buffers part of a writev (it goes through Go): a write
     * behind it must not go straight to the socket. */
    aloop_iovec_t iov[2] = {{c->big, c->big_len / 2}, {c->big + c->big_len / 2, c->big_len - c->big_len / 2}};
    c->rc[0] = aloop_transport_writev(t, iov, 2);
    c->rc[1] = aloop_transport_write(t, "<tail>", 6);
    break;
  }
  case A_EOF_THEN_WRITE:
    c->rc[0] = aloop_transport_write(t, "before", 6);
    c->rc[1] = aloop_transport_write_eof(t);
    c->rc[2] = aloop_transport_write(t, "after", 5);
    break;
  case A_ABORT_THEN_WRITE:
    c->rc[0] = aloop_transport_abort(t);
    c->rc[1] = aloop_transport_write(t, "leak", 4);
    break;
  case A_OTHER_TRANSPORT:
    c->rc[0] = aloop_transport_write(c->other, "via-other", 9);
    c->rc[1] = aloop_transport_write(t, "self", 4);
    break;
  case A_OTHER_THREAD: {
    struct thread_write w = {t, 1};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, write_from_thread, &w), 0);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    c->rc[0] = w.rc;
    c->rc[1] = aloop_transport_write(t, "self", 4);
    break;
  }
  case A_ECHO:
    OK(aloop_transport_write(t, data, len));
    break;
  }
}

static void w_lost(aloop_transport_t *t, int err, void *ud) {
  (void)t;
  struct conn *c = ud;
  c->lost++;
  c->lost_err = err;
}

/* A transport over *srv with conn c; returns the peer's socket. */
static int connect_conn(struct conn *c, int snd) {
  loop_up();
  int s, cli;
  tcp_pair(&s, &cli, snd);
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = w_made;
  p.data_received = w_data;
  p.connection_lost = w_lost;
  aloop_future_t *f = NULL;
  OK(aloop_connect_accepted_socket(loop, s, &p, c, NULL, &f));
  ASSERT_PTR_EQ(await_transport(f), c->t);
  return cli;
}

/* Reads from the blocking peer while the loop runs, until n bytes came
 * (or EOF); returns how many. */
static size_t peer_read(int cli, unsigned char *buf, size_t n) {
  size_t got = 0;
  double t0 = test_now();
  while (got < n) {
    ssize_t r = recv(cli, buf + got, n - got, MSG_DONTWAIT);
    if (r == 0)
      break;
    if (r > 0) {
      got += (size_t)r;
      continue;
    }
    ASSERT(errno == EAGAIN || errno == ECONNRESET);
    if (errno == ECONNRESET)
      break;
    if (test_now() - t0 > RUN_UNTIL_SECONDS)
      FAIL("timed out reading %zu bytes (got %zu)", n, got);
    OK(aloop_loop_run_once(loop, 0.01));
  }
  return got;
}

TEST(writes_in_order) {
  struct conn c = {.act = A_PIECES};
  int cli = connect_conn(&c, 0);
  ASSERT_EQ(send(cli, "two", 3, 0), 3);
  unsigned char buf[64];
  size_t n = peer_read(cli, buf, 13);
  ASSERT_EQ(n, 13);
  ASSERT(memcmp(buf, "one,two,three", 13) == 0);
  ASSERT_EQ(c.rc[0], 0);
  ASSERT_EQ(c.rc[1], 0);
  ASSERT_EQ(c.rc[2], 0);
  OK(aloop_transport_close(c.t));
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(c.lost_err, 0);
  close(cli);
}

/* A write the socket takes only part of: the rest is buffered, and a write
 * behind it in the same callback follows it (it must not go straight to
 * the socket while the buffer holds bytes). */
static void big_then_tail(enum action act) {
  struct conn c = {.act = act};
  c.big_len = 4 << 20;
  c.big = make_pattern(c.big_len);
  int cli = connect_conn(&c, 16 * 1024);
  ASSERT_EQ(send(cli, "go", 2, 0), 2);
  RUN_UNTIL(c.data_calls == 1);
  ASSERT_EQ(c.rc[0], 0);
  ASSERT_EQ(c.rc[1], 0);
  size_t size = 0;
  OK(aloop_transport_get_write_buffer_size(c.t, &size));
  ASSERT_CMP(size, >, 0); /* the test covers a short send */
  size_t want = c.big_len + 6;
  unsigned char *got = malloc(want);
  ASSERT_EQ(peer_read(cli, got, want), want);
  ASSERT(memcmp(got, c.big, c.big_len) == 0);
  ASSERT(memcmp(got + c.big_len, "<tail>", 6) == 0);
  OK(aloop_transport_close(c.t));
  RUN_UNTIL(c.lost == 1);
  free(got);
  free(c.big);
  close(cli);
}

TEST(short_send_then_more) { big_then_tail(A_BIG_THEN_TAIL); }

TEST(writev_short_then_write) { big_then_tail(A_WRITEV_THEN_TAIL); }

TEST(write_after_write_eof) {
  struct conn c = {.act = A_EOF_THEN_WRITE};
  int cli = connect_conn(&c, 0);
  ASSERT_EQ(send(cli, "x", 1, 0), 1);
  unsigned char buf[64];
  size_t n = peer_read(cli, buf, sizeof buf); /* until EOF */
  ASSERT_EQ(n, 6);
  ASSERT(memcmp(buf, "before", 6) == 0);
  ASSERT_EQ(c.rc[0], 0);
  ASSERT_EQ(c.rc[1], 0);
  ASSERT_EQ(c.rc[2], -EPIPE);
  OK(aloop_transport_close(c.t));
  RUN_UNTIL(c.lost == 1);
  close(cli);
}

/* After abort inside the callback, a write is refused and not one of its
 * bytes reaches the peer (the socket is still open until connection_lost). */
TEST(write_after_abort) {
  struct conn c = {.act = A_ABORT_THEN_WRITE};
  int cli = connect_conn(&c, 0);
  ASSERT_EQ(send(cli, "x", 1, 0), 1);
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(c.rc[0], 0);
  ASSERT_EQ(c.rc[1], ALOOP_ECLOSED);
  unsigned char buf[16];
  ASSERT_EQ(peer_read(cli, buf, sizeof buf), 0);
  close(cli);
}

/* A write on another transport from inside data_received goes through the
 * library, and the callback's own transport still writes. */
TEST(write_other_transport) {
  struct conn a = {.act = A_OTHER_TRANSPORT}, b = {.act = A_ECHO};
  int cb = connect_conn(&b, 0);
  a.other = b.t;
  int ca = connect_conn(&a, 0);
  ASSERT_EQ(send(ca, "x", 1, 0), 1);
  unsigned char buf[16];
  ASSERT_EQ(peer_read(cb, buf, 9), 9);
  ASSERT(memcmp(buf, "via-other", 9) == 0);
  ASSERT_EQ(peer_read(ca, buf, 4), 4);
  ASSERT(memcmp(buf, "self", 4) == 0);
  ASSERT_EQ(a.rc[0], 0);
  ASSERT_EQ(a.rc[1], 0);
  OK(aloop_transport_close(a.t));
  OK(aloop_transport_close(b.t));
  RUN_UNTIL(a.lost == 1 && b.lost == 1);
  close(ca);
  close(cb);
}

/* In debug mode another thread's write is refused while the loop thread is
 * inside data_received of that transport (the direct path is the loop
 * thread's only). */
TEST(other_thread_in_debug_mode) {
  struct conn c = {.act = A_OTHER_THREAD};
  int cli = connect_conn(&c, 0);
  OK(aloop_loop_set_debug(loop, 1));
  ASSERT_EQ(send(cli, "x", 1, 0), 1);
  RUN_UNTIL(c.data_calls == 1);
  ASSERT_EQ(c.rc[0], ALOOP_ENOTLOOPTHREAD);
  ASSERT_EQ(c.rc[1], 0);
  unsigned char buf[16];
  ASSERT_EQ(peer_read(cli, buf, 4), 4);
  ASSERT(memcmp(buf, "self", 4) == 0);
  OK(aloop_transport_close(c.t));
  RUN_UNTIL(c.lost == 1);
  close(cli);
}

/* The peer resets the connection: the write inside data_received fails on
 * the socket, and the transport ends with that error, as the library's own
 * write path ends it. */
TEST(write_to_reset_peer) {
  struct conn c = {.act = A_ECHO};
  int cli = connect_conn(&c, 0);
  /* data the transport reads only after the reset arrived */
  OK(aloop_transport_pause_reading(c.t));
  ASSERT_EQ(send(cli, "x", 1, 0), 1);
  struct linger lg = {1, 0};
  ASSERT_EQ(setsockopt(cli, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(cli); /* RST */
  test_sleep(0.05);
  OK(aloop_transport_resume_reading(c.t));
  RUN_UNTIL(c.lost == 1);
  ASSERT_CMP(c.lost_err, <, 0);
}

/* Errors of the call itself are the library's: NULL data with a length, a
 * stale handle. */
TEST(argument_errors) {
  struct conn c = {.act = A_ECHO};
  int cli = connect_conn(&c, 0);
  ASSERT_EQ(aloop_transport_write(c.t, NULL, 3), ALOOP_EINVAL);
  ASSERT_EQ(aloop_transport_write(c.t, NULL, 0), 0);
  OK(aloop_transport_close(c.t));
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(aloop_transport_write(c.t, "x", 1), ALOOP_EBADF);
  close(cli);
}

