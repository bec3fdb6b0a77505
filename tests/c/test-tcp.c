/*
 * test-tcp.c - TCP over real loopback: servers, connections, the protocol
 * callbacks, half-close, flow control, abort/close, addresses, server close.
 */
#include "test.h"
#include "helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <pthread.h>

/* ---- a connection's state (the protocol userdata) ------------------------- */

struct conn {
  aloop_transport_t *t;
  int made, lost, lost_err, eofs, frees, data_calls;
  int pauses, resumes;
  size_t buffer_at_pause, buffer_at_resume;
  int echo;          /* write back what arrives */
  int eof_keep_open; /* what eof_received returns */
  int reply_on_eof;  /* after EOF: write "reply:<data>" later, then close */
  int pause_on_made; /* pause_reading in connection_made */
  /* A protocol with its own buffer above the transport (as asyncio's
   * sslproto): resume_writing hands over own until the next pause. */
  const unsigned char *own;
  size_t own_len, own_off;
  int own_rc; /* the first failed write from resume_writing */
  int future_done_in_made; /* aloop_future_done(connect) inside connection_made */
  aloop_future_t *connect_future;
  unsigned char *buf;
  size_t len, cap;
};

static void p_made(aloop_transport_t *t, void *ud) {
  struct conn *c = ud;
  ASSERT_EQ(c->made, 0);
  ASSERT_EQ(c->lost, 0);
  c->made++;
  c->t = t;
  if (c->connect_future)
    c->future_done_in_made = aloop_future_done(c->connect_future);
  if (c->pause_on_made)
    OK(aloop_transport_pause_reading(t));
}

static void p_data(aloop_transport_t *t, const char *data, size_t len,
                   void *ud) {
  struct conn *c = ud;
  ASSERT_EQ(c->made, 1);
  ASSERT_EQ(c->lost, 0);
  ASSERT_PTR_EQ(t, c->t);
  ASSERT_CMP(len, >, 0);
  c->data_calls++;
  buf_append(&c->buf, &c->len, &c->cap, data, len);
  if (c->echo)
    OK(aloop_transport_write(t, data, len));
}

static void reply_and_close(aloop_loop_t *l, void *ud) {
  struct conn *c = ud;
  /* eof_received returned 1: the transport is still open for writing */
  ASSERT_EQ(c->lost, 0);
  ASSERT_EQ(aloop_transport_is_closing(c->t), 0);
  OK(aloop_transport_write(c->t, "reply:", 6));
  OK(aloop_transport_write(c->t, c->buf, c->len));
  OK(aloop_transport_close(c->t));
}

static int p_eof(aloop_transport_t *t, void *ud) {
  struct conn *c = ud;
  ASSERT_PTR_EQ(t, c->t);
  c->eofs++;
  if (c->reply_on_eof)
    OK(aloop_call_later(loop, 0.02, reply_and_close, c, NULL, NULL));
  return c->eof_keep_open;
}

static void p_lost(aloop_transport_t *t, int err, void *ud) {
  struct conn *c = ud;
  ASSERT_PTR_EQ(t, c->t);
  ASSERT_EQ(c->lost, 0);
  ASSERT_EQ(c->frees, 0);
  c->lost++;
  c->lost_err = err;
}

static void p_pause(aloop_transport_t *t, void *ud) {
  struct conn *c = ud;
  c->pauses++;
  OK(aloop_transport_get_write_buffer_size(t, &c->buffer_at_pause));
}

static void p_resume(aloop_transport_t *t, void *ud) {
  struct conn *c = ud;
  c->resumes++;
  OK(aloop_transport_get_write_buffer_size(t, &c->buffer_at_resume));
  while (c->own && c->own_off < c->own_len && c->pauses == c->resumes) {
    size_t n = c->own_len - c->own_off;
    if (n > (64u << 10))
      n = 64u << 10;
    int rc = aloop_transport_write(t, c->own + c->own_off, n);
    if (rc < 0 && c->own_rc == 0)
      c->own_rc = rc;
    c->own_off += n;
  }
}

static void conn_free(void *ud) { ((struct conn *)ud)->frees++; }

static aloop_protocol_t protocol(void) {
  aloop_protocol_t p;
  memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.connection_made = p_made;
  p.data_received = p_data;
  p.eof_received = p_eof;
  p.connection_lost = p_lost;
  p.pause_writing = p_pause;
  p.resume_writing = p_resume;
  return p;
}

