/*
 * soak.c - `make soak`: minutes of mixed load on one loop over loopback, with
 * a leak check by trend.
 *
 * Load (all at once, on one loop in this thread):
 *  - TCP: an echo server; CLIENTS clients that connect, exchange 1-20
 *    messages of 1 B - 64 KiB, close, and connect again (connection churn);
 *  - TLS: the same over TLS 1.3 with the fixtures of tests/c/fixtures
 *    (TLS_CLIENTS clients: every connection is a full handshake);
 *  - UDP: an echo endpoint; UDP_CLIENTS connected endpoints that ping-pong
 *    datagrams and are closed and made again every 200 datagrams;
 *  - subprocesses: /bin/cat, fed 64 KiB on stdin and read back, one after
 *    another (2 at a time);
 *  - timers: TIMERS timers that fire after 0-20 ms and set themselves
 *    again, cancelling and replacing one another, and bursts of call_soon.
 * Every second it samples the process's RSS (/proc/self/statm), its open
 * fds (/proc/self/fd) and the library's live handles
 * (aloop_live_handles). At the end it stops the load, closes everything,
 * and fails (exit 1) when
 *  - over the second half of the run (the first half is warm-up: Go's heap
 *    grows to its steady size, caches fill), the least-squares slope of a
 *    metric exceeds its threshold (see thresholds below), or
 *  - after everything was closed, live handles or fds are not back to what
 *    they were before the load, or the loop cannot close.
 *
 * Usage: soak [--minutes M | --seconds S] [--csv FILE]
 *             [--leak handle|fd|mem]   (self-test: leak a future or 16 KiB
 *                                       per connection, or an fd per 50
 *                                       connections; the run must fail)
 * SOAK_MINUTES in the environment is the default for --minutes (5).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "asyncloop.h"

#ifndef ALOOP_FIXTURES_DIR
#define ALOOP_FIXTURES_DIR "tests/c/fixtures"
#endif

#define CLIENTS 16
#define TLS_CLIENTS 2
#define UDP_CLIENTS 4
#define PROCS 2
#define TIMERS 64

/* Floors of the second half's least-squares slope, per minute (the limit
 * is the floor or 4 standard errors, whichever is larger). Each is far
 * above what clean runs measure and far below what a leak of one object
 * per connection gives at this load (over 100,000 connections a minute);
 * docs/architecture.md ("Checks") has the measurements. */
#define RSS_SLOPE_MAX_MIB 2.0   /* MiB per minute */
#define FD_SLOPE_MAX 2.0        /* fds per minute */
#define HANDLE_SLOPE_MAX 5.0    /* live handles per minute */

static aloop_loop_t *loop;
static int stopping;
static const char *leak_mode;
static int leaked_fds[1 << 16];
static size_t nleaked_fds;

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
  va_list ap;
  char msg[512] = "";
  fprintf(stderr, "soak: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  aloop_last_error(msg, sizeof msg);
  fprintf(stderr, " (%s)\n", msg);
  exit(1);
}

#define OK(call)                                                               \
  do {                                                                         \
    int rc_ = (call);                                                          \
    if (rc_ < 0)                                                               \
      die("%s failed: %s", #call, aloop_err_name(rc_));                        \
  } while (0)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)rng;
}

/* ---- counters ------------------------------------------------------------ */

static struct {
  long conns, tls_conns, bytes, datagrams, procs, timers, soons, failures;
} st;

/* A self-test leak, one per connection. */
static void leak_one(void) {
  if (!leak_mode)
    return;
  if (!strcmp(leak_mode, "handle")) {
    aloop_future_t *f;
    aloop_future_new(loop, &f); /* never freed */
  } else if (!strcmp(leak_mode, "fd")) {
    static int k; /* one in 50: one per connection exhausts RLIMIT_NOFILE */
    if (k++ % 50)
      return;
    int fd = dup(0);
    if (fd >= 0 && nleaked_fds < sizeof leaked_fds / sizeof leaked_fds[0])
      leaked_fds[nleaked_fds++] = fd;
  } else if (!strcmp(leak_mode, "mem")) {
    char *p = malloc(16384);
    memset(p, 1, 16384);
    __asm__ volatile("" : : "r"(p) : "memory"); /* never freed */
  }
}

