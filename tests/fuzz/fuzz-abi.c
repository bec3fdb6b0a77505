/*
 * fuzz-abi.c - a fuzz harness over the C ABI of libasyncloop.
 *
 * An input is a string of bytes; an interpreter reads it as a sequence of
 * operations (which function, which handle, which lengths and values), so
 * one input always makes the same calls in the same order (the timing of
 * I/O callbacks, and the optional helper thread, may differ between runs).
 * The operations cover the whole header: loops and scheduling, futures, fd
 * watchers, TCP/Unix/TLS servers and connections, datagrams, pipes,
 * sock_*, DNS (numeric hosts and "localhost" only: no traffic leaves the
 * machine), subprocesses, signals, the executor, TLS configurations and
 * the current loop, with:
 *  - handles that are live, stale (released), NULL, of the wrong type, or
 *    garbage: a handle known to be bad must give ALOOP_EBADF;
 *  - lengths from 0 to 70000 over buffers of exactly that size (malloc'ed,
 *    so AddressSanitizer sees any access past them, also from the library
 *    when it is built with `go build -asan`), and size-prefixed structs
 *    cut short;
 *  - callbacks that call back into the library (nested up to 2 deep), and
 *    a helper thread making the THREAD-SAFE calls.
 * Invariants checked on every call and at the end of every input:
 *  - no crash, no sanitizer report, no hang (the driver's timeout);
 *  - no ALOOP_EPANIC (a recovered panic is a bug), only codes of the
 *    header's list;
 *  - every free_cb runs exactly once: inside the call when the call fails,
 *    never twice, never followed by a callback with that userdata, and for
 *    every userdata once everything is closed;
 *  - loop callbacks run on the loop's thread, inside aloop_loop_run*;
 *  - after the teardown (everything closed, every loop freed): no live
 *    handle (aloop_live_handles) and no fd left open.
 *
 * Usage:
 *   fuzz-abi --input FILE          run one input in this process
 *   fuzz-abi --seed N              run the input of seed N in this process
 *   fuzz-abi --print-seed N        write the input of seed N to stdout
 *   fuzz-abi [--seconds S] [--seed N] [--corpus DIR] [--save-new DIR]
 *            [--crash-dir DIR] [--timeout S]
 *       the driver: runs every file of the corpus, then the inputs of seeds
 *       N, N+1, ... (every other one a mutation of a corpus file) until S
 *       seconds have passed, each in its own process (posix_spawn of
 *       itself). A failing input is written to DIR/crash-<seed>.bin and the
 *       driver prints the command that reproduces it, then exits 1.
 *       --save-new keeps inputs that reached a new (call site, result)
 *       pair: how the committed corpus (tests/fuzz/corpus) was grown.
 * The inputs of issue 9's defects 2, 3, 4 and 6 (fd 2^31-1, wake-up
 * callbacks replaced while other threads post, lengths no buffer can have,
 * NaN and infinite times) are always generated, and so are those of the
 * defects this harness found later, all fixed (each has its regression
 * test in tests/c/test-lifecycle.c): a connect future cancelled or failed
 * from inside connection_made; set_result on the future of a library
 * operation; an object only a future leads to, freed unread;
 * aloop_future_result_subprocess on a subprocess already released;
 * add_writer during a sock_connect to a name; aloop_future_result_addr
 * with a bad handle and hostlen 0; add_done_callback on a closed loop; a
 * sendfile fallback on a source that never gives data, cancelled.
 * ASYNCLOOP_FUZZ_KNOWN=1 generates the inputs of defects still open, off
 * by default so that `make test` stays green until they are fixed (grep
 * known_bugs): none at the moment.
 * Every error code the library returns or passes to a callback must be
 * one of the header's list (it once returned raw errnos such as -95
 * EOPNOTSUPP, -90, -89, -106), except a code this harness gave it itself
 * (set_exception, exception contexts): those are "note:" lines.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "asyncloop.h"

#ifndef ALOOP_FIXTURES_DIR
#define ALOOP_FIXTURES_DIR "tests/c/fixtures"
#endif

extern char **environ;

/* ======================================================================== */
/* Failing                                                                   */
/* ======================================================================== */

static pthread_t main_thread;
static int known_bugs; /* ASYNCLOOP_FUZZ_KNOWN=1 */
static int trace_all;  /* ASYNCLOOP_FUZZ_TRACE=1: print every call */

/* The last calls, printed when an invariant fails. */
#define TRACE_N 48
static struct {
  const char *what;
  int rc;
} trace_ring[TRACE_N];
static atomic_uint trace_next;
static atomic_long ncalls;

static void print_trace(void) {
  unsigned n = atomic_load(&trace_next);
  unsigned from = n > TRACE_N ? n - TRACE_N : 0;
  fprintf(stderr, "last calls (oldest first):\n");
  for (unsigned i = from; i < n; i++) {
    unsigned k = i % TRACE_N;
    if (trace_ring[k].what)
      fprintf(stderr, "  %s -> %d (%s)\n", trace_ring[k].what, trace_ring[k].rc,
              aloop_err_name(trace_ring[k].rc < 0 ? trace_ring[k].rc : 0));
  }
}

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt,
                                                               ...) {
  va_list ap;
  char msg[1024] = "";
  fprintf(stderr, "FUZZ FAILURE: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  aloop_last_error(msg, sizeof msg);
  if (msg[0])
    fprintf(stderr, "aloop_last_error: %s\n", msg);
  print_trace();
  fflush(stderr);
  abort();
}

/* ======================================================================== */
/* The input                                                                 */
/* ======================================================================== */

static const uint8_t *in_buf;
static size_t in_len;
static size_t in_pos;

/* The next input byte; 0 once the input is used up (which ends the run). */
static unsigned b8(void) { return in_pos < in_len ? in_buf[in_pos++] : 0; }
static unsigned u16(void) { return b8() | b8() << 8; }
static uint32_t u32(void) { return (uint32_t)u16() | (uint32_t)u16() << 16; }
static uint64_t u64(void) { return (uint64_t)u32() | (uint64_t)u32() << 32; }
static int pick(int n) { return n <= 1 ? 0 : (int)(u16() % (unsigned)n); }
/* Once the input is used up, every chance is 0 (callbacks of the teardown
 * do nothing random). */
static int chance(int pct) {
  return in_pos < in_len && (int)(b8() % 100) < pct;
}
#define ONE_OF(arr) (arr[pick((int)(sizeof(arr) / sizeof(arr[0])))])

/* splitmix64: the input of a seed. */
static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint8_t *seed_input(uint64_t seed, size_t *len) {
  uint64_t x = seed * 0x2545f4914f6cdd1dull + 1;
  size_t n = 256 + (size_t)(splitmix(&x) % 3840);
  uint8_t *p = malloc(n);
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)splitmix(&x);
  *len = n;
  return p;
}

/* A length: mostly small, sometimes around the water marks and buffer
 * sizes. */
static size_t rnd_len(void) {
  unsigned s = b8();
  if (s < 110)
    return s % 17;
  if (s < 200)
    return u16() % 4096;
  if (s < 235)
    return u32() % 70000;
  static const size_t special[] = {0,     1,     255,   256,   4095,
                                   4096,  16384, 65535, 65536, 65537,
                                   100000, 262145};
  return ONE_OF(special);
}

/* A length no buffer can have (> PTRDIFF_MAX): must be refused, never
 * read. */
static size_t impossible_len(void) {
  static const size_t v[] = {SIZE_MAX, SIZE_MAX - 1, (SIZE_MAX >> 1) + 1,
                             (size_t)1 << 63 | 12345};
  return ONE_OF(v);
}

static double rnd_double(void) {
  switch (pick(14)) {
  case 0: return 0.0;
  case 1: return -0.0;
  case 2: return 1e-9;
  case 3: return 0.001;
  case 4: return 0.005;
  case 5: return -1.0;
  case 6: return 1e9;
  case 7: return 1e300;
  case 8: return DBL_MAX;
  case 9: return -DBL_MAX;
  case 10: return (double)u16() / 1e5;
  case 11: return INFINITY;
  case 12: return -INFINITY;
  default: return NAN;
  }
}

static int rnd_int(void) {
  static const int v[] = {0, 1, -1, 2, 3, 7, 64, 65, 255, 256, 65535, 65536,
                          INT32_MAX, INT32_MIN, -2, 1000};
  if (chance(30))
    return (int)u32();
  return ONE_OF(v);
}

/* ======================================================================== */
/* Calls                                                                     */
/* ======================================================================== */

static const int known_codes[] = {
#define X_(name, value, message) value,
    ALOOP_ERRNO_MAP(X_)
#undef X_
};
#define NCODES ((int)(sizeof known_codes / sizeof known_codes[0]))

/* Feedback: which (call site, result) pairs a run reached. */
#define SITES 1024
#define BUCKETS (NCODES + 3)
static uint8_t feedback[SITES][BUCKETS];

static __thread int in_call;  /* depth of library calls on this thread */
static int run_depth;         /* aloop_loop_run* calls on the main thread */

/* Codes outside the header's list that the harness itself gave the library
 * (aloop_future_set_exception, exception contexts): they come back as they
 * were given (include/asyncloop.h, Errors). Any other unlisted code fails. */
static int host_codes[256];
static atomic_int nhost_codes;
static int host_code(int c) {
  int n = atomic_load(&nhost_codes);
  for (int i = 0; i < n && i < 256; i++)
    if (host_codes[i] == c)
      return c;
  if (n < 256 && pthread_equal(pthread_self(), main_thread)) {
    host_codes[n] = c;
    atomic_store(&nhost_codes, n + 1);
  }
  return c;
}
static int host_chose(int c) {
  int n = atomic_load(&nhost_codes);
  for (int i = 0; i < n && i < 256; i++)
    if (host_codes[i] == c)
      return 1;
  return 0;
}

static int bucket(int rc) {
  if (rc == 0)
    return 0;
  if (rc > 0)
    return 1;
  for (int i = 0; i < NCODES; i++)
    if (known_codes[i] == rc)
      return i + 2;
  return -1;
}


static int call_leave(int site, const char *what, int rc) {
  in_call--;
  if (trace_all)
    fprintf(stderr, "%s%s -> %d\n",
            pthread_equal(pthread_self(), main_thread) ? "" : "[helper] ", what, rc);
  unsigned k = atomic_fetch_add(&trace_next, 1) % TRACE_N;
  trace_ring[k].what = what;
  trace_ring[k].rc = rc;
  atomic_fetch_add(&ncalls, 1);
  int b = bucket(rc);
  if (b < 0) {
    /* a code the header's list does not name: only one we gave (the
     * driver lists them) */
    if (rc < 0 && host_chose(rc))
      printf("note: host code %d from %s\n", rc, what);
    else
      die("%s returned %d, which is no ALOOP_E* code", what, rc);
    b = NCODES + 1;
  }
  if (rc == ALOOP_EPANIC)
    die("%s returned ALOOP_EPANIC (a panic inside the library)", what);
  if (site < SITES)
    feedback[site][b] = 1;
  return rc;
}

