/*
 * bench.c - helpers of the benchmarks and tests that the shipping addon
 * leaves out: built only with ALN_BENCH_HELPERS (CMake option
 * ASYNCLOOP_NODE_BENCH_HELPERS: on in the checkout's top-level build, off in
 * the npm package's builds).
 */
#include "addon.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

void call_callback(loop_state *ls, void *ud, napi_value arg); /* loop.c */

typedef struct wake_job {
  aloop_loop_t *loop;
  void *id;
  int delay_us;
  struct timespec t0;
} wake_job;

static void wake_cb(aloop_loop_t *loop, void *ud) {
  (void)loop;
  wake_job *j = ud;
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  loop_state *ls = tls_current;
  if (!ls_can_call(ls)) return;
  double ns = (double)(t1.tv_sec - j->t0.tv_sec) * 1e9 +
              (double)(t1.tv_nsec - j->t0.tv_nsec);
  napi_handle_scope hs;
  if (napi_open_handle_scope(ls->env, &hs) != napi_ok) return;
  call_callback(ls, j->id, js_double(ls->env, ns));
  napi_close_handle_scope(ls->env, hs);
}

static void *wake_thread(void *arg) {
  wake_job *j = arg;
  if (j->delay_us > 0) usleep((useconds_t)j->delay_us);
  clock_gettime(CLOCK_MONOTONIC, &j->t0);
  A.aloop_call_soon_threadsafe(j->loop, wake_cb, j, free, NULL);
  return NULL;
}

/* wakeupFromThread(loop, id, delayUs): a new native thread sleeps delayUs,
 * then calls aloop_call_soon_threadsafe; the callback gets the latency in
 * ns (from the post to the callback on the JS thread) as its argument. */
static napi_value x_wakeup_from_thread(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  void *id;
  int delay;
  get_args(env, info, 3, argv);
  GET_LOOP(argv[0]);
  if (!arg_id(env, argv[1], &id) || !arg_int(env, argv[2], &delay, "delay")) return NULL;
  wake_job *j = aln_alloc(env, sizeof *j);
  if (j == NULL) return NULL;
  j->loop = ls->loop;
  j->id = id;
  j->delay_us = delay;
  pthread_t th;
  if (pthread_create(&th, NULL, wake_thread, j) != 0) {
    free(j);
    return throw_code(env, ALOOP_EAGAIN, "pthread_create failed");
  }
  pthread_detach(th);
  return undefined(env);
}

const napi_property_descriptor aln_bench_exports[] = {
    EXPORT("wakeupFromThread", x_wakeup_from_thread),
};
const size_t aln_bench_nexports = COUNT_OF(aln_bench_exports);