/* ---- stream echo server (TCP and TLS) ------------------------------------ */

static void echo_data(aloop_transport_t *t, const char *d, size_t n, void *ud) {
  if (aloop_transport_write(t, d, n) < 0)
    st.failures++;
}

static int on_connection(aloop_server_t *s, aloop_transport_t *t, void *ud) {
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.data_received = echo_data;
  return aloop_transport_set_protocol(t, &p, NULL, NULL);
}

static aloop_server_t *serve(aloop_tls_config_t *tls, int *port) {
  aloop_server_options_t o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.reuse_address = -1;
  o.start_serving = -1;
  o.tls = tls;
  aloop_future_t *f;
  OK(aloop_create_server(loop, "127.0.0.1", 0, on_connection, NULL, NULL, &o, &f));
  OK(aloop_loop_run_until_complete(loop, f));
  aloop_server_t *s = NULL;
  OK(aloop_future_result_server(f, &s));
  OK(aloop_future_free(f));
  OK(aloop_server_sockname(s, 0, NULL, 0, port));
  return s;
}

/* ---- stream clients ------------------------------------------------------- */

struct client {
  int tls;
  aloop_transport_t *t;
  size_t sent, recvd;
  int msgs_left;
  int busy; /* connecting or connected */
};

static struct client clients[CLIENTS + TLS_CLIENTS];
static int tcp_port, tls_port;
static aloop_tls_config_t *client_tls;
static char payload[65536];

static void client_start(struct client *c);

static void send_message(struct client *c) {
  size_t n = 1 + rnd() % (c->tls ? 16384 : sizeof payload);
  if (aloop_transport_write(c->t, payload, n) < 0) {
    st.failures++;
    return;
  }
  c->sent += n;
}

static void c_made(aloop_transport_t *t, void *ud) {
  struct client *c = ud;
  c->t = t;
  c->msgs_left = 1 + (int)(rnd() % 20);
  send_message(c);
}

static void c_data(aloop_transport_t *t, const char *d, size_t n, void *ud) {
  struct client *c = ud;
  c->recvd += n;
  st.bytes += (long)n;
  if (c->recvd < c->sent)
    return;
  if (--c->msgs_left > 0 && !stopping)
    send_message(c);
  else
    aloop_transport_close(t);
}

static void restart_cb(aloop_loop_t *l, void *ud) { client_start(ud); }

static void c_lost(aloop_transport_t *t, int err, void *ud) {
  struct client *c = ud;
  if (err != 0)
    st.failures++;
  if (c->tls)
    st.tls_conns++;
  else
    st.conns++;
  c->t = NULL;
  c->busy = 0;
  leak_one();
  if (!stopping)
    OK(aloop_call_soon(loop, restart_cb, c, NULL, NULL));
}

static void connect_done(aloop_future_t *f, void *ud) {
  struct client *c = ud;
  if (aloop_future_exception(f) != 0) { /* refused or failed: try again */
    st.failures++;
    c->busy = 0;
    if (!stopping)
      OK(aloop_call_later(loop, 0.01, restart_cb, c, NULL, NULL));
  }
  aloop_future_free(f);
}

static void client_start(struct client *c) {
  if (stopping || c->busy)
    return;
  c->busy = 1;
  c->sent = c->recvd = 0;
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = c_made;
  p.data_received = c_data;
  p.connection_lost = c_lost;
  aloop_connect_options_t o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  if (c->tls) {
    o.tls = client_tls;
    o.server_hostname = "localhost";
  }
  aloop_future_t *f;
  OK(aloop_create_connection(loop, "127.0.0.1", c->tls ? tls_port : tcp_port, &p, c,
                             NULL, &o, &f));
  OK(aloop_future_add_done_callback(f, connect_done, c, NULL));
}

/* ---- UDP ------------------------------------------------------------------- */

static void us_recv(aloop_datagram_t *d, const char *data, size_t n,
                    const char *host, int port, void *ud) {
  aloop_datagram_sendto(d, data, n, host, port); /* echo */
}

