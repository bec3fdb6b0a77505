/*
 * test-abi.c - the ABI's promises for bad input: every function declared in
 * asyncloop.h is called with a NULL, a stale (released), a garbage and a
 * wrong-type handle and must return ALOOP_EBADF without crashing; a function
 * that takes a callback and fails calls the free_cb once and never the
 * callback; NULL out-parameters and invalid arguments give ALOOP_EINVAL; the
 * error strings match the header's X-macro; the version matches.
 *
 * The test `covers_every_declaration` checks that this file names every
 * function the header declares, so a new function cannot be left out.
 */
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>

#define EBADF_ ALOOP_EBADF

/* ---- callbacks that must never run ------------------------------------- */

static void never_future_cb(aloop_future_t *f, void *ud) {
  FAIL("future callback ran");
}
static void never_fd_cb(aloop_loop_t *l, int fd, void *ud) {
  FAIL("fd callback ran");
}
static void never_wakeup_cb(aloop_loop_t *l, void *ud) {
  FAIL("wakeup callback ran");
}
static void never_exception_cb(aloop_loop_t *l,
                               const aloop_exception_context_t *c, void *ud) {
  FAIL("exception handler ran");
}
static int never_connection_cb(aloop_server_t *s, aloop_transport_t *t,
                               void *ud) {
  FAIL("connection callback ran");
}
static void never_made(aloop_transport_t *t, void *ud) {
  FAIL("connection_made ran");
}

static void never_dgram_made(aloop_datagram_t *d, void *ud) {
  FAIL("datagram connection_made ran");
}
static void never_proc_made(aloop_subprocess_t *p, void *ud) {
  FAIL("subprocess connection_made ran");
}
static void never_signal_cb(aloop_loop_t *l, int signum, void *ud) {
  FAIL("signal handler ran");
}
static void *never_executor_fn(void *arg) {
  FAIL("executor job ran");
}

static aloop_datagram_protocol_t never_dgram_protocol(void) {
  aloop_datagram_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = never_dgram_made;
  return p;
}

static aloop_subprocess_protocol_t never_proc_protocol(void) {
  aloop_subprocess_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = never_proc_made;
  return p;
}

static aloop_protocol_t never_protocol(void) {
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = never_made;
  return p;
}

/* Calls `call`, which takes (.., cb, &frees, test_count_free ..): it must
 * return `expect`, and the free_cb must have run exactly once. */
#define EXPECT_FREED(expect, call)                                             \
  do {                                                                         \
    frees = 0;                                                                 \
    ASSERT_EQ((call), (expect));                                               \
    if (frees != 1)                                                            \
      FAIL("%s: free_cb ran %d times, expected once (the call failed)",       \
           #call, frees);                                                      \
  } while (0)

static int frees;

/* ---- a world of valid objects of every kind ------------------------------ */

struct world {
  aloop_loop_t *loop;
  aloop_future_t *future;       /* pending */
  aloop_future_t *done_future;  /* has a pointer result */
  aloop_handle_t *handle;       /* a call_soon (it runs in world_up) */
  aloop_handle_t *timer;        /* pending call_later */
  aloop_server_t *server;
  aloop_transport_t *client;    /* connected client transport */
  aloop_transport_t *accepted;  /* the server's side */
  int port;
  int pipefd[2];
  int sv[2];                    /* a non-blocking socket pair for sock_* */
  int client_lost;
  /* the objects of the IPC / subprocess API (world_ext_up) */
  aloop_datagram_t *dgram;
  aloop_subprocess_t *proc;
  aloop_tls_config_t *tls;      /* a client TLS configuration */
  int dgram_lost, proc_lost;
};

static struct world W;

static void on_client_lost(aloop_transport_t *t, int err, void *ud) {
  ((struct world *)ud)->client_lost++;
}

static int on_connection(aloop_server_t *s, aloop_transport_t *t, void *ud) {
  struct world *w = ud;
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  w->accepted = t;
  return aloop_transport_set_protocol(t, &p, NULL, NULL);
}

static void nop_cb(aloop_loop_t *l, void *ud) {}

static void world_up(struct world *w) {
  memset(w, 0, sizeof *w);
  OK(aloop_loop_new(&w->loop));
  ASSERT(w->loop != NULL);
  OK(aloop_future_new(w->loop, &w->future));
  OK(aloop_future_new(w->loop, &w->done_future));
  OK(aloop_future_set_result(w->done_future, (void *)0x42));
  OK(aloop_call_soon(w->loop, nop_cb, NULL, NULL, &w->handle));
  OK(aloop_call_later(w->loop, 3600.0, nop_cb, NULL, NULL, &w->timer));
  ASSERT(w->handle != NULL && w->timer != NULL);
  ASSERT_EQ(pipe(w->pipefd), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, w->sv), 0);

  aloop_future_t *f = NULL;
  OK(aloop_create_server(w->loop, "127.0.0.1", 0, on_connection, w, NULL,
                         NULL, &f));
  OK(aloop_loop_run_until_complete(w->loop, f));
  OK(aloop_future_result_server(f, &w->server));
  OK(aloop_future_free(f));
  char host[64];
  OK(aloop_server_sockname(w->server, 0, host, sizeof host, &w->port));
  ASSERT_CMP(w->port, >, 0);

  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_lost = on_client_lost;
  OK(aloop_create_connection(w->loop, "127.0.0.1", w->port, &p, w, NULL, NULL,
                             &f));
  OK(aloop_loop_run_until_complete(w->loop, f));
  OK(aloop_future_result_transport(f, &w->client));
  OK(aloop_future_free(f));
  /* let the server accept */
  for (int i = 0; i < 200 && w->accepted == NULL; i++)
    OK(aloop_loop_run_once(w->loop, 0.01));
  ASSERT(w->accepted != NULL);
}

static void on_dgram_lost(aloop_datagram_t *d, int err, void *ud) {
  ((struct world *)ud)->dgram_lost++;
}
static void on_proc_lost(aloop_subprocess_t *p, int err, void *ud) {
  ((struct world *)ud)->proc_lost++;
}

/* A datagram endpoint and a subprocess (cat, which exits when its stdin
 * closes, at the latest when this process exits). */
static void world_ext_up(struct world *w) {
  aloop_future_t *f = NULL;
  aloop_datagram_protocol_t dp;
  memset(&dp, 0, sizeof dp);
  dp.size = sizeof dp;
  dp.connection_lost = on_dgram_lost;
  OK(aloop_create_datagram_endpoint(w->loop, "127.0.0.1", 0, NULL, 0, &dp, w,
                                    NULL, NULL, &f));
  OK(aloop_loop_run_until_complete(w->loop, f));
  OK(aloop_future_result_datagram(f, &w->dgram));
  OK(aloop_future_free(f));
  ASSERT(w->dgram != NULL);

  aloop_subprocess_protocol_t sp;
  memset(&sp, 0, sizeof sp);
  sp.size = sizeof sp;
  sp.connection_lost = on_proc_lost;
  const char *const argv[] = {"cat", NULL};
  OK(aloop_subprocess_exec(w->loop, argv, &sp, w, NULL, NULL, &f));
  OK(aloop_loop_run_until_complete(w->loop, f));
  OK(aloop_future_result_subprocess(f, &w->proc));
  OK(aloop_future_free(f));
  ASSERT(w->proc != NULL);
  ASSERT_CMP(aloop_subprocess_get_pid(w->proc), >, 0);

  OK(aloop_tls_config_new(&w->tls, 0));
  ASSERT(w->tls != NULL);
}

/* ---- every function that takes a loop ------------------------------------ */