/* ---- a server ------------------------------------------------------------ */

#define MAX_CONNS 16

struct server_state {
  aloop_server_t *server;
  int port;
  int frees;
  int accepted;
  int reject; /* on_connection returns -1 */
  int buffered; /* use the buffered protocol (get_buffer/buffer_updated) */
  struct conn proto; /* template for accepted connections */
  struct conn conns[MAX_CONNS];
};

/* buffered protocol: reads into a small buffer, echoes from it */
static char small_buf[1000];
static int get_buffer_calls;

static void *b_get_buffer(aloop_transport_t *t, size_t hint, size_t *len,
                          void *ud) {
  get_buffer_calls++;
  *len = sizeof small_buf;
  return small_buf;
}

static void b_updated(aloop_transport_t *t, size_t n, void *ud) {
  struct conn *c = ud;
  ASSERT_CMP(n, >, 0);
  ASSERT_CMP(n, <=, sizeof small_buf);
  buf_append(&c->buf, &c->len, &c->cap, small_buf, n);
  OK(aloop_transport_write(t, small_buf, n));
}

static void b_data_never(aloop_transport_t *t, const char *d, size_t n,
                         void *ud) {
  FAIL("data_received ran although get_buffer is set");
}

static int on_connection(aloop_server_t *s, aloop_transport_t *t, void *ud) {
  struct server_state *ss = ud;
  ASSERT_PTR_EQ(s, ss->server);
  ASSERT_CMP(ss->accepted, <, MAX_CONNS);
  if (ss->reject) {
    ss->accepted++;
    return -1;
  }
  struct conn *c = &ss->conns[ss->accepted++];
  *c = ss->proto;
  aloop_protocol_t p = protocol();
  if (ss->buffered) {
    p.data_received = b_data_never;
    p.get_buffer = b_get_buffer;
    p.buffer_updated = b_updated;
  }
  OK(aloop_transport_set_protocol(t, &p, c, conn_free));
  /* connection_made comes after this callback */
  ASSERT_EQ(c->made, 0);
  return 0;
}

static void server_free_cb(void *ud) { ((struct server_state *)ud)->frees++; }

static void start_server(struct server_state *ss,
                         const aloop_server_options_t *opts) {
  loop_up();
  aloop_future_t *f = NULL;
  OK(aloop_create_server(loop, "127.0.0.1", 0, on_connection, ss,
                         server_free_cb, opts, &f));
  OK(aloop_loop_run_until_complete(loop, f));
  ASSERT_EQ(aloop_future_exception(f), 0);
  OK(aloop_future_result_server(f, &ss->server));
  ASSERT(ss->server != NULL);
  OK(aloop_future_free(f));
  char host[64];
  OK(aloop_server_sockname(ss->server, 0, host, sizeof host, &ss->port));
  ASSERT_STR_EQ(host, "127.0.0.1");
  ASSERT_CMP(ss->port, >, 0);
}

/* Connects c to port; returns the transport (connection_made has run). */
static aloop_transport_t *connect_to(int port, struct conn *c) {
  loop_up();
  aloop_protocol_t p = protocol();
  aloop_future_t *f = NULL;
  OK(aloop_create_connection(loop, "127.0.0.1", port, &p, c, conn_free, NULL,
                             &f));
  c->connect_future = f;
  aloop_transport_t *t = complete_transport(f, "connect failed");
  c->connect_future = NULL;
  ASSERT_EQ(c->made, 1);
  ASSERT_EQ(c->future_done_in_made, 0); /* made ran before the future resolved */
  ASSERT_PTR_EQ(t, c->t);
  return t;
}

static void close_server(struct server_state *ss) {
  aloop_future_t *wc = NULL;
  OK(aloop_server_close(ss->server));
  OK(aloop_server_wait_closed(ss->server, &wc));
  OK(aloop_loop_run_until_complete(loop, wc));
  ASSERT_EQ(aloop_future_exception(wc), 0);
  OK(aloop_future_free(wc));
  OK(aloop_server_free(ss->server));
  run_for(0.01);
  ASSERT_EQ(ss->frees, 1);
}

/* ------------------------------------------------------------------------ */

