/*
 * test-unix.c - Unix stream sockets (path and abstract names, stale socket
 * files, cleanup), connection errors, and connect_accepted_socket over a
 * socketpair and an accepted TCP socket.
 */
#include "test.h"
#include "helpers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

/* A socket path in /tmp unique to this process and name. */
static const char *sock_path(const char *name) {
  return tmp_sock_path("unix", name);
}

static int is_socket_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* ---- connections -------------------------------------------------------------- */

struct conn {
  aloop_transport_t *t;
  int made, lost, lost_err, eofs, frees;
  int echo;
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
  ASSERT_PTR_EQ(t, c->t);
  buf_append(&c->buf, &c->len, &c->cap, data, len);
  if (c->echo)
    OK(aloop_transport_write(t, data, len));
}

static int p_eof(aloop_transport_t *t, void *ud) {
  ((struct conn *)ud)->eofs++;
  return 0;
}

static void p_lost(aloop_transport_t *t, int err, void *ud) {
  struct conn *c = ud;
  ASSERT_PTR_EQ(t, c->t);
  ASSERT_EQ(c->lost, 0);
  ASSERT_EQ(c->frees, 0);
  c->lost++;
  c->lost_err = err;
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
  return p;
}

/* ---- servers ------------------------------------------------------------------ */

#define MAX_CONNS 8

struct server_state {
  aloop_server_t *server;
  int frees, accepted;
  struct conn conns[MAX_CONNS];
};

static int on_connection(aloop_server_t *s, aloop_transport_t *t, void *ud) {
  struct server_state *ss = ud;
  ASSERT_PTR_EQ(s, ss->server);
  ASSERT_CMP(ss->accepted, <, MAX_CONNS);
  struct conn *c = &ss->conns[ss->accepted++];
  c->echo = 1;
  aloop_protocol_t p = protocol();
  OK(aloop_transport_set_protocol(t, &p, c, conn_free));
  return 0;
}

static void server_free_cb(void *ud) { ((struct server_state *)ud)->frees++; }

static void start_server(struct server_state *ss, const char *path,
                         const aloop_unix_server_options_t *opts) {
  loop_up();
  aloop_future_t *f = NULL;
  OK(aloop_create_unix_server(loop, path, on_connection, ss, server_free_cb,
                              opts, &f));
  OK(aloop_loop_run_until_complete(loop, f));
  assert_future_ok(f, "create_unix_server(%s)", path);
  OK(aloop_future_result_server(f, &ss->server));
  OK(aloop_future_free(f));
  ASSERT_EQ(aloop_server_socket_count(ss->server), 1);
  char host[128];
  int port = -1;
  OK(aloop_server_sockname(ss->server, 0, host, sizeof host, &port));
  ASSERT_STR_EQ(host, path);
  ASSERT_EQ(port, 0);
}

static void close_server(struct server_state *ss) {
  aloop_future_t *wc = NULL;
  OK(aloop_server_close(ss->server));
  OK(aloop_server_wait_closed(ss->server, &wc));
  OK(aloop_loop_run_until_complete(loop, wc));
  OK(aloop_future_free(wc));
  OK(aloop_server_free(ss->server));
  ASSERT_EQ(ss->frees, 1);
}

static aloop_transport_t *connect_unix(const char *path, struct conn *c) {
  loop_up();
  aloop_protocol_t p = protocol();
  aloop_future_t *f = NULL;
  OK(aloop_create_unix_connection(loop, path, &p, c, conn_free, &f));
  aloop_transport_t *t =
      complete_transport(f, "create_unix_connection(%s)", path);
  ASSERT_EQ(c->made, 1);
  ASSERT_PTR_EQ(t, c->t);
  return t;
}

