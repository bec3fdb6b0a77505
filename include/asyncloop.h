/*
 * asyncloop.h - the one public contract of libasyncloop.
 *
 * asyncloop is the event loop of Python's asyncio rebuilt as a Go engine
 * behind this C ABI. C programs, Python (ctypes), Node (an N-API addon) and
 * Go programs (purego) all drive the same loop with the same semantics.
 *
 * ---------------------------------------------------------------------------
 * Conventions
 * ---------------------------------------------------------------------------
 *  - Every public object is an opaque handle (aloop_loop_t *, aloop_future_t *,
 *    ...). A handle is a generation-checked index into the library's handle
 *    table, never a real address: do not dereference it. A NULL, stale
 *    (released), or wrong-type handle makes every function return ALOOP_EBADF;
 *    it never crashes the process.
 *  - Functions that can fail return int: 0 (or a documented non-negative
 *    value) on success, a negative ALOOP_E* code on failure. Codes equal
 *    -errno on POSIX where an errno exists. aloop_strerror() and
 *    aloop_err_name() give static strings; aloop_last_error() copies a
 *    detailed message about the calling thread's last failure.
 *  - Constructors return the object through an out-parameter.
 *  - When a function that takes a callback fails, the callback is never
 *    called, and the free_cb (if any) is called before it returns.
 *  - Ownership: pointers passed in are borrowed and copied before return.
 *    Pointers handed to a callback are valid only during that callback.
 *    Memory the library hands out is released only with the library's own
 *    functions. Registering a callback takes (cb, userdata, free_cb); free_cb
 *    (may be NULL) is called exactly once, on the loop thread, when the
 *    library drops userdata.
 *  - The library is for 64-bit platforms (handles are 64-bit values).
 *
 * ---------------------------------------------------------------------------
 * Threading model
 * ---------------------------------------------------------------------------
 *  - A loop is driven by exactly one thread at a time: the thread inside
 *    aloop_loop_run*(). Every callback of that loop (scheduled callbacks,
 *    timers, future done-callbacks, protocol callbacks, reader/writer
 *    callbacks, the exception handler) runs on that thread, inside that call,
 *    never concurrently, and never from inside the function that registered
 *    it.
 *  - Functions marked THREAD-SAFE may be called from any thread at any time:
 *    aloop_call_soon_threadsafe, aloop_loop_stop, aloop_loop_wakeup, and the
 *    version / error-string functions. Every other function that takes a loop
 *    or an object of a loop must be called from the thread that runs (or
 *    will run) that loop; in debug mode a call from another thread fails with
 *    ALOOP_ENOTLOOPTHREAD.
 *  - Socket I/O runs on the loop thread itself (an epoll reactor); the
 *    library's own threads never call into the host.
 *  - Embedding in a host that has its own event loop: watch
 *    aloop_loop_backend_fd() for readability, arm a timer for
 *    aloop_loop_backend_timeout(), and call
 *    aloop_loop_run(loop, ALOOP_RUN_NOWAIT) when either fires. Or register a
 *    wake-up callback with aloop_loop_set_wakeup_cb().
 *  - fork(): the Go runtime does not survive fork(). A child process must not
 *    call into the library (only exec).
 */
#ifndef ASYNCLOOP_H
#define ASYNCLOOP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Version                                                                   */
/* ------------------------------------------------------------------------ */

#define ALOOP_VERSION_MAJOR 0
#define ALOOP_VERSION_MINOR 1
#define ALOOP_VERSION_PATCH 0
/* (major << 16) | (minor << 8) | patch */
#define ALOOP_VERSION_HEX \
  ((ALOOP_VERSION_MAJOR << 16) | (ALOOP_VERSION_MINOR << 8) | ALOOP_VERSION_PATCH)

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/* X(name, value, message). Values equal -errno on Linux where one exists;
 * library-specific codes are below -3000. */
