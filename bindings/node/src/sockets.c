/*
 * sockets.c - the sock_* operations on socket fds (asyncio's loop.sock_*),
 * the few socket calls a Node program needs to have such fds (Node itself
 * hands out none), and the platform's constants.
 */
#include "addon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* sock_* operations                                                         */
/* ------------------------------------------------------------------------ */

#define GET_FD(v, fd)                                                          \
  int fd;                                                                      \
  if (!arg_int(env, (v), &fd, "fd must be a number")) return NULL

/* sockRecv(loop, fd, nbytes, cancellable) -> Promise<Buffer>
 * sockRecvfrom(loop, fd, nbytes, cancellable) -> Promise<{data, host, port}> */
static napi_value sock_recv(napi_env env, napi_callback_info info, int from) {
  napi_value argv[4];
  size_t n;
  get_args(env, info, 4, argv);
  GET_LOOP(argv[0]);
  GET_FD(argv[1], fd);
  if (!arg_size(env, argv[2], &n, "nbytes must be a number")) return NULL;
  aloop_future_t *fut = NULL;
  int rc = from ? A.aloop_sock_recvfrom(ls->loop, fd, n, &fut)
                : A.aloop_sock_recv(ls->loop, fd, n, &fut);
  return op_result(env, rc, ls, from ? OP_RECVFROM : OP_BYTES, NULL, fut, NULL, argv[3]);
}
static napi_value x_sock_recv(napi_env env, napi_callback_info info) {
  return sock_recv(env, info, 0);
}
static napi_value x_sock_recvfrom(napi_env env, napi_callback_info info) {
  return sock_recv(env, info, 1);
}

/* sockRecvInto(loop, fd, view, cancellable) -> Promise<nbytes>
 * sockRecvfromInto(loop, fd, view, cancellable) -> Promise<{nbytes, host, port}>
 * The view is kept referenced until the operation ends. */
static napi_value sock_recv_into(napi_env env, napi_callback_info info, int from) {
  napi_value argv[4];
  void *data;
  size_t len;
  get_args(env, info, 4, argv);
  GET_LOOP(argv[0]);
  GET_FD(argv[1], fd);
  if (!arg_bytes(env, argv[2], &data, &len)) return NULL;
  aloop_future_t *fut = NULL;
  int rc = from ? A.aloop_sock_recvfrom_into(ls->loop, fd, data, len, &fut)
                : A.aloop_sock_recv_into(ls->loop, fd, data, len, &fut);
  return op_result(env, rc, ls, from ? OP_SIZE_ADDR : OP_SIZE, NULL, fut, argv[2], argv[3]);
}
static napi_value x_sock_recv_into(napi_env env, napi_callback_info info) {
  return sock_recv_into(env, info, 0);
}
static napi_value x_sock_recvfrom_into(napi_env env, napi_callback_info info) {
  return sock_recv_into(env, info, 1);
}

/* sockSendall(loop, fd, data, cancellable) -> Promise<nbytes> */
static napi_value x_sock_sendall(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  void *data;
  size_t len;
  get_args(env, info, 4, argv);
  GET_LOOP(argv[0]);
  GET_FD(argv[1], fd);
  if (!arg_bytes(env, argv[2], &data, &len)) return NULL;
  aloop_future_t *fut = NULL;
  int rc = A.aloop_sock_sendall(ls->loop, fd, data, len, &fut);
  return op_result(env, rc, ls, OP_SIZE, NULL, fut, NULL, argv[3]);
}

/* sockSendto(loop, fd, data, host, port, cancellable) -> Promise<nbytes> */
static napi_value x_sock_sendto(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  void *data;
  size_t len;
  char *host = NULL;
  int port;
  get_args(env, info, 6, argv);
  GET_LOOP(argv[0]);
  GET_FD(argv[1], fd);
  if (!arg_bytes(env, argv[2], &data, &len) ||
      !arg_opt_int(env, argv[4], &port, 0, "port must be a number") ||
      !arg_string(env, argv[3], &host, "host must be a string"))
    return NULL;
  aloop_future_t *fut = NULL;
  int rc = A.aloop_sock_sendto(ls->loop, fd, data, len, host, port, &fut);
  free(host);
  return op_result(env, rc, ls, OP_SIZE, NULL, fut, NULL, argv[5]);
}

