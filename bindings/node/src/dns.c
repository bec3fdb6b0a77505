/*
 * dns.c - getaddrinfo / getnameinfo without blocking the loop.
 */
#include "addon.h"

/* getaddrinfo(loop, host | null, service | null, family, type, protocol,
 *             flags, cancellable) -> Promise<[{family, type, protocol, host,
 *             port, canonname, scopeId}]> (platform AF_/SOCK_/IPPROTO_ values) */
static napi_value x_getaddrinfo(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  char *host = NULL, *service = NULL;
  int family, type, protocol, flags;
  get_args(env, info, 8, argv);
  GET_LOOP(argv[0]);
  if (!arg_opt_int(env, argv[3], &family, 0, "family must be a number") ||
      !arg_opt_int(env, argv[4], &type, 0, "type must be a number") ||
      !arg_opt_int(env, argv[5], &protocol, 0, "protocol must be a number") ||
      !arg_opt_int(env, argv[6], &flags, 0, "flags must be a number") ||
      !arg_opt_string(env, argv[1], &host, "host must be a string or null"))
    return NULL;
  if (!arg_opt_string(env, argv[2], &service, "port must be a string, a number or null")) {
    free(host);
    return NULL;
  }
  aloop_future_t *fut = NULL;
  int rc = A.aloop_getaddrinfo(ls->loop, host, service, family, type, protocol, flags, &fut);
  free(host);
  free(service);
  return op_result(env, rc, ls, OP_ADDRINFO, NULL, fut, NULL, argv[7]);
}

/* getnameinfo(loop, host, port, flags, cancellable) -> Promise<{host, service}> */
static napi_value x_getnameinfo(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  char *host = NULL;
  int port, flags;
  get_args(env, info, 5, argv);
  GET_LOOP(argv[0]);
  if (!arg_opt_int(env, argv[2], &port, 0, "port must be a number") ||
      !arg_opt_int(env, argv[3], &flags, 0, "flags must be a number") ||
      !arg_string(env, argv[1], &host, "host must be a string"))
    return NULL;
  aloop_future_t *fut = NULL;
  int rc = A.aloop_getnameinfo(ls->loop, host, port, flags, &fut);
  free(host);
  return op_result(env, rc, ls, OP_NAMEINFO, NULL, fut, NULL, argv[4]);
}

const napi_property_descriptor aln_dns_exports[] = {
    EXPORT("getaddrinfo", x_getaddrinfo),
    EXPORT("getnameinfo", x_getnameinfo),
};
const size_t aln_dns_nexports = COUNT_OF(aln_dns_exports);
