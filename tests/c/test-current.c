/*
 * test-current.c - the current loop of a thread: aloop_get_running_loop,
 * aloop_get_event_loop, aloop_set_event_loop (asyncio's policy functions).
 */
#include "test.h"

#include <pthread.h>

static aloop_loop_t *loop, *loop2;

TEST(none) {
  aloop_loop_t *l = (aloop_loop_t *)1;
  ASSERT_EQ(aloop_get_running_loop(&l), ALOOP_ENOLOOP);
  ASSERT_PTR_EQ(l, NULL);
  ASSERT_EQ(aloop_get_event_loop(&l), ALOOP_ENOLOOP);
  ASSERT_EQ(aloop_get_running_loop(NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_get_event_loop(NULL), ALOOP_EINVAL);
  OK(aloop_set_event_loop(NULL));
  char msg[256];
  ASSERT_EQ(aloop_get_event_loop(&l), ALOOP_ENOLOOP);
  ASSERT_CMP(aloop_last_error(msg, sizeof msg), >, 0);
  ASSERT(strstr(msg, "no current event loop") != NULL);
}

TEST(set_and_get) {
  OK(aloop_loop_new(&loop));
  aloop_loop_t *l = NULL;
  OK(aloop_set_event_loop(loop));
  OK(aloop_get_event_loop(&l));
  ASSERT_PTR_EQ(l, loop);
  /* set is not running */
  ASSERT_EQ(aloop_get_running_loop(&l), ALOOP_ENOLOOP);
  OK(aloop_set_event_loop(NULL));
  ASSERT_EQ(aloop_get_event_loop(&l), ALOOP_ENOLOOP);
  /* a closed loop may still be the current one (as asyncio) */
  OK(aloop_set_event_loop(loop));
  OK(aloop_loop_close(loop));
  OK(aloop_get_event_loop(&l));
  ASSERT_PTR_EQ(l, loop);
  /* a released one is unset; its stale handle is refused */
  OK(aloop_loop_free(loop));
  ASSERT_EQ(aloop_get_event_loop(&l), ALOOP_ENOLOOP);
  ASSERT_EQ(aloop_set_event_loop(loop), ALOOP_EBADF);
  ASSERT_EQ(aloop_set_event_loop((aloop_loop_t *)(uintptr_t)0x1234), ALOOP_EBADF);
}

static aloop_loop_t *seen_running, *seen_current, *seen_inner, *seen_after;
static int inner_rc;

static void inner_cb(aloop_loop_t *l, void *ud) {
  ASSERT_PTR_EQ(l, loop2);
  OK(aloop_get_running_loop(&seen_inner));
}

static void outer_cb(aloop_loop_t *l, void *ud) {
  OK(aloop_get_running_loop(&seen_running));
  OK(aloop_get_event_loop(&seen_current));
  /* a nested run of another loop on this thread */
  OK(aloop_call_soon(loop2, inner_cb, NULL, NULL, NULL));
  inner_rc = aloop_loop_run(loop2, ALOOP_RUN_NOWAIT);
  OK(aloop_get_running_loop(&seen_after));
}

TEST(running) {
  OK(aloop_loop_new(&loop));
  OK(aloop_loop_new(&loop2));
  OK(aloop_set_event_loop(loop2)); /* the running loop wins over it */
  OK(aloop_call_soon(loop, outer_cb, NULL, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_ONCE));
  ASSERT_PTR_EQ(seen_running, loop);
  ASSERT_PTR_EQ(seen_current, loop);
  ASSERT_EQ(inner_rc, 0);
  ASSERT_PTR_EQ(seen_inner, loop2);
  ASSERT_PTR_EQ(seen_after, loop);
  aloop_loop_t *l = NULL;
  ASSERT_EQ(aloop_get_running_loop(&l), ALOOP_ENOLOOP);
  OK(aloop_get_event_loop(&l));
  ASSERT_PTR_EQ(l, loop2);
  OK(aloop_loop_free(loop));
  OK(aloop_loop_free(loop2));
}

/* Threads have their own current loop. */
static int thread_rc_get, thread_rc_running;
static aloop_loop_t *thread_seen;

static void *thread_main(void *arg) {
  aloop_loop_t *l = NULL;
  thread_rc_get = aloop_get_event_loop(&l);
  OK(aloop_set_event_loop(loop2));
  OK(aloop_get_event_loop(&thread_seen));
  thread_rc_running = aloop_get_running_loop(&l);
  return NULL;
}

static void *thread_running(void *arg) {
  /* another thread while `loop` runs in the main thread */
  aloop_loop_t *l = NULL;
  thread_rc_running = aloop_get_running_loop(&l);
  return NULL;
}

static void spawn_in_callback(aloop_loop_t *l, void *ud) {
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, thread_running, NULL), 0);
  ASSERT_EQ(pthread_join(th, NULL), 0);
}

