/*
 * test-udp.c - datagram endpoints: UDP echo over IPv4 and IPv6 with sender
 * addresses, ECONNREFUSED on a connected socket, SO_BROADCAST and
 * SO_REUSEPORT, Unix datagram sockets, send buffering with flow control,
 * protocol switching, argument errors, and sends queued in the event
 * queue's write queue (ALOOP_WRITE_SENDTO).
 */
#include "test.h"
#include "helpers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

/* ---- an endpoint's state (the protocol userdata) ------------------------- */

#define MAX_RX 64

struct rx {
  char data[2048];
  size_t len;
  char host[128];
  int port;
};

struct ep {
  aloop_datagram_t *d;
  int made, lost, lost_err, frees, errors, last_error;
  int pauses, resumes;
  int echo;
  int connected; /* created with a remote address */
  int nrx;
  struct rx rx[MAX_RX];
};

static void d_made(aloop_datagram_t *d, void *ud) {
  struct ep *e = ud;
  ASSERT_EQ(e->made, 0);
  ASSERT_EQ(e->lost, 0);
  e->made++;
  e->d = d;
}

static void d_received(aloop_datagram_t *d, const char *data, size_t len,
                       const char *host, int port, void *ud) {
  struct ep *e = ud;
  ASSERT_EQ(e->made, 1);
  ASSERT_EQ(e->lost, 0);
  ASSERT_PTR_EQ(d, e->d);
  ASSERT(data != NULL);
  ASSERT(host != NULL);
  ASSERT_CMP(e->nrx, <, MAX_RX);
  struct rx *r = &e->rx[e->nrx++];
  ASSERT_CMP(len, <=, sizeof r->data);
  memcpy(r->data, data, len);
  r->len = len;
  snprintf(r->host, sizeof r->host, "%s", host);
  r->port = port;
  if (e->echo)
    OK(aloop_datagram_sendto(d, data, len, host, port));
}

static void d_error(aloop_datagram_t *d, int err, void *ud) {
  struct ep *e = ud;
  ASSERT_EQ(e->made, 1);
  ASSERT_EQ(e->lost, 0);
  ASSERT_CMP(err, <, 0);
  e->errors++;
  e->last_error = err;
}

static void d_lost(aloop_datagram_t *d, int err, void *ud) {
  struct ep *e = ud;
  ASSERT_PTR_EQ(d, e->d);
  ASSERT_EQ(e->lost, 0);
  ASSERT_EQ(e->frees, 0);
  e->lost++;
  e->lost_err = err;
}

static void d_pause(aloop_datagram_t *d, void *ud) {
  struct ep *e = ud;
  ASSERT_EQ(e->pauses, e->resumes);
  e->pauses++;
}

static void d_resume(aloop_datagram_t *d, void *ud) {
  struct ep *e = ud;
  ASSERT_EQ(e->pauses, e->resumes + 1);
  e->resumes++;
}

static void ep_free(void *ud) { ((struct ep *)ud)->frees++; }

static unsigned int proto_flags; /* dproto()'s flags */

static aloop_datagram_protocol_t dproto(void) {
  aloop_datagram_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = d_made;
  p.datagram_received = d_received;
  p.error_received = d_error;
  p.connection_lost = d_lost;
  p.pause_writing = d_pause;
  p.resume_writing = d_resume;
  p.flags = proto_flags;
  return p;
}

static aloop_datagram_options_t opts(int family, int reuse_port,
                                     int allow_broadcast) {
  aloop_datagram_options_t o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.family = family;
  o.reuse_port = reuse_port;
  o.allow_broadcast = allow_broadcast;
  return o;
}

/* Creates an endpoint; returns the future's error (0 on success, then
 * e->d is set and connection_made has run). */
static int try_endpoint(struct ep *e, const char *lh, int lp, const char *rh,
                        int rp, const aloop_datagram_options_t *o) {
  loop_up();
  e->connected = rh != NULL;
  aloop_datagram_protocol_t p = dproto();
  aloop_future_t *f = NULL;
  OK(aloop_create_datagram_endpoint(loop, lh, lp, rh, rp, &p, e, ep_free, o,
                                    &f));
  ASSERT_EQ(e->made, 0);
  OK(aloop_loop_run_until_complete(loop, f));
  int err = aloop_future_exception(f);
  if (err == 0) {
    aloop_datagram_t *d = NULL;
    OK(aloop_future_result_datagram(f, &d));
    ASSERT_EQ(e->made, 1);
    ASSERT_PTR_EQ(d, e->d);
    aloop_transport_t *t = NULL;
    ASSERT_EQ(aloop_future_result_transport(f, &t), ALOOP_EINVAL);
  } else {
    run_for(0.01);
    ASSERT_EQ(e->made, 0);
    ASSERT_EQ(e->frees, 1);
  }
  OK(aloop_future_free(f));
  return err;
}

