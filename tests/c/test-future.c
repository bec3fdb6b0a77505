/*
 * test-future.c - futures: result, exception, cancel, done-callbacks (order,
 * scheduling, removal, free_cb), and the errors of misuse.
 */
#include "test.h"

#include <pthread.h>

static aloop_loop_t *loop;

static aloop_future_t *new_future(void) {
  aloop_future_t *f = NULL;
  if (!loop)
    OK(aloop_loop_new(&loop));
  OK(aloop_future_new(loop, &f));
  ASSERT(f != NULL);
  return f;
}

/* ---- done-callback recording ---------------------------------------------- */

static int order[64];
static int norder;
static aloop_future_t *seen_future[64];
static int seen_result_rc[64];

static void done_cb(aloop_future_t *f, void *ud) {
  ASSERT_CMP(norder, <, 64);
  seen_future[norder] = f;
  seen_result_rc[norder] = aloop_future_exception(f);
  order[norder++] = (int)(intptr_t)ud;
}

static void other_done_cb(aloop_future_t *f, void *ud) {
  done_cb(f, (void *)((intptr_t)ud + 1000));
}

struct counted {
  int id;
  int frees;
};

static void counted_cb(aloop_future_t *f, void *ud) {
  struct counted *c = ud;
  ASSERT_EQ(c->frees, 0);
  done_cb(f, (void *)(intptr_t)c->id);
}

static void counted_free(void *ud) { ((struct counted *)ud)->frees++; }

/* --------------------------------------------------------------------------- */

TEST(result) {
  aloop_future_t *f = new_future();
  void *r = (void *)1;
  ASSERT_EQ(aloop_future_done(f), 0);
  ASSERT_EQ(aloop_future_cancelled(f), 0);
  /* not done yet */
  ASSERT_EQ(aloop_future_result(f, &r), ALOOP_ESTATE);
  ASSERT_EQ(aloop_future_exception(f), ALOOP_ESTATE);
  OK(aloop_future_set_result(f, (void *)0xabcdef));
  ASSERT_EQ(aloop_future_done(f), 1);
  ASSERT_EQ(aloop_future_cancelled(f), 0);
  ASSERT_EQ(aloop_future_result(f, &r), 0);
  ASSERT_PTR_EQ(r, (void *)0xabcdef);
  ASSERT_EQ(aloop_future_exception(f), 0);
  /* set twice */
  ASSERT_EQ(aloop_future_set_result(f, (void *)2), ALOOP_ESTATE);
  ASSERT_EQ(aloop_future_set_exception(f, ALOOP_EIO, "late"), ALOOP_ESTATE);
  ASSERT_EQ(aloop_future_cancel(f), 0); /* already done */
  ASSERT_EQ(aloop_future_cancelled(f), 0);
  OK(aloop_future_result(f, &r));
  ASSERT_PTR_EQ(r, (void *)0xabcdef);
  /* a pointer result is not a transport or a server */
  aloop_transport_t *t = NULL;
  aloop_server_t *s = NULL;
  ASSERT_EQ(aloop_future_result_transport(f, &t), ALOOP_EINVAL);
  ASSERT_EQ(aloop_future_result_server(f, &s), ALOOP_EINVAL);
  /* a NULL result is a result */
  aloop_future_t *g = new_future();
  OK(aloop_future_set_result(g, NULL));
  r = (void *)1;
  ASSERT_EQ(aloop_future_result(g, &r), 0);
  ASSERT_PTR_EQ(r, NULL);
  OK(aloop_future_free(f));
  OK(aloop_future_free(g));
}

