/*
 * echo_server - a TCP echo server written in C against asyncloop.h.
 *
 *   echo_server [HOST] [PORT]        (defaults: 127.0.0.1 0 = any free port)
 *
 * Prints "PORT <n>" on stdout once it listens, then echoes every byte back
 * until SIGINT/SIGTERM or until its standard input reaches end of file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asyncloop.h"

static aloop_loop_t *loop;
static int signal_pipe[2] = {-1, -1};
static int connections;

static int check(int rc, const char *what) {
  if (rc < 0) {
    char msg[512] = "";
    aloop_last_error(msg, sizeof msg);
    fprintf(stderr, "echo_server: %s: %s (%s)%s%s\n", what, aloop_strerror(rc),
            aloop_err_name(rc), msg[0] ? ": " : "", msg);
    exit(1);
  }
  return rc;
}

/* ---- the echo protocol ------------------------------------------------- */

static void on_data(aloop_transport_t *t, const char *data, size_t len,
                    void *ud) {
  int rc = aloop_transport_write(t, data, len);
  if (rc < 0)
    aloop_transport_abort(t);
}

/* The peer stops reading: stop reading from it until our buffer drains. */
static void on_pause_writing(aloop_transport_t *t, void *ud) {
  aloop_transport_pause_reading(t);
}

static void on_resume_writing(aloop_transport_t *t, void *ud) {
  aloop_transport_resume_reading(t);
}

static int on_eof(aloop_transport_t *t, void *ud) {
  return 0; /* close our side too (after what is buffered is sent) */
}

static void on_lost(aloop_transport_t *t, int error, void *ud) {
  connections--;
  if (error != 0)
    fprintf(stderr, "echo_server: connection lost: %s\n", aloop_strerror(error));
}

static int on_connection(aloop_server_t *server, aloop_transport_t *t,
                         void *ud) {
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.data_received = on_data;
  p.eof_received = on_eof;
  p.connection_lost = on_lost;
  p.pause_writing = on_pause_writing;
  p.resume_writing = on_resume_writing;
  if (aloop_transport_set_protocol(t, &p, NULL, NULL) < 0)
    return -1;
  connections++;
  return 0;
}

/* ---- stopping ---------------------------------------------------------------- */

static void on_signal(int sig) {
  int saved = errno;
  char c = (char)sig;
  (void)!write(signal_pipe[1], &c, 1);
  errno = saved;
}

static void on_signal_pipe(aloop_loop_t *l, int fd, void *ud) {
  char c;
  if (read(fd, &c, 1) == 1) {
    fprintf(stderr, "echo_server: signal %d, stopping\n", (int)c);
    aloop_loop_stop(l);
  }
}

static void on_stdin(aloop_loop_t *l, int fd, void *ud) {
  char buf[512];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    aloop_remove_reader(l, fd);
    aloop_loop_stop(l);
  }
}

static void stop_cb(aloop_loop_t *l, void *ud) { aloop_loop_stop(l); }

int main(int argc, char **argv) {
  const char *host = argc > 1 ? argv[1] : "127.0.0.1";
  int port = argc > 2 ? atoi(argv[2]) : 0;
  if (argc > 3 || (argc > 1 && strcmp(argv[1], "--help") == 0)) {
    fprintf(stderr, "usage: echo_server [HOST] [PORT]\n");
    return 2;
  }

  /* Is there a stdin to watch? (Checked before the loop opens any fd.) */
  int have_stdin = fcntl(0, F_GETFD) != -1;

  check(aloop_loop_new(&loop), "aloop_loop_new");

  /* Signals go through a pipe the loop watches (SA_ONSTACK: the Go runtime
   * in the library wants handlers that run on the alternate stack). */
  if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    perror("pipe2");
    return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  check(aloop_add_reader(loop, signal_pipe[0], on_signal_pipe, NULL, NULL),
        "aloop_add_reader(signal pipe)");

  /* End of file on stdin stops the server (when stdin can be watched: a
   * pipe, a terminal or a socket; not a regular file or /dev/null). */
  int watching_stdin =
      have_stdin && aloop_add_reader(loop, 0, on_stdin, NULL, NULL) == 0;

  aloop_future_t *f = NULL;
  aloop_server_t *server = NULL;
  check(aloop_create_server(loop, host, port, on_connection, NULL, NULL, NULL,
                            &f),
        "aloop_create_server");
  check(aloop_loop_run_until_complete(loop, f), "run_until_complete");
  check(aloop_future_result_server(f, &server), "create_server");
  aloop_future_free(f);

  char bound[64];
  int bound_port = 0;
  check(aloop_server_sockname(server, 0, bound, sizeof bound, &bound_port),
        "aloop_server_sockname");
  printf("PORT %d\n", bound_port);
  fflush(stdout);
  fprintf(stderr, "echo_server: listening on %s port %d%s\n", bound,
          bound_port,
          watching_stdin ? " (until EOF on stdin or SIGTERM)" : " (until SIGTERM)");

  check(aloop_loop_run(loop, ALOOP_RUN_DEFAULT), "aloop_loop_run");

  /* Stop listening, end the connections, and wait until they are gone. */
  aloop_future_t *closed = NULL;
  check(aloop_server_close(server), "aloop_server_close");
  check(aloop_server_wait_closed(server, &closed), "aloop_server_wait_closed");
  aloop_call_later(loop, 5.0, stop_cb, NULL, NULL, NULL);
  if (connections > 0)
    fprintf(stderr, "echo_server: waiting for %d connection(s)\n", connections);
  int rc = aloop_loop_run_until_complete(loop, closed);
  aloop_future_free(closed);
  aloop_server_free(server);
  aloop_remove_reader(loop, signal_pipe[0]);
  if (watching_stdin)
    aloop_remove_reader(loop, 0);
  aloop_loop_free(loop);
  return rc == 0 ? 0 : 1;
}
