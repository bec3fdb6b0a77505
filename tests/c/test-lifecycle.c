/*
 * test-lifecycle.c - who owns what, and when it is released: the ABI
 * defects the fuzz harness found (tests/fuzz/fuzz-abi.c), each over real
 * loopback sockets, pipes and processes, and aloop_loop_close_force.
 */
#include "test.h"
#include "helpers.h"

#include <dirent.h>

static size_t live(void) {
  size_t n = (size_t)-1;
  OK(aloop_live_handles(&n));
  return n;
}

/* (f) a bad handle is ALOOP_EBADF whatever the other arguments are. */
TEST(result_addr_checks_the_handle_first) {
  char host[8];
  int port = 0;
  ASSERT_EQ(aloop_future_result_addr(NULL, host, 0, &port), ALOOP_EBADF);
  ASSERT_EQ(aloop_future_result_addr(NULL, host, 0, NULL), ALOOP_EBADF);
  loop_up();
  aloop_future_t *f = NULL;
  OK(aloop_future_new(loop, &f));
  OK(aloop_future_free(f)); /* stale now */
  ASSERT_EQ(aloop_future_result_addr(f, host, 0, &port), ALOOP_EBADF);
  ASSERT_EQ(aloop_future_result_addr(f, NULL, 0, NULL), ALOOP_EBADF);
  /* a live handle: the arguments decide */
  OK(aloop_future_new(loop, &f));
  ASSERT_EQ(aloop_future_result_addr(f, host, 0, &port), ALOOP_EINVAL);
  OK(aloop_future_free(f));
  OK(aloop_loop_close(loop));
  OK(aloop_loop_free(loop));
}

/* (i) every code is one of the header's list: OS errors it did not name
 * came back as raw errnos (-95, -89, ...). */
static int listed(int code) {
  return code == 0 || strcmp(aloop_err_name(code), "ALOOP_EUNKNOWN") != 0 ||
         code == ALOOP_EUNKNOWN;
}

static int sock_op_code(int fd, int which) {
  aloop_future_t *f = NULL;
  int rc;
  switch (which) {
  case 0: rc = aloop_sock_accept(loop, fd, &f); break;
  default: rc = aloop_sock_sendall(loop, fd, "x", 1, &f); break;
  }
  if (rc < 0)
    return rc;
  await_done(f);
  int e = aloop_future_exception(f);
  if (e != 0) {
    char msg[256] = "";
    aloop_future_error_message(f, msg, sizeof msg);
    printf("  op %d: %d %s (%s)\n", which, e, aloop_err_name(e), msg);
  }
  OK(aloop_future_free(f));
  return e;
}

TEST(os_errors_are_listed_codes) {
  loop_up();
  int u = loopback_socket(SOCK_DGRAM | SOCK_NONBLOCK, NULL);
  /* accept on a datagram socket: EOPNOTSUPP */
  int e = sock_op_code(u, 0);
  ASSERT_EQ(e, -EOPNOTSUPP);
  ASSERT(listed(e));
  ASSERT_STR_EQ(aloop_err_name(e), "ALOOP_EOPNOTSUPP");
  /* send on an unconnected datagram socket: EDESTADDRREQ */
  e = sock_op_code(u, 1);
  ASSERT_EQ(e, -EDESTADDRREQ);
  ASSERT_STR_EQ(aloop_err_name(e), "ALOOP_EDESTADDRREQ");
  close(u);
  /* every name has its message */
  ASSERT(strcmp(aloop_strerror(-EISCONN), "unknown error") != 0);
  ASSERT(strcmp(aloop_strerror(-EMSGSIZE), "unknown error") != 0);
  OK(aloop_loop_close(loop));
  OK(aloop_loop_free(loop));
}

/* (g) a done-callback on a closed loop could never run: ALOOP_ECLOSED, and
 * its free_cb runs inside the call (once). */
static void never_future_cb(aloop_future_t *f, void *ud) {
  (void)f;
  (void)ud;
  FAIL("a done-callback ran on a closed loop");
}