TEST(exception) {
  aloop_future_t *f = new_future();
  void *r = NULL;
  char msg[64];
  OK(aloop_future_set_exception(f, ALOOP_ECONNRESET, "peer went away"));
  ASSERT_EQ(aloop_future_done(f), 1);
  ASSERT_EQ(aloop_future_cancelled(f), 0);
  ASSERT_EQ(aloop_future_result(f, &r), ALOOP_ECONNRESET);
  ASSERT_EQ(aloop_future_exception(f), ALOOP_ECONNRESET);
  ASSERT_EQ(aloop_future_error_message(f, msg, sizeof msg),
            strlen("peer went away"));
  ASSERT_STR_EQ(msg, "peer went away");
  /* truncated copy, full length returned */
  char small[5];
  ASSERT_EQ(aloop_future_error_message(f, small, sizeof small),
            strlen("peer went away"));
  ASSERT_STR_EQ(small, "peer");
  ASSERT_EQ(aloop_future_set_exception(f, ALOOP_EIO, "again"), ALOOP_ESTATE);
  ASSERT_EQ(aloop_future_set_result(f, NULL), ALOOP_ESTATE);
  ASSERT_EQ(aloop_future_exception(f), ALOOP_ECONNRESET);
  /* a library-specific code, no message */
  aloop_future_t *g = new_future();
  OK(aloop_future_set_exception(g, ALOOP_ERESOLVE, NULL));
  ASSERT_EQ(aloop_future_result(g, &r), ALOOP_ERESOLVE);
  ASSERT_CMP(aloop_future_error_message(g, msg, sizeof msg), >=, 0);
  /* a future that succeeded has no message */
  aloop_future_t *h = new_future();
  OK(aloop_future_set_result(h, NULL));
  ASSERT_EQ(aloop_future_error_message(h, msg, sizeof msg), 0);
  OK(aloop_future_free(f));
  OK(aloop_future_free(g));
  OK(aloop_future_free(h));
}

TEST(cancel) {
  aloop_future_t *f = new_future();
  void *r = NULL;
  OK(aloop_future_add_done_callback(f, done_cb, (void *)1, NULL));
  ASSERT_EQ(aloop_future_cancel(f), 1);
  ASSERT_EQ(aloop_future_cancelled(f), 1);
  ASSERT_EQ(aloop_future_done(f), 1);
  ASSERT_EQ(aloop_future_result(f, &r), ALOOP_ECANCELED);
  ASSERT_EQ(aloop_future_exception(f), ALOOP_ECANCELED);
  ASSERT_EQ(aloop_future_cancel(f), 0);
  ASSERT_EQ(aloop_future_set_result(f, NULL), ALOOP_ESTATE);
  ASSERT_EQ(aloop_future_set_exception(f, ALOOP_EIO, NULL), ALOOP_ESTATE);
  /* the done-callback is scheduled, not called inside cancel */
  ASSERT_EQ(norder, 0);
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(norder, 1);
  ASSERT_EQ(order[0], 1);
  ASSERT_EQ(seen_result_rc[0], ALOOP_ECANCELED);
  OK(aloop_future_free(f));
}

TEST(done_callbacks_order) {
  aloop_future_t *f = new_future();
  struct counted c[5] = {{1, 0}, {2, 0}, {3, 0}, {4, 0}, {5, 0}};
  for (int i = 0; i < 5; i++)
    OK(aloop_future_add_done_callback(f, counted_cb, &c[i], counted_free));
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(norder, 0); /* not done: nothing runs */
  OK(aloop_future_set_result(f, (void *)7));
  ASSERT_EQ(norder, 0); /* scheduled with call_soon, not called at once */
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(norder, 5);
  for (int i = 0; i < 5; i++) {
    ASSERT_EQ(order[i], i + 1);
    ASSERT_PTR_EQ(seen_future[i], f);
    ASSERT_EQ(seen_result_rc[i], 0);
    ASSERT_EQ(c[i].frees, 1);
  }
  /* added after done: scheduled soon, not called inside add */
  struct counted late = {6, 0};
  OK(aloop_future_add_done_callback(f, counted_cb, &late, counted_free));
  ASSERT_EQ(norder, 5);
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(norder, 6);
  ASSERT_EQ(order[5], 6);
  ASSERT_EQ(late.frees, 1);
  /* running again runs nothing more */
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(norder, 6);
  OK(aloop_future_free(f));
  for (int i = 0; i < 5; i++)
    ASSERT_EQ(c[i].frees, 1);
}

