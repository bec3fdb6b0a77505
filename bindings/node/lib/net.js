'use strict';
/**
 * The loop's networking and IPC (asyncio's create_connection,
 * create_server, create_unix_connection, create_unix_server,
 * connect_accepted_socket, connect_read_pipe, connect_write_pipe,
 * create_datagram_endpoint, sendfile, start_tls) as Loop methods.
 *
 * Every Promise-returning method takes {signal, timeout} in its options: an
 * AbortSignal, and a timeout in milliseconds; either cancels the library's
 * operation and rejects (AbortError / ETIMEDOUT).
 */
const { native, constants, operation, unixPath, checkFunction, checkOptions } = require('./native');
const { Loop, extendLoop } = require('./loop');
const { Transport, Server, DatagramTransport } = require('./transports');
const { secureContextOf } = require('./tls');

/** A family option as the platform's AF_* value: 4 / 'IPv4', 6 / 'IPv6',
 * 'unix', or an AF_* number; 0 for any. */
function familyNumber(f) {
  if (f === undefined || f === null || f === 0) return 0;
  if (f === 4 || f === 'IPv4' || f === 'udp4' || f === 'tcp4') return constants.AF_INET;
  if (f === 6 || f === 'IPv6' || f === 'udp6' || f === 'tcp6') return constants.AF_INET6;
  if (f === 'unix') return constants.AF_UNIX;
  if (Number.isInteger(f)) return f;
  throw new TypeError(`unknown family ${f}`);
}

/** A protocol object, or the one a factory function returns. */
function protocolOf(protocol) {
  return typeof protocol === 'function' ? protocol() : protocol;
}

/** An fd from a number or an object with an fd (fs.promises FileHandle). */
function fdOf(v, what) {
  if (Number.isInteger(v)) return v;
  if (v !== null && typeof v === 'object' && Number.isInteger(v.fd)) return v.fd;
  throw new TypeError(`${what} must be an fd or have an fd`);
}

function checkPort(port) {
  if (!Number.isInteger(port)) throw new TypeError('port must be an integer');
  return port;
}

/** A transport the caller no longer waits for (an aborted operation). */
function discard(o) {
  if (o && typeof o.abort === 'function') o.abort();
  else if (o && typeof o.close === 'function') o.close();
}

class NetMethods {
  /**
   * Connects to host:port (host null: the loopback addresses; every resolved
   * address is tried) and resolves to the Transport once the protocol's
   * connectionMade has run (after the TLS handshake with `tls`).
   * `protocol` is the protocol object, or a factory function returning it.
   * options: {localAddr: {host, port}, family, happyEyeballsDelay (ms),
   * interleave, sock (a connected fd), tls (true, TLS options or a
   * SecureContext; see lib/tls.js), servername, signal, timeout}.
   */
  async createConnection(host, port, protocol, options) {
    options = checkOptions(options);
    if (options.sock === undefined) checkPort(port);
    const transport = new Transport(this, protocolOf(protocol));
    const local = options.localAddr;
    const o = {
      localHost: local ? local.host : undefined,
      localPort: local ? local.port : undefined,
      family: familyNumber(options.family),
      happyEyeballsDelay: options.happyEyeballsDelay === undefined
        ? undefined : options.happyEyeballsDelay / 1000,
      interleave: options.interleave,
      flags: options.flags,
      sock: options.sock,
    };
    if (options.tls) {
      const ctx = secureContextOf(options.tls);
      transport._secureContext = ctx;
      o.tls = ctx._config(false);
      o.serverHostname = options.servername ?? (typeof options.tls === 'object' ? options.tls.servername : undefined);
    }
    return operation(options,
      (c) => native.createConnection(this, transport, host ?? null, port ?? 0, o,
                                     transport._buffered, c),
      'connect', { address: host ?? undefined, port }, discard);
  }

  /**
   * Listens on host:port (host null or '' = all interfaces, or an array of
   * hosts; port 0 = any) and resolves to a Server. protocolFactory() is
   * called for every accepted connection and returns its protocol.
   * options: {backlog, reuseAddress, reusePort, startServing, family, sock (a
   * bound fd), tls (with cert and key), signal, timeout}.
   */
  async createServer(host, port, protocolFactory, options) {
    checkFunction(protocolFactory, 'protocolFactory');
    options = checkOptions(options);
    if (options.sock === undefined) checkPort(port);
    const server = new Server(this, protocolFactory);
    const o = {
      backlog: options.backlog,
      reuseAddress: options.reuseAddress,
      reusePort: options.reusePort,
      startServing: options.startServing,
      family: familyNumber(options.family),
      flags: options.flags,
      sock: options.sock,
      tls: options.tls ? secureContextOf(options.tls)._config(true) : undefined,
    };
    return operation(options,
      (c) => native.createServer(this, server, host ?? null, port ?? 0, o, c),
      'listen', { address: Array.isArray(host) ? host.join(',') : host ?? undefined, port },
      discard);
  }

  /**
   * Connects to the Unix stream socket at path ('@name' or '\0name' in the
   * abstract namespace); as createConnection. options: {tls, servername,
   * signal, timeout}.
   */
  async createUnixConnection(path, protocol, options) {
    options = checkOptions(options);
    const p = unixPath(path);
    if (!options.tls) {
      const transport = new Transport(this, protocolOf(protocol));
      return operation(options,
        (c) => native.createUnixConnection(this, transport, p, transport._buffered, c),
        'connect', { path: p }, discard);
    }
    // TLS over a Unix socket: connect a socket, then wrap it with TLS.
    const fd = native.socketCreate(constants.AF_UNIX, constants.SOCK_STREAM, 0);
    try {
      await this.sockConnect(fd, p, { signal: options.signal, timeout: options.timeout });
      return await this.createConnection(null, 0, protocol, { ...options, sock: fd });
    } catch (e) {
      require('fs').closeSync(fd);
      throw e;
    }
  }

