/*
 * test-runtime.c - the library's Go runtime as a host sees it
 * (aloop_runtime_stats), and what the steady-state echo path costs it: no
 * heap allocation per request, for small and large requests (the socket
 * takes part, the rest is buffered and flushed with writev), with direct
 * callbacks, a buffered protocol and the event queue (aloop_loop_poll).
 */
#include "test.h"
#include "helpers.h"

#include <netinet/tcp.h>
#include <sys/socket.h>

static aloop_runtime_stats_t stats(void) {
  aloop_runtime_stats_t s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  OK(aloop_runtime_stats(&s));
  return s;
}

TEST(stats_fields) {
  aloop_runtime_stats_t s = stats();
  ASSERT_CMP(s.mallocs, >, 0);
  ASSERT_CMP(s.mallocs, >=, s.frees);
  ASSERT_CMP(s.heap_bytes, >, 0);
  ASSERT_CMP(s.heap_sys_bytes, >=, s.heap_released_bytes);
  ASSERT_CMP(s.sys_bytes, >=, s.heap_sys_bytes);
  ASSERT_CMP(s.stack_bytes, >, 0);
  ASSERT_CMP(s.gomaxprocs, >=, 1);
  ASSERT_CMP(s.threads, >=, 1);
  /* an older, smaller struct: the members beyond it are left alone */
  aloop_runtime_stats_t old;
  memset(&old, 0xab, sizeof old);
  old.size = offsetof(aloop_runtime_stats_t, heap_bytes);
  OK(aloop_runtime_stats(&old));
  ASSERT_CMP(old.mallocs, >, 0);
  ASSERT_EQ(old.heap_bytes, 0xababababababababull);
  ASSERT_EQ(old.threads, (int32_t)0xabababab);
  ASSERT_EQ(aloop_runtime_stats(NULL), ALOOP_EINVAL);
  old.size = 2;
  ASSERT_EQ(aloop_runtime_stats(&old), ALOOP_EINVAL);
}

/* The stats call itself allocates nothing, so that allocations between
 * two calls are the host's doing. */
TEST(stats_allocates_nothing) {
  aloop_runtime_stats_t a = stats(), b = stats();
  for (int i = 0; i < 100; i++)
    b = stats();
  ASSERT_EQ(b.mallocs - a.mallocs, 0);
}

/* ---- an echo over loopback TCP, driven from this thread ---------------------- */

struct echo {
  aloop_transport_t *t;
  int lost;
  size_t got;
  unsigned char buf[64 * 1024];     /* the buffered protocol's buffer */
};

static void e_made(aloop_transport_t *t, void *ud) { ((struct echo *)ud)->t = t; }
static void e_lost(aloop_transport_t *t, int err, void *ud) {
  (void)t;
  (void)err;
  ((struct echo *)ud)->lost++;
}
static void e_data(aloop_transport_t *t, const char *data, size_t len, void *ud) {
  ((struct echo *)ud)->got += len;
  OK(aloop_transport_write(t, data, len));
}
static void e_pause(aloop_transport_t *t, void *ud) {
  (void)ud;
  OK(aloop_transport_pause_reading(t));
}
static void e_resume(aloop_transport_t *t, void *ud) {
  (void)ud;
  OK(aloop_transport_resume_reading(t));
}
static void *e_get_buffer(aloop_transport_t *t, size_t hint, size_t *len, void *ud) {
  (void)t;
  (void)hint;
  *len = sizeof((struct echo *)ud)->buf;
  return ((struct echo *)ud)->buf;
}
static void e_updated(aloop_transport_t *t, size_t n, void *ud) {
  struct echo *e = ud;
  e->got += n;
  OK(aloop_transport_write(t, e->buf, n));
}

enum mode { DIRECT, BUFFERED, QUEUED };

/* The event queue's memory and the host's write buffer (QUEUED). */
static aloop_event_t events[64];
static unsigned char arena[256 * 1024];
static aloop_write_op_t ops[64];
static unsigned char warena[4 << 20];
static size_t nops, wused;

static void poll_once(struct echo *e) {
  int n = aloop_loop_poll(loop, 0, nops);
  ASSERT_CMP(n, >=, 0);
  nops = wused = 0;
  for (int i = 0; i < n; i++) {
    aloop_event_t *ev = &events[i];
    switch (ev->kind) {
    case ALOOP_EVENT_DATA:
      ASSERT_CMP(nops, <, 64);
      ASSERT_CMP(wused + ev->length, <=, sizeof warena);
      memcpy(warena + wused, arena + ev->offset, ev->length);
      wused += ev->length;
      ops[nops].transport = ev->transport;
      ops[nops].length = (uint32_t)ev->length;
      ops[nops].kind = ALOOP_WRITE_DATA;
      nops++;
      e->got += ev->length;
      break;
    case ALOOP_EVENT_PAUSE_WRITING:
      OK(aloop_transport_pause_reading(ev->transport));
      break;
    case ALOOP_EVENT_RESUME_WRITING:
      OK(aloop_transport_resume_reading(ev->transport));
      break;
    case ALOOP_EVENT_CONNECTION_LOST:
      e->lost++;
      break;
    }
  }
}

static void iterate(enum mode m, struct echo *e) {
  if (m == QUEUED)
    poll_once(e);
  else
    OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
}

/* One request of `size` bytes from the peer (non-blocking), run until all
 * of it came back; the peer reads only when it cannot write, so that large
 * responses back up into the transport's write buffer. */
