/*
 * aloop_echo_server - the asyncloop TCP echo server of the C benchmark
 * suite (the peer of uv_echo_server.c), written against include/asyncloop.h.
 *
 *   aloop_echo_server
 *
 * Listens on 127.0.0.1 on a free port, prints "PORT <n>" when ready, echoes
 * every byte back (data_received -> aloop_transport_write; reading pauses
 * while the write buffer is above its high-water mark), and exits when its
 * standard input reaches end of file. Built by bench/run.py:
 *   gcc -O2 -I include aloop_echo_server.c -L DIR -lasyncloop -Wl,-rpath,DIR
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "asyncloop.h"

static void check(int rc, const char *what) {
  if (rc < 0) {
    char msg[512] = "";
    aloop_last_error(msg, sizeof msg);
    fprintf(stderr, "aloop_echo_server: %s: %s (%s) %s\n", what,
            aloop_strerror(rc), aloop_err_name(rc), msg);
    exit(1);
  }
}

static void on_data(aloop_transport_t *t, const char *data, size_t len, void *ud) {
  (void)ud;
  if (aloop_transport_write(t, data, len) < 0)
    aloop_transport_abort(t);
}

static void on_pause_writing(aloop_transport_t *t, void *ud) {
  (void)ud;
  aloop_transport_pause_reading(t);
}

static void on_resume_writing(aloop_transport_t *t, void *ud) {
  (void)ud;
  aloop_transport_resume_reading(t);
}

static int on_connection(aloop_server_t *server, aloop_transport_t *t, void *ud) {
  (void)server;
  (void)ud;
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.data_received = on_data;
  p.pause_writing = on_pause_writing;
  p.resume_writing = on_resume_writing;
  return aloop_transport_set_protocol(t, &p, NULL, NULL) < 0 ? -1 : 0;
}

static void on_stdin(aloop_loop_t *loop, int fd, void *ud) {
  (void)ud;
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    aloop_remove_reader(loop, fd);
    aloop_loop_stop(loop);
  }
}

int main(void) {
  /* idle_10k_rss opens 10,000 connections: as many fds as allowed. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  aloop_loop_t *loop = NULL;
  check(aloop_loop_new(&loop), "aloop_loop_new");
  aloop_server_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.size = sizeof opts;
  opts.backlog = 1024;
  opts.reuse_address = -1;
  opts.start_serving = -1;
  aloop_future_t *f = NULL;
  aloop_server_t *server = NULL;
  check(aloop_create_server(loop, "127.0.0.1", 0, on_connection, NULL, NULL, &opts, &f),
        "aloop_create_server");
  check(aloop_loop_run_until_complete(loop, f), "run_until_complete");
  check(aloop_future_result_server(f, &server), "create_server");
  aloop_future_free(f);
  char host[64];
  int port = 0;
  check(aloop_server_sockname(server, 0, host, sizeof host, &port), "aloop_server_sockname");
  check(aloop_add_reader(loop, 0, on_stdin, NULL, NULL), "aloop_add_reader(stdin)");
  printf("PORT %d\n", port);
  fflush(stdout);
  check(aloop_loop_run(loop, ALOOP_RUN_DEFAULT), "aloop_loop_run");
  /* Exit without tearing down the connections: the process ends here. */
  aloop_server_close(server);
  return 0;
}