static aloop_datagram_t *endpoint(struct ep *e, const char *lh, int lp,
                                  const char *rh, int rp,
                                  const aloop_datagram_options_t *o) {
  int err = try_endpoint(e, lh, lp, rh, rp, o);
  if (err != 0)
    FAIL("create_datagram_endpoint: %s", aloop_err_name(err));
  return e->d;
}

static void close_ep(struct ep *e) {
  aloop_datagram_t *d = e->d;
  OK(aloop_datagram_close(d));
  ASSERT_EQ(aloop_datagram_is_closing(d), 1);
  /* As asyncio's: until connection_lost an endpoint without a remote
   * address still sends (here: no destination given, so EINVAL); a
   * connected one takes no send after close. */
  ASSERT_EQ(aloop_datagram_sendto(d, "x", 1, NULL, 0),
            e->connected ? ALOOP_ECLOSED : ALOOP_EINVAL);
  RUN_UNTIL(e->lost == 1);
  ASSERT_EQ(e->lost_err, 0);
  run_for(0.01);
  ASSERT_EQ(e->frees, 1);
  ASSERT_EQ(aloop_datagram_is_closing(d), ALOOP_EBADF); /* stale */
}

static void udp_echo(const char *host) {
  static struct ep srv, cli;
  memset(&srv, 0, sizeof srv);
  memset(&cli, 0, sizeof cli);
  srv.echo = 1;
  aloop_datagram_t *sd = endpoint(&srv, host, 0, NULL, 0, NULL);
  char h[128];
  int sport = 0;
  OK(aloop_datagram_get_sockname(sd, h, sizeof h, &sport));
  ASSERT_STR_EQ(h, host);
  ASSERT_CMP(sport, >, 0);
  ASSERT_EQ(aloop_datagram_get_peername(sd, h, sizeof h, &sport),
            ALOOP_ENOTCONN);
  OK(aloop_datagram_get_sockname(sd, h, sizeof h, &sport));

  /* a connected client */
  aloop_datagram_t *cd = endpoint(&cli, NULL, 0, host, sport, NULL);
  int pport = 0, cport = 0;
  OK(aloop_datagram_get_peername(cd, h, sizeof h, &pport));
  ASSERT_STR_EQ(h, host);
  ASSERT_EQ(pport, sport);
  char chost[128];
  OK(aloop_datagram_get_sockname(cd, chost, sizeof chost, &cport));
  ASSERT_CMP(cport, >, 0);
  int fd = aloop_datagram_get_fd(cd);
  ASSERT_CMP(fd, >=, 0);
  int type = 0;
  socklen_t len = sizeof type;
  ASSERT_EQ(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
  ASSERT_EQ(type, SOCK_DGRAM);

  OK(aloop_datagram_sendto(cd, "one", 3, NULL, 0));
  OK(aloop_datagram_sendto(cd, "", 0, NULL, 0)); /* an empty datagram */
  OK(aloop_datagram_sendto(cd, "three", 5, host, sport)); /* the same peer */
  /* another destination on a connected endpoint */
  ASSERT_EQ(aloop_datagram_sendto(cd, "x", 1, host, sport == 9 ? 10 : 9),
            ALOOP_EINVAL);
  RUN_UNTIL(cli.nrx == 3);
  const char *want[] = {"one", "", "three"};
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(srv.rx[i].len, strlen(want[i]));
    ASSERT(memcmp(srv.rx[i].data, want[i], srv.rx[i].len) == 0);
    ASSERT_STR_EQ(srv.rx[i].host, chost); /* the sender's address */
    ASSERT_EQ(srv.rx[i].port, cport);
    ASSERT_EQ(cli.rx[i].len, strlen(want[i]));
    ASSERT(memcmp(cli.rx[i].data, want[i], cli.rx[i].len) == 0);
    ASSERT_STR_EQ(cli.rx[i].host, host);
    ASSERT_EQ(cli.rx[i].port, sport);
  }
  ASSERT_EQ(srv.errors + cli.errors, 0);
  size_t size = 1;
  OK(aloop_datagram_get_write_buffer_size(cd, &size));
  ASSERT_EQ(size, 0);
  close_ep(&cli);
  close_ep(&srv);
  ASSERT_EQ(fd_is_open(fd), 0);
  ASSERT_EQ(aloop_loop_alive(loop), 0);
}

