/*
 * aloop_rpc.h - a length-prefixed RPC client and server written once in C
 * against include/asyncloop.h only, usable on the loop of any host (C,
 * Python, Node, Go): the example of docs/interop.md.
 *
 * Wire format (both directions), big-endian:
 *     u32 length (of what follows: 5 + payload, at most RPC_MAX_FRAME)
 *     u32 id     (chosen by the client, echoed in the reply)
 *     u8  kind   (a request's method, or a reply's RPC_REPLY_OK/_ERROR)
 *     payload
 * Methods the server answers itself:
 *     RPC_ECHO     the payload back
 *     RPC_REVERSE  the payload reversed
 *     RPC_SLEEP    payload = u32 milliseconds + data: the data back after
 *                  that delay (a timer of the library on the host's loop)
 *     RPC_FAIL     an error reply whose message is the payload
 *     RPC_HOST     handed to the host: rpc_server_recv's futures resolve
 *                  to it, the host answers with rpc_request_respond
 * A frame longer than RPC_MAX_FRAME or shorter than 5, or an unknown
 * method, is a protocol error: the server reports it to the loop's
 * exception handler (the host's, in every binding) and aborts that
 * connection.
 *
 * Threading: every function is called on the loop's thread (the thread that
 * runs the loop, or inside one of its callbacks), as asyncloop's own.
 *
 * Futures and ownership (the rule of include/asyncloop.h, "Futures shared
 * by two pieces of code"): every function that returns a future hands the
 * caller one reference, freed by the caller with aloop_future_free (a
 * binding's wrap_future/wrapFuture/WrapFuture does it); the library holds
 * its own until it resolved the future. Either side may free first; to
 * abandon a pending future, cancel it, then free it.
 * Cancelling the future is seen by the library: a result that arrives for a
 * cancelled future is released by the library.
 * The pointer result of a future (aloop_future_result) is owned by whoever
 * reads it from a successful future:
 *     rpc_connect       -> rpc_client_t *   release with rpc_client_close
 *     rpc_server_start  -> rpc_server_t *   release with rpc_server_close
 *     rpc_call          -> rpc_reply_t *    release with rpc_reply_free
 *     rpc_server_recv   -> rpc_request_t *  release with rpc_request_respond
 *     rpc_client_bench  -> NULL (the number of calls made is the request)
 * A force-closed loop (aloop_loop_close_force: no connection_lost, no
 * done-callback, no timer runs) leaves nothing of the library's own: its
 * connections, timers, pending operations and future references are
 * released in their free_cbs (see aloop_rpc.c, "Who releases what"). What
 * the host holds stays valid until the host releases it as always
 * (rpc_server_close, rpc_client_close: 0; rpc_request_respond:
 * ALOOP_ECLOSED); the host's futures are done (the pending ones cancelled)
 * and still its own to free.
 * Errors: functions return 0 or a negative ALOOP_E* code; a failed future
 * holds an ALOOP_E* code and a message: ALOOP_EIO with the server's message
 * for an error reply, the connection's error (ALOOP_ECONNRESET, ...) for
 * calls pending when it is lost, ALOOP_ECLOSED after close.
 */
#ifndef ALOOP_RPC_H
#define ALOOP_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "asyncloop.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RPC_MAX_FRAME (16u * 1024u * 1024u)

enum {
  RPC_ECHO = 1,
  RPC_REVERSE = 2,
  RPC_SLEEP = 3,
  RPC_FAIL = 4,
  RPC_HOST = 5,
  RPC_REPLY_OK = 0x80,
  RPC_REPLY_ERROR = 0x81
};

typedef struct rpc_client_s rpc_client_t;
typedef struct rpc_server_s rpc_server_t;
typedef struct rpc_reply_s rpc_reply_t;
typedef struct rpc_request_s rpc_request_t;

/* The library's version, to check that a host loaded the one it expects. */
int rpc_version(void);
/* How many objects the library has allocated and not released yet
 * (clients, servers, connections, replies, requests, timers, pending
 * operations): 0 again once everything was closed and every result
 * released. For leak tests. */
long rpc_live_objects(void);

/* ---- server ------------------------------------------------------------- */

/* Listens on host:port (port 0: any free port). Result: rpc_server_t *. */
int rpc_server_start(aloop_loop_t *loop, const char *host, int port,
                     aloop_future_t **out_future);
/* The port it listens on (> 0), or an error. */
int rpc_server_port(rpc_server_t *server);
/* Connections accepted / requests answered so far. */
uint64_t rpc_server_requests(rpc_server_t *server);
/* Stops listening, aborts its connections, fails the pending
 * rpc_server_recv futures with ALOOP_ECLOSED; the memory is released once
 * its last connection is gone. The pointer must not be used after. */
int rpc_server_close(rpc_server_t *server);
/* The next RPC_HOST request. Result: rpc_request_t * (answer it with
 * rpc_request_respond, which also releases it). */
int rpc_server_recv(rpc_server_t *server, aloop_future_t **out_future);
/* The request's payload (valid until rpc_request_respond). */
const char *rpc_request_data(rpc_request_t *request, size_t *out_len);
/* Answers and releases the request: ok nonzero sends an RPC_REPLY_OK with
 * data, else an RPC_REPLY_ERROR whose message is data. 0, or
 * ALOOP_ECLOSED when its connection is gone (the request is released
 * anyway). */
int rpc_request_respond(rpc_request_t *request, int ok, const void *data,
                        size_t len);

/* ---- client ------------------------------------------------------------- */

/* Connects to an RPC server. Result: rpc_client_t *. */
int rpc_connect(aloop_loop_t *loop, const char *host, int port,
                aloop_future_t **out_future);
/* Sends a request. Result: rpc_reply_t * (error replies fail the future
 * with ALOOP_EIO and the server's message). ALOOP_ECLOSED after the
 * connection closed; ALOOP_EINVAL for a payload over the frame limit. */
int rpc_call(rpc_client_t *client, int method, const void *data, size_t len,
             aloop_future_t **out_future);
/* The reply's payload (valid until rpc_reply_free). */
const char *rpc_reply_data(rpc_reply_t *reply, size_t *out_len);
void rpc_reply_free(rpc_reply_t *reply);
/* Closes the connection (pending calls fail with ALOOP_ECLOSED) and
 * releases the client once the connection is gone. */
int rpc_client_close(rpc_client_t *client);
/* Sends raw bytes on the client's connection (tests: malformed frames). */
int rpc_client_send_raw(rpc_client_t *client, const void *data, size_t len);
/* A benchmark driven by the library: `count` RPC_ECHO calls of `size`
 * bytes, `inflight` at a time, each reply checked byte for byte (a
 * mismatch fails the future with ALOOP_EIO). Resolves (result NULL) when
 * all are answered. */
int rpc_client_bench(rpc_client_t *client, uint64_t count, int inflight,
                     size_t size, aloop_future_t **out_future);

#ifdef __cplusplus
}
#endif

#endif /* ALOOP_RPC_H */
