/*
 * helpers.h - what the C tests that drive one loop share (include it after
 * test.h): the file's loop (`loop`, made by loop_up), running it until a
 * condition holds or for a while, waiting for futures, test data, growing
 * buffers, and loopback / Unix socket addresses.
 *
 * A file may tune the loop runners by defining, before the #include:
 *   RUN_UNTIL_SECONDS  how long RUN_UNTIL waits before it fails (20)
 *   RUN_UNTIL_STEP     the timeout of each aloop_loop_run_once in RUN_UNTIL
 *                      (0.05)
 *   RUN_FOR_STEP       the same for run_for (0.01)
 */
#ifndef ALOOP_TEST_HELPERS_H
#define ALOOP_TEST_HELPERS_H

#include "test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#ifndef RUN_UNTIL_SECONDS
#define RUN_UNTIL_SECONDS 20.0
#endif
#ifndef RUN_UNTIL_STEP
#define RUN_UNTIL_STEP 0.05
#endif
#ifndef RUN_FOR_STEP
#define RUN_FOR_STEP 0.01
#endif

/* ---- the loop ------------------------------------------------------------ */

static aloop_loop_t *loop;

static inline void loop_up(void) {
  if (!loop)
    OK(aloop_loop_new(&loop));
}

/* Runs loop l until cond holds; fails after secs seconds. */
#define RUN_LOOP_UNTIL_(l, cond, secs, text)                                   \
  do {                                                                         \
    double t0_ = test_now();                                                   \
    while (!(cond)) {                                                          \
      if (test_now() - t0_ > (secs))                                           \
        FAIL("timed out waiting for %s", text);                                \
      OK(aloop_loop_run_once((l), RUN_UNTIL_STEP));                            \
    }                                                                          \
  } while (0)

/* Runs the loop until cond holds (RUN_UNTIL_SECONDS at most). */
#define RUN_UNTIL(cond) RUN_LOOP_UNTIL_(loop, cond, RUN_UNTIL_SECONDS, #cond)
/* The same with its own limit in seconds. */
#define RUN_UNTIL_T(cond, secs) RUN_LOOP_UNTIL_(loop, cond, secs, #cond)
/* The same for another loop than the file's. */
#define RUN_LOOP_UNTIL(l, cond)                                                \
  RUN_LOOP_UNTIL_(l, cond, RUN_UNTIL_SECONDS, #cond)

/* Runs the loop for about `seconds`. */
static inline void run_for(double seconds) {
  double t0 = test_now();
  while (test_now() - t0 < seconds)
    OK(aloop_loop_run_once(loop, RUN_FOR_STEP));
}

/* ---- futures ---------------------------------------------------------------- */

/* Runs the loop until f is done. */
static inline void await_done(aloop_future_t *f) {
  RUN_UNTIL(aloop_future_done(f) == 1);
}

/* Asserts that a done future succeeded; otherwise fails with `what` (a
 * printf format), the error's name and the future's message. */
__attribute__((format(printf, 2, 3))) static inline void
assert_future_ok(aloop_future_t *f, const char *what, ...) {
  int e = aloop_future_exception(f);
  if (e != 0) {
    char msg[512] = "", head[256];
    va_list ap;
    va_start(ap, what);
    vsnprintf(head, sizeof head, what, ap);
    va_end(ap);
    aloop_future_error_message(f, msg, sizeof msg);
    FAIL("%s: %s: %s", head, aloop_err_name(e), msg);
  }
}

static inline void assert_ok(aloop_future_t *f) {
  assert_future_ok(f, "future failed");
}

/* Waits for f (await_done), asserts it succeeded, frees it and returns its
 * transport. */
static inline aloop_transport_t *await_transport(aloop_future_t *f) {
  aloop_transport_t *t = NULL;
  await_done(f);
  assert_ok(f);
  OK(aloop_future_result_transport(f, &t));
  OK(aloop_future_free(f));
  return t;
}

/* Waits for f (await_done), asserts it succeeded, frees it and returns its
 * server. */
static inline aloop_server_t *await_server(aloop_future_t *f) {
  aloop_server_t *s = NULL;
  await_done(f);
  assert_ok(f);
  OK(aloop_future_result_server(f, &s));
  OK(aloop_future_free(f));
  return s;
}

/* await_transport with aloop_loop_run_until_complete; `what` (a printf format)
 * names the operation when it failed. */
__attribute__((format(printf, 2, 3))) static inline aloop_transport_t *
complete_transport(aloop_future_t *f, const char *what, ...) {
  aloop_transport_t *t = NULL;
  char head[256];
  va_list ap;
  va_start(ap, what);
  vsnprintf(head, sizeof head, what, ap);
  va_end(ap);
  OK(aloop_loop_run_until_complete(loop, f));
  assert_future_ok(f, "%s", head);
  OK(aloop_future_result_transport(f, &t));
  OK(aloop_future_free(f));
  return t;
}

/* A server on 127.0.0.1 on a free port, waited for with await_done; its
 * port in *port. */
static inline aloop_server_t *serve_local(aloop_connection_cb cb, void *ud,
                                          aloop_free_cb free_cb,
                                          const aloop_server_options_t *opts,
                                          int *port) {
  aloop_future_t *f = NULL;
  OK(aloop_create_server(loop, "127.0.0.1", 0, cb, ud, free_cb, opts, &f));
  aloop_server_t *s = await_server(f);
  OK(aloop_server_sockname(s, 0, NULL, 0, port));
  return s;
}

/* Reads n bytes from the socket fd into buf with aloop_sock_recv_into. */
static inline void sock_recv_all(int fd, void *buf, size_t n) {
  size_t have = 0;
  while (have < n) {
    aloop_future_t *r = NULL;
    OK(aloop_sock_recv_into(loop, fd, (char *)buf + have, n - have, &r));
    await_done(r);
    assert_ok(r);
    size_t got = 0;
    OK(aloop_future_result_size(r, &got));
    ASSERT_CMP(got, >, 0);
    have += got;
    OK(aloop_future_free(r));
  }
}

/* ---- data -------------------------------------------------------------------- */

/* n bytes of a fixed pseudo-random pattern (malloc'ed). */
static inline unsigned char *make_pattern(size_t n) {
  unsigned char *p = malloc(n);
  ASSERT(p != NULL);
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char)(((uint32_t)i * 2654435761u) >> 24);
  return p;
}