static void request(enum mode m, struct echo *e, int cli, unsigned char *req,
                    unsigned char *resp, size_t size) {
  size_t sent = 0, got = 0;
  double t0 = test_now();
  while (got < size) {
    int progress = 0;
    if (sent < size) {
      ssize_t n = send(cli, req + sent, size - sent, MSG_DONTWAIT);
      if (n > 0) {
        sent += (size_t)n;
        progress = 1;
      } else {
        ASSERT(errno == EAGAIN);
      }
    }
    iterate(m, e);
    if (progress && sent < size)
      continue;
    ssize_t r = recv(cli, resp + got, size - got, MSG_DONTWAIT);
    if (r > 0)
      got += (size_t)r;
    else
      ASSERT(r < 0 && errno == EAGAIN);
    if (test_now() - t0 > RUN_UNTIL_SECONDS)
      FAIL("timed out: sent %zu, got %zu of %zu", sent, got, size);
  }
}

static void echo_allocations(enum mode m, size_t size) {
  loop_up();
  static struct echo e;
  memset(&e, 0, sizeof e);
  int port;
  int ln = loopback_socket(SOCK_STREAM, &port);
  int bufsize = 32 * 1024;
  if (size > 64 * 1024) /* small socket buffers: the socket takes part */
    ASSERT_EQ(setsockopt(ln, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize), 0);
  ASSERT_EQ(listen(ln, 1), 0);
  int cli = socket(AF_INET, SOCK_STREAM, 0);
  if (size > 64 * 1024)
    ASSERT_EQ(setsockopt(cli, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize), 0);
  struct sockaddr_in a = loopback_addr(port);
  ASSERT_EQ(connect(cli, (struct sockaddr *)&a, sizeof a), 0);
  int s = accept(ln, NULL, NULL);
  close(ln);
  int one = 1;
  setsockopt(cli, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = e_made;
  p.connection_lost = e_lost;
  p.pause_writing = e_pause;
  p.resume_writing = e_resume;
  if (m == BUFFERED) {
    p.get_buffer = e_get_buffer;
    p.buffer_updated = e_updated;
  } else {
    p.data_received = e_data;
  }
  if (m == QUEUED) {
    p.flags = ALOOP_PROTOCOL_QUEUED;
    OK(aloop_loop_set_event_queue(loop, events, 64, arena, sizeof arena));
    OK(aloop_loop_set_write_queue(loop, ops, 64, warena, sizeof warena));
  }
  aloop_future_t *f = NULL;
  OK(aloop_connect_accepted_socket(loop, s, &p, &e, NULL, &f));
  if (m == QUEUED) {
    while (!aloop_future_done(f))
      poll_once(&e);
    aloop_transport_t *t = NULL;
    OK(aloop_future_result_transport(f, &t));
    e.t = t;
    OK(aloop_future_free(f));
  } else {
    ASSERT_PTR_EQ(await_transport(f), e.t);
  }

  unsigned char *req = make_pattern(size), *resp = malloc(size);
  for (int i = 0; i < 50; i++) /* warm up: buffers, pools, epoll */
    request(m, &e, cli, req, resp, size);
  ASSERT(memcmp(req, resp, size) == 0);
  /* Enough requests to catch what allocates now and then: the runtime
   * grows a type-assertion cache on ~1 call in 1000, for instance. */
  int reqs = size > 64 * 1024 ? 500 : 5000;
  /* The counter is the process's, so the best of a few measurements
   * counts: on a busy machine the runtime may allocate meanwhile (a new
   * thread when it hands off this one's processor during a system call),
   * and a large request's response may need one more chunk in the loop's
   * pool of write-buffer chunks than any request before it (the pool grows
   * to the most ever buffered at once, which depends on the sockets'
   * timing). An allocation per request shows in every measurement. */
  uint64_t allocs = UINT64_MAX;
  for (int try = 0; try < 5 && allocs != 0; try++) {
    aloop_runtime_stats_t before = stats();
    for (int i = 0; i < reqs; i++)
      request(m, &e, cli, req, resp, size);
    aloop_runtime_stats_t after = stats();
    ASSERT(memcmp(req, resp, size) == 0);
    uint64_t n = after.mallocs - before.mallocs;
    printf("%s %zu-byte requests: %llu allocations in %d requests\n",
           m == DIRECT ? "direct" : m == BUFFERED ? "buffered" : "queued", size,
           (unsigned long long)n, reqs);
    if (n < allocs)
      allocs = n;
  }
#ifdef __SANITIZE_ADDRESS__
  /* The ASan tree's library is built with `go build -asan`, whose
   * instrumentation allocates on the large-message path (measured: 11
   * allocations per 300 KiB request, none per 1 KiB one); the plain and
   * race trees assert the count, this one checks the bytes only. */
  if (size > 64 * 1024) {
    printf("note: go build -asan: %llu allocations not asserted\n",
           (unsigned long long)allocs);
    allocs = 0;
  }
#endif
  ASSERT_EQ(allocs, 0);

  OK(aloop_transport_abort(e.t));
  while (!e.lost)
    iterate(m, &e);
  free(req);
  free(resp);
  close(cli);
}

TEST(echo_small_allocates_nothing) { echo_allocations(DIRECT, 1024); }
TEST(echo_large_allocates_nothing) { echo_allocations(DIRECT, 300 * 1024); }
TEST(buffered_echo_allocates_nothing) { echo_allocations(BUFFERED, 1024); }
TEST(buffered_large_allocates_nothing) { echo_allocations(BUFFERED, 300 * 1024); }
TEST(queued_echo_allocates_nothing) { echo_allocations(QUEUED, 1024); }
TEST(queued_large_allocates_nothing) { echo_allocations(QUEUED, 300 * 1024); }
