/*
 * test-signal.c - add_signal_handler / remove_signal_handler: handlers run on
 * the loop thread; a burst of 1,000 signals is coalesced without losing the
 * last one; a second loop in another thread has its own handlers; removing
 * the last handler gives the signal back to the host's own C handler; bad
 * signal numbers are rejected.
 */
#include "test.h"
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

struct counter {
  atomic_int calls;
  int last_sig;
  pid_t tid; /* the thread the handler must run on */
  aloop_loop_t *loop;
  int frees;
};

static void counter_free(void *ud) {
  struct counter *c = ud;
  if (gettid_() != c->tid)
    FAIL("free_cb ran off the loop thread");
  c->frees++;
}

static void on_signal(aloop_loop_t *l, int sig, void *ud) {
  struct counter *c = ud;
  if (gettid_() != c->tid)
    FAIL("signal handler ran on thread %d, loop thread %d", (int)gettid_(),
         (int)c->tid);
  if (l != c->loop)
    FAIL("handler got another loop");
  c->last_sig = sig;
  atomic_fetch_add(&c->calls, 1);
}

static void never(aloop_loop_t *l, int sig, void *ud) {
  FAIL("a handler that must not run ran (signal %d)", sig);
}

static volatile sig_atomic_t c_handler_calls;
static void c_handler(int sig) { c_handler_calls++; }

static void install_c_handler(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = c_handler;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(sig, &sa, NULL), 0);
}

TEST(handler_runs_on_loop_thread) {
  struct counter c = {0};
  OK(aloop_loop_new(&loop));
  c.tid = gettid_();
  c.loop = loop;
  OK(aloop_add_signal_handler(loop, SIGUSR1, on_signal, &c, counter_free));
  ASSERT_EQ(aloop_loop_alive(loop), 0); /* handlers do not keep it alive */
  /* Arrives while the loop does not run: delivered by the next run. */
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
  test_sleep(0.05);
  ASSERT_EQ(atomic_load(&c.calls), 0); /* never outside the loop's run */
  RUN_UNTIL(atomic_load(&c.calls) == 1);
  ASSERT_EQ(c.last_sig, SIGUSR1);
  ASSERT_EQ(c.frees, 0);
  ASSERT_EQ(aloop_remove_signal_handler(loop, SIGUSR1), 1);
  ASSERT_EQ(c.frees, 1);
  ASSERT_EQ(aloop_remove_signal_handler(loop, SIGUSR1), 0);
  OK(aloop_loop_free(loop));
}

TEST(replace_handler) {
  struct counter c = {0};
  int frees1 = 0, frees2 = 0;
  OK(aloop_loop_new(&loop));
  c.tid = gettid_();
  c.loop = loop;
  OK(aloop_add_signal_handler(loop, SIGUSR2, never, NULL, NULL));
  OK(aloop_add_signal_handler(loop, SIGUSR2, never, &frees1, test_count_free));
  OK(aloop_add_signal_handler(loop, SIGUSR2, on_signal, &c, counter_free));
  ASSERT_EQ(frees1, 1); /* the replaced handler's free_cb ran */
  ASSERT_EQ(raise(SIGUSR2), 0);
  RUN_UNTIL(atomic_load(&c.calls) == 1);
  /* Closing the loop removes its handlers (free_cb runs). */
  ASSERT_EQ(c.frees, 0);
  OK(aloop_loop_close(loop));
  ASSERT_EQ(c.frees, 1);
  ASSERT_EQ(aloop_add_signal_handler(loop, SIGUSR2, never, &frees2, test_count_free), ALOOP_ECLOSED);
  ASSERT_EQ(frees2, 1);
  OK(aloop_loop_free(loop));
}

TEST(invalid_signals) {
  int frees = 0;
  OK(aloop_loop_new(&loop));
  int bad[] = {0, -1, 65, 1000, SIGKILL, SIGSTOP, 32, 33};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ASSERT_EQ(aloop_add_signal_handler(loop, bad[i], never, &frees, test_count_free), ALOOP_EINVAL);
    ASSERT_EQ(aloop_remove_signal_handler(loop, bad[i]), ALOOP_EINVAL);
  }
  ASSERT_EQ(frees, 8);
  ASSERT_EQ(aloop_add_signal_handler(loop, SIGUSR1, NULL, &frees, test_count_free), ALOOP_EINVAL);
  ASSERT_EQ(aloop_add_signal_handler(NULL, SIGUSR1, never, &frees, test_count_free), ALOOP_EBADF);
  ASSERT_EQ(frees, 10);
  ASSERT_EQ(aloop_remove_signal_handler(NULL, SIGUSR1), ALOOP_EBADF);
  OK(aloop_loop_free(loop));
}

/* The host's own C handler, installed first, gets the signal back when the
 * last asyncloop handler is removed; meanwhile only asyncloop handles it. */
