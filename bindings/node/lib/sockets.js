'use strict';
/**
 * asyncio's sock_* operations on socket fds (non-blocking sockets the
 * caller owns) as Loop methods, and `sockets`: the few socket calls a Node
 * program needs to have such fds (Node itself hands out none).
 *
 * Addresses are {host, port}, [host, port], or a Unix socket path ('@name'
 * or '\0name': the abstract namespace). Operations on one fd run in order
 * per direction; cancelling one (signal, timeout) never touches the fd or
 * the buffer again.
 */
const fs = require('fs');
const { native, constants, operation, toAddress, unixPath, checkOptions } = require('./native');
const { extendLoop } = require('./loop');
const { familyNumber, fdOf } = require('./net');
const { typeNumber } = require('./dns');
const { toBytes } = require('./transports');

function split(addr) {
  if (typeof addr === 'string' || addr instanceof URL) return [unixPath(addr), 0];
  if (Array.isArray(addr)) return [addr[0], addr[1] ?? 0];
  if (addr !== null && typeof addr === 'object') return [addr.host, addr.port ?? 0];
  throw new TypeError('address must be {host, port}, [host, port] or a path');
}

function where(addr) {
  const [host, port] = split(addr);
  return port === 0 && typeof addr === 'string' ? { path: host } : { address: host, port };
}

const withAddr = (r) => ({ ...r, addr: toAddress(r.host, r.port), host: undefined, port: undefined });
function clean(r, keys) {
  const o = {};
  for (const k of keys) o[k] = r[k];
  return o;
}

class SockMethods {
  /** Receives up to nbytes; resolves to a Buffer (empty at EOF). */
  async sockRecv(sock, nbytes, options) {
    options = checkOptions(options);
    return operation(options, (c) => native.sockRecv(this, fdOf(sock, 'sock'), nbytes, c), 'recv');
  }

  /** Receives into buf (kept until done); resolves to the byte count. */
  async sockRecvInto(sock, buf, options) {
    options = checkOptions(options);
    return operation(options, (c) => native.sockRecvInto(this, fdOf(sock, 'sock'), buf, c), 'recv');
  }

  /** Receives one datagram of up to bufsize bytes; resolves to {data, addr}. */
  async sockRecvfrom(sock, bufsize, options) {
    options = checkOptions(options);
    return operation(options, (c) => native.sockRecvfrom(this, fdOf(sock, 'sock'), bufsize, c),
      'recvfrom').then((r) => clean(withAddr(r), ['data', 'addr']));
  }

  /**
   * Receives one datagram into buf (its first nbytes if nbytes > 0);
   * resolves to {nbytes, addr}.
   */
  async sockRecvfromInto(sock, buf, nbytes = 0, options) {
    options = checkOptions(options);
    const view = nbytes > 0 ? new Uint8Array(buf.buffer, buf.byteOffset, Math.min(nbytes, buf.byteLength)) : buf;
    return operation(options, (c) => native.sockRecvfromInto(this, fdOf(sock, 'sock'), view, c),
      'recvfrom').then((r) => clean(withAddr(r), ['nbytes', 'addr']));
  }

  /** Sends all of data (copied); resolves once it is sent. */
  async sockSendall(sock, data, options) {
    options = checkOptions(options);
    return operation(options, (c) => native.sockSendall(this, fdOf(sock, 'sock'), toBytes(data), c),
      'send').then(() => undefined);
  }

  /** Sends one datagram to addr; resolves to the byte count. */
  async sockSendto(sock, data, addr, options) {
    options = checkOptions(options);
    const [host, port] = split(addr);
    return operation(options,
      (c) => native.sockSendto(this, fdOf(sock, 'sock'), toBytes(data), host, port, c),
      'sendto', where(addr));
  }

  /** Connects to addr (a name is resolved first, without blocking). */
  async sockConnect(sock, addr, options) {
    options = checkOptions(options);
    const [host, port] = split(addr);
    return operation(options, (c) => native.sockConnect(this, fdOf(sock, 'sock'), host, port, c),
      'connect', where(addr));
  }

  /**
   * Accepts a connection; resolves to {fd, addr}: a new non-blocking socket
   * the caller owns (close it with fs.closeSync or sockets.close).
   */
  async sockAccept(sock, options) {
    options = checkOptions(options);
    return operation(options, (c) => native.sockAccept(this, fdOf(sock, 'sock'), c), 'accept',
      {}, (r) => fs.closeSync(r.fd)).then((r) => clean(withAddr(r), ['fd', 'addr']));
  }

  /**
   * Sends count bytes (0: to the end) of file (an fd or a FileHandle) from
   * offset over the socket; resolves to the bytes sent. options: {fallback
   * (read the file where sendfile(2) cannot; default true), signal, timeout}.
   */
  async sockSendfile(sock, file, offset = 0, count = 0, options) {
    options = checkOptions(options);
    return operation(options,
      (c) => native.sockSendfile(this, fdOf(sock, 'sock'), fdOf(file, 'file'), offset, count ?? 0,
                                 options.fallback !== false, c),
      'sendfile');
  }
}

extendLoop(SockMethods);

/** Socket fds for the sock_* operations (non-blocking, close-on-exec). */
const sockets = {
  /** A new socket: family 4, 6, 'unix' (or AF_*), type 'stream' / 'dgram'. */
  create(family, type = 'stream', protocol = 0) {
    return native.socketCreate(familyNumber(family), typeNumber(type), protocol);
  },
  /** A connected pair of Unix sockets: [fd, fd]. */
  pair(type = 'stream') {
    return native.socketPair(constants.AF_UNIX, typeNumber(type));
  },
  /** Binds to addr: {host, port} ('' = any) or a Unix path. */
  bind(fd, addr) {
    const [host, port] = split(addr);
    native.socketBind(fdOf(fd, 'fd'), host, port);
  },
  listen(fd, backlog = 100) {
    native.socketListen(fdOf(fd, 'fd'), backlog);
  },
  /** The local address ({host, port} or a path). */
  name(fd) {
    const a = native.socketName(fdOf(fd, 'fd'), false);
    return toAddress(a.host, a.port);
  },
  /** The peer's address. */
  peerName(fd) {
    const a = native.socketName(fdOf(fd, 'fd'), true);
    return toAddress(a.host, a.port);
  },
  close(fd) {
    fs.closeSync(fdOf(fd, 'fd'));
  },
};

module.exports = { sockets };
