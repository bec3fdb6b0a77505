/* aloop_datagram_sendto, written in C so that a reply costs no call into
 * Go: inside datagram_received of an endpoint, a datagram sent on that same
 * endpoint to the sender it was given (the same host string and port) goes
 * straight to the socket with sendto() to the sender's raw address, while
 * the endpoint's gate reads 0 (nothing buffered, an open unconnected IP
 * endpoint: see core.DatagramTransport.ReplyGate). Everything else -
 * another endpoint or address, another thread, a closed gate, a failed
 * sendto (EAGAIN included: nothing was sent), an invalid argument - goes to
 * the Go export al_datagram_sendto_go, which validates and acts as before. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "asyncloop.h" /* the public prototype: checked against the definition */
#include "direct.h"

__thread al_dg_direct_t *al_dg_direct_cur;

int aloop_datagram_sendto(aloop_datagram_t *dgram, const void *data, size_t len,
                          const char *host, int port) {
  al_dg_direct_t *d = al_dg_direct_cur;
  if (d != NULL && d->d == (uintptr_t)dgram && *d->gate == 0 && host != NULL &&
      port == d->port && (data != NULL || len == 0) && len <= 65535 &&
      (host == d->host || strcmp(host, d->host) == 0)) {
    int saved = errno;
    ssize_t n = sendto(d->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT,
                       (const struct sockaddr *)d->sa, (socklen_t)d->salen);
    errno = saved;
    if (n == (ssize_t)len)
      return 0;
    /* Not sent: the library tries it, and buffers or reports as usual. */
  }
  return al_datagram_sendto_go((uintptr_t)dgram, (void *)data, len, (char *)host, port);
}