/* CALL(expr): makes the call, records it, checks its result. */
#define CALL(expr)                                                             \
  ({                                                                           \
    in_call++;                                                                 \
    int rc_ = (int)(expr);                                                     \
    call_leave(__COUNTER__, #expr, rc_);                                       \
  })

/* A call on a handle known to be bad must give ALOOP_EBADF. */
#define CALL_H(bad, expr)                                                      \
  ({                                                                           \
    int r_ = CALL(expr);                                                       \
    if ((bad) && r_ != ALOOP_EBADF)                                            \
      die("%s on a bad handle returned %d (%s), not ALOOP_EBADF", #expr, r_,   \
          aloop_err_name(r_));                                                 \
    r_;                                                                        \
  })

/* Memory handed to the library stays allocated until the process ends (it
 * may use some until a future is done): kept here, so that it is
 * reachable for LeakSanitizer. */
static void **keep;
static size_t nkeep, capkeep;
static void *kept(void *p) {
  if (nkeep == capkeep) {
    capkeep = capkeep ? 2 * capkeep : 1024;
    keep = realloc(keep, capkeep * sizeof *keep);
  }
  keep[nkeep++] = p;
  return p;
}

/* ======================================================================== */
/* Handles                                                                   */
/* ======================================================================== */

enum kind { K_LOOP, K_HANDLE, K_FUTURE, K_TRANSPORT, K_SERVER, K_DGRAM,
            K_PROC, K_TLS, K_COUNT };
static const char *kind_names[] = {"loop", "handle", "future", "transport",
                                   "server", "datagram", "subprocess", "tls"};
enum state { LIVE, MAYBE, STALE };

struct hent {
  uint64_t v;
  enum kind kind;
  enum state state;
  int owned; /* futures: not yet freed by us */
  int accept_fd_future; /* a sock_accept future: its fd must be closed */
  aloop_loop_t *loop;   /* futures: the loop, when known */
  int host_made;        /* futures: made with aloop_future_new */
  int makes_obj;        /* creates a server, transport, endpoint or
                           subprocess: its result is read before it is
                           freed (see before_free) */
  int sock_op;          /* a sock_* future: cancelled before it is freed
                           (a freed pending operation keeps its loop from
                           closing for good) */
  void *buf; /* memory the operation may still use (recv_into) */
};

#define MAX_H 4096
static struct hent hs[MAX_H];
static int nh;

static struct hent *h_add(enum kind k, const void *p, enum state st) {
  uint64_t v = (uint64_t)(uintptr_t)p;
  if (v == 0)
    return NULL;
  for (int i = nh - 1; i >= 0 && i >= nh - 64; i--)
    if (hs[i].v == v) {
      if (hs[i].kind != k)
        die("the library handed out %#" PRIx64 " as a %s, earlier as a %s", v,
            kind_names[k], kind_names[hs[i].kind]);
      hs[i].state = st;
      return &hs[i];
    }
  for (int i = 0; i < nh; i++)
    if (hs[i].v == v) {
      if (hs[i].kind != k)
        die("the library handed out %#" PRIx64 " as a %s, earlier as a %s", v,
            kind_names[k], kind_names[hs[i].kind]);
      hs[i].state = st;
      return &hs[i];
    }
  if (nh >= MAX_H)
    return NULL;
  hs[nh].v = v;
  hs[nh].kind = k;
  hs[nh].state = st;
  hs[nh].owned = 0;
  hs[nh].accept_fd_future = 0;
  hs[nh].sock_op = 0;
  hs[nh].makes_obj = 0;
  hs[nh].loop = NULL;
  hs[nh].host_made = 0;
  hs[nh].buf = NULL;
  return &hs[nh++];
}

static struct hent *h_find(const void *p) {
  uint64_t v = (uint64_t)(uintptr_t)p;
  for (int i = 0; i < nh; i++)
    if (hs[i].v == v)
      return &hs[i];
  return NULL;
}

static void h_stale(const void *p) {
  struct hent *e = h_find(p);
  if (e)
    e->state = STALE;
}

static int count_kind(enum kind k, enum state st) {
  int n = 0;
  for (int i = 0; i < nh; i++)
    if (hs[i].kind == k && hs[i].state == st)
      n++;
  return n;
}

/* A handle value for a call that expects kind k; *bad tells whether it is
 * certainly invalid (NULL, wrong type, garbage, or known stale). */
static void *h_pick(enum kind k, int *bad) {
  unsigned s = b8();
  *bad = 0;
  if (s < 190) { /* one of this kind */
    int n = 0, idx[MAX_H];
    for (int i = 0; i < nh; i++)
      if (hs[i].kind == k && (s < 160 ? hs[i].state != STALE : 1))
        idx[n++] = i;
    if (n == 0) {
      *bad = 1;
      return NULL;
    }
    struct hent *e = &hs[idx[pick(n)]];
    *bad = e->state == STALE;
    return (void *)(uintptr_t)e->v;
  }
  if (s < 210) { /* NULL */
    *bad = 1;
    return NULL;
  }
  if (s < 230 && nh > 0) { /* another kind */
    struct hent *e = &hs[pick(nh)];
    *bad = e->kind != k || e->state == STALE; /* it may be of this kind */
    return (void *)(uintptr_t)e->v;
  }
  /* garbage: certainly no live handle (kind byte 0 or > 8, an index no
   * table reaches, or generation 0, which is never used) */
  uint64_t v = u64();
  switch (pick(3)) {
  case 0: v = (v & 0x00ffffffffffffffull) | (uint64_t)(9 + pick(240)) << 56; break;
  case 1: v = (v & 0xffffffff00000000ull) | 0x80000000u | (v & 0x7fffffff); break;
  default: v = v & 0xff000000ffffffffull; break;
  }
  if (v == 0)
    v = 0xdead;
  *bad = 1;
  return (void *)(uintptr_t)v;
}

static int live_loops(aloop_loop_t **out, int max) {
  int n = 0;
  for (int i = 0; i < nh && n < max; i++)
    if (hs[i].kind == K_LOOP && hs[i].state == LIVE)
      out[n++] = (aloop_loop_t *)(uintptr_t)hs[i].v;
  return n;
}

/* ======================================================================== */
/* Userdata: every one is tracked until the end of the input               */
/* ======================================================================== */

#define UD_MAGIC 0x75644d47u
enum udkind { U_CALLBACK, U_FUTURE_CB, U_FD, U_EXC, U_WAKE, U_PROTO, U_SERVER,
              U_DGRAM, U_PROC, U_SIGNAL, U_JOB };

struct ud {
  uint32_t magic;
  int id;
  enum udkind kind;
  int has_free;   /* registered with a free_cb */
  atomic_int freed;
  atomic_int calls;
  int ms;         /* executor jobs: how long to sleep */
  int lost;       /* protocols: connection_lost seen */
  char *gbuf;     /* buffered protocols: get_buffer's memory */
  size_t gbuf_len;
  int in_get;     /* get_buffer handed out gbuf, buffer_updated pending */
};

#define MAX_UD 8192
static struct ud *uds[MAX_UD];
static int nud;
static pthread_mutex_t ud_mu = PTHREAD_MUTEX_INITIALIZER;

static struct ud *ud_new(enum udkind k) {
  struct ud *u = calloc(1, sizeof *u);
  u->magic = UD_MAGIC;
  u->kind = k;
  pthread_mutex_lock(&ud_mu);
  if (nud < MAX_UD) {
    u->id = nud;
    uds[nud++] = u;
  } else {
    u->id = -1;
  }
  pthread_mutex_unlock(&ud_mu);
  if (trace_all)
    fprintf(stderr, "  (userdata #%d, kind %d)\n", u->id, (int)k);
  return u;
}

static struct ud *ud_check(void *p, const char *who) {
  struct ud *u = p;
  if (trace_all && u && u->magic == UD_MAGIC)
    fprintf(stderr, "  %s(#%d)\n", who, u->id);
  if (u == NULL)
    die("%s got NULL userdata", who);
  if (u->magic != UD_MAGIC)
    die("%s got userdata %p that is not ours", who, p);
  if (atomic_load(&u->freed))
    die("%s ran with userdata #%d after its free_cb", who, u->id);
  return u;
}

static void ud_free_cb(void *p) {
  struct ud *u = p;
  if (u == NULL || u->magic != UD_MAGIC)
    die("free_cb got userdata %p that is not ours", p);
  if (!u->has_free)
    die("free_cb ran for userdata #%d registered without one", u->id);
  if (trace_all)
    fprintf(stderr, "  free_cb(#%d)\n", u->id);
  if (atomic_fetch_add(&u->freed, 1) != 0)
    die("free_cb ran twice for userdata #%d", u->id);
  if (!pthread_equal(pthread_self(), main_thread) && !in_call)
    die("free_cb of userdata #%d ran on a library thread", u->id);
}

/* After a registering call: on failure the free_cb must have run, on
 * success not yet. */
static void ud_after(struct ud *u, int rc, const char *what) {
  if (!u->has_free)
    return;
  int f = atomic_load(&u->freed);
  if (rc < 0 && f != 1)
    die("%s failed (%s) without calling free_cb", what, aloop_err_name(rc));
  /* (operations that complete a future may fail it at once and drop the
   * userdata inside the call, e.g. a spawn of a missing program) */
  if (rc >= 0 && f != 0 && u->kind <= U_WAKE)
    die("%s succeeded but already called free_cb", what);
}

/* A loop callback: on the loop's (main) thread, inside aloop_loop_run*. */
static struct ud *cb_enter(void *p, const char *who) {
  struct ud *u = ud_check(p, who);
  if (!pthread_equal(pthread_self(), main_thread))
    die("%s ran on a thread that does not run the loop", who);
  if (run_depth == 0)
    die("%s ran outside aloop_loop_run*", who);
  atomic_fetch_add(&u->calls, 1);
  return u;
}

/* ======================================================================== */
/* Resources of an input                                                    */
/* ======================================================================== */

static int owned_fds[512];
static int nfds;

static void fd_own(int fd) {
  if (fd >= 0 && nfds < 512)
    owned_fds[nfds++] = fd;
}
static void fd_disown(int fd) {
  for (int i = 0; i < nfds; i++)
    if (owned_fds[i] == fd) {
      owned_fds[i] = owned_fds[--nfds];
      return;
    }
}
static int fd_pick_(void);
static int fd_pick(void) {
  int fd = fd_pick_();
  if (trace_all)
    fprintf(stderr, "  (fd %d)\n", fd);
  return fd;
}
static int fd_pick_(void) {
  if (nfds > 0 && chance(85))
    return owned_fds[pick(nfds)];
  static const int v[] = {-1, 0, 1, 2, 1000, 65535, -100};
  int fd = ONE_OF(v);
  if (chance(10))
    fd = INT32_MAX; /* issue 9, item 2: must not grow the fd table */
  return fd;
}

static int tcp_ports[16], ntcp_ports;
static int udp_ports[16], nudp_ports;
static char unix_paths[16][108];
static int nunix_paths;
static int sig_loops_n;
static struct { aloop_loop_t *loop; int sig; } sigs[64];
static struct { aloop_loop_t *loop; int fd; } watched[256];
static int nwatched;
static char tmpdir[64];
static char *pem_server_cert, *pem_server_key, *pem_ca;
static size_t pem_server_cert_len, pem_server_key_len, pem_ca_len;
static int depth; /* nested operations in callbacks */
/* The loop the current operation picked (NULL: none): the loop of the
 * futures it makes. */
static aloop_loop_t *cur_loop;
static void run_ops(int max);

static void add_port(int *arr, int *n, int port) {
  if (port > 0 && *n < 16)
    arr[(*n)++] = port;
}
static int port_pick(int *arr, int n) {
  if (n > 0 && chance(80))
    return arr[pick(n)];
  static const int v[] = {1, 0, -1, 65536, 70000};
  return ONE_OF(v);
}

/* Nested operations from a callback (bounded). */
static void maybe_nested(void) {
  if (depth < 2 && chance(25)) {
    aloop_loop_t *saved = cur_loop;
    depth++;
    run_ops(1 + pick(2));
    depth--;
    cur_loop = saved;
  }
}

/* ======================================================================== */
/* Callbacks                                                                 */
/* ======================================================================== */

static void cb_call(aloop_loop_t *l, void *p) {
  cb_enter(p, "scheduled callback");
  maybe_nested();
}
static void cb_future(aloop_future_t *f, void *p) {
  cb_enter(p, "done-callback");
  h_add(K_FUTURE, f, MAYBE);
  maybe_nested();
}
static void cb_fd(aloop_loop_t *l, int fd, void *p) {
  cb_enter(p, "fd callback");
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  if (chance(50) && poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN)) {
    char buf[512]; /* drain (never blocks: it is readable) */
    ssize_t r = read(fd, buf, sizeof buf);
    (void)r;
  }
  if (chance(30)) {
    CALL(aloop_remove_reader(l, fd));
    CALL(aloop_remove_writer(l, fd));
  }
  maybe_nested();
}
static char last_report[512]; /* the last exception context's message */

static void cb_exc(aloop_loop_t *l, const aloop_exception_context_t *c,
                   void *p) {
  ud_check(p, "exception handler");
  if (c && c->message)
    snprintf(last_report, sizeof last_report, "%s%s%s", c->message,
             c->error_detail ? ": " : "", c->error_detail ? c->error_detail : "");
  if (!pthread_equal(pthread_self(), main_thread))
    die("exception handler ran on another thread");
  if (c == NULL || c->size < offsetof(aloop_exception_context_t, datagram) ||
      c->message == NULL)
    die("exception context without size or message");
  size_t n = strlen(c->message);
  (void)n;
  if (c->error_detail)
    n = strlen(c->error_detail);
  if (c->transport)
    h_add(K_TRANSPORT, c->transport, MAYBE);
  if (c->server)
    h_add(K_SERVER, c->server, MAYBE);
  if (c->future)
    h_add(K_FUTURE, c->future, MAYBE);
}
static void cb_wake(aloop_loop_t *l, void *p) {
  /* THREAD-SAFE: any thread */
  struct ud *u = p;
  if (u == NULL || u->magic != UD_MAGIC)
    die("wake-up callback got userdata %p that is not ours", p);
  if (atomic_load(&u->freed))
    die("wake-up callback ran with userdata #%d after its free_cb (issue 9, item 3)",
        u->id);
}
static void cb_signal(aloop_loop_t *l, int signum, void *p) {
  cb_enter(p, "signal handler");
  maybe_nested();
}
static void *cb_job(void *arg) {
  struct ud *u = arg;
  if (u == NULL || u->magic != UD_MAGIC || atomic_load(&u->freed))
    die("executor job got a bad or freed argument");
  if (pthread_equal(pthread_self(), main_thread))
    die("executor job ran on the loop thread");
  if (u->ms > 0)
    usleep((useconds_t)u->ms * 1000);
  return arg;
}

/* stream protocol */
static void p_made(aloop_transport_t *t, void *p) {
  cb_enter(p, "connection_made");
  h_add(K_TRANSPORT, t, LIVE);
  /* Cancelling or failing the transport's future from in here once ran
   * free_cb while the transport lived on (found by this harness). */
  maybe_nested();
}
static void p_data(aloop_transport_t *t, const char *d, size_t n, void *p) {
  struct ud *u = cb_enter(p, "data_received");
  if (u->lost)
    die("data_received after connection_lost");
  volatile char sink = 0;
  for (size_t i = 0; i < n; i += 4096)
    sink ^= d[i];
  if (n)
    sink ^= d[n - 1];
  (void)sink;
  if (chance(20))
    CALL(aloop_transport_write(t, d, n)); /* echo */
  maybe_nested();
}
static int p_eof(aloop_transport_t *t, void *p) {
  cb_enter(p, "eof_received");
  maybe_nested();
  return chance(50);
}
static void p_lost(aloop_transport_t *t, int err, void *p) {
  struct ud *u = cb_enter(p, "connection_lost");
  if (u->lost++)
    die("connection_lost twice");
  if (err > 0 || err <= -4096)
    die("connection_lost with %d", err);
  if (bucket(err) < 0 && !host_chose(err))
    die("connection_lost with %d, which is no ALOOP_E* code", err);
  maybe_nested(); /* the handle is valid until connection_lost returns */
  h_stale(t);
}
static void p_pause(aloop_transport_t *t, void *p) {
  ud_check(p, "pause_writing");
}
static void p_resume(aloop_transport_t *t, void *p) {
  ud_check(p, "resume_writing");
}
static void *p_get_buffer(aloop_transport_t *t, size_t hint, size_t *len,
                          void *p) {
  struct ud *u = cb_enter(p, "get_buffer");
  if (u->gbuf == NULL) {
    u->gbuf_len = 1 + rnd_len() % 70000;
    u->gbuf = malloc(u->gbuf_len);
  }
  u->in_get = 1;
  *len = u->gbuf_len;
  return u->gbuf;
}
static void p_updated(aloop_transport_t *t, size_t n, void *p) {
  struct ud *u = cb_enter(p, "buffer_updated");
  if (!u->in_get)
    die("buffer_updated without get_buffer");
  if (n > u->gbuf_len)
    die("buffer_updated(%zu) past the %zu bytes of get_buffer", n, u->gbuf_len);
  u->in_get = 0;
  if (n)
    (void)((volatile char *)u->gbuf)[n - 1];
}