/* Echo 256 KiB over a Unix socket at path; checks the addresses. */
static void echo_over(const char *path) {
  static struct server_state ss;
  memset(&ss, 0, sizeof ss);
  start_server(&ss, path, NULL);
  struct conn c = {0};
  aloop_transport_t *t = connect_unix(path, &c);
  const size_t total = 256 * 1024;
  unsigned char *data = make_pattern(total);
  OK(aloop_transport_write(t, data, total));
  RUN_UNTIL(c.len >= total);
  ASSERT_EQ(c.len, total);
  ASSERT(memcmp(c.buf, data, total) == 0);

  char host[128];
  int port = -1;
  OK(aloop_transport_get_peername(t, host, sizeof host, &port));
  ASSERT_STR_EQ(host, path);
  ASSERT_EQ(port, 0);
  OK(aloop_transport_get_sockname(t, host, sizeof host, &port));
  ASSERT_STR_EQ(host, ""); /* the client socket is unnamed */
  ASSERT_EQ(ss.accepted, 1);
  OK(aloop_transport_get_peername(ss.conns[0].t, host, sizeof host, &port));
  ASSERT_STR_EQ(host, "");
  OK(aloop_transport_get_sockname(ss.conns[0].t, host, sizeof host, &port));
  ASSERT_STR_EQ(host, path);
  ASSERT_EQ(aloop_transport_get_peername(t, host, 4, &port), ALOOP_ENOSPACE);

  OK(aloop_transport_close(t));
  RUN_UNTIL(c.lost == 1 && ss.conns[0].lost == 1);
  ASSERT_EQ(c.lost_err, 0);
  ASSERT_EQ(ss.conns[0].lost_err, 0);
  ASSERT_EQ(ss.conns[0].eofs, 1);
  run_for(0.01);
  ASSERT_EQ(c.frees, 1);
  ASSERT_EQ(ss.conns[0].frees, 1);
  close_server(&ss);
  free(data);
  free(c.buf);
  free(ss.conns[0].buf);
}

/* ------------------------------------------------------------------------ */

TEST(echo_path) {
  const char *path = sock_path("echo");
  unlink(path);
  echo_over(path);
  /* the server removed its socket file when it closed */
  ASSERT_EQ(is_socket_file(path), 0);
  ASSERT_EQ(aloop_loop_alive(loop), 0);
  OK(aloop_loop_close(loop));
}

TEST(echo_abstract) {
  char name[64];
  snprintf(name, sizeof name, "@aloop-test-unix-%d", (int)getpid());
  echo_over(name);
  /* no file was created, neither named "@..." nor anything else */
  struct stat st;
  ASSERT_EQ(stat(name, &st), -1);
  OK(aloop_loop_close(loop));
}

/* A socket file left by a dead server is replaced (asyncio). */
TEST(stale_socket_replaced) {
  const char *path = sock_path("stale");
  unlink(path);
  stale_socket_file(path, SOCK_STREAM);
  ASSERT_EQ(is_socket_file(path), 1);
  static struct server_state ss;
  start_server(&ss, path, NULL);
  struct conn c = {0};
  aloop_transport_t *t = connect_unix(path, &c);
  OK(aloop_transport_write(t, "ping", 4));
  RUN_UNTIL(c.len == 4);
  ASSERT(memcmp(c.buf, "ping", 4) == 0);
  OK(aloop_transport_abort(t));
  RUN_UNTIL(c.lost == 1);
  close_server(&ss);
  free(c.buf);
  OK(aloop_loop_close(loop));
}

/* Any other file is not replaced: EADDRINUSE through the future. */
TEST(regular_file_in_use) {
  loop_up();
  const char *path = sock_path("regular");
  int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
  ASSERT(fd >= 0);
  ASSERT_EQ(write(fd, "keep", 4), 4);
  close(fd);
  static struct server_state ss;
  aloop_future_t *f = NULL;
  OK(aloop_create_unix_server(loop, path, on_connection, &ss, server_free_cb,
                              NULL, &f));
  OK(aloop_loop_run_until_complete(loop, f));
  ASSERT_EQ(aloop_future_exception(f), ALOOP_EADDRINUSE);
  char msg[256] = "";
  ASSERT_CMP(aloop_future_error_message(f, msg, sizeof msg), >, 0);
  ASSERT(strstr(msg, path) != NULL);
  run_for(0.01);
  ASSERT_EQ(ss.frees, 1);
  OK(aloop_future_free(f));
  struct stat st;
  ASSERT_EQ(stat(path, &st), 0);
  ASSERT(S_ISREG(st.st_mode));
  ASSERT_EQ(st.st_size, 4);
  unlink(path);
  OK(aloop_loop_close(loop));
}