#define ALOOP_ERRNO_MAP(X)                                                     \
  X(EPERM, -1, "operation not permitted")                                     \
  X(ENOENT, -2, "no such file or directory")                                  \
  X(EINTR, -4, "interrupted system call")                                     \
  X(EIO, -5, "i/o error")                                                     \
  X(EBADF, -9, "bad handle or file descriptor")                               \
  X(EAGAIN, -11, "resource temporarily unavailable")                          \
  X(ENOMEM, -12, "not enough memory")                                         \
  X(EACCES, -13, "permission denied")                                         \
  X(EBUSY, -16, "resource busy")                                              \
  X(EEXIST, -17, "already exists")                                            \
  X(EINVAL, -22, "invalid argument")                                          \
  X(EMFILE, -24, "too many open files")                                       \
  X(EPIPE, -32, "broken pipe")                                                \
  X(ENOSYS, -38, "function not implemented")                                  \
  X(ENOTSOCK, -88, "not a socket")                                            \
  X(EADDRINUSE, -98, "address already in use")                                \
  X(EADDRNOTAVAIL, -99, "address not available")                              \
  X(ENETUNREACH, -101, "network is unreachable")                              \
  X(ECONNABORTED, -103, "connection aborted")                                 \
  X(ECONNRESET, -104, "connection reset by peer")                             \
  X(ENOBUFS, -105, "no buffer space available")                               \
  X(ENOTCONN, -107, "socket is not connected")                                \
  X(ETIMEDOUT, -110, "connection timed out")                                  \
  X(ECONNREFUSED, -111, "connection refused")                                 \
  X(EHOSTUNREACH, -113, "host is unreachable")                                \
  X(EALREADY, -114, "operation already in progress")                          \
  X(ECANCELED, -125, "operation canceled")                                    \
  X(EPANIC, -3000, "internal error (a panic was recovered)")                 \
  X(ECLOSED, -3001, "object is closed")                                       \
  X(ESTATE, -3002, "invalid state")                                           \
  X(ENOTLOOPTHREAD, -3003, "called from a thread other than the loop's")      \
  X(ERESOLVE, -3004, "name resolution failed")                                \
  X(ESTOPPED, -3005, "loop stopped before the future completed")              \
  X(ENOSPACE, -3006, "buffer too small")                                      \
  X(EUNKNOWN, -3999, "unknown error")

typedef enum aloop_errno_e {
#define ALOOP_ERRNO_ENUM_(name, value, message) ALOOP_##name = value,
  ALOOP_ERRNO_MAP(ALOOP_ERRNO_ENUM_)
#undef ALOOP_ERRNO_ENUM_
  ALOOP_OK = 0
} aloop_errno_t;

/* ------------------------------------------------------------------------ */
/* Handle types (opaque)                                                     */
/* ------------------------------------------------------------------------ */

typedef struct aloop_loop_s aloop_loop_t;           /* an event loop */
typedef struct aloop_handle_s aloop_handle_t;       /* a scheduled callback or timer */
typedef struct aloop_future_s aloop_future_t;       /* a future */
typedef struct aloop_transport_s aloop_transport_t; /* a stream transport */
typedef struct aloop_server_s aloop_server_t;       /* a listening server */

/* How aloop_loop_run() runs. */
typedef enum aloop_run_mode_e {
  ALOOP_RUN_DEFAULT = 0, /* run until aloop_loop_stop() (run_forever) */
  ALOOP_RUN_ONCE = 1,    /* one iteration; wait for I/O if nothing is ready */
  ALOOP_RUN_NOWAIT = 2   /* one iteration; never wait */
} aloop_run_mode_t;

/* ------------------------------------------------------------------------ */
/* Callback types                                                            */
/* ------------------------------------------------------------------------ */

/* Drops userdata; called exactly once, on the loop thread (or inside the
 * failing call), when the library no longer needs userdata. */
typedef void (*aloop_free_cb)(void *userdata);

/* A scheduled callback (call_soon, call_later, call_at, ...). */
typedef void (*aloop_callback_cb)(aloop_loop_t *loop, void *userdata);

/* A future's done-callback; scheduled with call_soon when the future is done. */
typedef void (*aloop_future_cb)(aloop_future_t *future, void *userdata);

/* A reader or writer callback for an arbitrary fd (add_reader/add_writer). */
typedef void (*aloop_fd_cb)(aloop_loop_t *loop, int fd, void *userdata);