static void bad_loop(aloop_loop_t *l) {
  double d = 0;
  int ms = 0;
  aloop_handle_t *h = NULL;
  aloop_future_t *f = NULL;
  aloop_exception_cb ecb = NULL;
  void *ud = NULL;
  aloop_exception_context_t ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.size = sizeof ctx;
  ctx.message = "x";
  aloop_protocol_t proto = never_protocol();

  ASSERT_EQ(aloop_loop_close(l), EBADF_);
  ASSERT_EQ(aloop_loop_close_force(l), EBADF_);
  ASSERT_EQ(aloop_loop_free(l), EBADF_);
  ASSERT_EQ(aloop_loop_run(l, ALOOP_RUN_NOWAIT), EBADF_);
  ASSERT_EQ(aloop_loop_run_once(l, 0.0), EBADF_);
  {
    aloop_event_t evs[4];
    aloop_write_op_t wops[4];
    char arena[4096];
    ASSERT_EQ(aloop_loop_set_event_queue(l, evs, 4, arena, sizeof arena), EBADF_);
    ASSERT_EQ(aloop_loop_set_write_queue(l, wops, 4, arena, sizeof arena), EBADF_);
    ASSERT_EQ(aloop_loop_poll(l, 0.0, 0), EBADF_);
    aloop_poll_args_t pa = {sizeof pa, l, 0.0, 0};
    ASSERT_EQ(aloop_loop_poll_args(&pa), EBADF_);
    ASSERT_EQ(aloop_loop_flush(l, 0), EBADF_);
    ASSERT_EQ(aloop_loop_take_stop(l), EBADF_);
  }
  ASSERT_EQ(aloop_loop_run_until_complete(l, W.done_future), EBADF_);
  ASSERT_EQ(aloop_loop_stop(l), EBADF_);
  ASSERT_EQ(aloop_loop_wakeup(l), EBADF_);
  ASSERT_EQ(aloop_loop_is_running(l), EBADF_);
  ASSERT_EQ(aloop_loop_is_closed(l), EBADF_);
  ASSERT_EQ(aloop_loop_alive(l), EBADF_);
  ASSERT_EQ(aloop_loop_time(l, &d), EBADF_);
  ASSERT_EQ(aloop_loop_set_debug(l, 1), EBADF_);
  ASSERT_EQ(aloop_loop_get_debug(l), EBADF_);
  ASSERT_EQ(aloop_loop_backend_fd(l), EBADF_);
  ASSERT_EQ(aloop_loop_backend_timeout(l, &ms), EBADF_);
  EXPECT_FREED(EBADF_, aloop_loop_set_wakeup_cb(l, never_wakeup_cb, &frees,
                                                test_count_free));
  EXPECT_FREED(EBADF_, aloop_call_soon(l, test_never_cb, &frees,
                                       test_count_free, &h));
  EXPECT_FREED(EBADF_, aloop_call_soon_threadsafe(l, test_never_cb, &frees,
                                                  test_count_free, &h));
  EXPECT_FREED(EBADF_, aloop_call_later(l, 0.0, test_never_cb, &frees,
                                        test_count_free, &h));
  EXPECT_FREED(EBADF_, aloop_call_at(l, 0.0, test_never_cb, &frees,
                                     test_count_free, &h));
  ASSERT_EQ(aloop_future_new(l, &f), EBADF_);
  EXPECT_FREED(EBADF_, aloop_loop_set_exception_handler(
                           l, never_exception_cb, &frees, test_count_free));
  ASSERT_EQ(aloop_loop_get_exception_handler(l, &ecb, &ud), EBADF_);
  ASSERT_EQ(aloop_loop_call_exception_handler(l, "x", ALOOP_EIO), EBADF_);
  ASSERT_EQ(aloop_loop_default_exception_handler(l, &ctx), EBADF_);
  EXPECT_FREED(EBADF_, aloop_add_reader(l, W.pipefd[0], never_fd_cb, &frees,
                                        test_count_free));
  EXPECT_FREED(EBADF_, aloop_add_writer(l, W.pipefd[1], never_fd_cb, &frees,
                                        test_count_free));
  ASSERT_EQ(aloop_add_reader_queued(l, W.pipefd[0], NULL), EBADF_);
  ASSERT_EQ(aloop_add_writer_queued(l, W.pipefd[1], NULL), EBADF_);
  ASSERT_EQ(aloop_remove_reader(l, W.pipefd[0]), EBADF_);
  ASSERT_EQ(aloop_remove_writer(l, W.pipefd[1]), EBADF_);
  EXPECT_FREED(EBADF_, aloop_create_connection(l, "127.0.0.1", W.port, &proto,
                                               &frees, test_count_free, NULL,
                                               &f));
  EXPECT_FREED(EBADF_, aloop_create_server(l, "127.0.0.1", 0,
                                           never_connection_cb, &frees,
                                           test_count_free, NULL, &f));
}

/* ---- every function that takes a scheduled-callback handle --------------- */

static void bad_handle(aloop_handle_t *h) {
  double d = 0;
  ASSERT_EQ(aloop_handle_cancel(h), EBADF_);
  ASSERT_EQ(aloop_handle_when(h, &d), EBADF_);
}

/* ---- every function that takes a future ---------------------------------- */

static void bad_future(aloop_future_t *f) {
  void *r = NULL;
  aloop_transport_t *t = NULL;
  aloop_server_t *s = NULL;
  char buf[64];
  ASSERT_EQ(aloop_future_done(f), EBADF_);
  ASSERT_EQ(aloop_future_cancelled(f), EBADF_);
  ASSERT_EQ(aloop_future_cancel(f), EBADF_);
  ASSERT_EQ(aloop_future_set_result(f, (void *)1), EBADF_);
  ASSERT_EQ(aloop_future_set_exception(f, ALOOP_EIO, "x"), EBADF_);
  ASSERT_EQ(aloop_future_result(f, &r), EBADF_);
  ASSERT_EQ(aloop_future_result_transport(f, &t), EBADF_);
  ASSERT_EQ(aloop_future_result_server(f, &s), EBADF_);
  ASSERT_EQ(aloop_future_exception(f), EBADF_);
  ASSERT_EQ(aloop_future_error_message(f, buf, sizeof buf), EBADF_);
  EXPECT_FREED(EBADF_, aloop_future_add_done_callback(f, never_future_cb,
                                                      &frees, test_count_free));
  ASSERT_EQ(aloop_future_remove_done_callback(f, never_future_cb, &frees),
            EBADF_);
  ASSERT_EQ(aloop_loop_run_until_complete(W.loop, f), EBADF_);
  ASSERT_EQ(aloop_future_ref(f), EBADF_);
  ASSERT_EQ(aloop_future_free(f), EBADF_);
}

/* ---- every function that takes a server ---------------------------------- */

static void bad_server(aloop_server_t *s) {
  aloop_future_t *f = NULL;
  char host[64];
  int port = 0;
  ASSERT_EQ(aloop_server_close(s), EBADF_);
  ASSERT_EQ(aloop_server_start_serving(s), EBADF_);
  ASSERT_EQ(aloop_server_is_serving(s), EBADF_);
  ASSERT_EQ(aloop_server_wait_closed(s, &f), EBADF_);
  ASSERT_EQ(aloop_server_socket_count(s), EBADF_);
  ASSERT_EQ(aloop_server_socket_fd(s, 0), EBADF_);
  ASSERT_EQ(aloop_server_sockname(s, 0, host, sizeof host, &port), EBADF_);
  ASSERT_EQ(aloop_server_free(s), EBADF_);
}

/* ---- every function that takes a transport ------------------------------- */

