/*
 * test-pipe.c - connect_read_pipe / connect_write_pipe over pipe(2) and a
 * pty: data, EOF, pause/resume, flow control, the reader going away (EPIPE,
 * and no SIGPIPE), write_eof/abort, and the fds that are refused.
 */
#include "test.h"
#include "helpers.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>

/* ---- the protocol userdata -------------------------------------------------- */

struct conn {
  aloop_transport_t *t;
  int made, lost, lost_err, eofs, frees;
  int pauses, resumes;
  int lost_after_eof; /* eof_received ran before connection_lost */
  unsigned char *buf;
  size_t len, cap;
};

static void p_made(aloop_transport_t *t, void *ud) {
  struct conn *c = ud;
  ASSERT_EQ(c->made, 0);
  c->made++;
  c->t = t;
}

static void p_data(aloop_transport_t *t, const char *data, size_t len,
                   void *ud) {
  struct conn *c = ud;
  ASSERT_EQ(c->made, 1);
  ASSERT_EQ(c->lost, 0);
  ASSERT_EQ(c->eofs, 0);
  ASSERT_PTR_EQ(t, c->t);
  ASSERT_CMP(len, >, 0);
  buf_append(&c->buf, &c->len, &c->cap, data, len);
}

static int p_eof(aloop_transport_t *t, void *ud) {
  struct conn *c = ud;
  ASSERT_PTR_EQ(t, c->t);
  ASSERT_EQ(c->lost, 0);
  c->eofs++;
  return 1; /* ignored for pipes: connection_lost follows anyway */
}

static void p_lost(aloop_transport_t *t, int err, void *ud) {
  struct conn *c = ud;
  ASSERT_PTR_EQ(t, c->t);
  ASSERT_EQ(c->lost, 0);
  ASSERT_EQ(c->frees, 0);
  c->lost++;
  c->lost_err = err;
  c->lost_after_eof = c->eofs;
}

static void p_pause(aloop_transport_t *t, void *ud) {
  ((struct conn *)ud)->pauses++;
}

static void p_resume(aloop_transport_t *t, void *ud) {
  ((struct conn *)ud)->resumes++;
}

static void conn_free(void *ud) { ((struct conn *)ud)->frees++; }

static aloop_protocol_t protocol(void) {
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = p_made;
  p.data_received = p_data;
  p.eof_received = p_eof;
  p.connection_lost = p_lost;
  p.pause_writing = p_pause;
  p.resume_writing = p_resume;
  return p;
}

/* Connects fd as a read (write = 0) or write pipe; connection_made has run. */
static aloop_transport_t *pipe_transport(int fd, int write, struct conn *c) {
  loop_up();
  aloop_protocol_t p = protocol();
  aloop_future_t *f = NULL;
  if (write)
    OK(aloop_connect_write_pipe(loop, fd, &p, c, conn_free, &f));
  else
    OK(aloop_connect_read_pipe(loop, fd, &p, c, conn_free, &f));
  ASSERT_EQ(c->made, 0); /* connection_made is scheduled, never inline */
  aloop_transport_t *t = complete_transport(
      f, write ? "connect_write_pipe" : "connect_read_pipe");
  ASSERT_EQ(c->made, 1);
  ASSERT_PTR_EQ(t, c->t);
  return t;
}

static void new_pipe(int fds[2]) { ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0); }

/* ------------------------------------------------------------------------ */