/* ------------------------------------------------------------------------ */

TEST(udp_echo_v4) {
  udp_echo("127.0.0.1");
  OK(aloop_loop_close(loop));
}

TEST(udp_echo_v6) {
  int s = socket(AF_INET6, SOCK_DGRAM, 0);
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0) {
    printf("skip: no IPv6 loopback\n");
    exit(77);
  }
  close(s);
  udp_echo("::1");
  OK(aloop_loop_close(loop));
}

/* An unconnected endpoint sends anywhere; names resolve without blocking. */
TEST(udp_unconnected_and_names) {
  static struct ep srv, cli;
  srv.echo = 1;
  aloop_datagram_options_t o4 = opts(AF_INET, 0, 0);
  aloop_datagram_t *sd = endpoint(&srv, "localhost", 0, NULL, 0, &o4);
  char h[128];
  int sport = 0;
  OK(aloop_datagram_get_sockname(sd, h, sizeof h, &sport));
  ASSERT_STR_EQ(h, "127.0.0.1");
  aloop_datagram_t *cd = endpoint(&cli, NULL, 0, NULL, 0, &o4); /* unbound */
  ASSERT_EQ(aloop_datagram_sendto(cd, "x", 1, NULL, 0), ALOOP_EINVAL);
  ASSERT_EQ(aloop_datagram_sendto(cd, "x", 1, "localhost", sport),
            ALOOP_EINVAL); /* sendto takes numeric addresses only */
  ASSERT_EQ(aloop_datagram_sendto(cd, "x", 1, "127.0.0.1", 70000),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_datagram_sendto(cd, "x", 1, "::1", sport), ALOOP_EINVAL);
  ASSERT_EQ(aloop_datagram_sendto(cd, NULL, 1, "127.0.0.1", sport),
            ALOOP_EINVAL);
  OK(aloop_datagram_sendto(cd, "hello", 5, "127.0.0.1", sport));
  OK(aloop_datagram_sendto(cd, "again", 5, "::ffff:127.0.0.1", sport));
  RUN_UNTIL(cli.nrx == 2);
  ASSERT_EQ(cli.rx[0].len, 5);
  ASSERT(memcmp(cli.rx[0].data, "hello", 5) == 0);
  ASSERT(memcmp(cli.rx[1].data, "again", 5) == 0);
  ASSERT_STR_EQ(cli.rx[1].host, "127.0.0.1");
  ASSERT_EQ(cli.rx[1].port, sport);
  close_ep(&cli);
  close_ep(&srv);
  OK(aloop_loop_close(loop));
}

/* A connected UDP socket to a closed port: the ICMP error arrives as
 * error_received(ALOOP_ECONNREFUSED) and the endpoint stays open. */
TEST(udp_connected_refused) {
  int port;
  close(loopback_socket(SOCK_DGRAM, &port)); /* the port is closed now */
  static struct ep e;
  aloop_datagram_t *d = endpoint(&e, NULL, 0, "127.0.0.1", port, NULL);
  double t0 = test_now();
  while (e.errors == 0) {
    if (test_now() - t0 > 10)
      FAIL("no error_received");
    OK(aloop_datagram_sendto(d, "anyone?", 7, NULL, 0));
    run_for(0.02);
  }
  ASSERT_EQ(e.last_error, ALOOP_ECONNREFUSED);
  ASSERT_EQ(aloop_datagram_is_closing(d), 0);
  ASSERT_EQ(e.lost, 0);
  close_ep(&e);
  OK(aloop_loop_close(loop));
}