static void check_given_back(int sig) {
  struct counter c = {0};
  install_c_handler(sig);
  c_handler_calls = 0;
  ASSERT_EQ(raise(sig), 0);
  ASSERT_EQ(c_handler_calls, 1);

  OK(aloop_loop_new(&loop));
  c.tid = gettid_();
  c.loop = loop;
  OK(aloop_add_signal_handler(loop, sig, on_signal, &c, NULL));
  ASSERT_EQ(raise(sig), 0);
  RUN_UNTIL(atomic_load(&c.calls) == 1);
  ASSERT_EQ(c_handler_calls, 1); /* not called while asyncloop has it */
  ASSERT_EQ(aloop_remove_signal_handler(loop, sig), 1);

  ASSERT_EQ(raise(sig), 0);
  ASSERT_EQ(c_handler_calls, 2); /* the C handler runs again */
  run_for(0.05);
  ASSERT_EQ(atomic_load(&c.calls), 1);

  /* Again, with two loops sharing it: given back only after both removed.
   * And closing a loop removes its handler. */
  aloop_loop_t *l2;
  OK(aloop_loop_new(&l2));
  struct counter c2 = {0};
  c2.tid = c.tid;
  c2.loop = l2;
  OK(aloop_add_signal_handler(loop, sig, on_signal, &c, NULL));
  OK(aloop_add_signal_handler(l2, sig, on_signal, &c2, NULL));
  ASSERT_EQ(aloop_remove_signal_handler(loop, sig), 1);
  ASSERT_EQ(raise(sig), 0);
  ASSERT_EQ(c_handler_calls, 2); /* l2 still has it */
  RUN_LOOP_UNTIL(l2, atomic_load(&c2.calls) == 1);
  OK(aloop_loop_close(l2));
  ASSERT_EQ(raise(sig), 0);
  ASSERT_EQ(c_handler_calls, 3);
  OK(aloop_loop_free(l2));
  OK(aloop_loop_free(loop));
}

TEST(gives_back_previous_c_handler_sigusr1) { check_given_back(SIGUSR1); }

TEST(gives_back_previous_c_handler_sigint) { check_given_back(SIGINT); }

/* After the last handler is removed, a signal whose previous disposition
 * was the default has its default action again (checked in a child). */
TEST(gives_back_default_disposition) {
  OK(aloop_loop_new(&loop));
  OK(aloop_add_signal_handler(loop, SIGUSR2, never, NULL, NULL));
  ASSERT_EQ(aloop_remove_signal_handler(loop, SIGUSR2), 1);
  struct sigaction sa;
  ASSERT_EQ(sigaction(SIGUSR2, NULL, &sa), 0);
  ASSERT(!(sa.sa_flags & SA_SIGINFO) ? sa.sa_handler == SIG_DFL
                                      : sa.sa_sigaction == NULL);
  OK(aloop_loop_free(loop));
}

/* 1,000 signals in a burst from another thread: at least one handler call
 * starts after the last kill() returned, and no more calls than signals. */
static atomic_int sent;
static int seen_after_last;
static int burst_calls;

static void on_burst(aloop_loop_t *l, int sig, void *ud) {
  burst_calls++;
  if (atomic_load(&sent) == 1000)
    seen_after_last = 1;
}

static void *sender(void *arg) {
  for (int i = 1; i <= 1000; i++) {
    if (kill(getpid(), SIGUSR1) != 0)
      FAIL("kill: %s", strerror(errno));
    atomic_store(&sent, i);
  }
  return NULL;
}

TEST(burst_of_1000_keeps_the_last) {
  pthread_t th;
  OK(aloop_loop_new(&loop));
  OK(aloop_add_signal_handler(loop, SIGUSR1, on_burst, NULL, NULL));
  ASSERT_EQ(pthread_create(&th, NULL, sender, NULL), 0);
  RUN_UNTIL(seen_after_last);
  pthread_join(th, NULL);
  ASSERT_CMP(burst_calls, >=, 1);
  ASSERT_CMP(burst_calls, <=, 1000);
  printf("1000 signals -> %d handler calls\n", burst_calls);
  OK(aloop_remove_signal_handler(loop, SIGUSR1));
  OK(aloop_loop_free(loop));
}

/* A second loop in another thread gets its own handlers. */
static aloop_loop_t *loop2;
static struct counter c2_usr1, c2_usr2;
static pthread_barrier_t ready;

static void *second_loop(void *arg) {
  OK(aloop_loop_new(&loop2));
  c2_usr1.tid = c2_usr2.tid = gettid_();
  c2_usr1.loop = c2_usr2.loop = loop2;
  OK(aloop_add_signal_handler(loop2, SIGUSR2, on_signal, &c2_usr2, NULL));
  OK(aloop_add_signal_handler(loop2, SIGHUP, on_signal, &c2_usr1, NULL));
  pthread_barrier_wait(&ready);
  OK(aloop_loop_run(loop2, ALOOP_RUN_DEFAULT)); /* until aloop_loop_stop */
  OK(aloop_loop_close(loop2));
  return NULL;
}

