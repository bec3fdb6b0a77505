/*
 * test-dns.c - aloop_getaddrinfo / aloop_getnameinfo: numeric hosts resolved
 * at once, names off the loop thread, results compared with the C library's
 * own getaddrinfo()/getnameinfo() (the reference asyncio uses), errors,
 * cancellation and the library-owned result list.
 */
#include "test.h"
#include "helpers.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* Compares the library's results with libc's getaddrinfo for the same
 * query, entry by entry (order included). */
static void compare_with_libc(aloop_addrinfo_t *list, size_t count,
                              const char *host, const char *service,
                              int family, int type, int proto, int flags) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family;
  hints.ai_socktype = type;
  hints.ai_protocol = proto;
  hints.ai_flags = flags;
  int rc = getaddrinfo(host, service, &hints, &res);
  if (rc != 0)
    FAIL("libc getaddrinfo(%s, %s): %s", host ? host : "NULL",
         service ? service : "NULL", gai_strerror(rc));
  size_t i = 0;
  aloop_addrinfo_t *a = list;
  for (struct addrinfo *r = res; r; r = r->ai_next, a = a->next, i++) {
    if (!a)
      FAIL("libc has more results than the library (%zu)", count);
    ASSERT_EQ(a->size, sizeof(aloop_addrinfo_t));
    ASSERT_EQ(a->family, r->ai_family);
    ASSERT_EQ(a->type, r->ai_socktype);
    ASSERT_EQ(a->protocol, r->ai_protocol);
    ASSERT_EQ(a->addrlen, r->ai_addrlen);
    ASSERT(memcmp(a->addr, r->ai_addr, r->ai_addrlen) == 0);
    char num[INET6_ADDRSTRLEN];
    int port;
    if (r->ai_family == AF_INET) {
      struct sockaddr_in *s = (struct sockaddr_in *)r->ai_addr;
      inet_ntop(AF_INET, &s->sin_addr, num, sizeof num);
      port = ntohs(s->sin_port);
    } else {
      struct sockaddr_in6 *s = (struct sockaddr_in6 *)r->ai_addr;
      inet_ntop(AF_INET6, &s->sin6_addr, num, sizeof num);
      port = ntohs(s->sin6_port);
    }
    ASSERT_STR_EQ(a->host, num);
    ASSERT_EQ(a->port, port);
    if (r->ai_canonname)
      ASSERT_STR_EQ(a->canonname, r->ai_canonname);
    else
      ASSERT_STR_EQ(a->canonname, "");
  }
  if (a)
    FAIL("the library has more results than libc (%zu)", i);
  ASSERT_EQ(count, i);
  freeaddrinfo(res);
}

/* Runs one getaddrinfo and compares it with libc; returns whether the future
 * was done when the call returned. */
static int check_gai(const char *host, const char *service, int family,
                     int type, int proto, int flags) {
  loop_up();
  aloop_future_t *f = NULL;
  OK(aloop_getaddrinfo(loop, host, service, family, type, proto, flags, &f));
  int immediate = aloop_future_done(f);
  await_done(f);
  assert_ok(f);
  aloop_addrinfo_t *list = NULL;
  size_t count = 0;
  OK(aloop_future_result_addrinfo(f, &list, &count));
  ASSERT(list != NULL);
  compare_with_libc(list, count, host, service, family, type, proto, flags);
  OK(aloop_addrinfo_free(list));
  OK(aloop_future_free(f));
  return immediate;
}

/* ------------------------------------------------------------------------ */

TEST(numeric_hosts_at_once) {
  /* every type listed, numeric: done on return, same as libc */
  ASSERT_EQ(check_gai("127.0.0.1", "80", 0, 0, 0, 0), 1);
  ASSERT_EQ(check_gai("::1", "443", AF_UNSPEC, SOCK_STREAM, 0, 0), 1);
  ASSERT_EQ(check_gai("127.0.0.1", "53", AF_INET, SOCK_DGRAM, 0, 0), 1);
  ASSERT_EQ(check_gai("127.0.0.1", "53", 0, 0, IPPROTO_UDP, 0), 1);
  ASSERT_EQ(check_gai("127.0.0.1", NULL, 0, SOCK_STREAM, 0, AI_NUMERICHOST), 1);
  ASSERT_EQ(check_gai("::ffff:127.0.0.1", "1", AF_INET6, SOCK_STREAM, 0, 0), 1);
  ASSERT_EQ(check_gai("127.0.0.1", "1", AF_INET6, SOCK_STREAM, 0, AI_V4MAPPED), 1);
  /* no host: loopback, or the wildcard addresses with AI_PASSIVE */
  ASSERT_EQ(check_gai(NULL, "8080", 0, SOCK_STREAM, 0, 0), 1);
  ASSERT_EQ(check_gai(NULL, "8080", 0, SOCK_STREAM, 0, AI_PASSIVE), 1);
  ASSERT_EQ(check_gai(NULL, "0", AF_INET6, SOCK_DGRAM, 0, AI_PASSIVE), 1);
  OK(aloop_loop_close(loop));
}

