/* aloop_transport_write, written in C so that the common case costs no call
 * into Go: inside data_received (or buffer_updated) of a transport, a write
 * on that same transport goes straight to its socket while the transport's
 * gate reads 0 (nothing buffered, a plain open socket: see
 * core.Transport.SendGate). Everything else - another transport, another
 * thread, a closed gate, a short send, an error, an invalid argument - goes
 * to the Go export al_transport_write_go, which validates and acts as
 * before. */
#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "asyncloop.h" /* the public prototype: checked against the definition */
#include "direct.h"

__thread al_direct_t *al_direct_cur;

int aloop_transport_write(aloop_transport_t *t, const void *data, size_t len) {
  al_direct_t *d = al_direct_cur;
  if (d != NULL && d->t == (uintptr_t)t && *d->gate == 0 && data != NULL && len > 0 &&
      len <= ((size_t)1 << 40)) {
    int saved = errno;
    ssize_t n = send(d->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    int err = n < 0 ? errno : 0;
    errno = saved;
    if (n == (ssize_t)len)
      return 0;
    /* The rest is buffered by the library, and what follows goes behind it. */
    *d->gate = 1;
    return al_transport_write_go((uintptr_t)t, (void *)data, len, n < 0 ? 0 : (long)n, err);
  }
  return al_transport_write_go((uintptr_t)t, (void *)data, len, -1, 0);
}