struct uclient {
  aloop_datagram_t *d;
  int left;
  int busy;
  double last_send;
};
static struct uclient uclients[UDP_CLIENTS];
static int udp_port;
static aloop_datagram_t *udp_server;

static void uclient_start(struct uclient *u);

static void uc_send(struct uclient *u) {
  size_t n = 1 + rnd() % 1400;
  u->last_send = now_s();
  aloop_datagram_sendto(u->d, payload, n, NULL, 0);
}

static void uc_made(aloop_datagram_t *d, void *ud) {
  struct uclient *u = ud;
  u->d = d;
  u->left = 200;
  uc_send(u);
}

static void uc_recv(aloop_datagram_t *d, const char *data, size_t n,
                    const char *host, int port, void *ud) {
  struct uclient *u = ud;
  st.datagrams++;
  if (--u->left > 0 && !stopping)
    uc_send(u);
  else
    aloop_datagram_close(d);
}

static void uc_restart(aloop_loop_t *l, void *ud) { uclient_start(ud); }

static void uc_lost(aloop_datagram_t *d, int err, void *ud) {
  struct uclient *u = ud;
  u->d = NULL;
  u->busy = 0;
  if (!stopping)
    OK(aloop_call_soon(loop, uc_restart, u, NULL, NULL));
}

static void uclient_start(struct uclient *u) {
  if (stopping || u->busy)
    return;
  u->busy = 1;
  aloop_datagram_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = uc_made;
  p.datagram_received = uc_recv;
  p.connection_lost = uc_lost;
  aloop_future_t *f;
  OK(aloop_create_datagram_endpoint(loop, "127.0.0.1", 0, "127.0.0.1", udp_port, &p, u,
                                    NULL, NULL, &f));
  OK(aloop_future_free(f)); /* connection_made hands us the endpoint */
}

/* A datagram lost on loopback (rare) must not stop a client: resend. */
static void udp_watchdog(aloop_loop_t *l, void *ud) {
  double t = now_s();
  for (int i = 0; i < UDP_CLIENTS; i++)
    if (uclients[i].d && t - uclients[i].last_send > 0.2)
      uc_send(&uclients[i]);
  if (!stopping)
    OK(aloop_call_later(loop, 0.2, udp_watchdog, NULL, NULL, NULL));
}

/* ---- subprocesses ------------------------------------------------------------ */

struct proc {
  aloop_subprocess_t *p;
  size_t got;
  int busy;
};
static struct proc procs[PROCS];
static void proc_start(struct proc *pr);

static void sp_made(aloop_subprocess_t *p, void *ud) {
  struct proc *pr = ud;
  pr->p = p;
  aloop_transport_t *in = NULL;
  if (aloop_subprocess_get_pipe_transport(p, 0, &in) == 0 && in) {
    aloop_transport_write(in, payload, sizeof payload);
    aloop_transport_write_eof(in);
  }
}
static void sp_data(aloop_subprocess_t *p, int fd, const char *d, size_t n, void *ud) {
  ((struct proc *)ud)->got += n;
}
static void sp_restart(aloop_loop_t *l, void *ud) { proc_start(ud); }
static void sp_lost(aloop_subprocess_t *p, int err, void *ud) {
  struct proc *pr = ud;
  if (pr->got != sizeof payload)
    st.failures++;
  int rc = -1;
  aloop_subprocess_get_returncode(p, &rc);
  if (rc != 0)
    st.failures++;
  st.procs++;
  pr->p = NULL;
  pr->busy = 0;
  if (!stopping)
    OK(aloop_call_later(loop, 0.02, sp_restart, pr, NULL, NULL));
}

static void proc_start(struct proc *pr) {
  if (stopping || pr->busy)
    return;
  pr->busy = 1;
  pr->got = 0;
  aloop_subprocess_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = sp_made;
  p.pipe_data_received = sp_data;
  p.connection_lost = sp_lost;
  static const char *const argv[] = {"/bin/cat", NULL};
  aloop_future_t *f;
  OK(aloop_subprocess_exec(loop, argv, &p, pr, NULL, NULL, &f));
  OK(aloop_future_free(f));
}

/* ---- timers ------------------------------------------------------------------ */

