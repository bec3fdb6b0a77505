/*
 * test-loop.c - the loop: scheduling order, timers, cancellation, free_cb,
 * stop/run/close semantics, the clock, embedding (backend fd / timeout,
 * wake-up callback), the exception handler and fd watchers.
 */
#include "test.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>

static aloop_loop_t *new_loop(void) {
  aloop_loop_t *loop = NULL;
  OK(aloop_loop_new(&loop));
  ASSERT(loop != NULL);
  return loop;
}

/* ---- recording order ------------------------------------------------------ */

static int order[1024];
static int norder;
static aloop_loop_t *expected_loop;

static void rec_cb(aloop_loop_t *loop, void *ud) {
  if (expected_loop)
    ASSERT_PTR_EQ(loop, expected_loop);
  ASSERT_CMP(norder, <, 1024);
  order[norder++] = (int)(intptr_t)ud;
}

static void stop_cb(aloop_loop_t *loop, void *ud) {
  if (ud)
    rec_cb(loop, ud);
  OK(aloop_loop_stop(loop));
}

static void assert_order(const int *expect, int n) {
  if (norder != n)
    FAIL("ran %d callbacks, expected %d", norder, n);
  for (int i = 0; i < n; i++)
    if (order[i] != expect[i])
      FAIL("callback #%d was %d, expected %d", i, order[i], expect[i]);
}

#define ORDER(...)                                                             \
  do {                                                                         \
    const int e_[] = {__VA_ARGS__};                                            \
    assert_order(e_, (int)(sizeof e_ / sizeof e_[0]));                         \
  } while (0)

/* ---- call_soon ------------------------------------------------------------- */