/* A protocol, sometimes with a wrong size or without callbacks. */
static aloop_protocol_t *make_protocol(void) {
  aloop_protocol_t *pr = kept(calloc(1, sizeof *pr));
  pr->size = sizeof *pr;
  if (chance(5))
    pr->size = (size_t)pick(2 * sizeof *pr);
  if (!chance(5)) {
    pr->connection_made = p_made;
    pr->data_received = p_data;
    pr->eof_received = p_eof;
    pr->connection_lost = p_lost;
    pr->pause_writing = p_pause;
    pr->resume_writing = p_resume;
    if (chance(15)) {
      pr->get_buffer = p_get_buffer;
      pr->buffer_updated = p_updated;
    }
  }
  return pr;
}

/* datagram protocol */
static void d_made(aloop_datagram_t *d, void *p) {
  cb_enter(p, "datagram connection_made");
  h_add(K_DGRAM, d, LIVE);
}
static void d_recv(aloop_datagram_t *d, const char *data, size_t n,
                   const char *host, int port, void *p) {
  cb_enter(p, "datagram_received");
  if (host == NULL)
    die("datagram_received without host");
  (void)strlen(host);
  if (n)
    (void)((volatile const char *)data)[n - 1];
  maybe_nested();
}
static void d_err(aloop_datagram_t *d, int err, void *p) {
  ud_check(p, "error_received");
  if (err >= 0 || err <= -4096)
    die("error_received(%d)", err);
  if (bucket(err) < 0 && !host_chose(err))
    die("error_received(%d), which is no ALOOP_E* code", err);
}
static void d_lost(aloop_datagram_t *d, int err, void *p) {
  struct ud *u = cb_enter(p, "datagram connection_lost");
  if (u->lost++)
    die("datagram connection_lost twice");
  h_stale(d);
}
static void d_pause(aloop_datagram_t *d, void *p) { ud_check(p, "pause"); }

static aloop_datagram_protocol_t *make_dgram_protocol(void) {
  aloop_datagram_protocol_t *pr = kept(calloc(1, sizeof *pr));
  pr->size = chance(5) ? (size_t)pick(2 * sizeof *pr) : sizeof *pr;
  pr->connection_made = d_made;
  pr->datagram_received = d_recv;
  pr->error_received = d_err;
  pr->connection_lost = d_lost;
  pr->pause_writing = d_pause;
  pr->resume_writing = d_pause;
  return pr;
}

/* subprocess protocol */
static void s_made(aloop_subprocess_t *s, void *p) {
  cb_enter(p, "subprocess connection_made");
  h_add(K_PROC, s, LIVE);
}
static void s_data(aloop_subprocess_t *s, int fd, const char *d, size_t n,
                   void *p) {
  cb_enter(p, "pipe_data_received");
  if (fd != 1 && fd != 2)
    die("pipe_data_received on fd %d", fd);
  if (n == 0)
    die("pipe_data_received with 0 bytes");
  (void)((volatile const char *)d)[n - 1];
}
static void s_pipe_lost(aloop_subprocess_t *s, int fd, int err, void *p) {
  cb_enter(p, "pipe_connection_lost");
}
static void s_exited(aloop_subprocess_t *s, void *p) {
  cb_enter(p, "process_exited");
  maybe_nested();
}
static void s_lost(aloop_subprocess_t *s, int err, void *p) {
  struct ud *u = cb_enter(p, "subprocess connection_lost");
  if (u->lost++)
    die("subprocess connection_lost twice");
  h_stale(s);
}

static int on_connection(aloop_server_t *s, aloop_transport_t *t, void *p) {
  cb_enter(p, "on_connection");
  h_add(K_SERVER, s, LIVE);
  h_add(K_TRANSPORT, t, LIVE);
  if (chance(10))
    return -1;
  if (chance(90)) {
    struct ud *u = ud_new(U_PROTO);
    u->has_free = chance(80);
    aloop_protocol_t *pr = make_protocol();
    int rc = CALL(aloop_transport_set_protocol(t, pr, u,
                                               u->has_free ? ud_free_cb : NULL));
    ud_after(u, rc, "aloop_transport_set_protocol");
  }
  maybe_nested();
  return 0;
}

/* ======================================================================== */
/* Helper thread: the THREAD-SAFE functions, concurrently                   */
/* ======================================================================== */

static pthread_t helper;
static int helper_running;
static atomic_int helper_stop;
static _Atomic(uint64_t) shared_loops[4];
static uint64_t helper_seed;

static void *helper_main(void *arg) {
  uint64_t x = helper_seed;
  while (!atomic_load(&helper_stop)) {
    uint64_t r = splitmix(&x);
    aloop_loop_t *l = (aloop_loop_t *)(uintptr_t)atomic_load(&shared_loops[r % 4]);
    switch ((r >> 8) % 6) {
    case 0:
    case 1: {
      struct ud *u = ud_new(U_CALLBACK);
      u->has_free = (r >> 16) & 1;
      int rc = CALL(aloop_call_soon_threadsafe(l, cb_call, u,
                                               u->has_free ? ud_free_cb : NULL,
                                               NULL));
      /* (on success the loop thread may have run it already) */
      if (rc < 0)
        ud_after(u, rc, "aloop_call_soon_threadsafe (helper thread)");
      break;
    }
    case 2: CALL(aloop_loop_wakeup(l)); break;
    case 3: if (((r >> 20) & 15) == 0) CALL(aloop_loop_stop(l)); break;
    case 4: { size_t n; CALL(aloop_live_handles(&n)); break; }
    default: {
      char buf[64];
      CALL(aloop_last_error(buf, 1 + (r >> 24) % sizeof buf));
      (void)aloop_strerror((int)(r >> 32));
      (void)aloop_err_name((int)(r >> 40));
    }
    }
    if ((r >> 50) & 1)
      usleep(50);
  }
  return NULL;
}

static void publish_loops(void) {
  aloop_loop_t *ls[4] = {0};
  int n = live_loops(ls, 4);
  for (int i = 0; i < 4; i++)
    atomic_store(&shared_loops[i], (uint64_t)(uintptr_t)(i < n ? ls[i] : NULL));
}

/* ======================================================================== */
/* Operations                                                                */
/* ======================================================================== */

static aloop_loop_t *loop_pick(int *bad) {
  cur_loop = (aloop_loop_t *)h_pick(K_LOOP, bad);
  return cur_loop;
}
#define LOOP(bad) loop_pick(&bad)

static aloop_tls_config_t *tls_pick(int *bad) {
  return (aloop_tls_config_t *)h_pick(K_TLS, bad);
}

static void track_future(aloop_future_t *f, int rc) {
  if (rc >= 0 && f) {
    struct hent *e = h_add(K_FUTURE, f, LIVE);
    if (e) {
      e->owned = 1;
      e->loop = cur_loop;
    }
  }
}

static void track_maker_future(aloop_future_t *f, int rc) {
  track_future(f, rc);
  struct hent *e = rc >= 0 && f ? h_find(f) : NULL;
  if (e)
    e->makes_obj = 1;
}

/* Before we free a future of ours that makes an object: half of the time
 * it is cancelled if pending and its result is read; otherwise it is freed
 * unread, and an object only it leads to (a server; a transport, endpoint
 * or subprocess whose protocol has no connection_made) must be closed by
 * the library (it once stayed out of reach and kept its loop from closing
 * for good: found by this harness). */
static void before_free(struct hent *e) {
  void *f = (void *)(uintptr_t)e->v;
  if (!e->owned || !e->makes_obj)
    return;
  if (chance(50))
    return;
  if (aloop_future_done(f) == 0)
    aloop_future_cancel(f);
  aloop_server_t *s = NULL;
  aloop_transport_t *t = NULL;
  aloop_datagram_t *d = NULL;
  aloop_subprocess_t *p = NULL;
  if (aloop_future_result_server(f, &s) == 0 && s)
    h_add(K_SERVER, s, LIVE);
  if (aloop_future_result_transport(f, &t) == 0 && t)
    h_add(K_TRANSPORT, t, MAYBE);
  if (aloop_future_result_datagram(f, &d) == 0 && d)
    h_add(K_DGRAM, d, MAYBE);
  if (aloop_future_result_subprocess(f, &p) == 0 && p)
    h_add(K_PROC, p, MAYBE);
}

static char *rnd_buf(size_t n) {
  char *p = malloc(n ? n : 1);
  for (size_t i = 0; i < n && i < 64; i++)
    p[i] = (char)b8();
  return kept(p);
}

static const char *tcp_hosts[] = {"127.0.0.1", "::1", "localhost"};
static const char *num_hosts[] = {"127.0.0.1", "::1", "0.0.0.0", "::",
                                  "1.2.3", "::ffff:127.0.0.1", "not-a-host!",
                                  "", "127.0.0.1%lo", "999.1.1.1"};

static void op_loop(int which) {
  int bad;
  aloop_loop_t *l;
  switch (which) {
  case 0: { /* new */
    aloop_loop_t *ls[4];
    if (live_loops(ls, 4) >= 3)
      return;
    aloop_loop_t *nl = NULL;
    if (CALL(aloop_loop_new(&nl)) == 0) {
      h_add(K_LOOP, nl, LIVE);
      if (chance(90)) { /* our handler: no noise on stderr */
        struct ud *u = ud_new(U_EXC);
        u->has_free = 1;
        int rc = CALL(aloop_loop_set_exception_handler(nl, cb_exc, u, ud_free_cb));
        ud_after(u, rc, "aloop_loop_set_exception_handler");
      }
      publish_loops();
    }
    break;
  }
  case 1:
    l = LOOP(bad);
    CALL_H(bad, aloop_loop_close(l));
    break;
  case 2:
    l = LOOP(bad);
    if (CALL_H(bad, aloop_loop_free(l)) == 0) {
      h_stale(l);
      publish_loops();
    }
    break;
  case 3: { /* run */
    l = LOOP(bad);
    int mode = chance(90) ? pick(3) : rnd_int();
    if (mode == ALOOP_RUN_DEFAULT)
      CALL(aloop_loop_stop(l)); /* one iteration, then return */
    if (mode == ALOOP_RUN_ONCE)
      CALL(aloop_loop_wakeup(l)); /* never wait long */
    run_depth++;
    CALL_H(bad, aloop_loop_run(l, (aloop_run_mode_t)mode));
    run_depth--;
    break;
  }
  case 4: { /* run_once */
    l = LOOP(bad);
    double t = (double)pick(11) / 1000.0;
    if (chance(10)) {
      CALL(aloop_loop_wakeup(l));
      t = -1.0;
    }
    run_depth++;
    CALL_H(bad, aloop_loop_run_once(l, t));
    run_depth--;
    break;
  }
  case 5: { /* run_until_complete: after a stop, or on a done future */
    l = LOOP(bad);
    int fbad;
    aloop_future_t *f = (aloop_future_t *)h_pick(K_FUTURE, &fbad);
    CALL(aloop_loop_stop(l));
    run_depth++;
    int rc = CALL(aloop_loop_run_until_complete(l, f));
    run_depth--;
    if ((bad || fbad) && rc != ALOOP_EBADF)
      die("run_until_complete with a bad handle returned %d", rc);
    break;
  }
  case 6:
    l = LOOP(bad);
    CALL_H(bad, aloop_loop_stop(l));
    break;
  case 7:
    l = LOOP(bad);
    CALL_H(bad, aloop_loop_wakeup(l));
    break;
  case 8: { /* queries */
    l = LOOP(bad);
    double d;
    int ms;
    switch (pick(9)) {
    case 0: CALL_H(bad, aloop_loop_is_running(l)); break;
    case 1: CALL_H(bad, aloop_loop_is_closed(l)); break;
    case 2: CALL_H(bad, aloop_loop_alive(l)); break;
    case 3: CALL_H(bad, aloop_loop_time(l, chance(90) ? &d : NULL)); break;
    case 4: CALL_H(bad, aloop_loop_get_debug(l)); break;
    case 5: CALL_H(bad, aloop_loop_backend_fd(l)); break;
    case 6: CALL_H(bad, aloop_loop_backend_timeout(l, chance(90) ? &ms : NULL)); break;
    case 7: CALL_H(bad, aloop_loop_get_slow_callback_duration(l, chance(90) ? &d : NULL)); break;
    default: {
      aloop_exception_cb cb;
      void *ud;
      CALL_H(bad, aloop_loop_get_exception_handler(l, chance(90) ? &cb : NULL,
                                                   chance(90) ? &ud : NULL));
    }
    }
    break;
  }
  case 9:
    l = LOOP(bad);
    CALL_H(bad, aloop_loop_set_debug(l, rnd_int()));
    break;
  case 10:
    l = LOOP(bad);
    CALL_H(bad, aloop_loop_set_slow_callback_duration(l, rnd_double()));
    break;
  case 11: { /* wake-up callback */
    l = LOOP(bad);
    struct ud *u = ud_new(U_WAKE);
    /* issue 9, item 3: the userdata of a replaced wake-up callback must not
     * be freed while another thread may be calling it */
    u->has_free = chance(70);
    aloop_wakeup_cb wcb = chance(80) ? cb_wake : NULL;
    int rc = CALL_H(bad, aloop_loop_set_wakeup_cb(l, wcb, u, u->has_free ? ud_free_cb : NULL));
    /* (cb NULL removes the callback: its userdata may be dropped at once) */
    if (wcb || rc < 0)
      ud_after(u, rc, "aloop_loop_set_wakeup_cb");
    break;
  }
  }
}

static void op_schedule(int which) {
  int bad;
  aloop_loop_t *l = LOOP(bad);
  struct ud *u = ud_new(U_CALLBACK);
  u->has_free = chance(70);
  aloop_free_cb fcb = u->has_free ? ud_free_cb : NULL;
  aloop_callback_cb cb = chance(97) ? cb_call : NULL;
  aloop_handle_t *h = NULL;
  aloop_handle_t **out = chance(60) ? &h : NULL;
  int rc = 0;
  switch (which) {
  case 0: rc = CALL_H(bad, aloop_call_soon(l, cb, u, fcb, out)); break;
  case 1: rc = CALL_H(bad, aloop_call_soon_threadsafe(l, cb, u, fcb, out)); break;
  case 2:
  default: {
    double now = 0, t = rnd_double();
    if (which == 2) {
      rc = CALL_H(bad, aloop_call_later(l, t, cb, u, fcb, out));
    } else {
      if (!bad && chance(50) && aloop_loop_time(l, &now) == 0)
        t += now;
      rc = CALL_H(bad, aloop_call_at(l, t, cb, u, fcb, out));
    }
    /* issue 9, item 6: a NaN time is ALOOP_EINVAL (never a hang) */
    if (isnan(t) && !bad && cb && rc != ALOOP_EINVAL && rc != ALOOP_ECLOSED &&
        rc != ALOOP_ENOTLOOPTHREAD)
      die("call_later/call_at(NaN) returned %d (%s), not ALOOP_EINVAL", rc,
          aloop_err_name(rc));
  }
  }
  ud_after(u, rc, "call_soon/later/at");
  if (rc == 0 && h)
    h_add(K_HANDLE, h, MAYBE);
}