static aloop_handle_t *timers[TIMERS];
static void timer_cb(aloop_loop_t *l, void *ud);

static void timer_arm(int i) {
  OK(aloop_call_later(loop, (double)(rnd() % 20) / 1000.0, timer_cb,
                      (void *)(intptr_t)i, NULL, &timers[i]));
}

static void soon_cb(aloop_loop_t *l, void *ud) { st.soons++; }

static void timer_cb(aloop_loop_t *l, void *ud) {
  int i = (int)(intptr_t)ud;
  timers[i] = NULL;
  st.timers++;
  if (stopping)
    return;
  timer_arm(i);
  int j = (int)(rnd() % TIMERS); /* cancel and replace another one */
  if (j != i && timers[j] && rnd() % 4 == 0) {
    OK(aloop_handle_cancel(timers[j]));
    timer_arm(j);
  }
  for (int k = 0; k < 4; k++)
    OK(aloop_call_soon(l, soon_cb, NULL, NULL, NULL));
}

/* ---- sampling ------------------------------------------------------------------ */

#define MAX_SAMPLES 100000
static double s_t[MAX_SAMPLES], s_rss[MAX_SAMPLES], s_fds[MAX_SAMPLES], s_live[MAX_SAMPLES];
static int nsamples;
static double t_start, t_end;
static FILE *csv;

static double rss_mib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
      res = 0;
    fclose(f);
  }
  return (double)res * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static int fd_count(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory's own fd */
}

static size_t live_handles(void) {
  size_t n = 0;
  OK(aloop_live_handles(&n));
  return n;
}

static void sample_cb(aloop_loop_t *l, void *ud) {
  double t = now_s();
  if (fd_count() < 0)
    die("cannot list /proc/self/fd (%s): out of fds?", strerror(errno));
  if (nsamples < MAX_SAMPLES) {
    s_t[nsamples] = (t - t_start) / 60.0;
    s_rss[nsamples] = rss_mib();
    s_fds[nsamples] = fd_count();
    s_live[nsamples] = (double)live_handles();
    if (csv)
      fprintf(csv, "%.3f,%.2f,%.0f,%.0f\n", t - t_start, s_rss[nsamples],
              s_fds[nsamples], s_live[nsamples]);
    if (nsamples % 10 == 0)
      printf("soak: %5.0f s  rss %6.1f MiB  fds %4.0f  live handles %5.0f  | "
             "conns %ld tls %ld  %.1f MB  dgrams %ld  procs %ld  timers %ld  failures %ld\n",
             t - t_start, s_rss[nsamples], s_fds[nsamples], s_live[nsamples], st.conns,
             st.tls_conns, (double)st.bytes / 1e6, st.datagrams, st.procs, st.timers,
             st.failures);
    nsamples++;
  }
  if (t >= t_end) {
    OK(aloop_loop_stop(l));
    return;
  }
  OK(aloop_call_later(l, 1.0, sample_cb, NULL, NULL, NULL));
}

/* Least-squares slope of y over x for samples [from, to), and its
 * standard error in *se. */
