/* goplugin.h - the C interface of examples/go-plugin (a Go plugin built with
 * go build -buildmode=c-shared). Load it with dlopen() after the host has
 * libasyncloop (linked or dlopen()ed): the plugin uses that library, the one
 * the loop handle belongs to. Call everything on the loop's thread, except
 * plugin_ticks and plugin_gc (any thread). */
#ifndef GOPLUGIN_H
#define GOPLUGIN_H
#include "asyncloop.h"

/* Serves TCP echo on 127.0.0.1 on the host's loop (serving starts when the
 * loop runs) and ticks a 10 ms timer on it. Returns the port, or -1
 * (plugin_error says why). */
typedef int (*plugin_start_fn)(aloop_loop_t *loop);
/* Closes the server and cancels the timer; returns the bytes echoed, or -1. */
typedef int (*plugin_stop_fn)(void);
/* Timer ticks so far. */
typedef int (*plugin_ticks_fn)(void);
/* Runs the plugin's garbage collector for ms milliseconds beside a goroutine
 * that spins without function calls; returns the number of collections
 * (returns only if the plugin runtime's preemption signal, SIGURG, reaches
 * it). */
typedef int (*plugin_gc_fn)(int ms);
/* Schedules a callback that panics: it reaches the loop's exception handler
 * (message "panic in a Go callback: ..."), and the loop goes on. 0 or -1. */
typedef int (*plugin_panic_soon_fn)(void);
/* Why the last call returned -1 (owned by the plugin). */
typedef const char *(*plugin_error_fn)(void);

#endif
