/*
 * test-sock.c - the sock_* operations (asyncio's loop.sock_recv, ...) on
 * caller-owned non-blocking sockets, over real socketpairs and loopback:
 * waiting and retrying, FIFO order per fd, cancellation, results and errors,
 * and aloop_transport_writev.
 */
#include "test.h"
#define RUN_FOR_STEP 0.005
#include "helpers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

static void pair(int fds[2], int type) {
  ASSERT_EQ(socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
}

/* A non-blocking listening TCP socket on 127.0.0.1; returns it, port in *port. */
static int listener(int *port) {
  int s = loopback_socket(SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, port);
  ASSERT_EQ(listen(s, 16), 0);
  return s;
}

/* The bytes of a done recv/recvfrom future, NUL-terminated copy in buf. */
static size_t result_bytes(aloop_future_t *f, char *buf, size_t cap) {
  void *data = NULL;
  size_t len = 12345;
  OK(aloop_future_result_bytes(f, &data, &len));
  ASSERT(data != NULL);
  ASSERT_CMP(len, <, cap);
  memcpy(buf, data, len);
  buf[len] = 0;
  size_t n2 = 0;
  OK(aloop_future_result_size(f, &n2));
  ASSERT_EQ(n2, len);
  OK(aloop_buffer_free(data));
  return len;
}

static void nop_fd_cb(aloop_loop_t *l, int fd, void *ud) {}

/* ------------------------------------------------------------------------ */

TEST(recv_waits_then_receives) {
  loop_up();
  int sv[2];
  pair(sv, SOCK_STREAM);
  aloop_future_t *f = NULL;
  OK(aloop_sock_recv(loop, sv[0], 100, &f));
  run_for(0.02);
  ASSERT_EQ(aloop_future_done(f), 0);
  ASSERT_EQ(aloop_loop_alive(loop), 1);
  ASSERT_EQ(aloop_loop_close(loop), ALOOP_EBUSY); /* a pending operation */
  void *data;
  size_t len;
  ASSERT_EQ(aloop_future_result_bytes(f, &data, &len), ALOOP_ESTATE);
  ASSERT_EQ(write(sv[1], "hello", 5), 5);
  await_done(f);
  assert_ok(f);
  char buf[64];
  ASSERT_EQ(result_bytes(f, buf, sizeof buf), 5);
  ASSERT_STR_EQ(buf, "hello");
  /* each call gives a new copy */
  void *d1, *d2;
  OK(aloop_future_result_bytes(f, &d1, &len));
  OK(aloop_future_result_bytes(f, &d2, &len));
  ASSERT(d1 != d2);
  aloop_buffer_free(d1);
  aloop_buffer_free(d2);
  /* wrong kinds */
  int fd;
  ASSERT_EQ(aloop_future_result_fd(f, &fd), ALOOP_EINVAL);
  aloop_transport_t *t;
  ASSERT_EQ(aloop_future_result_transport(f, &t), ALOOP_EINVAL);
  OK(aloop_future_free(f));

  /* data already there: done on return */
  ASSERT_EQ(write(sv[1], "again", 5), 5);
  OK(aloop_sock_recv(loop, sv[0], 3, &f));
  ASSERT_EQ(aloop_future_done(f), 1);
  ASSERT_EQ(result_bytes(f, buf, sizeof buf), 3);
  ASSERT_STR_EQ(buf, "aga");
  OK(aloop_future_free(f));

  /* EOF: 0 bytes, a non-NULL pointer */
  shutdown(sv[1], SHUT_WR);
  OK(aloop_sock_recv(loop, sv[0], 10, &f));
  ASSERT_EQ(result_bytes(f, buf, sizeof buf), 2);
  OK(aloop_future_free(f));
  OK(aloop_sock_recv(loop, sv[0], 10, &f));
  await_done(f);
  ASSERT_EQ(result_bytes(f, buf, sizeof buf), 0);
  OK(aloop_future_free(f));
  run_for(0.01);
  ASSERT_EQ(aloop_loop_alive(loop), 0);
  close(sv[0]);
  close(sv[1]);
  OK(aloop_loop_close(loop));
}

TEST(fifo_and_cancel) {
  loop_up();
  int sv[2];
  pair(sv, SOCK_STREAM);
  aloop_future_t *f1, *f2, *f3, *f4;
  char into[4] = {0, 0, 0, 0};
  OK(aloop_sock_recv(loop, sv[0], 4, &f1));
  OK(aloop_sock_recv(loop, sv[0], 4, &f2));
  OK(aloop_sock_recv_into(loop, sv[0], into, sizeof into, &f3));
  OK(aloop_sock_recv(loop, sv[0], 4, &f4));
  ASSERT_EQ(aloop_future_cancel(f3), 1);
  run_for(0.01);
  ASSERT_EQ(write(sv[1], "111122223333", 12), 12);
  RUN_UNTIL(aloop_future_done(f4) == 1);
  char buf[16];
  result_bytes(f1, buf, sizeof buf);
  ASSERT_STR_EQ(buf, "1111");
  result_bytes(f2, buf, sizeof buf);
  ASSERT_STR_EQ(buf, "2222");
  result_bytes(f4, buf, sizeof buf);
  ASSERT_STR_EQ(buf, "3333");
  ASSERT_EQ(aloop_future_cancelled(f3), 1);
  size_t n;
  ASSERT_EQ(aloop_future_result_size(f3, &n), ALOOP_ECANCELED);
  /* the cancelled recv_into never wrote the caller's buffer */
  ASSERT(into[0] == 0 && into[1] == 0 && into[2] == 0 && into[3] == 0);
  aloop_future_free(f1);
  aloop_future_free(f2);
  aloop_future_free(f3);
  aloop_future_free(f4);

  /* cancelling removes the watcher and consumes nothing */
  OK(aloop_sock_recv(loop, sv[0], 100, &f1));
  /* while it waits, add_reader on the fd is refused */
  ASSERT_EQ(aloop_add_reader(loop, sv[0], nop_fd_cb, NULL, NULL), ALOOP_EBUSY);
  ASSERT_EQ(aloop_future_cancel(f1), 1);
  run_for(0.01);
  ASSERT_EQ(aloop_loop_alive(loop), 0);
  ASSERT_EQ(write(sv[1], "xyz", 3), 3);
  run_for(0.01);
  ASSERT_EQ(read(sv[0], buf, sizeof buf), 3);
  aloop_future_free(f1);
  close(sv[0]);
  close(sv[1]);
  OK(aloop_loop_close(loop));
}

TEST(recv_into_caller_memory) {
  loop_up();
  int sv[2];
  pair(sv, SOCK_STREAM);
  char mem[10];
  memset(mem, '.', sizeof mem);
  aloop_future_t *f;
  OK(aloop_sock_recv_into(loop, sv[0], mem + 2, 5, &f));
  ASSERT_EQ(write(sv[1], "abcdefgh", 8), 8);
  await_done(f);
  assert_ok(f);
  size_t n = 0;
  OK(aloop_future_result_size(f, &n));
  ASSERT_EQ(n, 5);
  ASSERT(memcmp(mem, "..abcde...", 10) == 0);
  void *d;
  size_t len;
  ASSERT_EQ(aloop_future_result_bytes(f, &d, &len), ALOOP_EINVAL);
  aloop_future_free(f);
  close(sv[0]);
  close(sv[1]);
  OK(aloop_loop_close(loop));
}

TEST(sendall_large_in_order) {
  loop_up();
  int sv[2];
  pair(sv, SOCK_STREAM);
  const size_t total = 8u << 20;
  unsigned char *data = make_pattern(total);
  aloop_future_t *s1, *s2;
  OK(aloop_sock_sendall(loop, sv[0], data, 5u << 20, &s1));
  OK(aloop_sock_sendall(loop, sv[0], data + (5u << 20), total - (5u << 20), &s2));
  /* the data is copied: the caller may reuse its memory at once */
  unsigned char *keep = malloc(total);
  memcpy(keep, data, total);
  memset(data, 0, total);
  unsigned char *got = malloc(total);
  sock_recv_all(sv[1], got, total);
  ASSERT(memcmp(got, keep, total) == 0);
  await_done(s2);
  assert_ok(s1);
  assert_ok(s2);
  size_t n1, n2;
  OK(aloop_future_result_size(s1, &n1));
  OK(aloop_future_result_size(s2, &n2));
  ASSERT_EQ(n1, 5u << 20);
  ASSERT_EQ(n2, total - (5u << 20));
  aloop_future_free(s1);
  aloop_future_free(s2);
  free(data);
  free(keep);
  free(got);
  /* sendall to a closed peer: EPIPE through the future, no SIGPIPE */
  close(sv[1]);
  aloop_future_t *f;
  OK(aloop_sock_sendall(loop, sv[0], "x", 1, &f));
  await_done(f);
  ASSERT_EQ(aloop_future_exception(f), ALOOP_EPIPE);
  aloop_future_free(f);
  close(sv[0]);
  OK(aloop_loop_close(loop));
}

TEST(connect_accept_tcp) {
  loop_up();
  int port;
  int l = listener(&port);
  aloop_future_t *af, *cf;
  OK(aloop_sock_accept(loop, l, &af));
  run_for(0.01);
  ASSERT_EQ(aloop_future_done(af), 0);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  OK(aloop_sock_connect(loop, c, "127.0.0.1", port, &cf));
  await_done(cf);
  assert_ok(cf);
  void *res = (void *)1;
  OK(aloop_future_result(cf, &res));
  ASSERT(res == NULL);
  await_done(af);
  assert_ok(af);
  int a = -1;
  OK(aloop_future_result_fd(af, &a));
  ASSERT(a > 2);
  ASSERT(fcntl(a, F_GETFL) & O_NONBLOCK);
  ASSERT(fcntl(a, F_GETFD) & FD_CLOEXEC);
  char host[64];
  int peer_port = 0;
  OK(aloop_future_result_addr(af, host, sizeof host, &peer_port));
  ASSERT_STR_EQ(host, "127.0.0.1");
  ASSERT_EQ(peer_port, local_port(c));
  ASSERT_EQ(aloop_future_result_addr(af, host, 5, NULL), ALOOP_ENOSPACE);
  aloop_future_free(af);
  aloop_future_free(cf);

  aloop_future_t *sf, *rf;
  OK(aloop_sock_sendall(loop, a, "ping", 4, &sf));
  OK(aloop_sock_recv(loop, c, 100, &rf));
  await_done(rf);
  char buf[16];
  result_bytes(rf, buf, sizeof buf);
  ASSERT_STR_EQ(buf, "ping");
  aloop_future_free(sf);
  aloop_future_free(rf);
  close(a);
  close(c);

  /* an IPv4 address on an IPv6 socket (v4-mapped), and by name */
  int c6 = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  OK(aloop_sock_connect(loop, c6, "127.0.0.1", port, &cf));
  await_done(cf);
  assert_ok(cf);
  aloop_future_free(cf);
  close(c6);
  c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  OK(aloop_sock_connect(loop, c, "localhost", port, &cf));
  ASSERT_EQ(aloop_future_done(cf), 0); /* resolved off the loop first */
  await_done(cf);
  assert_ok(cf);
  aloop_future_free(cf);
  close(c);
  close(l);

  /* refused: the port is closed now */
  c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  OK(aloop_sock_connect(loop, c, "127.0.0.1", port, &cf));
  await_done(cf);
  ASSERT_EQ(aloop_future_exception(cf), ALOOP_ECONNREFUSED);
  char msg[256];
  ASSERT_CMP(aloop_future_error_message(cf, msg, sizeof msg), >, 0);
  aloop_future_free(cf);
  close(c);
  run_for(0.01);
  OK(aloop_loop_close(loop));
}

TEST(unix_socket_connect_accept) {
  loop_up();
  char path[64];
  snprintf(path, sizeof path, "@aloop-test-sock-%d", (int)getpid());
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  bind_unix(l, path); /* abstract */
  ASSERT_EQ(listen(l, 4), 0);
  aloop_future_t *af, *cf;
  OK(aloop_sock_accept(loop, l, &af));
  int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  OK(aloop_sock_connect(loop, c, path, 0, &cf));
  await_done(cf);
  assert_ok(cf);
  await_done(af);
  assert_ok(af);
  char host[128] = "x";
  int port = -1;
  OK(aloop_future_result_addr(af, host, sizeof host, &port));
  ASSERT_STR_EQ(host, ""); /* an unbound client */
  ASSERT_EQ(port, 0);
  int a;
  OK(aloop_future_result_fd(af, &a));
  close(a);
  aloop_future_free(af);
  aloop_future_free(cf);
  close(c);
  close(l);
  OK(aloop_loop_close(loop));
}

TEST(datagrams) {
  loop_up();
  int s[2], port[2];
  for (int i = 0; i < 2; i++)
    s[i] = loopback_socket(SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, &port[i]);
  aloop_future_t *rf, *sf;
  OK(aloop_sock_recvfrom(loop, s[1], 2048, &rf));
  run_for(0.01);
  ASSERT_EQ(aloop_future_done(rf), 0);
  OK(aloop_sock_sendto(loop, s[0], "datagram one", 12, "127.0.0.1", port[1], &sf));
  await_done(sf);
  assert_ok(sf);
  size_t n;
  OK(aloop_future_result_size(sf, &n));
  ASSERT_EQ(n, 12);
  await_done(rf);
  char buf[64], host[64];
  int p;
  ASSERT_EQ(result_bytes(rf, buf, sizeof buf), 12);
  ASSERT_STR_EQ(buf, "datagram one");
  OK(aloop_future_result_addr(rf, host, sizeof host, &p));
  ASSERT_STR_EQ(host, "127.0.0.1");
  ASSERT_EQ(p, port[0]);
  aloop_future_free(rf);
  aloop_future_free(sf);

  /* recvfrom_into truncates to the buffer; an empty datagram */
  char small[5];
  OK(aloop_sock_recvfrom_into(loop, s[1], small, sizeof small, &rf));
  OK(aloop_sock_sendto(loop, s[0], "truncated datagram", 18, "127.0.0.1", port[1], &sf));
  await_done(rf);
  OK(aloop_future_result_size(rf, &n));
  ASSERT_EQ(n, 5);
  ASSERT(memcmp(small, "trunc", 5) == 0);
  OK(aloop_future_result_addr(rf, NULL, 0, &p));
  ASSERT_EQ(p, port[0]);
  aloop_future_free(rf);
  aloop_future_free(sf);
  OK(aloop_sock_sendto(loop, s[0], NULL, 0, "127.0.0.1", port[1], &sf));
  OK(aloop_sock_recvfrom(loop, s[1], 100, &rf));
  await_done(rf);
  ASSERT_EQ(result_bytes(rf, buf, sizeof buf), 0);
  aloop_future_free(rf);
  aloop_future_free(sf);
  close(s[0]);
  close(s[1]);
  OK(aloop_loop_close(loop));
}

TEST(argument_errors) {
  loop_up();
  aloop_future_t *f = NULL;
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0); /* blocking */
  ASSERT_EQ(aloop_sock_recv(loop, sv[0], 1, &f), ALOOP_EINVAL);
  char msg[256];
  ASSERT_CMP(aloop_last_error(msg, sizeof msg), >, 0);
  ASSERT_EQ(aloop_sock_recv(NULL, sv[0], 1, &f), ALOOP_EBADF);
  ASSERT_EQ(aloop_sock_recv((aloop_loop_t *)0x1234, sv[0], 1, &f), ALOOP_EBADF);
  ASSERT_EQ(aloop_sock_recv(loop, -1, 1, &f), ALOOP_EBADF);
  ASSERT_EQ(aloop_sock_recv(loop, 999, 1, &f), ALOOP_EBADF);
  close(sv[0]);
  close(sv[1]);
  pair(sv, SOCK_STREAM);
  ASSERT_EQ(aloop_sock_recv(loop, sv[0], 1, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_recv_into(loop, sv[0], NULL, 4, &f), ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_sendall(loop, sv[0], NULL, 4, &f), ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_sendto(loop, sv[0], "x", 1, NULL, 1, &f), ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_connect(loop, sv[0], NULL, 1, &f), ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_connect(loop, sv[0], "127.0.0.1", 70000, &f), ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_accept(loop, sv[0], NULL), ALOOP_EINVAL);
  /* an fd watched with add_reader */
  OK(aloop_add_reader(loop, sv[0], nop_fd_cb, NULL, NULL));
  ASSERT_EQ(aloop_sock_recv(loop, sv[0], 1, &f), ALOOP_EBUSY);
  ASSERT_EQ(aloop_remove_reader(loop, sv[0]), 1);
  /* getters on a bad future, NULL outs */
  size_t n;
  ASSERT_EQ(aloop_future_result_size(NULL, &n), ALOOP_EBADF);
  ASSERT_EQ(aloop_future_result_bytes(NULL, NULL, NULL), ALOOP_EBADF);
  ASSERT_EQ(aloop_future_result_fd(NULL, NULL), ALOOP_EBADF);
  ASSERT_EQ(aloop_future_result_addr(NULL, NULL, 0, NULL), ALOOP_EBADF);
  OK(aloop_sock_recv(loop, sv[0], 1, &f));
  ASSERT_EQ(aloop_future_result_size(f, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_future_result_size(f, &n), ALOOP_ESTATE);
  OK(aloop_future_cancel(f));
  OK(aloop_future_free(f));
  ASSERT_EQ(aloop_future_result_size(f, &n), ALOOP_EBADF); /* freed */
  OK(aloop_buffer_free(NULL));
  run_for(0.01);
  /* a connect error of the operation goes to the future, not the call */
  OK(aloop_sock_connect(loop, sv[0], "127.0.0.1", 1, &f));
  await_done(f);
  ASSERT_CMP(aloop_future_exception(f), <, 0);
  aloop_future_free(f);
  close(sv[0]);
  close(sv[1]);
  run_for(0.01);
  OK(aloop_loop_close(loop));
}

/* ---- a transport's fd is not for sock_*; writev ------------------------- */

struct sink {
  aloop_transport_t *t;
  char buf[256];
  size_t len;
  int lost;
};

static void k_made(aloop_transport_t *t, void *ud) { ((struct sink *)ud)->t = t; }
static void k_data(aloop_transport_t *t, const char *d, size_t n, void *ud) {
  struct sink *s = ud;
  ASSERT_CMP(s->len + n, <, sizeof s->buf);
  memcpy(s->buf + s->len, d, n);
  s->len += n;
}
static void k_lost(aloop_transport_t *t, int e, void *ud) { ((struct sink *)ud)->lost++; }

static aloop_protocol_t sink_protocol(void) {
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = k_made;
  p.data_received = k_data;
  p.connection_lost = k_lost;
  return p;
}

static struct sink server_sink;

static int on_conn(aloop_server_t *s, aloop_transport_t *t, void *ud) {
  aloop_protocol_t p = sink_protocol();
  OK(aloop_transport_set_protocol(t, &p, &server_sink, NULL));
  return 0;
}

TEST(transport_writev_and_busy_fd) {
  loop_up();
  int port;
  aloop_server_t *server = serve_local(on_conn, NULL, NULL, NULL, &port);
  struct sink client = {0};
  aloop_protocol_t p = sink_protocol();
  aloop_future_t *f;
  OK(aloop_create_connection(loop, "127.0.0.1", port, &p, &client, NULL, NULL, &f));
  aloop_transport_t *t = await_transport(f);

  /* sock_* on the transport's or server's fd: EBUSY */
  ASSERT_EQ(aloop_sock_recv(loop, aloop_transport_get_fd(t), 1, &f), ALOOP_EBUSY);
  ASSERT_EQ(aloop_sock_accept(loop, aloop_server_socket_fd(server, 0), &f), ALOOP_EBUSY);

  aloop_iovec_t iov[4] = {{"one,", 4}, {NULL, 0}, {"two,", 4}, {"three", 5}};
  OK(aloop_transport_writev(t, iov, 4));
  OK(aloop_transport_writev(t, NULL, 0));
  ASSERT_EQ(aloop_transport_writev(t, NULL, 2), ALOOP_EINVAL);
  aloop_iovec_t bad[2] = {{"x", 1}, {NULL, 3}};
  ASSERT_EQ(aloop_transport_writev(t, bad, 2), ALOOP_EINVAL);
  ASSERT_EQ(aloop_transport_writev(NULL, iov, 1), ALOOP_EBADF);
  RUN_UNTIL(server_sink.len == 13);
  server_sink.buf[13] = 0;
  ASSERT_STR_EQ(server_sink.buf, "one,two,three");
  OK(aloop_transport_close(t));
  /* taken until connection_lost runs, and sent before the close */
  OK(aloop_transport_writev(t, iov, 1));
  RUN_UNTIL(client.lost == 1 && server_sink.lost == 1);
  ASSERT_EQ(server_sink.len, 17);
  ASSERT(memcmp(server_sink.buf + 13, "one,", 4) == 0);
  ASSERT_EQ(aloop_transport_writev(t, iov, 1), ALOOP_EBADF); /* stale now */
  OK(aloop_server_free(server));
  run_for(0.01);
  OK(aloop_loop_close(loop));
}