  /**
   * Listens on the Unix stream socket at path (a socket file left by a dead
   * server is replaced). options: {backlog, startServing, cleanupSocket
   * (remove the file at close; default true), tls, signal, timeout}.
   */
  async createUnixServer(path, protocolFactory, options) {
    checkFunction(protocolFactory, 'protocolFactory');
    options = checkOptions(options);
    const p = unixPath(path);
    const server = new Server(this, protocolFactory, typeof path === 'string' ? path : p);
    const o = {
      backlog: options.backlog,
      startServing: options.startServing,
      cleanupSocket: options.cleanupSocket,
      tls: options.tls ? secureContextOf(options.tls)._config(true) : undefined,
    };
    return operation(options, (c) => native.createUnixServer(this, server, p, o, c),
      'listen', { path: p }, discard);
  }

  /**
   * Wraps fd, a connected stream socket (accepted, or from socketpair), into
   * a Transport (asyncio's connect_accepted_socket). The transport owns the
   * fd once this resolves. options: {signal, timeout}.
   */
  async connectAcceptedSocket(fd, protocol, options) {
    options = checkOptions(options);
    const transport = new Transport(this, protocolOf(protocol));
    return operation(options,
      (c) => native.connectAcceptedSocket(this, transport, fdOf(fd, 'fd'), transport._buffered, c),
      'accept', {}, discard);
  }

  /**
   * asyncio's connect_read_pipe(protocol, pipe): pipe is an fd (a pipe, FIFO,
   * socket or character device) or an object with one (a FileHandle); the
   * transport owns it once this resolves. EOF calls eofReceived, then
   * connectionLost(null).
   */
  async connectReadPipe(protocol, pipe, options) {
    options = checkOptions(options);
    const transport = new Transport(this, protocolOf(protocol));
    return operation(options,
      (c) => native.connectReadPipe(this, transport, fdOf(pipe, 'pipe'), transport._buffered, c),
      'read', {}, discard);
  }

  /** asyncio's connect_write_pipe(protocol, pipe); see connectReadPipe. */
  async connectWritePipe(protocol, pipe, options) {
    options = checkOptions(options);
    const transport = new Transport(this, protocolOf(protocol));
    return operation(options,
      (c) => native.connectWritePipe(this, transport, fdOf(pipe, 'pipe'), transport._buffered, c),
      'write', {}, discard);
  }

  /**
   * A datagram endpoint (asyncio's create_datagram_endpoint): resolves to a
   * DatagramTransport after connectionMade. options: {localAddr: {host,
   * port} or a Unix path, remoteAddr: the same (connected, or with
   * allowBroadcast the default destination), family (4, 6, 'unix'; needed
   * without addresses), reusePort, allowBroadcast, sock (a datagram fd),
   * signal, timeout}. Hosts may be names.
   */
  async createDatagramEndpoint(protocol, options) {
    options = checkOptions(options);
    const d = new DatagramTransport(this, protocolOf(protocol));
    const split = (a) => {
      if (a === undefined || a === null) return [null, 0];
      if (typeof a === 'string' || a instanceof URL) return [unixPath(a), 0];
      if (Array.isArray(a)) return [a[0] ?? '', a[1] ?? 0];
      return [a.host ?? '', a.port ?? 0];
    };
    const [lhost, lport] = split(options.localAddr);
    const [rhost, rport] = split(options.remoteAddr);
    let family = familyNumber(options.family);
    if (family === 0 && (typeof options.localAddr === 'string' || typeof options.remoteAddr === 'string')) {
      family = constants.AF_UNIX;
    }
    const o = {
      family,
      reusePort: options.reusePort,
      allowBroadcast: options.allowBroadcast,
      sock: options.sock,
    };
    return operation(options,
      (c) => native.createDatagramEndpoint(this, d, lhost, lport, rhost, rport, o, c),
      'bind', family === constants.AF_UNIX ? { path: lhost ?? rhost } : { address: lhost ?? rhost, port: lhost !== null ? lport : rport },
      discard);
  }

  /**
   * Sends `count` bytes (0: to the end) of a file (an fd or a FileHandle)
   * from `offset` over a stream transport (asyncio's loop.sendfile):
   * zero-copy where possible, else (fallback, the default) by reading the
   * file. Resolves with the bytes sent. options: {fallback, signal, timeout}.
   */
  async sendfile(transport, file, offset = 0, count = 0, options) {
    options = checkOptions(options);
    const fd = fdOf(file, 'file');
    return operation(options,
      (c) => native.transportSendfile(transport, fd, offset, count ?? 0, options.fallback !== false, c),
      'sendfile', {});
  }

  /**
   * Upgrades a connected stream transport to TLS (asyncio's start_tls, e.g.
   * after STARTTLS) and resolves to the same transport once the handshake
   * succeeded. options: TLS options (see lib/tls.js) or {secureContext},
   * and isServer (the server side; default false), servername, signal,
   * timeout. A failed handshake closes the transport.
   */
  async startTls(transport, options) {
    options = checkOptions(options);
    const ctx = secureContextOf(options.secureContext ?? options);
    const cfg = ctx._config(!!(options.isServer ?? options.serverSide));
    transport._secureContext = ctx;
    transport._tls = undefined;
    return operation(options,
      (c) => native.transportStartTls(transport, cfg, options.servername ?? null, c),
      'starttls', {}, discard);
  }
}

extendLoop(NetMethods);

module.exports = { familyNumber, fdOf, protocolOf, Loop };