static void op_handle(int which) {
  int bad;
  aloop_handle_t *h = (aloop_handle_t *)h_pick(K_HANDLE, &bad);
  if (which == 0) {
    if (CALL_H(bad, aloop_handle_cancel(h)) == 0)
      h_stale(h);
  } else {
    double w;
    CALL_H(bad, aloop_handle_when(h, chance(90) ? &w : NULL));
  }
}

static void op_future(int which) {
  int bad;
  aloop_future_t *f;
  if (which == 0) {
    aloop_loop_t *l = LOOP(bad);
    f = NULL;
    int rc = CALL_H(bad, aloop_future_new(l, chance(95) ? &f : NULL));
    track_future(f, rc);
    struct hent *e = rc == 0 && f ? h_find(f) : NULL;
    if (e)
      e->host_made = 1;
    return;
  }
  f = (aloop_future_t *)h_pick(K_FUTURE, &bad);
  struct hent *e = h_find(f);
  switch (which) {
  case 1:
    if (e && e->accept_fd_future) {
      /* the accepted fd is ours to close: read it before the future goes */
      CALL(aloop_future_cancel(f));
      int fd = -1;
      if (aloop_future_done(f) == 1 && aloop_future_result_fd(f, &fd) == 0 && fd >= 0)
        fd_own(fd);
      e->accept_fd_future = 0;
    }
    if (e && e->sock_op && e->owned)
      CALL(aloop_future_cancel(f));
    if (e)
      before_free(e);
    if (CALL_H(bad, aloop_future_free(f)) == 0 && e) {
      e->owned = 0;
      e->state = MAYBE;
    }
    break;
  case 2: CALL_H(bad, aloop_future_done(f)); break;
  case 3: CALL_H(bad, aloop_future_cancelled(f)); break;
  case 4: CALL_H(bad, aloop_future_cancel(f)); break;
  case 5:
  case 6:
    /* Completing the future of a library operation (a connection, a
     * pipe) with set_result before the library does once abandoned the
     * operation without ever calling free_cb (found by this harness). */
    if (which == 5) {
      CALL_H(bad, aloop_future_set_result(f, (void *)(uintptr_t)u64()));
    } else {
      static const char *msgs[] = {NULL, "", "boom", "a longer message about it"};
      /* mostly codes of the list (an unlisted one set here would show up
       * among the driver's notes) */
      int code = chance(90) ? known_codes[pick(NCODES)] : (chance(50) ? -pick(4000) : rnd_int());
      if (code == ALOOP_EPANIC) /* a getter would return it: as if it panicked */
        code = ALOOP_EIO;
      CALL_H(bad, aloop_future_set_exception(f, host_code(code), ONE_OF(msgs)));
    }
    break;
  case 7: { /* result getters */
    void *r;
    aloop_transport_t *t;
    aloop_server_t *s;
    aloop_datagram_t *d;
    aloop_subprocess_t *p;
    size_t n;
    int fd;
    int rc;
    switch (pick(9)) {
    case 0: CALL_H(bad, aloop_future_result(f, chance(90) ? &r : NULL)); break;
    case 1:
      t = NULL;
      rc = CALL_H(bad, aloop_future_result_transport(f, chance(90) ? &t : NULL));
      if (rc == 0 && t)
        h_add(K_TRANSPORT, t, MAYBE);
      break;
    case 2:
      s = NULL;
      rc = CALL_H(bad, aloop_future_result_server(f, chance(90) ? &s : NULL));
      if (rc == 0 && s)
        h_add(K_SERVER, s, LIVE);
      break;
    case 3:
      d = NULL;
      rc = CALL_H(bad, aloop_future_result_datagram(f, chance(90) ? &d : NULL));
      if (rc == 0 && d)
        h_add(K_DGRAM, d, MAYBE);
      break;
    case 4:
      p = NULL;
      rc = CALL_H(bad, aloop_future_result_subprocess(f, chance(90) ? &p : NULL));
      if (rc == 0 && p)
        h_add(K_PROC, p, MAYBE);
      break;
    case 5: CALL_H(bad, aloop_future_result_size(f, chance(90) ? &n : NULL)); break;
    case 6: {
      void *data = NULL;
      size_t len = 0;
      rc = CALL_H(bad, aloop_future_result_bytes(f, chance(90) ? &data : NULL,
                                                  chance(90) ? &len : NULL));
      if (rc == 0 && data) {
        if (len)
          (void)((volatile char *)data)[len - 1];
        CALL(aloop_buffer_free(data));
      }
      break;
    }
    case 7: {
      fd = -1;
      rc = CALL_H(bad, aloop_future_result_fd(f, chance(90) ? &fd : NULL));
      if (rc == 0 && fd >= 0 && e && e->accept_fd_future) {
        fd_own(fd);
        e->accept_fd_future = 0;
      }
      break;
    }
    default: {
      size_t hl = rnd_len() % 300;
      char *host = chance(80) ? rnd_buf(hl) : NULL;
      int port;
      CALL_H(bad, aloop_future_result_addr(f, host, host ? hl : 0,
                                           chance(80) ? &port : NULL));
    }
    }
    break;
  }
  case 8: CALL_H(bad, aloop_future_exception(f)); break;
  case 9: {
    size_t n = rnd_len() % 600;
    char *buf = chance(90) ? rnd_buf(n) : NULL;
    CALL_H(bad, aloop_future_error_message(f, buf, buf ? n : 0));
    break;
  }
  case 10: {
    struct ud *u = ud_new(U_FUTURE_CB);
    u->has_free = chance(70);
    int rc = CALL_H(bad, aloop_future_add_done_callback(
                             f, chance(97) ? cb_future : NULL, u,
                             u->has_free ? ud_free_cb : NULL));
    ud_after(u, rc, "aloop_future_add_done_callback");
    break;
  }
  case 11: { /* remove: a userdata of ours, or another */
    pthread_mutex_lock(&ud_mu);
    int n = nud;
    pthread_mutex_unlock(&ud_mu);
    struct ud *u = n > 0 ? uds[pick(n)] : NULL;
    CALL_H(bad, aloop_future_remove_done_callback(f, cb_future, u));
    break;
  }
  case 12: { /* addrinfo / nameinfo getters */
    if (chance(50)) {
      aloop_addrinfo_t *list = NULL;
      size_t count = 0;
      int rc = CALL_H(bad, aloop_future_result_addrinfo(f, chance(90) ? &list : NULL,
                                                        chance(70) ? &count : NULL));
      if (rc == 0 && list) {
        size_t k = 0;
        for (aloop_addrinfo_t *a = list; a; a = a->next, k++) {
          if (a->size < sizeof *a || a->host == NULL || a->canonname == NULL)
            die("addrinfo entry without size/host/canonname");
          (void)strlen(a->host);
          if (a->addrlen)
            (void)((volatile const char *)a->addr)[a->addrlen - 1];
        }
        CALL(aloop_addrinfo_free(list));
      }
    } else {
      size_t hl = rnd_len() % 300, sl = rnd_len() % 40;
      char *host = chance(80) ? rnd_buf(hl) : NULL;
      char *serv = chance(80) ? rnd_buf(sl) : NULL;
      CALL_H(bad, aloop_future_result_nameinfo(f, host, host ? hl : 0, serv,
                                               serv ? sl : 0));
    }
    break;
  }
  }
}

static void op_exception(int which) {
  int bad;
  aloop_loop_t *l = LOOP(bad);
  switch (which) {
  case 0: {
    struct ud *u = ud_new(U_EXC);
    u->has_free = chance(80);
    aloop_exception_cb ecb = chance(90) ? cb_exc : NULL;
    int rc = CALL_H(bad, aloop_loop_set_exception_handler(l, ecb, u,
                                                          u->has_free ? ud_free_cb : NULL));
    /* (cb NULL restores the default handler: the userdata may be dropped
     * at once) */
    if (ecb || rc < 0)
      ud_after(u, rc, "aloop_loop_set_exception_handler");
    break;
  }
  case 1: {
    static const char *msgs[] = {NULL, "", "fuzz", "%s%s%n"};
    CALL_H(bad, aloop_loop_call_exception_handler(l, ONE_OF(msgs),
                                                  host_code(chance(70) ? -pick(200) : rnd_int())));
    break;
  }
  default: {
    aloop_exception_context_t c;
    memset(&c, 0, sizeof c);
    c.size = chance(90) ? sizeof c : (size_t)pick(sizeof c);
    c.message = chance(90) ? "fuzz context" : NULL;
    c.error = host_code(-pick(200));
    CALL_H(bad, aloop_loop_default_exception_handler(l, chance(95) ? &c : NULL));
  }
  }
}

static void op_fd_watch(int which) {
  int bad;
  aloop_loop_t *l = LOOP(bad);
  int fd = fd_pick();
  if (which < 2) {
    struct ud *u = ud_new(U_FD);
    u->has_free = chance(70);
    aloop_fd_cb cb = chance(97) ? cb_fd : NULL;
    int rc = which == 0
                 ? CALL_H(bad, aloop_add_reader(l, fd, cb, u, u->has_free ? ud_free_cb : NULL))
                 : CALL_H(bad, aloop_add_writer(l, fd, cb, u, u->has_free ? ud_free_cb : NULL));
    ud_after(u, rc, "aloop_add_reader/writer");
    if (rc == 0 && nwatched < 256) {
      watched[nwatched].loop = l;
      watched[nwatched].fd = fd;
      nwatched++;
    }
  } else if (which == 2) {
    CALL_H(bad, aloop_remove_reader(l, fd));
  } else {
    CALL_H(bad, aloop_remove_writer(l, fd));
  }
}

/* Options structs: sometimes cut short (exactly `size` bytes allocated, so
 * a read past them is seen by ASan), sometimes NULL. */
static void *opts_alloc(size_t full, size_t *size_out) {
  size_t size = full;
  if (chance(10))
    size = sizeof(size_t) + (size_t)pick((int)(full - sizeof(size_t)) + 1);
  void *p = kept(calloc(1, size < full ? size : full));
  *size_out = size;
  return p;
}

static void op_tcp_server(void) {
  int bad;
  aloop_loop_t *l = LOOP(bad);
  if (count_kind(K_SERVER, LIVE) >= 6)
    return;
  size_t size;
  aloop_server_options_t *o = NULL;
  if (chance(60)) {
    o = opts_alloc(sizeof *o, &size);
    o->size = size;
#define FIELD_FITS(o, f) (offsetof(__typeof__(*o), f) + sizeof(o->f) <= size)
    if (FIELD_FITS(o, backlog)) o->backlog = chance(50) ? 0 : rnd_int();
    if (FIELD_FITS(o, reuse_address)) o->reuse_address = pick(3) - 1;
    if (FIELD_FITS(o, reuse_port)) o->reuse_port = pick(2);
    if (FIELD_FITS(o, start_serving)) o->start_serving = pick(3) - 1;
    if (FIELD_FITS(o, hosts) && chance(20)) {
      static const char *const h1[] = {"127.0.0.1", "::1", NULL};
      static const char *const h2[] = {NULL};
      o->hosts = chance(70) ? h1 : h2;
    }
    if (FIELD_FITS(o, family)) o->family = chance(80) ? 0 : (chance(50) ? AF_INET6 : 12345);
    if (FIELD_FITS(o, tls) && chance(30)) {
      int tb;
      o->tls = tls_pick(&tb);
    }
  }
  const char *host = (o && o->size >= sizeof *o && o->hosts) ? NULL : ONE_OF(tcp_hosts);
  struct ud *u = ud_new(U_SERVER);
  u->has_free = chance(80);
  aloop_future_t *f = NULL;
  int rc = CALL_H(bad, aloop_create_server(l, host, chance(95) ? 0 : rnd_int(),
                                           chance(97) ? on_connection : NULL, u,
                                           u->has_free ? ud_free_cb : NULL, o,
                                           chance(97) ? &f : NULL));
  ud_after(u, rc, "aloop_create_server");
  track_maker_future(f, rc);
  if (rc == 0 && !bad) { /* wait for it, to learn its port */
    run_depth++;
    CALL(aloop_loop_run_until_complete(l, f));
    run_depth--;
    aloop_server_t *s = NULL;
    if (aloop_future_result_server(f, &s) == 0 && s) {
      h_add(K_SERVER, s, LIVE);
      int port = 0;
      if (CALL(aloop_server_sockname(s, 0, NULL, 0, &port)) == 0)
        add_port(tcp_ports, &ntcp_ports, port);
    }
  }
}

static void op_tcp_connect(void) {
  int bad;
  aloop_loop_t *l = LOOP(bad);
  if (count_kind(K_TRANSPORT, LIVE) >= 40)
    return;
  size_t size;
  aloop_connect_options_t *o = NULL;
  if (chance(40)) {
    o = opts_alloc(sizeof *o, &size);
    o->size = size;
    if (FIELD_FITS(o, local_host) && chance(20)) o->local_host = "127.0.0.1";
    if (FIELD_FITS(o, happy_eyeballs_delay) && chance(30))
      o->happy_eyeballs_delay = chance(70) ? 0.25 : rnd_double();
    if (FIELD_FITS(o, interleave)) o->interleave = pick(4) - 1;
    if (FIELD_FITS(o, family)) o->family = chance(80) ? 0 : AF_INET;
    if (FIELD_FITS(o, tls) && chance(40)) {
      int tb;
      o->tls = tls_pick(&tb);
    }
    if (FIELD_FITS(o, server_hostname) && chance(50))
      o->server_hostname = chance(80) ? "localhost" : "wrong.example";
  }
  struct ud *u = ud_new(U_PROTO);
  u->has_free = chance(80);
  aloop_protocol_t *pr = chance(97) ? make_protocol() : NULL;
  aloop_future_t *f = NULL;
  int rc = CALL_H(bad, aloop_create_connection(
                           l, chance(90) ? ONE_OF(tcp_hosts) : NULL,
                           port_pick(tcp_ports, ntcp_ports), pr, u,
                           u->has_free ? ud_free_cb : NULL, o, chance(97) ? &f : NULL));
  ud_after(u, rc, "aloop_create_connection");
  track_maker_future(f, rc);
}