/* THREAD-SAFE callback: the loop has new work (called from any thread). */
typedef void (*aloop_wakeup_cb)(aloop_loop_t *loop, void *userdata);

/* The exception-handler context (asyncio's context dict). */
typedef struct aloop_exception_context_s {
  size_t size;           /* sizeof(aloop_exception_context_t) */
  const char *message;   /* what happened; never NULL */
  int error;             /* an ALOOP_E* code, or 0 when none */
  const char *error_detail; /* detailed error text, or NULL */
  aloop_transport_t *transport; /* the transport involved, or NULL */
  aloop_server_t *server;       /* the server involved, or NULL */
  aloop_future_t *future;       /* the future involved, or NULL */
} aloop_exception_context_t;

typedef void (*aloop_exception_cb)(aloop_loop_t *loop,
                                   const aloop_exception_context_t *context,
                                   void *userdata);

/* A stream protocol: a struct of optional callbacks (NULL = ignore), copied
 * when it is set. `size` must be sizeof(aloop_protocol_t). The userdata given
 * with the protocol is passed to every callback.
 *  - connection_made: the transport is connected.
 *  - data_received: `len` bytes arrived (data valid only during the call).
 *  - eof_received: the peer closed its write side. Return nonzero to keep
 *    the transport half-open (you may still write), 0 to close it.
 *  - connection_lost: the transport is closed; `error` is 0 for a clean
 *    close or EOF, else an ALOOP_E* code. The last callback of a transport:
 *    after it returns, the transport handle is stale.
 *  - pause_writing / resume_writing: the write buffer crossed the high /
 *    low water mark.
 *  - get_buffer / buffer_updated (buffered protocol, used instead of
 *    data_received when get_buffer is set): get_buffer returns memory of at
 *    least 1 byte (its length in *len) that the library reads into
 *    directly; buffer_updated tells how many bytes were written there. */
typedef struct aloop_protocol_s {
  size_t size;
  void (*connection_made)(aloop_transport_t *transport, void *userdata);
  void (*data_received)(aloop_transport_t *transport, const char *data,
                        size_t len, void *userdata);
  int (*eof_received)(aloop_transport_t *transport, void *userdata);
  void (*connection_lost)(aloop_transport_t *transport, int error,
                          void *userdata);
  void (*pause_writing)(aloop_transport_t *transport, void *userdata);
  void (*resume_writing)(aloop_transport_t *transport, void *userdata);
  void *(*get_buffer)(aloop_transport_t *transport, size_t sizehint,
                      size_t *len, void *userdata);
  void (*buffer_updated)(aloop_transport_t *transport, size_t nbytes,
                         void *userdata);
} aloop_protocol_t;

/* A server's connection callback (asyncio's protocol_factory): called on the
 * loop thread for every accepted connection, before connection_made. Set the
 * connection's protocol with aloop_transport_set_protocol() inside it and
 * return 0; a negative return (or no protocol set) closes the connection. */
typedef int (*aloop_connection_cb)(aloop_server_t *server,
                                   aloop_transport_t *transport,
                                   void *userdata);

/* ------------------------------------------------------------------------ */
/* Option structs (size-prefixed so they can grow; NULL = defaults)          */
/* ------------------------------------------------------------------------ */

typedef struct aloop_server_options_s {
  size_t size;       /* sizeof(aloop_server_options_t) */
  int backlog;       /* listen backlog; <= 0 means 100 (asyncio's default) */
  int reuse_address; /* SO_REUSEADDR; < 0 default (on), 0 off, > 0 on */
  int reuse_port;    /* SO_REUSEPORT; 0 off, > 0 on */
  int start_serving; /* < 0 default (on), 0 off, > 0 on */
} aloop_server_options_t;

typedef struct aloop_connect_options_s {
  size_t size;             /* sizeof(aloop_connect_options_t) */
  const char *local_host;  /* local_addr host, or NULL */
  int local_port;          /* local_addr port (used when local_host is set) */
} aloop_connect_options_t;

/* Types of the Unix-socket, datagram and pipe API. */
/* @@NET-IPC-TYPES@@ */