TEST(echo_1mib) {
  static struct server_state ss;
  ss.proto.echo = 1;
  start_server(&ss, NULL);
  ASSERT_EQ(aloop_server_is_serving(ss.server), 1);

  struct conn c = {0};
  aloop_transport_t *t = connect_to(ss.port, &c);
  const size_t total = 1 << 20;
  unsigned char *data = make_pattern(total);
  /* in chunks of varying size, all written at once: order must be kept */
  size_t off = 0, step = 1;
  while (off < total) {
    size_t n = step < total - off ? step : total - off;
    OK(aloop_transport_write(t, data + off, n));
    off += n;
    step = step * 3 + 7;
    if (step > 200000)
      step = 13;
  }
  RUN_UNTIL(c.len >= total);
  ASSERT_EQ(c.len, total);
  for (size_t i = 0; i < total; i++)
    if (c.buf[i] != data[i])
      FAIL("byte %zu differs: got %u, expected %u", i, c.buf[i], data[i]);
  ASSERT_EQ(ss.accepted, 1);
  ASSERT_EQ(ss.conns[0].len, total);

  /* clean close: both sides see connection_lost(0), userdata freed once */
  OK(aloop_transport_close(t));
  RUN_UNTIL(c.lost == 1 && ss.conns[0].lost == 1);
  ASSERT_EQ(c.lost_err, 0);
  ASSERT_EQ(ss.conns[0].eofs, 1);
  ASSERT_EQ(ss.conns[0].lost_err, 0);
  run_for(0.01);
  ASSERT_EQ(c.frees, 1);
  ASSERT_EQ(ss.conns[0].frees, 1);
  ASSERT_EQ(aloop_transport_is_closing(t), ALOOP_EBADF); /* stale */
  close_server(&ss);
  free(data);
  OK(aloop_loop_close(loop));
  free(c.buf);
}

static int refused_cb_runs;
static void refused_made(aloop_transport_t *t, void *ud) { refused_cb_runs++; }
static void refused_lost(aloop_transport_t *t, int e, void *ud) {
  refused_cb_runs++;
}

TEST(connection_refused) {
  loop_up();
  /* a port that is bound but not listening: connecting to it is refused
   * (s stays open while the port is used) */
  int port = 0;
  int s = loopback_socket(SOCK_STREAM, &port);
  aloop_protocol_t p = protocol();
  p.connection_made = refused_made;
  p.connection_lost = refused_lost;
  struct conn c = {0};
  aloop_future_t *f = NULL;
  OK(aloop_create_connection(loop, "127.0.0.1", port, &p, &c, conn_free, NULL,
                             &f));
  ASSERT_EQ(c.frees, 0);
  OK(aloop_loop_run_until_complete(loop, f));
  ASSERT_EQ(aloop_future_done(f), 1);
  ASSERT_EQ(aloop_future_exception(f), ALOOP_ECONNREFUSED);
  aloop_transport_t *t = NULL;
  ASSERT_EQ(aloop_future_result_transport(f, &t), ALOOP_ECONNREFUSED);
  char msg[256];
  ASSERT_CMP(aloop_future_error_message(f, msg, sizeof msg), >, 0);
  run_for(0.02);
  ASSERT_EQ(refused_cb_runs, 0);
  ASSERT_EQ(c.frees, 1);
  OK(aloop_future_free(f));
  close(s);
  OK(aloop_loop_close(loop));
}

TEST(half_close) {
  static struct server_state ss;
  ss.proto.eof_keep_open = 1;
  ss.proto.reply_on_eof = 1;
  start_server(&ss, NULL);
  struct conn c = {0};
  aloop_transport_t *t = connect_to(ss.port, &c);
  ASSERT_EQ(aloop_transport_can_write_eof(t), 1);
  OK(aloop_transport_write(t, "hello", 5));
  OK(aloop_transport_write_eof(t));
  ASSERT_EQ(aloop_transport_write(t, "more", 4), ALOOP_EPIPE);
  /* write_eof only closes the write side */
  ASSERT_EQ(aloop_transport_is_closing(t), 0);
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(ss.conns[0].len, 5);
  ASSERT(memcmp(ss.conns[0].buf, "hello", 5) == 0);
  ASSERT_EQ(ss.conns[0].eofs, 1);
  /* the server answered after EOF, then closed: the client read it all */
  ASSERT_EQ(c.len, 11);
  ASSERT(memcmp(c.buf, "reply:hello", 11) == 0);
  ASSERT_EQ(c.eofs, 1);
  ASSERT_EQ(c.lost_err, 0);
  RUN_UNTIL(ss.conns[0].lost == 1);
  ASSERT_EQ(ss.conns[0].lost_err, 0);
  close_server(&ss);
  free(c.buf);
}

