/*
 * test-executor.c - run_in_executor: results, the worker threads (not the
 * loop's), the bounded pool (default min(32, cpus + 4)), the settable size,
 * cancellation of queued jobs (they never run), shutdown_default_executor,
 * free_cb exactly once on the loop thread.
 */
#include "test.h"
#define RUN_UNTIL_STEP 0.02
#include "helpers.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>

static pid_t loop_tid;

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

/* The loop, made on this thread (free_cb must run there). */
static void loop_here(void) {
  loop_up();
  loop_tid = gettid_();
}

/* A job: blocks until its gate opens (if gated), records where it ran. */
struct job {
  atomic_int ran;
  atomic_int tid;
  int gated;
  int frees;
  uintptr_t value;
};

static atomic_int running, max_running;
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open;

static void open_gate(void) {
  pthread_mutex_lock(&gate_mu);
  gate_open = 1;
  pthread_cond_broadcast(&gate_cv);
  pthread_mutex_unlock(&gate_mu);
}

static void *job_fn(void *arg) {
  struct job *j = arg;
  atomic_store(&j->tid, gettid_());
  int n = atomic_fetch_add(&running, 1) + 1;
  int m = atomic_load(&max_running);
  while (n > m && !atomic_compare_exchange_weak(&max_running, &m, n)) {
  }
  if (j->gated) {
    pthread_mutex_lock(&gate_mu);
    while (!gate_open)
      pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
  }
  atomic_fetch_add(&j->ran, 1);
  atomic_fetch_sub(&running, 1);
  return (void *)(j->value + 1);
}

static void job_free(void *arg) {
  struct job *j = arg;
  if (gettid_() != loop_tid)
    FAIL("free_cb ran off the loop thread");
  j->frees++;
}

static aloop_future_t *submit(struct job *j) {
  aloop_future_t *f = NULL;
  OK(aloop_run_in_executor(loop, job_fn, j, job_free, &f));
  return f;
}

static int cpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    return CPU_COUNT(&set);
  return (int)sysconf(_SC_NPROCESSORS_ONLN);
}

TEST(result_and_worker_thread) {
  loop_here();
  struct job j = {0};
  j.value = 41;
  aloop_future_t *f = submit(&j);
  ASSERT_EQ(aloop_loop_alive(loop), 1); /* a pending job keeps it alive */
  ASSERT_EQ(aloop_loop_close(loop), ALOOP_EBUSY);
  OK(aloop_loop_run_until_complete(loop, f));
  void *r = NULL;
  OK(aloop_future_result(f, &r));
  ASSERT_EQ((uintptr_t)r, 42);
  ASSERT_EQ(atomic_load(&j.ran), 1);
  ASSERT_NE(atomic_load(&j.tid), 0);
  ASSERT_NE(atomic_load(&j.tid), loop_tid); /* not on the loop thread */
  ASSERT_EQ(j.frees, 1);
  ASSERT_EQ(aloop_loop_alive(loop), 0);
  OK(aloop_future_free(f));
  OK(aloop_loop_free(loop));
}

TEST(default_pool_is_bounded) {
  int want = cpus() + 4 < 32 ? cpus() + 4 : 32;
  int n = want + 4;
  struct job *jobs = calloc((size_t)n, sizeof *jobs);
  aloop_future_t **f = calloc((size_t)n, sizeof *f);
  loop_here();
  for (int i = 0; i < n; i++) {
    jobs[i].gated = 1;
    f[i] = submit(&jobs[i]);
  }
  RUN_UNTIL(atomic_load(&running) == want);
  run_for(0.1);
  ASSERT_EQ(atomic_load(&max_running), want);
  open_gate();
  for (int i = 0; i < n; i++) {
    OK(aloop_loop_run_until_complete(loop, f[i]));
    OK(aloop_future_free(f[i]));
    ASSERT_EQ(jobs[i].frees, 1);
  }
  OK(aloop_loop_free(loop));
  free(jobs);
  free(f);
}

TEST(set_default_executor_size) {
  enum { N = 8 };
  struct job jobs[N];
  aloop_future_t *f[N];
  memset(jobs, 0, sizeof jobs);
  loop_here();
  ASSERT_EQ(aloop_loop_set_default_executor_size(loop, 0), ALOOP_EINVAL);
  ASSERT_EQ(aloop_loop_set_default_executor_size(loop, -3), ALOOP_EINVAL);
  ASSERT_EQ(aloop_loop_set_default_executor_size(NULL, 2), ALOOP_EBADF);
  OK(aloop_loop_set_default_executor_size(loop, 2));
  for (int i = 0; i < N; i++) {
    jobs[i].gated = 1;
    f[i] = submit(&jobs[i]);
  }
  RUN_UNTIL(atomic_load(&running) == 2);
  run_for(0.1);
  ASSERT_EQ(atomic_load(&max_running), 2);
  /* Growing starts threads for the queued jobs. */
  OK(aloop_loop_set_default_executor_size(loop, 5));
  RUN_UNTIL(atomic_load(&running) == 5);
  run_for(0.05);
  ASSERT_EQ(atomic_load(&max_running), 5);
  open_gate();
  for (int i = 0; i < N; i++) {
    OK(aloop_loop_run_until_complete(loop, f[i]));
    OK(aloop_future_free(f[i]));
  }
  OK(aloop_loop_free(loop));
}

