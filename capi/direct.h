/* Direct sends (write.c): while data_received or buffer_updated of a
 * transport runs, aloop_transport_write on that transport sends on its
 * socket from C, without a call into Go, as long as the transport's gate
 * word (core.Transport.SendGate; Go memory, passed for the duration of the
 * callback only) reads 0. The context is per thread; the trampolines
 * (trampolines.h) set it around the callback and restore the previous one.
 * Included by trampolines.h (so the cgo export header, which also declares
 * al_transport_write_go, is checked against the declaration below) and by
 * write.c (which includes the public header with its prototypes). */
#ifndef ALOOP_DIRECT_H
#define ALOOP_DIRECT_H
#include <stddef.h>
#include <stdint.h>

typedef struct al_direct_s {
  uintptr_t t;               /* the transport's handle */
  int fd;                    /* its socket */
  volatile uint32_t *gate;   /* 0: a send now is what the library would do */
} al_direct_t;

extern __thread al_direct_t *al_direct_cur;

/* The Go side of aloop_transport_write (capi/net.go). */
extern int al_transport_write_go(uintptr_t tr, void *data, size_t n, long sent, int err);

/* Direct replies (dgsend.c): while datagram_received of an endpoint runs,
 * aloop_datagram_sendto on that endpoint to the sender it was given (the
 * same host string and port) sends from C with sendto() to the sender's raw
 * address, without a call into Go, as long as the endpoint's gate word
 * (core.DatagramTransport.ReplyGate) reads 0. */
typedef struct al_dg_direct_s {
  uintptr_t d;             /* the endpoint's handle */
  int fd;                  /* its socket */
  const char *host;        /* the sender as handed to datagram_received */
  int port;
  const void *sa;          /* the sender's raw address (Go memory, no pointers) */
  unsigned int salen;
  volatile uint32_t *gate; /* 0: a sendto now is what the library would do */
} al_dg_direct_t;

extern __thread al_dg_direct_t *al_dg_direct_cur;

/* The Go side of aloop_datagram_sendto (capi/ipc.go). */
extern int al_datagram_sendto_go(uintptr_t d, void *data, size_t n, char *host, int port);
#endif
