/*
 * test.h - the tiny test harness of asyncloop's C suite.
 *
 * Each tests/c/test-<area>.c is one executable. A test is written as
 *
 *     TEST(name) { ... ASSERT_EQ(aloop_loop_new(&loop), ALOOP_OK); ... }
 *
 * (TEST( must start a line: CMake reads the names from the source to
 * register one CTest entry per test). The executable runs
 *   - `test-x NAME`   : the test NAME in this process (what CTest does);
 *   - `test-x --list` : prints the test names;
 *   - `test-x`        : every test, each in its own child process.
 * A failed assertion prints file:line and the values, then exits 1.
 */
#ifndef ALOOP_TEST_H
#define ALOOP_TEST_H

#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "asyncloop.h"

typedef void (*test_fn)(void);
struct test_entry {
  const char *name;
  test_fn fn;
};

#define TEST_MAX 256
static struct test_entry test_table_[TEST_MAX];
static int test_count_;
static const char *test_current_ = "?";

static void test_register_(const char *name, test_fn fn) {
  if (test_count_ >= TEST_MAX) {
    fprintf(stderr, "too many tests\n");
    _exit(2);
  }
  test_table_[test_count_].name = name;
  test_table_[test_count_].fn = fn;
  test_count_++;
}

#define TEST(name)                                                             \
  static void test_##name(void);                                               \
  __attribute__((constructor)) static void test_register_##name(void) {        \
    test_register_(#name, test_##name);                                        \
  }                                                                            \
  static void test_##name(void)

/* ---- failing ------------------------------------------------------------ */

__attribute__((noreturn, format(printf, 3, 4))) static void
test_fail_(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "FAIL %s: %s:%d: ", test_current_, file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stdout);
  fflush(stderr);
  _exit(1);
}

#define FAIL(...) test_fail_(__FILE__, __LINE__, __VA_ARGS__)

#define ASSERT(cond)                                                           \
  do {                                                                         \
    if (!(cond))                                                               \
      FAIL("assertion failed: %s", #cond);                                     \
  } while (0)

/* Integers (return codes, counts). Prints ALOOP_* names for negative values. */
#define ASSERT_EQ(a, b)                                                        \
  do {                                                                         \
    long long a_ = (long long)(a), b_ = (long long)(b);                        \
    if (a_ != b_)                                                              \
      FAIL("%s == %s: got %lld (%s), expected %lld (%s)", #a, #b, a_,         \
           test_code_name_(a_), b_, test_code_name_(b_));                      \
  } while (0)

#define ASSERT_NE(a, b)                                                        \
  do {                                                                         \
    long long a_ = (long long)(a), b_ = (long long)(b);                        \
    if (a_ == b_)                                                              \
      FAIL("%s != %s: both are %lld", #a, #b, a_);                             \
  } while (0)

#define ASSERT_CMP(a, op, b)                                                   \
  do {                                                                         \
    long long a_ = (long long)(a), b_ = (long long)(b);                        \
    if (!(a_ op b_))                                                           \
      FAIL("%s %s %s: got %lld vs %lld", #a, #op, #b, a_, b_);                 \
  } while (0)

#define ASSERT_DBL(a, op, b)                                                   \
  do {                                                                         \
    double a_ = (double)(a), b_ = (double)(b);                                 \
    if (!(a_ op b_))                                                           \
      FAIL("%s %s %s: got %.9f vs %.9f", #a, #op, #b, a_, b_);                 \
  } while (0)

#define ASSERT_PTR_EQ(a, b)                                                    \
  do {                                                                         \
    const void *a_ = (const void *)(a), *b_ = (const void *)(b);               \
    if (a_ != b_)                                                              \
      FAIL("%s == %s: got %p, expected %p", #a, #b, a_, b_);                   \
  } while (0)

#define ASSERT_STR_EQ(a, b)                                                    \
  do {                                                                         \
    const char *a_ = (a), *b_ = (b);                                           \
    if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                       \
      FAIL("%s == %s: got \"%s\", expected \"%s\"", #a, #b,                   \
           a_ ? a_ : "(null)", b_ ? b_ : "(null)");                            \
  } while (0)

/* A call that must succeed (return >= 0); prints aloop_last_error otherwise. */
#define OK(call)                                                               \
  do {                                                                         \
    int rc_ = (call);                                                          \
    if (rc_ < 0) {                                                             \
      char msg_[512] = "";                                                     \
      aloop_last_error(msg_, sizeof msg_);                                     \
      FAIL("%s failed: %d (%s): %s", #call, rc_, aloop_err_name(rc_), msg_);   \
    }                                                                          \
  } while (0)

static const char *test_code_name_(long long v) {
  if (v > 0 || v < INT32_MIN)
    return "";
  return aloop_err_name((int)v);
}

/* ---- helpers -------------------------------------------------------------- */

/* CLOCK_MONOTONIC in seconds (the loop's clock). */
static inline double test_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void test_sleep(double seconds) {
  struct timespec ts;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* A file's contents, NUL-terminated (malloc'ed); its length in *len unless
 * len is NULL. */
static inline char *test_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    FAIL("cannot open %s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  ASSERT(s != NULL);
  ASSERT_EQ(fread(s, 1, (size_t)n, f), n);
  s[n] = 0;
  fclose(f);
  if (len)
    *len = (size_t)n;
  return s;
}

/* A free_cb that counts into an int the userdata points at. */
static inline void test_count_free(void *userdata) {
  if (userdata)
    (*(int *)userdata)++;
}

/* A callback / free_cb that must never run. */
static inline void test_never_cb(aloop_loop_t *loop, void *userdata) {
  (void)loop;
  (void)userdata;
  FAIL("a callback ran that must never run");
}

/* Seconds each test may take before SIGALRM kills it (CTest has its own
 * TIMEOUT too; this one also covers manual runs). */
#ifndef TEST_ALARM_SECONDS
#define TEST_ALARM_SECONDS 60
#endif

/* ---- main ------------------------------------------------------------------- */

static int test_run_one_(const char *name) {
  for (int i = 0; i < test_count_; i++) {
    if (strcmp(test_table_[i].name, name) == 0) {
      test_current_ = test_table_[i].name;
      alarm(TEST_ALARM_SECONDS);
      test_table_[i].fn();
      alarm(0);
      printf("ok %s\n", name);
      fflush(stdout);
      return 0;
    }
  }
  fprintf(stderr, "no test named '%s' (try --list)\n", name);
  return 2;
}

extern char **environ;

static int test_run_all_(const char *self) {
  int failed = 0;
  for (int i = 0; i < test_count_; i++) {
    char *argv[] = {(char *)self, (char *)test_table_[i].name, NULL};
    pid_t pid;
    int status = 0;
    if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ) != 0) {
      perror("posix_spawn");
      return 2;
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
      failed++;
      if (WIFSIGNALED(status))
        fprintf(stderr, "FAIL %s (signal %d)\n", test_table_[i].name,
                WTERMSIG(status));
      else
        fprintf(stderr, "FAIL %s (exit %d)\n", test_table_[i].name,
                WEXITSTATUS(status));
    }
  }
  printf("%d passed, %d failed\n", test_count_ - failed, failed);
  return failed ? 1 : 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 1 && strcmp(argv[1], "--list") == 0) {
    for (int i = 0; i < test_count_; i++)
      printf("%s\n", test_table_[i].name);
    return 0;
  }
  if (argc > 1)
    return test_run_one_(argv[1]);
  return test_run_all_(argv[0]);
}

#endif /* ALOOP_TEST_H */