TEST(eof_closes_by_default) {
  static struct server_state ss; /* eof_received returns 0: close */
  start_server(&ss, NULL);
  struct conn c = {0};
  aloop_transport_t *t = connect_to(ss.port, &c);
  RUN_UNTIL(ss.accepted == 1 && ss.conns[0].made == 1);
  OK(aloop_transport_write_eof(t));
  RUN_UNTIL(ss.conns[0].lost == 1);
  ASSERT_EQ(ss.conns[0].eofs, 1);
  ASSERT_EQ(ss.conns[0].lost_err, 0);
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(c.eofs, 1);
  close_server(&ss);
}

TEST(pause_resume_reading) {
  static struct server_state ss;
  start_server(&ss, NULL);
  struct conn c = {0};
  aloop_transport_t *t = connect_to(ss.port, &c);
  RUN_UNTIL(ss.accepted == 1 && ss.conns[0].made == 1);
  ASSERT_EQ(aloop_transport_is_reading(t), 1);
  OK(aloop_transport_pause_reading(t));
  ASSERT_EQ(aloop_transport_is_reading(t), 0);
  unsigned char *data = make_pattern(1000);
  OK(aloop_transport_write(ss.conns[0].t, data, 1000));
  run_for(0.1);
  ASSERT_EQ(c.len, 0);
  ASSERT_EQ(c.data_calls, 0);
  OK(aloop_transport_resume_reading(t));
  ASSERT_EQ(aloop_transport_is_reading(t), 1);
  RUN_UNTIL(c.len == 1000);
  ASSERT(memcmp(c.buf, data, 1000) == 0);
  /* a closing transport is not reading */
  OK(aloop_transport_close(t));
  ASSERT_EQ(aloop_transport_is_reading(t), 0);
  RUN_UNTIL(c.lost == 1);
  free(data);
  close_server(&ss);
  free(c.buf);
}

TEST(flow_control_pause_resume_writing) {
  static struct server_state ss;
  ss.proto.pause_on_made = 1; /* the server does not read at first */
  start_server(&ss, NULL);
  struct conn c = {0};
  aloop_transport_t *t = connect_to(ss.port, &c);
  size_t hi = 0, lo = 0;
  OK(aloop_transport_get_write_buffer_limits(t, &hi, &lo));
  ASSERT_EQ(hi, ALOOP_WRITE_BUFFER_HIGH); /* asyncio's defaults */
  ASSERT_EQ(lo, ALOOP_WRITE_BUFFER_LOW);
  ASSERT_EQ(ALOOP_WRITE_BUFFER_HIGH, 64 * 1024);
  ASSERT_EQ(ALOOP_WRITE_BUFFER_LOW, 16 * 1024);
  RUN_UNTIL(ss.accepted == 1 && ss.conns[0].made == 1);
  const size_t total = 32u << 20;
  unsigned char *data = make_pattern(total);
  for (size_t off = 0; off < total; off += 1 << 20)
    OK(aloop_transport_write(t, data + off, 1 << 20));
  run_for(0.1);
  size_t buffered = 0;
  OK(aloop_transport_get_write_buffer_size(t, &buffered));
  ASSERT_CMP(buffered, >, hi);
  ASSERT_EQ(c.pauses, 1);
  ASSERT_CMP(c.buffer_at_pause, >, hi);
  ASSERT_EQ(c.resumes, 0);
  /* the server reads: the buffer drains, resume_writing follows */
  OK(aloop_transport_resume_reading(ss.conns[0].t));
  RUN_UNTIL(ss.conns[0].len == total);
  RUN_UNTIL(c.resumes == 1);
  ASSERT_CMP(c.buffer_at_resume, <=, lo);
  ASSERT_EQ(c.pauses, 1);
  ASSERT(memcmp(ss.conns[0].buf, data, total) == 0);
  OK(aloop_transport_get_write_buffer_size(t, &buffered));
  ASSERT_EQ(buffered, 0);
  /* the limits can be changed */
  OK(aloop_transport_set_write_buffer_limits(t, 1000, 100));
  OK(aloop_transport_get_write_buffer_limits(t, &hi, &lo));
  ASSERT_EQ(hi, 1000);
  ASSERT_EQ(lo, 100);
  OK(aloop_transport_set_write_buffer_limits(t, 0, 0));
  OK(aloop_transport_get_write_buffer_limits(t, &hi, &lo));
  ASSERT_EQ(hi, 0);
  ASSERT_EQ(lo, 0);
  /* high 0 pauses on any buffered byte */
  OK(aloop_transport_pause_reading(ss.conns[0].t));
  for (int i = 0; i < 64 && c.pauses == 1; i++)
    OK(aloop_transport_write(t, data, 1 << 20));
  ASSERT_EQ(c.pauses, 2);
  OK(aloop_transport_get_write_buffer_size(t, &buffered));
  ASSERT_CMP(buffered, >, 0);
  OK(aloop_transport_resume_reading(ss.conns[0].t));
  RUN_UNTIL(c.resumes == 2);
  ASSERT_EQ(c.buffer_at_resume, 0);
  OK(aloop_transport_set_write_buffer_limits(t, ALOOP_WRITE_BUFFER_HIGH,
                                             ALOOP_WRITE_BUFFER_LOW));
  OK(aloop_transport_get_write_buffer_limits(t, &hi, &lo));
  ASSERT_EQ(hi, ALOOP_WRITE_BUFFER_HIGH);
  ASSERT_EQ(lo, ALOOP_WRITE_BUFFER_LOW);
  OK(aloop_transport_close(t));
  RUN_UNTIL(c.lost == 1);
  free(data);
  close_server(&ss);
}