TEST(server_options) {
  const char *path = sock_path("opts");
  unlink(path);
  aloop_unix_server_options_t o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.backlog = 5;
  o.start_serving = 0;
  o.cleanup_socket = 0;
  static struct server_state ss;
  start_server(&ss, path, &o);
  ASSERT_EQ(aloop_server_is_serving(ss.server), 0);
  OK(aloop_server_start_serving(ss.server));
  ASSERT_EQ(aloop_server_is_serving(ss.server), 1);
  struct conn c = {0};
  aloop_transport_t *t = connect_unix(path, &c);
  OK(aloop_transport_write(t, "x", 1));
  RUN_UNTIL(c.len == 1);
  OK(aloop_transport_close(t));
  RUN_UNTIL(c.lost == 1);
  close_server(&ss);
  /* cleanup_socket = 0: the socket file stays */
  ASSERT_EQ(is_socket_file(path), 1);
  unlink(path);
  free(c.buf);
  /* a bad options size */
  o.size = 0;
  int frees = 0;
  aloop_future_t *f = NULL;
  ASSERT_EQ(aloop_create_unix_server(loop, path, on_connection, &frees,
                                     test_count_free, &o, &f),
            ALOOP_EINVAL);
  ASSERT_EQ(frees, 1);
  OK(aloop_loop_close(loop));
}

static int never_runs;
static void never_made(aloop_transport_t *t, void *ud) { never_runs++; }
static void never_lost(aloop_transport_t *t, int e, void *ud) { never_runs++; }

static int connect_error(const char *path) {
  aloop_protocol_t p = protocol();
  p.connection_made = never_made;
  p.connection_lost = never_lost;
  int frees = 0;
  aloop_future_t *f = NULL;
  OK(aloop_create_unix_connection(loop, path, &p, &frees, test_count_free, &f));
  OK(aloop_loop_run_until_complete(loop, f));
  int err = aloop_future_exception(f);
  run_for(0.01);
  ASSERT_EQ(frees, 1);
  OK(aloop_future_free(f));
  return err;
}

TEST(connect_errors) {
  loop_up();
  const char *missing = sock_path("missing");
  unlink(missing);
  ASSERT_EQ(connect_error(missing), ALOOP_ENOENT);
  /* a socket file nobody listens on */
  const char *dead = sock_path("dead");
  unlink(dead);
  stale_socket_file(dead, SOCK_STREAM);
  ASSERT_EQ(connect_error(dead), ALOOP_ECONNREFUSED);
  unlink(dead);
  char name[64];
  snprintf(name, sizeof name, "@aloop-test-nobody-%d", (int)getpid());
  ASSERT_EQ(connect_error(name), ALOOP_ECONNREFUSED);
  ASSERT_EQ(never_runs, 0);

  /* invalid arguments fail at once; free_cb runs */
  aloop_protocol_t p = protocol();
  aloop_future_t *f = NULL;
  int frees = 0;
  char longpath[300];
  memset(longpath, 'a', sizeof longpath - 1);
  longpath[sizeof longpath - 1] = 0;
  ASSERT_EQ(aloop_create_unix_connection(loop, "", &p, &frees, test_count_free,
                                         &f),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_create_unix_connection(loop, NULL, &p, &frees,
                                         test_count_free, &f),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_create_unix_connection(loop, longpath, &p, &frees,
                                         test_count_free, &f),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_create_unix_connection(NULL, missing, &p, &frees,
                                         test_count_free, &f),
            ALOOP_EBADF);
  ASSERT_EQ(aloop_create_unix_connection(loop, missing, &p, &frees,
                                         test_count_free, NULL),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_create_unix_server(loop, longpath, on_connection, &frees,
                                     test_count_free, NULL, &f),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_create_unix_server(loop, missing, NULL, &frees,
                                     test_count_free, NULL, &f),
            ALOOP_EINVAL);
  ASSERT_EQ(frees, 7);
  ASSERT_EQ(aloop_loop_alive(loop), 0);
  OK(aloop_loop_close(loop));
}

/* ---- connect_accepted_socket ---------------------------------------------------- */

static aloop_transport_t *accept_fd(int fd, struct conn *c) {
  loop_up();
  aloop_protocol_t p = protocol();
  aloop_future_t *f = NULL;
  OK(aloop_connect_accepted_socket(loop, fd, &p, c, conn_free, &f));
  ASSERT_EQ(c->made, 0);
  aloop_transport_t *t = complete_transport(f, "connect_accepted_socket");
  ASSERT_EQ(c->made, 1);
  ASSERT_PTR_EQ(t, c->t);
  return t;
}