TEST(names_off_the_loop) {
  /* a name goes to a library thread: not done on return */
  ASSERT_EQ(check_gai("localhost", "80", 0, SOCK_STREAM, 0, 0), 0);
  ASSERT_EQ(check_gai("localhost", "http", 0, SOCK_STREAM, 0, AI_CANONNAME), 0);
  ASSERT_EQ(check_gai("localhost", NULL, AF_INET, 0, 0, 0), 0);
  /* a service name with a numeric host */
  check_gai("127.0.0.1", "ssh", 0, SOCK_STREAM, 0, 0);
  check_gai("127.0.0.1", "domain", 0, 0, 0, 0);
  OK(aloop_loop_close(loop));
}

/* Runs a getaddrinfo that must fail with ALOOP_ERESOLVE (like libc). */
static void check_gai_fails(const char *host, const char *service, int family,
                            int type, int flags, int immediate) {
  loop_up();
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family;
  hints.ai_socktype = type;
  hints.ai_flags = flags;
  int rc = getaddrinfo(host, service, &hints, &res);
  if (rc == 0)
    FAIL("libc resolved %s %s", host, service ? service : "");
  aloop_future_t *f = NULL;
  OK(aloop_getaddrinfo(loop, host, service, family, type, 0, flags, &f));
  if (immediate)
    ASSERT_EQ(aloop_future_done(f), 1);
  await_done(f);
  ASSERT_EQ(aloop_future_exception(f), ALOOP_ERESOLVE);
  char msg[256] = "";
  ASSERT_CMP(aloop_future_error_message(f, msg, sizeof msg), >, 0);
  aloop_addrinfo_t *list = (aloop_addrinfo_t *)1;
  ASSERT_EQ(aloop_future_result_addrinfo(f, &list, NULL), ALOOP_ERESOLVE);
  OK(aloop_future_free(f));
}

TEST(failures) {
  check_gai_fails("localhost", "80", 0, 0, AI_NUMERICHOST, 1);
  check_gai_fails("::1", "80", AF_INET, 0, 0, 1);
  check_gai_fails("127.0.0.1", "http", 0, 0, AI_NUMERICSERV, 1);
  check_gai_fails("127.0.0.1", "80", AF_UNIX, 0, 0, 1);
  check_gai_fails("127.0.0.1", "no-such-service", 0, SOCK_STREAM, 0, 0);
  check_gai_fails("nonexistent.invalid", "80", 0, 0, 0, 0);
  OK(aloop_loop_close(loop));
}