TEST(second_loop_in_another_thread) {
  struct counter usr1 = {0}, hup = {0};
  pthread_t th;
  OK(aloop_loop_new(&loop));
  usr1.tid = hup.tid = gettid_();
  usr1.loop = hup.loop = loop;
  OK(aloop_add_signal_handler(loop, SIGUSR1, on_signal, &usr1, NULL));
  OK(aloop_add_signal_handler(loop, SIGHUP, on_signal, &hup, NULL));
  ASSERT_EQ(pthread_barrier_init(&ready, NULL, 2), 0);
  ASSERT_EQ(pthread_create(&th, NULL, second_loop, NULL), 0);
  pthread_barrier_wait(&ready);

  /* SIGUSR2: only the second loop handles it (on its own thread). */
  ASSERT_EQ(kill(getpid(), SIGUSR2), 0);
  double t0 = test_now();
  while (atomic_load(&c2_usr2.calls) == 0) {
    if (test_now() - t0 > 20)
      FAIL("the second loop's handler did not run");
    OK(aloop_loop_run_once(loop, 0.01));
  }
  ASSERT_EQ(c2_usr2.last_sig, SIGUSR2);
  /* SIGUSR1: only the main loop. */
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
  RUN_UNTIL(atomic_load(&usr1.calls) == 1);
  /* SIGHUP: both loops, each on its own thread. */
  ASSERT_EQ(kill(getpid(), SIGHUP), 0);
  RUN_UNTIL(atomic_load(&hup.calls) == 1 && atomic_load(&c2_usr1.calls) == 1);
  run_for(0.05);
  ASSERT_EQ(atomic_load(&c2_usr2.calls), 1);
  ASSERT_EQ(atomic_load(&usr1.calls), 1);
  OK(aloop_loop_stop(loop2));
  pthread_join(th, NULL);
  OK(aloop_loop_free(loop2));
  /* The closed loop's handlers are gone; the main loop's still work. */
  ASSERT_EQ(kill(getpid(), SIGHUP), 0);
  RUN_UNTIL(atomic_load(&hup.calls) == 2);
  ASSERT_EQ(atomic_load(&c2_usr1.calls), 1);
  OK(aloop_remove_signal_handler(loop, SIGUSR1));
  OK(aloop_remove_signal_handler(loop, SIGHUP));
  OK(aloop_loop_free(loop));
}

/* Issue 9: SIGURG is the Go runtime's preemption signal. A host that asks
 * for SIGURG must see only the SIGURGs that are really sent: the library
 * runs without asynchronous preemption, so the runtime sends none (before,
 * the handler ran ~30 times a second with nobody sending SIGURG). The load
 * below keeps goroutines busy (executor jobs that spin) and the garbage
 * collector running, which is when the runtime preempted. */
static void *spin_job(void *arg) {
  double t0 = test_now();
  volatile unsigned long x = 0;
  while (test_now() - t0 < 0.3)
    x++;
  return NULL;
}

static void spin_done(aloop_future_t *f, void *ud) {
  (*(int *)ud)++;
  OK(aloop_future_free(f));
}

TEST(sigurg_only_when_sent) {
  struct counter c = {0};
  OK(aloop_loop_new(&loop));
  c.tid = gettid_();
  c.loop = loop;
  OK(aloop_add_signal_handler(loop, SIGURG, on_signal, &c, NULL));
  int done = 0, started = 0;
  double t0 = test_now();
  while (test_now() - t0 < 1.5) {
    if (started - done < 2) {
      aloop_future_t *f = NULL;
      OK(aloop_run_in_executor(loop, spin_job, NULL, NULL, &f));
      OK(aloop_future_add_done_callback(f, spin_done, &done, NULL));
      started++;
    }
    /* garbage for the collector: futures made and dropped */
    for (int i = 0; i < 2000; i++) {
      aloop_future_t *g = NULL;
      OK(aloop_future_new(loop, &g));
      OK(aloop_future_free(g));
    }
    OK(aloop_loop_run_once(loop, 0.001));
  }
  RUN_UNTIL(done == started);
  int spurious = atomic_load(&c.calls);
  printf("# %d SIGURG handler calls without a SIGURG sent\n", spurious);
  ASSERT_EQ(spurious, 0);
  /* a real one still arrives */
  ASSERT_EQ(kill(getpid(), SIGURG), 0);
  RUN_UNTIL(atomic_load(&c.calls) >= 1);
  ASSERT_EQ(c.last_sig, SIGURG);
  OK(aloop_remove_signal_handler(loop, SIGURG));
  OK(aloop_loop_free(loop));
}