TEST(per_thread) {
  OK(aloop_loop_new(&loop));
  OK(aloop_loop_new(&loop2));
  OK(aloop_set_event_loop(loop));
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, thread_main, NULL), 0);
  ASSERT_EQ(pthread_join(th, NULL), 0);
  ASSERT_EQ(thread_rc_get, ALOOP_ENOLOOP);
  ASSERT_PTR_EQ(thread_seen, loop2);
  ASSERT_EQ(thread_rc_running, ALOOP_ENOLOOP);
  aloop_loop_t *l = NULL;
  OK(aloop_get_event_loop(&l));
  ASSERT_PTR_EQ(l, loop); /* ours is unchanged */
  OK(aloop_call_soon(loop, spawn_in_callback, NULL, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_ONCE));
  ASSERT_EQ(thread_rc_running, ALOOP_ENOLOOP);
  /* freeing loop2 unsets it in the other thread too */
  OK(aloop_loop_free(loop2));
  OK(aloop_loop_free(loop));
}

/* ---- per-thread state dies with its thread (issue 9, item 4) ----------------
 * A thread's last error and its set event loop were kept in maps keyed by the
 * thread id: never pruned, and inherited by a later thread that got the same
 * id. The kernel reuses ids only after wrapping around pid_max, so the test
 * asks for the id back through /proc/sys/kernel/ns_last_pid (root in the
 * initial pid namespace; skipped otherwise). */
#include <sys/syscall.h>

struct tstate {
  pid_t tid;
  int last_error_len;
  int get_rc;
};

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static void *first_thread(void *arg) {
  struct tstate *s = arg;
  s->tid = gettid_();
  OK(aloop_set_event_loop(loop));
  /* a failure, so that this thread has a last error */
  ASSERT_EQ(aloop_loop_run((aloop_loop_t *)(uintptr_t)0x1234, ALOOP_RUN_NOWAIT), ALOOP_EBADF);
  char msg[64];
  ASSERT_CMP(aloop_last_error(msg, sizeof msg), >, 0);
  return NULL;
}

static void *second_thread(void *arg) {
  struct tstate *s = arg;
  s->tid = gettid_();
  char msg[256];
  s->last_error_len = aloop_last_error(msg, sizeof msg);
  aloop_loop_t *l = NULL;
  s->get_rc = aloop_get_event_loop(&l);
  return NULL;
}

static int set_last_pid(pid_t pid) {
  FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "w");
  if (!f)
    return -1;
  int ok = fprintf(f, "%d", (int)pid) > 0;
  return fclose(f) == 0 && ok ? 0 : -1;
}

TEST(thread_state_is_not_inherited_through_a_reused_thread_id) {
  OK(aloop_loop_new(&loop));
  int matched = 0;
  for (int attempt = 0; attempt < 50 && !matched; attempt++) {
    struct tstate a = {0}, b = {0};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, first_thread, &a), 0);
    pthread_join(th, NULL);
    if (set_last_pid(a.tid - 1) != 0) {
      printf("# cannot write /proc/sys/kernel/ns_last_pid: skipped\n");
      OK(aloop_loop_free(loop));
      exit(77);
    }
    ASSERT_EQ(pthread_create(&th, NULL, second_thread, &b), 0);
    pthread_join(th, NULL);
    if (b.tid != a.tid)
      continue; /* another process took the id first */
    matched = 1;
    ASSERT_EQ(b.last_error_len, 0);
    ASSERT_EQ(b.get_rc, ALOOP_ENOLOOP);
  }
  if (!matched) {
    printf("# the thread id was never reused: skipped\n");
    OK(aloop_loop_free(loop));
    exit(77);
  }
  OK(aloop_loop_free(loop));
}