static void bad_transport(aloop_transport_t *t) {
  void *ud = NULL;
  size_t n = 0, hi = 0, lo = 0;
  char host[64];
  int port = 0;
  aloop_protocol_t proto = never_protocol();
  EXPECT_FREED(EBADF_, aloop_transport_set_protocol(t, &proto, &frees,
                                                    test_count_free));
  ASSERT_EQ(aloop_transport_get_protocol(t, &ud), EBADF_);
  ASSERT_EQ(aloop_transport_write(t, "x", 1), EBADF_);
  ASSERT_EQ(aloop_transport_write_eof(t), EBADF_);
  ASSERT_EQ(aloop_transport_can_write_eof(t), EBADF_);
  ASSERT_EQ(aloop_transport_is_closing(t), EBADF_);
  ASSERT_EQ(aloop_transport_pause_reading(t), EBADF_);
  ASSERT_EQ(aloop_transport_resume_reading(t), EBADF_);
  ASSERT_EQ(aloop_transport_is_reading(t), EBADF_);
  ASSERT_EQ(aloop_transport_get_write_buffer_size(t, &n), EBADF_);
  ASSERT_EQ(aloop_transport_set_write_buffer_limits(t, 0, 0), EBADF_);
  ASSERT_EQ(aloop_transport_get_write_buffer_limits(t, &hi, &lo), EBADF_);
  ASSERT_EQ(aloop_transport_get_fd(t), EBADF_);
  ASSERT_EQ(aloop_transport_get_peername(t, host, sizeof host, &port), EBADF_);
  ASSERT_EQ(aloop_transport_get_sockname(t, host, sizeof host, &port), EBADF_);
  ASSERT_EQ(aloop_transport_close(t), EBADF_);
  ASSERT_EQ(aloop_transport_abort(t), EBADF_);
}

/* ---- the Unix-socket, datagram, pipe, sock_*, DNS, sendfile, subprocess,
 * signal and executor API ------------------------------------------------- */

static void bad_loop_ext(aloop_loop_t *l) {
  aloop_future_t *f = NULL;
  aloop_protocol_t proto = never_protocol();
  aloop_datagram_protocol_t dproto = never_dgram_protocol();
  aloop_subprocess_protocol_t sproto = never_proc_protocol();
  char buf[16];
  const char *const argv[] = {"/bin/false", NULL};

  EXPECT_FREED(EBADF_, aloop_create_unix_connection(
                           l, "@aloop-test-abi-none", &proto, &frees,
                           test_count_free, &f));
  EXPECT_FREED(EBADF_, aloop_create_unix_server(
                           l, "@aloop-test-abi-none", never_connection_cb,
                           &frees, test_count_free, NULL, &f));
  EXPECT_FREED(EBADF_, aloop_connect_accepted_socket(
                           l, W.sv[0], &proto, &frees, test_count_free, &f));
  EXPECT_FREED(EBADF_, aloop_create_datagram_endpoint(
                           l, "127.0.0.1", 0, NULL, 0, &dproto, &frees,
                           test_count_free, NULL, &f));
  EXPECT_FREED(EBADF_, aloop_connect_read_pipe(l, W.pipefd[0], &proto, &frees,
                                               test_count_free, &f));
  EXPECT_FREED(EBADF_, aloop_connect_write_pipe(l, W.pipefd[1], &proto,
                                                &frees, test_count_free, &f));
  ASSERT_EQ(aloop_sock_recv(l, W.sv[0], sizeof buf, &f), EBADF_);
  ASSERT_EQ(aloop_sock_recv_into(l, W.sv[0], buf, sizeof buf, &f), EBADF_);
  ASSERT_EQ(aloop_sock_recvfrom(l, W.sv[0], sizeof buf, &f), EBADF_);
  ASSERT_EQ(aloop_sock_recvfrom_into(l, W.sv[0], buf, sizeof buf, &f), EBADF_);
  ASSERT_EQ(aloop_sock_sendall(l, W.sv[0], "x", 1, &f), EBADF_);
  ASSERT_EQ(aloop_sock_sendto(l, W.sv[0], "x", 1, "127.0.0.1", 9, &f), EBADF_);
  ASSERT_EQ(aloop_sock_connect(l, W.sv[0], "127.0.0.1", W.port, &f), EBADF_);
  ASSERT_EQ(aloop_sock_accept(l, W.sv[0], &f), EBADF_);
  ASSERT_EQ(aloop_sock_sendfile(l, W.sv[0], W.pipefd[0], 0, 0, 1, &f), EBADF_);
  ASSERT_EQ(aloop_getaddrinfo(l, "127.0.0.1", "80", 0, 0, 0, 0, &f), EBADF_);
  ASSERT_EQ(aloop_getnameinfo(l, "127.0.0.1", 80, 0, &f), EBADF_);
  EXPECT_FREED(EBADF_, aloop_subprocess_exec(l, argv, &sproto, &frees,
                                             test_count_free, NULL, &f));
  EXPECT_FREED(EBADF_, aloop_subprocess_shell(l, "false", &sproto, &frees,
                                              test_count_free, NULL, &f));
  EXPECT_FREED(EBADF_, aloop_add_signal_handler(l, SIGUSR1, never_signal_cb,
                                                &frees, test_count_free));
  ASSERT_EQ(aloop_remove_signal_handler(l, SIGUSR1), EBADF_);
  EXPECT_FREED(EBADF_, aloop_run_in_executor(l, never_executor_fn, &frees,
                                             test_count_free, &f));
  ASSERT_EQ(aloop_loop_set_default_executor_size(l, 4), EBADF_);
  ASSERT_EQ(aloop_loop_shutdown_default_executor(l, &f), EBADF_);
  double d = 0;
  ASSERT_EQ(aloop_loop_set_slow_callback_duration(l, 0.5), EBADF_);
  ASSERT_EQ(aloop_loop_get_slow_callback_duration(l, &d), EBADF_);
  if (l != NULL) /* NULL unsets the thread's loop: allowed */
    ASSERT_EQ(aloop_set_event_loop(l), EBADF_);
}

static void bad_future_ext(aloop_future_t *f) {
  size_t n = 0;
  void *data = NULL;
  int fd = -1, port = 0;
  char host[64], service[32];
  aloop_addrinfo_t *ai = NULL;
  aloop_datagram_t *d = NULL;
  aloop_subprocess_t *p = NULL;
  ASSERT_EQ(aloop_future_result_datagram(f, &d), EBADF_);
  ASSERT_EQ(aloop_future_result_size(f, &n), EBADF_);
  ASSERT_EQ(aloop_future_result_bytes(f, &data, &n), EBADF_);
  ASSERT_EQ(aloop_future_result_addr(f, host, sizeof host, &port), EBADF_);
  ASSERT_EQ(aloop_future_result_fd(f, &fd), EBADF_);
  ASSERT_EQ(aloop_future_result_addrinfo(f, &ai, &n), EBADF_);
  ASSERT_EQ(aloop_future_result_nameinfo(f, host, sizeof host, service,
                                         sizeof service),
            EBADF_);
  ASSERT_EQ(aloop_future_result_subprocess(f, &p), EBADF_);
}

static void bad_transport_ext(aloop_transport_t *t) {
  aloop_future_t *f = NULL;
  aloop_iovec_t iov[2] = {{"ab", 2}, {"cd", 2}};
  ASSERT_EQ(aloop_transport_sendfile(t, W.pipefd[0], 0, 0, 1, &f), EBADF_);
  ASSERT_EQ(aloop_transport_writev(t, iov, 2), EBADF_);
  char buf[256];
  size_t n = 0;
  if (W.tls)
    ASSERT_EQ(aloop_transport_start_tls(t, W.tls, "localhost", &f), EBADF_);
  ASSERT_EQ(aloop_transport_get_tls_version(t), EBADF_);
  ASSERT_EQ(aloop_transport_get_tls_cipher(t, buf, sizeof buf), EBADF_);
  ASSERT_EQ(aloop_transport_get_tls_alpn(t, buf, sizeof buf), EBADF_);
  ASSERT_EQ(aloop_transport_get_peer_certificate(t, buf, sizeof buf, &n),
            EBADF_);
}