TEST(abort_drops_data) {
  static struct server_state ss;
  ss.proto.pause_on_made = 1;
  start_server(&ss, NULL);
  struct conn c = {0};
  aloop_transport_t *t = connect_to(ss.port, &c);
  RUN_UNTIL(ss.accepted == 1 && ss.conns[0].made == 1);
  const size_t total = 32u << 20;
  unsigned char *data = make_pattern(total);
  OK(aloop_transport_write(t, data, total));
  run_for(0.05);
  size_t buffered = 0;
  OK(aloop_transport_get_write_buffer_size(t, &buffered));
  ASSERT_CMP(buffered, >, 0);
  OK(aloop_transport_abort(t));
  ASSERT_EQ(aloop_transport_is_closing(t), 1);
  ASSERT_EQ(c.lost, 0); /* connection_lost follows, not inside abort */
  ASSERT_EQ(aloop_transport_write(t, "x", 1), ALOOP_ECLOSED);
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(c.lost_err, 0);
  /* the server gets what reached the kernel, then the end: less than sent */
  OK(aloop_transport_resume_reading(ss.conns[0].t));
  RUN_UNTIL(ss.conns[0].lost == 1);
  ASSERT_CMP(ss.conns[0].len, <, total);
  ASSERT(memcmp(ss.conns[0].buf, data, ss.conns[0].len) == 0);
  run_for(0.01);
  ASSERT_EQ(c.frees, 1);
  free(data);
  close_server(&ss);
}

TEST(write_after_close) {
  static struct server_state ss;
  ss.proto.echo = 1;
  start_server(&ss, NULL);
  struct conn c = {0};
  aloop_transport_t *t = connect_to(ss.port, &c);
  OK(aloop_transport_write(t, "abc", 3));
  OK(aloop_transport_close(t));
  ASSERT_EQ(aloop_transport_is_closing(t), 1);
  /* until connection_lost runs a write is still taken (asyncio too) */
  OK(aloop_transport_write(t, "x", 1));
  ASSERT_EQ(aloop_transport_close(t), 0); /* idempotent */
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(c.lost_err, 0);
  /* close flushed what was written first */
  RUN_UNTIL(ss.conns[0].lost == 1);
  ASSERT_EQ(ss.conns[0].len, 4);
  ASSERT(memcmp(ss.conns[0].buf, "abcx", 4) == 0);
  /* after connection_lost the handle is stale */
  ASSERT_EQ(aloop_transport_write(t, "x", 1), ALOOP_EBADF);
  ASSERT_EQ(aloop_transport_close(t), ALOOP_EBADF);
  close_server(&ss);
}

