/*
 * echo_client - the load client of asyncloop's benchmarks (bench/run.py).
 *
 * One process, one thread, epoll (except the threads mode). The same binary
 * drives every echo server of every implementation (Python loops, C, Node,
 * Go), so that the client's cost is the same for all of them. Loopback
 * (127.0.0.0/8) only.
 *
 *   echo_client MODE -p PORT [options]
 *
 * Modes:
 *   echo  N connections (-c), each sends a request of -s bytes, waits until
 *         the whole request came back, and sends the next one (closed loop).
 *         Reports requests/s and the p50/p99 round-trip latency.
 *         With -t CAFILE the connections use TLS (OpenSSL, SNI "localhost",
 *         the server certificate verified against CAFILE).
 *   threads  the echo workload the way a first load client is usually
 *         written: one thread per connection (-c threads), each with its own
 *         blocking socket, writing the whole request, reading until the
 *         whole echo came back, and sending the next one. Each thread wakes
 *         up for its own response, so the server sees the requests spread
 *         out rather than in bursts. Same options and JSON line as echo
 *         ("mode":"threads"; no TLS). At the end the sockets are shut down,
 *         so no thread stays blocked in a read (and every read gives up
 *         after 10 s, SO_RCVTIMEO); an error in any thread before the end
 *         fails the run as in echo.
 *   http  as echo, with a fixed HTTP/1.1 keep-alive GET as the request and
 *         the fixed response of bench/servers/py_echo_server.py's http mode
 *         ("Hello, World!", Content-Length 13) checked byte for byte (-s is
 *         ignored).
 *   bulk  one connection streaming -s byte chunks, at most -W chunks in
 *         flight; reports the echoed MB/s (1 MB = 10^6 bytes).
 *   udp   N connected UDP sockets, ping-pong of -s byte datagrams (a
 *         datagram not answered within 200 ms is sent again and counted as
 *         lost); requests/s and latency.
 *   idle  opens -c connections (at most 256 being set up at a time), sends
 *         one byte on each and waits for its echo, then prints the result
 *         line and keeps them open, idle, until its standard input reaches
 *         end of file (or -d seconds pass); then closes them.
 *
 * Options:
 *   -H HOST      server address (default 127.0.0.1; must be 127.x.y.z)
 *   -p PORT      server port (required)
 *   -c N         connections / sockets (default 1)
 *   -s BYTES     request or chunk size (default 1024)
 *   -d SECONDS   measured duration (default 2; idle: the time bound)
 *   -w SECONDS   warm-up before measuring (default 0.2)
 *   -W N         bulk: chunks in flight (default 4)
 *   -m N         stop after N measured requests (default: no bound)
 *   -t CAFILE    echo: TLS (only when built with -DWITH_TLS)
 *   (threads takes -H -p -c -s -d -w -m, as echo)
 *
 * Output: one JSON object on stdout, e.g.
 *   {"mode":"echo","conns":10,"size":1024,"tls":false,"seconds":2.000,
 *    "requests":123456,"req_per_s":61728.0,"mb_per_s":63.2,
 *    "p50_us":150.1,"p99_us":420.7,"lost":0,"errors":0}
 * On failure: {"error":"..."} on stdout, details on stderr, exit status 1.
 * Every echoed byte is checked against what was sent on a sample of the
 * requests (the first of each connection, then one in 16).
 *
 * Build: gcc -O2 -pthread -o echo_client echo_client.c [-DWITH_TLS -lssl -lcrypto]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef WITH_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#else
typedef struct ssl_st SSL;
#endif

#define MAX_EVENTS 256
#define RBUF_SIZE (256 * 1024)
#define VERIFY_EVERY 16
#define UDP_RESEND_NS (200ull * 1000 * 1000)
#ifndef IDLE_INFLIGHT
#define IDLE_INFLIGHT 256
#endif

/* ---- options and shared state ------------------------------------------ */