/* Types of the sock_*, DNS and sendfile API. */
/* @@NET-SOCK-TYPES@@ */

/* The library's own build defines ALOOP_NO_PROTOTYPES to use the types
 * above without the function declarations below. */
#ifndef ALOOP_NO_PROTOTYPES

/* ------------------------------------------------------------------------ */
/* Version and errors (THREAD-SAFE)                                          */
/* ------------------------------------------------------------------------ */

/* The library's version as ALOOP_VERSION_HEX; bindings compare the major. */
unsigned int aloop_version(void);
/* "major.minor.patch"; a static string. */
const char *aloop_version_string(void);
/* A static description of an ALOOP_E* code ("unknown error" if unknown). */
const char *aloop_strerror(int code);
/* The static name of an ALOOP_E* code ("ALOOP_EBADF"), "ALOOP_OK" for 0,
 * "ALOOP_EUNKNOWN" if unknown. */
const char *aloop_err_name(int code);
/* Copies a NUL-terminated detailed message about the calling thread's last
 * failed call into buf (truncated to buflen). Returns the full message
 * length (excluding NUL), 0 if there is none, or ALOOP_EINVAL. */
int aloop_last_error(char *buf, size_t buflen);

/* ------------------------------------------------------------------------ */
/* Loop                                                                      */
/* ------------------------------------------------------------------------ */

/* Creates a loop. */
int aloop_loop_new(aloop_loop_t **out_loop);
/* Closes the loop: drops pending callbacks (their free_cb run) and makes
 * further scheduling fail with ALOOP_ECLOSED. Idempotent (closing a closed
 * loop returns 0). Returns ALOOP_EBUSY while the loop runs or while it has
 * live transports, servers or fd watchers. The handle stays valid (for
 * aloop_loop_is_closed) until aloop_loop_free(). */
int aloop_loop_close(aloop_loop_t *loop);
/* Closes the loop (as aloop_loop_close) and releases its handle. */
int aloop_loop_free(aloop_loop_t *loop);
/* Runs the loop in the given mode on the calling thread. Returns 0, or
 * ALOOP_EBUSY if it is already running, ALOOP_ECLOSED if closed. asyncio's
 * run_forever is ALOOP_RUN_DEFAULT: it returns after the iteration in which
 * aloop_loop_stop() was called (a stop before run makes it run one
 * iteration). */
int aloop_loop_run(aloop_loop_t *loop, aloop_run_mode_t mode);
/* Runs one iteration, waiting at most `timeout` seconds for I/O when no
 * callback is ready (timeout < 0: until the next timer or I/O). For hosts
 * that keep their own ready queue and timers. */
int aloop_loop_run_once(aloop_loop_t *loop, double timeout);
/* Runs the loop until the future is done (asyncio's run_until_complete).
 * Returns 0 when it is done (read it with the future getters),
 * ALOOP_ESTOPPED if the loop was stopped first. */
int aloop_loop_run_until_complete(aloop_loop_t *loop, aloop_future_t *future);
/* THREAD-SAFE. Stops a DEFAULT run after the current iteration. */
int aloop_loop_stop(aloop_loop_t *loop);
/* THREAD-SAFE. Wakes a waiting loop (coalesced: one wake-up per wait). */
int aloop_loop_wakeup(aloop_loop_t *loop);
/* 1 if running, 0 if not, or a negative error. */
int aloop_loop_is_running(aloop_loop_t *loop);
/* 1 if closed, 0 if not, or a negative error. */
int aloop_loop_is_closed(aloop_loop_t *loop);
/* 1 if the loop has work that keeps it alive (ready callbacks, timers,
 * transports, servers, fd watchers, pending operations), 0 if not. */
int aloop_loop_alive(aloop_loop_t *loop);
/* The loop's monotonic clock in seconds (asyncio's loop.time(); the same
 * clock as CLOCK_MONOTONIC / Python's time.monotonic()). */
