/* seam_c.c - the cost of the C <-> library seam, from a C host.
 *
 *   call_ns     ns per call into the library (aloop_loop_time)
 *   callback_ns ns per callback out of it (N aloop_call_soon callbacks run by
 *               one aloop_loop_run(ALOOP_RUN_NOWAIT); includes scheduling)
 *   wakeup_us   median latency from aloop_call_soon_threadsafe on another
 *               thread to the callback running on a sleeping loop
 *   call_2t_ns  ns per call when two threads call at once, each on its own
 *               loop (unrelated calls must not serialise on a shared lock)
 *
 * Prints one JSON line. Build: see bench/seam.sh. */
#include "asyncloop.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void nop(aloop_loop_t *l, void *ud) { (void)l; (void)ud; }

#define WAKES 2000
static double sent_at, lat[WAKES];
static int nlat;
static volatile int ready_for_next;

static void on_wake(aloop_loop_t *l, void *ud) {
  (void)ud;
  lat[nlat++] = (now_ns() - sent_at) / 1e3;
  if (nlat == WAKES)
    aloop_loop_stop(l);
  __atomic_store_n(&ready_for_next, 1, __ATOMIC_RELEASE);
}

static void *waker(void *arg) {
  aloop_loop_t *loop = arg;
  struct timespec pause = {0, 200000}; /* let the loop fall asleep */
  for (int i = 0; i < WAKES; i++) {
    while (!__atomic_load_n(&ready_for_next, __ATOMIC_ACQUIRE))
      ;
    __atomic_store_n(&ready_for_next, 0, __ATOMIC_RELAXED);
    nanosleep(&pause, NULL);
    sent_at = now_ns();
    aloop_call_soon_threadsafe(loop, on_wake, NULL, NULL, NULL);
  }
  return NULL;
}

enum { CALLS = 1000000, CBS = 200000 };

/* One thread of the call_2t_ns measure: CALLS calls on its own loop. */
static void *caller(void *arg) {
  double *ns = arg, x, sink = 0;
  aloop_loop_t *l;
  if (aloop_loop_new(&l) != 0)
    exit(1);
  double t = now_ns();
  for (int i = 0; i < CALLS; i++) {
    aloop_loop_time(l, &x);
    sink += x;
  }
  *ns = (now_ns() - t) / CALLS + (sink < 0);
  aloop_loop_free(l);
  return NULL;
}

int main(void) {
  aloop_loop_t *loop;
  if (aloop_loop_new(&loop) != 0)
    return 1;
  double t;

  double sink = 0, x;
  t = now_ns();
  for (int i = 0; i < CALLS; i++) {
    aloop_loop_time(loop, &x);
    sink += x;
  }
  double call_ns = (now_ns() - t) / CALLS;

  double best_cb = 1e18;
  for (int rep = 0; rep < 3; rep++) {
    t = now_ns();
    for (int i = 0; i < CBS; i++)
      aloop_call_soon(loop, nop, NULL, NULL, NULL);
    aloop_loop_run(loop, ALOOP_RUN_NOWAIT);
    double per = (now_ns() - t) / CBS;
    if (per < best_cb)
      best_cb = per;
  }

  ready_for_next = 1;
  pthread_t th;
  pthread_create(&th, NULL, waker, loop);
  aloop_loop_run(loop, ALOOP_RUN_DEFAULT);
  pthread_join(th, NULL);
  qsort(lat, WAKES, sizeof lat[0], cmp_double);

  double ns2[2];
  pthread_t callers[2];
  for (int i = 0; i < 2; i++)
    pthread_create(&callers[i], NULL, caller, &ns2[i]);
  for (int i = 0; i < 2; i++)
    pthread_join(callers[i], NULL);

  printf("{\"host\":\"c\",\"call_ns\":%.1f,\"callback_ns\":%.1f,\"wakeup_us\":%.1f,"
         "\"call_2t_ns\":%.1f}\n",
         call_ns, best_cb, lat[WAKES / 2], (ns2[0] + ns2[1]) / 2);
  aloop_loop_free(loop);
  return sink < 0; /* keep the loop above from being optimized away */
}