TEST(getnameinfo_like_libc) {
  loop_up();
  struct {
    const char *host;
    int port, flags, immediate;
  } cases[] = {
      {"127.0.0.1", 80, NI_NUMERICHOST | NI_NUMERICSERV, 1},
      {"::1", 443, NI_NUMERICHOST | NI_NUMERICSERV, 1},
      {"127.0.0.1", 22, 0, 0},
      {"127.0.0.1", 53, NI_DGRAM, 0},
      {"127.0.0.1", 54321, NI_NOFQDN, 0},
      {"127.0.0.1", 80, NI_NUMERICHOST, -1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (strchr(cases[i].host, ':')) {
      struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
      s->sin6_family = AF_INET6;
      s->sin6_port = htons(cases[i].port);
      inet_pton(AF_INET6, cases[i].host, &s->sin6_addr);
      len = sizeof *s;
    } else {
      struct sockaddr_in *s = (struct sockaddr_in *)&ss;
      s->sin_family = AF_INET;
      s->sin_port = htons(cases[i].port);
      inet_pton(AF_INET, cases[i].host, &s->sin_addr);
      len = sizeof *s;
    }
    char want_host[NI_MAXHOST], want_serv[NI_MAXSERV];
    ASSERT_EQ(getnameinfo((struct sockaddr *)&ss, len, want_host, sizeof want_host,
                          want_serv, sizeof want_serv, cases[i].flags), 0);
    aloop_future_t *f;
    OK(aloop_getnameinfo(loop, cases[i].host, cases[i].port, cases[i].flags, &f));
    if (cases[i].immediate >= 0)
      ASSERT_EQ(aloop_future_done(f), cases[i].immediate);
    await_done(f);
    assert_ok(f);
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    OK(aloop_future_result_nameinfo(f, host, sizeof host, serv, sizeof serv));
    ASSERT_STR_EQ(host, want_host);
    ASSERT_STR_EQ(serv, want_serv);
    /* one of the two, and too small a buffer */
    OK(aloop_future_result_nameinfo(f, NULL, 0, serv, sizeof serv));
    ASSERT_STR_EQ(serv, want_serv);
    ASSERT_EQ(aloop_future_result_nameinfo(f, host, 2, NULL, 0), ALOOP_ENOSPACE);
    OK(aloop_future_free(f));
  }
  /* not a numeric address */
  aloop_future_t *f;
  OK(aloop_getnameinfo(loop, "localhost", 80, 0, &f));
  await_done(f);
  ASSERT_EQ(aloop_future_exception(f), ALOOP_ERESOLVE);
  OK(aloop_future_free(f));
  /* NI_NAMEREQD for an address without a name (TEST-NET-1) */
  OK(aloop_getnameinfo(loop, "192.0.2.200", 1, NI_NAMEREQD | NI_NUMERICSERV, &f));
  await_done(f);
  ASSERT_EQ(aloop_future_exception(f), ALOOP_ERESOLVE);
  OK(aloop_future_free(f));
  OK(aloop_loop_close(loop));
}

TEST(cancel_lookup) {
  loop_up();
  aloop_future_t *f;
  OK(aloop_getaddrinfo(loop, "localhost", "80", 0, 0, 0, 0, &f));
  ASSERT_EQ(aloop_future_done(f), 0);
  ASSERT_EQ(aloop_loop_alive(loop), 1);
  ASSERT_EQ(aloop_loop_close(loop), ALOOP_EBUSY); /* a lookup in flight */
  ASSERT_EQ(aloop_future_cancel(f), 1);
  aloop_addrinfo_t *list;
  ASSERT_EQ(aloop_future_result_addrinfo(f, &list, NULL), ALOOP_ECANCELED);
  OK(aloop_future_free(f));
  RUN_UNTIL(aloop_loop_alive(loop) == 0);
  OK(aloop_loop_close(loop));
}

TEST(result_list_and_arguments) {
  loop_up();
  aloop_future_t *f;
  ASSERT_EQ(aloop_getaddrinfo(NULL, "localhost", NULL, 0, 0, 0, 0, &f), ALOOP_EBADF);
  ASSERT_EQ(aloop_getaddrinfo(loop, "localhost", NULL, 0, 0, 0, 0, NULL), ALOOP_EINVAL);
  ASSERT_EQ(aloop_getnameinfo(loop, NULL, 80, 0, &f), ALOOP_EINVAL);
  ASSERT_EQ(aloop_getnameinfo(loop, "127.0.0.1", -1, 0, &f), ALOOP_EINVAL);
  OK(aloop_addrinfo_free(NULL));

  OK(aloop_getaddrinfo(loop, "127.0.0.1", "7", AF_INET, SOCK_STREAM, 0, 0, &f));
  aloop_addrinfo_t *a = NULL, *b = NULL;
  size_t n = 0;
  OK(aloop_future_result_addrinfo(f, &a, &n));
  OK(aloop_future_result_addrinfo(f, &b, NULL)); /* a new copy each time */
  ASSERT(a != b);
  ASSERT_EQ(n, 1);
  ASSERT(a->next == NULL);
  /* the address is usable as is */
  const struct sockaddr_in *sin = a->addr;
  ASSERT_EQ(sin->sin_family, AF_INET);
  ASSERT_EQ(ntohs(sin->sin_port), 7);
  ASSERT_EQ(sin->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  ASSERT_EQ(a->scope_id, 0);
  aloop_addrinfo_free(a);
  aloop_addrinfo_free(b);
  /* other getters on an addrinfo future, and the reverse */
  size_t sz;
  ASSERT_EQ(aloop_future_result_size(f, &sz), ALOOP_EINVAL);
  char h[8];
  ASSERT_EQ(aloop_future_result_nameinfo(f, h, sizeof h, NULL, 0), ALOOP_EINVAL);
  OK(aloop_future_free(f));
  OK(aloop_getnameinfo(loop, "127.0.0.1", 80, NI_NUMERICHOST | NI_NUMERICSERV, &f));
  ASSERT_EQ(aloop_future_result_addrinfo(f, &a, &n), ALOOP_EINVAL);
  ASSERT_EQ(aloop_future_result_nameinfo(f, NULL, 0, NULL, 0), ALOOP_EINVAL);
  OK(aloop_future_free(f));
  /* link-local IPv6 with a scope */
  OK(aloop_getaddrinfo(loop, "fe80::1%1", "9", AF_INET6, SOCK_STREAM, 0, 0, &f));
  assert_ok(f);
  OK(aloop_future_result_addrinfo(f, &a, NULL));
  ASSERT_EQ(a->scope_id, 1);
  ASSERT_EQ(((const struct sockaddr_in6 *)a->addr)->sin6_scope_id, 1);
  aloop_addrinfo_free(a);
  OK(aloop_future_free(f));
  OK(aloop_loop_close(loop));
}