static const char *opt_host = "127.0.0.1";
static int opt_port = -1;
static int opt_conns = 1;
static size_t opt_size = 1024;
static double opt_duration = 2.0;
static double opt_warmup = 0.2;
static int opt_window = 4;
static long long opt_max = 0;
static const char *opt_cafile = NULL;
static const char *mode;

static struct sockaddr_in server_addr;
static unsigned char *wbuf; /* the request pattern (size bytes, or 2x for bulk) */
static const unsigned char *expect; /* echo/http: the expected response */
static size_t expect_len;
static const char http_request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
static const char http_response[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
    "Hello, World!";
static unsigned char rbuf[RBUF_SIZE];
static int ep = -1;

static uint64_t *samples;
static size_t nsamples, capsamples;
static long long measured;  /* completed requests (or bytes for bulk) after warm-up */
static long long lost;
static uint64_t t_warm_end, t_end;

#ifdef WITH_TLS
static SSL_CTX *ssl_ctx;
#endif

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "echo_client: %s\n", msg);
  /* JSON-escape the few characters that may appear. */
  printf("{\"error\":\"");
  for (const char *p = msg; *p; p++) {
    if (*p == '"' || *p == '\\')
      putchar('\\');
    if ((unsigned char)*p >= 0x20)
      putchar(*p);
  }
  printf("\"}\n");
  fflush(stdout);
  exit(1);
}

static void record(uint64_t ns) {
  if (nsamples == capsamples) {
    capsamples = capsamples ? capsamples * 2 : 65536;
    samples = realloc(samples, capsamples * sizeof *samples);
    if (!samples)
      die("out of memory");
  }
  samples[nsamples++] = ns;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double percentile_us(double q) {
  if (nsamples == 0)
    return -1;
  size_t i = (size_t)(q * (double)(nsamples - 1) + 0.5);
  if (i >= nsamples)
    i = nsamples - 1;
  return (double)samples[i] / 1000.0;
}

static void fill_pattern(unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char)((i * 31u + 7u) ^ (i >> 8));
}

static void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    die("fcntl: %s", strerror(errno));
}

static void ep_ctl(int op, int fd, uint32_t events, void *ptr) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.ptr = ptr;
  if (epoll_ctl(ep, op, fd, &ev) < 0)
    die("epoll_ctl: %s", strerror(errno));
}

/* ---- stream connections (echo, bulk) --------------------------------------- */

typedef struct conn {
  int fd;
  SSL *ssl;
  size_t sent, recvd;      /* of the current request (echo) */
  uint64_t total_sent, total_recvd; /* bulk */
  uint64_t t0;
  unsigned long long nreq;
  int verify;
  int want_out;
  int ready; /* idle: the one-byte echo came back */
} conn_t;

static int connect_blocking(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    die("socket: %s", strerror(errno));
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0)
    die("connect to %s:%d: %s", opt_host, opt_port, strerror(errno));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

#ifdef WITH_TLS
static const char *ssl_err(void) {
  static char buf[256];
  unsigned long e = ERR_get_error();
  if (!e)
    return strerror(errno);
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}
#endif

static void conn_open(conn_t *c) {
  memset(c, 0, sizeof *c);
  c->fd = connect_blocking();
  c->verify = 1;
#ifdef WITH_TLS
  if (ssl_ctx) {
    c->ssl = SSL_new(ssl_ctx);
    if (!c->ssl)
      die("SSL_new: %s", ssl_err());
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    SSL_set1_host(c->ssl, "localhost");
    SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
                             SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_connect(c->ssl) != 1)
      die("TLS handshake: %s", ssl_err());
  }
#endif
  set_nonblock(c->fd);
  ep_ctl(EPOLL_CTL_ADD, c->fd, EPOLLIN, c);
}

static void want_out(conn_t *c, int on) {
  if (c->want_out == on)
    return;
  c->want_out = on;
  ep_ctl(EPOLL_CTL_MOD, c->fd, EPOLLIN | (on ? EPOLLOUT : 0), c);
}