static void op_unix(int which) {
  int bad;
  aloop_loop_t *l = LOOP(bad);
  char path[300];
  switch (pick(5)) {
  case 0: snprintf(path, sizeof path, "@aloop-fuzz-%d-%d", (int)getpid(), pick(4)); break;
  case 1: snprintf(path, sizeof path, "%s/s%d", tmpdir, pick(4)); break;
  case 2: path[0] = 0; break;
  case 3: memset(path, 'x', 200); path[0] = '/'; path[200] = 0; break;
  default:
    if (nunix_paths > 0)
      snprintf(path, sizeof path, "%.107s", unix_paths[pick(nunix_paths)]);
    else
      snprintf(path, sizeof path, "/nonexistent/dir/s");
  }
  aloop_future_t *f = NULL;
  if (which == 0) {
    if (count_kind(K_SERVER, LIVE) >= 6)
      return;
    size_t size;
    aloop_unix_server_options_t *o = NULL;
    if (chance(50)) {
      o = opts_alloc(sizeof *o, &size);
      o->size = size;
      if (FIELD_FITS(o, backlog)) o->backlog = pick(5);
      if (FIELD_FITS(o, start_serving)) o->start_serving = pick(3) - 1;
      if (FIELD_FITS(o, cleanup_socket)) o->cleanup_socket = pick(3) - 1;
      if (FIELD_FITS(o, tls) && chance(20)) {
        int tb;
        o->tls = tls_pick(&tb);
      }
    }
    struct ud *u = ud_new(U_SERVER);
    u->has_free = chance(80);
    int rc = CALL_H(bad, aloop_create_unix_server(l, chance(97) ? path : NULL,
                                                  on_connection, u,
                                                  u->has_free ? ud_free_cb : NULL, o, &f));
    ud_after(u, rc, "aloop_create_unix_server");
    track_maker_future(f, rc);
    if (rc == 0 && nunix_paths < 16)
      snprintf(unix_paths[nunix_paths++], 108, "%.107s", path);
  } else {
    if (count_kind(K_TRANSPORT, LIVE) >= 40)
      return;
    struct ud *u = ud_new(U_PROTO);
    u->has_free = chance(80);
    int rc = CALL_H(bad, aloop_create_unix_connection(l, chance(97) ? path : NULL,
                                                      make_protocol(), u,
                                                      u->has_free ? ud_free_cb : NULL, &f));
    ud_after(u, rc, "aloop_create_unix_connection");
    track_maker_future(f, rc);
  }
}

/* Transports over our own fds: accepted sockets and pipes. */
static void op_fd_transport(int which) {
  int bad;
  aloop_loop_t *l = LOOP(bad);
  if (count_kind(K_TRANSPORT, LIVE) >= 40)
    return;
  int fds[2] = {-1, -1};
  int give;
  if (chance(85)) {
    int r = which == 0 ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds)
                       : pipe2(fds, O_CLOEXEC);
    if (r != 0)
      return;
    fd_own(fds[0]);
    fd_own(fds[1]);
    give = which == 2 ? fds[1] : fds[0];
  } else {
    give = fd_pick(); /* someone else's, a bad one, ... */
    /* Not one another loop watches (add_reader/add_writer): the transport
     * closes it, behind that loop's back, and the number may come back as
     * a new fd of that loop (closing a watched fd is the caller's error:
     * the header says to remove the watcher first). Since futures freed
     * unread close their transports, this happens during the run too. */
    for (int i = 0; i < nwatched; i++)
      if (watched[i].fd == give && watched[i].loop != l)
        return;
  }
  struct ud *u = ud_new(U_PROTO);
  u->has_free = chance(80);
  aloop_protocol_t *pr = make_protocol();
  aloop_free_cb fcb = u->has_free ? ud_free_cb : NULL;
  aloop_future_t *f = NULL;
  int rc;
  switch (which) {
  case 0: rc = CALL_H(bad, aloop_connect_accepted_socket(l, give, pr, u, fcb, &f)); break;
  case 1: rc = CALL_H(bad, aloop_connect_read_pipe(l, give, pr, u, fcb, &f)); break;
  default: rc = CALL_H(bad, aloop_connect_write_pipe(l, give, pr, u, fcb, &f)); break;
  }
  ud_after(u, rc, "connect_accepted_socket/read_pipe/write_pipe");
  track_maker_future(f, rc);
  if (rc == 0)
    fd_disown(give); /* the transport owns it now */
}

static void op_server(int which) {
  int bad;
  aloop_server_t *s = (aloop_server_t *)h_pick(K_SERVER, &bad);
  switch (which) {
  case 0: CALL_H(bad, aloop_server_close(s)); break;
  case 1:
    if (CALL_H(bad, aloop_server_free(s)) == 0)
      h_stale(s);
    break;
  case 2: CALL_H(bad, aloop_server_start_serving(s)); break;
  case 3: CALL_H(bad, aloop_server_is_serving(s)); break;
  case 4: {
    aloop_future_t *f = NULL;
    int rc = CALL_H(bad, aloop_server_wait_closed(s, chance(95) ? &f : NULL));
    track_future(f, rc);
    break;
  }
  case 5: CALL_H(bad, aloop_server_socket_count(s)); break;
  case 6: CALL_H(bad, aloop_server_socket_fd(s, chance(80) ? pick(3) : rnd_int())); break;
  default: {
    size_t hl = rnd_len() % 100;
    char *host = chance(80) ? rnd_buf(hl) : NULL;
    int port;
    CALL_H(bad, aloop_server_sockname(s, chance(80) ? pick(3) : rnd_int(), host,
                                      host ? hl : 0, chance(80) ? &port : NULL));
  }
  }
}

/* The file of a sendfile: a temporary file, a bad fd, or any fd of ours,
 * such as a pipe nobody writes to (the fallback's reader once blocked in
 * read(2) and kept the loop from closing after a cancel too: found by this
 * harness). */
static int sendfile_source(void) {
  if (nfds > 0 && chance(20))
    return owned_fds[pick(nfds)];
  if (chance(10)) {
    static const int bad[] = {-1, 1000, 65535};
    return ONE_OF(bad);
  }
  char p[128];
  snprintf(p, sizeof p, "%s/file%d", tmpdir, pick(4));
  int file = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (file >= 0) {
    size_t n = rnd_len();
    char *b = rnd_buf(n);
    if (write(file, b, n) < 0) { /* ignore */ }
    fd_own(file);
  }
  return file;
}

static void op_transport(int which) {
  int bad;
  aloop_transport_t *t = (aloop_transport_t *)h_pick(K_TRANSPORT, &bad);
  switch (which) {
  case 0: { /* write */
    size_t n = rnd_len();
    if (chance(5)) { /* issue 9, item 4: refused (EINVAL), never read */
      if (CALL_H(bad, aloop_transport_write(t, "x", impossible_len())) == 0)
        die("aloop_transport_write accepted a length no buffer can have");
    } else
      CALL_H(bad, aloop_transport_write(t, chance(98) ? rnd_buf(n) : NULL, n));
    break;
  }
  case 1: { /* writev */
    size_t cnt = (size_t)pick(6);
    aloop_iovec_t *iov = kept(calloc(cnt ? cnt : 1, sizeof *iov));
    for (size_t i = 0; i < cnt; i++) {
      iov[i].len = rnd_len() % 9000;
      iov[i].base = chance(98) ? rnd_buf(iov[i].len) : NULL;
    }
    int huge = cnt && chance(5);
    if (huge)
      iov[0].len = impossible_len();
    if (CALL_H(bad, aloop_transport_writev(t, chance(97) ? iov : NULL, cnt)) == 0 && huge)
      die("aloop_transport_writev accepted a length no buffer can have");
    break;
  }
  case 2: CALL_H(bad, aloop_transport_close(t)); break;
  case 3: CALL_H(bad, aloop_transport_abort(t)); break;
  case 4: CALL_H(bad, aloop_transport_write_eof(t)); break;
  case 5: { /* queries */
    size_t a, b;
    void *ud;
    switch (pick(9)) {
    case 0: CALL_H(bad, aloop_transport_can_write_eof(t)); break;
    case 1: CALL_H(bad, aloop_transport_is_closing(t)); break;
    case 2: CALL_H(bad, aloop_transport_is_reading(t)); break;
    case 3: CALL_H(bad, aloop_transport_get_fd(t)); break;
    case 4: CALL_H(bad, aloop_transport_get_write_buffer_size(t, chance(90) ? &a : NULL)); break;
    case 5: CALL_H(bad, aloop_transport_get_write_buffer_limits(t, chance(90) ? &a : NULL,
                                                                chance(90) ? &b : NULL)); break;
    case 6: CALL_H(bad, aloop_transport_get_protocol(t, chance(90) ? &ud : NULL)); break;
    case 7: CALL_H(bad, aloop_transport_get_tls_version(t)); break;
    default: {
      size_t n = rnd_len() % 300;
      char *buf = chance(90) ? rnd_buf(n) : NULL;
      switch (pick(3)) {
      case 0: CALL_H(bad, aloop_transport_get_tls_cipher(t, buf, buf ? n : 0)); break;
      case 1: CALL_H(bad, aloop_transport_get_tls_alpn(t, buf, buf ? n : 0)); break;
      default: {
        size_t out;
        CALL_H(bad, aloop_transport_get_peer_certificate(t, buf, buf ? n : 0,
                                                         chance(90) ? &out : NULL));
      }
      }
    }
    }
    break;
  }
  case 6: CALL_H(bad, aloop_transport_pause_reading(t)); break;
  case 7: CALL_H(bad, aloop_transport_resume_reading(t)); break;
  case 8: {
    size_t hi = chance(50) ? rnd_len() : (size_t)u64(), lo = chance(50) ? rnd_len() : (size_t)u64();
    CALL_H(bad, aloop_transport_set_write_buffer_limits(t, hi, lo));
    break;
  }
  case 9: {
    size_t hl = rnd_len() % 120;
    char *host = chance(80) ? rnd_buf(hl) : NULL;
    int port;
    if (chance(50))
      CALL_H(bad, aloop_transport_get_peername(t, host, host ? hl : 0, chance(80) ? &port : NULL));
    else
      CALL_H(bad, aloop_transport_get_sockname(t, host, host ? hl : 0, chance(80) ? &port : NULL));
    break;
  }
  case 10: { /* replace the protocol */
    struct ud *u = ud_new(U_PROTO);
    u->has_free = chance(80);
    int rc = CALL_H(bad, aloop_transport_set_protocol(t, chance(97) ? make_protocol() : NULL, u,
                                                      u->has_free ? ud_free_cb : NULL));
    ud_after(u, rc, "aloop_transport_set_protocol");
    break;
  }
  case 11: { /* sendfile */
    int file = sendfile_source();
    aloop_future_t *f = NULL;
    int rc = CALL_H(bad, aloop_transport_sendfile(t, file, chance(80) ? 0 : (int64_t)u32() - 100,
                                                  chance(80) ? 0 : (int64_t)u32() - 100, pick(2),
                                                  chance(97) ? &f : NULL));
    track_future(f, rc);
    break;
  }
  default: { /* start_tls */
    int tb;
    aloop_tls_config_t *c = tls_pick(&tb);
    aloop_future_t *f = NULL;
    int rc = CALL(aloop_transport_start_tls(t, c, chance(70) ? "localhost" : NULL,
                                            chance(97) ? &f : NULL));
    if ((bad || tb) && rc != ALOOP_EBADF)
      die("start_tls with a bad handle returned %d", rc);
    track_future(f, rc);
  }
  }
}

static void op_dgram_new(void) {
  int bad;
  aloop_loop_t *l = LOOP(bad);
  if (count_kind(K_DGRAM, LIVE) >= 8)
    return;
  size_t size;
  aloop_datagram_options_t *o = NULL;
  const char *local = "127.0.0.1", *remote = NULL;
  int lport = 0, rport = 0;
  int unixd = 0;
  if (chance(50)) {
    o = opts_alloc(sizeof *o, &size);
    o->size = size;
    if (FIELD_FITS(o, family)) {
      static const int fam[] = {0, AF_INET, AF_INET6, AF_UNIX, 999};
      o->family = ONE_OF(fam);
      unixd = o->family == AF_UNIX;
    }
    if (FIELD_FITS(o, reuse_port)) o->reuse_port = pick(2);
    if (FIELD_FITS(o, allow_broadcast)) o->allow_broadcast = pick(2);
  }
  static char upath[160];
  switch (pick(5)) {
  case 0: local = NULL; break;
  case 1: local = "::1"; break;
  case 2:
    remote = "127.0.0.1";
    rport = port_pick(udp_ports, nudp_ports);
    break;
  case 3:
    local = NULL;
    remote = "127.0.0.1";
    rport = 9;
    break;
  default: break;
  }
  if (unixd) {
    snprintf(upath, sizeof upath, "%s/d%d", tmpdir, pick(4));
    local = chance(80) ? upath : NULL;
    remote = chance(30) ? upath : NULL;
  }
  struct ud *u = ud_new(U_DGRAM);
  u->has_free = chance(80);
  aloop_future_t *f = NULL;
  int rc = CALL_H(bad, aloop_create_datagram_endpoint(
                           l, local, lport, remote, rport,
                           chance(97) ? make_dgram_protocol() : NULL, u,
                           u->has_free ? ud_free_cb : NULL, o, chance(97) ? &f : NULL));
  ud_after(u, rc, "aloop_create_datagram_endpoint");
  track_maker_future(f, rc);
  if (rc == 0 && !bad) {
    run_depth++;
    CALL(aloop_loop_run_until_complete(l, f));
    run_depth--;
    aloop_datagram_t *d = NULL;
    if (aloop_future_result_datagram(f, &d) == 0 && d) {
      h_add(K_DGRAM, d, LIVE);
      int port = 0;
      if (CALL(aloop_datagram_get_sockname(d, NULL, 0, &port)) == 0)
        add_port(udp_ports, &nudp_ports, port);
    }
  }
}

