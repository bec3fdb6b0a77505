/* A C host with a Go plugin (examples/go-plugin, a Go library built with
 * -buildmode=c-shared that uses the Go binding over purego): the host has
 * libasyncloop (linked), dlopen()s the plugin, hands it its loop and runs
 * the loop; the plugin serves TCP echo on it. Two Go runtimes in one
 * process besides the host's C: the library's and the plugin's
 * (bindings/go/README.md, "Go plugins").
 *
 *   goplugin_host NAME   (ASYNCLOOP_GOPLUGIN overrides the plugin's path) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>

#include "test.h"

#include "../../examples/go-plugin/goplugin.h"

#ifndef ALOOP_GOPLUGIN_PATH
#define ALOOP_GOPLUGIN_PATH "libgoplugin.so"
#endif

static struct {
  plugin_start_fn start;
  plugin_stop_fn stop;
  plugin_ticks_fn ticks;
  plugin_gc_fn gc;
  plugin_panic_soon_fn panic_soon;
  plugin_error_fn error;
} P;

static void *sym(void *h, const char *name) {
  void *p = dlsym(h, name);
  if (p == NULL)
    FAIL("dlsym %s: %s", name, dlerror());
  return p;
}

/* Loads the plugin after the library (linked, so loaded at start). */
static void load_plugin(void) {
  const char *path = getenv("ASYNCLOOP_GOPLUGIN");
  if (path == NULL || *path == '\0')
    path = ALOOP_GOPLUGIN_PATH;
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL)
    FAIL("dlopen %s: %s", path, dlerror());
  P.start = (plugin_start_fn)sym(h, "plugin_start");
  P.stop = (plugin_stop_fn)sym(h, "plugin_stop");
  P.ticks = (plugin_ticks_fn)sym(h, "plugin_ticks");
  P.gc = (plugin_gc_fn)sym(h, "plugin_gc");
  P.panic_soon = (plugin_panic_soon_fn)sym(h, "plugin_panic_soon");
  P.error = (plugin_error_fn)sym(h, "plugin_error");
}

static int start(aloop_loop_t *loop) {
  int port = P.start(loop);
  if (port <= 0)
    FAIL("plugin_start: %d (%s)", port, P.error() ? P.error() : "?");
  return port;
}

/* ---- a blocking client on another thread ---------------------------------- */

enum { CHUNK = 16 << 10, CHUNKS = 32, CONNS = 3 };

struct client {
  aloop_loop_t *loop;
  int port;
  long long verified; /* bytes that came back equal */
  int gcs;            /* plugin collections run meanwhile */
  char err[160];
};

static int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static void *client_main(void *arg) {
  struct client *c = arg;
  static unsigned char out[CHUNK], in[CHUNK];
  for (int conn = 0; conn < CONNS && c->err[0] == 0; conn++) {
    int fd = connect_to(c->port);
    if (fd < 0) {
      snprintf(c->err, sizeof c->err, "connect: %s", strerror(errno));
      break;
    }
    for (int k = 0; k < CHUNKS && c->err[0] == 0; k++) {
      for (int i = 0; i < CHUNK; i++)
        out[i] = (unsigned char)(i * 7 + k * 13 + conn);
      for (size_t done = 0; done < CHUNK;) {
        ssize_t n = send(fd, out + done, CHUNK - done, MSG_NOSIGNAL);
        if (n <= 0) {
          snprintf(c->err, sizeof c->err, "send: %s", strerror(errno));
          break;
        }
        done += (size_t)n;
      }
      for (size_t got = 0; got < CHUNK && c->err[0] == 0;) {
        ssize_t n = recv(fd, in + got, CHUNK - got, 0);
        if (n <= 0) {
          snprintf(c->err, sizeof c->err, "recv after %zu bytes: %s", got,
                   n == 0 ? "end of file" : strerror(errno));
          break;
        }
        got += (size_t)n;
      }
      if (c->err[0] == 0 && memcmp(in, out, CHUNK) != 0)
        snprintf(c->err, sizeof c->err, "connection %d chunk %d differs", conn, k);
      if (c->err[0] == 0)
        c->verified += CHUNK;
      if (k % 8 == 0) /* the plugin's GC runs while the loop thread serves */
        c->gcs += P.gc(20);
    }
    close(fd);
  }
  aloop_loop_stop(c->loop); /* THREAD-SAFE */
  return NULL;
}

