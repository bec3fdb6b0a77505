/*
 * test-lifecycle.c - who owns what, and when it is released: the ABI
 * defects the fuzz harness found (tests/fuzz/fuzz-abi.c), each over real
 * loopback sockets, pipes and processes, and aloop_loop_close_force.
 */
#include "test.h"
#include "helpers.h"

#include <dirent.h>

static size_t live(void) {
  size_t n = (size_t)-1;
  OK(aloop_live_handles(&n));
  return n;
}

/* (f) a bad handle is ALOOP_EBADF whatever the other arguments are. */
TEST(result_addr_checks_the_handle_first) {
  char host[8];
  int port = 0;
  ASSERT_EQ(aloop_future_result_addr(NULL, host, 0, &port), ALOOP_EBADF);
  ASSERT_EQ(aloop_future_result_addr(NULL, host, 0, NULL), ALOOP_EBADF);
  loop_up();
  aloop_future_t *f = NULL;
  OK(aloop_future_new(loop, &f));
  OK(aloop_future_free(f)); /* stale now */
  ASSERT_EQ(aloop_future_result_addr(f, host, 0, &port), ALOOP_EBADF);
  ASSERT_EQ(aloop_future_result_addr(f, NULL, 0, NULL), ALOOP_EBADF);
  /* a live handle: the arguments decide */
  OK(aloop_future_new(loop, &f));
  ASSERT_EQ(aloop_future_result_addr(f, host, 0, &port), ALOOP_EINVAL);
  OK(aloop_future_free(f));
  OK(aloop_loop_close(loop));
  OK(aloop_loop_free(loop));
}