TEST(broadcast_and_reuse_port) {
  static struct ep a, b, c, x;
  aloop_datagram_options_t ob = opts(0, 1, 1);
  aloop_datagram_t *da = endpoint(&a, "127.0.0.1", 0, NULL, 0, &ob);
  int fd = aloop_datagram_get_fd(da);
  int v = 0;
  socklen_t len = sizeof v;
  ASSERT_EQ(getsockopt(fd, SOL_SOCKET, SO_BROADCAST, &v, &len), 0);
  ASSERT_EQ(v, 1);
  v = 0;
  ASSERT_EQ(getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, &len), 0);
  ASSERT_EQ(v, 1);
  char h[64];
  int port = 0;
  OK(aloop_datagram_get_sockname(da, h, sizeof h, &port));
  /* a second socket on the same port thanks to SO_REUSEPORT */
  aloop_datagram_options_t orp = opts(0, 1, 0);
  aloop_datagram_t *db = endpoint(&b, "127.0.0.1", port, NULL, 0, &orp);
  v = 1;
  ASSERT_EQ(getsockopt(aloop_datagram_get_fd(db), SOL_SOCKET, SO_BROADCAST,
                       &v, &len),
            0);
  ASSERT_EQ(v, 0);
  /* without it: EADDRINUSE through the future */
  ASSERT_EQ(try_endpoint(&x, "127.0.0.1", port, NULL, 0, NULL),
            ALOOP_EADDRINUSE);
  /* with allow_broadcast the remote address is only the default
   * destination: the socket is not connected (asyncio) */
  aloop_datagram_options_t obc = opts(0, 0, 1);
  aloop_datagram_t *dc = endpoint(&c, NULL, 0, "127.0.0.1", port, &obc);
  ASSERT_EQ(aloop_datagram_get_peername(dc, h, sizeof h, &port),
            ALOOP_ENOTCONN);
  OK(aloop_datagram_sendto(dc, "via default", 11, NULL, 0));
  RUN_UNTIL(a.nrx + b.nrx == 1);
  struct rx *r = a.nrx ? &a.rx[0] : &b.rx[0];
  ASSERT_EQ(r->len, 11);
  ASSERT(memcmp(r->data, "via default", 11) == 0);
  close_ep(&a);
  close_ep(&b);
  close_ep(&c);
  OK(aloop_loop_close(loop));
}

/* ---- Unix datagram sockets ------------------------------------------------ */

static const char *sock_path(const char *name) {
  return tmp_sock_path("udp", name);
}

TEST(unix_datagram_echo) {
  const char *spath = sock_path("srv");
  const char *cpath = sock_path("cli");
  unlink(cpath);
  /* a stale socket file at the server's path is replaced */
  unlink(spath);
  stale_socket_file(spath, SOCK_DGRAM);
  static struct ep srv, cli;
  srv.echo = 1;
  aloop_datagram_options_t ou = opts(AF_UNIX, 0, 0);
  aloop_datagram_t *sd = endpoint(&srv, spath, 0, NULL, 0, &ou);
  aloop_datagram_t *cd = endpoint(&cli, cpath, 0, spath, 0, &ou);
  char h[128];
  int port = -1;
  OK(aloop_datagram_get_sockname(sd, h, sizeof h, &port));
  ASSERT_STR_EQ(h, spath);
  ASSERT_EQ(port, 0);
  OK(aloop_datagram_get_peername(cd, h, sizeof h, &port));
  ASSERT_STR_EQ(h, spath);
  OK(aloop_datagram_sendto(cd, "over unix", 9, NULL, 0));
  OK(aloop_datagram_sendto(cd, "by path", 7, spath, 0));
  RUN_UNTIL(cli.nrx == 2);
  ASSERT_EQ(cli.rx[0].len, 9);
  ASSERT(memcmp(cli.rx[0].data, "over unix", 9) == 0);
  ASSERT_STR_EQ(cli.rx[0].host, spath);
  ASSERT_STR_EQ(srv.rx[0].host, cpath);
  ASSERT_EQ(srv.rx[0].port, 0);
  ASSERT(memcmp(cli.rx[1].data, "by path", 7) == 0);
  close_ep(&cli);
  close_ep(&srv);
  unlink(spath);
  unlink(cpath);

  /* abstract names; an unbound sender is reported as "" */
  char name[64];
  snprintf(name, sizeof name, "@aloop-test-dgram-%d", (int)getpid());
  static struct ep as, ac;
  endpoint(&as, name, 0, NULL, 0, &ou);
  aloop_datagram_t *acd = endpoint(&ac, NULL, 0, name, 0, &ou);
  OK(aloop_datagram_sendto(acd, "anon", 4, NULL, 0));
  RUN_UNTIL(as.nrx == 1);
  ASSERT_STR_EQ(as.rx[0].host, "");
  ASSERT(memcmp(as.rx[0].data, "anon", 4) == 0);
  struct stat st;
  ASSERT_EQ(stat(name, &st), -1);
  close_ep(&ac);
  close_ep(&as);
  OK(aloop_loop_close(loop));
}