static void bad_tls_config(aloop_tls_config_t *c) {
  const char *const alpn[] = {"h2", "http/1.1"};
  aloop_future_t *f = NULL;
  ASSERT_EQ(aloop_tls_config_load_cert_file(c, "/nonexistent.pem", NULL),
            EBADF_);
  ASSERT_EQ(aloop_tls_config_load_cert_pem(c, "x", 1, NULL, 0), EBADF_);
  ASSERT_EQ(aloop_tls_config_load_ca_file(c, "/nonexistent.pem"), EBADF_);
  ASSERT_EQ(aloop_tls_config_load_ca_pem(c, "x", 1), EBADF_);
  ASSERT_EQ(aloop_tls_config_load_default_ca(c), EBADF_);
  ASSERT_EQ(aloop_tls_config_set_server_hostname(c, "localhost"), EBADF_);
  ASSERT_EQ(aloop_tls_config_set_alpn(c, alpn, 2), EBADF_);
  ASSERT_EQ(aloop_tls_config_set_min_version(c, ALOOP_TLS_VERSION_1_2),
            EBADF_);
  ASSERT_EQ(aloop_tls_config_set_max_version(c, ALOOP_TLS_VERSION_1_3),
            EBADF_);
  ASSERT_EQ(aloop_tls_config_set_verify(c, ALOOP_TLS_VERIFY_NONE), EBADF_);
  ASSERT_EQ(aloop_tls_config_set_handshake_timeout(c, 1.0), EBADF_);
  /* a valid transport with a bad configuration */
  if (W.client && aloop_transport_is_closing(W.client) == 0)
    ASSERT_EQ(aloop_transport_start_tls(W.client, c, "localhost", &f), EBADF_);
  ASSERT_EQ(aloop_tls_config_free(c), EBADF_);
}

static void bad_datagram(aloop_datagram_t *d) {
  void *ud = NULL;
  size_t n = 0, hi = 0, lo = 0;
  char host[64];
  int port = 0;
  aloop_datagram_protocol_t proto = never_dgram_protocol();
  ASSERT_EQ(aloop_datagram_sendto(d, "x", 1, "127.0.0.1", 9), EBADF_);
  EXPECT_FREED(EBADF_, aloop_datagram_set_protocol(d, &proto, &frees,
                                                   test_count_free));
  ASSERT_EQ(aloop_datagram_get_protocol(d, &ud), EBADF_);
  ASSERT_EQ(aloop_datagram_is_closing(d), EBADF_);
  ASSERT_EQ(aloop_datagram_get_write_buffer_size(d, &n), EBADF_);
  ASSERT_EQ(aloop_datagram_set_write_buffer_limits(d, 0, 0), EBADF_);
  ASSERT_EQ(aloop_datagram_set_write_overhead(d, 8), EBADF_);
  ASSERT_EQ(aloop_datagram_get_write_buffer_limits(d, &hi, &lo), EBADF_);
  ASSERT_EQ(aloop_datagram_get_fd(d), EBADF_);
  ASSERT_EQ(aloop_datagram_get_sockname(d, host, sizeof host, &port), EBADF_);
  ASSERT_EQ(aloop_datagram_get_peername(d, host, sizeof host, &port), EBADF_);
  ASSERT_EQ(aloop_datagram_close(d), EBADF_);
  ASSERT_EQ(aloop_datagram_abort(d), EBADF_);
}

static void bad_subprocess(aloop_subprocess_t *p) {
  int rc = 0;
  aloop_transport_t *t = NULL;
  ASSERT_EQ(aloop_subprocess_get_pid(p), EBADF_);
  ASSERT_EQ(aloop_subprocess_get_returncode(p, &rc), EBADF_);
  ASSERT_EQ(aloop_subprocess_get_pipe_transport(p, 0, &t), EBADF_);
  ASSERT_EQ(aloop_subprocess_send_signal(p, SIGTERM), EBADF_);
  ASSERT_EQ(aloop_subprocess_terminate(p), EBADF_);
  ASSERT_EQ(aloop_subprocess_kill(p), EBADF_);
  ASSERT_EQ(aloop_subprocess_is_closing(p), EBADF_);
  ASSERT_EQ(aloop_subprocess_close(p), EBADF_);
}

/* Everything of the TCP-era API that takes a handle, given `p` as each kind
 * of handle. */
static void bad_everything(void *p) {
  bad_loop((aloop_loop_t *)p);
  bad_handle((aloop_handle_t *)p);
  bad_future((aloop_future_t *)p);
  bad_server((aloop_server_t *)p);
  bad_transport((aloop_transport_t *)p);
}

/* The same for the rest of the API. */
static void bad_everything_ext(void *p) {
  bad_loop_ext((aloop_loop_t *)p);
  bad_future_ext((aloop_future_t *)p);
  bad_transport_ext((aloop_transport_t *)p);
  bad_datagram((aloop_datagram_t *)p);
  bad_subprocess((aloop_subprocess_t *)p);
  bad_tls_config((aloop_tls_config_t *)p);
}

/* The world's objects must still work after all that. */
static void world_still_works(void) {
  void *r = NULL;
  double when = 0;
  ASSERT_EQ(aloop_loop_is_closed(W.loop), 0);
  ASSERT_EQ(aloop_future_done(W.future), 0);
  OK(aloop_future_result(W.done_future, &r));
  ASSERT_PTR_EQ(r, (void *)0x42);
  OK(aloop_handle_when(W.timer, &when));
  ASSERT_EQ(aloop_server_is_serving(W.server), 1);
  ASSERT_EQ(aloop_transport_is_closing(W.client), 0);
  ASSERT_EQ(aloop_transport_is_closing(W.accepted), 0);
}

/* ------------------------------------------------------------------------ */

TEST(null_handles) {
  world_up(&W);
  bad_everything(NULL);
  world_still_works();
}

TEST(garbage_handles) {
  world_up(&W);
  bad_everything((void *)(uintptr_t)1);
  bad_everything((void *)(uintptr_t)0xdeadbeefULL);
  bad_everything((void *)(uintptr_t)0x00ff00ff00ff00ffULL);
  bad_everything((void *)UINTPTR_MAX);
  world_still_works();
}

TEST(null_handles_ext) {
  world_up(&W);
  bad_everything_ext(NULL);
  world_still_works();
}

TEST(garbage_handles_ext) {
  world_up(&W);
  bad_everything_ext((void *)(uintptr_t)1);
  bad_everything_ext((void *)(uintptr_t)0xdeadbeefULL);
  bad_everything_ext((void *)UINTPTR_MAX);
  world_still_works();
}

TEST(wrong_type_handles_ext) {
  world_up(&W);
  world_ext_up(&W);
  void *all[] = {W.loop,  W.future, W.timer, W.server,
                 W.client, W.dgram, W.proc, W.tls};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    void *p = all[i];
    if (p != (void *)W.loop) {
      bad_loop(p);
      bad_loop_ext(p);
    }
    if (p != (void *)W.timer)
      bad_handle(p);
    if (p != (void *)W.future) {
      bad_future(p);
      bad_future_ext(p);
    }
    if (p != (void *)W.server)
      bad_server(p);
    if (p != (void *)W.client) {
      bad_transport(p);
      bad_transport_ext(p);
    }
    if (p != (void *)W.dgram)
      bad_datagram(p);
    if (p != (void *)W.proc)
      bad_subprocess(p);
    if (p != (void *)W.tls)
      bad_tls_config(p);
  }
  world_still_works();
  ASSERT_EQ(aloop_datagram_is_closing(W.dgram), 0);
  ASSERT_EQ(aloop_subprocess_is_closing(W.proc), 0);
}