TEST(done_callback_on_closed_loop) {
  loop_up();
  aloop_future_t *pending = NULL, *done = NULL;
  OK(aloop_future_new(loop, &pending));
  OK(aloop_future_new(loop, &done));
  OK(aloop_future_set_result(done, NULL));
  int freed = 0;
  /* added before the close: dropped by it */
  OK(aloop_future_add_done_callback(pending, never_future_cb, &freed, test_count_free));
  OK(aloop_loop_close(loop));
  ASSERT_EQ(freed, 1);
  ASSERT_EQ(aloop_future_add_done_callback(pending, never_future_cb, &freed, test_count_free),
            ALOOP_ECLOSED);
  ASSERT_EQ(freed, 2);
  ASSERT_EQ(aloop_future_add_done_callback(done, never_future_cb, &freed, test_count_free),
            ALOOP_ECLOSED);
  ASSERT_EQ(freed, 3);
  ASSERT_EQ(aloop_future_add_done_callback(done, never_future_cb, &freed, NULL), ALOOP_ECLOSED);
  OK(aloop_future_free(pending));
  OK(aloop_future_free(done));
  ASSERT_EQ(freed, 3);
  OK(aloop_loop_free(loop));
  ASSERT_EQ(live(), 0);
}

/* (e) a sock_connect to a name holds the fd from the start: add_writer on
 * it is ALOOP_EBUSY while the name is resolved (it succeeded, the connect
 * then took the fd over and the loop counted it as watched for good). */
static void writer_cb(aloop_loop_t *l, int fd, void *ud) {
  (void)l;
  (void)fd;
  (*(int *)ud)++;
}

TEST(add_writer_during_connect_to_a_name) {
  loop_up();
  int port = 0;
  int lsn = loopback_socket(SOCK_STREAM, &port);
  ASSERT_EQ(listen(lsn, 4), 0);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ASSERT(fd >= 0);
  aloop_future_t *f = NULL;
  OK(aloop_sock_connect(loop, fd, "localhost", port, &f));
  int ran = 0, freed = 0;
  ASSERT_EQ(aloop_add_writer(loop, fd, writer_cb, &ran, test_count_free), ALOOP_EBUSY);
  ASSERT_EQ(freed, 0); /* userdata &ran: test_count_free counts into ran */
  ASSERT_EQ(ran, 1);   /* its free_cb ran inside the failed call */
  ASSERT_EQ(aloop_add_reader(loop, fd, writer_cb, &freed, test_count_free), ALOOP_EBUSY);
  ASSERT_EQ(freed, 1);
  /* a sendall issued now runs after the connect */
  aloop_future_t *s = NULL;
  OK(aloop_sock_sendall(loop, fd, "hi", 2, &s));
  await_done(f);
  assert_ok(f);
  await_done(s);
  assert_ok(s);
  OK(aloop_future_free(f));
  OK(aloop_future_free(s));
  int c = accept(lsn, NULL, NULL);
  ASSERT(c >= 0);
  char buf[2];
  ASSERT_EQ(recv(c, buf, 2, MSG_WAITALL), 2);
  ASSERT_EQ(memcmp(buf, "hi", 2), 0);
  /* the fd is free again: add_writer / remove_writer work */
  ran = 0;
  OK(aloop_add_writer(loop, fd, writer_cb, &ran, NULL));
  RUN_UNTIL(ran > 0);
  ASSERT_EQ(aloop_remove_writer(loop, fd), 1);
  OK(aloop_loop_close(loop)); /* nothing counted as watched */
  OK(aloop_loop_free(loop));
  close(c);
  close(fd);
  close(lsn);
  ASSERT_EQ(live(), 0);
}

/* (h) a sendfile fallback reading a source that never gives data nor EOF (a
 * blocking pipe nobody writes to): once the future is cancelled the loop
 * closes, and the reader gives up (it does not eat later data). */
