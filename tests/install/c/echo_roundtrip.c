/*
 * echo_roundtrip - the install tests' C consumer: an echo server and a client
 * on one loop, over loopback, through an installed libasyncloop.
 *
 * Prints "echo ok <library version> <bytes>" and exits 0 when the message came
 * back intact; exits 1 otherwise. Built by tests/install/c/CMakeLists.txt
 * (find_package or add_subdirectory) and by tests/install/install_c.sh with
 * pkg-config.
 */
#include <stdio.h>
#include <string.h>

#include <asyncloop.h>

static aloop_loop_t *loop;
static const char message[] = "hello through an installed libasyncloop";
static char got[sizeof message];
static size_t got_len;
static int failed;

static int check(int rc, const char *what) {
  if (rc < 0) {
    char msg[512] = "";
    aloop_last_error(msg, sizeof msg);
    fprintf(stderr, "echo_roundtrip: %s: %s %s\n", what, aloop_err_name(rc), msg);
    failed = 1;
  }
  return rc;
}

static void server_data(aloop_transport_t *t, const char *data, size_t len, void *ud) {
  check(aloop_transport_write(t, data, len), "server write");
}

static int server_connection(aloop_server_t *s, aloop_transport_t *t, void *ud) {
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.data_received = server_data;
  return aloop_transport_set_protocol(t, &p, NULL, NULL);
}

static void client_data(aloop_transport_t *t, const char *data, size_t len, void *ud) {
  if (got_len + len > sizeof message - 1) {
    fprintf(stderr, "echo_roundtrip: more bytes than were sent\n");
    failed = 1;
    len = sizeof message - 1 - got_len;
  }
  memcpy(got + got_len, data, len);
  got_len += len;
  if (got_len == sizeof message - 1 || failed)
    aloop_transport_close(t);
}

static void client_lost(aloop_transport_t *t, int error, void *ud) {
  aloop_loop_stop(loop);
}

static void timeout(aloop_loop_t *l, void *ud) {
  fprintf(stderr, "echo_roundtrip: timed out\n");
  failed = 1;
  aloop_loop_stop(l);
}

int main(void) {
  if (check(aloop_loop_new(&loop), "aloop_loop_new") < 0)
    return 1;
  aloop_future_t *f = NULL;
  aloop_server_t *server = NULL;
  aloop_transport_t *client = NULL;
  check(aloop_create_server(loop, "127.0.0.1", 0, server_connection, NULL, NULL, NULL, &f),
        "create_server");
  check(aloop_loop_run_until_complete(loop, f), "run_until_complete");
  check(aloop_future_result_server(f, &server), "server");
  aloop_future_free(f);
  char host[64];
  int port = 0;
  check(aloop_server_sockname(server, 0, host, sizeof host, &port), "sockname");

  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.data_received = client_data;
  p.connection_lost = client_lost;
  check(aloop_create_connection(loop, host, port, &p, NULL, NULL, NULL, &f), "create_connection");
  check(aloop_loop_run_until_complete(loop, f), "run_until_complete");
  check(aloop_future_result_transport(f, &client), "connect");
  aloop_future_free(f);
  if (failed)
    return 1;
  check(aloop_transport_write(client, message, sizeof message - 1), "client write");
  aloop_handle_t *timer = NULL;
  check(aloop_call_later(loop, 20.0, timeout, NULL, NULL, &timer), "call_later");
  check(aloop_loop_run(loop, ALOOP_RUN_DEFAULT), "run");
  aloop_handle_cancel(timer);

  aloop_future_t *closed = NULL;
  check(aloop_server_close(server), "server_close");
  check(aloop_server_wait_closed(server, &closed), "wait_closed");
  check(aloop_loop_run_until_complete(loop, closed), "run_until_complete");
  aloop_future_free(closed);
  aloop_server_free(server);
  check(aloop_loop_close(loop), "loop_close");
  aloop_loop_free(loop);

  if (failed || got_len != sizeof message - 1 || memcmp(got, message, got_len) != 0) {
    fprintf(stderr, "echo_roundtrip: echoed %zu bytes, want %zu intact\n", got_len,
            sizeof message - 1);
    return 1;
  }
  unsigned v = aloop_version();
  printf("echo ok %u.%u.%u %zu\n", v >> 16, (v >> 8) & 0xff, v & 0xff, got_len);
  return (v >> 16) == ALOOP_VERSION_MAJOR ? 0 : 1;
}