/* Issue 9: a protocol that keeps its own buffer above the transport closes
 * it while that buffer still holds data; the transport keeps calling
 * resume_writing while it drains and must take what is handed over then
 * (it answered ALOOP_ECLOSED and the bytes were lost). */
TEST(write_from_resume_writing_after_close) {
  static struct server_state ss;
  ss.proto.pause_on_made = 1; /* the server reads only later */
  start_server(&ss, NULL);
  struct conn c = {0};
  aloop_transport_t *t = connect_to(ss.port, &c);
  RUN_UNTIL(ss.accepted == 1 && ss.conns[0].made == 1);
  const size_t total = 16u << 20;
  unsigned char *data = make_pattern(total);
  size_t off = 0;
  while (c.pauses == c.resumes && off < total) {
    OK(aloop_transport_write(t, data + off, 64u << 10));
    off += 64u << 10;
  }
  ASSERT(off < total); /* the transport pushed back */
  c.own = data;
  c.own_off = off;
  c.own_len = total;
  OK(aloop_transport_close(t));
  OK(aloop_transport_resume_reading(ss.conns[0].t));
  RUN_UNTIL(c.lost == 1 && ss.conns[0].lost == 1);
  ASSERT_EQ(c.own_rc, 0);
  ASSERT_EQ(c.own_off, total);
  ASSERT_EQ(ss.conns[0].len, total);
  ASSERT(memcmp(ss.conns[0].buf, data, total) == 0);
  ASSERT_EQ(ss.conns[0].lost_err, 0);
  free(data);
  close_server(&ss);
}

/* Issue 9: a peer that keeps reading, and sending (it answers every read),
 * while the transport closes. Closing the socket while the kernel still
 * holds unsent bytes, when the peer's answers arrive after close(2), makes
 * the kernel reset the connection and drop those bytes: the peer saw about
 * half of them. The peer is a plain socket in a thread that keeps reading
 * whatever happens to its own writes. */
struct raw_peer {
  int lsock;
  size_t got;
  int err; /* errno that ended the reads, 0 for EOF */
  int done;
  unsigned char *buf;
};

static void *raw_peer_main(void *arg) {
  struct raw_peer *p = arg;
  int s = accept(p->lsock, NULL, NULL);
  ASSERT(s >= 0);
  unsigned char chunk[16384];
  for (;;) {
    usleep(100);
    ssize_t n = recv(s, chunk, sizeof chunk, 0);
    if (n > 0) {
      memcpy(p->buf + p->got, chunk, (size_t)n);
      p->got += (size_t)n;
      (void)send(s, chunk, 64, MSG_NOSIGNAL | MSG_DONTWAIT);
      continue;
    }
    p->err = n == 0 ? 0 : errno;
    break;
  }
  close(s);
  __atomic_store_n(&p->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

TEST(close_while_peer_sends) {
  loop_up();
  const size_t total = 8u << 20;
  unsigned char *data = make_pattern(total);
  static struct raw_peer peer;
  peer.buf = malloc(total + 65536);
  int port = 0;
  peer.lsock = loopback_socket(SOCK_STREAM, &port);
  ASSERT_EQ(listen(peer.lsock, 1), 0);
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, raw_peer_main, &peer), 0);
  struct conn c = {0};
  aloop_transport_t *t = connect_to(port, &c);
  OK(aloop_transport_write(t, data, total));
  OK(aloop_transport_close(t));
  RUN_UNTIL(c.lost == 1 && __atomic_load_n(&peer.done, __ATOMIC_SEQ_CST));
  pthread_join(th, NULL);
  close(peer.lsock);
  ASSERT_EQ(peer.got, total);
  ASSERT(memcmp(peer.buf, data, total) == 0);
  free(peer.buf);
  free(data);
  run_for(0.01);
  ASSERT_EQ(c.frees, 1);
}

