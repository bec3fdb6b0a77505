/*
 * load_signals - what loading libasyncloop does to a C host's signal
 * handlers (the "Signals" section of include/asyncloop.h), checked in a
 * process that installs its own handlers first and then dlopen()s the
 * library named by $ASYNCLOOP_LIBRARY. Not linked with the library (a linked
 * library is loaded before main runs), so not a test-<area>.c of test.h.
 *
 * Checks, in order:
 *  - loading replaces exactly the handlers of SIGBUS, SIGFPE, SIGSEGV and
 *    SIGPIPE, and no other disposition (SIGINT ignored stays ignored,
 *    SIGUSR1 keeps the host's handler, SIGCHLD its default): SIGURG too is
 *    given back to the host's handler once the runtime has started (it also
 *    replaces SIGURG when GODEBUG=asyncpreemptoff=0 turns preemption on);
 *  - the library forwards to the host's previous handlers what does not come
 *    from Go code: SIGPIPE raised by the host's own write() to a closed pipe;
 *  - SIGURG reaches the host's handler (the library is built with
 *    asynchronous preemption off), unless GODEBUG=asyncpreemptoff=0 was set
 *    when the library loaded: then the runtime takes it for preemption and
 *    forwards none;
 *  - aloop_add_signal_handler() takes a signal and removing it gives the
 *    host's handler back, SIGURG included.
 * Exits 0 and prints "ok ..." when all hold.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asyncloop.h"

static volatile sig_atomic_t got_urg, got_pipe, got_usr1;
static void on_urg(int s) { got_urg++; }
static void on_pipe(int s) { got_pipe++; }
static void on_usr1(int s) { got_usr1++; }

static int failures;
#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                     \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static void install(int sig, void (*fn)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sa.sa_flags = SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

static void *handler_of(int sig) {
  struct sigaction sa;
  if (sigaction(sig, NULL, &sa) != 0)
    return (void *)-1;
  return (sa.sa_flags & SA_SIGINFO) ? (void *)sa.sa_sigaction : (void *)sa.sa_handler;
}

static void noop_cb(aloop_loop_t *loop, int signum, void *ud) {}

int main(void) {
  const char *path = getenv("ASYNCLOOP_LIBRARY");
  if (path == NULL) {
    fprintf(stderr, "load_signals: set ASYNCLOOP_LIBRARY\n");
    return 2;
  }
  install(SIGURG, on_urg);
  install(SIGPIPE, on_pipe);
  install(SIGUSR1, on_usr1);
  signal(SIGINT, SIG_IGN);
  void *before[NSIG];
  for (int s = 1; s < NSIG; s++)
    before[s] = handler_of(s);

  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    fprintf(stderr, "load_signals: %s\n", dlerror());
    return 1;
  }
  unsigned (*version)(void) = (unsigned (*)(void))dlsym(lib, "aloop_version");
  CHECK(version != NULL && (version() >> 16) == ALOOP_VERSION_MAJOR, "aloop_version");
  /* aloop_version is C; the first call of a Go export waits until the
   * library's runtime has started (and given SIGURG back). */
  int (*last_error)(char *, size_t) = (int (*)(char *, size_t))dlsym(lib, "aloop_last_error");
  char errbuf[64];
  CHECK(last_error != NULL && last_error(errbuf, sizeof errbuf) >= 0, "aloop_last_error");
  const char *godebug = getenv("GODEBUG");
  int forwarded = godebug == NULL || strstr(godebug, "asyncpreemptoff=0") == NULL;

  char changed[256] = "";
  for (int s = 1; s < NSIG; s++) {
    int expected = s == SIGBUS || s == SIGFPE || s == SIGSEGV || s == SIGPIPE || (s == SIGURG && !forwarded);
    void *now = handler_of(s);
    if (now != before[s])
      snprintf(changed + strlen(changed), sizeof changed - strlen(changed), " %d", s);
    CHECK((now != before[s]) == expected, "signal %d (%s): handler %s", s, strsignal(s),
          expected ? "not replaced by the library" : "changed by loading the library");
  }
  CHECK(handler_of(SIGINT) == (void *)SIG_IGN, "SIGINT no longer ignored");
  CHECK(handler_of(SIGUSR1) == (void *)on_usr1, "SIGUSR1 lost the host's handler");

  /* Forwarding of what the host itself raises. */
  int p[2];
  CHECK(pipe(p) == 0, "pipe");
  close(p[0]);
  errno = 0;
  CHECK(write(p[1], "x", 1) == -1 && errno == EPIPE, "write to a closed pipe: %s", strerror(errno));
  close(p[1]);
  kill(getpid(), SIGUSR1);
  for (int i = 0; i < 100 && !(got_pipe && got_usr1); i++)
    usleep(10000);

  /* SIGURG, once the runtime has settled. */
  CHECK(!forwarded || handler_of(SIGURG) == (void *)on_urg, "SIGURG not given back to the host");
  usleep(200000);
  got_urg = 0;
  for (int i = 0; i < 10; i++) {
    if (i % 2)
      kill(getpid(), SIGURG);
    else
      pthread_kill(pthread_self(), SIGURG);
    usleep(2000);
  }
  usleep(20000);
  if (forwarded)
    CHECK(got_urg == 10, "the host's SIGURG handler ran %d of 10 times; the header says the library "
          "forwards SIGURG (built with asyncpreemptoff=1; update the Signals section of asyncloop.h)",
          (int)got_urg);
  else
    CHECK(got_urg == 0, "GODEBUG=asyncpreemptoff=0: the host's SIGURG handler ran %d of 10 times; "
          "the header says the runtime takes SIGURG then", (int)got_urg);
  CHECK(got_pipe == 1, "the host's SIGPIPE handler ran %d times, want 1", (int)got_pipe);
  CHECK(got_usr1 == 1, "the host's SIGUSR1 handler ran %d times, want 1", (int)got_usr1);

  /* aloop_add_signal_handler takes SIGUSR1 while registered. */
  int (*loop_new)(aloop_loop_t **) = (int (*)(aloop_loop_t **))dlsym(lib, "aloop_loop_new");
  int (*loop_free)(aloop_loop_t *) = (int (*)(aloop_loop_t *))dlsym(lib, "aloop_loop_free");
  int (*add)(aloop_loop_t *, int, aloop_signal_cb, void *, aloop_free_cb) =
      (int (*)(aloop_loop_t *, int, aloop_signal_cb, void *, aloop_free_cb))dlsym(
          lib, "aloop_add_signal_handler");
  int (*remove)(aloop_loop_t *, int) =
      (int (*)(aloop_loop_t *, int))dlsym(lib, "aloop_remove_signal_handler");
  aloop_loop_t *loop = NULL;
  CHECK(loop_new(&loop) == 0, "aloop_loop_new");
  CHECK(add(loop, SIGUSR1, noop_cb, NULL, NULL) == 0, "aloop_add_signal_handler");
  CHECK(handler_of(SIGUSR1) != (void *)on_usr1, "aloop_add_signal_handler left SIGUSR1 alone");
  CHECK(remove(loop, SIGUSR1) == 1, "aloop_remove_signal_handler");
  CHECK(handler_of(SIGUSR1) == (void *)on_usr1, "SIGUSR1 not given back to the host");
  /* And SIGURG, which the library had given back at load. */
  CHECK(add(loop, SIGURG, noop_cb, NULL, NULL) == 0, "aloop_add_signal_handler(SIGURG)");
  CHECK(handler_of(SIGURG) != (void *)on_urg, "aloop_add_signal_handler left SIGURG to the host");
  CHECK(remove(loop, SIGURG) == 1, "aloop_remove_signal_handler(SIGURG)");
  CHECK(!forwarded || handler_of(SIGURG) == (void *)on_urg, "SIGURG not given back after its handler was removed");
  CHECK(add(loop, SIGURG, noop_cb, NULL, NULL) == 0, "aloop_add_signal_handler(SIGURG) again");
  CHECK(loop_free(loop) == 0, "aloop_loop_free");
  CHECK(!forwarded || handler_of(SIGURG) == (void *)on_urg, "SIGURG not given back when its loop was freed");
  loop = NULL;
  CHECK(loop_new(&loop) == 0, "aloop_loop_new");
  loop_free(loop);

  if (failures)
    return 1;
  printf("ok: loading replaced the handlers of signals%s only; SIGPIPE and SIGUSR1 reached the "
         "host's handlers, SIGURG %s\n", changed, forwarded ? "too" : "did not (asyncpreemptoff=0)");
  return 0;
}