/* A receiver that does not read: the sender buffers, pauses the protocol,
 * and delivers everything in order once the receiver drains; close flushes
 * before connection_lost. */
TEST(unix_datagram_buffering) {
  char name[64];
  snprintf(name, sizeof name, "@aloop-test-slow-%d", (int)getpid());
  int r = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  bind_unix(r, name);
  static struct ep e;
  aloop_datagram_options_t ou = opts(AF_UNIX, 0, 0);
  aloop_datagram_t *d = endpoint(&e, NULL, 0, name, 0, &ou);
  OK(aloop_datagram_set_write_buffer_limits(d, 4096, 1024));
  size_t hi = 0, lo = 0;
  OK(aloop_datagram_get_write_buffer_limits(d, &hi, &lo));
  ASSERT_EQ(hi, 4096);
  ASSERT_EQ(lo, 1024);
  ASSERT_EQ(aloop_datagram_set_write_buffer_limits(d, 10, 20), ALOOP_EINVAL);
  const int n = 2000;
  char msg[16];
  for (int i = 0; i < n; i++) {
    int len = snprintf(msg, sizeof msg, "%05d", i);
    OK(aloop_datagram_sendto(d, msg, (size_t)len, NULL, 0));
  }
  size_t size = 0;
  OK(aloop_datagram_get_write_buffer_size(d, &size));
  ASSERT_CMP(size, >, 4096);
  ASSERT_EQ(e.pauses, 1);
  OK(aloop_datagram_close(d)); /* flushes first */
  int next = 0;
  double t0 = test_now();
  while (next < n) {
    if (test_now() - t0 > 20)
      FAIL("received %d of %d datagrams", next, n);
    OK(aloop_loop_run_once(loop, 0.001));
    char buf[32];
    ssize_t got;
    while ((got = recv(r, buf, sizeof buf, 0)) > 0) {
      int len = snprintf(msg, sizeof msg, "%05d", next);
      if (got != len || memcmp(buf, msg, (size_t)len) != 0)
        FAIL("datagram %d: got %.*s", next, (int)got, buf);
      next++;
    }
  }
  RUN_UNTIL(e.lost == 1);
  ASSERT_EQ(e.lost_err, 0);
  ASSERT_EQ(e.resumes, 1);
  close(r);
  OK(aloop_loop_close(loop));
}

TEST(abort_drops_buffer) {
  char name[64];
  snprintf(name, sizeof name, "@aloop-test-abort-%d", (int)getpid());
  int r = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  bind_unix(r, name);
  static struct ep e;
  aloop_datagram_options_t ou = opts(AF_UNIX, 0, 0);
  aloop_datagram_t *d = endpoint(&e, NULL, 0, name, 0, &ou);
  size_t size = 0;
  for (int i = 0; i < 5000 && size == 0; i++) {
    OK(aloop_datagram_sendto(d, "fill", 4, NULL, 0));
    OK(aloop_datagram_get_write_buffer_size(d, &size));
  }
  ASSERT_CMP(size, >, 0);
  OK(aloop_datagram_abort(d));
  OK(aloop_datagram_get_write_buffer_size(d, &size));
  ASSERT_EQ(size, 0);
  RUN_UNTIL(e.lost == 1);
  ASSERT_EQ(e.lost_err, 0);
  close(r);
  OK(aloop_loop_close(loop));
}

/* ---- protocol switching and errors ------------------------------------------ */

static int second_rx;
static void second_received(aloop_datagram_t *d, const char *data, size_t len,
                            const char *host, int port, void *ud) {
  ASSERT_PTR_EQ(ud, &second_rx);
  second_rx++;
}

