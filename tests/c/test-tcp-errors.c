/*
 * test-tcp-errors.c - TCP failures over real loopback reach the right
 * callback with a clear code: connection refused, network unreachable,
 * address in use, reset by peer mid-stream (SO_LINGER 0), broken pipe
 * (write after the peer went away), half-close, and EMFILE during accept
 * (the server reports it to the exception handler, keeps serving and
 * retries, as asyncio does).
 *
 * "Unreachable" on loopback only: a TCP connect to a multicast or broadcast
 * address fails at once with ENETUNREACH on Linux (no route/netns is
 * needed); ::1 with IPv6 disabled (/proc/sys/net/ipv6/conf/lo/disable_ipv6)
 * fails with EADDRNOTAVAIL or ENETUNREACH, and is checked only when the
 * machine runs that way.
 */
#include "test.h"
#define RUN_UNTIL_STEP 0.02
#define RUN_FOR_STEP 0.005
#include "helpers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <dirent.h>

/* ---- exception handler ---------------------------------------------------- */

static int exc_calls, exc_last_error;
static aloop_server_t *exc_last_server;
static char exc_last_message[256];

static void on_exception(aloop_loop_t *l, const aloop_exception_context_t *ctx,
                         void *ud) {
  exc_calls++;
  exc_last_error = ctx->error;
  exc_last_server = ctx->server;
  snprintf(exc_last_message, sizeof exc_last_message, "%s", ctx->message);
}

/* ---- connections ------------------------------------------------------------ */

struct conn {
  aloop_transport_t *t;
  size_t len;
  char buf[1 << 16];
  int made, eofs, lost, lost_err, frees;
  int echo;      /* write back what arrives */
  int keep_open; /* eof_received's answer */
  int reply_on_eof;
  int reset_after; /* > 0: reset (SO_LINGER 0 + abort) after this many bytes */
};

static void set_linger0(aloop_transport_t *t) {
  struct linger lg = {1, 0};
  ASSERT_EQ(setsockopt(aloop_transport_get_fd(t), SOL_SOCKET, SO_LINGER, &lg,
                       sizeof lg), 0);
}

static void p_made(aloop_transport_t *t, void *ud) {
  struct conn *c = ud;
  ASSERT_EQ(c->made, 0);
  c->made++;
  c->t = t;
}
static void p_data(aloop_transport_t *t, const char *d, size_t n, void *ud) {
  struct conn *c = ud;
  ASSERT_EQ(c->lost, 0);
  size_t keep = n; /* the first 64 KiB are kept */
  if (c->len >= sizeof c->buf)
    keep = 0;
  else if (c->len + keep > sizeof c->buf)
    keep = sizeof c->buf - c->len;
  memcpy(c->buf + c->len, d, keep);
  c->len += n;
  if (c->echo)
    OK(aloop_transport_write(t, d, n));
  if (c->reset_after > 0 && c->len >= (size_t)c->reset_after) {
    c->reset_after = 0;
    set_linger0(t);
    OK(aloop_transport_abort(t));
  }
}
static void reply_later(aloop_loop_t *l, void *ud) {
  struct conn *c = ud;
  OK(aloop_transport_write(c->t, "reply", 5));
  OK(aloop_transport_write_eof(c->t));
}
static int p_eof(aloop_transport_t *t, void *ud) {
  struct conn *c = ud;
  c->eofs++;
  if (c->reply_on_eof)
    OK(aloop_call_soon(loop, reply_later, c, NULL, NULL));
  return c->keep_open;
}
static void p_lost(aloop_transport_t *t, int err, void *ud) {
  struct conn *c = ud;
  ASSERT_EQ(c->lost, 0);
  c->lost++;
  c->lost_err = err;
}
static void p_free(void *ud) { ((struct conn *)ud)->frees++; }

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

#define MAX_CONNS 64
struct server_state {
  aloop_server_t *server;
  int port, accepted, frees;
  struct conn tmpl;
  struct conn conns[MAX_CONNS];
};