TEST(stale_handles_ext) {
  world_up(&W);
  world_ext_up(&W);
  /* every function of the rest of the API on released handles of the
   * TCP-era kinds */
  aloop_loop_t *old_loop = NULL;
  OK(aloop_loop_new(&old_loop));
  OK(aloop_loop_free(old_loop));
  bad_loop_ext(old_loop);
  aloop_future_t *f = NULL;
  OK(aloop_future_new(W.loop, &f));
  OK(aloop_future_free(f));
  bad_future_ext(f);
  OK(aloop_transport_abort(W.client));
  for (int i = 0; i < 200 && W.client_lost == 0; i++)
    OK(aloop_loop_run_once(W.loop, 0.01));
  ASSERT_EQ(W.client_lost, 1);
  bad_transport_ext(W.client);
  /* a datagram endpoint after connection_lost */
  OK(aloop_datagram_close(W.dgram));
  for (int i = 0; i < 200 && W.dgram_lost == 0; i++)
    OK(aloop_loop_run_once(W.loop, 0.01));
  ASSERT_EQ(W.dgram_lost, 1);
  bad_datagram(W.dgram);
  /* a released TLS configuration */
  aloop_tls_config_t *c = NULL;
  OK(aloop_tls_config_new(&c, 1));
  OK(aloop_tls_config_free(c));
  bad_tls_config(c);
  /* a subprocess after connection_lost */
  OK(aloop_subprocess_close(W.proc));
  for (int i = 0; i < 1000 && W.proc_lost == 0; i++)
    OK(aloop_loop_run_once(W.loop, 0.01));
  ASSERT_EQ(W.proc_lost, 1);
  bad_subprocess(W.proc);
}

TEST(wrong_type_handles) {
  world_up(&W);
  void *loop = W.loop, *future = W.future, *handle = W.timer,
       *server = W.server, *transport = W.client;
  /* a valid handle of every other kind where a loop is expected, ... */
  bad_loop(future); bad_loop(handle); bad_loop(server); bad_loop(transport);
  bad_handle(loop); bad_handle(future); bad_handle(server); bad_handle(transport);
  bad_future(loop); bad_future(handle); bad_future(server); bad_future(transport);
  bad_server(loop); bad_server(future); bad_server(handle); bad_server(transport);
  bad_transport(loop); bad_transport(future); bad_transport(handle);
  bad_transport(server);
  world_still_works();
}

TEST(stale_handles) {
  world_up(&W);

  /* a released loop */
  aloop_loop_t *old_loop = NULL, *new_loop = NULL;
  OK(aloop_loop_new(&old_loop));
  OK(aloop_loop_free(old_loop));
  bad_loop(old_loop);
  /* a new loop (which may reuse the slot) does not revive the old handle */
  OK(aloop_loop_new(&new_loop));
  bad_loop(old_loop);
  ASSERT_EQ(aloop_loop_is_closed(new_loop), 0);
  OK(aloop_loop_free(new_loop));

  /* a released future */
  aloop_future_t *f = NULL, *f2 = NULL;
  OK(aloop_future_new(W.loop, &f));
  OK(aloop_future_free(f));
  bad_future(f);
  OK(aloop_future_new(W.loop, &f2));
  bad_future(f);
  OK(aloop_future_free(f2));

  /* a cancelled handle, a handle whose callback ran */
  aloop_handle_t *h1 = NULL, *h2 = NULL;
  OK(aloop_call_later(W.loop, 10.0, nop_cb, NULL, NULL, &h1));
  OK(aloop_handle_cancel(h1));
  bad_handle(h1);
  OK(aloop_call_soon(W.loop, nop_cb, NULL, NULL, &h2));
  OK(aloop_loop_run(W.loop, ALOOP_RUN_NOWAIT));
  bad_handle(h2);
  bad_handle(W.handle); /* the world's call_soon ran too */

  /* a released server */
  aloop_server_t *s = NULL;
  OK(aloop_create_server(W.loop, "127.0.0.1", 0, never_connection_cb, NULL,
                         NULL, NULL, &f));
  OK(aloop_loop_run_until_complete(W.loop, f));
  OK(aloop_future_result_server(f, &s));
  OK(aloop_future_free(f));
  OK(aloop_server_free(s));
  bad_server(s);

  /* a transport after connection_lost */
  OK(aloop_transport_abort(W.client));
  for (int i = 0; i < 200 && W.client_lost == 0; i++)
    OK(aloop_loop_run_once(W.loop, 0.01));
  ASSERT_EQ(W.client_lost, 1);
  bad_transport(W.client);
}

/* ---- NULL out-parameters and invalid arguments --------------------------- */

static void set_nothing(aloop_loop_t *l, void *ud) {}