/* Writes up to n bytes; returns bytes written (0 = would block). */
static size_t conn_write(conn_t *c, const void *p, size_t n) {
#ifdef WITH_TLS
  if (c->ssl) {
    int r = SSL_write(c->ssl, p, (int)(n > (1u << 30) ? (1u << 30) : n));
    if (r > 0)
      return (size_t)r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
      return 0;
    die("SSL_write: %s", ssl_err());
  }
#endif
  ssize_t r = write(c->fd, p, n);
  if (r >= 0)
    return (size_t)r;
  if (errno == EAGAIN || errno == EINTR)
    return 0;
  die("write: %s", strerror(errno));
  return 0;
}

/* Reads into rbuf; returns bytes read, 0 = would block; dies on EOF. */
static size_t conn_read(conn_t *c) {
#ifdef WITH_TLS
  if (c->ssl) {
    int r = SSL_read(c->ssl, rbuf, sizeof rbuf);
    if (r > 0)
      return (size_t)r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
      return 0;
    if (e == SSL_ERROR_WANT_WRITE) {
      want_out(c, 1);
      return 0;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
      die("the server closed the TLS connection");
    die("SSL_read: %s", ssl_err());
  }
#endif
  ssize_t r = read(c->fd, rbuf, sizeof rbuf);
  if (r > 0)
    return (size_t)r;
  if (r == 0)
    die("the server closed the connection");
  if (errno == EAGAIN || errno == EINTR)
    return 0;
  die("read: %s", strerror(errno));
  return 0;
}

/* echo: send what is left of the current request. */
static void echo_flush(conn_t *c) {
  while (c->sent < opt_size) {
    size_t n = conn_write(c, wbuf + c->sent, opt_size - c->sent);
    if (n == 0) {
      want_out(c, 1);
      return;
    }
    c->sent += n;
  }
  want_out(c, 0);
}

static void echo_start(conn_t *c) {
  c->sent = c->recvd = 0;
  c->verify = (c->nreq % VERIFY_EVERY) == 0;
  c->t0 = now_ns();
  echo_flush(c);
}

static int done_measuring(uint64_t t) {
  return t >= t_end || (opt_max > 0 && measured >= opt_max);
}

static void echo_readable(conn_t *c) {
  for (;;) {
    size_t n = conn_read(c);
    if (n == 0)
      return;
    if (c->recvd + n > expect_len)
      die("received %zu bytes more than the response", c->recvd + n - expect_len);
    if (c->verify && memcmp(rbuf, expect + c->recvd, n) != 0)
      die("the response differs from what was expected (offset %zu)", c->recvd);
    c->recvd += n;
    if (c->recvd == expect_len) {
      uint64_t t = now_ns();
      c->nreq++;
      if (t >= t_warm_end && t < t_end) {
        measured++;
        record(t - c->t0);
      }
      if (done_measuring(t))
        return;
      echo_start(c);
    }
  }
}

/* echo, http, threads: the result line; t1 is when measuring stopped. */
/* The measured seconds (measuring stopped at t1, or at the end) and the
 * latency samples sorted for percentile_us. */
static double finish_measuring(uint64_t t1) {
  double secs = (double)((t1 < t_end ? t1 : t_end) - t_warm_end) / 1e9;
  qsort(samples, nsamples, sizeof *samples, cmp_u64);
  return secs > 0 ? secs : 1e-9;
}

static void print_echo_result(uint64_t t1) {
  double secs = finish_measuring(t1);
  printf("{\"mode\":\"%s\",\"conns\":%d,\"size\":%zu,\"tls\":%s,"
         "\"seconds\":%.3f,\"requests\":%lld,\"req_per_s\":%.1f,"
         "\"mb_per_s\":%.2f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"lost\":0,"
         "\"errors\":0}\n",
         mode, opt_conns, opt_size, opt_cafile ? "true" : "false", secs, measured,
         (double)measured / secs, (double)measured * (double)opt_size / secs / 1e6,
         percentile_us(0.50), percentile_us(0.99));
  fflush(stdout);
}

static void run_echo(void) {
#ifdef WITH_TLS
  if (opt_cafile) {
    ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!ssl_ctx)
      die("SSL_CTX_new: %s", ssl_err());
    SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(ssl_ctx, opt_cafile, NULL) != 1)
      die("loading CA %s: %s", opt_cafile, ssl_err());
  }