int aloop_loop_time(aloop_loop_t *loop, double *out_time);
/* Debug mode (asyncio's set_debug/get_debug). get returns 1/0 or error. */
int aloop_loop_set_debug(aloop_loop_t *loop, int enabled);
int aloop_loop_get_debug(aloop_loop_t *loop);

/* Embedding. The backend fd is readable whenever the loop has I/O or
 * thread-safe work to process. */
int aloop_loop_backend_fd(aloop_loop_t *loop);
/* Milliseconds until the loop needs to run again: 0 if callbacks are ready,
 * the time to the next timer, or -1 if it only waits for I/O. */
int aloop_loop_backend_timeout(aloop_loop_t *loop, int *out_ms);
/* THREAD-SAFE callback called (from any thread) whenever work is posted to
 * the loop from outside its thread while it is not running (call_soon_threadsafe,
 * stop, wakeup, completions of background operations). cb NULL removes it. */
int aloop_loop_set_wakeup_cb(aloop_loop_t *loop, aloop_wakeup_cb cb,
                             void *userdata, aloop_free_cb free_cb);

/* ------------------------------------------------------------------------ */
/* Scheduling callbacks                                                      */
/* ------------------------------------------------------------------------ */

/* Every scheduling function takes an optional out_handle (may be NULL). A
 * handle stays valid until its callback has run or it was cancelled (then it
 * is stale: ALOOP_EBADF). Callbacks run in FIFO order; timers in order of
 * their deadline, ties in scheduling order. */
int aloop_call_soon(aloop_loop_t *loop, aloop_callback_cb cb, void *userdata,
                    aloop_free_cb free_cb, aloop_handle_t **out_handle);
/* THREAD-SAFE. As aloop_call_soon, from any thread; wakes the loop. The
 * out_handle may only be used on the loop's thread. */
int aloop_call_soon_threadsafe(aloop_loop_t *loop, aloop_callback_cb cb,
                               void *userdata, aloop_free_cb free_cb,
                               aloop_handle_t **out_handle);
/* Calls cb after `delay` seconds (delay <= 0: on the next iteration). */
int aloop_call_later(aloop_loop_t *loop, double delay, aloop_callback_cb cb,
                     void *userdata, aloop_free_cb free_cb,
                     aloop_handle_t **out_handle);
/* Calls cb at loop time `when` (see aloop_loop_time). */
int aloop_call_at(aloop_loop_t *loop, double when, aloop_callback_cb cb,
                  void *userdata, aloop_free_cb free_cb,
                  aloop_handle_t **out_handle);
/* Cancels a pending callback or timer (its free_cb runs); the handle then
 * becomes stale. */
int aloop_handle_cancel(aloop_handle_t *handle);
/* A timer's deadline in loop time; ALOOP_EINVAL for a call_soon handle. */
int aloop_handle_when(aloop_handle_t *handle, double *out_when);

/* ------------------------------------------------------------------------ */
/* Futures                                                                   */
/* ------------------------------------------------------------------------ */

/* A future belongs to a loop. Operations of the library (connections,
 * servers) return futures; the caller owns every future it receives and
 * releases it with aloop_future_free(). A future's result is a pointer-sized
 * value (set by the host), a transport, or a server; a failed future holds
 * an ALOOP_E* code and a message. */
int aloop_future_new(aloop_loop_t *loop, aloop_future_t **out_future);
/* Releases the caller's reference; done-callbacks already added still run. */
int aloop_future_free(aloop_future_t *future);
/* 1 if done, 0 if not, or error. */
int aloop_future_done(aloop_future_t *future);
/* 1 if cancelled, 0 if not, or error. */
int aloop_future_cancelled(aloop_future_t *future);
/* Cancels the future: returns 1 if it was cancelled, 0 if already done. */
int aloop_future_cancel(aloop_future_t *future);
/* Marks the future done with a result; ALOOP_ESTATE if already done. */
int aloop_future_set_result(aloop_future_t *future, void *result);
/* Marks the future failed with an ALOOP_E* code (< 0) and an optional
 * message; ALOOP_ESTATE if already done. */
int aloop_future_set_exception(aloop_future_t *future, int error,
                               const char *message);
/* Returns 0 and the result; the future's error code if it failed;
 * ALOOP_ECANCELED if cancelled; ALOOP_ESTATE if not done. */