static int on_connection(aloop_server_t *s, aloop_transport_t *t, void *ud) {
  struct server_state *ss = ud;
  ASSERT_CMP(ss->accepted, <, MAX_CONNS);
  struct conn *c = &ss->conns[ss->accepted++];
  *c = ss->tmpl;
  aloop_protocol_t p = protocol();
  OK(aloop_transport_set_protocol(t, &p, c, p_free));
  return 0;
}

static void server_free(void *ud) { ((struct server_state *)ud)->frees++; }

static void start_server(struct server_state *ss) {
  loop_up();
  ss->server = serve_local(on_connection, ss, server_free, NULL, &ss->port);
}

static aloop_transport_t *connect_to(int port, struct conn *c) {
  aloop_protocol_t p = protocol();
  aloop_future_t *f;
  OK(aloop_create_connection(loop, "127.0.0.1", port, &p, c, p_free, NULL, &f));
  return await_transport(f);
}

static void close_server(struct server_state *ss) {
  OK(aloop_server_free(ss->server));
  run_for(0.02);
  ASSERT_EQ(ss->frees, 1);
}

/* A connect that must fail with `want` (or `want2`): no protocol callback,
 * free_cb once. Returns the code. */
static int connect_fails(const char *host, int port,
                         const aloop_connect_options_t *o, int want, int want2) {
  loop_up();
  struct conn c = {0};
  aloop_protocol_t p = protocol();
  aloop_future_t *f;
  OK(aloop_create_connection(loop, host, port, &p, &c, p_free, o, &f));
  await_done(f);
  int e = aloop_future_exception(f);
  char msg[512] = "";
  ASSERT_CMP(aloop_future_error_message(f, msg, sizeof msg), >, 0);
  if (e != want && e != want2)
    FAIL("connect %s:%d: %s (%s), want %s", host ? host : "NULL", port,
         aloop_err_name(e), msg, aloop_err_name(want));
  run_for(0.01);
  ASSERT_EQ(c.made, 0);
  ASSERT_EQ(c.lost, 0);
  ASSERT_EQ(c.frees, 1);
  OK(aloop_future_free(f));
  return e;
}

/* A 127.0.0.1 port nobody listens on (bound, so it stays unused). */
static int closed_port(int *keep) {
  int port;
  *keep = loopback_socket(SOCK_STREAM, &port);
  return port;
}

/* ------------------------------------------------------------------------ */

TEST(connection_refused) {
  int keep;
  int port = closed_port(&keep);
  connect_fails("127.0.0.1", port, NULL, ALOOP_ECONNREFUSED, 0);
  /* no host: both loopback addresses are tried, the error names them */
  loop_up();
  struct conn c = {0};
  aloop_protocol_t p = protocol();
  aloop_future_t *f;
  OK(aloop_create_connection(loop, NULL, port, &p, &c, p_free, NULL, &f));
  await_done(f);
  ASSERT_EQ(aloop_future_exception(f), ALOOP_ECONNREFUSED);
  char msg[512];
  aloop_future_error_message(f, msg, sizeof msg);
  ASSERT(strstr(msg, "127.0.0.1") != NULL);
  OK(aloop_future_free(f));
  /* the same through sock_connect */
  int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  OK(aloop_sock_connect(loop, s, "127.0.0.1", port, &f));
  await_done(f);
  ASSERT_EQ(aloop_future_exception(f), ALOOP_ECONNREFUSED);
  OK(aloop_future_free(f));
  close(s);
  close(keep);
  run_for(0.01);
  ASSERT_EQ(c.frees, 1);
  OK(aloop_loop_close(loop));
}