#else
  if (opt_cafile)
    die("TLS requested but this client was built without OpenSSL");
#endif
  conn_t *conns = calloc((size_t)opt_conns, sizeof *conns);
  if (!conns)
    die("out of memory");
  for (int i = 0; i < opt_conns; i++)
    conn_open(&conns[i]);
  uint64_t t0 = now_ns();
  t_warm_end = t0 + (uint64_t)(opt_warmup * 1e9);
  t_end = t_warm_end + (uint64_t)(opt_duration * 1e9);
  for (int i = 0; i < opt_conns; i++)
    echo_start(&conns[i]);
  struct epoll_event evs[MAX_EVENTS];
  for (;;) {
    uint64_t t = now_ns();
    if (done_measuring(t))
      break;
    int timeout = (int)((t_end - t) / 1000000) + 1;
    int n = epoll_wait(ep, evs, MAX_EVENTS, timeout);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die("epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        echo_readable(c);
      if (c->sent < opt_size && (evs[i].events & EPOLLOUT))
        echo_flush(c);
    }
  }
  print_echo_result(now_ns());
  for (int i = 0; i < opt_conns; i++) {
#ifdef WITH_TLS
    if (conns[i].ssl)
      SSL_free(conns[i].ssl);
#endif
    close(conns[i].fd);
  }
  free(conns);
}

/* ---- threads: a thread and a blocking socket per connection ---------------- */

#define THR_RBUF_SIZE (64 * 1024)
#define THR_STACK_SIZE (256 * 1024)

typedef struct worker {
  pthread_t tid;
  int fd;
  unsigned char *buf;
  uint64_t *samples; /* this thread's latencies, merged at the end */
  size_t nsamples, capsamples;
  long long measured;
} worker_t;

static pthread_mutex_t thr_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t thr_cv; /* signalled when a thread ends the run early */
static int thr_stop;          /* set (under thr_mu) when the run ends */
static char thr_err[256];     /* the first error, if the run failed */
static long long thr_count;   /* -m: measured requests of all threads */

static int thr_stopped(void) { return __atomic_load_n(&thr_stop, __ATOMIC_SEQ_CST); }

/* Ends the run from a thread: with an error (err != NULL), unless the run has
 * already ended (then a failing read or write is the main thread's shutdown()
 * of the sockets, not an error), or because -m was reached. */
static void thr_end(const char *err) {
  pthread_mutex_lock(&thr_mu);
  if (!thr_stop) {
    if (err)
      snprintf(thr_err, sizeof thr_err, "%s", err);
    __atomic_store_n(&thr_stop, 1, __ATOMIC_SEQ_CST);
    pthread_cond_signal(&thr_cv);
  }
  pthread_mutex_unlock(&thr_mu);
}

static void *thr_fail(const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  thr_end(msg);
  return NULL;
}