TEST(remove_done_callback) {
  aloop_future_t *f = new_future();
  /* (done_cb, A) twice, (done_cb, B), (other_done_cb, A) */
  OK(aloop_future_add_done_callback(f, done_cb, (void *)10, NULL));
  OK(aloop_future_add_done_callback(f, done_cb, (void *)20, NULL));
  OK(aloop_future_add_done_callback(f, done_cb, (void *)10, NULL));
  OK(aloop_future_add_done_callback(f, other_done_cb, (void *)10, NULL));
  ASSERT_EQ(aloop_future_remove_done_callback(f, done_cb, (void *)10), 2);
  ASSERT_EQ(aloop_future_remove_done_callback(f, done_cb, (void *)10), 0);
  ASSERT_EQ(aloop_future_remove_done_callback(f, done_cb, (void *)99), 0);
  OK(aloop_future_set_result(f, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(norder, 2);
  ASSERT_EQ(order[0], 20);
  ASSERT_EQ(order[1], 1010);

  /* removed callbacks have their userdata dropped (free_cb once) */
  aloop_future_t *g = new_future();
  struct counted ca = {1, 0}, cb = {2, 0};
  OK(aloop_future_add_done_callback(g, counted_cb, &ca, counted_free));
  OK(aloop_future_add_done_callback(g, counted_cb, &cb, counted_free));
  ASSERT_EQ(aloop_future_remove_done_callback(g, counted_cb, &ca), 1);
  ASSERT_EQ(ca.frees, 1);
  ASSERT_EQ(cb.frees, 0);
  OK(aloop_future_cancel(g));
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(norder, 3);
  ASSERT_EQ(order[2], 2);
  ASSERT_EQ(ca.frees, 1);
  ASSERT_EQ(cb.frees, 1);
  OK(aloop_future_free(f));
  OK(aloop_future_free(g));
}

/* The caller may release its reference before the done-callbacks run; they
 * still run, and the future is readable inside them. */
static void read_in_cb(aloop_future_t *f, void *ud) {
  void *r = NULL;
  ASSERT_EQ(aloop_future_done(f), 1);
  ASSERT_EQ(aloop_future_result(f, &r), 0);
  ASSERT_PTR_EQ(r, (void *)0x77);
  *(int *)ud += 1;
}

TEST(free_before_callbacks_run) {
  aloop_future_t *f = new_future();
  int ran = 0;
  OK(aloop_future_add_done_callback(f, read_in_cb, &ran, NULL));
  OK(aloop_future_set_result(f, (void *)0x77));
  OK(aloop_future_free(f));
  OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  ASSERT_EQ(ran, 1);
}

/* A pending future's callbacks are dropped (free_cb) when the loop closes. */
TEST(pending_callbacks_dropped_on_close) {
  aloop_future_t *f = new_future();
  struct counted c = {1, 0};
  OK(aloop_future_add_done_callback(f, counted_cb, &c, counted_free));
  OK(aloop_future_set_result(f, NULL));
  /* scheduled, not run: closing the loop drops it */
  OK(aloop_loop_close(loop));
  ASSERT_EQ(norder, 0);
  ASSERT_EQ(c.frees, 1);
  OK(aloop_future_free(f));
  OK(aloop_loop_free(loop));
}

static void set_result_later(aloop_loop_t *l, void *ud) {
  OK(aloop_future_set_result((aloop_future_t *)ud, (void *)0x55));
}

TEST(run_until_complete_runs_done_callbacks) {
  aloop_future_t *f = new_future();
  OK(aloop_future_add_done_callback(f, done_cb, (void *)1, NULL));
  OK(aloop_call_later(loop, 0.01, set_result_later, f, NULL, NULL));
  OK(aloop_loop_run_until_complete(loop, f));
  ASSERT_EQ(aloop_future_done(f), 1);
  /* asyncio: run_until_complete stops from a done-callback, so callbacks
   * added before it ran within the same run */
  ASSERT_EQ(norder, 1);
  ASSERT_EQ(order[0], 1);
  OK(aloop_future_free(f));
}