TEST(network_unreachable) {
  /* multicast and broadcast destinations: ENETUNREACH at once */
  connect_fails("224.0.0.1", 80, NULL, ALOOP_ENETUNREACH, 0);
  connect_fails("255.255.255.255", 80, NULL, ALOOP_ENETUNREACH, 0);
  int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  aloop_future_t *f;
  OK(aloop_sock_connect(loop, s, "224.0.0.1", 80, &f));
  await_done(f);
  ASSERT_EQ(aloop_future_exception(f), ALOOP_ENETUNREACH);
  OK(aloop_future_free(f));
  close(s);
  /* ::1 with IPv6 disabled on lo; a closed port when it is enabled */
  int keep;
  int port = closed_port(&keep);
  FILE *fp = fopen("/proc/sys/net/ipv6/conf/lo/disable_ipv6", "r");
  int disabled = 0;
  if (fp) {
    if (fscanf(fp, "%d", &disabled) != 1)
      disabled = 0;
    fclose(fp);
  }
  int s6 = socket(AF_INET6, SOCK_STREAM, 0);
  if (s6 < 0) {
    printf("no IPv6 sockets: skipping ::1\n");
  } else if (disabled) {
    close(s6);
    connect_fails("::1", port, NULL, ALOOP_EADDRNOTAVAIL, ALOOP_ENETUNREACH);
  } else {
    close(s6);
    connect_fails("::1", port, NULL, ALOOP_ECONNREFUSED, 0);
  }
  close(keep);
  OK(aloop_loop_close(loop));
}

TEST(address_in_use) {
  static struct server_state a, b;
  start_server(&a);
  /* a second server on the same port, without reuse_port */
  aloop_future_t *f;
  aloop_server_options_t o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.reuse_address = -1;
  o.start_serving = -1;
  OK(aloop_create_server(loop, "127.0.0.1", a.port, on_connection, &b,
                         server_free, &o, &f));
  await_done(f);
  ASSERT_EQ(aloop_future_exception(f), ALOOP_EADDRINUSE);
  char msg[256];
  ASSERT_CMP(aloop_future_error_message(f, msg, sizeof msg), >, 0);
  OK(aloop_future_free(f));
  run_for(0.01);
  ASSERT_EQ(b.frees, 1); /* the failed server's userdata */
  /* sock_* view: bind() of a raw socket fails the same way */
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = loopback_addr(a.port);
  ASSERT_EQ(bind(s, (struct sockaddr *)&sa, sizeof sa), -1);
  ASSERT_EQ(-errno, ALOOP_EADDRINUSE);
  close(s);
  close_server(&a);

  /* with reuse_port on both, two servers share the port */
  static struct server_state c, d;
  o.reuse_port = 1;
  loop_up();
  c.server = serve_local(on_connection, &c, server_free, &o, &c.port);
  OK(aloop_create_server(loop, "127.0.0.1", c.port, on_connection, &d, server_free, &o, &f));
  d.server = await_server(f);
  close_server(&c);
  close_server(&d);
  OK(aloop_loop_close(loop));
}

/* The server streams to the client, then resets the connection (SO_LINGER
 * 0): the client gets its data, then connection_lost(ECONNRESET). Connection
 * errors are not reported to the exception handler (asyncio logs them only
 * in debug mode). */
static void stream_tick(aloop_loop_t *l, void *ud);
static int ticks_left;
static aloop_transport_t *streaming;

static void stream_tick(aloop_loop_t *l, void *ud) {
  static char chunk[16384];
  memset(chunk, 'r', sizeof chunk);
  if (ticks_left-- > 0) {
    OK(aloop_transport_write(streaming, chunk, sizeof chunk));
    OK(aloop_call_later(loop, 0.001, stream_tick, NULL, NULL, NULL));
  } else {
    set_linger0(streaming);
    OK(aloop_transport_abort(streaming));
  }
}

