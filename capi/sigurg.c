/* SIGURG and the host (include/asyncloop.h, "Signals").
 *
 * The library's Go runtime installs a SIGURG handler when it starts (for
 * asynchronous preemption, which the library's build turns off). That
 * handler sat between the host and its own SIGURG handling: a Go host's
 * preemption signals, and a C host's out-of-band SIGURGs, went through it
 * on the host's threads, where it takes a slow path (it borrows a Go thread
 * context, re-installs the host's handler, re-raises the signal, sleeps 1 ms
 * and installs its own again) that loses signals, or deadlocks, when
 * several threads take it at once: a Go host could hang in its garbage
 * collector (tests/go TestGCHazard*). So the library gives SIGURG back:
 *
 *  1. al_urg_save runs before the Go runtime's own constructor (the
 *     priority puts it first) and records the disposition from before the
 *     library was loaded;
 *  2. the runtime's constructor installs its handlers synchronously;
 *  3. al_urg_after_runtime runs after it (cmd/link puts the Go object
 *     before the cgo objects, so their constructors follow) and restores
 *     the recorded disposition, still inside dlopen();
 *  4. capi/sigurg.go does the same at package initialisation, in case a
 *     toolchain ever orders the constructors differently.
 *
 * Unless GODEBUG=asyncpreemptoff=0 turned the runtime's preemption back
 * on: then the runtime keeps SIGURG. While a loop handles SIGURG
 * (aloop_add_signal_handler) the runtime's handler is installed again.
 * Every host (C, Go over purego, Python, Node) and every architecture gets
 * this; nothing in Go is needed for it. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define AL_HIDDEN __attribute__((visibility("hidden")))

static struct sigaction al_urg_before; /* before the library was loaded */
static struct sigaction al_urg_go;     /* the Go runtime's handler */
static int al_urg_saved, al_urg_have_go, al_urg_given;

__attribute__((constructor(101))) static void al_urg_save(void) {
  memset(&al_urg_before, 0, sizeof al_urg_before);
  al_urg_saved = sigaction(SIGURG, NULL, &al_urg_before) == 0;
}

static void *al_handler_of(const struct sigaction *sa) {
  return (sa->sa_flags & SA_SIGINFO) ? (void *)sa->sa_sigaction : (void *)sa->sa_handler;
}

/* Gives SIGURG back to the disposition from before loading. The runtime's
 * handler is remembered for al_urg_take: the runtime installs one function
 * with the same flags for every signal it takes, so SIGSEGV's action is
 * its action. Returns 0, or -1. */
AL_HIDDEN int al_urg_give_back(void) {
  if (!al_urg_saved)
    return -1;
  if (!al_urg_have_go) {
    if (sigaction(SIGSEGV, NULL, &al_urg_go) != 0)
      return -1;
    al_urg_have_go = 1;
  }
  if (sigaction(SIGURG, &al_urg_before, NULL) != 0)
    return -1;
  al_urg_given = 1;
  return 0;
}

/* Installs the runtime's SIGURG handler again. */
AL_HIDDEN int al_urg_take(void) {
  al_urg_given = 0;
  if (!al_urg_have_go)
    return 0;
  return sigaction(SIGURG, &al_urg_go, NULL);
}

/* 1 while SIGURG is the host's. */
AL_HIDDEN int al_urg_given_back(void) { return al_urg_given; }

/* The runtime's preemption is on only with asyncpreemptoff=0 last in
 * $GODEBUG (the build links asyncpreemptoff=1 in as its default). */
static int al_preempt_on(void) {
  const char *g = getenv("GODEBUG");
  int on = 0;
  for (const char *p = g; p != NULL && *p != '\0';) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == 17 && strncmp(p, "asyncpreemptoff=0", 17) == 0)
      on = 1;
    else if (n == 17 && strncmp(p, "asyncpreemptoff=1", 17) == 0)
      on = 0;
    p = end ? end + 1 : NULL;
  }
  return on;
}

__attribute__((constructor)) static void al_urg_after_runtime(void) {
  struct sigaction cur;
  if (!al_urg_saved || al_preempt_on() || sigaction(SIGURG, NULL, &cur) != 0)
    return;
  if (al_handler_of(&cur) == al_handler_of(&al_urg_before))
    return; /* the runtime has not taken it (yet): capi/sigurg.go will */
  al_urg_give_back();
}
