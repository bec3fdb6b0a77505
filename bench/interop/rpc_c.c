/*
 * rpc_c - the interop workloads driven from C (bench/run.py, suite interop):
 * libaloop_rpc's server and client on one loop in this process.
 *
 *   rpc_c MODE SECONDS WARMUP INFLIGHT SIZE
 *     MODE call: INFLIGHT rpc_call futures at a time, each reply checked in a
 *                done-callback that issues the next call (what a host does);
 *     MODE lib:  rpc_client_bench batches (the library drives the calls).
 * Prints {"value": requests per second, "requests": n}.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aloop_rpc.h"

static aloop_loop_t *loop;
static rpc_client_t *client;
static unsigned char *payload;
static size_t size;
static double end_time;
static long done_count, outstanding;
static int failed;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc) {
  printf("{\"error\": \"%s: %s\"}\n", what, aloop_strerror(rc));
  exit(1);
}

static void *await_ptr(aloop_future_t *f, const char *what) {
  int rc = aloop_loop_run_until_complete(loop, f);
  void *v = NULL;
  if (rc == 0)
    rc = aloop_future_result(f, &v);
  if (rc < 0)
    die(what, rc);
  aloop_future_free(f);
  return v;
}

static void issue(void);

static void on_reply(aloop_future_t *f, void *ud) {
  (void)ud;
  rpc_reply_t *r = NULL;
  outstanding--;
  if (aloop_future_result(f, (void **)&r) < 0) {
    failed = 1;
  } else {
    size_t n = 0;
    const char *d = rpc_reply_data(r, &n);
    if (n != size || memcmp(d, payload, size) != 0)
      failed = 1;
    rpc_reply_free(r);
    done_count++;
  }
  if (!failed && now() < end_time)
    issue();
  else if (outstanding == 0)
    aloop_loop_stop(loop);
}

static void issue(void) {
  aloop_future_t *f = NULL;
  int rc = rpc_call(client, RPC_ECHO, payload, size, &f);
  if (rc < 0)
    die("rpc_call", rc);
  rc = aloop_future_add_done_callback(f, on_reply, NULL, NULL);
  aloop_future_free(f);
  if (rc < 0)
    die("add_done_callback", rc);
  outstanding++;
}

static long run_calls(double seconds, int inflight) {
  done_count = 0;
  end_time = now() + seconds;
  for (int i = 0; i < inflight; i++)
    issue();
  aloop_loop_run(loop, ALOOP_RUN_DEFAULT);
  if (failed) {
    printf("{\"error\": \"a reply did not match\"}\n");
    exit(1);
  }
  return done_count;
}

static long run_lib(double seconds, int inflight) {
  long n = 0;
  double end = now() + seconds;
  while (now() < end) {
    aloop_future_t *f = NULL;
    int rc = rpc_client_bench(client, 1000, inflight, size, &f);
    if (rc < 0)
      die("rpc_client_bench", rc);
    await_ptr(f, "rpc_client_bench");
    n += 1000;
  }
  return n;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: rpc_c call|lib SECONDS WARMUP INFLIGHT SIZE\n");
    return 2;
  }
  int lib = strcmp(argv[1], "lib") == 0;
  double secs = atof(argv[2]), warm = atof(argv[3]);
  int inflight = atoi(argv[4]);
  size = (size_t)atol(argv[5]);
  payload = malloc(size ? size : 1);
  for (size_t i = 0; i < size; i++)
    payload[i] = (unsigned char)(i * 131 + 7);
  int rc = aloop_loop_new(&loop);
  if (rc < 0)
    die("aloop_loop_new", rc);
  aloop_future_t *f = NULL;
  if ((rc = rpc_server_start(loop, "127.0.0.1", 0, &f)) < 0)
    die("rpc_server_start", rc);
  rpc_server_t *srv = await_ptr(f, "rpc_server_start");
  if ((rc = rpc_connect(loop, "127.0.0.1", rpc_server_port(srv), &f)) < 0)
    die("rpc_connect", rc);
  client = await_ptr(f, "rpc_connect");
  if (lib)
    run_lib(warm, inflight);
  else
    run_calls(warm, inflight);
  double t0 = now();
  long n = lib ? run_lib(secs, inflight) : run_calls(secs, inflight);
  double el = now() - t0;
  printf("{\"value\": %.1f, \"requests\": %ld}\n", n / el, n);
  rpc_client_close(client);
  rpc_server_close(srv);
  for (int i = 0; i < 20; i++)
    aloop_loop_run_once(loop, 0.001);
  return 0;
}