TEST(reset_by_peer_mid_stream) {
  static struct server_state ss;
  start_server(&ss);
  OK(aloop_loop_set_exception_handler(loop, on_exception, NULL, NULL));
  struct conn *c = calloc(1, sizeof *c);
  connect_to(ss.port, c);
  RUN_UNTIL(ss.accepted == 1 && ss.conns[0].made == 1);
  streaming = ss.conns[0].t;
  ticks_left = 20;
  OK(aloop_call_soon(loop, stream_tick, NULL, NULL, NULL));
  RUN_UNTIL(c->lost == 1);
  ASSERT_EQ(c->lost_err, ALOOP_ECONNRESET);
  ASSERT_CMP(c->len, >, 0);
  ASSERT_EQ(c->eofs, 0);
  RUN_UNTIL(ss.conns[0].lost == 1);
  ASSERT_EQ(ss.conns[0].lost_err, 0); /* abort is a clean local close */
  run_for(0.01);
  ASSERT_EQ(c->frees, 1);
  ASSERT_EQ(exc_calls, 0);
  /* the client streams while the server resets after 200 KiB */
  struct conn *c2 = calloc(1, sizeof *c2);
  ss.tmpl.reset_after = 200000;
  aloop_transport_t *t = connect_to(ss.port, c2);
  static char big[1 << 20];
  OK(aloop_transport_write(t, big, sizeof big));
  RUN_UNTIL(c2->lost == 1);
  if (c2->lost_err != ALOOP_ECONNRESET && c2->lost_err != ALOOP_EPIPE)
    FAIL("writer's connection_lost(%s)", aloop_err_name(c2->lost_err));
  ASSERT_EQ(exc_calls, 0);
  close_server(&ss);
  free(c);
  free(c2);
  OK(aloop_loop_close(loop));
}

/* Writing after the peer went away: connection_lost(EPIPE or ECONNRESET),
 * never SIGPIPE; write itself returns 0 (the error goes to the protocol, as
 * asyncio), later writes ALOOP_ECLOSED. */
TEST(broken_pipe) {
  ASSERT(signal(SIGPIPE, SIG_DFL) != SIG_ERR); /* a SIGPIPE would kill us */
  static struct server_state ss;
  start_server(&ss);
  OK(aloop_loop_set_exception_handler(loop, on_exception, NULL, NULL));
  /* 1: the peer resets while we do not read */
  struct conn *c = calloc(1, sizeof *c);
  aloop_transport_t *t = connect_to(ss.port, c);
  RUN_UNTIL(ss.accepted == 1);
  OK(aloop_transport_pause_reading(t));
  set_linger0(ss.conns[0].t);
  OK(aloop_transport_abort(ss.conns[0].t));
  run_for(0.05);
  ASSERT_EQ(c->lost, 0); /* not reading: not noticed yet */
  OK(aloop_transport_write(t, "after reset", 11));
  RUN_UNTIL(c->lost == 1);
  if (c->lost_err != ALOOP_EPIPE && c->lost_err != ALOOP_ECONNRESET)
    FAIL("connection_lost(%s)", aloop_err_name(c->lost_err));
  ASSERT_EQ(aloop_transport_write(t, "x", 1), ALOOP_EBADF); /* stale handle */

  /* 2: the peer closed normally (FIN); we keep our side open and write:
   * the first write draws an RST, a later one fails */
  struct conn *c2 = calloc(1, sizeof *c2);
  c2->keep_open = 1;
  t = connect_to(ss.port, c2);
  RUN_UNTIL(ss.accepted == 2 && ss.conns[1].made == 1);
  OK(aloop_transport_close(ss.conns[1].t));
  RUN_UNTIL(c2->eofs == 1);
  ASSERT_EQ(c2->lost, 0); /* half-open: eof_received returned 1 */
  for (int i = 0; i < 50 && !c2->lost; i++) {
    int rc = aloop_transport_write(t, "more", 4);
    ASSERT(rc == 0 || rc == ALOOP_ECLOSED);
    run_for(0.01);
  }
  RUN_UNTIL(c2->lost == 1);
  if (c2->lost_err != ALOOP_EPIPE && c2->lost_err != ALOOP_ECONNRESET)
    FAIL("connection_lost(%s)", aloop_err_name(c2->lost_err));
  ASSERT_EQ(exc_calls, 0);
  close_server(&ss);
  run_for(0.01);
  ASSERT_EQ(c->frees, 1);
  ASSERT_EQ(c2->frees, 1);
  free(c);
  free(c2);
  OK(aloop_loop_close(loop));
}

