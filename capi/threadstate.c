/* Per-thread state of the C ABI, in the thread's own storage, so that it
 * goes away with the thread: the last error message and the loop set with
 * aloop_set_event_loop. (Maps keyed by thread id kept every thread's entry
 * forever, and a later thread that got the same id inherited it.) */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The thread's id (gettid), cached: every run of a loop records its thread
 * (core.ThreadID), and the system call costs 150-200 ns on a virtual
 * machine. A forked child's thread has a new id: the fork handler clears
 * the cache of the one thread a child has. */
static __thread long al_tid;

static void al_tid_forget(void) { al_tid = 0; }

__attribute__((constructor)) static void al_tid_init(void) {
  pthread_atfork(NULL, NULL, al_tid_forget);
}

long al_thread_id(void) {
  if (al_tid == 0)
    al_tid = syscall(SYS_gettid);
  return al_tid;
}

static __thread uintptr_t al_current_loop;

void al_set_current_loop(uintptr_t h) { al_current_loop = h; }
uintptr_t al_get_current_loop(void) { return al_current_loop; }

static pthread_key_t al_err_key;
static pthread_once_t al_err_once = PTHREAD_ONCE_INIT;
static int al_err_ok;

static void al_err_init(void) { al_err_ok = pthread_key_create(&al_err_key, free) == 0; }

/* Sets the message; takes ownership of msg (malloc'ed, may be NULL). */
void al_set_last_error(char *msg) {
  pthread_once(&al_err_once, al_err_init);
  if (!al_err_ok) {
    free(msg);
    return;
  }
  char *old = pthread_getspecific(al_err_key);
  if (pthread_setspecific(al_err_key, msg) != 0) {
    free(msg);
    return;
  }
  free(old);
}

/* The message, or NULL; valid until the thread's next al_set_last_error. */
const char *al_get_last_error(void) {
  pthread_once(&al_err_once, al_err_init);
  return al_err_ok ? pthread_getspecific(al_err_key) : NULL;
}