int aloop_future_result(aloop_future_t *future, void **out_result);
/* As aloop_future_result, for a future whose result is a transport / a
 * server (ALOOP_EINVAL if the result is of another kind). */
int aloop_future_result_transport(aloop_future_t *future,
                                  aloop_transport_t **out_transport);
int aloop_future_result_server(aloop_future_t *future,
                               aloop_server_t **out_server);
/* Returns the error code of a failed future, 0 if it succeeded,
 * ALOOP_ECANCELED if cancelled, ALOOP_ESTATE if not done. */
int aloop_future_exception(aloop_future_t *future);
/* Copies the failure message (see aloop_last_error for the return value). */
int aloop_future_error_message(aloop_future_t *future, char *buf,
                               size_t buflen);
/* Adds a done-callback (scheduled with call_soon once the future is done). */
int aloop_future_add_done_callback(aloop_future_t *future, aloop_future_cb cb,
                                   void *userdata, aloop_free_cb free_cb);
/* Removes every done-callback with this cb and userdata; returns how many. */
int aloop_future_remove_done_callback(aloop_future_t *future,
                                      aloop_future_cb cb, void *userdata);

/* ------------------------------------------------------------------------ */
/* Exception handler                                                         */
/* ------------------------------------------------------------------------ */

/* Sets the loop's exception handler; cb NULL restores the default one (which
 * prints the context to stderr). */
int aloop_loop_set_exception_handler(aloop_loop_t *loop, aloop_exception_cb cb,
                                     void *userdata, aloop_free_cb free_cb);
/* Gets the handler set (NULL cb and userdata for the default one). */
int aloop_loop_get_exception_handler(aloop_loop_t *loop,
                                     aloop_exception_cb *out_cb,
                                     void **out_userdata);
/* Calls the current handler with a context built from message and error. */
int aloop_loop_call_exception_handler(aloop_loop_t *loop, const char *message,
                                      int error);
/* The default handler: prints the context to stderr. */
int aloop_loop_default_exception_handler(
    aloop_loop_t *loop, const aloop_exception_context_t *context);

/* ------------------------------------------------------------------------ */
/* Watching file descriptors (level-triggered, as asyncio)                   */
/* ------------------------------------------------------------------------ */

/* Calls cb each iteration while fd is readable / writable. Adding again
 * replaces the previous callback (whose free_cb runs). */
int aloop_add_reader(aloop_loop_t *loop, int fd, aloop_fd_cb cb,
                     void *userdata, aloop_free_cb free_cb);
int aloop_add_writer(aloop_loop_t *loop, int fd, aloop_fd_cb cb,
                     void *userdata, aloop_free_cb free_cb);
/* Returns 1 if a callback was registered and removed, 0 if none was. */
int aloop_remove_reader(aloop_loop_t *loop, int fd);
int aloop_remove_writer(aloop_loop_t *loop, int fd);

/* ------------------------------------------------------------------------ */
/* TCP                                                                       */
/* ------------------------------------------------------------------------ */

/* Connects to host:port (asyncio's create_connection) with the given
 * protocol. The future resolves to the transport after connection_made has
 * run, or fails with the connection error (then no protocol callback runs,
 * and free_cb runs). The future is returned in *out_future. */
int aloop_create_connection(aloop_loop_t *loop, const char *host, int port,
                            const aloop_protocol_t *protocol, void *userdata,
                            aloop_free_cb free_cb,
                            const aloop_connect_options_t *options,
                            aloop_future_t **out_future);

/* Listens on host:port (host NULL or "" = all interfaces; port 0 = any free
 * port) and calls on_connection for every accepted connection. The future
 * resolves to the server. */
int aloop_create_server(aloop_loop_t *loop, const char *host, int port,
                        aloop_connection_cb on_connection, void *userdata,
                        aloop_free_cb free_cb,
                        const aloop_server_options_t *options,
                        aloop_future_t **out_future);