static void stop_cb(aloop_loop_t *loop, void *ud) {
  (void)ud;
  aloop_loop_stop(loop);
}

static int host_ticks;
static void host_tick(aloop_loop_t *loop, void *ud) {
  (void)ud;
  host_ticks++;
  aloop_call_later(loop, 0.005, host_tick, NULL, NULL, NULL);
}

/* The plugin serves echo on the host's loop while the host's own timer runs
 * on it and the plugin's garbage collector runs on another thread. */
TEST(echo_on_the_hosts_loop) {
  load_plugin();
  aloop_loop_t *loop;
  OK(aloop_loop_new(&loop));
  int port = start(loop);
  OK(aloop_call_later(loop, 0.005, host_tick, NULL, NULL, NULL));
  struct client c = {.loop = loop, .port = port};
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, client_main, &c), 0);
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  pthread_join(th, NULL);
  if (c.err[0])
    FAIL("client: %s", c.err);
  ASSERT_EQ(c.verified, (long long)CHUNK * CHUNKS * CONNS);
  ASSERT_CMP(c.gcs, >, 0);
  ASSERT_CMP(P.ticks(), >, 0);
  ASSERT_CMP(host_ticks, >, 0);
  /* Let the server finish the last connection's close. */
  OK(aloop_call_later(loop, 0.05, stop_cb, NULL, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  ASSERT_EQ(P.stop(), CHUNK * CHUNKS * CONNS);
  /* The server's close completes on the loop. */
  for (int i = 0; i < 10; i++)
    OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  OK(aloop_loop_free(loop));
}

/* The plugin's runtime preempts its own goroutines: SIGURG is its handler
 * (the library, loaded first, gave SIGURG back and does not preempt). */
TEST(plugin_gc_preempts) {
  load_plugin();
  ASSERT_CMP(P.gc(300), >, 0);
}

/* What the test above guards against: with the plugin runtime's SIGURG
 * taken away (here: ignored), a collection waits forever for a goroutine
 * that spins without function calls. Run in a child process, killed after
 * 3 s. */
TEST(plugin_gc_hangs_without_its_sigurg) {
  char *argv[] = {"goplugin_host", "_gc_sigurg_ignored", NULL};
  pid_t pid;
  ASSERT_EQ(posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ), 0);
  int status = 0;
  double deadline = test_now() + 3;
  pid_t r = 0;
  while ((r = waitpid(pid, &status, WNOHANG)) == 0 && test_now() < deadline)
    test_sleep(0.02);
  if (r == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return; /* hung, as expected */
  }
  FAIL("the child finished (status %d): the hang did not show", status);
}

TEST(_gc_sigurg_ignored) {
  load_plugin();
  signal(SIGURG, SIG_IGN);
  P.gc(300);
  printf("collections completed\n");
}

static char handler_msg[4096];
static int handler_calls, after_panic;

static void on_exception(aloop_loop_t *loop, const aloop_exception_context_t *ctx, void *ud) {
  (void)loop;
  (void)ud;
  handler_calls++;
  snprintf(handler_msg, sizeof handler_msg, "%s", ctx->message);
}

static void mark_after(aloop_loop_t *loop, void *ud) {
  (void)ud;
  after_panic++;
  aloop_loop_stop(loop);
}

/* A panic in a plugin callback reaches the host's exception handler and the
 * loop goes on. */