TEST(cancel_queued_job_never_runs) {
  struct job a = {0}, b = {0}, c = {0};
  loop_here();
  OK(aloop_loop_set_default_executor_size(loop, 1));
  a.gated = 1;
  aloop_future_t *fa = submit(&a);
  RUN_UNTIL(atomic_load(&running) == 1); /* a occupies the only thread */
  aloop_future_t *fb = submit(&b);
  ASSERT_EQ(aloop_future_cancel(fb), 1);
  ASSERT_EQ(b.frees, 1); /* dropped at once: free_cb ran in cancel */
  ASSERT_EQ(aloop_future_cancelled(fb), 1);
  open_gate();
  OK(aloop_loop_run_until_complete(loop, fa));
  aloop_future_t *fc = submit(&c); /* the one thread went on past b */
  OK(aloop_loop_run_until_complete(loop, fc));
  ASSERT_EQ(atomic_load(&c.ran), 1);
  ASSERT_EQ(atomic_load(&b.ran), 0); /* b never ran */
  ASSERT_EQ(b.frees, 1);
  void *r;
  ASSERT_EQ(aloop_future_result(fb, &r), ALOOP_ECANCELED);
  ASSERT_EQ(aloop_loop_alive(loop), 0);
  OK(aloop_future_free(fa));
  OK(aloop_future_free(fb));
  OK(aloop_future_free(fc));
  OK(aloop_loop_free(loop));
}

TEST(cancel_running_job) {
  struct job a = {0};
  loop_here();
  a.gated = 1;
  aloop_future_t *fa = submit(&a);
  RUN_UNTIL(atomic_load(&running) == 1);
  ASSERT_EQ(aloop_future_cancel(fa), 1);
  ASSERT_EQ(a.frees, 0); /* still running: arg is still in use */
  ASSERT_EQ(aloop_loop_close(loop), ALOOP_EBUSY);
  open_gate();
  RUN_UNTIL(a.frees == 1);
  ASSERT_EQ(atomic_load(&a.ran), 1);
  ASSERT_EQ(aloop_future_cancelled(fa), 1);
  OK(aloop_future_free(fa));
  OK(aloop_loop_free(loop));
}

TEST(shutdown_default_executor) {
  struct job a = {0}, b = {0}, late = {0};
  loop_here();
  OK(aloop_loop_set_default_executor_size(loop, 1));
  a.gated = 1;
  aloop_future_t *fa = submit(&a);
  aloop_future_t *fb = submit(&b); /* queued: still runs after shutdown */
  RUN_UNTIL(atomic_load(&running) == 1);
  aloop_future_t *sd = NULL;
  OK(aloop_loop_shutdown_default_executor(loop, &sd));
  aloop_future_t *fl = NULL;
  ASSERT_EQ(aloop_run_in_executor(loop, job_fn, &late, job_free, &fl), ALOOP_ECLOSED);
  ASSERT_EQ(late.frees, 1); /* a failed call runs free_cb */
  ASSERT_EQ(aloop_loop_set_default_executor_size(loop, 4), ALOOP_ECLOSED);
  run_for(0.1);
  ASSERT_EQ(aloop_future_done(sd), 0); /* a job still runs */
  open_gate();
  OK(aloop_loop_run_until_complete(loop, sd));
  ASSERT_EQ(aloop_future_done(fa), 1);
  ASSERT_EQ(aloop_future_done(fb), 1);
  ASSERT_EQ(atomic_load(&b.ran), 1);
  void *r = (void *)1;
  OK(aloop_future_result(sd, &r));
  ASSERT_PTR_EQ(r, NULL);
  ASSERT_EQ(atomic_load(&late.ran), 0);
  OK(aloop_future_free(fa));
  OK(aloop_future_free(fb));
  OK(aloop_future_free(sd));
  /* Without a running job the future is done at once. */
  OK(aloop_loop_shutdown_default_executor(loop, &sd));
  OK(aloop_loop_run_until_complete(loop, sd));
  OK(aloop_future_free(sd));
  OK(aloop_loop_free(loop));
}

TEST(invalid_arguments) {
  int frees = 0;
  aloop_future_t *f;
  loop_here();
  ASSERT_EQ(aloop_run_in_executor(NULL, job_fn, &frees, test_count_free, &f), ALOOP_EBADF);
  ASSERT_EQ(aloop_run_in_executor(loop, NULL, &frees, test_count_free, &f), ALOOP_EINVAL);
  ASSERT_EQ(aloop_run_in_executor(loop, job_fn, &frees, test_count_free, NULL), ALOOP_EINVAL);
  ASSERT_EQ(frees, 3);
  ASSERT_EQ(aloop_loop_shutdown_default_executor(loop, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_loop_shutdown_default_executor(NULL, &f), ALOOP_EBADF);
  OK(aloop_loop_close(loop));
  ASSERT_EQ(aloop_run_in_executor(loop, job_fn, &frees, test_count_free, &f), ALOOP_ECLOSED);
  ASSERT_EQ(frees, 4);
  OK(aloop_loop_free(loop));
}

/* Many short jobs: every result arrives, every free_cb runs once. */
static int many_done;
static void on_done(aloop_future_t *f, void *ud) {
  void *r = NULL;
  OK(aloop_future_result(f, &r));
  struct job *j = ud;
  if ((uintptr_t)r != j->value + 1)
    FAIL("job %zu returned %zu", (size_t)j->value, (size_t)r);
  many_done++;
}

TEST(many_jobs) {
  enum { N = 2000 };
  struct job *jobs = calloc(N, sizeof *jobs);
  loop_here();
  for (int i = 0; i < N; i++) {
    jobs[i].value = (uintptr_t)i;
    aloop_future_t *f = submit(&jobs[i]);
    OK(aloop_future_add_done_callback(f, on_done, &jobs[i], NULL));
    OK(aloop_future_free(f));
  }
  RUN_UNTIL(many_done == N);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(jobs[i].frees, 1);
    ASSERT_EQ(atomic_load(&jobs[i].ran), 1);
  }
  OK(aloop_loop_close(loop));
  OK(aloop_loop_free(loop));
}