static void op_dgram(int which) {
  int bad;
  aloop_datagram_t *d = (aloop_datagram_t *)h_pick(K_DGRAM, &bad);
  switch (which) {
  case 0: { /* sendto */
    size_t n = rnd_len();
    static const char *hosts[] = {NULL, "127.0.0.1", "::1", "not-numeric", "",
                                  "::ffff:127.0.0.1"};
    if (chance(3))
      n = impossible_len(); /* issue 9, item 4 */
    int rc = CALL_H(bad, aloop_datagram_sendto(d, n > 1000000 ? "x" : rnd_buf(n), n, ONE_OF(hosts),
                                               port_pick(udp_ports, nudp_ports)));
    if (rc == 0 && n > 1000000)
      die("aloop_datagram_sendto accepted a length no buffer can have");
    break;
  }
  case 1: CALL_H(bad, aloop_datagram_close(d)); break;
  case 2: CALL_H(bad, aloop_datagram_abort(d)); break;
  case 3: CALL_H(bad, aloop_datagram_is_closing(d)); break;
  case 4: {
    struct ud *u = ud_new(U_DGRAM);
    u->has_free = chance(80);
    int rc = CALL_H(bad, aloop_datagram_set_protocol(d, chance(97) ? make_dgram_protocol() : NULL,
                                                     u, u->has_free ? ud_free_cb : NULL));
    ud_after(u, rc, "aloop_datagram_set_protocol");
    break;
  }
  case 5: {
    void *ud;
    size_t a, b;
    switch (pick(5)) {
    case 0: CALL_H(bad, aloop_datagram_get_protocol(d, chance(90) ? &ud : NULL)); break;
    case 1: CALL_H(bad, aloop_datagram_get_write_buffer_size(d, chance(90) ? &a : NULL)); break;
    case 2: CALL_H(bad, aloop_datagram_get_write_buffer_limits(d, chance(90) ? &a : NULL,
                                                               chance(90) ? &b : NULL)); break;
    case 3: CALL_H(bad, aloop_datagram_set_write_buffer_limits(d, rnd_len(), rnd_len())); break;
    default: CALL_H(bad, aloop_datagram_get_fd(d));
    }
    break;
  }
  default: {
    size_t hl = rnd_len() % 200;
    char *host = chance(80) ? rnd_buf(hl) : NULL;
    int port;
    if (chance(50))
      CALL_H(bad, aloop_datagram_get_sockname(d, host, host ? hl : 0, chance(80) ? &port : NULL));
    else
      CALL_H(bad, aloop_datagram_get_peername(d, host, host ? hl : 0, chance(80) ? &port : NULL));
  }
  }
}

/* sock_* on sockets of our own. */
static int sock_of(int type) {
  if (chance(15))
    return fd_pick();
  int s = socket(chance(85) ? AF_INET : AF_UNIX,
                 type | SOCK_CLOEXEC | (chance(90) ? SOCK_NONBLOCK : 0), 0);
  if (s < 0)
    return -1;
  fd_own(s);
  if (type == SOCK_DGRAM || chance(30)) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) == 0 && type == SOCK_STREAM &&
        chance(50))
      listen(s, 8);
  }
  return s;
}

static void op_sock(int which) {
  int bad;
  aloop_loop_t *l = LOOP(bad);
  aloop_future_t *f = NULL;
  aloop_future_t **out = chance(97) ? &f : NULL;
  int rc = 0;
  int fd;
  size_t n = rnd_len();
  struct hent *e;
  switch (which) {
  case 0:
    fd = nfds && chance(60) ? owned_fds[pick(nfds)] : sock_of(SOCK_STREAM);
    rc = CALL_H(bad, aloop_sock_recv(l, fd, chance(3) ? impossible_len() : n, out));
    break;
  case 1: {
    fd = nfds && chance(60) ? owned_fds[pick(nfds)] : sock_of(SOCK_STREAM);
    char *buf = rnd_buf(n);
    rc = CALL_H(bad, aloop_sock_recv_into(l, fd, chance(97) ? buf : NULL, n, out));
    break;
  }
  case 2:
    fd = sock_of(SOCK_DGRAM);
    rc = CALL_H(bad, aloop_sock_recvfrom(l, fd, n, out));
    break;
  case 3: {
    fd = sock_of(SOCK_DGRAM);
    rc = CALL_H(bad, aloop_sock_recvfrom_into(l, fd, rnd_buf(n), n, out));
    break;
  }
  case 4:
    fd = nfds && chance(60) ? owned_fds[pick(nfds)] : sock_of(SOCK_STREAM);
    rc = CALL_H(bad, aloop_sock_sendall(l, fd, rnd_buf(n), n, out));
    break;
  case 5: {
    fd = sock_of(SOCK_DGRAM);
    static const char *hosts[] = {"127.0.0.1", "::1", "localhost", NULL, ""};
    rc = CALL_H(bad, aloop_sock_sendto(l, fd, rnd_buf(n % 70000), n % 70000, ONE_OF(hosts),
                                       port_pick(udp_ports, nudp_ports), out));
    break;
  }
  case 6: {
    fd = sock_of(SOCK_STREAM);
    /* "localhost" is resolved first: add_writer on the fd meanwhile once
     * left it counted as watched for good (found by this harness). */
    static const char *hosts[] = {"127.0.0.1", "::1", NULL, "localhost"};
    rc = CALL_H(bad, aloop_sock_connect(l, fd, ONE_OF(hosts), port_pick(tcp_ports, ntcp_ports), out));
    break;
  }
  case 7:
    fd = sock_of(SOCK_STREAM);
    rc = CALL_H(bad, aloop_sock_accept(l, fd, out));
    if (rc == 0 && f && (e = h_add(K_FUTURE, f, LIVE))) {
      e->owned = 1;
      e->accept_fd_future = 1;
      e->sock_op = 1;
      f = NULL;
    }
    break;
  default: {
    fd = nfds && chance(60) ? owned_fds[pick(nfds)] : sock_of(SOCK_STREAM);
    int file = sendfile_source();
    if (trace_all)
      fprintf(stderr, "  (sock_sendfile fd %d file %d)\n", fd, file);
    rc = CALL_H(bad, aloop_sock_sendfile(l, fd, file, chance(80) ? 0 : (int64_t)u16(),
                                         chance(80) ? 0 : (int64_t)u16(), pick(2), out));
  }
  }
  if (trace_all)
    fprintf(stderr, "  (sock op on fd %d)\n", fd);
  track_future(f, rc);
  if (rc == 0 && f && (e = h_find(f)))
    e->sock_op = 1;
}

static void op_dns(int which) {
  int bad;
  aloop_loop_t *l = LOOP(bad);
  aloop_future_t *f = NULL;
  int rc;
  if (which == 0) {
    static const char *hosts[] = {NULL, "", "127.0.0.1", "::1", "localhost",
                                  "0.0.0.0", "::", "1.2.3", "::ffff:127.0.0.1"};
    static const char *servs[] = {NULL, "", "0", "80", "http", "65536", "-1",
                                  "no-such-service"};
    static const int fams[] = {0, AF_INET, AF_INET6, AF_UNIX, 12345};
    static const int types[] = {0, SOCK_STREAM, SOCK_DGRAM, 99};
    int flags = chance(50) ? 0 : (int)(u16() & 0x7f);
    rc = CALL_H(bad, aloop_getaddrinfo(l, ONE_OF(hosts), ONE_OF(servs), ONE_OF(fams),
                                       ONE_OF(types), chance(80) ? 0 : rnd_int(), flags,
                                       chance(97) ? &f : NULL));
  } else {
    /* reverse lookups only for loopback (files), else numeric only */
    int flags = (int)(u16() & 0x1f);
    const char *host;
    if (chance(60)) {
      static const char *lo[] = {"127.0.0.1", "::1"};
      host = ONE_OF(lo);
    } else {
      host = ONE_OF(num_hosts);
      flags |= 1; /* NI_NUMERICHOST */
    }
    rc = CALL_H(bad, aloop_getnameinfo(l, chance(97) ? host : NULL, chance(80) ? pick(70000) : rnd_int(),
                                       flags, chance(97) ? &f : NULL));
  }
  track_future(f, rc);
}

static void op_proc(int which) {
  int bad;
  if (which <= 1) {
    aloop_loop_t *l = LOOP(bad);
    if (count_kind(K_PROC, LIVE) + count_kind(K_PROC, MAYBE) >= 4)
      return;
    aloop_subprocess_protocol_t *pr = calloc(1, sizeof *pr);
    kept(pr);
    /* A subprocess never handed to the host before it finished (no
     * connection_made: a short protocol) once got a new handle from
     * aloop_future_result_subprocess that nothing released (found by this
     * harness). */
    pr->size = chance(95) ? sizeof *pr : (size_t)pick(2 * sizeof *pr);
    pr->connection_made = s_made;
    pr->pipe_data_received = s_data;
    pr->pipe_connection_lost = s_pipe_lost;
    pr->process_exited = s_exited;
    pr->connection_lost = s_lost;
    size_t size;
    aloop_subprocess_options_t *o = NULL;
    if (chance(50)) {
      o = opts_alloc(sizeof *o, &size);
      o->size = size;
      if (FIELD_FITS(o, stdin_mode)) o->stdin_mode = chance(90) ? pick(4) : rnd_int();
      if (FIELD_FITS(o, stdout_mode)) o->stdout_mode = chance(90) ? (chance(50) ? 0 : 1) : rnd_int();
      if (FIELD_FITS(o, stderr_mode)) o->stderr_mode = chance(90) ? pick(5) : rnd_int();
      if (FIELD_FITS(o, stdin_fd)) o->stdin_fd = fd_pick();
      if (FIELD_FITS(o, stdout_fd)) o->stdout_fd = fd_pick();
      if (FIELD_FITS(o, stderr_fd)) o->stderr_fd = fd_pick();
      if (FIELD_FITS(o, start_new_session)) o->start_new_session = pick(2);
      if (FIELD_FITS(o, cwd) && chance(20)) o->cwd = chance(50) ? "/" : "/nonexistent";
      if (FIELD_FITS(o, env) && chance(20)) {
        static const char *const env[] = {"A=1", "PATH=/bin:/usr/bin", NULL};
        o->env = env;
      }
      /* INHERIT of stdout/stderr would mix the child's output into ours */
      if (FIELD_FITS(o, stdout_mode) && o->stdout_mode == ALOOP_STDIO_INHERIT) o->stdout_mode = 1;
    }
    struct ud *u = ud_new(U_PROC);
    u->has_free = chance(80);
    aloop_future_t *f = NULL;
    int rc;
    if (which == 0) {
      static const char *const a1[] = {"/bin/true", NULL};
      static const char *const a2[] = {"/bin/cat", NULL};
      static const char *const a3[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};
      static const char *const a4[] = {"/nonexistent/program", NULL};
      static const char *const a5[] = {"sh", "-c", "sleep 0.05", NULL};
      static const char *const a6[] = {NULL};
      const char *const *argvs[] = {a1, a2, a3, a4, a5, a6};
      rc = CALL_H(bad, aloop_subprocess_exec(l, chance(97) ? ONE_OF(argvs) : NULL,
                                             chance(97) ? pr : NULL, u,
                                             u->has_free ? ud_free_cb : NULL, o,
                                             chance(97) ? &f : NULL));
    } else {
      static const char *cmds[] = {"exit 0", "cat", "kill -9 $$", "", "echo hi"};
      rc = CALL_H(bad, aloop_subprocess_shell(l, chance(97) ? ONE_OF(cmds) : NULL, pr, u,
                                              u->has_free ? ud_free_cb : NULL, o,
                                              chance(97) ? &f : NULL));
    }
    ud_after(u, rc, "aloop_subprocess_exec/shell");
    track_maker_future(f, rc);
    return;
  }
  aloop_subprocess_t *p = (aloop_subprocess_t *)h_pick(K_PROC, &bad);
  int rcode;
  switch (which) {
  case 2: CALL_H(bad, aloop_subprocess_get_pid(p)); break;
  case 3: CALL_H(bad, aloop_subprocess_get_returncode(p, chance(90) ? &rcode : NULL)); break;
  case 4: {
    aloop_transport_t *t = NULL;
    int rc = CALL_H(bad, aloop_subprocess_get_pipe_transport(p, chance(90) ? pick(3) : rnd_int(),
                                                             chance(90) ? &t : NULL));
    if (rc == 0 && t)
      h_add(K_TRANSPORT, t, MAYBE);
    break;
  }
  case 5: CALL_H(bad, aloop_subprocess_send_signal(p, chance(50) ? SIGTERM : rnd_int())); break;
  case 6: CALL_H(bad, aloop_subprocess_terminate(p)); break;
  case 7: CALL_H(bad, aloop_subprocess_kill(p)); break;
  case 8: CALL_H(bad, aloop_subprocess_close(p)); break;
  default: CALL_H(bad, aloop_subprocess_is_closing(p)); break;
  }
}

static const int safe_signals[] = {SIGUSR1, SIGUSR2, SIGWINCH};

static void op_signal(int which) {
  int bad;
  aloop_loop_t *l = LOOP(bad);
  static const int sigs_any[] = {SIGUSR1, SIGUSR2, SIGWINCH, SIGURG, SIGCHLD, 0, -1,
                                 SIGKILL, SIGSTOP, 32, 33, 65, 1 << 20};
  int sig = ONE_OF(sigs_any);
  switch (which) {
  case 0: {
    struct ud *u = ud_new(U_SIGNAL);
    u->has_free = chance(80);
    int rc = CALL_H(bad, aloop_add_signal_handler(l, sig, chance(97) ? cb_signal : NULL, u,
                                                  u->has_free ? ud_free_cb : NULL));
    ud_after(u, rc, "aloop_add_signal_handler");
    if (rc == 0 && sig_loops_n < 64) {
      sigs[sig_loops_n].loop = l;
      sigs[sig_loops_n].sig = sig;
      sig_loops_n++;
    }
    break;
  }
  case 1: CALL_H(bad, aloop_remove_signal_handler(l, sig)); break;
  default: raise(ONE_OF(safe_signals)); /* ignored unless a loop handles it */
  }
}