/* Appends n bytes to a growing buffer: *buf holds *len bytes in *cap. */
static inline void buf_append(unsigned char **buf, size_t *len, size_t *cap,
                              const void *data, size_t n) {
  if (*len + n > *cap) {
    size_t c = *cap ? *cap : 4096;
    while (c < *len + n)
      c *= 2;
    *buf = realloc(*buf, c);
    ASSERT(*buf != NULL);
    *cap = c;
  }
  memcpy(*buf + *len, data, n);
  *len += n;
}

/* ---- file descriptors and socket addresses ---------------------------------- */

static inline int fd_is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

/* 127.0.0.1:port. */
static inline struct sockaddr_in loopback_addr(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

/* The port a socket is bound to (IPv4 or IPv6). */
static inline int local_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  ASSERT_EQ(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A socket of `type` (SOCK_STREAM or SOCK_DGRAM, with SOCK_* flags) bound
 * to 127.0.0.1 on a free port, not listening; its port in *port (unless
 * port is NULL). */
static inline int loopback_socket(int type, int *port) {
  int s = socket(AF_INET, type, 0);
  ASSERT(s >= 0);
  struct sockaddr_in a = loopback_addr(0);
  ASSERT_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  if (port)
    *port = local_port(s);
  return s;
}

/* The address of a Unix socket: a path, or "@name" for an abstract name;
 * returns its length. */
static inline socklen_t unix_addr(const char *name, struct sockaddr_un *a) {
  size_t n = strlen(name);
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  ASSERT_CMP(n, <, sizeof a->sun_path);
  memcpy(a->sun_path, name, n);
  if (name[0] != '@')
    return sizeof *a;
  a->sun_path[0] = 0;
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

/* Binds s to a Unix socket address (see unix_addr). */
static inline void bind_unix(int s, const char *name) {
  struct sockaddr_un a;
  socklen_t len = unix_addr(name, &a);
  ASSERT_EQ(bind(s, (struct sockaddr *)&a, len), 0);
}

/* Leaves a socket file at path that nobody listens on. */
static inline void stale_socket_file(const char *path, int type) {
  int s = socket(AF_UNIX, type, 0);
  ASSERT(s >= 0);
  bind_unix(s, path);
  close(s);
}

/* A socket path in /tmp unique to this process, area and name. */
static inline const char *tmp_sock_path(const char *area, const char *name) {
  static char buf[8][108];
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, 108, "/tmp/aloop-test-%s-%d-%s.sock", area, (int)getpid(), name);
  return p;
}

#endif /* ALOOP_TEST_HELPERS_H */