TEST(null_out_parameters) {
  world_up(&W);
  char buf[64];
  int port = 0;
  aloop_protocol_t proto = never_protocol();

  ASSERT_EQ(aloop_loop_new(NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_live_handles(NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_loop_time(W.loop, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_loop_backend_timeout(W.loop, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_future_new(W.loop, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_future_result(W.done_future, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_future_result_transport(W.done_future, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_future_result_server(W.done_future, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_future_error_message(W.done_future, NULL, 16), ALOOP_EINVAL);
  ASSERT_EQ(aloop_handle_when(W.timer, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_loop_get_exception_handler(W.loop, NULL, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_server_wait_closed(W.server, NULL), ALOOP_EINVAL);
  /* address getters: host or out_port may be NULL (to get only the other),
   * not both */
  ASSERT_EQ(aloop_server_sockname(W.server, 0, NULL, 64, NULL), ALOOP_EINVAL);
  port = 0;
  OK(aloop_server_sockname(W.server, 0, NULL, 0, &port));
  ASSERT_EQ(port, W.port);
  OK(aloop_server_sockname(W.server, 0, buf, sizeof buf, NULL));
  ASSERT_STR_EQ(buf, "127.0.0.1");
  ASSERT_EQ(aloop_transport_get_protocol(W.client, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_transport_get_write_buffer_size(W.client, NULL),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_transport_get_write_buffer_limits(W.client, NULL, NULL),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_transport_get_peername(W.client, NULL, 64, NULL),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_transport_get_sockname(W.client, NULL, 64, NULL),
            ALOOP_EINVAL);
  port = 0;
  OK(aloop_transport_get_peername(W.client, NULL, 0, &port));
  ASSERT_EQ(port, W.port);
  OK(aloop_transport_get_sockname(W.client, buf, sizeof buf, NULL));
  ASSERT_STR_EQ(buf, "127.0.0.1");
  ASSERT_EQ(aloop_last_error(NULL, 16), ALOOP_EINVAL);
  ASSERT_EQ(aloop_runtime_stats(NULL), ALOOP_EINVAL);
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_create_connection(W.loop, "127.0.0.1", W.port, &proto,
                                       &frees, test_count_free, NULL, NULL));
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_create_server(W.loop, "127.0.0.1", 0, never_connection_cb,
                                   &frees, test_count_free, NULL, NULL));
  world_still_works();
}

TEST(null_out_parameters_ext) {
  world_up(&W);
  world_ext_up(&W);
  char buf[16];
  aloop_protocol_t proto = never_protocol();
  aloop_datagram_protocol_t dproto = never_dgram_protocol();
  aloop_subprocess_protocol_t sproto = never_proc_protocol();
  const char *const argv[] = {"/bin/false", NULL};
  size_t n = 0;
  aloop_future_t *tmp = NULL;

  EXPECT_FREED(ALOOP_EINVAL, aloop_create_unix_connection(
                                 W.loop, "@aloop-test-abi-none", &proto,
                                 &frees, test_count_free, NULL));
  EXPECT_FREED(ALOOP_EINVAL, aloop_create_unix_server(
                                 W.loop, "@aloop-test-abi-none",
                                 never_connection_cb, &frees, test_count_free,
                                 NULL, NULL));
  EXPECT_FREED(ALOOP_EINVAL, aloop_connect_accepted_socket(
                                 W.loop, W.sv[0], &proto, &frees,
                                 test_count_free, NULL));
  EXPECT_FREED(ALOOP_EINVAL, aloop_create_datagram_endpoint(
                                 W.loop, "127.0.0.1", 0, NULL, 0, &dproto,
                                 &frees, test_count_free, NULL, NULL));
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_connect_read_pipe(W.loop, W.pipefd[0], &proto, &frees,
                                       test_count_free, NULL));
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_connect_write_pipe(W.loop, W.pipefd[1], &proto, &frees,
                                        test_count_free, NULL));
  ASSERT_EQ(aloop_sock_recv(W.loop, W.sv[0], 16, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_recv_into(W.loop, W.sv[0], buf, sizeof buf, NULL),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_recv_into(W.loop, W.sv[0], NULL, 16, &tmp),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_recvfrom(W.loop, W.sv[0], 16, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_recvfrom_into(W.loop, W.sv[0], buf, sizeof buf, NULL),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_sendall(W.loop, W.sv[0], "x", 1, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_sendto(W.loop, W.sv[0], "x", 1, "127.0.0.1", 9, NULL),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_connect(W.loop, W.sv[0], "127.0.0.1", 9, NULL),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_accept(W.loop, W.sv[0], NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_sendfile(W.loop, W.sv[0], W.pipefd[0], 0, 0, 1, NULL),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_getaddrinfo(W.loop, "127.0.0.1", "80", 0, 0, 0, 0, NULL),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_getnameinfo(W.loop, "127.0.0.1", 80, 0, NULL), ALOOP_EINVAL);
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_subprocess_exec(W.loop, argv, &sproto, &frees,
                                     test_count_free, NULL, NULL));
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_subprocess_exec(W.loop, NULL, &sproto, &frees,
                                     test_count_free, NULL, &tmp));
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_subprocess_shell(W.loop, "false", &sproto, &frees,
                                      test_count_free, NULL, NULL));
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_subprocess_shell(W.loop, NULL, &sproto, &frees,
                                      test_count_free, NULL, &tmp));
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_add_signal_handler(W.loop, SIGUSR1, NULL, &frees,
                                        test_count_free));
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_add_signal_handler(W.loop, SIGKILL, never_signal_cb,
                                        &frees, test_count_free));
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_run_in_executor(W.loop, never_executor_fn, &frees,
                                     test_count_free, NULL));
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_run_in_executor(W.loop, NULL, &frees, test_count_free,
                                     &tmp));
  ASSERT_EQ(aloop_loop_set_default_executor_size(W.loop, 0), ALOOP_EINVAL);
  ASSERT_EQ(aloop_loop_shutdown_default_executor(W.loop, NULL), ALOOP_EINVAL);
  /* typed results */
  ASSERT_EQ(aloop_future_result_size(W.done_future, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_future_result_bytes(W.done_future, NULL, &n), ALOOP_EINVAL);
  ASSERT_EQ(aloop_future_result_fd(W.done_future, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_future_result_addrinfo(W.done_future, NULL, &n),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_future_result_datagram(W.done_future, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_future_result_subprocess(W.done_future, NULL), ALOOP_EINVAL);
  /* datagram and subprocess getters */
  ASSERT_EQ(aloop_datagram_get_protocol(W.dgram, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_datagram_get_write_buffer_size(W.dgram, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_datagram_get_write_buffer_limits(W.dgram, NULL, NULL),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_datagram_get_sockname(W.dgram, NULL, 0, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_subprocess_get_returncode(W.proc, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_subprocess_get_pipe_transport(W.proc, 0, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_subprocess_send_signal(W.proc, 0), ALOOP_EINVAL);
  ASSERT_EQ(aloop_subprocess_send_signal(W.proc, 65), ALOOP_EINVAL);
  aloop_transport_t *t = NULL;
  ASSERT_EQ(aloop_subprocess_get_pipe_transport(W.proc, 3, &t), ALOOP_EINVAL);
  /* transports */
  ASSERT_EQ(aloop_transport_writev(W.client, NULL, 2), ALOOP_EINVAL);
  ASSERT_EQ(aloop_transport_sendfile(W.client, W.pipefd[0], 0, 0, 1, NULL),
            ALOOP_EINVAL);
  /* TLS, debug, current loop */
  ASSERT_EQ(aloop_tls_config_new(NULL, 0), ALOOP_EINVAL);
  ASSERT_EQ(aloop_transport_start_tls(W.client, W.tls, "localhost", NULL),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_loop_get_slow_callback_duration(W.loop, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_get_running_loop(NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_get_event_loop(NULL), ALOOP_EINVAL);
  /* library memory: NULL is a no-op */
  ASSERT_EQ(aloop_buffer_free(NULL), 0);
  ASSERT_EQ(aloop_addrinfo_free(NULL), 0);
  ASSERT_EQ(aloop_future_done(W.future), 0); /* nothing touched it */
  ASSERT(tmp == NULL);
  world_still_works();
  ASSERT_EQ(aloop_subprocess_is_closing(W.proc), 0);
  ASSERT_EQ(aloop_datagram_is_closing(W.dgram), 0);
}

TEST(invalid_arguments_ext) {
  world_up(&W);
  world_ext_up(&W);
  const char *const empty[] = {""};
  char buf[64];
  ASSERT_EQ(aloop_loop_set_slow_callback_duration(W.loop, -1.0), ALOOP_EINVAL);
  ASSERT_EQ(aloop_loop_set_slow_callback_duration(W.loop, 0.0 / 0.0),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_tls_config_set_min_version(W.tls, 0x0301), ALOOP_EINVAL);
  ASSERT_EQ(aloop_tls_config_set_max_version(W.tls, 7), ALOOP_EINVAL);
  ASSERT_EQ(aloop_tls_config_set_alpn(W.tls, empty, 1), ALOOP_EINVAL);
  ASSERT_EQ(aloop_tls_config_load_cert_pem(W.tls, "not pem", 7, NULL, 0),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_tls_config_load_cert_file(W.tls, "/nonexistent/cert.pem",
                                            NULL),
            ALOOP_ENOENT);
  /* a transport without TLS */
  ASSERT_EQ(aloop_transport_get_tls_version(W.client), 0);
  ASSERT_EQ(aloop_transport_get_tls_cipher(W.client, buf, sizeof buf),
            ALOOP_EINVAL);
  /* not inside a run: no running loop */
  aloop_loop_t *l = NULL;
  ASSERT_EQ(aloop_get_running_loop(&l), ALOOP_ENOLOOP);
  ASSERT_EQ(aloop_set_event_loop(NULL), 0);
  ASSERT_EQ(aloop_get_event_loop(&l), ALOOP_ENOLOOP);
  world_still_works();
}

TEST(invalid_arguments) {
  world_up(&W);
  aloop_future_t *f = NULL;
  aloop_handle_t *h = NULL;
  aloop_protocol_t proto = never_protocol();
  aloop_protocol_t bad_size = never_protocol();
  bad_size.size = 3;

  /* NULL callbacks where one is required */
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_call_soon(W.loop, NULL, &frees, test_count_free, &h));
  EXPECT_FREED(ALOOP_EINVAL, aloop_call_soon_threadsafe(
                                 W.loop, NULL, &frees, test_count_free, &h));
  EXPECT_FREED(ALOOP_EINVAL, aloop_call_later(W.loop, 1.0, NULL, &frees,
                                              test_count_free, &h));
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_call_at(W.loop, 1.0, NULL, &frees, test_count_free, &h));
  EXPECT_FREED(ALOOP_EINVAL, aloop_add_reader(W.loop, W.pipefd[0], NULL,
                                              &frees, test_count_free));
  EXPECT_FREED(ALOOP_EINVAL, aloop_add_writer(W.loop, W.pipefd[1], NULL,
                                              &frees, test_count_free));
  EXPECT_FREED(ALOOP_EINVAL, aloop_future_add_done_callback(
                                 W.future, NULL, &frees, test_count_free));
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_create_server(W.loop, "127.0.0.1", 0, NULL, &frees,
                                   test_count_free, NULL, &f));
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_create_connection(W.loop, "127.0.0.1", W.port, NULL,
                                       &frees, test_count_free, NULL, &f));
  /* a protocol whose size is wrong */
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_create_connection(W.loop, "127.0.0.1", W.port, &bad_size,
                                       &frees, test_count_free, NULL, &f));
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_transport_set_protocol(W.client, &bad_size, &frees,
                                            test_count_free));
  EXPECT_FREED(ALOOP_EINVAL, aloop_transport_set_protocol(
                                 W.client, NULL, &frees, test_count_free));
  /* ports out of range */
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_create_connection(W.loop, "127.0.0.1", 70000, &proto,
                                       &frees, test_count_free, NULL, &f));
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_create_connection(W.loop, "127.0.0.1", -1, &proto, &frees,
                                       test_count_free, NULL, &f));
  EXPECT_FREED(ALOOP_EINVAL,
               aloop_create_server(W.loop, "127.0.0.1", 65536,
                                   never_connection_cb, &frees,
                                   test_count_free, NULL, &f));
  /* bad modes, codes, strings, sizes and indexes */
  ASSERT_EQ(aloop_loop_run(W.loop, (aloop_run_mode_t)99), ALOOP_EINVAL);
  ASSERT_EQ(aloop_loop_run(W.loop, (aloop_run_mode_t)-1), ALOOP_EINVAL);
  ASSERT_EQ(aloop_future_set_exception(W.future, 0, "x"), ALOOP_EINVAL);
  ASSERT_EQ(aloop_future_set_exception(W.future, 5, "x"), ALOOP_EINVAL);
  ASSERT_EQ(aloop_future_done(W.future), 0);
  ASSERT_EQ(aloop_loop_default_exception_handler(W.loop, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_transport_write(W.client, NULL, 5), ALOOP_EINVAL);
  ASSERT_EQ(aloop_transport_set_write_buffer_limits(W.client, 10, 20),
            ALOOP_EINVAL);
  ASSERT_EQ(aloop_server_socket_fd(W.server, 99), ALOOP_EINVAL);
  ASSERT_EQ(aloop_server_socket_fd(W.server, -1), ALOOP_EINVAL);
  char host[64];
  int port;
  ASSERT_EQ(aloop_server_sockname(W.server, 99, host, sizeof host, &port),
            ALOOP_EINVAL);
  /* the event queue */
  {
    aloop_event_t evs[4];
    aloop_write_op_t wops[2];
    static char arena[8192];
    ASSERT_EQ(aloop_loop_poll(W.loop, 0.0, 0), ALOOP_EINVAL); /* no queue */
    ASSERT_EQ(aloop_loop_poll_args(NULL), ALOOP_EINVAL);
    aloop_poll_args_t pa = {0, W.loop, 0.0, 0};
    ASSERT_EQ(aloop_loop_poll_args(&pa), ALOOP_EINVAL); /* size not set */
    pa.size = sizeof pa;
    ASSERT_EQ(aloop_loop_poll_args(&pa), ALOOP_EINVAL); /* no queue */
    ASSERT_EQ(aloop_loop_set_event_queue(W.loop, evs, 4, arena, 100),
              ALOOP_EINVAL); /* arena < 4096 */
    ASSERT_EQ(aloop_loop_set_event_queue(W.loop, evs, 0, arena, sizeof arena),
              ALOOP_EINVAL);
    ASSERT_EQ(aloop_loop_set_event_queue(W.loop, NULL, 4, arena, sizeof arena),
              ALOOP_EINVAL);
    OK(aloop_loop_set_event_queue(W.loop, evs, 4, arena, sizeof arena));
    ASSERT_EQ(aloop_loop_poll(W.loop, 0.0 / 0.0, 0), ALOOP_EINVAL); /* NaN */
    ASSERT_EQ(aloop_loop_poll(W.loop, 0.0, 1), ALOOP_EINVAL); /* no room */
    ASSERT_EQ(aloop_loop_flush(W.loop, 1), ALOOP_EINVAL);
    OK(aloop_loop_set_write_queue(W.loop, wops, 2, arena, 16));
    memset(wops, 0, sizeof wops);
    wops[0].transport = W.client;
    wops[0].length = 17; /* more than the write arena */
    ASSERT_EQ(aloop_loop_poll(W.loop, 0.0, 1), ALOOP_EINVAL);
    wops[0].length = 1;
    wops[0].kind = 9; /* unknown kind */
    ASSERT_EQ(aloop_loop_flush(W.loop, 1), ALOOP_EINVAL);
    ASSERT_EQ(aloop_loop_poll(W.loop, 0.0, 3), ALOOP_EINVAL);
    aloop_protocol_t bad_flags = never_protocol();
    bad_flags.flags = 0x80;
    EXPECT_FREED(ALOOP_EINVAL,
                 aloop_transport_set_protocol(W.client, &bad_flags, &frees,
                                              test_count_free));
    OK(aloop_loop_set_write_queue(W.loop, NULL, 0, NULL, 0));
    OK(aloop_loop_set_event_queue(W.loop, NULL, 0, NULL, 0));
  }
  /* a call_soon handle has no deadline */
  double when;
  aloop_handle_t *soon = NULL;
  OK(aloop_call_soon(W.loop, nop_cb, NULL, NULL, &soon));
  ASSERT_EQ(aloop_handle_when(soon, &when), ALOOP_EINVAL);
  /* a negative fd */
  frees = 0;
  ASSERT_CMP(aloop_add_reader(W.loop, -1, never_fd_cb, &frees, test_count_free),
             <, 0);
  ASSERT_EQ(frees, 1);
  ASSERT_EQ(aloop_add_reader_queued(W.loop, -1, NULL), ALOOP_EBADF);
  ASSERT_EQ(aloop_add_writer_queued(W.loop, -1, NULL), ALOOP_EBADF);
  (void)set_nothing;
  world_still_works();
}

/* Issue 9: a length of SIZE_MAX (or anything no memory can hold) is
 * ALOOP_EINVAL, never a panic turned into ALOOP_EPANIC; a buffer length
 * that large is only an upper bound (the result is copied as usual). */
TEST(huge_lengths) {
  world_up(&W);
  world_ext_up(&W);
  const size_t huge = SIZE_MAX, big = (size_t)1 << 62;
  char buf[256];
  aloop_future_t *f = NULL;
  ASSERT_EQ(aloop_transport_write(W.client, "x", huge), ALOOP_EINVAL);
  ASSERT_EQ(aloop_transport_write(W.client, "x", big), ALOOP_EINVAL);
  aloop_iovec_t iov = {"x", huge};
  ASSERT_EQ(aloop_transport_writev(W.client, &iov, 1), ALOOP_EINVAL);
  ASSERT_EQ(aloop_transport_writev(W.client, &iov, huge), ALOOP_EINVAL);
  ASSERT_EQ(aloop_datagram_sendto(W.dgram, "x", huge, "127.0.0.1", 9), ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_recv(W.loop, W.sv[0], huge, &f), ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_recv_into(W.loop, W.sv[0], buf, huge, &f), ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_recvfrom(W.loop, W.sv[0], huge, &f), ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_recvfrom_into(W.loop, W.sv[0], buf, huge, &f), ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_sendall(W.loop, W.sv[0], "x", huge, &f), ALOOP_EINVAL);
  ASSERT_EQ(aloop_sock_sendto(W.loop, W.sv[0], "x", huge, NULL, 0, &f), ALOOP_EINVAL);
  ASSERT_EQ(aloop_tls_config_load_cert_pem(W.tls, "x", huge, "x", 1), ALOOP_EINVAL);
  ASSERT_EQ(aloop_tls_config_load_cert_pem(W.tls, "x", 1, "x", huge), ALOOP_EINVAL);
  ASSERT_EQ(aloop_tls_config_load_ca_pem(W.tls, "x", huge), ALOOP_EINVAL);
  const char *protos[] = {"h2"};
  ASSERT_EQ(aloop_tls_config_set_alpn(W.tls, protos, huge), ALOOP_EINVAL);
  /* write-buffer limits beyond what a buffer can hold */
  ASSERT_EQ(aloop_transport_set_write_buffer_limits(W.client, huge, 0), ALOOP_EINVAL);
  ASSERT_EQ(aloop_datagram_set_write_buffer_limits(W.dgram, huge, 0), ALOOP_EINVAL);
  ASSERT_EQ(aloop_datagram_set_write_overhead(W.dgram, huge), ALOOP_EINVAL);
  ASSERT_EQ(aloop_datagram_set_write_overhead(W.dgram, 65537), ALOOP_EINVAL);
  OK(aloop_datagram_set_write_overhead(W.dgram, 8));
  OK(aloop_datagram_set_write_overhead(W.dgram, 0));
  /* output buffers: the length is an upper bound */
  ASSERT_EQ(aloop_loop_run((aloop_loop_t *)(uintptr_t)0x99, ALOOP_RUN_NOWAIT), ALOOP_EBADF);
  ASSERT_CMP(aloop_last_error(buf, huge), >, 0);
  ASSERT_CMP(strlen(buf), >, 0);
  aloop_future_t *failed = NULL;
  OK(aloop_future_new(W.loop, &failed));
  OK(aloop_future_set_exception(failed, ALOOP_EIO, "boom"));
  ASSERT_EQ(aloop_future_error_message(failed, buf, huge), 4);
  ASSERT_STR_EQ(buf, "boom");
  OK(aloop_future_free(failed));
  int port = 0;
  OK(aloop_server_sockname(W.server, 0, buf, huge, &port));
  ASSERT_STR_EQ(buf, "127.0.0.1");
  OK(aloop_transport_get_peername(W.client, buf, huge, &port));
  ASSERT_STR_EQ(buf, "127.0.0.1");
  OK(aloop_transport_get_sockname(W.client, buf, huge, &port));
  ASSERT_EQ(aloop_transport_get_tls_cipher(W.client, buf, huge), ALOOP_EINVAL);
  world_still_works();
}

/* ---- errors, version ----------------------------------------------------- */

TEST(error_strings) {
  int n = 0;
#define CHECK_CODE_(name, value, message)                                      \
  ASSERT_EQ(ALOOP_##name, value);                                              \
  ASSERT_STR_EQ(aloop_strerror(value), message);                               \
  ASSERT_STR_EQ(aloop_err_name(value), "ALOOP_" #name);                        \
  n++;
  ALOOP_ERRNO_MAP(CHECK_CODE_)
#undef CHECK_CODE_
  ASSERT_CMP(n, >=, 30);
  /* Linux errno values */
  ASSERT_EQ(ALOOP_ECONNREFUSED, -ECONNREFUSED);
  ASSERT_EQ(ALOOP_EBADF, -EBADF);
  ASSERT_EQ(ALOOP_ECANCELED, -ECANCELED);
  ASSERT_STR_EQ(aloop_err_name(0), "ALOOP_OK");
  /* unknown codes */
  const int unknown[] = {-6, -7777, -3500, 1, 42, INT32_MIN, INT32_MAX, -2999};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    ASSERT_STR_EQ(aloop_strerror(unknown[i]), "unknown error");
    ASSERT_STR_EQ(aloop_err_name(unknown[i]), "ALOOP_EUNKNOWN");
  }
  ASSERT(aloop_strerror(0) != NULL);
  /* static strings: the same pointer every time */
  ASSERT_PTR_EQ(aloop_strerror(ALOOP_EIO), aloop_strerror(ALOOP_EIO));
}

TEST(version) {
  ASSERT_EQ(aloop_version(), ALOOP_VERSION_HEX);
  char expect[32];
  snprintf(expect, sizeof expect, "%d.%d.%d", ALOOP_VERSION_MAJOR,
           ALOOP_VERSION_MINOR, ALOOP_VERSION_PATCH);
  ASSERT_STR_EQ(aloop_version_string(), expect);
  ASSERT_EQ(aloop_version() >> 16, ALOOP_VERSION_MAJOR);
}

static void *last_error_in_fresh_thread(void *arg) {
  char buf[64] = "unchanged";
  *(int *)arg = aloop_last_error(buf, sizeof buf);
  return NULL;
}

TEST(last_error) {
  char buf[256], small[4];
  ASSERT_EQ(aloop_loop_run(NULL, ALOOP_RUN_NOWAIT), ALOOP_EBADF);
  memset(buf, 'z', sizeof buf);
  int n = aloop_last_error(buf, sizeof buf);
  ASSERT_CMP(n, >, 0);
  ASSERT_CMP(n, <, (int)sizeof buf);
  ASSERT_EQ(strlen(buf), n);
  /* truncated: still the full length, NUL-terminated */
  memset(small, 'z', sizeof small);
  ASSERT_EQ(aloop_last_error(small, sizeof small), n);
  ASSERT_EQ(strlen(small), sizeof small - 1);
  ASSERT(strncmp(small, buf, sizeof small - 1) == 0);

  /* an EINVAL failure gives its own message */
  ASSERT_EQ(aloop_loop_new(NULL), ALOOP_EINVAL);
  char buf2[256];
  ASSERT_CMP(aloop_last_error(buf2, sizeof buf2), >, 0);
  ASSERT(buf2[0] != '\0');

  /* per thread: a thread that made no call has no last error */
  int other = -12345;
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, last_error_in_fresh_thread, &other), 0);
  pthread_join(th, NULL);
  ASSERT_EQ(other, 0);
}

/* ---- this file calls every function the header declares ------------------ */

#ifndef ALOOP_HEADER_PATH
#define ALOOP_HEADER_PATH "include/asyncloop.h"
#endif

/* Blanks out C comments in place. */
static void strip_comments(char *s) {
  for (char *p = s; *p; p++) {
    if (p[0] == '/' && p[1] == '*') {
      char *e = strstr(p + 2, "*/");
      char *end = e ? e + 2 : p + strlen(p);
      memset(p, ' ', (size_t)(end - p));
      p = end - 1;
    } else if (p[0] == '/' && p[1] == '/') {
      while (*p && *p != '\n')
        *p++ = ' ';
      if (!*p)
        break;
    }
  }
}

TEST(covers_every_declaration) {
  char *header = test_read_file(ALOOP_HEADER_PATH, NULL);
  char *self = test_read_file(__FILE__, NULL);
  strip_comments(header);
  int declared = 0, missing = 0;
  for (char *p = header; (p = strstr(p, "aloop_")) != NULL;) {
    /* skip the tail of a longer identifier and (*aloop_x_cb) typedefs */
    if (p > header && (p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') ||
                       (p[-1] >= 'A' && p[-1] <= 'Z') ||
                       (p[-1] == '*' && p - 1 > header && p[-2] == '('))) {
      p += 6;
      continue;
    }
    char name[128];
    size_t n = 0;
    while (n < sizeof name - 1 &&
           ((p[n] >= 'a' && p[n] <= 'z') || p[n] == '_' ||
            (p[n] >= '0' && p[n] <= '9'))) {
      name[n] = p[n];
      n++;
    }
    name[n] = 0;
    char *q = p + n;
    while (*q == ' ' || *q == '\t' || *q == '\n')
      q++;
    p += n;
    if (*q != '(')
      continue; /* a type, not a function */
    declared++;
    char call[140];
    snprintf(call, sizeof call, "%s(", name);
    if (strstr(self, call) == NULL) {
      fprintf(stderr, "test-abi.c never calls %s\n", name);
      missing++;
    }
  }
  ASSERT_CMP(declared, >=, 70);
  ASSERT_EQ(missing, 0);
  free(header);
  free(self);
}