TEST(peername_sockname) {
  static struct server_state ss;
  start_server(&ss, NULL);
  struct conn c = {0};
  aloop_transport_t *t = connect_to(ss.port, &c);
  RUN_UNTIL(ss.accepted == 1 && ss.conns[0].made == 1);
  char host[64];
  int cport = 0, port = 0;
  OK(aloop_transport_get_sockname(t, host, sizeof host, &cport));
  ASSERT_STR_EQ(host, "127.0.0.1");
  ASSERT_CMP(cport, >, 0);
  OK(aloop_transport_get_peername(t, host, sizeof host, &port));
  ASSERT_STR_EQ(host, "127.0.0.1");
  ASSERT_EQ(port, ss.port);
  /* the server's side sees the mirror image */
  OK(aloop_transport_get_peername(ss.conns[0].t, host, sizeof host, &port));
  ASSERT_STR_EQ(host, "127.0.0.1");
  ASSERT_EQ(port, cport);
  OK(aloop_transport_get_sockname(ss.conns[0].t, host, sizeof host, &port));
  ASSERT_EQ(port, ss.port);
  /* a host buffer that is too small */
  char tiny[4];
  ASSERT_EQ(aloop_transport_get_peername(t, tiny, sizeof tiny, &port),
            ALOOP_ENOSPACE);
  ASSERT_EQ(aloop_server_sockname(ss.server, 0, tiny, sizeof tiny, &port),
            ALOOP_ENOSPACE);
  /* the fd is the socket */
  int fd = aloop_transport_get_fd(t);
  ASSERT_CMP(fd, >=, 0);
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  ASSERT_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  ASSERT_EQ(ntohs(a.sin_port), cport);
  int sfd = aloop_server_socket_fd(ss.server, 0);
  ASSERT_CMP(sfd, >=, 0);
  len = sizeof a;
  ASSERT_EQ(getsockname(sfd, (struct sockaddr *)&a, &len), 0);
  ASSERT_EQ(ntohs(a.sin_port), ss.port);
  ASSERT_EQ(aloop_server_socket_count(ss.server), 1);
  /* protocol userdata */
  void *ud = NULL;
  OK(aloop_transport_get_protocol(t, &ud));
  ASSERT_PTR_EQ(ud, &c);
  OK(aloop_transport_close(t));
  RUN_UNTIL(c.lost == 1);
  close_server(&ss);
}

TEST(server_close_and_wait_closed) {
  static struct server_state ss;
  start_server(&ss, NULL);
  struct conn c = {0};
  aloop_transport_t *t = connect_to(ss.port, &c);
  RUN_UNTIL(ss.accepted == 1 && ss.conns[0].made == 1);
  ASSERT_EQ(aloop_server_is_serving(ss.server), 1);
  aloop_future_t *wc = NULL;
  OK(aloop_server_wait_closed(ss.server, &wc));
  OK(aloop_server_close(ss.server));
  ASSERT_EQ(aloop_server_is_serving(ss.server), 0);
  OK(aloop_server_close(ss.server)); /* idempotent */
  /* the loop refuses to close while a server or transports live */
  ASSERT_EQ(aloop_loop_close(loop), ALOOP_EBUSY);
  /* a new connection is refused now */
  struct conn c2 = {0};
  aloop_protocol_t p = protocol();
  aloop_future_t *f = NULL;
  OK(aloop_create_connection(loop, "127.0.0.1", ss.port, &p, &c2, conn_free,
                             NULL, &f));
  OK(aloop_loop_run_until_complete(loop, f));
  ASSERT_EQ(aloop_future_exception(f), ALOOP_ECONNREFUSED);
  ASSERT_EQ(c2.made, 0);
  OK(aloop_future_free(f));
  /* the accepted connection is still open: wait_closed waits for it */
  run_for(0.05);
  ASSERT_EQ(aloop_future_done(wc), 0);
  ASSERT_EQ(ss.conns[0].lost, 0);
  OK(aloop_transport_write(ss.conns[0].t, "still", 5));
  RUN_UNTIL(c.len == 5);
  OK(aloop_transport_close(t));
  OK(aloop_loop_run_until_complete(loop, wc));
  ASSERT_EQ(aloop_future_done(wc), 1);
  ASSERT_EQ(aloop_future_exception(wc), 0);
  ASSERT_EQ(ss.conns[0].lost, 1);
  OK(aloop_future_free(wc));
  OK(aloop_server_free(ss.server));
  ASSERT_EQ(aloop_server_is_serving(ss.server), ALOOP_EBADF);
  run_for(0.01);
  ASSERT_EQ(ss.frees, 1);
  RUN_UNTIL(c.lost == 1);
  run_for(0.01);
  ASSERT_EQ(aloop_loop_close(loop), 0);
  free(c.buf);
}