TEST(read_pipe_data_pause_eof) {
  int fds[2];
  new_pipe(fds);
  struct conn c = {0};
  aloop_transport_t *t = pipe_transport(fds[0], 0, &c);
  ASSERT_EQ(aloop_transport_get_fd(t), fds[0]);
  ASSERT(fcntl(fds[0], F_GETFL) & O_NONBLOCK);
  ASSERT_EQ(aloop_transport_is_reading(t), 1);
  ASSERT_EQ(aloop_transport_can_write_eof(t), 0);
  ASSERT_EQ(aloop_transport_write(t, "x", 1), ALOOP_EINVAL);
  ASSERT_EQ(aloop_transport_write_eof(t), ALOOP_EINVAL);
  char host[16];
  int port;
  ASSERT_EQ(aloop_transport_get_peername(t, host, sizeof host, &port),
            ALOOP_ENOTSOCK);

  ASSERT_EQ(write(fds[1], "hello ", 6), 6);
  RUN_UNTIL(c.len == 6);
  ASSERT(memcmp(c.buf, "hello ", 6) == 0);

  /* paused: nothing arrives; resumed: it does */
  OK(aloop_transport_pause_reading(t));
  ASSERT_EQ(aloop_transport_is_reading(t), 0);
  ASSERT_EQ(write(fds[1], "world", 5), 5);
  run_for(0.1);
  ASSERT_EQ(c.len, 6);
  OK(aloop_transport_resume_reading(t));
  ASSERT_EQ(aloop_transport_is_reading(t), 1);
  RUN_UNTIL(c.len == 11);
  ASSERT(memcmp(c.buf, "hello world", 11) == 0);

  /* EOF: eof_received, then connection_lost(0); the read end is closed */
  close(fds[1]);
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(c.eofs, 1);
  ASSERT_EQ(c.lost_after_eof, 1);
  ASSERT_EQ(c.lost_err, 0);
  run_for(0.01);
  ASSERT_EQ(c.frees, 1);
  ASSERT_EQ(fd_is_open(fds[0]), 0);
  ASSERT_EQ(aloop_transport_is_reading(t), ALOOP_EBADF); /* stale */
  ASSERT_EQ(aloop_loop_alive(loop), 0);
  OK(aloop_loop_close(loop));
  free(c.buf);
}

TEST(read_pipe_close) {
  int fds[2];
  new_pipe(fds);
  struct conn c = {0};
  aloop_transport_t *t = pipe_transport(fds[0], 0, &c);
  OK(aloop_transport_close(t));
  OK(aloop_transport_close(t)); /* idempotent */
  ASSERT_EQ(aloop_transport_is_closing(t), 1);
  ASSERT_EQ(aloop_transport_is_reading(t), 0);
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(c.lost_err, 0);
  ASSERT_EQ(c.eofs, 0);
  run_for(0.01);
  ASSERT_EQ(c.frees, 1);
  ASSERT_EQ(fd_is_open(fds[0]), 0);
  /* the writer now has no reader */
  signal(SIGPIPE, SIG_IGN);
  ASSERT_EQ(write(fds[1], "x", 1), -1);
  ASSERT_EQ(errno, EPIPE);
  close(fds[1]);
  OK(aloop_loop_close(loop));
}