TEST(half_close_both_ways) {
  static struct server_state ss;
  ss.tmpl.keep_open = 1;
  ss.tmpl.reply_on_eof = 1;
  start_server(&ss);
  struct conn c = {0};
  aloop_transport_t *t = connect_to(ss.port, &c);
  ASSERT_EQ(aloop_transport_can_write_eof(t), 1);
  OK(aloop_transport_write(t, "request", 7));
  OK(aloop_transport_write_eof(t));
  ASSERT_EQ(aloop_transport_write(t, "late", 4), ALOOP_EPIPE);
  ASSERT_EQ(aloop_transport_is_closing(t), 0);
  /* the server read "request" + EOF, replied, then shut down its side: we
   * read "reply" + EOF and close (eof_received returns 0) */
  RUN_UNTIL(c.lost == 1);
  /* the server's side stays open (both directions shut down) until it
   * closes, as in asyncio */
  run_for(0.05);
  ASSERT_EQ(ss.conns[0].lost, 0);
  ASSERT_EQ(aloop_transport_is_closing(ss.conns[0].t), 0);
  OK(aloop_transport_close(ss.conns[0].t));
  RUN_UNTIL(ss.conns[0].lost == 1);
  ASSERT_EQ(ss.conns[0].len, 7);
  ASSERT(memcmp(ss.conns[0].buf, "request", 7) == 0);
  ASSERT_EQ(ss.conns[0].eofs, 1);
  ASSERT_EQ(c.len, 5);
  ASSERT(memcmp(c.buf, "reply", 5) == 0);
  ASSERT_EQ(c.eofs, 1);
  ASSERT_EQ(c.lost_err, 0);
  ASSERT_EQ(ss.conns[0].lost_err, 0);
  close_server(&ss);
  OK(aloop_loop_close(loop));
}

/* ---- EMFILE during accept -------------------------------------------------- */

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  ASSERT(d != NULL);
  int n = 0;
  while (readdir(d))
    n++;
  closedir(d);
  return n - 3; /* ".", "..", the DIR's own fd */
}

/* A raw client: non-blocking connect to 127.0.0.1:port. */
static int raw_connect(int port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0)
    return -errno;
  struct sockaddr_in a = loopback_addr(port);
  if (connect(s, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS)
    FAIL("connect: %s", strerror(errno));
  return s;
}

/* Sends msg on a raw client and runs the loop until it is echoed. */
static void raw_echo(int s, const char *msg) {
  size_t n = strlen(msg);
  ASSERT_EQ(send(s, msg, n, MSG_NOSIGNAL), (ssize_t)n);
  char buf[64];
  size_t have = 0;
  double t0 = test_now();
  while (have < n) {
    if (test_now() - t0 > 10)
      FAIL("no echo for %s", msg);
    OK(aloop_loop_run_once(loop, 0.01));
    ssize_t r = recv(s, buf + have, sizeof buf - have, MSG_DONTWAIT);
    if (r > 0)
      have += (size_t)r;
    else if (r == 0)
      FAIL("EOF instead of the echo of %s", msg);
  }
  ASSERT(memcmp(buf, msg, n) == 0);
}