/* sockConnect(loop, fd, host, port, cancellable) -> Promise<undefined> */
static napi_value x_sock_connect(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  char *host = NULL;
  int port;
  get_args(env, info, 5, argv);
  GET_LOOP(argv[0]);
  GET_FD(argv[1], fd);
  if (!arg_opt_int(env, argv[3], &port, 0, "port must be a number") ||
      !arg_string(env, argv[2], &host, "host must be a string"))
    return NULL;
  aloop_future_t *fut = NULL;
  int rc = A.aloop_sock_connect(ls->loop, fd, host, port, &fut);
  free(host);
  return op_result(env, rc, ls, OP_VOID, NULL, fut, NULL, argv[4]);
}

/* sockAccept(loop, fd, cancellable) -> Promise<{fd, host, port}> */
static napi_value x_sock_accept(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  get_args(env, info, 3, argv);
  GET_LOOP(argv[0]);
  GET_FD(argv[1], fd);
  aloop_future_t *fut = NULL;
  int rc = A.aloop_sock_accept(ls->loop, fd, &fut);
  return op_result(env, rc, ls, OP_ACCEPT, NULL, fut, NULL, argv[2]);
}

/* sockSendfile(loop, fd, fileFd, offset, count, fallback, cancellable)
 * -> Promise<nbytes> */
static napi_value x_sock_sendfile(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  int file;
  int64_t offset, count;
  get_args(env, info, 7, argv);
  GET_LOOP(argv[0]);
  GET_FD(argv[1], fd);
  if (!arg_int(env, argv[2], &file, "file must be an fd") ||
      !arg_int64(env, argv[3], &offset, "offset must be a number") ||
      !arg_int64(env, argv[4], &count, "count must be a number"))
    return NULL;
  aloop_future_t *fut = NULL;
  int rc = A.aloop_sock_sendfile(ls->loop, fd, file, offset, count, arg_bool(env, argv[5]), &fut);
  return op_result(env, rc, ls, OP_SIZE, NULL, fut, NULL, argv[6]);
}

/* ------------------------------------------------------------------------ */
/* Socket helpers (the OS, not the library)                                  */
/* ------------------------------------------------------------------------ */

static napi_value throw_errno(napi_env env, const char *what) {
  char msg[160];
  int e = errno;
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
  return throw_code(env, -e, msg);
}

/* socketCreate(family, type, protocol) -> fd (non-blocking, close-on-exec) */
static napi_value x_socket_create(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int family, type, protocol;
  get_args(env, info, 3, argv);
  if (!arg_int(env, argv[0], &family, "family must be a number") ||
      !arg_int(env, argv[1], &type, "type must be a number") ||
      !arg_opt_int(env, argv[2], &protocol, 0, "protocol must be a number"))
    return NULL;
  int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return throw_errno(env, "socket");
  return js_int(env, fd);
}

/* socketPair(family, type) -> [fd, fd] (non-blocking, close-on-exec) */
static napi_value x_socket_pair(napi_env env, napi_callback_info info) {
  napi_value argv[2], arr;
  int family, type, sv[2];
  get_args(env, info, 2, argv);
  if (!arg_int(env, argv[0], &family, "family must be a number") ||
      !arg_int(env, argv[1], &type, "type must be a number"))
    return NULL;
  if (socketpair(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
    return throw_errno(env, "socketpair");
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, js_int(env, sv[0]));
  napi_set_element(env, arr, 1, js_int(env, sv[1]));
  return arr;
}

/* A numeric address or a Unix path ('@' = abstract) for fd's family. */
static int make_sockaddr(napi_env env, int fd, const char *host, int port,
                         struct sockaddr_storage *ss, socklen_t *len) {
  int family = 0;
  socklen_t fl = sizeof family;
  memset(ss, 0, sizeof *ss);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &fl) < 0) {
    throw_errno(env, "getsockopt");
    return 0;
  }
  if (family == AF_UNIX) {
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    size_t n = strlen(host);
    if (n >= sizeof un->sun_path) {
      throw_code(env, ALOOP_EINVAL, "the path is too long");
      return 0;
    }
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, host, n);
    if (host[0] == '@') un->sun_path[0] = 0;
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (host[0] == '@' ? 0 : 1));
    return 1;
  }
  if (family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    if (*host && inet_pton(AF_INET, host, &in->sin_addr) != 1) goto bad;
    *len = sizeof *in;
    return 1;
  }
  if (family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    if (*host && inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) goto bad;
    *len = sizeof *in6;
    return 1;
  }
  throw_code(env, ALOOP_EINVAL, "unsupported socket family");
  return 0;
bad:
  throw_code(env, ALOOP_EINVAL, "not a numeric address for the socket's family");
  return 0;
}

/* socketBind(fd, host, port): host '' = the wildcard address; a path for a
 * Unix socket. */