TEST(start_serving_later) {
  static struct server_state ss;
  aloop_server_options_t o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.backlog = 10;
  o.reuse_address = -1;
  o.start_serving = 0;
  start_server(&ss, &o);
  ASSERT_EQ(aloop_server_is_serving(ss.server), 0);
  OK(aloop_server_start_serving(ss.server));
  ASSERT_EQ(aloop_server_is_serving(ss.server), 1);
  struct conn c = {0};
  aloop_transport_t *t = connect_to(ss.port, &c);
  RUN_UNTIL(ss.accepted == 1);
  OK(aloop_transport_close(t));
  RUN_UNTIL(c.lost == 1);
  close_server(&ss);
}

TEST(rejected_connection_is_closed) {
  static struct server_state ss;
  ss.reject = 1;
  start_server(&ss, NULL);
  struct conn c = {0};
  connect_to(ss.port, &c);
  RUN_UNTIL(c.lost == 1);
  ASSERT_EQ(ss.accepted, 1);
  ASSERT_EQ(c.len, 0);
  close_server(&ss);
}

TEST(buffered_protocol) {
  static struct server_state ss;
  ss.buffered = 1;
  start_server(&ss, NULL);
  struct conn c = {0};
  aloop_transport_t *t = connect_to(ss.port, &c);
  const size_t total = 100000;
  unsigned char *data = make_pattern(total);
  OK(aloop_transport_write(t, data, total));
  RUN_UNTIL(c.len == total);
  ASSERT(memcmp(c.buf, data, total) == 0);
  ASSERT_EQ(ss.conns[0].len, total);
  ASSERT_CMP(get_buffer_calls, >=, (int)(total / sizeof small_buf));
  OK(aloop_transport_close(t));
  RUN_UNTIL(c.lost == 1 && ss.conns[0].lost == 1);
  free(data);
  close_server(&ss);
  free(c.buf);
}

TEST(set_protocol_switches) {
  static struct server_state ss;
  start_server(&ss, NULL);
  struct conn c = {0}, c2 = {0};
  aloop_transport_t *t = connect_to(ss.port, &c);
  RUN_UNTIL(ss.accepted == 1 && ss.conns[0].made == 1);
  aloop_protocol_t p = protocol();
  c2.made = 1;
  c2.t = t;
  OK(aloop_transport_set_protocol(t, &p, &c2, conn_free));
  ASSERT_EQ(c.frees, 1); /* the previous userdata was dropped */
  void *ud = NULL;
  OK(aloop_transport_get_protocol(t, &ud));
  ASSERT_PTR_EQ(ud, &c2);
  OK(aloop_transport_write(ss.conns[0].t, "to-c2", 5));
  RUN_UNTIL(c2.len == 5);
  ASSERT_EQ(c.len, 0);
  OK(aloop_transport_close(t));
  RUN_UNTIL(c2.lost == 1);
  ASSERT_EQ(c.lost, 0);
  run_for(0.01);
  ASSERT_EQ(c2.frees, 1);
  ASSERT_EQ(c.frees, 1);
  close_server(&ss);
  free(c.buf);
  free(c2.buf);
}

TEST(many_connections) {
  static struct server_state ss;
  ss.proto.echo = 1;
  start_server(&ss, NULL);
  enum { N = 10 };
  static struct conn cs[N];
  aloop_transport_t *ts[N];
  for (int i = 0; i < N; i++)
    ts[i] = connect_to(ss.port, &cs[i]);
  for (int round = 0; round < 50; round++) {
    char msg[32];
    for (int i = 0; i < N; i++) {
      int n = snprintf(msg, sizeof msg, "[%d:%d]", i, round);
      OK(aloop_transport_write(ts[i], msg, (size_t)n));
    }
  }
  for (int i = 0; i < N; i++) {
    char expect[2048];
    size_t n = 0;
    for (int round = 0; round < 50; round++)
      n += (size_t)snprintf(expect + n, sizeof expect - n, "[%d:%d]", i, round);
    RUN_UNTIL(cs[i].len >= n);
    ASSERT_EQ(cs[i].len, n);
    ASSERT(memcmp(cs[i].buf, expect, n) == 0);
  }
  for (int i = 0; i < N; i++)
    OK(aloop_transport_close(ts[i]));
  for (int i = 0; i < N; i++)
    RUN_UNTIL(cs[i].lost == 1);
  close_server(&ss);
}