TEST(emfile_during_accept) {
  static struct server_state ss;
  ss.tmpl.echo = 1;
  start_server(&ss);
  OK(aloop_loop_set_exception_handler(loop, on_exception, NULL, NULL));
  struct rlimit old, lim;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  lim = old;
  lim.rlim_cur = (rlim_t)count_fds() + 40;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);

  /* a few working connections */
  int clients[8];
  for (int i = 0; i < 8; i++) {
    clients[i] = raw_connect(ss.port);
    ASSERT(clients[i] >= 0);
    RUN_UNTIL(ss.accepted == i + 1);
  }
  /* use up every other fd */
  int fillers[64], nfill = 0;
  for (;;) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      ASSERT_EQ(errno, EMFILE);
      break;
    }
    ASSERT_CMP(nfill, <, 64);
    fillers[nfill++] = fd;
  }
  ASSERT_CMP(nfill, >, 0);
  /* one fd for a new client: the server has none left to accept it */
  close(fillers[--nfill]);
  int late = raw_connect(ss.port);
  ASSERT(late >= 0);
  RUN_UNTIL(exc_calls >= 1);
  ASSERT_EQ(exc_last_error, ALOOP_EMFILE);
  ASSERT_PTR_EQ(exc_last_server, ss.server);
  ASSERT(strstr(exc_last_message, "accept") != NULL);
  ASSERT_EQ(ss.accepted, 8);
  ASSERT_EQ(aloop_server_is_serving(ss.server), 1); /* keeps serving */
  /* existing connections still work meanwhile */
  raw_echo(clients[0], "still here");
  int calls = exc_calls;
  run_for(0.3);
  ASSERT_EQ(exc_calls, calls); /* it backs off instead of spinning */

  /* free fds: the server retries (after asyncio's 1 s) and accepts */
  while (nfill > 0)
    close(fillers[--nfill]);
  RUN_UNTIL(ss.accepted == 9);
  raw_echo(late, "accepted later");
  raw_echo(clients[7], "and the others");

  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  close(late);
  for (int i = 0; i < 8; i++)
    close(clients[i]);
  RUN_UNTIL(ss.conns[8].lost == 1 && ss.conns[0].lost == 1);
  close_server(&ss);
  OK(aloop_loop_close(loop));
}

/* ---- every resolved address is tried; Happy Eyeballs; sock= ------------- */

/* Listens on [::1]:port with a full accept queue: a new connection to it
 * hangs (its SYNs are dropped). Returns the fds to close, or -1 without
 * IPv6. */
static int hanging_listener6(int port, int *client) {
  int l = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l < 0)
    return -1;
  int one = 1;
  setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  struct sockaddr_in6 a;
  memset(&a, 0, sizeof a);
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  a.sin6_addr = in6addr_loopback;
  if (bind(l, (struct sockaddr *)&a, sizeof a) != 0) {
    close(l);
    return -1;
  }
  ASSERT_EQ(listen(l, 0), 0);
  *client = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(connect(*client, (struct sockaddr *)&a, sizeof a), 0); /* fills it */
  return l;
}