static napi_value x_socket_bind(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char *host = NULL;
  int fd, port;
  struct sockaddr_storage ss;
  socklen_t len = 0;
  get_args(env, info, 3, argv);
  if (!arg_int(env, argv[0], &fd, "fd must be a number") ||
      !arg_opt_int(env, argv[2], &port, 0, "port must be a number") ||
      !arg_string(env, argv[1], &host, "host must be a string"))
    return NULL;
  int ok = make_sockaddr(env, fd, host, port, &ss, &len);
  free(host);
  if (!ok) return NULL;
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) return throw_errno(env, "bind");
  return undefined(env);
}

/* socketListen(fd, backlog) */
static napi_value x_socket_listen(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd, backlog;
  get_args(env, info, 2, argv);
  if (!arg_int(env, argv[0], &fd, "fd must be a number") ||
      !arg_opt_int(env, argv[1], &backlog, 100, "backlog must be a number"))
    return NULL;
  if (listen(fd, backlog) < 0) return throw_errno(env, "listen");
  return undefined(env);
}

/* socketName(fd, peer) -> {host, port} (a Unix socket: {host: path, port: 0}) */
static napi_value x_socket_name(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char host[INET6_ADDRSTRLEN + 110] = "";
  int port = 0;
  get_args(env, info, 2, argv);
  if (!arg_int(env, argv[0], &fd, "fd must be a number")) return NULL;
  int peer = arg_bool(env, argv[1]);
  if ((peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
            : getsockname(fd, (struct sockaddr *)&ss, &len)) < 0)
    return throw_errno(env, peer ? "getpeername" : "getsockname");
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
  } else if (ss.ss_family == AF_UNIX) {
    struct sockaddr_un *un = (struct sockaddr_un *)&ss;
    size_t n = len > offsetof(struct sockaddr_un, sun_path)
                   ? len - offsetof(struct sockaddr_un, sun_path)
                   : 0;
    if (n > 0 && un->sun_path[0] == 0) {
      host[0] = '@';
      memcpy(host + 1, un->sun_path + 1, n - 1);
      host[n] = 0;
    } else if (n > 0) {
      memcpy(host, un->sun_path, n);
      host[n] = 0;
    }
  }
  return make_address(env, host, port);
}

/* ------------------------------------------------------------------------ */
/* Constants                                                                 */
/* ------------------------------------------------------------------------ */

napi_value aln_socket_constants(napi_env env) {
  static const struct {
    const char *name;
    int value;
  } table[] = {
#define C_(n) {#n, n}
      C_(AF_UNSPEC),      C_(AF_INET),         C_(AF_INET6),        C_(AF_UNIX),
      C_(SOCK_STREAM),    C_(SOCK_DGRAM),      C_(SOCK_RAW),        C_(IPPROTO_TCP),
      C_(IPPROTO_UDP),    C_(AI_PASSIVE),      C_(AI_CANONNAME),    C_(AI_NUMERICHOST),
      C_(AI_NUMERICSERV), C_(AI_ADDRCONFIG),   C_(AI_V4MAPPED),     C_(AI_ALL),
      C_(NI_NUMERICHOST), C_(NI_NUMERICSERV),  C_(NI_NAMEREQD),     C_(NI_DGRAM),
      C_(NI_NOFQDN),      C_(SOMAXCONN),
#undef C_
  };
  napi_value o;
  napi_create_object(env, &o);
  for (size_t i = 0; i < COUNT_OF(table); i++)
    napi_set_named_property(env, o, table[i].name, js_int(env, table[i].value));
  return o;
}

const napi_property_descriptor aln_socket_exports[] = {
    EXPORT("sockRecv", x_sock_recv),
    EXPORT("sockRecvInto", x_sock_recv_into),
    EXPORT("sockRecvfrom", x_sock_recvfrom),
    EXPORT("sockRecvfromInto", x_sock_recvfrom_into),
    EXPORT("sockSendall", x_sock_sendall),
    EXPORT("sockSendto", x_sock_sendto),
    EXPORT("sockConnect", x_sock_connect),
    EXPORT("sockAccept", x_sock_accept),
    EXPORT("sockSendfile", x_sock_sendfile),
    EXPORT("socketCreate", x_socket_create),
    EXPORT("socketPair", x_socket_pair),
    EXPORT("socketBind", x_socket_bind),
    EXPORT("socketListen", x_socket_listen),
    EXPORT("socketName", x_socket_name),
};
const size_t aln_socket_nexports = COUNT_OF(aln_socket_exports);