TEST(panic_reaches_the_exception_handler) {
  load_plugin();
  aloop_loop_t *loop;
  OK(aloop_loop_new(&loop));
  OK(aloop_loop_set_exception_handler(loop, on_exception, NULL, NULL));
  start(loop);
  ASSERT_EQ(P.panic_soon(), 0);
  OK(aloop_call_later(loop, 0.03, mark_after, NULL, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  ASSERT_EQ(handler_calls, 1);
  ASSERT(strstr(handler_msg, "panic in a Go callback") != NULL);
  ASSERT(strstr(handler_msg, "a panic on purpose") != NULL);
  ASSERT_EQ(after_panic, 1);
  ASSERT_EQ(P.stop(), 0);
  for (int i = 0; i < 10; i++)
    OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  OK(aloop_loop_free(loop));
}

/* A handle that is no loop is refused with the library's error. */
TEST(bad_handle) {
  load_plugin();
  aloop_loop_t *loop;
  OK(aloop_loop_new(&loop));
  OK(aloop_loop_free(loop)); /* stale now */
  ASSERT_EQ(P.start(loop), -1);
  ASSERT(P.error() != NULL);
  ASSERT(strstr(P.error(), "ALOOP_EBADF") != NULL);
}

/* Whether a file whose path contains s is mapped into this process. */
static int mapped(const char *s) {
  FILE *f = fopen("/proc/self/maps", "r");
  ASSERT(f != NULL);
  char line[4096];
  int found = 0;
  while (fgets(line, sizeof line, f) != NULL)
    if (strstr(line, s) != NULL)
      found = 1;
  fclose(f);
  return found;
}

/* Runs this program's test `name` in a child process with `env` added to
 * the environment (a Go runtime reads the environment the process started
 * with: setenv() here would not reach the plugin). Returns its wait status. */
static int run_child(const char *name, const char *env) {
  int n = 0;
  while (environ[n] != NULL)
    n++;
  char **envp = calloc((size_t)n + 2, sizeof *envp);
  ASSERT(envp != NULL);
  size_t namelen = strcspn(env, "=") + 1; /* replaces NAME= if set */
  int m = 0;
  for (int i = 0; i < n; i++)
    if (strncmp(environ[i], env, namelen) != 0)
      envp[m++] = environ[i];
  envp[m] = (char *)env;
  char *argv[] = {"goplugin_host", (char *)name, NULL};
  pid_t pid;
  ASSERT_EQ(posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, envp), 0);
  free(envp);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

/* The plugin uses the library the host has, whatever ASYNCLOOP_LIBRARY
 * says: a second copy of the library (here: the same file copied elsewhere)
 * would be a third Go runtime with handles of its own, and the host's loop
 * handle would be no loop there. */
TEST(plugin_uses_the_hosts_library) {
  Dl_info info;
  ASSERT(dladdr((void *)aloop_loop_new, &info) != 0 && info.dli_fname != NULL);
  char dir[] = "/tmp/goplugin-XXXXXX";
  ASSERT(mkdtemp(dir) != NULL);
  char copy[512], cmd[1200], env[600];
  snprintf(copy, sizeof copy, "%s/libasyncloop.so.0", dir);
  snprintf(cmd, sizeof cmd, "cp '%s' '%s'", info.dli_fname, copy);
  ASSERT_EQ(system(cmd), 0);
  snprintf(env, sizeof env, "ASYNCLOOP_LIBRARY=%s", copy);
  int status = run_child("_uses_hosts_library", env);
  unlink(copy);
  rmdir(dir);
  ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(_uses_hosts_library) {
  const char *copy = getenv("ASYNCLOOP_LIBRARY");
  ASSERT(copy != NULL && strstr(copy, "/tmp/goplugin-") != NULL);
  load_plugin();
  aloop_loop_t *loop;
  OK(aloop_loop_new(&loop));
  start(loop);
  OK(aloop_call_later(loop, 0.02, stop_cb, NULL, NULL, NULL));
  OK(aloop_loop_run(loop, ALOOP_RUN_DEFAULT));
  ASSERT(!mapped(copy));
  ASSERT_EQ(P.stop(), 0);
  for (int i = 0; i < 10; i++)
    OK(aloop_loop_run(loop, ALOOP_RUN_NOWAIT));
  OK(aloop_loop_free(loop));
}