TEST(set_protocol) {
  static struct ep srv, cli;
  aloop_datagram_t *sd = endpoint(&srv, "127.0.0.1", 0, NULL, 0, NULL);
  char h[64];
  int port = 0;
  OK(aloop_datagram_get_sockname(sd, h, sizeof h, &port));
  aloop_datagram_t *cd = endpoint(&cli, NULL, 0, "127.0.0.1", port, NULL);
  void *ud = NULL;
  OK(aloop_datagram_get_protocol(sd, &ud));
  ASSERT_PTR_EQ(ud, &srv);
  aloop_datagram_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.datagram_received = second_received;
  int frees = 0;
  OK(aloop_datagram_set_protocol(sd, &p, &second_rx, NULL));
  ASSERT_EQ(srv.frees, 1); /* the old userdata was dropped */
  OK(aloop_datagram_get_protocol(sd, &ud));
  ASSERT_PTR_EQ(ud, &second_rx);
  OK(aloop_datagram_sendto(cd, "to the new protocol", 19, NULL, 0));
  RUN_UNTIL(second_rx == 1);
  ASSERT_EQ(srv.nrx, 0);
  p.size = 0;
  ASSERT_EQ(aloop_datagram_set_protocol(sd, &p, &frees, test_count_free),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_datagram_set_protocol(NULL, &p, &frees, test_count_free),
            ALOOP_EBADF);
  ASSERT_EQ(frees, 2);
  OK(aloop_datagram_close(sd)); /* the new protocol has no connection_lost */
  close_ep(&cli);
  RUN_UNTIL(aloop_loop_alive(loop) == 0);
  OK(aloop_loop_close(loop));
}

TEST(argument_errors) {
  loop_up();
  aloop_datagram_protocol_t p = dproto();
  aloop_future_t *f = NULL;
  int frees = 0;
  /* no address and no family */
  ASSERT_EQ(aloop_create_datagram_endpoint(loop, NULL, 0, NULL, 0, &p, &frees,
                                           test_count_free, NULL, &f),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_create_datagram_endpoint(loop, "127.0.0.1", 70000, NULL, 0,
                                           &p, &frees, test_count_free, NULL,
                                           &f),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_create_datagram_endpoint(loop, "127.0.0.1", 0, NULL, 0, NULL,
                                           &frees, test_count_free, NULL, &f),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_create_datagram_endpoint(NULL, "127.0.0.1", 0, NULL, 0, &p,
                                           &frees, test_count_free, NULL, &f),
            ALOOP_EBADF);
  ASSERT_EQ(aloop_create_datagram_endpoint(loop, "127.0.0.1", 0, NULL, 0, &p,
                                           &frees, test_count_free, NULL, NULL),
            ALOOP_EINVAL);
  aloop_datagram_options_t o = opts(12345, 0, 0);
  ASSERT_EQ(aloop_create_datagram_endpoint(loop, "127.0.0.1", 0, NULL, 0, &p,
                                           &frees, test_count_free, &o, &f),
            ALOOP_EINVAL);
  o = opts(0, 0, 0);
  o.size = 0;
  ASSERT_EQ(aloop_create_datagram_endpoint(loop, "127.0.0.1", 0, NULL, 0, &p,
                                           &frees, test_count_free, &o, &f),
            ALOOP_EINVAL);
  o = opts(AF_UNIX, 0, 0);
  ASSERT_EQ(aloop_create_datagram_endpoint(loop, "", 0, NULL, 0, &p, &frees,
                                           test_count_free, &o, &f),
            ALOOP_EINVAL);
  ASSERT_EQ(frees, 8);
  /* a local IPv4 and a remote IPv6 address have no family in common */
  static struct ep e;
  ASSERT_EQ(try_endpoint(&e, "127.0.0.1", 0, "::1", 9, NULL), ALOOP_EINVAL);
  /* bad handles */
  ASSERT_EQ(aloop_datagram_sendto(NULL, "x", 1, NULL, 0), ALOOP_EBADF);
  ASSERT_EQ(aloop_datagram_close(NULL), ALOOP_EBADF);
  ASSERT_EQ(aloop_datagram_get_fd((aloop_datagram_t *)loop), ALOOP_EBADF);
  size_t size;
  ASSERT_EQ(aloop_datagram_get_write_buffer_size(NULL, &size), ALOOP_EBADF);
  aloop_datagram_t *d = NULL;
  ASSERT_EQ(aloop_future_result_datagram(NULL, &d), ALOOP_EBADF);
  ASSERT_EQ(aloop_loop_alive(loop), 0);
  OK(aloop_loop_close(loop));
}

/* ---- sends queued in the write queue (ALOOP_WRITE_SENDTO) ---------------- */

static aloop_event_t qev[64];
static unsigned char qarena[64 << 10];
static aloop_write_op_t qops[16];
static unsigned char qwarena[4096];
static size_t qn, qused;