TEST(call_soon_fifo) {
  aloop_loop_t *loop = new_loop();
  expected_loop = loop;
  for (int i = 0; i < 200; i++)
    OK(aloop_call_soon(loop, rec_cb, (void *)(intptr_t)i, NULL, NULL));
  OK(aloop_call_soon(loop, stop_cb, (void *)(intptr_t)1000, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  ASSERT_EQ(norder, 201);
  for (int i = 0; i < 200; i++)
    ASSERT_EQ(order[i], i);
  ASSERT_EQ(order[200], 1000);
  OK(aloop_loop_free(loop));
}

static void schedule_next_cb(aloop_loop_t *loop, void *ud) {
  rec_cb(loop, ud);
  OK(aloop_call_soon(loop, rec_cb, (void *)(intptr_t)((intptr_t)ud + 100),
                     NULL, NULL));
}

TEST(call_soon_from_callback_runs_next_iteration) {
  aloop_loop_t *loop = new_loop();
  OK(aloop_call_soon(loop, schedule_next_cb, (void *)1, NULL, NULL));
  OK(aloop_call_soon(loop, rec_cb, (void *)2, NULL, NULL));
  /* a callback scheduled while the iteration runs waits for the next one */
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ORDER(1, 2);
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ORDER(1, 2, 101);
  OK(aloop_loop_free(loop));
}

/* ---- timers -------------------------------------------------------------- */

TEST(timers_by_deadline_ties_fifo) {
  aloop_loop_t *loop = new_loop();
  double now, t0 = test_now();
  OK(aloop_loop_time(loop, &now));
  aloop_handle_t *h = NULL;
  double when = -1;
  /* 1..6 by deadline; equal deadlines in scheduling order */
  OK(aloop_call_at(loop, now + 0.060, rec_cb, (void *)5, NULL, &h));
  OK(aloop_handle_when(h, &when));
  ASSERT_DBL(when, ==, now + 0.060);
  OK(aloop_call_at(loop, now + 0.030, rec_cb, (void *)2, NULL, NULL));
  OK(aloop_call_at(loop, now + 0.060, rec_cb, (void *)6, NULL, NULL));
  OK(aloop_call_at(loop, now + 0.030, rec_cb, (void *)3, NULL, NULL));
  OK(aloop_call_later(loop, 0.045, rec_cb, (void *)4, NULL, &h));
  OK(aloop_handle_when(h, &when));
  ASSERT_DBL(when, >=, now + 0.045);
  OK(aloop_call_later(loop, 0.010, rec_cb, (void *)1, NULL, NULL));
  /* a deadline in the past / a negative delay: the next iteration */
  OK(aloop_call_at(loop, now - 5.0, rec_cb, (void *)-2, NULL, NULL));
  OK(aloop_call_later(loop, -1.0, rec_cb, (void *)-1, NULL, NULL));
  OK(aloop_call_at(loop, now + 0.080, stop_cb, NULL, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  ASSERT_DBL(test_now() - t0, >=, 0.080);
  ORDER(-2, -1, 1, 2, 3, 4, 5, 6);
  OK(aloop_loop_free(loop));
}

struct subms {
  double t0;     /* CLOCK_MONOTONIC when scheduled */
  double when;   /* the handle's deadline */
  double fired;  /* CLOCK_MONOTONIC in the callback */
  double loop_now;
  int done;
};

static void subms_cb(aloop_loop_t *loop, void *ud) {
  struct subms *s = ud;
  s->fired = test_now();
  OK(aloop_loop_time(loop, &s->loop_now));
  s->done = 1;
}

TEST(timer_submillisecond) {
  aloop_loop_t *loop = new_loop();
  for (int i = 0; i < 50; i++) {
    struct subms s = {0};
    aloop_handle_t *h = NULL;
    s.t0 = test_now();
    OK(aloop_call_later(loop, 0.0005, subms_cb, &s, NULL, &h));
    OK(aloop_handle_when(h, &s.when));
    while (!s.done)
      OK(aloop_loop_run(loop, ALOOP_RUN_ONCE));
    /* never before the deadline */
    if (s.fired - s.t0 < 0.0005)
      FAIL("round %d: a 0.5 ms timer fired after %.1f us", i,
           (s.fired - s.t0) * 1e6);
    ASSERT_DBL(s.loop_now, >=, s.when);
  }
  OK(aloop_loop_free(loop));
}

/* ---- cancel and free_cb ------------------------------------------------- */

struct freed {
  int count;
  int ran_before_free; /* the callback ran before free_cb (1) */
  int cb_runs;
  pthread_t thread;
};

static void freed_cb(void *ud) {
  struct freed *f = ud;
  f->count++;
  f->thread = pthread_self();
}

static void freed_run_cb(aloop_loop_t *loop, void *ud) {
  struct freed *f = ud;
  f->cb_runs++;
  ASSERT_EQ(f->count, 0); /* not freed before it ran */
}

/* Issue 9: a NaN time is ALOOP_EINVAL (free_cb runs once, the callback
 * never); +infinity is a time that never comes (asyncio.sleep(math.inf)),
 * -infinity is now, as in uvloop. */
TEST(nan_and_infinite_times) {
  aloop_loop_t *loop = new_loop();
  const double nan = 0.0 / 0.0, inf = 1.0 / 0.0;
  int frees = 0;
  aloop_handle_t *h = NULL;
  ASSERT_EQ(aloop_call_later(loop, nan, test_never_cb, &frees, test_count_free, &h),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_call_at(loop, nan, test_never_cb, &frees, test_count_free, &h), ALOOP_EINVAL);
  ASSERT_EQ(aloop_call_at(loop, -nan, test_never_cb, &frees, test_count_free, NULL),
            ALOOP_EINVAL);
  ASSERT_EQ(frees, 3);
  ASSERT(h == NULL);
  aloop_handle_t *never = NULL, *never2 = NULL;
  OK(aloop_call_later(loop, inf, rec_cb, (void *)9, NULL, &never));
  OK(aloop_call_at(loop, inf, rec_cb, (void *)9, NULL, &never2));
  double when = 0;
  OK(aloop_handle_when(never, &when));
  ASSERT(when == inf);
  OK(aloop_call_at(loop, -inf, rec_cb, (void *)1, NULL, NULL));
  OK(aloop_call_later(loop, -inf, rec_cb, (void *)2, NULL, NULL));
  OK(aloop_call_later(loop, 0.03, stop_cb, (void *)3, NULL, NULL));
  int ms = -2;
  OK(aloop_loop_backend_timeout(loop, &ms));
  ASSERT_EQ(ms, 0); /* the -inf timers are due */
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  ORDER(1, 2, 3);
  OK(aloop_handle_cancel(never));
  OK(aloop_handle_cancel(never2));
  OK(aloop_loop_free(loop));
}

TEST(handle_cancel) {
  aloop_loop_t *loop = new_loop();
  struct freed soon = {0}, later = {0}, kept = {0};
  aloop_handle_t *h1 = NULL, *h2 = NULL, *h3 = NULL;
  OK(aloop_call_soon(loop, freed_run_cb, &soon, freed_cb, &h1));
  OK(aloop_call_later(loop, 0.01, freed_run_cb, &later, freed_cb, &h2));
  OK(aloop_call_later(loop, 0.02, freed_run_cb, &kept, freed_cb, &h3));
  OK(aloop_handle_cancel(h1));
  OK(aloop_handle_cancel(h2));
  /* the handles are stale now */
  ASSERT_EQ(aloop_handle_cancel(h1), ALOOP_EBADF);
  ASSERT_EQ(aloop_handle_cancel(h2), ALOOP_EBADF);
  OK(aloop_call_later(loop, 0.05, stop_cb, NULL, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  ASSERT_EQ(soon.cb_runs, 0);
  ASSERT_EQ(later.cb_runs, 0);
  ASSERT_EQ(soon.count, 1);
  ASSERT_EQ(later.count, 1);
  ASSERT(pthread_equal(soon.thread, pthread_self()));
  ASSERT_EQ(kept.cb_runs, 1);
  ASSERT_EQ(kept.count, 1);
  /* a handle whose callback ran is stale */
  ASSERT_EQ(aloop_handle_cancel(h3), ALOOP_EBADF);
  OK(aloop_loop_free(loop));
  ASSERT_EQ(soon.count, 1);
  ASSERT_EQ(later.count, 1);
  ASSERT_EQ(kept.count, 1);
}

TEST(free_cb_once_after_callback) {
  aloop_loop_t *loop = new_loop();
  struct freed f[10];
  memset(f, 0, sizeof f);
  for (int i = 0; i < 10; i++)
    OK(aloop_call_soon(loop, freed_run_cb, &f[i], freed_cb, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  for (int i = 0; i < 10; i++) {
    ASSERT_EQ(f[i].cb_runs, 1);
    ASSERT_EQ(f[i].count, 1);
    ASSERT(pthread_equal(f[i].thread, pthread_self()));
  }
  OK(aloop_loop_free(loop));
  for (int i = 0; i < 10; i++)
    ASSERT_EQ(f[i].count, 1);
}

/* ---- stop and run ------------------------------------------------------- */

TEST(stop_before_run_runs_one_iteration) {
  aloop_loop_t *loop = new_loop();
  OK(aloop_loop_stop(loop));
  OK(aloop_call_soon(loop, schedule_next_cb, (void *)1, NULL, NULL));
  OK(aloop_call_later(loop, 30.0, test_never_cb, NULL, NULL, NULL));
  double t0 = test_now();
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  ASSERT_DBL(test_now() - t0, <, 10.0); /* did not wait for the timer */
  ORDER(1);
  /* the callback scheduled during that iteration runs in the next run */
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ORDER(1, 101);
  ASSERT_EQ(aloop_loop_is_running(loop), 0);
  OK(aloop_loop_free(loop));
}

static void stop_then_schedule_cb(aloop_loop_t *loop, void *ud) {
  rec_cb(loop, ud);
  OK(aloop_loop_stop(loop));
  OK(aloop_call_soon(loop, rec_cb, (void *)4, NULL, NULL));
}

TEST(stop_from_callback) {
  aloop_loop_t *loop = new_loop();
  OK(aloop_call_soon(loop, rec_cb, (void *)1, NULL, NULL));
  OK(aloop_call_soon(loop, stop_then_schedule_cb, (void *)2, NULL, NULL));
  OK(aloop_call_soon(loop, rec_cb, (void *)3, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  /* the iteration in which stop was called finishes; what was scheduled
   * during it waits */
  ORDER(1, 2, 3);
  OK(aloop_call_soon(loop, stop_cb, (void *)5, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  ORDER(1, 2, 3, 4, 5);
  OK(aloop_loop_free(loop));
}

static void run_nested_cb(aloop_loop_t *loop, void *ud) {
  ASSERT_EQ(aloop_loop_is_running(loop), 1);
  ASSERT_EQ(aloop_loop_run(loop, ALOOP_RUN_NOWAIT), ALOOP_EBUSY);
  ASSERT_EQ(aloop_loop_run_once(loop, 0), ALOOP_EBUSY);
  *(int *)ud = 1;
}

TEST(run_while_running_is_ebusy) {
  aloop_loop_t *loop = new_loop();
  int ran = 0;
  ASSERT_EQ(aloop_loop_is_running(loop), 0);
  OK(aloop_call_soon(loop, run_nested_cb, &ran, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(ran, 1);
  ASSERT_EQ(aloop_loop_is_running(loop), 0);
  OK(aloop_loop_free(loop));
}

static void set_result_cb(aloop_loop_t *loop, void *ud) {
  OK(aloop_future_set_result((aloop_future_t *)ud, (void *)0xfeed));
}

TEST(run_until_complete_timer) {
  aloop_loop_t *loop = new_loop();
  aloop_future_t *f = NULL;
  void *r = NULL;
  OK(aloop_future_new(loop, &f));
  double t0 = test_now(); /* before the timer's deadline is computed */
  OK(aloop_call_later(loop, 0.02, set_result_cb, f, NULL, NULL));
  ASSERT_EQ(aloop_loop_run_until_complete(loop, f), 0);
  ASSERT_DBL(test_now() - t0, >=, 0.02);
  ASSERT_EQ(aloop_future_done(f), 1);
  ASSERT_EQ(aloop_future_result(f, &r), 0);
  ASSERT_PTR_EQ(r, (void *)0xfeed);
  ASSERT_EQ(aloop_loop_is_running(loop), 0);
  /* a future that is already done: returns at once */
  ASSERT_EQ(aloop_loop_run_until_complete(loop, f), 0);
  OK(aloop_future_free(f));
  OK(aloop_loop_free(loop));
}

TEST(run_until_complete_stopped) {
  aloop_loop_t *loop = new_loop();
  aloop_future_t *f = NULL;
  void *r = NULL;
  OK(aloop_future_new(loop, &f));
  /* stopped from a callback before the future completed */
  OK(aloop_call_soon(loop, stop_cb, NULL, NULL, NULL));
  ASSERT_EQ(aloop_loop_run_until_complete(loop, f), ALOOP_ESTOPPED);
  ASSERT_EQ(aloop_future_done(f), 0);
  ASSERT_EQ(aloop_future_result(f, &r), ALOOP_ESTATE);
  /* stopped before it ran */
  OK(aloop_loop_stop(loop));
  ASSERT_EQ(aloop_loop_run_until_complete(loop, f), ALOOP_ESTOPPED);
  /* and it still completes later */
  OK(aloop_call_later(loop, 0.005, set_result_cb, f, NULL, NULL));
  ASSERT_EQ(aloop_loop_run_until_complete(loop, f), 0);
  OK(aloop_future_result(f, &r));
  ASSERT_PTR_EQ(r, (void *)0xfeed);
  OK(aloop_future_free(f));
  OK(aloop_loop_free(loop));
}

/* ---- close ------------------------------------------------------------------ */

static void close_inside_cb(aloop_loop_t *loop, void *ud) {
  ASSERT_EQ(aloop_loop_close(loop), ALOOP_EBUSY);
  ASSERT_EQ(aloop_loop_is_closed(loop), 0);
  *(int *)ud = 1;
}

TEST(close_semantics) {
  aloop_loop_t *loop = new_loop();
  int ran = 0, frees = 0, late_frees = 0;
  ASSERT_EQ(aloop_loop_is_closed(loop), 0);
  OK(aloop_call_soon(loop, close_inside_cb, &ran, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(ran, 1);
  ASSERT_EQ(aloop_loop_is_closed(loop), 0);

  /* pending callbacks are dropped by close: free_cb runs, cb never */
  OK(aloop_call_soon(loop, test_never_cb, &frees, test_count_free, NULL));
  OK(aloop_call_later(loop, 10.0, test_never_cb, &frees, test_count_free,
                      NULL));
  OK(aloop_call_soon_threadsafe(loop, test_never_cb, &frees, test_count_free,
                                NULL));
  ASSERT_EQ(aloop_loop_close(loop), 0);
  ASSERT_EQ(frees, 3);
  ASSERT_EQ(aloop_loop_is_closed(loop), 1);
  ASSERT_EQ(aloop_loop_is_running(loop), 0);

  /* a closed loop refuses work */
  ASSERT_EQ(aloop_call_soon(loop, test_never_cb, &late_frees, test_count_free,
                            NULL),
            ALOOP_ECLOSED);
  ASSERT_EQ(late_frees, 1);
  ASSERT_EQ(aloop_call_later(loop, 0.1, test_never_cb, &late_frees,
                             test_count_free, NULL),
            ALOOP_ECLOSED);
  ASSERT_EQ(late_frees, 2);
  ASSERT_EQ(aloop_call_soon_threadsafe(loop, test_never_cb, &late_frees,
                                       test_count_free, NULL),
            ALOOP_ECLOSED);
  ASSERT_EQ(late_frees, 3);
  ASSERT_EQ(aloop_loop_run(loop, ALOOP_RUN_NOWAIT), ALOOP_ECLOSED);
  ASSERT_EQ(aloop_loop_run(loop, ALOOP_RUN_DEFAULT), ALOOP_ECLOSED);
  /* idempotent */
  ASSERT_EQ(aloop_loop_close(loop), 0);
  ASSERT_EQ(frees, 3);
  OK(aloop_loop_free(loop));
  ASSERT_EQ(aloop_loop_is_closed(loop), ALOOP_EBADF);
}

static void nop_fd_cb(aloop_loop_t *loop, int fd, void *ud) {}

TEST(close_busy_with_fd_watcher) {
  aloop_loop_t *loop = new_loop();
  int p[2], frees = 0;
  ASSERT_EQ(pipe(p), 0);
  OK(aloop_add_reader(loop, p[0], nop_fd_cb, &frees, test_count_free));
  ASSERT_EQ(aloop_loop_close(loop), ALOOP_EBUSY);
  ASSERT_EQ(aloop_loop_is_closed(loop), 0);
  ASSERT_EQ(aloop_remove_reader(loop, p[0]), 1);
  ASSERT_EQ(frees, 1);
  ASSERT_EQ(aloop_loop_close(loop), 0);
  OK(aloop_loop_free(loop));
  close(p[0]);
  close(p[1]);
}

/* ---- alive, debug, time ------------------------------------------------ */

TEST(alive) {
  aloop_loop_t *loop = new_loop();
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(aloop_loop_alive(loop), 0);
  OK(aloop_call_soon(loop, rec_cb, (void *)1, NULL, NULL));
  ASSERT_EQ(aloop_loop_alive(loop), 1);
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(aloop_loop_alive(loop), 0);
  OK(aloop_call_later(loop, 0.001, rec_cb, (void *)2, NULL, NULL));
  ASSERT_EQ(aloop_loop_alive(loop), 1);
  while (norder < 2)
    OK(aloop_loop_run(loop, ALOOP_RUN_ONCE));
  ASSERT_EQ(aloop_loop_alive(loop), 0);
  OK(aloop_add_reader(loop, p[0], nop_fd_cb, NULL, NULL));
  ASSERT_EQ(aloop_loop_alive(loop), 1);
  ASSERT_EQ(aloop_remove_reader(loop, p[0]), 1);
  ASSERT_EQ(aloop_loop_alive(loop), 0);
  OK(aloop_loop_free(loop));
}

TEST(debug_flag) {
  aloop_loop_t *loop = new_loop();
  ASSERT_EQ(aloop_loop_get_debug(loop), 0);
  OK(aloop_loop_set_debug(loop, 1));
  ASSERT_EQ(aloop_loop_get_debug(loop), 1);
  OK(aloop_loop_set_debug(loop, 0));
  ASSERT_EQ(aloop_loop_get_debug(loop), 0);
  OK(aloop_loop_free(loop));
}

static struct other_thread_call {
  aloop_loop_t *loop;
  pthread_t thread;
  int rc;
  int frees;
} other;

static void *call_soon_from_thread(void *arg) {
  other.rc = aloop_call_soon(other.loop, test_never_cb, &other.frees,
                             test_count_free, NULL);
  /* the thread-safe entry points work from any thread */
  OK(aloop_call_soon_threadsafe(other.loop, stop_cb, NULL, NULL, NULL));
  return NULL;
}

static void start_thread_cb(aloop_loop_t *loop, void *ud) {
  ASSERT_EQ(pthread_create(&other.thread, NULL, call_soon_from_thread, NULL),
            0);
}

TEST(debug_detects_other_thread) {
  aloop_loop_t *loop = new_loop();
  OK(aloop_loop_set_debug(loop, 1));
  other.loop = loop;
  other.rc = 1;
  /* while the loop runs on this thread, another thread calls a function
   * that is not thread-safe */
  OK(aloop_call_soon(loop, start_thread_cb, NULL, NULL, NULL));
  OK(aloop_call_later(loop, 30.0, test_never_cb, NULL, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  pthread_join(other.thread, NULL);
  ASSERT_EQ(other.rc, ALOOP_ENOTLOOPTHREAD);
  ASSERT_EQ(other.frees, 1);
  OK(aloop_loop_free(loop));
}

TEST(loop_time) {
  aloop_loop_t *loop = new_loop();
  double before = test_now(), t = 0, t2 = 0;
  OK(aloop_loop_time(loop, &t));
  double after = test_now();
  /* the same clock as CLOCK_MONOTONIC */
  ASSERT_DBL(t, >=, before - 0.005);
  ASSERT_DBL(t, <=, after + 0.005);
  /* monotonic, and live (not cached between iterations) */
  double prev = t;
  for (int i = 0; i < 10000; i++) {
    OK(aloop_loop_time(loop, &t2));
    ASSERT_DBL(t2, >=, prev);
    prev = t2;
  }
  test_sleep(0.03);
  OK(aloop_loop_time(loop, &t2));
  ASSERT_DBL(t2 - t, >=, 0.03);
  OK(aloop_loop_free(loop));
}

/* ---- embedding ------------------------------------------------------------- */

static int poll_readable(int fd, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int rc;
  while ((rc = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
  }
  ASSERT(rc >= 0);
  return rc > 0 && (p.revents & POLLIN);
}

TEST(backend_timeout) {
  aloop_loop_t *loop = new_loop();
  int ms = 12345;
  /* nothing to do: -1 */
  OK(aloop_loop_backend_timeout(loop, &ms));
  ASSERT_EQ(ms, -1);
  /* a ready callback: 0 */
  OK(aloop_call_soon(loop, rec_cb, (void *)1, NULL, NULL));
  OK(aloop_loop_backend_timeout(loop, &ms));
  ASSERT_EQ(ms, 0);
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ORDER(1);
  OK(aloop_loop_backend_timeout(loop, &ms));
  ASSERT_EQ(ms, -1);
  /* a timer: the time to it */
  aloop_handle_t *h = NULL;
  OK(aloop_call_later(loop, 5.0, rec_cb, (void *)2, NULL, &h));
  OK(aloop_loop_backend_timeout(loop, &ms));
  ASSERT_CMP(ms, >, 4000);
  ASSERT_CMP(ms, <=, 5000);
  OK(aloop_call_later(loop, 0.2, rec_cb, (void *)3, NULL, NULL));
  OK(aloop_loop_backend_timeout(loop, &ms));
  ASSERT_CMP(ms, >, 0);
  ASSERT_CMP(ms, <=, 200);
  /* waiting that long and running NOWAIT runs the timer */
  test_sleep((double)ms / 1000.0);
  while (norder < 2) {
    OK(aloop_loop_backend_timeout(loop, &ms));
    if (ms > 0)
      test_sleep((double)ms / 1000.0);
    OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  }
  ORDER(1, 3);
  OK(aloop_handle_cancel(h));
  OK(aloop_loop_free(loop));
}

static void *post_threadsafe(void *arg) {
  aloop_loop_t *loop = arg;
  OK(aloop_call_soon_threadsafe(loop, rec_cb, (void *)7, NULL, NULL));
  return NULL;
}

TEST(backend_fd_readable_after_threadsafe) {
  aloop_loop_t *loop = new_loop();
  int fd = aloop_loop_backend_fd(loop);
  ASSERT_CMP(fd, >=, 0);
  ASSERT_EQ(aloop_loop_backend_fd(loop), fd); /* stable */
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(poll_readable(fd, 0), 0);
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, post_threadsafe, loop), 0);
  /* readable once the other thread posted */
  ASSERT_EQ(poll_readable(fd, 10000), 1);
  pthread_join(th, NULL);
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ORDER(7);
  /* and no longer readable once that work ran */
  ASSERT_EQ(poll_readable(fd, 0), 0);
  OK(aloop_loop_free(loop));
}

TEST(run_nowait_never_blocks) {
  aloop_loop_t *loop = new_loop();
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  OK(aloop_add_reader(loop, p[0], nop_fd_cb, NULL, NULL));
  OK(aloop_call_later(loop, 30.0, test_never_cb, NULL, NULL, NULL));
  double t0 = test_now();
  for (int i = 0; i < 100; i++)
    OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  OK(aloop_loop_run_once(loop, 0.0));
  ASSERT_DBL(test_now() - t0, <, 5.0);
  ASSERT_EQ(aloop_remove_reader(loop, p[0]), 1);
  OK(aloop_loop_free(loop));
}

TEST(run_once_waits) {
  aloop_loop_t *loop = new_loop();
  /* ONCE with only a timer: waits for it and runs it in that iteration */
  double t0 = test_now();
  OK(aloop_call_later(loop, 0.05, rec_cb, (void *)1, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_ONCE));
  ASSERT_DBL(test_now() - t0, >=, 0.05);
  ORDER(1);
  /* run_once(timeout) with a far timer waits about `timeout` */
  OK(aloop_call_later(loop, 30.0, test_never_cb, NULL, NULL, NULL));
  t0 = test_now();
  OK(aloop_loop_run_once(loop, 0.05));
  double waited = test_now() - t0;
  ASSERT_DBL(waited, >=, 0.045);
  ASSERT_DBL(waited, <, 10.0);
  OK(aloop_loop_free(loop));
}

struct wakeup_rec {
  int count;
  pthread_t thread;
  aloop_loop_t *loop;
  int frees;
  pthread_t free_thread;
};

static void wakeup_cb(aloop_loop_t *loop, void *ud) {
  struct wakeup_rec *w = ud;
  ASSERT_PTR_EQ(loop, w->loop);
  w->thread = pthread_self();
  __atomic_add_fetch(&w->count, 1, __ATOMIC_SEQ_CST);
}

static void wakeup_free(void *ud) {
  struct wakeup_rec *w = ud;
  w->frees++;
  w->free_thread = pthread_self();
}

struct poster {
  aloop_loop_t *loop;
  pthread_t self;
  int what; /* 0 call_soon_threadsafe, 1 wakeup, 2 stop */
};

static void *poster_main(void *arg) {
  struct poster *p = arg;
  p->self = pthread_self();
  if (p->what == 0)
    OK(aloop_call_soon_threadsafe(p->loop, rec_cb, (void *)9, NULL, NULL));
  else if (p->what == 1)
    OK(aloop_loop_wakeup(p->loop));
  else
    OK(aloop_loop_stop(p->loop));
  return NULL;
}

TEST(wakeup_cb_from_posting_thread) {
  aloop_loop_t *loop = new_loop();
  struct wakeup_rec w = {0};
  w.loop = loop;
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT)); /* this is the loop thread */
  OK(aloop_loop_set_wakeup_cb(loop, wakeup_cb, &w, wakeup_free));
  for (int what = 0; what < 3; what++) {
    struct poster p = {loop, 0, what};
    int before = __atomic_load_n(&w.count, __ATOMIC_SEQ_CST);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, poster_main, &p), 0);
    pthread_join(th, NULL);
    if (__atomic_load_n(&w.count, __ATOMIC_SEQ_CST) <= before)
      FAIL("posting #%d from another thread did not call the wakeup cb", what);
    ASSERT(pthread_equal(w.thread, p.self));
    OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  }
  ORDER(9);
  /* removing it drops the userdata once, on the loop thread */
  OK(aloop_loop_set_wakeup_cb(loop, NULL, NULL, NULL));
  ASSERT_EQ(w.frees, 1);
  ASSERT(pthread_equal(w.free_thread, pthread_self()));
  int count = w.count;
  struct poster p = {loop, 0, 0};
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, poster_main, &p), 0);
  pthread_join(th, NULL);
  ASSERT_EQ(w.count, count);
  OK(aloop_loop_free(loop));
  ASSERT_EQ(w.frees, 1);
}

/* ---- exception handler ----------------------------------------------------- */

struct exc_rec {
  int calls;
  char message[128];
  int error;
  size_t size;
  aloop_loop_t *loop;
  int frees;
};

static void exc_handler(aloop_loop_t *loop, const aloop_exception_context_t *c,
                        void *ud) {
  struct exc_rec *r = ud;
  r->calls++;
  r->loop = loop;
  ASSERT(c != NULL && c->message != NULL);
  snprintf(r->message, sizeof r->message, "%s", c->message);
  r->error = c->error;
  r->size = c->size;
}

static void exc_free(void *ud) { ((struct exc_rec *)ud)->frees++; }

/* Runs fn(loop, arg) with stderr captured into out. */
static void capture_stderr(void (*fn)(aloop_loop_t *, const char *),
                           aloop_loop_t *loop, const char *arg, char *out,
                           size_t outlen) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  fflush(stderr);
  int saved = dup(2);
  ASSERT(saved >= 0);
  ASSERT(dup2(p[1], 2) == 2);
  fn(loop, arg);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(p[1]);
  size_t n = 0;
  ssize_t r;
  while (n < outlen - 1 && (r = read(p[0], out + n, outlen - 1 - n)) > 0)
    n += (size_t)r;
  out[n] = 0;
  close(p[0]);
}

static void call_handler_fn(aloop_loop_t *loop, const char *msg) {
  OK(aloop_loop_call_exception_handler(loop, msg, ALOOP_ECONNRESET));
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
}

static void call_default_fn(aloop_loop_t *loop, const char *msg) {
  aloop_exception_context_t c;
  memset(&c, 0, sizeof c);
  c.size = sizeof c;
  c.message = msg;
  c.error = ALOOP_EPIPE;
  OK(aloop_loop_default_exception_handler(loop, &c));
}

TEST(exception_handler) {
  aloop_loop_t *loop = new_loop();
  struct exc_rec r = {0};
  aloop_exception_cb cb = exc_handler;
  void *ud = &r;
  /* the default one */
  OK(aloop_loop_get_exception_handler(loop, &cb, &ud));
  ASSERT(cb == NULL);
  ASSERT(ud == NULL);
  /* set / get / call */
  OK(aloop_loop_set_exception_handler(loop, exc_handler, &r, exc_free));
  OK(aloop_loop_get_exception_handler(loop, &cb, &ud));
  ASSERT(cb == exc_handler);
  ASSERT_PTR_EQ(ud, &r);
  OK(aloop_loop_call_exception_handler(loop, "boom", ALOOP_EIO));
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(r.calls, 1);
  ASSERT_STR_EQ(r.message, "boom");
  ASSERT_EQ(r.error, ALOOP_EIO);
  ASSERT_PTR_EQ(r.loop, loop);
  ASSERT_CMP(r.size, >=, sizeof(aloop_exception_context_t));
  /* without a message: refused, or the handler still gets a message */
  int rc = aloop_loop_call_exception_handler(loop, NULL, ALOOP_EIO);
  if (rc != ALOOP_EINVAL) {
    OK(rc);
    OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
    ASSERT_EQ(r.calls, 2); /* exc_handler asserts context->message != NULL */
  }
  r.calls = 1;
  /* restore the default: the old userdata is dropped once */
  OK(aloop_loop_set_exception_handler(loop, NULL, NULL, NULL));
  ASSERT_EQ(r.frees, 1);
  OK(aloop_loop_get_exception_handler(loop, &cb, &ud));
  ASSERT(cb == NULL);
  ASSERT(ud == NULL);
  /* the default handler prints the context to stderr */
  char out[4096];
  capture_stderr(call_handler_fn, loop, "default-handler-message-1", out,
                 sizeof out);
  if (!strstr(out, "default-handler-message-1"))
    FAIL("default handler printed \"%s\"", out);
  capture_stderr(call_default_fn, loop, "default-handler-message-2", out,
                 sizeof out);
  if (!strstr(out, "default-handler-message-2"))
    FAIL("aloop_loop_default_exception_handler printed \"%s\"", out);
  ASSERT_EQ(r.calls, 1);
  OK(aloop_loop_free(loop));
  ASSERT_EQ(r.frees, 1);
}

/* ---- fd watchers -------------------------------------------------------- */

/* Issue 9: a handler that replaces itself (set_exception_handler from
 * inside the handler) keeps its userdata until it returns: free_cb runs
 * after the handler, once. */
struct self_exc {
  int alive, frees, calls, used_after_free;
  struct exc_rec next;
};

static void self_exc_free(void *ud) {
  struct self_exc *x = ud;
  x->alive = 0;
  x->frees++;
}

static void self_replacing_handler(aloop_loop_t *loop,
                                   const aloop_exception_context_t *c,
                                   void *ud) {
  struct self_exc *x = ud;
  x->calls++;
  OK(aloop_loop_set_exception_handler(loop, exc_handler, &x->next, exc_free));
  if (!x->alive) /* the old userdata must still be there */
    x->used_after_free++;
  /* the new handler is in place already */
  aloop_exception_cb cb = NULL;
  void *got = NULL;
  OK(aloop_loop_get_exception_handler(loop, &cb, &got));
  ASSERT(cb == exc_handler && got == &x->next);
}

TEST(exception_handler_replaced_from_inside_itself) {
  aloop_loop_t *loop = new_loop();
  struct self_exc x;
  memset(&x, 0, sizeof x);
  x.alive = 1;
  OK(aloop_loop_set_exception_handler(loop, self_replacing_handler, &x,
                                      self_exc_free));
  OK(aloop_loop_call_exception_handler(loop, "first", 0));
  ASSERT_EQ(x.calls, 1);
  ASSERT_EQ(x.used_after_free, 0);
  ASSERT_EQ(x.frees, 1); /* released when the handler returned */
  OK(aloop_loop_call_exception_handler(loop, "second", 0));
  ASSERT_EQ(x.calls, 1);
  ASSERT_EQ(x.next.calls, 1);
  ASSERT_STR_EQ(x.next.message, "second");
  OK(aloop_loop_free(loop));
  ASSERT_EQ(x.frees, 1);
  ASSERT_EQ(x.next.frees, 1);
}

struct fdrec {
  int calls;
  int fd;
  aloop_loop_t *loop;
  int frees;
};

static void fd_cb(aloop_loop_t *loop, int fd, void *ud) {
  struct fdrec *r = ud;
  r->calls++;
  r->fd = fd;
  r->loop = loop;
}

static void fdrec_free(void *ud) { ((struct fdrec *)ud)->frees++; }

TEST(add_reader_pipe) {
  aloop_loop_t *loop = new_loop();
  int p[2];
  char c;
  ASSERT_EQ(pipe(p), 0);
  struct fdrec r = {0};
  OK(aloop_add_reader(loop, p[0], fd_cb, &r, fdrec_free));
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(r.calls, 0);
  ASSERT_EQ(write(p[1], "x", 1), 1);
  OK(aloop_loop_run(loop, ALOOP_RUN_ONCE));
  ASSERT_EQ(r.calls, 1);
  ASSERT_EQ(r.fd, p[0]);
  ASSERT_PTR_EQ(r.loop, loop);
  /* level-triggered: still readable, called again */
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(r.calls, 2);
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(r.calls, 3);
  ASSERT_EQ(read(p[0], &c, 1), 1);
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(r.calls, 3);
  /* remove: 1, then 0; free_cb once */
  ASSERT_EQ(r.frees, 0);
  ASSERT_EQ(aloop_remove_reader(loop, p[0]), 1);
  ASSERT_EQ(r.frees, 1);
  ASSERT_EQ(aloop_remove_reader(loop, p[0]), 0);
  ASSERT_EQ(write(p[1], "y", 1), 1);
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  OK(aloop_loop_run_once(loop, 0.02));
  ASSERT_EQ(r.calls, 3);
  ASSERT_EQ(r.frees, 1);
  OK(aloop_loop_free(loop));
  close(p[0]);
  close(p[1]);
}

/* Issue 9: fd 2^31-1 entering anywhere is refused with ALOOP_EBADF before
 * the loop's fd table grows: add_reader grew it to 2^31 entries (16 GiB of
 * address space) and then failed. The address space is limited to what the
 * process has now plus 1 GiB, so growing the table aborts the process
 * (the Go runtime's out-of-memory is fatal); each call must also be quick. */
static int fd_result(int rc, aloop_future_t *f, aloop_loop_t *loop) {
  if (rc < 0 || f == NULL)
    return rc;
  OK(aloop_loop_run_until_complete(loop, f));
  rc = aloop_future_exception(f);
  OK(aloop_future_free(f));
  return rc;
}

static void nop_proto_made(aloop_transport_t *t, void *ud) {}

TEST(huge_fd_is_refused_before_the_table_grows) {
  aloop_loop_t *loop = new_loop();
  long pages = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  ASSERT(f != NULL);
  ASSERT_EQ(fscanf(f, "%ld", &pages), 1);
  fclose(f);
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max =
      (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)1 << 30);
  ASSERT_EQ(setrlimit(RLIMIT_AS, &rl), 0);

  const int huge = INT_MAX;
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = nop_proto_made;
  char buf[16];
  aloop_future_t *fut;
  double t0 = test_now();
  ASSERT_EQ(aloop_add_reader(loop, huge, fd_cb, NULL, NULL), ALOOP_EBADF);
  ASSERT_EQ(aloop_add_writer(loop, huge, fd_cb, NULL, NULL), ALOOP_EBADF);
  ASSERT_EQ(aloop_remove_reader(loop, huge), 0);
  ASSERT_EQ(aloop_remove_writer(loop, huge), 0);
  fut = NULL;
  ASSERT_EQ(fd_result(aloop_sock_recv(loop, huge, 10, &fut), fut, loop), ALOOP_EBADF);
  fut = NULL;
  ASSERT_EQ(fd_result(aloop_sock_recv_into(loop, huge, buf, sizeof buf, &fut), fut, loop), ALOOP_EBADF);
  fut = NULL;
  ASSERT_EQ(fd_result(aloop_sock_sendall(loop, huge, "x", 1, &fut), fut, loop), ALOOP_EBADF);
  fut = NULL;
  ASSERT_EQ(fd_result(aloop_sock_connect(loop, huge, "127.0.0.1", 9, &fut), fut, loop), ALOOP_EBADF);
  fut = NULL;
  ASSERT_EQ(fd_result(aloop_sock_accept(loop, huge, &fut), fut, loop), ALOOP_EBADF);
  fut = NULL;
  ASSERT_EQ(fd_result(aloop_connect_read_pipe(loop, huge, &p, NULL, NULL, &fut), fut, loop), ALOOP_EBADF);
  fut = NULL;
  ASSERT_EQ(fd_result(aloop_connect_write_pipe(loop, huge, &p, NULL, NULL, &fut), fut, loop), ALOOP_EBADF);
  fut = NULL;
  ASSERT_EQ(fd_result(aloop_connect_accepted_socket(loop, huge, &p, NULL, NULL, &fut), fut, loop), ALOOP_EBADF);
  aloop_connect_options_t co;
  memset(&co, 0, sizeof co);
  co.size = sizeof co;
  co.has_sock = 1;
  co.sock = huge;
  fut = NULL;
  ASSERT_EQ(fd_result(aloop_create_connection(loop, NULL, 0, &p, NULL, NULL, &co, &fut), fut, loop), ALOOP_EBADF);
  double dt = test_now() - t0;
  ASSERT_DBL(dt, <, 1.0);
  /* the loop still works and closes at once */
  int pp[2];
  ASSERT_EQ(pipe(pp), 0);
  OK(aloop_add_reader(loop, pp[0], fd_cb, NULL, NULL));
  ASSERT_EQ(aloop_remove_reader(loop, pp[0]), 1);
  close(pp[0]);
  close(pp[1]);
  t0 = test_now();
  OK(aloop_loop_free(loop));
  ASSERT_DBL(test_now() - t0, <, 0.5);
}

TEST(add_reader_replaces) {
  aloop_loop_t *loop = new_loop();
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  struct fdrec a = {0}, b = {0};
  OK(aloop_add_reader(loop, p[0], fd_cb, &a, fdrec_free));
  OK(aloop_add_reader(loop, p[0], fd_cb, &b, fdrec_free));
  ASSERT_EQ(a.frees, 1);
  ASSERT_EQ(write(p[1], "x", 1), 1);
  OK(aloop_loop_run(loop, ALOOP_RUN_ONCE));
  ASSERT_EQ(a.calls, 0);
  ASSERT_EQ(b.calls, 1);
  ASSERT_EQ(aloop_remove_reader(loop, p[0]), 1);
  ASSERT_EQ(a.frees, 1);
  ASSERT_EQ(b.frees, 1);
  OK(aloop_loop_free(loop));
  close(p[0]);
  close(p[1]);
}

TEST(add_writer_pipe) {
  aloop_loop_t *loop = new_loop();
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  struct fdrec w = {0}, r = {0};
  /* a reader and a writer on the two ends, and both on one fd's reader */
  OK(aloop_add_writer(loop, p[1], fd_cb, &w, fdrec_free));
  OK(aloop_add_reader(loop, p[0], fd_cb, &r, fdrec_free));
  OK(aloop_loop_run(loop, ALOOP_RUN_ONCE));
  ASSERT_EQ(w.calls, 1);
  ASSERT_EQ(w.fd, p[1]);
  ASSERT_EQ(r.calls, 0);
  /* fill the pipe: no longer writable */
  fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_NONBLOCK);
  char buf[4096];
  memset(buf, 'z', sizeof buf);
  while (write(p[1], buf, sizeof buf) > 0) {
  }
  int before = w.calls;
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(w.calls, before);
  ASSERT_EQ(r.calls, 1);
  ASSERT_EQ(aloop_remove_writer(loop, p[1]), 1);
  ASSERT_EQ(aloop_remove_writer(loop, p[1]), 0);
  ASSERT_EQ(w.frees, 1);
  ASSERT_EQ(aloop_remove_reader(loop, p[0]), 1);
  ASSERT_EQ(r.frees, 1);
  OK(aloop_loop_free(loop));
  close(p[0]);
  close(p[1]);
}

/* ---- the current loop of a thread ------------------------------------------ */

static void check_running_cb(aloop_loop_t *loop, void *ud) {
  aloop_loop_t *running = NULL, *current = NULL;
  OK(aloop_get_running_loop(&running));
  ASSERT_PTR_EQ(running, loop);
  OK(aloop_get_event_loop(&current));
  ASSERT_PTR_EQ(current, loop);
  *(int *)ud = 1;
}

static void *current_loop_in_thread(void *arg) {
  aloop_loop_t *l = NULL;
  *(int *)arg = aloop_get_event_loop(&l);
  return NULL;
}

TEST(current_loop) {
  aloop_loop_t *loop = new_loop(), *l = NULL;
  int ran = 0;
  ASSERT_EQ(aloop_get_running_loop(&l), ALOOP_ENOLOOP);
  ASSERT_EQ(aloop_get_event_loop(&l), ALOOP_ENOLOOP);
  /* inside a callback: the running loop */
  OK(aloop_call_soon(loop, check_running_cb, &ran, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(ran, 1);
  ASSERT_EQ(aloop_get_running_loop(&l), ALOOP_ENOLOOP);
  /* set for this thread only */
  OK(aloop_set_event_loop(loop));
  OK(aloop_get_event_loop(&l));
  ASSERT_PTR_EQ(l, loop);
  ASSERT_EQ(aloop_get_running_loop(&l), ALOOP_ENOLOOP);
  int other = 1;
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, current_loop_in_thread, &other), 0);
  pthread_join(th, NULL);
  ASSERT_EQ(other, ALOOP_ENOLOOP);
  /* unset, set again, then released: unset everywhere */
  OK(aloop_set_event_loop(NULL));
  ASSERT_EQ(aloop_get_event_loop(&l), ALOOP_ENOLOOP);
  OK(aloop_set_event_loop(loop));
  OK(aloop_loop_free(loop));
  ASSERT_EQ(aloop_get_event_loop(&l), ALOOP_ENOLOOP);
  ASSERT_EQ(aloop_set_event_loop(loop), ALOOP_EBADF);
}

/* ---- slow callbacks (debug mode) ---------------------------------------------- */

static void slow_cb(aloop_loop_t *loop, void *ud) { test_sleep(0.05); }

TEST(slow_callback_reported_in_debug_mode) {
  aloop_loop_t *loop = new_loop();
  struct exc_rec r = {0};
  double d = 0;
  OK(aloop_loop_get_slow_callback_duration(loop, &d));
  ASSERT_DBL(d, ==, 0.1); /* asyncio's default */
  OK(aloop_loop_set_slow_callback_duration(loop, 0.01));
  OK(aloop_loop_get_slow_callback_duration(loop, &d));
  ASSERT_DBL(d, ==, 0.01);
  OK(aloop_loop_set_exception_handler(loop, exc_handler, &r, NULL));
  /* not in debug mode: not reported */
  OK(aloop_call_soon(loop, slow_cb, NULL, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(r.calls, 0);
  OK(aloop_loop_set_debug(loop, 1));
  OK(aloop_call_soon(loop, slow_cb, NULL, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(r.calls, 1);
  ASSERT_EQ(r.error, 0);
  if (strstr(r.message, "took") == NULL)
    FAIL("slow-callback report says \"%s\"", r.message);
  OK(aloop_loop_free(loop));
}