/* Stops listening (connections already accepted stay open). Idempotent. */
int aloop_server_close(aloop_server_t *server);
/* Closes the server if needed and releases its handle. */
int aloop_server_free(aloop_server_t *server);
/* Starts accepting (if created with start_serving = 0). */
int aloop_server_start_serving(aloop_server_t *server);
/* 1 if accepting, 0 if not, or error. */
int aloop_server_is_serving(aloop_server_t *server);
/* A future that resolves when the server is closed and its connections are
 * gone. The caller frees it. */
int aloop_server_wait_closed(aloop_server_t *server,
                             aloop_future_t **out_future);
/* Number of listening sockets. */
int aloop_server_socket_count(aloop_server_t *server);
/* The fd of listening socket `index`. */
int aloop_server_socket_fd(aloop_server_t *server, int index);
/* The address of listening socket `index`: numeric host into host (NUL
 * terminated, ALOOP_ENOSPACE if hostlen is too small) and its port. */
int aloop_server_sockname(aloop_server_t *server, int index, char *host,
                          size_t hostlen, int *out_port);

/* ------------------------------------------------------------------------ */
/* Stream transports                                                         */
/* ------------------------------------------------------------------------ */

/* Sets the transport's protocol (copied) and userdata; the previous
 * userdata's free_cb runs. */
int aloop_transport_set_protocol(aloop_transport_t *transport,
                                 const aloop_protocol_t *protocol,
                                 void *userdata, aloop_free_cb free_cb);
/* The userdata of the current protocol. */
int aloop_transport_get_protocol(aloop_transport_t *transport,
                                 void **out_userdata);
/* Writes len bytes (copied). Never blocks: sends at once what the socket
 * takes and buffers the rest, in order. After close/write_eof:
 * ALOOP_ECLOSED / ALOOP_EPIPE. */
int aloop_transport_write(aloop_transport_t *transport, const void *data,
                          size_t len);
/* Flushes the buffer, then closes; connection_lost(0) follows. Idempotent. */
int aloop_transport_close(aloop_transport_t *transport);
/* Closes at once, dropping buffered data; connection_lost(0) follows. */
int aloop_transport_abort(aloop_transport_t *transport);
/* Shuts down the write side after the buffer is flushed. */
int aloop_transport_write_eof(aloop_transport_t *transport);
/* 1 if write_eof is supported, 0 if not. */
int aloop_transport_can_write_eof(aloop_transport_t *transport);
/* 1 if closing or closed, 0 if not. */
int aloop_transport_is_closing(aloop_transport_t *transport);
int aloop_transport_pause_reading(aloop_transport_t *transport);
int aloop_transport_resume_reading(aloop_transport_t *transport);
/* 1 if reading, 0 if paused or closing. */
int aloop_transport_is_reading(aloop_transport_t *transport);
int aloop_transport_get_write_buffer_size(aloop_transport_t *transport,
                                          size_t *out_size);
/* high == 0 and low == 0 select the defaults (64 KiB, 16 KiB); low must
 * not exceed high. */
int aloop_transport_set_write_buffer_limits(aloop_transport_t *transport,
                                            size_t high, size_t low);
int aloop_transport_get_write_buffer_limits(aloop_transport_t *transport,
                                            size_t *out_high, size_t *out_low);
/* The socket fd (get_extra_info("socket")); the transport owns it. */
int aloop_transport_get_fd(aloop_transport_t *transport);
/* Peer / local address, as aloop_server_sockname. */
int aloop_transport_get_peername(aloop_transport_t *transport, char *host,
                                 size_t hostlen, int *out_port);
int aloop_transport_get_sockname(aloop_transport_t *transport, char *host,
                                 size_t hostlen, int *out_port);

/* ------------------------------------------------------------------------ */
/* Unix sockets, datagrams and pipes                                         */
/* ------------------------------------------------------------------------ */
/* @@NET-IPC@@ */

/* ------------------------------------------------------------------------ */
/* Sockets (sock_*), DNS and sendfile                                        */
/* ------------------------------------------------------------------------ */
/* @@NET-SOCK@@ */

#endif /* ALOOP_NO_PROTOTYPES */

#ifdef __cplusplus
}
#endif

#endif /* ASYNCLOOP_H */