static void *thr_main(void *arg) {
  worker_t *w = arg;
  for (unsigned long long nreq = 0; !thr_stopped(); nreq++) {
    int verify = (nreq % VERIFY_EVERY) == 0;
    uint64_t t0 = now_ns();
    for (size_t sent = 0; sent < opt_size;) {
      ssize_t r = write(w->fd, wbuf + sent, opt_size - sent);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return thr_fail("write: %s", errno == EAGAIN ? "no progress within 10 s"
                                                     : strerror(errno));
      sent += (size_t)r;
    }
    for (size_t recvd = 0; recvd < expect_len;) {
      ssize_t r = read(w->fd, w->buf, THR_RBUF_SIZE);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return thr_fail("read: %s", errno == EAGAIN ? "no response within 10 s"
                                                    : strerror(errno));
      if (r == 0)
        return thr_fail("the server closed the connection");
      if (recvd + (size_t)r > expect_len)
        return thr_fail("received %zu bytes more than the response",
                        recvd + (size_t)r - expect_len);
      if (verify && memcmp(w->buf, expect + recvd, (size_t)r) != 0)
        return thr_fail("the response differs from what was expected (offset %zu)",
                        recvd);
      recvd += (size_t)r;
    }
    uint64_t t = now_ns();
    if (t >= t_end)
      break;
    if (t < t_warm_end)
      continue;
    if (opt_max > 0) {
      long long k = __atomic_add_fetch(&thr_count, 1, __ATOMIC_SEQ_CST);
      if (k > opt_max)
        break;
      if (k == opt_max)
        thr_end(NULL);
    }
    if (w->nsamples == w->capsamples) {
      w->capsamples = w->capsamples ? w->capsamples * 2 : 16384;
      uint64_t *p = realloc(w->samples, w->capsamples * sizeof *p);
      if (!p)
        return thr_fail("out of memory");
      w->samples = p;
    }
    w->samples[w->nsamples++] = t - t0;
    w->measured++;
  }
  return NULL;
}

