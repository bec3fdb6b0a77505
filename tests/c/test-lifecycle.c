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

/* ---- aloop_loop_close_force ---------------------------------------------- */

/* A userdata of the force-close test: free_cb must run exactly once and no
 * callback may run once the force-close began. */
struct fu {
  int freed;
  int calls_after; /* callbacks after close_force began */
};
static int forcing;
static struct fu fus[32];
static int nfus;

static struct fu *fu_new(void) { return &fus[nfus++]; }
static void fu_free(void *ud) { ((struct fu *)ud)->freed++; }
static void fu_hit(void *ud) {
  if (forcing && ud)
    ((struct fu *)ud)->calls_after++;
}
static void fu_cb(aloop_loop_t *l, void *ud) { (void)l; fu_hit(ud); }
static void fu_fd_cb(aloop_loop_t *l, int fd, void *ud) { (void)l; (void)fd; fu_hit(ud); }
static void fu_future_cb(aloop_future_t *f, void *ud) { (void)f; fu_hit(ud); }
static void fu_sig_cb(aloop_loop_t *l, int s, void *ud) { (void)l; (void)s; fu_hit(ud); }
static void fu_t(aloop_transport_t *t, void *ud) { (void)t; fu_hit(ud); }
static void fu_data(aloop_transport_t *t, const char *d, size_t n, void *ud) {
  (void)t; (void)d; (void)n; fu_hit(ud);
}
static void fu_lost(aloop_transport_t *t, int e, void *ud) { (void)t; (void)e; fu_hit(ud); }
static aloop_transport_t *accepted;
static struct fu *accepted_fu;
static int fu_on_conn(aloop_server_t *s, aloop_transport_t *t, void *ud) {
  (void)s;
  fu_hit(ud);
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.data_received = fu_data;
  p.connection_lost = fu_lost;
  accepted_fu = fu_new();
  OK(aloop_transport_set_protocol(t, &p, accepted_fu, fu_free));
  accepted = t;
  return 0;
}
static void fu_dg_t(aloop_datagram_t *d, void *ud) { (void)d; fu_hit(ud); }
static void fu_dg_lost(aloop_datagram_t *d, int e, void *ud) { (void)d; (void)e; fu_hit(ud); }
static void fu_sp_p(aloop_subprocess_t *p, void *ud) { (void)p; fu_hit(ud); }
static void fu_sp_lost(aloop_subprocess_t *p, int e, void *ud) { (void)p; (void)e; fu_hit(ud); }

static int count_open_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  ASSERT(d != NULL);
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