static void op_executor(int which) {
  int bad;
  aloop_loop_t *l = LOOP(bad);
  aloop_future_t *f = NULL;
  int rc;
  switch (which) {
  case 0: {
    struct ud *u = ud_new(U_JOB);
    u->ms = pick(4);
    u->has_free = chance(80);
    rc = CALL_H(bad, aloop_run_in_executor(l, chance(97) ? cb_job : NULL, u,
                                           u->has_free ? ud_free_cb : NULL,
                                           chance(97) ? &f : NULL));
    ud_after(u, rc, "aloop_run_in_executor");
    track_future(f, rc);
    break;
  }
  case 1: CALL_H(bad, aloop_loop_set_default_executor_size(l, chance(70) ? 1 + pick(8) : rnd_int())); break;
  default:
    rc = CALL_H(bad, aloop_loop_shutdown_default_executor(l, chance(97) ? &f : NULL));
    track_future(f, rc);
  }
}

static void op_tls(int which) {
  int bad;
  if (which == 0) {
    if (count_kind(K_TLS, LIVE) >= 8)
      return;
    aloop_tls_config_t *c = NULL;
    int server = pick(2);
    if (CALL(aloop_tls_config_new(chance(97) ? &c : NULL, server)) == 0 && c) {
      h_add(K_TLS, c, LIVE);
      /* a usable pair most of the time */
      if (server && chance(80))
        CALL(aloop_tls_config_load_cert_pem(c, pem_server_cert, pem_server_cert_len,
                                            pem_server_key, pem_server_key_len));
      if (!server && chance(80))
        CALL(aloop_tls_config_load_ca_pem(c, pem_ca, pem_ca_len));
    }
    return;
  }
  aloop_tls_config_t *c = tls_pick(&bad);
  switch (which) {
  case 1:
    if (CALL_H(bad, aloop_tls_config_free(c)) == 0)
      h_stale(c);
    break;
  case 2: {
    size_t n = rnd_len() % 5000, k = rnd_len() % 3000;
    char *cert = chance(50) ? pem_server_cert : rnd_buf(n);
    size_t cl = cert == pem_server_cert ? pem_server_cert_len : n;
    if (cert == pem_server_cert && chance(30))
      cl = (size_t)pick((int)cl); /* cut short */
    CALL_H(bad, aloop_tls_config_load_cert_pem(c, chance(97) ? cert : NULL, cl,
                                               chance(50) ? pem_server_key : (chance(50) ? NULL : rnd_buf(k)),
                                               chance(50) ? pem_server_key_len : k));
    break;
  }
  case 3: {
    size_t n = rnd_len() % 5000;
    char *ca = chance(50) ? pem_ca : rnd_buf(n);
    CALL_H(bad, aloop_tls_config_load_ca_pem(c, ca, ca == pem_ca ? pem_ca_len : n));
    break;
  }
  case 4: {
    static const char *files[] = {ALOOP_FIXTURES_DIR "/server.pem", ALOOP_FIXTURES_DIR "/ca.pem",
                                  "/nonexistent.pem", "/etc/passwd", "", NULL};
    if (chance(50))
      CALL_H(bad, aloop_tls_config_load_cert_file(c, ONE_OF(files), ONE_OF(files)));
    else
      CALL_H(bad, aloop_tls_config_load_ca_file(c, ONE_OF(files)));
    break;
  }
  case 5: CALL_H(bad, aloop_tls_config_load_default_ca(c)); break;
  case 6: {
    static const char *names[] = {NULL, "", "localhost", "wrong.example", "127.0.0.1"};
    CALL_H(bad, aloop_tls_config_set_server_hostname(c, ONE_OF(names)));
    break;
  }
  case 7: {
    size_t cnt = (size_t)pick(4);
    const char **protos = kept(calloc(cnt + 1, sizeof *protos));
    for (size_t i = 0; i < cnt; i++) {
      size_t n = (size_t)pick(300);
      char *s = rnd_buf(n + 1);
      memset(s, 'a' + (int)i, n);
      s[n] = 0;
      protos[i] = chance(95) ? s : NULL;
    }
    CALL_H(bad, aloop_tls_config_set_alpn(c, chance(95) ? protos : NULL, cnt));
    break;
  }
  case 8: {
    static const int v[] = {0, ALOOP_TLS_VERSION_1_2, ALOOP_TLS_VERSION_1_3, 0x0301, -1, 0x0305};
    if (chance(50))
      CALL_H(bad, aloop_tls_config_set_min_version(c, ONE_OF(v)));
    else
      CALL_H(bad, aloop_tls_config_set_max_version(c, ONE_OF(v)));
    break;
  }
  case 9: CALL_H(bad, aloop_tls_config_set_verify(c, chance(80) ? pick(3) : rnd_int())); break;
  default: CALL_H(bad, aloop_tls_config_set_handshake_timeout(c, rnd_double())); break;
  }
}

static void op_current(int which) {
  int bad;
  aloop_loop_t *l = NULL;
  switch (which) {
  case 0: CALL(aloop_get_running_loop(chance(90) ? &l : NULL)); break;
  case 1: CALL(aloop_get_event_loop(chance(90) ? &l : NULL)); break;
  default: {
    l = LOOP(bad);
    int rc = CALL(aloop_set_event_loop(l));
    if (bad && l != NULL && rc != ALOOP_EBADF)
      die("aloop_set_event_loop(bad) returned %d", rc);
  }
  }
}

static void op_misc(int which) {
  switch (which) {
  case 0: {
    if (aloop_version() != ALOOP_VERSION_HEX)
      die("aloop_version() != ALOOP_VERSION_HEX");
    (void)strlen(aloop_version_string());
    int code = rnd_int();
    if (aloop_strerror(code) == NULL || aloop_err_name(code) == NULL)
      die("NULL error string for %d", code);
    break;
  }
  case 1: {
    size_t n = rnd_len() % 1000;
    char *buf = chance(95) ? rnd_buf(n) : NULL;
    /* (no impossible length here: the size of an output buffer is only an
     * upper bound, which the library clamps; a larger one than the memory
     * would be the caller's lie) */
    CALL(aloop_last_error(buf, n));
    break;
  }
  case 2: {
    size_t n;
    CALL(aloop_live_handles(chance(95) ? &n : NULL));
    break;
  }
  case 3:
    CALL(aloop_buffer_free(NULL));
    CALL(aloop_addrinfo_free(NULL));
    break;
  default:
    if (!helper_running && depth == 0) {
      helper_seed = u64();
      publish_loops();
      atomic_store(&helper_stop, 0);
      if (pthread_create(&helper, NULL, helper_main, NULL) == 0)
        helper_running = 1;
    }
  }
}

/* One operation: a byte picks the area, the next ones the details. */
static int run_one(void) {
  cur_loop = NULL;
  unsigned op = b8();
  if (op == 0 && in_pos >= in_len)
    return 0;
  switch (op % 32) {
  case 0: op_loop(pick(12)); break;
  case 1: case 2: op_loop(3 + pick(2)); break; /* run: often */
  case 3: op_schedule(pick(4)); break;
  case 4: op_handle(pick(2)); break;
  case 5: case 6: op_future(pick(13)); break;
  case 7: op_exception(pick(3)); break;
  case 8: op_fd_watch(pick(4)); break;
  case 9: op_tcp_server(); break;
  case 10: case 11: op_tcp_connect(); break;
  case 12: op_unix(pick(2)); break;
  case 13: op_fd_transport(pick(3)); break;
  case 14: op_server(pick(8)); break;
  case 15: case 16: case 17: op_transport(pick(13)); break;
  case 18: op_dgram_new(); break;
  case 19: op_dgram(pick(7)); break;
  case 20: op_sock(pick(9)); break;
  case 21: op_dns(pick(2)); break;
  case 22: op_proc(pick(10)); break;
  case 23: op_signal(pick(3)); break;
  case 24: op_executor(pick(3)); break;
  case 25: op_tls(pick(11)); break;
  case 26: op_current(pick(3)); break;
  case 27: op_misc(pick(5)); break;
  case 28: op_schedule(pick(4)); break;
  case 29: op_loop(8 + pick(4)); break;
  default: op_loop(3 + pick(3)); break;
  }
  return 1;
}

static void run_ops(int max) {
  for (int i = 0; i < max; i++)
    if (!run_one())
      return;
}

/* ======================================================================== */
/* One input                                                                 */
/* ======================================================================== */

static int count_fds(int *out, int max) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    int fd = atoi(e->d_name);
    if (fd != dirfd(d) && n < max)
      out[n++] = fd;
  }
  closedir(d);
  return n;
}

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)n + 1);
  if (fread(p, 1, (size_t)n, f) != (size_t)n) {
    fclose(f);
    free(p);
    return NULL;
  }
  p[n] = 0;
  fclose(f);
  *len = (size_t)n;
  return p;
}

static void teardown(void) {
  if (helper_running) {
    atomic_store(&helper_stop, 1);
    pthread_join(helper, NULL);
    helper_running = 0;
  }
  in_buf = NULL; /* callbacks from here on do nothing random */
  in_len = in_pos = 0;
  for (int i = 0; i < nh; i++) {
    void *p = (void *)(uintptr_t)hs[i].v;
    if (hs[i].state == STALE)
      continue;
    switch (hs[i].kind) {
    case K_TRANSPORT: aloop_transport_abort(p); break;
    case K_DGRAM: aloop_datagram_abort(p); break;
    case K_PROC: aloop_subprocess_close(p); break;
    case K_SERVER: aloop_server_close(p); break;
    default: break;
    }
  }
  aloop_loop_t *ls[4];
  int n = live_loops(ls, 4);
  for (int i = 0; i < nwatched; i++) {
    int r1 = aloop_remove_reader(watched[i].loop, watched[i].fd);
    int r2 = aloop_remove_writer(watched[i].loop, watched[i].fd);
    if (trace_all)
      fprintf(stderr, "teardown: remove_reader/writer(%p, %d) -> %d, %d\n",
              (void *)watched[i].loop, watched[i].fd, r1, r2);
  }
  for (int i = 0; i < sig_loops_n; i++)
    aloop_remove_signal_handler(sigs[i].loop, sigs[i].sig);
  for (int i = 0; i < nh; i++) {
    void *p = (void *)(uintptr_t)hs[i].v;
    if (hs[i].kind == K_FUTURE && hs[i].owned)
      aloop_future_cancel(p);
  }
  /* Run every loop until it closes. */
  double t0 = 0;
  {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  }
  for (int i = 0; i < n; i++) {
    /* debug mode: a refused close reports what is still open */
    struct ud *eu = ud_new(U_EXC);
    eu->has_free = 1;
    aloop_loop_set_exception_handler(ls[i], cb_exc, eu, ud_free_cb);
    aloop_loop_set_debug(ls[i], 1);
    for (;;) {
      run_depth++;
      aloop_loop_run_once(ls[i], 0.005);
      run_depth--;
      /* objects that appeared meanwhile */
      for (int k = 0; k < nh; k++) {
        void *p = (void *)(uintptr_t)hs[k].v;
        if (hs[k].state == STALE)
          continue;
        if (hs[k].kind == K_TRANSPORT)
          aloop_transport_abort(p);
        else if (hs[k].kind == K_DGRAM)
          aloop_datagram_abort(p);
        else if (hs[k].kind == K_SERVER)
          aloop_server_free(p) == 0 ? (void)(hs[k].state = STALE) : (void)0;
        else if (hs[k].kind == K_PROC)
          aloop_subprocess_close(p);
        else if (hs[k].kind == K_FUTURE && hs[k].owned) {
          if (hs[k].accept_fd_future && aloop_future_done(p) == 1) {
            int fd = -1;
            if (aloop_future_result_fd(p, &fd) == 0 && fd >= 0)
              close(fd);
            hs[k].accept_fd_future = 0;
          }
          if (!hs[k].accept_fd_future || aloop_future_done(p) == 1) {
            before_free(&hs[k]);
            aloop_future_free(p);
            hs[k].owned = 0;
          }
        }
      }
      int rc = aloop_loop_close(ls[i]);
      if (rc == 0)
        break;
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
      if (now - t0 > 15.0)
        die("a loop still cannot close after 15 s of teardown: %s (%s)",
            aloop_err_name(rc), last_report);
    }
    if (aloop_loop_free(ls[i]) != 0)
      die("aloop_loop_free after a successful close failed");
    h_stale(ls[i]);
  }
  for (int i = 0; i < nh; i++) {
    void *p = (void *)(uintptr_t)hs[i].v;
    if (hs[i].kind == K_SERVER && hs[i].state != STALE)
      aloop_server_free(p);
    if (hs[i].kind == K_TLS && hs[i].state != STALE)
      aloop_tls_config_free(p);
    if (hs[i].kind == K_FUTURE && hs[i].owned) {
      before_free(&hs[i]);
      aloop_future_free(p);
    }
  }
}