TEST(sendfile_fallback_cancelled_on_a_silent_source) {
  loop_up();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  int p[2];
  ASSERT_EQ(pipe(p), 0); /* blocking */
  aloop_future_t *f = NULL;
  OK(aloop_sock_sendfile(loop, sv[0], p[0], 0, 0, 1, &f));
  run_for(0.1);
  ASSERT_EQ(aloop_future_done(f), 0);
  ASSERT_EQ(aloop_future_cancel(f), 1);
  run_for(0.02);
  OK(aloop_future_free(f));
  OK(aloop_loop_close(loop));
  OK(aloop_loop_free(loop));
  ASSERT_EQ(live(), 0);
  /* the reader gave up: what is written now stays in the pipe */
  test_sleep(0.3);
  ASSERT_EQ(write(p[1], "z", 1), 1);
  test_sleep(0.2);
  int fl = fcntl(p[0], F_GETFL);
  ASSERT_EQ(fcntl(p[0], F_SETFL, fl | O_NONBLOCK), 0);
  char c = 0;
  ASSERT_EQ(read(p[0], &c, 1), 1);
  ASSERT_EQ(c, 'z');
  close(p[0]);
  close(p[1]);
  close(sv[0]);
  close(sv[1]);
}

/* (d) the result of a subprocess's future read after the subprocess was
 * released (a protocol without connection_made: the host never had its
 * handle) is a stale handle, not a new one that nothing releases. */
TEST(subprocess_result_read_after_release) {
  size_t base = live();
  loop_up();
  aloop_subprocess_protocol_t pr;
  memset(&pr, 0, sizeof pr);
  pr.size = sizeof pr.size; /* no callbacks at all */
  static const char *const argv[] = {"/bin/true", NULL};
  int freed = 0;
  aloop_future_t *f = NULL;
  OK(aloop_subprocess_exec(loop, argv, &pr, &freed, test_count_free, NULL, &f));
  RUN_UNTIL(freed == 1); /* exited, pipes closed, released */
  ASSERT_EQ(aloop_future_done(f), 1);
  aloop_subprocess_t *p = NULL;
  OK(aloop_future_result_subprocess(f, &p));
  ASSERT(p != NULL);
  ASSERT_EQ(aloop_subprocess_get_pid(p), ALOOP_EBADF);
  OK(aloop_future_free(f));
  ASSERT_EQ(live(), base + 1); /* the loop only */
  OK(aloop_loop_close(loop));
  OK(aloop_loop_free(loop));
  ASSERT_EQ(live(), base);
}

/* ---- a protocol that records what reached it ---------------------------- */

struct rec {
  int made, data, lost, freed;
  int after_free; /* callbacks after free_cb: must stay 0 */
  int how;        /* 0: cancel the future in connection_made, 1: set_exception */
  aloop_future_t *fut;
};

static void rec_free(void *ud) { ((struct rec *)ud)->freed++; }
static void rec_check(struct rec *r) {
  if (r->freed)
    r->after_free++;
}
static void rec_made(aloop_transport_t *t, void *ud) {
  (void)t;
  struct rec *r = ud;
  rec_check(r);
  r->made++;
  if (r->fut) {
    if (r->how == 0)
      ASSERT_EQ(aloop_future_cancel(r->fut), 1);
    else
      OK(aloop_future_set_exception(r->fut, ALOOP_ECONNABORTED, "host said no"));
  }
}
static void rec_data(aloop_transport_t *t, const char *d, size_t n, void *ud) {
  (void)t;
  (void)d;
  (void)n;
  rec_check(ud);
  ((struct rec *)ud)->data++;
}
static void rec_lost(aloop_transport_t *t, int err, void *ud) {
  (void)t;
  (void)err;
  rec_check(ud);
  ((struct rec *)ud)->lost++;
}
static aloop_protocol_t rec_proto(void) {
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = rec_made;
  p.data_received = rec_data;
  p.connection_lost = rec_lost;
  return p;
}

/* (a) the connect future cancelled (or failed) from inside connection_made:
 * the transport is closed, connection_lost reaches the protocol, and only
 * then its userdata is dropped (it was dropped at once, and the transport
 * lived on with callbacks after free_cb). */