static size_t read_until(int fd, char *buf, size_t want) {
  size_t n = 0;
  double t0 = test_now();
  while (n < want) {
    if (test_now() - t0 > 20)
      FAIL("timed out reading %zu bytes (got %zu)", want, n);
    OK(aloop_loop_run_once(loop, 0.005));
    ssize_t r = recv(fd, buf + n, want - n, MSG_DONTWAIT);
    if (r > 0)
      n += (size_t)r;
    else if (r == 0)
      break;
  }
  return n;
}

TEST(accepted_socketpair) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  struct conn c = {0};
  aloop_transport_t *t = accept_fd(sv[0], &c);
  ASSERT_EQ(aloop_transport_get_fd(t), sv[0]);
  ASSERT(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
  ASSERT_EQ(write(sv[1], "from peer", 9), 9);
  RUN_UNTIL(c.len == 9);
  ASSERT(memcmp(c.buf, "from peer", 9) == 0);
  OK(aloop_transport_write(t, "to peer", 7));
  char buf[64];
  ASSERT_EQ(read_until(sv[1], buf, 7), 7);
  ASSERT(memcmp(buf, "to peer", 7) == 0);
  /* the peer half-closes: eof_received, then (returning 0) close */
  ASSERT_EQ(shutdown(sv[1], SHUT_WR), 0);
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(c.eofs, 1);
  ASSERT_EQ(c.lost_err, 0);
  run_for(0.01);
  ASSERT_EQ(c.frees, 1);
  /* the transport owned the fd */
  ASSERT_EQ(fd_is_open(sv[0]), 0);
  ASSERT_EQ(recv(sv[1], buf, sizeof buf, 0), 0);
  close(sv[1]);
  free(c.buf);
  OK(aloop_loop_close(loop));
}

TEST(accepted_tcp) {
  int lport;
  int l = loopback_socket(SOCK_STREAM | SOCK_CLOEXEC, &lport);
  ASSERT_EQ(listen(l, 1), 0);
  struct sockaddr_in a = loopback_addr(lport);
  int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(connect(cfd, (struct sockaddr *)&a, sizeof a), 0);
  int afd = accept(l, NULL, NULL);
  ASSERT(afd >= 0);
  close(l);
  struct conn c = {0};
  c.echo = 1;
  aloop_transport_t *t = accept_fd(afd, &c);
  int nodelay = 0;
  socklen_t len = sizeof nodelay;
  ASSERT_EQ(getsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
  ASSERT_EQ(nodelay, 1);
  char host[64];
  int port = 0;
  OK(aloop_transport_get_peername(t, host, sizeof host, &port));
  ASSERT_STR_EQ(host, "127.0.0.1");
  ASSERT_CMP(port, >, 0);
  ASSERT_EQ(write(cfd, "echo me", 7), 7);
  char buf[16];
  ASSERT_EQ(read_until(cfd, buf, 7), 7);
  ASSERT(memcmp(buf, "echo me", 7) == 0);
  close(cfd);
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(fd_is_open(afd), 0);
  free(c.buf);
  OK(aloop_loop_close(loop));
}

TEST(accepted_errors) {
  loop_up();
  aloop_protocol_t p = protocol();
  aloop_future_t *f = NULL;
  int frees = 0;
  int pfd[2];
  ASSERT_EQ(pipe(pfd), 0);
  ASSERT_EQ(aloop_connect_accepted_socket(loop, pfd[0], &p, &frees,
                                          test_count_free, &f),
            ALOOP_ENOTSOCK);
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_EQ(aloop_connect_accepted_socket(loop, u, &p, &frees, test_count_free,
                                          &f),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_connect_accepted_socket(loop, -1, &p, &frees, test_count_free,
                                          &f),
            ALOOP_EBADF);
  ASSERT_EQ(aloop_connect_accepted_socket(NULL, u, &p, &frees, test_count_free,
                                          &f),
            ALOOP_EBADF);
  ASSERT_EQ(frees, 4);
  /* the caller still owns the fds, unchanged */
  ASSERT_EQ(fd_is_open(pfd[0]), 1);
  ASSERT_EQ(fd_is_open(u), 1);
  ASSERT_EQ(fcntl(u, F_GETFL) & O_NONBLOCK, 0);
  close(pfd[0]);
  close(pfd[1]);
  close(u);
  ASSERT_EQ(aloop_loop_alive(loop), 0);
  OK(aloop_loop_close(loop));
}