static void run_threads(void) {
  if (opt_cafile)
    die("threads: no TLS (-t is for echo)");
  worker_t *ws = calloc((size_t)opt_conns, sizeof *ws);
  if (!ws)
    die("out of memory");
  /* Blocking sockets; connect_blocking's SO_RCVTIMEO/SO_SNDTIMEO (10 s)
   * bound every read and write. */
  for (int i = 0; i < opt_conns; i++) {
    ws[i].fd = connect_blocking();
    ws[i].buf = malloc(THR_RBUF_SIZE);
    if (!ws[i].buf)
      die("out of memory");
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&thr_cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, THR_STACK_SIZE);
  uint64_t t0 = now_ns();
  t_warm_end = t0 + (uint64_t)(opt_warmup * 1e9);
  t_end = t_warm_end + (uint64_t)(opt_duration * 1e9);
  for (int i = 0; i < opt_conns; i++) {
    int e = pthread_create(&ws[i].tid, &attr, thr_main, &ws[i]);
    if (e)
      die("pthread_create (thread %d): %s", i + 1, strerror(e));
  }
  pthread_attr_destroy(&attr);
  /* Wait for the end of the run, or for a thread to end it (-m, an error). */
  struct timespec until = {(time_t)(t_end / 1000000000ull), (long)(t_end % 1000000000ull)};
  pthread_mutex_lock(&thr_mu);
  while (!thr_stop && now_ns() < t_end)
    pthread_cond_timedwait(&thr_cv, &thr_mu, &until);
  __atomic_store_n(&thr_stop, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock(&thr_mu);
  uint64_t t1 = now_ns();
  /* Wake the threads blocked in read or write: they see thr_stop and end. */
  for (int i = 0; i < opt_conns; i++)
    shutdown(ws[i].fd, SHUT_RDWR);
  for (int i = 0; i < opt_conns; i++)
    pthread_join(ws[i].tid, NULL);
  if (thr_err[0])
    die("%s", thr_err);
  for (int i = 0; i < opt_conns; i++) {
    for (size_t k = 0; k < ws[i].nsamples; k++)
      record(ws[i].samples[k]);
    measured += ws[i].measured;
    free(ws[i].samples);
    free(ws[i].buf);
    close(ws[i].fd);
  }
  free(ws);
  print_echo_result(t1);
}

/* ---- bulk ------------------------------------------------------------------ */

static void bulk_flush(conn_t *c) {
  uint64_t limit = (uint64_t)opt_window * opt_size;
  while (c->total_sent - c->total_recvd < limit) {
    size_t off = (size_t)(c->total_sent % opt_size);
    size_t n = conn_write(c, wbuf + off, opt_size - off);
    if (n == 0) {
      want_out(c, 1);
      return;
    }
    c->total_sent += n;
  }
  want_out(c, 0);
}

static void bulk_readable(conn_t *c) {
  for (;;) {
    size_t n = conn_read(c);
    if (n == 0)
      return;
    if (c->total_recvd + n > c->total_sent)
      die("received more bytes than were sent");
    /* wbuf holds the pattern twice, so any n <= size compares at once. */
    if ((c->nreq++ % VERIFY_EVERY) == 0 && n <= opt_size &&
        memcmp(rbuf, wbuf + c->total_recvd % opt_size, n) != 0)
      die("echoed data differs from what was sent");
    c->total_recvd += n;
    uint64_t t = now_ns();
    if (t >= t_warm_end && t < t_end)
      measured += (long long)n;
  }
}

static void run_bulk(void) {
  conn_t c;
  conn_open(&c);
  uint64_t t0 = now_ns();
  t_warm_end = t0 + (uint64_t)(opt_warmup * 1e9);
  t_end = t_warm_end + (uint64_t)(opt_duration * 1e9);
  bulk_flush(&c);
  struct epoll_event evs[4];
  for (;;) {
    uint64_t t = now_ns();
    if (t >= t_end)
      break;
    int n = epoll_wait(ep, evs, 4, (int)((t_end - t) / 1000000) + 1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die("epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
      if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        bulk_readable(&c);
      bulk_flush(&c);
    }
  }
  double secs = (double)(t_end - t_warm_end) / 1e9;
  printf("{\"mode\":\"bulk\",\"conns\":1,\"size\":%zu,\"window\":%d,"
         "\"seconds\":%.3f,\"bytes\":%lld,\"mb_per_s\":%.2f,\"errors\":0}\n",
         opt_size, opt_window, secs, measured, (double)measured / secs / 1e6);
  fflush(stdout);
  close(c.fd);
}

/* ---- udp ------------------------------------------------------------------- */

typedef struct udp_sock {
  int fd;
  uint64_t seq;
  uint64_t t0, tsent;
} udp_sock_t;

static void udp_send(udp_sock_t *u) {
  memcpy(wbuf, &u->seq, sizeof u->seq);
  ssize_t r = send(u->fd, wbuf, opt_size, 0);
  if (r < 0 && errno != EAGAIN && errno != ENOBUFS && errno != ECONNREFUSED)
    die("send: %s", strerror(errno));
  u->tsent = now_ns();
}

static void run_udp(void) {
  if (opt_size < sizeof(uint64_t) || opt_size > 65000)
    die("udp: size must be 8..65000");
  udp_sock_t *socks = calloc((size_t)opt_conns, sizeof *socks);
  if (!socks)
    die("out of memory");
  for (int i = 0; i < opt_conns; i++) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
      die("socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0)
      die("connect: %s", strerror(errno));
    socks[i].fd = fd;
    socks[i].seq = ((uint64_t)i << 40) | 1;
    ep_ctl(EPOLL_CTL_ADD, fd, EPOLLIN, &socks[i]);
  }
  uint64_t t0 = now_ns();
  t_warm_end = t0 + (uint64_t)(opt_warmup * 1e9);
  t_end = t_warm_end + (uint64_t)(opt_duration * 1e9);
  for (int i = 0; i < opt_conns; i++) {
    socks[i].t0 = now_ns();
    udp_send(&socks[i]);
  }
  struct epoll_event evs[MAX_EVENTS];
  uint64_t next_check = now_ns() + UDP_RESEND_NS / 4;
  for (;;) {
    uint64_t t = now_ns();
    if (done_measuring(t))
      break;
    uint64_t wait_until = t_end < next_check ? t_end : next_check;
    int timeout = wait_until > t ? (int)((wait_until - t) / 1000000) + 1 : 0;
    int n = epoll_wait(ep, evs, MAX_EVENTS, timeout);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die("epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
      udp_sock_t *u = evs[i].data.ptr;
      for (;;) {
        ssize_t r = recv(u->fd, rbuf, sizeof rbuf, 0);
        if (r < 0) {
          if (errno == EAGAIN || errno == EINTR)
            break;
          if (errno == ECONNREFUSED)
            die("udp: the server is not listening (ECONNREFUSED)");
          die("recv: %s", strerror(errno));
        }
        uint64_t seq;
        if ((size_t)r != opt_size)
          die("udp: got a %zd byte datagram, sent %zu", r, opt_size);
        memcpy(&seq, rbuf, sizeof seq);
        if (seq != u->seq)
          continue; /* a late answer to a datagram that was sent again */
        if ((u->seq % VERIFY_EVERY) == 1 &&
            memcmp(rbuf + 8, wbuf + 8, opt_size - 8) != 0)
          die("udp: echoed data differs from what was sent");
        uint64_t tr = now_ns();
        if (tr >= t_warm_end && tr < t_end) {
          measured++;
          record(tr - u->t0);
        }
        if (done_measuring(tr))
          break;
        u->seq++;
        u->t0 = tr;
        udp_send(u);
      }
    }
    t = now_ns();
    if (t >= next_check) {
      for (int i = 0; i < opt_conns; i++)
        if (t - socks[i].tsent > UDP_RESEND_NS) {
          lost++;
          udp_send(&socks[i]);
        }
      next_check = t + UDP_RESEND_NS / 4;
    }
  }
  double secs = finish_measuring(now_ns());
  printf("{\"mode\":\"udp\",\"conns\":%d,\"size\":%zu,\"seconds\":%.3f,"
         "\"requests\":%lld,\"req_per_s\":%.1f,\"mb_per_s\":%.2f,"
         "\"p50_us\":%.1f,\"p99_us\":%.1f,\"lost\":%lld,\"errors\":0}\n",
         opt_conns, opt_size, secs, measured, (double)measured / secs,
         (double)measured * (double)opt_size / secs / 1e6, percentile_us(0.50),
         percentile_us(0.99), lost);
  fflush(stdout);
  for (int i = 0; i < opt_conns; i++)
    close(socks[i].fd);
  free(socks);
}

/* ---- idle ------------------------------------------------------------------ */

static void run_idle(void) {
  conn_t *conns = calloc((size_t)opt_conns, sizeof *conns);
  if (!conns)
    die("out of memory");
  uint64_t t0 = now_ns();
  uint64_t deadline = t0 + (uint64_t)(opt_duration * 1e9);
  int started = 0, ready = 0, inflight = 0;
  struct epoll_event evs[MAX_EVENTS];
  while (ready < opt_conns) {
    while (inflight < IDLE_INFLIGHT && started < opt_conns) {
      conn_t *c = &conns[started++];
      c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (c->fd < 0)
        die("socket (connection %d): %s", started, strerror(errno));
      if (connect(c->fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0 &&
          errno != EINPROGRESS)
        die("connect (connection %d): %s", started, strerror(errno));
      c->want_out = 1;
      ep_ctl(EPOLL_CTL_ADD, c->fd, EPOLLOUT, c);
      inflight++;
    }
    uint64_t t = now_ns();
    if (t >= deadline)
      die("idle: only %d of %d connections ready after %.1f s", ready,
          opt_conns, opt_duration);
    int n = epoll_wait(ep, evs, MAX_EVENTS, (int)((deadline - t) / 1000000) + 1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die("epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (c->want_out) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err)
          die("connect (connection %ld): %s", (long)(c - conns) + 1, strerror(err));
        if (write(c->fd, "x", 1) != 1)
          die("write: %s", strerror(errno));
        c->want_out = 0;
        ep_ctl(EPOLL_CTL_MOD, c->fd, EPOLLIN, c);
      } else {
        char b;
        ssize_t r = read(c->fd, &b, 1);
        if (r == 1 && b == 'x') {
          ep_ctl(EPOLL_CTL_DEL, c->fd, 0, c);
          c->ready = 1;
          ready++;
          inflight--;
        } else if (r == 0 || (r < 0 && errno != EAGAIN)) {
          die("idle: connection %ld closed by the server", (long)(c - conns) + 1);
        }
      }
    }
  }
  double secs = (double)(now_ns() - t0) / 1e9;
  printf("{\"mode\":\"idle\",\"conns\":%d,\"connect_seconds\":%.3f,\"errors\":0}\n",
         opt_conns, secs);
  fflush(stdout);
  /* Hold them until stdin ends (or the time bound passes). */
  for (;;) {
    uint64_t t = now_ns();
    if (t >= deadline + (uint64_t)(opt_duration * 1e9))
      break;
    struct pollfd p = {0, POLLIN, 0};
    int r = poll(&p, 1, 100);
    if (r < 0 && errno != EINTR)
      break;
    if (r > 0) {
      char b[64];
      ssize_t k = read(0, b, sizeof b);
      if (k <= 0)
        break;
    }
  }
  for (int i = 0; i < opt_conns; i++)
    close(conns[i].fd);
  free(conns);
}

/* ---- main -------------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr,
          "usage: echo_client echo|threads|http|bulk|udp|idle -p PORT [-H 127.0.0.1] [-c N] "
          "[-s BYTES] [-d SECONDS] [-w SECONDS] [-W N] [-m N] [-t CAFILE]\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2)
    usage();
  mode = argv[1];
  optind = 2;
  int ch;
  while ((ch = getopt(argc, argv, "H:p:c:s:d:w:W:m:t:")) != -1) {
    switch (ch) {
    case 'H': opt_host = optarg; break;
    case 'p': opt_port = atoi(optarg); break;
    case 'c': opt_conns = atoi(optarg); break;
    case 's': opt_size = (size_t)strtoull(optarg, NULL, 10); break;
    case 'd': opt_duration = atof(optarg); break;
    case 'w': opt_warmup = atof(optarg); break;
    case 'W': opt_window = atoi(optarg); break;
    case 'm': opt_max = atoll(optarg); break;
    case 't': opt_cafile = optarg; break;
    default: usage();
    }
  }
  if (opt_port <= 0 || opt_port > 65535 || opt_conns <= 0 || opt_size == 0 ||
      opt_duration <= 0 || opt_warmup < 0 || opt_window <= 0 ||
      opt_size > (64u << 20))
    usage();
  memset(&server_addr, 0, sizeof server_addr);
  server_addr.sin_family = AF_INET;
  server_addr.sin_port = htons((uint16_t)opt_port);
  if (inet_pton(AF_INET, opt_host, &server_addr.sin_addr) != 1 ||
      (ntohl(server_addr.sin_addr.s_addr) >> 24) != 127)
    die("host must be a loopback address 127.x.y.z, not %s", opt_host);

  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  wbuf = malloc((opt_size > sizeof http_request ? opt_size : sizeof http_request) * 2);
  if (!wbuf)
    die("out of memory");
  fill_pattern(wbuf, opt_size);
  memcpy(wbuf + opt_size, wbuf, opt_size);
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    die("epoll_create1: %s", strerror(errno));

  expect = wbuf;
  expect_len = opt_size;
  if (strcmp(mode, "http") == 0) {
    opt_size = sizeof http_request - 1;
    memcpy(wbuf, http_request, opt_size);
    expect = (const unsigned char *)http_response;
    expect_len = sizeof http_response - 1;
  }
  if (strcmp(mode, "echo") == 0 || strcmp(mode, "http") == 0)
    run_echo();
  else if (strcmp(mode, "threads") == 0)
    run_threads();
  else if (strcmp(mode, "bulk") == 0)
    run_bulk();
  else if (strcmp(mode, "udp") == 0)
    run_udp();
  else if (strcmp(mode, "idle") == 0)
    run_idle();
  else
    usage();
  return 0;
}