static void connect_completed_in_made(int how) {
  size_t base = live();
  loop_up();
  int port = 0;
  int lsn = loopback_socket(SOCK_STREAM, &port);
  ASSERT_EQ(listen(lsn, 4), 0);
  struct rec r = {0};
  r.how = how;
  aloop_protocol_t p = rec_proto();
  OK(aloop_create_connection(loop, "127.0.0.1", port, &p, &r, rec_free, NULL, &r.fut));
  int c = -1;
  RUN_UNTIL(r.made == 1);
  c = accept(lsn, NULL, NULL);
  ASSERT(c >= 0);
  ASSERT_EQ(send(c, "late", 4, 0), 4); /* data that must not reach a freed userdata */
  RUN_UNTIL(r.freed == 1);
  ASSERT_EQ(r.lost, 1);
  ASSERT_EQ(r.after_free, 0);
  ASSERT_EQ(aloop_future_done(r.fut), 1);
  ASSERT_EQ(aloop_future_exception(r.fut), how == 0 ? ALOOP_ECANCELED : ALOOP_ECONNABORTED);
  aloop_transport_t *t = NULL;
  ASSERT(aloop_future_result_transport(r.fut, &t) < 0);
  OK(aloop_future_free(r.fut));
  /* the peer sees the close */
  char b[8];
  ssize_t n;
  while ((n = recv(c, b, sizeof b, 0)) > 0) {
  }
  ASSERT(n == 0 || errno == ECONNRESET);
  run_for(0.05);
  ASSERT_EQ(r.freed, 1);
  ASSERT_EQ(r.after_free, 0);
  OK(aloop_loop_close(loop));
  OK(aloop_loop_free(loop));
  ASSERT_EQ(live(), base);
  close(c);
  close(lsn);
}

TEST(connect_cancelled_in_connection_made) { connect_completed_in_made(0); }
TEST(connect_failed_in_connection_made) { connect_completed_in_made(1); }

/* (b) the host completes a library future first (set_result): the operation
 * is abandoned, what it made is released and free_cb runs (it never ran). */
