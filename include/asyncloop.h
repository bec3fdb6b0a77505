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
 *    (may be NULL) is called exactly once when the library drops userdata:
 *    on the loop thread, or inside the call when that call fails.
 *  - Lengths: an input length (size_t) larger than any buffer can be (more
 *    than 2^40 bytes, e.g. SIZE_MAX or a negative value cast to size_t) is
 *    ALOOP_EINVAL; the size of an output buffer is only an upper bound.
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
 *    it. As in asyncio, a transport's pause_writing / resume_writing may run
 *    inside aloop_transport_write(), _writev() and
 *    _set_write_buffer_limits(), and a datagram protocol's error_received
 *    inside aloop_datagram_sendto().
 *  - May be called from any thread at any time: the functions marked
 *    THREAD-SAFE (aloop_call_soon_threadsafe, aloop_loop_stop,
 *    aloop_loop_wakeup, aloop_live_handles, aloop_version,
 *    aloop_version_string, aloop_strerror, aloop_err_name,
 *    aloop_runtime_stats); those about the calling thread (aloop_last_error,
 *    aloop_get_running_loop, aloop_get_event_loop, aloop_set_event_loop);
 *    and those that take no loop or object of a loop (aloop_loop_new,
 *    aloop_tls_config_*, aloop_buffer_free, aloop_addrinfo_free). Every
 *    other function must be called from the thread that runs (or will run)
 *    the loop of its loop or object. In debug mode a call from another
 *    thread while the loop runs fails with ALOOP_ENOTLOOPTHREAD (as asyncio,
 *    the check is made only while the loop runs), except for these, which
 *    are not checked: aloop_loop_run, aloop_loop_run_once, aloop_loop_poll,
 *    aloop_loop_run_until_complete (ALOOP_EBUSY while the loop runs),
 *    aloop_loop_is_running, aloop_loop_is_closed, aloop_loop_time,
 *    aloop_loop_set_debug, aloop_loop_get_debug and aloop_loop_backend_fd.
 *  - Socket I/O runs on the loop thread itself (an epoll reactor). The
 *    library's own threads (name resolution, executor workers, signal
 *    delivery, sendfile fallback copies, subprocess reaping, TLS handshakes,
 *    closing sockets in the background) call into the host in exactly two
 *    cases, and no other host callback or free_cb ever runs on them:
 *      1. aloop_executor_fn jobs (aloop_run_in_executor) run on executor
 *         worker threads, by design;
 *      2. the wake-up callback (aloop_loop_set_wakeup_cb) runs on whichever
 *         thread posts work to the loop: a host thread inside a THREAD-SAFE
 *         function, or a library thread that completes background work.
 *    Replacing the wake-up callback or freeing the loop while other threads
 *    are inside it waits for them to return before its free_cb runs (so
 *    the callback must return promptly and must not wait for the loop's
 *    thread); a replacement from inside the callback releases the old
 *    userdata when that call returns.
 *  - Embedding in a host that has its own event loop: watch
 *    aloop_loop_backend_fd() for readability, arm a timer for
 *    aloop_loop_backend_timeout(), and call
 *    aloop_loop_run(loop, ALOOP_RUN_NOWAIT) when either fires. Or register a
 *    wake-up callback with aloop_loop_set_wakeup_cb().
 *  - fork(): the Go runtime does not survive fork(). A child process must not
 *    call into the library (only exec).
 *
 * ---------------------------------------------------------------------------
 * Signals: what loading the library does to the host's handlers
 * ---------------------------------------------------------------------------
 *  - The library contains a Go runtime, which starts when the library is
 *    loaded (at program start when the host links it, at dlopen() otherwise).
 *    It then installs its own handlers (sigaction with SA_ONSTACK|SA_SIGINFO)
 *    for exactly four signals: SIGSEGV, SIGBUS and SIGFPE (a fault in the
 *    library's Go code becomes a Go panic, which every function turns into
 *    ALOOP_EPANIC) and SIGPIPE; the runtime also takes SIGURG (Go's signal
 *    for asynchronous preemption, which the library's build turns off), and
 *    the library gives it back before loading completes (see below). Every
 *    other disposition is left as it is, including SIG_IGN (e.g. an ignored
 *    SIGINT stays ignored).
 *  - For SIGSEGV, SIGBUS, SIGFPE and SIGPIPE it saves the handler that was
 *    installed before and forwards to it every signal that does not come
 *    from the library's Go code: a fault in the host's own code, SIGPIPE
 *    from the host's own write() to a closed pipe or socket. A saved SIG_IGN
 *    stays in effect; with SIG_DFL a fault outside Go code still kills the
 *    process as it would without the library. The library's own writes to
 *    sockets and pipes never raise SIGPIPE (send with MSG_NOSIGNAL, SIGPIPE
 *    blocked around pipe writes): they fail with EPIPE.
 *  - SIGURG: the library is built with Go's asynchronous preemption off
 *    (GODEBUG asyncpreemptoff=1 linked in as its runtime's default; its
 *    goroutines only do blocking work and the loop thread makes system calls
 *    all the time, so it does not need it). So the runtime never sends
 *    SIGURG itself (with preemption on, a handler registered with
 *    aloop_add_signal_handler(SIGURG) ran ~30 times a second under load),
 *    and the library gives SIGURG back at once: the disposition from before
 *    the library was loaded (the host's handler, or SIG_DFL) is restored
 *    before dlopen() returns (capi/sigurg.c: a constructor records it before
 *    the runtime's, another restores it after). SIGURGs then reach the
 *    host's handler directly, on every thread, including a Go host's
 *    preemption signals (which the runtime's handler, had it stayed, would
 *    have passed on slowly and could lose: a Go host's garbage collector
 *    then hung). While a loop has a SIGURG handler
 *    (aloop_add_signal_handler) the runtime's handler is installed; removing
 *    the last one (or freeing its loop) gives SIGURG back again.
 *    GODEBUG=asyncpreemptoff=0 in the environment turns preemption back on;
 *    then the runtime keeps SIGURG and does NOT forward it (0 of 10 reach
 *    the host's handler).
 *  - aloop_add_signal_handler() installs a Go handler for its signal while a
 *    handler is registered; removing the last one gives the signal back to
 *    the handler that was there before (see aloop_remove_signal_handler).
 *    The library sends signals only to its own children (aloop_subprocess_*).
 *  - So a C host keeps its own handlers by installing them BEFORE the library
 *    loads: dlopen() the library after its sigaction() calls, or, when it
 *    links the library, install them from a constructor that runs first or
 *    re-install them as below. A host that installs a handler for one of the
 *    four signals AFTER loading replaces the library's: it must use
 *    SA_ONSTACK (Go's threads run handlers on an alternate signal stack) and
 *    should chain to the previous handler that sigaction() returned to it,
 *    at least for faults it does not recognise as its own; a host that takes
 *    SIGSEGV/SIGBUS/SIGFPE without chaining turns a fault inside the library
 *    into a crash instead of ALOOP_EPANIC. SIGURG is the host's to take.
 *    tests/c/load_signals.c checks this section (CTest
 *    c-load.signal_handlers, and c-load.sigurg_asyncpreempt_on with
 *    GODEBUG=asyncpreemptoff=0); tests/c/test-signal.c sigurg_only_when_sent
 *    checks that no SIGURG comes from the runtime.
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
 * library-specific codes are below -3000. Every code a function of this
 * header returns (and every error code it passes to a callback) is one of
 * this list, with one exception: a code the host chose itself (given to
 * aloop_future_set_exception, returned by an on_connection callback, put
 * in an exception handler's context) comes back exactly as it was given.
 * An OS error this list does not name is ALOOP_EUNKNOWN; the detailed
 * message (aloop_last_error, aloop_future_error_message) still names it. */
#define ALOOP_ERRNO_MAP(X)                                                     \
  X(EPERM, -1, "operation not permitted")                                     \
  X(ENOENT, -2, "no such file or directory")                                  \
  X(ESRCH, -3, "no such process")                                             \
  X(EINTR, -4, "interrupted system call")                                     \
  X(EIO, -5, "i/o error")                                                     \
  X(E2BIG, -7, "argument list too long")                                      \
  X(ENOEXEC, -8, "exec format error")                                         \
  X(EBADF, -9, "bad handle or file descriptor")                               \
  X(ECHILD, -10, "no child processes")                                        \
  X(EAGAIN, -11, "resource temporarily unavailable")                          \
  X(ENOMEM, -12, "not enough memory")                                         \
  X(EACCES, -13, "permission denied")                                         \
  X(EFAULT, -14, "bad address")                                               \
  X(EBUSY, -16, "resource busy")                                              \
  X(EEXIST, -17, "already exists")                                            \
  X(ENOTDIR, -20, "not a directory")                                          \
  X(EISDIR, -21, "is a directory")                                            \
  X(EINVAL, -22, "invalid argument")                                          \
  X(ENFILE, -23, "too many open files in system")                             \
  X(EMFILE, -24, "too many open files")                                       \
  X(ETXTBSY, -26, "text file busy")                                           \
  X(ENOSPC, -28, "no space left on device")                                   \
  X(ESPIPE, -29, "illegal seek")                                              \
  X(EROFS, -30, "read-only file system")                                      \
  X(EPIPE, -32, "broken pipe")                                                \
  X(ENAMETOOLONG, -36, "file name too long")                                  \
  X(ENOSYS, -38, "function not implemented")                                  \
  X(ELOOP, -40, "too many levels of symbolic links")                          \
  X(ENOTSOCK, -88, "not a socket")                                            \
  X(EDESTADDRREQ, -89, "destination address required")                        \
  X(EMSGSIZE, -90, "message too long")                                        \
  X(EPROTOTYPE, -91, "protocol wrong type for socket")                        \
  X(ENOPROTOOPT, -92, "protocol not available")                               \
  X(EPROTONOSUPPORT, -93, "protocol not supported")                           \
  X(ESOCKTNOSUPPORT, -94, "socket type not supported")                        \
  X(EOPNOTSUPP, -95, "operation not supported")                               \
  X(EAFNOSUPPORT, -97, "address family not supported")                        \
  X(EADDRINUSE, -98, "address already in use")                                \
  X(EADDRNOTAVAIL, -99, "address not available")                              \
  X(ENETDOWN, -100, "network is down")                                        \
  X(ENETUNREACH, -101, "network is unreachable")                              \
  X(ECONNABORTED, -103, "connection aborted")                                 \
  X(ECONNRESET, -104, "connection reset by peer")                             \
  X(ENOBUFS, -105, "no buffer space available")                               \
  X(EISCONN, -106, "socket is already connected")                             \
  X(ENOTCONN, -107, "socket is not connected")                                \
  X(ESHUTDOWN, -108, "cannot send after socket shutdown")                     \
  X(ETIMEDOUT, -110, "connection timed out")                                  \
  X(ECONNREFUSED, -111, "connection refused")                                 \
  X(EHOSTDOWN, -112, "host is down")                                          \
  X(EHOSTUNREACH, -113, "host is unreachable")                                \
  X(EALREADY, -114, "operation already in progress")                          \
  X(EINPROGRESS, -115, "operation now in progress")                           \
  X(ECANCELED, -125, "operation canceled")                                    \
  X(EPANIC, -3000, "internal error (a panic was recovered)")                  \
  X(ECLOSED, -3001, "object is closed")                                       \
  X(ESTATE, -3002, "invalid state")                                           \
  X(ENOTLOOPTHREAD, -3003, "called from a thread other than the loop's")      \
  X(ERESOLVE, -3004, "name resolution failed")                                \
  X(ESTOPPED, -3005, "loop stopped before the future completed")              \
  X(ENOSPACE, -3006, "buffer too small")                                      \
  X(ETLS, -3007, "TLS error")                                                 \
  X(ECERT, -3008, "certificate verification failed")                          \
  X(ENOLOOP, -3009, "no current event loop in this thread")                   \
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
typedef struct aloop_tls_config_s aloop_tls_config_t; /* TLS settings (SSLContext) */

/* Default write-buffer water marks of stream transports (asyncio's). */
#define ALOOP_WRITE_BUFFER_HIGH (64 * 1024)
#define ALOOP_WRITE_BUFFER_LOW (16 * 1024)

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

/* THREAD-SAFE callback: the loop has new work. Called from any thread,
 * including the library's own (see the threading model), possibly from
 * several at once; it must be quick, must not block on the loop's thread
 * and may call only THREAD-SAFE functions. */
typedef void (*aloop_wakeup_cb)(aloop_loop_t *loop, void *userdata);

/* The exception-handler context (asyncio's context dict). */
typedef struct aloop_exception_context_s {
  size_t size;           /* sizeof(aloop_exception_context_t) */
  const char *message;   /* what happened; never NULL */
  int error;             /* an ALOOP_E* code, or 0 when none */
  const char *error_detail; /* detailed error text, or NULL */
  aloop_transport_t *transport; /* the transport involved, or NULL */
  aloop_server_t *server;       /* the server involved, or NULL */
  aloop_future_t *future;       /* reserved (asyncio's 'future' key): NULL
                                   in this version */
  /* Since 0.1: check `size` before reading the fields below. */
  struct aloop_datagram_s *datagram;     /* the datagram endpoint, or NULL */
  struct aloop_subprocess_s *subprocess; /* the subprocess, or NULL */
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
  /* Appended; read only when `size` covers it: */
  unsigned int flags; /* ALOOP_PROTOCOL_* (0: an ordinary protocol) */
} aloop_protocol_t;

/* aloop_protocol_t.flags: while the loop is inside aloop_loop_poll(), this
 * protocol's callbacks are not called: each becomes an aloop_event_t record
 * in the loop's event queue (see "The event queue" below). Outside
 * aloop_loop_poll() (aloop_loop_run*, or a callback caused synchronously by
 * a call of yours, such as pause_writing inside aloop_transport_write) the
 * function pointers are called as usual, so set them all. */
typedef enum aloop_protocol_flag_e { ALOOP_PROTOCOL_QUEUED = 1 } aloop_protocol_flag_t;

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
  /* Appended (sock/DNS API); read only when `size` covers them: */
  const char *const *hosts; /* NULL-terminated list of hosts to listen on
                               (asyncio's host sequence; "" = all
                               interfaces), or NULL; with it the host
                               argument must be NULL */
  int family;   /* 0 (AF_UNSPEC), AF_INET or AF_INET6: restricts resolution */
  int flags;    /* getaddrinfo AI_* flags (AI_PASSIVE is implied) */
  int has_sock; /* nonzero: serve on `sock` (asyncio's sock=), an existing
                   bound stream socket (listen() is called on it); host must
                   be NULL, port 0. The server owns it once the call
                   succeeds. */
  int sock;
  /* Appended (TLS); read only when `size` covers it: */
  aloop_tls_config_t *tls; /* accepted connections use TLS (a server
                              config), or NULL (see "TLS" below) */
} aloop_server_options_t;

typedef struct aloop_connect_options_s {
  size_t size;             /* sizeof(aloop_connect_options_t) */
  const char *local_host;  /* local_addr host, or NULL */
  int local_port;          /* local_addr port (used when local_host is set) */
  /* Appended (sock/DNS API); read only when `size` covers them: */
  double happy_eyeballs_delay; /* > 0: Happy Eyeballs (RFC 8305): a new
                                  attempt starts every this many seconds
                                  while earlier ones are in progress, or
                                  at once when one fails; the first
                                  connection wins (asyncio's
                                  happy_eyeballs_delay; 0.25 is the RFC's
                                  value). 0: one address after another. */
  int interleave; /* 0: default (1 with Happy Eyeballs, else none); > 0:
                     reorder the addresses by family, interleave - 1 of the
                     first family first (asyncio's interleave); < 0: none */
  int family;     /* 0 (AF_UNSPEC), AF_INET or AF_INET6: restricts
                     resolution */
  int flags;      /* getaddrinfo AI_* flags */
  int has_sock;   /* nonzero: wrap `sock` (asyncio's sock=), an already
                     connected stream socket, instead of connecting; host
                     must be NULL, port 0. The transport owns it once the
                     call succeeds. */
  int sock;
  /* Appended (TLS); read only when `size` covers them: */
  aloop_tls_config_t *tls;     /* TLS (asyncio's ssl=), a client config, or
                                  NULL: the future resolves after the
                                  handshake (see "TLS" below) */
  const char *server_hostname; /* with tls: the name to verify and send
                                  (SNI); NULL: the config's, else host */
} aloop_connect_options_t;

/* ------------------------------------------------------------------------ */
/* Types of the Unix-socket, datagram and pipe API                           */
/* ------------------------------------------------------------------------ */

/* A datagram transport (asyncio's DatagramTransport): an opaque handle, valid
 * from the endpoint's future until its connection_lost callback returns. */
typedef struct aloop_datagram_s aloop_datagram_t;

/* A datagram protocol: optional callbacks (NULL = ignore), copied when set.
 * `size` must be sizeof(aloop_datagram_protocol_t). The userdata given with
 * the protocol is passed to every callback.
 *  - connection_made: the endpoint is ready.
 *  - datagram_received: one datagram of `len` bytes (len may be 0) from
 *    host:port. `host` is the sender's numeric address (for AF_UNIX: its
 *    path, "@name" for an abstract name, "" for an unbound sender; port 0).
 *    data and host are valid only during the call.
 *  - error_received: a send or receive failed (an ALOOP_E* code, e.g.
 *    ALOOP_ECONNREFUSED on a connected UDP socket after an ICMP port
 *    unreachable); the endpoint stays open (asyncio semantics).
 *  - connection_lost: the endpoint is closed; `error` is 0 for close/abort,
 *    else an ALOOP_E* code. The last callback: afterwards the handle is
 *    stale.
 *  - pause_writing / resume_writing: the send buffer crossed the high / low
 *    water mark. */
typedef struct aloop_datagram_protocol_s {
  size_t size;
  void (*connection_made)(aloop_datagram_t *dgram, void *userdata);
  void (*datagram_received)(aloop_datagram_t *dgram, const char *data,
                            size_t len, const char *host, int port,
                            void *userdata);
  void (*error_received)(aloop_datagram_t *dgram, int error, void *userdata);
  void (*connection_lost)(aloop_datagram_t *dgram, int error, void *userdata);
  void (*pause_writing)(aloop_datagram_t *dgram, void *userdata);
  void (*resume_writing)(aloop_datagram_t *dgram, void *userdata);
  /* Appended; read only when `size` covers it: */
  unsigned int flags; /* ALOOP_PROTOCOL_QUEUED: records instead of calls
                         inside aloop_loop_poll (see "The event queue") */
} aloop_datagram_protocol_t;

/* Options of aloop_create_datagram_endpoint (NULL = defaults). */
typedef struct aloop_datagram_options_s {
  size_t size;         /* sizeof(aloop_datagram_options_t) */
  int family;          /* 0 = from the addresses; AF_INET, AF_INET6 or
                          AF_UNIX, the platform's <sys/socket.h> values */
  int reuse_port;      /* > 0: SO_REUSEPORT */
  int allow_broadcast; /* > 0: SO_BROADCAST; a remote address is then only
                          the default destination (not connected) */
  /* Appended (asyncio's sock=); read only when `size` covers them: */
  int has_sock; /* nonzero: use `sock`, an existing datagram socket (bound
                   and/or connected as the caller left it), instead of
                   creating one: local_host and remote_host must be NULL and
                   family, reuse_port and allow_broadcast 0 (else
                   ALOOP_EINVAL); ALOOP_EINVAL for a socket that is not a
                   datagram socket, ALOOP_EBUSY for an fd the loop uses. The
                   socket is made non-blocking; when it is connected, its
                   peer is the endpoint's remote address. The endpoint owns
                   it once the call succeeds (it stays the caller's when the
                   call fails). */
  int sock;
} aloop_datagram_options_t;

/* Options of aloop_create_unix_server (NULL = defaults). */
typedef struct aloop_unix_server_options_s {
  size_t size;        /* sizeof(aloop_unix_server_options_t) */
  int backlog;        /* listen backlog; <= 0 means 100 */
  int start_serving;  /* < 0 default (on), 0 off, > 0 on */
  int cleanup_socket; /* remove the socket file when the server closes (if
                         it is still the one it created): < 0 default (on),
                         0 off, > 0 on */
  /* Appended (TLS); read only when `size` covers it: */
  aloop_tls_config_t *tls; /* accepted connections use TLS (a server
                              config), or NULL (see "TLS" below) */
} aloop_unix_server_options_t;

/* ------------------------------------------------------------------------ */
/* Types of the sock_*, DNS and sendfile API                                 */
/* ------------------------------------------------------------------------ */

/* One buffer of aloop_transport_writev (the layout of POSIX struct iovec). */
typedef struct aloop_iovec_s {
  const void *base;
  size_t len;
} aloop_iovec_t;

/* One result of aloop_getaddrinfo (asyncio's (family, type, proto,
 * canonname, sockaddr) tuple). The results form a list linked by `next`, in
 * one block of library-owned memory that aloop_addrinfo_free() releases
 * (given the head of the list). Fields may be appended in later versions:
 * walk the list with `next`, never by indexing. Family, type and protocol
 * are the platform's values (AF_INET / AF_INET6, SOCK_STREAM / SOCK_DGRAM /
 * SOCK_RAW, IPPROTO_TCP / IPPROTO_UDP / 0). */
typedef struct aloop_addrinfo_s {
  size_t size;                   /* sizeof(aloop_addrinfo_t) of the library */
  struct aloop_addrinfo_s *next; /* the next result, or NULL */
  int family;
  int type;
  int protocol;
  int port;                      /* host byte order */
  const void *addr;      /* the address as a struct sockaddr_in or
                            sockaddr_in6 (for connect() / bind()) ... */
  size_t addrlen;        /* ... of this many bytes */
  const char *host;      /* numeric address: "127.0.0.1", "::1", "fe80::1%eth0" */
  const char *canonname; /* the canonical name on the first result when
                            AI_CANONNAME was given, else "" */
  uint32_t scope_id;     /* IPv6 scope id (0 otherwise) */
} aloop_addrinfo_t;

/* ------------------------------------------------------------------------ */
/* Types of the subprocess, signal and executor API                          */
/* ------------------------------------------------------------------------ */

/* A subprocess transport (asyncio's SubprocessTransport): an opaque handle,
 * valid from the connection_made callback (or the spawn future's result)
 * until its connection_lost callback returns. */
typedef struct aloop_subprocess_s aloop_subprocess_t;

/* A subprocess protocol: optional callbacks (NULL = ignore), copied when it
 * is set. `size` must be sizeof(aloop_subprocess_protocol_t). The userdata
 * given with the protocol is passed to every callback. `fd` is the child's
 * 0 (stdin), 1 (stdout) or 2 (stderr). The order is asyncio's:
 *  - connection_made: first, once the child is started and its pipes are
 *    connected.
 *  - pipe_data_received: `len` (> 0) bytes the child wrote to fd 1 or 2
 *    (data valid only during the call).
 *  - pipe_connection_lost: the pipe of `fd` is closed (EOF, close, or
 *    error: `error` is 0 or an ALOOP_E* code). Once per pipe.
 *  - process_exited: the child exited and was reaped; its return code is
 *    available (aloop_subprocess_get_returncode). No order is guaranteed
 *    between process_exited and the pipe callbacks (data still buffered in a
 *    pipe may arrive after it), as in asyncio.
 *  - connection_lost: last, once the child exited AND every pipe is closed;
 *    `error` is 0. After it returns, the subprocess handle is stale.
 *  - pause_writing / resume_writing: the stdin pipe's write buffer crossed
 *    its high / low water mark. */
typedef struct aloop_subprocess_protocol_s {
  size_t size;
  void (*connection_made)(aloop_subprocess_t *proc, void *userdata);
  void (*pipe_data_received)(aloop_subprocess_t *proc, int fd,
                             const char *data, size_t len, void *userdata);
  void (*pipe_connection_lost)(aloop_subprocess_t *proc, int fd, int error,
                               void *userdata);
  void (*process_exited)(aloop_subprocess_t *proc, void *userdata);
  void (*connection_lost)(aloop_subprocess_t *proc, int error,
                          void *userdata);
  void (*pause_writing)(aloop_subprocess_t *proc, void *userdata);
  void (*resume_writing)(aloop_subprocess_t *proc, void *userdata);
} aloop_subprocess_protocol_t;

/* What a child's stdin, stdout or stderr is connected to. */
typedef enum aloop_stdio_e {
  ALOOP_STDIO_PIPE = 0,    /* a pipe to the parent, with a transport (the
                              default, asyncio's subprocess.PIPE) */
  ALOOP_STDIO_DEVNULL = 1, /* /dev/null (subprocess.DEVNULL) */
  ALOOP_STDIO_INHERIT = 2, /* this process's own fd 0, 1 or 2 (None) */
  ALOOP_STDIO_FD = 3,      /* the fd in stdin_fd / stdout_fd / stderr_fd
                              (borrowed: the child gets a copy) */
  ALOOP_STDIO_STDOUT = 4   /* stderr only: wherever stdout goes
                              (subprocess.STDOUT) */
} aloop_stdio_t;

/* Options of aloop_subprocess_exec / aloop_subprocess_shell (NULL = all
 * defaults: three pipes, this process's environment and working directory).
 * Zero-initialise it and set `size`. */
typedef struct aloop_subprocess_options_s {
  size_t size;            /* sizeof(aloop_subprocess_options_t) */
  const char *const *env; /* NULL-terminated "NAME=value" strings; NULL:
                             this process's environment (environ) as it is
                             at the call */
  const char *cwd;        /* the child's working directory; NULL: ours */
  int stdin_mode;         /* aloop_stdio_t values */
  int stdout_mode;
  int stderr_mode;
  int stdin_fd;           /* with ALOOP_STDIO_FD */
  int stdout_fd;
  int stderr_fd;
  int start_new_session;  /* nonzero: the child calls setsid() */
} aloop_subprocess_options_t;

/* A Unix signal handler; runs on the loop thread. */
typedef void (*aloop_signal_cb)(aloop_loop_t *loop, int signum,
                                void *userdata);

/* A job of the default executor (aloop_run_in_executor). Runs on one of the
 * library's worker threads, NOT on the loop thread: it may block, but it
 * must not call non-thread-safe library functions (only those marked
 * THREAD-SAFE). Its return value becomes the future's result. */
typedef void *(*aloop_executor_fn)(void *arg);

/* ------------------------------------------------------------------------ */
/* Types of the TLS API                                                      */
/* ------------------------------------------------------------------------ */

/* TLS protocol versions (aloop_tls_config_set_min_version / _max_version,
 * aloop_transport_get_tls_version): the values on the wire. */
#define ALOOP_TLS_VERSION_1_2 0x0303
#define ALOOP_TLS_VERSION_1_3 0x0304

/* Verification of the peer's certificate (aloop_tls_config_set_verify). */
typedef enum aloop_tls_verify_e {
  ALOOP_TLS_VERIFY_NONE = 0,     /* no verification (a server's default) */
  ALOOP_TLS_VERIFY_REQUIRED = 1, /* the peer must present a valid
                                    certificate (a client's default) */
  ALOOP_TLS_VERIFY_OPTIONAL = 2  /* server: verify a client certificate if
                                    one is sent; client: as REQUIRED */
} aloop_tls_verify_t;

/* ------------------------------------------------------------------------ */
/* Event queue records (see aloop_loop_poll)                                 */
/* ------------------------------------------------------------------------ */
/* For hosts whose every call into the library, or callback out of it, is
 * expensive (Python over ctypes: 0.2-1.5 us per crossing). One call,
 * aloop_loop_poll(), performs the host's queued writes, runs one iteration
 * and leaves every event of protocols flagged ALOOP_PROTOCOL_QUEUED in an
 * array of records plus a read arena, memory the host owns and reads
 * directly. The host dispatches them itself, in order (asyncio appends them
 * to its ready queue, behind the callbacks that were ready before the poll).
 *
 *  - ALOOP_EVENT_DATA: `length` bytes at `arena + offset` (read straight
 *    into the arena by the socket read; valid until the next poll).
 *  - ALOOP_EVENT_EOF: the peer closed its write side. Nothing else is done:
 *    call aloop_transport_close() (or queue ALOOP_WRITE_CLOSE) unless you
 *    keep the transport half-open (asyncio's eof_received returning true).
 *  - ALOOP_EVENT_CONNECTION_LOST: the last event of a transport; `error` is
 *    0 or an ALOOP_E* code. The transport handle in it is already stale, as
 *    in that transport's records before it returned by the same poll (or
 *    the previous one, when this record did not fit): calls on it return
 *    ALOOP_EBADF, queued operations on it are skipped;
 *    the protocol's free_cb runs at the start of the aloop_loop_poll() after
 *    the one that returned this record, so `userdata` is valid while you
 *    dispatch. Likewise a queued protocol replaced with
 *    aloop_transport_set_protocol() while you dispatch: its free_cb runs at
 *    the start of the next aloop_loop_poll() or aloop_loop_run*().
 *  - CONNECTION_MADE, PAUSE_WRITING, RESUME_WRITING as the callbacks.
 *  - Datagram endpoints whose aloop_datagram_protocol_t has the flag:
 *    ALOOP_EVENT_DATAGRAM: `length` bytes at `arena + offset`, then the
 *    sender's address as a struct sockaddr of `error` bytes (0: none, e.g. a
 *    connected socket); `transport` is the aloop_datagram_t. A datagram
 *    larger than the whole arena is given to datagram_received instead.
 *    ALOOP_EVENT_ERROR_RECEIVED: `error` is the code. CONNECTION_MADE,
 *    CONNECTION_LOST, PAUSE/RESUME_WRITING as for streams.
 *  - Queued fd watchers (aloop_add_reader_queued / _writer_queued):
 *    ALOOP_EVENT_READABLE / ALOOP_EVENT_WRITABLE, one record per watcher
 *    and poll while its fd is ready (level-triggered; a watcher with both
 *    ready gives READABLE then WRITABLE, as asyncio calls the reader first).
 *    `transport` holds the fd (an integer, not a handle), `userdata` the
 *    watcher's. `error` is 0, or the ALOOP_E* code of a queued
 *    ALOOP_WRITE_ADD_READER/_WRITER that failed: that watcher is removed,
 *    and the host runs its callback once (its I/O on the fd then sees the
 *    error, as for an fd that epoll reports in error).
 *
 * Nothing is dropped: a transport is not read while the arena has less than
 * 4 KiB free (it stays readable), and a record that does not fit is kept in
 * order and delivered first by the next poll, which then does not wait.
 * One poll reads each transport at most once and starts no read once it has
 * put 256 KiB in the arena (the host copies the bytes out while they are
 * still in the cache); the transports it held back are read first by the
 * next poll, so every ready transport gets its turn.
 * Layout: 40 bytes, little- or big-endian as the platform. */
typedef enum aloop_event_kind_e {
  ALOOP_EVENT_CONNECTION_MADE = 1,
  ALOOP_EVENT_DATA = 2,
  ALOOP_EVENT_EOF = 3,
  ALOOP_EVENT_CONNECTION_LOST = 4,
  ALOOP_EVENT_PAUSE_WRITING = 5,
  ALOOP_EVENT_RESUME_WRITING = 6,
  ALOOP_EVENT_DATAGRAM = 7,      /* datagram endpoints, see below */
  ALOOP_EVENT_ERROR_RECEIVED = 8, /* datagram endpoints: `error` is the code */
  ALOOP_EVENT_READABLE = 9,       /* queued fd watchers: `transport` is the fd */
  ALOOP_EVENT_WRITABLE = 10
} aloop_event_kind_t;

typedef struct aloop_event_s {
  uint32_t kind;                /* aloop_event_kind_t */
  int32_t error;                /* CONNECTION_LOST: 0 or an ALOOP_E* code */
  aloop_transport_t *transport; /* the transport (stale in CONNECTION_LOST) */
  void *userdata;               /* the protocol's userdata */
  uint64_t offset;              /* DATA: where the bytes start in the arena */
  uint64_t length;              /* DATA: how many bytes */
} aloop_event_t;

/* A queued write operation, performed in order by the next
 * aloop_loop_poll() or aloop_loop_flush(). ALOOP_WRITE_DATA takes the next
 * `length` bytes of the write arena (operations consume the arena in order,
 * from its start); ALOOP_WRITE_EOF and ALOOP_WRITE_CLOSE are
 * aloop_transport_write_eof() / _close() after the writes before them.
 * An operation on a transport that is already closed is skipped (its
 * connection_lost reported why). 16 bytes.
 *
 * ALOOP_WRITE_SENDTO is aloop_datagram_sendto() on the datagram endpoint in
 * `transport` (an aloop_datagram_t *), with the destination as a struct
 * sockaddr rather than a host string. Its `length` bytes of the arena are:
 * a uint32_t address length N (host byte order, at most
 * sizeof(struct sockaddr_storage)), N bytes of struct sockaddr (AF_INET,
 * AF_INET6 or AF_UNIX; N = 0: the endpoint's remote address, required for a
 * connected endpoint), then the datagram (length - 4 - N bytes, may be 0).
 * Bytes that are not so framed make the whole aloop_loop_poll() /
 * aloop_loop_flush() fail with ALOOP_EINVAL before any operation runs. When
 * it runs, the send is what aloop_datagram_sendto() does, except that
 * nothing can be returned: a send error, an address that is not a valid
 * struct sockaddr or not of the socket's family, a destination on a
 * connected endpoint other than its remote address, or no destination on
 * an unconnected one, is reported as error_received (a queued protocol's
 * ALOOP_EVENT_ERROR_RECEIVED record, inside aloop_loop_poll(); a direct
 * call of error_received inside aloop_loop_flush()), as asyncio reports a
 * send that fails after it was buffered. A datagram the socket does not
 * take at once is buffered in the endpoint and counts in its write buffer
 * (pause_writing above the high-water mark). An IPv4 address on an IPv6
 * socket is sent to its IPv4-mapped address, as aloop_datagram_sendto().
 * ALOOP_WRITE_CLOSE on a datagram endpoint is aloop_datagram_close() after
 * the sends queued before it; ALOOP_WRITE_DATA and ALOOP_WRITE_EOF on a
 * datagram endpoint, and ALOOP_WRITE_SENDTO on a stream transport, are
 * skipped.
 *
 * Fd watcher operations, so that a host adds and removes a queued watcher
 * (aloop_add_reader_queued) without a call each; `transport` holds the fd
 * (an integer, at most INT_MAX, else the poll fails with ALOOP_EINVAL),
 * `length` is unused:
 *  - ALOOP_WRITE_REMOVE_READER / _WRITER: aloop_remove_reader / _writer.
 *  - ALOOP_WRITE_ADD_READER / _WRITER: the fd's reader / writer becomes (or
 *    stays) a queued watcher, with the userdata of the queued watcher it
 *    had (else NULL). Meant for a host that removed a queued watcher in its
 *    own tables and adds it back before telling the library: the fd's
 *    registration with the kernel is checked again (the fd may have been
 *    closed and its number reused meanwhile; the kernel forgets a closed
 *    file). A failure is reported as the watcher's record with `error` set
 *    (inside aloop_loop_poll), or to the exception handler (inside
 *    aloop_loop_flush); the watcher is then removed.
 */
typedef enum aloop_write_kind_e {
  ALOOP_WRITE_DATA = 0,
  ALOOP_WRITE_EOF = 1,
  ALOOP_WRITE_CLOSE = 2,
  ALOOP_WRITE_SENDTO = 3, /* datagram endpoints: see above */
  ALOOP_WRITE_REMOVE_READER = 4,
  ALOOP_WRITE_REMOVE_WRITER = 5,
  ALOOP_WRITE_ADD_READER = 6,
  ALOOP_WRITE_ADD_WRITER = 7
} aloop_write_kind_t;

typedef struct aloop_write_op_s {
  aloop_transport_t *transport; /* ALOOP_WRITE_SENDTO: an aloop_datagram_t */
  uint32_t length; /* DATA and SENDTO: bytes taken from the arena */
  uint32_t kind;   /* aloop_write_kind_t */
} aloop_write_op_t;

/* aloop_loop_poll's arguments in memory, for hosts that pay per argument
 * (ctypes converts each one: a call with one pointer costs about a third
 * of one with three). Fill `size` and `loop` once; set `timeout` and
 * `nwrites` before each aloop_loop_poll_args() call. */
typedef struct aloop_poll_args_s {
  size_t size;        /* sizeof(aloop_poll_args_t) */
  aloop_loop_t *loop;
  double timeout;     /* as aloop_loop_poll's */
  uint64_t nwrites;   /* as aloop_loop_poll's */
} aloop_poll_args_t;

/* What the library's Go runtime costs its host, and its allocation counter
 * (aloop_runtime_stats). Size-prefixed: set `size` to sizeof the struct;
 * the library fills the members that fit in it. */
typedef struct aloop_runtime_stats_s {
  size_t size;
  uint64_t mallocs;    /* heap objects allocated since the library loaded */
  uint64_t frees;      /* heap objects freed since the library loaded */
  uint64_t heap_bytes; /* bytes of allocated heap objects (live, or not yet
                          freed by the collector) */
  uint64_t heap_sys_bytes; /* bytes of heap memory obtained from the OS and
                              not returned (heap_released_bytes excepted) */
  uint64_t heap_released_bytes; /* of heap_sys_bytes: returned to the OS */
  uint64_t stack_bytes; /* bytes of goroutine stacks */
  uint64_t sys_bytes;   /* all memory the runtime mapped (virtual; only what
                           it touched is resident) */
  uint64_t gc_cycles;   /* completed garbage collections */
  int32_t gomaxprocs;   /* threads that may run Go code at once */
  int32_t threads;      /* live OS threads the runtime owns (a host thread
                           counts while it is inside the library) */
} aloop_runtime_stats_t;

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
 * length (excluding NUL), 0 if there is none, or ALOOP_EINVAL when buf is
 * NULL or buflen is 0 (a truncated result tells the length to allocate).
 * The message lives in the thread's own storage: it is released when the
 * thread exits, and a later thread never sees it. */
int aloop_last_error(char *buf, size_t buflen);

/* ------------------------------------------------------------------------ */
/* The library's Go runtime                                                  */
/* ------------------------------------------------------------------------ */

/* The runtime inside the library is bounded for a guest in another
 * program's process (docs/architecture.md, "The runtime in a host's
 * process"); the Go environment variables GOMAXPROCS, GOGC and GOMEMLIMIT,
 * read when the library loads, still override its defaults.
 *
 * Fills *out (out->size set by the caller to sizeof(aloop_runtime_stats_t);
 * members beyond it are left alone) with the runtime's counters. Any
 * thread (THREAD-SAFE). It stops the runtime's other work briefly (tens of
 * microseconds): for monitoring and tests, not for a hot path. ALOOP_EINVAL
 * for NULL or a size smaller than the size member. */
int aloop_runtime_stats(aloop_runtime_stats_t *out);

/* ------------------------------------------------------------------------ */
/* Loop                                                                      */
/* ------------------------------------------------------------------------ */

/* Creates a loop. */
int aloop_loop_new(aloop_loop_t **out_loop);
/* Closes the loop: drops pending callbacks (their free_cb run) and makes
 * further scheduling fail with ALOOP_ECLOSED. Idempotent (closing a closed
 * loop returns 0). Returns ALOOP_EBUSY while the loop runs or while it has
 * live transports, servers, datagram endpoints, subprocesses, fd watchers
 * or pending operations (sock_* operations, name lookups, sendfiles,
 * executor jobs). The handle stays valid (for aloop_loop_is_closed) until
 * aloop_loop_free(). */
int aloop_loop_close(aloop_loop_t *loop);
/* Closes the loop whatever is still alive on it: the close for hosts that
 * release objects from a garbage collector or at exit and cannot wait for
 * connection_lost and retry aloop_loop_close (sqlite3_close_v2 plays this
 * part there). Before it returns:
 *  - every transport (a subprocess's pipes too), datagram endpoint and
 *    server of the loop is closed at once, its socket closed (no graceful
 *    close: unsent data is dropped) and its handle released, as after
 *    connection_lost / aloop_server_free;
 *  - every subprocess is closed (a running child is killed; the library
 *    reaps it) and its handle released; fd watchers (aloop_add_reader /
 *    aloop_add_writer), signal handlers, pending callbacks and timers are
 *    removed;
 *  - every pending future of the loop is cancelled (sock_* operations,
 *    connections, name lookups, executor jobs, futures of aloop_future_new
 *    still referenced...), and the loop is closed (aloop_loop_is_closed).
 * No callback of the host runs: no protocol callback (connection_lost
 * neither), no done-callback, scheduled callback, timer, watcher or signal
 * handler. Every free_cb of every userdata the loop held (protocols,
 * on_connection, callbacks, watchers, done-callbacks) runs exactly once,
 * inside this call. What the host still holds stays its own: future
 * handles until aloop_future_free (done, cancelled), the loop handle until
 * aloop_loop_free; every other handle of the loop is stale (ALOOP_EBADF),
 * so that releasing it again is harmless. Goroutines of operations under
 * way (getaddrinfo, executor jobs) end on their own; their results are
 * dropped. On the loop's thread only; ALOOP_EBUSY while the loop runs (not
 * from one of its callbacks); on a closed loop it does nothing and returns
 * 0. */
int aloop_loop_close_force(aloop_loop_t *loop);
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
 * that keep their own ready queue and timers. It may return earlier with
 * nothing done: a loop that has worked and then finds nothing to do for a
 * second gives its free memory back to the OS once (a collection of the
 * library's Go heap), at the end of that second's wait. */
int aloop_loop_run_once(aloop_loop_t *loop, double timeout);
/* ------------------------------------------------------------------------ */
/* The event queue: one call per iteration (batched polling)                 */
/* ------------------------------------------------------------------------ */
/* (The records and their rules: "Event queue records" above.) */
/* Gives the loop the memory aloop_loop_poll() fills: room for `nevents`
 * records (>= 1) and a read arena of `arena_size` bytes (>= 4096). Both
 * stay yours; they must stay valid until replaced or the loop is freed, and
 * you must not use them while a poll runs. NULL/0 for both removes the
 * queue. ALOOP_EBUSY inside a poll. */
int aloop_loop_set_event_queue(aloop_loop_t *loop, aloop_event_t *events,
                               size_t nevents, void *arena,
                               size_t arena_size);
/* Gives the loop the memory of queued writes: room for `nops` operations
 * and a write arena of `arena_size` bytes; aloop_loop_poll() and
 * aloop_loop_flush() are told how many operations are filled. NULL/0 for
 * both removes it. */
int aloop_loop_set_write_queue(aloop_loop_t *loop, const aloop_write_op_t *ops,
                               size_t nops, const void *arena,
                               size_t arena_size);
/* Performs the first `nwrites` queued write operations, then runs one
 * iteration as aloop_loop_run_once(loop, timeout) with the event queue
 * open. Returns the number of event records written (>= 0), or a negative
 * error (ALOOP_EINVAL without an event queue or with more writes than
 * queued room, ALOOP_EBUSY while running, ALOOP_ECLOSED). */
int aloop_loop_poll(aloop_loop_t *loop, double timeout, size_t nwrites);
/* Performs the first `nwrites` queued write operations now (protocol
 * callbacks they cause, such as pause_writing, are called directly). */
int aloop_loop_flush(aloop_loop_t *loop, size_t nwrites);
/* aloop_loop_poll(args->loop, args->timeout, args->nwrites): the same
 * results and errors; ALOOP_EINVAL for a NULL `args` or a `size` that is
 * not set. */
int aloop_loop_poll_args(const aloop_poll_args_t *args);
/* THREAD-SAFE. Returns 1 if aloop_loop_stop() was called since a DEFAULT
 * run last returned, and clears that request; 0 if not. For a host that
 * runs its own run_forever over aloop_loop_poll(): a poll, as a
 * single-iteration run, leaves the request in place (it would make every
 * later poll return without waiting), so the host asks after each poll and
 * stops when it reads 1. */
int aloop_loop_take_stop(aloop_loop_t *loop);

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
/* Debug mode (asyncio's set_debug/get_debug). get returns 1/0 or error.
 * The flag itself is safe to read and set from any thread (the loop-thread
 * check of debug mode reads it on the calling thread). */
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
 * stop, wakeup, completions of background operations: these call it on a
 * library thread). cb NULL removes it. Replacing or removing it (or
 * aloop_loop_free) releases the previous userdata only once no thread is
 * inside the previous callback any more: it waits for other threads' calls
 * to return; called from inside the callback, the free_cb runs when that
 * call returns. */
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
/* Calls cb after `delay` seconds (delay <= 0: on the next iteration). A NaN
 * delay or time is ALOOP_EINVAL (uvloop raises ValueError; a NaN would break
 * the order of the loop's timers); +infinity is a time that never comes (the
 * timer stays pending until cancelled, as asyncio.sleep(math.inf)) and
 * -infinity is the next iteration, as in uvloop. The same for call_at. */
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
 * an ALOOP_E* code and a message.
 *
 * References. A future handle counts references: aloop_future_new (and
 * every function that returns a future) gives the caller one,
 * aloop_future_ref adds one, aloop_future_free drops one. A pending
 * done-callback holds one of its own (dropped after it ran or was removed).
 * The handle stays valid while any reference is held; once the last is
 * dropped it is stale (ALOOP_EBADF everywhere, never a crash: handles are
 * generation-checked and are never reused for another object).
 *
 * Futures shared by two pieces of code (docs/interop.md). A library that
 * creates a future and hands it to a host (another language's binding, or
 * any caller) keeps its own reference to resolve it later:
 *     aloop_future_new(loop, &f); aloop_future_ref(f);  <- two references
 *     *out = f;                   the caller's, freed by the caller
 *     ...later: aloop_future_set_result(f, v) (or _set_exception, or
 *     nothing if aloop_future_cancelled(f)); aloop_future_free(f);  <- the
 *     library's own
 * Either side may free first; neither leaves the other a stale handle, and
 * resolving or cancelling on either side is seen by the other (a
 * set_result after the other side cancelled returns ALOOP_ESTATE, and a
 * pointer result that was never delivered is the resolver's to release).
 * A caller that abandons a pending future cancels it before freeing it:
 * a result set on a future whose other holders are all gone has nobody to
 * release it.
 * A pointer-sized result set with aloop_future_set_result is not owned by
 * the future: document who releases what it points to (the example in
 * examples/rpc: whoever reads it with aloop_future_result). Bindings wrap
 * such a future as their native awaitable and take over the caller's
 * reference (Python EventLoop.wrap_future, Node Loop.wrapFuture, Go
 * Loop.WrapFuture); cancelling the native awaitable cancels the C future. */
int aloop_future_new(aloop_loop_t *loop, aloop_future_t **out_future);
/* Releases one reference (the caller's); done-callbacks already added still
 * run, and the handle stays valid for them (it is passed to them) until the
 * last one has run. Freeing more often than the references held returns
 * ALOOP_EBADF.
 * When the host's last reference goes, an object the future resolves to
 * (now or once it completes) that the host never received (its result was
 * not read and no callback was given its handle: a server, or a transport,
 * endpoint or subprocess whose protocol has no connection_made) is closed,
 * since nothing could reach it any more: a transport or endpoint
 * gracefully (its connection_lost runs), a server stops listening (its
 * on_connection free_cb runs), a subprocess as by aloop_subprocess_close (a
 * running child is killed); free_cb runs as after any close. */
int aloop_future_free(aloop_future_t *future);
/* Adds a reference, released with one more aloop_future_free (see
 * References above). ALOOP_EBADF for a future whose references were all
 * dropped. */
int aloop_future_ref(aloop_future_t *future);
/* 1 if done, 0 if not, or error. */
int aloop_future_done(aloop_future_t *future);
/* 1 if cancelled, 0 if not, or error. */
int aloop_future_cancelled(aloop_future_t *future);
/* Cancels the future: returns 1 if it was cancelled, 0 if already done. */
int aloop_future_cancel(aloop_future_t *future);
/* Marks the future done with a result; ALOOP_ESTATE if already done.
 * On the future of a library operation (a connection, a server, a pipe, an
 * endpoint, a subprocess, a sock_* operation...) the host completing it
 * first abandons the operation, as aloop_future_cancel does: what the
 * operation made is closed and released without any protocol callback, the
 * protocol's free_cb runs, and the future keeps the host's result (its
 * result getters return it, or ALOOP_EINVAL for another kind). From inside
 * connection_made (the future is still pending then), cancelling or
 * completing the future closes the new transport: connection_lost follows,
 * and free_cb runs after it (asyncio closes the transport when
 * create_connection is cancelled). */
int aloop_future_set_result(aloop_future_t *future, void *result);
/* Marks the future failed with an ALOOP_E* code (< 0) and an optional
 * message; ALOOP_ESTATE if already done. On the future of a library
 * operation: as aloop_future_set_result. */
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
/* Adds a done-callback (scheduled with call_soon once the future is done).
 * ALOOP_ECLOSED when the future's loop is closed (the callback could never
 * run): nothing is registered and free_cb runs inside the call, as for any
 * failure. A callback added before the loop closed whose future is still
 * pending is dropped by aloop_loop_close (its free_cb runs, it never). */
int aloop_future_add_done_callback(aloop_future_t *future, aloop_future_cb cb,
                                   void *userdata, aloop_free_cb free_cb);
/* Removes every done-callback with this cb and userdata; returns how many. */
int aloop_future_remove_done_callback(aloop_future_t *future,
                                      aloop_future_cb cb, void *userdata);

/* ------------------------------------------------------------------------ */
/* Exception handler                                                         */
/* ------------------------------------------------------------------------ */

/* Sets the loop's exception handler; cb NULL restores the default one (which
 * prints the context to stderr; its userdata is released at once). The
 * previous handler's free_cb runs now, or, when the handler replaces itself
 * from inside its own call, once that call returns. */
int aloop_loop_set_exception_handler(aloop_loop_t *loop, aloop_exception_cb cb,
                                     void *userdata, aloop_free_cb free_cb);
/* Gets the handler set (NULL cb and userdata for the default one). */
int aloop_loop_get_exception_handler(aloop_loop_t *loop,
                                     aloop_exception_cb *out_cb,
                                     void **out_userdata);
/* Calls the current handler with a context built from message (NULL: a
 * generic message) and error (0: none). */
int aloop_loop_call_exception_handler(aloop_loop_t *loop, const char *message,
                                      int error);
/* The default handler: prints the context to stderr. */
int aloop_loop_default_exception_handler(
    aloop_loop_t *loop, const aloop_exception_context_t *context);

/* ------------------------------------------------------------------------ */
/* Watching file descriptors (level-triggered, as asyncio)                   */
/* ------------------------------------------------------------------------ */

/* Calls cb each iteration while fd is readable / writable. Adding again
 * replaces the previous callback (whose free_cb runs). A negative fd is
 * ALOOP_EINVAL; an fd that is not open is ALOOP_EBADF, checked before the
 * loop records anything (the loop's fd table grows only for open fds, so
 * no fd number, here or in any function that takes one, costs memory in
 * proportion to its value). */
int aloop_add_reader(aloop_loop_t *loop, int fd, aloop_fd_cb cb,
                     void *userdata, aloop_free_cb free_cb);
int aloop_add_writer(aloop_loop_t *loop, int fd, aloop_fd_cb cb,
                     void *userdata, aloop_free_cb free_cb);
/* Queued watchers, for hosts that poll with aloop_loop_poll() (see "Event
 * queue records"): instead of calling a callback, each aloop_loop_poll()
 * in which fd is readable / writable leaves an ALOOP_EVENT_READABLE /
 * ALOOP_EVENT_WRITABLE record whose `transport` is fd and `userdata` the
 * one given here (borrowed: no free_cb, the library never dereferences
 * it). Level-triggered; a run of the loop other than aloop_loop_poll()
 * does not report it (a ready fd makes aloop_loop_run* return at once and
 * spin: drive such a loop with aloop_loop_poll()). Replaces fd's reader /
 * writer, queued or not, as aloop_add_reader does; removed with
 * aloop_remove_reader / _writer, or with the queued operations
 * ALOOP_WRITE_REMOVE_READER / _WRITER. Errors as aloop_add_reader (an fd
 * owned by a transport or a server is ALOOP_EBUSY). Loop thread only. */
int aloop_add_reader_queued(aloop_loop_t *loop, int fd, void *userdata);
int aloop_add_writer_queued(aloop_loop_t *loop, int fd, void *userdata);
/* Returns 1 if a callback was registered and removed, 0 if none was. */
int aloop_remove_reader(aloop_loop_t *loop, int fd);
int aloop_remove_writer(aloop_loop_t *loop, int fd);

/* ------------------------------------------------------------------------ */
/* TCP                                                                       */
/* ------------------------------------------------------------------------ */

/* Connects to host:port (asyncio's create_connection) with the given
 * protocol. host NULL means the loopback addresses; every resolved address
 * is tried, one after another, or with Happy Eyeballs when
 * options->happy_eyeballs_delay > 0; when several fail, the error message
 * names every attempt and the code is the last attempt's. The future
 * resolves to the transport after connection_made has run, or fails with
 * the connection error (then no protocol callback runs, and free_cb runs).
 * The future is returned in *out_future. */
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
 * terminated, ALOOP_ENOSPACE if hostlen is too small) and its port into
 * *out_port. Either host or out_port may be NULL, not both (ALOOP_EINVAL). */
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
 * takes and buffers the rest, in order. After write_eof: ALOOP_EPIPE.
 * After aloop_transport_close() the transport still takes writes until
 * connection_lost is about to run (as asyncio's socket transports do: a
 * protocol layered on the transport, e.g. TLS done by the host, hands over
 * what it still holds from resume_writing, which keeps running while the
 * buffer drains; a host on the queued seam does so at its next poll); they
 * are sent in order before the close. ALOOP_ECLOSED after abort or a
 * connection error, and on a TLS transport once close() sent its
 * close_notify; ALOOP_EBADF once connection_lost ran (the handle is stale). Every byte a write accepted reaches a peer that keeps
 * reading, unless the transport is aborted or the connection fails.
 * ALOOP_EINVAL for a len no buffer can have (more than 2^40). */
int aloop_transport_write(aloop_transport_t *transport, const void *data,
                          size_t len);
/* Flushes the buffer, then closes; connection_lost(0) follows. Idempotent.
 * The close is graceful: the socket is not closed into a TCP reset while the
 * kernel still holds unsent bytes (a reset would drop them). Input that
 * arrives meanwhile is discarded; if the peer has not yet acknowledged
 * everything, the write side is shut down and the fd stays open in the
 * background (invisible to the protocol: connection_lost has run, the
 * handle is stale) until the peer took the data, closed, or 30 s passed; a
 * TLS transport waits for the peer's EOF (its close_notify answer). */
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
/* Sets the water marks: pause_writing is called when the buffer grows above
 * `high`, resume_writing when it drains to `low` or less. low must not exceed
 * high (ALOOP_EINVAL). asyncio's defaults are ALOOP_WRITE_BUFFER_HIGH and
 * ALOOP_WRITE_BUFFER_LOW; high 0 pauses on any buffered byte. */
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

/* Unix socket paths: a path that starts with '@' names a socket in Linux's
 * abstract namespace (Python's leading '\0'; no file is created); any other
 * path is a file (use "./@x" for a file whose name starts with '@'). Paths
 * are at most 107 bytes. Addresses of Unix sockets are reported the same way
 * (host = path, port = 0; "" for an unnamed socket). */

/* Connects to the Unix stream socket at path (asyncio's
 * create_unix_connection); otherwise as aloop_create_connection. Connection
 * errors (ALOOP_ENOENT, ALOOP_ECONNREFUSED, ALOOP_EAGAIN when the listener's
 * backlog is full) fail the future. */
int aloop_create_unix_connection(aloop_loop_t *loop, const char *path,
                                 const aloop_protocol_t *protocol,
                                 void *userdata, aloop_free_cb free_cb,
                                 aloop_future_t **out_future);

/* Listens on the Unix stream socket at path (asyncio's create_unix_server);
 * otherwise as aloop_create_server (the future resolves to the server). A
 * socket file already at path (left by a dead server) is replaced; any other
 * file fails the future with ALOOP_EADDRINUSE. */
int aloop_create_unix_server(aloop_loop_t *loop, const char *path,
                             aloop_connection_cb on_connection, void *userdata,
                             aloop_free_cb free_cb,
                             const aloop_unix_server_options_t *options,
                             aloop_future_t **out_future);

/* Wraps fd, an already connected stream socket (TCP or Unix, e.g. from
 * accept() or socketpair()), into a transport with the protocol (asyncio's
 * connect_accepted_socket). The future resolves to the transport after
 * connection_made. On success the transport owns fd (made non-blocking,
 * closed with the transport); when this call fails (ALOOP_ENOTSOCK,
 * ALOOP_EINVAL for a non-stream socket, ALOOP_EBUSY for an fd the loop
 * watches) fd stays the caller's. */
int aloop_connect_accepted_socket(aloop_loop_t *loop, int fd,
                                  const aloop_protocol_t *protocol,
                                  void *userdata, aloop_free_cb free_cb,
                                  aloop_future_t **out_future);

/* Creates a datagram endpoint (asyncio's create_datagram_endpoint). The
 * local address (local_host NULL = none; "" = the wildcard address) is
 * bound; the remote address (remote_host NULL = none) is connected, or with
 * allow_broadcast only used as the default destination. Hosts may be names
 * (resolved without blocking the loop); the first family for which both
 * addresses resolve is used. Without any address, options->family is
 * required. With family AF_UNIX, local_host / remote_host are socket paths
 * (ports ignored) and a socket file at the local path is replaced. The
 * future resolves to the aloop_datagram_t (read it with
 * aloop_future_result_datagram) after connection_made, or fails (then no
 * protocol callback runs and free_cb runs). */
int aloop_create_datagram_endpoint(aloop_loop_t *loop, const char *local_host,
                                   int local_port, const char *remote_host,
                                   int remote_port,
                                   const aloop_datagram_protocol_t *protocol,
                                   void *userdata, aloop_free_cb free_cb,
                                   const aloop_datagram_options_t *options,
                                   aloop_future_t **out_future);
/* As aloop_future_result, for a future whose result is a datagram endpoint. */
int aloop_future_result_datagram(aloop_future_t *future,
                                 aloop_datagram_t **out_datagram);

/* Sends one datagram of len bytes (copied; len 0 sends an empty datagram)
 * to host:port, a numeric address (AF_UNIX: a path; an IPv4 address on an
 * IPv6 endpoint is IPv4-mapped), or host NULL for the endpoint's remote
 * address. Never blocks: when the socket would block, the datagram is
 * buffered and sent in order later. Send errors go to error_received (asyncio);
 * returns ALOOP_EINVAL for a bad address (or one other than the remote address
 * of an endpoint that has one), ALOOP_ECLOSED once the endpoint is closed. As
 * asyncio's: the socket closes with connection_lost; until then an endpoint
 * without a remote address still sends after close/abort (a send the socket
 * refuses then goes to error_received: nothing can be buffered any more),
 * and a connected one takes no send after close/abort (ALOOP_ECLOSED) unless
 * close found datagrams buffered (the sends made meanwhile follow them). Inside
 * datagram_received, a datagram to the sender it was given (the same host
 * string and port) on that endpoint is sent from C, without a call into the
 * library's Go, while nothing is buffered: the same result, cheaper. A
 * host with a write queue may queue the send instead (ALOOP_WRITE_SENDTO,
 * performed in order by the next aloop_loop_poll or aloop_loop_flush). */
int aloop_datagram_sendto(aloop_datagram_t *dgram, const void *data,
                          size_t len, const char *host, int port);
/* Stops receiving, sends what is buffered, then closes; connection_lost(0)
 * follows. Idempotent. */
int aloop_datagram_close(aloop_datagram_t *dgram);
/* Closes at once, dropping buffered datagrams; connection_lost(0) follows. */
int aloop_datagram_abort(aloop_datagram_t *dgram);
/* 1 if closing or closed, 0 if not. */
int aloop_datagram_is_closing(aloop_datagram_t *dgram);
/* Sets the endpoint's protocol (copied) and userdata; the previous
 * userdata's free_cb runs. */
int aloop_datagram_set_protocol(aloop_datagram_t *dgram,
                                const aloop_datagram_protocol_t *protocol,
                                void *userdata, aloop_free_cb free_cb);
/* The userdata of the current protocol. */
int aloop_datagram_get_protocol(aloop_datagram_t *dgram, void **out_userdata);
/* Bytes of buffered, unsent datagrams (plus their overhead, below). */
int aloop_datagram_get_write_buffer_size(aloop_datagram_t *dgram,
                                         size_t *out_size);
/* Each buffered datagram counts `per_datagram` bytes more than its own, in
 * aloop_datagram_get_write_buffer_size and against the water marks (default
 * 0). asyncio on CPython 3.13 counts an 8-byte header per datagram it holds;
 * a binding that mirrors it sets 8. The datagrams buffered now are counted
 * again (pause_writing / resume_writing may run inside this call).
 * ALOOP_EINVAL above 65536. */
int aloop_datagram_set_write_overhead(aloop_datagram_t *dgram,
                                      size_t per_datagram);
/* As aloop_transport_set/get_write_buffer_limits. */
int aloop_datagram_set_write_buffer_limits(aloop_datagram_t *dgram,
                                           size_t high, size_t low);
int aloop_datagram_get_write_buffer_limits(aloop_datagram_t *dgram,
                                           size_t *out_high, size_t *out_low);
/* The socket fd (get_extra_info("socket")); the endpoint owns it. */
int aloop_datagram_get_fd(aloop_datagram_t *dgram);
/* Local / connected remote address, as aloop_server_sockname; peername
 * fails with ALOOP_ENOTCONN when the socket is not connected. */
int aloop_datagram_get_sockname(aloop_datagram_t *dgram, char *host,
                                size_t hostlen, int *out_port);
int aloop_datagram_get_peername(aloop_datagram_t *dgram, char *host,
                                size_t hostlen, int *out_port);

/* Pipes (asyncio's connect_read_pipe / connect_write_pipe): fd is a pipe, a
 * FIFO, a socket, a pty or another character device (a regular file or a
 * directory fails with ALOOP_EINVAL, as in asyncio). The future resolves to
 * an aloop_transport_t (aloop_future_result_transport) after
 * connection_made. On success the transport owns fd (made non-blocking,
 * closed with the transport); when this call fails fd stays the caller's.
 *
 * A read pipe transport supports pause_reading / resume_reading /
 * is_reading / close / abort / get_fd; write and write_eof fail with
 * ALOOP_EINVAL. At EOF, eof_received runs (its result is ignored), then
 * connection_lost(0). A pty master reports the slave's close as
 * connection_lost(ALOOP_EIO) (asyncio). */
int aloop_connect_read_pipe(aloop_loop_t *loop, int fd,
                            const aloop_protocol_t *protocol, void *userdata,
                            aloop_free_cb free_cb, aloop_future_t **out_future);
/* A write pipe transport: write never blocks (the rest is buffered, with
 * pause_writing / resume_writing at the water marks); write_eof and close
 * flush the buffer, then close fd; abort drops it; is_reading is 0. When
 * the reader of a pipe or socket goes away, the transport closes:
 * connection_lost(ALOOP_EPIPE) if data was still buffered, else
 * connection_lost(0) (asyncio); a write that meets the broken pipe ends it
 * with connection_lost(ALOOP_EPIPE) (never SIGPIPE). */
int aloop_connect_write_pipe(aloop_loop_t *loop, int fd,
                             const aloop_protocol_t *protocol, void *userdata,
                             aloop_free_cb free_cb, aloop_future_t **out_future);

/* ------------------------------------------------------------------------ */
/* Sockets (sock_*), DNS and sendfile                                        */
/* ------------------------------------------------------------------------ */

/* Socket operations (asyncio's loop.sock_*) on a caller-owned, non-blocking
 * socket fd. Each returns a future in *out_future (the caller frees it with
 * aloop_future_free). The system call is tried at once; when the socket is
 * not ready the loop waits for readiness and retries.
 *  - Bad arguments fail at once: ALOOP_EBADF (bad loop or fd), ALOOP_EINVAL
 *    (a blocking socket, as asyncio's ValueError; NULL pointers),
 *    ALOOP_EBUSY (the fd belongs to a transport or server, or is watched by
 *    aloop_add_reader/aloop_add_writer). Failures of the operation fail the
 *    future (aloop_future_exception: ALOOP_ECONNREFUSED, ALOOP_ECONNRESET,
 *    ALOOP_EPIPE, ...).
 *  - Operations on one fd run in FIFO order per direction (reads: recv*,
 *    accept; writes: sendall, sendto, connect, sendfile): a later one waits
 *    for the earlier ones, so data is never reordered or interleaved.
 *  - aloop_future_cancel() removes the operation and stops watching the fd
 *    when nothing else waits on it; a cancelled or done operation never
 *    touches the fd or the caller's buffer again.
 *  - While an operation waits on an fd, aloop_add_reader/aloop_add_writer on
 *    it fail with ALOOP_EBUSY. Do not close the fd before its futures are
 *    done or cancelled. A pending operation keeps the loop alive, and
 *    aloop_loop_close fails with ALOOP_EBUSY until it ends.
 * Results are read with the typed getters below. */

/* Receives up to nbytes (fewer for a stream socket; at most 1 MiB per call
 * there). Result: aloop_future_result_bytes (0 bytes at EOF). */
int aloop_sock_recv(aloop_loop_t *loop, int fd, size_t nbytes,
                    aloop_future_t **out_future);
/* Receives into buf (len bytes of caller memory, which must stay valid until
 * the future is done or cancelled). Result: aloop_future_result_size. */
int aloop_sock_recv_into(aloop_loop_t *loop, int fd, void *buf, size_t len,
                         aloop_future_t **out_future);
/* Receives one datagram of up to nbytes (a longer one is truncated).
 * Result: aloop_future_result_bytes and aloop_future_result_addr. */
int aloop_sock_recvfrom(aloop_loop_t *loop, int fd, size_t nbytes,
                        aloop_future_t **out_future);
/* Receives one datagram into buf (valid until the future is done or
 * cancelled). Result: aloop_future_result_size and aloop_future_result_addr. */
int aloop_sock_recvfrom_into(aloop_loop_t *loop, int fd, void *buf,
                             size_t len, aloop_future_t **out_future);
/* Sends all len bytes (copied). Result: aloop_future_result_size (= len). On
 * failure, part of the data may have been sent. */
int aloop_sock_sendall(aloop_loop_t *loop, int fd, const void *data,
                       size_t len, aloop_future_t **out_future);
/* Sends one datagram (copied) to host:port; a host name is resolved first
 * (for the socket's family); for an AF_UNIX socket host is the path and
 * port is ignored. Result: aloop_future_result_size. */
int aloop_sock_sendto(aloop_loop_t *loop, int fd, const void *data,
                      size_t len, const char *host, int port,
                      aloop_future_t **out_future);
/* Connects to host:port. A numeric host connects at once; a name is resolved
 * first for the socket's family, without blocking the loop. An IPv4 address
 * on an AF_INET6 socket is used v4-mapped. For an AF_UNIX socket host is
 * the path ('@' = abstract) and port is ignored. The future's result is
 * NULL (aloop_future_exception() tells success). */
int aloop_sock_connect(aloop_loop_t *loop, int fd, const char *host, int port,
                       aloop_future_t **out_future);
/* Accepts a connection on a listening socket. Result: aloop_future_result_fd
 * (a new non-blocking, close-on-exec socket that the caller owns and must
 * close, whether or not it reads the result) and aloop_future_result_addr
 * (the peer). */
int aloop_sock_accept(aloop_loop_t *loop, int fd,
                      aloop_future_t **out_future);
/* Sends count bytes (0: up to the end) of the file file_fd from offset over
 * the stream socket fd: zero-copy with sendfile(2) when the file is a
 * regular file; otherwise, if fallback is nonzero, by reading the file (in
 * a library thread) and sending the chunks, else the future fails with
 * ALOOP_ENOSYS (asyncio's SendfileNotAvailableError). At the end the
 * file's offset is set to offset + bytes sent (as asyncio). Result:
 * aloop_future_result_size (bytes sent). */
int aloop_sock_sendfile(aloop_loop_t *loop, int fd, int file_fd,
                        int64_t offset, int64_t count, int fallback,
                        aloop_future_t **out_future);

/* Typed results of the futures above (and of DNS and sendfile). Each returns
 * 0, the future's error code if it failed, ALOOP_ECANCELED if cancelled,
 * ALOOP_ESTATE if not done, or ALOOP_EINVAL if the result is of another
 * kind. */
/* A count of bytes (recv_into, recvfrom_into, sendall, sendto, sendfile; the
 * length of a bytes result). */
int aloop_future_result_size(aloop_future_t *future, size_t *out_size);
/* The data of recv / recvfrom: *out_data is a new copy in library-owned
 * memory (never NULL, even for 0 bytes) that the caller releases with
 * aloop_buffer_free(); every call makes a new copy. */
int aloop_future_result_bytes(aloop_future_t *future, void **out_data,
                              size_t *out_len);
/* Releases memory from aloop_future_result_bytes. NULL is a no-op. Returns 0. */
int aloop_buffer_free(void *data);
/* The peer address of recvfrom, recvfrom_into and accept, as
 * aloop_server_sockname (numeric host, or the path of an AF_UNIX peer;
 * "" and port 0 when the socket reports none). host or out_port may be NULL. */
int aloop_future_result_addr(aloop_future_t *future, char *host,
                             size_t hostlen, int *out_port);
/* The socket accept returned. */
int aloop_future_result_fd(aloop_future_t *future, int *out_fd);

/* DNS without blocking the loop (asyncio's getaddrinfo / getnameinfo).
 * Numeric hosts and ports are resolved on the loop thread at once (the
 * future is done on return); names are looked up in a library thread.
 * Family, type, protocol and flags are the platform's values (AF_*, SOCK_*,
 * IPPROTO_*, AI_* / NI_* from <netdb.h>). A failed lookup fails the future
 * with ALOOP_ERESOLVE (the message tells why, e.g. "Name or service not
 * known"). Cancelling the future abandons the lookup. */

/* Resolves host (NULL or "": no host, i.e. the loopback addresses, or the
 * wildcard ones with AI_PASSIVE) and service (a port number or a service
 * name; NULL or "": port 0). With type and protocol 0 every socket type is
 * listed, as getaddrinfo does. Result: aloop_future_result_addrinfo. */
int aloop_getaddrinfo(aloop_loop_t *loop, const char *host,
                      const char *service, int family, int type,
                      int protocol, int flags, aloop_future_t **out_future);
/* The results as a list (see aloop_addrinfo_t) in *out_list, and their
 * number in *out_count (may be NULL); every call makes a new copy, released
 * with aloop_addrinfo_free(). */
int aloop_future_result_addrinfo(aloop_future_t *future,
                                 aloop_addrinfo_t **out_list,
                                 size_t *out_count);
/* Releases a list from aloop_future_result_addrinfo (its head). NULL is a
 * no-op. Returns 0. */
int aloop_addrinfo_free(aloop_addrinfo_t *list);
/* Host and service names of a numeric address host:port (asyncio's
 * getnameinfo((host, port), flags)); a host that is not a numeric address
 * fails the future with ALOOP_ERESOLVE. Result:
 * aloop_future_result_nameinfo. */
int aloop_getnameinfo(aloop_loop_t *loop, const char *host, int port,
                      int flags, aloop_future_t **out_future);
/* Copies the host and service names (NUL terminated; ALOOP_ENOSPACE if a
 * buffer is too small; either may be NULL). */
int aloop_future_result_nameinfo(aloop_future_t *future, char *host,
                                 size_t hostlen, char *service,
                                 size_t servicelen);

/* Sends count bytes (0: up to the end) of the file file_fd from offset over
 * a stream transport (asyncio's loop.sendfile(transport, file, offset,
 * count, fallback)): zero-copy with sendfile(2) where possible, else (if
 * fallback is nonzero) by reading the file in a library thread; without
 * fallback such a file fails the future with ALOOP_ENOSYS. It starts once
 * the write buffer is flushed. Until the future is done:
 * aloop_transport_write fails with ALOOP_EBUSY (as does a second sendfile),
 * reading is paused (and resumed afterwards if it was on), a close waits
 * for the sendfile to finish, and write_eof takes effect after it. A
 * socket error fails the future and the transport (connection_lost with
 * the error); an abort fails the future with ALOOP_ECLOSED. At the end the
 * file's offset is set to offset + bytes sent. ALOOP_EINVAL for a transport
 * that is not a stream socket (a pipe). Result: aloop_future_result_size
 * (bytes sent). */
int aloop_transport_sendfile(aloop_transport_t *transport, int file_fd,
                             int64_t offset, int64_t count, int fallback,
                             aloop_future_t **out_future);
/* Writes the iovcnt buffers in order (asyncio's writelines); as
 * aloop_transport_write (the data is copied). */
int aloop_transport_writev(aloop_transport_t *transport,
                           const aloop_iovec_t *iov, size_t iovcnt);

/* ------------------------------------------------------------------------ */
/* Subprocesses                                                              */
/* ------------------------------------------------------------------------ */

/* Starts argv[0] with the NULL-terminated arguments argv (asyncio's
 * subprocess_exec). argv[0] without a slash is searched in the PATH of the
 * child's environment (default "/bin:/usr/bin"), as execvp does. The future
 * resolves to the subprocess transport (aloop_future_result_subprocess)
 * after connection_made has run. A child that cannot be started fails the
 * future at once with the OS error (ALOOP_ENOENT: no such program or cwd,
 * ALOOP_EACCES: not executable, ...): no protocol callback runs then and
 * free_cb has run. Invalid arguments return an error (ALOOP_EINVAL,
 * ALOOP_EBADF for a negative *_fd) and nothing is started.
 *  - The child's pipes are transports of the loop (asyncio's pipe
 *    transports), read and written on the loop thread. stdout and stderr are
 *    pipes; stdin is a Unix socket pair (as in libuv/uvloop/Node: writes
 *    never raise SIGPIPE; a child that opens /dev/stdin by name cannot).
 *  - The library's other fds are close-on-exec; fds the host created
 *    without FD_CLOEXEC are inherited by the child.
 *  - Signal dispositions that the library set are reset to the default in
 *    the child; ignored signals stay ignored; the signal mask is inherited.
 *  - The child is reaped by the library (a pidfd watched by the loop, or a
 *    library thread on kernels without pidfd). No zombie is left behind,
 *    even for a child whose loop is closed: see aloop_subprocess_close. */
int aloop_subprocess_exec(aloop_loop_t *loop, const char *const *argv,
                          const aloop_subprocess_protocol_t *protocol,
                          void *userdata, aloop_free_cb free_cb,
                          const aloop_subprocess_options_t *options,
                          aloop_future_t **out_future);
/* Runs cmd with /bin/sh -c (asyncio's subprocess_shell); otherwise as
 * aloop_subprocess_exec. */
int aloop_subprocess_shell(aloop_loop_t *loop, const char *cmd,
                           const aloop_subprocess_protocol_t *protocol,
                           void *userdata, aloop_free_cb free_cb,
                           const aloop_subprocess_options_t *options,
                           aloop_future_t **out_future);
/* As aloop_future_result, for the future of aloop_subprocess_exec/shell.
 * The handle is valid until the subprocess is released (after its
 * connection_lost, or by aloop_loop_close); read after that, it is a stale
 * handle (ALOOP_EBADF everywhere), never a new one to release. */
int aloop_future_result_subprocess(aloop_future_t *future,
                                   aloop_subprocess_t **out_proc);
/* The child's process id (> 0), or an error. */
int aloop_subprocess_get_pid(aloop_subprocess_t *proc);
/* Returns 1 and the return code in *out_returncode once the child has
 * exited (its exit status, or minus the number of the signal that killed
 * it, as asyncio), 0 while it runs (asyncio's None). */
int aloop_subprocess_get_returncode(aloop_subprocess_t *proc,
                                    int *out_returncode);
/* The transport of the child's fd (0, 1 or 2) in *out_transport, or NULL
 * when that fd is not a pipe or its pipe is closed (ALOOP_EINVAL for
 * another fd). The stdin transport takes aloop_transport_write,
 * aloop_transport_write_eof (the child sees EOF), the write buffer
 * functions, close and abort; the stdout/stderr transports take
 * pause_reading / resume_reading, close and abort. The handle is valid until
 * the pipe's pipe_connection_lost; do not replace its protocol. */
int aloop_subprocess_get_pipe_transport(aloop_subprocess_t *proc, int fd,
                                        aloop_transport_t **out_transport);
/* Sends signal signum (1..64) to the child (ALOOP_EINVAL otherwise). Once
 * the child has exited, does nothing and returns 0. */
int aloop_subprocess_send_signal(aloop_subprocess_t *proc, int signum);
/* send_signal(SIGTERM) / send_signal(SIGKILL). */
int aloop_subprocess_terminate(aloop_subprocess_t *proc);
int aloop_subprocess_kill(aloop_subprocess_t *proc);
/* Closes the pipes (stdin after its buffer is flushed) and kills the child
 * if it is still running (asyncio's close()). While the loop runs,
 * pipe_connection_lost, process_exited and connection_lost still follow.
 * Idempotent. An open subprocess keeps the loop from closing
 * (ALOOP_EBUSY); a closed one does not, once its pipes are closed (one loop
 * iteration): if the loop is closed before the child's exit was seen, the
 * library reaps the child on its own, no further callback runs, and
 * free_cb runs inside aloop_loop_close. */
int aloop_subprocess_close(aloop_subprocess_t *proc);
/* 1 if aloop_subprocess_close was called, 0 if not. */
int aloop_subprocess_is_closing(aloop_subprocess_t *proc);

/* ------------------------------------------------------------------------ */
/* Unix signals                                                              */
/* ------------------------------------------------------------------------ */

/* Calls cb on the loop thread when signal signum arrives (asyncio's
 * add_signal_handler); works for a loop in any thread, and several loops may
 * handle the same signal (each gets its call). A handler already set for
 * signum on this loop is replaced (its free_cb runs). Signals are coalesced
 * as POSIX allows, but a call always follows the last signal: a signal that
 * arrives while a call for an earlier one is pending merges with it, one
 * that arrives once the call has started causes another call. While the
 * library handles signum, the signal's previous handler is not called.
 * ALOOP_EINVAL for SIGKILL, SIGSTOP, 32, 33 (reserved by the C library) and
 * numbers that are not signals. Closing the loop removes its handlers. */
int aloop_add_signal_handler(aloop_loop_t *loop, int signum,
                             aloop_signal_cb cb, void *userdata,
                             aloop_free_cb free_cb);
/* Removes the handler of signum (its free_cb runs). Returns 1 if one was
 * removed, 0 if none was set. Removing the last handler of a signal in the
 * process gives the signal back to the handler installed before the library
 * took it (the host's own handler, e.g. its SIGINT handling, or SIG_DFL);
 * that handler is restored with SA_SIGINFO|SA_ONSTACK|SA_RESTART and a full
 * mask, not with its original flags. */
int aloop_remove_signal_handler(aloop_loop_t *loop, int signum);

/* ------------------------------------------------------------------------ */
/* Executor                                                                  */
/* ------------------------------------------------------------------------ */

/* Runs fn(arg) on the loop's default executor (asyncio's
 * run_in_executor(None, fn)): a pool of library threads, started on
 * demand, of at most min(32, cpus + 4) threads by default. The future's
 * result (aloop_future_result) is fn's return value. fn runs on a library
 * thread: see aloop_executor_fn. free_cb(arg) runs once on the loop thread:
 * after the future got fn's result, or when the future was cancelled before
 * fn started (fn then never runs; free_cb runs inside aloop_future_cancel).
 * A future cancelled while fn runs stays cancelled: fn completes and its
 * return value is dropped (keep results in *arg to free them in free_cb).
 * A pending job keeps the loop alive and from closing (ALOOP_EBUSY).
 * ALOOP_ECLOSED after aloop_loop_shutdown_default_executor. */
int aloop_run_in_executor(aloop_loop_t *loop, aloop_executor_fn fn, void *arg,
                          aloop_free_cb free_cb, aloop_future_t **out_future);
/* Sets the maximum number of threads of the default executor (1..65536;
 * ALOOP_EINVAL otherwise). Growing takes effect at once for queued jobs;
 * when shrinking, surplus threads exit after their current job.
 * ALOOP_ECLOSED after aloop_loop_shutdown_default_executor. */
int aloop_loop_set_default_executor_size(aloop_loop_t *loop, int max_workers);
/* Shuts the default executor down (asyncio's shutdown_default_executor):
 * later aloop_run_in_executor calls fail with ALOOP_ECLOSED; jobs already
 * submitted still run. The future resolves (result NULL) once every
 * submitted job has finished and its result was delivered. */
int aloop_loop_shutdown_default_executor(aloop_loop_t *loop,
                                         aloop_future_t **out_future);

/* ------------------------------------------------------------------------ */
/* TLS                                                                       */
/* ------------------------------------------------------------------------ */

/* TLS with Go's crypto/tls (no OpenSSL): asyncio's ssl= and start_tls.
 *  - An aloop_tls_config_t (asyncio's SSLContext) holds one side's settings:
 *    its certificate chains, the CAs it trusts, ALPN protocols, versions,
 *    verification and handshake timeout. It belongs to no loop and may be
 *    used by loops in several threads. A connection, server or start_tls
 *    copies it when it is made: later changes and aloop_tls_config_free do
 *    not affect it.
 *  - The socket stays on the loop thread; the protocol sees plaintext
 *    through the usual transport functions.
 *  - A client verifies the server's certificate by default, against the CAs
 *    loaded with aloop_tls_config_load_ca_* (the system's CAs when none was
 *    loaded), and checks the host name: server_hostname, else the config's,
 *    else the host given to aloop_create_connection (an IP address is
 *    checked against the certificate's IP addresses). Verification
 *    failures (self-signed, unknown CA, expired, wrong host) fail the
 *    handshake with ALOOP_ECERT, other TLS failures (no common version or
 *    ALPN protocol, an alert from the peer, a protocol error) with
 *    ALOOP_ETLS; the future's message (aloop_future_error_message) tells
 *    why. A handshake that takes longer than the timeout fails with
 *    ALOOP_ETIMEDOUT; a peer that closes during it with ALOOP_ECONNRESET.
 *  - With TLS, connection_made runs after the handshake (and the
 *    create_connection future resolves after it). A failed handshake never
 *    calls the protocol: create_connection's future fails (free_cb runs);
 *    a server drops the connection (the protocol set in on_connection is
 *    never called, its free_cb runs) and reports it to the exception
 *    handler in debug mode only (as asyncio).
 *  - aloop_transport_close sends close_notify, then flushes and closes.
 *    The peer's close_notify (or a TCP EOF at a record boundary) calls
 *    eof_received, whose return value is ignored: the transport closes.
 *    aloop_transport_can_write_eof is 0 and aloop_transport_write_eof
 *    fails with ALOOP_ENOSYS. Data written before the handshake is done is
 *    sent after it (and counts in the write buffer size); TLS errors after
 *    the handshake end the transport (connection_lost with ALOOP_ETLS,
 *    reported to the exception handler in debug mode).
 *  - TLS over Unix sockets: aloop_unix_server_options_t.tls for a server;
 *    for a client, connect the socket and pass it to
 *    aloop_create_connection (has_sock, with server_hostname). */

/* Creates a configuration for a client (is_server 0) or a server
 * (is_server nonzero): TLS 1.2 and 1.3, no certificate, no ALPN, system CAs,
 * verification REQUIRED for a client, NONE for a server, 60 s handshake
 * timeout. */
int aloop_tls_config_new(aloop_tls_config_t **out_config, int is_server);
/* Releases the configuration's handle (connections made with it are not
 * affected). */
int aloop_tls_config_free(aloop_tls_config_t *config);
/* Adds a certificate chain and its private key (PEM files; keyfile NULL:
 * the key is in certfile). A server needs one; a client sends it when the
 * server asks for one. With several chains, a server picks the one that
 * matches the client's SNI name (else the first). ALOOP_ENOENT /
 * ALOOP_EACCES for a file that cannot be read, ALOOP_EINVAL for bad PEM or
 * a key that does not match. */
int aloop_tls_config_load_cert_file(aloop_tls_config_t *config,
                                    const char *certfile, const char *keyfile);
/* As aloop_tls_config_load_cert_file from memory: cert_len bytes of PEM
 * certificates, key_len bytes of PEM key (key NULL: in cert). */
int aloop_tls_config_load_cert_pem(aloop_tls_config_t *config,
                                   const char *cert, size_t cert_len,
                                   const char *key, size_t key_len);
/* Trusts the CA certificates of a PEM file / of len bytes of PEM (added to
 * those loaded before). Once a CA is loaded, only the loaded CAs are
 * trusted, unless aloop_tls_config_load_default_ca is called too. A
 * server uses them to verify client certificates. */
int aloop_tls_config_load_ca_file(aloop_tls_config_t *config,
                                  const char *cafile);
int aloop_tls_config_load_ca_pem(aloop_tls_config_t *config, const char *pem,
                                 size_t len);
/* Trusts the system's CA certificates as well (asyncio's
 * load_default_certs). */
int aloop_tls_config_load_default_ca(aloop_tls_config_t *config);
/* The name a client sends (SNI) and verifies the server's certificate
 * against, unless a connection gives its own; NULL clears it. */
int aloop_tls_config_set_server_hostname(aloop_tls_config_t *config,
                                         const char *hostname);
/* The ALPN protocols, in order of preference (count 0 clears them); each is
 * 1 to 255 bytes. A server with ALPN protocols rejects a client that offers
 * ALPN but none of them (ALOOP_ETLS). */
int aloop_tls_config_set_alpn(aloop_tls_config_t *config,
                              const char *const *protocols, size_t count);
/* The lowest / highest version to use: ALOOP_TLS_VERSION_1_2 or _1_3, or 0
 * for the default (1.2 / 1.3); ALOOP_EINVAL otherwise. */
int aloop_tls_config_set_min_version(aloop_tls_config_t *config, int version);
int aloop_tls_config_set_max_version(aloop_tls_config_t *config, int version);
/* An aloop_tls_verify_t. */
int aloop_tls_config_set_verify(aloop_tls_config_t *config, int mode);
/* The handshake timeout in seconds (0: the default, 60). */
int aloop_tls_config_set_handshake_timeout(aloop_tls_config_t *config,
                                           double seconds);

/* Upgrades a connected stream transport to TLS (asyncio's start_tls, e.g.
 * after STARTTLS): the side (client or server) is the config's; a client
 * verifies server_hostname (NULL: the config's; required when verifying).
 * Data already buffered is sent first, in plaintext. The future resolves
 * to the same transport (aloop_future_result_transport) once the handshake
 * succeeded; connection_made does not run again, and the protocol receives
 * no data until then. When the handshake fails, the future fails (see
 * above) and the transport closes: connection_lost gets the error.
 * Cancelling the future aborts the transport. ALOOP_EINVAL for a pipe or a
 * transport that already uses TLS, ALOOP_EBUSY during a sendfile,
 * ALOOP_ECLOSED when closing. */
int aloop_transport_start_tls(aloop_transport_t *transport,
                              aloop_tls_config_t *config,
                              const char *server_hostname,
                              aloop_future_t **out_future);
/* TLS details of a transport (asyncio's get_extra_info('cipher'),
 * 'peercert', ssl_object.version(), selected_alpn_protocol()). They fail
 * with ALOOP_ESTATE before the handshake is done; the cipher, ALPN and
 * certificate getters fail with ALOOP_EINVAL for a transport without TLS. */
/* The TLS version (ALOOP_TLS_VERSION_1_2 / _1_3), 0 for a transport
 * without TLS. */
int aloop_transport_get_tls_version(aloop_transport_t *transport);
/* The cipher suite's IANA name ("TLS_AES_128_GCM_SHA256"), NUL terminated
 * (ALOOP_ENOSPACE if buflen is too small; 64 bytes is enough). */
int aloop_transport_get_tls_cipher(aloop_transport_t *transport, char *buf,
                                   size_t buflen);
/* The negotiated ALPN protocol ("" if none), NUL terminated (ALOOP_ENOSPACE
 * if buflen is too small; 256 bytes is enough). */
int aloop_transport_get_tls_alpn(aloop_transport_t *transport, char *buf,
                                 size_t buflen);
/* The peer's certificate (DER): its length in *out_len (0 when the peer sent
 * none, e.g. a client to a server that did not ask), copied into buf when
 * it fits, else ALOOP_ENOSPACE (*out_len tells the size needed; buf may be
 * NULL with buflen 0 to ask). */
int aloop_transport_get_peer_certificate(aloop_transport_t *transport,
                                         void *buf, size_t buflen,
                                         size_t *out_len);

/* ------------------------------------------------------------------------ */
/* Debug                                                                     */
/* ------------------------------------------------------------------------ */

/* Debug mode (aloop_loop_set_debug; asyncio's debug mode):
 *  - a callback, timer, done-callback or the handling of one fd's I/O
 *    (the protocol callbacks it makes included) that runs for the
 *    slow-callback duration or longer is reported to the exception handler
 *    ("Executing ... took 0.150 seconds"; error 0; the transport or server
 *    of the fd);
 *  - a non-thread-safe function called from a thread other than the one
 *    running the loop fails with ALOOP_ENOTLOOPTHREAD (the loop is not
 *    changed);
 *  - aloop_loop_close / aloop_loop_free on a loop that still has
 *    transports, servers, datagram endpoints, subprocesses, fd watchers or
 *    pending operations report each to the exception handler ("unclosed
 *    transport (fd 7) at loop close", error ALOOP_EBUSY, with the transport
 *    or server) before they return ALOOP_EBUSY;
 *  - connection errors (reset, broken pipe) and TLS failures are reported
 *    to the exception handler too. */

/* Sets the slow-callback duration in seconds (asyncio's
 * slow_callback_duration; default 0.1; INFINITY: never). ALOOP_EINVAL for a
 * negative or NaN value. */
int aloop_loop_set_slow_callback_duration(aloop_loop_t *loop, double seconds);
int aloop_loop_get_slow_callback_duration(aloop_loop_t *loop,
                                          double *out_seconds);

/* ------------------------------------------------------------------------ */
/* Leak checks                                                               */
/* ------------------------------------------------------------------------ */

/* THREAD-SAFE. The number of live handles in the process, of every type
 * and every loop. A handle is made when the library first hands an object
 * to the host (an out-parameter, a future's result, a callback argument)
 * and counts until it goes stale: loops until aloop_loop_free; scheduled
 * callbacks and timers (only those whose out_handle was asked for) until
 * they ran or were cancelled; futures until freed and their done-callbacks
 * ran; transports, datagram endpoints and subprocesses until their
 * connection_lost returned (a subprocess's pipe transports only once asked
 * for with aloop_subprocess_get_pipe_transport); servers until
 * aloop_server_free; TLS configurations until aloop_tls_config_free. For
 * leak tests: a program that released everything returns to the count it
 * started from (0 in a fresh process), and a count that keeps rising under
 * a steady load is a leak. A snapshot: other threads may change it at
 * once. ALOOP_EINVAL when out_count is NULL. */
int aloop_live_handles(size_t *out_count);

/* ------------------------------------------------------------------------ */
/* Current loop                                                              */
/* ------------------------------------------------------------------------ */

/* The current loop of a thread (asyncio's get_running_loop,
 * get_event_loop and set_event_loop; the policy functions of other hosts).
 * The loop set with aloop_set_event_loop is kept in the calling thread's
 * own storage: it dies with the thread (a later thread that gets the same
 * OS thread id inherits nothing). These may be called from any thread (they
 * are about the calling thread). */

/* The loop running in the calling thread (inside aloop_loop_run* or one of
 * its callbacks; the innermost one when runs are nested), or ALOOP_ENOLOOP. */
int aloop_get_running_loop(aloop_loop_t **out_loop);
/* The running loop of the calling thread, else the loop set for it with
 * aloop_set_event_loop, else ALOOP_ENOLOOP (no loop is created, as asyncio
 * 3.14). */
int aloop_get_event_loop(aloop_loop_t **out_loop);
/* Sets the calling thread's loop; NULL unsets it (NULL is allowed here). A
 * loop released with aloop_loop_free is no thread's loop any more (its
 * handle is stale). ALOOP_EBADF for a stale handle. */
int aloop_set_event_loop(aloop_loop_t *loop);

#endif /* ALOOP_NO_PROTOTYPES */

#ifdef __cplusplus
}
#endif

#endif /* ASYNCLOOP_H */