static double slope(const double *x, const double *y, int from, int to, double *se) {
  int n = to - from;
  double mx = 0, my = 0;
  for (int i = from; i < to; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  double sxx = 0, sxy = 0;
  for (int i = from; i < to; i++) {
    sxx += (x[i] - mx) * (x[i] - mx);
    sxy += (x[i] - mx) * (y[i] - my);
  }
  double b = sxx > 0 ? sxy / sxx : 0;
  double ssr = 0;
  for (int i = from; i < to; i++) {
    double r = y[i] - my - b * (x[i] - mx);
    ssr += r * r;
  }
  *se = n > 2 && sxx > 0 ? sqrt(ssr / (n - 2) / sxx) : 0;
  return b;
}

/* A metric rises when its slope is above its floor and above 4 standard
 * errors (noise: connections in flight, GC cycles; 4 SE makes a false
 * alarm from Gaussian noise a 1-in-30000 event). */
static int rising(const char *name, const char *unit, const double *y, int from, int to,
                  double floor_) {
  double se, b = slope(s_t, y, from, to, &se);
  double limit = floor_ > 4 * se ? floor_ : 4 * se;
  printf("soak: %-12s second-half slope %+9.3f %s/min (standard error %.3f, limit %.3f)%s\n",
         name, b, unit, se, limit, b > limit ? "  <-- RISING" : "");
  return b > limit;
}

/* ---- main ------------------------------------------------------------------------ */

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    die("cannot read %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)n + 1);
  if (fread(p, 1, (size_t)n, f) != (size_t)n)
    die("cannot read %s", path);
  fclose(f);
  p[n] = 0;
  *len = (size_t)n;
  return p;
}

static int all_idle(void) {
  for (int i = 0; i < CLIENTS + TLS_CLIENTS; i++)
    if (clients[i].busy)
      return 0;
  for (int i = 0; i < UDP_CLIENTS; i++)
    if (uclients[i].busy)
      return 0;
  for (int i = 0; i < PROCS; i++)
    if (procs[i].busy)
      return 0;
  return 1;
}

int main(int argc, char **argv) {
  double seconds = 300;
  const char *env = getenv("SOAK_MINUTES");
  if (env && *env)
    seconds = atof(env) * 60;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--minutes") && i + 1 < argc)
      seconds = atof(argv[++i]) * 60;
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--csv") && i + 1 < argc)
      csv = fopen(argv[++i], "w");
    else if (!strcmp(argv[i], "--leak") && i + 1 < argc)
      leak_mode = argv[++i];
    else {
      fprintf(stderr, "usage: soak [--minutes M | --seconds S] [--csv FILE] [--leak handle|fd|mem]\n");
      return 2;
    }
  }
  if (seconds < 20) {
    fprintf(stderr, "soak: at least 20 seconds (10 samples per half)\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (size_t i = 0; i < sizeof payload; i++)
    payload[i] = (char)(i * 131u);

  /* Baseline after a warm-up: the Go runtime opens fds of its own (its
   * netpoller) the first time a library thread reads a file. */
  OK(aloop_loop_new(&loop));
  {
    aloop_future_t *f;
    OK(aloop_getaddrinfo(loop, "localhost", NULL, 0, SOCK_STREAM, 0, 0, &f));
    OK(aloop_loop_run_until_complete(loop, f));
    OK(aloop_future_free(f));
  }
  OK(aloop_loop_free(loop));
  size_t live0 = live_handles();
  int fds0 = fd_count();
  OK(aloop_loop_new(&loop));

  size_t cl, kl, cal;
  char *cert = read_all(ALOOP_FIXTURES_DIR "/server.pem", &cl);
  char *key = read_all(ALOOP_FIXTURES_DIR "/server-key.pem", &kl);
  char *ca = read_all(ALOOP_FIXTURES_DIR "/ca.pem", &cal);
  aloop_tls_config_t *server_tls;
  OK(aloop_tls_config_new(&server_tls, 1));
  OK(aloop_tls_config_load_cert_pem(server_tls, cert, cl, key, kl));
  OK(aloop_tls_config_new(&client_tls, 0));
  OK(aloop_tls_config_load_ca_pem(client_tls, ca, cal));
  free(cert);
  free(key);
  free(ca);

  aloop_server_t *tcp_server = serve(NULL, &tcp_port);
  aloop_server_t *tls_server = serve(server_tls, &tls_port);
  {
    aloop_datagram_protocol_t p;
    memset(&p, 0, sizeof p);
    p.size = sizeof p;
    p.datagram_received = us_recv;
    aloop_future_t *f;
    OK(aloop_create_datagram_endpoint(loop, "127.0.0.1", 0, NULL, 0, &p, NULL, NULL, NULL, &f));
    OK(aloop_loop_run_until_complete(loop, f));
    OK(aloop_future_result_datagram(f, &udp_server));
    OK(aloop_future_free(f));
    OK(aloop_datagram_get_sockname(udp_server, NULL, 0, &udp_port));
  }
  for (int i = 0; i < CLIENTS + TLS_CLIENTS; i++) {
    clients[i].tls = i >= CLIENTS;
    client_start(&clients[i]);
  }
  for (int i = 0; i < UDP_CLIENTS; i++)
    uclient_start(&uclients[i]);
  for (int i = 0; i < PROCS; i++)
    proc_start(&procs[i]);
  for (int i = 0; i < TIMERS; i++)
    timer_arm(i);
  OK(aloop_call_later(loop, 0.2, udp_watchdog, NULL, NULL, NULL));

  printf("soak: %.0f s of TCP (%d clients), TLS (%d), UDP (%d), subprocesses (%d), "
         "timers (%d)%s%s\n", seconds, CLIENTS, TLS_CLIENTS, UDP_CLIENTS, PROCS, TIMERS,
         leak_mode ? "; self-test leak: " : "", leak_mode ? leak_mode : "");
  t_start = now_s();
  t_end = t_start + seconds;
  OK(aloop_call_soon(loop, sample_cb, NULL, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));

  /* Stop the load and close everything. */
  stopping = 1;
  for (int i = 0; i < CLIENTS + TLS_CLIENTS; i++)
    if (clients[i].t)
      aloop_transport_close(clients[i].t);
  for (int i = 0; i < UDP_CLIENTS; i++)
    if (uclients[i].d)
      aloop_datagram_close(uclients[i].d);
  for (int i = 0; i < TIMERS; i++)
    if (timers[i]) {
      OK(aloop_handle_cancel(timers[i]));
      timers[i] = NULL;
    }
  double t0 = now_s();
  while (!all_idle()) {
    if (now_s() - t0 > 30)
      die("the load did not wind down within 30 s");
    OK(aloop_loop_run_once(loop, 0.05));
  }
  OK(aloop_server_free(tcp_server));
  OK(aloop_server_free(tls_server));
  OK(aloop_datagram_close(udp_server));
  OK(aloop_tls_config_free(server_tls));
  OK(aloop_tls_config_free(client_tls));
  int rc;
  while ((rc = aloop_loop_close(loop)) != 0) {
    if (leak_mode && !strcmp(leak_mode, "handle"))
      break; /* the leaked futures keep it busy: expected */
    if (now_s() - t0 > 30)
      die("the loop still cannot close 30 s after the load stopped: %s", aloop_err_name(rc));
    OK(aloop_loop_run_once(loop, 0.05));
  }

  /* Trends over the second half. */
  int half = nsamples / 2;
  int failed = 0;
  printf("soak: %d samples; totals: %ld TCP and %ld TLS connections, %.1f MB echoed, "
         "%ld datagrams, %ld subprocesses, %ld timers, %ld call_soon, %ld failures\n",
         nsamples, st.conns, st.tls_conns, (double)st.bytes / 1e6, st.datagrams, st.procs,
         st.timers, st.soons, st.failures);
  if (rising("RSS", "MiB", s_rss, half, nsamples, RSS_SLOPE_MAX_MIB)) {
    printf("soak: FAIL: RSS keeps rising\n");
    failed = 1;
  }
  if (rising("open fds", "fds", s_fds, half, nsamples, FD_SLOPE_MAX)) {
    printf("soak: FAIL: open fds keep rising\n");
    failed = 1;
  }
  if (rising("live handles", "handles", s_live, half, nsamples, HANDLE_SLOPE_MAX)) {
    printf("soak: FAIL: live handles keep rising\n");
    failed = 1;
  }
  if (st.conns == 0 || st.tls_conns == 0 || st.datagrams == 0 || st.procs == 0) {
    printf("soak: FAIL: some load never ran\n");
    failed = 1;
  }
  if (rc == 0) {
    OK(aloop_loop_free(loop));
    size_t live1 = live_handles();
    for (size_t i = 0; i < nleaked_fds; i++)
      close(leaked_fds[i]);
    int fds1 = fd_count();
    printf("soak: after closing everything: %zu live handles (%zu before), %d fds (%d before)\n",
           live1, live0, fds1, fds0);
    if (live1 != live0 || fds1 != fds0) {
      printf("soak: FAIL: not back to where it started\n");
      failed = 1;
    }
  } else {
    printf("soak: FAIL: the loop cannot close (%s)\n", aloop_err_name(rc));
    failed = 1;
  }
  if (csv)
    fclose(csv);
  printf("soak: %s\n", failed ? "FAILED" : "ok");
  return failed;
}