TEST(set_result_on_a_connection_future) {
  size_t base = live();
  loop_up();
  int port = 0;
  int lsn = loopback_socket(SOCK_STREAM, &port);
  ASSERT_EQ(listen(lsn, 4), 0);
  for (int stage = 0; stage < 3; stage++) {
    struct rec r = {0};
    aloop_protocol_t p = rec_proto();
    aloop_future_t *f = NULL;
    /* stage 0: a name still resolved; 1: the socket connecting; 2: connected,
     * connection_made not run yet */
    OK(aloop_create_connection(loop, stage == 0 ? "localhost" : "127.0.0.1", port, &p, &r,
                               rec_free, NULL, &f));
    if (stage == 2) {
      int k = 0;
      while (k++ < 3)
        OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
    }
    if (aloop_future_done(f) == 0) {
      OK(aloop_future_set_result(f, (void *)(uintptr_t)42));
      RUN_UNTIL(r.freed == 1);
      void *v = NULL;
      OK(aloop_future_result(f, &v));
      ASSERT_EQ((uintptr_t)v, 42);
      ASSERT_EQ(r.made, 0);
    } else { /* it raced to done: nothing to abandon */
      aloop_transport_t *t = NULL;
      if (aloop_future_result_transport(f, &t) == 0)
        OK(aloop_transport_abort(t));
      RUN_UNTIL(r.freed == 1);
    }
    OK(aloop_future_free(f));
    run_for(0.05);
    ASSERT_EQ(r.freed, 1);
    ASSERT_EQ(r.after_free, 0);
    /* drain the backlog: accepted sockets see the close */
    int c;
    struct timeval tv = {0, 10000};
    setsockopt(lsn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while ((c = accept(lsn, NULL, NULL)) >= 0)
      close(c);
  }
  close(lsn);
  OK(aloop_loop_close(loop));
  OK(aloop_loop_free(loop));
  ASSERT_EQ(live(), base);
}

TEST(set_result_on_a_pipe_future) {
  size_t base = live();
  loop_up();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  struct rec r = {0};
  aloop_protocol_t p = rec_proto();
  aloop_future_t *f = NULL;
  OK(aloop_connect_read_pipe(loop, fds[0], &p, &r, rec_free, &f));
  OK(aloop_future_set_result(f, NULL));
  RUN_UNTIL(r.freed == 1);
  run_for(0.02);
  ASSERT_EQ(r.made, 0);
  ASSERT(!fd_is_open(fds[0])); /* the transport owned it and closed it */
  OK(aloop_future_free(f));
  OK(aloop_loop_close(loop));
  OK(aloop_loop_free(loop));
  ASSERT_EQ(live(), base);
  close(fds[1]);
}

/* (c) an object the host can reach only through its future's result is
 * closed when the host frees that future unread (it stayed open, out of
 * reach, and its loop could never close). */
static int on_conn_never(aloop_server_t *s, aloop_transport_t *t, void *ud) {
  (void)s;
  (void)t;
  (void)ud;
  return 0;
}

static int try_connect(int port) {
  int c = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = loopback_addr(port);
  int rc = connect(c, (struct sockaddr *)&a, sizeof a);
  close(c);
  return rc;
}

TEST(server_future_freed_unread) {
  size_t base = live();
  loop_up();
  for (int pending = 0; pending < 2; pending++) {
    int freed = 0;
    aloop_future_t *f = NULL;
    OK(aloop_create_server(loop, pending ? "localhost" : "127.0.0.1", 0, on_conn_never, &freed,
                           test_count_free, NULL, &f));
    if (!pending)
      await_done(f);
    OK(aloop_future_free(f));
    RUN_UNTIL(freed == 1);
    ASSERT_EQ(live(), base + 1);
  }
  /* a server the host read stays */
  int port = 0, freed = 0;
  aloop_server_t *s = serve_local(on_conn_never, &freed, test_count_free, NULL, &port);
  run_for(0.02);
  ASSERT_EQ(try_connect(port), 0);
  ASSERT_EQ(freed, 0);
  OK(aloop_server_free(s));
  ASSERT_EQ(freed, 1);
  OK(aloop_loop_close(loop));
  OK(aloop_loop_free(loop));
  ASSERT_EQ(live(), base);
}

TEST(transport_future_freed_unread) {
  size_t base = live();
  loop_up();
  int port = 0;
  int lsn = loopback_socket(SOCK_STREAM, &port);
  ASSERT_EQ(listen(lsn, 4), 0);
  /* without connection_made: closed (connection_lost, then free_cb) */
  struct rec r = {0};
  aloop_protocol_t p = rec_proto();
  p.connection_made = NULL;
  aloop_future_t *f = NULL;
  OK(aloop_create_connection(loop, "127.0.0.1", port, &p, &r, rec_free, NULL, &f));
  await_done(f);
  assert_ok(f);
  OK(aloop_future_free(f));
  RUN_UNTIL(r.freed == 1);
  ASSERT_EQ(r.lost, 1);
  ASSERT_EQ(r.after_free, 0);
  /* with connection_made the host has the transport: it stays open */
  struct rec r2 = {0};
  aloop_protocol_t p2 = rec_proto();
  OK(aloop_create_connection(loop, "127.0.0.1", port, &p2, &r2, rec_free, NULL, &f));
  await_done(f);
  OK(aloop_future_free(f));
  run_for(0.05);
  ASSERT_EQ(r2.made, 1);
  ASSERT_EQ(r2.lost, 0);
  ASSERT_EQ(r2.freed, 0);
  ASSERT_EQ(aloop_loop_close(loop), ALOOP_EBUSY);
  for (int i = 0; i < 2; i++) /* both connections: the peer closes */
    close(accept(lsn, NULL, NULL));
  RUN_UNTIL(r2.freed == 1);
  ASSERT_EQ(r2.lost, 1);
  close(lsn);
  OK(aloop_loop_close(loop));
  OK(aloop_loop_free(loop));
  ASSERT_EQ(live(), base);
}

TEST(subprocess_future_freed_unread) {
  size_t base = live();
  loop_up();
  aloop_subprocess_protocol_t pr;
  memset(&pr, 0, sizeof pr);
  pr.size = sizeof pr;
  static const char *const argv[] = {"/bin/cat", NULL};
  int freed = 0;
  aloop_future_t *f = NULL;
  OK(aloop_subprocess_exec(loop, argv, &pr, &freed, test_count_free, NULL, &f));
  OK(aloop_future_free(f)); /* still pending: closed once it resolves */
  RUN_UNTIL(freed == 1);    /* cat killed, reaped, released */
  OK(aloop_loop_close(loop));
  OK(aloop_loop_free(loop));
  ASSERT_EQ(live(), base);
}
