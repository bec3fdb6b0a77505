/*
 * test-threadsafe.c - aloop_call_soon_threadsafe from many threads: every
 * callback arrives exactly once, each thread's in the order it posted them,
 * all on the loop's thread; and the loop wakes up for them.
 */
#include "test.h"

#include <pthread.h>
#include <sched.h>
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

/* ---- the wake-up callback (issue 9, item 3) ----------------------------------
 * The wake-up callback is the one host callback the library calls from any
 * thread, its own included. Replacing it (aloop_loop_set_wakeup_cb) or freeing
 * the loop while other threads are inside it must not release its userdata
 * under them: the free_cb runs once no call is running any more. */

#define WOBJS 400000
struct wobj {
  int alive; /* set before registration; 0 once free_cb ran */
  int frees;
};
static struct wobj wobjs[WOBJS];
static int violations, stop_posting, wake_calls;

static void w_wake(aloop_loop_t *l, void *ud) {
  struct wobj *o = ud;
  __atomic_add_fetch(&wake_calls, 1, __ATOMIC_SEQ_CST);
  if (!__atomic_load_n(&o->alive, __ATOMIC_SEQ_CST))
    __atomic_add_fetch(&violations, 1, __ATOMIC_SEQ_CST);
  for (volatile int i = 0; i < 2000; i++) /* stay inside a little */
    ;
  if (!__atomic_load_n(&o->alive, __ATOMIC_SEQ_CST))
    __atomic_add_fetch(&violations, 1, __ATOMIC_SEQ_CST);
}

static void w_free(void *ud) {
  struct wobj *o = ud;
  __atomic_store_n(&o->alive, 0, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&o->frees, 1, __ATOMIC_SEQ_CST);
}

static void noop(aloop_loop_t *l, void *ud) {}

static void *wake_poster(void *arg) {
  for (long i = 0; !__atomic_load_n(&stop_posting, __ATOMIC_SEQ_CST); i++) {
    /* mostly wakeup (nothing queued, so the loop's iterations stay short) */
    int rc = i % 64 == 0 ? aloop_call_soon_threadsafe(loop, noop, NULL, NULL, NULL)
                         : aloop_loop_wakeup(loop);
    if (rc == ALOOP_EBADF || rc == ALOOP_ECLOSED)
      break; /* the loop was freed */
    if (rc != 0)
      FAIL("call_soon_threadsafe: %s", aloop_err_name(rc));
  }
  return NULL;
}

#define WAKE_THREADS 2
TEST(wakeup_cb_replaced_while_other_threads_call_it) {
  pthread_t th[WAKE_THREADS];
  OK(aloop_loop_new(&loop));
  wobjs[0].alive = 1;
  OK(aloop_loop_set_wakeup_cb(loop, w_wake, &wobjs[0], w_free));
  for (int t = 0; t < WAKE_THREADS; t++)
    ASSERT_EQ(pthread_create(&th[t], NULL, wake_poster, NULL), 0);
  double t0 = test_now();
  while (__atomic_load_n(&wake_calls, __ATOMIC_SEQ_CST) == 0) {
    if (test_now() - t0 > 20)
      FAIL("the posters never called the wake-up callback");
    OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  }
  int last = 0;
  t0 = test_now();
  for (int i = 1; i < WOBJS && __atomic_load_n(&wake_calls, __ATOMIC_SEQ_CST) < 2000 &&
                  test_now() - t0 < 10;
       i++) {
    wobjs[i].alive = 1;
    OK(aloop_loop_set_wakeup_cb(loop, w_wake, &wobjs[i], w_free));
    last = i;
    OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT)); /* consume the wake-up */
    sched_yield();
  }
  /* freeing the loop while the posters still call it */
  OK(aloop_loop_free(loop));
  __atomic_store_n(&stop_posting, 1, __ATOMIC_SEQ_CST);
  for (int t = 0; t < WAKE_THREADS; t++)
    pthread_join(th[t], NULL);
  printf("# %d wake-up calls, %d replacements\n", wake_calls, last);
  ASSERT_CMP(wake_calls, >=, 200);
  ASSERT_EQ(violations, 0);
  for (int i = 0; i <= last; i++)
    if (wobjs[i].frees != 1)
      FAIL("userdata #%d freed %d times", i, wobjs[i].frees);
}

/* The documented exception: completions of the library's background work
 * (here an executor job) call the wake-up callback on a library thread. */
static pid_t wake_tid;
static void *job(void *arg) { return arg; }
static void tid_wake(aloop_loop_t *l, void *ud) {
  __atomic_store_n(&wake_tid, gettid_(), __ATOMIC_SEQ_CST);
}

TEST(wakeup_cb_from_library_threads) {
  OK(aloop_loop_new(&loop));
  OK(aloop_loop_set_wakeup_cb(loop, tid_wake, NULL, NULL));
  aloop_future_t *f = NULL;
  OK(aloop_run_in_executor(loop, job, NULL, NULL, &f));
  double t0 = test_now();
  while (!__atomic_load_n(&wake_tid, __ATOMIC_SEQ_CST)) {
    if (test_now() - t0 > 20)
      FAIL("the wake-up callback was not called for the executor's completion");
    test_sleep(0.001);
  }
  ASSERT(wake_tid != gettid_());
  OK(aloop_loop_run_until_complete(loop, f));
  OK(aloop_future_free(f));
  OK(aloop_loop_free(loop));
}