TEST(close_force_releases_everything) {
  size_t base = live();
  { /* the Go runtime's own poller (an epoll and an eventfd) starts with the
     * first name lookup: before the count */
    loop_up();
    aloop_future_t *g = NULL;
    OK(aloop_getaddrinfo(loop, "localhost", "80", 0, SOCK_STREAM, 0, 0, &g));
    await_done(g);
    OK(aloop_future_free(g));
    OK(aloop_loop_free(loop));
    loop = NULL;
  }
  int fds0 = count_open_fds();
  loop_up();
  /* a server with an accepted connection, and the client's transport */
  int port = 0;
  struct fu *srv = fu_new();
  aloop_server_t *s = serve_local(fu_on_conn, srv, fu_free, NULL, &port);
  struct fu *cli = fu_new();
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = fu_t;
  p.data_received = fu_data;
  p.connection_lost = fu_lost;
  aloop_future_t *f = NULL;
  OK(aloop_create_connection(loop, "127.0.0.1", port, &p, cli, fu_free, NULL, &f));
  aloop_transport_t *t = await_transport(f);
  RUN_UNTIL(accepted != NULL);
  OK(aloop_transport_write(t, "unsent?", 7));
  /* a datagram endpoint */
  struct fu *dg = fu_new();
  aloop_datagram_protocol_t dp;
  memset(&dp, 0, sizeof dp);
  dp.size = sizeof dp;
  dp.connection_made = fu_dg_t;
  dp.connection_lost = fu_dg_lost;
  OK(aloop_create_datagram_endpoint(loop, "127.0.0.1", 0, NULL, 0, &dp, dg, fu_free, NULL, &f));
  await_done(f);
  assert_ok(f);
  OK(aloop_future_free(f));
  /* a running subprocess */
  struct fu *sp = fu_new();
  aloop_subprocess_protocol_t spp;
  memset(&spp, 0, sizeof spp);
  spp.size = sizeof spp;
  spp.connection_made = fu_sp_p;
  spp.process_exited = fu_sp_p;
  spp.connection_lost = fu_sp_lost;
  static const char *const argv[] = {"/bin/cat", NULL};
  OK(aloop_subprocess_exec(loop, argv, &spp, sp, fu_free, NULL, &f));
  await_done(f);
  aloop_subprocess_t *proc = NULL;
  OK(aloop_future_result_subprocess(f, &proc));
  int pid = aloop_subprocess_get_pid(proc);
  ASSERT_CMP(pid, >, 0);
  OK(aloop_future_free(f));
  /* a watcher, a timer, a scheduled callback, a signal handler */
  int pr[2];
  ASSERT_EQ(pipe(pr), 0);
  struct fu *rd = fu_new(), *tm = fu_new(), *cs = fu_new(), *sg = fu_new();
  OK(aloop_add_reader(loop, pr[0], fu_fd_cb, rd, fu_free));
  OK(aloop_call_later(loop, 1000.0, fu_cb, tm, fu_free, NULL));
  OK(aloop_call_soon(loop, fu_cb, cs, fu_free, NULL));
  OK(aloop_add_signal_handler(loop, SIGUSR2, fu_sig_cb, sg, fu_free));
  /* pending futures: a sock_recv, one of the host's, a connection being
   * made, a sendfile fallback on a silent source; with done-callbacks */
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  aloop_future_t *recv_f = NULL, *own_f = NULL, *conn_f = NULL, *sf_f = NULL;
  OK(aloop_sock_recv(loop, sv[0], 100, &recv_f));
  OK(aloop_future_new(loop, &own_f));
  struct fu *cb1 = fu_new(), *cb2 = fu_new(), *conn = fu_new();
  OK(aloop_future_add_done_callback(recv_f, fu_future_cb, cb1, fu_free));
  OK(aloop_future_add_done_callback(own_f, fu_future_cb, cb2, fu_free));
  OK(aloop_create_connection(loop, "localhost", port, &p, conn, fu_free, NULL, &conn_f));
  int silent[2];
  ASSERT_EQ(pipe(silent), 0);
  OK(aloop_sock_sendfile(loop, sv[1], silent[0], 0, 0, 1, &sf_f));
  run_for(0.05);
  ASSERT_EQ(aloop_loop_close(loop), ALOOP_EBUSY);

  forcing = 1;
  OK(aloop_loop_close_force(loop));
  for (int i = 0; i < nfus; i++) {
    if (fus[i].freed != 1 || fus[i].calls_after != 0)
      FAIL("userdata %d: freed %d times, %d callbacks after close_force", i, fus[i].freed,
           fus[i].calls_after);
  }
  ASSERT_EQ(aloop_loop_is_closed(loop), 1);
  OK(aloop_loop_close_force(loop)); /* again: nothing */
  OK(aloop_loop_close(loop));
  /* every handle of the loop is stale; the futures are the host's */
  ASSERT_EQ(aloop_transport_write(t, "x", 1), ALOOP_EBADF);
  ASSERT_EQ(aloop_transport_close(accepted), ALOOP_EBADF);
  ASSERT_EQ(aloop_server_free(s), ALOOP_EBADF);
  ASSERT_EQ(aloop_subprocess_get_pid(proc), ALOOP_EBADF);
  aloop_future_t *fs[] = {recv_f, own_f, conn_f, sf_f};
  for (int i = 0; i < 4; i++) {
    ASSERT_EQ(aloop_future_done(fs[i]), 1);
    if (i != 2) /* the connection may have been made already */
      ASSERT_EQ(aloop_future_cancelled(fs[i]), 1);
    OK(aloop_future_free(fs[i]));
  }
  OK(aloop_loop_free(loop));
  loop = NULL;
  ASSERT_EQ(live(), base);
  /* the child was killed (and reaped by the library) */
  double t0 = test_now();
  while (kill(pid, 0) == 0 && test_now() - t0 < 5)
    test_sleep(0.01);
  ASSERT(kill(pid, 0) != 0);
  /* no fd of the library is left: only the pipes and sockets of the test */
  close(pr[0]);
  close(pr[1]);
  close(sv[0]);
  close(sv[1]);
  close(silent[0]);
  close(silent[1]);
  t0 = test_now();
  while (count_open_fds() != fds0 && test_now() - t0 < 2) /* reaper threads */
    test_sleep(0.01);
  if (count_open_fds() != fds0) {
    char cmd[64];
    snprintf(cmd, sizeof cmd, "ls -l /proc/%d/fd >&2", (int)getpid());
    if (system(cmd)) { /* ignore */ }
  }
  ASSERT_EQ(count_open_fds(), fds0);
  ASSERT_EQ(aloop_remove_signal_handler(NULL, SIGUSR2), ALOOP_EBADF);
}

static int inner_rc;
static void force_inside(aloop_loop_t *l, void *ud) {
  (void)ud;
  inner_rc = aloop_loop_close_force(l);
}

TEST(close_force_arguments_and_states) {
  ASSERT_EQ(aloop_loop_close_force(NULL), ALOOP_EBADF);
  loop_up();
  /* an empty loop: as aloop_loop_close */
  OK(aloop_loop_close_force(loop));
  ASSERT_EQ(aloop_loop_is_closed(loop), 1);
  OK(aloop_loop_free(loop));
  ASSERT_EQ(aloop_loop_close_force(loop), ALOOP_EBADF);
  loop = NULL;
  /* not from a callback of the running loop */
  loop_up();
  inner_rc = 1;
  OK(aloop_call_soon(loop, force_inside, NULL, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(inner_rc, ALOOP_EBUSY);
  ASSERT_EQ(aloop_loop_is_closed(loop), 0);
  OK(aloop_loop_free(loop));
}
