/*
 * echo_client - sends 1 MiB to an echo server and checks every byte.
 *
 *   echo_client HOST PORT
 *
 * Sends 64 chunks of 16 KiB, each only after the previous one came back
 * complete, verifies every byte, and prints one line:
 *
 *   C       1048576 bytes echoed, median round trip <x> us
 *
 * Exits 0 only if every byte came back as sent.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "asyncloop.h"

#define CHUNK (16 * 1024)
#define CHUNKS 64
#define TOTAL (CHUNK * CHUNKS)

static aloop_loop_t *loop;
static unsigned char sent[TOTAL];
static size_t received;       /* bytes echoed so far (all chunks) */
static size_t matched;        /* of which equal to what was sent */
static int chunk;             /* the chunk in flight */
static double chunk_sent_at;
static double rtt_us[CHUNKS];
static int failed;
static int lost;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *why) {
  if (!failed)
    fprintf(stderr, "echo_client: %s\n", why);
  failed = 1;
  aloop_loop_stop(loop);
}

static void send_chunk(aloop_transport_t *t) {
  chunk_sent_at = now();
  int rc = aloop_transport_write(t, sent + (size_t)chunk * CHUNK, CHUNK);
  if (rc < 0)
    fail(aloop_strerror(rc));
}

static void on_data(aloop_transport_t *t, const char *data, size_t len,
                    void *ud) {
  if (received + len > (size_t)(chunk + 1) * CHUNK) {
    fail("received more bytes than were sent");
    return;
  }
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)data[i] == sent[received + i])
      matched++;
  received += len;
  if (received == (size_t)(chunk + 1) * CHUNK) {
    rtt_us[chunk] = (now() - chunk_sent_at) * 1e6;
    if (++chunk == CHUNKS)
      aloop_transport_close(t); /* done: connection_lost stops the loop */
    else
      send_chunk(t);
  }
}

static int on_eof(aloop_transport_t *t, void *ud) {
  if (chunk < CHUNKS)
    fail("the server closed the connection early");
  return 0;
}

static void on_lost(aloop_transport_t *t, int error, void *ud) {
  lost = 1;
  if (error != 0)
    fail(aloop_strerror(error));
  else if (chunk < CHUNKS)
    fail("connection lost before all data came back");
  aloop_loop_stop(loop);
}

static void on_timeout(aloop_loop_t *l, void *ud) {
  fail("timed out after 60 s");
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: echo_client HOST PORT\n");
    return 2;
  }
  const char *host = argv[1];
  int port = atoi(argv[2]);
  for (size_t i = 0; i < TOTAL; i++)
    sent[i] = (unsigned char)(((uint32_t)i * 2654435761u) >> 24);

  int rc = aloop_loop_new(&loop);
  if (rc < 0) {
    fprintf(stderr, "echo_client: aloop_loop_new: %s\n", aloop_strerror(rc));
    return 1;
  }
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.data_received = on_data;
  p.eof_received = on_eof;
  p.connection_lost = on_lost;

  aloop_future_t *f = NULL;
  aloop_transport_t *t = NULL;
  rc = aloop_create_connection(loop, host, port, &p, NULL, NULL, NULL, &f);
  if (rc == 0)
    rc = aloop_loop_run_until_complete(loop, f);
  if (rc == 0)
    rc = aloop_future_result_transport(f, &t);
  if (rc < 0) {
    char msg[256] = "";
    if (f)
      aloop_future_error_message(f, msg, sizeof msg);
    fprintf(stderr, "echo_client: cannot connect to %s port %d: %s%s%s\n", host,
            port, aloop_strerror(rc), msg[0] ? ": " : "", msg);
    return 1;
  }
  aloop_future_free(f);

  aloop_handle_t *timeout = NULL;
  aloop_call_later(loop, 60.0, on_timeout, NULL, NULL, &timeout);
  send_chunk(t);
  rc = aloop_loop_run(loop, ALOOP_RUN_DEFAULT);
  if (rc < 0)
    fail(aloop_strerror(rc));
  if (!lost)
    aloop_transport_abort(t);
  aloop_handle_cancel(timeout); /* stale (harmless) if it already ran */

  /* let the transport finish closing, then release the loop */
  for (int i = 0; i < 100 && !lost; i++)
    aloop_loop_run_once(loop, 0.01);
  aloop_loop_free(loop);

  double sorted[CHUNKS];
  int n = chunk < CHUNKS ? chunk : CHUNKS;
  memcpy(sorted, rtt_us, sizeof(double) * (size_t)n);
  qsort(sorted, (size_t)n, sizeof(double), cmp_double);
  double median = n == 0 ? 0.0
                  : n % 2 ? sorted[n / 2]
                          : (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
  printf("%-8s%zu bytes echoed, median round trip %.1f us\n", "C", matched,
         median);
  if (failed || matched != TOTAL || received != TOTAL) {
    if (!failed)
      fprintf(stderr, "echo_client: %zu of %d bytes came back intact\n",
              matched, TOTAL);
    return 1;
  }
  return 0;
}