static void run_input(const uint8_t *data, size_t len) {
  int fds_before[1024];
  signal(SIGPIPE, SIG_IGN);
  for (int i = 0; i < 3; i++)
    signal(safe_signals[i], SIG_IGN); /* raise() is harmless */
  main_thread = pthread_self();
  snprintf(tmpdir, sizeof tmpdir, "/tmp/aloop-fuzz-%d", (int)getpid());
  mkdir(tmpdir, 0700);
  pem_server_cert = read_all(ALOOP_FIXTURES_DIR "/server.pem", &pem_server_cert_len);
  pem_server_key = read_all(ALOOP_FIXTURES_DIR "/server-key.pem", &pem_server_key_len);
  pem_ca = read_all(ALOOP_FIXTURES_DIR "/ca.pem", &pem_ca_len);
  if (!pem_server_cert || !pem_server_key || !pem_ca) {
    fprintf(stderr, "fuzz-abi: fixtures not found in %s\n", ALOOP_FIXTURES_DIR);
    exit(2);
  }
  /* The Go runtime opens fds of its own on first use (its netpoller, once
   * the library's threads read a file): warm it up before counting. */
  {
    aloop_loop_t *l;
    aloop_future_t *f;
    aloop_loop_new(&l);
    if (aloop_getaddrinfo(l, "localhost", NULL, 0, SOCK_STREAM, 0, 0, &f) == 0) {
      aloop_loop_run_until_complete(l, f);
      aloop_future_free(f);
    }
    int p[2], sv[2];
    if (pipe2(p, O_CLOEXEC) == 0 &&
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0) {
      if (write(p[1], "warm", 4) != 4) { /* ignore */ }
      close(p[1]);
      if (aloop_sock_sendfile(l, sv[0], p[0], 0, 0, 1, &f) == 0) {
        aloop_loop_run_until_complete(l, f);
        aloop_future_free(f);
      }
      close(p[0]);
      close(sv[0]);
      close(sv[1]);
    }
    aloop_loop_run(l, ALOOP_RUN_NOWAIT);
    aloop_loop_free(l);
  }
  int nbefore = count_fds(fds_before, 1024);
  size_t live0 = 0;
  aloop_live_handles(&live0);

  in_buf = data;
  in_len = len;
  in_pos = 0;
  /* every input starts with a loop */
  aloop_loop_t *l = NULL;
  if (aloop_loop_new(&l) != 0)
    die("aloop_loop_new failed");
  h_add(K_LOOP, l, LIVE);
  struct ud *u = ud_new(U_EXC);
  u->has_free = 1;
  aloop_loop_set_exception_handler(l, cb_exc, u, ud_free_cb);
  while (run_one()) {
  }
  teardown();

  /* every userdata was dropped exactly once */
  for (int i = 0; i < nud; i++)
    if (uds[i]->has_free && atomic_load(&uds[i]->freed) != 1)
      die("userdata #%d (kind %d) was never freed (free_cb did not run) "
          "although everything is closed", i, (int)uds[i]->kind);
  size_t live1 = 0;
  aloop_live_handles(&live1);
  if (live1 != live0) {
    /* which of the handles we saw are still valid? */
    for (int i = 0; i < nh; i++) {
      void *p = (void *)(uintptr_t)hs[i].v;
      int rc;
      switch (hs[i].kind) {
      case K_LOOP: rc = aloop_loop_is_closed(p); break;
      case K_HANDLE: { double w; rc = aloop_handle_when(p, &w); break; }
      case K_FUTURE: rc = aloop_future_done(p); break;
      case K_TRANSPORT: rc = aloop_transport_is_closing(p); break;
      case K_SERVER: rc = aloop_server_is_serving(p); break;
      case K_DGRAM: rc = aloop_datagram_is_closing(p); break;
      case K_PROC: rc = aloop_subprocess_is_closing(p); break;
      default: rc = aloop_tls_config_set_verify(p, 0); break;
      }
      if (rc != ALOOP_EBADF)
        fprintf(stderr, "still live: %s %#" PRIx64 " (%s)\n", kind_names[hs[i].kind],
                hs[i].v, hs[i].state == STALE ? "we thought it stale" : "");
    }
    die("%zu live handles after the teardown (%zu before)", live1, live0);
  }
  for (int i = 0; i < nfds; i++)
    close(owned_fds[i]);
  nfds = 0;
  /* No fd left open. An abandoned name lookup may still hold one in a
   * library thread for a moment: retry for 3 s. */
  for (int attempt = 0;; attempt++) {
    int fds_after[1024], extra = -1;
    int nafter = count_fds(fds_after, 1024);
    for (int i = 0; i < nafter && extra < 0; i++) {
      int found = 0;
      for (int k = 0; k < nbefore; k++)
        found |= fds_before[k] == fds_after[i];
      if (!found)
        extra = fds_after[i];
    }
    if (extra < 0)
      break;
    if (attempt < 300) {
      usleep(10000);
      continue;
    }
    char p[64], target[256] = "?";
    snprintf(p, sizeof p, "/proc/self/fd/%d", extra);
    ssize_t r = readlink(p, target, sizeof target - 1);
    if (r > 0)
      target[r] = 0;
    die("fd %d (%s) is still open after the teardown", extra, target);
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  if (system(cmd) != 0) { /* ignore */ }
  printf("ok: %zu bytes, %ld calls\n", len, (long)atomic_load(&ncalls));
}

/* ======================================================================== */
/* Driver                                                                    */
/* ======================================================================== */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_file(const char *path, const uint8_t *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  size_t w = fwrite(p, 1, n, f);
  fclose(f);
  return w == n ? 0 : -1;
}

struct corpus {
  char **names;
  uint8_t **data;
  size_t *len;
  int n;
};

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_corpus(const char *dir, struct corpus *c) {
  memset(c, 0, sizeof *c);
  DIR *d = dir ? opendir(dir) : NULL;
  if (!d)
    return;
  struct dirent *e;
  char **names = NULL;
  int n = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    names = realloc(names, sizeof *names * (size_t)(n + 1));
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  c->names = calloc((size_t)n + 1, sizeof *c->names);
  c->data = calloc((size_t)n + 1, sizeof *c->data);
  c->len = calloc((size_t)n + 1, sizeof *c->len);
  for (int i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    size_t len;
    char *p = read_all(path, &len);
    if (!p)
      continue;
    c->names[c->n] = strdup(path);
    c->data[c->n] = (uint8_t *)p;
    c->len[c->n] = len;
    c->n++;
    free(names[i]);
  }
  free(names);
}

/* A mutation of a corpus input, decided by seed. */
static uint8_t *mutate(const struct corpus *c, uint64_t seed, size_t *len,
                       int *which) {
  uint64_t x = seed ^ 0x5bd1e995u;
  *which = (int)(splitmix(&x) % (uint64_t)c->n);
  size_t n = c->len[*which];
  uint8_t *p = malloc(n + 256);
  memcpy(p, c->data[*which], n);
  int edits = 1 + (int)(splitmix(&x) % 8);
  for (int i = 0; i < edits; i++) {
    uint64_t r = splitmix(&x);
    size_t at = n ? (size_t)(r >> 8) % n : 0;
    switch (r % 4) {
    case 0: if (n) p[at] = (uint8_t)(r >> 40); break;               /* set */
    case 1: if (n) p[at] ^= (uint8_t)(1u << ((r >> 40) % 8)); break; /* flip */
    case 2: if (n < c->len[*which] + 200) {                          /* insert */
        memmove(p + at + 1, p + at, n - at);
        p[at] = (uint8_t)(r >> 48);
        n++;
      }
      break;
    default: if (n > 1) { memmove(p + at, p + at + 1, n - at - 1); n--; } /* delete */
    }
  }
  *len = n;
  return p;
}

static uint8_t seen[SITES][BUCKETS];

/* The distinct "note:" lines of the children (not failures). */
static char *notes[64];
static int nnotes;

static void collect_notes(const char *out_path) {
  size_t n;
  char *out = read_all(out_path, &n);
  if (!out)
    return;
  for (char *line = out; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl)
      *nl = 0;
    if (strncmp(line, "note: ", 6) == 0) {
      /* one line per code: "note: host code -3136 ..." */
      int dup = 0;
      const char *code = strstr(line, "code ");
      size_t klen = code ? (size_t)(strchr(code + 5, ' ') ? strchr(code + 5, ' ') - line : (long)strlen(line)) : strlen(line);
      for (int i = 0; i < nnotes; i++)
        dup |= strncmp(notes[i], line, klen) == 0 && (notes[i][klen] == ' ' || notes[i][klen] == 0);
      if (!dup && nnotes < 64)
        notes[nnotes++] = strdup(line);
    }
    line = nl ? nl + 1 : NULL;
  }
  free(out);
}

/* Runs one input in a child process; returns 0 if it passed. */
static int run_child(const char *self, const char *input_path, double timeout,
                     const char *out_path, const char *fb_path, int *new_bits) {
  char *argv[] = {(char *)self, "--input", (char *)input_path, "--feedback",
                  (char *)fb_path, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  if (posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ) != 0) {
    perror("posix_spawn");
    exit(2);
  }
  posix_spawn_file_actions_destroy(&fa);
  double t0 = now_s();
  int status = 0, killed = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      break;
    if (now_s() - t0 > timeout && !killed) {
      kill(pid, SIGQUIT); /* Go prints every goroutine's stack */
      usleep(500000);
      kill(pid, SIGKILL);
      killed = 1;
    }
    usleep(2000);
  }
  *new_bits = 0;
  size_t fl;
  uint8_t *fb = (uint8_t *)read_all(fb_path, &fl);
  if (fb && fl == sizeof seen) {
    for (size_t i = 0; i < fl; i++)
      if (fb[i] && !((uint8_t *)seen)[i]) {
        ((uint8_t *)seen)[i] = 1;
        (*new_bits)++;
      }
  }
  free(fb);
  if (killed)
    return 2;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

static void usage(void) {
  fprintf(stderr,
          "usage: fuzz-abi --input FILE | --seed N | --print-seed N\n"
          "       fuzz-abi [--seconds S] [--seed N] [--corpus DIR] [--save-new DIR]\n"
          "                [--crash-dir DIR] [--timeout S]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *input = NULL, *corpus_dir = NULL, *save_new = NULL,
             *crash_dir = ".", *feedback_path = NULL;
  double seconds = 60, timeout = 30;
  uint64_t seed = 1;
  int seed_given = 0, print_seed = 0, driver = 0;
  const char *k = getenv("ASYNCLOOP_FUZZ_KNOWN");
  known_bugs = k && *k && strcmp(k, "0") != 0;
  k = getenv("ASYNCLOOP_FUZZ_TRACE");
  trace_all = k && *k && strcmp(k, "0") != 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--input") && v) input = v, i++;
    else if (!strcmp(a, "--seed") && v) seed = strtoull(v, NULL, 0), seed_given = 1, i++;
    else if (!strcmp(a, "--print-seed") && v) seed = strtoull(v, NULL, 0), print_seed = 1, i++;
    else if (!strcmp(a, "--seconds") && v) seconds = atof(v), driver = 1, i++;
    else if (!strcmp(a, "--corpus") && v) corpus_dir = v, driver = 1, i++;
    else if (!strcmp(a, "--save-new") && v) save_new = v, driver = 1, i++;
    else if (!strcmp(a, "--crash-dir") && v) crash_dir = v, i++;
    else if (!strcmp(a, "--timeout") && v) timeout = atof(v), i++;
    else if (!strcmp(a, "--feedback") && v) feedback_path = v, i++;
    else usage();
  }
  if (print_seed) {
    size_t n;
    uint8_t *p = seed_input(seed, &n);
    fwrite(p, 1, n, stdout);
    return 0;
  }
  if (input || (seed_given && !driver)) {
    size_t n;
    uint8_t *p = kept(input ? (uint8_t *)read_all(input, &n) : seed_input(seed, &n));
    if (!p) {
      fprintf(stderr, "fuzz-abi: cannot read %s\n", input);
      return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    run_input(p, n);
    if (feedback_path)
      write_file(feedback_path, (uint8_t *)feedback, sizeof feedback);
    return 0;
  }

  /* The driver. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  static struct corpus c; /* static: reachable until exit (LeakSanitizer) */
  load_corpus(corpus_dir, &c);
  char work[128];
  snprintf(work, sizeof work, "/tmp/aloop-fuzz-driver-%d", (int)getpid());
  mkdir(work, 0700);
  char in_path[256], out_path[256], fb_path[256];
  snprintf(in_path, sizeof in_path, "%s/input", work);
  snprintf(out_path, sizeof out_path, "%s/output", work);
  snprintf(fb_path, sizeof fb_path, "%s/feedback", work);
  double t0 = now_s();
  long runs = 0, saved = 0;
  int failed = 0;
  printf("fuzz-abi: %d corpus inputs, then seeds from %" PRIu64 ", %.0f s%s\n", c.n,
         seed, seconds, known_bugs ? " (with the known open defects)" : "");
  for (long i = 0;; i++) {
    if (i >= c.n && now_s() - t0 >= seconds)
      break;
    uint8_t *data;
    size_t len;
    char what[512];
    uint64_t s = seed + (uint64_t)(i - c.n);
    int from = -1;
    if (i < c.n) {
      data = c.data[i];
      len = c.len[i];
      snprintf(what, sizeof what, "corpus %s", c.names[i]);
    } else if (c.n > 0 && (s & 1)) {
      data = mutate(&c, s, &len, &from);
      snprintf(what, sizeof what, "seed %" PRIu64 " (a mutation of %s)", s, c.names[from]);
    } else {
      data = seed_input(s, &len);
      snprintf(what, sizeof what, "seed %" PRIu64, s);
    }
    write_file(in_path, data, len);
    int new_bits = 0;
    int r = run_child(argv[0], in_path, timeout, out_path, fb_path, &new_bits);
    runs++;
    if (r != 0) {
      size_t on;
      char *out = read_all(out_path, &on);
      char crash[4096];
      snprintf(crash, sizeof crash, "%s/fuzz-crash-%s%" PRIu64 ".bin", crash_dir,
               i < c.n ? "corpus-" : "", i < c.n ? (uint64_t)i : s);
      write_file(crash, data, len);
      fprintf(stderr, "\n==== fuzz-abi: %s %s ====\n%s\n", what,
              r == 2 ? "HUNG (killed after the timeout)" : "FAILED", out ? out : "");
      fprintf(stderr, "==== the input is in %s; reproduce with:\n", crash);
      fprintf(stderr, "     %s --input %s\n", argv[0], crash);
      if (i >= c.n && from < 0)
        fprintf(stderr, "     %s --seed %" PRIu64 "\n", argv[0], s);
      fprintf(stderr, "     (ASYNCLOOP_FUZZ_KNOWN=%d)\n", known_bugs);
      free(out);
      failed = 1;
      if (i >= c.n)
        free(data);
      break;
    }
    collect_notes(out_path);
    if (save_new && new_bits > 0 && i >= c.n) {
      char p[4096];
      snprintf(p, sizeof p, "%s/%s-%" PRIu64, save_new, from >= 0 ? "mut" : "seed", s);
      write_file(p, data, len);
      saved++;
    }
    if (i >= c.n)
      free(data);
  }
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", work);
  if (system(cmd) != 0) { /* ignore */ }
  for (int i = 0; i < nnotes; i++)
    printf("fuzz-abi: %s\n", notes[i]);
  long bits = 0;
  for (size_t i = 0; i < sizeof seen; i++)
    bits += ((uint8_t *)seen)[i];
  printf("fuzz-abi: %ld inputs in %.1f s, %ld (call site, result) pairs reached%s%s\n",
         runs, now_s() - t0, bits, save_new ? ", new inputs saved: " : "",
         save_new ? (snprintf(cmd, sizeof cmd, "%ld", saved), cmd) : "");
  return failed;
}