TEST(happy_eyeballs) {
  static struct server_state ss;
  ss.tmpl.echo = 1;
  start_server(&ss); /* 127.0.0.1:port */
  int filler, hang = hanging_listener6(ss.port, &filler);
  if (hang < 0) {
    printf("no IPv6 loopback: skipped\n");
    exit(77);
  }
  /* host NULL = the loopback addresses, ::1 first (as getaddrinfo). One
   * after another (the default): stuck on ::1. */
  struct conn c1 = {0};
  aloop_protocol_t p = protocol();
  aloop_future_t *f;
  OK(aloop_create_connection(loop, NULL, ss.port, &p, &c1, p_free, NULL, &f));
  run_for(0.3);
  ASSERT_EQ(aloop_future_done(f), 0);
  ASSERT_EQ(aloop_future_cancel(f), 1);
  OK(aloop_future_free(f));
  run_for(0.01);
  ASSERT_EQ(c1.frees, 1);
  ASSERT_EQ(c1.made, 0);

  /* Happy Eyeballs: 127.0.0.1 starts 50 ms later and wins; the losing
   * attempt is closed */
  int fds_before = count_fds();
  aloop_connect_options_t o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.happy_eyeballs_delay = 0.05;
  struct conn c2 = {0};
  double t0 = test_now();
  OK(aloop_create_connection(loop, NULL, ss.port, &p, &c2, p_free, &o, &f));
  aloop_transport_t *t = await_transport(f);
  printf("connected after %.3f s\n", test_now() - t0);
  char host[64];
  int port;
  OK(aloop_transport_get_peername(t, host, sizeof host, &port));
  ASSERT_STR_EQ(host, "127.0.0.1");
  ASSERT_EQ(port, ss.port);
  RUN_UNTIL(ss.accepted == 1);
  ASSERT_EQ(count_fds(), fds_before + 2); /* ours + the accepted one */
  OK(aloop_transport_write(t, "eyeballs", 8));
  RUN_UNTIL(c2.len == 8);
  ASSERT(memcmp(c2.buf, "eyeballs", 8) == 0);
  OK(aloop_transport_close(t));

  /* family AF_INET: ::1 is never tried */
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.family = AF_INET;
  struct conn c3 = {0};
  OK(aloop_create_connection(loop, NULL, ss.port, &p, &c3, p_free, &o, &f));
  t = await_transport(f);
  OK(aloop_transport_close(t));

  /* an options struct of the first version: the appended fields are not
   * read (here they would say: wrap fd 0) */
  memset(&o, 0, sizeof o);
  o.size = offsetof(aloop_connect_options_t, happy_eyeballs_delay);
  o.has_sock = 1;
  o.sock = 0;
  o.family = AF_INET;
  struct conn c4 = {0};
  OK(aloop_create_connection(loop, "127.0.0.1", ss.port, &p, &c4, p_free, &o, &f));
  t = await_transport(f);
  ASSERT_CMP(aloop_transport_get_fd(t), >, 2);
  OK(aloop_transport_close(t));
  RUN_UNTIL(c2.lost == 1 && c3.lost == 1 && c4.lost == 1);
  close(filler);
  close(hang);
  close_server(&ss);
  OK(aloop_loop_close(loop));
}

TEST(connect_existing_socket) {
  static struct server_state ss;
  ss.tmpl.echo = 1;
  start_server(&ss);
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); /* blocking */
  struct sockaddr_in a = loopback_addr(ss.port);
  ASSERT_EQ(connect(s, (struct sockaddr *)&a, sizeof a), 0);
  aloop_connect_options_t o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.has_sock = 1;
  o.sock = s;
  aloop_protocol_t p = protocol();
  struct conn c = {0}, bad = {0};
  aloop_future_t *f;
  /* with a host: invalid, and free_cb runs */
  ASSERT_EQ(aloop_create_connection(loop, "127.0.0.1", ss.port, &p, &bad, p_free, &o, &f),
            ALOOP_EINVAL);
  ASSERT_EQ(bad.frees, 1);
  OK(aloop_create_connection(loop, NULL, 0, &p, &c, p_free, &o, &f));
  aloop_transport_t *t = await_transport(f);
  ASSERT_EQ(aloop_transport_get_fd(t), s);
  ASSERT(fcntl(s, F_GETFL) & O_NONBLOCK); /* made non-blocking */
  OK(aloop_transport_write(t, "wrapped", 7));
  RUN_UNTIL(c.len == 7);
  /* the same fd again: in use */
  struct conn c2 = {0};
  ASSERT_EQ(aloop_create_connection(loop, NULL, 0, &p, &c2, p_free, &o, &f), ALOOP_EBUSY);
  OK(aloop_transport_close(t));
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(fcntl(s, F_GETFD), -1); /* the transport closed it */
  /* not a stream socket */
  int d = socket(AF_INET, SOCK_DGRAM, 0);
  o.sock = d;
  ASSERT_EQ(aloop_create_connection(loop, NULL, 0, &p, &c2, p_free, &o, &f), ALOOP_EINVAL);
  close(d);
  close_server(&ss);
  OK(aloop_loop_close(loop));
}

