/*
 * test-threadsafe.c - aloop_call_soon_threadsafe from many threads: every
 * callback arrives exactly once, each thread's in the order it posted them,
 * all on the loop's thread; and the loop wakes up for them.
 */
#include "test.h"

#include <pthread.h>
#include <sys/syscall.h>

#define THREADS 4
#define PER_THREAD 100000

static aloop_loop_t *loop;
static pthread_t loop_thread;
static pid_t loop_tid;
static long next_seq[THREADS];
static long received;
static int frees;
static pthread_barrier_t start;

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static void on_call(aloop_loop_t *l, void *ud) {
  uintptr_t v = (uintptr_t)ud;
  int t = (int)(v >> 32);
  long seq = (long)(v & 0xffffffffu);
  if (!pthread_equal(pthread_self(), loop_thread) || gettid_() != loop_tid)
    FAIL("callback of thread %d ran on another thread than the loop's", t);
  if (l != loop)
    FAIL("callback got loop %p, expected %p", (void *)l, (void *)loop);
  if (t < 0 || t >= THREADS)
    FAIL("bad thread index %d", t);
  if (seq != next_seq[t])
    FAIL("thread %d: got #%ld, expected #%ld", t, seq, next_seq[t]);
  next_seq[t]++;
  if (++received == (long)THREADS * PER_THREAD)
    OK(aloop_loop_stop(l));
}

static void count_free(void *ud) {
  if (!pthread_equal(pthread_self(), loop_thread))
    FAIL("free_cb ran on another thread than the loop's");
  frees++;
}

static void *poster(void *arg) {
  int t = (int)(intptr_t)arg;
  pthread_barrier_wait(&start);
  for (long i = 0; i < PER_THREAD; i++) {
    uintptr_t v = ((uintptr_t)t << 32) | (uintptr_t)i;
    /* every 1000th with a free_cb, to check those too */
    int rc = aloop_call_soon_threadsafe(loop, on_call, (void *)v,
                                        i % 1000 == 0 ? count_free : NULL,
                                        NULL);
    if (rc != 0)
      FAIL("thread %d: call_soon_threadsafe #%ld returned %d (%s)", t, i, rc,
           aloop_err_name(rc));
  }
  return NULL;
}

static void watchdog(aloop_loop_t *l, void *ud) {
  FAIL("only %ld of %ld callbacks arrived in 60 s", received,
       (long)THREADS * PER_THREAD);
}

static void run_posters(int start_before_run) {
  pthread_t th[THREADS];
  loop_thread = pthread_self();
  loop_tid = gettid_();
  OK(aloop_loop_new(&loop));
  OK(aloop_call_later(loop, 60.0, watchdog, NULL, NULL, NULL));
  ASSERT_EQ(pthread_barrier_init(&start, NULL, THREADS + 1), 0);
  for (int t = 0; t < THREADS; t++)
    ASSERT_EQ(pthread_create(&th[t], NULL, poster, (void *)(intptr_t)t), 0);
  if (start_before_run) {
    pthread_barrier_wait(&start); /* posting while the loop is running */
    OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  } else {
    /* posting before the loop runs: everything is queued, then run */
    pthread_barrier_wait(&start);
    for (int t = 0; t < THREADS; t++)
      pthread_join(th[t], NULL);
    OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  }
  if (start_before_run)
    for (int t = 0; t < THREADS; t++)
      pthread_join(th[t], NULL);
  ASSERT_EQ(received, (long)THREADS * PER_THREAD);
  for (int t = 0; t < THREADS; t++)
    ASSERT_EQ(next_seq[t], PER_THREAD);
  ASSERT_EQ(frees, THREADS * (PER_THREAD / 1000));
  /* nothing more arrives */
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(received, (long)THREADS * PER_THREAD);
  pthread_barrier_destroy(&start);
}

TEST(four_threads_while_running) { run_posters(1); }

TEST(four_threads_before_running) { run_posters(0); }

/* A loop blocked in RUN_DEFAULT with nothing to do wakes for a post. */
static void *late_poster(void *arg) {
  test_sleep(0.1);
  OK(aloop_call_soon_threadsafe(loop, (aloop_callback_cb)arg, NULL, NULL,
                                NULL));
  return NULL;
}

static int woke;
static void wake_and_stop(aloop_loop_t *l, void *ud) {
  ASSERT(pthread_equal(pthread_self(), loop_thread));
  woke = 1;
  OK(aloop_loop_stop(l));
}

TEST(wakes_blocked_loop) {
  pthread_t th;
  loop_thread = pthread_self();
  OK(aloop_loop_new(&loop));
  OK(aloop_call_later(loop, 60.0, watchdog, NULL, NULL, NULL));
  ASSERT_EQ(pthread_create(&th, NULL, late_poster, (void *)wake_and_stop), 0);
  double t0 = test_now();
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  pthread_join(th, NULL);
  ASSERT_EQ(woke, 1);
  ASSERT_DBL(test_now() - t0, <, 30.0);
}

/* aloop_loop_stop from another thread stops a blocked DEFAULT run. */
static void *late_stopper(void *arg) {
  test_sleep(0.1);
  OK(aloop_loop_stop(loop));
  return NULL;
}

TEST(stop_from_other_thread) {
  pthread_t th;
  OK(aloop_loop_new(&loop));
  OK(aloop_call_later(loop, 60.0, watchdog, NULL, NULL, NULL));
  ASSERT_EQ(pthread_create(&th, NULL, late_stopper, NULL), 0);
  double t0 = test_now();
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  pthread_join(th, NULL);
  ASSERT_DBL(test_now() - t0, <, 30.0);
  ASSERT_EQ(aloop_loop_is_running(loop), 0);
}