/* Queues a send: the address length, the struct sockaddr, the datagram. */
static void q_sendto(aloop_datagram_t *d, const void *sa, uint32_t salen,
                     const void *data, size_t len) {
  ASSERT_CMP(qn, <, sizeof qops / sizeof qops[0]);
  ASSERT_CMP(qused + 4 + salen + len, <=, sizeof qwarena);
  aloop_write_op_t *op = &qops[qn++];
  op->transport = (aloop_transport_t *)d;
  op->kind = ALOOP_WRITE_SENDTO;
  op->length = (uint32_t)(4 + salen + len);
  memcpy(qwarena + qused, &salen, 4);
  if (salen)
    memcpy(qwarena + qused + 4, sa, salen);
  if (len)
    memcpy(qwarena + qused + 4 + salen, data, len);
  qused += op->length;
}

/* The records of a queued endpoint (e) seen by q_poll. */
static int q_errors, q_last_error;

static int q_poll(struct ep *e, int sport) {
  int n = aloop_loop_poll(loop, 0.05, qn);
  if (n < 0)
    return n;
  qn = qused = 0;
  for (int i = 0; i < n; i++) {
    aloop_event_t *r = &qev[i];
    ASSERT_PTR_EQ(r->userdata, e);
    ASSERT_PTR_EQ(r->transport, (aloop_transport_t *)e->d);
    if (r->kind == ALOOP_EVENT_ERROR_RECEIVED) {
      q_errors++;
      q_last_error = r->error;
      continue;
    }
    ASSERT_EQ(r->kind, ALOOP_EVENT_DATAGRAM);
    ASSERT_CMP(e->nrx, <, MAX_RX);
    struct rx *x = &e->rx[e->nrx++];
    ASSERT_CMP(r->length, <=, sizeof x->data);
    memcpy(x->data, qarena + r->offset, r->length);
    x->len = r->length;
    ASSERT_EQ(r->error, (int)sizeof(struct sockaddr_in));
    struct sockaddr_in from;
    memcpy(&from, qarena + r->offset + r->length, sizeof from);
    ASSERT_EQ(from.sin_family, AF_INET);
    x->port = ntohs(from.sin_port);
    ASSERT_EQ(x->port, sport);
  }
  return n;
}