TEST(server_hosts_and_socket) {
  static struct server_state ss;
  ss.tmpl.echo = 1;
  loop_up();
  const char *hosts[] = {"127.0.0.1", "::1", "127.0.0.1", NULL};
  aloop_server_options_t o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.reuse_address = -1;
  o.start_serving = -1;
  o.hosts = hosts;
  aloop_future_t *f;
  /* host and hosts together: invalid */
  ASSERT_EQ(aloop_create_server(loop, "127.0.0.1", 0, on_connection, &ss, NULL, &o, &f),
            ALOOP_EINVAL);
  OK(aloop_create_server(loop, NULL, 0, on_connection, &ss, server_free, &o, &f));
  ss.server = await_server(f);
  ASSERT_EQ(aloop_server_socket_count(ss.server), 2); /* duplicates dropped */
  for (int i = 0; i < 2; i++) {
    char host[64];
    int port;
    OK(aloop_server_sockname(ss.server, i, host, sizeof host, &port));
    ASSERT(strcmp(host, "127.0.0.1") == 0 || strcmp(host, "::1") == 0);
    struct conn c = {0};
    aloop_protocol_t p = protocol();
    OK(aloop_create_connection(loop, host, port, &p, &c, p_free, NULL, &f));
    aloop_transport_t *t = await_transport(f);
    OK(aloop_transport_write(t, "hi", 2));
    RUN_UNTIL(c.len == 2);
    OK(aloop_transport_close(t));
    RUN_UNTIL(c.lost == 1);
  }
  close_server(&ss);

  /* an existing bound socket */
  static struct server_state s2;
  s2.tmpl.echo = 1;
  int ls = loopback_socket(SOCK_STREAM | SOCK_CLOEXEC, NULL);
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.reuse_address = -1;
  o.start_serving = -1;
  o.has_sock = 1;
  o.sock = ls;
  OK(aloop_create_server(loop, NULL, 0, on_connection, &s2, server_free, &o, &f));
  s2.server = await_server(f);
  ASSERT_EQ(aloop_server_socket_fd(s2.server, 0), ls);
  OK(aloop_server_sockname(s2.server, 0, NULL, 0, &s2.port));
  int c = raw_connect(s2.port);
  raw_echo(c, "on the given socket");
  close(c);
  RUN_UNTIL(s2.accepted == 1 && s2.conns[0].lost == 1);
  close_server(&s2);
  ASSERT_EQ(fcntl(ls, F_GETFD), -1); /* the server closed it */
  OK(aloop_loop_close(loop));
}

/* A size-prefixed options struct is read only as far as its size covers
 * whole fields: what lies beyond is never read, even when it is garbage
 * (here: a wild hosts pointer, has_sock set, a TLS handle). */
TEST(server_options_read_by_size) {
  static struct server_state ss[3];
  loop_up();
  aloop_server_options_t o;
  /* the struct's first version: hosts, family, has_sock, tls beyond it */
  memset(&o, 0xa5, sizeof o);
  o.size = offsetof(aloop_server_options_t, hosts);
  o.backlog = 0;
  o.reuse_address = -1;
  o.reuse_port = 0;
  o.start_serving = -1;
  ss[0].server = serve_local(on_connection, &ss[0], server_free, &o, &ss[0].port);
  ASSERT_EQ(aloop_server_is_serving(ss[0].server), 1);
  ASSERT_EQ(aloop_server_socket_count(ss[0].server), 1);
  /* a size that ends inside start_serving: the field is not read */
  memset(&o, 0, sizeof o);
  o.size = offsetof(aloop_server_options_t, start_serving) + 2;
  o.start_serving = 0;
  ss[1].server = serve_local(on_connection, &ss[1], server_free, &o, &ss[1].port);
  ASSERT_EQ(aloop_server_is_serving(ss[1].server), 1);
  /* covering it whole: start_serving = 0 is honoured */
  o.size = offsetof(aloop_server_options_t, start_serving) + sizeof o.start_serving;
  ss[2].server = serve_local(on_connection, &ss[2], server_free, &o, &ss[2].port);
  ASSERT_EQ(aloop_server_is_serving(ss[2].server), 0);
  for (int i = 0; i < 3; i++)
    close_server(&ss[i]);
  OK(aloop_loop_close(loop));
}
