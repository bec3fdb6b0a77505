/*
 * uv_echo_server - the libuv TCP echo server of the C benchmark suite
 * (the peer of aloop_echo_server.c; built by bench/run.py against Debian's
 * libuv1-dev: gcc -O2 uv_echo_server.c -luv).
 *
 *   uv_echo_server
 *
 * Listens on 127.0.0.1 on a free port, prints "PORT <n>" when ready, echoes
 * every byte back (uv_try_write first, uv_write for what is left, as a good
 * libuv server does), and exits when its standard input reaches end of file.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

static uv_loop_t *loop;
static uv_tcp_t server;
static uv_pipe_t stdin_pipe;
static char rbuf[64 * 1024];

typedef struct {
  uv_write_t req;
  char data[];
} write_req_t;

static void die(const char *what, int rc) {
  fprintf(stderr, "uv_echo_server: %s: %s\n", what, uv_strerror(rc));
  exit(1);
}

static void on_close(uv_handle_t *h) { free(h); }

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_write(uv_write_t *req, int status) {
  if (status < 0 && !uv_is_closing((uv_handle_t *)req->handle))
    uv_close((uv_handle_t *)req->handle, on_close);
  free(req);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  if (nread < 0) {
    if (!uv_is_closing((uv_handle_t *)s))
      uv_close((uv_handle_t *)s, on_close);
    return;
  }
  if (nread == 0)
    return;
  size_t off = 0;
  /* Write directly when nothing is queued, queue only the remainder. */
  if (uv_stream_get_write_queue_size(s) == 0) {
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);
    int n = uv_try_write(s, &b, 1);
    if (n > 0)
      off = (size_t)n;
    else if (n < 0 && n != UV_EAGAIN) {
      uv_close((uv_handle_t *)s, on_close);
      return;
    }
  }
  if (off == (size_t)nread)
    return;
  size_t rest = (size_t)nread - off;
  write_req_t *w = malloc(sizeof *w + rest);
  if (!w) {
    uv_close((uv_handle_t *)s, on_close);
    return;
  }
  memcpy(w->data, buf->base + off, rest);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)rest);
  if (uv_write(&w->req, s, &b, 1, on_write) < 0) {
    free(w);
    uv_close((uv_handle_t *)s, on_close);
  }
}

static void on_connection(uv_stream_t *srv, int status) {
  if (status < 0)
    return;
  uv_tcp_t *c = malloc(sizeof *c);
  if (!c)
    return;
  uv_tcp_init(loop, c);
  if (uv_accept(srv, (uv_stream_t *)c) != 0) {
    uv_close((uv_handle_t *)c, on_close);
    return;
  }
  uv_tcp_nodelay(c, 1);
  uv_read_start((uv_stream_t *)c, alloc_cb, on_read);
}

static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, h == (uv_handle_t *)&server || h == (uv_handle_t *)&stdin_pipe ? NULL : on_close);
}

static void on_stdin(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  if (nread < 0) {
    uv_read_stop(s);
    uv_walk(loop, walk_close, NULL);
  }
}

int main(void) {
  /* A write to a connection the client has closed must be an error, not a
   * SIGPIPE that kills the server (libuv writes with write(2); a libuv
   * server ignores the signal). */
  signal(SIGPIPE, SIG_IGN);
  /* idle_10k_rss opens 10,000 connections: as many fds as allowed. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  loop = uv_default_loop();
  int rc;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  if ((rc = uv_tcp_init(loop, &server)) < 0)
    die("uv_tcp_init", rc);
  if ((rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0)) < 0)
    die("uv_tcp_bind", rc);
  if ((rc = uv_listen((uv_stream_t *)&server, 1024, on_connection)) < 0)
    die("uv_listen", rc);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(&server, (struct sockaddr *)&ss, &len);
  if ((rc = uv_pipe_init(loop, &stdin_pipe, 0)) < 0 ||
      (rc = uv_pipe_open(&stdin_pipe, 0)) < 0 ||
      (rc = uv_read_start((uv_stream_t *)&stdin_pipe, alloc_cb, on_stdin)) < 0)
    die("watching stdin", rc);
  printf("PORT %d\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return 0;
}