TEST(write_pipe_flow_control_and_close) {
  int fds[2];
  new_pipe(fds);
  struct conn c = {0};
  aloop_transport_t *t = pipe_transport(fds[1], 1, &c);
  ASSERT_EQ(aloop_transport_can_write_eof(t), 1);
  ASSERT_EQ(aloop_transport_is_reading(t), 0);
  const size_t total = 1 << 20;
  unsigned char *data = make_pattern(total);
  /* a pipe holds 64 KiB: the rest is buffered, the protocol paused */
  OK(aloop_transport_write(t, data, total / 2));
  OK(aloop_transport_write(t, data + total / 2, total - total / 2));
  size_t size = 0;
  OK(aloop_transport_get_write_buffer_size(t, &size));
  ASSERT_CMP(size, >, 0);
  ASSERT_CMP(size, <=, total);
  ASSERT_EQ(c.pauses, 1);
  OK(aloop_transport_close(t)); /* flushes first */
  ASSERT_EQ(aloop_transport_is_closing(t), 1);
  /* While it flushes, a write is still taken and sent in order (issue 9:
   * a protocol layered on the transport hands over its own buffer from
   * resume_writing during the close). */
  OK(aloop_transport_write(t, "late", 4));

  /* read it all while the loop flushes; EOF once the transport closed */
  ASSERT_EQ(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
  unsigned char *got = malloc(total + 5);
  size_t n = 0;
  int eof = 0;
  double t0 = test_now();
  while (!eof) {
    if (test_now() - t0 > 20)
      FAIL("timed out reading the pipe (%zu bytes)", n);
    OK(aloop_loop_run_once(loop, 0.001));
    for (;;) {
      ssize_t r = read(fds[0], got + n, total + 5 - n);
      if (r > 0) {
        n += (size_t)r;
        continue;
      }
      if (r == 0)
        eof = 1;
      break;
    }
  }
  ASSERT_EQ(n, total + 4);
  ASSERT(memcmp(got, data, total) == 0);
  ASSERT(memcmp(got + total, "late", 4) == 0);
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(c.lost_err, 0);
  ASSERT_EQ(c.resumes, 1);
  run_for(0.01);
  ASSERT_EQ(c.frees, 1);
  ASSERT_EQ(fd_is_open(fds[1]), 0);
  close(fds[0]);
  free(data);
  free(got);
  OK(aloop_loop_close(loop));
}

/* The reader goes away while data is buffered: connection_lost(EPIPE).
 * SIGPIPE keeps its default action (kill): the library must not raise it. */
TEST(write_pipe_reader_gone_epipe) {
  signal(SIGPIPE, SIG_DFL);
  int fds[2];
  new_pipe(fds);
  struct conn c = {0};
  aloop_transport_t *t = pipe_transport(fds[1], 1, &c);
  unsigned char *data = make_pattern(300000);
  OK(aloop_transport_write(t, data, 300000));
  size_t size = 0;
  OK(aloop_transport_get_write_buffer_size(t, &size));
  ASSERT_CMP(size, >, 0);
  close(fds[0]);
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(c.lost_err, ALOOP_EPIPE);
  run_for(0.01);
  ASSERT_EQ(c.frees, 1);
  ASSERT_EQ(fd_is_open(fds[1]), 0);
  free(data);
  OK(aloop_loop_close(loop));
}

/* The reader goes away with nothing buffered: a clean connection_lost(0)
 * (asyncio). */
TEST(write_pipe_reader_gone_idle) {
  int fds[2];
  new_pipe(fds);
  struct conn c = {0};
  pipe_transport(fds[1], 1, &c);
  close(fds[0]);
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(c.lost_err, 0);
  ASSERT_EQ(fd_is_open(fds[1]), 0);
  OK(aloop_loop_close(loop));
}

/* A write that meets the broken pipe before the loop noticed it. */
TEST(write_pipe_write_to_broken_pipe) {
  signal(SIGPIPE, SIG_DFL);
  int fds[2];
  new_pipe(fds);
  struct conn c = {0};
  aloop_transport_t *t = pipe_transport(fds[1], 1, &c);
  close(fds[0]);
  OK(aloop_transport_write(t, "into the void", 13)); /* errors go to lost */
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(c.lost_err, ALOOP_EPIPE);
  OK(aloop_loop_close(loop));
}

TEST(write_pipe_write_eof_and_abort) {
  int fds[2];
  new_pipe(fds);
  struct conn c = {0};
  aloop_transport_t *t = pipe_transport(fds[1], 1, &c);
  OK(aloop_transport_write(t, "last words", 10));
  OK(aloop_transport_write_eof(t));
  ASSERT_EQ(aloop_transport_is_closing(t), 1);
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(c.lost_err, 0);
  char buf[64];
  ASSERT_EQ(read(fds[0], buf, sizeof buf), 10);
  ASSERT(memcmp(buf, "last words", 10) == 0);
  ASSERT_EQ(read(fds[0], buf, sizeof buf), 0); /* EOF */
  close(fds[0]);

  /* abort drops what is buffered */
  int fds2[2];
  new_pipe(fds2);
  struct conn c2 = {0};
  aloop_transport_t *t2 = pipe_transport(fds2[1], 1, &c2);
  unsigned char *data = make_pattern(300000);
  OK(aloop_transport_write(t2, data, 300000));
  OK(aloop_transport_abort(t2));
  size_t size = 1;
  OK(aloop_transport_get_write_buffer_size(t2, &size));
  ASSERT_EQ(size, 0);
  RUN_UNTIL(c2.lost == 1);
  ASSERT_EQ(c2.lost_err, 0);
  ASSERT_EQ(fd_is_open(fds2[1]), 0);
  size_t n = 0;
  ssize_t r;
  while ((r = read(fds2[0], buf, sizeof buf)) > 0)
    n += (size_t)r;
  ASSERT_CMP(n, <, 300000);
  close(fds2[0]);
  free(data);
  OK(aloop_loop_close(loop));
}

static void never_fd_cb(aloop_loop_t *l, int fd, void *ud) {
  FAIL("a reader callback ran that must never run");
}

TEST(refused_fds) {
  loop_up();
  aloop_protocol_t p = protocol();
  aloop_future_t *f = NULL;
  int frees = 0;
  /* a regular file: EINVAL (asyncio's ValueError), fd untouched */
  char path[] = "/tmp/aloop-test-pipe-XXXXXX";
  int fd = mkstemp(path);
  ASSERT(fd >= 0);
  unlink(path);
  int flags = fcntl(fd, F_GETFL);
  ASSERT_EQ(aloop_connect_read_pipe(loop, fd, &p, &frees, test_count_free, &f),
            ALOOP_EINVAL);
  ASSERT_EQ(frees, 1);
  ASSERT_EQ(aloop_connect_write_pipe(loop, fd, &p, &frees, test_count_free, &f),
            ALOOP_EINVAL);
  ASSERT_EQ(frees, 2);
  ASSERT_EQ(fcntl(fd, F_GETFL), flags);
  ASSERT_EQ(fd_is_open(fd), 1);
  close(fd);
  /* a directory */
  int dfd = open("/tmp", O_RDONLY | O_DIRECTORY);
  ASSERT_EQ(aloop_connect_read_pipe(loop, dfd, &p, &frees, test_count_free, &f),
            ALOOP_EINVAL);
  close(dfd);
  /* not an fd */
  ASSERT_EQ(aloop_connect_read_pipe(loop, -1, &p, &frees, test_count_free, &f),
            ALOOP_EBADF);
  ASSERT_EQ(aloop_connect_read_pipe(loop, 100000, &p, &frees, test_count_free,
                                    &f),
            ALOOP_EBADF);
  ASSERT_EQ(frees, 5);
  /* bad handles and arguments */
  int fds[2];
  new_pipe(fds);
  ASSERT_EQ(aloop_connect_read_pipe(NULL, fds[0], &p, &frees, test_count_free,
                                    &f),
            ALOOP_EBADF);
  ASSERT_EQ(aloop_connect_read_pipe(loop, fds[0], NULL, &frees,
                                    test_count_free, &f),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_connect_write_pipe(loop, fds[1], &p, &frees, test_count_free,
                                     NULL),
            ALOOP_EINVAL);
  ASSERT_EQ(frees, 8);
  /* an fd the loop watches already */
  OK(aloop_add_reader(loop, fds[0], never_fd_cb, NULL, NULL));
  ASSERT_EQ(aloop_connect_read_pipe(loop, fds[0], &p, &frees, test_count_free,
                                    &f),
            ALOOP_EBUSY);
  ASSERT_EQ(frees, 9);
  ASSERT_EQ(aloop_remove_reader(loop, fds[0]), 1);
  ASSERT_EQ(fd_is_open(fds[0]), 1);
  close(fds[0]);
  close(fds[1]);
  ASSERT_EQ(aloop_loop_alive(loop), 0);
  OK(aloop_loop_close(loop));
}

/* A future that resolves to a pipe transport is read as a transport only. */
TEST(future_result_kind) {
  loop_up();
  int fds[2];
  new_pipe(fds);
  aloop_protocol_t p = protocol();
  struct conn c = {0};
  aloop_future_t *f = NULL;
  OK(aloop_connect_read_pipe(loop, fds[0], &p, &c, conn_free, &f));
  OK(aloop_loop_run_until_complete(loop, f));
  aloop_datagram_t *d = NULL;
  ASSERT_EQ(aloop_future_result_datagram(f, &d), ALOOP_EINVAL);
  aloop_server_t *s = NULL;
  ASSERT_EQ(aloop_future_result_server(f, &s), ALOOP_EINVAL);
  aloop_transport_t *t = NULL;
  OK(aloop_future_result_transport(f, &t));
  ASSERT_PTR_EQ(t, c.t);
  OK(aloop_future_free(f));
  OK(aloop_transport_abort(t));
  RUN_UNTIL(c.lost == 1);
  close(fds[1]);
  OK(aloop_loop_close(loop));
}

/* A cancelled connect: no protocol callback, userdata freed, fd closed. */
TEST(cancelled_connect_closes_fd) {
  loop_up();
  int fds[2];
  new_pipe(fds);
  aloop_protocol_t p = protocol();
  struct conn c = {0};
  aloop_future_t *f = NULL;
  OK(aloop_connect_write_pipe(loop, fds[1], &p, &c, conn_free, &f));
  ASSERT_EQ(aloop_future_cancel(f), 1);
  run_for(0.05);
  ASSERT_EQ(c.made, 0);
  ASSERT_EQ(c.lost, 0);
  ASSERT_EQ(c.frees, 1);
  ASSERT_EQ(fd_is_open(fds[1]), 0);
  OK(aloop_future_free(f));
  close(fds[0]);
  ASSERT_EQ(aloop_loop_alive(loop), 0);
  OK(aloop_loop_close(loop));
}

/* A pty: the master is a read pipe, the slave (raw mode) a write pipe.
 * Closing the slave makes the master's read fail with EIO, which ends the
 * read transport with connection_lost(ALOOP_EIO) (asyncio). */
static int pty_logged;
static void count_exceptions(aloop_loop_t *l, const aloop_exception_context_t *ctx,
                             void *ud) {
  pty_logged++;
}

TEST(pty) {
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  if (m < 0) {
    printf("skip: posix_openpt: %s\n", strerror(errno));
    exit(77);
  }
  ASSERT_EQ(grantpt(m), 0);
  ASSERT_EQ(unlockpt(m), 0);
  int s = open(ptsname(m), O_RDWR | O_NOCTTY);
  ASSERT(s >= 0);
  struct termios tio;
  ASSERT_EQ(tcgetattr(s, &tio), 0);
  cfmakeraw(&tio);
  ASSERT_EQ(tcsetattr(s, TCSANOW, &tio), 0);

  struct conn mc = {0}, sc = {0};
  pipe_transport(m, 0, &mc);
  aloop_transport_t *st = pipe_transport(s, 1, &sc);
  OK(aloop_loop_set_exception_handler(loop, count_exceptions, NULL, NULL));
  OK(aloop_transport_write(st, "over a pty\n", 11));
  RUN_UNTIL(mc.len >= 11);
  ASSERT_EQ(mc.len, 11);
  ASSERT(memcmp(mc.buf, "over a pty\n", 11) == 0);
  OK(aloop_transport_close(st));
  RUN_UNTIL(sc.lost == 1 && mc.lost == 1);
  ASSERT_EQ(sc.lost_err, 0);
  ASSERT_EQ(mc.lost_err, ALOOP_EIO);
  ASSERT_EQ(pty_logged, 0); /* EIO is how a pty says EOF: not logged */
  ASSERT_EQ(fd_is_open(m), 0);
  ASSERT_EQ(fd_is_open(s), 0);
  OK(aloop_loop_set_exception_handler(loop, NULL, NULL, NULL));
  OK(aloop_loop_close(loop));
  free(mc.buf);
}

/* A character device: /dev/null takes everything. */
TEST(char_device) {
  int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  ASSERT(fd >= 0);
  struct conn c = {0};
  aloop_transport_t *t = pipe_transport(fd, 1, &c);
  unsigned char *data = make_pattern(1 << 20);
  OK(aloop_transport_write(t, data, 1 << 20));
  size_t size = 1;
  OK(aloop_transport_get_write_buffer_size(t, &size));
  ASSERT_EQ(size, 0);
  OK(aloop_transport_close(t));
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(c.lost_err, 0);
  ASSERT_EQ(fd_is_open(fd), 0);
  free(data);
  OK(aloop_loop_close(loop));
}