TEST(queued_sendto) {
  static struct ep srv, cli, con;
  srv.echo = 1;
  aloop_datagram_t *sd = endpoint(&srv, "127.0.0.1", 0, NULL, 0, NULL);
  char h[128];
  int sport = 0, cport = 0;
  OK(aloop_datagram_get_sockname(sd, h, sizeof h, &sport));
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_port = htons((uint16_t)sport);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct sockaddr_in6 to6;
  memset(&to6, 0, sizeof to6);
  to6.sin6_family = AF_INET6;
  to6.sin6_port = htons((uint16_t)sport);
  to6.sin6_addr = in6addr_loopback;

  /* an unconnected client whose protocol is queued */
  proto_flags = ALOOP_PROTOCOL_QUEUED;
  aloop_datagram_options_t o4 = opts(AF_INET, 0, 0);
  aloop_datagram_t *cd = endpoint(&cli, "127.0.0.1", 0, NULL, 0, &o4);
  proto_flags = 0;
  OK(aloop_datagram_get_sockname(cd, h, sizeof h, &cport));
  OK(aloop_loop_set_event_queue(loop, qev, 64, qarena, sizeof qarena));
  OK(aloop_loop_set_write_queue(loop, qops, 16, qwarena, sizeof qwarena));

  /* in order, an empty datagram too; an IPv6 address on an IPv4 socket and
   * no destination at all: ERROR_RECEIVED(ALOOP_EINVAL) records */
  q_sendto(cd, &to, sizeof to, "one", 3);
  q_sendto(cd, &to, sizeof to, "", 0);
  q_sendto(cd, &to6, sizeof to6, "v6", 2);
  q_sendto(cd, NULL, 0, "nowhere", 7);
  q_sendto(cd, &to, sizeof to, "three", 5);
  double t0 = test_now();
  while (cli.nrx < 3) {
    if (test_now() - t0 > 10)
      FAIL("echoes: %d of 3", cli.nrx);
    OK(q_poll(&cli, sport));
  }
  const char *want[] = {"one", "", "three"};
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(cli.rx[i].len, strlen(want[i]));
    ASSERT(memcmp(cli.rx[i].data, want[i], cli.rx[i].len) == 0);
    ASSERT_EQ(srv.rx[i].port, cport); /* sent from the client's socket */
  }
  ASSERT_EQ(srv.nrx, 3);
  ASSERT_EQ(q_errors, 2);
  ASSERT_EQ(q_last_error, ALOOP_EINVAL);
  ASSERT_EQ(cli.errors, 0); /* records, not calls, inside the poll */

  /* badly framed bytes: the whole poll fails before any operation runs */
  q_sendto(cd, &to, sizeof to, "never", 5);
  q_sendto(cd, &to, sizeof to, "bad", 3);
  uint32_t big = 200; /* an address longer than the operation */
  memcpy(qwarena + qused - (4 + sizeof to + 3), &big, 4);
  ASSERT_EQ(aloop_loop_poll(loop, 0, qn), ALOOP_EINVAL);
  ASSERT_EQ(aloop_loop_flush(loop, qn), ALOOP_EINVAL);
  qn = qused = 0;
  aloop_write_op_t *op = &qops[qn++];
  op->transport = (aloop_transport_t *)cd;
  op->kind = ALOOP_WRITE_SENDTO;
  op->length = 3; /* shorter than the address length */
  qused = 3;
  ASSERT_EQ(aloop_loop_poll(loop, 0, qn), ALOOP_EINVAL);
  qn = qused = 0;
  for (int i = 0; i < 5; i++)
    OK(q_poll(&cli, sport));
  ASSERT_EQ(srv.nrx, 3);

  /* aloop_loop_flush: performed now; an error is a call of error_received */
  q_sendto(cd, &to6, sizeof to6, "v6", 2);
  q_sendto(cd, &to, sizeof to, "four", 4);
  OK(aloop_loop_flush(loop, qn));
  qn = qused = 0;
  ASSERT_EQ(cli.errors, 1);
  ASSERT_EQ(cli.last_error, ALOOP_EINVAL);
  while (cli.nrx < 4)
    OK(q_poll(&cli, sport));
  ASSERT(memcmp(cli.rx[3].data, "four", 4) == 0);

  /* a connected endpoint: no address (its remote one), or that address */
  aloop_datagram_t *cn = endpoint(&con, NULL, 0, "127.0.0.1", sport, NULL);
  q_sendto(cn, NULL, 0, "conn", 4);
  q_sendto(cn, &to, sizeof to, "same", 4);
  struct sockaddr_in other = to;
  other.sin_port = htons((uint16_t)(sport == 9 ? 10 : 9));
  q_sendto(cn, &other, sizeof other, "other", 5); /* error_received */
  OK(q_poll(&cli, sport));
  RUN_UNTIL(con.nrx == 2 && con.errors == 1);
  ASSERT(memcmp(con.rx[0].data, "conn", 4) == 0);
  ASSERT(memcmp(con.rx[1].data, "same", 4) == 0);
  ASSERT_EQ(con.last_error, ALOOP_EINVAL);
  ASSERT_EQ(srv.nrx, 6);

  /* ALOOP_WRITE_EOF on a datagram endpoint is skipped; ALOOP_WRITE_CLOSE
   * closes it after the sends before it; sends queued behind the close, and
   * later ones on the stale handle, are skipped */
  qops[qn].transport = (aloop_transport_t *)cn;
  qops[qn].kind = ALOOP_WRITE_EOF;
  qops[qn++].length = 0;
  q_sendto(cn, NULL, 0, "last", 4);
  qops[qn].transport = (aloop_transport_t *)cn;
  qops[qn].kind = ALOOP_WRITE_CLOSE;
  qops[qn++].length = 0;
  q_sendto(cn, NULL, 0, "closed", 6);
  OK(q_poll(&cli, sport));
  ASSERT_EQ(con.errors, 1);
  RUN_UNTIL(con.lost == 1);
  ASSERT_EQ(con.lost_err, 0);
  q_sendto(cn, NULL, 0, "late", 4);
  OK(q_poll(&cli, sport));
  run_for(0.05);
  ASSERT_EQ(srv.nrx, 7);
  ASSERT(memcmp(srv.rx[6].data, "last", 4) == 0);
  ASSERT_EQ(con.frees, 1);

  OK(aloop_loop_set_write_queue(loop, NULL, 0, NULL, 0));
  OK(aloop_loop_set_event_queue(loop, NULL, 0, NULL, 0));
  close_ep(&cli);
  close_ep(&srv);
  OK(aloop_loop_close(loop));
}
